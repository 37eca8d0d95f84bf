//! The message path of [`QueueState`]: `Q.PUSH`, `Q.READ` (and its queued form),
//! `Q.ACK`, `Q.NACK`, `Q.EXTEND`, and the withdrawals a node proposes for its clients
//! (`Cancel`, `Unread`, `CancelOrigin`).
//!
//! Each function runs between the two refreshes of [`QueueState::apply`]; a refused
//! request returns before changing anything.

use bytes::Bytes;

use super::consumer_group::Nacked;
use super::group_view::Waiter;
use super::queue_state::Effects;
use super::topic::Topic;
use super::{MsgId, Name, QueueError, QueueReply, QueueState, RequestId};

/// How a `Q.READ` reads (its options, resolved).
pub(crate) struct ReadHow {
    pub(crate) count: u64,
    pub(crate) visibility_ms: u64,
    pub(crate) block_ms: Option<u64>,
    pub(crate) rid: RequestId,
    pub(crate) origin: u64,
}

impl QueueState {
    pub(crate) fn push(
        &mut self,
        now: u64,
        topic: &Name,
        payload: &Bytes,
        dedup: Option<&Name>,
        delay_ms: u64,
    ) -> QueueReply {
        let config = &self.data.config;
        if let Some(t) = self.data.topics.get_mut(topic) {
            t.dedup.expire(now, config.dedup_window_ms);
            if let Some(id) = dedup
                .filter(|_| config.dedup_window_ms > 0)
                .and_then(|key| t.dedup.get(key))
            {
                return QueueReply::Pushed {
                    id,
                    duplicate: true,
                };
            }
            if config.max_len > 0 && t.messages.len() as u64 >= config.max_len {
                return QueueReply::Error(QueueError::TopicFull {
                    max_len: config.max_len,
                });
            }
        }
        let remember = config.dedup_window_ms > 0;
        let t = self.data.topics.entry(topic.clone()).or_default();
        let not_before = if delay_ms > 0 {
            now.saturating_add(delay_ms)
        } else {
            0
        };
        let id = t.push(payload.clone(), not_before, now);
        if let Some(key) = dedup.filter(|_| remember) {
            t.dedup.remember(key.clone(), id, now);
        }
        self.data.counters.pushes += 1;
        QueueReply::Pushed {
            id,
            duplicate: false,
        }
    }

    pub(crate) fn read(
        &mut self,
        now: u64,
        topic: &Name,
        group: &Name,
        consumer: &Name,
        how: ReadHow,
    ) -> QueueReply {
        let t = self.data.topics.entry(topic.clone()).or_default();
        let consumer = t.group_or_create(group).consumer(consumer);
        let Topic {
            messages, groups, ..
        } = t;
        let Some(g) = groups.get_mut(group) else {
            return QueueReply::Messages(Vec::new());
        };
        let got = g.take(
            messages,
            now,
            how.count,
            consumer,
            how.visibility_ms,
            how.rid,
        );
        self.data.counters.deliveries += got.len() as u64;
        match how.block_ms {
            Some(block) if got.is_empty() => {
                g.push_waiter(Waiter {
                    rid: how.rid,
                    origin: how.origin,
                    consumer,
                    count: how.count,
                    visibility_ms: how.visibility_ms,
                    deadline: (block > 0).then(|| now.saturating_add(block)),
                });
                QueueReply::Waiting
            }
            _ => QueueReply::Messages(got),
        }
    }

    pub(crate) fn ack(&mut self, topic: &Name, group: &Name, ids: &[MsgId]) -> QueueReply {
        let Some(t) = self.data.topics.get_mut(topic) else {
            return QueueReply::Count(0);
        };
        let Some(g) = t.groups.get_mut(group) else {
            return QueueReply::Count(0);
        };
        let acked: Vec<MsgId> = ids.iter().copied().filter(|id| g.ack(*id)).collect();
        for id in &acked {
            t.finish(*id);
        }
        self.data.counters.acks += acked.len() as u64;
        QueueReply::Count(acked.len() as u64)
    }

    pub(crate) fn nack(
        &mut self,
        now: u64,
        topic: &Name,
        group: &Name,
        id: MsgId,
        delay_ms: Option<u64>,
        fx: &mut Effects,
    ) -> QueueReply {
        let config = &self.data.config;
        let Some(t) = self.data.topics.get_mut(topic) else {
            return QueueReply::Flag(false);
        };
        let Some(g) = t.groups.get_mut(group) else {
            return QueueReply::Flag(false);
        };
        match g.nack(id, now, delay_ms, config) {
            Nacked::NotPending => QueueReply::Flag(false),
            Nacked::Later => QueueReply::Flag(true),
            Nacked::Exhausted => {
                let payloads = t.finish(id).into_iter().collect();
                self.dead_letter(topic, payloads, now, fx);
                QueueReply::Flag(true)
            }
        }
    }

    pub(crate) fn extend(
        &mut self,
        now: u64,
        topic: &Name,
        group: &Name,
        id: MsgId,
        ms: u64,
    ) -> QueueReply {
        let extended = self
            .data
            .topics
            .get_mut(topic)
            .and_then(|t| t.groups.get_mut(group))
            .is_some_and(|g| g.extend(id, now, ms));
        QueueReply::Flag(extended)
    }

    pub(crate) fn unread(
        &mut self,
        now: u64,
        topic: &Name,
        group: &Name,
        rid: RequestId,
        ids: &[MsgId],
    ) -> QueueReply {
        let Some(g) = self
            .data
            .topics
            .get_mut(topic)
            .and_then(|t| t.groups.get_mut(group))
        else {
            return QueueReply::Count(0);
        };
        let n = ids.iter().filter(|id| g.unread(**id, rid, now)).count();
        QueueReply::Count(n as u64)
    }

    pub(crate) fn cancel(&mut self, topic: &Name, group: &Name, rid: RequestId) -> QueueReply {
        let removed = self
            .data
            .topics
            .get_mut(topic)
            .and_then(|t| t.groups.get_mut(group))
            .map_or(0, |g| g.drop_waiters(|w| w.rid == rid));
        QueueReply::Flag(removed > 0)
    }

    pub(crate) fn cancel_origin(&mut self, origin: u64) -> QueueReply {
        let mut dropped = 0;
        for t in self.data.topics.values_mut() {
            for g in t.groups.values_mut() {
                dropped += g.drop_waiters(|w| w.origin == origin);
            }
        }
        QueueReply::Count(dropped)
    }
}
