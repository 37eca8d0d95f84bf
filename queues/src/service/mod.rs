//! The replicated queue service: `Q.*` on `--queue-shards` Raft groups of
//! [`QueueState`], placed over the nodes by consistent hashing ([`placement`]).
//!
//! Path of a queue command: the connection parses it ([`crate::commands`]), then
//! [`QueueService::execute`] picks the topic's shard and runs the command on that
//! shard's leader ([`route`]): here if this node leads it, else forwarded over the
//! cluster channel (`FWD queues <group> <deadline> <postcard body>`), retried through
//! leader changes until `--no-leader-wait`. The leader proposes writes through the
//! shard's batching proposer (many clients' pushes, reads and acks in one log entry, one
//! fsync) and answers reads (`Q.LEN`, `Q.INFO`, `Q.PENDING`, `Q.TOPICS`) after
//! `ensure_linearizable`.
//!
//! `Q.READ` is a write (it changes delivery state). One that finds nothing and may
//! block is *queued in the replicated state* with a random request id and this node's
//! *origin*; the client waits on this node until this node applies the answer carrying
//! its id ([`read`]) — pushes, expiries and ticks are applied on every replica, so a
//! wait survives a leader change, and a node replaying old entries never answers a
//! client with an older result. A client that goes away withdraws its queued read
//! (`Cancel`) and gives back what was delivered to nobody (`Unread`).
//!
//! The leader of each shard proposes `Tick` when a visibility timeout, a delay or a
//! blocked read's `BLOCK` runs out, and `Configure` when the `--queue-*` parameters in
//! force differ from its own ([`driver`]).

mod budget;
pub mod driver;
pub mod placement;
mod read;
mod route;
pub mod start;

use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_cluster::{Peers, RaftGroup};
use conclave_protocol::blocking::BlockedWait;
use conclave_protocol::{Frame, Parse, ParseError};
use conclave_raft_store::proposer::Proposer;
use conclave_raft_store::waiters::Waiters;
use conclave_raft_store::{GroupId, NodeId};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::mpsc;

pub use route::{ForwardError, SERVICE};

use crate::commands::{Parser, QueueCommand};
use crate::machine::{QueueConfig, QueueOp, QueueQuery, QueueReply, QueueState, QueueStats, Wake};
use crate::reply::{self, Placement};

/// Why a queue command could not be served (also sent across the cluster channel inside
/// [`ForwardError`]).
#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceError {
    /// No leader of the shard could be reached within `--no-leader-wait`; nothing was
    /// done.
    #[error("CLUSTERDOWN no raft leader")]
    NoLeader,
    /// The shard's leader has not heard from a majority within twice the election
    /// timeout; nothing was done.
    #[error("CLUSTERDOWN no quorum")]
    NoQuorum,
    /// The command reached a leader's log but no quorum confirmed it in time: it may
    /// still take effect (a push retried with the same `DEDUP` id is answered with the
    /// first push's id and adds nothing).
    #[error("TRYAGAIN the shard's leader did not confirm the write in time; it may still apply (retry a push with DEDUP to be safe)")]
    Unknown,
    /// Raft failed in a way retrying will not fix.
    #[error("ERR raft: {0}")]
    Raft(String),
    /// `Q.PUSH` refused: this node (the shard's leader) is past its queue memory or disk
    /// budget (`--queue-max-memory`, `--queue-min-free-disk`); nothing was taken.
    #[error("OOM {0}")]
    OverBudget(String),
    /// A blocked `Q.READ` ended by `CLIENT UNBLOCK <id> ERROR` (Redis's text); the read
    /// is withdrawn.
    #[error("UNBLOCKED client unblocked via CLIENT UNBLOCK")]
    Unblocked,
}

/// One shard this node replicates.
struct LocalShard {
    group: Arc<RaftGroup<QueueState>>,
    proposer: Proposer<QueueState>,
    /// Blocked `Q.READ`s of this node's clients, by request id.
    waiters: Arc<Waiters<Wake>>,
}

/// One shard of the cluster.
struct Shard {
    /// Its Raft group id (`QUEUE_GROUP_BASE + index`).
    group: GroupId,
    /// Its replicas, the preferred leader first.
    replicas: Vec<NodeId>,
    /// The group, when this node is one of the replicas.
    local: Option<LocalShard>,
}

/// Counters sampled once a second for the `INFO queues` rates.
#[derive(Debug, Default)]
struct Rates {
    at: Option<Instant>,
    last: QueueStats,
    per_sec: [f64; 3],
}

/// The queue service of one node.
pub struct QueueService {
    id: NodeId,
    /// This process's origin (node id and incarnation, see [`start`]): queued reads of
    /// this node's clients carry it.
    origin: u64,
    shards: Vec<Shard>,
    /// Cluster addresses of the members.
    members: std::collections::HashMap<NodeId, String>,
    peers: Arc<Peers>,
    no_leader_wait: Duration,
    /// The `--queue-*` parameters this node's leaders put in force.
    config: QueueConfig,
    /// `Unread`s of reads answered for clients gone from this node, proposed by the
    /// driver.
    giveback: mpsc::UnboundedSender<(u32, QueueOp)>,
    rates: Mutex<Rates>,
    /// `-OOM` for pushes once this node is past its budget.
    budget: budget::Budget,
}

