//! The reference model's operations (tests only): one arm per [`QueueOp`], each a
//! direct transcription of the rule it implements, over the plain vectors of
//! `reference`.

use super::reference::{Fx, Model, RGroup, RMsg, RWaiter};
use super::{dlq_name, MsgId, QueueError, QueueOp, QueueReply, StartFrom};

impl Model {
    pub(super) fn run(&mut self, op: &QueueOp, now: u64, fx: &mut Fx) -> QueueReply {
        let cfg = self.config.clone();
        match op {
            QueueOp::Push {
                topic,
                payload,
                dedup,
                delay_ms,
            } => {
                if let Some(t) = self.topics.get(topic) {
                    if let Some(key) = dedup.as_ref().filter(|_| cfg.dedup_window_ms > 0) {
                        let hit = t
                            .dedup
                            .iter()
                            .rev()
                            .find(|(at, k, _)| k == key && at + cfg.dedup_window_ms > now);
                        if let Some((_, _, id)) = hit {
                            return QueueReply::Pushed {
                                id: *id,
                                duplicate: true,
                            };
                        }
                    }
                    if cfg.max_len > 0 && t.msgs.len() as u64 >= cfg.max_len {
                        return QueueReply::Error(QueueError::TopicFull {
                            max_len: cfg.max_len,
                        });
                    }
                }
                let t = self.topics.entry(topic.clone()).or_default();
                let nb = if *delay_ms > 0 { now + delay_ms } else { 0 };
                let id = t.push(payload.clone(), nb, now);
                if let Some(key) = dedup.as_ref().filter(|_| cfg.dedup_window_ms > 0) {
                    t.dedup.push((now, key.clone(), id));
                }
                self.pushes += 1;
                QueueReply::Pushed {
                    id,
                    duplicate: false,
                }
            }
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
                let t = self.topics.entry(topic.clone()).or_default();
                if !t.groups.contains_key(group) {
                    t.groups.insert(group.clone(), RGroup::default());
                }
                let g = t.groups.get_mut(group).unwrap();
                if !g.consumers.contains(consumer) {
                    g.consumers.push(consumer.clone());
                }
                let w = RWaiter {
                    rid: *rid,
                    origin: *origin,
                    consumer: consumer.clone(),
                    count: *count,
                    visibility: visibility_ms.unwrap_or(cfg.visibility_ms),
                    deadline: block_ms.filter(|b| *b > 0).map(|b| now + b),
                };
                let got = t.take(group, now, &w);
                self.deliveries += got.len() as u64;
                if got.is_empty() && block_ms.is_some() {
                    t.groups.get_mut(group).unwrap().waiters.push(w);
                    QueueReply::Waiting
                } else {
                    QueueReply::Messages(got)
                }
            }
            QueueOp::Ack { topic, group, ids } => {
                let mut n = 0;
                if let Some(t) = self.topics.get_mut(topic) {
                    for id in ids {
                        let pending = t
                            .groups
                            .get(group)
                            .and_then(|g| g.state.get(id))
                            .is_some_and(|d| d.deliveries > 0);
                        if pending {
                            t.finish(group, *id);
                            t.groups.get_mut(group).unwrap().acked += 1;
                            n += 1;
                        }
                    }
                }
                self.acks += n;
                QueueReply::Count(n)
            }
            QueueOp::Nack {
                topic,
                group,
                id,
                delay_ms,
            } => {
                let Some(d) = self
                    .topics
                    .get(topic)
                    .and_then(|t| t.groups.get(group))
                    .and_then(|g| g.state.get(id))
                    .filter(|d| d.deliveries > 0)
                    .cloned()
                else {
                    return QueueReply::Flag(false);
                };
                let t = self.topics.get_mut(topic).unwrap();
                if self.config.max_deliveries > 0 && d.deliveries >= self.config.max_deliveries {
                    let payload = t.payload(*id).unwrap();
                    t.finish(group, *id);
                    self.dead_letter(topic, vec![payload], now, fx);
                } else {
                    let delay = delay_ms.unwrap_or_else(|| self.backoff(d.deliveries));
                    let t = self.topics.get_mut(topic).unwrap();
                    let d = t.groups.get_mut(group).unwrap().state.get_mut(id).unwrap();
                    d.visible_at = now + delay;
                    d.rid = 0;
                    d.settled = false;
                }
                QueueReply::Flag(true)
            }
            QueueOp::Extend {
                topic,
                group,
                id,
                ms,
            } => {
                let d = self
                    .topics
                    .get_mut(topic)
                    .and_then(|t| t.groups.get_mut(group))
                    .and_then(|g| g.state.get_mut(id))
                    .filter(|d| d.deliveries > 0);
                let Some(d) = d else {
                    return QueueReply::Flag(false);
                };
                d.visible_at = d.visible_at.max(now) + ms;
                d.rid = 0;
                d.settled = false;
                QueueReply::Flag(true)
            }
            QueueOp::Unread {
                topic,
                group,
                rid,
                ids,
            } => {
                let mut n = 0;
                if let Some(g) = self
                    .topics
                    .get_mut(topic)
                    .and_then(|t| t.groups.get_mut(group))
                {
                    for id in ids {
                        if let Some(d) = g.state.get_mut(id) {
                            if *rid != 0 && d.deliveries > 0 && d.rid == *rid {
                                d.deliveries -= 1;
                                if d.deliveries == 0 {
                                    d.consumer = None;
                                }
                                d.rid = 0;
                                d.visible_at = now;
                                d.settled = false;
                                n += 1;
                            }
                        }
                    }
                }
                QueueReply::Count(n)
            }
            QueueOp::Cancel { topic, group, rid } => {
                let g = self
                    .topics
                    .get_mut(topic)
                    .and_then(|t| t.groups.get_mut(group));
                let Some(g) = g else {
                    return QueueReply::Flag(false);
                };
                let before = g.waiters.len();
                g.waiters.retain(|w| w.rid != *rid);
                QueueReply::Flag(g.waiters.len() < before)
            }
            QueueOp::CancelOrigin { origin } => {
                let mut n = 0;
                for t in self.topics.values_mut() {
                    for g in t.groups.values_mut() {
                        let before = g.waiters.len();
                        g.waiters.retain(|w| w.origin != *origin);
                        n += (before - g.waiters.len()) as u64;
                    }
                }
                QueueReply::Count(n)
            }
            QueueOp::Redrive { topic, count } => {
                let dlq = dlq_name(topic);
                let len = self.topics.get(topic).map_or(0, |t| t.msgs.len() as u64);
                let room = if cfg.max_len > 0 {
                    cfg.max_len.saturating_sub(len)
                } else {
                    u64::MAX
                };
                let Some(d) = self.topics.get_mut(&dlq) else {
                    return QueueReply::Count(0);
                };
                let n = count.unwrap_or(u64::MAX).min(room).min(d.msgs.len() as u64) as usize;
                if n == 0 {
                    return QueueReply::Count(0);
                }
                let moved: Vec<RMsg> = d.msgs.drain(..n).collect();
                for m in &moved {
                    for g in d.groups.values_mut() {
                        g.state.remove(&m.id);
                    }
                }
                fx.touched.insert(dlq);
                let t = self.topics.entry(topic.clone()).or_default();
                for m in moved {
                    t.push(m.payload, 0, now);
                    self.pushes += 1;
                }
                QueueReply::Count(n as u64)
            }
            QueueOp::GroupCreate { topic, group, from } => {
                let t = self.topics.entry(topic.clone()).or_default();
                if t.groups.contains_key(group) {
                    return QueueReply::Error(QueueError::BusyGroup);
                }
                let start = match from {
                    StartFrom::Oldest => MsgId::MIN,
                    StartFrom::Latest => MsgId::new(t.last_id.ms, t.last_id.seq + 1),
                    StartFrom::After(id) => MsgId::new(id.ms, id.seq + 1),
                };
                t.groups.insert(
                    group.clone(),
                    RGroup {
                        start,
                        ..RGroup::default()
                    },
                );
                QueueReply::Ok
            }
            QueueOp::GroupDestroy { topic, group } => {
                match self
                    .topics
                    .get_mut(topic)
                    .and_then(|t| t.groups.remove(group))
                {
                    Some(g) => {
                        Self::gone(fx, topic, group, g.waiters);
                        QueueReply::Flag(true)
                    }
                    None => QueueReply::Flag(false),
                }
            }
            QueueOp::Del { topic } => match self.topics.remove(topic) {
                Some(t) => {
                    for (name, g) in t.groups {
                        Self::gone(fx, topic, &name, g.waiters);
                    }
                    QueueReply::Flag(true)
                }
                None => QueueReply::Flag(false),
            },
            QueueOp::Tick => {
                fx.touched.extend(self.topics.keys().cloned());
                QueueReply::Ticked {
                    dead_lettered: 0,
                    woken: 0,
                }
            }
            QueueOp::Configure(c) => {
                self.config = c.clone();
                QueueReply::Ok
            }
        }
    }
}
