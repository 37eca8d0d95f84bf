//! `BITFIELD` and `BITFIELD_RO`: signed and unsigned integers of 1 to 64 bits (63
//! unsigned) at any bit offset of a string, read, set or incremented with a choice
//! of overflow behaviour.
//!
//! Follows Redis 7's `bitfieldGeneric` (`bitops.c`): every operation is parsed (and
//! its errors reported, first one wins) before any runs; `OVERFLOW WRAP|SAT|FAIL`
//! applies to the `SET`/`INCRBY` operations after it; `#n` offsets are multiplied
//! by the type's width; a command with a write grows the string to its highest
//! written bit first (even when `FAIL` then refuses every write) and leaves it
//! `raw`; `FAIL` answers null for the refused operation; `BITFIELD_RO` refuses
//! anything but `GET` after parsing. Bit 0 is the most significant bit of the first
//! byte.

use bytes::Bytes;

use super::strings::MAX_STRING_LEN;
use super::write_error;
use crate::keyspace::Keyspace;
use conclave_protocol::parse::{parse_i64, Parse, ParseError};
use conclave_protocol::Frame;

/// What a `SET` or `INCRBY` does when the result does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Get,
    Set(i64),
    IncrBy(i64),
}

/// One parsed operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Op {
    kind: OpKind,
    signed: bool,
    bits: u32,
    offset: u64,
    overflow: Overflow,
}

/// `BITFIELD key [GET type offset | SET type offset value | INCRBY type offset
/// increment | OVERFLOW WRAP|SAT|FAIL] ...` and `BITFIELD_RO key [GET type offset
/// ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BitField {
    key: Bytes,
    ops: Vec<Op>,
    read_only_command: bool,
}

fn type_error() -> ParseError {
    ParseError::Other(
        "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
            .into(),
    )
}

fn offset_error() -> ParseError {
    ParseError::Other("ERR bit offset is not an integer or out of range".into())
}

/// `i1`..`i64` or `u1`..`u63` (lower-case letter, as Redis): (signed, bits).
fn parse_type(raw: &[u8]) -> Result<(bool, u32), ParseError> {
    let signed = match raw.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(type_error()),
    };
    let bits = parse_i64(&raw[1..]).ok_or_else(type_error)?;
    let max = if signed { 64 } else { 63 };
    if !(1..=max).contains(&bits) {
        return Err(type_error());
    }
    Ok((signed, bits as u32))
}

/// A bit offset, or `#n` for the n-th field of this width.
fn parse_offset(raw: &[u8], bits: u32) -> Result<u64, ParseError> {
    let (digits, by) = match raw.strip_prefix(b"#") {
        Some(rest) => (rest, i64::from(bits)),
        None => (raw, 1),
    };
    let n = parse_i64(digits)
        .and_then(|n| n.checked_mul(by))
        .ok_or_else(offset_error)?;
    let offset = u64::try_from(n).map_err(|_| offset_error())?;
    if offset >> 3 >= MAX_STRING_LEN as u64 {
        return Err(offset_error());
    }
    Ok(offset)
}

impl BitField {
    /// Parses `BITFIELD` (`read_only_command` false) or `BITFIELD_RO` arguments.
    pub fn parse(parse: &mut Parse, read_only_command: bool) -> Result<BitField, ParseError> {
        let key = parse.next_bytes()?;
        let args = parse.rest();
        let mut ops = Vec::new();
        let mut overflow = Overflow::Wrap;
        let mut j = 0;
        while let Some(sub) = args.get(j) {
            let remaining = args.len() - j - 1;
            let kind = if sub.eq_ignore_ascii_case(b"GET") && remaining >= 2 {
                OpKind::Get
            } else if sub.eq_ignore_ascii_case(b"SET") && remaining >= 3 {
                OpKind::Set(0)
            } else if sub.eq_ignore_ascii_case(b"INCRBY") && remaining >= 3 {
                OpKind::IncrBy(0)
            } else if sub.eq_ignore_ascii_case(b"OVERFLOW") && remaining >= 1 {
                let name = &args[j + 1];
                overflow = if name.eq_ignore_ascii_case(b"WRAP") {
                    Overflow::Wrap
                } else if name.eq_ignore_ascii_case(b"SAT") {
                    Overflow::Sat
                } else if name.eq_ignore_ascii_case(b"FAIL") {
                    Overflow::Fail
                } else {
                    return Err(ParseError::Other(
                        "ERR Invalid OVERFLOW type specified".into(),
                    ));
                };
                j += 2;
                continue;
            } else {
                return Err(ParseError::Syntax);
            };
            let (signed, bits) = parse_type(&args[j + 1])?;
            let offset = parse_offset(&args[j + 2], bits)?;
            let kind = match kind {
                OpKind::Get => OpKind::Get,
                OpKind::Set(_) => {
                    OpKind::Set(parse_i64(&args[j + 3]).ok_or(ParseError::NotInteger)?)
                }
                OpKind::IncrBy(_) => {
                    OpKind::IncrBy(parse_i64(&args[j + 3]).ok_or(ParseError::NotInteger)?)
                }
            };
            ops.push(Op {
                kind,
                signed,
                bits,
                offset,
                overflow,
            });
            j += if kind == OpKind::Get { 3 } else { 4 };
        }
        Ok(BitField {
            key,
            ops,
            read_only_command,
        })
    }

