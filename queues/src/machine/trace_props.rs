//! Property tests, part 2: the contract's guarantees checked on the machine's own
//! replies over random operation sequences (no reference model), then a drain that
//! reads and acknowledges everything left:
//!
//! - ids strictly increase within a topic; a `DEDUP` id inside the window answers the
//!   first push's id and adds nothing, outside it pushes anew;
//! - no message is delivered while a previous delivery to its group is still
//!   invisible (so never to two consumers at once); the `deliveries` field counts up
//!   by one per delivery and never exceeds `max_deliveries`;
//! - first deliveries within a group follow push order, and a reply is oldest first;
//! - a pending message leaves a group only by an ack or, after exactly
//!   `max_deliveries` deliveries, by going to `<topic>:dlq` (where it must show up);
//! - no acknowledged push is lost: after the drain (`trace_drain`), every message
//!   pushed while a group existed was acknowledged by it or dead-lettered.
//!
//! Before each operation a `Tick` at the same time settles what ran out, so that the
//! operation's own refresh has nothing left to do: every queued read it answers comes
//! after its effect, and `Q.PENDING` just before tells exactly which ids an ack acts
//! on. (The lazy path, operations settling on their own, is compared with the
//! reference model in `model_props`.)

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use proptest::prelude::*;

use super::op_gen::{steps, test_config, Ids, Step};
use super::*;

/// What the test knows of one delivered message in one group.
#[derive(Clone, Copy, Debug)]
pub(super) struct Shadow {
    deliveries: u32,
    /// Invisible to the group before this time.
    until: u64,
    /// The read that delivered it last, until a `NACK` / `EXTEND`.
    rid: RequestId,
}

pub(super) type TG = (Name, Name);

#[derive(Default)]
pub(super) struct Trace {
    pub(super) state: QueueState,
    pub(super) ids: Ids,
    pub(super) now: u64,
    pub(super) config: QueueConfig,
    pub(super) vis_of_rid: HashMap<RequestId, u64>,
    pub(super) last_id: BTreeMap<Name, MsgId>,
    /// `(topic, dedup id)` → when first pushed and its id.
    pub(super) dedup_first: BTreeMap<TG, (u64, MsgId)>,
    pub(super) shadow: BTreeMap<TG, BTreeMap<MsgId, Shadow>>,
    /// Payload → topic and id of its push.
    pub(super) orig: BTreeMap<Bytes, (Name, MsgId)>,
    /// `(topic, id)` → payload, from pushes and deliveries (dead letters and redriven
    /// copies are known from their deliveries).
    pub(super) payload_at: BTreeMap<(Name, MsgId), Bytes>,
    pub(super) delayed: BTreeSet<(Name, MsgId)>,
    /// Given back to zero deliveries by `Unread` (their next delivery is a "first" one
    /// out of push order).
    pub(super) unread_zero: BTreeSet<(Name, Name, MsgId)>,
    pub(super) last_first: BTreeMap<TG, MsgId>,
    /// Payloads pushed to a topic while the group existed.
    pub(super) owed: BTreeMap<TG, BTreeSet<Bytes>>,
    pub(super) acked: BTreeMap<TG, BTreeSet<Bytes>>,
    pub(super) dead_by: BTreeMap<TG, BTreeSet<Bytes>>,
    /// Payloads a topic dead-lettered, and those seen to arrive in its dead-letter topic.
    pub(super) dead_expected: BTreeMap<Name, BTreeSet<Bytes>>,
    pub(super) dead_seen: BTreeMap<Name, BTreeSet<Bytes>>,
}

pub(super) fn base_of(dlq: &[u8]) -> Option<Name> {
    dlq.strip_suffix(DLQ_SUFFIX).map(Bytes::copy_from_slice)
}

impl Trace {
    pub(super) fn new() -> Self {
        Trace {
            state: QueueState::new(test_config()),
            now: 1_000_000,
            config: test_config(),
            ..Trace::default()
        }
    }

