//! The keyspace's vocabulary: configuration, eviction policy, counters, and the
//! options and outcomes of its write primitives.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use thiserror::Error;

/// What to do when a write would exceed `maxmemory`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EvictionPolicy {
    /// Evict the approximately least recently used key (`allkeys-lru`).
    #[default]
    AllKeysLru,
    /// Refuse writes with `-OOM` (`noeviction`).
    NoEviction,
    /// Evict the approximately least recently used key that has a TTL (`volatile-lru`).
    VolatileLru,
    /// Evict a random key (`allkeys-random`).
    AllKeysRandom,
}

impl EvictionPolicy {
    /// The Redis name (`allkeys-lru`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EvictionPolicy::AllKeysLru => "allkeys-lru",
            EvictionPolicy::NoEviction => "noeviction",
            EvictionPolicy::VolatileLru => "volatile-lru",
            EvictionPolicy::AllKeysRandom => "allkeys-random",
        }
    }

    pub(super) fn to_u8(self) -> u8 {
        match self {
            EvictionPolicy::AllKeysLru => 0,
            EvictionPolicy::NoEviction => 1,
            EvictionPolicy::VolatileLru => 2,
            EvictionPolicy::AllKeysRandom => 3,
        }
    }

    pub(super) fn from_u8(v: u8) -> EvictionPolicy {
        match v {
            1 => EvictionPolicy::NoEviction,
            2 => EvictionPolicy::VolatileLru,
            3 => EvictionPolicy::AllKeysRandom,
            _ => EvictionPolicy::AllKeysLru,
        }
    }
}

impl fmt::Display for EvictionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An eviction policy name that is not supported.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("unknown maxmemory-policy '{0}'")]
pub struct UnknownPolicy(pub String);

impl FromStr for EvictionPolicy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "allkeys-lru" => Ok(EvictionPolicy::AllKeysLru),
            "noeviction" => Ok(EvictionPolicy::NoEviction),
            "volatile-lru" => Ok(EvictionPolicy::VolatileLru),
            "allkeys-random" => Ok(EvictionPolicy::AllKeysRandom),
            _ => Err(UnknownPolicy(s.to_string())),
        }
    }
}

/// Keyspace settings (both can be changed at run time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyspaceConfig {
    /// Memory limit in bytes; 0 means unbounded.
    pub maxmemory: u64,
    /// What to do at the limit.
    pub policy: EvictionPolicy,
}

/// Counters for `CACHE.STATS` and `INFO`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyspaceStats {
    /// Reads that found their key.
    pub hits: u64,
    /// Reads that did not.
    pub misses: u64,
    /// Keys stored now.
    pub keys: u64,
    /// Accounted memory ([`Keyspace::used_bytes`]).
    pub bytes: u64,
    /// Keys evicted under `maxmemory`.
    pub evictions: u64,
    /// Keys removed because their TTL passed.
    pub expired: u64,
}

impl KeyspaceStats {
    /// `hits / (hits + misses)`, 0 when there were no reads.
    pub fn hit_rate(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

/// A write that was refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// `maxmemory` is reached and nothing could be evicted.
    #[error("OOM command not allowed when used memory > 'maxmemory'.")]
    OutOfMemory,
}

/// `RENAME` of a missing key.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum RenameError {
    /// The source key does not exist.
    #[error("ERR no such key")]
    NoSuchKey,
}

/// When a `SET` writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SetCondition {
    /// Always.
    #[default]
    Always,
    /// Only if the key does not exist (`NX`).
    IfAbsent,
    /// Only if the key exists (`XX`).
    IfPresent,
}

/// What a `SET` does to the key's TTL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SetExpire {
    /// Remove any TTL (plain `SET`).
    #[default]
    Clear,
    /// Keep the current TTL (`KEEPTTL`).
    Keep,
    /// Expire at this Unix time in milliseconds.
    At(u64),
}

/// Options of [`Keyspace::set`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetOptions {
    /// NX / XX.
    pub condition: SetCondition,
    /// TTL handling.
    pub expire: SetExpire,
    /// Return the previous value (`GET`).
    pub return_old: bool,
}

/// What [`Keyspace::set`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetOutcome {
    /// Whether the value was written (false when NX/XX refused).
    pub written: bool,
    /// The previous value, when asked for and present.
    pub old: Option<Bytes>,
}

/// The decision of a [`Keyspace::modify`] closure.
#[derive(Debug)]
pub enum Modify<T> {
    /// Leave the key as it is.
    Keep(T),
    /// Store this value (the TTL of an existing key is kept) with
    /// [`Encoding::Compact`], as Redis stores a value taken from an argument.
    Put(Vec<u8>, T),
    /// Store this value with the given encoding (the TTL of an existing key is kept).
    PutAs(Vec<u8>, Encoding, T),
    /// Delete the key.
    Remove(T),
}

