//! [`KeyMap`]: the per-key tables of a [`Node`](super::Node) (its copies, its requests out,
//! its directory) as hash maps.
//!
//! Every command on a node of a cluster looks its keys up in the node's copies, so the
//! lookup is on the hot path: a hash map answers in one probe where an ordered map walks
//! a tree comparing keys (a `perf` profile of `SET`/`GET` at pipeline 16 on a held key had
//! `memcmp` from those walks as its top user symbol, 12 %).
//!
//! The machine stays deterministic and model-checkable: nothing it emits depends on the
//! map's iteration order (the few walks that emit actions sort their keys first), and a
//! `KeyMap` compares and hashes as the set of its entries, whatever the order — the model
//! checker (`check/`) hashes whole node states. The hasher is seeded at random per map
//! (foldhash), so a client cannot choose keys that collide.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};

use foldhash::fast::RandomState;

/// A hash map of keys to `T`, compared and hashed independently of its order.
#[derive(Clone, Debug)]
pub struct KeyMap<K, T>(HashMap<K, T, RandomState>);

impl<K, T> Default for KeyMap<K, T> {
    fn default() -> Self {
        KeyMap(HashMap::with_hasher(RandomState::default()))
    }
}

impl<K, T> Deref for KeyMap<K, T> {
    type Target = HashMap<K, T, RandomState>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<K, T> DerefMut for KeyMap<K, T> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<K: Eq + Hash, T: PartialEq> PartialEq for KeyMap<K, T> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<K: Eq + Hash, T: Eq> Eq for KeyMap<K, T> {}

impl<K: Ord + Hash, T: Hash> Hash for KeyMap<K, T> {
    /// Hashes the entries in key order, so equal maps hash equal.
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut entries: Vec<(&K, &T)> = self.0.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        state.write_usize(entries.len());
        for (k, v) in entries {
            k.hash(state);
            v.hash(state);
        }
    }
}

impl<K: Ord + Clone, T> KeyMap<K, T> {
    /// The keys in order (for walks whose actions must not depend on the hasher).
    pub fn sorted_keys(&self) -> Vec<K> {
        let mut keys: Vec<K> = self.0.keys().cloned().collect();
        keys.sort_unstable();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::KeyMap;
    use std::hash::BuildHasher;

    #[test]
    fn equal_maps_built_in_different_orders_compare_and_hash_equal() {
        let mut a: KeyMap<u32, &str> = KeyMap::default();
        let mut b: KeyMap<u32, &str> = KeyMap::default();
        for i in 0..100 {
            a.insert(i, "x");
        }
        for i in (0..100).rev() {
            b.insert(i, "x");
        }
        let s = std::hash::RandomState::new();
        assert!(a == b);
        assert_eq!(s.hash_one(&a), s.hash_one(&b));
        b.insert(7, "y");
        assert!(a != b);
        assert_ne!(s.hash_one(&a), s.hash_one(&b));
    }

    #[test]
    fn sorted_keys_are_in_order() {
        let mut m: KeyMap<u32, ()> = KeyMap::default();
        for i in [5, 1, 9, 3] {
            m.insert(i, ());
        }
        assert_eq!(m.sorted_keys(), vec![1, 3, 5, 9]);
    }
}
