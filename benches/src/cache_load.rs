//! `conclave-bench cache`: a GET/SET load on one server or spread over a cluster's nodes.
//!
//! Defaults are memtier_benchmark's workload (SET:GET 1:10, 32-byte values, 200 clients,
//! keys `memtier-0..10M` uniform). For the cluster-wide cache (contract 2.1):
//!
//! - `--ports 7001,7002,7003`: clients are spread round-robin over the nodes' ports
//!   (cluster mode); `--port` alone is one server (a redis-server as reference, too);
//! - `--zipf S`: keys drawn from a Zipf distribution of exponent `S` over
//!   `0..key-maximum` (rank 0 most popular; an exact inverse-CDF table), else uniform;
//! - `--read-percent P`: P % GETs, the rest SETs, drawn at random per request (instead of
//!   `--gets-per-set`);
//! - `--prefill`: SET every key once first (so GETs hit), spread over the ports;
//! - `--duration S`: run S seconds instead of `--requests` per client.
//!
//! The report: ops/s, p50/p99/p99.9 per command, the share of GETs that found a value,
//! and — when the servers answer `CACHE.STATS` with the coherence counters — the local
//! hit rate (requests served without asking another node: 1 − remote_reads / ops) and
//! the coherence messages (sent by all nodes) per operation, both over the measured run
//! only (counters read before and after).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use conclave_benches::progress::Progress;
use rand::Rng;

use crate::{connect, histogram, parse_ports, report};

/// `conclave-bench cache` options.
#[derive(Args, Debug, Clone)]
pub struct CacheArgs {
    /// Client port (one server).
    #[arg(long, default_value_t = 6379)]
    port: u16,
    /// Client ports of a cluster's nodes, comma-separated: clients are spread over them
    /// (overrides `--port`).
    #[arg(long)]
    ports: Option<String>,
    /// Host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Threads (connections are spread over them).
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Clients per thread.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Requests per client (unless `--duration`).
    #[arg(long, short = 'n', default_value_t = 10_000)]
    requests: u64,
    /// Run this many seconds instead of a request count.
    #[arg(long, short = 'd')]
    duration: Option<u64>,
    /// Value size in bytes.
    #[arg(long, default_value_t = 32)]
    data_size: usize,
    /// GETs per SET (unless `--read-percent`).
    #[arg(long, default_value_t = 10)]
    gets_per_set: u64,
    /// Percentage of GETs (the rest are SETs), drawn per request.
    #[arg(long)]
    read_percent: Option<f64>,
    /// Number of keys (keys are `memtier-0` .. `memtier-<n-1>`).
    #[arg(long, default_value_t = 10_000_000)]
    key_maximum: u64,
    /// Zipf exponent of the key distribution (uniform without it).
    #[arg(long)]
    zipf: Option<f64>,
    /// SET every key once before the measured run.
    #[arg(long)]
    prefill: bool,
}

/// Draws key numbers: uniform, or Zipf by binary search in the cumulative weights.
enum Keys {
    Uniform(u64),
    Zipf(Arc<Vec<f64>>),
}

impl Keys {
    fn new(n: u64, zipf: Option<f64>) -> Keys {
        match zipf {
            None => Keys::Uniform(n.max(1)),
            Some(s) => {
                let mut cdf = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
                let mut total = 0.0;
                for rank in 1..=n.max(1) {
                    total += 1.0 / (rank as f64).powf(s);
                    cdf.push(total);
                }
                for c in &mut cdf {
                    *c /= total;
                }
                Keys::Zipf(Arc::new(cdf))
            }
        }
    }

    fn draw(&self, rng: &mut impl Rng) -> u64 {
        match self {
            Keys::Uniform(n) => rng.gen_range(0..*n),
            Keys::Zipf(cdf) => {
                let u: f64 = rng.gen();
                cdf.partition_point(|c| *c < u).min(cdf.len() - 1) as u64
            }
        }
    }

    fn share(&self) -> Self {
        match self {
            Keys::Uniform(n) => Keys::Uniform(*n),
            Keys::Zipf(cdf) => Keys::Zipf(cdf.clone()),
        }
    }
}

/// The ports to spread clients over.
fn ports(args: &CacheArgs) -> Result<Vec<u16>> {
    match &args.ports {
        None => Ok(vec![args.port]),
        Some(list) => parse_ports(list),
    }
}

