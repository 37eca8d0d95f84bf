//! The lock state machine of a group, its snapshots, and the view shared with the server.
//!
//! Applied state lives in memory ([`StateMachineData`], shared as [`SharedStateMachine`]);
//! durability comes from snapshots plus the log: on open the latest snapshot is loaded and
//! openraft re-applies the committed log after it.

use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use conclave_commands::locks::{LockApplied, LockReply};
use openraft::storage::RaftStateMachine;
use openraft::{OptionalSend, RaftSnapshotBuilder};
use parking_lot::{Mutex, RwLock};

use crate::error::StoreError;
use crate::snapshot::{SnapshotDir, SnapshotPayload, StoredSnapshot};
use crate::types::{
    Entry, EntryPayload, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use conclave_commands::locks::LockTable;

/// The applied state of a group.
#[derive(Debug, Default, Clone)]
pub struct StateMachineData {
    /// The last log entry applied.
    pub last_applied: Option<LogId>,
    /// The last membership config applied.
    pub last_membership: StoredMembership,
    /// The lock table.
    pub table: LockTable,
}

/// The applied state, shared between the state machine and the server's readers.
pub type SharedStateMachine = Arc<RwLock<StateMachineData>>;

/// Called after each normal entry is applied, with its log index and result (no lock is
/// held during the call). Keep it cheap: it runs on openraft's apply path.
pub type ApplyHook = Arc<dyn Fn(u64, &LockApplied) + Send + Sync>;

/// The reply for blank and membership entries.
fn housekeeping() -> LockApplied {
    LockApplied {
        reply: LockReply::Housekeeping { touched: 0 },
        grants: Vec::new(),
    }
}

/// Snapshot state shared by the state machine and its snapshot builders.
struct Snapshots {
    dir: SnapshotDir,
    /// The current snapshot; the lock also serializes writes of the file.
    current: Mutex<Option<StoredSnapshot>>,
    /// Makes snapshot ids unique.
    counter: AtomicU64,
}

impl Snapshots {
    /// Persists `snap` and makes it current, unless a newer one is already current.
    fn replace(&self, snap: StoredSnapshot) -> Result<(), StoreError> {
        let mut current = self.current.lock();
        if let Some(cur) = current.as_ref() {
            if cur.meta.last_log_id > snap.meta.last_log_id {
                tracing::debug!(
                    current = ?cur.meta.last_log_id,
                    offered = ?snap.meta.last_log_id,
                    "keeping the newer snapshot"
                );
                return Ok(());
            }
        }
        self.dir.save(&snap)?;
        *current = Some(snap);
        Ok(())
    }
}

/// The state machine of one group (implements openraft's [`RaftStateMachine`]).
pub struct StateMachineStore {
    data: SharedStateMachine,
    snapshots: Arc<Snapshots>,
    hook: Option<ApplyHook>,
}

/// Builds a snapshot from the state at the time the builder was made (implements
/// openraft's [`RaftSnapshotBuilder`]).
pub struct SnapshotBuilder {
    data: SharedStateMachine,
    snapshots: Arc<Snapshots>,
}

impl StateMachineStore {
    /// Opens the state machine whose snapshots live in `snapshot_dir`, loading the latest.
    pub fn open(
        snapshot_dir: &Path,
        hook: Option<ApplyHook>,
    ) -> Result<StateMachineStore, StoreError> {
        let dir = SnapshotDir::open(snapshot_dir)?;
        let current = dir.load()?;
        let data = match &current {
            Some(snap) => {
                let payload = SnapshotPayload::decode(&snap.data)?;
                tracing::info!(last_applied = ?snap.meta.last_log_id, "loaded snapshot");
                StateMachineData {
                    last_applied: snap.meta.last_log_id,
                    last_membership: snap.meta.last_membership.clone(),
                    table: payload.table,
                }
            }
            None => StateMachineData::default(),
        };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Ok(StateMachineStore {
            data: Arc::new(RwLock::new(data)),
            snapshots: Arc::new(Snapshots {
                dir,
                current: Mutex::new(current),
                counter: AtomicU64::new(seed),
            }),
            hook,
        })
    }

    /// The applied state, for linearizable reads after a read barrier.
    pub fn shared(&self) -> SharedStateMachine {
        self.data.clone()
    }

    /// Applies entries in order; returns one result per entry.
    pub fn apply_entries<I>(&self, entries: I) -> Vec<LockApplied>
    where
        I: IntoIterator<Item = Entry>,
    {
        let mut replies = Vec::new();
        let mut normal = Vec::new();
        {
            let mut d = self.data.write();
            for entry in entries {
                d.last_applied = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => replies.push(housekeeping()),
                    EntryPayload::Normal(req) => {
                        normal.push((entry.log_id.index, replies.len()));
                        replies.push(d.table.apply(entry.log_id.index, &req));
                    }
                    EntryPayload::Membership(m) => {
                        d.last_membership = StoredMembership::new(Some(entry.log_id), m);
                        replies.push(housekeeping());
                    }
                }
            }
        }
        if let Some(hook) = &self.hook {
            for (index, pos) in normal {
                if let Some(applied) = replies.get(pos) {
                    hook(index, applied);
                }
            }
        }
        replies
    }

    /// Replaces the state with a snapshot's and makes it the current snapshot, durably.
    pub fn install(&self, meta: &SnapshotMeta, data: Vec<u8>) -> Result<(), StoreError> {
        let payload = SnapshotPayload::decode(&data)?;
        self.snapshots.replace(StoredSnapshot {
            meta: meta.clone(),
            data,
        })?;
        let mut d = self.data.write();
        d.last_applied = meta.last_log_id;
        d.last_membership = meta.last_membership.clone();
        d.table = payload.table;
        tracing::info!(last_applied = ?meta.last_log_id, "installed snapshot");
        Ok(())
    }

    /// The current snapshot, if any.
    pub fn current_snapshot(&self) -> Option<Snapshot> {
        self.snapshots.current.lock().as_ref().map(|s| Snapshot {
            meta: s.meta.clone(),
            snapshot: Box::new(Cursor::new(s.data.clone())),
        })
    }

    /// A builder for a snapshot of the state as it is now.
    pub fn snapshot_builder(&self) -> SnapshotBuilder {
        SnapshotBuilder {
            data: self.data.clone(),
            snapshots: self.snapshots.clone(),
        }
    }
}

impl SnapshotBuilder {
    /// Serializes the state, persists it as the current snapshot and returns it.
    pub fn build(&self) -> Result<Snapshot, StoreError> {
        let state = self.data.read().clone();
        let last_applied = state.last_applied;
        let last_membership = state.last_membership.clone();
        let data = serde_json::to_vec(&SnapshotPayload {
            last_applied: state.last_applied,
            last_membership: state.last_membership,
            table: state.table,
        })?;
        let n = self.snapshots.counter.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match last_applied {
            Some(id) => format!("{}-{}-{n}", id.leader_id.term, id.index),
            None => format!("0-0-{n}"),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership,
            snapshot_id,
        };
        self.snapshots.replace(StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        })?;
        tracing::info!(last_applied = ?meta.last_log_id, bytes = data.len(), "built snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        self.build().map_err(StoreError::write_snapshot)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let d = self.data.read();
        Ok((d.last_applied, d.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<LockApplied>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        Ok(self.apply_entries(entries))
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        self.snapshot_builder()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        self.install(meta, snapshot.into_inner())
            .map_err(StoreError::write_sm)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        Ok(self.current_snapshot())
    }
}
