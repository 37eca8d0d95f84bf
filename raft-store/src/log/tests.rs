//! Durability tests of the log store: reopen, torn tails, corruption, group commit,
//! segment rolling and purging.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use conclave_commands::locks::{LockBatch, LockOp, LockRequest};
use openraft::CommittedLeaderId;

use super::*;
use crate::types::EntryPayload;

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(LockBatch::from(LockRequest {
            now_ms: 1_000 + index,
            op: LockOp::Release {
                resource: format!("res-{index}").into_bytes(),
                owner: b"owner".to_vec(),
            },
        })),
    }
}

/// Appends and waits until durable.
async fn append(log: &LogStore, entries: Vec<Entry>) {
    let (tx, rx) = oneshot::channel();
    log.append_with(entries, move |r| {
        let _ = tx.send(r);
    })
    .unwrap();
    rx.await.unwrap().unwrap();
}

fn all(log: &LogStore) -> Vec<Entry> {
    log.reader().entries(.., usize::MAX)
}

fn indexes(log: &LogStore) -> Vec<u64> {
    all(log).iter().map(|e| e.log_id.index).collect()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn everything_survives_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    {
        let log = LogStore::open(&dir, DEFAULT_SEGMENT_BYTES).unwrap();
        append(&log, (1..=20).map(|i| entry(1, i)).collect()).await;
        log.store_vote(&Vote::new(3, 2)).await.unwrap();
        log.store_committed(Some(log_id(1, 10))).unwrap();
        log.truncate_since(15).await.unwrap();
        append(&log, (15..=17).map(|i| entry(2, i)).collect()).await;
        log.purge_upto(log_id(1, 5)).await.unwrap();
        assert_eq!(indexes(&log), (6..=17).collect::<Vec<_>>());
    }
    let log = LogStore::open(&dir, DEFAULT_SEGMENT_BYTES).unwrap();
    let expected: Vec<Entry> = (6..=14)
        .map(|i| entry(1, i))
        .chain((15..=17).map(|i| entry(2, i)))
        .collect();
    assert_eq!(all(&log), expected);
    assert_eq!(log.vote(), Some(Vote::new(3, 2)));
    assert_eq!(log.committed(), Some(log_id(1, 10)));
    let st = log.log_state();
    assert_eq!(st.last_purged_log_id, Some(log_id(1, 5)));
    assert_eq!(st.last_log_id, Some(log_id(2, 17)));
}

#[tokio::test]
async fn purge_everything_keeps_last_purged_as_last_log_id() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    {
        let log = LogStore::open(&dir, DEFAULT_SEGMENT_BYTES).unwrap();
        append(&log, (1..=3).map(|i| entry(1, i)).collect()).await;
        log.purge_upto(log_id(1, 3)).await.unwrap();
    }
    let log = LogStore::open(&dir, DEFAULT_SEGMENT_BYTES).unwrap();
    assert!(all(&log).is_empty());
    let st = log.log_state();
    assert_eq!(st.last_purged_log_id, Some(log_id(1, 3)));
    assert_eq!(st.last_log_id, Some(log_id(1, 3)));
}

#[tokio::test]
async fn torn_tail_is_cut_off() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    {
        let log = LogStore::open(&dir, DEFAULT_SEGMENT_BYTES).unwrap();
        append(&log, (1..=10).map(|i| entry(1, i)).collect()).await;
    }
    let seg = segments(&dir).pop().unwrap();
    let good_len = fs::metadata(&seg).unwrap().len();
    // Garbage after the last record, as a crash mid-write can leave.
    OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        .unwrap();
    {
        let log = LogStore::open(&dir, DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(indexes(&log), (1..=10).collect::<Vec<_>>());
        assert_eq!(fs::metadata(&seg).unwrap().len(), good_len);
        append(&log, vec![entry(1, 11)]).await;
    }
    let log = LogStore::open(&dir, DEFAULT_SEGMENT_BYTES).unwrap();
    assert_eq!(indexes(&log), (1..=11).collect::<Vec<_>>());
}

