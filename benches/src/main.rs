//! `conclave-bench`: Conclave's load tool.
//!
//! - `locks`: C clients doing acquire → release cycles over R resources (R small =
//!   contention) against one or more nodes; ops/s and p50/p99/p99.9 latency per
//!   operation (hdrhistogram).
//! - `cache`: memtier_benchmark's default workload (SET:GET 1:10, 32-byte values,
//!   4 threads × 50 clients, keys `memtier-0..10M`), counting errors.
//! - `load`: writes N distinct keys (`key:%012d`) with V-byte values, for memory
//!   comparisons.
//! - `failover`: starts a 3-node cluster of a given binary, SIGKILLs the leader and
//!   measures the time to the first successful `LOCK.ACQUIRE` through a survivor,
//!   over several trials.
//!
//! Every run is bounded by its request count or duration and ends by itself.

mod failover;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use rand::Rng;
use redis::aio::MultiplexedConnection;

/// Conclave load tool.
#[derive(Parser, Debug)]
#[command(name = "conclave-bench", version, about)]
struct Cli {
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
    },
    /// memtier_benchmark's default workload.
    Cache {
        /// Client port.
        #[arg(long, default_value_t = 6379)]
        port: u16,
        /// Host.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Threads (connections are spread over them).
        #[arg(long, default_value_t = 4)]
        threads: usize,
        /// Clients per thread.
        #[arg(long, default_value_t = 50)]
        clients: usize,
        /// Requests per client.
        #[arg(long, short = 'n', default_value_t = 10_000)]
        requests: u64,
        /// Value size in bytes.
        #[arg(long, default_value_t = 32)]
        data_size: usize,
        /// GETs per SET.
        #[arg(long, default_value_t = 10)]
        gets_per_set: u64,
        /// Largest key number.
        #[arg(long, default_value_t = 10_000_000)]
        key_maximum: u64,
    },
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
        } => rt.block_on(locks(
            &host,
            &ports,
            clients,
            resources,
            Duration::from_secs(duration),
            ttl,
            wait,
        )),
        Mode::Cache {
            port,
            host,
            threads,
            clients,
            requests,
            data_size,
            gets_per_set,
            key_maximum,
        } => rt.block_on(cache(
            &host,
            port,
            threads * clients,
            requests,
            data_size,
            gets_per_set,
            key_maximum,
        )),
        Mode::Load {
            port,
            host,
            keys,
            value_size,
        } => rt.block_on(load(&host, port, keys, value_size)),
        Mode::Failover(args) => failover::run(&args),
    }
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

#[allow(clippy::too_many_arguments)]
async fn locks(
    host: &str,
    ports: &str,
    clients: usize,
    resources: u64,
    duration: Duration,
    ttl: u64,
    wait: u64,
) -> Result<()> {
    let ports: Vec<u16> = ports
        .split(',')
        .map(|p| p.trim().parse())
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(!ports.is_empty(), "no ports");
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let timeouts = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for c in 0..clients {
        let mut con = connect(host, ports[c % ports.len()]).await?;
        let (stop, errors, timeouts) = (stop.clone(), errors.clone(), timeouts.clone());
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
                    }
                    Ok(None) => {
                        timeouts.fetch_add(1, Relaxed);
                        continue;
                    }
                    Err(_) => {
                        errors.fetch_add(1, Relaxed);
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
                    }
                    Err(_) => {
                        errors.fetch_add(1, Relaxed);
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
    let secs = started.elapsed().as_secs_f64();
    println!(
        "locks: {clients} clients, {resources} resources, {:.1} s, ports {ports:?}",
        secs
    );
    report("acquire", &acq, secs);
    report("release", &rel, secs);
    println!(
        "total      {:>10.0} ops/s (acquire + release)   not-granted {}   errors {}",
        (acq.len() + rel.len()) as f64 / secs,
        timeouts.load(Relaxed),
        errors.load(Relaxed)
    );
    Ok(())
}

async fn cache(
    host: &str,
    port: u16,
    clients: usize,
    requests: u64,
    data_size: usize,
    gets_per_set: u64,
    key_maximum: u64,
) -> Result<()> {
    let value = "x".repeat(data_size);
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let mut con = connect(host, port).await?;
        let (value, errors) = (value.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let (mut sets, mut gets) = (histogram(), histogram());
            for n in 0..requests {
                let key = format!(
                    "memtier-{}",
                    rand::thread_rng().gen_range(0..key_maximum.max(1))
                );
                let t0 = Instant::now();
                let ok = if n % (gets_per_set + 1) == 0 {
                    let r: redis::RedisResult<()> = redis::cmd("SET")
                        .arg(&key)
                        .arg(&value)
                        .query_async(&mut con)
                        .await;
                    let _ = sets.record(t0.elapsed().as_micros() as u64);
                    r.is_ok()
                } else {
                    let r: redis::RedisResult<Option<Vec<u8>>> =
                        redis::cmd("GET").arg(&key).query_async(&mut con).await;
                    let _ = gets.record(t0.elapsed().as_micros() as u64);
                    r.is_ok()
                };
                if !ok {
                    errors.fetch_add(1, Relaxed);
                }
            }
            (sets, gets)
        }));
    }
    let (mut sets, mut gets) = (histogram(), histogram());
    for t in tasks {
        let (s, g) = t.await?;
        sets.add(s)?;
        gets.add(g)?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("cache: {clients} clients x {requests} requests, SET:GET 1:{gets_per_set}, {data_size}-byte values, {secs:.1} s");
    report("SET", &sets, secs);
    report("GET", &gets, secs);
    println!(
        "total      {:>10.0} ops/s   errors {}",
        (sets.len() + gets.len()) as f64 / secs,
        errors.load(Relaxed)
    );
    anyhow::ensure!(
        errors.load(Relaxed) == 0,
        "{} requests failed",
        errors.load(Relaxed)
    );
    Ok(())
}

async fn load(host: &str, port: u16, keys: u64, value_size: usize) -> Result<()> {
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
        k += batch;
    }
    println!(
        "loaded {keys} keys of {value_size} bytes in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
