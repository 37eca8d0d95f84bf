//! `conclave-bench`: Conclave's load tool.
//!
//! - `locks`: C clients doing acquire → release cycles over R resources (R small =
//!   contention) against one or more nodes; ops/s and p50/p99/p99.9 latency per
//!   operation (hdrhistogram).
//! - `cache`: memtier_benchmark's default workload (SET:GET 1:10, 32-byte values,
//!   4 threads × 50 clients, keys `memtier-0..10M`), counting errors; or, with `--ports`,
//!   `--zipf`, `--read-percent`, a load spread over a cluster's nodes that also reports
//!   the hit rate and coherence messages per operation (`cache_load.rs`).
//! - `shared-write`: the latency of a SET to a key every node of a cluster shares.
//! - `load`: writes N distinct keys (`key:%012d`) with V-byte values, for memory
//!   comparisons.
//! - `failover`: starts a 3-node cluster of a given binary, SIGKILLs the leader and
//!   measures the time to the first successful `LOCK.ACQUIRE` through a survivor,
//!   over several trials; with `--timeline FILE`, clients keep acquiring and releasing
//!   through the survivors across the kill and their successes per 100 ms go to a CSV.
//!
//! - `queue`: P producers and C consumers over T topics (`Q.*`, or Redis Streams with
//!   `--target redis`): msg/s, push latency and push-to-delivery latency.
//! - `kv`: C clients writing `DEBUG.KVSET` over G debug kv Raft groups
//!   (`--debug-kv-groups`), with every node's fsyncs per second before and after: the
//!   fsync count must not grow with the groups.
//!
//! `locks --csv FILE` appends its figures as a CSV line (`conclave_benches::rows`), for
//! `conclave-plots`. While a run lasts, a progress line a second goes to stderr (ops/s so
//! far, errors; `--quiet` turns it off); the report goes to stdout.
//!
//! Every run is bounded by its request count or duration and ends by itself.

mod cache_load;
mod failover;
mod kv_load;
mod queue_load;
mod timeline;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use conclave_benches::progress::Progress;
use conclave_benches::rows::{append_csv, LocksRow};
use hdrhistogram::Histogram;
use redis::aio::MultiplexedConnection;

/// Conclave load tool.
#[derive(Parser, Debug)]
#[command(name = "conclave-bench", version, about)]
struct Cli {
    /// No progress line on stderr.
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Acquire → release cycles.
    Locks {
        /// Client ports to spread clients over (comma-separated).
        #[arg(long, default_value = "6379")]
        ports: String,
        /// Host of the nodes.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Concurrent clients.
        #[arg(long, short = 'c', default_value_t = 50)]
        clients: usize,
        /// Distinct resources (small = contention).
        #[arg(long, short = 'r', default_value_t = 100_000)]
        resources: u64,
        /// How long to run, in seconds.
        #[arg(long, short = 'd', default_value_t = 10)]
        duration: u64,
        /// Lease TTL in ms.
        #[arg(long, default_value_t = 10_000)]
        ttl: u64,
        /// Wait for a contended lock up to this many ms.
        #[arg(long, default_value_t = 10_000)]
        wait: u64,
        /// Also append the figures as a CSV line to this file (header written when new).
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// A GET/SET load: memtier_benchmark's default workload, or a cluster-wide one
    /// (`--ports`, `--zipf`, `--read-percent`; see `cache_load`).
    Cache(cache_load::CacheArgs),
    /// The latency of a write to a key every node shares.
    SharedWrite(cache_load::SharedWriteArgs),
    /// Writes N distinct keys.
    Load {
        /// Client port.
        #[arg(long, default_value_t = 6379)]
        port: u16,
        /// Host.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Number of keys.
        #[arg(long, default_value_t = 1_000_000)]
        keys: u64,
        /// Value size in bytes.
        #[arg(long, default_value_t = 32)]
        value_size: usize,
    },
    /// Leader failover time of a 3-node cluster.
    Failover(failover::FailoverArgs),
    /// Replicated writes over G debug kv groups; fsyncs per second per node.
    Kv(kv_load::KvArgs),
    /// Queue producers and consumers: msg/s, push and push-to-delivery latency.
    Queue(queue_load::QueueArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.mode {
        Mode::Locks {
            ports,
            host,
            clients,
            resources,
            duration,
            ttl,
            wait,
            csv,
        } => rt.block_on(locks(
            &LocksRun {
                host,
                ports,
                clients,
                resources,
                duration: Duration::from_secs(duration),
                ttl,
                wait,
                csv,
            },
            Progress::start("locks", !cli.quiet),
        )),
        Mode::Cache(args) => {
            rt.block_on(cache_load::run(&args, Progress::start("cache", !cli.quiet)))
        }
        Mode::SharedWrite(args) => rt.block_on(cache_load::shared_write(&args)),
        Mode::Load {
            port,
            host,
            keys,
            value_size,
        } => rt.block_on(load(
            &host,
            port,
            keys,
            value_size,
            Progress::start("load", !cli.quiet),
        )),
        Mode::Kv(args) => rt.block_on(kv_load::run(&args, Progress::start("kv", !cli.quiet))),
        Mode::Queue(args) => {
            rt.block_on(queue_load::run(args, Progress::start("queue", !cli.quiet)))
        }
        Mode::Failover(args) => match &args.timeline {
            Some(path) => timeline::run(&args, path, !cli.quiet),
            None => failover::run(&args),
        },
    }
}

/// A `--ports` list (`7001,7002,7003`) as port numbers; at least one.
fn parse_ports(list: &str) -> Result<Vec<u16>> {
    let ports: Vec<u16> = list
        .split(',')
        .map(|p| p.trim().parse())
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad --ports {list:?}"))?;
    anyhow::ensure!(!ports.is_empty(), "no ports");
    Ok(ports)
}

async fn connect(host: &str, port: u16) -> Result<MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://{host}:{port}/"))?;
    client
        .get_multiplexed_async_connection()
        .await
        .with_context(|| format!("connect {host}:{port}"))
}

/// A latency histogram in microseconds, 1 µs .. 60 s, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant bounds are valid")
}

