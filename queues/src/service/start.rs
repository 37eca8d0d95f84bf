//! Starting the queue shards this node replicates, on the node's shared log engine.
//!
//! - The layout ([`Layout`]) is computed from the members and `--queue-shards` /
//!   `--queue-replicas`; this node starts the groups of its shards, initialized (when
//!   fresh) with the shard's replicas only. The shard's preferred leader (first replica)
//!   runs the configured election timeout, the others twice it, so first elections and
//!   most failovers spread the leaders as the ring does.
//! - **Origin**: every process start takes a new *incarnation*, kept in
//!   `<data-dir>/queue-origin` (written atomically and fsynced before any read is
//!   served); a queued read carries `origin = node id << 32 | incarnation`. Reads queued
//!   by an earlier process of this node, whose clients are gone with it, are withdrawn
//!   at start (`CancelOrigin`, see [`super::driver`]).
//! - Each shard's apply hook hands the answers of this process's queued reads to the
//!   clients waiting for them; an answer nobody waits for (its client went away) with
//!   messages is given back (`Unread`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use conclave_cluster::group_stats::GroupStats;
use conclave_cluster::{GroupConfig, Peers, RaftGroup};
use conclave_raft_store::proposer::Proposer;
use conclave_raft_store::waiters::Waiters;
use conclave_raft_store::{fsutil, ApplyHook, GroupId, LogEngine, NodeId, QUEUE_GROUP_BASE};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::budget::Budget;
use super::placement::Layout;
use super::{LocalShard, QueueService, Rates, Shard};
use crate::machine::{QueueApplied, QueueConfig, QueueOp, QueueState, Wake, WakeOutcome};

/// How the queue service is set up (`--queue-*`).
#[derive(Debug, Clone)]
pub struct QueueOptions {
    /// `--queue-shards`: number of shards, fixed when the cluster is created.
    pub shards: u32,
    /// `--queue-replicas`: replicas per shard (at most the number of nodes).
    pub replicas: usize,
    /// The queue semantics' parameters (visibility, backoff, dead letters, dedup,
    /// max length).
    pub config: QueueConfig,
    /// `--no-leader-wait`: how long a command waits for a shard leader.
    pub no_leader_wait: Duration,
    /// `--queue-max-memory`: payload bytes this node's shards may retain before `Q.PUSH`
    /// answers `-OOM` (0: no limit).
    pub max_memory: u64,
    /// `--queue-min-free-disk`: free bytes under the data directory below which `Q.PUSH`
    /// answers `-OOM` (0: no limit).
    pub min_free_disk: u64,
}

/// What [`start`] hands to [`super::driver::run`].
pub struct Started {
    /// The service.
    pub service: Arc<QueueService>,
    /// Withdrawals and give-backs to propose.
    pub giveback: mpsc::UnboundedReceiver<(u32, QueueOp)>,
    /// The origin of this node's previous process, whose queued reads to withdraw.
    pub previous_origin: Option<u64>,
}

/// Takes this process's incarnation: the previous one plus one, durably.
fn next_incarnation(data_dir: &Path) -> anyhow::Result<(u32, Option<u32>)> {
    let path = data_dir.join("queue-origin");
    let previous = fsutil::read_optional(&path)?
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.trim().parse::<u32>().ok());
    let next = previous.unwrap_or(0).wrapping_add(1).max(1);
    fsutil::write_atomic(&path, format!("{next}\n").as_bytes())?;
    Ok((next, previous))
}

/// Starts the shards this node replicates; `group_config(id)` describes a group with
/// every member (its members are narrowed to the shard's replicas here).
pub async fn start(
    options: &QueueOptions,
    group_config: impl Fn(GroupId) -> GroupConfig,
    engine: &Arc<LogEngine>,
    peers: Arc<Peers>,
) -> anyhow::Result<Started> {
    let template = group_config(QUEUE_GROUP_BASE);
    let id = template.node_id;
    let members: Vec<(NodeId, String)> = template.members.clone();
    let node_ids: Vec<NodeId> = members.iter().map(|(n, _)| *n).collect();
    let layout = Layout::new(&node_ids, options.shards.max(1), options.replicas);
    let (incarnation, previous) = next_incarnation(&template.data_dir)?;
    let origin = (id << 32) | u64::from(incarnation);
    let previous_origin = previous.map(|p| (id << 32) | u64::from(p));
    let (giveback_tx, giveback) = mpsc::unbounded_channel();
    let mut shards = Vec::with_capacity(layout.replicas.len());
    for (index, replicas) in layout.replicas.iter().enumerate() {
        let index = index as u32;
        let group = QUEUE_GROUP_BASE + u64::from(index);
        let local = if replicas.contains(&id) {
            let mut config = group_config(group);
            config.members = members
                .iter()
                .filter(|(n, _)| replicas.contains(n))
                .cloned()
                .collect();
            if replicas.first() != Some(&id) {
                config.election_timeout_ms *= 2;
            }
            let waiters = Arc::new(Waiters::<Wake>::default());
            let hook = answer_hook(index, origin, waiters.clone(), giveback_tx.clone());
            let stats = Arc::new(GroupStats::new(group));
            let raft_group =
                RaftGroup::<QueueState>::start(&config, engine, peers.clone(), stats, Some(hook))
                    .await?;
            let proposer = Proposer::start(raft_group.raft().clone(), options.no_leader_wait);
            Some(LocalShard {
                group: raft_group,
                proposer,
                waiters,
            })
        } else {
            None
        };
        shards.push(Shard {
            group,
            replicas: replicas.clone(),
            local,
        });
    }
    let service = Arc::new(QueueService {
        id,
        origin,
        shards,
        members: members.into_iter().collect(),
        peers,
        no_leader_wait: options.no_leader_wait,
        config: options.config.clone(),
        giveback: giveback_tx,
        rates: Mutex::new(Rates::default()),
        budget: Budget::new(
            options.max_memory,
            options.min_free_disk,
            template.data_dir.clone(),
        ),
    });
    Ok(Started {
        service,
        giveback,
        previous_origin,
    })
}

/// The apply hook of shard `shard`: answers of this process's queued reads go to their
/// waiting clients; messages answered to nobody are given back.
fn answer_hook(
    shard: u32,
    origin: u64,
    waiters: Arc<Waiters<Wake>>,
    giveback: mpsc::UnboundedSender<(u32, QueueOp)>,
) -> ApplyHook<QueueState> {
    Arc::new(move |_index, applied: &QueueApplied| {
        if applied.woken.is_empty() {
            return;
        }
        let mine = applied
            .woken
            .iter()
            .filter(|w| w.origin == origin)
            .map(|w| (w.rid, w.clone()));
        for (rid, wake) in waiters.wake_each(mine) {
            if let WakeOutcome::Messages(msgs) = wake.outcome {
                let _ = giveback.send((
                    shard,
                    QueueOp::Unread {
                        topic: wake.topic,
                        group: wake.group,
                        rid,
                        ids: msgs.iter().map(|m| m.id).collect(),
                    },
                ));
            }
        }
    })
}
