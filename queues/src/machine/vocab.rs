//! The queue service's replicated vocabulary: what goes into a shard's Raft log
//! ([`QueueBatch`] of [`QueueRequest`]s) and the read-only questions asked of a replica
//! ([`QueueQuery`]).
//!
//! These types are serialized into log entries, so changing them is a storage-format
//! change.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{MsgId, QueueConfig};

/// A binary-safe topic, group, consumer or dedup name.
pub type Name = Bytes;

/// Identifies one client's `Q.READ` across the cluster: chosen at random (never 0) by
/// the node the client talks to and carried in the log entry, in the queued reader and
/// in the [`Wake`](super::Wake) that answers it, so that node recognises the answer to
/// *its* request and nothing older. `0`: no id (a read that never waits).
pub type RequestId = u64;

/// One request of a log entry: an operation and the leader's clock.
///
/// The state machine never reads a clock: `now_ms` (ms since the Unix epoch, stamped by
/// the leader when it proposed the entry) is its only notion of time. The machine keeps
/// the greatest `now_ms` it has applied and uses `max(that, now_ms)`, so time never runs
/// backwards across a leader change with a slower clock.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct QueueRequest {
    /// The proposing leader's wall clock, ms since the Unix epoch.
    pub now_ms: u64,
    /// What to do.
    pub op: QueueOp,
}

/// One Raft log entry of a queue shard: requests proposed together (so one fsync carries
/// many clients' pushes, reads and acks), applied in order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct QueueBatch {
    /// The requests, in the order they are applied.
    pub requests: Vec<QueueRequest>,
}

impl From<QueueRequest> for QueueBatch {
    fn from(req: QueueRequest) -> Self {
        QueueBatch {
            requests: vec![req],
        }
    }
}

/// Where a new consumer group starts reading (`Q.GROUP CREATE ... FROM 0|$|<id>`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StartFrom {
    /// `FROM 0` (default, and a group created by its first `Q.READ`): the oldest
    /// retained message.
    #[default]
    Oldest,
    /// `FROM $`: only messages pushed after the group was created.
    Latest,
    /// `FROM <id>`: messages with an id greater than this one (as `XGROUP CREATE`).
    After(MsgId),
}

