//! A deliberately naive reference model of the queue semantics (tests only): sorted
//! vectors and whole-topic scans, no cursor, no indexes, no counters kept on the side.
//! A group's view of a message is just "finished", "delivered (with its state)" or
//! "never delivered"; what a read gets is recomputed from scratch every time.
//!
//! It follows the machine's documented rules (contract section 5 plus the choices in
//! `queue_state`'s docs: lazy settling on every touch of a topic, tick = refresh all).
//! The operations themselves are in `reference_ops`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::{
    dlq_name, GroupInfo, Msg, MsgId, Name, PendingEntry, QueueApplied, QueueConfig, QueueOp,
    QueueReply, QueueRequest, QueueStats, TopicInfo, Wake, WakeOutcome,
};

#[derive(Clone, Debug)]
pub struct RMsg {
    pub id: MsgId,
    pub payload: Bytes,
    pub not_before: u64,
}

/// A delivered (or given back) message's state in a group.
#[derive(Clone, Debug)]
pub struct RDel {
    pub deliveries: u32,
    pub consumer: Option<Name>,
    pub visible_at: u64,
    pub last_ms: u64,
    pub rid: u64,
    /// Its visibility has been seen to run out by a refresh (available to reads).
    pub settled: bool,
}

#[derive(Clone, Debug)]
pub struct RWaiter {
    pub rid: u64,
    pub origin: u64,
    pub consumer: Name,
    pub count: u64,
    pub visibility: u64,
    pub deadline: Option<u64>,
}

#[derive(Clone, Debug, Default)]
pub struct RGroup {
    pub start: MsgId,
    pub finished: BTreeSet<MsgId>,
    pub state: BTreeMap<MsgId, RDel>,
    pub consumers: Vec<Name>,
    pub delivered: u64,
    pub acked: u64,
    pub waiters: Vec<RWaiter>,
}

impl RGroup {
    pub(super) fn unfinished(&self, id: MsgId) -> bool {
        id >= self.start && !self.finished.contains(&id)
    }
}

#[derive(Clone, Debug, Default)]
pub struct RTopic {
    pub msgs: Vec<RMsg>,
    pub last_id: MsgId,
    /// Every dedup id ever remembered: `(at, key, id)`.
    pub dedup: Vec<(u64, Name, MsgId)>,
    pub groups: BTreeMap<Name, RGroup>,
}

#[derive(Clone, Debug, Default)]
pub struct Model {
    pub config: QueueConfig,
    pub clock: u64,
    pub topics: BTreeMap<Name, RTopic>,
    pub pushes: u64,
    pub deliveries: u64,
    pub acks: u64,
    pub dead_letters: u64,
}

#[derive(Default)]
pub(super) struct Fx {
    pub(super) woken: Vec<Wake>,
    pub(super) touched: BTreeSet<Name>,
    pub(super) dead: u64,
}

impl RTopic {
    pub(super) fn push(&mut self, payload: Bytes, not_before: u64, now: u64) -> MsgId {
        let id = if now > self.last_id.ms {
            MsgId::new(now, 0)
        } else {
            MsgId::new(self.last_id.ms, self.last_id.seq + 1)
        };
        self.last_id = id;
        self.msgs.push(RMsg {
            id,
            payload,
            not_before,
        });
        id
    }

