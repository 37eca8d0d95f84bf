//! The links to the peers: one task per peer batches the coherence messages queued for
//! it into `FWD cache 0 <deadline> <postcard batch>` calls on the cluster channel (whose
//! connections are multiplexed, `conclave_cluster::mux`).
//!
//! A batch takes everything queued when the task wakes (up to [`MAX_BATCH`] messages);
//! up to [`IN_FLIGHT`] batches per peer travel at once, so one slow peer delays only its
//! own messages and a write's revocations reach every sharer in parallel. A batch that
//! fails (peer down, stopped, cut off) is dropped: the protocol resends what matters.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use conclave_cluster::peer::PeerClient;
use tokio::sync::{mpsc, Semaphore};
use tracing::trace;

use super::{Env, LinkStats, SERVICE};

/// Most messages in one batch.
pub const MAX_BATCH: usize = 4096;
/// Batches in flight per peer.
pub const IN_FLIGHT: usize = 8;
/// How long a batch call may take (ms) before it is dropped.
const CALL_TIMEOUT_MS: u64 = 1000;

/// The queue of one peer's messages.
pub(super) struct Link {
    tx: mpsc::UnboundedSender<Env>,
}

impl Link {
    /// Starts the task sending to `peer`.
    pub(super) fn start(peer: Arc<PeerClient>, stats: Arc<LinkStats>) -> Link {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(peer, rx, stats));
        Link { tx }
    }

    /// Queues `envelope` (never blocks).
    pub(super) fn send(&self, envelope: Env) {
        let _ = self.tx.send(envelope);
    }
}

async fn run(peer: Arc<PeerClient>, mut rx: mpsc::UnboundedReceiver<Env>, stats: Arc<LinkStats>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        // Everything queued while waiting for a slot goes in this batch.
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        stats.messages_sent.fetch_add(batch.len() as u64, Relaxed);
        stats.batches_sent.fetch_add(1, Relaxed);
        let body = match postcard::to_allocvec(&batch) {
            Ok(body) => body,
            Err(e) => {
                trace!(error = %e, "coherence batch not encodable");
                continue;
            }
        };
        let peer = peer.clone();
        tokio::spawn(async move {
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                + CALL_TIMEOUT_MS;
            let sent = peer
                .forward(
                    SERVICE,
                    0,
                    deadline,
                    &body,
                    Duration::from_millis(CALL_TIMEOUT_MS),
                )
                .await;
            if let Err(e) = sent {
                trace!(peer = peer.addr(), error = %e, "coherence batch lost");
            }
            drop(permit);
        });
    }
}
