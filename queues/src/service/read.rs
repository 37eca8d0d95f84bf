//! `Q.READ` for a client: propose the read; when nothing is available and it may block,
//! wait on this node for the answer carrying this very request's id.
//!
//! The read is queued in the shard's replicated state with a random request id and this
//! process's origin. Whatever answers it later — a push, a visibility timeout or delay
//! running out, its `BLOCK` running out (a `Tick`), its group or topic going away — is
//! applied on every replica as a [`Wake`](crate::machine::Wake); this node's apply hook
//! hands the one with this id to the waiting client ([`Waiters`]). So the answer comes
//! from state newer than the request, and a wait survives a change of leader.
//!
//! A wait that ends without an answer (the client went away, an error reply, the local
//! safety timer) leaves a [`Withdrawal`] armed: it proposes `Cancel` for the request in
//! the background. Messages delivered to a request nobody waits for any more are given
//! back (`Unread`) by the apply hook ([`super::start`]), so they are redelivered at once
//! rather than after their visibility timeout.
//!
//! A node that does not replicate the shard cannot apply its answers: it forwards the
//! blocking read to a replica, which waits for it under its own origin.
//!
//! `CLIENT UNBLOCK` ([`BlockedWait`]) ends a blocked read here: `TIMEOUT` as when its
//! `BLOCK` runs out (withdrawn, answered with a null), `ERROR` with `-UNBLOCKED` (withdrawn
//! in the background; anything it was handed is given back). A read forwarded to a
//! replica is only abandoned: that replica's read stays queued until its own `BLOCK` ends,
//! and messages it takes then stay pending until their visibility timeout (never lost).

use std::sync::Arc;
use std::time::Duration;

use crate::machine::{Name, QueueOp, QueueReply, WakeOutcome};
use conclave_protocol::blocking::{BlockedWait, Unblock};
use conclave_protocol::Frame;

use super::route::{block_budget, Forwarded};
use super::{QueueService, ServiceError};
use crate::commands::QueueCommand;
use crate::reply;

/// How long past its `BLOCK` a waiting read trusts the leader's `Tick` to answer it
/// before withdrawing it itself.
const GRACE: Duration = Duration::from_secs(5);

impl QueueService {
    /// `Q.READ` for a client of this node, which `CLIENT UNBLOCK` may end through `wait`.
    pub(super) async fn read(
        self: &Arc<Self>,
        op: QueueOp,
        wait: &BlockedWait,
    ) -> Result<Frame, ServiceError> {
        let QueueOp::Read {
            topic, block_ms, ..
        } = &op
        else {
            return Err(ServiceError::Raft("not a read".into()));
        };
        let shard = self.shard_of(topic);
        let block = *block_ms;
        let reply = if self.shards[shard as usize].local.is_some() {
            self.read_here(shard, op, block, Some(wait)).await?
        } else {
            let fwd = Forwarded {
                cmds: vec![QueueCommand::Write(op)],
                block,
            };
            let forwarded = self.run(shard, fwd);
            let outcome = match block {
                Some(_) => match wait.run(forwarded).await {
                    Ok(outcome) => outcome,
                    Err(Unblock::Timeout) => return Ok(Frame::NullArray),
                    Err(Unblock::Error) => return Err(ServiceError::Unblocked),
                },
                None => forwarded.await,
            };
            outcome?.reply()?
        };
        Ok(match reply {
            QueueReply::Waiting => Frame::NullArray,
            other => reply::reply_frame(&other),
        })
    }

    /// A read of `shard` (which this node replicates) waiting on this node when it
    /// blocks: the reply is `Messages` (empty when none came) or an error reply. `wait`
    /// is the client's, when the client is connected here.
    pub(super) async fn read_here(
        &self,
        shard: u32,
        mut op: QueueOp,
        block: Option<u64>,
        wait: Option<&BlockedWait>,
    ) -> Result<QueueReply, ServiceError> {
        let Some(local) = &self.shards[shard as usize].local else {
            return Err(ServiceError::Raft(format!(
                "this node does not replicate queue shard {shard}"
            )));
        };
        let QueueOp::Read {
            topic,
            group,
            rid,
            origin,
            ..
        } = &mut op
        else {
            return Err(ServiceError::Raft("not a read".into()));
        };
        *rid = rand::random::<u64>().max(1);
        *origin = self.origin;
        let (topic, group, rid) = (topic.clone(), group.clone(), *rid);
        // Registered before proposing, so an answer applied here before the reply to the
        // proposal arrives is not missed.
        let registration = block.map(|_| local.waiters.register(rid));
        let mut withdrawal = Withdrawal {
            service: self,
            shard,
            topic,
            group,
            rid,
            armed: block.is_some(),
        };
        let reply = self
            .run(shard, Forwarded::now(QueueCommand::Write(op)))
            .await?
            .reply()?;
        let (QueueReply::Waiting, Some(block), Some(mut registration)) =
            (&reply, block, registration)
        else {
            withdrawal.armed = false;
            return Ok(reply);
        };
        // The leader's `Tick` answers the read when its BLOCK runs out; the local timer
        // is only a safety net for a tick that never comes (no leader for a long time).
        let woken = tokio::time::timeout(block_budget(block) + GRACE, &mut registration.woken);
        // `None`: the local timer ran out, or `CLIENT UNBLOCK ... TIMEOUT` came.
        let woken = match wait {
            Some(wait) => match wait.run(woken).await {
                Ok(woken) => woken.ok(),
                Err(Unblock::Timeout) => None,
                // The armed withdrawal takes the read back; whatever it was handed in
                // the meantime is given back, as nobody waits for it any more.
                Err(Unblock::Error) => return Err(ServiceError::Unblocked),
            },
            None => woken.await.ok(),
        };
        match woken.map(|w| w.map(|w| w.outcome)) {
            Some(Ok(WakeOutcome::Messages(msgs))) => {
                withdrawal.armed = false;
                Ok(QueueReply::Messages(msgs))
            }
            Some(Ok(WakeOutcome::TimedOut | WakeOutcome::Gone)) => {
                withdrawal.armed = false;
                Ok(QueueReply::Messages(Vec::new()))
            }
            // The registration is ours until dropped; a closed channel cannot happen, and a
            // silent timer or an unblock ends the same way: withdraw, answer none.
            Some(Err(_)) | None => {
                withdrawal.armed = false;
                let cancel = withdrawal.cancel_op();
                // Answered by state newer than the request: if the read was already
                // served, the apply hook gives its messages back (nobody waits for them).
                drop(registration);
                self.run(shard, Forwarded::now(QueueCommand::Write(cancel)))
                    .await
                    .map(|_| QueueReply::Messages(Vec::new()))
            }
        }
    }
}

/// Takes a queued read back through the log unless disarmed: a read whose client stops
/// waiting (gone, or answered with an error) must not take messages later.
struct Withdrawal<'a> {
    service: &'a QueueService,
    shard: u32,
    topic: Name,
    group: Name,
    rid: u64,
    armed: bool,
}

impl Withdrawal<'_> {
    fn cancel_op(&self) -> QueueOp {
        QueueOp::Cancel {
            topic: self.topic.clone(),
            group: self.group.clone(),
            rid: self.rid,
        }
    }
}

impl Drop for Withdrawal<'_> {
    fn drop(&mut self) {
        if self.armed {
            // The driver proposes it (retried until it commits).
            let _ = self.service.giveback.send((self.shard, self.cancel_op()));
        }
    }
}
