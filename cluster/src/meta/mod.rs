//! The meta Raft group (group 1, [`META_GROUP`]): cluster metadata that several services
//! read — the queue shard count, the member table with liveness, and the cache ring.
//!
//! Every node hosts the group with the `--peers` members (like the lock group) on the
//! node's shared log engine. What lives where:
//!
//! - [`meta_machine`]: [`MetaMachine`], the deterministic replicated state, and its ops;
//! - [`Meta`] (here): the handle services hold — local reads of the applied state
//!   ([`Meta::queue_shards`], [`Meta::ring`], [`Meta::members`]), a watch of the ring
//!   ([`Meta::watch_ring`]), and writes that run on the meta leader from any node
//!   ([`Meta::record_queue_shards`]; forwarded as `FWD meta 1 <deadline> <json>` through
//!   [`crate::leader_route`], retried through leader changes for `--no-leader-wait`);
//! - [`liveness`]: the leader's task that seeds the table from the Raft membership and
//!   marks members `down` after `--node-timeout` without an answer to its heartbeats,
//!   `up` when they answer again;
//! - [`meta_cmds`]: `MEMBER.LIST` (contract 4.1) and `DEBUG.META`;
//! - [`functions`]: the Redis function libraries (`FUNCTION LOAD` ...), written through
//!   [`Meta::functions_write`] and read with [`Meta::functions`].
//! - [`acl`]: the replicated ACL users ([`Meta::acl_write`], [`Meta::acl_table`]).
//!
//! Reads are of this node's applied state: they may lag the leader by the replication
//! delay, never go backwards, and agree on every node once applied (same log, same
//! table). A node also announces its own client address at start
//! ([`MetaOp::Announce`], retried in the background until the leader has seeded the
//! member and the address is recorded).

pub mod acl;
pub mod functions;
pub mod functions_sync;
pub mod liveness;
pub mod meta_cmds;
pub mod meta_machine;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use conclave_raft_store::proposer::Proposer;
use conclave_raft_store::{GroupId, LogEngine, NodeId, META_GROUP};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::watch;

use crate::group::BoxFuture;
use crate::group_stats::GroupStats;
use crate::leader_route::{
    self, encode_reply, propose_failure, Attempt, ForwardError, LeaderService, RouteError,
};
use crate::raft_network::HeardFrom;
use crate::router::ForwardHandler;
use crate::{GroupConfig, Peers, RaftGroup};

pub use meta_machine::{Member, MemberState, MetaApplied, MetaMachine, MetaOp, Ring};

/// The name the meta group registers under with the cluster router (`FWD meta ...`).
pub const SERVICE: &str = "meta";

/// Why a meta write failed; `Display` is the RESP error line.
#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaError {
    /// No meta leader could be reached within `--no-leader-wait`.
    #[error("CLUSTERDOWN no raft leader")]
    NoLeader,
    /// The meta leader has not heard from a majority within twice the election timeout.
    #[error("CLUSTERDOWN no quorum")]
    NoQuorum,
    /// Raft or the channel failed in a way retrying will not fix.
    #[error("ERR raft: {0}")]
    Raft(String),
}

impl RouteError for MetaError {
    fn no_leader() -> Self {
        MetaError::NoLeader
    }
    fn no_quorum() -> Self {
        MetaError::NoQuorum
    }
    fn internal(message: String) -> Self {
        MetaError::Raft(message)
    }
    fn is_internal(&self) -> bool {
        matches!(self, MetaError::Raft(_))
    }
}

/// How the meta group runs on this node.
#[derive(Debug, Clone)]
pub struct MetaConfig {
    /// How long a write waits for a leader (`--no-leader-wait`).
    pub no_leader_wait: Duration,
    /// How long the leader goes without hearing from a node before marking it down
    /// (`--node-timeout`, default 3000 ms).
    pub node_timeout: Duration,
    /// This node's client address, `host:port` (announced in the member table).
    pub client_addr: String,
}

/// The meta group on this node: reads of its applied state and writes through its
/// leader.
pub struct Meta {
    group: Arc<RaftGroup<MetaMachine>>,
    proposer: Proposer<MetaMachine>,
    peers: Arc<Peers>,
    no_leader_wait: Duration,
    ring: watch::Receiver<Ring>,
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meta")
            .field("node_id", &self.group.node_id())
            .finish_non_exhaustive()
    }
}

