//! One shard of the keyspace: a hash index over a dense vector of entries.
//!
//! - `entries` is dense (removal is `swap_remove`), so a uniformly random entry is
//!   one random index away (eviction sampling) and SCAN can walk positions.
//! - `table` maps a key's hash to its `u32` position in `entries`; keys are compared
//!   by looking at the entry, and rehashing hashes the entry's key again, so the
//!   table costs 5 bytes per bucket.
//! - `volatile` lists the entries that have a TTL with their deadline, so active
//!   expiry samples only keys that can expire.
//!
//! - Every change of a key goes through [`ShardData::signal`]: it tells the key's
//!   `WATCH`ers and, through the [`Hub`], the clients tracking it (client-side caching).
//!
//! All methods assume the caller holds the shard's lock; they never block.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use parking_lot::RwLock;

use super::entry::{Entry, NOT_VOLATILE};
use super::memory::{alloc_size, table_size};
use super::options::Encoding;
use super::tracking::{Cause, Hub, TrackingTable};
use super::watch::WatchTable;

/// A key with a TTL: where it lives and when it dies (Unix ms).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Volatile {
    pub(crate) slot: u32,
    pub(crate) expire_at: u64,
}

/// A shard: its data behind a lock, plus counters readable without the lock.
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct Shard {
    pub(crate) data: RwLock<ShardData>,
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    /// Mirrors of `entries.len()` / `volatile.len()`, refreshed after every write.
    pub(crate) len: AtomicUsize,
    pub(crate) volatile_len: AtomicUsize,
    /// What this shard last added to the keyspace's `used` counter (written under
    /// the write lock only).
    pub(crate) accounted: AtomicU64,
}

impl Shard {
    pub(crate) fn new(hasher: RandomState, hub: Arc<Hub>) -> Shard {
        Shard {
            data: RwLock::new(ShardData::new(hasher, hub)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            len: AtomicUsize::new(0),
            volatile_len: AtomicUsize::new(0),
            accounted: AtomicU64::new(0),
        }
    }
}

/// The data of one shard.
#[derive(Debug)]
pub(crate) struct ShardData {
    table: HashTable<u32>,
    pub(crate) entries: Vec<Entry>,
    pub(crate) volatile: Vec<Volatile>,
    /// Sum of the entries' heap sizes.
    heap: u64,
    hasher: RandomState,
    /// Connections watching keys of this shard (`WATCH`); `None` when there are none.
    pub(crate) watched: Option<Box<WatchTable>>,
    /// Clients that may cache keys of this shard (`CLIENT TRACKING`); `None` when
    /// there are none.
    pub(crate) tracked: Option<Box<TrackingTable>>,
    /// Where changes are reported (shared by every shard).
    hub: Arc<Hub>,
    /// Changes of keys made in this shard since it was created (writes, deletions,
    /// expiries, evictions), for `rdb_changes_since_last_save`; carried across a flush.
    pub(crate) changes: u64,
}

impl ShardData {
    pub(crate) fn new(hasher: RandomState, hub: Arc<Hub>) -> ShardData {
        ShardData {
            table: HashTable::new(),
            entries: Vec::new(),
            volatile: Vec::new(),
            heap: 0,
            hasher,
            watched: None,
            tracked: None,
            hub,
            changes: 0,
        }
    }

    /// An empty shard with the same hasher and the watches (for flushing): the
    /// watchers of keys that exist here are told they changed. The tracking table is
    /// dropped (a flush tells tracking clients once, see `tracking.rs`).
    pub(crate) fn empty_like(&mut self) -> ShardData {
        if let Some(w) = &self.watched {
            for key in w.keys() {
                if self.find(self.hash(key), key).is_some() {
                    w.touch(key);
                }
            }
        }
        let mut fresh = ShardData::new(self.hasher.clone(), self.hub.clone());
        fresh.watched = self.watched.take();
        fresh.changes = self.changes + self.entries.len() as u64;
        fresh
    }

    /// Tells whoever cares that the key at `slot` changed: its watchers (`WATCH`) and
    /// the clients tracking it (Redis's `signalModifiedKey`).
    #[inline]
    fn signal(&mut self, slot: usize, cause: Cause) {
        self.changes += 1;
        if let Some(e) = self.entries.get(slot) {
            Self::signal_key(&self.watched, &mut self.tracked, &self.hub, e.key(), cause);
        }
    }

    /// [`Self::signal`] for a key given by name (the fields are passed apart so the key
    /// may borrow from the entries).
    #[inline]
    fn signal_key(
        watched: &Option<Box<WatchTable>>,
        tracked: &mut Option<Box<TrackingTable>>,
        hub: &Hub,
        key: &[u8],
        cause: Cause,
    ) {
        if let Some(w) = watched {
            w.touch(key);
        }
        let ids = match tracked {
            Some(t) => {
                let ids = t.take(key);
                if ids.is_some() && t.is_empty() {
                    *tracked = None;
                }
                ids
            }
            None => None,
        };
        hub.report(key, ids, cause);
    }

