//! Log append throughput with group commit: N concurrent appenders, each waiting for
//! its entry to be durable before appending the next (like N clients of a leader).
//!
//! `cargo run --release -p conclave-raft-store --example log_bench -- [secs] [dir] [conc...]`
//! (defaults: 5 s, a temp dir under the current directory, concurrency 1 and 50).

#[path = "bench_support/mod.rs"]
mod bench_support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_support::LogStore;
use bench_support::{entry, run_appenders};
use conclave_raft_store::DEFAULT_SEGMENT_BYTES;

async fn run(log: Arc<LogStore>, next: Arc<parking_lot::Mutex<u64>>, conc: usize, secs: u64) {
    let fsyncs0 = log.fsync_count();
    let start = Instant::now();
    let appends = run_appenders(
        &[(log.clone(), next)],
        conc,
        start + Duration::from_secs(secs),
    )
    .await;
    let secs = start.elapsed().as_secs_f64();
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
    let record = postcard::to_allocvec(&entry(1_000_000))
        .expect("encode")
        .len()
        + 9;
    println!("dir={}  record≈{record} bytes", tmp.path().display());
    let next = Arc::new(parking_lot::Mutex::new(1u64));
    for conc in concs {
        run(log.clone(), next.clone(), conc, secs).await;
    }
}