    pub(super) fn payload(&self, id: MsgId) -> Option<Bytes> {
        self.msgs
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.payload.clone())
    }

    /// Group `g` finished `id`: the message goes once no group needs it.
    pub(super) fn finish(&mut self, g: &Name, id: MsgId) {
        if let Some(group) = self.groups.get_mut(g) {
            group.state.remove(&id);
            group.finished.insert(id);
        }
        if self.groups.values().all(|g| !g.unfinished(id)) {
            self.msgs.retain(|m| m.id != id);
        }
    }

    /// What group `g` could read at `now`, oldest first.
    fn available(&self, g: &RGroup, now: u64) -> Vec<MsgId> {
        self.msgs
            .iter()
            .filter(|m| g.unfinished(m.id))
            .filter(|m| match g.state.get(&m.id) {
                Some(d) => d.settled,
                None => m.not_before <= now,
            })
            .map(|m| m.id)
            .collect()
    }

    pub(super) fn take(&mut self, g: &Name, now: u64, w: &RWaiter) -> Vec<Msg> {
        let Some(group) = self.groups.get(g) else {
            return vec![];
        };
        let ids: Vec<MsgId> = self
            .available(group, now)
            .into_iter()
            .take(w.count.max(1) as usize)
            .collect();
        let mut out = vec![];
        for id in ids {
            let payload = self.payload(id).unwrap();
            let group = self.groups.get_mut(g).unwrap();
            let d = group.state.entry(id).or_insert(RDel {
                deliveries: 0,
                consumer: None,
                visible_at: 0,
                last_ms: 0,
                rid: 0,
                settled: false,
            });
            d.deliveries += 1;
            d.consumer = Some(w.consumer.clone());
            d.visible_at = now + w.visibility.max(1);
            d.last_ms = now;
            d.rid = w.rid;
            d.settled = false;
            group.delivered += 1;
            out.push(Msg {
                id,
                payload,
                deliveries: d.deliveries,
            });
        }
        out
    }
}

impl Model {
    pub fn new(config: QueueConfig) -> Self {
        Model {
            config,
            ..Model::default()
        }
    }

    fn exhausted(&self, deliveries: u32) -> bool {
        self.config.max_deliveries > 0 && deliveries >= self.config.max_deliveries
    }

    pub(super) fn backoff(&self, deliveries: u32) -> u64 {
        let mut d = self.config.backoff_base_ms;
        for _ in 1..deliveries {
            d = d.saturating_mul(2).min(self.config.backoff_cap_ms);
        }
        d.min(self.config.backoff_cap_ms)
    }

    pub(super) fn dead_letter(
        &mut self,
        topic: &Name,
        payloads: Vec<Bytes>,
        now: u64,
        fx: &mut Fx,
    ) {
        if payloads.is_empty() {
            return;
        }
        let name = dlq_name(topic);
        let dlq = self.topics.entry(name.clone()).or_default();
        for p in payloads {
            dlq.push(p, 0, now);
            self.pushes += 1;
            self.dead_letters += 1;
            fx.dead += 1;
        }
        fx.touched.insert(name);
    }

    fn refresh(&mut self, name: &Name, now: u64, fx: &mut Fx) {
        let Some(t) = self.topics.get(name) else {
            return;
        };
        let mut dead = vec![];
        let groups: Vec<Name> = t.groups.keys().cloned().collect();
        let mut t = self.topics.remove(name).unwrap();
        for g in &groups {
            let group = t.groups.get_mut(g).unwrap();
            let mut due: Vec<(u64, MsgId)> = group
                .state
                .iter()
                .filter(|(_, d)| !d.settled && d.visible_at <= now)
                .map(|(id, d)| (d.visible_at, *id))
                .collect();
            due.sort();
            for (_, id) in due {
                let d = group.state.get_mut(&id).unwrap();
                if self.exhausted(d.deliveries) {
                    group.state.remove(&id);
                    group.finished.insert(id);
                    dead.push(id);
                } else {
                    d.settled = true;
                }
            }
        }
        // One dead letter per group that gave up on the message.
        let payloads: Vec<Bytes> = dead.iter().filter_map(|id| t.payload(*id)).collect();
        for id in dead {
            if t.groups.values().all(|g| !g.unfinished(id)) {
                t.msgs.retain(|m| m.id != id);
            }
        }
        for g in &groups {
            loop {
                let group = &t.groups[g];
                if group.waiters.is_empty() || t.available(group, now).is_empty() {
                    break;
                }
                let w = t.groups.get_mut(g).unwrap().waiters.remove(0);
                let outcome = if w.deadline.is_some_and(|d| d <= now) {
                    WakeOutcome::TimedOut
                } else {
                    let got = t.take(g, now, &w);
                    self.deliveries += got.len() as u64;
                    WakeOutcome::Messages(got)
                };
                fx.woken.push(Wake {
                    rid: w.rid,
                    origin: w.origin,
                    topic: name.clone(),
                    group: g.clone(),
                    outcome,
                });
            }
        }
        self.topics.insert(name.clone(), t);
        self.dead_letter(name, payloads, now, fx);
    }

