//! `SET`, `SETNX`, `SETEX`, `PSETEX`, `GETSET` (and `CACHE.SET`).

use bytes::Bytes;

use super::{bulk_or_null, write_error};
use crate::keyspace::{Keyspace, SetCondition, SetExpire, SetOptions};
use conclave_protocol::parse::{parse_i64, Parse, ParseError};
use conclave_protocol::Frame;

/// A validated expire argument (`EX`, `PX`, `EXAT`, `PXAT`, `SETEX`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExpireArg {
    /// Milliseconds: a duration when `relative`, else a Unix time.
    ms: i64,
    relative: bool,
}

impl ExpireArg {
    /// Validates a raw expire value as Redis's `getExpireMillisecondsOrReply` does.
    pub(crate) fn parse(
        raw: &[u8],
        seconds: bool,
        relative: bool,
        name: &str,
    ) -> Result<ExpireArg, ParseError> {
        let v = parse_i64(raw).ok_or(ParseError::NotInteger)?;
        if v <= 0 || (seconds && v > i64::MAX / 1000) {
            return Err(invalid_expire(name));
        }
        let ms = if seconds { v * 1000 } else { v };
        Ok(ExpireArg { ms, relative })
    }

    /// The absolute deadline in Unix ms, or the invalid-expire error on overflow.
    pub(crate) fn resolve(self, now_ms: u64, name: &str) -> Result<u64, Frame> {
        let at = if self.relative {
            (now_ms as i64).checked_add(self.ms)
        } else {
            Some(self.ms)
        };
        match at {
            Some(at) if at > 0 => Ok(at as u64),
            _ => Err(invalid_expire(name).to_frame()),
        }
    }
}

/// `ERR invalid expire time in '<name>' command`
pub(crate) fn invalid_expire(name: &str) -> ParseError {
    ParseError::Other(format!("ERR invalid expire time in '{name}' command"))
}

/// Which expire keyword an option is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpireKind {
    Ex,
    Px,
    ExAt,
    PxAt,
}

impl ExpireKind {
    /// Recognises `EX`, `PX`, `EXAT`, `PXAT` (any case).
    pub(crate) fn from_keyword(upper: &[u8]) -> Option<ExpireKind> {
        match upper {
            b"EX" => Some(ExpireKind::Ex),
            b"PX" => Some(ExpireKind::Px),
            b"EXAT" => Some(ExpireKind::ExAt),
            b"PXAT" => Some(ExpireKind::PxAt),
            _ => None,
        }
    }

    /// Validates `raw` as this kind's value.
    pub(crate) fn arg(self, raw: &[u8], name: &str) -> Result<ExpireArg, ParseError> {
        match self {
            ExpireKind::Ex => ExpireArg::parse(raw, true, true, name),
            ExpireKind::Px => ExpireArg::parse(raw, false, true, name),
            ExpireKind::ExAt => ExpireArg::parse(raw, true, false, name),
            ExpireKind::PxAt => ExpireArg::parse(raw, false, false, name),
        }
    }
}

