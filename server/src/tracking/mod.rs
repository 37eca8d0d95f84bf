//! Server-assisted client-side caching: `CLIENT TRACKING` with Redis 7's semantics
//! (<https://redis.io/docs/latest/develop/reference/client-side-caching/>, `tracking.c`).
//!
//! - **Default mode.** Before and after a read-only command of a tracking client the
//!   server records its keys in the keyspace's tracking table (`key → client ids`, see
//!   `conclave_cache::keyspace`). Recording before *and* after closes the race of a
//!   multi-threaded server: a write that lands between the read and the record could
//!   otherwise leave the client caching a value nobody will invalidate; a write before
//!   the read only costs a spurious invalidation. The next change of such a key —
//!   write, deletion, expiry, eviction — sends each recorded client one invalidation
//!   and forgets the key for them. `OPTIN` records only after `CLIENT CACHING YES`,
//!   `OPTOUT` skips after `CLIENT CACHING NO` (each for the next command, or the next
//!   `MULTI` ... `EXEC`).
//! - **BCAST.** Nothing is recorded; every change of a key matching one of the client's
//!   prefixes (`""` matches all) is sent, the keys changed by one command batched in one
//!   message per prefix ([`Scope`]), as Redis batches one event-loop turn.
//! - **NOLOOP.** No invalidation for keys the client's own commands wrote (an expiry, an
//!   eviction or a full tracking table is never the client's own write).
//! - **Delivery** ([`crate::push`]): RESP3 clients get `>2 invalidate [keys]` on their
//!   own connection; with `REDIRECT id` the target gets it — as a RESP3 push, or, in
//!   RESP2, as a `message` on `__redis__:invalidate` when it is in pub/sub mode. A gone
//!   target marks the redirect broken (`CLIENT TRACKINGINFO`'s `broken_redirect`, the
//!   `R` flag) and a RESP3 tracking client is sent `tracking-redir-broken <id>`.
//! - **Flush.** `FLUSHALL`/`FLUSHDB` send every tracking client one invalidation whose
//!   key array is a null, and drop the whole table.
//!
//! Invalidations of a client's own command reach it after that command's reply: they
//! are queued while it runs and the connection writes its reply first.

mod bcast;
pub mod client_cmds;
mod scope;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use conclave_cache::keyspace::{Cause, Invalidator, Keyspace};
use conclave_protocol::CommandSpec;
use parking_lot::RwLock;

use crate::clients::{ClientHandle, Clients};
use crate::connection::Session;
use crate::node::Node;
use crate::push;

pub use scope::Scope;

/// One client's `CLIENT TRACKING` state, kept in its registry entry (whoever
/// invalidates reads it).
#[derive(Debug, Default, Clone)]
pub struct ClientTracking {
    /// Tracking is on.
    pub on: bool,
    /// `BCAST`.
    pub bcast: bool,
    /// `OPTIN`.
    pub optin: bool,
    /// `OPTOUT`.
    pub optout: bool,
    /// `NOLOOP`.
    pub noloop: bool,
    /// The redirect target was gone when an invalidation was due.
    pub broken_redirect: bool,
    /// `REDIRECT` target id (0: none).
    pub redirect: u64,
    /// `BCAST` prefixes, in byte order.
    pub prefixes: BTreeSet<Bytes>,
}

impl ClientTracking {
    /// `CLIENT LIST` letters: `t` tracking, `R` broken redirect, `B` broadcast.
    pub fn flags(&self) -> String {
        let mut f = String::new();
        if self.on {
            f.push('t');
        }
        if self.broken_redirect {
            f.push('R');
        }
        if self.bcast {
            f.push('B');
        }
        f
    }

    /// `redir=` / `CLIENT GETREDIR`: the target, 0 without one, -1 when off.
    pub fn redir(&self) -> i64 {
        if self.on {
            i64::try_from(self.redirect).unwrap_or(i64::MAX)
        } else {
            -1
        }
    }
}

/// What a session knows of its own tracking mode, for the per-command check.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadTracking {
    /// `OPTIN`: record only after `CLIENT CACHING YES`.
    pub optin: bool,
    /// `OPTOUT`: skip after `CLIENT CACHING NO`.
    pub optout: bool,
}

/// The node's tracking hub: receives the keyspace's changes and sends invalidations.
#[derive(Debug)]
pub struct Tracker {
    clients: Arc<Clients>,
    /// `BCAST` prefixes → the ids of the clients using them.
    prefixes: RwLock<BTreeMap<Bytes, BTreeSet<u64>>>,
    /// Whether `prefixes` is non-empty.
    broadcasting: AtomicBool,
    /// Clients with tracking on (`tracking_clients`).
    tracking_clients: AtomicUsize,
}

