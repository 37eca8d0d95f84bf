//! `conclave-bench failover`: SIGKILL the leader of a 3-node cluster, time the first
//! successful `LOCK.ACQUIRE` through a survivor; repeat, report each trial and the
//! median. With `--queue-topic T`: kill the leader of T's queue shard instead and time
//! the first successful `Q.PUSH T`. The cluster helpers here also serve the `--timeline` mode (`crate::timeline`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;

/// Options of the failover measurement.
#[derive(Args, Debug)]
pub struct FailoverArgs {
    /// The conclave binary to run.
    #[arg(long, default_value = "target/release/conclave")]
    binary: PathBuf,
    /// Number of trials.
    #[arg(long, default_value_t = 5)]
    pub trials: usize,
    /// Client port of node 1 (nodes use base, base+1, base+2; cluster ports +10000,
    /// HTTP ports +1000).
    #[arg(long, default_value_t = 7301)]
    base_port: u16,
    /// Timeline mode: clients keep acquiring and releasing locks through the survivors
    /// while the leader is killed; their successes and failures per 100 ms go to this CSV
    /// file (replaced), one line per bucket and trial.
    #[arg(long)]
    pub timeline: Option<PathBuf>,
    /// Timeline mode: concurrent clients, spread over the two nodes that survive.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Timeline mode: how long the clients run before the kill, in ms.
    #[arg(long, default_value_t = 2000)]
    pub before_ms: u64,
    /// Timeline mode: how long they run after it, in ms.
    #[arg(long, default_value_t = 4000)]
    pub after_ms: u64,
    /// Queue mode: kill the leader of this topic's queue shard (per `Q.INFO`) and time
    /// the first successful `Q.PUSH` to the topic through a survivor.
    #[arg(long)]
    pub queue_topic: Option<String>,
    /// Extra flags for every node.
    #[arg(last = true)]
    node_args: Vec<String>,
}

/// One node of the cluster; killed when dropped.
pub struct Node {
    /// Node id (1..=3).
    pub id: u64,
    /// Client port.
    pub port: u16,
    /// The process, `None` once killed.
    pub child: Option<Child>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts node `id` of the cluster with its data in `dir`.
pub fn spawn(args: &FailoverArgs, dir: &std::path::Path, id: u64, peers: &str) -> Result<Child> {
    let port = args.base_port + id as u16 - 1;
    Command::new(&args.binary)
        .args(["--id", &id.to_string(), "--port", &port.to_string()])
        .args([
            "--cluster-port",
            &(port + 10000).to_string(),
            "--peers",
            peers,
        ])
        .arg("--data-dir")
        .arg(dir.join(format!("node-{id}")))
        .args(&args.node_args)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("spawn {}", args.binary.display()))
}

/// A connection to a node on 127.0.0.1 (300 ms to connect, 5 s per reply).
pub fn conn(port: u16) -> Option<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let con = client
        .get_connection_with_timeout(Duration::from_millis(300))
        .ok()?;
    con.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    Some(con)
}

fn role(port: u16) -> Option<String> {
    let mut con = conn(port)?;
    let info: String = redis::cmd("INFO").arg("raft").query(&mut con).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("raft_role:"))
        .map(|r| r.trim().to_string())
}

