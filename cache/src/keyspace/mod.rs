//! The node-local string keyspace (the cache).
//!
//! A [`Keyspace`] is shared by every connection (`Arc<Keyspace>`). It is split into
//! [`SHARDS`] shards, each behind its own `parking_lot::RwLock`; a key's hash picks
//! its shard, so there is no global lock on the hot path. Reads (`GET`) take only a
//! read lock: the per-entry LRU stamp is atomic.
//!
//! Memory: each key costs one 32-byte slot in its shard's dense vector, one heap
//! block holding key and value together, and a `u32` in a `hashbrown` index. The
//! accounted size ([`Keyspace::used_bytes`]) models the allocator's real block sizes
//! and is kept in per-shard counters folded into one atomic total after each write.
//!
//! Expiry is lazy (an expired key found by any access is removed) and active
//! ([`Keyspace::active_expire_cycle`] samples each shard's list of volatile keys, as
//! Redis does). Under `maxmemory` writes first evict keys chosen by approximate LRU
//! (5 random samples across shards, the idlest goes) or answer OOM with `noeviction`.
//!
//! # Primitives
//!
//! Commands (in [`crate::cmd`]) use only this small set of operations, so a later
//! coherence layer (directory-based MESI across nodes) can wrap the store at one
//! narrow waist:
//!
//! - reads: [`get`](Keyspace::get), [`read`](Keyspace::read),
//!   [`exists`](Keyspace::exists), [`ttl`](Keyspace::ttl);
//! - writes: [`set`](Keyspace::set) (with NX/XX/GET/TTL options),
//!   [`modify`](Keyspace::modify) (read-modify-write under the shard lock),
//!   [`patch`](Keyspace::patch) (in-place byte edits: bit commands),
//!   [`mset`](Keyspace::mset), [`remove`](Keyspace::remove) / [`take`](Keyspace::take),
//!   [`expire`](Keyspace::expire) / [`persist`](Keyspace::persist) /
//!   [`get_ex`](Keyspace::get_ex), [`rename`](Keyspace::rename);
//! - several keys at once, atomically: [`lock_keys`](Keyspace::lock_keys) (`COPY`,
//!   `BITOP`, `LCS`);
//! - introspection: [`object`](Keyspace::object), [`random_key`](Keyspace::random_key);
//! - whole keyspace: [`scan`](Keyspace::scan), [`keys`](Keyspace::keys),
//!   [`flush`](Keyspace::flush).
//!
//! Time is read through one function, [`Clock::now_ms`].
//!
//! Every change of a key is signalled (under its shard's write lock) to the
//! connections that `WATCH` it and, through an [`Invalidator`], to the clients that
//! track it for client-side caching (`tracking.rs`).
//!
//! Why this file is long: the `Keyspace` type and its primitives are one impl on purpose — the
//! narrow waist every command (and the coherence layer to come) goes through; its vocabulary
//! is in `options.rs`, whole-keyspace walks in `walk.rs`, multi-key locking in `multi.rs`,
//! `OBJECT`/`RANDOMKEY` in `object.rs`.

mod clock;
mod copies;
mod entry;
mod evict;
mod memory;
mod multi;
mod object;
mod options;
mod shard;
mod snapshot;
#[cfg(test)]
mod tests;
mod tracking;
mod walk;
mod watch;

use std::hash::BuildHasher;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use foldhash::fast::RandomState;
use parking_lot::RwLockWriteGuard;

pub use clock::{Clock, ManualClock};
pub use conclave_protocol::glob::glob_match;
pub use copies::Exported;
pub use multi::KeyLocks;
pub use options::*;
pub use snapshot::SnapshotEntry;
pub use tracking::{Cause, Invalidator, TrackingStats, DEFAULT_TRACKING_MAX_KEYS};
pub use watch::{ExclusiveGate, SharedGate, WatchFlag};

use clock::lru_clock;
use entry::Entry;
use shard::{Shard, ShardData};

