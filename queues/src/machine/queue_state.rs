//! [`QueueState`]: every topic of one queue shard — the deterministic state machine
//! each replica applies the shard's committed log to.
//!
//! Pure: no clocks, no I/O, no randomness. Time comes only from
//! [`QueueRequest::now_ms`], and the machine keeps the greatest it has seen, so every
//! replica applying the same entries reaches the same state and replies.
//!
//! **Expiry is lazy, ticks only wake.** Every operation on a topic first *refreshes*
//! it at `now`: visibility timeouts and delays that ran out take effect (exhausted
//! messages move to `<topic>:dlq`) and queued reads are answered; then the operation
//! runs; then the topic (and any dead-letter topic it fed) is refreshed again. So no
//! reply ever depends on whether a [`QueueOp::Tick`] came first. The leader still
//! proposes a tick at [`QueueState::next_deadline`], because a queued `Q.READ` waiting
//! for a timeout or a delay must be answered when it runs out, not at the next push,
//! and dead letters should show up in `Q.LEN` without waiting for traffic.

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};
use foldhash::fast::RandomState;
use hashbrown::HashMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::topic::Topic;
use super::{
    Name, QueueApplied, QueueBatch, QueueConfig, QueueOp, QueueReply, QueueRequest, QueueStats,
    Wake, WakeOutcome,
};

/// Suffix of a topic's dead-letter topic.
pub const DLQ_SUFFIX: &[u8] = b":dlq";

/// `<topic>:dlq`, where `topic`'s dead letters go.
pub fn dlq_name(topic: &[u8]) -> Name {
    let mut name = BytesMut::with_capacity(topic.len() + DLQ_SUFFIX.len());
    name.put_slice(topic);
    name.put_slice(DLQ_SUFFIX);
    name.freeze()
}

/// What a topic's shard must be chosen by: the name without its trailing `:dlq`
/// suffixes, so a topic and its dead-letter topics (`t`, `t:dlq`, `t:dlq:dlq`) always
/// live in the same shard — dead-lettering and `Q.REDRIVE` move messages between them
/// inside one state machine.
pub fn placement_key(topic: &[u8]) -> &[u8] {
    let mut key = topic;
    while let Some(base) = key.strip_suffix(DLQ_SUFFIX) {
        if base.is_empty() {
            break;
        }
        key = base;
    }
    key
}

/// Event counters (the replicated part of [`QueueStats`]).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) pushes: u64,
    pub(crate) deliveries: u64,
    pub(crate) acks: u64,
    pub(crate) dead_letters: u64,
}

/// The replicated part of the state.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StateData {
    pub(crate) config: QueueConfig,
    /// Greatest `now_ms` applied.
    pub(crate) clock: u64,
    #[serde(with = "super::sorted_map")]
    pub(crate) topics: std::collections::BTreeMap<Name, Topic>,
    pub(crate) counters: Counters,
}

/// Topics by the earliest time one of their entries becomes visible.
#[derive(Clone, Debug, Default)]
struct DueIndex {
    by_time: BTreeSet<(u64, Name)>,
    of_topic: HashMap<Name, u64, RandomState>,
}

impl DueIndex {
    fn set(&mut self, name: &Name, due: Option<u64>) {
        let old = self.of_topic.get(name).copied();
        if old == due {
            return;
        }
        if let Some(old) = old {
            self.by_time.remove(&(old, name.clone()));
            self.of_topic.remove(name);
        }
        if let Some(due) = due {
            self.by_time.insert((due, name.clone()));
            self.of_topic.insert(name.clone(), due);
        }
    }
}

/// What applying one request produced besides its reply.
#[derive(Default)]
pub(crate) struct Effects {
    pub(crate) woken: Vec<Wake>,
    /// Topics to refresh before the request is done, processed in name order.
    pub(crate) touched: BTreeSet<Name>,
    pub(crate) dead_lettered: u64,
}

/// Every topic of one shard (see the module docs).
///
/// Serializes (for Raft snapshots) to its topics, parameters, clock and counters; the
/// lookup indexes are rebuilt on load.
#[derive(Clone, Debug, Default)]
pub struct QueueState {
    pub(crate) data: StateData,
    due: DueIndex,
}

impl PartialEq for QueueState {
    fn eq(&self, other: &Self) -> bool {
        self.data == other.data
    }
}

