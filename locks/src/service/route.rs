//! Where a lock command runs: here when this node leads, else forwarded to the leader
//! (`FWD locks <group> <deadline-ms> <json>` on the cluster channel, see
//! `conclave_cluster::wire`), retried through leader changes until `--no-leader-wait`
//! runs out. The lock service registers with the node's cluster router as [`SERVICE`].
//!
//! Every failure says whether the command may have been proposed: a refusal before any
//! log saw it (not the leader, no quorum, the sender's deadline passed) needs no
//! withdrawal; a timeout or a connection lost after sending does (see [`super::withdraw`]).

use std::time::{Duration, Instant};

use bytes::Bytes;
use conclave_cluster::group::BoxFuture;
use conclave_cluster::router::ForwardHandler;
use conclave_raft_store::GroupId;
use openraft::error::RaftError;
use serde::{Deserialize, Serialize};
use tracing::debug;

use super::{now_ms, LockService, ServiceError};
use crate::commands::{InfoWire, LockCommand, LockOutcome};
use conclave_cluster::peer::PeerError;
use conclave_raft_store::proposer::ProposeError;

impl LockService {
    /// Runs a command on the leader, wherever it is, retrying through leader changes
    /// until `--no-leader-wait` runs out.
    pub async fn run(&self, cmd: LockCommand) -> Result<LockOutcome, ServiceError> {
        self.run_tracked(cmd, &mut false).await
    }

    /// [`run`](Self::run), setting `maybe_proposed` when some attempt may have put the
    /// command into a leader's log without this node learning its outcome (a timeout,
    /// a connection lost after sending). A failed command for which it stays false was
    /// never proposed.
    pub(super) async fn run_tracked(
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
                Ok((index, applied)) => Ok(LockOutcome::Applied {
                    index,
                    reply: applied.reply,
                }),
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
                    self.sm.read().machine.check(resource, *token),
                ))
            }
            LockCommand::Info { resource } => {
                self.read_barrier(left).await?;
                Ok(LockOutcome::Info(InfoWire::from(
                    self.sm.read().machine.info(resource, now_ms()),
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
        // A paused or cut-off leader never answers: give up on it after a second and look
        // again (by then the metrics usually name its successor).
        let attempt = left.min(FORWARD_ATTEMPT);
        // The leader drops a request that reaches it after this: a request stuck in a cut
        // connection must not be applied long after its client was told CLUSTERDOWN.
        let deadline = now_ms() + attempt.as_millis() as u64;
        let reply = self
            .peers
            .client(addr)
            .forward(SERVICE, self.group.group(), deadline, &body, attempt)
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

    /// Serves a forwarded command from a peer (`FWD locks`): run here if leader and the
    /// sender still waits (`deadline_ms`, its wall clock). The reply is JSON
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
}

/// The name the lock service registers under with the cluster router (`FWD locks ...`).
pub const SERVICE: &str = "locks";

/// Forwarded commands arrive through the node's cluster router.
impl ForwardHandler for LockService {
    fn handle(&self, group: GroupId, deadline_ms: u64, body: Bytes) -> BoxFuture<'_, Bytes> {
        Box::pin(async move {
            if group != self.group.group() {
                let refused: Result<LockOutcome, ForwardError> = Err(ForwardError::Refused(
                    ServiceError::Raft(format!("no lock group {group} on this node")),
                ));
                return Bytes::from(serde_json::to_vec(&refused).unwrap_or_default());
            }
            self.handle_forward(deadline_ms, &body).await
        })
    }
}

/// How long one forwarding attempt may take before the leader is looked up again.
const FORWARD_ATTEMPT: Duration = Duration::from_millis(1000);

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

/// Why a leader did not answer a forwarded command (`FWD locks`) with an outcome.
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
