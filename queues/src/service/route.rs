//! Where a queue command runs: on its shard's leader — here, or forwarded over the
//! cluster channel (`FWD queues <group> <deadline-ms> <body>`, postcard-encoded
//! [`Forwarded`] in, `Result<Outcome, ForwardError>` out) — retried through leader
//! changes until `--no-leader-wait` runs out. A node that does not replicate the shard
//! forwards to one of its replicas, which routes it on.
//!
//! Every failure says whether the command may have been proposed. A refusal before any
//! log saw it (not the leader, no quorum, the sender's deadline passed) is retried or
//! answered as an error that means "nothing happened". A command proposed but not
//! confirmed in time is retried only when applying it twice changes nothing more (acks,
//! nacks, withdrawals, pushes carrying a `DEDUP` id); any other answers
//! [`ServiceError::Unknown`].

use std::time::{Duration, Instant};

use bytes::Bytes;
use conclave_cluster::group::BoxFuture;
use conclave_cluster::peer::PeerError;
use conclave_cluster::router::ForwardHandler;
use conclave_raft_store::proposer::{now_ms, ProposeError};
use conclave_raft_store::{GroupId, NodeId, QUEUE_GROUP_BASE};
use openraft::error::RaftError;
use serde::{Deserialize, Serialize};
use tracing::debug;

use super::{LocalShard, QueueService, ServiceError};
use crate::commands::QueueCommand;
use crate::machine::{QueueOp, QueueReply};

/// The name the queue service registers under with the cluster router (`FWD queues`).
pub const SERVICE: &str = "queues";

/// How long one forwarding attempt may take before the leader is looked up again (a
/// paused or cut-off leader never answers).
const FORWARD_ATTEMPT: Duration = Duration::from_millis(1000);

/// A command as it travels to a shard's leader.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(super) struct Forwarded {
    /// What to run: one command, or several writes (one connection's pipelined pushes to
    /// this shard, see [`QueueService::push_all`]) proposed in one log entry, in order.
    pub(super) cmds: Vec<QueueCommand>,
    /// A `Q.READ` that may block, forwarded by a node that does not replicate the shard:
    /// the receiver waits for the answer itself (`None`: answer at once). Milliseconds
    /// of `BLOCK` (0: for ever).
    pub(super) block: Option<u64>,
}

impl Forwarded {
    /// A command answered at once.
    pub(super) fn now(cmd: QueueCommand) -> Forwarded {
        Forwarded {
            cmds: vec![cmd],
            block: None,
        }
    }
}

/// A leader's answer.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(super) struct Outcome {
    /// The state machine's reply (or the read's answer) to each command, in order.
    pub(super) replies: Vec<QueueReply>,
    /// The node that answered as leader.
    pub(super) leader: NodeId,
}

impl Outcome {
    /// The reply to a lone command.
    pub(super) fn reply(self) -> Result<QueueReply, ServiceError> {
        self.replies
            .into_iter()
            .next()
            .ok_or_else(|| ServiceError::Raft("no reply from the shard's leader".into()))
    }
}

/// Why a node did not answer a forwarded command with an [`Outcome`] (the shape every
/// routed service shares).
pub type ForwardError = conclave_cluster::leader_route::ForwardError<ServiceError>;

/// One attempt's failure.
enum Attempt {
    /// Nothing was proposed: try again.
    Retry,
    /// The leader reached has no quorum and proposed nothing: try again.
    RetryNoQuorum,
    /// Give up; nothing was proposed.
    Fail(ServiceError),
    /// The command may have been proposed; its outcome is unknown.
    Unknown(ServiceError),
}

/// Whether applying `cmd` a second time changes nothing the first did not (so an
/// attempt whose outcome is unknown may be repeated).
fn repeatable(cmd: &QueueCommand) -> bool {
    match cmd {
        QueueCommand::Query(_) => true,
        QueueCommand::Write(op) => matches!(
            op,
            QueueOp::Push { dedup: Some(_), .. }
                | QueueOp::Ack { .. }
                | QueueOp::Nack { .. }
                | QueueOp::Cancel { .. }
                | QueueOp::Unread { .. }
                | QueueOp::CancelOrigin { .. }
                | QueueOp::Tick
                | QueueOp::Configure(_)
        ),
    }
}

impl QueueService {
    /// Runs `fwd` on the leader of `shard`, wherever it is, retrying through leader
    /// changes until `--no-leader-wait` runs out.
    pub(super) async fn run(&self, shard: u32, fwd: Forwarded) -> Result<Outcome, ServiceError> {
        let wait = fwd.block.map_or(Duration::ZERO, block_budget);
        self.run_until(shard, &fwd, Instant::now() + self.no_leader_wait + wait)
            .await
    }

