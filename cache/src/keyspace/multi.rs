//! Several keys under one lock: [`Keyspace::lock_keys`] write-locks the shards of every
//! key a command names, in ascending shard order (so two callers never deadlock),
//! for the life of a [`KeyLocks`]. Commands that read one key and write another
//! (`COPY`, `BITOP`) or read two that must agree (`LCS`) see and leave a state no
//! other command can interleave with, as on Redis's single thread.
//!
//! A [`KeyLocks`] only answers for the keys it was asked to lock: any other key reads
//! as missing and cannot be written.

use bytes::Bytes;

use super::*;

/// Write locks on the shards of a set of keys; see the module docs.
pub struct KeyLocks<'a> {
    ks: &'a Keyspace,
    guards: Vec<(usize, ShardWrite<'a>)>,
    now: u64,
}

impl std::fmt::Debug for KeyLocks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLocks")
            .field("shards", &self.guards.len())
            .finish()
    }
}

impl Keyspace {
    /// Locks the shards of `keys` (duplicates allowed). With `for_write` it first
    /// makes room under `maxmemory` like every writing primitive, refusing with
    /// [`WriteError::OutOfMemory`] when it cannot.
    pub fn lock_keys(&self, keys: &[&[u8]], for_write: bool) -> Result<KeyLocks<'_>, WriteError> {
        if for_write {
            self.make_room()?;
        }
        let now = self.now_ms();
        let shards = keys
            .iter()
            .map(|k| Self::shard_index(self.hash(k)))
            .collect();
        Ok(KeyLocks {
            ks: self,
            guards: self.write_many(shards),
            now,
        })
    }
}

impl KeyLocks<'_> {
    /// The shard data holding `key` (if locked here), with the shard index and hash.
    fn shard(&mut self, key: &[u8]) -> Option<(usize, u64, &mut ShardData)> {
        let hash = self.ks.hash(key);
        let idx = Keyspace::shard_index(hash);
        let (_, guard) = self.guards.iter_mut().find(|(i, _)| *i == idx)?;
        Some((idx, hash, &mut **guard))
    }

    /// The live slot of `key` (an expired entry is removed on the way).
    fn slot(&mut self, key: &[u8]) -> Option<(usize, usize, &mut ShardData)> {
        let (ks, now) = (self.ks, self.now);
        let (idx, hash, data) = self.shard(key)?;
        let slot = ks.live_slot(data, hash, key, now)?;
        Some((idx, slot, data))
    }

    /// The value of `key`, copied. With `track` the read counts as a keyspace hit or
    /// miss and refreshes the key's LRU stamp (Redis's `lookupKeyRead`).
    pub fn get(&mut self, key: &[u8], track: bool) -> Option<Bytes> {
        let (ks, lru) = (self.ks, lru_clock(self.now));
        let found = self.slot(key).and_then(|(idx, slot, data)| {
            let e = data.entry(slot)?;
            if track {
                e.touch(lru);
            }
            Some((idx, Bytes::copy_from_slice(e.value())))
        });
        if track {
            let idx = Keyspace::shard_index(ks.hash(key));
            ks.count_read(ks.shard(idx), found.is_some());
        }
        found.map(|(_, v)| v)
    }

    /// Whether `key` exists (no statistics, no LRU refresh).
    pub fn exists(&mut self, key: &[u8]) -> bool {
        self.slot(key).is_some()
    }

    /// The deadline of `key` (Unix ms), `None` when it has none or is missing.
    pub fn expire_at(&mut self, key: &[u8]) -> Option<u64> {
        let (_, slot, data) = self.slot(key)?;
        data.expire_at(slot)
    }

    /// How the value of `key` was written.
    pub fn encoding(&mut self, key: &[u8]) -> Option<Encoding> {
        let (_, slot, data) = self.slot(key)?;
        data.entry(slot).map(|e| e.encoding)
    }

    /// Stores `value` under `key` with `encoding` and deadline `expire_at` (`None`:
    /// persistent), replacing any current value and TTL. Returns false (and does
    /// nothing) when `key` is not one of the locked keys.
    pub fn put(
        &mut self,
        key: &[u8],
        value: &[u8],
        encoding: Encoding,
        expire_at: Option<u64>,
    ) -> bool {
        let (ks, now) = (self.ks, self.now);
        let Some((_, hash, data)) = self.shard(key) else {
            return false;
        };
        let lru = lru_clock(now);
        let slot = match ks.live_slot(data, hash, key, now) {
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
        match expire_at {
            Some(at) if at <= now => {
                data.remove_slot(slot);
            }
            at => data.set_expire(slot, at),
        }
        true
    }

    /// Deletes `key`; returns whether it existed.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        match self.slot(key) {
            Some((_, slot, data)) => data.remove_slot(slot).is_some(),
            None => false,
        }
    }
}
