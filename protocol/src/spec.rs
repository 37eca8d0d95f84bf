//! The declaration of a command: everything the node's central checks and the
//! `COMMAND` family need to know about it, written once, beside its parser, by the
//! service that implements it (TiKV's `command!` declarations play the same role).
//!
//! A service exports a table of [`Declared`] rows — a [`CommandSpec`] and the
//! service's own handler for that command (for the cache a parser into its command
//! type, for locks a parser into a lock request, ...). The server gathers every
//! service's table into one lookup, checks name, arity and authentication in Redis's
//! order, and hands the request to the service that declared the command.

/// Which part of Conclave serves a command (what dispatch routes on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Connection commands (`PING`, `HELLO`, `AUTH`, `CLIENT`, ...): the server crate.
    Connection,
    /// Server commands (`COMMAND`, `CONFIG`, `INFO`, `SHUTDOWN`, `RAFT.STATUS`, ...):
    /// the server crate.
    Server,
    /// The string keyspace: `conclave-cache`.
    Cache,
    /// `LOCK.*`: `conclave-locks`.
    Locks,
    /// `Q.*`: `conclave-queues`.
    Queues,
    /// Cluster metadata (`MEMBER.*`): the meta group in `conclave-cluster`.
    Cluster,
    /// Testing aids (`DEBUG.KV*` on the `--debug-kv-groups` Raft groups): the server
    /// crate.
    Debug,
}

/// One command's declaration.
#[derive(Debug)]
pub struct CommandSpec {
    /// Upper-case name.
    pub name: &'static str,
    /// Redis arity: `n > 0` exactly n arguments (name included), `-n` at least n.
    pub arity: i32,
    /// Redis command flags (`readonly`, `write`, `fast`, `no_auth`, ...).
    pub flags: &'static [&'static str],
    /// First key argument, last key argument (-1 = last) and step (0 = no keys), as
    /// `COMMAND INFO` reports them.
    pub keys: (i32, i32, i32),
    /// Command group as in Redis's docs (`string`, `generic`, `connection`, `server`,
    /// ...); also the command's ACL category (`@string`, ...).
    pub group: &'static str,
    /// One-line summary (`COMMAND DOCS`).
    pub summary: &'static str,
    /// Argument syntax after the name, Redis-doc style (`key value [NX | XX]`).
    pub syntax: &'static str,
    /// The service that serves it.
    pub service: Service,
    /// Redis 7's key-spec flags of its keys (`COMMAND GETKEYSANDFLAGS`).
    pub key_flags: KeyFlags,
}

/// The key-spec flags of a command's keys, as Redis 7.0's `key_specs` give them (`RW`,
/// `RO`, `OW`, `RM` and `access`, `update`, `insert`, `delete`): those of the first key,
/// and those of the others (`RENAME`'s destination, `BITOP`'s sources, `COPY`'s
/// destination differ from the first key's).
#[derive(Debug, Clone, Copy)]
pub struct KeyFlags {
    /// The first key's flags; empty: derived from the command's flags (`RW access
    /// update` for a write, `RO access` otherwise).
    pub first: &'static [&'static str],
    /// Every other key's flags.
    pub rest: &'static [&'static str],
}

impl KeyFlags {
    /// Not declared: derived from the command's flags.
    pub const DERIVED: KeyFlags = KeyFlags {
        first: &[],
        rest: &[],
    };
}