#[tokio::test]
async fn half_written_last_record_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    {
        let log = LogStore::open(&dir, DEFAULT_SEGMENT_BYTES).unwrap();
        append(&log, (1..=10).map(|i| entry(1, i)).collect()).await;
    }
    let seg = segments(&dir).pop().unwrap();
    let len = fs::metadata(&seg).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let log = LogStore::open(&dir, DEFAULT_SEGMENT_BYTES).unwrap();
    assert_eq!(indexes(&log), (1..=9).collect::<Vec<_>>());
}

#[tokio::test]
async fn corruption_in_the_middle_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    {
        let log = LogStore::open(&dir, DEFAULT_SEGMENT_BYTES).unwrap();
        append(&log, (1..=10).map(|i| entry(1, i)).collect()).await;
    }
    let seg = segments(&dir).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    // Flip a payload byte of the first record: intact records follow it.
    bytes[frame::HEADER_LEN + 3] ^= 0x55;
    fs::write(&seg, &bytes).unwrap();
    let err = LogStore::open(&dir, DEFAULT_SEGMENT_BYTES).err().unwrap();
    assert!(
        matches!(err, StoreError::Corrupt { offset: 0, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn corruption_in_an_older_segment_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    {
        // Small segments: binary entries are a few dozen bytes each.
        let log = LogStore::open(&dir, 128).unwrap();
        for i in 1..=20 {
            append(&log, vec![entry(1, i)]).await;
        }
    }
    let segs = segments(&dir);
    assert!(segs.len() > 2);
    let first = &segs[0];
    let len = fs::metadata(first).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(first)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    assert!(matches!(
        LogStore::open(&dir, 128),
        Err(StoreError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn segments_roll_and_purge_deletes_old_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    {
        let log = LogStore::open(&dir, 256).unwrap();
        for i in 1..=100 {
            append(&log, vec![entry(1, i)]).await;
        }
        log.store_committed(Some(log_id(1, 95))).unwrap();
        let before = segments(&dir).len();
        assert!(before > 5, "expected several segments, got {before}");
        log.purge_upto(log_id(1, 90)).await.unwrap();
        let after = segments(&dir).len();
        assert!(after < before / 3, "{before} -> {after}");
        // More appends roll on; the purge and committed records travel along.
        for i in 101..=150 {
            append(&log, vec![entry(1, i)]).await;
        }
        log.purge_upto(log_id(1, 140)).await.unwrap();
    }
    let log = LogStore::open(&dir, 256).unwrap();
    assert_eq!(indexes(&log), (141..=150).collect::<Vec<_>>());
    assert_eq!(log.log_state().last_purged_log_id, Some(log_id(1, 140)));
    assert_eq!(log.committed(), Some(log_id(1, 95)));
}

#[test]
fn group_commit_batches_fsyncs() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 25;
    let tmp = tempfile::tempdir().unwrap();
    let log = Arc::new(LogStore::open(&tmp.path().join("log"), DEFAULT_SEGMENT_BYTES).unwrap());
    let next_index = Arc::new(parking_lot::Mutex::new(1u64));
    let fired = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel::<u64>();

    // The first callback holds the writer until every append is queued, so the rest
    // must share fsyncs (this makes the batching deterministic).
    let (release_tx, release_rx) = mpsc::channel::<()>();
    {
        let mut next = next_index.lock();
        let fired = fired.clone();
        let done_tx = done_tx.clone();
        log.append_with(vec![entry(1, *next)], move |r| {
            r.unwrap();
            let _ = release_rx.recv();
            fired.fetch_add(1, Ordering::SeqCst);
            let _ = done_tx.send(1);
        })
        .unwrap();
        *next += 1;
    }

    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let log = log.clone();
            let next_index = next_index.clone();
            let fired = fired.clone();
            let done_tx = done_tx.clone();
            std::thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    let mut next = next_index.lock();
                    let index = *next;
                    let fired = fired.clone();
                    let done_tx = done_tx.clone();
                    log.append_with(vec![entry(1, index)], move |r| {
                        r.unwrap();
                        fired.fetch_add(1, Ordering::SeqCst);
                        let _ = done_tx.send(index);
                    })
                    .unwrap();
                    *next += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    release_tx.send(()).unwrap();
    let total = 1 + THREADS * PER_THREAD;
    let mut seen: Vec<u64> = (0..total).map(|_| done_rx.recv().unwrap()).collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=total).collect::<Vec<_>>());
    assert_eq!(fired.load(Ordering::SeqCst) as u64, total);
    let fsyncs = log.fsync_count();
    assert!(
        (1..=3).contains(&fsyncs),
        "{fsyncs} fsyncs for {total} appends"
    );
}

#[tokio::test]
async fn callbacks_never_fire_before_data_is_written() {
    // After each callback the bytes must already be in the segment file.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let log = LogStore::open(&dir, DEFAULT_SEGMENT_BYTES).unwrap();
    let seg = segments(&dir).pop().unwrap();
    for i in 1..=5 {
        let before = fs::metadata(&seg).unwrap().len();
        append(&log, vec![entry(1, i)]).await;
        assert!(fs::metadata(&seg).unwrap().len() > before);
    }
    assert_eq!(log.fsync_count(), 5);
}

#[test]
fn inverted_ranges_are_empty() {
    assert!(is_empty_range(Bound::Included(5), Bound::Excluded(5)));
    assert!(is_empty_range(Bound::Included(6), Bound::Included(5)));
    assert!(is_empty_range(Bound::Excluded(u64::MAX), Bound::Unbounded));
    assert!(!is_empty_range(Bound::Included(5), Bound::Included(5)));
    assert!(!is_empty_range(Bound::Unbounded, Bound::Unbounded));
}

#[tokio::test]
async fn the_observer_sees_every_data_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let seen = Arc::new(parking_lot::Mutex::new(Vec::<FlushInfo>::new()));
    let observer: FlushObserver = {
        let seen = seen.clone();
        Arc::new(move |info: &FlushInfo| seen.lock().push(*info))
    };
    let log = LogStore::open_observed(
        &tmp.path().join("log"),
        DEFAULT_SEGMENT_BYTES,
        Some(observer),
    )
    .unwrap();
    append(&log, (1..=3).map(|i| entry(1, i)).collect()).await;
    append(&log, vec![entry(1, 4)]).await;
    let seen = seen.lock().clone();
    assert_eq!(seen.len() as u64, log.writer.fsyncs());
    assert_eq!(seen.iter().map(|f| f.appends).sum::<usize>(), 2);
    assert!(seen.iter().all(|f| f.bytes > 0));
}

#[tokio::test]
async fn a_log_written_as_json_still_opens() {
    // Segments from before the binary format: JSON payloads, no tag byte.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    fs::create_dir_all(&dir).unwrap();
    let mut bytes = Vec::new();
    for i in 1..=3 {
        let e = entry(1, i);
        let json = serde_json::to_vec(&RecordRef::Entry(&e)).unwrap();
        frame::encode_into(&mut bytes, &json);
    }
    let committed = log_id(1, 2);
    frame::encode_into(
        &mut bytes,
        &serde_json::to_vec(&RecordRef::Committed(Some(&committed))).unwrap(),
    );
    fs::write(segment::segment_path(&dir, 1), &bytes).unwrap();
    let log = LogStore::open(&dir, DEFAULT_SEGMENT_BYTES).unwrap();
    assert_eq!(all(&log), (1..=3).map(|i| entry(1, i)).collect::<Vec<_>>());
    assert_eq!(log.committed(), Some(committed));
    // New records are binary and sit beside the old ones.
    append(&log, vec![entry(1, 4)]).await;
    drop(log);
    let log = LogStore::open(&dir, DEFAULT_SEGMENT_BYTES).unwrap();
    assert_eq!(indexes(&log), vec![1, 2, 3, 4]);
}
