//! The durable Raft logs of a node's groups: one set of segmented append-only files
//! shared by every group ([`LogEngine`]), one writer thread doing group commit for all
//! of them (writing over space zero-filled ahead of it, see [`prealloc`]), and per group
//! ([`LogStore`]) an in-memory index of every live entry and a vote file. Reads never
//! touch the disk.
//!
//! Layout: `<data-dir>/raft-log/<seq:020>.seg` (records tagged with their group) and
//! `<data-dir>/group-<id>/vote` (replaced atomically).

mod engine;
mod prealloc;
mod record;
mod segment;
mod writer;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::crc_frame::{self as frame, Decoded};
use crate::encoding as codec;
use crate::error::StoreError;
use crate::machine::StateMachine;
use crate::type_config::{Entry, GroupId, LogId, LogState, StorageError, TypeConfig, Vote};
pub use engine::LogEngine;
use record::{RawEntry, Record};
use writer::{Done, LogKind, Op};
pub use writer::{FlushInfo, FlushObserver};

/// Default size at which the writer starts a new segment file.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// Most entries one [`RaftLogReader::limited_get_log_entries`] call returns.
const READ_LIMIT: usize = 4096;

/// The log's in-memory state, shared with readers.
#[derive(Debug)]
struct LogMem<M: StateMachine> {
    entries: BTreeMap<u64, Entry<M>>,
    last_purged: Option<LogId>,
    committed: Option<LogId>,
    vote: Option<Vote>,
}

/// The log store of one Raft group (implements openraft's [`RaftLogStorage`]), on its
/// node's shared [`LogEngine`].
///
/// When the last store of an engine is dropped, the writer finishes everything queued,
/// then its thread stops.
pub struct LogStore<M: StateMachine> {
    mem: Arc<Mutex<LogMem<M>>>,
    engine: Arc<LogEngine>,
    group: GroupId,
    vote_path: PathBuf,
}

/// A cheap, cloneable reader of a [`LogStore`]'s entries (for replication tasks).
pub struct LogReader<M: StateMachine> {
    mem: Arc<Mutex<LogMem<M>>>,
}

impl<M: StateMachine> Clone for LogReader<M> {
    fn clone(&self) -> Self {
        LogReader {
            mem: self.mem.clone(),
        }
    }
}

impl<M: StateMachine> LogStore<M> {
    /// A log of its own in `dir` (its own engine and writer): for tests and tools with
    /// one group. Group 0; the vote is kept in `dir` too.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<LogStore<M>, StoreError> {
        Self::open_observed(dir, segment_bytes, None)
    }

    /// [`open`](Self::open), calling `observer` after every `fdatasync` of log data.
    pub fn open_observed(
        dir: &Path,
        segment_bytes: u64,
        observer: Option<FlushObserver>,
    ) -> Result<LogStore<M>, StoreError> {
        let engine = LogEngine::open(dir, segment_bytes, observer)?;
        engine.open_group(0, dir)
    }

    /// The group this log belongs to.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// The node's log engine this log writes through.
    pub fn engine(&self) -> &Arc<LogEngine> {
        &self.engine
    }

    /// How many `fdatasync`s of log data the engine (every group of the node) has done.
    pub fn fsync_count(&self) -> u64 {
        self.engine.fsync_count()
    }

    /// A live counter of the engine's fsyncs (for metrics, after the store is handed to
    /// openraft).
    pub fn fsync_counter(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.engine.fsync_counter()
    }

    /// A reader sharing this log's entries.
    pub fn reader(&self) -> LogReader<M> {
        LogReader {
            mem: self.mem.clone(),
        }
    }

    /// Appends entries: they are readable when this returns, and `on_durable` runs on
    /// the writer thread once they are fsynced (or the write failed). This is what
    /// [`RaftLogStorage::append`] does with openraft's callback.
    pub fn append_with<I>(
        &self,
        entries: I,
        on_durable: impl FnOnce(io::Result<()>) + Send + 'static,
    ) -> Result<(), StoreError>
    where
        I: IntoIterator<Item = Entry<M>>,
    {
        let mut bytes = Vec::new();
        let mut batch = Vec::new();
        let mut max_index = None;
        for entry in entries {
            Record::Entry(RawEntry::encode(&entry)?).encode_into(self.group, &mut bytes)?;
            max_index = Some(entry.log_id.index);
            batch.push(entry);
        }
        // Queue while holding the lock so memory and disk see the same order.
        let mut mem = self.mem.lock();
        for entry in batch {
            mem.entries.insert(entry.log_id.index, entry);
        }
        self.engine.send(Op::Log {
            group: self.group,
            bytes,
            kind: LogKind::Entries(max_index),
            done: Some(Box::new(on_durable)),
        })
    }

    /// Queues a log op (with `mem` still locked, keeping memory and disk in the same
    /// order); the receiver reports when it is durable.
    fn queue_locked(
        &self,
        mem: parking_lot::MutexGuard<'_, LogMem<M>>,
        bytes: Vec<u8>,
        kind: LogKind,
    ) -> Result<oneshot::Receiver<io::Result<()>>, StoreError> {
        let (done, rx) = completion();
        self.engine.send(Op::Log {
            group: self.group,
            bytes,
            kind,
            done: Some(done),
        })?;
        drop(mem);
        Ok(rx)
    }

    /// Deletes entries from `index` on, durably.
    pub async fn truncate_since(&self, index: u64) -> Result<(), StoreError> {
        let bytes = Record::TruncateSince(index).encode(self.group)?;
        let rx = {
            let mut mem = self.mem.lock();
            mem.entries.split_off(&index);
            self.queue_locked(mem, bytes, LogKind::Truncate)?
        };
        wait(rx).await
    }

    /// Deletes entries up to and including `log_id`, durably; old segments go too.
    pub async fn purge_upto(&self, log_id: LogId) -> Result<(), StoreError> {
        let bytes = Record::PurgeUpto(log_id).encode(self.group)?;
        let rx = {
            let mut mem = self.mem.lock();
            let keep = mem.entries.split_off(&(log_id.index + 1));
            mem.entries = keep;
            if !matches!(mem.last_purged, Some(p) if p >= log_id) {
                mem.last_purged = Some(log_id);
            }
            self.queue_locked(mem, bytes, LogKind::Purge(log_id.index))?
        };
        wait(rx).await
    }

    /// Saves the vote durably (after everything queued before it).
    pub async fn store_vote(&self, vote: &Vote) -> Result<(), StoreError> {
        let mut bytes = Vec::new();
        frame::encode_into(&mut bytes, &codec::encode(vote)?);
        let (done, rx) = completion();
        self.engine.send(Op::Vote {
            path: self.vote_path.clone(),
            bytes,
            done,
        })?;
        wait(rx).await?;
        self.mem.lock().vote = Some(*vote);
        Ok(())
    }

    /// Records the committed log id; durable with the next group commit (not awaited:
    /// a committed id lost in a crash only means re-applying less on restart).
    pub fn store_committed(&self, committed: Option<LogId>) -> Result<(), StoreError> {
        let bytes = Record::Committed(committed).encode(self.group)?;
        let mut mem = self.mem.lock();
        mem.committed = committed;
        self.engine.send(Op::Log {
            group: self.group,
            bytes,
            kind: LogKind::Committed,
            done: None,
        })
    }

    /// The last purged and the last present log ids.
    pub fn log_state(&self) -> LogState<M> {
        let mem = self.mem.lock();
        let last = mem
            .entries
            .last_key_value()
            .map(|(_, e)| e.log_id)
            .or(mem.last_purged);
        LogState {
            last_purged_log_id: mem.last_purged,
            last_log_id: last,
        }
    }

    /// The saved vote.
    pub fn vote(&self) -> Option<Vote> {
        self.mem.lock().vote
    }

    /// The saved committed log id.
    pub fn committed(&self) -> Option<LogId> {
        self.mem.lock().committed
    }
}