/// TTL handling requested by a `SET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetTtl {
    Clear,
    Keep,
    Expire(ExpireArg),
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ts-ms|KEEPTTL]`
#[derive(Debug, Clone, PartialEq)]
pub struct Set {
    key: Bytes,
    value: Bytes,
    condition: SetCondition,
    get: bool,
    ttl: SetTtl,
    name: &'static str,
}

impl Set {
    /// Parses the arguments; `name` is used in error messages (`set`, `cache.set`).
    pub fn parse(parse: &mut Parse, name: &'static str) -> Result<Set, ParseError> {
        let key = parse.next_bytes()?;
        let value = parse.next_bytes()?;
        let (mut nx, mut xx, mut get, mut keepttl) = (false, false, false, false);
        let mut expire: Option<(ExpireKind, Bytes)> = None;
        while let Some(opt) = parse.try_next() {
            let upper = opt.to_ascii_uppercase();
            let kind = ExpireKind::from_keyword(&upper);
            match upper.as_slice() {
                b"NX" if !xx => nx = true,
                b"XX" if !nx => xx = true,
                b"GET" => get = true,
                b"KEEPTTL" if expire.is_none() => keepttl = true,
                _ if kind.is_some()
                    && !keepttl
                    && expire.as_ref().is_none_or(|(k, _)| Some(*k) == kind) =>
                {
                    let raw = parse.try_next().ok_or(ParseError::Syntax)?;
                    expire = kind.map(|k| (k, raw));
                }
                _ => return Err(ParseError::Syntax),
            }
        }
        let ttl = match expire {
            Some((kind, raw)) => SetTtl::Expire(kind.arg(&raw, name)?),
            None if keepttl => SetTtl::Keep,
            None => SetTtl::Clear,
        };
        let condition = if nx {
            SetCondition::IfAbsent
        } else if xx {
            SetCondition::IfPresent
        } else {
            SetCondition::Always
        };
        Ok(Set {
            key,
            value,
            condition,
            get,
            ttl,
            name,
        })
    }

    /// Runs the command.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let expire = match self.ttl {
            SetTtl::Clear => SetExpire::Clear,
            SetTtl::Keep => SetExpire::Keep,
            SetTtl::Expire(arg) => match arg.resolve(ks.now_ms(), self.name) {
                Ok(at) => SetExpire::At(at),
                Err(e) => return e,
            },
        };
        let opts = SetOptions {
            condition: self.condition,
            expire,
            return_old: self.get,
        };
        match ks.set(&self.key, &self.value, opts) {
            Err(e) => write_error(e),
            Ok(out) if self.get => bulk_or_null(out.old),
            Ok(out) if out.written => Frame::ok(),
            Ok(_) => Frame::Null,
        }
    }
}

/// `SETNX key value`
#[derive(Debug, Clone, PartialEq)]
pub struct SetNx {
    key: Bytes,
    value: Bytes,
}

impl SetNx {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<SetNx, ParseError> {
        Ok(SetNx {
            key: parse.next_bytes()?,
            value: parse.next_bytes()?,
        })
    }

    /// Runs the command: `:1` when set, `:0` when the key existed.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let opts = SetOptions {
            condition: SetCondition::IfAbsent,
            ..SetOptions::default()
        };
        match ks.set(&self.key, &self.value, opts) {
            Ok(out) => Frame::Integer(i64::from(out.written)),
            Err(e) => write_error(e),
        }
    }
}

/// `SETEX key seconds value` / `PSETEX key milliseconds value`
#[derive(Debug, Clone, PartialEq)]
pub struct SetEx {
    key: Bytes,
    value: Bytes,
    expire: ExpireArg,
    name: &'static str,
}

impl SetEx {
    /// Parses the arguments; `seconds` for `SETEX`, milliseconds for `PSETEX`.
    pub fn parse(
        parse: &mut Parse,
        name: &'static str,
        seconds: bool,
    ) -> Result<SetEx, ParseError> {
        let key = parse.next_bytes()?;
        let raw = parse.next_bytes()?;
        let value = parse.next_bytes()?;
        let expire = ExpireArg::parse(&raw, seconds, true, name)?;
        Ok(SetEx {
            key,
            value,
            expire,
            name,
        })
    }

    /// Runs the command.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let at = match self.expire.resolve(ks.now_ms(), self.name) {
            Ok(at) => at,
            Err(e) => return e,
        };
        let opts = SetOptions {
            expire: SetExpire::At(at),
            ..SetOptions::default()
        };
        match ks.set(&self.key, &self.value, opts) {
            Ok(_) => Frame::ok(),
            Err(e) => write_error(e),
        }
    }
}

/// `GETSET key value`
#[derive(Debug, Clone, PartialEq)]
pub struct GetSet {
    key: Bytes,
    value: Bytes,
}

impl GetSet {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<GetSet, ParseError> {
        Ok(GetSet {
            key: parse.next_bytes()?,
            value: parse.next_bytes()?,
        })
    }

    /// Runs the command: the old value or null; the TTL is cleared.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let opts = SetOptions {
            return_old: true,
            ..SetOptions::default()
        };
        match ks.set(&self.key, &self.value, opts) {
            Ok(out) => bulk_or_null(out.old),
            Err(e) => write_error(e),
        }
    }
}
