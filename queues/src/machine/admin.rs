//! Topic and group administration on [`QueueState`]: `Q.GROUP CREATE|DESTROY`,
//! `Q.DEL` and `Q.REDRIVE`.

use super::queue_state::Effects;
use super::{dlq_name, Name, QueueError, QueueReply, QueueState, StartFrom};

impl QueueState {
    pub(crate) fn group_create(
        &mut self,
        topic: &Name,
        group: &Name,
        from: StartFrom,
    ) -> QueueReply {
        let exists = self
            .data
            .topics
            .get(topic)
            .is_some_and(|t| t.groups.contains_key(group));
        if exists {
            return QueueReply::Error(QueueError::BusyGroup);
        }
        self.data
            .topics
            .entry(topic.clone())
            .or_default()
            .create_group(group.clone(), from);
        QueueReply::Ok
    }

    pub(crate) fn group_destroy(
        &mut self,
        topic: &Name,
        group: &Name,
        fx: &mut Effects,
    ) -> QueueReply {
        let Some(waiters) = self
            .data
            .topics
            .get_mut(topic)
            .and_then(|t| t.destroy_group(group))
        else {
            return QueueReply::Flag(false);
        };
        Self::gone(fx, topic, group, waiters);
        QueueReply::Flag(true)
    }

    pub(crate) fn del(&mut self, topic: &Name, fx: &mut Effects) -> QueueReply {
        let Some(mut t) = self.data.topics.remove(topic) else {
            return QueueReply::Flag(false);
        };
        for (name, g) in t.groups.iter_mut() {
            Self::gone(fx, topic, name, g.take_waiters());
        }
        QueueReply::Flag(true)
    }

    /// Moves the oldest `count` dead letters of `<topic>:dlq` back to `topic`, as many as
    /// fit under `max_len`.
    pub(crate) fn redrive(
        &mut self,
        now: u64,
        topic: &Name,
        count: Option<u64>,
        fx: &mut Effects,
    ) -> QueueReply {
        let dlq = dlq_name(topic);
        let max_len = self.data.config.max_len;
        let room = match self.data.topics.get(topic) {
            Some(t) if max_len > 0 => max_len.saturating_sub(t.messages.len() as u64),
            _ if max_len > 0 => max_len,
            _ => u64::MAX,
        };
        let Some(d) = self.data.topics.get_mut(&dlq) else {
            return QueueReply::Count(0);
        };
        let n = count
            .unwrap_or(u64::MAX)
            .min(room)
            .min(d.messages.len() as u64) as usize;
        if n == 0 {
            return QueueReply::Count(0);
        }
        let ids: Vec<_> = d.messages.keys().take(n).copied().collect();
        let payloads: Vec<_> = ids
            .into_iter()
            .filter_map(|id| d.remove(id))
            .map(|m| m.payload)
            .collect();
        fx.touched.insert(dlq);
        let t = self.data.topics.entry(topic.clone()).or_default();
        for payload in payloads {
            t.push(payload, 0, now);
            self.data.counters.pushes += 1;
        }
        QueueReply::Count(n as u64)
    }
}
