//! `conclave-bench failover --timeline FILE`: what clients see of a leader failover.
//!
//! Per trial: wait for a leader, let the cluster settle, then `--clients` threads loop
//! `LOCK.ACQUIRE <fresh resource> <owner> TTL 5000` → `LOCK.RELEASE` through the two nodes
//! that will survive (followers forward to the leader); after `--before-ms` the leader is
//! SIGKILLed, and the clients go on for `--after-ms`. Every operation is counted, by its
//! completion time, in a 100 ms bucket as a success or a failure (error reply, timeout, lost
//! connection). The buckets of all trials go to the CSV file (`conclave_benches::rows::
//! TimelineRow`, `t_ms` relative to the kill); stdout gets one summary line per trial.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use conclave_benches::progress::{Counters, Progress};
use conclave_benches::rows::{append_csv, TimelineRow, BUCKET_MS};

use crate::failover::{conn, wait_leader, Cluster, FailoverArgs};

/// Lease of the benchmark's locks, ms (they are released at once; this only bounds leftovers
/// of operations whose reply was lost in the failover).
const TTL_MS: u64 = 5000;

/// One 100 ms bucket.
#[derive(Default)]
struct Bucket {
    ok: AtomicU64,
    errors: AtomicU64,
}

/// What the clients of one trial share.
struct Shared {
    trial: usize,
    start: Instant,
    buckets: Vec<Bucket>,
    stop: AtomicBool,
    /// When the leader was killed, ns after `start` (`u64::MAX` before).
    killed_ns: AtomicU64,
    /// Completion of the first success of an operation started after the kill, ns after
    /// `start` (`u64::MAX` while none).
    first_after_ns: AtomicU64,
    counters: Arc<Counters>,
}

impl Shared {
    fn ns(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.start).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Counts an operation that started at `began` and completed now.
    fn record(&self, began: Instant, ok: bool) {
        let now = Instant::now();
        let ms = now.saturating_duration_since(self.start).as_millis();
        if let Some(b) = usize::try_from(ms / BUCKET_MS as u128)
            .ok()
            .and_then(|i| self.buckets.get(i))
        {
            if ok {
                b.ok.fetch_add(1, Relaxed);
            } else {
                b.errors.fetch_add(1, Relaxed);
            }
        }
        if ok {
            self.counters.ok();
            if self.ns(began) >= self.killed_ns.load(Relaxed) {
                self.first_after_ns.fetch_min(self.ns(now), Relaxed);
            }
        } else {
            self.counters.error();
        }
    }
}

/// Runs the trials, prints a summary per trial and writes the CSV.
pub fn run(args: &FailoverArgs, path: &Path, show_progress: bool) -> Result<()> {
    ensure!(args.clients > 0, "--clients must be at least 1");
    ensure!(args.trials > 0, "--trials must be at least 1");
    ensure!(
        whole_buckets(args.before_ms) && whole_buckets(args.after_ms),
        "--before-ms and --after-ms must be multiples of {BUCKET_MS}"
    );
    let mut cluster = Cluster::start(args)?;
    let mut rows = Vec::new();
    for trial in 1..=args.trials {
        let leader = wait_leader(&cluster.nodes, Duration::from_secs(20))?;
        // Let the cluster settle so every follower is current.
        thread::sleep(Duration::from_millis(1500));
        let survivors: Vec<u16> = cluster
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| *i != leader && n.child.is_some())
            .map(|(_, n)| n.port)
            .collect();
        ensure!(!survivors.is_empty(), "no node would survive the kill");
        let killed_id = cluster.nodes[leader].id;
        let shared = run_trial(args, &mut cluster, leader, &survivors, trial, show_progress);
        let trial_rows = rows_of(&shared, args.before_ms);
        println!("{}", summary(&shared, &trial_rows, killed_id, args));
        rows.extend(trial_rows);
        cluster.restart(args, leader)?;
        thread::sleep(Duration::from_millis(1000));
    }
    drop(cluster);
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    append_csv(path, &rows)?;
    println!(
        "timeline: {} buckets of {BUCKET_MS} ms in {}",
        rows.len(),
        path.display()
    );
    Ok(())
}

/// Whether `ms` is a whole number of buckets.
fn whole_buckets(ms: u64) -> bool {
    let b = BUCKET_MS as u64;
    ms / b * b == ms
}

/// One trial: clients on `survivors`, the leader (index `leader`) killed after `before_ms`.
fn run_trial(
    args: &FailoverArgs,
    cluster: &mut Cluster,
    leader: usize,
    survivors: &[u16],
    trial: usize,
    show_progress: bool,
) -> Arc<Shared> {
    let before = Duration::from_millis(args.before_ms);
    let after = Duration::from_millis(args.after_ms);
    let n = ((args.before_ms + args.after_ms) / BUCKET_MS as u64) as usize;
    let progress = Progress::start(&format!("failover trial {trial}"), show_progress);
    let shared = Arc::new(Shared {
        trial,
        start: Instant::now(),
        buckets: (0..n).map(|_| Bucket::default()).collect(),
        stop: AtomicBool::new(false),
        killed_ns: AtomicU64::new(u64::MAX),
        first_after_ns: AtomicU64::new(u64::MAX),
        counters: progress.counters(),
    });
    let clients: Vec<_> = (0..args.clients)
        .map(|c| {
            let shared = shared.clone();
            let port = survivors[c % survivors.len()];
            thread::spawn(move || client(&shared, c, port))
        })
        .collect();
    sleep_until(shared.start + before);
    cluster.kill(leader);
    shared.killed_ns.store(shared.ns(Instant::now()), Relaxed);
    sleep_until(shared.start + before + after);
    shared.stop.store(true, Relaxed);
    for c in clients {
        let _ = c.join();
    }
    progress.finish();
    shared
}

