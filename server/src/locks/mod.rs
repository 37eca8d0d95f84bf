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

pub mod command;
pub mod driver;
pub mod proposer;
pub mod start;
pub mod status;
pub mod waiters;
pub mod withdraw;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use conclave_commands::locks::{LockOp, LockReply, RequestId};
use conclave_commands::{Frame, Parse};
use conclave_raft_store::{GroupId, NodeId, Raft, SharedStateMachine, META_GROUP};
use openraft::error::RaftError;
use openraft::ServerState;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::debug;

use self::command::{InfoWire, LockCommand, LockOutcome};
use self::proposer::{ProposeError, Proposer};
use self::waiters::Waiters;
use self::withdraw::Withdrawal;
use crate::cluster::peer::PeerError;
use crate::cluster::raft_network::Peers;
use crate::command_table::CommandSpec;
use crate::config::NodeConfig;
use crate::node::Node;

/// Why a lock command could not be served (also sent across the cluster channel inside
/// [`ForwardError`]).
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

    /// The applied state.
    pub fn state(&self) -> &SharedStateMachine {
        &self.sm
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
                    *rid = new_request_id();
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

    /// An acquire or upgrade (carrying a fresh request id): propose it; when queued,
    /// block until its own grant, or until `wait_ms` runs out (then withdraw it through
    /// the log; the withdrawal's reply says whether the grant won the race).
    ///
    /// Whatever ends this early — an error reply, or the client going away (the future
    /// is dropped) — leaves the [`Withdrawal`] armed, which takes the request back
    /// through the log in the background: an error reply means it never takes effect.
    async fn acquire(
        self: &Arc<Self>,
        op: LockOp,
        wait_ms: Option<u64>,
    ) -> Result<Frame, ServiceError> {
        let Some(mut withdrawal) = Withdrawal::arm(self, &op) else {
            return Err(ServiceError::Raft("not an acquire or upgrade".into()));
        };
        let rid = withdrawal.rid();
        // Registered before proposing, so a grant applied here before the reply to the
        // proposal arrives is not missed.
        let mut registration = wait_ms.map(|_| self.waiters.register(rid));
        let started = Instant::now();
        let mut maybe_proposed = false;
        let outcome = self
            .run_tracked(LockCommand::Write(op.clone()), &mut maybe_proposed)
            .await;
        let reply = match outcome {
            Ok(LockOutcome::Applied { reply, .. }) => reply,
            Ok(_) => return Err(ServiceError::Raft("unexpected outcome".into())),
            Err(e) => {
                if !maybe_proposed {
                    withdrawal.disarm(); // refused before any leader's log saw it
                }
                return Err(e);
            }
        };
        let (LockReply::Queued, Some(wait_ms), Some(registration)) =
            (&reply, wait_ms, registration.as_mut())
        else {
            withdrawal.disarm();
            return Ok(command::reply_frame(&reply));
        };
        let wait = async {
            // The apply hook wakes us; the poll covers a grant this node never applies
            // one by one (it caught up by installing a snapshot).
            let mut poll = tokio::time::interval(GRANT_POLL);
            loop {
                tokio::select! {
                    token = &mut registration.granted => return token.ok(),
                    _ = poll.tick() => {
                        if let Some(token) = self.granted_by(&op, rid) {
                            return Some(token);
                        }
                    }
                }
            }
        };
        let granted = if wait_ms == 0 {
            wait.await
        } else {
            let left = Duration::from_millis(wait_ms).saturating_sub(started.elapsed());
            tokio::time::timeout(left, wait).await.ok().flatten()
        };
        if let Some(token) = granted {
            withdrawal.disarm();
            return Ok(Frame::Integer(token as i64));
        }
        // Timed out: withdraw. The reply comes from state newer than the request: a grant
        // that won the race is confirmed and reported, anything else means no lock.
        let cancel = op
            .withdrawal(false)
            .ok_or_else(|| ServiceError::Raft("not an acquire or upgrade".into()))?;
        let reply = match self.run(LockCommand::Write(cancel)).await? {
            LockOutcome::Applied { reply, .. } => reply,
            _ => return Err(ServiceError::Raft("unexpected outcome".into())),
        };
        withdrawal.disarm();
        Ok(match reply {
            LockReply::Granted { token } => Frame::Integer(token as i64),
            _ => Frame::Null,
        })
    }

    /// The token of the hold request `rid` was granted, in this node's applied state
    /// (which is then newer than the request).
    fn granted_by(&self, op: &LockOp, rid: RequestId) -> Option<u64> {
        let (LockOp::Acquire {
            resource, owner, ..
        }
        | LockOp::Upgrade {
            resource, owner, ..
        }) = op
        else {
            return None;
        };
        self.sm.read().table.granted_by(resource, owner, rid)
    }

    /// Runs a command on the leader, wherever it is, retrying through leader changes
    /// until `--no-leader-wait` runs out.
    pub async fn run(&self, cmd: LockCommand) -> Result<LockOutcome, ServiceError> {
        self.run_tracked(cmd, &mut false).await
    }

    /// [`run`](Self::run), setting `maybe_proposed` when some attempt may have put the
    /// command into a leader's log without this node learning its outcome (a timeout,
    /// a connection lost after sending). A failed command for which it stays false was
    /// never proposed.
    async fn run_tracked(
        &self,
        cmd: LockCommand,
        maybe_proposed: &mut bool,
    ) -> Result<LockOutcome, ServiceError> {
        let deadline = Instant::now() + self.no_leader_wait;
        let mut metrics = self.raft.metrics();
        // What to answer when the wait runs out: a leader said it has no quorum, or none
        // could be reached at all.
        let mut failure = ServiceError::NoLeader;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(failure);
            }
            let (leader, addr) = {
                let m = metrics.borrow();
                let leader = m.current_leader;
                let addr = leader.and_then(|l| {
                    m.membership_config
                        .membership()
                        .get_node(&l)
                        .map(|n| n.addr.clone())
                });
                (leader, addr)
            };
            let attempt = match (leader, addr) {
                // Cut off from the majority: refuse at once rather than append an entry
                // that cannot commit now and might commit later.
                (Some(l), _) if l == self.id && self.quorum_lost() => {
                    return Err(ServiceError::NoQuorum)
                }
                (Some(l), _) if l == self.id => self.run_local(&cmd, left).await,
                (Some(_), Some(addr)) => self.forward(&addr, &cmd, left).await,
                (Some(_), None) => Err(Attempt::Retry),
                (None, _) => {
                    let _ = tokio::time::timeout(left, metrics.changed()).await;
                    continue;
                }
            };
            match attempt {
                Ok(outcome) => return Ok(outcome),
                Err(Attempt::Retry) => {}
                Err(Attempt::RetryNoQuorum) => failure = ServiceError::NoQuorum,
                Err(Attempt::RetryUnknown(e)) => {
                    *maybe_proposed = true;
                    if e == ServiceError::NoQuorum {
                        failure = e;
                    }
                }
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::FailUnknown(e)) => {
                    *maybe_proposed = true;
                    return Err(e);
                }
            }
            let pause = if leader == Some(self.id) { 10 } else { 20 };
            tokio::time::sleep(Duration::from_millis(pause).min(left)).await;
        }
    }

    /// Runs `cmd` here, as leader.
    async fn run_local(&self, cmd: &LockCommand, left: Duration) -> Result<LockOutcome, Attempt> {
        match cmd {
            LockCommand::Write(op) => match self.proposer.propose(op.clone(), left).await {
                Ok((index, reply)) => Ok(LockOutcome::Applied { index, reply }),
                Err(ProposeError::NotLeader) => Err(Attempt::Retry),
                Err(ProposeError::NoQuorum) => Err(Attempt::Fail(ServiceError::NoQuorum)),
                // Proposed, not confirmed in time: the entry may still commit.
                Err(ProposeError::Timeout) if self.quorum_lost() => {
                    Err(Attempt::FailUnknown(ServiceError::NoQuorum))
                }
                Err(ProposeError::Timeout) => Err(Attempt::FailUnknown(ServiceError::NoLeader)),
                Err(ProposeError::Raft(e)) => Err(Attempt::FailUnknown(ServiceError::Raft(e))),
            },
            LockCommand::Check { resource, token } => {
                self.read_barrier(left).await?;
                Ok(LockOutcome::Check(
                    self.sm.read().table.check(resource, *token),
                ))
            }
            LockCommand::Info { resource } => {
                self.read_barrier(left).await?;
                Ok(LockOutcome::Info(InfoWire::from(
                    self.sm.read().table.info(resource, now_ms()),
                )))
            }
        }
    }

    /// Confirms leadership with a quorum and waits for the state machine to catch up.
    async fn read_barrier(&self, left: Duration) -> Result<(), Attempt> {
        match tokio::time::timeout(left, self.raft.ensure_linearizable()).await {
            Err(_) => Err(Attempt::Fail(ServiceError::NoLeader)),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(RaftError::APIError(_))) => Err(Attempt::Retry),
            Ok(Err(e)) => Err(Attempt::Fail(ServiceError::Raft(e.to_string()))),
        }
    }

    /// Sends `cmd` to the leader at `addr`.
    async fn forward(
        &self,
        addr: &str,
        cmd: &LockCommand,
        left: Duration,
    ) -> Result<LockOutcome, Attempt> {
        let body = serde_json::to_vec(cmd)
            .map_err(|e| Attempt::Fail(ServiceError::Raft(e.to_string())))?;
        let group = self.group.to_string();
        // A paused or cut-off leader never answers: give up on it after a second and look
        // again (by then the metrics usually name its successor).
        let attempt = left.min(FORWARD_ATTEMPT);
        // The leader drops a request that reaches it after this: a request stuck in a cut
        // connection must not be applied long after its client was told CLUSTERDOWN.
        let deadline = (now_ms() + attempt.as_millis() as u64).to_string();
        let reply = self
            .peers
            .client(addr)
            .call(
                &[b"LOCKFWD", group.as_bytes(), deadline.as_bytes(), &body],
                attempt,
            )
            .await;
        match reply {
            Ok(reply) => {
                match serde_json::from_slice::<Result<LockOutcome, ForwardError>>(&reply) {
                    Ok(Ok(outcome)) => Ok(outcome),
                    Ok(Err(ForwardError::NotLeader | ForwardError::Expired)) => Err(Attempt::Retry),
                    Ok(Err(ForwardError::NoQuorum)) => Err(Attempt::RetryNoQuorum),
                    Ok(Err(ForwardError::Refused(e))) => Err(Attempt::Fail(e)),
                    Ok(Err(ForwardError::Unknown(e @ ServiceError::Raft(_)))) => {
                        Err(Attempt::FailUnknown(e))
                    }
                    Ok(Err(ForwardError::Unknown(e))) => Err(Attempt::RetryUnknown(e)),
                    Err(e) => Err(Attempt::FailUnknown(ServiceError::Raft(e.to_string()))),
                }
            }
            // Never sent, or refused by the peer's cluster listener.
            Err(e @ (PeerError::Unreachable(..) | PeerError::Remote(_))) => {
                debug!(error = %e, "forward to leader failed; retrying");
                Err(Attempt::Retry)
            }
            // Sent, perhaps received: the outcome is unknown.
            Err(PeerError::Timeout(_)) if attempt >= left => {
                Err(Attempt::FailUnknown(ServiceError::NoLeader))
            }
            Err(e) => {
                debug!(error = %e, "forward to leader failed; retrying");
                Err(Attempt::RetryUnknown(ServiceError::NoLeader))
            }
        }
    }

    /// Serves a `LOCKFWD` from a peer: run here if leader and the sender still waits
    /// (`deadline_ms`, its wall clock). The reply is JSON
    /// `Result<LockOutcome, ForwardError>`.
    pub async fn handle_forward(&self, deadline_ms: u64, body: &[u8]) -> Bytes {
        let result = match serde_json::from_slice::<LockCommand>(body) {
            Err(e) => Err(ForwardError::Refused(ServiceError::Raft(format!(
                "bad forwarded command: {e}"
            )))),
            Ok(_) if now_ms() > deadline_ms => Err(ForwardError::Expired),
            Ok(_) if self.raft.metrics().borrow().current_leader != Some(self.id) => {
                Err(ForwardError::NotLeader)
            }
            Ok(_) if self.quorum_lost() => Err(ForwardError::NoQuorum),
            Ok(cmd) => {
                // Answer within the sender's budget: it stops waiting at the deadline.
                let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms()));
                self.run_local(&cmd, left).await.map_err(|a| match a {
                    Attempt::Retry => ForwardError::NotLeader,
                    Attempt::RetryNoQuorum => ForwardError::NoQuorum,
                    Attempt::Fail(e) => ForwardError::Refused(e),
                    Attempt::RetryUnknown(e) | Attempt::FailUnknown(e) => ForwardError::Unknown(e),
                })
            }
        };
        Bytes::from(serde_json::to_vec(&result).unwrap_or_default())
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
        let s = self.sm.read().table.stats();
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

