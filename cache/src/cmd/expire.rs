//! `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT`, `TTL`, `PTTL`, `EXPIRETIME`,
//! `PEXPIRETIME`, `PERSIST`.

use bytes::Bytes;

use super::set::invalid_expire;
use crate::keyspace::{ExpireCondition, KeyTtl, Keyspace};
use conclave_protocol::parse::{parse_i64, Parse, ParseError};
use conclave_protocol::Frame;

/// `EXPIRE key seconds [NX|XX|GT|LT]` and its millisecond / absolute siblings.
#[derive(Debug, Clone, PartialEq)]
pub struct Expire {
    key: Bytes,
    /// Milliseconds (already scaled), relative unless `absolute`.
    when: i64,
    absolute: bool,
    cond: ExpireCondition,
    name: &'static str,
}

impl Expire {
    /// Parses the arguments; `seconds` for EXPIRE/EXPIREAT, `absolute` for the `AT` forms.
    pub fn parse(
        parse: &mut Parse,
        name: &'static str,
        seconds: bool,
        absolute: bool,
    ) -> Result<Expire, ParseError> {
        let key = parse.next_bytes()?;
        let raw = parse.next_bytes()?;
        let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
        while let Some(opt) = parse.try_next() {
            match opt.to_ascii_uppercase().as_slice() {
                b"NX" => nx = true,
                b"XX" => xx = true,
                b"GT" => gt = true,
                b"LT" => lt = true,
                _ => {
                    return Err(ParseError::Other(format!(
                        "ERR Unsupported option {}",
                        String::from_utf8_lossy(&opt)
                    )))
                }
            }
        }
        if nx && (xx || gt || lt) {
            return Err(ParseError::Other(
                "ERR NX and XX, GT or LT options at the same time are not compatible".into(),
            ));
        }
        if gt && lt {
            return Err(ParseError::Other(
                "ERR GT and LT options at the same time are not compatible".into(),
            ));
        }
        let when = parse_i64(&raw).ok_or(ParseError::NotInteger)?;
        let when = if seconds {
            when.checked_mul(1000).ok_or_else(|| invalid_expire(name))?
        } else {
            when
        };
        let cond = match (nx, xx, gt, lt) {
            (true, ..) => ExpireCondition::IfNone,
            // GT already requires a TTL, so XX adds nothing to it.
            (_, _, true, _) => ExpireCondition::IfGreater,
            (_, true, _, true) => ExpireCondition::IfSomeAndLess,
            (_, _, _, true) => ExpireCondition::IfLess,
            (_, true, ..) => ExpireCondition::IfSome,
            _ => ExpireCondition::Always,
        };
        Ok(Expire {
            key,
            when,
            absolute,
            cond,
            name,
        })
    }

    /// Runs the command: `:1` when the TTL was set (or the key deleted by a past
    /// time), `:0` when the key is missing or the condition failed.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let when = if self.absolute {
            self.when
        } else {
            match self.when.checked_add(ks.now_ms() as i64) {
                Some(w) => w,
                None => return invalid_expire(self.name).to_frame(),
            }
        };
        Frame::Integer(i64::from(ks.expire(&self.key, when, self.cond)))
    }
}

/// `TTL key` / `PTTL key`
#[derive(Debug, Clone, PartialEq)]
pub struct Ttl {
    key: Bytes,
    millis: bool,
}

impl Ttl {
    /// Parses the arguments; `millis` for `PTTL`.
    pub fn parse(parse: &mut Parse, millis: bool) -> Result<Ttl, ParseError> {
        Ok(Ttl {
            key: parse.next_bytes()?,
            millis,
        })
    }

    /// Runs the command: -2 missing, -1 no TTL, else the remaining time (seconds
    /// rounded to nearest, as Redis does).
    pub fn apply(self, ks: &Keyspace) -> Frame {
        Frame::Integer(match ks.ttl(&self.key) {
            KeyTtl::Missing => -2,
            KeyTtl::Persistent => -1,
            KeyTtl::ExpiresAt(at) => {
                let left = at.saturating_sub(ks.now_ms()) as i64;
                if self.millis {
                    left
                } else {
                    (left + 500) / 1000
                }
            }
        })
    }
}

/// `EXPIRETIME key` / `PEXPIRETIME key`
#[derive(Debug, Clone, PartialEq)]
pub struct ExpireTime {
    key: Bytes,
    millis: bool,
}

impl ExpireTime {
    /// Parses the arguments; `millis` for `PEXPIRETIME`.
    pub fn parse(parse: &mut Parse, millis: bool) -> Result<ExpireTime, ParseError> {
        Ok(ExpireTime {
            key: parse.next_bytes()?,
            millis,
        })
    }

    /// Runs the command: -2 missing, -1 no TTL, else the absolute Unix expiry time.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        Frame::Integer(match ks.ttl(&self.key) {
            KeyTtl::Missing => -2,
            KeyTtl::Persistent => -1,
            KeyTtl::ExpiresAt(at) if self.millis => at as i64,
            KeyTtl::ExpiresAt(at) => (at as i64 + 500) / 1000,
        })
    }
}

/// `PERSIST key`
#[derive(Debug, Clone, PartialEq)]
pub struct Persist {
    key: Bytes,
}

impl Persist {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<Persist, ParseError> {
        Ok(Persist {
            key: parse.next_bytes()?,
        })
    }

    /// Runs the command: `:1` when a TTL was removed.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        Frame::Integer(i64::from(ks.persist(&self.key)))
    }
}
