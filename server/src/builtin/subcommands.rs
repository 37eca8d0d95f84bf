//! The subcommands of the container commands (`ACL`, `CONFIG`, `COMMAND`, `CLIENT`,
//! `SLOWLOG`, `LATENCY`, `MEMORY`), each
//! declared once like a command (Redis 7 names them `config|get`): its arity, flags,
//! summary and syntax drive the subcommand's arity error, `COMMAND INFO`'s
//! subcommands field, `COMMAND DOCS`'s `subcommands` map (so `redis-cli` hints
//! `CONFIG GET <pattern>` and prints `HELP CONFIG SET`) and the `<CMD> HELP` text.

use conclave_protocol::spec::{CommandSpec, Service, NOKEY};
use conclave_protocol::{Frame, ParseError};

macro_rules! sub {
    ($name:literal, $arity:expr, [$($flag:literal),*], $group:literal, $summary:literal, $syntax:literal) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: &[$($flag),*],
            keys: NOKEY,
            group: $group,
            summary: $summary,
            syntax: $syntax,
            service: Service::Server,
            key_flags: conclave_protocol::spec::KeyFlags::DERIVED,
        }
    };
    // A subcommand with keys: their positions count from the container's name
    // (`MEMORY USAGE key`: 2), and their key-spec flags.
    ($name:literal, $arity:expr, [$($flag:literal),*], $group:literal, $summary:literal, $syntax:literal, keys $keys:expr => [$($kf:literal),*]) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: &[$($flag),*],
            keys: $keys,
            group: $group,
            summary: $summary,
            syntax: $syntax,
            service: Service::Server,
            key_flags: conclave_protocol::spec::KeyFlags {
                first: &[$($kf),*],
                rest: &[$($kf),*],
            },
        }
    };
}

/// `CONFIG` subcommands.
#[rustfmt::skip]
static CONFIG: &[CommandSpec] = &[
    sub!("CONFIG|GET", -3, ["admin", "noscript", "loading", "stale"], "server", "Returns the effective values of configuration parameters.", "parameter [parameter ...]"),
    sub!("CONFIG|SET", -4, ["admin", "noscript", "loading", "stale"], "server", "Sets configuration parameters in-flight.", "parameter value [parameter value ...]"),
    sub!("CONFIG|RESETSTAT", 2, ["admin", "noscript", "loading", "stale"], "server", "Resets the server's statistics.", ""),
    sub!("CONFIG|REWRITE", 2, ["admin", "noscript", "loading", "stale"], "server", "Persists the effective configuration to file.", ""),
    sub!("CONFIG|HELP", 2, ["loading", "stale"], "server", "Returns helpful text about the different subcommands.", ""),
];

/// `ACL` subcommands (run by `super::acl_cmd`), with Redis 7.0's arities and flags.
#[rustfmt::skip]
static ACL: &[CommandSpec] = &[
    sub!("ACL|CAT", -2, ["noscript", "loading", "stale"], "server", "Lists the ACL categories, or the commands inside a category.", "[category]"),
    sub!("ACL|DELUSER", -3, ["admin", "noscript", "loading", "stale"], "server", "Deletes ACL users, and terminates their connections.", "username [username ...]"),
    sub!("ACL|DRYRUN", -4, ["admin", "noscript", "loading", "stale"], "server", "Simulates the execution of a command by a user, without executing the command.", "username command [arg [arg ...]]"),
    sub!("ACL|GENPASS", -2, ["noscript", "loading", "stale"], "server", "Generates a pseudorandom, secure password that can be used to identify ACL users.", "[bits]"),
    sub!("ACL|GETUSER", 3, ["admin", "noscript", "loading", "stale"], "server", "Lists the ACL rules of a user.", "username"),
    sub!("ACL|LIST", 2, ["admin", "noscript", "loading", "stale"], "server", "Dumps the effective rules in ACL file format.", ""),
    sub!("ACL|LOAD", 2, ["admin", "noscript", "loading", "stale"], "server", "Reloads the rules from the configured ACL file (none can be configured).", ""),
    sub!("ACL|LOG", -2, ["admin", "noscript", "loading", "stale"], "server", "Lists recent security events generated due to ACL rules.", "[count | RESET]"),
    sub!("ACL|SAVE", 2, ["admin", "noscript", "loading", "stale"], "server", "Saves the effective ACL rules in the configured ACL file (none can be configured).", ""),
    sub!("ACL|SETUSER", -3, ["admin", "noscript", "loading", "stale"], "server", "Creates and modifies an ACL user and its rules.", "username [rule [rule ...]]"),
    sub!("ACL|USERS", 2, ["admin", "noscript", "loading", "stale"], "server", "Lists all ACL users.", ""),
    sub!("ACL|WHOAMI", 2, ["noscript", "loading", "stale"], "server", "Returns the authenticated username of the current connection.", ""),
    sub!("ACL|HELP", 2, ["loading", "stale"], "server", "Returns helpful text about the different subcommands.", ""),
];

