//! Log append throughput with group commit: N concurrent appenders, each waiting for
//! its entry to be durable before appending the next (like N clients of a leader).
//!
//! `cargo run --release -p conclave-raft-store --example log_bench -- [secs] [dir] [conc...]`
//! (defaults: 5 s, a temp dir under the current directory, concurrency 1 and 50).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_commands::locks::{LockBatch, LockOp, LockRequest};
use conclave_raft_store::{Entry, EntryPayload, LogId, LogStore, DEFAULT_SEGMENT_BYTES};
use openraft::CommittedLeaderId;
use tokio::sync::oneshot;

/// A lock request that encodes to roughly 100 bytes of JSON.
fn entry(index: u64) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(LockBatch::from(LockRequest {
            now_ms: 1_700_000_000_000 + index,
            op: LockOp::Release {
                resource: b"res".to_vec(),
                owner: b"o".to_vec(),
            },
        })),
    }
}

async fn run(log: Arc<LogStore>, next: Arc<parking_lot::Mutex<u64>>, conc: usize, secs: u64) {
    let fsyncs0 = log.fsync_count();
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let tasks: Vec<_> = (0..conc)
        .map(|_| {
            let log = log.clone();
            let next = next.clone();
            let done = done.clone();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let (tx, rx) = oneshot::channel();
                    {
                        let mut n = next.lock();
                        log.append_with([entry(*n)], move |r| {
                            let _ = tx.send(r);
                        })
                        .expect("append");
                        *n += 1;
                    }
                    rx.await.expect("callback").expect("durable");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let secs = start.elapsed().as_secs_f64();
    let appends = done.load(Ordering::Relaxed);
    let fsyncs = log.fsync_count() - fsyncs0;
    println!(
        "appenders={conc:3}  appends/s={:9.0}  fsyncs/s={:7.0}  entries/fsync={:6.1}",
        appends as f64 / secs,
        fsyncs as f64 / secs,
        appends as f64 / fsyncs.max(1) as f64
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let base = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut concs: Vec<usize> = args.filter_map(|s| s.parse().ok()).collect();
    if concs.is_empty() {
        concs = vec![1, 50];
    }
    let tmp = tempfile::tempdir_in(&base).expect("temp dir");
    let log =
        Arc::new(LogStore::open(&tmp.path().join("log"), DEFAULT_SEGMENT_BYTES).expect("open"));
    let record = serde_json::to_vec(&entry(1_000_000)).expect("encode").len() + 8;
    println!("dir={}  record≈{record} bytes", tmp.path().display());
    let next = Arc::new(parking_lot::Mutex::new(1u64));
    for conc in concs {
        run(log.clone(), next.clone(), conc, secs).await;
    }
}
