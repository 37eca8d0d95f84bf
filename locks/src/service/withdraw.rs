//! Taking back an acquire or upgrade whose client will not be told it succeeded.
//!
//! An error reply must mean the request never takes effect (`docs/CONTRACT.md`
//! sections 3 and 4). But a request the leader appended may still commit after its
//! client was answered `-CLUSTERDOWN` — by this leader once the majority is back, or by
//! a successor that has the entry. So whenever [`LockService::acquire`] ends without a
//! success reply (an error, or the client went away and its future was dropped), the
//! armed [`Withdrawal`] proposes `Cancel { undo: true }` for the request id in the
//! background, retrying until it commits. Raft orders it after the request if the
//! request commits at all (an entry committed at a lower index by a later leader
//! means the request's entry was overwritten), so the request grants nothing: a queued
//! request is dropped, a grant not confirmed since is released (an upgrade turned back
//! to shared).
//!
//! Retries stop after [`MAX_TTL_MS`]: by then any lease the request could have been
//! granted has run out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::machine::{LockOp, RequestId, MAX_TTL_MS};
use tracing::{debug, warn};

use super::LockService;
use crate::commands::LockCommand;

/// First pause between attempts; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Withdraws an acquire/upgrade through the log when dropped armed.
pub struct Withdrawal {
    service: Arc<LockService>,
    /// `Cancel { undo: true }` for the request; `None` once disarmed.
    undo: Option<LockOp>,
    rid: RequestId,
}

impl Withdrawal {
    /// Armed for `op`; `None` when `op` is not an acquire or upgrade.
    pub fn arm(service: &Arc<LockService>, op: &LockOp) -> Option<Withdrawal> {
        let undo = op.withdrawal(true)?;
        let rid = match &undo {
            LockOp::Cancel { rid, .. } => *rid,
            _ => 0,
        };
        Some(Withdrawal {
            service: service.clone(),
            undo: Some(undo),
            rid,
        })
    }

    /// The request id.
    pub fn rid(&self) -> RequestId {
        self.rid
    }

    /// The client was told the outcome: nothing to take back.
    pub fn disarm(&mut self) {
        self.undo = None;
    }
}

impl Drop for Withdrawal {
    fn drop(&mut self) {
        let Some(undo) = self.undo.take() else {
            return;
        };
        let service = self.service.clone();
        let rid = self.rid;
        // Dropped inside the runtime (a connection task or a command future).
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(withdraw(service, undo, rid));
        }
    }
}

/// Proposes `undo` until it commits or [`MAX_TTL_MS`] has passed.
async fn withdraw(service: Arc<LockService>, undo: LockOp, rid: RequestId) {
    let started = Instant::now();
    let give_up = Duration::from_millis(MAX_TTL_MS);
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0u32;
    loop {
        match service.run(LockCommand::Write(undo.clone())).await {
            Ok(_) => {
                debug!(
                    rid,
                    attempts, "withdrew a request whose client was not told it succeeded"
                );
                return;
            }
            Err(e) => {
                attempts += 1;
                debug!(rid, attempts, error = %e, "withdrawal not committed yet; retrying");
                if started.elapsed() >= give_up {
                    warn!(
                        rid,
                        "gave up withdrawing a request: any lease it got has expired"
                    );
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