/// How long one forwarding attempt may take before the leader is looked up again.
const FORWARD_ATTEMPT: Duration = Duration::from_millis(1000);

/// How often a blocked acquire also looks for its grant in the applied state.
const GRANT_POLL: Duration = Duration::from_millis(500);

/// A fresh request id: random, never 0 (see [`RequestId`]).
fn new_request_id() -> RequestId {
    rand::random::<u64>().max(1)
}

/// One attempt's failure.
enum Attempt {
    /// Nothing was proposed (not the leader, leader moved): try again.
    Retry,
    /// The leader reached has no quorum and proposed nothing: try again.
    RetryNoQuorum,
    /// The command may have been proposed, its outcome is unknown: try again (a
    /// repeat is harmless: the same request id, applied twice, changes nothing more).
    RetryUnknown(ServiceError),
    /// Give up; nothing was proposed.
    Fail(ServiceError),
    /// Give up; the command may have been proposed.
    FailUnknown(ServiceError),
}

/// Why a leader did not answer a forwarded command (`LOCKFWD`) with an outcome.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum ForwardError {
    /// Not the leader (any more): nothing was proposed; ask the new one.
    NotLeader,
    /// The leader has not heard from a majority lately: nothing was proposed.
    NoQuorum,
    /// The sender's deadline had passed when the command arrived: nothing was proposed.
    Expired,
    /// Refused before proposing, for good.
    Refused(ServiceError),
    /// Proposed, but not confirmed in time: it may still take effect.
    Unknown(ServiceError),
}
