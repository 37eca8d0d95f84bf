//! The replicated lock service: `LOCK.*` on top of Raft group 0.
//!
//! Path of a lock command: the connection parses it ([`command`]), then
//! [`LockService::execute`] sends it to the leader — itself, or a peer over the
//! cluster channel (`LOCKFWD`). The leader stamps its clock into a
//! [`LockRequest`] and proposes it (`client_write`); the reply is the state machine's
//! [`LockReply`]. Reads (`LOCK.CHECK`, `LOCK.INFO`) run on the leader after
//! `ensure_linearizable`.
//!
//! A request that must wait (`WAIT`) is *queued* in the replicated table; the client
//! then blocks on the node it is connected to until that node applies the grant of
//! *its* request ([`waiters`], matched by request id). When its wait runs out a
//! `Cancel` goes through the log so the queue never grants a ghost, and its reply —
//! from state newer than the request — says whether the grant won the race.
//!
//! An error reply means the request never takes effect: an acquire or upgrade whose
//! outcome is unknown when the client is answered (no quorum, timeout, the client gone)
//! is withdrawn through the log with `undo` ([`withdraw`]), retried in the background
//! until it commits, so if the request commits after all, it grants nothing.
//!
//! A leader that has not heard from a majority within twice the election timeout
//! refuses writes at once with `-CLUSTERDOWN no quorum` (it cannot commit them, and an
//! entry it appends could be committed later). With no leader the command retries
//! until `--no-leader-wait`, then fails `-CLUSTERDOWN no raft leader`.

mod acquire;
pub mod command;
pub mod driver;
pub mod proposer;
mod route;
pub mod start;
pub mod status;
pub mod waiters;
pub mod withdraw;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use conclave_commands::locks::{LockOp, LockStats};
use conclave_commands::{Frame, Parse};
use conclave_raft_store::{GroupId, NodeId, Raft, SharedStateMachine, META_GROUP};
use openraft::ServerState;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use self::command::{LockCommand, LockOutcome};
use self::proposer::{ProposeError, Proposer};
use self::waiters::Waiters;
use crate::cluster::raft_network::Peers;
use crate::command_table::CommandSpec;
use crate::config::NodeConfig;
use crate::node::Node;
use crate::ops::raft_stats::GroupStats;

/// Why a lock command could not be served (also sent across the cluster channel inside
/// [`route::ForwardError`]).
#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceError {
    /// No leader could be reached within `--no-leader-wait`.
    #[error("CLUSTERDOWN no raft leader")]
    NoLeader,
    /// The leader (this node, or the one a forward reached) has not heard from a
    /// majority within twice the election timeout: it cannot commit anything.
    #[error("CLUSTERDOWN no quorum")]
    NoQuorum,
    /// Raft failed in a way retrying will not fix.
    #[error("ERR raft: {0}")]
    Raft(String),
}

/// The lock service of one node.
pub struct LockService {
    id: NodeId,
    group: GroupId,
    raft: Raft,
    sm: SharedStateMachine,
    peers: Arc<Peers>,
    waiters: Arc<Waiters>,
    fsyncs: Arc<AtomicU64>,
    stats: Arc<GroupStats>,
    proposer: Proposer,
    no_leader_wait: Duration,
    /// A leader without a majority's acknowledgement for this long has no quorum, and
    /// a follower without an `AppendEntries` from a leader for this long has no leader
    /// it can count on (twice the election timeout).
    quorum_timeout: Duration,
    /// When this node last received `AppendEntries` (a live leader reached it).
    leader_contact: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for LockService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockService")
            .field("id", &self.id)
            .field("group", &self.group)
            .finish()
    }
}