impl Eq for QueueState {}

impl Serialize for QueueState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.data.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for QueueState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let data = StateData::deserialize(deserializer)?;
        let mut due = DueIndex::default();
        for (name, topic) in &data.topics {
            due.set(name, topic.due());
        }
        Ok(QueueState { data, due })
    }
}

impl QueueState {
    /// An empty shard with these parameters.
    pub fn new(config: QueueConfig) -> Self {
        QueueState {
            data: StateData {
                config,
                ..StateData::default()
            },
            due: DueIndex::default(),
        }
    }

    /// The parameters in force.
    pub fn config(&self) -> &QueueConfig {
        &self.data.config
    }

    /// Greatest `now_ms` applied so far (the machine's clock).
    pub fn clock(&self) -> u64 {
        self.data.clock
    }

    /// When the leader should propose [`QueueOp::Tick`]: the earliest time a
    /// visibility timeout or a delay runs out (`None`: nothing pending or delayed).
    pub fn next_deadline(&self) -> Option<u64> {
        self.due.by_time.first().map(|(t, _)| *t)
    }

    /// Totals for `INFO queues` (O(topics + groups)).
    pub fn stats(&self) -> QueueStats {
        let c = &self.data.counters;
        let mut s = QueueStats {
            topics: self.data.topics.len() as u64,
            pushes: c.pushes,
            deliveries: c.deliveries,
            acks: c.acks,
            dead_letters: c.dead_letters,
            ..QueueStats::default()
        };
        for t in self.data.topics.values() {
            s.messages += t.messages.len() as u64;
            s.bytes += t.bytes;
            for g in t.groups.values() {
                s.pending += g.counts().1;
                s.waiting_reads += g.waiters() as u64;
            }
        }
        s
    }

    /// Applies every request of a log entry, in order.
    pub fn apply_batch(&mut self, batch: &QueueBatch) -> Vec<QueueApplied> {
        batch.requests.iter().map(|r| self.apply(r)).collect()
    }

    /// Applies one committed request: the proposer's reply plus the queued reads it
    /// answered.
    pub fn apply(&mut self, req: &QueueRequest) -> QueueApplied {
        self.apply_op(req.now_ms, &req.op)
    }

    /// Applies `op` stamped with the leader's clock `now_ms` (what [`apply`](Self::apply)
    /// does with a [`QueueRequest`]).
    pub fn apply_op(&mut self, now_ms: u64, op: &QueueOp) -> QueueApplied {
        let now = self.data.clock.max(now_ms);
        self.data.clock = now;
        let mut fx = Effects::default();
        let topic = op.topic().cloned();
        if let Some(t) = &topic {
            if let QueueOp::Redrive { .. } = op {
                self.refresh(&super::dlq_name(t), now, &mut fx);
            }
            self.refresh(t, now, &mut fx);
        }
        let reply = self.run(op, now, &mut fx);
        if let Some(t) = topic {
            fx.touched.insert(t);
        }
        while let Some(name) = fx.touched.pop_first() {
            self.refresh(&name, now, &mut fx);
        }
        let reply = match reply {
            QueueReply::Ticked { .. } => QueueReply::Ticked {
                dead_lettered: fx.dead_lettered,
                woken: fx.woken.len() as u64,
            },
            other => other,
        };
        QueueApplied {
            reply,
            woken: fx.woken,
        }
    }

