//! [`LogEngine`]: the segment files and the writer thread a node's Raft groups share.
//!
//! Every group appends its records, tagged with its id, to the same active segment, and
//! the one writer thread makes everything queued durable with one `fdatasync` (TiKV's
//! raft-engine and CockroachDB's shared storage engine do the same): fsyncs per second
//! follow the disk's pace, not the number of groups. On open the segments are replayed
//! once and each group's state is handed to its [`LogStore`] when the group is opened.
//!
//! A group whose log still lives in the older per-group layout (`group-<id>/log/`) is
//! moved in when it is opened: its live state goes into the shared log as one framed
//! `Import` record (all or nothing), its vote file moves to `group-<id>/vote`, and only
//! then is the old directory removed; an interrupted move is finished on the next open.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use parking_lot::Mutex;

use super::record::Record;
use super::segment::{self, Format, GroupState};
use super::writer::{LogKind, Op, Writer, WriterConfig};
use super::{decode_vote, FlushObserver, LogMem, LogStore};
use crate::error::StoreError;
use crate::fsutil;
use crate::machine::StateMachine;
use crate::type_config::GroupId;

/// A node's shared Raft log: segment files and one group-commit writer thread.
pub struct LogEngine {
    writer: Writer,
    dir: PathBuf,
    /// Groups' states recovered on open, until each group is opened.
    recovered: Mutex<HashMap<GroupId, GroupState>>,
    /// Groups opened so far (each may be opened once).
    opened: Mutex<Vec<GroupId>>,
}

impl std::fmt::Debug for LogEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogEngine").field("dir", &self.dir).finish()
    }
}

impl LogEngine {
    /// Opens (creating if needed) the shared log in `dir`, replaying its segments, and
    /// starts the writer; new segments start once the active one reaches
    /// `segment_bytes`. `observer` is told about every `fdatasync` of log data.
    pub fn open(
        dir: &Path,
        segment_bytes: u64,
        observer: Option<FlushObserver>,
    ) -> Result<Arc<LogEngine>, StoreError> {
        fsutil::create_dir_durable(dir)?;
        let rec = segment::recover(dir, Format::Tagged)?;
        let mut last_purge = HashMap::new();
        let mut last_committed = HashMap::new();
        let mut purged = HashMap::new();
        for (&g, state) in &rec.groups {
            if let Some(p) = &state.last_purged {
                last_purge.insert(g, Record::PurgeUpto(*p).encode(g)?);
                purged.insert(g, p.index);
            }
            if let Some(c) = &state.committed {
                last_committed.insert(g, Record::Committed(Some(*c)).encode(g)?);
            }
        }
        tracing::info!(
            dir = %dir.display(),
            groups = rec.groups.len(),
            entries = rec.groups.values().map(|g| g.entries.len()).sum::<usize>(),
            segments = rec.segments.len(),
            "opened raft log"
        );
        let writer = Writer::start(WriterConfig {
            dir: dir.to_path_buf(),
            segments: rec.segments,
            active_len: rec.last_len,
            segment_bytes,
            last_purge,
            last_committed,
            purged,
            name: "raft-log-writer".to_string(),
            observer,
        })?;
        Ok(Arc::new(LogEngine {
            writer,
            dir: dir.to_path_buf(),
            recovered: Mutex::new(rec.groups),
            opened: Mutex::new(Vec::new()),
        }))
    }