    pub(super) fn gone(fx: &mut Fx, topic: &Name, group: &Name, waiters: Vec<RWaiter>) {
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

    pub fn apply(&mut self, req: &QueueRequest) -> QueueApplied {
        let now = self.clock.max(req.now_ms);
        self.clock = now;
        let mut fx = Fx::default();
        let topic = req.op.topic().cloned();
        if let Some(t) = &topic {
            if let QueueOp::Redrive { .. } = req.op {
                self.refresh(&dlq_name(t), now, &mut fx);
            }
            self.refresh(t, now, &mut fx);
        }
        let reply = self.run(&req.op, now, &mut fx);
        if let Some(t) = topic {
            fx.touched.insert(t);
        }
        while let Some(name) = fx.touched.pop_first() {
            self.refresh(&name, now, &mut fx);
        }
        let reply = match reply {
            QueueReply::Ticked { .. } => QueueReply::Ticked {
                dead_lettered: fx.dead,
                woken: fx.woken.len() as u64,
            },
            r => r,
        };
        QueueApplied {
            reply,
            woken: fx.woken,
        }
    }

    pub fn len(&self, topic: &[u8]) -> u64 {
        self.topics.get(topic).map_or(0, |t| t.msgs.len() as u64)
    }

    pub fn info(&self, topic: &[u8]) -> Option<TopicInfo> {
        let t = self.topics.get(topic)?;
        let groups = t
            .groups
            .iter()
            .map(|(name, g)| GroupInfo {
                name: name.clone(),
                consumers: g.consumers.len() as u64,
                pending: g.state.values().filter(|d| d.deliveries > 0).count() as u64,
                lag: t
                    .msgs
                    .iter()
                    .filter(|m| g.unfinished(m.id))
                    .filter(|m| g.state.get(&m.id).is_none_or(|d| d.deliveries == 0))
                    .count() as u64,
                delivered: g.delivered,
                acked: g.acked,
            })
            .collect();
        Some(TopicInfo {
            length: t.msgs.len() as u64,
            first_id: t.msgs.first().map(|m| m.id),
            last_id: (t.last_id != MsgId::MIN).then_some(t.last_id),
            dlq_length: self.len(&dlq_name(topic)),
            groups,
        })
    }

    pub fn pending(&self, topic: &[u8], group: &[u8], now: u64) -> Vec<PendingEntry> {
        let Some(g) = self.topics.get(topic).and_then(|t| t.groups.get(group)) else {
            return vec![];
        };
        g.state
            .iter()
            .filter(|(_, d)| d.deliveries > 0)
            .map(|(id, d)| PendingEntry {
                id: *id,
                consumer: d.consumer.clone().unwrap_or_default(),
                deliveries: d.deliveries,
                idle_ms: now.max(self.clock) - d.last_ms,
            })
            .collect()
    }

    pub fn stats(&self) -> QueueStats {
        let mut s = QueueStats {
            topics: self.topics.len() as u64,
            pushes: self.pushes,
            deliveries: self.deliveries,
            acks: self.acks,
            dead_letters: self.dead_letters,
            ..QueueStats::default()
        };
        for t in self.topics.values() {
            s.messages += t.msgs.len() as u64;
            s.bytes += t.msgs.iter().map(|m| m.payload.len() as u64).sum::<u64>();
            for g in t.groups.values() {
                s.pending += g.state.values().filter(|d| d.deliveries > 0).count() as u64;
                s.waiting_reads += g.waiters.len() as u64;
            }
        }
        s
    }

    /// The latest time by which a tick must come so that some queued read is answered
    /// by an expiry or a delay ending (`None`: no queued read waits on one).
    pub fn wake_deadline(&self) -> Option<u64> {
        let mut best: Option<u64> = None;
        for t in self.topics.values() {
            for g in t.groups.values().filter(|g| !g.waiters.is_empty()) {
                let times = g
                    .state
                    .values()
                    .filter(|d| !d.settled)
                    .map(|d| d.visible_at)
                    .chain(
                        t.msgs
                            .iter()
                            .filter(|m| g.unfinished(m.id) && !g.state.contains_key(&m.id))
                            .filter(|m| m.not_before > self.clock)
                            .map(|m| m.not_before),
                    );
                for at in times {
                    best = Some(best.map_or(at, |b| b.min(at)));
                }
            }
        }
        best
    }
}
