//! The command being run on this thread, for client-side caching (Redis's
//! `server.current_client`): whose writes `NOLOOP` hides, and where the `BCAST`
//! changes of one command are gathered so they leave as one message per prefix.
//!
//! A keyspace command runs synchronously on one thread from start to reply, and the
//! keyspace reports its changes on that same thread, so a thread-local scope around
//! the command's synchronous part is exact. Changes made outside any scope (the active
//! expiry cycle) are broadcast at once.

use std::cell::RefCell;
use std::collections::BTreeMap;

use bytes::Bytes;

use super::Tracker;

struct State {
    client: u64,
    /// Changed keys for `BCAST`, each with the client whose command changed it.
    bcast: BTreeMap<Bytes, Option<u64>>,
}

thread_local! {
    static SCOPE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Marks the synchronous part of one client's command; on drop, broadcasts what it
/// changed. Nested scopes (a command inside `EXEC`) join the outer one.
#[must_use = "the scope ends when dropped"]
pub struct Scope<'a> {
    tracker: &'a Tracker,
    owner: bool,
}

impl<'a> Scope<'a> {
    /// Enters a command of client `client`.
    pub fn enter(tracker: &'a Tracker, client: u64) -> Scope<'a> {
        let owner = SCOPE.with(|s| {
            let mut s = s.borrow_mut();
            if s.is_some() {
                return false;
            }
            *s = Some(State {
                client,
                bcast: BTreeMap::new(),
            });
            true
        });
        Scope { tracker, owner }
    }
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        let state = SCOPE.with(|s| s.borrow_mut().take());
        if let Some(state) = state {
            if !state.bcast.is_empty() {
                self.tracker.broadcast(&state.bcast);
            }
        }
    }
}

/// The client whose command runs on this thread.
pub(super) fn current_client() -> Option<u64> {
    SCOPE.with(|s| s.borrow().as_ref().map(|st| st.client))
}

/// Gathers a changed key for the scope's broadcast; false outside a scope.
pub(super) fn defer_broadcast(key: &[u8], writer: Option<u64>) -> bool {
    SCOPE.with(|s| match s.borrow_mut().as_mut() {
        Some(st) => {
            st.bcast.insert(Bytes::copy_from_slice(key), writer);
            true
        }
        None => false,
    })
}
