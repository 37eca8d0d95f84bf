//! The log writer thread: group commit for every Raft group of a node.
//!
//! Callers (the groups' log stores) queue [`Op`]s; the thread takes everything queued,
//! writes it to the active shared segment with one `write`, makes it durable with ONE
//! `fdatasync`, and only then runs every completion that was waiting — so one flush
//! serves every group that appended since the last one, and fsyncs per second do not
//! grow with the number of groups. Ops are processed strictly in queue order, so
//! appends, truncations, purges and votes hit the disk in the order they were issued.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::StoreError;
use crate::fsutil;
use crate::log::prealloc::Prealloc;
use crate::log::segment::{segment_path, SegmentMeta};
use crate::type_config::GroupId;

/// A completion: run once the op is durable (or failed).
pub(crate) type Done = Box<dyn FnOnce(io::Result<()>) + Send>;

/// What a queued log write is, for the writer's bookkeeping.
#[derive(Debug)]
pub(crate) enum LogKind {
    /// Entries up to this index (none when empty).
    Entries(Option<u64>),
    /// A truncate-since record.
    Truncate,
    /// A purge-upto record: segments wholly at or below this index can go.
    Purge(u64),
    /// A group's whole log imported.
    Import {
        /// The greatest index imported.
        max: Option<u64>,
        /// The index purged up to.
        purged: Option<u64>,
        /// The group's purge record, for the heads of later segments (so the import's
        /// segment can go once obsolete).
        purge_record: Option<Vec<u8>>,
        /// The group's committed record, likewise.
        committed_record: Option<Vec<u8>>,
    },
    /// A committed-log-id record.
    Committed,
}

/// One unit of work for the writer.
pub(crate) enum Op {
    /// Framed records to append to the log.
    Log {
        /// The group the records belong to.
        group: GroupId,
        /// The encoded records.
        bytes: Vec<u8>,
        /// What they are.
        kind: LogKind,
        /// Run after they are durable.
        done: Option<Done>,
    },
    /// Replace the vote file (after everything queued before it is durable).
    Vote {
        /// The group's vote file.
        path: PathBuf,
        /// The encoded vote file.
        bytes: Vec<u8>,
        /// Run after the vote is durable.
        done: Done,
    },
}

/// Handle to a running writer thread; dropping it drains the queue and joins the thread.
pub(crate) struct Writer {
    tx: Option<mpsc::Sender<Op>>,
    handle: Option<JoinHandle<()>>,
    fsyncs: Arc<AtomicU64>,
}

/// Everything the thread needs to start.
pub(crate) struct WriterConfig {
    /// The log directory.
    pub(crate) dir: PathBuf,
    /// Existing segments, oldest first (non-empty; the last is active).
    pub(crate) segments: Vec<SegmentMeta>,
    /// Current length of the active segment.
    pub(crate) active_len: u64,
    /// Roll to a new segment once the active one reaches this size.
    pub(crate) segment_bytes: u64,
    /// Per group, the last purge record, re-written at the head of each new segment.
    pub(crate) last_purge: HashMap<GroupId, Vec<u8>>,
    /// Per group, the last committed record, re-written at the head of each new segment.
    pub(crate) last_committed: HashMap<GroupId, Vec<u8>>,
    /// Per group, the index purged so far.
    pub(crate) purged: HashMap<GroupId, u64>,
    /// A label for the thread name and logs.
    pub(crate) name: String,
    /// Told about every `fdatasync` of segment data.
    pub(crate) observer: Option<FlushObserver>,
}

/// What one `fdatasync` of log data cost and carried, for metrics exporters.
#[derive(Debug, Clone, Copy)]
pub struct FlushInfo {
    /// How long the `fdatasync` took.
    pub fsync: std::time::Duration,
    /// Bytes written since the previous sync.
    pub bytes: u64,
    /// Appends made durable by it (callers waiting on the flush).
    pub appends: usize,
}

