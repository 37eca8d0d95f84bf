//! The state one node shares between all its connections and background tasks.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use conclave_cache::keyspace::Keyspace;
use conclave_cluster::HostedGroup;
use conclave_locks::LockService;
use conclave_protocol::codec::Limits;
use conclave_raft_store::GroupId;
use parking_lot::RwLock;
use tokio::sync::watch;

use crate::clients::Clients;
use crate::config::NodeConfig;
use crate::debug_kv::DebugKv;
use crate::ops::command_stats::CommandStats;
use crate::pause::Pause;
use crate::pubsub::PubSub;
use crate::stats::Stats;
use crate::tracking::Tracker;

/// Parameters `CONFIG SET` may change while the node runs.
#[derive(Debug)]
pub struct RuntimeConfig {
    /// `requirepass` (`None`: no password).
    pub requirepass: RwLock<Option<String>>,
    /// `maxclients`.
    pub maxclients: AtomicUsize,
    /// `timeout` in seconds (0: never close idle clients).
    pub timeout: AtomicU64,
    /// `proto-max-bulk-len`.
    pub proto_max_bulk_len: AtomicU64,
    /// `lock-default-ttl` in ms.
    pub lock_default_ttl: AtomicU64,
    /// `hz`: background ticks per second (1-500).
    pub hz: AtomicU64,
    /// `busy-reply-threshold` (alias `lua-time-limit`) in ms: how long a script runs
    /// before other clients get `-BUSY` and `SCRIPT KILL` may stop it (0 = never).
    pub busy_reply_threshold: AtomicU64,
    /// `port`: the client port listened on now.
    pub port: AtomicU64,
    /// `bind`: the client address listened on now.
    pub bind: RwLock<String>,
    /// `client-query-buffer-limit` in bytes: a client whose unparsed input grows past it
    /// is closed (Redis's `client_max_querybuf_len`).
    pub query_buffer_limit: AtomicU64,
    /// `repl-backlog-size` in bytes: accepted and shown, unused (no replicas).
    pub repl_backlog_size: AtomicU64,
    /// Hands a new client listener to the accept loop (`CONFIG SET port|bind`).
    pub rebind: crate::listener::Rebind,
}

/// Everything a connection can reach.
#[derive(Debug)]
pub struct Node {
    /// The configuration the node started with.
    pub config: NodeConfig,
    /// The parts of it that can change at run time.
    pub runtime: RuntimeConfig,
    /// The node-local string keyspace.
    pub keyspace: Arc<Keyspace>,
    /// The cluster-wide keyspace's coherence driver (contract 2.1); `None` on a
    /// one-node cluster, which runs commands on the plain keyspace.
    pub coherent: Option<Arc<conclave_cache::coherent::Coherent>>,
    /// Connected clients.
    pub clients: Arc<Clients>,
    /// Client-side caching: sends the keyspace's invalidations to tracking clients
    /// (installed in the keyspace as its invalidator).
    pub tracker: Arc<Tracker>,
    /// Pub/sub channels and patterns.
    pub pubsub: PubSub,
    /// `CLIENT PAUSE`.
    pub pause: Pause,
    /// Counters for `INFO stats`.
    pub stats: Stats,
    /// Per-command counts and latencies for `/metrics`.
    pub command_stats: CommandStats,
    /// Lua scripting: the VM, its scripts, the running script.
    pub scripting: crate::scripting::Scripting,
    /// The replicated lock service (Raft group 0).
    pub locks: Arc<LockService>,
    /// The replicated queue service (`Q.*`, groups 1000+s).
    pub queues: Arc<conclave_queues::QueueService>,
    /// The meta group (group 1): queue shard count, members, the cache ring.
    pub meta: Arc<conclave_cluster::meta::Meta>,
    /// The debug kv groups (`--debug-kv-groups`, `DEBUG.KV*`).
    pub debug_kv: Arc<DebugKv>,
    /// Every Raft group this node hosts (the lock group first, then the meta group).
    pub groups: Vec<Arc<dyn HostedGroup>>,
    /// This run's replication id (`master_replid`: 40 random hex digits, as Redis).
    pub replid: String,
    /// When the node started.
    pub started: Instant,
    /// RDB snapshots (`SAVE`, `BGSAVE`, the `save` rules, loading at start).
    pub persistence: Arc<crate::persist::Persistence>,
    /// `MONITOR` clients.
    pub monitors: crate::monitor::Monitors,
    /// The slow log (`SLOWLOG`, `slowlog-*` parameters).
    pub slowlog: crate::slowlog::SlowLog,
    /// ACL users (`ACL`, `AUTH`), the `default` user mirroring `requirepass`.
    pub acl: crate::acl::Acl,
    /// The version of the meta group's ACL table installed in [`Node::acl`].
    pub acl_version: parking_lot::Mutex<u64>,
    /// Flipped to `true` to stop the node (`SHUTDOWN`, SIGTERM).
    pub shutdown: watch::Sender<bool>,
}

impl Node {
    /// Decoder limits in force now for a connection (tighter before it authenticates).
    pub fn limits(&self, authenticated: bool) -> Limits {
        Limits {
            max_bulk_len: self.runtime.proto_max_bulk_len.load(Relaxed),
            unauthenticated: !authenticated,
            ..Limits::default()
        }
    }

    /// Whether new clients must authenticate (the `default` user has a password or is
    /// off).
    pub fn requires_auth(&self) -> bool {
        self.acl.requires_auth()
    }

    /// The hosted Raft group `group`.
    pub fn group(&self, group: GroupId) -> Option<&Arc<dyn HostedGroup>> {
        self.groups.iter().find(|g| g.group() == group)
    }

    /// Asks every task of the node to stop.
    pub fn request_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}
