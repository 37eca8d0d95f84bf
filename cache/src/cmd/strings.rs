//! `APPEND`, `STRLEN`, `GETRANGE`, `SETRANGE`.

use bytes::Bytes;

use super::write_error;
use crate::keyspace::{Encoding, Keyspace, Modify};
use conclave_protocol::parse::{Parse, ParseError};
use conclave_protocol::Frame;

/// Redis's default `proto-max-bulk-len`: the largest string a command may build.
pub const MAX_STRING_LEN: usize = 512 * 1024 * 1024;

fn too_long() -> Frame {
    Frame::error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
}

/// `APPEND key value`
#[derive(Debug, Clone, PartialEq)]
pub struct Append {
    key: Bytes,
    value: Bytes,
}

impl Append {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<Append, ParseError> {
        Ok(Append {
            key: parse.next_bytes()?,
            value: parse.next_bytes()?,
        })
    }

    /// Runs the command: the new length.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let extra = &self.value;
        let result = ks.modify(&self.key, |current| {
            let Some(old) = current else {
                // A new key holds the argument itself (Redis's tryObjectEncoding).
                return Modify::Put(extra.to_vec(), Ok(extra.len() as i64));
            };
            let len = old.len() + extra.len();
            if len > MAX_STRING_LEN {
                return Modify::Keep(Err(too_long()));
            }
            let mut v = Vec::with_capacity(len);
            v.extend_from_slice(old);
            v.extend_from_slice(extra);
            // Redis appends to an unshared raw string.
            Modify::PutAs(v, Encoding::Raw, Ok(len as i64))
        });
        match result {
            Ok(Ok(n)) => Frame::Integer(n),
            Ok(Err(f)) => f,
            Err(e) => write_error(e),
        }
    }
}

/// `STRLEN key`
#[derive(Debug, Clone, PartialEq)]
pub struct Strlen {
    key: Bytes,
}

impl Strlen {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<Strlen, ParseError> {
        Ok(Strlen {
            key: parse.next_bytes()?,
        })
    }

    /// Runs the command: the length, 0 for a missing key.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        Frame::Integer(ks.read(&self.key, true, |v| v.len() as i64).unwrap_or(0))
    }
}

/// `GETRANGE key start end`
#[derive(Debug, Clone, PartialEq)]
pub struct GetRange {
    key: Bytes,
    start: i64,
    end: i64,
}

impl GetRange {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<GetRange, ParseError> {
        Ok(GetRange {
            key: parse.next_bytes()?,
            start: parse.next_i64()?,
            end: parse.next_i64()?,
        })
    }

    /// Runs the command: the substring (inclusive, negative from the end).
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let (start, end) = (self.start, self.end);
        let out = ks.read(&self.key, true, |v| {
            substring(v, start, end).map_or(Bytes::new(), Bytes::copy_from_slice)
        });
        Frame::Bulk(out.unwrap_or_default())
    }
}

/// Redis's `GETRANGE` index arithmetic; `None` for an empty result.
fn substring(v: &[u8], mut start: i64, mut end: i64) -> Option<&[u8]> {
    let len = v.len() as i64;
    if (start < 0 && end < 0 && start > end) || len == 0 {
        return None;
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0).min(len - 1);
    if start > end {
        return None;
    }
    v.get(start as usize..=end as usize)
}

/// `SETRANGE key offset value`
#[derive(Debug, Clone, PartialEq)]
pub struct SetRange {
    key: Bytes,
    offset: i64,
    value: Bytes,
}

impl SetRange {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<SetRange, ParseError> {
        let key = parse.next_bytes()?;
        let offset = parse.next_i64()?;
        let value = parse.next_bytes()?;
        if offset < 0 {
            return Err(ParseError::Other("ERR offset is out of range".into()));
        }
        Ok(SetRange { key, offset, value })
    }

    /// Runs the command: the new length (zero-padding as needed). An empty value
    /// changes nothing (a missing key stays missing, `:0`); the edit is made in place.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let offset = self.offset as usize;
        let patch = &self.value;
        if patch.is_empty() {
            return match ks.modify(&self.key, |current| {
                Modify::Keep(current.map_or(0, |v| v.len() as i64))
            }) {
                Ok(n) => Frame::Integer(n),
                Err(e) => write_error(e),
            };
        }
        let needed = offset.saturating_add(patch.len());
        if needed > MAX_STRING_LEN {
            return too_long();
        }
        let result = ks.patch(&self.key, needed, |v| {
            if let Some(dst) = v.get_mut(offset..needed) {
                dst.copy_from_slice(patch);
            }
            v.len() as i64
        });
        match result {
            Ok(n) => Frame::Integer(n),
            Err(e) => write_error(e),
        }
    }
}