/// Called on the writer thread after each `fdatasync` of log data: keep it cheap.
pub type FlushObserver = Arc<dyn Fn(&FlushInfo) + Send + Sync>;

impl Writer {
    /// Opens the active segment and starts the thread.
    pub(crate) fn start(cfg: WriterConfig) -> Result<Writer, StoreError> {
        let fsyncs = Arc::new(AtomicU64::new(0));
        let active_seq = cfg.segments.last().map_or(1, |s| s.seq);
        let path = segment_path(&cfg.dir, active_seq);
        let file = Arc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| StoreError::io("open segment", &path, e))?,
        );
        let segment_bytes = cfg.segment_bytes.max(1);
        let mut prealloc = Prealloc::start(&cfg.name, segment_bytes)
            .map_err(|e| StoreError::io("spawn log preallocation", "", e))?;
        prealloc
            .switch(file.clone())
            .map_err(|e| StoreError::io("stat segment", &path, e))?;
        let mut segments = cfg.segments;
        if segments.is_empty() {
            segments.push(SegmentMeta::new(active_seq));
            fsutil::sync_dir(&cfg.dir)?;
        }
        let mut state = State {
            dir: cfg.dir,
            segments,
            file,
            active_len: cfg.active_len,
            segment_bytes,
            prealloc,
            dirty: false,
            failed: None,
            last_purge: cfg.last_purge,
            last_committed: cfg.last_committed,
            purged: cfg.purged,
            fsyncs: fsyncs.clone(),
            observer: cfg.observer,
            unsynced_bytes: 0,
        };
        let (tx, rx) = mpsc::channel::<Op>();
        let handle = std::thread::Builder::new()
            .name(cfg.name)
            .spawn(move || state.run(rx))
            .map_err(|e| StoreError::io("spawn log writer", "", e))?;
        Ok(Writer {
            tx: Some(tx),
            handle: Some(handle),
            fsyncs,
        })
    }

    /// Queues an op. Fails only when the thread is gone.
    pub(crate) fn send(&self, op: Op) -> Result<(), StoreError> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| StoreError::WriterStopped("closed".to_string()))?;
        tx.send(op)
            .map_err(|_| StoreError::WriterStopped("thread exited".to_string()))
    }

    /// How many `fdatasync`s of segment data the thread has done.
    pub(crate) fn fsync_counter(&self) -> Arc<AtomicU64> {
        self.fsyncs.clone()
    }

    pub(crate) fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            if h.join().is_err() {
                tracing::error!("log writer thread panicked");
            }
        }
    }
}

/// The thread's own state.
struct State {
    dir: PathBuf,
    segments: Vec<SegmentMeta>,
    /// The active segment; records go at `active_len`, over zeros or past the end.
    file: Arc<File>,
    active_len: u64,
    /// Keeps zero-filled space ahead of `active_len`.
    prealloc: Prealloc,
    segment_bytes: u64,
    /// Written but not yet synced.
    dirty: bool,
    /// Set after an I/O error: the log's on-disk state is unknown, refuse everything.
    failed: Option<String>,
    last_purge: HashMap<GroupId, Vec<u8>>,
    last_committed: HashMap<GroupId, Vec<u8>>,
    /// Per group, the index purged so far (what may still pin old segments).
    purged: HashMap<GroupId, u64>,
    fsyncs: Arc<AtomicU64>,
    observer: Option<FlushObserver>,
    /// Bytes written since the last sync (for [`FlushInfo`]).
    unsynced_bytes: u64,
}

/// A batch being processed: bytes not yet written and completions not yet run.
#[derive(Default)]
struct Batch {
    buf: Vec<u8>,
    waiting: Vec<Done>,
    /// A purge record is in the batch: old segments may go once it is durable.
    purged: bool,
}

