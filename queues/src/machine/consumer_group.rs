//! [`Group`]: one consumer group's delivery state over its topic's messages.
//!
//! A group never scans the topic:
//!
//! - a **cursor**: every message at or after it was never looked at by the group, so
//!   first deliveries walk the topic in id order (push order) from there;
//! - **entries**, one per message behind the cursor that the group has not finished
//!   (acknowledged or dead-lettered): delivery count, consumer, and when it becomes
//!   visible again. A delayed message the cursor passed before its time gets an entry
//!   with no delivery yet;
//! - two indexes over the entries: `waiting`, ordered by `(visible_at, id)`, and
//!   `ready`, the ids already visible again. [`Group::settle`] moves the due head of
//!   `waiting` to `ready` (or out, to the dead-letter topic, once exhausted).
//!
//! A read takes the smallest id among `ready` and the cursor's next visible message,
//! repeatedly: the group's oldest available messages, in O(log n) each; an ack is an
//! O(log n) removal. Only the cursor, the entries, the consumers, the counters and the
//! queued reads are serialized; the indexes are rebuilt on load. The queued reads and
//! what queries see of a group are in `group_view`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use foldhash::fast::RandomState;
use hashbrown::HashMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::group_view::Waiter;
use super::topic::Message;
use super::{sorted_map, Msg, MsgId, Name, QueueConfig, RequestId};

/// The group's state of one message behind its cursor, not yet finished.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Deliveries so far (0: a delayed message not delivered yet, or one given back
    /// by `Unread` after its only delivery).
    pub(crate) deliveries: u32,
    /// Index into the group's consumers of the latest delivery's consumer.
    pub(crate) consumer: Option<u32>,
    /// When it is (or was) visible again, machine clock ms.
    pub(crate) visible_at: u64,
    /// When it was last delivered (for `idle_ms`).
    pub(crate) last_ms: u64,
    /// The read that delivered it last, until a `NACK`/`EXTEND` (for `Unread`).
    pub(crate) rid: RequestId,
    /// In `ready` (visible, awaiting a read) rather than `waiting`.
    pub(crate) ready: bool,
}

impl Entry {
    /// Delivered and not acknowledged (listed by `Q.PENDING`).
    pub(crate) fn is_pending(&self) -> bool {
        self.deliveries > 0
    }
}

/// The replicated part of a group.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct GroupData {
    /// First id the group has not looked at.
    pub(super) cursor: MsgId,
    /// Retained messages at or after the cursor.
    pub(super) ahead: u64,
    #[serde(with = "sorted_map")]
    pub(super) entries: BTreeMap<MsgId, Entry>,
    /// Consumer names, in order of first read.
    pub(super) consumers: Vec<Name>,
    /// Entries with at least one delivery.
    pub(super) pending: u64,
    /// Deliveries made (redeliveries included).
    pub(super) delivered: u64,
    /// Messages acknowledged.
    pub(super) acked: u64,
    pub(super) waiters: VecDeque<Waiter>,
}

/// Lookup structures derived from [`GroupData`].
#[derive(Clone, Debug, Default)]
pub(super) struct GroupIndex {
    pub(super) waiting: BTreeSet<(u64, MsgId)>,
    pub(super) ready: BTreeSet<MsgId>,
    pub(super) consumers: HashMap<Name, u32, RandomState>,
}

/// One consumer group (see the module docs).
#[derive(Clone, Debug, Default)]
pub(crate) struct Group {
    pub(super) data: GroupData,
    pub(super) idx: GroupIndex,
}

impl PartialEq for Group {
    fn eq(&self, other: &Self) -> bool {
        self.data == other.data
    }
}

impl Eq for Group {}

impl Serialize for Group {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.data.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Group {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let data = GroupData::deserialize(deserializer)?;
        let mut idx = GroupIndex::default();
        for (id, e) in &data.entries {
            if e.ready {
                idx.ready.insert(*id);
            } else {
                idx.waiting.insert((e.visible_at, *id));
            }
        }
        for (i, name) in data.consumers.iter().enumerate() {
            idx.consumers.insert(name.clone(), i as u32);
        }
        Ok(Group { data, idx })
    }
}

/// What `NACK` did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Nacked {
    /// Not pending: nothing changed.
    NotPending,
    /// Visible again at the given time.
    Later,
    /// Exhausted: the entry is gone, the caller dead-letters the message.
    Exhausted,
}

impl Group {
    /// A group whose cursor is at `cursor`, with `ahead` retained messages from there.
    pub(crate) fn new(cursor: MsgId, ahead: u64) -> Self {
        Group {
            data: GroupData {
                cursor,
                ahead,
                ..GroupData::default()
            },
            idx: GroupIndex::default(),
        }
    }

