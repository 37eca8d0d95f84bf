//! A [`Group`]'s queued reads ([`Waiter`]s, FIFO) and what queries and tests see of it.

use std::collections::VecDeque;
#[cfg(test)]
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::consumer_group::{Entry, Group};
#[cfg(test)]
use super::topic::Message;
use super::{MsgId, Name, RequestId};

/// A queued `Q.READ` (FIFO per group).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Waiter {
    pub(crate) rid: RequestId,
    pub(crate) origin: u64,
    /// Index into the group's consumers.
    pub(crate) consumer: u32,
    pub(crate) count: u64,
    pub(crate) visibility_ms: u64,
    /// Dropped when messages come at or after this time (`None`: `BLOCK 0`).
    pub(crate) deadline: Option<u64>,
}

impl Group {
    /// Queues a read.
    pub(crate) fn push_waiter(&mut self, waiter: Waiter) {
        self.data.waiters.push_back(waiter);
    }

    /// The oldest queued read, if any.
    pub(crate) fn front_waiter(&self) -> Option<&Waiter> {
        self.data.waiters.front()
    }

    /// Dequeues the oldest queued read.
    pub(crate) fn pop_waiter(&mut self) -> Option<Waiter> {
        self.data.waiters.pop_front()
    }

    /// Removes queued reads matching `drop`; how many.
    pub(crate) fn drop_waiters(&mut self, mut drop: impl FnMut(&Waiter) -> bool) -> u64 {
        let before = self.data.waiters.len();
        self.data.waiters.retain(|w| !drop(w));
        (before - self.data.waiters.len()) as u64
    }

    /// Takes every queued read (the group is going away).
    pub(crate) fn take_waiters(&mut self) -> VecDeque<Waiter> {
        std::mem::take(&mut self.data.waiters)
    }

    /// Queued reads.
    pub(crate) fn waiters(&self) -> usize {
        self.data.waiters.len()
    }

    /// Name of consumer `i`.
    pub(crate) fn consumer_name(&self, i: Option<u32>) -> Name {
        i.and_then(|i| self.data.consumers.get(i as usize))
            .cloned()
            .unwrap_or_default()
    }

    /// Pending entries in id order.
    pub(crate) fn pending_entries(&self) -> impl Iterator<Item = (MsgId, &Entry)> + '_ {
        self.data
            .entries
            .iter()
            .filter(|(_, e)| e.is_pending())
            .map(|(id, e)| (*id, e))
    }

    /// `(consumers, pending, lag, delivered, acked)` for `Q.INFO`.
    pub(crate) fn counts(&self) -> (u64, u64, u64, u64, u64) {
        let d = &self.data;
        let undelivered = (d.entries.len() as u64).saturating_sub(d.pending);
        (
            d.consumers.len() as u64,
            d.pending,
            d.ahead + undelivered,
            d.delivered,
            d.acked,
        )
    }

    /// Checks the indexes and counters against the entries (tests).
    #[cfg(test)]
    pub(crate) fn assert_consistent(&self, messages: &BTreeMap<MsgId, Message>) {
        let d = &self.data;
        let ahead = messages.range(d.cursor..).count() as u64;
        assert_eq!(d.ahead, ahead, "ahead");
        let pending = d.entries.values().filter(|e| e.is_pending()).count() as u64;
        assert_eq!(d.pending, pending, "pending");
        let (mut waiting, mut ready) = (BTreeSet::new(), BTreeSet::new());
        for (id, e) in &d.entries {
            assert!(*id < d.cursor, "entry {id} not behind the cursor");
            assert!(messages.contains_key(id), "entry {id} of a message gone");
            if e.ready {
                ready.insert(*id);
            } else {
                waiting.insert((e.visible_at, *id));
            }
        }
        assert_eq!(self.idx.waiting, waiting, "waiting index");
        assert_eq!(self.idx.ready, ready, "ready index");
        assert_eq!(self.idx.consumers.len(), d.consumers.len());
    }

    /// Whether the group still has to finish `id` (tests).
    #[cfg(test)]
    pub(crate) fn unfinished(&self, id: MsgId) -> bool {
        id >= self.data.cursor || self.data.entries.contains_key(&id)
    }
}