impl State {
    /// The thread body: batch, write, sync, complete — until every sender is gone.
    fn run(&mut self, rx: mpsc::Receiver<Op>) {
        while let Ok(first) = rx.recv() {
            let mut batch = Batch::default();
            let mut op = Some(first);
            while let Some(current) = op {
                self.process(current, &mut batch);
                op = rx.try_recv().ok();
            }
            let result = self.finish(&mut batch);
            // The purge record is durable now; drop what it made obsolete before
            // reporting, so a finished purge has freed its disk space.
            if let (Ok(()), true) = (&result, batch.purged) {
                if let Err(e) = self.delete_purged() {
                    tracing::warn!(error = %e, "could not delete purged log segments");
                }
            }
            complete(std::mem::take(&mut batch.waiting), &result);
        }
    }

    /// Adds one op to the batch (votes force a flush first).
    fn process(&mut self, op: Op, batch: &mut Batch) {
        if let Some(reason) = &self.failed {
            let err = io::Error::other(format!("log writer failed earlier: {reason}"));
            match op {
                Op::Log { done, .. } => {
                    if let Some(d) = done {
                        d(Err(err));
                    }
                }
                Op::Vote { done, .. } => done(Err(err)),
            }
            return;
        }
        match op {
            Op::Log {
                group,
                bytes,
                kind,
                done,
            } => {
                match kind {
                    LogKind::Entries(Some(max)) => {
                        if let Some(active) = self.segments.last_mut() {
                            active.note(group, max);
                        }
                    }
                    LogKind::Entries(None) | LogKind::Truncate => {}
                    LogKind::Purge(upto) => {
                        batch.purged = true;
                        self.note_purged(group, upto);
                        self.last_purge.insert(group, bytes.clone());
                    }
                    LogKind::Import {
                        max,
                        purged,
                        purge_record,
                        committed_record,
                    } => {
                        if let (Some(active), Some(max)) = (self.segments.last_mut(), max) {
                            active.note(group, max);
                        }
                        if let Some(upto) = purged {
                            self.note_purged(group, upto);
                        }
                        match purge_record {
                            Some(r) => self.last_purge.insert(group, r),
                            None => self.last_purge.remove(&group),
                        };
                        match committed_record {
                            Some(r) => self.last_committed.insert(group, r),
                            None => self.last_committed.remove(&group),
                        };
                    }
                    LogKind::Committed => {
                        self.last_committed.insert(group, bytes.clone());
                    }
                }
                batch.buf.extend_from_slice(&bytes);
                batch.waiting.extend(done);
                if self.active_len + batch.buf.len() as u64 >= self.segment_bytes {
                    if let Err(e) = self.flush(batch).and_then(|()| self.roll()) {
                        self.fail(&e);
                    }
                }
            }
            Op::Vote { path, bytes, done } => {
                let result = self.flush(batch);
                complete(std::mem::take(&mut batch.waiting), &result);
                let result = result
                    .and_then(|()| fsutil::write_atomic(&path, &bytes).map_err(io::Error::other));
                if let Err(e) = &result {
                    self.fail(e);
                }
                done(result);
            }
        }
    }

    /// Writes and syncs whatever the batch holds.
    fn flush(&mut self, batch: &mut Batch) -> io::Result<()> {
        self.write(batch)?;
        if self.dirty {
            let started = std::time::Instant::now();
            self.file.sync_data()?;
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
            self.dirty = false;
            if let Some(observe) = &self.observer {
                observe(&FlushInfo {
                    fsync: started.elapsed(),
                    bytes: self.unsynced_bytes,
                    appends: batch.waiting.len(),
                });
            }
            self.unsynced_bytes = 0;
        }
        Ok(())
    }

