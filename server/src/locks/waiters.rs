//! Clients blocked in `LOCK.ACQUIRE ... WAIT` / `LOCK.UPGRADE ... WAIT`.
//!
//! A blocked client registers `(resource, owner)` *before* its request is proposed,
//! so no grant can slip between the reply `Queued` and the registration. The state
//! machine's apply hook calls [`Waiters::granted`] for every grant it applies, on
//! every node — so a client blocked on a follower is woken by the follower's own
//! apply, and a wait survives a change of leader.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use conclave_commands::locks::{LockApplied, Name};
use conclave_raft_store::ApplyHook;
use parking_lot::Mutex;
use tokio::sync::oneshot;

type Key = (Name, Name);
/// The clients blocked on one key: registration id and the channel that wakes it.
type Blocked = Vec<(u64, oneshot::Sender<u64>)>;

/// The registry of blocked clients.
#[derive(Debug, Default)]
pub struct Waiters {
    map: Mutex<HashMap<Key, Blocked>>,
    next: AtomicU64,
}

/// A registration; removes itself when dropped.
#[derive(Debug)]
pub struct Registration {
    waiters: Arc<Waiters>,
    key: Key,
    id: u64,
    /// Receives the fencing token of the grant.
    pub granted: oneshot::Receiver<u64>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut map = self.waiters.map.lock();
        if let Some(list) = map.get_mut(&self.key) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                map.remove(&self.key);
            }
        }
    }
}

impl Waiters {
    /// Registers interest in the next grant of `resource` to `owner`.
    pub fn register(self: &Arc<Self>, resource: &[u8], owner: &[u8]) -> Registration {
        let (tx, rx) = oneshot::channel();
        let id = self.next.fetch_add(1, Relaxed);
        let key = (resource.to_vec(), owner.to_vec());
        self.map
            .lock()
            .entry(key.clone())
            .or_default()
            .push((id, tx));
        Registration {
            waiters: self.clone(),
            key,
            id,
            granted: rx,
        }
    }

    /// Wakes everyone waiting for the grants in `applied`.
    pub fn granted(&self, applied: &LockApplied) {
        if applied.grants.is_empty() {
            return;
        }
        let mut map = self.map.lock();
        for g in &applied.grants {
            if let Some(list) = map.remove(&(g.resource.clone(), g.owner.clone())) {
                for (_, tx) in list {
                    let _ = tx.send(g.token);
                }
            }
        }
    }

    /// Number of blocked clients.
    pub fn len(&self) -> usize {
        self.map.lock().values().map(Vec::len).sum()
    }

    /// The apply hook to give the state machine.
    pub fn hook(self: &Arc<Self>) -> ApplyHook {
        let me = self.clone();
        Arc::new(move |_index, applied| me.granted(applied))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_commands::locks::{Grant, LockMode, LockReply};

    #[test]
    fn grant_wakes_registered_waiter_and_drop_unregisters() {
        let w = Arc::new(Waiters::default());
        let mut r = w.register(b"r", b"a");
        let other = w.register(b"r", b"b");
        assert_eq!(w.len(), 2);
        drop(other);
        assert_eq!(w.len(), 1);
        w.granted(&LockApplied {
            reply: LockReply::Housekeeping { touched: 1 },
            grants: vec![Grant {
                resource: b"r".to_vec(),
                owner: b"a".to_vec(),
                mode: LockMode::Exclusive,
                token: 7,
            }],
        });
        assert_eq!(r.granted.try_recv().ok(), Some(7));
        assert_eq!(w.len(), 0);
    }
}
