//! Operations over the whole keyspace: `FLUSHALL`, `KEYS`, `SCAN`.

use bytes::Bytes;

use super::*;

impl Keyspace {
    /// Removes every key (and the client-side caching table; the invalidator is
    /// told once).
    pub fn flush(&self) {
        for idx in 0..SHARDS {
            let mut data = self.write(idx);
            let fresh = data.empty_like();
            *data = fresh;
        }
        self.flushed();
    }

    /// After a flush: the tracking table is gone; tell the invalidator.
    fn flushed(&self) {
        self.hub.cleared();
        if let Some(sink) = self.hub.sink() {
            sink.flushed();
        }
    }

    /// Removes every key at once, freeing the memory on a background thread.
    pub fn flush_async(&self) {
        let mut old = Vec::with_capacity(SHARDS);
        for idx in 0..SHARDS {
            let mut data = self.write(idx);
            let fresh = data.empty_like();
            old.push(std::mem::replace(&mut *data, fresh));
        }
        self.flushed();
        let spawned = std::thread::Builder::new()
            .name("keyspace-free".into())
            .spawn(move || drop(old));
        if let Err(e) = spawned {
            tracing::warn!("could not free flushed keys in the background: {e}");
        }
    }

    // ----- whole-keyspace primitives -----

    /// Every live key matching `pattern` (`KEYS`).
    pub fn keys(&self, pattern: &[u8]) -> Vec<Bytes> {
        let now = self.now_ms();
        let all = pattern == b"*";
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let data = shard.data.read();
            for (slot, e) in data.entries.iter().enumerate() {
                if !data.is_expired(slot, now) && (all || glob_match(pattern, e.key())) {
                    out.push(Bytes::copy_from_slice(e.key()));
                }
            }
        }
        out
    }

    /// One step of `SCAN`: visits about `count` positions from `cursor` and returns
    /// the next cursor (0 when done) and the live keys seen that match `pattern`.
    ///
    /// The cursor holds the shard in its low 8 bits and, above, how many positions of
    /// that shard are still to visit (0 = start the shard afresh). Each shard is walked
    /// from its end toward position 0; removal moves the last entry down into the hole,
    /// so an entry present for the whole scan can only move toward positions still to
    /// visit and is never skipped (it may be returned twice, as Redis allows).
    pub fn scan(&self, cursor: u64, count: usize, pattern: Option<&[u8]>) -> (u64, Vec<Bytes>) {
        let now = self.now_ms();
        let count = count.max(1);
        let mut shard_idx = (cursor as usize) & SHARD_MASK;
        let mut next = (cursor >> 8) as usize;
        let mut visited = 0usize;
        let mut out = Vec::new();
        while shard_idx < SHARDS {
            let shard = self.shard(shard_idx);
            if next == 0 && shard.len.load(Relaxed) == 0 {
                // Empty shards cost nothing, so an empty keyspace scans in one call.
                shard_idx += 1;
                continue;
            }
            let data = shard.data.read();
            let mut pos = if next == 0 {
                data.len()
            } else {
                next.min(data.len())
            };
            while pos > 0 && visited < count {
                pos -= 1;
                visited += 1;
                if let Some(e) = data.entry(pos) {
                    if !data.is_expired(pos, now) && pattern.is_none_or(|p| glob_match(p, e.key()))
                    {
                        out.push(Bytes::copy_from_slice(e.key()));
                    }
                }
            }
            drop(data);
            if pos > 0 {
                return (((pos as u64) << 8) | shard_idx as u64, out);
            }
            shard_idx += 1;
            next = 0;
            if visited >= count {
                break;
            }
        }
        if shard_idx >= SHARDS {
            (0, out)
        } else {
            (shard_idx as u64, out)
        }
    }
}

impl Keyspace {
    /// An estimate of the average time to live of the keys with a TTL, ms (`avg_ttl` of
    /// `INFO keyspace`; Redis estimates it by sampling too): up to 16 deadlines of each
    /// shard. 0 when no key has a TTL.
    pub fn avg_ttl_ms(&self) -> u64 {
        let now = self.now_ms();
        let (mut sum, mut n) = (0u128, 0u128);
        for idx in 0..SHARDS {
            let data = self.shard(idx).data.read();
            for v in data.volatile.iter().take(16) {
                if v.expire_at > now {
                    sum += u128::from(v.expire_at - now);
                    n += 1;
                }
            }
        }
        sum.checked_div(n)
            .map_or(0, |avg| u64::try_from(avg).unwrap_or(u64::MAX))
    }
}
