//! The whole keyspace as a list of entries, for RDB snapshots (`SAVE`, `BGSAVE`), and
//! the count of changes that tells when one is due (Redis's `server.dirty`).
//!
//! A snapshot copies each shard's live entries under that shard's read lock and the
//! keyspace gate held shared (as a command holds it, so no `EXEC` or script runs while
//! a shard is copied), one shard at a time: writers, and an `EXEC` with the commands
//! queued behind it at the gate, wait at most for one shard's copy, and the copy is then
//! written out without any lock. Each shard is saved as it was at one instant; unlike
//! Redis's fork, which saves the whole keyspace at one instant, shards are copied one
//! after another, so a write (or a transaction) landing during the copy may be saved in
//! a later shard while an earlier write to an already copied shard is not.

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
        let now = self.now_ms();
        let mut out = Vec::with_capacity(self.len());
        for idx in 0..SHARDS {
            // Per shard, so an `EXEC` waiting for the gate (and the commands behind it)
            // waits for one shard's copy at most.
            let _gate = self.shared();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_holds_live_keys_and_changes_count_writes() {
        let clock = ManualClock::new(1_000);
        let ks = Keyspace::with_clock(KeyspaceConfig::default(), Clock::Manual(clock.clone()));
        let start = ks.changes();
        let opts = |expire| SetOptions {
            condition: SetCondition::Always,
            expire,
            return_old: false,
        };
        assert!(ks.set(b"a", b"1", opts(SetExpire::Clear)).is_ok());
        assert!(ks.set(b"b", b"2", opts(SetExpire::At(1_500))).is_ok());
        assert!(ks.set(b"c", b"3", opts(SetExpire::At(5_000))).is_ok());
        assert!(ks.changes() - start >= 3);
        clock.advance(1_000);
        let mut snap = ks.snapshot();
        snap.sort_by(|x, y| x.key.cmp(&y.key));
        let keys: Vec<(&[u8], Option<u64>)> =
            snap.iter().map(|e| (&e.key[..], e.expire_at)).collect();
        assert_eq!(keys, vec![(&b"a"[..], None), (&b"c"[..], Some(5_000))]);
        let before = ks.changes();
        ks.flush();
        assert!(ks.changes() > before, "a flush counts the keys it removed");
        for e in &snap {
            assert!(ks.load_entry(e).is_ok());
        }
        assert_eq!(ks.len(), 2);
        assert_eq!(ks.get(b"a").as_deref(), Some(&b"1"[..]));
    }
}