    async fn run_until(
        &self,
        shard: u32,
        fwd: &Forwarded,
        deadline: Instant,
    ) -> Result<Outcome, ServiceError> {
        let s = &self.shards[shard as usize];
        let mut failure = ServiceError::NoLeader;
        let mut next_replica = 0usize;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(failure);
            }
            let attempt = match &s.local {
                Some(local) => match local.group.leader() {
                    Some(l) if l == self.id => {
                        if local.group.quorum_lost() {
                            return Err(ServiceError::NoQuorum);
                        }
                        self.run_local(local, &fwd.cmds, left).await
                    }
                    Some(l) => self.forward(l, s.group, fwd, left).await,
                    None => {
                        let mut metrics = local.group.raft().metrics();
                        let _ = tokio::time::timeout(
                            left.min(Duration::from_millis(100)),
                            metrics.changed(),
                        )
                        .await;
                        continue;
                    }
                },
                None => {
                    let Some(&r) = s.replicas.get(next_replica % s.replicas.len().max(1)) else {
                        return Err(ServiceError::Raft(format!("shard {shard} has no replicas")));
                    };
                    next_replica += 1;
                    self.forward(r, s.group, fwd, left).await
                }
            };
            match attempt {
                Ok(outcome) => return Ok(outcome),
                Err(Attempt::Retry) => {}
                Err(Attempt::RetryNoQuorum) => failure = ServiceError::NoQuorum,
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Unknown(e)) if fwd.cmds.iter().all(repeatable) => failure = e,
                Err(Attempt::Unknown(e)) => return Err(e),
            }
            tokio::time::sleep(Duration::from_millis(10).min(left)).await;
        }
    }

    /// Runs `cmds` here, as the shard's leader: one command, or several writes proposed
    /// together in one entry.
    async fn run_local(
        &self,
        local: &LocalShard,
        cmds: &[QueueCommand],
        left: Duration,
    ) -> Result<Outcome, Attempt> {
        if cmds
            .iter()
            .any(|c| matches!(c, QueueCommand::Write(QueueOp::Push { .. })))
        {
            self.budget.admit_push().map_err(Attempt::Fail)?;
        }
        let proposed = match cmds {
            [QueueCommand::Write(op)] => local
                .proposer
                .propose(op.clone(), left)
                .await
                .map(|(_, applied)| vec![applied.reply]),
            [QueueCommand::Query(q)] => {
                match tokio::time::timeout(left, local.group.raft().ensure_linearizable()).await {
                    Err(_) => return Err(Attempt::Fail(ServiceError::NoLeader)),
                    Ok(Ok(_)) => {}
                    Ok(Err(RaftError::APIError(_))) => return Err(Attempt::Retry),
                    Ok(Err(e)) => return Err(Attempt::Fail(ServiceError::Raft(e.to_string()))),
                }
                Ok(vec![local.group.state().read().machine.query(q, now_ms())])
            }
            _ => {
                let Some(ops) = cmds
                    .iter()
                    .map(|c| match c {
                        QueueCommand::Write(op) => Some(op.clone()),
                        QueueCommand::Query(_) => None,
                    })
                    .collect::<Option<Vec<_>>>()
                else {
                    return Err(Attempt::Fail(ServiceError::Raft(
                        "queries are not proposed together".into(),
                    )));
                };
                local
                    .proposer
                    .propose_all(ops, left)
                    .await
                    .map(|(_, applied)| applied.into_iter().map(|a| a.reply).collect())
            }
        };
        let replies = match proposed {
            Ok(replies) => replies,
            Err(ProposeError::NotLeader) => return Err(Attempt::Retry),
            Err(ProposeError::NoQuorum) => return Err(Attempt::Fail(ServiceError::NoQuorum)),
            Err(ProposeError::Timeout) => return Err(Attempt::Unknown(ServiceError::Unknown)),
            Err(ProposeError::Raft(e)) => return Err(Attempt::Unknown(ServiceError::Raft(e))),
        };
        Ok(Outcome {
            replies,
            leader: self.id,
        })
    }

    /// Sends `fwd` to node `to`.
    async fn forward(
        &self,
        to: NodeId,
        group: GroupId,
        fwd: &Forwarded,
        left: Duration,
    ) -> Result<Outcome, Attempt> {
        let Some(addr) = self.members.get(&to) else {
            return Err(Attempt::Retry);
        };
        let body = conclave_raft_store::postcard_after(&[], fwd)
            .map_err(|e| Attempt::Fail(ServiceError::Raft(e.to_string())))?;
        let attempt = left.min(FORWARD_ATTEMPT + fwd.block.map_or(Duration::ZERO, block_budget));
        // The receiver drops a request that reaches it after this: one stuck in a cut
        // connection must not apply long after its client was answered.
        let deadline = now_ms() + attempt.as_millis() as u64;
        let reply = self
            .peers
            .client(addr)
            .forward(SERVICE, group, deadline, &body, attempt)
            .await;
        match reply {
            Ok(reply) => match postcard::from_bytes::<Result<Outcome, ForwardError>>(&reply) {
                Ok(Ok(outcome)) => Ok(outcome),
                Ok(Err(ForwardError::NotLeader | ForwardError::Expired)) => Err(Attempt::Retry),
                Ok(Err(ForwardError::NoQuorum)) => Err(Attempt::RetryNoQuorum),
                Ok(Err(ForwardError::Refused(e))) => Err(Attempt::Fail(e)),
                Ok(Err(ForwardError::Unknown(e))) => Err(Attempt::Unknown(e)),
                Err(e) => Err(Attempt::Unknown(ServiceError::Raft(format!(
                    "bad forwarded reply: {e}"
                )))),
            },
            // Never sent, or refused by the peer's cluster listener.
            Err(e @ (PeerError::Unreachable(..) | PeerError::Remote(_))) => {
                debug!(error = %e, "forward to the shard's leader failed; retrying");
                Err(Attempt::Retry)
            }
            // Sent, perhaps received: the outcome is unknown.
            Err(e) => {
                debug!(error = %e, "forward to the shard's leader timed out");
                Err(Attempt::Unknown(ServiceError::Unknown))
            }
        }
    }

    /// Serves a command forwarded by a peer: as leader of the shard, or routed on (a
    /// forwarding node that does not replicate the shard sends to any replica). A
    /// blocking read waits here.
    async fn handle_forward(&self, group: GroupId, deadline_ms: u64, body: &[u8]) -> Bytes {
        let result = self.serve_forward(group, deadline_ms, body).await;
        Bytes::from(conclave_raft_store::postcard_after(&[], &result).unwrap_or_default())
    }

    async fn serve_forward(
        &self,
        group: GroupId,
        deadline_ms: u64,
        body: &[u8],
    ) -> Result<Outcome, ForwardError> {
        let shard = group
            .checked_sub(QUEUE_GROUP_BASE)
            .and_then(|s| u32::try_from(s).ok())
            .filter(|s| *s < self.shard_count())
            .ok_or_else(|| {
                ForwardError::Refused(ServiceError::Raft(format!(
                    "no queue shard group {group} in this cluster"
                )))
            })?;
        let fwd: Forwarded = postcard::from_bytes(body).map_err(|e| {
            ForwardError::Refused(ServiceError::Raft(format!("bad forwarded command: {e}")))
        })?;
        if now_ms() > deadline_ms {
            return Err(ForwardError::Expired);
        }
        let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms()));
        let Some(local) = &self.shards[shard as usize].local else {
            return Err(ForwardError::Refused(ServiceError::Raft(format!(
                "this node does not replicate queue shard {shard}"
            ))));
        };
        if let (Some(block), [QueueCommand::Write(op @ QueueOp::Read { .. })]) =
            (fwd.block, fwd.cmds.as_slice())
        {
            // Waits here, under this node's origin; the sender gave its whole budget.
            return match self.read_here(shard, op.clone(), Some(block), None).await {
                Ok(reply) => Ok(Outcome {
                    replies: vec![reply],
                    leader: local.group.leader().unwrap_or(self.id),
                }),
                Err(e @ ServiceError::Unknown) => Err(ForwardError::Unknown(e)),
                Err(e) => Err(ForwardError::Refused(e)),
            };
        }
        if local.group.leader() != Some(self.id) {
            // A replica reached by a node outside the shard routes the command on.
            let deadline = Instant::now() + left;
            return self
                .run_until(shard, &fwd, deadline)
                .await
                .map_err(|e| match e {
                    ServiceError::NoQuorum => ForwardError::NoQuorum,
                    ServiceError::NoLeader => ForwardError::NotLeader,
                    e => ForwardError::Unknown(e),
                });
        }
        if local.group.quorum_lost() {
            return Err(ForwardError::NoQuorum);
        }
        self.run_local(local, &fwd.cmds, left)
            .await
            .map_err(|a| match a {
                Attempt::Retry => ForwardError::NotLeader,
                Attempt::RetryNoQuorum => ForwardError::NoQuorum,
                Attempt::Fail(e) => ForwardError::Refused(e),
                Attempt::Unknown(e) => ForwardError::Unknown(e),
            })
    }
}

/// How long a forwarded blocking read may take beyond the normal budget: its `BLOCK`
/// (0 = for ever: a day, after which the client sees the null answer of a timeout).
pub(super) fn block_budget(block_ms: u64) -> Duration {
    match block_ms {
        0 => Duration::from_secs(86_400),
        ms => Duration::from_millis(ms),
    }
}

/// Forwarded commands arrive through the node's cluster router.
impl ForwardHandler for QueueService {
    fn handle(&self, group: GroupId, deadline_ms: u64, body: Bytes) -> BoxFuture<'_, Bytes> {
        Box::pin(async move { self.handle_forward(group, deadline_ms, &body).await })
    }
}
