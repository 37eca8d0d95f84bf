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
//! Cluster's is per node): a write that runs concurrently with it may survive. Each
//! evicted key counts in `forgotten`, as any value a home drops.
//!
//! A large flush takes as long as it needs: `--no-leader-wait` bounds how long a flush
//! may go *without progress*, not how long it takes. The node that runs the command asks
//! each peer in rounds of at most that long, each round carrying the flush's id; a peer
//! answers `1` when it has flushed everything it homed when the flush began, `2` when it
//! started or ended evictions this round but is not done (asked again, it goes on with the keys left
//! of that flush, so a flush never chases keys written after it began), `0` when nothing
//! started or ended within the round. A home that makes no progress for
//! that long (a peer unreachable, copies whose leases must be waited out), or a peer
//! that does not answer, makes the command answer `-TRYAGAIN`; the keys flushed so far
//! stay flushed, and running it again finishes the job.

use std::time::Duration;

use bytes::Bytes;
use conclave_cluster::now_ms;
use conclave_protocol::Frame;
use tracing::warn;

use super::{Coherent, NO_RING, SERVICE, TRYAGAIN};
use crate::coherence::{Event, Stamp};

/// The cluster-channel group of a flush request (`FWD cache 2`).
pub(super) const FLUSH_GROUP: u64 = 2;

/// How often a home looks at the evictions it has under way (per [`CHUNK`] keys left).
const POLL: Duration = Duration::from_millis(2);

/// Keys looked at per hold of the driver's lock.
const CHUNK: usize = 1024;

/// How a flush of what a node homes went (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flushed {
    /// Every key it homes is evicted.
    Done,
    /// Evictions were started or ended, and some keys are left.
    Progressed,
    /// Nothing started or ended within the round.
    Stalled,
}

impl Flushed {
    /// The answer to a peer's flush request.
    fn wire(self) -> &'static [u8] {
        match self {
            Flushed::Done => b"1",
            Flushed::Progressed => b"2",
            Flushed::Stalled => b"0",
        }
    }

    /// A peer's answer (anything unknown counts as stalled).
    fn from_wire(reply: &[u8]) -> Flushed {
        match reply {
            b"1" => Flushed::Done,
            b"2" => Flushed::Progressed,
            _ => Flushed::Stalled,
        }
    }
}

/// A flush under way at this node as a home, kept between the rounds of one flush.
pub(super) struct FlushRun {
    /// The flush's id (chosen by the node that runs the command).
    id: u64,
    /// The keys homed here when it began that are not evicted yet.
    pending: Vec<(Bytes, Step)>,
}

/// Where one key's eviction stands.
enum Step {
    /// Not started: another transaction on the key runs first.
    Waiting,
    /// Started as this transaction.
    Running(Stamp),
}

impl Coherent {
    /// Drops every key this node was the home of when flush `id` began (see the module
    /// docs), until every eviction has ended or `deadline` comes; the keys left wait for
    /// the flush's next round.
    pub(super) async fn flush_home(&self, id: u64, deadline: tokio::time::Instant) -> Flushed {
        let resumed = self.flushing.lock().take().filter(|run| run.id == id);
        let mut pending = match resumed {
            Some(run) => run.pending,
            None => {
                let inner = self.inner.lock();
                inner
                    .node
                    .homed_keys()
                    .into_iter()
                    .map(|k| (k, Step::Waiting))
                    .collect()
            }
        };
        let flushed = self.evict_homed(&mut pending, deadline).await;
        // Kept for the next round only while it progresses: a stalled flush ends in
        // `-TRYAGAIN`, and running it again starts a new one.
        if flushed == Flushed::Progressed {
            *self.flushing.lock() = Some(FlushRun { id, pending });
        }
        flushed
    }

    /// Evicts `pending` (see [`flush_home`](Self::flush_home)), removing each key whose
    /// eviction has ended.
    async fn evict_homed(
        &self,
        pending: &mut Vec<(Bytes, Step)>,
        deadline: tokio::time::Instant,
    ) -> Flushed {
        let mut progressed = false;
        loop {
            // A chunk of keys per hold of the driver's lock, and a yield to the runtime
            // after each, so commands and the cluster channel (its pings included)
            // keep running during a large flush.
            let mut i = 0;
            while i < pending.len() {
                if i > 0 {
                    tokio::task::yield_now().await;
                }
                if progressed && tokio::time::Instant::now() >= deadline {
                    // The round is over; the peer that asked hears of the progress in
                    // time and asks again.
                    return Flushed::Progressed;
                }
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
                                    // Its revocations are out: progress too.
                                    progressed = true;
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
                        progressed = true;
                        pending.swap_remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
            if pending.is_empty() {
                return Flushed::Done;
            }
            if tokio::time::Instant::now() >= deadline {
                return if progressed {
                    Flushed::Progressed
                } else {
                    Flushed::Stalled
                };
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
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let id: u64 = rand::random();
        let mut body = itoa::Buffer::new();
        let body = Bytes::copy_from_slice(body.format(id).as_bytes());
        let mut remote = tokio::task::JoinSet::new();
        for (&node, peer) in &self.peers {
            if node != self.id {
                let peer = peer.clone();
                let body = body.clone();
                remote.spawn(async move {
                    // Rounds of at most `wait` each, for as long as the peer progresses;
                    // the RPC's own timeout leaves the peer its whole round.
                    loop {
                        let deadline_ms = now_ms().saturating_add(wait_ms);
                        let answer = peer
                            .forward(SERVICE, FLUSH_GROUP, deadline_ms, &body, wait * 2)
                            .await
                            .map(|reply| Flushed::from_wire(&reply));
                        match answer {
                            Ok(Flushed::Progressed) => continue,
                            Ok(Flushed::Done) => return true,
                            Ok(Flushed::Stalled) => {
                                warn!(
                                    node,
                                    "FLUSHALL: the node evicted nothing for --no-leader-wait"
                                );
                                return false;
                            }
                            Err(error) => {
                                warn!(node, %error, "FLUSHALL: the node did not answer");
                                return false;
                            }
                        }
                    }
                });
            }
        }
        let mut done = loop {
            match self
                .flush_home(id, tokio::time::Instant::now() + wait)
                .await
            {
                Flushed::Progressed => continue,
                Flushed::Done => break true,
                Flushed::Stalled => {
                    warn!(
                        node = self.id,
                        "FLUSHALL: this node evicted nothing for --no-leader-wait"
                    );
                    break false;
                }
            }
        };
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

    /// A peer's flush request (`body`: the flush's id in decimal): flush what this node
    /// homes until `deadline_ms` (ms since the epoch); answers `1` done, `2` progressed
    /// but not done, `0` stalled.
    pub(super) async fn flush_request(&self, deadline_ms: u64, body: &[u8]) -> Bytes {
        let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms()));
        // A body that is not an id (an older peer sends none) flushes afresh.
        let id = std::str::from_utf8(body)
            .ok()
            .and_then(|b| b.parse().ok())
            .unwrap_or(0);
        let flushed = self
            .flush_home(id, tokio::time::Instant::now() + left)
            .await;
        Bytes::from_static(flushed.wire())
    }
}
