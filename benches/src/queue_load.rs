//! `conclave-bench queue`: P producers and C consumers over T topics.
//!
//! - **push** mode (`--consumers 0`): producers push M-byte messages, each waiting for
//!   its reply (or for a pipeline of `--pipeline` pushes); reports msg/s and push
//!   latency p50/p99/p99.9.
//! - **end-to-end** (`--consumers C`): consumers read (`COUNT 10 BLOCK 1000`) in group
//!   `bench` and acknowledge what they got; every payload starts with its push time, so
//!   the push-to-delivery latency is measured too (producers and consumers share this
//!   process's clock).
//!
//! `--target redis` runs the same load on Redis Streams (`XADD t * p <payload>`,
//! `XREADGROUP GROUP bench <c> COUNT 10 BLOCK 1000 STREAMS t >`, `XACK`), for the
//! side-by-side figures in BENCHMARKS.md. Clients are spread over `--ports` round-robin
//! (any Conclave node accepts any `Q.*` and forwards it to the shard's leader).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use conclave_benches::progress::Progress;
use hdrhistogram::Histogram;
use redis::aio::MultiplexedConnection;
use redis::Value;

use crate::{connect, histogram, parse_ports, report};

/// Which server speaks which commands.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Conclave's `Q.PUSH` / `Q.READ` / `Q.ACK`.
    Conclave,
    /// Redis Streams: `XADD` / `XREADGROUP` / `XACK`.
    Redis,
}

/// `conclave-bench queue` flags.
#[derive(clap::Args, Debug)]
pub struct QueueArgs {
    /// Client ports of the nodes (comma-separated); clients are spread round-robin.
    #[arg(long, default_value = "6379")]
    pub ports: String,
    /// Host of the nodes.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Producers.
    #[arg(long, short = 'p', default_value_t = 50)]
    pub producers: usize,
    /// Consumers (0: push only).
    #[arg(long, short = 'c', default_value_t = 0)]
    pub consumers: usize,
    /// Topics (producer i pushes to topic i % T; consumers spread over them the same way).
    #[arg(long, short = 't', default_value_t = 16)]
    pub topics: usize,
    /// Message size in bytes.
    #[arg(long, short = 's', default_value_t = 1024)]
    pub size: usize,
    /// Pushes each producer sends before waiting for their replies.
    #[arg(long, short = 'P', default_value_t = 1)]
    pub pipeline: usize,
    /// How long to run, in seconds.
    #[arg(long, short = 'd', default_value_t = 10)]
    pub duration: u64,
    /// Server flavour.
    #[arg(long, value_enum, default_value_t = Target::Conclave)]
    pub target: Target,
    /// Topic name prefix (a fresh one per run keeps runs apart).
    #[arg(long, default_value = "bench")]
    pub prefix: String,
}

fn topic(args: &QueueArgs, i: usize) -> String {
    format!("{}-{}", args.prefix, i % args.topics.max(1))
}

/// The push command of one message.
fn push_cmd(target: Target, topic: &str, payload: &[u8]) -> redis::Cmd {
    let mut cmd = match target {
        Target::Conclave => redis::cmd("Q.PUSH"),
        Target::Redis => redis::cmd("XADD"),
    };
    match target {
        Target::Conclave => cmd.arg(topic).arg(payload),
        Target::Redis => cmd.arg(topic).arg("*").arg("p").arg(payload),
    };
    cmd
}

/// A payload of `size` bytes starting with the push time (µs since `epoch`).
fn payload(epoch: Instant, size: usize) -> Vec<u8> {
    let mut p = format!("{:020}|", epoch.elapsed().as_micros()).into_bytes();
    p.resize(size.max(p.len()), b'x');
    p
}

/// The push time (µs since the run's epoch) a payload starts with.
fn pushed_at(payload: &[u8]) -> Option<u64> {
    std::str::from_utf8(payload.get(..20)?).ok()?.parse().ok()
}