impl Meta {
    /// Starts the meta group described by `config` (its `group` should be
    /// [`META_GROUP`]; fresh: initialized with `config.members`) on `engine`, and the
    /// node's meta tasks: the ring watch, the liveness task (acting while this node
    /// leads) and the announcement of this node's addresses.
    pub async fn start(
        config: &GroupConfig,
        engine: &Arc<LogEngine>,
        peers: Arc<Peers>,
        stats: Arc<GroupStats>,
        meta: MetaConfig,
    ) -> anyhow::Result<Arc<Meta>> {
        let heard = Arc::new(HeardFrom::default());
        let group = RaftGroup::<MetaMachine>::start_with(
            config,
            engine,
            peers.clone(),
            stats,
            None,
            Some(heard.clone()),
        )
        .await?;
        let proposer = Proposer::start(group.raft().clone(), meta.no_leader_wait);
        let initial = group.state().read().machine.ring().clone();
        let (ring_tx, ring) = watch::channel(initial);
        tokio::spawn(watch_ring(group.clone(), ring_tx));
        let node = Arc::new(Meta {
            group,
            proposer,
            peers,
            no_leader_wait: meta.no_leader_wait,
            ring,
        });
        tokio::spawn(liveness::run(node.clone(), heard, meta.node_timeout));
        tokio::spawn(announce(node.clone(), meta.client_addr));
        Ok(node)
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.group.node_id()
    }

    /// The meta Raft group.
    pub fn group(&self) -> &Arc<RaftGroup<MetaMachine>> {
        &self.group
    }

    /// The queue shard count as this node applied it (`None` until recorded).
    pub fn queue_shards(&self) -> Option<u32> {
        self.group.state().read().machine.queue_shards()
    }

    /// The cache ring as this node applied it.
    pub fn ring(&self) -> Ring {
        self.group.state().read().machine.ring().clone()
    }

    /// A receiver of the ring as this node applies it: it changes (and `changed()`
    /// returns) whenever an applied entry changed the ring.
    pub fn watch_ring(&self) -> watch::Receiver<Ring> {
        self.ring.clone()
    }

    /// The member table as this node applied it, by id.
    pub fn members(&self) -> Vec<Member> {
        self.group
            .state()
            .read()
            .machine
            .members()
            .cloned()
            .collect()
    }

    /// Records the cluster's queue shard count unless one is recorded (contract 5: set
    /// when the cluster is created), through the meta leader from any node. Returns the
    /// recorded count, which wins over a different `n`. Errors: no leader or no quorum
    /// within `--no-leader-wait` (a repeat is harmless: the op is idempotent).
    pub async fn record_queue_shards(&self, n: u32) -> Result<u32, MetaError> {
        match self.write(MetaOp::RecordQueueShards(n)).await? {
            MetaApplied::QueueShards(n) => Ok(n),
            other => Err(MetaError::Raft(format!("unexpected reply {other:?}"))),
        }
    }

    /// The function libraries as this node applied them.
    pub fn functions(&self) -> functions::FunctionSet {
        self.group.state().read().machine.functions().clone()
    }

    /// The version of the function libraries this node applied.
    pub fn functions_version(&self) -> u64 {
        self.group.state().read().machine.functions().version()
    }

    /// Runs a function library change on the meta leader, then waits (up to
    /// `--no-leader-wait`) until this node and every other `up` member have applied it
    /// ([`functions_sync`]), so every node answers with it once the caller replies. Returns the machine's reply: the version after it, or Redis's error text.
    /// Errors: no leader or no quorum within `--no-leader-wait`.
    pub async fn functions_write(
        &self,
        op: functions::FunctionOp,
    ) -> Result<functions::FunctionReply, MetaError> {
        let sync = matches!(op, functions::FunctionOp::Sync);
        let reply = match self.write(MetaOp::Functions(op)).await? {
            MetaApplied::Functions(reply) => reply,
            other => return Err(MetaError::Raft(format!("unexpected reply {other:?}"))),
        };
        if let Ok(version) = reply {
            self.wait_functions(version).await;
            if sync {
                return Ok(reply);
            }
            let late = self.functions_broadcast(version, self.no_leader_wait).await;
            if !late.is_empty() {
                tracing::debug!(
                    ?late,
                    version,
                    "function libraries: members not confirmed in time"
                );
            }
        }
        Ok(reply)
    }

    /// Waits until this node applied function version `version` (at most
    /// `--no-leader-wait`); whether it did.
    pub async fn wait_functions(&self, version: u64) -> bool {
        self.wait_functions_within(version, self.no_leader_wait)
            .await
    }

    /// [`Self::wait_functions`] for at most `within`.
    pub async fn wait_functions_within(&self, version: u64, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        let mut metrics = self.group.raft().metrics();
        loop {
            if self.functions_version() >= version {
                return true;
            }
            let changed = tokio::time::timeout_at(deadline, metrics.changed()).await;
            if !matches!(changed, Ok(Ok(()))) {
                return self.functions_version() >= version;
            }
        }
    }

    /// The ring as the meta leader knows it, read linearizably through the leader from any
    /// node (a read barrier there: leadership confirmed by a quorum, the leader's state
    /// applied to its commit index; nothing is proposed). Every ring committed before
    /// this call began is at or below the answer's epoch: a node that called it at time
    /// `s` knows the latest epoch as of `s` (the cache's "control plane lease", contract
    /// 2.1). Errors: no leader or no quorum within `within`.
    pub async fn confirm_ring(&self, within: Duration) -> Result<Ring, MetaError> {
        let op = MetaOp::ReadRing;
        match leader_route::run_on_leader(self, &op, within, &mut false).await? {
            MetaApplied::Ring(ring) => Ok(ring),
            other => Err(MetaError::Raft(format!("unexpected reply {other:?}"))),
        }
    }

