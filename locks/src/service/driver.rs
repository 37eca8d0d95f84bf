//! The leader's housekeeping for leases: extension on election, expiry on time.
//!
//! The state machine never reads a clock, so time-driven changes are proposed by
//! the leader like any other write:
//! - on becoming leader (each new term), `ExtendLeases` first — every holder keeps
//!   at least its TTL from the election, so no lease ends early because the leader
//!   changed;
//! - then, whenever the earliest lease or wait deadline has passed, `Expire`.

use std::sync::Arc;
use std::time::Duration;

use crate::machine::LockOp;
use openraft::ServerState;
use tokio::sync::watch;
use tracing::{debug, info};

use super::{now_ms, LockService};

/// How often the driver looks at the deadlines.
const TICK: Duration = Duration::from_millis(20);

/// Runs until `shutdown` flips.
pub async fn run(service: Arc<LockService>, mut shutdown: watch::Receiver<bool>) {
    let mut extended_term: Option<u64> = None;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let (state, term) = {
            let m = service.raft().metrics();
            let m = m.borrow();
            (m.state, m.current_term)
        };
        if state != ServerState::Leader {
            extended_term = None;
            continue;
        }
        if extended_term != Some(term) {
            if propose(&service, LockOp::ExtendLeases).await {
                info!(term, "leader: leases extended for the new term");
                extended_term = Some(term);
            }
            continue;
        }
        let due = service.state().read().machine.next_deadline();
        if due.is_some_and(|d| d <= now_ms()) {
            propose(&service, LockOp::Expire).await;
        }
    }
}

async fn propose(service: &LockService, op: LockOp) -> bool {
    match service.propose(op, Duration::from_secs(2)).await {
        Ok(()) => true,
        Err(e) => {
            debug!(error = ?e, "housekeeping proposal failed");
            false
        }
    }
}
