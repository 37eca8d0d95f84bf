//! `INCR`, `DECR`, `INCRBY`, `DECRBY`, `INCRBYFLOAT`.

use bytes::Bytes;

use super::write_error;
use crate::keyspace::{Encoding, Keyspace, Modify};
use crate::long_double;
use conclave_protocol::frame::Frame;
use conclave_protocol::parse::{parse_i64, Parse, ParseError};

/// `INCR` / `DECR` / `INCRBY` / `DECRBY`: add `delta` to an integer value.
#[derive(Debug, Clone, PartialEq)]
pub struct IncrBy {
    key: Bytes,
    delta: i64,
}

impl IncrBy {
    /// `INCR key` (`delta` 1) and `DECR key` (`delta` -1).
    pub fn parse_fixed(parse: &mut Parse, delta: i64) -> Result<IncrBy, ParseError> {
        Ok(IncrBy {
            key: parse.next_bytes()?,
            delta,
        })
    }

    /// `INCRBY key n` and (`negate`) `DECRBY key n`.
    pub fn parse_by(parse: &mut Parse, negate: bool) -> Result<IncrBy, ParseError> {
        let key = parse.next_bytes()?;
        let n = parse.next_i64()?;
        let delta = if negate {
            n.checked_neg()
                .ok_or_else(|| ParseError::Other("ERR decrement would overflow".into()))?
        } else {
            n
        };
        Ok(IncrBy { key, delta })
    }

    /// Runs the command: the new value.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let delta = self.delta;
        let result = ks.modify(&self.key, |current| {
            let old = match current {
                None => 0,
                Some(v) => match parse_i64(v) {
                    Some(n) => n,
                    None => return Modify::Keep(Err(ParseError::NotInteger.to_frame())),
                },
            };
            match old.checked_add(delta) {
                Some(n) => {
                    let mut buf = itoa::Buffer::new();
                    Modify::Put(buf.format(n).as_bytes().to_vec(), Ok(n))
                }
                None => Modify::Keep(Err(Frame::error(
                    "ERR increment or decrement would overflow",
                ))),
            }
        });
        match result {
            Ok(Ok(n)) => Frame::Integer(n),
            Ok(Err(frame)) => frame,
            Err(e) => write_error(e),
        }
    }
}

/// `INCRBYFLOAT key increment`: Redis's `long double` arithmetic and formatting, see
/// [`crate::long_double`].
#[derive(Debug, Clone, PartialEq)]
pub struct IncrByFloat {
    key: Bytes,
    /// The increment as given (checked to be a valid float).
    delta: Bytes,
}

impl IncrByFloat {
    /// Parses the arguments; the increment must be a valid float (Redis's `string2ld`:
    /// `ERR value is not a valid float`).
    pub fn parse(parse: &mut Parse) -> Result<IncrByFloat, ParseError> {
        let key = parse.next_bytes()?;
        let delta = parse.next_bytes()?;
        if !long_double::is_valid(&delta) {
            return Err(ParseError::NotFloat);
        }
        Ok(IncrByFloat { key, delta })
    }

    /// Runs the command: the new value as a bulk string (stored as that text, the
    /// key's TTL kept); `ERR value is not a valid float` when the stored value is not
    /// one, `ERR increment would produce NaN or Infinity`.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let delta = &self.delta;
        let result = ks.modify(&self.key, |current| {
            match long_double::incr(current, delta) {
                Ok(text) => {
                    let reply = Bytes::copy_from_slice(&text);
                    Modify::PutAs(text, Encoding::Embedded, Ok(reply))
                }
                Err(e) => Modify::Keep(Err(Frame::error(e.to_string()))),
            }
        });
        match result {
            Ok(Ok(text)) => Frame::Bulk(text),
            Ok(Err(frame)) => frame,
            Err(e) => write_error(e),
        }
    }
}