/// The index in `nodes` of the live node that calls itself leader.
pub fn wait_leader(nodes: &[Node], timeout: Duration) -> Result<usize> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        for (i, n) in nodes.iter().enumerate() {
            if n.child.is_some() && role(n.port).as_deref() == Some("leader") {
                return Ok(i);
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    bail!("no leader within {timeout:?}")
}

/// A 3-node cluster in a temporary directory (removed on drop, after the nodes).
pub struct Cluster {
    /// The nodes, by id - 1.
    pub nodes: Vec<Node>,
    /// Parent of the data directories.
    pub dir: PathBuf,
    /// The `--peers` value.
    pub peers: String,
}

impl Cluster {
    /// Starts three nodes of `args.binary`.
    pub fn start(args: &FailoverArgs) -> Result<Cluster> {
        let dir = std::env::temp_dir().join(format!("conclave-failover-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let peers = (1..=3u64)
            .map(|id| format!("{id}@127.0.0.1:{}", args.base_port + id as u16 - 1 + 10000))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            nodes: Vec::new(),
            dir,
            peers,
        };
        for id in 1..=3u64 {
            let child = spawn(args, &cluster.dir, id, &cluster.peers)?;
            cluster.nodes.push(Node {
                id,
                port: args.base_port + id as u16 - 1,
                child: Some(child),
            });
        }
        Ok(cluster)
    }

    /// SIGKILLs node `i` (an index into `nodes`) and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes.get_mut(i).and_then(|n| n.child.take()) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts node `i` again on its data directory.
    pub fn restart(&mut self, args: &FailoverArgs, i: usize) -> Result<()> {
        let Some(node) = self.nodes.get_mut(i) else {
            bail!("no node {i}");
        };
        node.child = Some(spawn(args, &self.dir, node.id, &self.peers)?);
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The index in `nodes` of the leader of `topic`'s queue shard, per `Q.INFO` on a live
/// node.
fn wait_shard_leader(nodes: &[Node], topic: &str, timeout: Duration) -> Result<usize> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        for n in nodes.iter().filter(|n| n.child.is_some()) {
            let Some(mut con) = conn(n.port) else {
                continue;
            };
            // The topic exists once pushed to (Q.INFO of an unknown topic is an error).
            let _: redis::RedisResult<String> =
                redis::cmd("Q.PUSH").arg(topic).arg("hello").query(&mut con);
            let info: redis::RedisResult<Vec<redis::Value>> =
                redis::cmd("Q.INFO").arg(topic).query(&mut con);
            let info = match info {
                Ok(info) => info,
                Err(_) => continue,
            };
            let leader = info.chunks(2).find_map(|kv| match kv {
                [redis::Value::BulkString(k), redis::Value::Int(id)] if k == b"leader" => {
                    Some(*id as usize)
                }
                _ => None,
            });
            if let Some(i) = leader.and_then(|id| id.checked_sub(1)) {
                if nodes.get(i).is_some_and(|n| n.child.is_some()) {
                    return Ok(i);
                }
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    bail!("no leader of {topic}'s shard within {timeout:?}")
}

/// One attempt of the operation that shows the service is back.
fn succeeds(con: &mut redis::Connection, args: &FailoverArgs, trial: usize) -> bool {
    match &args.queue_topic {
        Some(topic) => redis::cmd("Q.PUSH")
            .arg(topic)
            .arg(format!("failover-{trial}"))
            .query::<String>(con)
            .is_ok(),
        None => matches!(
            redis::cmd("LOCK.ACQUIRE")
                .arg(format!("failover-{trial}"))
                .arg("bench")
                .arg("TTL")
                .arg(1000)
                .query::<Option<i64>>(con),
            Ok(Some(_))
        ),
    }
}

/// Runs the trials and prints the results.
pub fn run(args: &FailoverArgs) -> Result<()> {
    let mut cluster = Cluster::start(args)?;
    let mut times = Vec::new();
    for trial in 1..=args.trials {
        let leader = match &args.queue_topic {
            Some(topic) => {
                wait_leader(&cluster.nodes, Duration::from_secs(20))?;
                wait_shard_leader(&cluster.nodes, topic, Duration::from_secs(20))?
            }
            None => wait_leader(&cluster.nodes, Duration::from_secs(20))?,
        };
        // Let the cluster settle so every follower is current.
        thread::sleep(Duration::from_millis(1500));
        cluster.kill(leader);
        let t0 = Instant::now();
        let survivors: Vec<u16> = cluster
            .nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
            .collect();
        let mut took = None;
        'outer: while t0.elapsed() < Duration::from_secs(30) {
            for &port in &survivors {
                if let Some(mut con) = conn(port) {
                    if succeeds(&mut con, args, trial) {
                        took = Some(t0.elapsed());
                        break 'outer;
                    }
                }
            }
        }
        let took = took.context("no acquire or push succeeded within 30 s")?;
        let what = if args.queue_topic.is_some() {
            "push"
        } else {
            "acquire"
        };
        println!(
            "trial {trial}: killed node {} -> first {what} after {} ms",
            cluster.nodes[leader].id,
            took.as_millis()
        );
        times.push(took);
        cluster.restart(args, leader)?;
        thread::sleep(Duration::from_millis(1000));
    }
    drop(cluster);
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "failover median of {}: {} ms",
        times.len(),
        median.as_millis()
    );
    Ok(())
}
