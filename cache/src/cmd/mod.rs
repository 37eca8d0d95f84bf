//! The string commands, one type per command (or small family), mini-redis style:
//! `parse(&mut Parse) -> Result<Self, ParseError>` reads the arguments and
//! `apply(self, &Keyspace) -> Frame` runs the command and builds the reply.
//!
//! [`COMMANDS`] declares each of them once (name, arity, flags, keys, docs, parser);
//! the server dispatches through that table, then calls [`Command::apply`].

mod bitfield;
mod bits;
mod cache;
mod del;
mod dump;
mod expire;
mod get;
mod incr;
mod introspect;
mod keys;
mod lcs;
mod mset;
mod set;
mod strings;
#[cfg(test)]
mod tests;
mod wait;

pub use bitfield::BitField;
pub use bits::{BitCount, BitOp, BitPos, GetBit, SetBit};
pub use cache::{stats_frame, CacheDir, CacheState, CacheStats, Counters};
pub use del::{Del, Exists};
pub use dump::{Dump, Restore};
pub use expire::{Expire, ExpireTime, Persist, Ttl};
pub use get::{Get, GetDel, GetEx};
pub use incr::{IncrBy, IncrByFloat};
pub use introspect::{Object, ObjectQuery, RandomKey, Touch};
pub use keys::{Copy, DbSize, Flush, Keys, Rename, Scan, Type};
pub use lcs::Lcs;
pub use mset::{MGet, MSet};
pub use set::{GetSet, Set, SetEx, SetNx};
pub(crate) use strings::MAX_STRING_LEN;
pub use strings::{Append, GetRange, SetRange, Strlen};
pub use wait::{Wait, WaitAof};

use conclave_protocol::command;
use conclave_protocol::spec::{Declared, Service, KEY1, KEYS_ALL, KEYS_PAIRS, NOKEY};
use conclave_protocol::{Frame, Parse, ParseError};

use crate::keyspace::{Keyspace, WriteError};

/// A parsed keyspace command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `GET`, `CACHE.GET`
    Get(Get),
    /// `GETDEL`
    GetDel(GetDel),
    /// `GETEX`
    GetEx(GetEx),
    /// `SET`, `CACHE.SET`
    Set(Set),
    /// `SETNX`
    SetNx(SetNx),
    /// `SETEX`, `PSETEX`
    SetEx(SetEx),
    /// `GETSET`
    GetSet(GetSet),
    /// `MGET`
    MGet(MGet),
    /// `MSET`, `MSETNX`
    MSet(MSet),
    /// `DEL`, `UNLINK`, `CACHE.DEL`
    Del(Del),
    /// `EXISTS`
    Exists(Exists),
    /// `INCR`, `DECR`, `INCRBY`, `DECRBY`
    IncrBy(IncrBy),
    /// `INCRBYFLOAT`
    IncrByFloat(IncrByFloat),
    /// `APPEND`
    Append(Append),
    /// `STRLEN`
    Strlen(Strlen),
    /// `GETRANGE`, `SUBSTR`
    GetRange(GetRange),
    /// `SETRANGE`
    SetRange(SetRange),
    /// `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT`
    Expire(Expire),
    /// `TTL`, `PTTL`
    Ttl(Ttl),
    /// `EXPIRETIME`, `PEXPIRETIME`
    ExpireTime(ExpireTime),
    /// `PERSIST`
    Persist(Persist),
    /// `KEYS`
    Keys(Keys),
    /// `SCAN`
    Scan(Scan),
    /// `DBSIZE`
    DbSize(DbSize),
    /// `FLUSHALL`, `FLUSHDB`
    Flush(Flush),
    /// `TYPE`
    Type(Type),
    /// `RENAME`, `RENAMENX`
    Rename(Rename),
    /// `SETBIT`
    SetBit(SetBit),
    /// `GETBIT`
    GetBit(GetBit),
    /// `BITCOUNT`
    BitCount(BitCount),
    /// `BITPOS`
    BitPos(BitPos),
    /// `BITOP`
    BitOp(BitOp),
    /// `BITFIELD`, `BITFIELD_RO`
    BitField(BitField),
    /// `LCS`
    Lcs(Lcs),
    /// `COPY`
    Copy(Copy),
    /// `DUMP`
    Dump(Dump),
    /// `RESTORE`
    Restore(Restore),
    /// `TOUCH`
    Touch(Touch),
    /// `RANDOMKEY`
    RandomKey(RandomKey),
    /// `OBJECT`
    Object(Object),
    /// `WAIT`
    Wait(Wait),
    /// `WAITAOF`
    WaitAof(WaitAof),
    /// `CACHE.STATS`
    CacheStats(CacheStats),
    /// `CACHE.STATE`
    CacheState(CacheState),
    /// `CACHE.DIR`
    CacheDir(CacheDir),
}

