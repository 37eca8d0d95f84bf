//! What `MULTI`/`EXEC`/`WATCH` need from the keyspace: watched keys that learn of every
//! change, and a gate that lets one `EXEC` run with no other command in between.
//!
//! **Watches.** A connection's `WATCH` registers its [`WatchFlag`] under each key in
//! the key's shard. Every change to a key — a write, a TTL set or cleared, a deletion,
//! an expiry or an eviction, `FLUSHALL` of a key that existed — happens under the
//! shard's write lock through a few shard methods, and those mark the flags watching
//! that key (Redis's `touchWatchedKey` / `signalModifiedKey`). A shard without watches
//! pays one `Option` test.
//!
//! **Gate.** Commands run on many threads at once, each under its shards' locks; an
//! `EXEC` must see no other command between its own. Every keyspace command holds the
//! gate shared ([`Keyspace::shared`]); `EXEC` holds it exclusive. The gate is a "big
//! reader" lock: readers lock one of several cache-line-padded slots (picked per
//! thread), the writer locks them all, so readers on different threads never share a
//! cache line.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Set when a key the owner watches changes; the owner's `EXEC` then aborts.
pub type WatchFlag = Arc<AtomicBool>;

/// The watches of one shard: key → the flags of the connections watching it.
#[derive(Debug, Default)]
pub(crate) struct WatchTable {
    by_key: HashMap<Box<[u8]>, Vec<WatchFlag>>,
}

impl WatchTable {
    /// Adds `flag` under `key` (once).
    pub(crate) fn add(&mut self, key: &[u8], flag: &WatchFlag) {
        let flags = self.by_key.entry(key.into()).or_default();
        if !flags.iter().any(|f| Arc::ptr_eq(f, flag)) {
            flags.push(flag.clone());
        }
    }

    /// Removes `flag` from under `key`; whether the table is now empty.
    pub(crate) fn remove(&mut self, key: &[u8], flag: &WatchFlag) -> bool {
        if let Some(flags) = self.by_key.get_mut(key) {
            flags.retain(|f| !Arc::ptr_eq(f, flag));
            if flags.is_empty() {
                self.by_key.remove(key);
            }
        }
        self.by_key.is_empty()
    }

    /// Marks every flag watching `key`.
    pub(crate) fn touch(&self, key: &[u8]) {
        if let Some(flags) = self.by_key.get(key) {
            for f in flags {
                f.store(true, Relaxed);
            }
        }
    }

    /// The watched keys.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.by_key.keys().map(|k| &k[..])
    }
}

/// Reader slots of the gate.
const GATE_SLOTS: usize = 16;

/// One reader slot, alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Slot(RwLock<()>);

/// The transaction gate (see the module docs).
#[derive(Debug)]
pub(crate) struct Gate {
    slots: Box<[Slot]>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            slots: (0..GATE_SLOTS).map(|_| Slot::default()).collect(),
        }
    }
}

/// Held while a command runs against the keyspace.
#[must_use = "the gate is held only while the guard lives"]
pub struct SharedGate<'a> {
    _guard: RwLockReadGuard<'a, ()>,
}

/// Held while an `EXEC` runs: no other keyspace command runs meanwhile.
#[must_use = "the gate is held only while the guard lives"]
pub struct ExclusiveGate<'a> {
    _guards: Vec<RwLockWriteGuard<'a, ()>>,
}

impl std::fmt::Debug for SharedGate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedGate")
    }
}

impl std::fmt::Debug for ExclusiveGate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExclusiveGate")
    }
}

thread_local! {
    /// This thread's reader slot.
    static SLOT: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Relaxed) % GATE_SLOTS
    };
}

impl Gate {
    /// Enters as one of many concurrent commands.
    pub(crate) fn shared(&self) -> SharedGate<'_> {
        let i = SLOT.with(|s| *s);
        // `slots` has GATE_SLOTS elements and `i` is reduced modulo that.
        let slot = &self.slots[i % self.slots.len()];
        SharedGate {
            _guard: slot.0.read(),
        }
    }

    /// Enters as one of many concurrent commands unless a writer holds or waits for
    /// this thread's slot.
    pub(crate) fn try_shared(&self) -> Option<SharedGate<'_>> {
        let i = SLOT.with(|s| *s);
        let slot = &self.slots[i % self.slots.len()];
        slot.0.try_read().map(|guard| SharedGate { _guard: guard })
    }

    /// Enters alone (every slot, in order: two writers never deadlock).
    pub(crate) fn exclusive(&self) -> ExclusiveGate<'_> {
        ExclusiveGate {
            _guards: self.slots.iter().map(|s| s.0.write()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_marks_only_the_watchers_of_the_key() {
        let mut t = WatchTable::default();
        let a: WatchFlag = Arc::default();
        let b: WatchFlag = Arc::default();
        t.add(b"k", &a);
        t.add(b"k", &a);
        t.add(b"other", &b);
        t.touch(b"k");
        assert!(a.load(Relaxed));
        assert!(!b.load(Relaxed));
        assert!(!t.remove(b"k", &a));
        assert!(t.remove(b"other", &b));
    }

    #[test]
    fn exclusive_waits_for_shared_holders() {
        let gate = Arc::new(Gate::default());
        let held = gate.shared();
        let (tx, rx) = std::sync::mpsc::channel();
        let g = gate.clone();
        let t = std::thread::spawn(move || {
            let _x = g.exclusive();
            let _ = tx.send(());
        });
        // The writer cannot enter while this thread's shared guard lives.
        assert!(rx.try_recv().is_err());
        drop(held);
        assert!(rx.recv().is_ok());
        t.join().unwrap();
    }

    #[test]
    fn try_shared_fails_only_while_exclusive_is_held() {
        let gate = Gate::default();
        let a = gate.try_shared();
        let b = gate.try_shared();
        assert!(a.is_some() && b.is_some());
        drop((a, b));
        let alone = gate.exclusive();
        assert!(gate.try_shared().is_none());
        drop(alone);
        assert!(gate.try_shared().is_some());
    }
}