    pub(super) fn step(&mut self, (advance, gen): &Step) {
        self.now += advance;
        let op = self.ids.resolve(gen);
        if op != QueueOp::Tick {
            self.apply(QueueOp::Tick);
        }
        self.apply(op);
    }

    pub(super) fn groups(&self, topic: &[u8]) -> Vec<Name> {
        self.state
            .info(topic)
            .map(|i| i.groups.into_iter().map(|g| g.name).collect())
            .unwrap_or_default()
    }

    pub(super) fn apply(&mut self, op: QueueOp) -> QueueApplied {
        let pending_before: BTreeSet<MsgId> = match &op {
            QueueOp::Ack { topic, group, .. } => self
                .state
                .pending(topic, group, None, self.now)
                .iter()
                .map(|p| p.id)
                .collect(),
            _ => BTreeSet::new(),
        };
        let req = QueueRequest {
            now_ms: self.now,
            op: op.clone(),
        };
        let applied = self.state.apply(&req);
        self.ids.record(&op, &applied);
        self.check_reply(&op, &applied.reply, &pending_before);
        for w in &applied.woken {
            if let WakeOutcome::Messages(m) = &w.outcome {
                let vis = self.vis_of_rid.get(&w.rid).copied().unwrap_or(0);
                self.delivered(&w.topic, &w.group, w.rid, vis, m);
            }
        }
        self.sync(&op);
        applied
    }

