//! Introspection of single keys: `OBJECT` ([`Keyspace::object`]), `RANDOMKEY`
//! ([`Keyspace::random_key`]).

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