/// Condition of an `EXPIRE` (Redis 7 options).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExpireCondition {
    /// Always.
    #[default]
    Always,
    /// Only if the key has no TTL (`NX`).
    IfNone,
    /// Only if the key has a TTL (`XX`).
    IfSome,
    /// Only if the new deadline is later (`GT`; no TTL counts as infinite).
    IfGreater,
    /// Only if the new deadline is earlier (`LT`; no TTL counts as infinite).
    IfLess,
    /// Only if the key has a TTL and the new deadline is earlier (`XX LT`).
    IfSomeAndLess,
}

/// What `GETEX` does to the TTL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExpireChange {
    /// Nothing.
    #[default]
    Unchanged,
    /// Remove the TTL (`PERSIST`).
    Persist,
    /// Expire at this Unix time in ms (in the past: delete).
    At(i64),
}

/// A key's TTL state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyTtl {
    /// No such key.
    Missing,
    /// The key has no TTL.
    Persistent,
    /// The key expires at this Unix time in milliseconds.
    ExpiresAt(u64),
}

/// How Redis would hold a string value, which `OBJECT ENCODING` and `OBJECT REFCOUNT`
/// show. Redis picks the encoding by the path that wrote the value, not by its bytes
/// alone (`object.c`: `tryObjectEncoding`, `createStringObject`, `dbUnshareStringValue`),
/// so every write records which path it took. One byte, kept in an entry's padding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    /// A value taken from an argument through `tryObjectEncoding` (`SET`, `MSET`,
    /// `GETSET`, `APPEND` to a missing key, `INCR`...): `int` when it is a canonical
    /// 64-bit integer of at most 20 bytes, `embstr` up to 44 bytes, else `raw`.
    #[default]
    Compact,
    /// A string Redis builds with `createStringObject` (`INCRBYFLOAT`): `embstr` up to
    /// 44 bytes, else `raw`.
    Embedded,
    /// A buffer changed in place (`APPEND` to an existing key, `SETRANGE`, `SETBIT`,
    /// `BITOP`'s result): always `raw`.
    Raw,
    /// An integer duplicated by `COPY`: `int`, but never one of Redis's shared
    /// integers (refcount 1).
    OwnedInt,
}

/// Redis's `OBJ_ENCODING_EMBSTR_SIZE_LIMIT`: the longest `embstr` string, in bytes.
pub const EMBSTR_SIZE_LIMIT: usize = 44;

/// Redis's `OBJ_SHARED_INTEGERS`: integers below this are shared objects.
const SHARED_INTEGERS: i64 = 10_000;

impl Encoding {
    /// The name `OBJECT ENCODING` answers for `value` written this way: `int`,
    /// `embstr` or `raw`.
    pub fn name(self, value: &[u8]) -> &'static str {
        match self {
            Encoding::Compact if value.len() <= 20 && parse_long(value).is_some() => "int",
            Encoding::Compact | Encoding::Embedded if value.len() <= EMBSTR_SIZE_LIMIT => "embstr",
            Encoding::OwnedInt => "int",
            _ => "raw",
        }
    }

    /// What `OBJECT REFCOUNT` answers: Redis's shared integers (0..9999, stored while
    /// `maxmemory` is 0 or the policy is not an LRU one) report `INT_MAX`, every other
    /// value 1.
    pub fn refcount(self, value: &[u8], shared_integers: bool) -> i64 {
        let shared = self == Encoding::Compact
            && shared_integers
            && parse_long(value).is_some_and(|n| (0..SHARED_INTEGERS).contains(&n));
        if shared {
            i64::from(i32::MAX)
        } else {
            1
        }
    }

    /// The encoding of a duplicate of `value` (`COPY`, Redis's `dupStringObject`
    /// keeps the encoding but unshares integers).
    pub fn duplicate(self, value: &[u8]) -> Encoding {
        match self.name(value) {
            "int" => Encoding::OwnedInt,
            "embstr" => Encoding::Embedded,
            _ => Encoding::Raw,
        }
    }
}

/// Redis's `string2l` on a 64-bit build (same rules as `string2ll`).
fn parse_long(b: &[u8]) -> Option<i64> {
    conclave_protocol::parse::parse_i64(b)
}

/// What `OBJECT` reports about a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// `OBJECT ENCODING`: `int`, `embstr` or `raw`.
    pub encoding: &'static str,
    /// `OBJECT REFCOUNT`.
    pub refcount: i64,
    /// Milliseconds since the key was last read or written (`OBJECT IDLETIME` reports
    /// whole seconds), at the LRU clock's 10 ms resolution.
    pub idle_ms: u64,
}