/// The leader's wall clock in ms since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl LockService {
    /// Wraps a started Raft group 0 (timeouts from `config`: `--no-leader-wait`,
    /// `--election-timeout`).
    pub fn new(
        config: &NodeConfig,
        raft: Raft,
        sm: SharedStateMachine,
        peers: Arc<Peers>,
        waiters: Arc<Waiters>,
        fsyncs: Arc<AtomicU64>,
        stats: Arc<GroupStats>,
    ) -> LockService {
        let no_leader_wait = config.no_leader_wait();
        let proposer = Proposer::start(raft.clone(), no_leader_wait);
        LockService {
            id: config.id,
            group: META_GROUP,
            raft,
            sm,
            peers,
            waiters,
            fsyncs,
            stats,
            proposer,
            no_leader_wait,
            quorum_timeout: Duration::from_millis(config.election_timeout) * 2,
            leader_contact: Mutex::new(None),
        }
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

    /// The Raft handle.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The pooled clients of the peers' cluster ports.
    pub fn peers(&self) -> &Arc<Peers> {
        &self.peers
    }

    /// The applied state.
    pub fn state(&self) -> &SharedStateMachine {
        &self.sm
    }

    /// The group's metrics recorded beside openraft's (fsyncs, leader changes).
    pub fn group_stats(&self) -> &GroupStats {
        &self.stats
    }

    /// The lock table's counters as this node applied them (walks every resource).
    pub fn lock_stats(&self) -> LockStats {
        self.sm.read().table.stats()
    }

    /// Proposes a write through the batching proposer (for the leader's housekeeping);
    /// refused at once without a quorum.
    pub async fn propose(&self, op: LockOp, within: Duration) -> Result<(), ProposeError> {
        if self.quorum_lost() {
            return Err(ProposeError::NoQuorum);
        }
        self.proposer.propose(op, within).await.map(|_| ())
    }

    /// Clients blocked in a lock wait on this node.
    pub fn blocked_clients(&self) -> usize {
        self.waiters.len()
    }

    /// Executes a `LOCK.*` command or `RAFT.STATUS` for a client.
    pub async fn execute(
        self: &Arc<Self>,
        node: &Node,
        spec: &CommandSpec,
        parse: &mut Parse,
    ) -> Frame {
        if spec.name == "RAFT.STATUS" {
            return status::raft_status(self).await;
        }
        let default_ttl = node
            .runtime
            .lock_default_ttl
            .load(std::sync::atomic::Ordering::Relaxed);
        let mut parsed = match command::parse(spec.name, parse, default_ttl) {
            Ok(p) => p,
            Err(e) => return e.to_frame(),
        };
        let result = match &mut parsed.command {
            LockCommand::Write(op) => match op.request_id_mut() {
                Some(rid) => {
                    *rid = acquire::new_request_id();
                    self.acquire(op.clone(), parsed.wait_ms).await
                }
                None => self.write(parsed.command).await,
            },
            _ => self.write(parsed.command).await,
        };
        result.unwrap_or_else(|e| Frame::error(e.to_string()))
    }

    /// Runs a command that cannot grant (release, renew, downgrade, reads).
    async fn write(&self, cmd: LockCommand) -> Result<Frame, ServiceError> {
        Ok(match self.run(cmd).await? {
            LockOutcome::Applied { reply, .. } => command::reply_frame(&reply),
            LockOutcome::Check(b) => Frame::Integer(b as i64),
            LockOutcome::Info(info) => command::info_frame(&info),
        })
    }

    /// Serves a `RAFT` RPC from a peer.
    pub async fn handle_raft_rpc(
        &self,
        group: GroupId,
        kind: &[u8],
        body: &[u8],
    ) -> Result<Bytes, String> {
        if group != self.group {
            return Err(format!("unknown raft group {group}"));
        }
        let json = match kind {
            b"APPEND" => {
                *self.leader_contact.lock() = Some(Instant::now());
                let req = serde_json::from_slice(body).map_err(|e| e.to_string())?;
                serde_json::to_vec(&self.raft.append_entries(req).await)
            }
            b"VOTE" => {
                let req = serde_json::from_slice(body).map_err(|e| e.to_string())?;
                serde_json::to_vec(&self.raft.vote(req).await)
            }
            b"SNAPSHOT" => {
                let req = serde_json::from_slice(body).map_err(|e| e.to_string())?;
                serde_json::to_vec(&self.raft.install_snapshot(req).await)
            }
            other => {
                return Err(format!(
                    "unknown raft rpc {}",
                    String::from_utf8_lossy(other)
                ))
            }
        };
        json.map(Bytes::from).map_err(|e| e.to_string())
    }

    /// `INFO raft` fields.
    pub fn info_raft(&self) -> Vec<(String, String)> {
        let mut fields = status::info_raft(self);
        fields.push((
            "raft_log_fsyncs".into(),
            self.fsyncs
                .load(std::sync::atomic::Ordering::Relaxed)
                .to_string(),
        ));
        fields
    }

    /// `INFO locks` fields.
    pub fn info_locks(&self) -> Vec<(String, String)> {
        let s = self.lock_stats();
        vec![
            ("locked_resources".into(), s.locked_resources.to_string()),
            ("lock_holders".into(), s.holders.to_string()),
            ("lock_waiters".into(), s.waiters.to_string()),
            ("lock_grants".into(), s.grants.to_string()),
            ("lock_expiries".into(), s.expiries.to_string()),
            ("lock_deadlocks".into(), s.deadlocks.to_string()),
            (
                "lock_blocked_clients".into(),
                self.waiters.len().to_string(),
            ),
        ]
    }
}
