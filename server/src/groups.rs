//! Starting the Raft groups this node hosts, all on one shared log engine (one writer,
//! one `fdatasync` for every group that appended since the last): group 0, the lock
//! table, whose fsyncs feed `/metrics`; group 1, the meta group
//! ([`conclave_cluster::meta`]: queue shard count, members and liveness, the cache
//! ring); the queue shards this node replicates (groups 1000+s,
//! [`conclave_queues::service`]), as many as the meta group recorded; and with
//! `--debug-kv-groups N` the debug kv groups 2001..=2000+N ([`crate::debug_kv`]).

use std::sync::Arc;
use std::time::Duration;

use conclave_cluster::group_stats::GroupStats;
use conclave_cluster::meta::{Meta, MetaConfig};
use conclave_cluster::{GroupConfig, HostedGroup, Peers};
use conclave_locks::LockService;
use conclave_queues::service::start::Started as QueuesStarted;
use conclave_raft_store::{
    fsutil, open_engine, GroupId, LogEngine, StoreOptions, LOCK_GROUP, META_GROUP,
};
use tracing::{info, warn};

use crate::config::NodeConfig;
use crate::debug_kv::DebugKv;

/// Entries between snapshots of a group.
const SNAPSHOT_EVERY: u64 = 20_000;

/// The groups a node hosts before it knows the queue shard count.
pub struct Hosted {
    /// The lock service on group 0.
    pub locks: Arc<LockService>,
    /// The meta group (group 1).
    pub meta: Arc<Meta>,
    /// The debug kv groups 2001..=2000+N (none without `--debug-kv-groups`).
    pub debug_kv: Arc<DebugKv>,
    /// Every group, type-erased (the lock group first, the meta group, then the kv
    /// groups by id); [`start_queues`] adds the queue shards.
    pub groups: Vec<Arc<dyn HostedGroup>>,
    /// The node's one log engine.
    engine: Arc<LogEngine>,
    /// The initial members `(id, cluster address)`.
    members: Vec<(u64, String)>,
}

/// Group `group`'s configuration on this node.
fn group_config(config: &NodeConfig, members: &[(u64, String)], group: GroupId) -> GroupConfig {
    GroupConfig {
        node_id: config.id,
        group,
        data_dir: config.data_dir.clone(),
        members: members.to_vec(),
        heartbeat_ms: config.heartbeat_interval,
        election_timeout_ms: config.election_timeout,
        snapshot_every: SNAPSHOT_EVERY,
    }
}

/// Opens the shared log engine under `--data-dir` and starts the lock, meta and debug kv
/// groups on it (fresh groups are initialized with the `--peers` members).
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
    let locks = conclave_locks::service::start::start(
        &group_config(config, &members, LOCK_GROUP),
        &engine,
        peers.clone(),
        lock_stats,
        config.no_leader_wait(),
    )
    .await?;
    let meta = Meta::start(
        &group_config(config, &members, META_GROUP),
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
            |g| group_config(config, &members, g),
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
        engine,
        members,
    })
}

/// Where this node keeps the queue shard count the meta group recorded (so a restart
/// needs no quorum to know it).
const QUEUE_SHARDS_FILE: &str = "queue-shards";

/// The cluster's queue shard count: this node's copy of the recorded one, or else the
/// meta group's (recording `--queue-shards` if the cluster has none yet; contract 5:
/// set when the cluster is created). Waits for the meta group: the cluster channel must
/// already be serving, since that needs the peers.
async fn queue_shards(config: &NodeConfig, meta: &Meta) -> anyhow::Result<u32> {
    let path = config.data_dir.join(QUEUE_SHARDS_FILE);
    let kept = fsutil::read_optional(&path)?
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.trim().parse::<u32>().ok());
    let recorded = match kept {
        Some(n) => n,
        None => {
            let asked = config.queue_shards;
            let mut tries = 0u32;
            loop {
                match meta.record_queue_shards(asked).await {
                    Ok(n) => break n,
                    Err(e) => {
                        tries += 1;
                        if tries % 10 == 1 {
                            info!(error = %e, "waiting for the meta group to record the queue shard count");
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }
    };
    if kept.is_none() {
        fsutil::write_atomic(&path, format!("{recorded}\n").as_bytes())?;
    }
    if recorded != config.queue_shards {
        warn!(
            recorded,
            asked = config.queue_shards,
            "the cluster's queue shard count was set when it was created; --queue-shards is ignored"
        );
    }
    Ok(recorded)
}

/// Starts the queue shards this node replicates, as many as the cluster recorded.
pub async fn start_queues(
    config: &NodeConfig,
    hosted: &Hosted,
    peers: Arc<Peers>,
) -> anyhow::Result<QueuesStarted> {
    let mut options = config.queue_options();
    options.shards = queue_shards(config, &hosted.meta).await?;
    conclave_queues::service::start::start(
        &options,
        |g| group_config(config, &hosted.members, g),
        &hosted.engine,
        peers,
    )
    .await
}