impl std::fmt::Debug for QueueService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueService")
            .field("id", &self.id)
            .field("shards", &self.shards.len())
            .finish()
    }
}

impl QueueService {
    /// The number of shards (`--queue-shards`).
    pub fn shard_count(&self) -> u32 {
        self.shards.len() as u32
    }

    /// The shard of `topic`.
    pub fn shard_of(&self, topic: &[u8]) -> u32 {
        placement::shard_of(topic, self.shard_count())
    }

    /// The Raft groups of the shards this node replicates.
    pub fn groups(&self) -> impl Iterator<Item = &Arc<RaftGroup<QueueState>>> {
        self.shards
            .iter()
            .filter_map(|s| s.local.as_ref().map(|l| &l.group))
    }

    /// Clients blocked in a `Q.READ` on this node.
    pub fn blocked_clients(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.local.as_ref())
            .map(|l| l.waiters.len())
            .sum()
    }

    /// Where shard `shard` lives, as this node knows it.
    fn placement(&self, shard: u32, leader: Option<NodeId>) -> Placement {
        let s = &self.shards[shard as usize];
        Placement {
            shard,
            leader: leader.or_else(|| s.local.as_ref().and_then(|l| l.group.leader())),
            replicas: s.replicas.clone(),
        }
    }

    /// Executes a `Q.*` command for a client; `parser` is the command's declared parser
    /// ([`crate::COMMANDS`]); a blocked `Q.READ` may be ended through `wait` (`CLIENT
    /// UNBLOCK`).
    pub async fn execute(
        self: &Arc<Self>,
        parser: Parser,
        parse: &mut Parse,
        wait: &BlockedWait,
    ) -> Frame {
        let cmd = match parser(parse) {
            Ok(c) => c,
            Err(e) => return e.to_frame(),
        };
        let result = match cmd {
            QueueCommand::Query(QueueQuery::Topics { pattern }) => self.topics(pattern).await,
            QueueCommand::Write(op @ QueueOp::Read { .. }) => self.read(op, wait).await,
            cmd => self.single(cmd).await,
        };
        result.unwrap_or_else(|e| Frame::error(e.to_string()))
    }

    /// A command of one topic's shard, answered as the shard's leader replies.
    async fn single(&self, cmd: QueueCommand) -> Result<Frame, ServiceError> {
        let Some(topic) = cmd.topic() else {
            return Err(ServiceError::Raft("a command without a topic".into()));
        };
        let shard = self.shard_of(topic);
        let info = matches!(cmd, QueueCommand::Query(QueueQuery::Info { .. }));
        let outcome = self.run(shard, route::Forwarded::now(cmd)).await?;
        let leader = outcome.leader;
        Ok(match (outcome.reply()?, info) {
            (QueueReply::Info(ti), true) => {
                reply::info_frame(&self.placement(shard, Some(leader)), &ti)
            }
            (r, _) => reply::reply_frame(&r),
        })
    }

    /// One connection's consecutive pipelined `Q.PUSH`es, parsed (each passed the
    /// dispatch gate): the pushes to one shard are proposed together in one log entry,
    /// in the order given, on that shard's leader; the shards run concurrently. Replies
    /// come back in the order given. A push whose arguments are wrong gets its error and
    /// the others still run; a group whose entry fails answers each of its pushes with
    /// that error (as a lone push would be answered).
    pub async fn push_all(
        self: &Arc<Self>,
        parsed: Vec<Result<QueueCommand, ParseError>>,
    ) -> Vec<Frame> {
        let mut replies: Vec<Option<Frame>> = vec![None; parsed.len()];
        // (shard, positions in `replies`, the pushes), in order of first appearance.
        let mut groups: Vec<(u32, Vec<usize>, Vec<QueueCommand>)> = Vec::new();
        for (i, p) in parsed.into_iter().enumerate() {
            let cmd = match p {
                Ok(cmd @ QueueCommand::Write(QueueOp::Push { .. })) => cmd,
                Ok(_) => {
                    replies[i] = Some(Frame::error("ERR only Q.PUSH is proposed together"));
                    continue;
                }
                Err(e) => {
                    replies[i] = Some(e.to_frame());
                    continue;
                }
            };
            let shard = self.shard_of(cmd.topic().map_or(&[][..], |t| &t[..]));
            match groups.iter_mut().find(|g| g.0 == shard) {
                Some(g) => {
                    g.1.push(i);
                    g.2.push(cmd);
                }
                None => groups.push((shard, vec![i], vec![cmd])),
            }
        }
        let run = |shard: u32, cmds: Vec<QueueCommand>| {
            let service = self.clone();
            async move {
                let fwd = route::Forwarded { cmds, block: None };
                service.run(shard, fwd).await
            }
        };
        let mut outcomes = Vec::with_capacity(groups.len());
        if groups.len() == 1 {
            if let Some((shard, at, cmds)) = groups.pop() {
                outcomes.push((at, run(shard, cmds).await));
            }
        } else {
            let mut set = tokio::task::JoinSet::new();
            for (shard, at, cmds) in groups {
                let fut = run(shard, cmds);
                set.spawn(async move { (at, fut.await) });
            }
            while let Some(done) = set.join_next().await {
                match done {
                    Ok(o) => outcomes.push(o),
                    Err(e) => tracing::warn!(error = %e, "a group of pipelined pushes failed"),
                }
            }
        }
        for (at, outcome) in outcomes {
            match outcome {
                Ok(o) if o.replies.len() == at.len() => {
                    for (i, r) in at.into_iter().zip(&o.replies) {
                        replies[i] = Some(reply::reply_frame(r));
                    }
                }
                Ok(_) => {
                    let e =
                        ServiceError::Raft("the shard's leader answered too few replies".into());
                    for i in at {
                        replies[i] = Some(Frame::error(e.to_string()));
                    }
                }
                Err(e) => {
                    for i in at {
                        replies[i] = Some(Frame::error(e.to_string()));
                    }
                }
            }
        }
        replies
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Frame::error(ServiceError::Unknown.to_string())))
            .collect()
    }

    /// `Q.TOPICS [pattern]`: every shard's topics, sorted.
    async fn topics(&self, pattern: Option<bytes::Bytes>) -> Result<Frame, ServiceError> {
        let mut names = Vec::new();
        for shard in 0..self.shard_count() {
            let q = QueueCommand::Query(QueueQuery::Topics {
                pattern: pattern.clone(),
            });
            match self.run(shard, route::Forwarded::now(q)).await?.reply()? {
                QueueReply::Topics(t) => names.extend(t),
                other => return Ok(reply::reply_frame(&other)),
            }
        }
        names.sort();
        Ok(Frame::Array(names.into_iter().map(Frame::Bulk).collect()))
    }

    /// Totals over the shards this node replicates, from its applied state.
    pub fn stats(&self) -> QueueStats {
        let mut total = QueueStats::default();
        for g in self.groups() {
            let s = g.state().read().machine.stats();
            total.topics += s.topics;
            total.messages += s.messages;
            total.bytes += s.bytes;
            total.pending += s.pending;
            total.waiting_reads += s.waiting_reads;
            total.pushes += s.pushes;
            total.deliveries += s.deliveries;
            total.acks += s.acks;
            total.dead_letters += s.dead_letters;
        }
        total
    }

    /// Samples the counters behind the `INFO queues` rates and the node's budget (the
    /// driver calls it about once a second).
    pub fn sample_rates(&self) {
        let now = Instant::now();
        let stats = self.stats();
        self.budget.sample(stats.bytes);
        let mut r = self.rates.lock();
        if let Some(at) = r.at {
            let secs = now.duration_since(at).as_secs_f64().max(1e-3);
            let rate = |new: u64, old: u64| new.saturating_sub(old) as f64 / secs;
            r.per_sec = [
                rate(stats.pushes, r.last.pushes),
                rate(stats.deliveries, r.last.deliveries),
                rate(stats.acks, r.last.acks),
            ];
        }
        r.at = Some(now);
        r.last = stats;
    }

    /// `INFO queues` fields: totals over the shards this node replicates (each replica
    /// of a shard reports it), and the rates of the last second.
    pub fn info_queues(&self) -> Vec<(String, String)> {
        let s = self.stats();
        let per_sec = self.rates.lock().per_sec;
        let leading = self
            .groups()
            .filter(|g| g.leader() == Some(self.id))
            .count();
        vec![
            ("queue_shards".into(), self.shard_count().to_string()),
            (
                "queue_shards_replicated".into(),
                self.groups().count().to_string(),
            ),
            ("queue_shards_led".into(), leading.to_string()),
            ("queue_topics".into(), s.topics.to_string()),
            ("queue_messages".into(), s.messages.to_string()),
            ("queue_message_bytes".into(), s.bytes.to_string()),
            ("queue_pending".into(), s.pending.to_string()),
            ("queue_dead_letters".into(), s.dead_letters.to_string()),
            ("queue_waiting_reads".into(), s.waiting_reads.to_string()),
            (
                "queue_blocked_clients".into(),
                self.blocked_clients().to_string(),
            ),
            ("queue_pushes".into(), s.pushes.to_string()),
            ("queue_deliveries".into(), s.deliveries.to_string()),
            ("queue_acks".into(), s.acks.to_string()),
            ("queue_pushes_per_sec".into(), format!("{:.2}", per_sec[0])),
            ("queue_reads_per_sec".into(), format!("{:.2}", per_sec[1])),
            ("queue_acks_per_sec".into(), format!("{:.2}", per_sec[2])),
        ]
    }
}
