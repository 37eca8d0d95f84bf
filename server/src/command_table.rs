//! The table of every command a node knows: name, arity, flags, key positions, group,
//! summary and argument syntax.
//!
//! It drives the central checks every request goes through (unknown command, wrong
//! arity, whether it may run before `AUTH`) and the `COMMAND` family's replies. The
//! argument syntax is written once as Redis documents it (`key value [NX | XX]`) and
//! turned into the structured `COMMAND DOCS` reply that `redis-cli` builds its hints
//! from.

use std::collections::HashMap;
use std::sync::LazyLock;

use conclave_commands::Frame;

/// One command.
#[derive(Debug)]
pub struct CommandSpec {
    /// Upper-case name.
    pub name: &'static str,
    /// Redis arity: `n > 0` exactly n arguments (name included), `-n` at least n.
    pub arity: i32,
    /// Redis command flags (`readonly`, `write`, `fast`, `noauth`, ...).
    pub flags: &'static [&'static str],
    /// First key argument, last key argument (-1 = last) and step (0 = no keys).
    pub keys: (i32, i32, i32),
    /// Command group as in Redis's docs (`string`, `connection`, `server`, ...).
    pub group: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Argument syntax after the name, Redis-doc style.
    pub syntax: &'static str,
}

impl CommandSpec {
    /// Whether `argc` (name included) satisfies the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i32;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    /// Whether the command may run before authentication.
    pub fn no_auth(&self) -> bool {
        self.flags.contains(&"no_auth")
    }

    /// The lower-case name (as Redis prints it in replies).
    pub fn lower_name(&self) -> String {
        self.name.to_ascii_lowercase()
    }

    /// This command's position in [`COMMANDS`] (for per-command slots such as the
    /// metrics'); `usize::MAX` for a spec that is not in the table.
    #[inline]
    pub fn index(&self) -> usize {
        let base = COMMANDS.as_ptr() as usize;
        let at = self as *const CommandSpec as usize;
        let offset = at.wrapping_sub(base) / std::mem::size_of::<CommandSpec>();
        if at >= base && offset < COMMANDS.len() {
            offset
        } else {
            usize::MAX
        }
    }
}

macro_rules! spec {
    ($name:literal, $arity:expr, [$($flag:literal),*], $keys:expr, $group:literal, $summary:literal, $syntax:literal) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: &[$($flag),*],
            keys: $keys,
            group: $group,
            summary: $summary,
            syntax: $syntax,
        }
    };
}

const NOKEY: (i32, i32, i32) = (0, 0, 0);
const KEY1: (i32, i32, i32) = (1, 1, 1);
const KEYS_ALL: (i32, i32, i32) = (1, -1, 1);
const KEYS_PAIRS: (i32, i32, i32) = (1, -1, 2);