impl<M: StateMachine> LogReader<M> {
    /// Clones the entries in `range`, at most `limit` of them.
    pub fn entries(&self, range: impl RangeBounds<u64>, limit: usize) -> Vec<Entry<M>> {
        let start = range.start_bound().cloned();
        let end = range.end_bound().cloned();
        if is_empty_range(start, end) {
            return Vec::new();
        }
        let mem = self.mem.lock();
        mem.entries
            .range((start, end))
            .take(limit)
            .map(|(_, e)| e.clone())
            .collect()
    }
}

/// `BTreeMap::range` panics on inverted ranges; they simply hold nothing here.
fn is_empty_range(start: Bound<u64>, end: Bound<u64>) -> bool {
    let lo = match start {
        Bound::Included(s) => Some(s),
        Bound::Excluded(s) => s.checked_add(1),
        Bound::Unbounded => Some(0),
    };
    let Some(lo) = lo else { return true };
    match end {
        Bound::Included(e) => e < lo,
        Bound::Excluded(e) => e <= lo,
        Bound::Unbounded => false,
    }
}

/// A completion that reports to a oneshot channel.
fn completion() -> (Done, oneshot::Receiver<io::Result<()>>) {
    let (tx, rx) = oneshot::channel();
    let done: Done = Box::new(move |r| {
        let _ = tx.send(r);
    });
    (done, rx)
}

/// Waits for a completion.
async fn wait(rx: oneshot::Receiver<io::Result<()>>) -> Result<(), StoreError> {
    match rx.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(StoreError::WriterStopped(e.to_string())),
        Err(_) => Err(StoreError::WriterStopped("completion dropped".to_string())),
    }
}

/// Decodes the vote file.
fn decode_vote(path: &Path, bytes: &[u8]) -> Result<Vote, StoreError> {
    match frame::decode(bytes) {
        Decoded::Record(payload, _) => Ok(codec::decode(payload)?),
        Decoded::Short => Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason: "short vote file".to_string(),
        }),
        Decoded::Bad(reason) => Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason,
        }),
    }
}

impl<M: StateMachine> RaftLogReader<TypeConfig<M>> for LogReader<M> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<M>>, StorageError> {
        Ok(self.entries(range, usize::MAX))
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry<M>>, StorageError> {
        Ok(self.entries(start..end, READ_LIMIT))
    }
}

impl<M: StateMachine> RaftLogReader<TypeConfig<M>> for LogStore<M> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<M>>, StorageError> {
        Ok(self.reader().entries(range, usize::MAX))
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry<M>>, StorageError> {
        Ok(self.reader().entries(start..end, READ_LIMIT))
    }
}

impl<M: StateMachine> RaftLogStorage<TypeConfig<M>> for LogStore<M> {
    type LogReader = LogReader<M>;

    async fn get_log_state(&mut self) -> Result<LogState<M>, StorageError> {
        Ok(self.log_state())
    }

    async fn get_log_reader(&mut self) -> LogReader<M> {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.store_vote(vote).await.map_err(StoreError::write_vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.vote())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.store_committed(committed)
            .map_err(StoreError::write_logs)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.committed())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig<M>>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<M>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.append_with(entries, move |r| callback.log_io_completed(r))
            .map_err(StoreError::write_logs)
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.truncate_since(log_id.index)
            .await
            .map_err(StoreError::write_logs)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.purge_upto(log_id)
            .await
            .map_err(StoreError::write_logs)
    }
}

#[cfg(test)]
mod tests;
