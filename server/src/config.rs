//! Command-line and environment configuration.
//!
//! Flags carry the names of the matching Redis config parameters where one exists
//! (`--port`, `--bind`, `--requirepass`, `--maxmemory`, ...). Every flag can also be
//! given as an environment variable `CONCLAVE_<NAME>` (e.g. `CONCLAVE_PORT=7001`).
//! With no flags at all the node listens on 127.0.0.1:6379 as a one-member cluster.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Most `--queue-shards` (every shard is a Raft group with its own heartbeats).
pub const MAX_QUEUE_SHARDS: i64 = 256;

/// Most `--debug-kv-groups` a node hosts (every group heartbeats on its own, so a few
/// hundred already cost a core on a small machine).
pub const MAX_DEBUG_KV_GROUPS: u64 = 256;

/// Conclave: distributed locks, queues and a coherent cache behind the Redis protocol.
#[derive(Parser, Debug, Clone)]
#[command(name = "conclave", version, about, long_about = None, disable_version_flag = true)]
pub struct Cli {
    /// Print the version (`-v`, `-V` or `--version`, as `redis-server -v`).
    #[arg(short = 'v', long = "version", visible_short_alias = 'V', action = clap::ArgAction::Version)]
    pub version: Option<bool>,
    /// Run a helper instead of a node.
    #[command(subcommand)]
    pub command: Option<Tool>,
    /// Node settings (used when no subcommand is given).
    #[command(flatten)]
    pub node: NodeConfig,
}

/// Subcommands beside running a node.
#[derive(Subcommand, Debug, Clone)]
pub enum Tool {
    /// Start a local N-node cluster as child processes on 127.0.0.1.
    Cluster(LocalClusterConfig),
    /// Send PING to a node and exit 0 on PONG (a health check for containers).
    Ping(PingConfig),
}

/// How a node is run.
#[derive(Args, Debug, Clone)]
pub struct NodeConfig {
    /// Address to listen on for clients (and for peers on the cluster port).
    #[arg(long, env = "CONCLAVE_BIND", default_value = "127.0.0.1")]
    pub bind: String,

    /// Client port (RESP).
    #[arg(long, env = "CONCLAVE_PORT", default_value_t = 6379)]
    pub port: u16,

    /// Password clients must give with AUTH or HELLO AUTH before anything else.
    #[arg(long, env = "CONCLAVE_REQUIREPASS")]
    pub requirepass: Option<String>,

    /// Memory limit for the cache keyspace in bytes (suffixes kb, mb, gb; 0 = unbounded).
    #[arg(long, env = "CONCLAVE_MAXMEMORY", default_value = "0", value_parser = parse_memory)]
    pub maxmemory: u64,

    /// What to do at maxmemory: allkeys-lru, volatile-lru, allkeys-random or noeviction.
    #[arg(long, env = "CONCLAVE_MAXMEMORY_POLICY", default_value = "allkeys-lru")]
    pub maxmemory_policy: String,

    /// Maximum number of simultaneous client connections.
    #[arg(long, env = "CONCLAVE_MAXCLIENTS", default_value_t = 10_000)]
    pub maxclients: usize,

    /// Largest bulk string a client may send, in bytes (suffixes kb, mb, gb).
    #[arg(long, env = "CONCLAVE_PROTO_MAX_BULK_LEN", default_value = "512mb", value_parser = parse_memory)]
    pub proto_max_bulk_len: u64,

    /// Close client connections idle for this many seconds (0 = never).
    #[arg(long, env = "CONCLAVE_TIMEOUT", default_value_t = 0)]
    pub timeout: u64,

    /// Background task frequency per second (active expiry, lease expiry checks).
    #[arg(long, env = "CONCLAVE_HZ", default_value_t = 10)]
    pub hz: u32,

    /// Worker threads serving clients and peers (0: one per CPU core). Several nodes
    /// sharing a machine (a local cluster, a benchmark) run faster with fewer each: on 2
    /// cores, three nodes with 1 thread each did about 1.3x the lock ops/s of 2 each.
    #[arg(long, env = "CONCLAVE_THREADS", default_value_t = 0)]
    pub threads: usize,

    /// This node's id in the cluster (a positive integer, unique per member).
    #[arg(long, env = "CONCLAVE_ID", default_value_t = 1)]
    pub id: u64,