    /// Runs the operations in order: an array with one reply per operation (`GET`
    /// the value, `SET` the old value, `INCRBY` the new one, null for a write that
    /// `OVERFLOW FAIL` refused).
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let highest = self
            .ops
            .iter()
            .filter(|op| op.kind != OpKind::Get)
            .map(|op| op.offset + u64::from(op.bits) - 1)
            .max();
        let Some(highest) = highest else {
            // Only reads: a missing key reads as zeros.
            let ops = self.ops;
            let replies = ks
                .read(&self.key, true, |v| {
                    ops.iter().map(|op| get_reply(v, op)).collect::<Vec<_>>()
                })
                .unwrap_or_else(|| ops.iter().map(|op| get_reply(&[], op)).collect());
            return Frame::Array(replies);
        };
        if self.read_only_command {
            return Frame::error("ERR BITFIELD_RO only supports the GET subcommand");
        }
        let min_len = (highest >> 3) as usize + 1;
        let ops = self.ops;
        match ks.patch(&self.key, min_len, |v| {
            ops.iter().map(|op| run(v, op)).collect::<Vec<_>>()
        }) {
            Ok(replies) => Frame::Array(replies),
            Err(e) => write_error(e),
        }
    }
}

/// A `GET` on `v` (zero bits past its end).
fn get_reply(v: &[u8], op: &Op) -> Frame {
    let raw = get_unsigned(v, op.offset, op.bits);
    Frame::Integer(if op.signed {
        sign_extend(raw, op.bits)
    } else {
        raw as i64
    })
}

/// One operation on a string already long enough for every write.
fn run(v: &mut [u8], op: &Op) -> Frame {
    let (value, increment, returns_old) = match op.kind {
        OpKind::Get => return get_reply(v, op),
        OpKind::Set(value) => (value, 0, true),
        OpKind::IncrBy(by) => (0, by, false),
    };
    let old_raw = get_unsigned(v, op.offset, op.bits);
    let (old, new, overflowed) = if op.signed {
        let old = sign_extend(old_raw, op.bits);
        let (base, incr) = if returns_old {
            (value, 0)
        } else {
            (old, increment)
        };
        let (overflowed, limited) = signed_overflow(base, incr, op.bits, op.overflow);
        let new = if overflowed {
            limited
        } else {
            base.wrapping_add(incr)
        };
        (old, new as u64, overflowed)
    } else {
        let (base, incr) = if returns_old {
            (value as u64, 0)
        } else {
            (old_raw, increment)
        };
        let (overflowed, limited) = unsigned_overflow(base, incr, op.bits, op.overflow);
        let new = if overflowed {
            limited
        } else {
            base.wrapping_add(incr as u64)
        };
        (old_raw as i64, new, overflowed)
    };
    if overflowed && op.overflow == Overflow::Fail {
        return Frame::Null;
    }
    set_unsigned(v, op.offset, op.bits, new);
    let shown = if op.signed {
        sign_extend(new, op.bits)
    } else {
        new as i64
    };
    Frame::Integer(if returns_old { old } else { shown })
}

/// The `bits`-wide unsigned integer at bit `offset` (bits past the end read 0).
fn get_unsigned(v: &[u8], offset: u64, bits: u32) -> u64 {
    (0..u64::from(bits)).fold(0u64, |acc, j| {
        let at = offset + j;
        let byte = usize::try_from(at >> 3).ok().and_then(|i| v.get(i));
        let bit = byte.map_or(0, |b| (b >> (7 - (at & 7))) & 1);
        (acc << 1) | u64::from(bit)
    })
}

