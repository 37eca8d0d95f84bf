//! A key's whole state as one value, for the coherence layer (`crate::coherent`): the
//! value of a copy travels between nodes with its absolute expiry time (contract 2.1,
//! "Expiry and eviction"), and a granted copy is installed here as it came.

use bytes::Bytes;

use super::{Keyspace, SetExpire, SetOptions};

/// A key's value and its expiry (Unix ms; `None`: no TTL).
pub type Exported = (Bytes, Option<u64>);

impl Keyspace {
    /// The value and expiry of `key` if it exists now (no statistics, no LRU refresh).
    pub fn export(&self, key: &[u8]) -> Option<Exported> {
        let now = self.now_ms();
        let hash = self.hash(key);
        let data = self.shard(Self::shard_index(hash)).data.read();
        let slot = data.find(hash, key)?;
        if data.is_expired(slot, now) {
            return None;
        }
        let expire_at = data.expire_at(slot);
        data.entry(slot)
            .map(|e| (Bytes::copy_from_slice(e.value()), expire_at))
    }

    /// Makes `key` hold `value` with its expiry (`None`: the key does not exist). A copy
    /// installed under `maxmemory` may evict other keys; if nothing can go, the key is
    /// removed instead (a missing copy is asked for again, a wrong one would be served).
    pub fn install(&self, key: &[u8], value: Option<&Exported>) {
        match value {
            None => {
                self.remove(key);
            }
            Some((bytes, expire_at)) => {
                let opts = SetOptions {
                    expire: expire_at.map_or(SetExpire::Clear, SetExpire::At),
                    ..SetOptions::default()
                };
                if self.set(key, bytes, opts).is_err() {
                    self.remove(key);
                }
            }
        }
    }
}