    /// Directory for the Raft log, vote and snapshots; one node process per directory
    /// (it holds `<dir>/LOCK` while it runs).
    #[arg(long, env = "CONCLAVE_DATA_DIR", default_value = "conclave-data")]
    pub data_dir: PathBuf,

    /// RDB snapshot rules of the cache keyspace, as Redis's `save`: "<seconds> <changes>"
    /// pairs (a background save when, for one pair, that many changes were made and
    /// that many seconds passed since the last save); "" (the default) saves only on
    /// SAVE/BGSAVE. Refused on a cluster of several nodes (the coherence layer owns the
    /// values there).
    #[arg(long, env = "CONCLAVE_SAVE", default_value = "")]
    pub save: String,

    /// Directory of the RDB snapshot file (default: --data-dir).
    #[arg(long, env = "CONCLAVE_DIR")]
    pub dir: Option<PathBuf>,

    /// File name of the RDB snapshot, loaded at start when it exists (one node only).
    #[arg(long, env = "CONCLAVE_DBFILENAME", default_value = "dump.rdb")]
    pub dbfilename: String,

    /// Internal addresses of all initial members, itself included: `1@host:port,2@host:port`.
    /// Empty: a one-member cluster that works at once.
    #[arg(long, env = "CONCLAVE_PEERS", default_value = "")]
    pub peers: String,

    /// Internal cluster port (Raft, forwarding); default: client port + 10000.
    #[arg(long, env = "CONCLAVE_CLUSTER_PORT")]
    pub cluster_port: Option<u16>,

    /// HTTP port for Prometheus metrics, `/health` and the dashboard; default: client
    /// port + 1000; 0 turns it off.
    #[arg(long, env = "CONCLAVE_METRICS_PORT")]
    pub metrics_port: Option<u16>,

    /// Shared secret peers must present on the cluster port.
    #[arg(long, env = "CONCLAVE_CLUSTER_SECRET")]
    pub cluster_secret: Option<String>,

    /// How long a LOCK.* command waits for a Raft leader before -CLUSTERDOWN, in ms.
    #[arg(long, env = "CONCLAVE_NO_LEADER_WAIT", default_value_t = 2000)]
    pub no_leader_wait: u64,

    /// Lease of a cached copy of a key on a node of a cluster, in ms (contract 2.1,
    /// "Partitions"): a node cut off from a key's home stops serving its copy this long
    /// after it last heard from the home, and a write waits at most this long for a
    /// silent sharer.
    #[arg(long, env = "CONCLAVE_CACHE_LEASE_MS", default_value_t = 2000)]
    pub cache_lease_ms: u64,

    /// Test only: plants a bug in the cache's coherence driver so a test can show its
    /// checker catches it. `reply-before-invalidation`: a write on a shared copy is
    /// applied here and answered without the home invalidating the other copies.
    #[arg(long, env = "CONCLAVE_CACHE_PLANTED_BUG", hide = true)]
    pub cache_planted_bug: Option<String>,

    /// Lease of LOCK.ACQUIRE without TTL, in ms.
    #[arg(long, env = "CONCLAVE_LOCK_DEFAULT_TTL", default_value_t = 30_000)]
    pub lock_default_ttl: u64,

    /// Queue shards (Raft groups of the queue service), set when the cluster is created
    /// and kept in the meta group (a node started later with another value uses the
    /// recorded one).
    #[arg(long, env = "CONCLAVE_QUEUE_SHARDS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=MAX_QUEUE_SHARDS))]
    pub queue_shards: u32,

    /// Replicas of each queue shard (at most the number of nodes: with fewer nodes,
    /// every node holds every shard).
    #[arg(long, env = "CONCLAVE_QUEUE_REPLICAS", default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(1..=7))]
    pub queue_replicas: u64,

    /// How long a message read with Q.READ stays invisible to the rest of its group
    /// when VISIBILITY is not given, in ms.
    #[arg(long, env = "CONCLAVE_QUEUE_VISIBILITY", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub queue_visibility: u64,

    /// Q.NACK redelivery delay after the first delivery, in ms; doubles with each
    /// further delivery, at most 60000 ms.
    #[arg(long, env = "CONCLAVE_QUEUE_BACKOFF_BASE", default_value_t = 1000)]
    pub queue_backoff_base: u64,

    /// Deliveries after which an unacknowledged message moves to <topic>:dlq (0: never).
    #[arg(long, env = "CONCLAVE_QUEUE_MAX_DELIVERIES", default_value_t = 20)]
    pub queue_max_deliveries: u32,

