//! `INCR`, `DECR`, `INCRBY`, `DECRBY`, `INCRBYFLOAT`.

use bytes::Bytes;

use super::write_error;
use crate::keyspace::{Keyspace, Modify};
use conclave_protocol::frame::{format_double, Frame};
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

/// Parses a float the way Redis's `string2ld` accepts it: no surrounding spaces,
/// no NaN.
pub(crate) fn parse_float(b: &[u8]) -> Option<f64> {
    if b.is_empty() || b.first().is_some_and(u8::is_ascii_whitespace) {
        return None;
    }
    let s = std::str::from_utf8(b).ok()?;
    let v: f64 = s.parse().ok()?;
    (!v.is_nan()).then_some(v)
}

/// `INCRBYFLOAT key increment`
#[derive(Debug, Clone, PartialEq)]
pub struct IncrByFloat {
    key: Bytes,
    delta: f64,
}

impl IncrByFloat {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<IncrByFloat, ParseError> {
        let key = parse.next_bytes()?;
        let raw = parse.next_bytes()?;
        let delta = parse_float(&raw).ok_or(ParseError::NotFloat)?;
        Ok(IncrByFloat { key, delta })
    }

    /// Runs the command: the new value as a bulk string.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let delta = self.delta;
        let result = ks.modify(&self.key, |current| {
            let old = match current {
                None => 0.0,
                Some(v) => match parse_float(v) {
                    Some(n) => n,
                    None => return Modify::Keep(Err(ParseError::NotFloat.to_frame())),
                },
            };
            let new = old + delta;
            if !new.is_finite() {
                return Modify::Keep(Err(Frame::error(
                    "ERR increment would produce NaN or Infinity",
                )));
            }
            let text = format_double(new);
            Modify::Put(text.clone().into_bytes(), Ok(text))
        });
        match result {
            Ok(Ok(text)) => Frame::bulk_string(text),
            Ok(Err(frame)) => frame,
            Err(e) => write_error(e),
        }
    }
}
