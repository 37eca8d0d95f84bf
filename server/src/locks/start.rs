//! Starting Raft group 0 from the command line: open storage, start openraft, and —
//! on a fresh data directory — initialize the membership from `--peers`.
//!
//! Every initial member runs the same `initialize` with the same member list, which
//! openraft allows; a node whose log already exists skips it and recovers.

use std::collections::BTreeMap;
use std::sync::Arc;

use conclave_raft_store::{open_group_with, Raft, StoreOptions, META_GROUP};
use openraft::{BasicNode, Config, SnapshotPolicy};
use tracing::info;

use super::waiters::Waiters;
use super::LockService;
use crate::cluster::raft_network::{Peers, RaftNetworkFactoryImpl};
use crate::config::NodeConfig;
use crate::ops::raft_stats::{self, GroupStats};

/// Opens the group (its fsyncs observed for `/metrics`), starts Raft and the leader-change
/// counter, initializes when fresh.
pub async fn start(config: &NodeConfig, peers: Arc<Peers>) -> anyhow::Result<Arc<LockService>> {
    let members = config.peer_list()?;
    std::fs::create_dir_all(&config.data_dir)?;
    let waiters = Arc::new(Waiters::default());
    let stats = Arc::new(GroupStats::new(META_GROUP));
    let options = StoreOptions {
        observer: Some(stats.flush_observer()),
        ..StoreOptions::default()
    };
    let (log_store, sm_store) =
        open_group_with(&config.data_dir, META_GROUP, Some(waiters.hook()), &options)?;
    let shared = sm_store.shared();
    let fsyncs = log_store.fsync_counter();
    let raft_config = Config {
        cluster_name: "conclave".into(),
        heartbeat_interval: config.heartbeat_interval,
        election_timeout_min: config.election_timeout,
        election_timeout_max: config.election_timeout * 2,
        install_snapshot_timeout: 10_000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(20_000),
        max_in_snapshot_log_to_keep: 2_000,
        ..Default::default()
    }
    .validate()?;
    let network = RaftNetworkFactoryImpl {
        group: META_GROUP,
        peers: peers.clone(),
    };
    let raft = Raft::new(
        config.id,
        Arc::new(raft_config),
        network,
        log_store,
        sm_store,
    )
    .await?;
    tokio::spawn(raft_stats::watch_leader(
        raft.server_metrics(),
        stats.clone(),
    ));
    if !raft.is_initialized().await? {
        let nodes: BTreeMap<u64, BasicNode> = members
            .iter()
            .map(|p| {
                (
                    p.id,
                    BasicNode {
                        addr: p.addr.clone(),
                    },
                )
            })
            .collect();
        info!(members = ?nodes.keys().collect::<Vec<_>>(), "fresh data directory: initializing the Raft group");
        raft.initialize(nodes).await?;
    } else {
        info!("recovered the Raft group from the data directory");
    }
    Ok(Arc::new(LockService::new(
        config, raft, shared, peers, waiters, fsyncs, stats,
    )))
}
