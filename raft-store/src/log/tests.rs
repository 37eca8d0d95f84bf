//! Durability tests of the log store: reopen, torn tails, corruption, group commit,
//! segment rolling and purging.
//!
//! Why this file is long: one scenario per test, each a few lines of setup.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use openraft::CommittedLeaderId;
use serde::Serialize;

use super::*;
use crate::kv::{KvMachine, KvOp};
use crate::machine::{Batch, Stamped};
use crate::type_config::GroupId;

type Entry = crate::type_config::Entry<KvMachine>;
type EntryPayload = crate::type_config::EntryPayload<KvMachine>;
type LogStore = super::LogStore<KvMachine>;

/// A record as the layouts before the generic one wrote it: the entry inline.
#[derive(Serialize)]
enum LegacyRecord<'a> {
    Entry(&'a Entry),
    #[allow(dead_code)]
    TruncateSince(u64),
    #[allow(dead_code)]
    PurgeUpto(&'a LogId),
    Committed(Option<&'a LogId>),
}

/// A tagged record of the first shared layout.
#[derive(Serialize)]
struct LegacyTagged<'a> {
    group: GroupId,
    record: LegacyRecord<'a>,
}

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Batch::from(Stamped {
            now_ms: 1_000 + index,
            op: KvOp::Put {
                key: format!("res-{index}").into_bytes(),
                value: b"owner".to_vec(),
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

/// Where the records of segment `seg` end (zeros follow: preallocated space).
fn records_end(seg: &Path) -> u64 {
    let bytes = fs::read(seg).unwrap();
    let mut pos = 0;
    while let Decoded::Record(_, n) = frame::decode(&bytes[pos..]) {
        pos += n;
    }
    pos as u64
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
    let good_len = records_end(&seg);
    // Garbage after the last record, as a crash mid-write can leave (over the
    // preallocated zeros).
    let garbage = [0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    FileExt::write_all_at(
        &OpenOptions::new().write(true).open(&seg).unwrap(),
        &garbage,
        good_len,
    )
    .unwrap();
    {
        let log = LogStore::open(&dir, DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(indexes(&log), (1..=10).collect::<Vec<_>>());
        // The garbage is gone: zeros from the last record on.
        let bytes = fs::read(&seg).unwrap();
        assert!(bytes[good_len as usize..].iter().all(|&b| b == 0));
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
    let len = records_end(&seg);
    // The last 5 bytes of the last record never reached the disk: zeros there.
    FileExt::write_all_at(
        &OpenOptions::new().write(true).open(&seg).unwrap(),
        &[0; 5],
        len - 5,
    )
    .unwrap();
    {
        let log = LogStore::open(&dir, DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(indexes(&log), (1..=9).collect::<Vec<_>>());
    }
    // A segment written before preallocation ends at its last byte: cut inside the record.
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
async fn stale_records_behind_a_torn_tail_never_come_back() {
    // A torn write can leave a record whose start is damaged and an intact one behind
    // it; after the tail is zeroed, new records that end exactly where the stale one
    // began must not bring it back.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    {
        let log = LogStore::open(&dir, DEFAULT_SEGMENT_BYTES).unwrap();
        append(&log, (1..=10).map(|i| entry(1, i)).collect()).await;
    }
    let seg = segments(&dir).pop().unwrap();
    let end = records_end(&seg);
    let bytes = fs::read(&seg).unwrap();
    // Copy record 10 behind itself and damage the original's length field.
    let mut pos = 0usize;
    let mut last = 0usize;
    while let Decoded::Record(_, n) = frame::decode(&bytes[pos..]) {
        last = pos;
        pos += n;
    }
    let rec10 = bytes[last..end as usize].to_vec();
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    FileExt::write_all_at(&f, &rec10, end).unwrap();
    FileExt::write_all_at(&f, &[0xff, 0xff, 0xff, 0x7f], last as u64).unwrap();
    {
        let log = LogStore::open(&dir, DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(indexes(&log), (1..=9).collect::<Vec<_>>());
        // Record 10 again, of another term: exactly the old record's length.
        append(&log, vec![entry(2, 10)]).await;
    }
    let log = LogStore::open(&dir, DEFAULT_SEGMENT_BYTES).unwrap();
    assert_eq!(indexes(&log), (1..=10).collect::<Vec<_>>());
    assert_eq!(all(&log).last().unwrap().log_id, log_id(2, 10));
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
        let before = records_end(&seg);
        append(&log, vec![entry(1, i)]).await;
        assert!(records_end(&seg) > before);
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
    assert_eq!(seen.len() as u64, log.fsync_count());
    assert_eq!(seen.iter().map(|f| f.appends).sum::<usize>(), 2);
    assert!(seen.iter().all(|f| f.bytes > 0));
}

/// Writes a log in the older layout (`group-<id>/log/`, untagged JSON records, the vote
/// beside them), as nodes did before the shared log.
fn write_legacy_log(data_dir: &Path, group: GroupId, entries: u64, vote: Vote) -> LogId {
    let dir = crate::group_dir(data_dir, group).join("log");
    fs::create_dir_all(&dir).unwrap();
    let mut bytes = Vec::new();
    for i in 1..=entries {
        let e = entry(1, i);
        frame::encode_into(
            &mut bytes,
            &serde_json::to_vec(&LegacyRecord::Entry(&e)).unwrap(),
        );
    }
    let committed = log_id(1, entries - 1);
    frame::encode_into(
        &mut bytes,
        &serde_json::to_vec(&LegacyRecord::Committed(Some(&committed))).unwrap(),
    );
    fs::write(segment::segment_path(&dir, 1), &bytes).unwrap();
    let mut v = Vec::new();
    frame::encode_into(&mut v, &serde_json::to_vec(&vote).unwrap());
    fs::write(dir.join("vote"), v).unwrap();
    committed
}

#[tokio::test]
async fn a_log_in_the_older_layout_moves_into_the_shared_log() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let committed = write_legacy_log(data, 0, 3, Vote::new(4, 2));
    {
        let (log, _sm) = crate::open_group::<KvMachine>(data, 0, None).unwrap();
        assert_eq!(all(&log), (1..=3).map(|i| entry(1, i)).collect::<Vec<_>>());
        assert_eq!(log.committed(), Some(committed));
        assert_eq!(log.vote(), Some(Vote::new(4, 2)));
        assert!(
            !crate::group_dir(data, 0).join("log").exists(),
            "old directory left"
        );
        // New records go to the shared log beside the imported state.
        append(&log, vec![entry(1, 4)]).await;
    }
    let (log, _sm) = crate::open_group::<KvMachine>(data, 0, None).unwrap();
    assert_eq!(indexes(&log), vec![1, 2, 3, 4]);
    assert_eq!(log.vote(), Some(Vote::new(4, 2)));
}

#[tokio::test]
async fn an_interrupted_move_is_finished_without_importing_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    write_legacy_log(data, 0, 3, Vote::new(4, 2));
    let legacy = crate::group_dir(data, 0).join("log");
    let backup = tmp.path().join("backup");
    fs::create_dir_all(&backup).unwrap();
    for f in fs::read_dir(&legacy).unwrap() {
        let f = f.unwrap().path();
        fs::copy(&f, backup.join(f.file_name().unwrap())).unwrap();
    }
    {
        let (log, _sm) = crate::open_group::<KvMachine>(data, 0, None).unwrap();
        append(&log, vec![entry(2, 4)]).await;
        log.truncate_since(4).await.unwrap();
        append(&log, vec![entry(3, 4)]).await;
    }
    // As if the node died after the import but before the old directory and vote moved.
    fs::rename(&backup, &legacy).unwrap();
    fs::remove_file(crate::group_dir(data, 0).join("vote")).unwrap();
    let (log, _sm) = crate::open_group::<KvMachine>(data, 0, None).unwrap();
    // The shared log's state wins; the vote is moved again; the old directory goes.
    assert_eq!(all(&log).last(), Some(&entry(3, 4)));
    assert_eq!(indexes(&log), vec![1, 2, 3, 4]);
    assert_eq!(log.vote(), Some(Vote::new(4, 2)));
    assert!(!legacy.exists());
}

#[tokio::test]
async fn groups_share_one_flush_and_keep_their_own_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let groups = 16u64;
    {
        let engine = crate::open_engine(data, &crate::StoreOptions::default()).unwrap();
        let logs: Vec<Arc<LogStore>> = (0..groups)
            .map(|g| {
                Arc::new(
                    engine
                        .open_group::<KvMachine>(g, &crate::group_dir(data, g))
                        .unwrap(),
                )
            })
            .collect();
        assert!(matches!(
            engine.open_group::<KvMachine>(3, &crate::group_dir(data, 3)),
            Err(StoreError::GroupAlreadyOpen(3))
        ));
        let before = engine.fsync_count();
        // Every group appends 20 entries, each waiting for its own to be durable.
        let tasks: Vec<_> = logs
            .iter()
            .map(|log| {
                let log = log.clone();
                tokio::spawn(async move {
                    for i in 1..=20 {
                        append(&log, vec![entry(1, i)]).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let fsyncs = engine.fsync_count() - before;
        assert!(
            fsyncs < groups * 20,
            "{fsyncs} fsyncs for {} appends: the groups did not share flushes",
            groups * 20
        );
        logs[5].store_vote(&Vote::new(7, 5)).await.unwrap();
        logs[9].truncate_since(11).await.unwrap();
    }
    let engine = crate::open_engine(data, &crate::StoreOptions::default()).unwrap();
    for g in 0..groups {
        let log = engine
            .open_group::<KvMachine>(g, &crate::group_dir(data, g))
            .unwrap();
        let want: Vec<u64> = if g == 9 {
            (1..=10).collect()
        } else {
            (1..=20).collect()
        };
        assert_eq!(indexes(&log), want, "group {g}");
        assert_eq!(log.vote(), (g == 5).then(|| Vote::new(7, 5)), "group {g}");
    }
}

#[tokio::test]
async fn a_segment_stays_while_any_group_still_needs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("raft-log");
    let engine = LogEngine::open(&dir, 256, None).unwrap();
    let a = engine
        .open_group::<KvMachine>(1, &tmp.path().join("a"))
        .unwrap();
    let b = engine
        .open_group::<KvMachine>(2, &tmp.path().join("b"))
        .unwrap();
    append(&b, vec![entry(1, 1)]).await;
    for i in 1..=60 {
        append(&a, vec![entry(1, i)]).await;
    }
    let before = segments(&dir).len();
    assert!(before > 5, "{before} segments");
    // Group a purges everything, but b's entry 1 pins the first segment, and with it
    // every later one (segments go oldest first).
    a.purge_upto(log_id(1, 60)).await.unwrap();
    assert_eq!(segments(&dir).len(), before);
    b.purge_upto(log_id(1, 1)).await.unwrap();
    let after = segments(&dir).len();
    assert!(after <= 2, "{before} -> {after}");
    drop((a, b));
    // Both groups' purges survive the deletion (segment heads repeat them).
    let engine = LogEngine::open(&dir, 256, None).unwrap();
    let a = engine
        .open_group::<KvMachine>(1, &tmp.path().join("a"))
        .unwrap();
    assert_eq!(a.log_state().last_purged_log_id, Some(log_id(1, 60)));
    assert!(indexes(&a).is_empty());
}

/// The first shared layout wrote records as the binary tag and postcard of
/// `{group, record}` with the entry payload inline; a node upgraded from it keeps its
/// log.
#[tokio::test]
async fn records_of_the_first_binary_layout_still_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("raft-log");
    fs::create_dir_all(&dir).unwrap();
    let mut bytes = Vec::new();
    for i in 1..=3 {
        let e = entry(1, i);
        let payload = crate::encoding::encode(&LegacyTagged {
            group: 0,
            record: LegacyRecord::Entry(&e),
        })
        .unwrap();
        frame::encode_into(&mut bytes, &payload);
    }
    let committed = log_id(1, 2);
    let payload = crate::encoding::encode(&LegacyTagged {
        group: 0,
        record: LegacyRecord::Committed(Some(&committed)),
    })
    .unwrap();
    frame::encode_into(&mut bytes, &payload);
    fs::write(segment::segment_path(&dir, 1), &bytes).unwrap();
    {
        let (log, _sm) = crate::open_group::<KvMachine>(tmp.path(), 0, None).unwrap();
        assert_eq!(all(&log), (1..=3).map(|i| entry(1, i)).collect::<Vec<_>>());
        assert_eq!(log.committed(), Some(committed));
        append(&log, vec![entry(1, 4)]).await;
    }
    let (log, _sm) = crate::open_group::<KvMachine>(tmp.path(), 0, None).unwrap();
    assert_eq!(all(&log), (1..=4).map(|i| entry(1, i)).collect::<Vec<_>>());
}