    /// The log of `group`, whose vote lives in `group_dir/vote`; a log left in the older
    /// layout (`group_dir/log/`) is moved into the shared segments first. Each group may
    /// be opened once per engine.
    pub fn open_group<M: StateMachine>(
        self: &Arc<Self>,
        group: GroupId,
        group_dir: &Path,
    ) -> Result<LogStore<M>, StoreError> {
        {
            let mut opened = self.opened.lock();
            if opened.contains(&group) {
                return Err(StoreError::GroupAlreadyOpen(group));
            }
            opened.push(group);
        }
        fsutil::create_dir_durable(group_dir)?;
        let vote_path = group_dir.join("vote");
        let legacy = group_dir.join("log");
        // A group directory used as the engine's own (a one-group log) is not legacy.
        if legacy.is_dir() && legacy != self.dir {
            self.import_legacy(group, &legacy, &vote_path)?;
        }
        let state = self.recovered.lock().remove(&group).unwrap_or_default();
        let vote = match fsutil::read_optional(&vote_path)? {
            None => None,
            Some(bytes) => Some(decode_vote(&vote_path, &bytes)?),
        };
        tracing::debug!(
            group,
            entries = state.entries.len(),
            last_purged = ?state.last_purged,
            "opened raft group log"
        );
        let mut entries = BTreeMap::new();
        for (index, raw) in state.entries {
            let entry = raw.decode::<M>().map_err(|e| StoreError::Corrupt {
                path: self.dir.clone(),
                offset: 0,
                reason: format!("entry {index} of group {group} does not decode: {e}"),
            })?;
            entries.insert(index, entry);
        }
        Ok(LogStore {
            mem: Arc::new(Mutex::new(LogMem {
                entries,
                last_purged: state.last_purged,
                committed: state.committed,
                vote,
            })),
            engine: self.clone(),
            group,
            vote_path,
        })
    }

    /// Moves a group's log from the older per-group layout into the shared segments.
    fn import_legacy(
        &self,
        group: GroupId,
        legacy: &Path,
        vote_path: &Path,
    ) -> Result<(), StoreError> {
        let already = self.recovered.lock().contains_key(&group);
        if !already {
            let mut rec = segment::recover(legacy, Format::Legacy(group))?;
            let state = rec.groups.remove(&group).unwrap_or_default();
            let record = Record::Import {
                entries: state.entries.values().cloned().collect(),
                last_purged: state.last_purged,
                committed: state.committed,
            }
            .encode(group)?;
            let purge_record = state
                .last_purged
                .as_ref()
                .map(|p| Record::PurgeUpto(*p).encode(group))
                .transpose()?;
            let committed_record = state
                .committed
                .as_ref()
                .map(|c| Record::Committed(Some(*c)).encode(group))
                .transpose()?;
            let (tx, rx) = std::sync::mpsc::channel();
            self.send(Op::Log {
                group,
                bytes: record,
                kind: LogKind::Import {
                    max: state.entries.keys().next_back().copied(),
                    purged: state.last_purged.map(|p| p.index),
                    purge_record,
                    committed_record,
                },
                done: Some(Box::new(move |r| {
                    let _ = tx.send(r);
                })),
            })?;
            rx.recv()
                .map_err(|_| StoreError::WriterStopped("completion dropped".into()))?
                .map_err(|e| StoreError::WriterStopped(e.to_string()))?;
            tracing::info!(
                group,
                entries = state.entries.len(),
                from = %legacy.display(),
                "moved a raft group's log into the shared log"
            );
            self.recovered.lock().insert(group, state);
        }
        // The vote moves next (a crash before this is finished on the next open, since
        // the shared log now holds the group), then the old directory goes.
        let old_vote = legacy.join("vote");
        if !vote_path.exists() {
            if let Some(bytes) = fsutil::read_optional(&old_vote)? {
                fsutil::write_atomic(vote_path, &bytes)?;
            }
        }
        std::fs::remove_dir_all(legacy)
            .map_err(|e| StoreError::io("remove the moved log directory", legacy, e))?;
        if let Some(parent) = legacy.parent() {
            fsutil::sync_dir(parent)?;
        }
        Ok(())
    }

    /// The directory of the shared segments.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many `fdatasync`s of log data the writer has done, for all groups.
    pub fn fsync_count(&self) -> u64 {
        self.writer.fsyncs()
    }

    /// A live counter of the writer's fsyncs.
    pub fn fsync_counter(&self) -> Arc<AtomicU64> {
        self.writer.fsync_counter()
    }

    /// Queues an op for the writer.
    pub(crate) fn send(&self, op: Op) -> Result<(), StoreError> {
        self.writer.send(op)
    }
}
