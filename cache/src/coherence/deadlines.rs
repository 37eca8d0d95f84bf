//! The keys that are waiting on a timer, ordered by their deadline.
//!
//! After every event the machine asks for its next timer (the earliest resend, or the
//! earliest lease a transaction waits out). Walking every waiting key for that made an
//! event cost O(waiting keys), so a bulk operation — a cluster-wide `FLUSHALL`, which
//! starts a revocation for every key a home holds — cost O(n²): 100,000 keys took
//! minutes instead of a second. [`Deadlines`] keeps each key's deadline twice, by key
//! and by time, so the earliest one, and the ones that are due, come out in
//! O(log n) per key.

use std::collections::{BTreeMap, BTreeSet};

use super::Time;

/// Each key's next deadline (ms on the machine's clock), indexed by key and by time.
///
/// Both maps hold the same pairs, so two indexes with the same deadlines are equal and
/// hash alike (the model checker hashes whole machines).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Deadlines<K: Ord> {
    by_key: BTreeMap<K, Time>,
    by_time: BTreeSet<(Time, K)>,
}

impl<K: Ord> Default for Deadlines<K> {
    fn default() -> Self {
        Deadlines {
            by_key: BTreeMap::new(),
            by_time: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Clone> Deadlines<K> {
    /// Sets the deadline of `key` (`None`: it has none, it leaves the index).
    pub(super) fn set(&mut self, key: &K, at: Option<Time>) {
        match at {
            Some(at) => {
                if let Some(old) = self.by_key.insert(key.clone(), at) {
                    if old == at {
                        return;
                    }
                    self.by_time.remove(&(old, key.clone()));
                }
                self.by_time.insert((at, key.clone()));
            }
            None => self.remove(key),
        }
    }

    /// Takes `key` out of the index.
    pub(super) fn remove(&mut self, key: &K) {
        if let Some(old) = self.by_key.remove(key) {
            self.by_time.remove(&(old, key.clone()));
        }
    }

    /// Takes every key out.
    pub(super) fn clear(&mut self) {
        self.by_key.clear();
        self.by_time.clear();
    }

    /// The earliest deadline.
    pub(super) fn first(&self) -> Option<Time> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// The keys whose deadline is `now` or earlier, in key order.
    pub(super) fn due(&self, now: Time) -> Vec<K> {
        let mut keys: Vec<K> = self
            .by_time
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, k)| k.clone())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Keeps the keys for which `keep` is true.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        let by_time = &mut self.by_time;
        self.by_key.retain(|k, at| {
            let stays = keep(k);
            if !stays {
                by_time.remove(&(*at, k.clone()));
            }
            stays
        });
    }

    /// How many keys have a deadline.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Deadlines;

    #[test]
    fn earliest_and_due_follow_every_change() {
        let mut d: Deadlines<u32> = Deadlines::default();
        assert_eq!(d.first(), None);
        d.set(&1, Some(50));
        d.set(&2, Some(20));
        d.set(&3, Some(20));
        assert_eq!(d.first(), Some(20));
        assert_eq!(d.due(20), vec![2, 3]);
        // Moving a key's deadline drops its old one.
        d.set(&2, Some(70));
        d.set(&3, Some(60));
        assert_eq!(d.first(), Some(50));
        assert_eq!(d.due(65), vec![1, 3]);
        d.set(&1, None);
        assert_eq!(d.first(), Some(60));
        d.retain(|k| *k != 3);
        assert_eq!((d.first(), d.len()), (Some(70), 1));
        d.remove(&2);
        assert_eq!((d.first(), d.len()), (None, 0));
    }

    #[test]
    fn equal_deadlines_make_equal_indexes() {
        let mut a: Deadlines<u32> = Deadlines::default();
        let mut b: Deadlines<u32> = Deadlines::default();
        a.set(&1, Some(5));
        a.set(&1, Some(9));
        a.set(&2, Some(3));
        b.set(&2, Some(3));
        b.set(&1, Some(9));
        assert_eq!(a, b);
        b.clear();
        assert_ne!(a, b);
    }
}