/// `(id, payload)` of each message in a read reply of either flavour.
fn read_reply(target: Target, v: &Value) -> Vec<(Vec<u8>, Vec<u8>)> {
    let bytes = |v: &Value| match v {
        Value::BulkString(b) => b.clone(),
        _ => Vec::new(),
    };
    match (target, v) {
        (Target::Conclave, Value::Array(msgs)) => msgs
            .iter()
            .filter_map(|m| match m {
                Value::Array(f) if f.len() >= 2 => Some((bytes(&f[0]), bytes(&f[1]))),
                _ => None,
            })
            .collect(),
        // [[stream, [[id, [field, value]], ...]]]
        (Target::Redis, Value::Array(streams)) => streams
            .iter()
            .filter_map(|s| match s {
                Value::Array(sv) if sv.len() == 2 => Some(&sv[1]),
                _ => None,
            })
            .flat_map(|entries| match entries {
                Value::Array(e) => e.clone(),
                _ => Vec::new(),
            })
            .filter_map(|e| match e {
                Value::Array(f) if f.len() == 2 => match &f[1] {
                    Value::Array(kv) if kv.len() == 2 => Some((bytes(&f[0]), bytes(&kv[1]))),
                    _ => None,
                },
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

async fn producer(
    args: Arc<QueueArgs>,
    i: usize,
    con: &mut MultiplexedConnection,
    epoch: Instant,
    stop: &AtomicBool,
    errors: &AtomicU64,
    counted: &conclave_benches::progress::Counters,
) -> Histogram<u64> {
    let mut h = histogram();
    let t = topic(&args, i);
    while !stop.load(Relaxed) {
        let t0 = Instant::now();
        let mut pipe = redis::pipe();
        for _ in 0..args.pipeline.max(1) {
            pipe.add_command(push_cmd(args.target, &t, &payload(epoch, args.size)));
        }
        let r: redis::RedisResult<Vec<Value>> = pipe.query_async(con).await;
        match r {
            Ok(replies) => {
                let us = t0.elapsed().as_micros() as u64;
                for reply in replies {
                    if matches!(reply, Value::ServerError(_)) {
                        errors.fetch_add(1, Relaxed);
                        counted.error();
                    } else {
                        let _ = h.record(us.max(1));
                        counted.ok();
                    }
                }
            }
            Err(_) => {
                errors.fetch_add(1, Relaxed);
                counted.error();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    h
}

async fn consumer(
    args: Arc<QueueArgs>,
    k: usize,
    con: &mut MultiplexedConnection,
    epoch: Instant,
    stop: &AtomicBool,
    errors: &AtomicU64,
) -> Histogram<u64> {
    let mut h = histogram();
    let t = topic(&args, k);
    let name = format!("c{k}");
    while !stop.load(Relaxed) {
        let read = match args.target {
            Target::Conclave => redis::cmd("Q.READ")
                .arg(&t)
                .arg("bench")
                .arg(&name)
                .arg("COUNT")
                .arg(10)
                .arg("BLOCK")
                .arg(1000)
                .to_owned(),
            Target::Redis => redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg("bench")
                .arg(&name)
                .arg("COUNT")
                .arg(10)
                .arg("BLOCK")
                .arg(1000)
                .arg("STREAMS")
                .arg(&t)
                .arg(">")
                .to_owned(),
        };
        let v: Value = match read.query_async(con).await {
            Ok(v) => v,
            Err(_) => {
                errors.fetch_add(1, Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let got = read_reply(args.target, &v);
        if got.is_empty() {
            continue;
        }
        let now = epoch.elapsed().as_micros() as u64;
        for (_, p) in &got {
            if let Some(at) = pushed_at(p) {
                let _ = h.record(now.saturating_sub(at).max(1));
            }
        }
        let mut ack = match args.target {
            Target::Conclave => redis::cmd("Q.ACK"),
            Target::Redis => redis::cmd("XACK"),
        };
        ack.arg(&t).arg("bench");
        for (id, _) in &got {
            ack.arg(id.as_slice());
        }
        if ack.query_async::<Value>(con).await.is_err() {
            errors.fetch_add(1, Relaxed);
        }
    }
    h
}

/// Runs the load and prints the report.
pub async fn run(args: QueueArgs, progress: Progress) -> Result<()> {
    let ports = parse_ports(&args.ports)?;
    anyhow::ensure!(args.producers > 0, "--producers must be at least 1");
    let args = Arc::new(args);
    if args.consumers > 0 {
        // The consumer group of every topic, reading only what this run pushes (Streams
        // need it made first; Q.READ would make it on first use, from the oldest message).
        let mut con = connect(&args.host, ports[0]).await?;
        for i in 0..args.topics.max(1) {
            let mut create = match args.target {
                Target::Conclave => redis::cmd("Q.GROUP"),
                Target::Redis => redis::cmd("XGROUP"),
            };
            create.arg("CREATE").arg(topic(&args, i)).arg("bench");
            match args.target {
                Target::Conclave => create.arg("FROM").arg("$"),
                Target::Redis => create.arg("$").arg("MKSTREAM"),
            };
            let _: redis::RedisResult<Value> = create.query_async(&mut con).await;
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let counted = progress.counters();
    let epoch = Instant::now();
    let mut consumers = Vec::new();
    for k in 0..args.consumers {
        let mut con = connect(&args.host, ports[k % ports.len()]).await?;
        let (args, stop, errors) = (args.clone(), stop.clone(), errors.clone());
        consumers.push(tokio::spawn(async move {
            consumer(args, k, &mut con, epoch, &stop, &errors).await
        }));
    }
    let started = Instant::now();
    let mut producers = Vec::new();
    for i in 0..args.producers {
        let mut con = connect(&args.host, ports[i % ports.len()]).await?;
        let (args, stop, errors, counted) =
            (args.clone(), stop.clone(), errors.clone(), counted.clone());
        producers.push(tokio::spawn(async move {
            producer(args, i, &mut con, epoch, &stop, &errors, &counted).await
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    stop.store(true, Relaxed);
    let mut pushes = histogram();
    for p in producers {
        pushes.add(p.await?)?;
    }
    let secs = started.elapsed().as_secs_f64();
    let mut delivered = histogram();
    for c in consumers {
        delivered.add(c.await?)?;
    }
    progress.finish();
    println!(
        "queue ({:?}): {} producers, {} consumers, {} topics, {}-byte messages, pipeline {}, {secs:.1} s, ports {ports:?}",
        args.target, args.producers, args.consumers, args.topics, args.size, args.pipeline
    );
    report("push", &pushes, secs);
    if args.consumers > 0 {
        report("delivered", &delivered, secs);
        println!("(delivered latency: push → delivery)");
    }
    println!("errors {}", errors.load(Relaxed));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_their_push_time_and_size() {
        let epoch = Instant::now();
        let p = payload(epoch, 1024);
        assert_eq!(p.len(), 1024);
        assert!(pushed_at(&p).is_some());
        assert_eq!(payload(epoch, 4).len(), 21);
    }

    #[test]
    fn both_read_reply_shapes() {
        let b = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let conclave = Value::Array(vec![Value::Array(vec![b("1-0"), b("x"), Value::Int(1)])]);
        assert_eq!(
            read_reply(Target::Conclave, &conclave),
            vec![(b"1-0".to_vec(), b"x".to_vec())]
        );
        let redis = Value::Array(vec![Value::Array(vec![
            b("t"),
            Value::Array(vec![Value::Array(vec![
                b("1-0"),
                Value::Array(vec![b("p"), b("y")]),
            ])]),
        ])]);
        assert_eq!(
            read_reply(Target::Redis, &redis),
            vec![(b"1-0".to_vec(), b"y".to_vec())]
        );
        assert!(read_reply(Target::Conclave, &Value::Nil).is_empty());
    }
}