/// Number of shards (a power of two).
pub const SHARDS: usize = 256;
const SHARD_MASK: usize = SHARDS - 1;

/// The node-local string keyspace. `Send + Sync`; share it with an `Arc`.
#[derive(Debug)]
pub struct Keyspace {
    shards: Box<[Shard]>,
    hasher: RandomState,
    clock: Clock,
    used: AtomicU64,
    maxmemory: AtomicU64,
    policy: AtomicU8,
    evictions: AtomicU64,
    expired: AtomicU64,
    expire_cursor: AtomicUsize,
    gate: watch::Gate,
    /// Keys sampled per eviction (`maxmemory-samples`).
    samples: AtomicUsize,
    /// Client-side caching: the invalidator, its switches and counters.
    hub: Arc<tracking::Hub>,
    /// Until when (Unix ms) no key is deleted for having expired (`CLIENT PAUSE`).
    expiry_paused_until: AtomicU64,
    /// Keys evicted under `maxmemory` since the coherence driver last asked
    /// (`copies.rs`); `None` unless [`Keyspace::record_evictions`] was called.
    evicted: parking_lot::Mutex<Option<Vec<Bytes>>>,
    /// Whether `evicted` holds a key (checked without the lock).
    has_evicted: std::sync::atomic::AtomicBool,
}

/// A shard's write guard that settles memory accounting and length mirrors on drop.
struct ShardWrite<'a> {
    guard: RwLockWriteGuard<'a, ShardData>,
    shard: &'a Shard,
    used: &'a AtomicU64,
}

impl Deref for ShardWrite<'_> {
    type Target = ShardData;
    fn deref(&self) -> &ShardData {
        &self.guard
    }
}

impl DerefMut for ShardWrite<'_> {
    fn deref_mut(&mut self) -> &mut ShardData {
        &mut self.guard
    }
}

impl Drop for ShardWrite<'_> {
    fn drop(&mut self) {
        let now = self.guard.bytes();
        let before = self.shard.accounted.load(Relaxed);
        if now > before {
            self.used.fetch_add(now - before, Relaxed);
        } else if now < before {
            self.used.fetch_sub(before - now, Relaxed);
        }
        self.shard.accounted.store(now, Relaxed);
        self.shard.len.store(self.guard.len(), Relaxed);
        self.shard
            .volatile_len
            .store(self.guard.volatile.len(), Relaxed);
    }
}

impl Keyspace {
    /// An empty keyspace reading the system clock.
    pub fn new(config: KeyspaceConfig) -> Self {
        Keyspace::with_clock(config, Clock::System)
    }

    /// An empty keyspace reading `clock`.
    pub fn with_clock(config: KeyspaceConfig, clock: Clock) -> Self {
        let hasher = RandomState::default();
        let hub = Arc::new(tracking::Hub::default());
        let shards = (0..SHARDS)
            .map(|_| Shard::new(hasher.clone(), hub.clone()))
            .collect();
        Keyspace {
            shards,
            hasher,
            clock,
            used: AtomicU64::new(0),
            maxmemory: AtomicU64::new(config.maxmemory),
            policy: AtomicU8::new(config.policy.to_u8()),
            evictions: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            expire_cursor: AtomicUsize::new(0),
            gate: watch::Gate::default(),
            samples: AtomicUsize::new(evict::EVICTION_SAMPLES),
            hub,
            expiry_paused_until: AtomicU64::new(0),
            evicted: parking_lot::Mutex::new(None),
            has_evicted: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The current time as the keyspace sees it (Unix ms).
    #[inline]
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Sets the memory limit (0 = unbounded).
    pub fn set_maxmemory(&self, bytes: u64) {
        self.maxmemory.store(bytes, Relaxed);
    }

    /// The memory limit (0 = unbounded).
    pub fn maxmemory(&self) -> u64 {
        self.maxmemory.load(Relaxed)
    }

    /// Sets the eviction policy.
    pub fn set_policy(&self, p: EvictionPolicy) {
        self.policy.store(p.to_u8(), Relaxed);
    }

    /// Keys sampled per eviction (`maxmemory-samples`, default 5).
    pub fn eviction_samples(&self) -> usize {
        self.samples.load(Relaxed)
    }

    /// Sets `maxmemory-samples` (1-64).
    pub fn set_eviction_samples(&self, n: usize) {
        self.samples.store(n.clamp(1, 64), Relaxed);
    }

    /// The eviction policy.
    pub fn policy(&self) -> EvictionPolicy {
        EvictionPolicy::from_u8(self.policy.load(Relaxed))
    }

    /// Number of keys (expired keys not yet removed included).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len.load(Relaxed)).sum()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of keys with a TTL.
    pub fn volatile_len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.volatile_len.load(Relaxed))
            .sum()
    }