/// `COMMAND` subcommands.
#[rustfmt::skip]
static COMMAND: &[CommandSpec] = &[
    sub!("COMMAND|COUNT", 2, ["loading", "stale"], "server", "Returns a count of commands.", ""),
    sub!("COMMAND|DOCS", -2, ["loading", "stale"], "server", "Returns documentary information about one, multiple or all commands.", "[command-name [command-name ...]]"),
    sub!("COMMAND|GETKEYS", -3, ["loading", "stale"], "server", "Extracts the key names from an arbitrary command.", "command [arg [arg ...]]"),
    sub!("COMMAND|GETKEYSANDFLAGS", -3, ["loading", "stale"], "server", "Extracts the key names and access flags for an arbitrary command.", "command [arg [arg ...]]"),
    sub!("COMMAND|INFO", -2, ["loading", "stale"], "server", "Returns information about one, multiple or all commands.", "[command-name [command-name ...]]"),
    sub!("COMMAND|LIST", -2, ["loading", "stale"], "server", "Returns a list of command names.", "[FILTERBY MODULE module-name | ACLCAT category | PATTERN pattern]"),
    sub!("COMMAND|HELP", 2, ["loading", "stale"], "server", "Returns helpful text about the different subcommands.", ""),
];

/// `CLIENT` subcommands.
#[rustfmt::skip]
static CLIENT: &[CommandSpec] = &[
    sub!("CLIENT|CACHING", 3, ["noscript", "loading", "stale"], "connection", "Instructs the server whether to track the keys in the next request.", "YES | NO"),
    sub!("CLIENT|GETNAME", 2, ["noscript", "loading", "stale"], "connection", "Returns the name of the connection.", ""),
    sub!("CLIENT|GETREDIR", 2, ["noscript", "loading", "stale"], "connection", "Returns the client ID to which the connection's tracking notifications are redirected.", ""),
    sub!("CLIENT|HELP", 2, ["loading", "stale"], "connection", "Returns helpful text about the different subcommands.", ""),
    sub!("CLIENT|ID", 2, ["noscript", "loading", "stale"], "connection", "Returns the unique client ID of the connection.", ""),
    sub!("CLIENT|INFO", 2, ["noscript", "loading", "stale"], "connection", "Returns information about the connection.", ""),
    sub!("CLIENT|KILL", -3, ["admin", "noscript", "loading", "stale"], "connection", "Terminates open connections.", "ip:port | [ID client-id] [ADDR ip:port] [LADDR ip:port] [SKIPME yes|no] [MAXAGE maxage]"),
    sub!("CLIENT|LIST", -2, ["admin", "noscript", "loading", "stale"], "connection", "Lists open connections.", "[TYPE NORMAL | MASTER | REPLICA | PUBSUB] [ID client-id [client-id ...]]"),
    sub!("CLIENT|NO-EVICT", 3, ["admin", "noscript", "loading", "stale"], "connection", "Sets the client eviction mode of the connection.", "ON | OFF"),
    sub!("CLIENT|NO-TOUCH", 3, ["noscript", "loading", "stale"], "connection", "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.", "ON | OFF"),
    sub!("CLIENT|PAUSE", -3, ["admin", "noscript", "loading", "stale"], "connection", "Suspends commands processing.", "timeout [WRITE | ALL]"),
    sub!("CLIENT|REPLY", 3, ["noscript", "loading", "stale"], "connection", "Instructs the server whether to reply to commands.", "ON | OFF | SKIP"),
    sub!("CLIENT|SETINFO", 4, ["noscript", "loading", "stale"], "connection", "Sets information specific to the client or connection.", "LIB-NAME libname | LIB-VER libver"),
    sub!("CLIENT|SETNAME", 3, ["noscript", "loading", "stale"], "connection", "Sets the connection name.", "connection-name"),
    sub!("CLIENT|TRACKING", -3, ["noscript", "loading", "stale"], "connection", "Controls server-assisted client-side caching for the connection.", "ON | OFF [REDIRECT client-id] [PREFIX prefix [PREFIX prefix ...]] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]"),
    sub!("CLIENT|TRACKINGINFO", 2, ["noscript", "loading", "stale"], "connection", "Returns information about server-assisted client-side caching for the connection.", ""),
    sub!("CLIENT|UNBLOCK", -3, ["admin", "noscript", "loading", "stale"], "connection", "Unblocks a client blocked by a blocking command from a different connection.", "client-id [TIMEOUT | ERROR]"),
    sub!("CLIENT|UNPAUSE", 2, ["admin", "noscript", "loading", "stale"], "connection", "Resumes processing of clients that were paused.", ""),
];

