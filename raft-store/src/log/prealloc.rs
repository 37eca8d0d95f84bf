//! Zero-filled space ahead of the log writer, so its `fdatasync`s carry data only.
//!
//! An `fdatasync` after an append that grew the file must also commit the new file size
//! and block allocation: on ext4 that is a journal commit, and on this project's VM
//! disk it made a small synced write cost about 3× a synced write over blocks the file
//! already had (`dd oflag=dsync bs=4k`: 1.0-2.3 ms appending against 0.2-0.6 ms over a
//! zero-filled file). Databases avoid it the same way: etcd preallocates its WAL
//! segments, RocksDB recycles log files.
//!
//! A helper thread keeps a window of zero-filled, synced space ahead of the writer's
//! position in the active segment: [`Prealloc::before_write`] asks for the next chunk
//! when the space left falls below [`LOW_WATER`], and the thread writes zeros and syncs
//! them (committing the size) while the writer goes on. The writer never writes into
//! the range a zero-fill is working on: it waits for it instead (only when it outruns
//! the thread, at a new segment's start). Writing past the filled space is still
//! correct, only slower (the sync then commits the size as before).
//!
//! Recovery sees the zeros as the end of a segment (a record's length is never 0).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

/// Bytes zero-filled per request.
pub(crate) const CHUNK: u64 = 4 << 20;
/// The writer asks for the next chunk when less than this is left ahead of it.
pub(crate) const LOW_WATER: u64 = 2 << 20;
/// At a segment's start the first chunk begins this far past the write position, so the
/// first writes (the segment head, a few records) need not wait for it.
const SLACK: u64 = 256 << 10;
/// Zeros written per `pwrite`.
const ZEROS: usize = 1 << 20;

/// One zero-fill: `[from, to)` of the file of generation `gen`.
struct Job {
    file: Arc<File>,
    gen: u64,
    from: u64,
    to: u64,
}

#[derive(Debug, Default)]
struct State {
    /// Bumped for each new active file; a finished job of an older one is ignored.
    gen: u64,
    /// Zero-filled and synced up to here in the current file.
    filled: u64,
    /// The zero-fill in progress in the current file: `[from, to)`.
    busy: Option<(u64, u64)>,
    /// The thread has failed: stop asking (writes past `filled` are merely slower).
    failed: bool,
}

/// The zero-filling helper thread of one log writer.
pub(crate) struct Prealloc {
    state: Arc<(Mutex<State>, Condvar)>,
    tx: Option<mpsc::Sender<Job>>,
    handle: Option<JoinHandle<()>>,
    file: Option<Arc<File>>,
    /// Never fill past this offset (the size at which the writer rolls to a new segment).
    limit: u64,
}

impl Prealloc {
    /// Starts the thread; nothing is filled until [`switch`](Self::switch).
    pub(crate) fn start(name: &str, limit: u64) -> io::Result<Prealloc> {
        let state = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let (tx, rx) = mpsc::channel::<Job>();
        let shared = state.clone();
        let handle = std::thread::Builder::new()
            .name(format!("{name}-prealloc"))
            .spawn(move || run(rx, shared))?;
        Ok(Prealloc {
            state,
            tx: Some(tx),
            handle: Some(handle),
            file: None,
            limit,
        })
    }

    /// Makes `file` the file being written; its current length (everything in it is
    /// either records or zeros, whose size was synced) counts as filled.
    pub(crate) fn switch(&mut self, file: Arc<File>) -> io::Result<()> {
        let len = file.metadata()?.len();
        let (lock, _) = &*self.state;
        let mut st = lock.lock();
        st.gen += 1;
        st.filled = len;
        st.busy = None;
        self.file = Some(file);
        Ok(())
    }

    /// Called before the writer writes `[pos, end)`: waits if a zero-fill is working on
    /// that range, and asks for the next chunk when the filled space runs low.
    pub(crate) fn before_write(&self, pos: u64, end: u64) {
        let Some(file) = &self.file else { return };
        let (lock, cvar) = &*self.state;
        let mut st = lock.lock();
        while let Some((from, to)) = st.busy {
            if end <= from || pos >= to {
                break;
            }
            cvar.wait(&mut st);
        }
        if st.failed || st.busy.is_some() || st.filled >= end.saturating_add(LOW_WATER) {
            return;
        }
        let from = if st.filled >= end {
            st.filled
        } else {
            end.saturating_add(SLACK)
        };
        let to = from.saturating_add(CHUNK).min(self.limit);
        if from >= to {
            return;
        }
        let job = Job {
            file: file.clone(),
            gen: st.gen,
            from,
            to,
        };
        if let Some(tx) = &self.tx {
            if tx.send(job).is_ok() {
                st.busy = Some((from, to));
            }
        }
    }
}

impl Drop for Prealloc {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            if h.join().is_err() {
                tracing::error!("log preallocation thread panicked");
            }
        }
    }
}

/// The thread body: fill each requested range, sync, publish.
fn run(rx: mpsc::Receiver<Job>, state: Arc<(Mutex<State>, Condvar)>) {
    let zeros = vec![0u8; ZEROS];
    while let Ok(job) = rx.recv() {
        let result = fill(&job, &zeros);
        let (lock, cvar) = &*state;
        let mut st = lock.lock();
        if st.gen == job.gen {
            st.busy = None;
            match result {
                Ok(()) => st.filled = st.filled.max(job.to),
                Err(e) => {
                    tracing::warn!(error = %e, "could not preallocate log space; syncs will commit the file size");
                    st.failed = true;
                }
            }
        }
        cvar.notify_all();
    }
}

/// Writes zeros over `[from, to)` of the job's file and syncs them.
fn fill(job: &Job, zeros: &[u8]) -> io::Result<()> {
    let mut at = job.from;
    while at < job.to {
        let n = (job.to - at).min(zeros.len() as u64) as usize;
        job.file.write_all_at(zeros.get(..n).unwrap_or(zeros), at)?;
        at += n as u64;
    }
    job.file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &std::path::Path) -> Arc<File> {
        Arc::new(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .unwrap(),
        )
    }

    #[test]
    fn fills_ahead_and_never_over_written_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = open(&path);
        let mut p = Prealloc::start("test", 64 << 20).unwrap();
        p.switch(file.clone()).unwrap();
        // Write 12 MB of 0xAB in 100 KB pieces, each announced first.
        let piece = vec![0xABu8; 100 << 10];
        let mut pos = 0u64;
        while pos < 12 << 20 {
            let end = pos + piece.len() as u64;
            p.before_write(pos, end);
            file.write_all_at(&piece, pos).unwrap();
            pos = end;
        }
        drop(p);
        let data = std::fs::read(&path).unwrap();
        assert!(data.len() as u64 > pos, "space was filled ahead");
        assert!(
            data[..pos as usize].iter().all(|&b| b == 0xAB),
            "a zero-fill overwrote data"
        );
        assert!(data[pos as usize..].iter().all(|&b| b == 0));
        assert!(data.len() as u64 <= 64 << 20);
    }

    #[test]
    fn stops_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = open(&path);
        let mut p = Prealloc::start("test", 1 << 20).unwrap();
        p.switch(file).unwrap();
        p.before_write(0, 10);
        drop(p);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20);
    }
}
