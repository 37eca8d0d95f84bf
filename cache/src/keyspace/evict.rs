//! Eviction under `maxmemory` and active expiry.
//!
//! Eviction follows Redis's approximate LRU: before a write that may grow memory,
//! while the accounted memory exceeds `maxmemory`, sample [`EVICTION_SAMPLES`] random
//! keys (each from a random non-empty shard) and evict the one idle the longest.
//! `volatile-lru` samples only keys with a TTL; `allkeys-random` takes the first
//! sample. With `noeviction`, or when nothing can be evicted, the write is refused.
//!
//! Active expiry mirrors Redis's `activeExpireCycle`: walk the shards round-robin,
//! sample up to [`EXPIRE_SAMPLES`] keys of each shard's volatile list, delete the
//! expired ones, and repeat on the same shard while more than a quarter of the
//! sample had expired, all within a time budget.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;

use super::clock::lru_clock;
use super::shard::ShardData;
use super::{EvictionPolicy, Keyspace, WriteError, SHARDS, SHARD_MASK};

/// Keys sampled per eviction (Redis's `maxmemory-samples` default).
pub const EVICTION_SAMPLES: usize = 5;
/// Volatile keys sampled per shard per active-expiry round.
pub const EXPIRE_SAMPLES: usize = 20;

/// An eviction candidate: where it was and how to recognise it.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    shard: usize,
    slot: usize,
    hash: u64,
    idle: u32,
}

impl Keyspace {
    /// Deletes no expired key before `until_ms` (Unix ms; a later pause extends it):
    /// the active cycle skips its turns and reads see expired keys as missing without
    /// deleting them (`CLIENT PAUSE`). Writes still replace an expired key.
    pub fn pause_expiry(&self, until_ms: u64) {
        self.expiry_paused_until.fetch_max(until_ms, Relaxed);
    }

    /// Ends [`pause_expiry`](Self::pause_expiry) (`CLIENT UNPAUSE`).
    pub fn resume_expiry(&self) {
        self.expiry_paused_until.store(0, Relaxed);
    }

    /// Whether expiry is paused at `now` (Unix ms).
    pub(super) fn expiry_paused(&self, now: u64) -> bool {
        now < self.expiry_paused_until.load(Relaxed)
    }

    /// Redis's `performEvictions` before a command: evicts keys until memory is within
    /// `maxmemory`; `Err` (out of memory) when it cannot. What `MULTI` checks before
    /// queueing and `EXEC` before running a transaction that may grow memory.
    pub fn check_memory(&self) -> Result<(), WriteError> {
        self.make_room()
    }

    /// Evicts keys until memory is within `maxmemory`; fails when it cannot.
    pub(super) fn make_room(&self) -> Result<(), WriteError> {
        let max = self.maxmemory();
        if max == 0 {
            return Ok(());
        }
        let policy = self.policy();
        while self.used_bytes() > max {
            if policy == EvictionPolicy::NoEviction || !self.evict_one(policy) {
                return Err(WriteError::OutOfMemory);
            }
        }
        Ok(())
    }

    /// Evicts one key chosen by `policy`; false when there was nothing to evict.
    fn evict_one(&self, policy: EvictionPolicy) -> bool {
        let mut rng = rand::thread_rng();
        let lru_now = lru_clock(self.now_ms());
        let volatile = policy == EvictionPolicy::VolatileLru;
        let mut best: Option<Candidate> = None;
        for _ in 0..self.eviction_samples() {
            let Some(c) = self.sample(&mut rng, volatile, lru_now) else {
                break;
            };
            if policy == EvictionPolicy::AllKeysRandom {
                best = Some(c);
                break;
            }
            if best.is_none_or(|b| c.idle > b.idle) {
                best = Some(c);
            }
        }
        let Some(victim) = best else {
            return false;
        };
        let mut data = self.write(victim.shard);
        let same = data
            .entry(victim.slot)
            .is_some_and(|e| data.hash(e.key()) == victim.hash);
        if same {
            let key = data
                .entry(victim.slot)
                .map(|e| Bytes::copy_from_slice(e.key()));
            if data.evict_slot(victim.slot).is_some() {
                self.evictions.fetch_add(1, Relaxed);
                if let Some(key) = key {
                    self.note_evicted(key);
                }
            }
        }
        // A key moved by a concurrent writer just means another round.
        true
    }

    /// One random key from a random non-empty shard.
    fn sample(&self, rng: &mut impl Rng, volatile: bool, lru_now: u32) -> Option<Candidate> {
        let start = rng.gen_range(0..SHARDS);
        for step in 0..SHARDS {
            let idx = (start + step) & SHARD_MASK;
            let shard = self.shard(idx);
            let len = if volatile {
                shard.volatile_len.load(Relaxed)
            } else {
                shard.len.load(Relaxed)
            };
            if len == 0 {
                continue;
            }
            let data = shard.data.read();
            let n = if volatile {
                data.volatile.len()
            } else {
                data.len()
            };
            if n == 0 {
                continue;
            }
            let r = rng.gen_range(0..n);
            let slot = if volatile {
                data.volatile.get(r).map_or(r, |v| v.slot as usize)
            } else {
                r
            };
            if let Some(e) = data.entry(slot) {
                return Some(Candidate {
                    shard: idx,
                    slot,
                    hash: data.hash(e.key()),
                    idle: lru_now.wrapping_sub(e.lru()),
                });
            }
        }
        None
    }

    /// Deletes expired keys for at most about `budget`; returns how many it deleted.
    /// The server calls this about ten times a second.
    pub fn active_expire_cycle(&self, budget: Duration) -> usize {
        if self.expiry_paused(self.now_ms()) {
            return 0;
        }
        let _gate = self.shared();
        let started = Instant::now();
        let now = self.now_ms();
        let mut rng = rand::thread_rng();
        let mut total = 0;
        'shards: for _ in 0..SHARDS {
            let idx = self.expire_cursor.fetch_add(1, Relaxed) & SHARD_MASK;
            if self.shard(idx).volatile_len.load(Relaxed) == 0 {
                continue;
            }
            loop {
                let (found, sampled) = {
                    let mut data = self.write(idx);
                    expire_sample(&mut data, now, &mut rng)
                };
                total += found;
                if sampled == 0 || found * 4 <= sampled {
                    break;
                }
                if started.elapsed() >= budget {
                    break 'shards;
                }
            }
            if started.elapsed() >= budget {
                break;
            }
        }
        self.expired.fetch_add(total as u64, Relaxed);
        total
    }
}

/// Samples one shard's volatile keys, deleting the expired ones.
/// Returns (deleted, sampled).
fn expire_sample(data: &mut ShardData, now: u64, rng: &mut impl Rng) -> (usize, usize) {
    let n = data.volatile.len();
    let mut found = 0;
    if n <= EXPIRE_SAMPLES {
        // Small list: check all of it, from the end so removals never skip a record.
        for i in (0..n).rev() {
            if let Some(v) = data.volatile.get(i).copied() {
                if v.expire_at <= now && data.expire_slot(v.slot as usize).is_some() {
                    found += 1;
                }
            }
        }
        return (found, n);
    }
    for _ in 0..EXPIRE_SAMPLES {
        let len = data.volatile.len();
        if len == 0 {
            break;
        }
        if let Some(v) = data.volatile.get(rng.gen_range(0..len)).copied() {
            if v.expire_at <= now && data.expire_slot(v.slot as usize).is_some() {
                found += 1;
            }
        }
    }
    (found, EXPIRE_SAMPLES)
}
