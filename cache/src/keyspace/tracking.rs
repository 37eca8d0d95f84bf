//! The keyspace's half of server-assisted client-side caching (Redis's `tracking.c`,
//! <https://redis.io/docs/latest/develop/reference/client-side-caching/>).
//!
//! **Tracking table.** In the default mode the server remembers which keys each tracking
//! client read: [`Keyspace::track`] records `key → client id` in the key's shard. Every
//! change of a key — a write, a TTL set or cleared, a deletion, an expiry, an eviction —
//! happens under the shard's write lock through a few shard methods (the ones that tell
//! `WATCH`ers, see `watch.rs`); they take the key's entry out of the table and hand its
//! ids to the [`Invalidator`], so each client hears of a key once until it reads it
//! again (Redis's `trackingInvalidateKey`). A key nobody tracks costs one `Option` test.
//!
//! **Broadcasting.** While some client uses `BCAST`, the server turns on
//! [`Keyspace::report_every_change`]: every change is reported, tracked or not, and the
//! server matches it against the clients' prefixes.
//!
//! **Flush.** `FLUSHALL`/`FLUSHDB` drop the whole table and call
//! [`Invalidator::flushed`] once (Redis sends every tracking client a null).
//!
//! **Limit.** At most `tracking-table-max-keys` keys are remembered (Redis's default
//! 1,000,000; 0 = no limit); past it, keys are forgotten in arbitrary order and their
//! clients told, as if the keys had changed ([`Cause::TableFull`]).
//!
//! The [`Invalidator`] runs under a shard's write lock: it must not block nor touch the
//! keyspace.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use super::{Keyspace, SHARDS, SHARD_MASK};

/// Why a key is reported to the [`Invalidator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A command wrote, deleted or re-timed it.
    Write,
    /// It expired (lazily or in the active cycle).
    Expired,
    /// `maxmemory` evicted it.
    Evicted,
    /// The tracking table was full: the key did not change, its clients are told the
    /// server no longer tracks it for them (never broadcast).
    TableFull,
}

/// Receives the keyspace's invalidations (the server routes them to connections).
pub trait Invalidator: Send + Sync + std::fmt::Debug {
    /// `key` changed (or was dropped from the table, see [`Cause`]); `clients` are the
    /// ids that tracked it, already forgotten by the table (empty when only
    /// [`Keyspace::report_every_change`] makes the call). Runs under the key's shard
    /// write lock.
    fn invalidate(&self, key: &[u8], clients: &[u64], cause: Cause);

    /// Every key was removed (`FLUSHALL`, `FLUSHDB`); the table is empty.
    fn flushed(&self);
}

/// Redis's default `tracking-table-max-keys`.
pub const DEFAULT_TRACKING_MAX_KEYS: u64 = 1_000_000;

/// What every shard shares: the invalidator, the broadcast switch and the counters.
#[derive(Debug)]
pub(crate) struct Hub {
    sink: OnceLock<Arc<dyn Invalidator>>,
    every_change: AtomicBool,
    /// Keys in the table (`tracking_total_keys`).
    keys: AtomicU64,
    /// (key, client) pairs in the table (`tracking_total_items`).
    items: AtomicU64,
    max_keys: AtomicU64,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            sink: OnceLock::new(),
            every_change: AtomicBool::new(false),
            keys: AtomicU64::new(0),
            items: AtomicU64::new(0),
            max_keys: AtomicU64::new(DEFAULT_TRACKING_MAX_KEYS),
        }
    }
}

impl Hub {
    /// Reports a change of `key` whose tracking entry (if any) was just taken out.
    #[inline]
    pub(crate) fn report(&self, key: &[u8], ids: Option<Vec<u64>>, cause: Cause) {
        let broadcast = cause != Cause::TableFull && self.every_change.load(Relaxed);
        if ids.is_none() && !broadcast {
            return;
        }
        if let Some(ids) = &ids {
            self.keys.fetch_sub(1, Relaxed);
            self.items.fetch_sub(ids.len() as u64, Relaxed);
        }
        if let Some(sink) = self.sink.get() {
            sink.invalidate(key, ids.as_deref().unwrap_or(&[]), cause);
        }
    }

    /// The installed invalidator.
    pub(crate) fn sink(&self) -> Option<&Arc<dyn Invalidator>> {
        self.sink.get()
    }

    /// The table was dropped whole (flush).
    pub(crate) fn cleared(&self) {
        self.keys.store(0, Relaxed);
        self.items.store(0, Relaxed);
    }
}

/// One shard's tracking table: key → the ids of the clients that may cache it.
#[derive(Debug, Default)]
pub(crate) struct TrackingTable {
    by_key: HashMap<Box<[u8]>, Vec<u64>>,
}

