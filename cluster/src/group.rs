//! [`RaftGroup`]: one Raft group of machine `M` hosted by this node — openraft started on
//! the node's shared log engine, its quorum tracking, the peers' RPCs for it, and its
//! status — whatever service the machine belongs to.
//!
//! [`HostedGroup`] is the same group with its machine type erased, which is what the
//! cluster router, `RAFT.STATUS <group>`, `INFO raft` and `/metrics` hold: one process
//! hosts any number of groups of different machines.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use conclave_protocol::Frame;
use conclave_raft_store::{
    open_group_on, ApplyHook, GroupId, LogEngine, NodeId, Raft, SharedStateMachine, StateMachine,
};
use openraft::{BasicNode, Config, ServerState, SnapshotPolicy};
use parking_lot::Mutex;

use crate::directory::Directory;
use crate::group_stats::{self, GroupStats};
use crate::group_status;
use crate::raft_network::{HeardFrom, Peers, RaftNetworkFactoryImpl};

/// A boxed future (object-safe async methods of [`HostedGroup`]).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How to start a group on this node.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// This node's id.
    pub node_id: NodeId,
    /// The group.
    pub group: GroupId,
    /// The node's data directory (the group's vote and snapshots go in
    /// `group-<id>/`).
    pub data_dir: PathBuf,
    /// The initial members `(id, cluster address)`, used when the group is fresh.
    pub members: Vec<(NodeId, String)>,
    /// Leader heartbeat, ms.
    pub heartbeat_ms: u64,
    /// Minimum election timeout, ms (the maximum is twice this).
    pub election_timeout_ms: u64,
    /// Entries between snapshots.
    pub snapshot_every: u64,
}

/// One Raft group of machine `M` on this node.
pub struct RaftGroup<M: StateMachine> {
    node_id: NodeId,
    group: GroupId,
    raft: Raft<M>,
    sm: SharedStateMachine<M>,
    stats: Arc<GroupStats>,
    fsyncs: Arc<AtomicU64>,
    /// A leader without a majority's acknowledgement for this long has no quorum, and
    /// a follower without an `AppendEntries` from a leader for this long has no leader
    /// it can count on (twice the election timeout).
    quorum_timeout: Duration,
    /// When this node last received `AppendEntries` for this group.
    leader_contact: Mutex<Option<Instant>>,
    /// The members' client addresses (for `RAFT.STATUS`).
    directory: Arc<Directory>,
}

impl<M: StateMachine> std::fmt::Debug for RaftGroup<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftGroup")
            .field("node_id", &self.node_id)
            .field("group", &self.group)
            .finish()
    }
}

impl<M: StateMachine> RaftGroup<M> {
    /// Opens the group's storage on `engine`, starts openraft and the leader-change
    /// counter, and initializes the membership when the group is fresh (every initial
    /// member runs the same `initialize`, which openraft allows). `hook` is called for
    /// every applied result (on every replica).
    pub async fn start(
        config: &GroupConfig,
        engine: &Arc<LogEngine>,
        peers: Arc<Peers>,
        stats: Arc<GroupStats>,
        hook: Option<ApplyHook<M>>,
    ) -> anyhow::Result<Arc<RaftGroup<M>>> {
        Self::start_with(config, engine, peers, stats, hook, None).await
    }

    /// [`start`](Self::start), telling `heard` of every answer a peer gives to this
    /// group's Raft RPCs (the meta group's liveness evidence).
    pub async fn start_with(
        config: &GroupConfig,
        engine: &Arc<LogEngine>,
        peers: Arc<Peers>,
        stats: Arc<GroupStats>,
        hook: Option<ApplyHook<M>>,
        heard: Option<Arc<HeardFrom>>,
    ) -> anyhow::Result<Arc<RaftGroup<M>>> {
        let (log_store, sm_store) =
            open_group_on::<M>(engine, &config.data_dir, config.group, hook)?;
        let shared = sm_store.shared();
        let fsyncs = log_store.fsync_counter();
        let raft_config = Config {
            cluster_name: "conclave".into(),
            heartbeat_interval: config.heartbeat_ms,
            election_timeout_min: config.election_timeout_ms,
            election_timeout_max: config.election_timeout_ms * 2,
            install_snapshot_timeout: 10_000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: 2_000,
            ..Default::default()
        }
        .validate()?;
        let directory = peers.directory().clone();
        let mut network = RaftNetworkFactoryImpl::<M>::new(config.group, peers);
        network.heard = heard;
        let raft = Raft::<M>::new(
            config.node_id,
            Arc::new(raft_config),
            network,
            log_store,
            sm_store,
        )
        .await?;
        tokio::spawn(group_stats::watch_leader(
            raft.server_metrics(),
            stats.clone(),
        ));
        if !raft.is_initialized().await? {
            let nodes: BTreeMap<u64, BasicNode> = config
                .members
                .iter()
                .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
                .collect();
            tracing::debug!(group = config.group, members = ?nodes.keys().collect::<Vec<_>>(), "fresh group: initializing");
            raft.initialize(nodes).await?;
        } else {
            tracing::debug!(
                group = config.group,
                "recovered the group from the data directory"
            );
        }
        Ok(Arc::new(RaftGroup {
            node_id: config.node_id,
            group: config.group,
            raft,
            sm: shared,
            stats,
            fsyncs,
            quorum_timeout: Duration::from_millis(config.election_timeout_ms) * 2,
            leader_contact: Mutex::new(None),
            directory,
        }))
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The group's id.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// The Raft handle.
    pub fn raft(&self) -> &Raft<M> {
        &self.raft
    }

    /// The applied state.
    pub fn state(&self) -> &SharedStateMachine<M> {
        &self.sm
    }

    /// The group's metrics recorded beside openraft's (fsyncs, leader changes).
    pub fn stats(&self) -> &Arc<GroupStats> {
        &self.stats
    }

    /// The leader this node knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// How long a leader may go without a majority's acknowledgement.
    pub fn quorum_timeout(&self) -> Duration {
        self.quorum_timeout
    }

    /// Whether this node is a leader that has not heard from a majority within the
    /// quorum timeout. A leader whose quorum is not yet known (just elected) or that is
    /// the only voter has not lost it.
    pub fn quorum_lost(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader
            && m.membership_config
                .membership()
                .voter_ids()
                .nth(1)
                .is_some()
            && m.millis_since_quorum_ack
                .is_some_and(|ms| ms > self.quorum_timeout.as_millis() as u64)
    }

    /// Whether this node can count on a quorum: as leader, a majority acknowledged it
    /// within the quorum timeout (or it is the only voter); otherwise, a leader's
    /// `AppendEntries` reached it within that time.
    pub fn has_quorum(&self) -> bool {
        let (state, ack, single) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let single = m
                .membership_config
                .membership()
                .voter_ids()
                .nth(1)
                .is_none();
            (m.state, m.millis_since_quorum_ack, single)
        };
        let within = self.quorum_timeout.as_millis() as u64;
        match state {
            ServerState::Leader => single || ack.is_some_and(|ms| ms <= within),
            _ => self
                .leader_contact
                .lock()
                .is_some_and(|t| t.elapsed() <= self.quorum_timeout),
        }
    }

