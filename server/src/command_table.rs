//! Every command a node knows, gathered once from the services that declare them:
//! the connection and server commands here (the [`BUILTINS`]), the keyspace's in
//! `conclave_cache`, the locks' in `conclave_locks`, the meta group's (`MEMBER.*`) in
//! `conclave_cluster::meta`, the debug kv groups' in
//! [`crate::debug_kv`]. Each declaration carries its
//! name, arity, flags, key positions, group, docs and the handler of its service, so
//! dispatch routes on the service that declared a command and nothing is declared
//! twice.
//!
//! The table drives the central checks every request goes through (unknown command,
//! wrong arity, whether it may run before `AUTH`), the `COMMAND` family's replies and
//! the per-command slots of `/metrics` ([`Entry::index`]).

use std::collections::HashMap;
use std::sync::LazyLock;

use conclave_protocol::command;
use conclave_protocol::spec::{CommandSpec, Declared, Service, KEYS_ALL, NOKEY};
use conclave_protocol::{Frame, Parse};

use crate::builtin::{connection_cmds, diagnostic_cmds, server_cmds};
use crate::connection::Session;
use crate::node::Node;
use crate::{pubsub, transaction};

/// How a command of the server crate itself runs.
#[derive(Debug, Clone, Copy)]
pub enum Builtin {
    /// Needs the node and the connection; answers at once.
    Sync(fn(&Node, &mut Session, &CommandSpec, &mut Parse) -> Frame),
    /// `RAFT.STATUS` (asks openraft, asynchronously).
    RaftStatus,
    /// `MIGRATE` (a client connection to the target, asynchronously).
    Migrate,
    /// `ACL` (`SETUSER`/`DELUSER` go through the meta group, asynchronously).
    Acl,
}

/// The handler of a command, by the service that declared it.
#[derive(Debug, Clone, Copy)]
pub enum Handler {
    /// Connection and server commands.
    Builtin(Builtin),
    /// The keyspace: parse into a `conclave_cache::cmd::Command`, then apply.
    Cache(conclave_cache::cmd::Parser),
    /// `LOCK.*`: parse into a lock command, then run it through the lock service.
    Locks(conclave_locks::commands::Parser),
    /// `Q.*`: parse into a queue command, then run it through the queue service.
    Queues(conclave_queues::commands::Parser),
    /// `MEMBER.*`: parse, then answer from the meta group.
    Meta(conclave_cluster::meta::meta_cmds::Parser),
    /// `DEBUG.KV*`: parse, then run on the debug kv groups.
    DebugKv(crate::debug_kv::Parser),
    /// `EVAL*` and `SCRIPT`: the Lua scripting module.
    Script(crate::scripting::ScriptCmd),
}

/// One command of the table.
#[derive(Debug)]
pub struct Entry {
    /// Its declaration.
    pub spec: &'static CommandSpec,
    /// Its service's handler.
    pub handler: Handler,
    /// Its position in [`all`] (per-command slots, such as the metrics').
    pub index: usize,
}

