//! A key's whole state as one value, for the coherence layer (`crate::coherent`): the
//! value of a copy travels between nodes with its absolute expiry time (contract 2.1,
//! "Expiry and eviction"), and a granted copy is installed here as it came.

use bytes::Bytes;

use super::{Keyspace, SetExpire, SetOptions};

/// A key's value and its expiry (Unix ms; `None`: no TTL).
pub type Exported = (Bytes, Option<u64>);

impl Keyspace {
    /// From now on, remembers the keys evicted under `maxmemory` for
    /// [`take_evicted`](Self::take_evicted) (the coherence driver must tell its machine:
    /// an evicted copy is no longer in this store).
    pub fn record_evictions(&self) {
        let mut evicted = self.evicted.lock();
        if evicted.is_none() {
            *evicted = Some(Vec::new());
        }
    }

    /// The keys evicted since the last call (empty unless
    /// [`record_evictions`](Self::record_evictions) was called).
    pub fn take_evicted(&self) -> Vec<Bytes> {
        if !self.has_evicted.load(std::sync::atomic::Ordering::Acquire) {
            return Vec::new();
        }
        let mut evicted = self.evicted.lock();
        self.has_evicted
            .store(false, std::sync::atomic::Ordering::Release);
        evicted.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Records an evicted key if asked to.
    pub(super) fn note_evicted(&self, key: Bytes) {
        let mut evicted = self.evicted.lock();
        if let Some(keys) = evicted.as_mut() {
            keys.push(key);
            self.has_evicted
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }

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
