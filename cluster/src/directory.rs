//! The node directory: each member's *client* address (the RESP port applications use),
//! by node id, as the members told each other on the cluster channel.
//!
//! Raft's membership knows only cluster addresses (`--peers 1@host:cluster-port,...`), so
//! `RAFT.STATUS` would show no way to reach a member with `redis-cli`. The client address is
//! carried by the channel's handshake instead of the replicated membership (no change to the
//! log or snapshot format, and always the address the member runs with *now*):
//!
//! - the connecting side sends `NODE <id> <client-addr>` ([`crate::peer`]); the listener
//!   records it and answers `<id> <client-addr>` of its own node ([`crate::peer_listener`]),
//!   which the connecting side records in turn. A peer of an older build answers `OK`
//!   (nothing recorded) and ignores the extra argument.
//! - every reconnect repeats the exchange, so a member restarted with another `--port` is
//!   known by its new address as soon as any connection to or from it is opened again; the
//!   server also opens a connection to each member it has no address for
//!   ([`Directory::unknown`]), so followers that never talk to each other still learn them.
//!
//! An entry is only as fresh as the last handshake: a member that changed its address while
//! no connection between the two nodes was reopened shows the old one until one is.

use std::collections::HashMap;

use parking_lot::RwLock;

/// Client addresses by node id (this node's own included).
#[derive(Debug, Default)]
pub struct Directory {
    own_id: u64,
    own_client_addr: RwLock<String>,
    known: RwLock<HashMap<u64, String>>,
}

impl Directory {
    /// The directory of node `own_id`, whose clients connect to `own_client_addr`
    /// (`host:port`, as advertised: not a wildcard bind address).
    pub fn new(own_id: u64, own_client_addr: String) -> Directory {
        Directory {
            own_id,
            own_client_addr: RwLock::new(own_client_addr),
            known: RwLock::new(HashMap::new()),
        }
    }

    /// This node's id.
    pub fn own_id(&self) -> u64 {
        self.own_id
    }

    /// This node's client address (empty when the directory was made without one).
    pub fn own_client_addr(&self) -> String {
        self.own_client_addr.read().clone()
    }

    /// This node now serves clients at `addr` (`CONFIG SET port|bind`); peers hear of it
    /// at the next handshake with them.
    pub fn set_own_client_addr(&self, addr: String) {
        *self.own_client_addr.write() = addr;
    }

    /// The client address of node `id`, if it is this node or told us.
    pub fn client_addr(&self, id: u64) -> Option<String> {
        if id == self.own_id {
            let own = self.own_client_addr();
            return (!own.is_empty()).then_some(own);
        }
        self.known.read().get(&id).cloned()
    }

    /// Records what node `id` said its client address is (the latest word wins).
    pub fn learn(&self, id: u64, client_addr: &str) {
        if id == self.own_id || client_addr.is_empty() {
            return;
        }
        let mut known = self.known.write();
        if known.get(&id).map(String::as_str) != Some(client_addr) {
            known.insert(id, client_addr.to_string());
        }
    }

    /// The ids in `ids` (other than this node) with no known client address.
    pub fn unknown(&self, ids: impl IntoIterator<Item = u64>) -> Vec<u64> {
        let known = self.known.read();
        ids.into_iter()
            .filter(|id| *id != self.own_id && !known.contains_key(id))
            .collect()
    }

    /// The handshake's `<id> <client-addr>` (what `NODE` carries and answers), `None`
    /// without a client address.
    pub fn introduction(&self) -> Option<String> {
        let own = self.own_client_addr();
        (!own.is_empty()).then(|| format!("{} {own}", self.own_id))
    }

    /// Records an introduction (`<id> <client-addr>`, as [`introduction`](Self::introduction)
    /// makes); anything else (an older peer's `OK`) is ignored.
    pub fn learn_introduction(&self, text: &[u8]) {
        let Ok(text) = std::str::from_utf8(text) else {
            return;
        };
        if let Some((id, addr)) = text.split_once(' ') {
            if let Ok(id) = id.parse::<u64>() {
                self.learn(id, addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_introductions_and_keeps_the_latest() {
        let d = Directory::new(1, "10.0.0.1:6379".into());
        assert_eq!(d.introduction().as_deref(), Some("1 10.0.0.1:6379"));
        assert_eq!(d.client_addr(1).as_deref(), Some("10.0.0.1:6379"));
        assert_eq!(d.unknown([1, 2, 3]), vec![2, 3]);
        d.learn_introduction(b"2 10.0.0.2:6379");
        d.learn_introduction(b"OK");
        d.learn_introduction(b"x 10.0.0.9:1");
        d.learn_introduction(b"1 10.0.0.9:1"); // nobody speaks for this node but itself
        assert_eq!(d.client_addr(2).as_deref(), Some("10.0.0.2:6379"));
        assert_eq!(d.client_addr(1).as_deref(), Some("10.0.0.1:6379"));
        d.learn_introduction(b"2 10.0.0.2:7000"); // restarted with another --port
        assert_eq!(d.client_addr(2).as_deref(), Some("10.0.0.2:7000"));
        assert_eq!(d.unknown([1, 2, 3]), vec![3]);
        d.set_own_client_addr("10.0.0.1:7000".into()); // CONFIG SET port
        assert_eq!(d.introduction().as_deref(), Some("1 10.0.0.1:7000"));
        assert_eq!(d.client_addr(1).as_deref(), Some("10.0.0.1:7000"));
    }
}
