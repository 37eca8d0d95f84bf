//! Introspection of single keys: `OBJECT` ([`Keyspace::object`]), `MEMORY USAGE`
//! ([`Keyspace::memory_usage`]), `RANDOMKEY` ([`Keyspace::random_key`]).

use rand::Rng;

use super::clock::LRU_RESOLUTION_MS;
use super::*;

impl Keyspace {
    /// What `OBJECT ENCODING|REFCOUNT|IDLETIME` report about `key`; `None` when it is
    /// missing. Counts a keyspace hit or miss but, like Redis's `LOOKUP_NOTOUCH`, does
    /// not refresh the key's LRU stamp.
    pub fn object(&self, key: &[u8]) -> Option<ObjectInfo> {
        let now = self.now_ms();
        let hash = self.hash(key);
        let idx = Self::shard_index(hash);
        let shard = self.shard(idx);
        let shared_integers = self.maxmemory() == 0
            || matches!(
                self.policy(),
                EvictionPolicy::NoEviction | EvictionPolicy::AllKeysRandom
            );
        let data = shard.data.read();
        let slot = data.find(hash, key);
        let expired = slot.is_some_and(|s| data.is_expired(s, now));
        let info = slot
            .filter(|_| !expired)
            .and_then(|s| data.entry(s))
            .map(|e| {
                let idle = lru_clock(now).wrapping_sub(e.lru());
                ObjectInfo {
                    encoding: e.encoding.name(e.value()),
                    refcount: e.encoding.refcount(e.value(), shared_integers),
                    idle_ms: u64::from(idle) * LRU_RESOLUTION_MS,
                }
            });
        drop(data);
        if expired {
            self.expire_key(idx, hash, key, now);
        }
        self.count_read(shard, info.is_some());
        info
    }

    /// `MEMORY USAGE key`: the bytes `key` costs, as the keyspace accounts them (see
    /// [`Keyspace::used_bytes`]): its heap block of key and value as the allocator
    /// sizes it, its 32-byte slot, its index bucket (a `u32` and a control byte) and,
    /// with a TTL, its place in the volatile list. `None` when it is missing. Neither
    /// a hit nor a miss, and no LRU refresh (Redis's `LOOKUP_NOTOUCH`).
    pub fn memory_usage(&self, key: &[u8]) -> Option<u64> {
        let slot_bytes = std::mem::size_of::<super::entry::Entry>() as u64;
        let volatile_bytes = std::mem::size_of::<super::shard::Volatile>() as u64;
        self.with_entry(key, |e| {
            let ttl = if e.is_volatile() { volatile_bytes } else { 0 };
            e.heap_size() + slot_bytes + 5 + ttl
        })
    }

    /// `RESTORE ... IDLETIME`: makes `key` look idle for `idle_ms` (its LRU stamp
    /// moved into the past; an idle time beyond half the clock's range is clamped
    /// there, as Redis's `objectSetLRUOrLFU` does). `false` when `key` is missing.
    pub fn set_idle(&self, key: &[u8], idle_ms: u64) -> bool {
        let units = (idle_ms / LRU_RESOLUTION_MS).min(u64::from(u32::MAX / 2)) as u32;
        let stamp = lru_clock(self.now_ms()).wrapping_sub(units);
        self.with_entry(key, |e| e.touch(stamp)).is_some()
    }

    /// Runs `f` on the live entry of `key` under its shard's read lock, without
    /// statistics or LRU refresh; an expired entry met is removed.
    fn with_entry<R>(&self, key: &[u8], f: impl FnOnce(&super::entry::Entry) -> R) -> Option<R> {
        let now = self.now_ms();
        let hash = self.hash(key);
        let idx = Self::shard_index(hash);
        let data = self.shard(idx).data.read();
        let slot = data.find(hash, key);
        let expired = slot.is_some_and(|s| data.is_expired(s, now));
        let out = slot.filter(|_| !expired).and_then(|s| data.entry(s)).map(f);
        drop(data);
        if expired {
            self.expire_key(idx, hash, key, now);
        }
        out
    }

    /// A random live key (`RANDOMKEY`), `None` when there is none. A random entry of a
    /// random non-empty shard; an expired key met on the way is deleted and another
    /// drawn, as Redis's `dbRandomKey` does.
    pub fn random_key(&self) -> Option<Bytes> {
        let mut rng = rand::thread_rng();
        // Each round returns a live key or deletes an expired one, so this ends; the
        // bound only guards against writers refilling the keyspace with dying keys.
        for _ in 0..self.len().saturating_add(SHARDS) {
            let now = self.now_ms();
            let start = rng.gen_range(0..SHARDS);
            let mut expired = None;
            let mut any = false;
            for step in 0..SHARDS {
                let idx = (start + step) & SHARD_MASK;
                let shard = self.shard(idx);
                if shard.len.load(Relaxed) == 0 {
                    continue;
                }
                let data = shard.data.read();
                if data.len() == 0 {
                    continue;
                }
                any = true;
                let slot = rng.gen_range(0..data.len());
                let Some(e) = data.entry(slot) else {
                    continue;
                };
                if !data.is_expired(slot, now) {
                    return Some(Bytes::copy_from_slice(e.key()));
                }
                expired = Some((idx, data.hash(e.key()), Bytes::copy_from_slice(e.key())));
                break;
            }
            match expired {
                Some((idx, hash, key)) => self.expire_key(idx, hash, &key, now),
                None if !any => return None,
                None => {}
            }
        }
        None
    }
}
