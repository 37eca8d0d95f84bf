//! Shared flushes across Raft groups: the same total load (N appenders, each waiting
//! for its entry to be durable before appending the next) spread over G groups of one
//! node's log engine. With one writer and one `fdatasync` per round for every group,
//! fsyncs per second should not grow with G.
//!
//! `cargo run --release -p conclave-raft-store --example groups_bench -- [secs] [appenders] [groups...]`
//! (defaults: 5 s, 64 appenders, groups 1 and 16). With `SEPARATE=1` every group gets an
//! engine (a writer and segment files) of its own, as before the shared log, for
//! comparison.

#[path = "bench_support/mod.rs"]
mod bench_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_support::{run_appenders, Target};
use conclave_raft_store::{group_dir, open_engine, StoreOptions};

/// Runs `appenders` over `groups` groups for `secs`; prints appends/s and fsyncs/s.
async fn run(groups: u64, appenders: usize, secs: u64, separate: bool) {
    let tmp = tempfile::tempdir_in(".").expect("temp dir");
    let shared = open_engine(tmp.path(), &StoreOptions::default()).expect("engine");
    let logs: Vec<Target> = (0..groups)
        .map(|g| {
            let engine = if separate {
                let dir = tmp.path().join(format!("engine-{g}"));
                open_engine(&dir, &StoreOptions::default()).expect("engine")
            } else {
                shared.clone()
            };
            let log = engine
                .open_group::<conclave_raft_store::kv::KvMachine>(g, &group_dir(tmp.path(), g))
                .expect("group");
            (Arc::new(log), Arc::new(parking_lot::Mutex::new(1u64)))
        })
        .collect();
    let fsync_total = || -> u64 {
        let mut engines: Vec<_> = logs.iter().map(|(l, _)| l.engine().clone()).collect();
        engines.dedup_by(|a, b| Arc::ptr_eq(a, b));
        engines.iter().map(|e| e.fsync_count()).sum()
    };
    let fsyncs0 = fsync_total();
    let start = Instant::now();
    let appends = run_appenders(&logs, appenders, start + Duration::from_secs(secs)).await;
    let secs = start.elapsed().as_secs_f64();
    let fsyncs = fsync_total() - fsyncs0;
    let layout = if separate { "separate" } else { "shared" };
    println!(
        "{layout:8}  groups={groups:3}  appenders={appenders:3}  appends/s={:8.0}  fsyncs/s={:6.0}  appends/fsync={:6.1}",
        appends as f64 / secs,
        fsyncs as f64 / secs,
        appends as f64 / fsyncs.max(1) as f64
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let appenders: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    let mut groups: Vec<u64> = args.filter_map(|s| s.parse().ok()).collect();
    if groups.is_empty() {
        groups = vec![1, 16];
    }
    let separate = std::env::var("SEPARATE").is_ok_and(|v| v == "1");
    for g in groups {
        run(g.max(1), appenders, secs, separate).await;
    }
}
