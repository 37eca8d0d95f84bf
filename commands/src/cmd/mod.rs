//! The string commands, one type per command (or small family), mini-redis style:
//! `parse(&mut Parse) -> Result<Self, ParseError>` reads the arguments and
//! `apply(self, &Keyspace) -> Frame` runs the command and builds the reply.
//!
//! [`Command`] gathers them so the server needs two calls:
//! [`Command::from_parse`] and [`Command::apply`].

mod cache;
mod del;
mod expire;
mod get;
mod incr;
mod keys;
mod mset;
mod set;
mod strings;
#[cfg(test)]
mod tests;

pub use cache::{CacheState, CacheStats};
pub use del::{Del, Exists};
pub use expire::{Expire, ExpireTime, Persist, Ttl};
pub use get::{Get, GetDel, GetEx};
pub use incr::{IncrBy, IncrByFloat};
pub use keys::{DbSize, Flush, Keys, Rename, Scan, Type};
pub use mset::{MGet, MSet};
pub use set::{GetSet, Set, SetEx, SetNx};
pub use strings::{Append, GetRange, SetRange, Strlen};

use crate::frame::Frame;
use crate::keyspace::{Keyspace, WriteError};
use crate::parse::{Parse, ParseError};

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
    /// `CACHE.STATS`
    CacheStats(CacheStats),
    /// `CACHE.STATE`
    CacheState(CacheState),
}

impl Command {
    /// Parses a keyspace command; `None` when `parse.name()` is not one of ours.
    pub fn from_parse(parse: &mut Parse) -> Option<Result<Command, ParseError>> {
        use Command as C;
        let cmd = match parse.name() {
            "get" => Get::parse(parse).map(C::Get),
            "cache.get" => Get::parse(parse).map(C::Get),
            "getdel" => GetDel::parse(parse).map(C::GetDel),
            "getex" => GetEx::parse(parse).map(C::GetEx),
            "set" => Set::parse(parse, "set").map(C::Set),
            "cache.set" => Set::parse(parse, "cache.set").map(C::Set),
            "setnx" => SetNx::parse(parse).map(C::SetNx),
            "setex" => SetEx::parse(parse, "setex", true).map(C::SetEx),
            "psetex" => SetEx::parse(parse, "psetex", false).map(C::SetEx),
            "getset" => GetSet::parse(parse).map(C::GetSet),
            "mget" => MGet::parse(parse).map(C::MGet),
            "mset" => MSet::parse(parse, false).map(C::MSet),
            "msetnx" => MSet::parse(parse, true).map(C::MSet),
            "del" | "unlink" | "cache.del" => Del::parse(parse).map(C::Del),
            "exists" => Exists::parse(parse).map(C::Exists),
            "incr" => IncrBy::parse_fixed(parse, 1).map(C::IncrBy),
            "decr" => IncrBy::parse_fixed(parse, -1).map(C::IncrBy),
            "incrby" => IncrBy::parse_by(parse, false).map(C::IncrBy),
            "decrby" => IncrBy::parse_by(parse, true).map(C::IncrBy),
            "incrbyfloat" => IncrByFloat::parse(parse).map(C::IncrByFloat),
            "append" => Append::parse(parse).map(C::Append),
            "strlen" => Strlen::parse(parse).map(C::Strlen),
            "getrange" | "substr" => GetRange::parse(parse).map(C::GetRange),
            "setrange" => SetRange::parse(parse).map(C::SetRange),
            "expire" => Expire::parse(parse, "expire", true, false).map(C::Expire),
            "pexpire" => Expire::parse(parse, "pexpire", false, false).map(C::Expire),
            "expireat" => Expire::parse(parse, "expireat", true, true).map(C::Expire),
            "pexpireat" => Expire::parse(parse, "pexpireat", false, true).map(C::Expire),
            "ttl" => Ttl::parse(parse, false).map(C::Ttl),
            "pttl" => Ttl::parse(parse, true).map(C::Ttl),
            "expiretime" => ExpireTime::parse(parse, false).map(C::ExpireTime),
            "pexpiretime" => ExpireTime::parse(parse, true).map(C::ExpireTime),
            "persist" => Persist::parse(parse).map(C::Persist),
            "keys" => Keys::parse(parse).map(C::Keys),
            "scan" => Scan::parse(parse).map(C::Scan),
            "dbsize" => DbSize::parse(parse).map(C::DbSize),
            "flushall" | "flushdb" => Flush::parse(parse).map(C::Flush),
            "type" => Type::parse(parse).map(C::Type),
            "rename" => Rename::parse(parse, false).map(C::Rename),
            "renamenx" => Rename::parse(parse, true).map(C::Rename),
            "cache.stats" => CacheStats::parse(parse).map(C::CacheStats),
            "cache.state" => CacheState::parse(parse).map(C::CacheState),
            _ => return None,
        };
        Some(cmd)
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
            Command::CacheStats(c) => c.apply(ks),
            Command::CacheState(c) => c.apply(ks),
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
                | Command::CacheStats(_)
                | Command::CacheState(_)
        )
    }
}

/// Checks Redis's arity rule: `n > 0` exactly `n` arguments (name included),
/// `n < 0` at least `-n`.
pub(crate) fn check_arity(parse: &Parse, n: i32) -> Result<(), ParseError> {
    let argc = parse.argc() as i64;
    let n = i64::from(n);
    if (n > 0 && argc != n) || (n < 0 && argc < -n) {
        Err(parse.arity_error())
    } else {
        Ok(())
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
