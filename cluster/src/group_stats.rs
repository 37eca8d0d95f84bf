//! What one Raft group records for `/metrics` beyond openraft's own metrics: the latency,
//! batch size and bytes of every `fdatasync` of its log (through raft-store's
//! [`FlushObserver`], called on the log's writer thread), and how many times this node
//! saw the group's leader change.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use conclave_raft_store::{FlushInfo, FlushObserver, GroupId, NodeId};
use openraft::metrics::RaftServerMetrics;
use openraft::BasicNode;
use tokio::sync::watch;

use crate::histogram::{Histogram, BATCH, FSYNC_NS};

/// Counters of one Raft group on this node.
#[derive(Debug)]
pub struct GroupStats {
    /// The group (`0`: the meta/lock group).
    pub group: GroupId,
    /// `fdatasync` latency of log data, in ns.
    pub fsync: Histogram,
    /// Appends made durable per `fdatasync`.
    pub fsync_appends: Histogram,
    /// Log bytes made durable, in bytes.
    pub fsync_bytes: AtomicU64,
    /// Times this node saw a new leader (see [`watch_leader`]).
    pub leader_changes: AtomicU64,
}

impl GroupStats {
    /// Empty stats for `group`.
    pub fn new(group: GroupId) -> GroupStats {
        GroupStats {
            group,
            fsync: Histogram::default(),
            fsync_appends: Histogram::default(),
            fsync_bytes: AtomicU64::new(0),
            leader_changes: AtomicU64::new(0),
        }
    }

    /// Records one `fdatasync` of log data.
    pub fn observe_flush(&self, info: &FlushInfo) {
        let ns = u64::try_from(info.fsync.as_nanos()).unwrap_or(u64::MAX);
        self.fsync.observe(&FSYNC_NS, ns);
        self.fsync_appends.observe(&BATCH, info.appends as u64);
        self.fsync_bytes.fetch_add(info.bytes, Relaxed);
    }

    /// The observer to pass to raft-store's `StoreOptions` for this group.
    pub fn flush_observer(self: &Arc<Self>) -> FlushObserver {
        let stats = self.clone();
        Arc::new(move |info: &FlushInfo| stats.observe_flush(info))
    }

    /// Counts a leader seen after `previous` (as etcd's `leader_changes_seen`): a known
    /// leader that differs from the previous value, which may have been "none".
    fn see_leader(&self, previous: Option<NodeId>, now: Option<NodeId>) {
        if now.is_some() && now != previous {
            self.leader_changes.fetch_add(1, Relaxed);
        }
    }
}

/// Follows openraft's server-metrics watch of a group (it changes only with the vote,
/// role, leader or membership) and counts leader changes until the group shuts down
/// (its sender is dropped). A leader that changes and changes back between two looks
/// at the watch is missed.
pub async fn watch_leader(
    mut metrics: watch::Receiver<RaftServerMetrics<NodeId, BasicNode>>,
    stats: Arc<GroupStats>,
) {
    let mut last = None;
    loop {
        let now = metrics.borrow_and_update().current_leader;
        stats.see_leader(last, now);
        last = now;
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn leader_changes_count_new_known_leaders() {
        let s = GroupStats::new(0);
        let seen = [
            None,
            Some(1),
            Some(1),
            None,
            Some(2),
            Some(2),
            None,
            Some(2),
        ];
        let mut last = None;
        for now in seen {
            s.see_leader(last, now);
            last = now;
        }
        // none→1, none→2, none→2 again (a new election, as etcd counts it).
        assert_eq!(s.leader_changes.load(Relaxed), 3);
    }

    #[test]
    fn flushes_feed_the_histograms() {
        let s = Arc::new(GroupStats::new(0));
        let observe = s.flush_observer();
        observe(&FlushInfo {
            fsync: Duration::from_micros(300),
            bytes: 4096,
            appends: 3,
        });
        observe(&FlushInfo {
            fsync: Duration::from_millis(2),
            bytes: 100,
            appends: 1,
        });
        assert_eq!(s.fsync.snapshot().count(), 2);
        assert_eq!(s.fsync.snapshot().sum, 2_300_000);
        assert_eq!(s.fsync_appends.snapshot().sum, 4);
        assert_eq!(s.fsync_bytes.load(Relaxed), 4196);
    }
}