/// Writes the low `bits` bits of `value` at bit `offset`.
fn set_unsigned(v: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..u64::from(bits) {
        let bit = (value >> (u64::from(bits) - 1 - j)) & 1;
        let at = offset + j;
        if let Some(b) = usize::try_from(at >> 3).ok().and_then(|i| v.get_mut(i)) {
            let shift = 7 - (at & 7);
            *b = (*b & !(1 << shift)) | ((bit as u8) << shift);
        }
    }
}

/// Reads the low `bits` bits of `raw` as a two's complement number.
fn sign_extend(raw: u64, bits: u32) -> i64 {
    if bits < 64 && raw & (1 << (bits - 1)) != 0 {
        (raw | (u64::MAX << bits)) as i64
    } else {
        raw as i64
    }
}

/// Redis's `checkUnsignedBitfieldOverflow`: whether `value + incr` leaves the
/// `bits`-wide range, and the value `WRAP`/`SAT` store instead.
fn unsigned_overflow(value: u64, incr: i64, bits: u32, how: Overflow) -> (bool, u64) {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = value.wrapping_neg() as i64;
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX.checked_shl(bits).unwrap_or(0));
    if value > max || (incr > 0 && incr > max_incr) {
        (true, if how == Overflow::Sat { max } else { wrap() })
    } else if incr < 0 && incr < min_incr {
        (true, if how == Overflow::Sat { 0 } else { wrap() })
    } else {
        (false, 0)
    }
}

/// Redis's `checkSignedBitfieldOverflow`.
fn signed_overflow(value: i64, incr: i64, bits: u32, how: Overflow) -> (bool, i64) {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrap = || {
        let c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                (c | mask) as i64
            } else {
                (c & !mask) as i64
            }
        } else {
            c as i64
        }
    };
    if value > max || (bits != 64 && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr)
    {
        (true, if how == Overflow::Sat { max } else { wrap() })
    } else if value < min
        || (bits != 64 && incr < min_incr)
        || (value < 0 && incr < 0 && incr < min_incr)
    {
        (true, if how == Overflow::Sat { min } else { wrap() })
    } else {
        (false, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_and_write_msb_first() {
        let mut v = [0u8; 3];
        set_unsigned(&mut v, 4, 8, 0xab);
        assert_eq!(v, [0x0a, 0xb0, 0]);
        assert_eq!(get_unsigned(&v, 4, 8), 0xab);
        assert_eq!(get_unsigned(&v, 20, 8), 0, "past the end reads zeros");
        assert_eq!(sign_extend(0xff, 8), -1);
        assert_eq!(sign_extend(0x7f, 8), 127);
        assert_eq!(sign_extend(u64::MAX, 64), -1);
    }

    #[test]
    fn overflow_rules_match_redis() {
        // u8: 250 + 10 wraps to 4, saturates at 255.
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Wrap), (true, 4));
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Sat), (true, 255));
        assert_eq!(unsigned_overflow(5, -10, 8, Overflow::Sat), (true, 0));
        assert_eq!(unsigned_overflow(5, -10, 8, Overflow::Wrap), (true, 251));
        assert_eq!(unsigned_overflow(5, 10, 8, Overflow::Wrap), (false, 0));
        // i8: 120 + 10 wraps to -126, saturates at 127; -120 - 10 saturates at -128.
        assert_eq!(signed_overflow(120, 10, 8, Overflow::Wrap), (true, -126));
        assert_eq!(signed_overflow(120, 10, 8, Overflow::Sat), (true, 127));
        assert_eq!(signed_overflow(-120, -10, 8, Overflow::Sat), (true, -128));
        assert_eq!(
            signed_overflow(i64::MAX, 1, 64, Overflow::Wrap),
            (true, i64::MIN)
        );
        assert_eq!(signed_overflow(1, 1, 64, Overflow::Wrap), (false, 0));
    }

    #[test]
    fn types_and_offsets() {
        assert_eq!(parse_type(b"i64").ok(), Some((true, 64)));
        assert_eq!(parse_type(b"u63").ok(), Some((false, 63)));
        assert!(parse_type(b"u64").is_err() && parse_type(b"I8").is_err());
        assert!(parse_type(b"i0").is_err() && parse_type(b"i").is_err());
        assert_eq!(parse_offset(b"#3", 8).ok(), Some(24));
        assert_eq!(parse_offset(b"100", 8).ok(), Some(100));
        assert!(parse_offset(b"-1", 8).is_err() && parse_offset(b"#x", 8).is_err());
        assert!(parse_offset(b"4294967296", 8).is_err());
    }
}