fn sleep_until(at: Instant) {
    thread::sleep(at.saturating_duration_since(Instant::now()));
}

/// One client: acquire → release on fresh resources until told to stop.
fn client(shared: &Shared, c: usize, port: u16) {
    let owner = format!("timeline-client-{c}");
    let mut con = None;
    let mut i: u64 = 0;
    while !shared.stop.load(Relaxed) {
        let Some(con_ref) = con.as_mut() else {
            con = conn(port);
            if con.is_none() {
                thread::sleep(Duration::from_millis(50));
            }
            continue;
        };
        let res = format!("timeline-{}-{c}-{i}", shared.trial);
        i += 1;
        let began = Instant::now();
        let granted: redis::RedisResult<Option<i64>> = redis::cmd("LOCK.ACQUIRE")
            .arg(&res)
            .arg(&owner)
            .arg("TTL")
            .arg(TTL_MS)
            .query(con_ref);
        match granted {
            Ok(Some(_)) => shared.record(began, true),
            Ok(None) => {
                // A fresh resource is never busy: count it as a failure.
                shared.record(began, false);
                continue;
            }
            Err(e) => {
                shared.record(began, false);
                if broken(&e) {
                    con = None;
                }
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        }
        let began = Instant::now();
        let released: redis::RedisResult<i64> = redis::cmd("LOCK.RELEASE")
            .arg(&res)
            .arg(&owner)
            .query(con_ref);
        match released {
            Ok(_) => shared.record(began, true),
            Err(e) => {
                shared.record(began, false);
                if broken(&e) {
                    con = None;
                }
            }
        }
    }
}

/// Whether the connection is unusable after this error (a reply error leaves it usable).
fn broken(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_connection_refusal()
}

/// The buckets of a trial as CSV rows, `t_ms` relative to the kill.
fn rows_of(shared: &Shared, before_ms: u64) -> Vec<TimelineRow> {
    shared
        .buckets
        .iter()
        .enumerate()
        .map(|(i, b)| TimelineRow {
            trial: shared.trial as u32,
            t_ms: i as i64 * BUCKET_MS - before_ms as i64,
            ops: b.ok.load(Relaxed),
            errors: b.errors.load(Relaxed),
        })
        .collect()
}

/// Ops/s over the buckets with `from_ms <= t_ms < to_ms`.
fn rate(rows: &[TimelineRow], from_ms: i64, to_ms: i64) -> f64 {
    let ops: u64 = rows
        .iter()
        .filter(|r| r.t_ms >= from_ms && r.t_ms < to_ms)
        .map(|r| r.ops)
        .sum();
    ops as f64 * 1000.0 / (to_ms - from_ms).max(1) as f64
}

/// The longest run of buckets without a success from the kill on, ms.
fn longest_gap_ms(rows: &[TimelineRow]) -> i64 {
    let (mut best, mut run) = (0, 0);
    for r in rows.iter().filter(|r| r.t_ms >= 0) {
        if r.ops == 0 {
            run += BUCKET_MS;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

/// The summary line of a trial.
fn summary(shared: &Shared, rows: &[TimelineRow], killed: u64, args: &FailoverArgs) -> String {
    let killed_ns = shared.killed_ns.load(Relaxed);
    let first = shared.first_after_ns.load(Relaxed);
    let first = if first == u64::MAX || killed_ns == u64::MAX {
        "none".to_string()
    } else {
        format!("{} ms", first.saturating_sub(killed_ns) / 1_000_000)
    };
    let after = args.after_ms as i64;
    let errors: u64 = rows.iter().map(|r| r.errors).sum();
    format!(
        "trial {}: killed node {killed} (leader); before {:.0} ops/s; first success of an op started after the kill: {first}; longest gap {} ms; last second {:.0} ops/s; {errors} failed ops",
        shared.trial,
        rate(rows, -(args.before_ms as i64), 0),
        longest_gap_ms(rows),
        rate(rows, after - 1000, after),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t_ms: i64, ops: u64) -> TimelineRow {
        TimelineRow {
            trial: 1,
            t_ms,
            ops,
            errors: 0,
        }
    }

    #[test]
    fn rates_and_gaps() {
        let rows: Vec<_> = [(-200, 10), (-100, 20), (0, 0), (100, 0), (200, 5), (300, 0)]
            .iter()
            .map(|&(t, o)| row(t, o))
            .collect();
        assert_eq!(rate(&rows, -200, 0), 150.0);
        assert_eq!(longest_gap_ms(&rows), 200);
        assert_eq!(longest_gap_ms(&rows[..2]), 0);
    }
}