/// Sum over the servers of the `CACHE.STATS` fields `remote_reads` and
/// `coherence_messages_sent`; `None` if a server lacks them (redis-server).
async fn coherence_counters(host: &str, ports: &[u16]) -> Option<(u64, u64)> {
    let mut total = (0, 0);
    for &port in ports {
        let mut con = connect(host, port).await.ok()?;
        let v: redis::Value = redis::cmd("CACHE.STATS").query_async(&mut con).await.ok()?;
        let pairs: Vec<(String, redis::Value)> = match v {
            redis::Value::Map(m) => m
                .into_iter()
                .filter_map(|(k, v)| match k {
                    redis::Value::BulkString(b) => Some((String::from_utf8_lossy(&b).into(), v)),
                    _ => None,
                })
                .collect(),
            redis::Value::Array(items) => items
                .chunks(2)
                .filter_map(|kv| match (&kv[0], kv.get(1)) {
                    (redis::Value::BulkString(b), Some(v)) => {
                        Some((String::from_utf8_lossy(b).into(), v.clone()))
                    }
                    _ => None,
                })
                .collect(),
            _ => return None,
        };
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| match v {
                    redis::Value::Int(i) => u64::try_from(*i).ok(),
                    _ => None,
                })
        };
        total.0 += get("remote_reads")?;
        total.1 += get("coherence_messages_sent")?;
    }
    Some(total)
}

/// Connections that prefill the keys.
const PREFILL_CONNECTIONS: usize = 24;

/// Runs the load and prints the report.
pub async fn run(args: &CacheArgs, progress: Progress) -> Result<()> {
    let ports = ports(args)?;
    let clients = args.threads * args.clients;
    let value = "x".repeat(args.data_size);
    let keys = Keys::new(args.key_maximum, args.zipf);
    if args.prefill {
        prefill(args, &ports, &value).await?;
    }
    let before = coherence_counters(&args.host, &ports).await;
    let errors = Arc::new(AtomicU64::new(0));
    let found = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let counted = progress.counters();
    for c in 0..clients {
        let mut con = connect(&args.host, ports[c % ports.len()]).await?;
        let (value, errors, found, stop) =
            (value.clone(), errors.clone(), found.clone(), stop.clone());
        let keys = keys.share();
        let counted = counted.clone();
        let (requests, gets_per_set, read_percent) =
            (args.requests, args.gets_per_set, args.read_percent);
        let timed = args.duration.is_some();
        tasks.push(tokio::spawn(async move {
            let (mut sets, mut gets) = (histogram(), histogram());
            let mut n = 0u64;
            loop {
                if timed {
                    if stop.load(Relaxed) {
                        break;
                    }
                } else if n >= requests {
                    break;
                }
                let (key, read) = {
                    let mut rng = rand::thread_rng();
                    let read = match read_percent {
                        Some(p) => rng.gen::<f64>() * 100.0 < p,
                        None => !n.is_multiple_of(gets_per_set + 1),
                    };
                    (format!("memtier-{}", keys.draw(&mut rng)), read)
                };
                n += 1;
                let t0 = Instant::now();
                let ok = if read {
                    let r: redis::RedisResult<Option<Vec<u8>>> =
                        redis::cmd("GET").arg(&key).query_async(&mut con).await;
                    let _ = gets.record(t0.elapsed().as_micros() as u64);
                    if matches!(r, Ok(Some(_))) {
                        found.fetch_add(1, Relaxed);
                    }
                    r.is_ok()
                } else {
                    let r: redis::RedisResult<()> = redis::cmd("SET")
                        .arg(&key)
                        .arg(&value)
                        .query_async(&mut con)
                        .await;
                    let _ = sets.record(t0.elapsed().as_micros() as u64);
                    r.is_ok()
                };
                if ok {
                    counted.ok();
                } else {
                    errors.fetch_add(1, Relaxed);
                    counted.error();
                }
            }
            (sets, gets)
        }));
    }
    if let Some(secs) = args.duration {
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.store(true, Relaxed);
    }
    let (mut sets, mut gets) = (histogram(), histogram());
    for t in tasks {
        let (s, g) = t.await?;
        sets.add(s)?;
        gets.add(g)?;
    }
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    let after = coherence_counters(&args.host, &ports).await;
    let ops = sets.len() + gets.len();
    let mix = match args.read_percent {
        Some(p) => format!("{p}% GET"),
        None => format!("SET:GET 1:{}", args.gets_per_set),
    };
    let dist = match args.zipf {
        Some(s) => format!("Zipf {s}"),
        None => "uniform".into(),
    };
    println!(
        "cache: {clients} clients over {} port(s), {mix}, {} keys {dist}, {}-byte values, {secs:.1} s",
        ports.len(),
        args.key_maximum,
        args.data_size
    );
    report("SET", &sets, secs);
    report("GET", &gets, secs);
    let all = {
        let mut h = histogram();
        h.add(&sets)?;
        h.add(&gets)?;
        h
    };
    report("all", &all, secs);
    println!(
        "total      {:>10.0} ops/s   errors {}   GETs that found a value {:.1}%",
        ops as f64 / secs,
        errors.load(Relaxed),
        100.0 * found.load(Relaxed) as f64 / gets.len().max(1) as f64
    );
    match (before, after) {
        (Some(b), Some(a)) => println!(
            "coherence  local hit rate {:.2}%   messages/op {:.4}   remote requests {}   messages {}",
            100.0 * (1.0 - (a.0 - b.0) as f64 / ops.max(1) as f64),
            (a.1 - b.1) as f64 / ops.max(1) as f64,
            a.0 - b.0,
            a.1 - b.1
        ),
        _ => println!("coherence  n/a (the server has no coherence counters)"),
    }
    anyhow::ensure!(
        errors.load(Relaxed) == 0,
        "{} requests failed",
        errors.load(Relaxed)
    );
    Ok(())
}

