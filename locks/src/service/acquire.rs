//! `LOCK.ACQUIRE` / `LOCK.UPGRADE` for a client: propose, block until the grant of this
//! very request, or withdraw it.
//!
//! The client is answered only from state at or after its own request: the grant that
//! carries its request id (applied on this node), or the reply of its own `Cancel`. A
//! [`Withdrawal`] armed for the whole call takes the request back through the log if the
//! call ends without a success reply while the request may be in a leader's log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::machine::{LockOp, LockReply, RequestId};
use conclave_protocol::Frame;

use super::withdraw::Withdrawal;
use super::{LockService, ServiceError};
use crate::commands::{self as command, LockCommand, LockOutcome};
use conclave_protocol::blocking::{BlockedWait, Unblock, UNBLOCKED_ERROR};

impl LockService {
    /// An acquire or upgrade (carrying a fresh request id): propose it; when queued,
    /// block until its own grant, or until `wait_ms` runs out (then withdraw it through
    /// the log; the withdrawal's reply says whether the grant won the race).
    ///
    /// Whatever ends this early — an error reply, or the client going away (the future
    /// is dropped) — leaves the [`Withdrawal`] armed, which takes the request back
    /// through the log in the background: an error reply means it never takes effect.
    ///
    /// The wait for the grant runs marked blocked in `blocked`: `CLIENT UNBLOCK ...
    /// TIMEOUT` ends it as if `wait_ms` had run out, `... ERROR` with an error reply
    /// (the request is withdrawn like any other that ends in an error).
    pub(super) async fn acquire(
        self: &Arc<Self>,
        op: LockOp,
        wait_ms: Option<u64>,
        blocked: &BlockedWait,
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
                    token = &mut registration.woken => return token.ok(),
                    _ = poll.tick() => {
                        if let Some(token) = self.granted_by(&op, rid) {
                            return Some(token);
                        }
                    }
                }
            }
        };
        let timed = async {
            if wait_ms == 0 {
                wait.await
            } else {
                let left = Duration::from_millis(wait_ms).saturating_sub(started.elapsed());
                tokio::time::timeout(left, wait).await.ok().flatten()
            }
        };
        let granted = match blocked.run(timed).await {
            Ok(granted) => granted,
            Err(Unblock::Timeout) => None,
            // The withdrawal stays armed: dropped here, it takes the request back.
            Err(Unblock::Error) => return Ok(Frame::error(UNBLOCKED_ERROR)),
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
        self.sm.read().machine.granted_by(resource, owner, rid)
    }
}

/// How often a blocked acquire also looks for its grant in the applied state.
const GRANT_POLL: Duration = Duration::from_millis(500);

/// A fresh request id: random, never 0 (see [`RequestId`]).
pub(super) fn new_request_id() -> RequestId {
    rand::random::<u64>().max(1)
}