/// A quantile of a microsecond histogram, in ms.
fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn report(name: &str, h: &Histogram<u64>, secs: f64) {
    println!(
        "{name:<10} {:>10} ops  {:>10.0} ops/s  p50 {:>8.3} ms  p99 {:>8.3} ms  p99.9 {:>8.3} ms  max {:>8.3} ms",
        h.len(),
        h.len() as f64 / secs,
        h.value_at_quantile(0.50) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.value_at_quantile(0.999) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
    );
}

/// What `locks` runs.
struct LocksRun {
    host: String,
    /// Comma-separated client ports.
    ports: String,
    clients: usize,
    resources: u64,
    duration: Duration,
    /// Lease, ms.
    ttl: u64,
    /// Longest wait for a contended lock, ms.
    wait: u64,
    csv: Option<PathBuf>,
}

async fn locks(run: &LocksRun, progress: Progress) -> Result<()> {
    let LocksRun {
        ref host,
        ref ports,
        clients,
        resources,
        duration,
        ttl,
        wait,
        ref csv,
    } = *run;
    let ports = parse_ports(ports)?;
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let timeouts = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let started = Instant::now();
    let counted = progress.counters();
    for c in 0..clients {
        let mut con = connect(host, ports[c % ports.len()]).await?;
        let (stop, errors, timeouts) = (stop.clone(), errors.clone(), timeouts.clone());
        let counted = counted.clone();
        tasks.push(tokio::spawn(async move {
            let (mut acq, mut rel) = (histogram(), histogram());
            let owner = format!("bench-client-{c}");
            let mut i: u64 = c as u64;
            while !stop.load(Relaxed) {
                let res = format!("bench-res-{}", i % resources);
                i = i.wrapping_add(clients as u64 * 7919);
                let t0 = Instant::now();
                let token: redis::RedisResult<Option<i64>> = redis::cmd("LOCK.ACQUIRE")
                    .arg(&res)
                    .arg(&owner)
                    .arg("TTL")
                    .arg(ttl)
                    .arg("WAIT")
                    .arg(wait)
                    .query_async(&mut con)
                    .await;
                let t1 = Instant::now();
                match token {
                    Ok(Some(_)) => {
                        let _ = acq.record((t1 - t0).as_micros() as u64);
                        counted.ok();
                    }
                    Ok(None) => {
                        timeouts.fetch_add(1, Relaxed);
                        continue;
                    }
                    Err(_) => {
                        errors.fetch_add(1, Relaxed);
                        counted.error();
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                }
                let released: redis::RedisResult<i64> = redis::cmd("LOCK.RELEASE")
                    .arg(&res)
                    .arg(&owner)
                    .query_async(&mut con)
                    .await;
                match released {
                    Ok(_) => {
                        let _ = rel.record(t1.elapsed().as_micros() as u64);
                        counted.ok();
                    }
                    Err(_) => {
                        errors.fetch_add(1, Relaxed);
                        counted.error();
                    }
                }
            }
            (acq, rel)
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Relaxed);
    let (mut acq, mut rel) = (histogram(), histogram());
    for t in tasks {
        let (a, r) = t.await?;
        acq.add(a)?;
        rel.add(r)?;
    }
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "locks: {clients} clients, {resources} resources, {:.1} s, ports {ports:?}",
        secs
    );
    report("acquire", &acq, secs);
    report("release", &rel, secs);
    let ops_per_sec = (acq.len() + rel.len()) as f64 / secs;
    println!(
        "total      {:>10.0} ops/s (acquire + release)   not-granted {}   errors {}",
        ops_per_sec,
        timeouts.load(Relaxed),
        errors.load(Relaxed)
    );
    if let Some(path) = csv {
        let row = LocksRow {
            clients: clients as u64,
            resources,
            duration_s: secs,
            ops_per_sec,
            acquires_per_sec: acq.len() as f64 / secs,
            acquire_p50_ms: ms(&acq, 0.50),
            acquire_p99_ms: ms(&acq, 0.99),
            acquire_p999_ms: ms(&acq, 0.999),
            release_p99_ms: ms(&rel, 0.99),
            not_granted: timeouts.load(Relaxed),
            errors: errors.load(Relaxed),
        };
        append_csv(path, &[row])?;
    }
    Ok(())
}

async fn load(
    host: &str,
    port: u16,
    keys: u64,
    value_size: usize,
    progress: Progress,
) -> Result<()> {
    let counted = progress.counters();
    let mut con = connect(host, port).await?;
    let value = vec![b'v'; value_size];
    let started = Instant::now();
    let batch = 1000;
    let mut k = 0;
    while k < keys {
        let mut pipe = redis::pipe();
        for i in k..(k + batch).min(keys) {
            pipe.cmd("SET")
                .arg(format!("key:{i:012}"))
                .arg(&value)
                .ignore();
        }
        let _: () = pipe.query_async(&mut con).await?;
        counted.ok_n((k + batch).min(keys) - k);
        k += batch;
    }
    progress.finish();
    println!(
        "loaded {keys} keys of {value_size} bytes in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
