//! The cluster router: hands each request that arrives on the cluster port to whoever
//! serves it, so the listener ([`crate::peer_listener`]) names no service.
//!
//! The server registers, at start:
//!
//! - every hosted Raft group ([`HostedGroup`]) by its id: `RAFT <group> <kind> <json>`
//!   goes to [`HostedGroup::handle_raft_rpc`] of that group;
//! - every service that accepts forwarded client commands ([`ForwardHandler`]) by its
//!   name: `FWD <service> <group> <deadline-ms> <body>` goes to
//!   [`ForwardHandler::handle`] of that service (the lock service registers as `locks`);
//! - the node's `STATUS` ([`StatusSource`]), for the dashboard;
//! - the node's [`Directory`], which the handshake's `NODE` feeds and answers from.
//!
//! Registration may happen at any time (a group started later is reachable from then
//! on); lookups take a read lock and clone an `Arc`, and the handler runs outside it.
//! The shape of the verbs and their replies is in [`crate::wire`].

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use conclave_raft_store::GroupId;
use parking_lot::RwLock;

use crate::directory::Directory;
use crate::group::{BoxFuture, HostedGroup};
use crate::wire::Reply;

/// The RESP error code of a `RAFT` request for a group this node does not host (not
/// started yet — a node adds its queue shards once all have started — or not a replica).
/// A code of its own, as Redis gives `MOVED` or `TRYAGAIN` theirs, so the sender tells it
/// from a failed request without reading the text: it treats the group as unreachable
/// for a while (openraft backs off) instead of retrying at once.
pub const NO_GROUP: &str = "NOGROUP";

/// A service that serves client commands forwarded by other nodes (typically: this node
/// leads the group the command belongs to).
pub trait ForwardHandler: Send + Sync {
    /// Serves one forwarded command of `group`; `deadline_ms` is the sender's wall clock
    /// (ms since the Unix epoch) after which it stops waiting — a handler must not start
    /// work that could take effect after it. `body` and the returned bytes are the
    /// service's own encoding (typed, so errors stay typed across the wire).
    fn handle(&self, group: GroupId, deadline_ms: u64, body: Bytes) -> BoxFuture<'_, Bytes>;
}

/// What `STATUS` answers: the node's own view, encoded (JSON) by the server.
pub trait StatusSource: Send + Sync {
    /// The encoded view, or the error line to answer.
    fn status(&self) -> BoxFuture<'_, Result<Bytes, String>>;
}

/// The handlers of the requests that arrive on the cluster port.
#[derive(Default)]
pub struct Router {
    groups: RwLock<HashMap<GroupId, Arc<dyn HostedGroup>>>,
    services: RwLock<HashMap<String, Arc<dyn ForwardHandler>>>,
    status: RwLock<Option<Arc<dyn StatusSource>>>,
    directory: RwLock<Option<Arc<Directory>>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut groups: Vec<GroupId> = self.groups.read().keys().copied().collect();
        groups.sort_unstable();
        let mut services: Vec<String> = self.services.read().keys().cloned().collect();
        services.sort_unstable();
        f.debug_struct("Router")
            .field("groups", &groups)
            .field("services", &services)
            .finish()
    }
}

impl Router {
    /// An empty router.
    pub fn new() -> Router {
        Router::default()
    }

    /// Routes `RAFT <group> ...` to `group` (replacing any group of the same id).
    pub fn add_group(&self, group: Arc<dyn HostedGroup>) {
        self.groups.write().insert(group.group(), group);
    }

    /// Routes `FWD <name> ...` to `handler` (replacing any handler of that name).
    pub fn add_service(&self, name: &str, handler: Arc<dyn ForwardHandler>) {
        self.services.write().insert(name.to_string(), handler);
    }

    /// Records peers' introductions (`NODE <id> <client-addr>`) in `directory` and
    /// answers them with this node's own (see [`crate::directory`]).
    pub fn set_directory(&self, directory: Arc<Directory>) {
        *self.directory.write() = Some(directory);
    }

    /// The directory set with [`set_directory`](Self::set_directory).
    pub fn directory(&self) -> Option<Arc<Directory>> {
        self.directory.read().clone()
    }

    /// Answers `STATUS` from `source`.
    pub fn set_status(&self, source: Arc<dyn StatusSource>) {
        *self.status.write() = Some(source);
    }