    fn run(&mut self, op: &QueueOp, now: u64, fx: &mut Effects) -> QueueReply {
        match op {
            QueueOp::Push {
                topic,
                payload,
                dedup,
                delay_ms,
            } => self.push(now, topic, payload, dedup.as_ref(), *delay_ms),
            QueueOp::Read {
                topic,
                group,
                consumer,
                count,
                visibility_ms,
                block_ms,
                rid,
                origin,
            } => {
                let visibility_ms = visibility_ms.unwrap_or(self.data.config.visibility_ms);
                let how = super::deliveries::ReadHow {
                    count: *count,
                    visibility_ms,
                    block_ms: *block_ms,
                    rid: *rid,
                    origin: *origin,
                };
                self.read(now, topic, group, consumer, how)
            }
            QueueOp::Ack { topic, group, ids } => self.ack(topic, group, ids),
            QueueOp::Nack {
                topic,
                group,
                id,
                delay_ms,
            } => self.nack(now, topic, group, *id, *delay_ms, fx),
            QueueOp::Extend {
                topic,
                group,
                id,
                ms,
            } => self.extend(now, topic, group, *id, *ms),
            QueueOp::Unread {
                topic,
                group,
                rid,
                ids,
            } => self.unread(now, topic, group, *rid, ids),
            QueueOp::Cancel { topic, group, rid } => self.cancel(topic, group, *rid),
            QueueOp::CancelOrigin { origin } => self.cancel_origin(*origin),
            QueueOp::Redrive { topic, count } => self.redrive(now, topic, *count, fx),
            QueueOp::GroupCreate { topic, group, from } => self.group_create(topic, group, *from),
            QueueOp::GroupDestroy { topic, group } => self.group_destroy(topic, group, fx),
            QueueOp::Del { topic } => self.del(topic, fx),
            QueueOp::Tick => {
                fx.touched.extend(
                    self.due
                        .by_time
                        .iter()
                        .take_while(|(t, _)| *t <= now)
                        .map(|(_, name)| name.clone()),
                );
                QueueReply::Ticked {
                    dead_lettered: 0,
                    woken: 0,
                }
            }
            QueueOp::Configure(config) => {
                self.data.config = config.clone();
                QueueReply::Ok
            }
        }
    }

    /// Brings a topic up to date at `now`: due entries become visible or dead letters,
    /// queued reads are answered, and the due index follows.
    fn refresh(&mut self, name: &Name, now: u64, fx: &mut Effects) {
        let config = &self.data.config;
        let Some(topic) = self.data.topics.get_mut(name) else {
            self.due.set(name, None);
            return;
        };
        let mut dead = Vec::new();
        for g in topic.groups.values_mut() {
            dead.extend(g.settle(now, config));
        }
        let payloads: Vec<Bytes> = dead.into_iter().filter_map(|id| topic.finish(id)).collect();
        let first_woken = fx.woken.len();
        topic.serve(name, now, &mut fx.woken);
        let due = topic.due();
        self.due.set(name, due);
        for w in &fx.woken[first_woken..] {
            if let WakeOutcome::Messages(m) = &w.outcome {
                self.data.counters.deliveries += m.len() as u64;
            }
        }
        self.dead_letter(name, payloads, now, fx);
    }

    /// Pushes dead letters of `topic` into `<topic>:dlq` (whatever its length: a dead
    /// letter is never dropped) and schedules that topic's refresh.
    pub(crate) fn dead_letter(
        &mut self,
        topic: &[u8],
        payloads: Vec<Bytes>,
        now: u64,
        fx: &mut Effects,
    ) {
        if payloads.is_empty() {
            return;
        }
        let name = super::dlq_name(topic);
        let dlq = self.data.topics.entry(name.clone()).or_default();
        for payload in payloads {
            dlq.push(payload, 0, now);
            self.data.counters.pushes += 1;
            self.data.counters.dead_letters += 1;
            fx.dead_lettered += 1;
        }
        fx.touched.insert(name);
    }

    /// Answers `Gone` to queued reads whose topic or group went away.
    pub(crate) fn gone(
        fx: &mut Effects,
        topic: &Name,
        group: &Name,
        waiters: impl IntoIterator<Item = super::group_view::Waiter>,
    ) {
        for w in waiters {
            fx.woken.push(Wake {
                rid: w.rid,
                origin: w.origin,
                topic: topic.clone(),
                group: group.clone(),
                outcome: WakeOutcome::Gone,
            });
        }
    }

    /// Checks every topic and the due index (tests).
    #[cfg(test)]
    pub(crate) fn assert_consistent(&self) {
        let mut due = DueIndex::default();
        for (name, t) in &self.data.topics {
            t.assert_consistent();
            due.set(name, t.due());
        }
        assert_eq!(self.due.by_time, due.by_time, "due index");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_topics_share_their_topic_s_placement() {
        assert_eq!(placement_key(b"orders"), b"orders");
        assert_eq!(placement_key(b"orders:dlq"), b"orders");
        assert_eq!(placement_key(b"orders:dlq:dlq"), b"orders");
        assert_eq!(placement_key(b":dlq"), b":dlq");
        assert_eq!(placement_key(b"x:dlqy"), b"x:dlqy");
        assert_eq!(&dlq_name(b"orders")[..], b"orders:dlq");
    }
}