impl TrackingTable {
    /// Adds `client` under `key`; returns (new key, new pair).
    fn add(&mut self, key: &[u8], client: u64) -> (bool, bool) {
        match self.by_key.get_mut(key) {
            Some(ids) if ids.contains(&client) => (false, false),
            Some(ids) => {
                ids.push(client);
                (false, true)
            }
            None => {
                self.by_key.insert(key.into(), vec![client]);
                (true, true)
            }
        }
    }

    /// Takes `key`'s clients out of the table.
    #[inline]
    pub(crate) fn take(&mut self, key: &[u8]) -> Option<Vec<u64>> {
        self.by_key.remove(key)
    }

    /// Takes some key other than `keep` out of the table.
    fn take_any_but(&mut self, keep: &[u8]) -> Option<(Box<[u8]>, Vec<u64>)> {
        let key = self.by_key.keys().find(|k| &k[..] != keep)?.clone();
        self.by_key.remove_entry(&key)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// Counters of the tracking table (`INFO stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackingStats {
    /// Keys remembered (`tracking_total_keys`).
    pub keys: u64,
    /// (key, client) pairs remembered (`tracking_total_items`).
    pub items: u64,
}

impl Keyspace {
    /// Installs the receiver of invalidations (once; later calls are ignored).
    pub fn set_invalidator(&self, sink: Arc<dyn Invalidator>) {
        let _ = self.hub.sink.set(sink);
    }

    /// Reports every change to the invalidator, tracked or not (while some client
    /// tracks in `BCAST` mode).
    pub fn report_every_change(&self, on: bool) {
        self.hub.every_change.store(on, Relaxed);
    }

    /// Remembers that `client` may cache `key` (present or not): its next change is
    /// reported with `client` among the ids. Past `tracking-table-max-keys` other
    /// keys are forgotten ([`Cause::TableFull`]).
    pub fn track(&self, key: &[u8], client: u64) {
        let hash = self.hash(key);
        let (new_key, new_item) = {
            let mut data = self.write(Self::shard_index(hash));
            data.tracked
                .get_or_insert_with(Default::default)
                .add(key, client)
        };
        if new_item {
            self.hub.items.fetch_add(1, Relaxed);
        }
        if new_key {
            let keys = self.hub.keys.fetch_add(1, Relaxed) + 1;
            let max = self.hub.max_keys.load(Relaxed);
            if max > 0 && keys > max {
                self.shrink_tracking(key, max);
            }
        }
    }

    /// `tracking-table-max-keys` (0 = unbounded); a lower limit applies at once.
    pub fn set_tracking_max_keys(&self, max: u64) {
        self.hub.max_keys.store(max, Relaxed);
        if max > 0 && self.hub.keys.load(Relaxed) > max {
            self.shrink_tracking(&[], max);
        }
    }

    /// `tracking-table-max-keys`.
    pub fn tracking_max_keys(&self) -> u64 {
        self.hub.max_keys.load(Relaxed)
    }

    /// The tracking table's counters.
    pub fn tracking_stats(&self) -> TrackingStats {
        TrackingStats {
            keys: self.hub.keys.load(Relaxed),
            items: self.hub.items.load(Relaxed),
        }
    }