/// `PUBSUB` subcommands.
#[rustfmt::skip]
static PUBSUB: &[CommandSpec] = &[
    sub!("PUBSUB|CHANNELS", -2, ["pubsub", "loading", "stale"], "pubsub", "Returns the active channels.", "[pattern]"),
    sub!("PUBSUB|HELP", 2, ["loading", "stale"], "pubsub", "Returns helpful text about the different subcommands.", ""),
    sub!("PUBSUB|NUMPAT", 2, ["pubsub", "loading", "stale"], "pubsub", "Returns a count of unique pattern subscriptions.", ""),
    sub!("PUBSUB|NUMSUB", -2, ["pubsub", "loading", "stale"], "pubsub", "Returns a count of subscribers to channels.", "[channel [channel ...]]"),
];

/// `SCRIPT` subcommands (run by `crate::scripting`).
#[rustfmt::skip]
static SCRIPT: &[CommandSpec] = &[
    sub!("SCRIPT|EXISTS", -3, ["noscript"], "scripting", "Determines whether server-side Lua scripts exist in the script cache.", "sha1 [sha1 ...]"),
    sub!("SCRIPT|FLUSH", -2, ["noscript"], "scripting", "Removes all server-side Lua scripts from the script cache.", "[ASYNC | SYNC]"),
    sub!("SCRIPT|HELP", 2, ["loading", "stale"], "scripting", "Returns helpful text about the different subcommands.", ""),
    sub!("SCRIPT|KILL", 2, ["noscript", "allow_busy"], "scripting", "Terminates a server-side Lua script during execution.", ""),
    sub!("SCRIPT|LOAD", 3, ["noscript", "stale"], "scripting", "Loads a server-side Lua script to the script cache.", "script"),
];

/// `FUNCTION` subcommands (run by `crate::scripting::functions`; flags as Redis 7.0's).
#[rustfmt::skip]
static FUNCTION: &[CommandSpec] = &[
    sub!("FUNCTION|DELETE", 3, ["write", "noscript"], "scripting", "Deletes a library and its functions.", "library-name"),
    sub!("FUNCTION|DUMP", 2, ["noscript"], "scripting", "Dumps all libraries into a serialized binary payload.", ""),
    sub!("FUNCTION|FLUSH", -2, ["write", "noscript"], "scripting", "Deletes all libraries and functions.", "[ASYNC | SYNC]"),
    sub!("FUNCTION|HELP", 2, ["loading", "stale"], "scripting", "Returns helpful text about the different subcommands.", ""),
    sub!("FUNCTION|KILL", 2, ["noscript", "allow_busy"], "scripting", "Terminates a function during execution.", ""),
    sub!("FUNCTION|LIST", -2, ["noscript"], "scripting", "Returns information about all libraries.", "[LIBRARYNAME library-name-pattern] [WITHCODE]"),
    sub!("FUNCTION|LOAD", -3, ["write", "denyoom", "noscript"], "scripting", "Creates a library.", "[REPLACE] function-code"),
    sub!("FUNCTION|RESTORE", -3, ["write", "denyoom", "noscript"], "scripting", "Restores all libraries from a payload.", "serialized-value [FLUSH | APPEND | REPLACE]"),
    sub!("FUNCTION|STATS", 2, ["noscript", "allow_busy"], "scripting", "Returns information about a function during execution.", ""),
];