    /// How long a Q.PUSH DEDUP id is remembered, in ms (0: dedup off).
    #[arg(long, env = "CONCLAVE_QUEUE_DEDUP_WINDOW", default_value_t = 120_000)]
    pub queue_dedup_window: u64,

    /// Messages a topic may retain before Q.PUSH answers -OOM (0: unbounded).
    #[arg(long, env = "CONCLAVE_QUEUE_MAX_LEN", default_value_t = 0)]
    pub queue_max_len: u64,

    /// Payload bytes the queue shards of this node may retain before Q.PUSH answers -OOM
    /// (0: no limit). Checked by each shard's leader, about once a second.
    #[arg(long, env = "CONCLAVE_QUEUE_MAX_MEMORY", default_value_t = 0)]
    pub queue_max_memory: u64,

    /// Free bytes on the data directory's filesystem below which Q.PUSH answers -OOM
    /// (0: no limit), so a filling disk refuses messages before it stops the Raft log.
    #[arg(long, env = "CONCLAVE_QUEUE_MIN_FREE_DISK", default_value_t = 256 << 20)]
    pub queue_min_free_disk: u64,

    /// How long a Lua script may run, in ms, before other clients' keyspace commands
    /// are answered -BUSY and SCRIPT KILL may stop it (Redis's busy-reply-threshold,
    /// alias lua-time-limit; 0 = never).
    #[arg(long, env = "CONCLAVE_BUSY_REPLY_THRESHOLD", default_value_t = 5000)]
    pub busy_reply_threshold: u64,

    /// Raft heartbeat interval in ms.
    #[arg(long, env = "CONCLAVE_HEARTBEAT_INTERVAL", default_value_t = 75)]
    pub heartbeat_interval: u64,

    /// Raft election timeout (lower bound) in ms; the upper bound is twice this.
    #[arg(long, env = "CONCLAVE_ELECTION_TIMEOUT", default_value_t = 300)]
    pub election_timeout: u64,

    /// How long the meta group's leader goes without an answer from a node before it
    /// marks it `down` (`MEMBER.LIST`, the cache ring), in ms.
    #[arg(long, env = "CONCLAVE_NODE_TIMEOUT", default_value_t = 3000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub node_timeout: u64,

    /// Testing aid: also host N Raft groups of a replicated byte-string map (ids 2001..=2000+N,
    /// same members as the lock group, on the same log), served by `DEBUG.KVSET` and
    /// `DEBUG.KVGET`; 0 (the default) hosts none. For multi-group tests and benchmarks.
    #[arg(long, env = "CONCLAVE_DEBUG_KV_GROUPS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=MAX_DEBUG_KV_GROUPS))]
    pub debug_kv_groups: u64,

    /// Set by `conclave cluster` on the nodes it starts: its own pid. The node stops when that
    /// process, its parent, exits (see `supervised`). Internal, so hidden and not read from the
    /// environment, which every process below would inherit.
    #[arg(long, hide = true)]
    pub supervisor_pid: Option<u32>,
}

/// `conclave cluster`: a local multi-node cluster.
#[derive(Args, Debug, Clone)]
pub struct LocalClusterConfig {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u16,
    /// Client port of node 1; node i listens on base + i - 1.
    #[arg(long, default_value_t = 7001)]
    pub base_port: u16,
    /// Cluster port of node 1; node i uses base + i - 1.
    #[arg(long, default_value_t = 17001)]
    pub base_cluster_port: u16,
    /// Parent directory of the nodes' data directories (node-1, node-2, ...).
    #[arg(long, default_value = "conclave-cluster")]
    pub data_dir: PathBuf,
    /// Extra flags passed to every node, e.g. `-- --maxmemory 100mb`.
    #[arg(last = true)]
    pub node_args: Vec<String>,
}

/// `conclave ping`: a RESP health check.
#[derive(Args, Debug, Clone)]
pub struct PingConfig {
    /// Host to connect to.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to connect to.
    #[arg(long, env = "CONCLAVE_PORT", default_value_t = 6379)]
    pub port: u16,
    /// Password, if the node requires one.
    #[arg(long, env = "CONCLAVE_REQUIREPASS")]
    pub password: Option<String>,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub timeout_ms: u64,
}

