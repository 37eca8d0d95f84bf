//! Starting the lock group: its Raft group on the node's shared log engine, with an
//! apply hook that wakes the clients blocked on this node when their grant is applied.

use std::sync::Arc;
use std::time::Duration;

use conclave_cluster::group_stats::GroupStats;
use conclave_cluster::{GroupConfig, Peers, RaftGroup};
use conclave_raft_store::waiters::Waiters;
use conclave_raft_store::{ApplyHook, LogEngine};

use super::LockService;
use crate::machine::{LockApplied, LockTable};

/// Starts the lock group described by `config` on `engine` (fresh: initialized with
/// `config.members`; otherwise recovered) and wraps it in the service.
pub async fn start(
    config: &GroupConfig,
    engine: &Arc<LogEngine>,
    peers: Arc<Peers>,
    stats: Arc<GroupStats>,
    no_leader_wait: Duration,
) -> anyhow::Result<Arc<LockService>> {
    let waiters = Arc::new(Waiters::<u64>::default());
    let hook: ApplyHook<LockTable> = {
        let waiters = waiters.clone();
        Arc::new(move |_index, applied: &LockApplied| {
            waiters.wake(applied.grants.iter().map(|g| (g.rid, g.token)));
        })
    };
    let group =
        RaftGroup::<LockTable>::start(config, engine, peers.clone(), stats, Some(hook)).await?;
    Ok(Arc::new(LockService::new(
        group,
        peers,
        waiters,
        no_leader_wait,
    )))
}
