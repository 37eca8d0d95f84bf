//! `FLUSHALL` / `FLUSHDB` on a node of a cluster: every key of the cluster is dropped, not
//! only this node's copies.
//!
//! The values live at their homes (and in `M` copies), so a flush must reach every home.
//! The node that runs the command asks every node, itself included, to flush what it
//! homes (`FWD cache 2 <deadline>`, answered `1` when done) and replies once all have:
//! each home evicts each of its keys the way a home evicts one key under inclusion
//! ([`Event::HomeEvict`]: every copy is revoked, an `M` copy's data is discarded, then
//! the value is dropped — the model-checked path of contract 2.1, "Expiry and
//! eviction"), one transaction per key, waiting for a key's other transaction to end
//! first. Then this node drops its own remaining copies ([`Coherent::flush`]).
//!
//! What a flush guarantees: every write acknowledged before `FLUSHALL` was sent is gone
//! once it replies, on every node. It is not one atomic step across the cluster (Redis
//! Cluster's is per node): a write that runs concurrently with it may survive. A home
//! that cannot finish within the wait (a peer unreachable, copies whose leases must be
//! waited out) makes the command answer `-TRYAGAIN` — the keys flushed so far stay
//! flushed. Each evicted key counts in `forgotten`, as any value a home drops.

use std::time::Duration;

use bytes::Bytes;
use conclave_cluster::now_ms;
use conclave_protocol::Frame;

use super::{Coherent, NO_RING, SERVICE, TRYAGAIN};
use crate::coherence::{Event, Stamp};

/// The cluster-channel group of a flush request (`FWD cache 2`).
pub(super) const FLUSH_GROUP: u64 = 2;

/// How often a home looks at the evictions it has under way (per [`CHUNK`] keys left).
const POLL: Duration = Duration::from_millis(2);

/// Keys looked at per hold of the driver's lock.
const CHUNK: usize = 1024;

/// Where one key's eviction stands.
enum Step {
    /// Not started: another transaction on the key runs first.
    Waiting,
    /// Started as this transaction.
    Running(Stamp),
}

impl Coherent {
    /// Drops every key this node is the home of (see the module docs); `true` once every
    /// eviction has ended, `false` if `deadline` came first.
    pub(super) async fn flush_home(&self, deadline: tokio::time::Instant) -> bool {
        let mut pending: Vec<(Bytes, Step)> = {
            let inner = self.inner.lock();
            inner
                .node
                .homed_keys()
                .into_iter()
                .map(|k| (k, Step::Waiting))
                .collect()
        };
        loop {
            // A chunk of keys per hold of the driver's lock, so commands keep running
            // between chunks of a large flush.
            let mut i = 0;
            while i < pending.len() {
                let mut inner = self.inner.lock();
                let now = self.now();
                let stop = (i + CHUNK).min(pending.len());
                while i < stop.min(pending.len()) {
                    let key = &pending[i].0;
                    let done = match (&pending[i].1, inner.node.home_tx(key)) {
                        (Step::Running(s), Some((t, _))) if *s == t => false,
                        (Step::Running(_), _) => true,
                        (Step::Waiting, Some(_)) => false,
                        (Step::Waiting, None) => {
                            let actions = inner
                                .node
                                .handle(now, Event::HomeEvict { key: key.clone() });
                            self.apply(&mut inner, actions);
                            match inner.node.home_tx(key) {
                                Some((t, true)) => {
                                    pending[i].1 = Step::Running(t);
                                    false
                                }
                                // Evicted at once (no copy to revoke), or no longer homed
                                // here (a new ring dropped it).
                                _ => true,
                            }
                        }
                    };
                    if done {
                        pending.swap_remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
            if pending.is_empty() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            // Revocations take a round trip; a long list is looked at less often.
            let pause = POLL * u32::try_from(1 + pending.len() / CHUNK).unwrap_or(u32::MAX);
            tokio::time::sleep(pause.min(Duration::from_millis(50))).await;
        }
    }

    /// `FLUSHALL` / `FLUSHDB` across the cluster: every node flushes what it homes (in
    /// parallel), then `run` (the keyspace command) runs here through
    /// [`Coherent::flush`]. `-TRYAGAIN` if a node did not finish in time.
    pub async fn flush_cluster(
        &self,
        run: &mut (dyn FnMut(&crate::keyspace::Keyspace) -> Frame + Send),
    ) -> Frame {
        if !self.ready() {
            return Frame::error(NO_RING);
        }
        let wait = self.wait;
        let deadline = tokio::time::Instant::now() + wait;
        let deadline_ms =
            now_ms().saturating_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
        let mut remote = tokio::task::JoinSet::new();
        for (id, peer) in &self.peers {
            if *id != self.id {
                let peer = peer.clone();
                remote.spawn(async move {
                    peer.forward(SERVICE, FLUSH_GROUP, deadline_ms, b"", wait)
                        .await
                        .is_ok_and(|reply| reply.as_ref() == b"1")
                });
            }
        }
        let mut done = self.flush_home(deadline).await;
        while let Some(answer) = remote.join_next().await {
            done &= answer.unwrap_or(false);
        }
        if !done {
            self.stats
                .tryagain
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Frame::error(TRYAGAIN);
        }
        self.flush(run)
    }

    /// A peer's flush request: flush what this node homes, answer `1` when done, `0` if
    /// `deadline_ms` (ms since the epoch) came first.
    pub(super) async fn flush_request(&self, deadline_ms: u64) -> Bytes {
        let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms()));
        let done = self.flush_home(tokio::time::Instant::now() + left).await;
        Bytes::from_static(if done { b"1" } else { b"0" })
    }
}