    /// The ACL users as this node applied them.
    pub fn acl_table(&self) -> acl::AclTable {
        self.group.state().read().machine.acl().clone()
    }

    /// A receiver of openraft's metrics of the meta group: it changes whenever this
    /// node applies entries (watch it to follow [`Meta::acl_table`]).
    pub fn watch_applied(
        &self,
    ) -> watch::Receiver<openraft::RaftMetrics<NodeId, openraft::BasicNode>> {
        self.group.raft().metrics()
    }

    /// Changes the ACL users through the meta leader, from any node. Errors: no leader
    /// or no quorum within `--no-leader-wait` (the change may or may not have been
    /// applied then).
    pub async fn acl_write(&self, op: acl::AclOp) -> Result<acl::AclApplied, MetaError> {
        match self.write(MetaOp::Acl(op)).await? {
            MetaApplied::Acl(a) => Ok(a),
            other => Err(MetaError::Raft(format!("unexpected reply {other:?}"))),
        }
    }

    /// Runs `op` on the meta leader, wherever it is.
    async fn write(&self, op: MetaOp) -> Result<MetaApplied, MetaError> {
        leader_route::run_on_leader(self, &op, self.no_leader_wait, &mut false).await
    }

    /// Proposes `op` here, as leader (the liveness task's writes).
    async fn propose_local(&self, op: MetaOp, within: Duration) -> Result<MetaApplied, MetaError> {
        if self.group.quorum_lost() {
            return Err(MetaError::NoQuorum);
        }
        match self.proposer.propose(op, within).await {
            Ok((_, applied)) => Ok(applied),
            Err(e) => Err(match propose_failure::<MetaError>(e, false) {
                Attempt::Fail(e) | Attempt::FailUnknown(e) | Attempt::RetryUnknown(e) => e,
                Attempt::Retry | Attempt::RetryNoQuorum => MetaError::NoLeader,
            }),
        }
    }
}

impl LeaderService for Meta {
    type Machine = MetaMachine;
    type Command = MetaOp;
    type Outcome = MetaApplied;
    type Error = MetaError;

    const SERVICE: &'static str = SERVICE;

    fn raft_group(&self) -> &RaftGroup<MetaMachine> {
        &self.group
    }

    fn peer_clients(&self) -> &Peers {
        &self.peers
    }

    async fn run_local(
        &self,
        cmd: &MetaOp,
        left: Duration,
    ) -> Result<MetaApplied, Attempt<MetaError>> {
        if *cmd == MetaOp::ReadRing {
            leader_route::read_barrier::<MetaMachine, MetaError>(&self.group, left).await?;
            return Ok(MetaApplied::Ring(self.ring()));
        }
        match self.proposer.propose(cmd.clone(), left).await {
            Ok((_, applied)) => Ok(applied),
            Err(e) => Err(propose_failure(e, self.group.quorum_lost())),
        }
    }
}

/// Forwarded meta writes arrive through the node's cluster router.
impl ForwardHandler for Meta {
    fn handle(&self, group: GroupId, deadline_ms: u64, body: Bytes) -> BoxFuture<'_, Bytes> {
        Box::pin(async move {
            if group != META_GROUP {
                return encode_reply::<Meta>(&Err(ForwardError::Refused(MetaError::Raft(
                    format!("no meta group {group} on this node"),
                ))));
            }
            leader_route::serve_forward(self, deadline_ms, &body).await
        })
    }
}

/// Publishes the applied ring whenever openraft reports progress; ends with the group.
async fn watch_ring(group: Arc<RaftGroup<MetaMachine>>, tx: watch::Sender<Ring>) {
    let mut metrics = group.raft().metrics();
    while metrics.changed().await.is_ok() {
        let ring = group.state().read().machine.ring().clone();
        tx.send_if_modified(|current| {
            let changed = *current != ring;
            if changed {
                *current = ring;
            }
            changed
        });
    }
}

/// Announces this node's client address until the meta group has recorded it (the
/// leader seeds the member first), or the group stops.
async fn announce(meta: Arc<Meta>, client_addr: String) {
    let me = meta.node_id();
    let mut metrics = meta.group.raft().metrics();
    loop {
        let op = MetaOp::Announce {
            id: me,
            client_addr: client_addr.clone(),
        };
        match meta.write(op).await {
            Ok(MetaApplied::Announced(true)) => return,
            Ok(_) => tracing::debug!("meta: not seeded yet; announcing again"),
            Err(e) => tracing::debug!(error = %e, "meta: announcing this node failed; retrying"),
        }
        if metrics.has_changed().is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = metrics.borrow_and_update();
    }
}