impl Tracker {
    /// A hub sending through `clients`' push queues.
    pub fn new(clients: Arc<Clients>) -> Tracker {
        Tracker {
            clients,
            prefixes: RwLock::new(BTreeMap::new()),
            broadcasting: AtomicBool::new(false),
            tracking_clients: AtomicUsize::new(0),
        }
    }

    /// Clients with tracking on (`INFO clients` `tracking_clients`).
    pub fn tracking_clients(&self) -> usize {
        self.tracking_clients.load(Relaxed)
    }

    /// Distinct `BCAST` prefixes (`INFO stats` `tracking_total_prefixes`).
    pub fn total_prefixes(&self) -> usize {
        self.prefixes.read().len()
    }

    /// Sends `body` (an array of keys, or a null) as an invalidation for the tracking
    /// client `tracker`: to its redirect target or to itself (see the module docs).
    fn deliver(&self, tracker: &ClientHandle, body: &[u8]) {
        let redirect = tracker.tracking.lock().redirect;
        if redirect == 0 {
            // RESP2 without a redirect: nothing can carry it (Redis sends nothing).
            if tracker.is_resp3() {
                tracker.push(push::invalidation(true, body));
            }
            return;
        }
        match self.clients.get(redirect) {
            Some(target) if target.is_resp3() => target.push(push::invalidation(true, body)),
            Some(target) if target.in_pubsub() => target.push(push::invalidation(false, body)),
            Some(_) => {}
            None => {
                tracker.tracking.lock().broken_redirect = true;
                if tracker.is_resp3() {
                    tracker.push(push::redir_broken(redirect));
                }
            }
        }
    }

    /// Default mode: `key` changed (by a command of `writer`) and client `id` had it
    /// recorded.
    fn invalidate_for(&self, id: u64, key: &[u8], writer: Option<u64>) {
        let Some(client) = self.clients.get(id) else {
            return;
        };
        {
            let t = client.tracking.lock();
            // Recorded before BCAST was turned on, or tracking is off now: skip, as
            // Redis does; NOLOOP: not for the client's own change.
            if !t.on || t.bcast || (t.noloop && writer == Some(id)) {
                return;
            }
        }
        self.deliver(&client, &push::keys_body(std::iter::once(key)));
    }
}

impl Invalidator for Tracker {
    fn invalidate(&self, key: &[u8], clients: &[u64], cause: Cause) {
        // Read first: a client that turns BCAST on after hearing of this change
        // (through its default-mode tracking, say) must not hear of it again.
        let broadcast = cause != Cause::TableFull && self.broadcasting.load(Relaxed);
        let current = scope::current_client();
        // NOLOOP hides the client's own writes only: an expiry, an eviction or a full
        // table is nobody's write (as Redis treats them in BCAST mode; in the default
        // mode Redis would also hide them when they happen during the client's own
        // command, leaving it caching a key it is no longer told about).
        let writer = if cause == Cause::Write { current } else { None };
        for &id in clients {
            self.invalidate_for(id, key, writer);
        }
        // Inside a command the key waits for the command's other changes (see `Scope`).
        if broadcast && !scope::defer_broadcast(key, writer) {
            let mut one = BTreeMap::new();
            one.insert(Bytes::copy_from_slice(key), writer);
            self.broadcast(&one);
        }
    }

    fn flushed(&self) {
        for client in self.clients.all() {
            let on = client.tracking.lock().on;
            if on {
                self.deliver(&client, &push::null_body(client.is_resp3()));
            }
        }
    }
}

/// The keys of `args` (a call of `spec`) by the declared key positions.
pub fn command_keys<'a>(spec: &CommandSpec, args: &'a [Bytes]) -> impl Iterator<Item = &'a Bytes> {
    crate::command_table::key_positions(spec, args.len()).filter_map(|i| args.get(i))
}

/// Whether the keys of this command are to be recorded for the session (default
/// mode, a read-only command, and `CLIENT CACHING` as `OPTIN`/`OPTOUT` require).
pub fn records(session: &Session, spec: &CommandSpec) -> bool {
    let Some(mode) = session.read_tracking else {
        return false;
    };
    if !spec.flags.contains(&"readonly") {
        return false;
    }
    !((mode.optin && !session.caching) || (mode.optout && session.caching))
}

/// Records the keys of `args` (a call of `spec`) as read by the session when
/// [`records`] says so (Redis's `trackingRememberKeys`). The dispatcher calls it before
/// and after running the command; `EXEC` for each queued read.
pub fn remember(keyspace: &Keyspace, session: &Session, spec: &CommandSpec, args: &[Bytes]) {
    if records(session, spec) {
        for key in command_keys(spec, args) {
            keyspace.track(key, session.handle.id);
        }
    }
}

/// Turns tracking off for a client that leaves or `RESET`s.
pub fn forget(node: &Node, handle: &ClientHandle) {
    node.tracker.disable(&node.keyspace, handle);
}