/// The connection and server commands, declared here (they need the node and the
/// connection).
#[rustfmt::skip]
pub static BUILTINS: &[Declared<Builtin>] = &[
    command!("MULTI", 1, ["noscript", "loading", "stale", "fast"], NOKEY, "transactions", "Starts a transaction.", "", Service::Connection => Builtin::Sync(transaction::execute)),
    command!("EXEC", 1, ["noscript", "loading", "stale", "skip_slowlog"], NOKEY, "transactions", "Executes all commands in a transaction.", "", Service::Connection => Builtin::Sync(transaction::execute)),
    command!("DISCARD", 1, ["noscript", "loading", "stale", "fast"], NOKEY, "transactions", "Discards a transaction.", "", Service::Connection => Builtin::Sync(transaction::execute)),
    command!("WATCH", -2, ["noscript", "loading", "stale", "fast"], KEYS_ALL, "transactions", "Monitors changes to keys to determine the execution of a transaction.", "key [key ...]", Service::Connection => Builtin::Sync(transaction::execute), keys: ["RO"]),
    command!("UNWATCH", 1, ["noscript", "loading", "stale", "fast"], NOKEY, "transactions", "Forgets about watched keys of a transaction.", "", Service::Connection => Builtin::Sync(transaction::execute)),
    command!("PING", -1, ["fast", "stale"], NOKEY, "connection", "Returns the server's liveliness response.", "[message]", Service::Connection => Builtin::Sync(connection_cmds::execute)),
    command!("ECHO", 2, ["fast"], NOKEY, "connection", "Returns the given string.", "message", Service::Connection => Builtin::Sync(connection_cmds::execute)),
    command!("HELLO", -1, ["noscript", "no_auth", "fast", "stale"], NOKEY, "connection", "Handshakes with the server.", "[protover [AUTH username password] [SETNAME clientname]]", Service::Connection => Builtin::Sync(connection_cmds::execute)),
    command!("AUTH", -2, ["noscript", "no_auth", "fast", "stale"], NOKEY, "connection", "Authenticates the connection.", "[username] password", Service::Connection => Builtin::Sync(connection_cmds::execute)),
    command!("SELECT", 2, ["fast", "stale"], NOKEY, "connection", "Changes the selected database (only 0 exists).", "index", Service::Connection => Builtin::Sync(connection_cmds::execute)),
    command!("QUIT", -1, ["noscript", "no_auth", "fast", "stale"], NOKEY, "connection", "Closes the connection.", "", Service::Connection => Builtin::Sync(connection_cmds::execute)),
    command!("RESET", 1, ["noscript", "no_auth", "fast", "stale"], NOKEY, "connection", "Resets the connection.", "", Service::Connection => Builtin::Sync(connection_cmds::execute)),
    command!("CLIENT", -2, ["noscript", "stale"], NOKEY, "connection", "A container for client connection commands.", "ID|SETNAME|GETNAME|SETINFO|INFO|LIST|KILL [arguments ...]", Service::Connection => Builtin::Sync(connection_cmds::execute)),
    command!("COMMAND", -1, ["stale"], NOKEY, "server", "Returns detailed information about all commands.", "[COUNT|INFO|DOCS|LIST [arguments ...]]", Service::Server => Builtin::Sync(server_cmds::execute)),
    command!("ACL", -2, ["sentinel"], NOKEY, "server", "A container for Access List Control commands.", "CAT|DELUSER|DRYRUN|GENPASS|GETUSER|LIST|LOAD|LOG|SAVE|SETUSER|USERS|WHOAMI [arguments ...]", Service::Server => Builtin::Acl),
    command!("CONFIG", -2, ["admin", "noscript", "stale"], NOKEY, "server", "A container for server configuration commands.", "GET|SET parameter [value] [parameter value ...]", Service::Server => Builtin::Sync(server_cmds::execute)),
    command!("INFO", -1, ["stale"], NOKEY, "server", "Returns information and statistics about the server.", "[section [section ...]]", Service::Server => Builtin::Sync(server_cmds::execute)),
    command!("TIME", 1, ["fast", "stale"], NOKEY, "server", "Returns the server time.", "", Service::Server => Builtin::Sync(server_cmds::execute)),
    command!("SHUTDOWN", -1, ["admin", "noscript", "loading", "stale", "no_multi", "allow_busy"], NOKEY, "server", "Stops the node.", "[NOSAVE | SAVE] [NOW] [FORCE] [ABORT]", Service::Server => Builtin::Sync(server_cmds::execute)),
    command!("SLOWLOG", -2, [], NOKEY, "server", "A container for slow log commands.", "GET [count] | LEN | RESET | HELP", Service::Server => Builtin::Sync(diagnostic_cmds::execute)),
    command!("LATENCY", -2, [], NOKEY, "server", "A container for latency diagnostics commands.", "DOCTOR | GRAPH event | HISTOGRAM [command ...] | HISTORY event | LATEST | RESET [event ...] | HELP", Service::Server => Builtin::Sync(diagnostic_cmds::execute)),
    command!("MEMORY", -2, [], NOKEY, "server", "A container for memory diagnostics commands.", "DOCTOR | MALLOC-STATS | PURGE | STATS | USAGE key [SAMPLES count] | HELP", Service::Server => Builtin::Sync(diagnostic_cmds::execute)),
    command!("LOLWUT", -1, ["readonly", "fast"], NOKEY, "server", "Displays computer art and the Redis version.", "[VERSION version]", Service::Server => Builtin::Sync(diagnostic_cmds::execute)),
    command!("ROLE", 1, ["noscript", "loading", "stale", "fast"], NOKEY, "server", "Returns the replication role (always a master without replicas).", "", Service::Server => Builtin::Sync(diagnostic_cmds::execute)),
    command!("LASTSAVE", 1, ["loading", "stale", "fast"], NOKEY, "server", "Returns the Unix timestamp of the last successful save to disk.", "", Service::Server => Builtin::Sync(diagnostic_cmds::execute)),
    command!("SAVE", 1, ["admin", "noscript", "no_async_loading", "no_multi"], NOKEY, "server", "Synchronously saves the keyspace to an RDB file (one-node clusters only).", "", Service::Server => Builtin::Sync(diagnostic_cmds::execute)),
    command!("BGSAVE", -1, ["admin", "noscript", "no_async_loading"], NOKEY, "server", "Asynchronously saves the keyspace to an RDB file (one-node clusters only).", "[SCHEDULE]", Service::Server => Builtin::Sync(diagnostic_cmds::execute)),
    command!("MIGRATE", -6, ["write", "movablekeys"], (3, 3, 1), "generic", "Atomically transfers a key from one Redis instance to another.", "host port <key | \"\"> destination-db timeout [COPY] [REPLACE] [AUTH password | AUTH2 username password] [KEYS key [key ...]]", Service::Server => Builtin::Migrate, keys: ["RW", "access", "delete"]),
    command!("REPLICAOF", 3, ["admin", "noscript", "stale"], NOKEY, "server", "Configures a server as replica of another (only NO ONE: the keyspace is not replicated).", "host port", Service::Server => Builtin::Sync(diagnostic_cmds::execute)),
    command!("SLAVEOF", 3, ["admin", "noscript", "stale"], NOKEY, "server", "Sets a Redis server as a replica of another, or promotes it to being a master (only NO ONE).", "host port", Service::Server => Builtin::Sync(diagnostic_cmds::execute)),
    command!("CLUSTER", -2, ["noscript", "stale"], NOKEY, "cluster", "Redis Cluster commands (cluster support is disabled).", "subcommand [arguments ...]", Service::Server => Builtin::Sync(server_cmds::execute)),
    command!("SUBSCRIBE", -2, ["pubsub", "noscript", "loading", "stale"], NOKEY, "pubsub", "Listens for messages published to channels.", "channel [channel ...]", Service::Connection => Builtin::Sync(pubsub::execute)),
    command!("UNSUBSCRIBE", -1, ["pubsub", "noscript", "loading", "stale"], NOKEY, "pubsub", "Stops listening to messages posted to channels.", "[channel [channel ...]]", Service::Connection => Builtin::Sync(pubsub::execute)),
    command!("PSUBSCRIBE", -2, ["pubsub", "noscript", "loading", "stale"], NOKEY, "pubsub", "Listens for messages published to channels that match one or more patterns.", "pattern [pattern ...]", Service::Connection => Builtin::Sync(pubsub::execute)),
    command!("PUNSUBSCRIBE", -1, ["pubsub", "noscript", "loading", "stale"], NOKEY, "pubsub", "Stops listening to messages published to channels that match one or more patterns.", "[pattern [pattern ...]]", Service::Connection => Builtin::Sync(pubsub::execute)),
    command!("PUBLISH", 3, ["pubsub", "loading", "stale", "fast", "may_replicate"], NOKEY, "pubsub", "Posts a message to a channel (this node's subscribers).", "channel message", Service::Connection => Builtin::Sync(pubsub::execute)),
    command!("PUBSUB", -2, [], NOKEY, "pubsub", "A container for Pub/Sub commands.", "CHANNELS|NUMSUB|NUMPAT [arguments ...]", Service::Connection => Builtin::Sync(pubsub::execute)),
    command!("MONITOR", 1, ["admin", "noscript", "loading", "stale"], NOKEY, "server", "Listens for all requests received by the server in real-time.", "", Service::Server => Builtin::Sync(crate::monitor::execute)),
    command!("RAFT.STATUS", -1, ["readonly", "fast", "stale"], NOKEY, "cluster", "A Raft group's role, term, leader, indexes and members as this node sees them (group 0, the lock group, by default).", "[group]", Service::Server => Builtin::RaftStatus),
];