/// Parses one command's arguments (after its name) into a [`Command`].
pub type Parser = fn(&mut Parse) -> Result<Command, ParseError>;

/// Every command of the string keyspace (contract section 2), declared once: name,
/// arity, flags, key positions, group, summary, syntax and parser. `COMMAND LIST`
/// shows them in this order.
#[rustfmt::skip]
pub static COMMANDS: &[Declared<Parser>] = {
    use Command as C;
    &[
        command!("DBSIZE", 1, ["readonly", "fast"], NOKEY, "server", "Returns the number of keys in the database.", "", Service::Cache => |p| DbSize::parse(p).map(C::DbSize)),
        command!("FLUSHALL", -1, ["write"], NOKEY, "server", "Removes all keys from all databases.", "[ASYNC | SYNC]", Service::Cache => |p| Flush::parse(p).map(C::Flush)),
        command!("FLUSHDB", -1, ["write"], NOKEY, "server", "Removes all keys from the current database.", "[ASYNC | SYNC]", Service::Cache => |p| Flush::parse(p).map(C::Flush)),
        command!("GET", 2, ["readonly", "fast"], KEY1, "string", "Returns the string value of a key.", "key", Service::Cache => |p| Get::parse(p).map(C::Get), keys: ["RO", "access"]),
        command!("SET", -3, ["write", "denyoom"], KEY1, "string", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", "key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]", Service::Cache => |p| Set::parse(p, "set").map(C::Set), keys: ["OW", "update"]),
        command!("SETNX", 3, ["write", "denyoom", "fast"], KEY1, "string", "Set the string value of a key only when the key doesn't exist.", "key value", Service::Cache => |p| SetNx::parse(p).map(C::SetNx), keys: ["OW", "insert"]),
        command!("SETEX", 4, ["write", "denyoom"], KEY1, "string", "Sets the string value and expiration time of a key.", "key seconds value", Service::Cache => |p| SetEx::parse(p, "setex", true).map(C::SetEx), keys: ["OW", "update"]),
        command!("PSETEX", 4, ["write", "denyoom"], KEY1, "string", "Sets both string value and expiration time in milliseconds of a key.", "key milliseconds value", Service::Cache => |p| SetEx::parse(p, "psetex", false).map(C::SetEx), keys: ["OW", "update"]),
        command!("GETSET", 3, ["write", "denyoom", "fast"], KEY1, "string", "Returns the previous string value of a key after setting it to a new value.", "key value", Service::Cache => |p| GetSet::parse(p).map(C::GetSet), keys: ["RW", "access", "update"]),
        command!("GETDEL", 2, ["write", "fast"], KEY1, "string", "Returns the string value of a key after deleting the key.", "key", Service::Cache => |p| GetDel::parse(p).map(C::GetDel), keys: ["RW", "access", "delete"]),
        command!("GETEX", -2, ["write", "fast"], KEY1, "string", "Returns the string value of a key after setting its expiration time.", "key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]", Service::Cache => |p| GetEx::parse(p).map(C::GetEx), keys: ["RW", "access", "update"]),
        command!("GETRANGE", 4, ["readonly"], KEY1, "string", "Returns a substring of the string stored at a key.", "key start end", Service::Cache => |p| GetRange::parse(p).map(C::GetRange), keys: ["RO", "access"]),
        command!("SETRANGE", 4, ["write", "denyoom"], KEY1, "string", "Overwrites a part of a string value with another by an offset.", "key offset value", Service::Cache => |p| SetRange::parse(p).map(C::SetRange), keys: ["RW", "update"]),
        command!("MGET", -2, ["readonly", "fast"], KEYS_ALL, "string", "Atomically returns the string values of one or more keys.", "key [key ...]", Service::Cache => |p| MGet::parse(p).map(C::MGet), keys: ["RO", "access"]),
        command!("MSET", -3, ["write", "denyoom"], KEYS_PAIRS, "string", "Atomically creates or modifies the string values of one or more keys.", "key value [key value ...]", Service::Cache => |p| MSet::parse(p, false).map(C::MSet), keys: ["OW", "update"]),
        command!("MSETNX", -3, ["write", "denyoom"], KEYS_PAIRS, "string", "Atomically modifies the string values of one or more keys only when all keys don't exist.", "key value [key value ...]", Service::Cache => |p| MSet::parse(p, true).map(C::MSet), keys: ["OW", "insert"]),
        command!("DEL", -2, ["write"], KEYS_ALL, "generic", "Deletes one or more keys.", "key [key ...]", Service::Cache => |p| Del::parse(p).map(C::Del), keys: ["RM", "delete"]),
        command!("UNLINK", -2, ["write", "fast"], KEYS_ALL, "generic", "Asynchronously deletes one or more keys.", "key [key ...]", Service::Cache => |p| Del::parse(p).map(C::Del), keys: ["RM", "delete"]),
        command!("EXISTS", -2, ["readonly", "fast"], KEYS_ALL, "generic", "Determines whether one or more keys exist.", "key [key ...]", Service::Cache => |p| Exists::parse(p).map(C::Exists), keys: ["RO"]),
        command!("TYPE", 2, ["readonly", "fast"], KEY1, "generic", "Determines the type of value stored at a key.", "key", Service::Cache => |p| Type::parse(p).map(C::Type), keys: ["RO"]),
        command!("INCR", 2, ["write", "denyoom", "fast"], KEY1, "string", "Increments the integer value of a key by one.", "key", Service::Cache => |p| IncrBy::parse_fixed(p, 1).map(C::IncrBy), keys: ["RW", "access", "update"]),
        command!("INCRBY", 3, ["write", "denyoom", "fast"], KEY1, "string", "Increments the integer value of a key by a number.", "key increment", Service::Cache => |p| IncrBy::parse_by(p, false).map(C::IncrBy), keys: ["RW", "access", "update"]),
        command!("INCRBYFLOAT", 3, ["write", "denyoom", "fast"], KEY1, "string", "Increment the floating point value of a key by a number.", "key increment", Service::Cache => |p| IncrByFloat::parse(p).map(C::IncrByFloat), keys: ["RW", "access", "update"]),
        command!("DECR", 2, ["write", "denyoom", "fast"], KEY1, "string", "Decrements the integer value of a key by one.", "key", Service::Cache => |p| IncrBy::parse_fixed(p, -1).map(C::IncrBy), keys: ["RW", "access", "update"]),
        command!("DECRBY", 3, ["write", "denyoom", "fast"], KEY1, "string", "Decrements a number from the integer value of a key.", "key decrement", Service::Cache => |p| IncrBy::parse_by(p, true).map(C::IncrBy), keys: ["RW", "access", "update"]),
        command!("APPEND", 3, ["write", "denyoom", "fast"], KEY1, "string", "Appends a string to the value of a key. Creates the key if it doesn't exist.", "key value", Service::Cache => |p| Append::parse(p).map(C::Append), keys: ["RW", "insert"]),
        command!("STRLEN", 2, ["readonly", "fast"], KEY1, "string", "Returns the length of a string value.", "key", Service::Cache => |p| Strlen::parse(p).map(C::Strlen), keys: ["RO"]),
        command!("EXPIRE", -3, ["write", "fast"], KEY1, "generic", "Sets the expiration time of a key in seconds.", "key seconds [NX | XX | GT | LT]", Service::Cache => |p| Expire::parse(p, "expire", true, false).map(C::Expire), keys: ["RW", "update"]),
        command!("PEXPIRE", -3, ["write", "fast"], KEY1, "generic", "Sets the expiration time of a key in milliseconds.", "key milliseconds [NX | XX | GT | LT]", Service::Cache => |p| Expire::parse(p, "pexpire", false, false).map(C::Expire), keys: ["RW", "update"]),
        command!("EXPIREAT", -3, ["write", "fast"], KEY1, "generic", "Sets the expiration time of a key to a Unix timestamp.", "key unix-time-seconds [NX | XX | GT | LT]", Service::Cache => |p| Expire::parse(p, "expireat", true, true).map(C::Expire), keys: ["RW", "update"]),
        command!("PEXPIREAT", -3, ["write", "fast"], KEY1, "generic", "Sets the expiration time of a key to a Unix milliseconds timestamp.", "key unix-time-milliseconds [NX | XX | GT | LT]", Service::Cache => |p| Expire::parse(p, "pexpireat", false, true).map(C::Expire), keys: ["RW", "update"]),
        command!("TTL", 2, ["readonly", "fast"], KEY1, "generic", "Returns the expiration time in seconds of a key.", "key", Service::Cache => |p| Ttl::parse(p, false).map(C::Ttl), keys: ["RO", "access"]),
        command!("PTTL", 2, ["readonly", "fast"], KEY1, "generic", "Returns the expiration time in milliseconds of a key.", "key", Service::Cache => |p| Ttl::parse(p, true).map(C::Ttl), keys: ["RO", "access"]),
        command!("PERSIST", 2, ["write", "fast"], KEY1, "generic", "Removes the expiration time of a key.", "key", Service::Cache => |p| Persist::parse(p).map(C::Persist), keys: ["RW", "update"]),
        command!("KEYS", 2, ["readonly"], NOKEY, "generic", "Returns all key names that match a pattern.", "pattern", Service::Cache => |p| Keys::parse(p).map(C::Keys)),
        command!("SCAN", -2, ["readonly"], NOKEY, "generic", "Iterates over the key names in the database.", "cursor [MATCH pattern] [COUNT count] [TYPE type]", Service::Cache => |p| Scan::parse(p).map(C::Scan)),
        command!("RENAME", 3, ["write"], (1, 2, 1), "generic", "Renames a key and overwrites the destination.", "key newkey", Service::Cache => |p| Rename::parse(p, false).map(C::Rename), keys: ["RW", "access", "delete"] / ["OW", "update"]),
        command!("RENAMENX", 3, ["write", "fast"], (1, 2, 1), "generic", "Renames a key only when the target key name doesn't exist.", "key newkey", Service::Cache => |p| Rename::parse(p, true).map(C::Rename), keys: ["RW", "access", "delete"] / ["OW", "insert"]),
        command!("EXPIRETIME", 2, ["readonly", "fast"], KEY1, "generic", "Returns the expiration time of a key as a Unix timestamp.", "key", Service::Cache => |p| ExpireTime::parse(p, false).map(C::ExpireTime), keys: ["RO", "access"]),
        command!("PEXPIRETIME", 2, ["readonly", "fast"], KEY1, "generic", "Returns the expiration time of a key as a Unix milliseconds timestamp.", "key", Service::Cache => |p| ExpireTime::parse(p, true).map(C::ExpireTime), keys: ["RO", "access"]),
        command!("SUBSTR", 4, ["readonly"], KEY1, "string", "Returns a substring from a string value.", "key start end", Service::Cache => |p| GetRange::parse(p).map(C::GetRange), keys: ["RO", "access"]),
        command!("SETBIT", 4, ["write", "denyoom"], KEY1, "bitmap", "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.", "key offset value", Service::Cache => |p| SetBit::parse(p).map(C::SetBit), keys: ["RW", "access", "update"]),
        command!("GETBIT", 3, ["readonly", "fast"], KEY1, "bitmap", "Returns a bit value by offset.", "key offset", Service::Cache => |p| GetBit::parse(p).map(C::GetBit), keys: ["RO", "access"]),
        command!("BITCOUNT", -2, ["readonly"], KEY1, "bitmap", "Counts the number of set bits (population counting) in a string.", "key [start end [BYTE | BIT]]", Service::Cache => |p| BitCount::parse(p).map(C::BitCount), keys: ["RO", "access"]),
        command!("BITPOS", -3, ["readonly"], KEY1, "bitmap", "Finds the first set (1) or clear (0) bit in a string.", "key bit [start [end [BYTE | BIT]]]", Service::Cache => |p| BitPos::parse(p).map(C::BitPos), keys: ["RO", "access"]),
        command!("BITOP", -4, ["write", "denyoom"], (2, -1, 1), "bitmap", "Performs bitwise operations on multiple strings, and stores the result.", "AND | OR | XOR | NOT destkey key [key ...]", Service::Cache => |p| BitOp::parse(p).map(C::BitOp), keys: ["OW", "update"] / ["RO", "access"]),
        command!("BITFIELD", -2, ["write", "denyoom"], KEY1, "bitmap", "Performs arbitrary bitfield integer operations on strings.", "key [GET encoding offset | SET encoding offset value | INCRBY encoding offset increment | OVERFLOW wrap-sat-or-fail] [...]", Service::Cache => |p| BitField::parse(p, false).map(C::BitField), keys: ["RW", "access", "update"]),
        command!("BITFIELD_RO", -2, ["readonly", "fast"], KEY1, "bitmap", "Performs arbitrary read-only bitfield integer operations on strings.", "key [GET encoding offset ...]", Service::Cache => |p| BitField::parse(p, true).map(C::BitField), keys: ["RO", "access"]),
        command!("LCS", -3, ["readonly"], (1, 2, 1), "string", "Finds the longest common substring.", "key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]", Service::Cache => |p| Lcs::parse(p).map(C::Lcs), keys: ["RO", "access"]),
        command!("COPY", -3, ["write", "denyoom"], (1, 2, 1), "generic", "Copies the value of a key to a new key.", "source destination [DB destination-db] [REPLACE]", Service::Cache => |p| Copy::parse(p).map(C::Copy), keys: ["RO", "access"] / ["OW", "update"]),
        command!("DUMP", 2, ["readonly"], KEY1, "generic", "Returns a serialized representation of the value stored at a key.", "key", Service::Cache => |p| Dump::parse(p).map(C::Dump), keys: ["RO", "access"]),
        command!("RESTORE", -4, ["write", "denyoom"], KEY1, "generic", "Creates a key from the serialized representation of a value.", "key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]", Service::Cache => |p| Restore::parse(p).map(C::Restore), keys: ["OW", "update"]),
        command!("RESTORE-ASKING", -4, ["write", "denyoom", "asking"], KEY1, "server", "An internal command for migrating keys in a cluster (RESTORE).", "key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]", Service::Cache => |p| Restore::parse(p).map(C::Restore), keys: ["OW", "update"]),
        command!("TOUCH", -2, ["readonly", "fast"], KEYS_ALL, "generic", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", "key [key ...]", Service::Cache => |p| Touch::parse(p).map(C::Touch), keys: ["RO"]),
        command!("RANDOMKEY", 1, ["readonly"], NOKEY, "generic", "Returns a random key name from the database.", "", Service::Cache => |p| RandomKey::parse(p).map(C::RandomKey)),
        command!("OBJECT", -2, [], NOKEY, "generic", "A container for object introspection commands.", "ENCODING | FREQ | IDLETIME | REFCOUNT key | HELP", Service::Cache => |p| Object::parse(p).map(C::Object)),
        command!("WAIT", 3, ["noscript"], NOKEY, "generic", "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed (the keyspace is not replicated: answers 0 at once).", "numreplicas timeout", Service::Cache => |p| Wait::parse(p).map(C::Wait)),
        command!("WAITAOF", 4, ["noscript"], NOKEY, "generic", "Blocks until all of the preceding write commands sent by the connection are written to the append-only file of the master and/or replicas (there is none: answers [0, 0] at once).", "numlocal numreplicas timeout", Service::Cache => |p| WaitAof::parse(p).map(C::WaitAof)),
        command!("CACHE.GET", 2, ["readonly", "fast"], KEY1, "cache", "GET from this node's cache (synonym of GET).", "key", Service::Cache => |p| Get::parse(p).map(C::Get), keys: ["RO", "access"]),
        command!("CACHE.SET", -3, ["write", "denyoom"], KEY1, "cache", "SET in this node's cache (synonym of SET).", "key value [EX seconds | PX milliseconds]", Service::Cache => |p| Set::parse(p, "cache.set").map(C::Set), keys: ["OW", "update"]),
        command!("CACHE.DEL", -2, ["write"], KEYS_ALL, "cache", "DEL from this node's cache (synonym of DEL).", "key [key ...]", Service::Cache => |p| Del::parse(p).map(C::Del), keys: ["RM", "delete"]),
        command!("CACHE.STATS", 1, ["readonly", "fast"], NOKEY, "cache", "Cache hit/miss, size, eviction and expiry counters.", "", Service::Cache => |p| CacheStats::parse(p).map(C::CacheStats)),
        command!("CACHE.STATE", 2, ["readonly", "fast"], KEY1, "cache", "This node's MESI state of a key (M, E, S or I).", "key", Service::Cache => |p| CacheState::parse(p).map(C::CacheState), keys: ["RO"]),
        command!("CACHE.DIR", 2, ["readonly"], KEY1, "cache", "The directory entry of a key at its home: home, epoch, owner, sharers.", "key", Service::Cache => |p| CacheDir::parse(p).map(C::CacheDir)),
    ]
};

/// The declaration of the keyspace command `name` (any case); a linear scan, for tests
/// and tools (the server indexes every service's table once).
pub fn lookup(name: &str) -> Option<&'static Declared<Parser>> {
    COMMANDS
        .iter()
        .find(|c| c.spec.name.eq_ignore_ascii_case(name))
}

