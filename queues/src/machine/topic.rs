//! [`Topic`]: one topic's retained messages, its groups and its dedup ids.
//!
//! Retention (contract section 5): each message counts the groups that have not
//! finished it (acknowledged or dead-lettered); it is removed when an ack or a dead
//! letter brings that count to zero. A topic without groups keeps everything, and so
//! does a message whose last unfinished group was destroyed (a group created later may
//! still read it).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::consumer_group::Group;
use super::dedup::Dedup;
use super::group_view::Waiter;
use super::{sorted_map, MsgId, Name, StartFrom, Wake, WakeOutcome};

/// A retained message.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) payload: Bytes,
    /// Invisible to every group before this time (0: not delayed).
    pub(crate) not_before: u64,
    /// Groups that have not finished it.
    pub(crate) remaining: u32,
}

/// One topic.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Topic {
    #[serde(with = "sorted_map")]
    pub(crate) messages: BTreeMap<MsgId, Message>,
    /// Last id assigned (`0-0`: none yet).
    pub(crate) last_id: MsgId,
    /// Payload bytes retained.
    pub(crate) bytes: u64,
    pub(crate) dedup: Dedup,
    #[serde(with = "sorted_map")]
    pub(crate) groups: BTreeMap<Name, Group>,
}

impl Topic {
    /// Appends a message (visible from `not_before`) with the next id at `now`.
    pub(crate) fn push(&mut self, payload: Bytes, not_before: u64, now: u64) -> MsgId {
        let id = self.last_id.next_at(now);
        self.last_id = id;
        self.bytes += payload.len() as u64;
        for g in self.groups.values_mut() {
            g.on_push();
        }
        self.messages.insert(
            id,
            Message {
                payload,
                not_before,
                remaining: self.groups.len() as u32,
            },
        );
        id
    }

    /// A group has finished `id` (acknowledged or dead-lettered it): removes the message
    /// once no group needs it. Returns its payload.
    pub(crate) fn finish(&mut self, id: MsgId) -> Option<Bytes> {
        let m = self.messages.get_mut(&id)?;
        m.remaining = m.remaining.saturating_sub(1);
        let payload = m.payload.clone();
        if m.remaining == 0 {
            self.remove(id);
        }
        Some(payload)
    }

    /// Removes a message whatever the groups' state (`Q.REDRIVE` emptying a
    /// dead-letter topic).
    pub(crate) fn remove(&mut self, id: MsgId) -> Option<Message> {
        let m = self.messages.remove(&id)?;
        self.bytes = self.bytes.saturating_sub(m.payload.len() as u64);
        for g in self.groups.values_mut() {
            g.forget(id);
        }
        Some(m)
    }

    /// Creates a group reading from `from`; every retained message from there counts it.
    /// (An existing group is returned unchanged.)
    pub(crate) fn create_group(&mut self, name: Name, from: StartFrom) -> &mut Group {
        if self.groups.contains_key(&name) {
            return self.groups.entry(name).or_default();
        }
        let cursor = match from {
            StartFrom::Oldest => MsgId::MIN,
            StartFrom::Latest => self.last_id.successor(),
            StartFrom::After(id) => id.successor(),
        };
        let mut ahead = 0;
        for m in self.messages.range_mut(cursor..).map(|(_, m)| m) {
            m.remaining += 1;
            ahead += 1;
        }
        self.groups.entry(name).or_insert(Group::new(cursor, ahead))
    }

    /// The group, created from the oldest retained message if missing (`Q.READ`).
    pub(crate) fn group_or_create(&mut self, name: &Name) -> &mut Group {
        self.create_group(name.clone(), StartFrom::Oldest)
    }

    /// Destroys a group: the messages it had not finished stop counting it. Returns its
    /// queued reads, or `None` when it did not exist.
    pub(crate) fn destroy_group(&mut self, name: &[u8]) -> Option<Vec<Waiter>> {
        let mut g = self.groups.remove(name)?;
        let cursor = g.cursor();
        for m in self.messages.range_mut(cursor..).map(|(_, m)| m) {
            m.remaining = m.remaining.saturating_sub(1);
        }
        for id in g.entry_ids().collect::<Vec<_>>() {
            if let Some(m) = self.messages.get_mut(&id) {
                m.remaining = m.remaining.saturating_sub(1);
            }
        }
        Some(g.take_waiters().into())
    }

    /// Answers queued reads of every group while messages are available at `now`
    /// (oldest queued read first; one whose deadline passed is dropped as timed out).
    pub(crate) fn serve(&mut self, topic: &Name, now: u64, woken: &mut Vec<Wake>) {
        let messages = &self.messages;
        for (name, g) in self.groups.iter_mut() {
            while g.front_waiter().is_some() && g.has_available(messages, now) {
                let Some(w) = g.pop_waiter() else { break };
                let outcome = if w.deadline.is_some_and(|d| d <= now) {
                    WakeOutcome::TimedOut
                } else {
                    let got = g.take(messages, now, w.count, w.consumer, w.visibility_ms, w.rid);
                    WakeOutcome::Messages(got)
                };
                woken.push(Wake {
                    rid: w.rid,
                    origin: w.origin,
                    topic: topic.clone(),
                    group: name.clone(),
                    outcome,
                });
            }
        }
    }

    /// Earliest time an entry of some group becomes visible.
    pub(crate) fn due(&self) -> Option<u64> {
        self.groups.values().filter_map(Group::due).min()
    }

    /// Checks groups and retention counts (tests).
    #[cfg(test)]
    pub(crate) fn assert_consistent(&self) {
        let bytes: u64 = self.messages.values().map(|m| m.payload.len() as u64).sum();
        assert_eq!(self.bytes, bytes, "bytes");
        for (id, m) in &self.messages {
            let needed = self.groups.values().filter(|g| g.unfinished(*id)).count() as u32;
            assert_eq!(m.remaining, needed, "remaining of {id}");
            assert!(*id <= self.last_id);
        }
        for g in self.groups.values() {
            g.assert_consistent(&self.messages);
        }
    }
}