struct Table {
    entries: Vec<Entry>,
    by_name: HashMap<&'static [u8], usize>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let builtins = BUILTINS
        .iter()
        .map(|d| (&d.spec, Handler::Builtin(d.handler)));
    let cache = conclave_cache::COMMANDS
        .iter()
        .map(|d| (&d.spec, Handler::Cache(d.handler)));
    let locks = conclave_locks::COMMANDS
        .iter()
        .map(|d| (&d.spec, Handler::Locks(d.handler)));
    let queues = conclave_queues::COMMANDS
        .iter()
        .map(|d| (&d.spec, Handler::Queues(d.handler)));
    let meta = conclave_cluster::meta::meta_cmds::COMMANDS
        .iter()
        .map(|d| (&d.spec, Handler::Meta(d.handler)));
    let debug_kv = crate::debug_kv::COMMANDS
        .iter()
        .map(|d| (&d.spec, Handler::DebugKv(d.handler)));
    let scripts = crate::scripting::COMMANDS
        .iter()
        .map(|d| (&d.spec, Handler::Script(d.handler)));
    let entries: Vec<Entry> = builtins
        .chain(cache)
        .chain(locks)
        .chain(queues)
        .chain(meta)
        .chain(debug_kv)
        .chain(scripts)
        .enumerate()
        .map(|(index, (spec, handler))| Entry {
            spec,
            handler,
            index,
        })
        .collect();
    let by_name = entries
        .iter()
        .map(|e| (e.spec.name.as_bytes(), e.index))
        .collect();
    Table { entries, by_name }
});