/// `CLUSTER` subcommands: Redis Cluster is not enabled, so each answers that (as a
/// standalone Redis does); they are declared so clients and `COMMAND` see them.
#[rustfmt::skip]
static CLUSTER: &[CommandSpec] = &[
    sub!("CLUSTER|COUNTKEYSINSLOT", 3, ["stale"], "cluster", "Returns the number of keys in a hash slot.", "slot"),
    sub!("CLUSTER|GETKEYSINSLOT", 4, ["stale"], "cluster", "Returns the key names in a hash slot.", "slot count"),
    sub!("CLUSTER|HELP", 2, ["loading", "stale"], "cluster", "Returns helpful text about the different subcommands.", ""),
    sub!("CLUSTER|INFO", 2, ["stale"], "cluster", "Returns information about the state of a node.", ""),
    sub!("CLUSTER|KEYSLOT", 3, ["stale"], "cluster", "Returns the hash slot for a key.", "key"),
    sub!("CLUSTER|MYID", 2, ["stale"], "cluster", "Returns the ID of a node.", ""),
    sub!("CLUSTER|NODES", 2, ["stale"], "cluster", "Returns the cluster configuration for a node.", ""),
    sub!("CLUSTER|SHARDS", 2, ["loading", "stale"], "cluster", "Returns the mapping of cluster slots to shards.", ""),
    sub!("CLUSTER|SLOTS", 2, ["loading", "stale"], "cluster", "Returns the mapping of cluster slots to nodes.", ""),
];

/// `SLOWLOG` subcommands.
#[rustfmt::skip]
static SLOWLOG: &[CommandSpec] = &[
    sub!("SLOWLOG|GET", -2, ["admin", "loading", "stale"], "server", "Returns the slow log's entries.", "[count]"),
    sub!("SLOWLOG|LEN", 2, ["admin", "loading", "stale"], "server", "Returns the number of entries in the slow log.", ""),
    sub!("SLOWLOG|RESET", 2, ["admin", "loading", "stale"], "server", "Clears all entries from the slow log.", ""),
    sub!("SLOWLOG|HELP", 2, ["loading", "stale"], "server", "Show helpful text about the different subcommands.", ""),
];

/// `LATENCY` subcommands.
#[rustfmt::skip]
static LATENCY: &[CommandSpec] = &[
    sub!("LATENCY|DOCTOR", 2, ["admin", "noscript", "loading", "stale"], "server", "Returns a human-readable latency analysis report.", ""),
    sub!("LATENCY|GRAPH", 3, ["admin", "noscript", "loading", "stale"], "server", "Returns a latency graph for an event.", "event"),
    sub!("LATENCY|HISTOGRAM", -2, ["admin", "noscript", "loading", "stale"], "server", "Returns the cumulative distribution of latencies of a subset or all commands.", "[command [command ...]]"),
    sub!("LATENCY|HISTORY", 3, ["admin", "noscript", "loading", "stale"], "server", "Returns timestamp-latency samples for an event.", "event"),
    sub!("LATENCY|LATEST", 2, ["admin", "noscript", "loading", "stale"], "server", "Returns the latest latency samples for all events.", ""),
    sub!("LATENCY|RESET", -2, ["admin", "noscript", "loading", "stale"], "server", "Resets the latency data for one or more events.", "[event [event ...]]"),
    sub!("LATENCY|HELP", 2, ["loading", "stale"], "server", "Returns helpful text about the different subcommands.", ""),
];

