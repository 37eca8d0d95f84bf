//! `GET` (and `CACHE.GET`), `GETDEL`, `GETEX`.

use bytes::Bytes;

use super::bulk_or_null;
use super::set::{ExpireArg, ExpireKind};
use crate::keyspace::{ExpireChange, Keyspace};
use conclave_protocol::parse::{Parse, ParseError};
use conclave_protocol::Frame;

/// `GET key`
#[derive(Debug, Clone, PartialEq)]
pub struct Get {
    key: Bytes,
}

impl Get {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<Get, ParseError> {
        Ok(Get {
            key: parse.next_bytes()?,
        })
    }

    /// Runs the command: the value or null.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        bulk_or_null(ks.get(&self.key))
    }
}

/// `GETDEL key`
#[derive(Debug, Clone, PartialEq)]
pub struct GetDel {
    key: Bytes,
}

impl GetDel {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<GetDel, ParseError> {
        Ok(GetDel {
            key: parse.next_bytes()?,
        })
    }

    /// Runs the command: the value (now deleted) or null.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        bulk_or_null(ks.take(&self.key))
    }
}

/// What `GETEX` does to the TTL, before resolving relative times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GetExTtl {
    Unchanged,
    Persist,
    Expire(ExpireArg),
}

/// `GETEX key [EX s|PX ms|EXAT ts|PXAT ts-ms|PERSIST]`
#[derive(Debug, Clone, PartialEq)]
pub struct GetEx {
    key: Bytes,
    ttl: GetExTtl,
}

impl GetEx {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<GetEx, ParseError> {
        let key = parse.next_bytes()?;
        let mut persist = false;
        let mut expire: Option<(ExpireKind, Bytes)> = None;
        while let Some(opt) = parse.try_next() {
            let upper = opt.to_ascii_uppercase();
            let kind = ExpireKind::from_keyword(&upper);
            match upper.as_slice() {
                b"PERSIST" if expire.is_none() => persist = true,
                _ if kind.is_some()
                    && !persist
                    && expire.as_ref().is_none_or(|(k, _)| Some(*k) == kind) =>
                {
                    let raw = parse.try_next().ok_or(ParseError::Syntax)?;
                    expire = kind.map(|k| (k, raw));
                }
                _ => return Err(ParseError::Syntax),
            }
        }
        let ttl = match expire {
            Some((kind, raw)) => GetExTtl::Expire(kind.arg(&raw, "getex")?),
            None if persist => GetExTtl::Persist,
            None => GetExTtl::Unchanged,
        };
        Ok(GetEx { key, ttl })
    }

    /// Runs the command: the value or null, changing the TTL as asked.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let change = match self.ttl {
            GetExTtl::Unchanged => ExpireChange::Unchanged,
            GetExTtl::Persist => ExpireChange::Persist,
            GetExTtl::Expire(arg) => match arg.resolve(ks.now_ms(), "getex") {
                Ok(at) => ExpireChange::At(at as i64),
                Err(e) => return e,
            },
        };
        bulk_or_null(ks.get_ex(&self.key, change))
    }
}