    #[inline]
    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Number of keys.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Memory this shard uses: entry slots, index, volatile list and heap blocks.
    pub(crate) fn bytes(&self) -> u64 {
        alloc_size(self.entries.capacity() * std::mem::size_of::<Entry>())
            + alloc_size(self.volatile.capacity() * std::mem::size_of::<Volatile>())
            + table_size(self.table.capacity())
            + self.heap
    }

    /// Position of `key` (with hash `hash`), if present (expired or not).
    #[inline]
    pub(crate) fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        let entries = &self.entries;
        self.table
            .find(hash, |&slot| {
                entries.get(slot as usize).is_some_and(|e| e.key() == key)
            })
            .map(|&slot| slot as usize)
    }

    #[inline]
    pub(crate) fn entry(&self, slot: usize) -> Option<&Entry> {
        self.entries.get(slot)
    }

    /// The deadline of the entry at `slot`, if it has one.
    #[inline]
    pub(crate) fn expire_at(&self, slot: usize) -> Option<u64> {
        let e = self.entries.get(slot)?;
        if e.is_volatile() {
            self.volatile.get(e.volatile as usize).map(|v| v.expire_at)
        } else {
            None
        }
    }

    /// Whether the entry at `slot` has expired at `now`.
    #[inline]
    pub(crate) fn is_expired(&self, slot: usize, now: u64) -> bool {
        self.expire_at(slot).is_some_and(|at| at <= now)
    }

    /// Inserts an entry whose key is known to be absent; returns its slot.
    pub(crate) fn insert_new(&mut self, hash: u64, entry: Entry) -> usize {
        self.changes += 1;
        Self::signal_key(
            &self.watched,
            &mut self.tracked,
            &self.hub,
            entry.key(),
            Cause::Write,
        );
        let slot = self.entries.len();
        self.heap += entry.heap_size();
        self.entries.push(entry);
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.table.insert_unique(hash, slot as u32, |&s| {
            entries
                .get(s as usize)
                .map_or(0, |e| hasher.hash_one(e.key()))
        });
        slot
    }

    /// Replaces the value at `slot` (TTL untouched).
    pub(crate) fn replace_value(&mut self, slot: usize, value: &[u8]) {
        self.signal(slot, Cause::Write);
        if let Some(e) = self.entries.get_mut(slot) {
            self.heap -= e.heap_size();
            e.set_value(value);
            self.heap += e.heap_size();
        }
    }

    /// Records how the value at `slot` was written (see [`Encoding`]).
    pub(crate) fn set_encoding(&mut self, slot: usize, encoding: Encoding) {
        if let Some(e) = self.entries.get_mut(slot) {
            e.encoding = encoding;
        }
    }

    /// The value at `slot`, grown with zero bytes to at least `min_len`, writable in
    /// place (memory accounting follows the growth).
    pub(crate) fn value_mut(&mut self, slot: usize, min_len: usize) -> Option<&mut [u8]> {
        self.signal(slot, Cause::Write);
        let e = self.entries.get_mut(slot)?;
        if e.value().len() < min_len {
            self.heap -= e.heap_size();
            e.grow_value(min_len);
            self.heap += e.heap_size();
        }
        Some(e.value_mut())
    }

    /// Sets (`Some`) or clears (`None`) the deadline of the entry at `slot`.
    pub(crate) fn set_expire(&mut self, slot: usize, at: Option<u64>) {
        if at.is_some() || self.entries.get(slot).is_some_and(Entry::is_volatile) {
            self.signal(slot, Cause::Write);
        }
        let Some(e) = self.entries.get_mut(slot) else {
            return;
        };
        match (at, e.is_volatile()) {
            (Some(at), true) => {
                if let Some(v) = self.volatile.get_mut(e.volatile as usize) {
                    v.expire_at = at;
                }
            }
            (Some(at), false) => {
                e.volatile = self.volatile.len() as u32;
                self.volatile.push(Volatile {
                    slot: slot as u32,
                    expire_at: at,
                });
            }
            (None, true) => {
                let v = e.volatile as usize;
                e.volatile = NOT_VOLATILE;
                self.remove_volatile(v);
            }
            (None, false) => {}
        }
    }

    /// Drops volatile record `v`, fixing the record moved into its place.
    fn remove_volatile(&mut self, v: usize) {
        if v >= self.volatile.len() {
            return;
        }
        self.volatile.swap_remove(v);
        if let Some(moved) = self.volatile.get(v) {
            if let Some(e) = self.entries.get_mut(moved.slot as usize) {
                e.volatile = v as u32;
            }
        }
        if self.volatile.capacity() > 64 && self.volatile.len() < self.volatile.capacity() / 4 {
            self.volatile.shrink_to(self.volatile.len() * 2);
        }
    }