/// Commands whose Redis 7.0 ACL categories differ from what their flags and group
/// give: `(name, replace, categories)` — with `replace` these categories (and
/// `fast`/`slow`) are all the command has, else they are added.
pub const REDIS_CATEGORY_EXCEPTIONS: &[(&str, bool, &[&str])] = &[
    // Containers: Redis puts the categories on their subcommands.
    ("CLIENT", true, &[]),
    ("CONFIG", true, &[]),
    ("PUBSUB", true, &[]),
    ("SCRIPT", true, &[]),
    ("OBJECT", true, &[]),
    ("CLUSTER", true, &[]),
    ("PUBSUB|HELP", true, &[]),
    ("COMMAND", true, &["connection"]),
    ("WAIT", true, &["connection"]),
    ("COMMAND|COUNT", false, &["connection"]),
    ("COMMAND|DOCS", false, &["connection"]),
    ("COMMAND|GETKEYS", false, &["connection"]),
    ("COMMAND|GETKEYSANDFLAGS", false, &["connection"]),
    ("COMMAND|HELP", false, &["connection"]),
    ("COMMAND|INFO", false, &["connection"]),
    ("COMMAND|LIST", false, &["connection"]),
    ("FLUSHALL", false, &["keyspace", "dangerous"]),
    ("FLUSHDB", false, &["keyspace", "dangerous"]),
    ("KEYS", false, &["dangerous"]),
    ("RESTORE", false, &["dangerous"]),
    ("INFO", false, &["dangerous"]),
    ("LASTSAVE", false, &["admin", "dangerous"]),
    ("ROLE", false, &["admin", "dangerous"]),
    ("DBSIZE", false, &["keyspace"]),
];

/// No key arguments.
pub const NOKEY: (i32, i32, i32) = (0, 0, 0);
/// The first argument is the only key.
pub const KEY1: (i32, i32, i32) = (1, 1, 1);
/// Every argument is a key.
pub const KEYS_ALL: (i32, i32, i32) = (1, -1, 1);
/// Key/value pairs: every other argument from the first is a key.
pub const KEYS_PAIRS: (i32, i32, i32) = (1, -1, 2);

/// A command's declaration and the handler of the service that declared it.
#[derive(Debug)]
pub struct Declared<H: 'static> {
    /// What the command is.
    pub spec: CommandSpec,
    /// How its service runs it.
    pub handler: H,
}

impl CommandSpec {
    /// Whether `argc` (name included) satisfies the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// Whether the command may run before authentication.
    pub fn no_auth(&self) -> bool {
        self.flags.contains(&"no_auth")
    }

    /// Whether the command may change data (flag `write`).
    pub fn is_write(&self) -> bool {
        self.flags.contains(&"write")
    }

    /// Redis's ACL categories of the command (without `@`), derived from its flags
    /// and group as Redis assigns them: `read`/`write`/`fast` or `slow`/`admin` and
    /// `dangerous` from the flags, `keyspace`/`string`/`bitmap`/`connection`/
    /// `transaction`/`scripting` from the group, `blocking` from the flag; Conclave's own
    /// groups (`lock`, `queue`, `cache`, `cluster`) are categories of their own (the ACL
    /// rules `+@lock`, `+@queue`, ...).
    ///
    /// Where Redis 7.0's command table (its `src/commands/*.json`) gives categories the
    /// flags and group do not, [`REDIS_CATEGORY_EXCEPTIONS`] says so: containers are
    /// only `@slow` (their subcommands carry the categories), `COMMAND` and `WAIT` are
    /// `@connection`, `KEYS`/`FLUSHALL`/`INFO`/... are `@dangerous`, read-only scripts
    /// are not `@read`.
    pub fn acl_categories(&self) -> Vec<&'static str> {
        let mut cats = Vec::new();
        let has = |f: &str| self.flags.contains(&f);
        let exception = REDIS_CATEGORY_EXCEPTIONS
            .iter()
            .find(|(name, _, _)| *name == self.name);
        if let Some((_, true, extra)) = exception {
            cats.extend_from_slice(extra);
            cats.push(if has("fast") { "fast" } else { "slow" });
            return cats;
        }
        if has("write") && self.group != "scripting" {
            cats.push("write");
        }
        if has("readonly") && self.group != "scripting" {
            cats.push("read");
        }
        if has("admin") {
            cats.extend(["admin", "dangerous"]);
        }
        if has("blocking") {
            cats.push("blocking");
        }
        match self.group {
            // Server commands take their categories from their flags alone.
            "server" => {}
            "generic" => cats.push("keyspace"),
            "transactions" => cats.push("transaction"),
            other => cats.push(other),
        }
        if let Some((_, false, extra)) = exception {
            for c in *extra {
                if !cats.contains(c) {
                    cats.push(c);
                }
            }
        }
        cats.push(if has("fast") { "fast" } else { "slow" });
        cats
    }

    /// The key-spec flags of the key at position `nth` (0: the first key).
    pub fn flags_of_key(&self, nth: usize) -> &'static [&'static str] {
        let declared = if nth == 0 {
            self.key_flags.first
        } else {
            self.key_flags.rest
        };
        match declared {
            [] if self.is_write() => &["RW", "access", "update"],
            [] => &["RO", "access"],
            flags => flags,
        }
    }

    /// The lower-case name (as Redis prints it in replies).
    pub fn lower_name(&self) -> String {
        self.name.to_ascii_lowercase()
    }

    /// Redis's `-ERR wrong number of arguments for 'x' command`.
    pub fn arity_error(&self) -> crate::Frame {
        crate::Frame::error(format!(
            "ERR wrong number of arguments for '{}' command",
            self.lower_name()
        ))
    }
}

