//! [`Dedup`]: one topic's `DEDUP` ids of the last `--queue-dedup-window` ms.
//!
//! Ids are kept in push order (a queue, since the machine's clock never goes back) with
//! a hash index on top, so a push looks up and expires ids in O(1) amortized. Only the
//! queue is serialized; the index is rebuilt on load.

use std::collections::VecDeque;

use foldhash::fast::RandomState;
use hashbrown::HashMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{MsgId, Name};

/// One remembered dedup id.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
struct Remembered {
    /// When the push was applied (machine clock, ms).
    at_ms: u64,
    key: Name,
    /// The id that push answered.
    id: MsgId,
}

/// A topic's dedup ids, oldest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct Dedup {
    order: VecDeque<Remembered>,
    /// key → the id of its live entry (the newest one for that key).
    index: HashMap<Name, MsgId, RandomState>,
}

impl PartialEq for Dedup {
    fn eq(&self, other: &Self) -> bool {
        self.order == other.order
    }
}

impl Eq for Dedup {}

impl Dedup {
    /// Forgets ids pushed `window_ms` or more before `now_ms`.
    pub(crate) fn expire(&mut self, now_ms: u64, window_ms: u64) {
        while let Some(front) = self.order.front() {
            if front.at_ms.saturating_add(window_ms) > now_ms {
                break;
            }
            if self.index.get(&front.key) == Some(&front.id) {
                self.index.remove(&front.key);
            }
            self.order.pop_front();
        }
    }

    /// The id answered by a push of `key` inside the window (call [`Dedup::expire`]
    /// first).
    pub(crate) fn get(&self, key: &[u8]) -> Option<MsgId> {
        self.index.get(key).copied()
    }

    /// Remembers that a push of `key` at `now_ms` answered `id`.
    pub(crate) fn remember(&mut self, key: Name, id: MsgId, now_ms: u64) {
        self.index.insert(key.clone(), id);
        self.order.push_back(Remembered {
            at_ms: now_ms,
            key,
            id,
        });
    }

    /// Ids remembered (tests and consistency checks).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }
}

impl Serialize for Dedup {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.order.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Dedup {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let order = VecDeque::<Remembered>::deserialize(deserializer)?;
        let mut index = HashMap::with_capacity_and_hasher(order.len(), RandomState::default());
        for r in &order {
            // Later entries for a key are newer: they win.
            index.insert(r.key.clone(), r.id);
        }
        Ok(Dedup { order, index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Name {
        Name::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn remembers_inside_the_window_only() {
        let mut d = Dedup::default();
        d.remember(key("a"), MsgId::new(100, 0), 100);
        d.expire(199, 100);
        assert_eq!(d.get(b"a"), Some(MsgId::new(100, 0)));
        d.expire(200, 100);
        assert_eq!(
            d.get(b"a"),
            None,
            "the window is half-open: [at, at+window)"
        );
        assert_eq!(d.len(), 0);
    }

    #[test]
    fn a_key_pushed_again_after_expiry_keeps_its_new_id() {
        let mut d = Dedup::default();
        d.remember(key("a"), MsgId::new(100, 0), 100);
        d.expire(250, 100);
        d.remember(key("a"), MsgId::new(250, 0), 250);
        d.remember(key("b"), MsgId::new(260, 0), 260);
        d.expire(300, 100);
        assert_eq!(d.get(b"a"), Some(MsgId::new(250, 0)));
        let json = serde_json::to_string(&d).unwrap();
        let back: Dedup = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        assert_eq!(back.get(b"b"), Some(MsgId::new(260, 0)));
    }

    #[test]
    fn stale_entries_do_not_evict_a_newer_one() {
        // Two entries for one key can coexist only across an expiry, but the index
        // must still follow the newest even if the older is purged later.
        let mut d = Dedup::default();
        d.remember(key("a"), MsgId::new(1, 0), 1);
        d.remember(key("a"), MsgId::new(5, 0), 5);
        d.expire(102, 100);
        assert_eq!(d.get(b"a"), Some(MsgId::new(5, 0)));
    }
}
