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
    /// Store this value (the TTL of an existing key is kept).
    Put(Vec<u8>, T),
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
