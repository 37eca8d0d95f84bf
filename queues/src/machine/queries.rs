//! Read-only questions to [`QueueState`] (`Q.LEN`, `Q.INFO`, `Q.PENDING`,
//! `Q.TOPICS`), answered on the leader after a linearizable-read check rather than
//! through the log. They see the state as last applied: a timeout that ran out since
//! shows in them once the next entry (or tick) touching the topic has been applied.

use super::{
    dlq_name, GroupInfo, Name, PendingEntry, QueueError, QueueQuery, QueueReply, QueueState,
    TopicInfo,
};
use conclave_protocol::glob::glob_match;

impl QueueState {
    /// Answers a query; `now_ms` is the asking leader's clock (for `idle_ms`).
    pub fn query(&self, query: &QueueQuery, now_ms: u64) -> QueueReply {
        match query {
            QueueQuery::Len { topic } => QueueReply::Count(self.len(topic)),
            QueueQuery::Info { topic } => match self.info(topic) {
                Some(info) => QueueReply::Info(info),
                None => QueueReply::Error(QueueError::NoSuchTopic),
            },
            QueueQuery::Pending {
                topic,
                group,
                count,
            } => QueueReply::Pending(self.pending(topic, group, *count, now_ms)),
            QueueQuery::Topics { pattern } => QueueReply::Topics(self.topics(pattern.as_deref())),
        }
    }

    /// `Q.LEN`: messages retained in `topic` (0 when missing).
    pub fn len(&self, topic: &[u8]) -> u64 {
        self.data
            .topics
            .get(topic)
            .map_or(0, |t| t.messages.len() as u64)
    }

    /// Whether the shard holds no topic.
    pub fn is_empty(&self) -> bool {
        self.data.topics.is_empty()
    }

    /// `Q.INFO`'s replicated fields; `None` for a missing topic.
    pub fn info(&self, topic: &[u8]) -> Option<TopicInfo> {
        let t = self.data.topics.get(topic)?;
        let groups = t
            .groups
            .iter()
            .map(|(name, g)| {
                let (consumers, pending, lag, delivered, acked) = g.counts();
                GroupInfo {
                    name: name.clone(),
                    consumers,
                    pending,
                    lag,
                    delivered,
                    acked,
                }
            })
            .collect();
        Some(TopicInfo {
            length: t.messages.len() as u64,
            first_id: t.messages.keys().next().copied(),
            last_id: (t.last_id != super::MsgId::MIN).then_some(t.last_id),
            dlq_length: self.len(&dlq_name(topic)),
            groups,
        })
    }

    /// `Q.PENDING`: at most `count` (`None`: all) pending messages of the group, lowest
    /// id first, `idle_ms` measured at `max(now_ms, clock)`.
    pub fn pending(
        &self,
        topic: &[u8],
        group: &[u8],
        count: Option<u64>,
        now_ms: u64,
    ) -> Vec<PendingEntry> {
        let now = now_ms.max(self.data.clock);
        let Some(g) = self
            .data
            .topics
            .get(topic)
            .and_then(|t| t.groups.get(group))
        else {
            return Vec::new();
        };
        let limit = usize::try_from(count.unwrap_or(u64::MAX)).unwrap_or(usize::MAX);
        g.pending_entries()
            .take(limit)
            .map(|(id, e)| PendingEntry {
                id,
                consumer: g.consumer_name(e.consumer),
                deliveries: e.deliveries,
                idle_ms: now.saturating_sub(e.last_ms),
            })
            .collect()
    }

    /// `Q.TOPICS`: topic names matching the glob (`None`: all), in byte order.
    pub fn topics(&self, pattern: Option<&[u8]>) -> Vec<Name> {
        self.data
            .topics
            .keys()
            .filter(|name| pattern.is_none_or(|p| glob_match(p, name)))
            .cloned()
            .collect()
    }
}