/// Every command, in `COMMAND LIST` order.
pub static COMMANDS: &[CommandSpec] = &[
    // connection
    spec!("PING", -1, ["fast", "stale"], NOKEY, "connection", "Returns the server's liveliness response.", "[message]"),
    spec!("ECHO", 2, ["fast"], NOKEY, "connection", "Returns the given string.", "message"),
    spec!("HELLO", -1, ["no_auth", "fast", "stale"], NOKEY, "connection", "Handshakes with the server.", "[protover [AUTH username password] [SETNAME clientname]]"),
    spec!("AUTH", -2, ["no_auth", "fast", "stale"], NOKEY, "connection", "Authenticates the connection.", "[username] password"),
    spec!("SELECT", 2, ["fast", "stale"], NOKEY, "connection", "Changes the selected database (only 0 exists).", "index"),
    spec!("QUIT", -1, ["no_auth", "fast", "stale"], NOKEY, "connection", "Closes the connection.", ""),
    spec!("RESET", 1, ["no_auth", "fast", "stale"], NOKEY, "connection", "Resets the connection.", ""),
    spec!("CLIENT", -2, ["stale"], NOKEY, "connection", "A container for client connection commands.", "ID|SETNAME|GETNAME|SETINFO|INFO|LIST|KILL [arguments ...]"),
    // server
    spec!("COMMAND", -1, ["stale"], NOKEY, "server", "Returns detailed information about all commands.", "[COUNT|INFO|DOCS|LIST [arguments ...]]"),
    spec!("CONFIG", -2, ["admin", "stale"], NOKEY, "server", "A container for server configuration commands.", "GET|SET parameter [value] [parameter value ...]"),
    spec!("INFO", -1, ["stale"], NOKEY, "server", "Returns information and statistics about the server.", "[section [section ...]]"),
    spec!("DBSIZE", 1, ["readonly", "fast"], NOKEY, "server", "Returns the number of keys in the database.", ""),
    spec!("TIME", 1, ["fast", "stale"], NOKEY, "server", "Returns the server time.", ""),
    spec!("FLUSHALL", -1, ["write"], NOKEY, "server", "Removes all keys from all databases.", "[ASYNC | SYNC]"),
    spec!("FLUSHDB", -1, ["write"], NOKEY, "server", "Removes all keys from the current database.", "[ASYNC | SYNC]"),
    spec!("SHUTDOWN", -1, ["admin", "no_auth_checked"], NOKEY, "server", "Stops the node.", "[NOSAVE | SAVE] [NOW] [FORCE] [ABORT]"),
    spec!("CLUSTER", -2, ["stale"], NOKEY, "cluster", "Redis Cluster commands (cluster support is disabled).", "subcommand [arguments ...]"),
    // strings / keyspace
    spec!("GET", 2, ["readonly", "fast"], KEY1, "string", "Returns the string value of a key.", "key"),
    spec!("SET", -3, ["write", "denyoom"], KEY1, "string", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", "key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]"),
    spec!("SETNX", 3, ["write", "denyoom", "fast"], KEY1, "string", "Set the string value of a key only when the key doesn't exist.", "key value"),
    spec!("SETEX", 4, ["write", "denyoom"], KEY1, "string", "Sets the string value and expiration time of a key.", "key seconds value"),
    spec!("PSETEX", 4, ["write", "denyoom"], KEY1, "string", "Sets both string value and expiration time in milliseconds of a key.", "key milliseconds value"),
    spec!("GETSET", 3, ["write", "denyoom", "fast"], KEY1, "string", "Returns the previous string value of a key after setting it to a new value.", "key value"),
    spec!("GETDEL", 2, ["write", "fast"], KEY1, "string", "Returns the string value of a key after deleting the key.", "key"),
    spec!("GETEX", -2, ["write", "fast"], KEY1, "string", "Returns the string value of a key after setting its expiration time.", "key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]"),
    spec!("GETRANGE", 4, ["readonly"], KEY1, "string", "Returns a substring of the string stored at a key.", "key start end"),
    spec!("SETRANGE", 4, ["write", "denyoom"], KEY1, "string", "Overwrites a part of a string value with another by an offset.", "key offset value"),
    spec!("MGET", -2, ["readonly", "fast"], KEYS_ALL, "string", "Atomically returns the string values of one or more keys.", "key [key ...]"),
    spec!("MSET", -3, ["write", "denyoom"], KEYS_PAIRS, "string", "Atomically creates or modifies the string values of one or more keys.", "key value [key value ...]"),
    spec!("MSETNX", -3, ["write", "denyoom"], KEYS_PAIRS, "string", "Atomically modifies the string values of one or more keys only when all keys don't exist.", "key value [key value ...]"),
    spec!("DEL", -2, ["write"], KEYS_ALL, "generic", "Deletes one or more keys.", "key [key ...]"),
    spec!("UNLINK", -2, ["write", "fast"], KEYS_ALL, "generic", "Asynchronously deletes one or more keys.", "key [key ...]"),
    spec!("EXISTS", -2, ["readonly", "fast"], KEYS_ALL, "generic", "Determines whether one or more keys exist.", "key [key ...]"),
    spec!("TYPE", 2, ["readonly", "fast"], KEY1, "generic", "Determines the type of value stored at a key.", "key"),
    spec!("INCR", 2, ["write", "denyoom", "fast"], KEY1, "string", "Increments the integer value of a key by one.", "key"),
    spec!("INCRBY", 3, ["write", "denyoom", "fast"], KEY1, "string", "Increments the integer value of a key by a number.", "key increment"),
    spec!("INCRBYFLOAT", 3, ["write", "denyoom", "fast"], KEY1, "string", "Increment the floating point value of a key by a number.", "key increment"),
    spec!("DECR", 2, ["write", "denyoom", "fast"], KEY1, "string", "Decrements the integer value of a key by one.", "key"),
    spec!("DECRBY", 3, ["write", "denyoom", "fast"], KEY1, "string", "Decrements a number from the integer value of a key.", "key decrement"),
    spec!("APPEND", 3, ["write", "denyoom", "fast"], KEY1, "string", "Appends a string to the value of a key. Creates the key if it doesn't exist.", "key value"),
    spec!("STRLEN", 2, ["readonly", "fast"], KEY1, "string", "Returns the length of a string value.", "key"),
    spec!("EXPIRE", -3, ["write", "fast"], KEY1, "generic", "Sets the expiration time of a key in seconds.", "key seconds [NX | XX | GT | LT]"),
    spec!("PEXPIRE", -3, ["write", "fast"], KEY1, "generic", "Sets the expiration time of a key in milliseconds.", "key milliseconds [NX | XX | GT | LT]"),
    spec!("EXPIREAT", -3, ["write", "fast"], KEY1, "generic", "Sets the expiration time of a key to a Unix timestamp.", "key unix-time-seconds [NX | XX | GT | LT]"),
    spec!("PEXPIREAT", -3, ["write", "fast"], KEY1, "generic", "Sets the expiration time of a key to a Unix milliseconds timestamp.", "key unix-time-milliseconds [NX | XX | GT | LT]"),
    spec!("TTL", 2, ["readonly", "fast"], KEY1, "generic", "Returns the expiration time in seconds of a key.", "key"),
    spec!("PTTL", 2, ["readonly", "fast"], KEY1, "generic", "Returns the expiration time in milliseconds of a key.", "key"),
    spec!("PERSIST", 2, ["write", "fast"], KEY1, "generic", "Removes the expiration time of a key.", "key"),
    spec!("KEYS", 2, ["readonly"], NOKEY, "generic", "Returns all key names that match a pattern.", "pattern"),
    spec!("SCAN", -2, ["readonly"], NOKEY, "generic", "Iterates over the key names in the database.", "cursor [MATCH pattern] [COUNT count] [TYPE type]"),
    spec!("RENAME", 3, ["write"], (1, 2, 1), "generic", "Renames a key and overwrites the destination.", "key newkey"),
    // cache
    spec!("CACHE.GET", 2, ["readonly", "fast"], KEY1, "cache", "GET from this node's cache (synonym of GET).", "key"),
    spec!("CACHE.SET", -3, ["write", "denyoom"], KEY1, "cache", "SET in this node's cache (synonym of SET).", "key value [EX seconds | PX milliseconds]"),
    spec!("CACHE.DEL", -2, ["write"], KEYS_ALL, "cache", "DEL from this node's cache (synonym of DEL).", "key [key ...]"),
    spec!("CACHE.STATS", 1, ["readonly", "fast"], NOKEY, "cache", "Cache hit/miss, size, eviction and expiry counters.", ""),
    spec!("CACHE.STATE", 2, ["readonly", "fast"], KEY1, "cache", "This node's MESI state of a key (M, E, S or I).", "key"),
    // locks
    spec!("LOCK.ACQUIRE", -3, ["write"], KEY1, "lock", "Acquires a replicated lock; replies a fencing token, or null when not granted within the wait.", "resource owner [SHARED | EXCLUSIVE] [TTL milliseconds] [WAIT milliseconds]"),
    spec!("LOCK.RELEASE", 3, ["write", "fast"], KEY1, "lock", "Releases a lock held by an owner.", "resource owner"),
    spec!("LOCK.RENEW", 4, ["write", "fast"], KEY1, "lock", "Renews the lease of a held lock.", "resource owner milliseconds"),
    spec!("LOCK.UPGRADE", -3, ["write"], KEY1, "lock", "Upgrades a shared lock to exclusive.", "resource owner [WAIT milliseconds]"),
    spec!("LOCK.DOWNGRADE", 3, ["write", "fast"], KEY1, "lock", "Downgrades an exclusive lock to shared.", "resource owner"),
    spec!("LOCK.CHECK", 3, ["readonly", "fast"], KEY1, "lock", "Whether a fencing token belongs to a current holder.", "resource token"),
    spec!("LOCK.INFO", 2, ["readonly", "fast"], KEY1, "lock", "Mode, holders and waiters of a lock.", "resource"),
    spec!("RAFT.STATUS", 1, ["readonly", "fast", "stale"], NOKEY, "cluster", "This node's Raft role, term, leader, indexes and members.", ""),
];