    /// The keyspace's accounted memory in bytes.
    pub fn used_bytes(&self) -> u64 {
        self.used.load(Relaxed)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> KeyspaceStats {
        let (hits, misses) = self.shards.iter().fold((0, 0), |(h, m), s| {
            (h + s.hits.load(Relaxed), m + s.misses.load(Relaxed))
        });
        KeyspaceStats {
            hits,
            misses,
            keys: self.len() as u64,
            bytes: self.used_bytes(),
            evictions: self.evictions.load(Relaxed),
            expired: self.expired.load(Relaxed),
        }
    }

    // ----- internals -----

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The shard for a hash. Uses bits 32.. so that neither hashbrown's bucket index
    /// (low bits) nor its control byte (top 7 bits) is constant within a shard.
    #[inline]
    fn shard_index(hash: u64) -> usize {
        ((hash >> 32) as usize) & SHARD_MASK
    }

    #[inline]
    fn shard(&self, idx: usize) -> &Shard {
        // `shards` has exactly SHARDS elements and every index is masked.
        &self.shards[idx & SHARD_MASK]
    }

    fn write(&self, idx: usize) -> ShardWrite<'_> {
        let shard = self.shard(idx);
        ShardWrite {
            guard: shard.data.write(),
            shard,
            used: &self.used,
        }
    }

    /// Write-locks several shards in ascending order (no deadlock between callers).
    fn write_many(&self, mut idxs: Vec<usize>) -> Vec<(usize, ShardWrite<'_>)> {
        idxs.sort_unstable();
        idxs.dedup();
        idxs.into_iter().map(|i| (i, self.write(i))).collect()
    }

    /// The slot of `key` if present and not expired; an expired entry is removed.
    fn live_slot(&self, data: &mut ShardData, hash: u64, key: &[u8], now: u64) -> Option<usize> {
        let slot = data.find(hash, key)?;
        if data.is_expired(slot, now) {
            data.expire_slot(slot);
            self.expired.fetch_add(1, Relaxed);
            None
        } else {
            Some(slot)
        }
    }

    /// Removes `key` if it is (still) expired; used after a read lock saw it expired.
    /// Not while expiry is paused: the key reads as missing but stays (Redis keeps the
    /// dataset still during `CLIENT PAUSE`; a write to it still replaces it).
    fn expire_key(&self, idx: usize, hash: u64, key: &[u8], now: u64) {
        if self.expiry_paused(now) {
            return;
        }
        let mut data = self.write(idx);
        let _ = self.live_slot(&mut data, hash, key, now);
    }

    fn count_read(&self, shard: &Shard, hit: bool) {
        if hit {
            shard.hits.fetch_add(1, Relaxed);
        } else {
            shard.misses.fetch_add(1, Relaxed);
        }
    }

    // ----- read primitives -----

