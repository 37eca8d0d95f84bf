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
//! then blocks on the node it is connected to until that node applies the grant
//! ([`waiters`]). When its wait runs out, or it disconnects, a `Cancel` goes through
//! the log so the queue never grants a ghost. With no leader the command retries
//! until `--no-leader-wait`, then fails `-CLUSTERDOWN no raft leader`.

pub mod command;
pub mod driver;
pub mod proposer;
pub mod start;
pub mod status;
pub mod waiters;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use conclave_commands::locks::{LockOp, LockReply, Name};
use conclave_commands::{Frame, Parse};
use conclave_raft_store::{GroupId, NodeId, Raft, SharedStateMachine, META_GROUP};
use openraft::error::RaftError;
use thiserror::Error;
use tracing::{debug, warn};

use self::command::{InfoWire, LockCommand, LockOutcome};
use self::proposer::{ProposeError, Proposer};
use self::waiters::Waiters;
use crate::cluster::peer::PeerError;
use crate::cluster::raft_network::Peers;
use crate::command_table::CommandSpec;
use crate::node::Node;

/// Why a lock command could not be served.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// No leader could be reached within `--no-leader-wait`.
    #[error("CLUSTERDOWN no raft leader")]
    NoLeader,
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
    /// Wraps a started Raft group 0.
    pub fn new(
        id: NodeId,
        raft: Raft,
        sm: SharedStateMachine,
        peers: Arc<Peers>,
        waiters: Arc<Waiters>,
        fsyncs: Arc<AtomicU64>,
        no_leader_wait: Duration,
    ) -> LockService {
        let proposer = Proposer::start(raft.clone(), no_leader_wait);
        LockService {
            id,
            group: META_GROUP,
            raft,
            sm,
            peers,
            waiters,
            fsyncs,
            proposer,
            no_leader_wait,
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

    /// Proposes a write through the batching proposer (for the leader's housekeeping).
    pub async fn propose(&self, op: LockOp, within: Duration) -> Result<(), ProposeError> {
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
        let parsed = match command::parse(spec.name, parse, default_ttl) {
            Ok(p) => p,
            Err(e) => return e.to_frame(),
        };
        let result = match (&parsed.command, parsed.wait_ms) {
            (LockCommand::Write(op), Some(wait_ms)) => {
                self.acquire_blocking(op.clone(), wait_ms).await
            }
            _ => self.run(parsed.command).await.map(|o| match o {
                LockOutcome::Applied { reply, .. } => command::reply_frame(&reply),
                LockOutcome::Check(b) => Frame::Integer(b as i64),
                LockOutcome::Info(info) => command::info_frame(&info),
            }),
        };
        result.unwrap_or_else(|e| Frame::error(e.to_string()))
    }

    /// An acquire or upgrade that may wait: register, propose, block until granted,
    /// timed out (then cancel through the log) or dropped (cancel in the background).
    async fn acquire_blocking(
        self: &Arc<Self>,
        op: LockOp,
        wait_ms: u64,
    ) -> Result<Frame, ServiceError> {
        let (resource, owner) = match &op {
            LockOp::Acquire {
                resource, owner, ..
            }
            | LockOp::Upgrade {
                resource, owner, ..
            } => (resource.clone(), owner.clone()),
            _ => return Err(ServiceError::Raft("not a blocking operation".into())),
        };
        let mut registration = self.waiters.register(&resource, &owner);
        let started = Instant::now();
        let reply = match self.run(LockCommand::Write(op)).await? {
            LockOutcome::Applied { reply, .. } => reply,
            _ => return Err(ServiceError::Raft("unexpected outcome".into())),
        };
        if reply != LockReply::Queued {
            return Ok(command::reply_frame(&reply));
        }
        // Queued: from here on, leaving early must withdraw the request.
        let mut cancel = CancelOnDrop {
            service: self.clone(),
            resource: resource.clone(),
            owner: owner.clone(),
            armed: true,
        };
        let granted = if wait_ms == 0 {
            (&mut registration.granted).await.ok()
        } else {
            let left = Duration::from_millis(wait_ms).saturating_sub(started.elapsed());
            tokio::time::timeout(left, &mut registration.granted)
                .await
                .ok()
                .and_then(Result::ok)
        };
        if let Some(token) = granted {
            cancel.armed = false;
            return Ok(Frame::Integer(token as i64));
        }
        // Timed out: cancel; if the grant won the race, report it.
        cancel.armed = false;
        match self.cancel(&resource, &owner).await? {
            LockReply::Done(true) => Ok(Frame::Null),
            _ => {
                let token = tokio::time::timeout(self.no_leader_wait, &mut registration.granted)
                    .await
                    .ok()
                    .and_then(Result::ok);
                Ok(token
                    .or_else(|| self.holder_token(&resource, &owner))
                    .map(|t| Frame::Integer(t as i64))
                    .unwrap_or(Frame::Null))
            }
        }
    }

    async fn cancel(&self, resource: &Name, owner: &Name) -> Result<LockReply, ServiceError> {
        let op = LockOp::Cancel {
            resource: resource.clone(),
            owner: owner.clone(),
        };
        match self.run(LockCommand::Write(op)).await? {
            LockOutcome::Applied { reply, .. } => Ok(reply),
            _ => Err(ServiceError::Raft("unexpected outcome".into())),
        }
    }

    /// The token `owner` holds on `resource` in the locally applied state.
    fn holder_token(&self, resource: &[u8], owner: &[u8]) -> Option<u64> {
        let info = self.sm.read().table.info(resource, now_ms());
        info.holders
            .into_iter()
            .find(|h| h.owner == owner)
            .map(|h| h.token)
    }

    /// Runs a command on the leader, wherever it is, retrying through leader changes
    /// until `--no-leader-wait` runs out.
    pub async fn run(&self, cmd: LockCommand) -> Result<LockOutcome, ServiceError> {
        let deadline = Instant::now() + self.no_leader_wait;
        let mut metrics = self.raft.metrics();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ServiceError::NoLeader);
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
            match leader {
                Some(l) if l == self.id => match self.run_local(&cmd, left).await {
                    Ok(outcome) => return Ok(outcome),
                    Err(Attempt::Retry) => tokio::time::sleep(Duration::from_millis(10)).await,
                    Err(Attempt::Fail(e)) => return Err(e),
                },
                Some(_) => {
                    let Some(addr) = addr else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    match self.forward(&addr, &cmd, left).await {
                        Ok(outcome) => return Ok(outcome),
                        Err(Attempt::Retry) => {
                            tokio::time::sleep(Duration::from_millis(20).min(left)).await
                        }
                        Err(Attempt::Fail(e)) => return Err(e),
                    }
                }
                None => {
                    let _ = tokio::time::timeout(left, metrics.changed()).await;
                }
            }
        }
    }

    /// Runs `cmd` here, as leader.
    async fn run_local(&self, cmd: &LockCommand, left: Duration) -> Result<LockOutcome, Attempt> {
        match cmd {
            LockCommand::Write(op) => match self.proposer.propose(op.clone(), left).await {
                Ok((index, reply)) => Ok(LockOutcome::Applied { index, reply }),
                Err(ProposeError::NotLeader) => Err(Attempt::Retry),
                Err(ProposeError::Timeout) => Err(Attempt::Fail(ServiceError::NoLeader)),
                Err(ProposeError::Raft(e)) => Err(Attempt::Fail(ServiceError::Raft(e))),
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
        match self
            .peers
            .client(addr)
            .call(
                &[b"LOCKFWD", group.as_bytes(), deadline.as_bytes(), &body],
                attempt,
            )
            .await
        {
            Ok(reply) => match serde_json::from_slice::<Result<LockOutcome, String>>(&reply) {
                Ok(Ok(outcome)) => Ok(outcome),
                Ok(Err(e)) if e == NOT_LEADER => Err(Attempt::Retry),
                Ok(Err(e)) if e.starts_with("CLUSTERDOWN") => Err(Attempt::Retry),
                Ok(Err(e)) => Err(Attempt::Fail(ServiceError::Raft(e))),
                Err(e) => Err(Attempt::Fail(ServiceError::Raft(e.to_string()))),
            },
            Err(PeerError::Timeout(_)) if attempt >= left => {
                Err(Attempt::Fail(ServiceError::NoLeader))
            }
            Err(e) => {
                debug!(error = %e, "forward to leader failed; retrying");
                Err(Attempt::Retry)
            }
        }
    }

    /// Serves a `LOCKFWD` from a peer: run here if leader and the sender still waits
    /// (`deadline_ms`, its wall clock).
    pub async fn handle_forward(&self, deadline_ms: u64, body: &[u8]) -> Bytes {
        let result: Result<LockOutcome, String> = match serde_json::from_slice::<LockCommand>(body)
        {
            Err(e) => Err(format!("ERR bad forwarded command: {e}")),
            Ok(_) if now_ms() > deadline_ms => {
                Err("CLUSTERDOWN forwarded request expired before the leader saw it".into())
            }
            Ok(cmd) => {
                if self.raft.metrics().borrow().current_leader != Some(self.id) {
                    Err(NOT_LEADER.to_string())
                } else {
                    // Answer within the sender's budget: it stops waiting at the deadline.
                    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms()));
                    match self.run_local(&cmd, left).await {
                        Ok(o) => Ok(o),
                        Err(Attempt::Retry) => Err(NOT_LEADER.to_string()),
                        Err(Attempt::Fail(e)) => Err(e.to_string()),
                    }
                }
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

/// The forwarded-command error meaning "ask the new leader".
const NOT_LEADER: &str = "NOTLEADER";

/// One attempt's failure: try again (leader moved) or give up.
enum Attempt {
    Retry,
    Fail(ServiceError),
}

/// Withdraws a queued request if the waiting client goes away.
struct CancelOnDrop {
    service: Arc<LockService>,
    resource: Name,
    owner: Name,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let service = self.service.clone();
        let (resource, owner) = (
            std::mem::take(&mut self.resource),
            std::mem::take(&mut self.owner),
        );
        tokio::spawn(async move {
            if let Err(e) = service.cancel(&resource, &owner).await {
                warn!(error = %e, "could not cancel the wait of a departed client");
            }
        });
    }
}
