//! Following the meta group's ring: adopting each new epoch and keeping the control
//! plane's lease that lets this node grant (contract 2.1, "Home node"; the protocol's
//! assumption that every node adopts a new epoch within `epoch_spread_ms` of the first,
//! or stops granting — `coherence/mod.rs`, "Assumptions the driver must keep").
//!
//! One task per node:
//!
//! - every `spread / 4` (20..500 ms) it reads the ring *linearizably* through the meta
//!   leader ([`RingSource::confirm`]). A ring committed before the read began is at or
//!   below the answer, so after adopting the answer this node knows every epoch committed
//!   before the send time `s`, and may grant until `s + spread`
//!   ([`Event::RingConfirmed`]). A node cut off from the meta leader (or from a quorum)
//!   stops granting within `spread` of its last confirmation; the copies it granted
//!   run out a lease later, before any new home of those keys grants (its fence is a
//!   lease plus margin plus spread from its adoption). A follower of a deposed leader on
//!   the minority side cannot confirm: the read barrier needs a quorum.
//! - between confirmations it adopts every ring this node applies (the watch), so a
//!   new epoch is usually adopted one heartbeat after it commits, not a period later.
//!   The watch is followed only after the first confirmation: a restarted node replaying
//!   its log passes through older epochs, and adopting one of those could make it believe
//!   keys never moved away from it.
//!
//! The first ring a node adopts (from epoch 0, no ring) fences every key for a lease
//! plus margin plus spread, so a node starting or restarting into a running cluster
//! grants nothing another home may still have leases out for. Commands wait for the
//! first ring; a node with none after 10 s logs it once.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::ring::{HashRing, RingSource, RingState};
use super::Coherent;
use crate::coherence::Event;

/// How long a node may go without a ring before it says so in the log.
const WARN_AFTER: Duration = Duration::from_secs(10);

impl Coherent {
    /// Adopts `state` if its epoch is newer than the machine's: copies whose home moved
    /// are dropped, moved-in keys fenced; every waiting command tries again (the first
    /// ring releases those that waited for one).
    pub(super) fn adopt(&self, state: &RingState) {
        let mut inner = self.inner.lock();
        let before = inner.node.epoch();
        if state.epoch <= before {
            return;
        }
        let actions = inner
            .node
            .handle(self.now(), Event::EpochChange(HashRing::new(state)));
        self.apply(&mut inner, actions);
        for (_, waiter) in inner.waiters.drain() {
            let _ = waiter.send(());
        }
        drop(inner);
        if before == 0 {
            info!(
                epoch = state.epoch,
                members = ?state.members,
                "cache ring adopted; homes grant after the start-up fence (a lease plus the epoch spread)"
            );
        } else {
            info!(
                from = before,
                epoch = state.epoch,
                members = ?state.members,
                "cache ring changed; copies whose home moved are dropped"
            );
        }
    }
}

/// Follows the ring of `source` for `driver` until the driver is gone (see the module
/// docs); `spread_ms` is the protocol's `epoch_spread_ms`.
pub(super) async fn run(driver: Weak<Coherent>, source: Arc<dyn RingSource>, spread_ms: u64) {
    let period = Duration::from_millis((spread_ms / 4).clamp(20, 500));
    let within = Duration::from_millis(spread_ms.max(200));
    let mut watch = source.subscribe();
    let started = Instant::now();
    let mut confirmed_once = false;
    let mut warned = false;
    loop {
        let Some(d) = driver.upgrade() else { return };
        let sent = d.now();
        let ok = match source.confirm(within).await {
            Ok(state) if state.epoch > 0 => {
                d.adopt(&state);
                d.event(Event::RingConfirmed {
                    until: sent + spread_ms,
                });
                confirmed_once = true;
                true
            }
            Ok(_) => {
                debug!("cache ring: the meta group has not seeded a ring yet");
                false
            }
            Err(e) => {
                debug!(error = %e, "cache ring: confirming the ring with the meta leader failed");
                false
            }
        };
        drop(d);
        if !confirmed_once && !warned && started.elapsed() > WARN_AFTER {
            warned = true;
            warn!(
                "cache ring: none from the meta group after {WARN_AFTER:?}; cache commands answer -TRYAGAIN until one arrives"
            );
        }
        let pause = if ok {
            period
        } else {
            Duration::from_millis(50)
        };
        let until = tokio::time::Instant::now() + pause;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                changed = watch.changed(), if confirmed_once => {
                    if changed.is_err() {
                        return;
                    }
                    let state = watch.borrow_and_update().clone();
                    let Some(d) = driver.upgrade() else { return };
                    d.adopt(&state);
                }
            }
        }
    }
}
