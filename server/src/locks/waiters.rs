//! Clients blocked in `LOCK.ACQUIRE ... WAIT` / `LOCK.UPGRADE ... WAIT`.
//!
//! A blocked client registers its *request id* ([`RequestId`]) *before* its request is
//! proposed, so no grant can slip between the reply `Queued` and the registration. The
//! state machine's apply hook calls [`Waiters::granted`] for every grant it applies, on
//! every node — so a client blocked on a follower is woken by the follower's own apply,
//! and a wait survives a change of leader.
//!
//! Matching on the request id, not on `(resource, owner)`, is what keeps a node that is
//! behind the leader (restarted and replaying its log, or slow) from answering a client
//! with an *older* grant to the same owner: applications reuse owner names, so the next
//! grant to that owner a lagging node applies may predate the request. A grant carries
//! the id of the request it answers, and only that request's client is woken by it.

use std::collections::HashMap;
use std::sync::Arc;

use conclave_commands::locks::{LockApplied, RequestId};
use conclave_raft_store::ApplyHook;
use parking_lot::Mutex;
use tokio::sync::oneshot;

/// The registry of blocked clients, by request id.
#[derive(Debug, Default)]
pub struct Waiters {
    map: Mutex<HashMap<RequestId, oneshot::Sender<u64>>>,
}

/// A registration; removes itself when dropped.
#[derive(Debug)]
pub struct Registration {
    waiters: Arc<Waiters>,
    rid: RequestId,
    /// Receives the fencing token of the grant of this request.
    pub granted: oneshot::Receiver<u64>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.waiters.map.lock().remove(&self.rid);
    }
}

impl Waiters {
    /// Registers interest in the grant of request `rid` (ids are unique: chosen at
    /// random by this node for each client request).
    pub fn register(self: &Arc<Self>, rid: RequestId) -> Registration {
        let (tx, rx) = oneshot::channel();
        self.map.lock().insert(rid, tx);
        Registration {
            waiters: self.clone(),
            rid,
            granted: rx,
        }
    }

    /// Wakes the clients whose requests `applied` granted.
    pub fn granted(&self, applied: &LockApplied) {
        if applied.grants.is_empty() {
            return;
        }
        let mut map = self.map.lock();
        for g in applied.grants.iter().filter(|g| g.rid != 0) {
            if let Some(tx) = map.remove(&g.rid) {
                let _ = tx.send(g.token);
            }
        }
    }

    /// Number of blocked clients.
    pub fn len(&self) -> usize {
        self.map.lock().len()
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

    fn grant(owner: &[u8], token: u64, rid: RequestId) -> LockApplied {
        LockApplied {
            reply: LockReply::Housekeeping { touched: 1 },
            grants: vec![Grant {
                resource: b"r".to_vec(),
                owner: owner.to_vec(),
                mode: LockMode::Exclusive,
                token,
                rid,
            }],
        }
    }

    #[test]
    fn only_the_grant_of_the_request_wakes_it_and_drop_unregisters() {
        let w = Arc::new(Waiters::default());
        let mut r = w.register(7);
        let other = w.register(8);
        assert_eq!(w.len(), 2);
        drop(other);
        assert_eq!(w.len(), 1);
        // An older grant to the same owner (another request, or none) wakes nobody.
        w.granted(&grant(b"a", 5, 6));
        w.granted(&grant(b"a", 6, 0));
        assert!(r.granted.try_recv().is_err());
        w.granted(&grant(b"a", 9, 7));
        assert_eq!(r.granted.try_recv().ok(), Some(9));
        assert_eq!(w.len(), 0);
    }
}