/// Every command, in `COMMAND LIST` order (connection, server, keyspace, locks, meta,
/// debug, scripting).
pub fn all() -> &'static [Entry] {
    &TABLE.entries
}

/// Every command's declaration, in `COMMAND LIST` order.
pub fn specs() -> impl Iterator<Item = &'static CommandSpec> {
    all().iter().map(|e| e.spec)
}

/// The declaration of a command, by name (any case).
pub fn lookup_spec(name: &[u8]) -> Option<&'static CommandSpec> {
    lookup(name).map(|e| e.spec)
}

/// The argument positions of the keys of a call of `spec` with `argc` arguments (name
/// included), by its declared `(first, last, step)`; none when `step` is 0.
pub fn key_positions(spec: &CommandSpec, argc: usize) -> impl Iterator<Item = usize> {
    let (first, last, step) = spec.keys;
    let argc = i64::try_from(argc).unwrap_or(i64::MAX);
    let last = if last < 0 {
        argc + i64::from(last)
    } else {
        i64::from(last).min(argc - 1)
    };
    let (first, step) = (i64::from(first), i64::from(step));
    let count = if step > 0 && first >= 1 && last >= first {
        (last - first) / step + 1
    } else {
        0
    };
    (0..count).filter_map(move |i| usize::try_from(first + i * step).ok())
}

/// Finds a command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static Entry> {
    let mut upper = [0u8; 32];
    let buf = upper.get_mut(..name.len())?;
    for (dst, src) in buf.iter_mut().zip(name) {
        *dst = src.to_ascii_uppercase();
    }
    let table = &*TABLE;
    table
        .by_name
        .get(&buf[..])
        .and_then(|&i| table.entries.get(i))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn lookup_is_case_insensitive() {
        assert_eq!(lookup(b"get").map(|c| c.spec.name), Some("GET"));
        assert_eq!(
            lookup(b"LoCk.AcQuIrE").map(|c| c.spec.name),
            Some("LOCK.ACQUIRE")
        );
        assert!(lookup(b"nope").is_none());
        assert!(lookup(&[b'a'; 100]).is_none());
    }

    #[test]
    fn index_is_the_table_position() {
        for (i, e) in all().iter().enumerate() {
            assert_eq!(e.index, i, "{}", e.spec.name);
        }
    }

    #[test]
    fn every_command_is_declared_once() {
        let mut seen = HashSet::new();
        for e in all() {
            assert!(seen.insert(e.spec.name), "{} declared twice", e.spec.name);
        }
    }

    #[test]
    fn arity() {
        let get = lookup(b"GET").unwrap().spec;
        assert!(get.arity_ok(2) && !get.arity_ok(3));
        let set = lookup(b"SET").unwrap().spec;
        assert!(set.arity_ok(3) && set.arity_ok(9) && !set.arity_ok(2));
    }

    #[test]
    fn key_positions_follow_the_declaration() {
        let keys =
            |name: &[u8], argc| key_positions(lookup(name).unwrap().spec, argc).collect::<Vec<_>>();
        assert_eq!(keys(b"GET", 2), [1]);
        assert_eq!(keys(b"MGET", 4), [1, 2, 3]);
        assert_eq!(keys(b"MSET", 5), [1, 3]);
        assert_eq!(keys(b"LCS", 5), [1, 2]);
        assert!(keys(b"PING", 1).is_empty());
    }

    #[test]
    fn every_command_documents() {
        for e in all() {
            assert!(
                matches!(conclave_protocol::docs::docs_entry(e.spec), Frame::Map(_)),
                "{}",
                e.spec.name
            );
        }
    }
}
