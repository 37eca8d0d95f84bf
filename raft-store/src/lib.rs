//! # conclave-raft-store
//!
//! Durable openraft (0.9, storage v2) storage for Conclave's Raft groups:
//!
//! - [`LogEngine`]: a purpose-built segmented, append-only, checksummed log shared by
//!   every Raft group of a node, with group commit (one `fdatasync` per batch of
//!   concurrent appends, from any number of groups);
//! - [`LogStore`]: one group's log on the engine, with an in-memory index so reads never
//!   touch the disk; its vote and committed log id;
//! - [`StateMachine`]: what a service implements (the lock table, the queue shards, ...);
//!   [`TypeConfig<M>`] is the openraft configuration of a group of machine `M`;
//! - [`StateMachineStore`]: a group's machine, its snapshots, and the
//!   [`SharedStateMachine`] view the service reads;
//! - [`proposer`]: leader-side batching of operations into log entries (group commit at
//!   the Raft level); [`waiters`]: clients blocked until their node applies a result;
//! - [`kv`]: a small map machine for tests, benchmarks and the node's debug groups.
//!
//! On disk: `<data_dir>/raft-log/*.seg` (every group's records, tagged with the group),
//! and per group `<data_dir>/group-<id>/vote` and `<data_dir>/group-<id>/snapshot/`.

#![warn(missing_docs)]

mod crc_frame;
mod encoding;
mod error;

pub mod fsutil;
pub mod kv;
mod log;
mod machine;
pub mod proposer;
mod snapshot;
mod state_machine;
mod type_config;
pub mod waiters;

use std::path::{Path, PathBuf};

pub use encoding::{postcard_after, CodecError};
pub use error::StoreError;
pub use log::{FlushInfo, FlushObserver, LogEngine, LogReader, LogStore, DEFAULT_SEGMENT_BYTES};
pub use machine::{Batch, Stamped, StateMachine};
pub use state_machine::{
    ApplyHook, SharedStateMachine, SnapshotBuilder, StateMachineData, StateMachineStore,
};
pub use type_config::*;

/// Tunables of a group's storage.
#[derive(Clone)]
pub struct StoreOptions {
    /// Start a new log segment once the active one reaches this many bytes.
    pub segment_bytes: u64,
    /// Told about every `fdatasync` of log data (latency, bytes, appends), for metrics.
    pub observer: Option<FlushObserver>,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("segment_bytes", &self.segment_bytes)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            observer: None,
        }
    }
}

/// The directory of group `group` under `data_dir`.
pub fn group_dir(data_dir: &Path, group: GroupId) -> PathBuf {
    data_dir.join(format!("group-{group}"))
}

/// The directory of a node's shared Raft log under `data_dir`.
pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("raft-log")
}

/// Opens (creating if needed) a node's shared log engine under `data_dir`.
pub fn open_engine(
    data_dir: &Path,
    options: &StoreOptions,
) -> Result<std::sync::Arc<LogEngine>, StoreError> {
    LogEngine::open(
        &log_dir(data_dir),
        options.segment_bytes,
        options.observer.clone(),
    )
}

/// Opens group `group` on a node's `engine`: its log, and its state machine with
/// snapshots under `data_dir`. `hook` is called after each normal entry is applied.
pub fn open_group_on<M: StateMachine>(
    engine: &std::sync::Arc<LogEngine>,
    data_dir: &Path,
    group: GroupId,
    hook: Option<ApplyHook<M>>,
) -> Result<(LogStore<M>, StateMachineStore<M>), StoreError> {
    let dir = group_dir(data_dir, group);
    let log = engine.open_group(group, &dir)?;
    let sm = StateMachineStore::open(&dir.join("snapshot"), hook)?;
    Ok((log, sm))
}

/// Opens (creating if needed) the engine and one group with default options: for a node
/// with one group (open the engine once with [`open_engine`] for several).
pub fn open_group<M: StateMachine>(
    data_dir: &Path,
    group: GroupId,
    hook: Option<ApplyHook<M>>,
) -> Result<(LogStore<M>, StateMachineStore<M>), StoreError> {
    open_group_with(data_dir, group, hook, &StoreOptions::default())
}

/// [`open_group`] with explicit options.
pub fn open_group_with<M: StateMachine>(
    data_dir: &Path,
    group: GroupId,
    hook: Option<ApplyHook<M>>,
    options: &StoreOptions,
) -> Result<(LogStore<M>, StateMachineStore<M>), StoreError> {
    let engine = open_engine(data_dir, options)?;
    open_group_on(&engine, data_dir, group, hook)
}