impl Command {
    /// Parses a keyspace command by its name (`parse.name()`), checking the declared
    /// arity first as the server's dispatch does; `None` when it is not one of
    /// [`COMMANDS`].
    pub fn from_parse(parse: &mut Parse) -> Option<Result<Command, ParseError>> {
        let declared = lookup(parse.name())?;
        if !declared.spec.arity_ok(parse.argc()) {
            return Some(Err(parse.arity_error()));
        }
        Some((declared.handler)(parse))
    }

    /// Runs the command against `ks` and returns its reply.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        match self {
            Command::Get(c) => c.apply(ks),
            Command::GetDel(c) => c.apply(ks),
            Command::GetEx(c) => c.apply(ks),
            Command::Set(c) => c.apply(ks),
            Command::SetNx(c) => c.apply(ks),
            Command::SetEx(c) => c.apply(ks),
            Command::GetSet(c) => c.apply(ks),
            Command::MGet(c) => c.apply(ks),
            Command::MSet(c) => c.apply(ks),
            Command::Del(c) => c.apply(ks),
            Command::Exists(c) => c.apply(ks),
            Command::IncrBy(c) => c.apply(ks),
            Command::IncrByFloat(c) => c.apply(ks),
            Command::Append(c) => c.apply(ks),
            Command::Strlen(c) => c.apply(ks),
            Command::GetRange(c) => c.apply(ks),
            Command::SetRange(c) => c.apply(ks),
            Command::Expire(c) => c.apply(ks),
            Command::Ttl(c) => c.apply(ks),
            Command::ExpireTime(c) => c.apply(ks),
            Command::Persist(c) => c.apply(ks),
            Command::Keys(c) => c.apply(ks),
            Command::Scan(c) => c.apply(ks),
            Command::DbSize(c) => c.apply(ks),
            Command::Flush(c) => c.apply(ks),
            Command::Type(c) => c.apply(ks),
            Command::Rename(c) => c.apply(ks),
            Command::SetBit(c) => c.apply(ks),
            Command::GetBit(c) => c.apply(ks),
            Command::BitCount(c) => c.apply(ks),
            Command::BitPos(c) => c.apply(ks),
            Command::BitOp(c) => c.apply(ks),
            Command::BitField(c) => c.apply(ks),
            Command::Lcs(c) => c.apply(ks),
            Command::Copy(c) => c.apply(ks),
            Command::Dump(c) => c.apply(ks),
            Command::Restore(c) => c.apply(ks),
            Command::Touch(c) => c.apply(ks),
            Command::RandomKey(c) => c.apply(ks),
            Command::Object(c) => c.apply(ks),
            Command::Wait(c) => c.apply(ks),
            Command::WaitAof(c) => c.apply(ks),
            Command::CacheStats(c) => c.apply(ks),
            Command::CacheState(c) => c.apply(ks),
            Command::CacheDir(c) => c.apply(ks),
        }
    }

    /// Whether the command may write to the keyspace (for replication, coherence and
    /// `maxmemory` decisions in the server).
    pub fn is_write(&self) -> bool {
        !matches!(
            self,
            Command::Get(_)
                | Command::MGet(_)
                | Command::Exists(_)
                | Command::Strlen(_)
                | Command::GetRange(_)
                | Command::Ttl(_)
                | Command::ExpireTime(_)
                | Command::Keys(_)
                | Command::Scan(_)
                | Command::DbSize(_)
                | Command::Type(_)
                | Command::GetBit(_)
                | Command::BitCount(_)
                | Command::BitPos(_)
                | Command::Lcs(_)
                | Command::Touch(_)
                | Command::Dump(_)
                | Command::RandomKey(_)
                | Command::Object(_)
                | Command::Wait(_)
                | Command::WaitAof(_)
                | Command::CacheStats(_)
                | Command::CacheState(_)
                | Command::CacheDir(_)
        )
    }
}

/// The reply for a refused write.
pub(crate) fn write_error(e: WriteError) -> Frame {
    Frame::error(e.to_string())
}

/// A bulk reply for an optional value.
pub(crate) fn bulk_or_null(value: Option<bytes::Bytes>) -> Frame {
    value.map_or(Frame::Null, Frame::Bulk)
}