    fn check_reply(&mut self, op: &QueueOp, reply: &QueueReply, pending_before: &BTreeSet<MsgId>) {
        let now = self.now;
        let window = self.config.dedup_window_ms;
        match (op, reply) {
            (
                QueueOp::Push {
                    topic,
                    payload,
                    dedup,
                    delay_ms,
                },
                reply,
            ) => {
                let first = dedup
                    .as_ref()
                    .and_then(|d| self.dedup_first.get(&(topic.clone(), d.clone())))
                    .filter(|(at, _)| at + window > now)
                    .map(|(_, id)| *id);
                match reply {
                    QueueReply::Pushed {
                        id,
                        duplicate: true,
                    } => assert_eq!(Some(*id), first, "duplicate answer"),
                    QueueReply::Pushed {
                        id,
                        duplicate: false,
                    } => {
                        assert_eq!(first, None, "pushed again inside the dedup window");
                        let last = self.last_id.insert(topic.clone(), *id);
                        assert!(last.is_none_or(|l| l < *id), "id {id} after {last:?}");
                        if let Some(d) = dedup {
                            self.dedup_first
                                .insert((topic.clone(), d.clone()), (now, *id));
                        }
                        self.orig.insert(payload.clone(), (topic.clone(), *id));
                        self.payload_at
                            .insert((topic.clone(), *id), payload.clone());
                        if *delay_ms > 0 {
                            self.delayed.insert((topic.clone(), *id));
                        }
                        for g in self.groups(topic) {
                            self.owed
                                .entry((topic.clone(), g))
                                .or_default()
                                .insert(payload.clone());
                        }
                    }
                    QueueReply::Error(QueueError::TopicFull { .. }) => {
                        assert_eq!(first, None, "refused a duplicate");
                        assert!(self.state.len(topic) >= self.config.max_len);
                    }
                    other => panic!("push answered {other:?}"),
                }
            }
            (
                QueueOp::Read {
                    topic,
                    group,
                    rid,
                    visibility_ms,
                    ..
                },
                reply,
            ) => {
                let vis = visibility_ms.unwrap_or(self.config.visibility_ms).max(1);
                match reply {
                    QueueReply::Messages(m) => self.delivered(topic, group, *rid, vis, m),
                    QueueReply::Waiting => {
                        self.vis_of_rid.insert(*rid, vis);
                    }
                    other => panic!("read answered {other:?}"),
                }
            }
            (QueueOp::Ack { topic, group, ids }, QueueReply::Count(n)) => {
                let acked: BTreeSet<MsgId> = ids
                    .iter()
                    .copied()
                    .filter(|id| pending_before.contains(id))
                    .collect();
                assert_eq!(*n, acked.len() as u64, "ack count of {ids:?}");
                let key = (topic.clone(), group.clone());
                for id in acked {
                    self.shadow.get_mut(&key).and_then(|s| s.remove(&id));
                    if let Some(p) = self.payload(topic, id) {
                        self.acked.entry(key.clone()).or_default().insert(p);
                    }
                }
            }
            (
                QueueOp::Nack {
                    topic,
                    group,
                    id,
                    delay_ms,
                },
                QueueReply::Flag(true),
            ) => {
                let config = self.config.clone();
                let s = self
                    .shadow_mut(topic, group, *id)
                    .expect("nacked an unknown delivery");
                if !config.exhausted(s.deliveries) {
                    s.until = now + delay_ms.unwrap_or_else(|| config.backoff_ms(s.deliveries));
                    s.rid = 0;
                }
            }
            (
                QueueOp::Extend {
                    topic,
                    group,
                    id,
                    ms,
                },
                QueueReply::Flag(true),
            ) => {
                let s = self
                    .shadow_mut(topic, group, *id)
                    .expect("extended an unknown delivery");
                s.until = s.until.max(now) + ms;
                s.rid = 0;
            }
            (
                QueueOp::Unread {
                    topic,
                    group,
                    rid,
                    ids,
                },
                QueueReply::Count(n),
            ) => {
                let mut given = 0;
                for id in ids.iter().collect::<BTreeSet<_>>() {
                    let Some(s) = self.shadow_mut(topic, group, *id) else {
                        continue;
                    };
                    if *rid != 0 && s.rid == *rid && s.deliveries > 0 {
                        s.deliveries -= 1;
                        s.until = now;
                        s.rid = 0;
                        if s.deliveries == 0 {
                            self.unread_zero.insert((topic.clone(), group.clone(), *id));
                        }
                        given += 1;
                    }
                }
                assert_eq!(*n, given, "unread count");
            }
            (QueueOp::GroupDestroy { topic, group }, QueueReply::Flag(true)) => {
                self.forget_group(&(topic.clone(), group.clone()));
            }
            (QueueOp::Del { topic }, QueueReply::Flag(true)) => {
                let keys: Vec<TG> = self
                    .shadow
                    .keys()
                    .chain(self.owed.keys())
                    .filter(|(t, _)| t == topic)
                    .cloned()
                    .collect();
                for key in keys {
                    self.forget_group(&key);
                }
                self.last_id.remove(topic);
                self.dedup_first.retain(|(t, _), _| t != topic);
                // The dead letters' evidence may be gone with it.
                self.dead_expected.remove(topic);
                if let Some(base) = base_of(topic) {
                    self.dead_expected.remove(&base);
                }
            }
            _ => {}
        }
    }

    fn forget_group(&mut self, key: &TG) {
        self.shadow.remove(key);
        self.owed.remove(key);
        self.acked.remove(key);
        self.dead_by.remove(key);
        self.last_first.remove(key);
        self.unread_zero
            .retain(|(t, g, _)| (t, g) != (&key.0, &key.1));
    }

    fn payload(&self, topic: &Name, id: MsgId) -> Option<Bytes> {
        self.payload_at.get(&(topic.clone(), id)).cloned()
    }

    fn shadow_mut(&mut self, topic: &Name, group: &Name, id: MsgId) -> Option<&mut Shadow> {
        self.shadow
            .get_mut(&(topic.clone(), group.clone()))?
            .get_mut(&id)
    }
}