    /// First id the group has not looked at.
    pub(crate) fn cursor(&self) -> MsgId {
        self.data.cursor
    }

    /// Ids of the entries (messages behind the cursor the group has not finished).
    pub(crate) fn entry_ids(&self) -> impl Iterator<Item = MsgId> + '_ {
        self.data.entries.keys().copied()
    }

    /// A message was pushed (it is after the cursor).
    pub(crate) fn on_push(&mut self) {
        self.data.ahead += 1;
    }

    /// The message `id` left the topic without the group finishing it (a redrive
    /// emptied the dead-letter topic it belongs to).
    pub(crate) fn forget(&mut self, id: MsgId) {
        if id >= self.data.cursor {
            self.data.ahead = self.data.ahead.saturating_sub(1);
        } else {
            self.remove_entry(id);
        }
    }

    /// The consumer's index, registering it on first use.
    pub(crate) fn consumer(&mut self, name: &Name) -> u32 {
        if let Some(&i) = self.idx.consumers.get(name) {
            return i;
        }
        let i = self.data.consumers.len() as u32;
        self.data.consumers.push(name.clone());
        self.idx.consumers.insert(name.clone(), i);
        i
    }

    /// Earliest time a waiting entry becomes visible (what a `Tick` must wait for).
    pub(crate) fn due(&self) -> Option<u64> {
        self.idx.waiting.first().map(|&(t, _)| t)
    }

    /// Moves entries visible at `now` from `waiting` to `ready`; exhausted ones are
    /// removed instead and returned (in `(visible_at, id)` order) for the caller to
    /// dead-letter.
    pub(crate) fn settle(&mut self, now: u64, config: &QueueConfig) -> Vec<MsgId> {
        let mut dead = Vec::new();
        while let Some(&(t, id)) = self.idx.waiting.first() {
            if t > now {
                break;
            }
            self.idx.waiting.pop_first();
            let Some(e) = self.data.entries.get_mut(&id) else {
                continue;
            };
            if config.exhausted(e.deliveries) {
                e.ready = true; // so remove_entry finds it in neither index
                self.remove_entry(id);
                dead.push(id);
            } else {
                e.ready = true;
                self.idx.ready.insert(id);
            }
        }
        dead
    }

    /// Whether a read at `now` would get something. Passes delayed messages at the
    /// cursor (see [`Group::take`]).
    pub(crate) fn has_available(&mut self, messages: &BTreeMap<MsgId, Message>, now: u64) -> bool {
        !self.idx.ready.is_empty() || self.next_fresh(messages, now).is_some()
    }

    /// The first message at or after the cursor visible at `now`. Delayed messages in
    /// front of it are passed: each gets an entry, visible at its delay's end.
    fn next_fresh(&mut self, messages: &BTreeMap<MsgId, Message>, now: u64) -> Option<MsgId> {
        loop {
            let (&id, m) = messages.range(self.data.cursor..).next()?;
            if m.not_before <= now {
                return Some(id);
            }
            self.pass(id);
            self.insert_entry(
                id,
                Entry {
                    deliveries: 0,
                    consumer: None,
                    visible_at: m.not_before,
                    last_ms: 0,
                    rid: 0,
                    ready: false,
                },
            );
        }
    }

    fn pass(&mut self, id: MsgId) {
        self.data.cursor = id.successor();
        self.data.ahead = self.data.ahead.saturating_sub(1);
    }

    /// Delivers up to `count` (at least 1) of the group's oldest available messages to
    /// `consumer`, each invisible to the group until `now + visibility_ms`.
    pub(crate) fn take(
        &mut self,
        messages: &BTreeMap<MsgId, Message>,
        now: u64,
        count: u64,
        consumer: u32,
        visibility_ms: u64,
        rid: RequestId,
    ) -> Vec<Msg> {
        let count = count.max(1);
        let mut out = Vec::new();
        while (out.len() as u64) < count {
            let fresh = self.next_fresh(messages, now);
            let again = self.idx.ready.first().copied();
            let id = match (fresh, again) {
                (Some(f), Some(a)) => f.min(a),
                (Some(id), None) | (None, Some(id)) => id,
                (None, None) => break,
            };
            if Some(id) == fresh {
                self.pass(id);
                // Not indexed yet: it goes into `waiting` below.
                self.data.entries.insert(
                    id,
                    Entry {
                        deliveries: 0,
                        consumer: None,
                        visible_at: now,
                        last_ms: now,
                        rid: 0,
                        ready: false,
                    },
                );
            } else {
                self.unlink(id);
            }
            let Some(message) = messages.get(&id) else {
                // Cannot happen (an unfinished message is retained); never loop on it.
                self.remove_entry(id);
                continue;
            };
            let Some(e) = self.data.entries.get_mut(&id) else {
                continue;
            };
            if e.deliveries == 0 {
                self.data.pending += 1;
            }
            // At least 1 ms: a message handed out is never visible again (nor dead-lettered)
            // in the very instant it is delivered.
            let visible_at = now.saturating_add(visibility_ms.max(1));
            e.deliveries = e.deliveries.saturating_add(1);
            e.consumer = Some(consumer);
            e.visible_at = visible_at;
            e.last_ms = now;
            e.rid = rid;
            e.ready = false;
            let deliveries = e.deliveries;
            self.idx.waiting.insert((visible_at, id));
            self.data.delivered += 1;
            out.push(Msg {
                id,
                payload: message.payload.clone(),
                deliveries,
            });
        }
        out
    }

    /// `Q.ACK` of one id: whether it was pending (it is now finished).
    pub(crate) fn ack(&mut self, id: MsgId) -> bool {
        if !self.data.entries.get(&id).is_some_and(Entry::is_pending) {
            return false;
        }
        self.remove_entry(id);
        self.data.acked += 1;
        true
    }

    /// `Q.NACK`: visible again after `delay_ms` (`None`: the backoff), or finished as
    /// exhausted when already delivered `max_deliveries` times.
    pub(crate) fn nack(
        &mut self,
        id: MsgId,
        now: u64,
        delay_ms: Option<u64>,
        config: &QueueConfig,
    ) -> Nacked {
        let Some(e) = self.data.entries.get(&id).filter(|e| e.is_pending()) else {
            return Nacked::NotPending;
        };
        if config.exhausted(e.deliveries) {
            self.remove_entry(id);
            return Nacked::Exhausted;
        }
        let delay = delay_ms.unwrap_or_else(|| config.backoff_ms(e.deliveries));
        self.reschedule(id, now.saturating_add(delay));
        Nacked::Later
    }

    /// `Q.EXTEND`: whether it was pending (now invisible until
    /// `max(visible_at, now) + ms`).
    pub(crate) fn extend(&mut self, id: MsgId, now: u64, ms: u64) -> bool {
        let Some(e) = self.data.entries.get(&id).filter(|e| e.is_pending()) else {
            return false;
        };
        let at = e.visible_at.max(now).saturating_add(ms);
        self.reschedule(id, at);
        true
    }

    /// `Unread`: whether `id` was pending from read `rid` and is now given back.
    pub(crate) fn unread(&mut self, id: MsgId, rid: RequestId, now: u64) -> bool {
        let given_back = rid != 0
            && self
                .data
                .entries
                .get(&id)
                .is_some_and(|e| e.is_pending() && e.rid == rid);
        if !given_back {
            return false;
        }
        self.unlink(id);
        if let Some(e) = self.data.entries.get_mut(&id) {
            e.deliveries -= 1;
            if e.deliveries == 0 {
                e.consumer = None;
                self.data.pending = self.data.pending.saturating_sub(1);
            }
            e.rid = 0;
            e.visible_at = now;
            e.ready = false;
            self.idx.waiting.insert((now, id));
        }
        true
    }

    /// Makes a pending entry invisible until `at` (a `NACK` or `EXTEND`, which also end
    /// what `Unread` could give back).
    fn reschedule(&mut self, id: MsgId, at: u64) {
        self.unlink(id);
        if let Some(e) = self.data.entries.get_mut(&id) {
            e.visible_at = at;
            e.rid = 0;
            e.ready = false;
            self.idx.waiting.insert((at, id));
        }
    }

    fn insert_entry(&mut self, id: MsgId, e: Entry) {
        if e.ready {
            self.idx.ready.insert(id);
        } else {
            self.idx.waiting.insert((e.visible_at, id));
        }
        self.data.entries.insert(id, e);
    }

    /// Takes the entry out of whichever index holds it (it stays in `entries`).
    fn unlink(&mut self, id: MsgId) {
        if let Some(e) = self.data.entries.get(&id) {
            if e.ready {
                self.idx.ready.remove(&id);
            } else {
                self.idx.waiting.remove(&(e.visible_at, id));
            }
        }
    }

    fn remove_entry(&mut self, id: MsgId) {
        self.unlink(id);
        if let Some(e) = self.data.entries.remove(&id) {
            if e.is_pending() {
                self.data.pending = self.data.pending.saturating_sub(1);
            }
        }
    }
}