    /// Removes the entry at `slot` (a command deleted it) and returns it.
    pub(crate) fn remove_slot(&mut self, slot: usize) -> Option<Entry> {
        self.remove_slot_as(slot, Cause::Write)
    }

    /// Removes the entry at `slot` because it expired.
    pub(crate) fn expire_slot(&mut self, slot: usize) -> Option<Entry> {
        self.remove_slot_as(slot, Cause::Expired)
    }

    /// Removes the entry at `slot` because `maxmemory` evicted it.
    pub(crate) fn evict_slot(&mut self, slot: usize) -> Option<Entry> {
        self.remove_slot_as(slot, Cause::Evicted)
    }

    /// Removes the entry at `slot`, reporting the change with `cause`.
    fn remove_slot_as(&mut self, slot: usize, cause: Cause) -> Option<Entry> {
        self.signal(slot, cause);
        let entry = self.entries.get(slot)?;
        let hash = self.hash(entry.key());
        if let Ok(found) = self.table.find_entry(hash, |&s| s as usize == slot) {
            found.remove();
        }
        if entry.is_volatile() {
            let v = entry.volatile as usize;
            self.remove_volatile(v);
        }
        let last = self.entries.len() - 1;
        let removed = self.entries.swap_remove(slot);
        self.heap -= removed.heap_size();
        if slot != last {
            // The former last entry now lives at `slot`: repoint its index and TTL record.
            if let Some(moved) = self.entries.get(slot) {
                let moved_hash = self.hasher.hash_one(moved.key());
                if let Some(s) = self.table.find_mut(moved_hash, |&s| s as usize == last) {
                    *s = slot as u32;
                }
                if moved.is_volatile() {
                    if let Some(v) = self.volatile.get_mut(moved.volatile as usize) {
                        v.slot = slot as u32;
                    }
                }
            }
        }
        self.maybe_shrink();
        Some(removed)
    }

    /// Gives memory back after heavy deletion (keeps amortized O(1) removal).
    fn maybe_shrink(&mut self) {
        let len = self.entries.len();
        if self.entries.capacity() > 64 && len < self.entries.capacity() / 4 {
            self.entries.shrink_to(len * 2);
        }
        if self.table.capacity() > 64 && len < self.table.capacity() / 4 {
            let (entries, hasher) = (&self.entries, &self.hasher);
            self.table.shrink_to(len * 2, |&s| {
                entries
                    .get(s as usize)
                    .map_or(0, |e| hasher.hash_one(e.key()))
            });
        }
    }

    /// Removes `key` if present; returns the entry.
    #[cfg(test)]
    pub(crate) fn remove_key(&mut self, hash: u64, key: &[u8]) -> Option<Entry> {
        let slot = self.find(hash, key)?;
        self.remove_slot(slot)
    }

    /// Whether the index, dense vector and volatile list agree (tests only).
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        assert_eq!(self.table.len(), self.entries.len());
        for (slot, e) in self.entries.iter().enumerate() {
            assert_eq!(self.find(self.hash(e.key()), e.key()), Some(slot));
            if e.is_volatile() {
                assert_eq!(self.volatile[e.volatile as usize].slot as usize, slot);
            }
        }
        for (i, v) in self.volatile.iter().enumerate() {
            assert_eq!(self.entries[v.slot as usize].volatile as usize, i);
        }
        let heap: u64 = self.entries.iter().map(|e| e.heap_size()).sum();
        assert_eq!(heap, self.heap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_keeps_index_consistent() {
        let mut s = ShardData::new(RandomState::default(), Arc::default());
        for i in 0..200u32 {
            let key = format!("k{i}");
            let h = s.hash(key.as_bytes());
            let slot = s.insert_new(h, Entry::new(key.as_bytes(), b"v", 0));
            if i % 3 == 0 {
                s.set_expire(slot, Some(u64::from(i)));
            }
        }
        s.check_invariants();
        for i in (0..200u32).filter(|i| i % 2 == 0) {
            let key = format!("k{i}");
            let h = s.hash(key.as_bytes());
            assert!(s.remove_key(h, key.as_bytes()).is_some());
            s.check_invariants();
        }
        assert_eq!(s.len(), 100);
        for i in 0..200u32 {
            let key = format!("k{i}");
            let found = s.find(s.hash(key.as_bytes()), key.as_bytes());
            assert_eq!(found.is_some(), i % 2 == 1);
        }
        let slot = s.find(s.hash(b"k3"), b"k3").unwrap();
        s.set_expire(slot, None);
        s.check_invariants();
        assert_eq!(s.expire_at(slot), None);
    }
}
