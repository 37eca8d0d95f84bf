//! The state machine store of a group (generic over its [`StateMachine`]), its
//! snapshots, and the view shared with the service.
//!
//! Applied state lives in memory ([`StateMachineData`], shared as [`SharedStateMachine`]);
//! durability comes from snapshots plus the log: on open the latest snapshot is loaded and
//! openraft re-applies the committed log after it.

use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{OptionalSend, RaftSnapshotBuilder};
use parking_lot::{Mutex, RwLock};

use crate::error::StoreError;
use crate::machine::StateMachine;
use crate::snapshot::{SnapshotDir, SnapshotPayload, StoredSnapshot};
use crate::type_config::{
    Entry, EntryPayload, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

/// The applied state of a group.
#[derive(Debug, Default, Clone)]
pub struct StateMachineData<M> {
    /// The last log entry applied.
    pub last_applied: Option<LogId>,
    /// The last membership config applied.
    pub last_membership: StoredMembership,
    /// The service's state machine.
    pub machine: M,
}

/// The applied state, shared between the state machine and the service's readers.
pub type SharedStateMachine<M> = Arc<RwLock<StateMachineData<M>>>;

/// Called after each operation of a normal entry is applied, with the entry's log index
/// and the operation's result (no lock is held during the call). Keep it cheap: it runs
/// on openraft's apply path.
pub type ApplyHook<M> = Arc<dyn Fn(u64, &<M as StateMachine>::Applied) + Send + Sync>;

/// Snapshot state shared by the state machine and its snapshot builders.
struct Snapshots {
    dir: SnapshotDir,
    /// The current snapshot; the lock also serializes writes of the file.
    current: Mutex<Option<StoredSnapshot>>,
    /// Makes snapshot ids unique.
    counter: AtomicU64,
}

impl Snapshots {
    /// Persists `snap` and makes it current. Unless `force`d (an install, which openraft
    /// only asks for when the snapshot is ahead of this node), a snapshot older than the
    /// current one is not written (a slow builder lost a race).
    fn replace(&self, snap: StoredSnapshot, force: bool) -> Result<(), StoreError> {
        let mut current = self.current.lock();
        if let (Some(cur), false) = (current.as_ref(), force) {
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
pub struct StateMachineStore<M: StateMachine> {
    data: SharedStateMachine<M>,
    snapshots: Arc<Snapshots>,
    hook: Option<ApplyHook<M>>,
}

/// Builds a snapshot from the state at the time the builder was made (implements
/// openraft's [`RaftSnapshotBuilder`]).
pub struct SnapshotBuilder<M: StateMachine> {
    data: SharedStateMachine<M>,
    snapshots: Arc<Snapshots>,
}

impl<M: StateMachine> StateMachineStore<M> {
    /// Opens the state machine whose snapshots live in `snapshot_dir`, loading the latest.
    pub fn open(
        snapshot_dir: &Path,
        hook: Option<ApplyHook<M>>,
    ) -> Result<StateMachineStore<M>, StoreError> {
        let dir = SnapshotDir::open(snapshot_dir)?;
        let current = dir.load()?;
        let data = match &current {
            Some(snap) => {
                let payload = SnapshotPayload::<M>::decode(&snap.data)?;
                tracing::info!(last_applied = ?snap.meta.last_log_id, "loaded snapshot");
                StateMachineData {
                    last_applied: snap.meta.last_log_id,
                    last_membership: snap.meta.last_membership.clone(),
                    machine: payload.table,
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
    pub fn shared(&self) -> SharedStateMachine<M> {
        self.data.clone()
    }

    /// Applies entries in order; returns one result per entry (one `M::Applied` per
    /// operation of a normal entry, none for blank and membership entries).
    pub fn apply_entries<I>(&self, entries: I) -> Vec<Vec<M::Applied>>
    where
        I: IntoIterator<Item = Entry<M>>,
    {
        let mut replies = Vec::new();
        let mut normal = Vec::new();
        {
            let mut d = self.data.write();
            for entry in entries {
                d.last_applied = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => replies.push(Vec::new()),
                    EntryPayload::Normal(batch) => {
                        let index = entry.log_id.index;
                        normal.push((index, replies.len()));
                        replies.push(
                            batch
                                .requests
                                .iter()
                                .map(|req| d.machine.apply(index, req))
                                .collect(),
                        );
                    }
                    EntryPayload::Membership(m) => {
                        d.last_membership = StoredMembership::new(Some(entry.log_id), m);
                        replies.push(Vec::new());
                    }
                }
            }
        }
        if let Some(hook) = &self.hook {
            for (index, pos) in normal {
                for applied in replies.get(pos).into_iter().flatten() {
                    hook(index, applied);
                }
            }
        }
        replies
    }

    /// Replaces the state with a snapshot's and makes it the current snapshot, durably.
    pub fn install(&self, meta: &SnapshotMeta, data: Vec<u8>) -> Result<(), StoreError> {
        let payload = SnapshotPayload::<M>::decode(&data)?;
        self.snapshots.replace(
            StoredSnapshot {
                meta: meta.clone(),
                data,
            },
            true,
        )?;
        let mut d = self.data.write();
        d.last_applied = meta.last_log_id;
        d.last_membership = meta.last_membership.clone();
        d.machine = payload.table;
        tracing::info!(last_applied = ?meta.last_log_id, "installed snapshot");
        Ok(())
    }

    /// The current snapshot, if any.
    pub fn current_snapshot(&self) -> Option<Snapshot<M>> {
        self.snapshots.current.lock().as_ref().map(|s| Snapshot {
            meta: s.meta.clone(),
            snapshot: Box::new(Cursor::new(s.data.clone())),
        })
    }

    /// A builder for a snapshot of the state as it is now.
    pub fn snapshot_builder(&self) -> SnapshotBuilder<M> {
        SnapshotBuilder {
            data: self.data.clone(),
            snapshots: self.snapshots.clone(),
        }
    }
}

impl<M: StateMachine> SnapshotBuilder<M> {
    /// Serializes the state, persists it as the current snapshot and returns it.
    pub fn build(&self) -> Result<Snapshot<M>, StoreError> {
        let state = self.data.read().clone();
        let last_applied = state.last_applied;
        let last_membership = state.last_membership.clone();
        let data = crate::encoding::encode(&SnapshotPayload {
            last_applied: state.last_applied,
            last_membership: state.last_membership,
            table: state.machine,
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
        self.snapshots.replace(
            StoredSnapshot {
                meta: meta.clone(),
                data: data.clone(),
            },
            false,
        )?;
        tracing::info!(last_applied = ?meta.last_log_id, bytes = data.len(), "built snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl<M: StateMachine> RaftSnapshotBuilder<TypeConfig<M>> for SnapshotBuilder<M> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<M>, StorageError> {
        self.build().map_err(StoreError::write_snapshot)
    }
}

impl<M: StateMachine> RaftStateMachine<TypeConfig<M>> for StateMachineStore<M> {
    type SnapshotBuilder = SnapshotBuilder<M>;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let d = self.data.read();
        Ok((d.last_applied, d.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<M::Applied>>, StorageError>
    where
        I: IntoIterator<Item = Entry<M>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        Ok(self.apply_entries(entries))
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder<M> {
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

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<M>>, StorageError> {
        Ok(self.current_snapshot())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use openraft::{CommittedLeaderId, Membership};

    use super::*;
    use crate::kv::{KvApplied, KvMachine, KvOp};
    use crate::machine::{Batch, Stamped};

    type Entry = crate::type_config::Entry<KvMachine>;
    type EntryPayload = crate::type_config::EntryPayload<KvMachine>;
    type Store = StateMachineStore<KvMachine>;

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn put(index: u64, key: &str, value: &str) -> Entry {
        Entry {
            log_id: log_id(1, index),
            payload: EntryPayload::Normal(Batch::from(Stamped {
                now_ms: 1_000_000,
                op: KvOp::Put {
                    key: key.as_bytes().to_vec(),
                    value: value.as_bytes().to_vec(),
                },
            })),
        }
    }

    fn membership(index: u64) -> Entry {
        Entry {
            log_id: log_id(1, index),
            payload: EntryPayload::Membership(Membership::new(
                vec![BTreeSet::from([1, 2, 3])],
                None,
            )),
        }
    }

    fn populated(dir: &Path, hook: Option<ApplyHook<KvMachine>>) -> Store {
        let sm = Store::open(dir, hook).unwrap();
        sm.apply_entries([
            Entry {
                log_id: log_id(1, 1),
                payload: EntryPayload::Blank,
            },
            membership(2),
            put(3, "a", "x"),
            put(4, "a", "y"),
            put(5, "b", "y"),
        ]);
        sm
    }

    #[test]
    fn apply_replies_and_calls_the_hook_for_normal_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hook: ApplyHook<KvMachine> = {
            let seen = seen.clone();
            Arc::new(move |index, applied: &KvApplied| seen.lock().push((index, applied.clone())))
        };
        let sm = Store::open(tmp.path(), Some(hook)).unwrap();
        let replies = sm.apply_entries([
            Entry {
                log_id: log_id(1, 1),
                payload: EntryPayload::Blank,
            },
            membership(2),
            put(3, "a", "x"),
            put(4, "a", "y"),
        ]);
        assert_eq!(replies.len(), 4);
        assert!(replies[0].is_empty() && replies[1].is_empty());
        assert_eq!(replies[2].len(), 1);
        assert_eq!(
            replies[2][0],
            KvApplied {
                index: 3,
                previous: None
            }
        );
        assert_eq!(replies[3][0].previous, Some(b"x".to_vec()));
        let seen = seen.lock();
        assert_eq!(seen.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(seen[0].1, replies[2][0]);
        let shared = sm.shared();
        let d = shared.read();
        assert_eq!(d.last_applied, Some(log_id(1, 4)));
        assert_eq!(d.last_membership.log_id(), &Some(log_id(1, 2)));
        assert_eq!(d.machine.map.get(&b"a"[..]), Some(&b"y".to_vec()));
    }

    #[test]
    fn snapshot_build_install_and_reload_round_trip() {
        let leader_dir = tempfile::tempdir().unwrap();
        let follower_dir = tempfile::tempdir().unwrap();
        let leader = populated(leader_dir.path(), None);
        let snap = leader.snapshot_builder().build().unwrap();
        assert_eq!(snap.meta.last_log_id, Some(log_id(1, 5)));
        assert_eq!(
            leader.current_snapshot().map(|s| s.meta),
            Some(snap.meta.clone())
        );

        let follower = Store::open(follower_dir.path(), None).unwrap();
        follower
            .install(&snap.meta, snap.snapshot.into_inner())
            .unwrap();
        let expected = leader.shared().read().clone();
        {
            let got = follower.shared();
            let got = got.read();
            assert_eq!(got.last_applied, expected.last_applied);
            assert_eq!(got.last_membership, expected.last_membership);
            assert_eq!(got.machine, expected.machine);
        }
        drop(follower);

        // Both reload their snapshot from disk.
        for dir in [leader_dir.path(), follower_dir.path()] {
            let reopened = Store::open(dir, None).unwrap();
            let got = reopened.shared();
            let got = got.read();
            assert_eq!(got.last_applied, Some(log_id(1, 5)));
            assert_eq!(got.last_membership, expected.last_membership);
            assert_eq!(got.machine, expected.machine);
            assert_eq!(
                reopened.current_snapshot().map(|s| s.meta),
                Some(snap.meta.clone())
            );
        }
    }

    #[test]
    fn an_older_snapshot_does_not_replace_a_newer_one() {
        let tmp = tempfile::tempdir().unwrap();
        let sm = populated(tmp.path(), None);
        let other = tempfile::tempdir().unwrap();
        let old_builder = Store::open(other.path(), None).unwrap().snapshot_builder();
        let newer = sm.snapshot_builder().build().unwrap();
        // A snapshot of an earlier state (nothing applied) arrives late.
        let stale = old_builder.build().unwrap();
        sm.snapshots
            .replace(
                StoredSnapshot {
                    meta: stale.meta,
                    data: stale.snapshot.into_inner(),
                },
                false,
            )
            .unwrap();
        assert_eq!(sm.current_snapshot().map(|s| s.meta), Some(newer.meta));
    }

    #[test]
    fn garbage_snapshot_data_is_rejected_without_changing_state() {
        let tmp = tempfile::tempdir().unwrap();
        let sm = populated(tmp.path(), None);
        let before = sm.shared().read().clone();
        let meta = SnapshotMeta {
            last_log_id: Some(log_id(9, 99)),
            last_membership: StoredMembership::default(),
            snapshot_id: "bad".to_string(),
        };
        assert!(sm.install(&meta, b"not json".to_vec()).is_err());
        assert_eq!(sm.shared().read().machine, before.machine);
        assert_eq!(sm.shared().read().last_applied, before.last_applied);
        assert!(sm.current_snapshot().is_none());
    }
}
