//! Starting the Raft groups this node hosts, all on one shared log engine (one writer,
//! one `fdatasync` for every group that appended since the last): group 0, the lock
//! table, whose fsyncs feed `/metrics`; group 1, the meta group
//! ([`conclave_cluster::meta`]: queue shard count, members and liveness, the cache
//! ring); and with `--debug-kv-groups N` the debug kv groups 2001..=2000+N
//! ([`crate::debug_kv`]), all with the same members.

use std::sync::Arc;

use conclave_cluster::group_stats::GroupStats;
use conclave_cluster::meta::{Meta, MetaConfig};
use conclave_cluster::{GroupConfig, HostedGroup, Peers};
use conclave_locks::LockService;
use conclave_raft_store::{open_engine, StoreOptions, LOCK_GROUP, META_GROUP};

use crate::config::NodeConfig;
use crate::debug_kv::DebugKv;

/// Entries between snapshots of a group.
const SNAPSHOT_EVERY: u64 = 20_000;

/// The groups a node hosts.
pub struct Hosted {
    /// The lock service on group 0.
    pub locks: Arc<LockService>,
    /// The meta group (group 1).
    pub meta: Arc<Meta>,
    /// The debug kv groups 2001..=2000+N (none without `--debug-kv-groups`).
    pub debug_kv: Arc<DebugKv>,
    /// Every group, type-erased (the lock group first, the meta group, then the kv
    /// groups by id).
    pub groups: Vec<Arc<dyn HostedGroup>>,
}

/// Opens the shared log engine under `--data-dir` and starts every group on it (fresh
/// groups are initialized with the `--peers` members).
pub async fn start(config: &NodeConfig, peers: Arc<Peers>) -> anyhow::Result<Hosted> {
    let members = config
        .peer_list()?
        .into_iter()
        .map(|p| (p.id, p.addr))
        .collect::<Vec<_>>();
    std::fs::create_dir_all(&config.data_dir)?;
    let lock_stats = Arc::new(GroupStats::new(LOCK_GROUP));
    let engine = open_engine(
        &config.data_dir,
        &StoreOptions {
            observer: Some(lock_stats.flush_observer()),
            ..StoreOptions::default()
        },
    )?;
    let group_config = |group| GroupConfig {
        node_id: config.id,
        group,
        data_dir: config.data_dir.clone(),
        members: members.clone(),
        heartbeat_ms: config.heartbeat_interval,
        election_timeout_ms: config.election_timeout,
        snapshot_every: SNAPSHOT_EVERY,
    };
    let locks = conclave_locks::service::start::start(
        &group_config(LOCK_GROUP),
        &engine,
        peers.clone(),
        lock_stats,
        config.no_leader_wait(),
    )
    .await?;
    let meta = Meta::start(
        &group_config(META_GROUP),
        &engine,
        peers.clone(),
        Arc::new(GroupStats::new(META_GROUP)),
        MetaConfig {
            no_leader_wait: config.no_leader_wait(),
            node_timeout: config.node_timeout(),
            client_addr: config.client_addr(),
        },
    )
    .await?;
    let debug_kv = Arc::new(
        DebugKv::start(
            config.debug_kv_groups,
            group_config,
            &engine,
            &peers,
            config.no_leader_wait(),
        )
        .await?,
    );
    let mut groups: Vec<Arc<dyn HostedGroup>> = vec![locks.group().clone(), meta.group().clone()];
    groups.extend(debug_kv.hosted());
    Ok(Hosted {
        locks,
        meta,
        debug_kv,
        groups,
    })
}