    /// Serves a `RAFT` RPC (`APPEND`, `VOTE`, `SNAPSHOT`) from a peer: the postcard
    /// request in, the postcard of openraft's `Result` out (binary: a 1 KB payload in an
    /// entry costs 1 KB on the wire, where JSON spelled each byte as a number).
    pub async fn handle_raft_rpc(&self, kind: &[u8], body: &[u8]) -> Result<Bytes, String> {
        let encoded = match kind {
            b"APPEND" => {
                *self.leader_contact.lock() = Some(Instant::now());
                let req = postcard::from_bytes(body).map_err(|e| e.to_string())?;
                postcard::to_stdvec(&self.raft.append_entries(req).await)
            }
            b"VOTE" => {
                let req = postcard::from_bytes(body).map_err(|e| e.to_string())?;
                postcard::to_stdvec(&self.raft.vote(req).await)
            }
            b"SNAPSHOT" => {
                let req = postcard::from_bytes(body).map_err(|e| e.to_string())?;
                postcard::to_stdvec(&self.raft.install_snapshot(req).await)
            }
            other => {
                return Err(format!(
                    "unknown raft rpc {}",
                    String::from_utf8_lossy(other)
                ))
            }
        };
        encoded.map(Bytes::from).map_err(|e| e.to_string())
    }

    /// How many `fdatasync`s the node's log engine has done (all groups).
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Relaxed)
    }
}

/// A hosted group with its machine type erased.
pub trait HostedGroup: Send + Sync + std::fmt::Debug {
    /// The group's id.
    fn group(&self) -> GroupId;
    /// openraft's metrics of the group.
    fn metrics(&self) -> openraft::RaftMetrics<NodeId, BasicNode>;
    /// See [`RaftGroup::has_quorum`].
    fn has_quorum(&self) -> bool;
    /// See [`RaftGroup::stats`].
    fn stats(&self) -> &Arc<GroupStats>;
    /// The committed index (openraft's own, not only its metrics).
    fn committed_index(&self) -> BoxFuture<'_, Option<u64>>;
    /// See [`RaftGroup::handle_raft_rpc`].
    fn handle_raft_rpc<'a>(
        &'a self,
        kind: &'a [u8],
        body: &'a [u8],
    ) -> BoxFuture<'a, Result<Bytes, String>>;
    /// `RAFT.STATUS` of this group.
    fn status_frame(&self) -> BoxFuture<'_, Frame>;
    /// `INFO raft` fields of this group.
    fn info_raft(&self) -> Vec<(String, String)>;
    /// Stops the group's Raft node.
    fn shutdown(&self) -> BoxFuture<'_, Result<(), String>>;
}

impl<M: StateMachine> HostedGroup for RaftGroup<M> {
    fn group(&self) -> GroupId {
        self.group
    }

    fn metrics(&self) -> openraft::RaftMetrics<NodeId, BasicNode> {
        self.raft.metrics().borrow().clone()
    }

    fn has_quorum(&self) -> bool {
        RaftGroup::has_quorum(self)
    }

    fn stats(&self) -> &Arc<GroupStats> {
        &self.stats
    }

    fn committed_index(&self) -> BoxFuture<'_, Option<u64>> {
        Box::pin(async move {
            self.raft
                .with_raft_state(|st| st.committed.map(|c| c.index))
                .await
                .ok()
                .flatten()
        })
    }

    fn handle_raft_rpc<'a>(
        &'a self,
        kind: &'a [u8],
        body: &'a [u8],
    ) -> BoxFuture<'a, Result<Bytes, String>> {
        Box::pin(RaftGroup::handle_raft_rpc(self, kind, body))
    }

    fn status_frame(&self) -> BoxFuture<'_, Frame> {
        Box::pin(group_status::raft_status(self, &self.directory))
    }

    fn info_raft(&self) -> Vec<(String, String)> {
        let mut fields = group_status::info_raft(self);
        fields.push(("raft_log_fsyncs".into(), self.fsyncs().to_string()));
        fields
    }

    fn shutdown(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.raft.shutdown().await.map_err(|e| e.to_string()) })
    }
}