/// An operation on a shard's topics. Replies are in [`QueueReply`](super::QueueReply);
/// "nothing changes" is promised wherever an error is answered.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum QueueOp {
    /// `Q.PUSH <topic> <payload> [DEDUP <id>] [DELAY <ms>]` → `Pushed { id }`, or
    /// `Error(TopicFull)` when the topic holds `max_len` messages. With `dedup`, a push
    /// whose dedup id was pushed to this topic less than `dedup_window_ms` ago answers
    /// that push's id and adds nothing. `delay_ms > 0` keeps the message invisible to
    /// every group until `now + delay_ms`.
    Push {
        topic: Name,
        payload: Bytes,
        dedup: Option<Name>,
        delay_ms: u64,
    },
    /// `Q.READ <topic> <group> <consumer> [COUNT n] [BLOCK ms] [VISIBILITY ms]`.
    ///
    /// Creates the group (from the oldest retained message) if needed, then delivers
    /// the `count` (at least 1) oldest *available* messages of the group — never
    /// delivered and past their delay, or delivered before and past their visibility
    /// timeout — oldest first → `Messages`. Each becomes invisible to the group for
    /// `visibility_ms` (`None`: the configured default). None available: with
    /// `block_ms: None` → `Messages([])`; with `Some(ms)` the read is queued (FIFO per
    /// group) → `Waiting`, and a later entry that makes messages available answers it
    /// with a [`Wake`](super::Wake) carrying `rid` (`Some(0)`: no deadline; otherwise
    /// messages arriving at or after `now_at_read + ms` answer it `TimedOut` instead —
    /// its node normally withdraws it first with [`QueueOp::Cancel`] when the wait
    /// runs out). If that `Cancel` answers `Flag(false)`, the node has already applied
    /// the `Wake` (it precedes the `Cancel` in the log): hand its messages to the
    /// client, or give them back with [`QueueOp::Unread`] if the client is gone.
    Read {
        topic: Name,
        group: Name,
        consumer: Name,
        count: u64,
        visibility_ms: Option<u64>,
        block_ms: Option<u64>,
        /// This request's id (see [`RequestId`]).
        rid: RequestId,
        /// The node the client is connected to; [`QueueOp::CancelOrigin`] drops its
        /// queued reads when it restarts.
        origin: u64,
    },
    /// `Q.ACK <topic> <group> <id>...` → `Count`: how many were pending (delivered,
    /// not acknowledged) and now are acknowledged.
    Ack {
        topic: Name,
        group: Name,
        ids: Vec<MsgId>,
    },
    /// `Q.NACK <topic> <group> <id> [DELAY ms]` → `Flag(true)`: given back, visible
    /// again after `delay_ms` (`None`: `backoff_base_ms * 2^(deliveries-1)`, at most
    /// `backoff_cap_ms`); a message already delivered `max_deliveries` times is
    /// dead-lettered at once. `Flag(false)`: not pending.
    Nack {
        topic: Name,
        group: Name,
        id: MsgId,
        delay_ms: Option<u64>,
    },
    /// `Q.EXTEND <topic> <group> <id> <ms>` → `Flag(true)`: invisible until
    /// `max(invisible_until, now) + ms`; `Flag(false)`: not pending.
    Extend {
        topic: Name,
        group: Name,
        id: MsgId,
        ms: u64,
    },
    /// `Q.REDRIVE <topic> [COUNT n]` → `Count`: moves the oldest `count` (`None`: all)
    /// messages of `<topic>:dlq` back to `<topic>` as new messages, as many as fit under
    /// `max_len`.
    Redrive { topic: Name, count: Option<u64> },
    /// `Q.GROUP CREATE <topic> <group> [FROM 0|$|<id>]` → `Ok`, or
    /// `Error(BusyGroup)`. Creates the topic if needed.
    GroupCreate {
        topic: Name,
        group: Name,
        from: StartFrom,
    },
    /// `Q.GROUP DESTROY <topic> <group>` → `Flag`: whether it existed. Its queued reads
    /// are answered [`WakeOutcome::Gone`](super::WakeOutcome::Gone).
    GroupDestroy { topic: Name, group: Name },
    /// `Q.DEL <topic>` → `Flag`: whether it existed (messages, groups and dedup ids go;
    /// `<topic>:dlq` stays). Queued reads are answered `Gone`.
    Del { topic: Name },
    /// Withdraw the queued read `rid` of `group` (its `BLOCK` ran out on its node, or its
    /// client went away) → `Flag(true)`: it was still queued, now removed;
    /// `Flag(false)`: not queued (already answered, or dropped).
    Cancel {
        topic: Name,
        group: Name,
        rid: RequestId,
    },
    /// Give back messages a read `rid` delivered that its client never received (the
    /// client went away, or was answered an error) → `Count` given back: each still
    /// pending from that delivery (no newer delivery, `NACK` or `EXTEND` since) becomes
    /// visible at once with its delivery count lowered by one.
    Unread {
        topic: Name,
        group: Name,
        rid: RequestId,
        ids: Vec<MsgId>,
    },
    /// Drop every queued read from node `origin` (proposed by that node after a restart:
    /// its clients are gone) → `Count` dropped.
    CancelOrigin { origin: u64 },
    /// Proposed by the leader once `now >=`
    /// [`QueueState::next_deadline`](super::QueueState::next_deadline): makes expired visibility timeouts and delays
    /// take effect — dead-lettering exhausted messages and answering queued reads →
    /// `Ticked`. Every other operation settles its own topic first, so correctness
    /// never waits for a tick; only queued readers and dead-letter counts do.
    Tick,
    /// Replace the parameters (`CONFIG SET` of a `--queue-*` option) → `Ok`.
    Configure(QueueConfig),
}

impl QueueOp {
    /// The topic the operation acts on (`None` for `Tick`, `CancelOrigin`, `Configure`).
    pub fn topic(&self) -> Option<&Name> {
        match self {
            QueueOp::Push { topic, .. }
            | QueueOp::Read { topic, .. }
            | QueueOp::Ack { topic, .. }
            | QueueOp::Nack { topic, .. }
            | QueueOp::Extend { topic, .. }
            | QueueOp::Redrive { topic, .. }
            | QueueOp::GroupCreate { topic, .. }
            | QueueOp::GroupDestroy { topic, .. }
            | QueueOp::Del { topic }
            | QueueOp::Cancel { topic, .. }
            | QueueOp::Unread { topic, .. } => Some(topic),
            QueueOp::CancelOrigin { .. } | QueueOp::Tick | QueueOp::Configure(_) => None,
        }
    }
}

/// A read-only question, answered by [`QueueState::query`](super::QueueState::query)
/// on the leader after a linearizable-read check (not through the log).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum QueueQuery {
    /// `Q.LEN <topic>` → `Count`: messages retained (0 for a missing topic).
    Len { topic: Name },
    /// `Q.INFO <topic>` → `Info`, or `Error(NoSuchTopic)`.
    Info { topic: Name },
    /// `Q.PENDING <topic> <group> [COUNT n]` → `Pending`: at most `count` (`None`: all)
    /// pending messages, lowest id first; empty for a missing topic or group.
    Pending {
        topic: Name,
        group: Name,
        count: Option<u64>,
    },
    /// `Q.TOPICS [pattern]` → `Topics`: names matching the glob (Redis `KEYS` syntax;
    /// `None`: all), in byte order.
    Topics { pattern: Option<Name> },
}