    /// Runs `f` on the value of `key` under the shard's read lock. With `track`, the
    /// access counts as a hit or miss and refreshes the key's LRU stamp.
    pub fn read<R>(&self, key: &[u8], track: bool, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let now = self.now_ms();
        let hash = self.hash(key);
        let idx = Self::shard_index(hash);
        let shard = self.shard(idx);
        let data = shard.data.read();
        let live = data.find(hash, key).and_then(|slot| {
            if data.is_expired(slot, now) {
                None
            } else {
                data.entry(slot)
            }
        });
        let result = live.map(|e| {
            if track {
                e.touch(lru_clock(now));
            }
            f(e.value())
        });
        let expired = result.is_none() && data.find(hash, key).is_some();
        drop(data);
        if expired {
            self.expire_key(idx, hash, key, now);
        }
        if track {
            self.count_read(shard, result.is_some());
        }
        result
    }

    /// The value of `key` (a copy), counting a hit or miss.
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.read(key, true, Bytes::copy_from_slice)
    }

    /// Whether `key` exists (no statistics, no LRU refresh).
    pub fn exists(&self, key: &[u8]) -> bool {
        self.read(key, false, |_| ()).is_some()
    }

    /// The TTL state of `key`.
    pub fn ttl(&self, key: &[u8]) -> KeyTtl {
        let now = self.now_ms();
        let hash = self.hash(key);
        let idx = Self::shard_index(hash);
        let data = self.shard(idx).data.read();
        match data.find(hash, key) {
            None => KeyTtl::Missing,
            Some(slot) => match data.expire_at(slot) {
                None => KeyTtl::Persistent,
                Some(at) if at > now => KeyTtl::ExpiresAt(at),
                Some(_) => {
                    drop(data);
                    self.expire_key(idx, hash, key, now);
                    KeyTtl::Missing
                }
            },
        }
    }

    // ----- transactions -----

    /// Enters the keyspace as one of many concurrent commands: hold it while a command
    /// runs, so an `EXEC` ([`exclusive`](Self::exclusive)) never interleaves with it.
    pub fn shared(&self) -> SharedGate<'_> {
        self.gate.shared()
    }

    /// [`shared`](Self::shared) without waiting: `None` while an `EXEC` or a script
    /// holds (or is taking) the gate exclusive, so an async caller can wait elsewhere
    /// instead of blocking its worker thread.
    pub fn try_shared(&self) -> Option<SharedGate<'_>> {
        self.gate.try_shared()
    }

    /// Enters the keyspace alone, for an `EXEC`: every other command waits. Run the
    /// transaction's commands without taking [`shared`](Self::shared) again.
    pub fn exclusive(&self) -> ExclusiveGate<'_> {
        self.gate.exclusive()
    }

    /// `WATCH key`: `flag` is set by any later change to `key` (write, TTL change,
    /// deletion, expiry, eviction, flush). A key already expired is removed first, so
    /// its lazy removal does not count as a change.
    pub fn watch(&self, key: &[u8], flag: &WatchFlag) {
        let now = self.now_ms();
        let hash = self.hash(key);
        let mut data = self.write(Self::shard_index(hash));
        let _ = self.live_slot(&mut data, hash, key, now);
        data.watched
            .get_or_insert_with(Default::default)
            .add(key, flag);
    }

    /// Drops a [`watch`](Self::watch).
    pub fn unwatch(&self, key: &[u8], flag: &WatchFlag) {
        let hash = self.hash(key);
        let mut data = self.write(Self::shard_index(hash));
        if let Some(w) = data.watched.as_mut() {
            if w.remove(key, flag) {
                data.watched = None;
            }
        }
    }

    // ----- write primitives -----

    /// Stores `value` under `key` according to `opts`.
    pub fn set(
        &self,
        key: &[u8],
        value: &[u8],
        opts: SetOptions,
    ) -> Result<SetOutcome, WriteError> {
        self.make_room()?;
        let now = self.now_ms();
        let hash = self.hash(key);
        let mut data = self.write(Self::shard_index(hash));
        let slot = self.live_slot(&mut data, hash, key, now);
        let old = if opts.return_old {
            slot.and_then(|s| data.entry(s))
                .map(|e| Bytes::copy_from_slice(e.value()))
        } else {
            None
        };
        let allowed = match opts.condition {
            SetCondition::Always => true,
            SetCondition::IfAbsent => slot.is_none(),
            SetCondition::IfPresent => slot.is_some(),
        };
        if !allowed {
            return Ok(SetOutcome {
                written: false,
                old,
            });
        }
        let lru = lru_clock(now);
        let slot = match slot {
            Some(s) => {
                data.replace_value(s, value);
                if let Some(e) = data.entry(s) {
                    e.touch(lru);
                }
                s
            }
            None => data.insert_new(hash, Entry::new(key, value, lru)),
        };
        data.set_encoding(slot, Encoding::Compact);
        match opts.expire {
            SetExpire::Clear => data.set_expire(slot, None),
            SetExpire::Keep => {}
            SetExpire::At(at) if at <= now => {
                data.remove_slot(slot);
            }
            SetExpire::At(at) => data.set_expire(slot, Some(at)),
        }
        Ok(SetOutcome { written: true, old })
    }

    /// Read-modify-write of one key under its shard's write lock. `f` sees the current
    /// value (`None` when absent) and decides; a `Put` keeps an existing key's TTL.
    pub fn modify<T>(
        &self,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> Modify<T>,
    ) -> Result<T, WriteError> {
        self.make_room()?;
        let now = self.now_ms();
        let hash = self.hash(key);
        let mut data = self.write(Self::shard_index(hash));
        let slot = self.live_slot(&mut data, hash, key, now);
        let decision = f(slot.and_then(|s| data.entry(s)).map(|e| e.value()));
        Ok(match decision {
            Modify::Keep(t) => t,
            Modify::Put(value, t) => {
                Self::put_value(&mut data, slot, hash, key, &value, Encoding::Compact, now);
                t
            }
            Modify::PutAs(value, encoding, t) => {
                Self::put_value(&mut data, slot, hash, key, &value, encoding, now);
                t
            }
            Modify::Remove(t) => {
                if let Some(s) = slot {
                    data.remove_slot(s);
                }
                t
            }
        })
    }

    /// Stores `value` at `slot` (or as a new entry), keeping any TTL, for [`Self::modify`].
    fn put_value(
        data: &mut ShardData,
        slot: Option<usize>,
        hash: u64,
        key: &[u8],
        value: &[u8],
        encoding: Encoding,
        now: u64,
    ) {
        let lru = lru_clock(now);
        let slot = match slot {
            Some(s) => {
                data.replace_value(s, value);
                if let Some(e) = data.entry(s) {
                    e.touch(lru);
                }
                s
            }
            None => data.insert_new(hash, Entry::new(key, value, lru)),
        };
        data.set_encoding(slot, encoding);
    }

    /// Edits the bytes of one key in place under its shard's write lock (`SETBIT`,
    /// `SETRANGE`): the value is first grown with zero bytes to at least `min_len`
    /// (a missing key is created as `min_len` zero bytes), then `f` changes it. The
    /// key keeps its TTL, is refreshed for LRU and becomes [`Encoding::Raw`], as Redis's
    /// `dbUnshareStringValue` leaves it. Unlike [`Self::modify`] nothing is copied
    /// beyond the growth, so a bit flip in a 512 MB bitmap costs a byte.
    pub fn patch<T>(
        &self,
        key: &[u8],
        min_len: usize,
        f: impl FnOnce(&mut [u8]) -> T,
    ) -> Result<T, WriteError> {
        self.make_room()?;
        let now = self.now_ms();
        let hash = self.hash(key);
        let mut data = self.write(Self::shard_index(hash));
        let lru = lru_clock(now);
        let slot = match self.live_slot(&mut data, hash, key, now) {
            Some(s) => s,
            None => data.insert_new(hash, Entry::new(key, &vec![0; min_len], lru)),
        };
        data.set_encoding(slot, Encoding::Raw);
        if let Some(e) = data.entry(slot) {
            e.touch(lru);
        }
        match data.value_mut(slot, min_len) {
            Some(value) => Ok(f(value)),
            // The slot was found or created just above, under the same lock.
            None => Ok(f(&mut [])),
        }
    }

    /// Sets several keys atomically (all shards involved are locked together). With
    /// `only_if_none_exist` (MSETNX) nothing is written if any key exists; returns
    /// whether the keys were written. Written keys lose their TTL.
    pub fn mset(
        &self,
        pairs: &[(Bytes, Bytes)],
        only_if_none_exist: bool,
    ) -> Result<bool, WriteError> {
        self.make_room()?;
        let now = self.now_ms();
        let located: Vec<(u64, usize)> = pairs
            .iter()
            .map(|(k, _)| {
                let h = self.hash(k);
                (h, Self::shard_index(h))
            })
            .collect();
        let mut guards = self.write_many(located.iter().map(|&(_, i)| i).collect());
        if only_if_none_exist {
            for ((key, _), &(hash, idx)) in pairs.iter().zip(&located) {
                if let Some((_, data)) = guards.iter_mut().find(|(i, _)| *i == idx) {
                    if self.live_slot(data, hash, key, now).is_some() {
                        return Ok(false);
                    }
                }
            }
        }
        let lru = lru_clock(now);
        for ((key, value), &(hash, idx)) in pairs.iter().zip(&located) {
            if let Some((_, data)) = guards.iter_mut().find(|(i, _)| *i == idx) {
                match self.live_slot(data, hash, key, now) {
                    Some(s) => {
                        data.replace_value(s, value);
                        data.set_expire(s, None);
                        data.set_encoding(s, Encoding::Compact);
                        if let Some(e) = data.entry(s) {
                            e.touch(lru);
                        }
                    }
                    None => {
                        data.insert_new(hash, Entry::new(key, value, lru));
                    }
                }
            }
        }
        Ok(true)
    }

    /// Deletes `key`; returns whether it existed.
    pub fn remove(&self, key: &[u8]) -> bool {
        let now = self.now_ms();
        let hash = self.hash(key);
        let mut data = self.write(Self::shard_index(hash));
        match self.live_slot(&mut data, hash, key, now) {
            Some(s) => data.remove_slot(s).is_some(),
            None => false,
        }
    }

    /// Deletes `key` and returns its value (`GETDEL`), counting a hit or miss.
    pub fn take(&self, key: &[u8]) -> Option<Bytes> {
        let now = self.now_ms();
        let hash = self.hash(key);
        let idx = Self::shard_index(hash);
        let mut data = self.write(idx);
        let value = self
            .live_slot(&mut data, hash, key, now)
            .and_then(|s| data.remove_slot(s))
            .map(|e| Bytes::copy_from_slice(e.value()));
        self.count_read(self.shard(idx), value.is_some());
        value
    }

    /// Sets `key` to expire at `when_ms` (Unix ms; in the past deletes the key) if
    /// `cond` allows. Returns whether the key existed and the condition held.
    pub fn expire(&self, key: &[u8], when_ms: i64, cond: ExpireCondition) -> bool {
        let now = self.now_ms();
        let hash = self.hash(key);
        let mut data = self.write(Self::shard_index(hash));
        let Some(slot) = self.live_slot(&mut data, hash, key, now) else {
            return false;
        };
        let current = data.expire_at(slot).map(|at| at as i64);
        let allowed = match cond {
            ExpireCondition::Always => true,
            ExpireCondition::IfNone => current.is_none(),
            ExpireCondition::IfSome => current.is_some(),
            ExpireCondition::IfGreater => current.is_some_and(|c| when_ms > c),
            ExpireCondition::IfLess => current.is_none_or(|c| when_ms < c),
            ExpireCondition::IfSomeAndLess => current.is_some_and(|c| when_ms < c),
        };
        if !allowed {
            return false;
        }
        if when_ms <= now as i64 {
            data.remove_slot(slot);
        } else {
            data.set_expire(slot, Some(when_ms as u64));
        }
        true
    }

    /// Removes the TTL of `key`; returns whether it had one.
    pub fn persist(&self, key: &[u8]) -> bool {
        let now = self.now_ms();
        let hash = self.hash(key);
        let mut data = self.write(Self::shard_index(hash));
        match self.live_slot(&mut data, hash, key, now) {
            Some(s) if data.expire_at(s).is_some() => {
                data.set_expire(s, None);
                true
            }
            _ => false,
        }
    }

    /// Returns the value of `key` and changes its TTL (`GETEX`), counting a hit or miss.
    pub fn get_ex(&self, key: &[u8], change: ExpireChange) -> Option<Bytes> {
        let now = self.now_ms();
        let hash = self.hash(key);
        let idx = Self::shard_index(hash);
        let mut data = self.write(idx);
        let slot = self.live_slot(&mut data, hash, key, now);
        let value = slot.and_then(|s| data.entry(s)).map(|e| {
            e.touch(lru_clock(now));
            Bytes::copy_from_slice(e.value())
        });
        if let Some(s) = slot {
            match change {
                ExpireChange::Unchanged => {}
                ExpireChange::Persist => data.set_expire(s, None),
                ExpireChange::At(at) if at <= now as i64 => {
                    data.remove_slot(s);
                }
                ExpireChange::At(at) => data.set_expire(s, Some(at as u64)),
            }
        }
        self.count_read(self.shard(idx), value.is_some());
        value
    }

    /// Renames `from` to `to` (keeping the TTL); with `only_if_absent` (RENAMENX) does
    /// nothing when `to` exists. Returns whether the rename happened.
    pub fn rename(
        &self,
        from: &[u8],
        to: &[u8],
        only_if_absent: bool,
    ) -> Result<bool, RenameError> {
        let now = self.now_ms();
        let (hf, ht) = (self.hash(from), self.hash(to));
        let (sf, st) = (Self::shard_index(hf), Self::shard_index(ht));
        let mut guards = self.write_many(vec![sf, st]);
        let Some(pos_f) = guards.iter().position(|(i, _)| *i == sf) else {
            return Err(RenameError::NoSuchKey);
        };
        let pos_t = guards.iter().position(|(i, _)| *i == st).unwrap_or(pos_f);
        let Some((_, src)) = guards.get_mut(pos_f) else {
            return Err(RenameError::NoSuchKey);
        };
        if self.live_slot(src, hf, from, now).is_none() {
            return Err(RenameError::NoSuchKey);
        }
        if from == to {
            return Ok(!only_if_absent);
        }
        if let Some((_, dst)) = guards.get_mut(pos_t) {
            if let Some(existing) = self.live_slot(dst, ht, to, now) {
                if only_if_absent {
                    return Ok(false);
                }
                dst.remove_slot(existing);
            }
        }
        // The source slot may have moved if both keys share a shard: look it up again.
        let Some((_, src)) = guards.get_mut(pos_f) else {
            return Err(RenameError::NoSuchKey);
        };
        let Some(slot) = src.find(hf, from) else {
            return Err(RenameError::NoSuchKey);
        };
        let expire_at = src.expire_at(slot);
        let Some(old) = src.remove_slot(slot) else {
            return Err(RenameError::NoSuchKey);
        };
        // Redis's lookupKeyWrite refreshes the value's LRU clock; the encoding moves along.
        let mut entry = Entry::new(to, old.value(), lru_clock(now));
        entry.encoding = old.encoding;
        if let Some((_, dst)) = guards.get_mut(pos_t) {
            let new_slot = dst.insert_new(ht, entry);
            dst.set_expire(new_slot, expire_at);
        }
        Ok(true)
    }
}