/// SETs every key once, pipelined, over [`PREFILL_CONNECTIONS`] connections spread over
/// the ports.
async fn prefill(args: &CacheArgs, ports: &[u16], value: &str) -> Result<()> {
    let per_port = args.key_maximum.div_ceil(PREFILL_CONNECTIONS as u64);
    let mut tasks = Vec::new();
    for i in 0..PREFILL_CONNECTIONS {
        let port = ports[i % ports.len()];
        let mut con = connect(&args.host, port).await?;
        let value = value.to_string();
        let from = per_port * i as u64;
        let to = (from + per_port).min(args.key_maximum);
        tasks.push(tokio::spawn(async move {
            let mut k = from;
            while k < to {
                let mut pipe = redis::pipe();
                for n in k..(k + 1000).min(to) {
                    pipe.cmd("SET")
                        .arg(format!("memtier-{n}"))
                        .arg(&value)
                        .ignore();
                }
                pipe.query_async::<()>(&mut con).await?;
                k += 1000;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// `conclave-bench shared-write` options.
#[derive(Args, Debug, Clone)]
pub struct SharedWriteArgs {
    /// Client ports of the nodes: the first writes, the others read first (sharers).
    #[arg(long)]
    ports: String,
    /// Host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Rounds (each: every other node reads the key, then the first writes it).
    #[arg(long, short = 'n', default_value_t = 2000)]
    rounds: u64,
}

/// The latency of a write to a key every node holds a copy of (contract 2.1: one round
/// trip to the home plus the invalidations, sent in parallel): each round the other
/// nodes `GET` the key (so they share it), then the first node `SET`s it, timed.
pub async fn shared_write(args: &SharedWriteArgs) -> Result<()> {
    let ports = parse_ports(&args.ports)?;
    anyhow::ensure!(ports.len() >= 2, "give at least two ports");
    let mut cons = Vec::new();
    for &port in &ports {
        cons.push(connect(&args.host, port).await?);
    }
    let mut h = histogram();
    for round in 0..args.rounds {
        let key = format!("shared-{}", round % 16);
        for con in cons.iter_mut().skip(1) {
            let _: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query_async(con).await?;
        }
        let t0 = Instant::now();
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(round)
            .query_async(&mut cons[0])
            .await?;
        let _ = h.record(t0.elapsed().as_micros() as u64);
    }
    println!(
        "shared-write: {} rounds, {} sharers then a SET on port {}",
        args.rounds,
        ports.len() - 1,
        ports[0]
    );
    println!(
        "SET to a key shared by every node: p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.value_at_quantile(0.999) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
    Ok(())
}