/// One initial member of the cluster, from `--peers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Node id.
    pub id: u64,
    /// Internal (cluster-port) address, `host:port`.
    pub addr: String,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A `--peers` item is not `id@host:port`.
    #[error("invalid --peers entry '{0}': expected id@host:port")]
    BadPeer(String),
    /// `--peers` does not name this node.
    #[error("--peers does not contain this node's --id {0}")]
    SelfNotInPeers(u64),
    /// Two peers share an id.
    #[error("--peers names id {0} twice")]
    DuplicatePeer(u64),
    /// Node id 0 is reserved.
    #[error("--id must be a positive integer")]
    ZeroId,
    /// Unknown eviction policy.
    #[error("invalid --maxmemory-policy '{0}'")]
    BadPolicy(String),
    /// The client port is too high to derive a cluster port from.
    #[error(
        "--port {0} leaves no room for the default cluster port (port + 10000); set --cluster-port"
    )]
    NoClusterPort(u16),
    /// `--port` too high for the default metrics port.
    #[error(
        "--port {0} leaves no room for the default metrics port (port + 1000); set --metrics-port"
    )]
    NoMetricsPort(u16),
    /// `--save` is not "<seconds> <changes>" pairs.
    #[error("invalid --save '{0}': {1}")]
    BadSave(String, String),
    /// `--save` on a cluster of several nodes.
    #[error("--save '{0}': {1}")]
    SaveOnCluster(String, &'static str),
    /// `--dbfilename` names a path.
    #[error("invalid --dbfilename '{0}': dbfilename can't be a path, just a filename")]
    BadDbFilename(String),
}

impl NodeConfig {
    /// The port peers connect to.
    pub fn cluster_port(&self) -> Result<u16, ConfigError> {
        match self.cluster_port {
            Some(p) => Ok(p),
            None => self
                .port
                .checked_add(10_000)
                .ok_or(ConfigError::NoClusterPort(self.port)),
        }
    }

    /// The HTTP (metrics, health, dashboard) listen address text, `bind:metrics_port`;
    /// `None` when `--metrics-port 0` turned it off.
    pub fn metrics_addr(&self) -> Result<Option<String>, ConfigError> {
        let port = match self.metrics_port {
            Some(0) => return Ok(None),
            Some(p) => p,
            None => self
                .port
                .checked_add(1_000)
                .ok_or(ConfigError::NoMetricsPort(self.port))?,
        };
        Ok(Some(format!("{}:{port}", self.bind)))
    }

    /// The initial members; a one-member list of this node when `--peers` is empty.
    pub fn peer_list(&self) -> Result<Vec<Peer>, ConfigError> {
        if self.id == 0 {
            return Err(ConfigError::ZeroId);
        }
        let mut peers: Vec<Peer> = Vec::new();
        for item in self
            .peers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (id, addr) = item
                .split_once('@')
                .ok_or_else(|| ConfigError::BadPeer(item.to_string()))?;
            let id: u64 = id
                .parse()
                .ok()
                .filter(|&i| i > 0)
                .ok_or_else(|| ConfigError::BadPeer(item.to_string()))?;
            if addr
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(ConfigError::BadPeer(item.to_string()));
            }
            if peers.iter().any(|p| p.id == id) {
                return Err(ConfigError::DuplicatePeer(id));
            }
            peers.push(Peer {
                id,
                addr: addr.to_string(),
            });
        }
        if peers.is_empty() {
            let host = if self.bind == "0.0.0.0" {
                "127.0.0.1"
            } else {
                &self.bind
            };
            return Ok(vec![Peer {
                id: self.id,
                addr: format!("{host}:{}", self.cluster_port()?),
            }]);
        }
        if !peers.iter().any(|p| p.id == self.id) {
            return Err(ConfigError::SelfNotInPeers(self.id));
        }
        Ok(peers)
    }

    /// The client listen address text, `bind:port`.
    pub fn client_addr(&self) -> String {
        format!("{}:{}", self.bind, self.port)
    }

    /// The cluster listen address text, `bind:cluster_port`.
    pub fn cluster_addr(&self) -> Result<String, ConfigError> {
        Ok(format!("{}:{}", self.bind, self.cluster_port()?))
    }

    /// The queue service's options (`--queue-*`).
    pub fn queue_options(&self) -> conclave_queues::service::start::QueueOptions {
        conclave_queues::service::start::QueueOptions {
            shards: self.queue_shards,
            replicas: self.queue_replicas as usize,
            config: conclave_queues::QueueConfig {
                visibility_ms: self.queue_visibility,
                backoff_base_ms: self.queue_backoff_base,
                max_deliveries: self.queue_max_deliveries,
                dedup_window_ms: self.queue_dedup_window,
                max_len: self.queue_max_len,
                ..conclave_queues::QueueConfig::default()
            },
            no_leader_wait: self.no_leader_wait(),
            max_memory: self.queue_max_memory,
            min_free_disk: self.queue_min_free_disk,
        }
    }

    /// `--node-timeout` as a duration.
    pub fn node_timeout(&self) -> Duration {
        Duration::from_millis(self.node_timeout)
    }

    /// `--no-leader-wait` as a duration.
    pub fn no_leader_wait(&self) -> Duration {
        Duration::from_millis(self.no_leader_wait)
    }
}

