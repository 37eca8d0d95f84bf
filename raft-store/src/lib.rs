//! # conclave-raft-store
//!
//! Durable openraft (0.9, storage v2) storage for Conclave's Raft groups:
//!
//! - [`LogStore`]: a purpose-built segmented, append-only, checksummed log with group
//!   commit (one `fdatasync` per batch of concurrent appends) and an in-memory index so
//!   reads never touch the disk; the vote and committed log id are kept beside it;
//! - [`StateMachineStore`]: the lock table, its snapshots, and the [`SharedStateMachine`]
//!   view the server reads.
//!
//! Each group lives in its own directory: `<data_dir>/group-<id>/{log,snapshot}/`.

#![warn(missing_docs)]

mod codec;
mod error;
mod frame;
mod fsutil;
mod log;
mod snapshot;
mod state_machine;
mod types;

use std::path::{Path, PathBuf};

pub use codec::CodecError;
pub use error::StoreError;
pub use log::{FlushInfo, FlushObserver, LogReader, LogStore, DEFAULT_SEGMENT_BYTES};
pub use state_machine::{
    ApplyHook, SharedStateMachine, SnapshotBuilder, StateMachineData, StateMachineStore,
};
pub use types::*;

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

/// Opens (creating if needed) the log and state machine of one group with default options.
/// `hook` is called after each normal entry is applied.
pub fn open_group(
    data_dir: &Path,
    group: GroupId,
    hook: Option<ApplyHook>,
) -> Result<(LogStore, StateMachineStore), StoreError> {
    open_group_with(data_dir, group, hook, &StoreOptions::default())
}

/// [`open_group`] with explicit options.
pub fn open_group_with(
    data_dir: &Path,
    group: GroupId,
    hook: Option<ApplyHook>,
    options: &StoreOptions,
) -> Result<(LogStore, StateMachineStore), StoreError> {
    let dir = group_dir(data_dir, group);
    let log = LogStore::open_observed(
        &dir.join("log"),
        options.segment_bytes,
        options.observer.clone(),
    )?;
    let sm = StateMachineStore::open(&dir.join("snapshot"), hook)?;
    Ok((log, sm))
}
