//! `conclave-bench kv`: replicated writes spread over G Raft groups of a cluster, to show
//! that a node's fsyncs do not grow with the number of groups it hosts.
//!
//! The nodes must run with `--debug-kv-groups` ≥ G. Client `c` writes `DEBUG.KVSET` to
//! group `2001 + c % G` in a loop (fresh keys, V-byte values), on the node that leads that
//! group: it starts anywhere and follows `-TRYAGAIN ... leader is <id>` (node ids are
//! the positions in `--ports`, from 1, as `conclave cluster` numbers them). Before and
//! after the run it reads every node's `raft_log_fsyncs` (`INFO raft`: the `fdatasync`s
//! of the node's one log engine, all groups together), and reports writes/s, write
//! latency, and fsyncs/s per node.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use conclave_benches::progress::Progress;
use redis::aio::MultiplexedConnection;

use crate::{connect, histogram, parse_ports, report};

/// `conclave-bench kv` flags.
#[derive(clap::Args, Debug)]
pub struct KvArgs {
    /// Client ports of the nodes, node 1 first (comma-separated).
    #[arg(long, default_value = "6379")]
    pub ports: String,
    /// Host of the nodes.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Concurrent clients (each waits for its write before the next).
    #[arg(long, short = 'c', default_value_t = 64)]
    pub clients: usize,
    /// Groups to spread the clients over (ids 2001..=2000+G).
    #[arg(long, short = 'g', default_value_t = 16)]
    pub groups: u64,
    /// How long to run, in seconds.
    #[arg(long, short = 'd', default_value_t = 10)]
    pub duration: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 32)]
    pub value_size: usize,
}

/// `raft_log_fsyncs` of the node on `port`.
async fn fsyncs(host: &str, port: u16) -> Result<u64> {
    let mut con = connect(host, port).await?;
    let info: String = redis::cmd("INFO").arg("raft").query_async(&mut con).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("raft_log_fsyncs:"))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("no raft_log_fsyncs in INFO raft of port {port}"))
}

/// The leader a `-TRYAGAIN not leader; leader is <id>` names.
fn named_leader(e: &redis::RedisError) -> Option<usize> {
    let text = e.to_string();
    let (_, tail) = text.split_once("leader is ")?;
    tail.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Runs the load and prints the report.
pub async fn run(args: &KvArgs, progress: Progress) -> Result<()> {
    let ports = parse_ports(&args.ports)?;
    anyhow::ensure!(args.groups > 0, "--groups must be at least 1");
    let mut before = Vec::new();
    for &p in &ports {
        before.push(fsyncs(&args.host, p).await?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let counted = progress.counters();
    let value = vec![b'v'; args.value_size];
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let group = 2001 + c as u64 % args.groups;
        let (stop, errors, counted) = (stop.clone(), errors.clone(), counted.clone());
        let (host, ports, value) = (args.host.clone(), ports.clone(), value.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = histogram();
            let mut cons: Vec<Option<MultiplexedConnection>> = vec![None; ports.len()];
            let mut node = c % ports.len();
            let mut seq = 0u64;
            while !stop.load(Relaxed) {
                if cons[node].is_none() {
                    cons[node] = connect(&host, ports[node]).await.ok();
                }
                let Some(con) = cons[node].as_mut() else {
                    errors.fetch_add(1, Relaxed);
                    node = (node + 1) % ports.len();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let t0 = Instant::now();
                let r: redis::RedisResult<i64> = redis::cmd("DEBUG.KVSET")
                    .arg(group)
                    .arg(format!("bench-{c}-{seq}"))
                    .arg(&value)
                    .query_async(con)
                    .await;
                match r {
                    Ok(_) => {
                        let _ = h.record(t0.elapsed().as_micros() as u64);
                        counted.ok();
                        seq += 1;
                    }
                    Err(e) if e.code() == Some("TRYAGAIN") => {
                        node = named_leader(&e)
                            .and_then(|id| id.checked_sub(1))
                            .filter(|&i| i < ports.len())
                            .unwrap_or((node + 1) % ports.len());
                    }
                    Err(_) => {
                        errors.fetch_add(1, Relaxed);
                        counted.error();
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            h
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    stop.store(true, Relaxed);
    let mut writes = histogram();
    for t in tasks {
        writes.add(t.await?)?;
    }
    let secs = started.elapsed().as_secs_f64();
    let mut after = Vec::new();
    for &p in &ports {
        after.push(fsyncs(&args.host, p).await?);
    }
    progress.finish();
    println!(
        "kv: {} clients over {} groups, {}-byte values, {secs:.1} s, ports {ports:?}",
        args.clients, args.groups, args.value_size
    );
    report("KVSET", &writes, secs);
    let per_node: Vec<String> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| format!("{:.0}", a.saturating_sub(*b) as f64 / secs))
        .collect();
    let total: u64 = before.iter().zip(&after).map(|(b, a)| a - b.min(a)).sum();
    println!(
        "fsyncs/s per node [{}]  total {:.0}  writes per fsync (all nodes) {:.1}  errors {}",
        per_node.join(", "),
        total as f64 / secs,
        writes.len() as f64 / total.max(1) as f64,
        errors.load(Relaxed)
    );
    Ok(())
}