/// Parses a Redis-style memory amount: `100`, `10kb`, `10k`, `64mb`, `1gb` (1024-based for
/// `kb/mb/gb`, 1000-based for `k/m/g`, as Redis's `memtoull`).
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid memory amount '{text}'"))?;
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return Err(format!("invalid memory unit in '{text}'")),
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("memory amount '{text}' overflows"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(args: &[&str]) -> NodeConfig {
        let mut full = vec!["conclave"];
        full.extend_from_slice(args);
        Cli::parse_from(full).node
    }

    #[test]
    fn version_flags_print_the_version() {
        for flag in ["-v", "-V", "--version"] {
            let err = Cli::try_parse_from(["conclave", flag]).expect_err(flag);
            assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion, "{flag}");
        }
    }

    #[test]
    fn the_metrics_port_defaults_to_port_plus_1000_and_0_turns_it_off() {
        let addr = |args: &[&str]| node(args).metrics_addr().expect("valid");
        assert_eq!(addr(&["--port", "7001"]).as_deref(), Some("127.0.0.1:8001"));
        assert_eq!(
            addr(&["--metrics-port", "9100"]).as_deref(),
            Some("127.0.0.1:9100")
        );
        assert_eq!(addr(&["--metrics-port", "0"]), None);
        assert!(node(&["--port", "65000"]).metrics_addr().is_err());
    }

    #[test]
    fn defaults_make_a_one_node_cluster() {
        let n = node(&[]);
        assert_eq!(n.client_addr(), "127.0.0.1:6379");
        assert_eq!(n.cluster_port().unwrap(), 16379);
        assert_eq!(
            n.peer_list().unwrap(),
            vec![Peer {
                id: 1,
                addr: "127.0.0.1:16379".into()
            }]
        );
    }

    #[test]
    fn peers_are_validated() {
        let n = node(&["--id", "2", "--peers", "1@a:1,2@b:2,3@c:3"]);
        assert_eq!(n.peer_list().unwrap().len(), 3);
        assert!(node(&["--id", "4", "--peers", "1@a:1"])
            .peer_list()
            .is_err());
        assert!(node(&["--peers", "1@a"]).peer_list().is_err());
        assert!(node(&["--peers", "1@a:1,1@b:2"]).peer_list().is_err());
        assert!(node(&["--peers", "x@a:1"]).peer_list().is_err());
    }

    #[test]
    fn debug_kv_groups_default_to_none_and_are_bounded() {
        assert_eq!(node(&[]).debug_kv_groups, 0);
        assert_eq!(node(&["--debug-kv-groups", "16"]).debug_kv_groups, 16);
        assert!(Cli::try_parse_from(["conclave", "--debug-kv-groups", "257"]).is_err());
        assert!(Cli::try_parse_from(["conclave", "--debug-kv-groups", "-1"]).is_err());
    }

    #[test]
    fn node_timeout_and_queue_shards_have_the_contract_defaults() {
        assert_eq!(node(&[]).node_timeout(), Duration::from_millis(3000));
        assert_eq!(node(&[]).queue_shards, 16);
        assert_eq!(node(&["--node-timeout", "500"]).node_timeout, 500);
        assert_eq!(node(&["--queue-shards", "64"]).queue_shards, 64);
        assert!(Cli::try_parse_from(["conclave", "--node-timeout", "0"]).is_err());
        assert!(Cli::try_parse_from(["conclave", "--queue-shards", "0"]).is_err());
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("0"), Ok(0));
        assert_eq!(parse_memory("10kb"), Ok(10240));
        assert_eq!(parse_memory("1gb"), Ok(1 << 30));
        assert_eq!(parse_memory("5m"), Ok(5_000_000));
        assert!(parse_memory("5q").is_err());
        assert!(parse_memory("-1").is_err());
    }
}
