//! The whole keyspace as a list of entries, for RDB snapshots (`SAVE`, `BGSAVE`), and
//! the count of changes that tells when one is due (Redis's `server.dirty`).
//!
//! A snapshot holds the keyspace gate shared, as a command does, so no `EXEC` or script
//! (they hold it exclusive) is half-way through, and copies each shard's live entries
//! under that shard's read lock, one shard at a time: writers wait at most for one shard's copy, and the copy is then written
//! out without any lock. Each shard is saved as it was at one instant; unlike Redis's
//! fork, which saves the whole keyspace at one instant, shards are copied one after
//! another, so a write landing during the copy may be saved in a later shard while an
//! earlier write to an already copied shard is not.

use bytes::Bytes;

use super::*;

/// One key as a snapshot holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotEntry {
    /// The key.
    pub key: Bytes,
    /// Its value.
    pub value: Bytes,
    /// Its deadline, Unix ms, if it has one.
    pub expire_at: Option<u64>,
}

impl Keyspace {
    /// Every live key with its value and deadline (expired keys left out).
    pub fn snapshot(&self) -> Vec<SnapshotEntry> {
        // Shared, as any command holds it: no transaction or script is half-way through.
        let _gate = self.shared();
        let now = self.now_ms();
        let mut out = Vec::with_capacity(self.len());
        for idx in 0..SHARDS {
            let data = self.shard(idx).data.read();
            for (slot, e) in data.entries.iter().enumerate() {
                let expire_at = data.expire_at(slot);
                if expire_at.is_some_and(|at| at <= now) {
                    continue;
                }
                out.push(SnapshotEntry {
                    key: Bytes::copy_from_slice(e.key()),
                    value: Bytes::copy_from_slice(e.value()),
                    expire_at,
                });
            }
        }
        out
    }

    /// Changes made to keys since the keyspace was created: each write, deletion,
    /// expiry and eviction of a key counts one (a `SET ... EX` counts two, value and
    /// deadline; a flush counts the keys it removed). Compare two readings.
    pub fn changes(&self) -> u64 {
        (0..SHARDS)
            .map(|idx| self.shard(idx).data.read().changes)
            .sum()
    }

    /// Stores a key read from a snapshot, replacing any old one; a deadline already
    /// past stores nothing. Counts as a change like any write.
    pub fn load_entry(&self, entry: &SnapshotEntry) -> Result<(), WriteError> {
        let opts = SetOptions {
            condition: SetCondition::Always,
            expire: entry.expire_at.map_or(SetExpire::Clear, SetExpire::At),
            return_old: false,
        };
        self.set(&entry.key, &entry.value, opts).map(|_| ())
    }
}