static BY_NAME: LazyLock<HashMap<&'static [u8], &'static CommandSpec>> =
    LazyLock::new(|| COMMANDS.iter().map(|c| (c.name.as_bytes(), c)).collect());

/// Finds a command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut upper = [0u8; 32];
    let buf = upper.get_mut(..name.len())?;
    for (dst, src) in buf.iter_mut().zip(name) {
        *dst = src.to_ascii_uppercase();
    }
    BY_NAME.get(&buf[..]).copied()
}

/// The `COMMAND` / `COMMAND INFO` entry of one command.
pub fn info_entry(spec: &CommandSpec) -> Frame {
    let (first, last, step) = spec.keys;
    Frame::Array(vec![
        Frame::bulk_string(spec.lower_name()),
        Frame::Integer(spec.arity as i64),
        Frame::Set(spec.flags.iter().map(|f| Frame::simple(f)).collect()),
        Frame::Integer(first as i64),
        Frame::Integer(last as i64),
        Frame::Integer(step as i64),
        Frame::Set(vec![Frame::Simple(format!("@{}", spec.group).into())]),
        Frame::Set(vec![]),
        Frame::Array(vec![]),
        Frame::Array(vec![]),
    ])
}

/// The `COMMAND DOCS` entry of one command: `summary`, `since`, `group`,
/// `complexity`, `arguments`.
pub fn docs_entry(spec: &CommandSpec) -> Frame {
    let mut fields = vec![
        (
            Frame::bulk_static("summary"),
            Frame::bulk_static(spec.summary),
        ),
        (Frame::bulk_static("since"), Frame::bulk_static("1.0.0")),
        (Frame::bulk_static("group"), Frame::bulk_static(spec.group)),
        (Frame::bulk_static("complexity"), Frame::bulk_static("O(1)")),
    ];
    let args = syntax::parse(spec.syntax);
    if !args.is_empty() {
        fields.push((
            Frame::bulk_static("arguments"),
            Frame::Array(args.iter().map(syntax::Arg::to_frame).collect()),
        ));
    }
    Frame::Map(fields)
}