    /// Serves one request, verb first (the tag, if any, already taken off): the reply's
    /// payload, or its error line.
    pub async fn route(&self, args: &[Bytes]) -> Reply {
        let Some(verb) = args.first() else {
            return Err("ERR empty request".into());
        };
        // Argument `i` as a number (a group id or a deadline).
        let number =
            |i: usize| -> Option<u64> { std::str::from_utf8(args.get(i)?).ok()?.parse().ok() };
        if verb.eq_ignore_ascii_case(b"RAFT") {
            let (Some(g), Some(kind), Some(body), 4) =
                (number(1), args.get(2), args.get(3), args.len())
            else {
                return Err("ERR wrong number of arguments for 'raft' command".into());
            };
            let group = self.groups.read().get(&g).cloned();
            match group {
                Some(group) => group
                    .handle_raft_rpc(kind, body)
                    .await
                    .map_err(|e| format!("ERR {e}")),
                None => Err(format!(
                    "{NO_GROUP} raft group {g} is not hosted on this node"
                )),
            }
        } else if verb.eq_ignore_ascii_case(b"FWD") {
            let (Some(service), Some(g), Some(deadline), Some(body), 5) =
                (args.get(1), number(2), number(3), args.get(4), args.len())
            else {
                return Err("ERR wrong number of arguments for 'fwd' command".into());
            };
            let handler = std::str::from_utf8(service)
                .ok()
                .and_then(|s| self.services.read().get(s).cloned());
            match handler {
                Some(handler) => Ok(handler.handle(g, deadline, body.clone()).await),
                None => Err(format!(
                    "ERR unknown service '{}'",
                    String::from_utf8_lossy(service)
                )),
            }
        } else if verb.eq_ignore_ascii_case(b"STATUS") {
            let source = self.status.read().clone();
            match source {
                Some(source) => source.status().await,
                None => Err("ERR no status here".into()),
            }
        } else if verb.eq_ignore_ascii_case(b"PING") {
            Ok(Bytes::from_static(b"PONG"))
        } else {
            Err(format!(
                "ERR unknown cluster command '{}'",
                String::from_utf8_lossy(verb)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    impl ForwardHandler for Echo {
        fn handle(&self, group: GroupId, deadline_ms: u64, body: Bytes) -> BoxFuture<'_, Bytes> {
            Box::pin(async move {
                Bytes::from(format!(
                    "{group}/{deadline_ms}/{}",
                    String::from_utf8_lossy(&body)
                ))
            })
        }
    }

    fn args(parts: &[&str]) -> Vec<Bytes> {
        parts
            .iter()
            .map(|p| Bytes::copy_from_slice(p.as_bytes()))
            .collect()
    }

    #[tokio::test]
    async fn fwd_reaches_the_service_registered_under_its_name() {
        let router = Router::new();
        router.add_service("echo", Arc::new(Echo));
        assert_eq!(
            router.route(&args(&["FWD", "echo", "3", "99", "hi"])).await,
            Ok(Bytes::from_static(b"3/99/hi"))
        );
        assert_eq!(
            router.route(&args(&["fwd", "nope", "3", "99", "hi"])).await,
            Err("ERR unknown service 'nope'".into())
        );
        assert_eq!(
            router.route(&args(&["FWD", "echo", "x", "99", "hi"])).await,
            Err("ERR wrong number of arguments for 'fwd' command".into())
        );
        assert_eq!(
            router.route(&args(&["FWD", "echo", "3", "99"])).await,
            Err("ERR wrong number of arguments for 'fwd' command".into())
        );
    }

    #[tokio::test]
    async fn raft_to_a_group_not_hosted_and_unknown_verbs_are_errors() {
        let router = Router::new();
        assert_eq!(
            router.route(&args(&["RAFT", "7", "VOTE", "{}"])).await,
            Err("NOGROUP raft group 7 is not hosted on this node".into())
        );
        assert_eq!(
            router.route(&args(&["RAFT", "7", "VOTE"])).await,
            Err("ERR wrong number of arguments for 'raft' command".into())
        );
        assert_eq!(
            router.route(&args(&["LOCKFWD", "0", "1", "{}"])).await,
            Err("ERR unknown cluster command 'LOCKFWD'".into())
        );
        assert_eq!(
            router.route(&args(&["STATUS"])).await,
            Err("ERR no status here".into())
        );
        assert_eq!(
            router.route(&args(&["ping"])).await,
            Ok(Bytes::from_static(b"PONG"))
        );
    }
}