/// Declares one command: name, arity, flags, key positions, group, summary, syntax,
/// the serving [`Service`] and its handler, in one row; optionally, after the handler,
/// its keys' Redis key-spec flags (`keys: ["RW", "access", "delete"]`, or the first key's
/// then the others', `keys: [...] / [...]`), [`KeyFlags::DERIVED`] when not given.
///
/// ```
/// use conclave_protocol::command;
/// use conclave_protocol::spec::{Declared, Service, KEY1};
/// static ROWS: &[Declared<fn() -> u8>] = &[
///     command!("GET", 2, ["readonly", "fast"], KEY1, "string",
///         "Returns the string value of a key.", "key", Service::Cache => || 1),
/// ];
/// assert_eq!(ROWS[0].spec.name, "GET");
/// ```
#[macro_export]
macro_rules! command {
    ($name:literal, $arity:expr, [$($flag:literal),*], $keys:expr, $group:literal,
     $summary:literal, $syntax:literal, $service:expr => $handler:expr) => {
        $crate::spec::Declared {
            spec: $crate::spec::CommandSpec {
                name: $name,
                arity: $arity,
                flags: &[$($flag),*],
                keys: $keys,
                group: $group,
                summary: $summary,
                syntax: $syntax,
                service: $service,
                key_flags: $crate::spec::KeyFlags::DERIVED,
            },
            handler: $handler,
        }
    };
    ($name:literal, $arity:expr, [$($flag:literal),*], $keys:expr, $group:literal,
     $summary:literal, $syntax:literal, $service:expr => $handler:expr,
     keys: [$($first:literal),*] $(/ [$($rest:literal),*])?) => {
        $crate::spec::Declared {
            spec: $crate::spec::CommandSpec {
                name: $name,
                arity: $arity,
                flags: &[$($flag),*],
                keys: $keys,
                group: $group,
                summary: $summary,
                syntax: $syntax,
                service: $service,
                key_flags: $crate::spec::KeyFlags {
                    first: &[$($first),*],
                    rest: $crate::command!(@rest [$($first),*] $([$($rest),*])?),
                },
            },
            handler: $handler,
        }
    };
    (@rest [$($first:literal),*]) => { &[$($first),*] };
    (@rest [$($first:literal),*] [$($rest:literal),*]) => { &[$($rest),*] };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arity() {
        let spec = |arity| CommandSpec {
            name: "X",
            arity,
            flags: &["write"],
            keys: NOKEY,
            group: "string",
            summary: "",
            syntax: "",
            service: Service::Cache,
            key_flags: KeyFlags::DERIVED,
        };
        assert!(spec(2).arity_ok(2) && !spec(2).arity_ok(3));
        assert!(spec(-3).arity_ok(3) && spec(-3).arity_ok(9) && !spec(-3).arity_ok(2));
        assert!(spec(2).is_write() && !spec(2).no_auth());
        assert_eq!(spec(2).acl_categories(), ["write", "string", "slow"]);
    }
}