/// Turns Redis-doc argument syntax into `COMMAND DOCS` argument maps.
mod syntax {
    use conclave_commands::Frame;

    /// One documented argument.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Arg {
        pub name: String,
        pub kind: Kind,
        pub optional: bool,
        pub multiple: bool,
    }

    /// The argument's doc type.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Kind {
        /// A user-supplied value (`key`, `string`, `integer`).
        Value(&'static str),
        /// A fixed keyword.
        Token,
        /// One of several alternatives.
        OneOf(Vec<Arg>),
        /// A keyword followed by a value, or a sequence.
        Block(Vec<Arg>),
    }

    impl Arg {
        pub fn to_frame(&self) -> Frame {
            let mut m = vec![(
                Frame::bulk_static("name"),
                Frame::bulk_string(self.name.to_lowercase()),
            )];
            let ty = match &self.kind {
                Kind::Value(t) => t,
                Kind::Token => "pure-token",
                Kind::OneOf(_) => "oneof",
                Kind::Block(_) => "block",
            };
            m.push((Frame::bulk_static("type"), Frame::bulk_static(ty)));
            if self.kind == Kind::Token {
                m.push((
                    Frame::bulk_static("token"),
                    Frame::bulk_string(self.name.clone()),
                ));
            }
            let mut flags = Vec::new();
            if self.optional {
                flags.push(Frame::simple("optional"));
            }
            if self.multiple {
                flags.push(Frame::simple("multiple"));
            }
            if !flags.is_empty() {
                m.push((Frame::bulk_static("flags"), Frame::Set(flags)));
            }
            if let Kind::OneOf(items) | Kind::Block(items) = &self.kind {
                m.push((
                    Frame::bulk_static("arguments"),
                    Frame::Array(items.iter().map(Arg::to_frame).collect()),
                ));
            }
            Frame::Map(m)
        }
    }

    /// Parses `key value [NX | XX] [EX seconds | PX milliseconds] [key ...]`.
    pub fn parse(text: &str) -> Vec<Arg> {
        let tokens = tokenize(text);
        let mut pos = 0;
        seq(&tokens, &mut pos)
    }

    fn tokenize(text: &str) -> Vec<String> {
        let spaced = text
            .replace('[', " [ ")
            .replace(']', " ] ")
            .replace('|', " | ");
        spaced.split_whitespace().map(str::to_string).collect()
    }

    /// A sequence until `]` or `|` or the end.
    fn seq(tokens: &[String], pos: &mut usize) -> Vec<Arg> {
        let mut out: Vec<Arg> = Vec::new();
        while let Some(t) = tokens.get(*pos) {
            match t.as_str() {
                "]" | "|" => break,
                "[" => {
                    *pos += 1;
                    let mut alts = vec![seq(tokens, pos)];
                    while tokens.get(*pos).map(String::as_str) == Some("|") {
                        *pos += 1;
                        alts.push(seq(tokens, pos));
                    }
                    *pos += 1; // the closing bracket
                    let mut arg = group(alts);
                    arg.optional = true;
                    out.push(arg);
                }
                "..." => {
                    *pos += 1;
                    if let Some(last) = out.last_mut() {
                        last.multiple = true;
                    }
                }
                word => {
                    *pos += 1;
                    // `[key ...]` repeats the argument before it: fold it into that one.
                    if tokens.get(*pos).map(String::as_str) == Some("...")
                        && out.last().map(|a| a.name.as_str()) == Some(word)
                    {
                        continue;
                    }
                    out.push(word_arg(word));
                }
            }
        }
        // A sequence `KEYWORD value` is one block named after the value.
        out
    }

    fn group(mut alts: Vec<Vec<Arg>>) -> Arg {
        if alts.len() == 1 {
            let items = alts.remove(0);
            return block(items);
        }
        let items: Vec<Arg> = alts.into_iter().map(block).collect();
        let name = items
            .iter()
            .map(|a| a.name.clone())
            .collect::<Vec<_>>()
            .join("-");
        Arg {
            name,
            kind: Kind::OneOf(items),
            optional: false,
            multiple: false,
        }
    }

    fn block(mut items: Vec<Arg>) -> Arg {
        if items.len() == 1 {
            return items.remove(0);
        }
        let name = items
            .iter()
            .rev()
            .find(|a| a.kind != Kind::Token)
            .or(items.first())
            .map(|a| a.name.clone())
            .unwrap_or_default();
        Arg {
            name,
            kind: Kind::Block(items),
            optional: false,
            multiple: false,
        }
    }

    fn word_arg(word: &str) -> Arg {
        let is_token = word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '-' || c == '_' || c.is_ascii_digit())
            && word.chars().any(|c| c.is_ascii_uppercase());
        let kind = if is_token {
            Kind::Token
        } else if word == "key" || word == "newkey" || word == "resource" {
            Kind::Value("key")
        } else if matches!(
            word,
            "seconds"
                | "milliseconds"
                | "cursor"
                | "count"
                | "index"
                | "offset"
                | "start"
                | "end"
                | "token"
                | "increment"
                | "decrement"
                | "protover"
        ) || word.starts_with("unix-time")
        {
            Kind::Value("integer")
        } else {
            Kind::Value("string")
        };
        Arg {
            name: word.to_string(),
            kind,
            optional: false,
            multiple: false,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn set_syntax() {
            let args = parse("key value [NX | XX] [GET] [EX seconds | PX milliseconds | KEEPTTL]");
            assert_eq!(args.len(), 5);
            assert_eq!(args[0].kind, Kind::Value("key"));
            assert!(matches!(&args[2].kind, Kind::OneOf(v) if v.len() == 2));
            assert!(args[2].optional);
            assert_eq!(args[3].kind, Kind::Token);
            let Kind::OneOf(expiry) = &args[4].kind else {
                panic!("oneof")
            };
            assert!(matches!(&expiry[0].kind, Kind::Block(v) if v.len() == 2));
            assert_eq!(expiry[2].kind, Kind::Token);
        }

        #[test]
        fn repeated_keys() {
            let args = parse("key [key ...]");
            assert_eq!(args.len(), 2);
            assert!(args[1].optional && args[1].multiple);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive() {
        assert_eq!(lookup(b"get").map(|c| c.name), Some("GET"));
        assert_eq!(
            lookup(b"LoCk.AcQuIrE").map(|c| c.name),
            Some("LOCK.ACQUIRE")
        );
        assert!(lookup(b"nope").is_none());
        assert!(lookup(&[b'a'; 100]).is_none());
    }

    #[test]
    fn index_is_the_table_position() {
        for (i, spec) in COMMANDS.iter().enumerate() {
            assert_eq!(spec.index(), i, "{}", spec.name);
        }
        let stray = CommandSpec {
            name: "X",
            arity: 1,
            flags: &[],
            keys: NOKEY,
            group: "server",
            summary: "",
            syntax: "",
        };
        assert_eq!(stray.index(), usize::MAX);
    }

    #[test]
    fn arity() {
        let get = lookup(b"GET").unwrap();
        assert!(get.arity_ok(2) && !get.arity_ok(3));
        let set = lookup(b"SET").unwrap();
        assert!(set.arity_ok(3) && set.arity_ok(9) && !set.arity_ok(2));
    }

    #[test]
    fn every_command_documents() {
        for spec in COMMANDS {
            assert!(matches!(docs_entry(spec), Frame::Map(_)), "{}", spec.name);
        }
    }
}