impl Trace {
    /// Checks and records messages delivered to `group` by read `rid`.
    fn delivered(&mut self, topic: &Name, group: &Name, rid: RequestId, vis: u64, msgs: &[Msg]) {
        let now = self.now;
        assert!(
            msgs.windows(2).all(|w| w[0].id < w[1].id),
            "not oldest first: {msgs:?}"
        );
        let key = (topic.clone(), group.clone());
        for m in msgs {
            let old = self.shadow.get(&key).and_then(|s| s.get(&m.id)).copied();
            if let Some(s) = old {
                assert!(
                    s.until <= now,
                    "{topic:?}/{group:?} {} delivered at {now} while invisible until {}",
                    m.id,
                    s.until
                );
            }
            assert_eq!(
                m.deliveries,
                old.map_or(0, |s| s.deliveries) + 1,
                "deliveries of {}",
                m.id
            );
            assert!(
                m.deliveries <= self.config.max_deliveries,
                "delivered past max"
            );
            let zeroed = self
                .unread_zero
                .remove(&(topic.clone(), group.clone(), m.id));
            if m.deliveries == 1 && !zeroed && !self.delayed.contains(&(topic.clone(), m.id)) {
                let last = self.last_first.insert(key.clone(), m.id);
                assert!(
                    last.is_none_or(|l| l < m.id),
                    "first delivery {} after {last:?}",
                    m.id
                );
            }
            self.shadow.entry(key.clone()).or_default().insert(
                m.id,
                Shadow {
                    deliveries: m.deliveries,
                    until: now + vis,
                    rid,
                },
            );
            self.payload_at
                .insert((topic.clone(), m.id), m.payload.clone());
            self.saw(topic, m.id, &m.payload);
        }
    }

    /// Notes a message seen in `topic`: evidence of a dead letter when `topic` is a
    /// dead-letter topic, or when it is a redriven copy (same payload, new id).
    fn saw(&mut self, topic: &Name, id: MsgId, payload: &Bytes) {
        if let Some(base) = base_of(topic) {
            self.dead_seen
                .entry(base)
                .or_default()
                .insert(payload.clone());
        }
        if let Some((t, first)) = self.orig.get(payload) {
            if t == topic && *first != id {
                self.dead_seen
                    .entry(topic.clone())
                    .or_default()
                    .insert(payload.clone());
            }
        }
    }

    /// Deliveries that left `Q.PENDING` without an ack were dead-lettered: only after
    /// exactly `max_deliveries`. Pending counts agree with what was observed.
    fn sync(&mut self, op: &QueueOp) {
        let redrive_of = match op {
            QueueOp::Redrive { topic, .. } => Some(dlq_name(topic)),
            _ => None,
        };
        let keys: Vec<TG> = self.shadow.keys().cloned().collect();
        for key in keys {
            let pending: BTreeMap<MsgId, u32> = self
                .state
                .pending(&key.0, &key.1, None, self.now)
                .into_iter()
                .map(|p| (p.id, p.deliveries))
                .collect();
            let Some(shadow) = self.shadow.get_mut(&key) else {
                continue;
            };
            let mut gone = vec![];
            for (id, s) in shadow.iter() {
                match pending.get(id) {
                    Some(d) => assert_eq!(*d, s.deliveries, "pending deliveries of {id}"),
                    None if s.deliveries == 0 => {}
                    None => gone.push((*id, s.deliveries)),
                }
            }
            for (id, deliveries) in gone {
                shadow.remove(&id);
                if redrive_of.as_ref() == Some(&key.0) {
                    continue; // moved back to its topic by Q.REDRIVE
                }
                assert_eq!(
                    deliveries, self.config.max_deliveries,
                    "{key:?} {id} left pending unacknowledged after {deliveries} deliveries"
                );
                if let Some(p) = self.payload_at.get(&(key.0.clone(), id)).cloned() {
                    self.dead_by
                        .entry(key.clone())
                        .or_default()
                        .insert(p.clone());
                    self.dead_expected
                        .entry(key.0.clone())
                        .or_default()
                        .insert(p);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn guarantees_hold_on_random_histories(steps in steps(150)) {
        let mut t = Trace::new();
        for step in &steps {
            t.step(step);
        }
        t.drain();
        t.check_nothing_lost();
    }
}
