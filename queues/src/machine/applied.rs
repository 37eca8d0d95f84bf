//! What applying a request (or answering a query) gives back: [`QueueApplied`] — the
//! proposer's [`QueueReply`] plus the queued reads it answered ([`Wake`]s).
//!
//! Every type here is serializable, since Raft's apply responses travel between nodes.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{MsgId, Name, RequestId};

/// The result of applying one request: the reply for whoever proposed it, and the
/// queued `Q.READ`s it answered (a push, a `NACK`, a tick... can each answer several).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct QueueApplied {
    /// The proposer's reply.
    pub reply: QueueReply,
    /// Queued reads answered by this request, in the order they were answered. Each node
    /// hands those whose `origin` is itself to the client waiting on `rid`.
    pub woken: Vec<Wake>,
}

impl QueueApplied {
    /// A reply that answered no queued read.
    pub fn reply(reply: QueueReply) -> Self {
        QueueApplied {
            reply,
            woken: Vec::new(),
        }
    }
}

/// One delivered message, as `Q.READ` replies it: `[id, payload, deliveries]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    /// Its id in the topic.
    pub id: MsgId,
    /// The pushed bytes.
    pub payload: Bytes,
    /// Deliveries to this group so far, this one included (1 on a first delivery).
    pub deliveries: u32,
}

/// A reply, per operation (see [`QueueOp`](super::QueueOp) and
/// [`QueueQuery`](super::QueueQuery) for which operation answers which variant).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum QueueReply {
    /// `Q.PUSH`: the message's id (bulk string `<ms>-<seq>`); `duplicate` when a push
    /// with the same `DEDUP` id inside the window answered it and nothing was added.
    Pushed { id: MsgId, duplicate: bool },
    /// `Q.READ`: the messages delivered, oldest first; empty → null array
    /// (`*-1` / `_`).
    Messages(Vec<Msg>),
    /// `Q.READ` with `BLOCK` and nothing available: queued; a later [`Wake`] carrying
    /// the request's `rid` answers it.
    Waiting,
    /// An integer reply: `Q.ACK` (acknowledged), `Q.REDRIVE` (moved), `Q.LEN`,
    /// `Unread` (given back), `CancelOrigin` (dropped).
    Count(u64),
    /// `:1` / `:0`: `Q.NACK`, `Q.EXTEND`, `Q.GROUP DESTROY`, `Q.DEL`, `Cancel`.
    Flag(bool),
    /// `+OK`: `Q.GROUP CREATE`, `Configure`.
    Ok,
    /// `Tick`: how many messages went to a dead-letter topic and how many queued reads
    /// were answered.
    Ticked { dead_lettered: u64, woken: u64 },
    /// `Q.PENDING`: array of maps `id`, `consumer`, `deliveries`, `idle_ms`.
    Pending(Vec<PendingEntry>),
    /// `Q.INFO` (the replicated part; the server adds `shard`, `leader`, `replicas`).
    Info(TopicInfo),
    /// `Q.TOPICS`: names in byte order.
    Topics(Vec<Name>),
    /// Refused; nothing changed. `Display` gives the RESP error line.
    Error(QueueError),
}

/// A refused request (nothing changed). `Display` is the RESP error line, prefix
/// included, without the leading `-`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Error)]
pub enum QueueError {
    /// `Q.PUSH` to a topic retaining `max_len` messages (contract: `-OOM` rather than
    /// drop anything).
    #[error("OOM topic holds --queue-max-len ({max_len}) messages")]
    TopicFull { max_len: u64 },
    /// `Q.GROUP CREATE` of an existing group (Redis `XGROUP CREATE`'s error).
    #[error("BUSYGROUP Consumer Group name already exists")]
    BusyGroup,
    /// `Q.INFO` of a missing topic (Redis `XINFO STREAM`'s error).
    #[error("ERR no such key")]
    NoSuchTopic,
}

/// How a queued `Q.READ` ended.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum WakeOutcome {
    /// Messages delivered to it (oldest first; never empty): reply them.
    Messages(Vec<Msg>),
    /// Its `BLOCK` deadline had passed when messages became available: dropped,
    /// nothing delivered (reply null).
    TimedOut,
    /// Its topic or group was deleted (Redis answers `-UNBLOCKED` for a deleted
    /// stream; null is also reasonable).
    Gone,
}

/// A queued `Q.READ` answered by the entry being applied.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Wake {
    /// The read's request id.
    pub rid: RequestId,
    /// The node its client is connected to.
    pub origin: u64,
    /// Where it read.
    pub topic: Name,
    /// Its group.
    pub group: Name,
    /// What it gets.
    pub outcome: WakeOutcome,
}

/// One pending message, as `Q.PENDING` lists it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PendingEntry {
    /// Message id.
    pub id: MsgId,
    /// The consumer of its latest delivery.
    pub consumer: Name,
    /// Deliveries to this group so far.
    pub deliveries: u32,
    /// ms since its latest delivery (at the time asked).
    pub idle_ms: u64,
}

/// One group, as `Q.INFO` lists it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    /// Group name.
    pub name: Name,
    /// Distinct consumers that have read in it.
    pub consumers: u64,
    /// Messages delivered and not yet acknowledged.
    pub pending: u64,
    /// Retained messages never delivered to it (including ones still delayed).
    pub lag: u64,
    /// Deliveries made, redeliveries included.
    pub delivered: u64,
    /// Messages acknowledged.
    pub acked: u64,
}

/// The replicated part of `Q.INFO <topic>`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    /// Messages retained.
    pub length: u64,
    /// Oldest retained message (`None` → null).
    pub first_id: Option<MsgId>,
    /// Last id assigned, even if that message is gone (`None`: never pushed).
    pub last_id: Option<MsgId>,
    /// Messages retained in `<topic>:dlq`.
    pub dlq_length: u64,
    /// Groups in name order.
    pub groups: Vec<GroupInfo>,
}

/// Totals for `INFO queues`; part of the replicated state, so identical everywhere.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Topics (dead-letter topics included).
    pub topics: u64,
    /// Messages retained.
    pub messages: u64,
    /// Payload bytes retained.
    pub bytes: u64,
    /// Messages delivered and not acknowledged, summed over groups.
    pub pending: u64,
    /// Queued `Q.READ`s.
    pub waiting_reads: u64,
    /// Messages pushed (duplicates and refused pushes excluded; redriven and
    /// dead-lettered copies included).
    pub pushes: u64,
    /// Deliveries made.
    pub deliveries: u64,
    /// Acknowledgements.
    pub acks: u64,
    /// Messages moved to a dead-letter topic.
    pub dead_letters: u64,
}