    /// Writes the batch's bytes without syncing them.
    fn write(&mut self, batch: &mut Batch) -> io::Result<()> {
        if let Some(reason) = &self.failed {
            return Err(io::Error::other(reason.clone()));
        }
        if !batch.buf.is_empty() {
            let end = self.active_len + batch.buf.len() as u64;
            self.prealloc.before_write(self.active_len, end);
            self.file.write_all_at(&batch.buf, self.active_len)?;
            self.active_len += batch.buf.len() as u64;
            self.unsynced_bytes += batch.buf.len() as u64;
            batch.buf.clear();
            self.dirty = true;
        }
        Ok(())
    }

    /// Ends a batch: write, and sync when anyone waits on it (or it purges); a batch of
    /// records nobody waits for (committed-index updates, which may be lost) rides on the
    /// next sync instead of costing its own. An error marks the writer failed.
    fn finish(&mut self, batch: &mut Batch) -> io::Result<()> {
        let result = if batch.waiting.is_empty() && !batch.purged {
            self.write(batch)
        } else {
            self.flush(batch)
        };
        if let Err(e) = &result {
            self.fail(e);
        }
        result
    }

    /// Starts a new segment; the last purge and committed records open it, so every
    /// segment is self-sufficient once older ones are deleted.
    fn roll(&mut self) -> io::Result<()> {
        let seq = self.segments.last().map_or(1, |s| s.seq + 1);
        let path = segment_path(&self.dir, seq);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let mut head = Vec::new();
        // Sorted by group, so a segment's head does not depend on hash order.
        let mut groups: Vec<&GroupId> = self.last_purge.keys().collect();
        groups.extend(self.last_committed.keys());
        groups.sort_unstable();
        groups.dedup();
        for g in groups {
            head.extend(self.last_purge.get(g).into_iter().flatten());
            head.extend(self.last_committed.get(g).into_iter().flatten());
        }
        file.write_all_at(&head, 0)?;
        file.sync_data()?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        fsutil::sync_dir(&self.dir).map_err(io::Error::other)?;
        self.file = Arc::new(file);
        self.prealloc.switch(self.file.clone())?;
        self.active_len = head.len() as u64;
        self.segments.push(SegmentMeta::new(seq));
        tracing::debug!(seq, "rolled to a new log segment");
        Ok(())
    }

    /// Notes that `group` has purged its log up to `upto`.
    fn note_purged(&mut self, group: GroupId, upto: u64) {
        let p = self.purged.entry(group).or_insert(upto);
        *p = (*p).max(upto);
    }

    /// Deletes the oldest segments (never the active one) in which every group's
    /// entries are purged. A group that never purges keeps the segments it wrote (and
    /// those after them) on disk: a quiet group pins old segments until it snapshots.
    fn delete_purged(&mut self) -> Result<(), StoreError> {
        let mut deleted = 0usize;
        while self.segments.len() > 1 {
            let Some(first) = self.segments.first() else {
                break;
            };
            let obsolete = first
                .max_index
                .iter()
                .all(|(g, max)| self.purged.get(g).is_some_and(|p| p >= max));
            if !obsolete {
                break;
            }
            let path = segment_path(&self.dir, first.seq);
            fs::remove_file(&path).map_err(|e| StoreError::io("delete segment", &path, e))?;
            self.segments.remove(0);
            deleted += 1;
        }
        if deleted > 0 {
            fsutil::sync_dir(&self.dir)?;
            tracing::debug!(deleted, "deleted purged log segments");
        }
        Ok(())
    }

    /// Remembers a failure: from now on every op is refused.
    fn fail(&mut self, e: &io::Error) {
        tracing::error!(error = %e, "log writer failed; refusing further writes");
        if self.failed.is_none() {
            self.failed = Some(e.to_string());
        }
    }
}

/// Runs completions with a shared result (io errors are not `Clone`, so each gets a copy).
fn complete(waiting: Vec<Done>, result: &io::Result<()>) {
    for done in waiting {
        match result {
            Ok(()) => done(Ok(())),
            Err(e) => done(Err(io::Error::new(e.kind(), e.to_string()))),
        }
    }
}