/// `MEMORY` subcommands.
#[rustfmt::skip]
static MEMORY: &[CommandSpec] = &[
    sub!("MEMORY|DOCTOR", 2, [], "server", "Outputs a memory problems report.", ""),
    sub!("MEMORY|MALLOC-STATS", 2, [], "server", "Returns the allocator statistics.", ""),
    sub!("MEMORY|PURGE", 2, [], "server", "Asks the allocator to release memory.", ""),
    sub!("MEMORY|STATS", 2, [], "server", "Returns details about memory usage.", ""),
    sub!("MEMORY|USAGE", -3, ["readonly"], "server", "Estimates the memory usage of a key.", "key [SAMPLES count]", keys (2, 2, 1) => ["RO"]),
    sub!("MEMORY|HELP", 2, ["loading", "stale"], "server", "Outputs helpful text about the different subcommands.", ""),
];

/// The subcommands of container command `parent` (upper case); empty for others.
pub fn of(parent: &str) -> &'static [CommandSpec] {
    match parent {
        "ACL" => ACL,
        "CONFIG" => CONFIG,
        "COMMAND" => COMMAND,
        "CLIENT" => CLIENT,
        "PUBSUB" => PUBSUB,
        "SCRIPT" => SCRIPT,
        "FUNCTION" => FUNCTION,
        "CLUSTER" => CLUSTER,
        "SLOWLOG" => SLOWLOG,
        "LATENCY" => LATENCY,
        "MEMORY" => MEMORY,
        _ => &[],
    }
}

/// The position in [`of`]`(parent)` of the subcommand named `sub` (any case).
pub fn position(parent: &str, sub: &[u8]) -> Option<usize> {
    of(parent).iter().position(|s| {
        s.name
            .split_once('|')
            .is_some_and(|(_, n)| n.as_bytes().eq_ignore_ascii_case(sub))
    })
}

/// The subcommand `sub` of `parent`, checked against its declared arity (`argc`
/// counts the container's name and the subcommand). Errors as Redis 7 words them.
pub fn resolve(parent: &str, sub: &[u8], argc: usize) -> Result<&'static CommandSpec, ParseError> {
    let found = position(parent, sub).and_then(|i| of(parent).get(i));
    let Some(spec) = found else {
        return Err(ParseError::Other(format!(
            "ERR unknown subcommand '{}'. Try {parent} HELP.",
            String::from_utf8_lossy(&sub[..sub.len().min(128)])
        )));
    };
    if !spec.arity_ok(argc) {
        return Err(ParseError::Other(format!(
            "ERR wrong number of arguments for '{}' command",
            spec.lower_name()
        )));
    }
    Ok(spec)
}

/// The subcommand's name after the `|`, upper case (`GET`).
pub fn short_name(spec: &CommandSpec) -> &'static str {
    spec.name.split_once('|').map_or(spec.name, |(_, n)| n)
}

/// `<parent> HELP`: a line per subcommand with its syntax, then its summary indented.
pub fn help_frame(parent: &str) -> Frame {
    let mut lines = vec![format!(
        "{parent} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    )];
    for s in of(parent) {
        let name = short_name(s);
        lines.push(if s.syntax.is_empty() {
            name.to_string()
        } else {
            format!("{name} {}", s.syntax)
        });
        lines.push(format!("    {}", s.summary));
    }
    Frame::Array(lines.into_iter().map(|l| Frame::Simple(l.into())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_checks_name_and_arity_with_redis_errors() {
        assert_eq!(
            resolve("CONFIG", b"get", 3).map(|s| s.name).ok(),
            Some("CONFIG|GET")
        );
        let e = resolve("CONFIG", b"get", 2).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("ERR wrong number of arguments for 'config|get' command")
        );
        let e = resolve("CLIENT", b"FOO", 2).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("ERR unknown subcommand 'FOO'. Try CLIENT HELP.")
        );
    }

    #[test]
    fn every_container_has_help() {
        for parent in ["CONFIG", "COMMAND", "CLIENT", "PUBSUB"] {
            assert!(resolve(parent, b"HELP", 2).is_ok(), "{parent}");
            assert!(matches!(help_frame(parent), Frame::Array(v) if v.len() > 3));
        }
    }
}