    /// Forgets keys (never `keep`, the one just added) until at most `max` remain,
    /// starting from a random shard; their clients are told.
    fn shrink_tracking(&self, keep: &[u8], max: u64) {
        let start = rand::random::<usize>();
        for step in 0..SHARDS {
            if self.hub.keys.load(Relaxed) <= max {
                return;
            }
            let mut data = self.write((start + step) & SHARD_MASK);
            while self.hub.keys.load(Relaxed) > max {
                let Some(table) = data.tracked.as_mut() else {
                    break;
                };
                let Some((key, ids)) = table.take_any_but(keep) else {
                    break;
                };
                if table.is_empty() {
                    data.tracked = None;
                }
                self.hub.report(&key, Some(ids), Cause::TableFull);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Clock, KeyspaceConfig, ManualClock, SetOptions};
    use super::*;
    use parking_lot::Mutex;

    /// One report: key, clients, cause.
    type Call = (Vec<u8>, Vec<u64>, Cause);

    /// Records what the keyspace reports.
    #[derive(Debug, Default)]
    struct Recorder {
        calls: Mutex<Vec<Call>>,
        flushes: Mutex<usize>,
    }

    impl Invalidator for Recorder {
        fn invalidate(&self, key: &[u8], clients: &[u64], cause: Cause) {
            self.calls
                .lock()
                .push((key.to_vec(), clients.to_vec(), cause));
        }
        fn flushed(&self) {
            *self.flushes.lock() += 1;
        }
    }

    fn keyspace() -> (Keyspace, ManualClock, Arc<Recorder>) {
        let clock = ManualClock::new(1_700_000_000_000);
        let ks = Keyspace::with_clock(KeyspaceConfig::default(), Clock::Manual(clock.clone()));
        let rec = Arc::new(Recorder::default());
        ks.set_invalidator(rec.clone());
        (ks, clock, rec)
    }

    fn take(rec: &Recorder) -> Vec<Call> {
        std::mem::take(&mut *rec.calls.lock())
    }

    #[test]
    fn a_tracked_key_is_reported_once_per_read() {
        let (ks, _, rec) = keyspace();
        ks.set(b"k", b"1", SetOptions::default()).unwrap();
        assert!(take(&rec).is_empty(), "nobody tracks k yet");
        ks.track(b"k", 7);
        ks.track(b"k", 8);
        ks.track(b"k", 7);
        ks.track(b"missing", 7);
        assert_eq!(ks.tracking_stats(), TrackingStats { keys: 2, items: 3 });
        ks.set(b"k", b"2", SetOptions::default()).unwrap();
        ks.set(b"k", b"3", SetOptions::default()).unwrap();
        assert_eq!(take(&rec), vec![(b"k".to_vec(), vec![7, 8], Cause::Write)]);
        // A missing key that appears is a change too.
        ks.set(b"missing", b"x", SetOptions::default()).unwrap();
        assert_eq!(
            take(&rec),
            vec![(b"missing".to_vec(), vec![7], Cause::Write)]
        );
        assert_eq!(ks.tracking_stats(), TrackingStats::default());
    }

    #[test]
    fn expiry_eviction_and_deletion_are_reported_with_their_cause() {
        let (ks, clock, rec) = keyspace();
        ks.set(b"e", b"1", SetOptions::default()).unwrap();
        assert!(ks.expire(b"e", 1_700_000_000_100, Default::default()));
        ks.track(b"e", 1);
        clock.advance(200);
        assert_eq!(ks.get(b"e"), None);
        assert_eq!(take(&rec), vec![(b"e".to_vec(), vec![1], Cause::Expired)]);
        ks.set(b"d", b"1", SetOptions::default()).unwrap();
        ks.track(b"d", 2);
        assert!(ks.remove(b"d"));
        assert_eq!(take(&rec), vec![(b"d".to_vec(), vec![2], Cause::Write)]);
    }

    #[test]
    fn every_change_is_reported_while_broadcasting_and_flush_is_one_call() {
        let (ks, _, rec) = keyspace();
        ks.report_every_change(true);
        ks.set(b"a", b"1", SetOptions::default()).unwrap();
        assert_eq!(take(&rec), vec![(b"a".to_vec(), vec![], Cause::Write)]);
        ks.report_every_change(false);
        ks.track(b"a", 3);
        ks.flush();
        assert!(take(&rec).is_empty());
        assert_eq!(*rec.flushes.lock(), 1);
        assert_eq!(ks.tracking_stats(), TrackingStats::default());
        // The table was dropped with the keys: a later write reports nothing.
        ks.set(b"a", b"2", SetOptions::default()).unwrap();
        assert!(take(&rec).is_empty());
    }

    #[test]
    fn the_table_is_bounded() {
        let (ks, _, rec) = keyspace();
        ks.set_tracking_max_keys(2);
        for k in [b"k1", b"k2", b"k3"] {
            ks.track(k, 1);
        }
        assert_eq!(ks.tracking_stats().keys, 2);
        let calls = take(&rec);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].2, Cause::TableFull);
        assert_ne!(calls[0].0, b"k3".to_vec(), "the key just read stays");
        ks.set_tracking_max_keys(1);
        assert_eq!(ks.tracking_stats().keys, 1);
        assert_eq!(take(&rec).len(), 1);
    }

    #[test]
    fn add_and_take() {
        let mut t = TrackingTable::default();
        assert_eq!(t.add(b"k", 1), (true, true));
        assert_eq!(t.add(b"k", 1), (false, false));
        assert_eq!(t.add(b"k", 2), (false, true));
        assert_eq!(t.add(b"j", 2), (true, true));
        assert_eq!(t.take(b"k"), Some(vec![1, 2]));
        assert_eq!(t.take(b"k"), None);
        assert!(t.take_any_but(b"j").is_none());
        assert_eq!(
            t.take_any_but(b"x").map(|(k, _)| k.to_vec()),
            Some(b"j".to_vec())
        );
        assert!(t.is_empty());
    }
}
