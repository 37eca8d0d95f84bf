//! The bitmap commands: `SETBIT`, `GETBIT`, `BITCOUNT`, `BITPOS`, `BITOP`.
//!
//! Bit 0 is the most significant bit of the first byte (Redis's convention). The
//! range arithmetic, the order in which arguments are checked and the replies follow
//! Redis 7's `bitops.c` line by line; where Redis looks the key up before checking the
//! remaining arguments (`BITCOUNT`, `BITPOS`), a missing key answers before any
//! argument error, as there.

use bytes::Bytes;

use super::strings::MAX_STRING_LEN;
use super::write_error;
use crate::keyspace::{Encoding, Keyspace};
use conclave_protocol::parse::{parse_i64, Parse, ParseError};
use conclave_protocol::Frame;

fn bad_offset() -> ParseError {
    ParseError::Other("ERR bit offset is not an integer or out of range".into())
}

/// A bit offset as Redis's `getBitOffsetFromArgument` accepts it: a non-negative
/// integer whose byte (`offset / 8`) is below `proto-max-bulk-len` (512 MB: at most
/// 2^32 - 1).
fn parse_bit_offset(raw: &[u8]) -> Result<u64, ParseError> {
    let n = parse_i64(raw).ok_or_else(bad_offset)?;
    let offset = u64::try_from(n).map_err(|_| bad_offset())?;
    if offset >> 3 >= MAX_STRING_LEN as u64 {
        return Err(bad_offset());
    }
    Ok(offset)
}

/// `BIT` or `BYTE` (any case): whether ranges count bits.
fn parse_unit(raw: &[u8]) -> Result<bool, ParseError> {
    if raw.eq_ignore_ascii_case(b"bit") {
        Ok(true)
    } else if raw.eq_ignore_ascii_case(b"byte") {
        Ok(false)
    } else {
        Err(ParseError::Syntax)
    }
}

fn int_arg(raw: &[u8]) -> Result<i64, ParseError> {
    parse_i64(raw).ok_or(ParseError::NotInteger)
}

/// `SETBIT key offset value`
#[derive(Debug, Clone, PartialEq)]
pub struct SetBit {
    key: Bytes,
    offset: u64,
    on: bool,
}

impl SetBit {
    /// Parses the arguments: the offset first, then the bit (0 or 1).
    pub fn parse(parse: &mut Parse) -> Result<SetBit, ParseError> {
        let key = parse.next_bytes()?;
        let offset = parse_bit_offset(&parse.next_bytes()?)?;
        let bad_bit = || ParseError::Other("ERR bit is not an integer or out of range".into());
        let on = match parse_i64(&parse.next_bytes()?) {
            Some(0) => false,
            Some(1) => true,
            _ => return Err(bad_bit()),
        };
        Ok(SetBit { key, offset, on })
    }

    /// Runs the command: the bit's previous value. The string grows with zero bytes
    /// as needed (a missing key is created), edited in place.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let byte = (self.offset >> 3) as usize;
        let mask = 1u8 << (7 - (self.offset & 7));
        let on = self.on;
        let result = ks.patch(&self.key, byte + 1, |v| {
            let Some(b) = v.get_mut(byte) else {
                return 0;
            };
            let old = *b & mask != 0;
            if on {
                *b |= mask;
            } else {
                *b &= !mask;
            }
            i64::from(old)
        });
        match result {
            Ok(old) => Frame::Integer(old),
            Err(e) => write_error(e),
        }
    }
}

/// `GETBIT key offset`
#[derive(Debug, Clone, PartialEq)]
pub struct GetBit {
    key: Bytes,
    offset: u64,
}

impl GetBit {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<GetBit, ParseError> {
        let key = parse.next_bytes()?;
        let offset = parse_bit_offset(&parse.next_bytes()?)?;
        Ok(GetBit { key, offset })
    }

    /// Runs the command: the bit (0 past the end of the string or for a missing key).
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let byte = (self.offset >> 3) as usize;
        let mask = 1u8 << (7 - (self.offset & 7));
        let bit = ks.read(&self.key, true, |v| {
            v.get(byte).is_some_and(|b| b & mask != 0)
        });
        Frame::Integer(i64::from(bit.unwrap_or(false)))
    }
}

/// The byte range `[start, end]` of a bit command after Redis's index arithmetic, and
/// the masks of the bits outside a `BIT` range in its first and last byte.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: i64,
    end: i64,
    first_mask: u8,
    last_mask: u8,
}

/// Redis's range conversion shared by `BITCOUNT` and `BITPOS`: negative indexes count
/// from the end, both ends are clamped, and a `BIT` range becomes bytes plus masks.
fn span(strlen: i64, mut start: i64, mut end: i64, bits: bool) -> Span {
    let totlen = if bits { strlen << 3 } else { strlen };
    if start < 0 {
        start += totlen;
    }
    if end < 0 {
        end += totlen;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= totlen {
        end = totlen - 1;
    }
    let (mut first_mask, mut last_mask) = (0u8, 0u8);
    if bits && start <= end {
        first_mask = !(((1u16 << (8 - (start & 7))) - 1) as u8);
        last_mask = ((1u16 << (7 - (end & 7))) - 1) as u8;
        start >>= 3;
        end >>= 3;
    }
    Span {
        start,
        end,
        first_mask,
        last_mask,
    }
}

/// `BITCOUNT key [start end [BYTE | BIT]]`
#[derive(Debug, Clone, PartialEq)]
pub struct BitCount {
    key: Bytes,
    /// The range arguments, checked once the key is found (as Redis does).
    range: Vec<Bytes>,
}

impl BitCount {
    /// Parses the arguments (the range is checked when the key exists).
    pub fn parse(parse: &mut Parse) -> Result<BitCount, ParseError> {
        Ok(BitCount {
            key: parse.next_bytes()?,
            range: parse.rest(),
        })
    }

    /// Runs the command: the number of set bits in the range; 0 for a missing key.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let range = &self.range;
        match ks.read(&self.key, true, |v| bitcount(v, range)) {
            None => Frame::Integer(0),
            Some(Ok(n)) => Frame::Integer(n),
            Some(Err(e)) => e.to_frame(),
        }
    }
}

fn popcount(bytes: &[u8]) -> i64 {
    bytes.iter().map(|b| i64::from(b.count_ones())).sum()
}

fn bitcount(v: &[u8], range: &[Bytes]) -> Result<i64, ParseError> {
    let strlen = v.len() as i64;
    let s = match range {
        [] => Span {
            start: 0,
            end: strlen - 1,
            first_mask: 0,
            last_mask: 0,
        },
        [start, end, unit @ ..] if unit.len() <= 1 => {
            let start = int_arg(start)?;
            let end = int_arg(end)?;
            if start < 0 && end < 0 && start > end {
                return Ok(0);
            }
            let bits = match unit.first() {
                Some(u) => parse_unit(u)?,
                None => false,
            };
            span(strlen, start, end, bits)
        }
        _ => return Err(ParseError::Syntax),
    };
    if s.start > s.end {
        return Ok(0);
    }
    let (start, end) = (s.start as usize, s.end as usize);
    let mut count = popcount(v.get(start..=end).unwrap_or_default());
    if s.first_mask != 0 {
        count -= popcount(&[v.get(start).copied().unwrap_or(0) & s.first_mask]);
    }
    if s.last_mask != 0 {
        count -= popcount(&[v.get(end).copied().unwrap_or(0) & s.last_mask]);
    }
    Ok(count)
}

/// `BITPOS key bit [start [end [BYTE | BIT]]]`
#[derive(Debug, Clone, PartialEq)]
pub struct BitPos {
    key: Bytes,
    bit: u8,
    /// The range arguments, checked once the key is found (as Redis does).
    range: Vec<Bytes>,
}

impl BitPos {
    /// Parses the arguments: the bit must be 0 or 1 (checked before the key is looked
    /// up, as Redis does).
    pub fn parse(parse: &mut Parse) -> Result<BitPos, ParseError> {
        let key = parse.next_bytes()?;
        let bit = match int_arg(&parse.next_bytes()?)? {
            0 => 0,
            1 => 1,
            _ => {
                return Err(ParseError::Other(
                    "ERR The bit argument must be 1 or 0.".into(),
                ))
            }
        };
        Ok(BitPos {
            key,
            bit,
            range: parse.rest(),
        })
    }

    /// Runs the command: the position of the first bit equal to `bit` in the range,
    /// -1 when there is none. A missing key is an endless run of zeros: 0 when looking
    /// for a 0, -1 for a 1. Without an explicit end, the string counts as followed by
    /// zero bits (looking for 0 in all ones answers the first bit past the end).
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let (bit, range) = (self.bit, &self.range);
        match ks.read(&self.key, true, |v| bitpos(v, bit, range)) {
            None => Frame::Integer(if bit == 1 { -1 } else { 0 }),
            Some(Ok(n)) => Frame::Integer(n),
            Some(Err(e)) => e.to_frame(),
        }
    }
}

/// Redis's `redisBitpos`: the first bit equal to `bit` in `bytes`, the string taken
/// as followed by zeros (so looking for 0 in all ones answers `8 * len`); -1 when
/// looking for a 1 in all zeros.
fn first_bit(bytes: &[u8], bit: u8) -> i64 {
    let skip = if bit == 1 { 0 } else { 0xff };
    match bytes.iter().position(|&b| b != skip) {
        Some(i) => {
            let b = bytes.get(i).copied().unwrap_or(skip);
            let within = if bit == 1 { b } else { !b }.leading_zeros();
            (i as i64) * 8 + i64::from(within)
        }
        None if bit == 1 => -1,
        None => bytes.len() as i64 * 8,
    }
}

fn bitpos(v: &[u8], bit: u8, range: &[Bytes]) -> Result<i64, ParseError> {
    let strlen = v.len() as i64;
    let mut end_given = false;
    let s = match range {
        [] => Span {
            start: 0,
            end: strlen - 1,
            first_mask: 0,
            last_mask: 0,
        },
        [start, rest @ ..] if rest.len() <= 2 => {
            let start = int_arg(start)?;
            let bits = match rest.get(1) {
                Some(u) => parse_unit(u)?,
                None => false,
            };
            let end = match rest.first() {
                Some(end) => {
                    end_given = true;
                    int_arg(end)?
                }
                None if bits => (strlen << 3) + 7,
                None => strlen - 1,
            };
            span(strlen, start, end, bits)
        }
        _ => return Err(ParseError::Syntax),
    };
    if s.start > s.end {
        return Ok(-1);
    }
    let byte_at = |i: i64| v.get(i as usize).copied().unwrap_or(0);
    let (mut start, end) = (s.start, s.end);
    let mut bytes = end - start + 1;
    // The three stages of Redis's bitposCommand: a partial first byte, whole bytes,
    // a partial last byte; each returns early when it found the bit.
    let pos = 'found: {
        if s.first_mask != 0 {
            let mut tmp = if bit == 1 {
                byte_at(start) & !s.first_mask
            } else {
                byte_at(start) | s.first_mask
            };
            if s.last_mask != 0 && bytes == 1 {
                tmp = if bit == 1 {
                    tmp & !s.last_mask
                } else {
                    tmp | s.last_mask
                };
            }
            let pos = first_bit(&[tmp], bit);
            if bytes == 1 || (pos != -1 && pos != 8) {
                break 'found pos;
            }
            start += 1;
            bytes -= 1;
        }
        let curbytes = bytes - i64::from(s.last_mask != 0);
        if curbytes > 0 {
            let from = start as usize;
            let chunk = v.get(from..from + curbytes as usize).unwrap_or_default();
            let pos = first_bit(chunk, bit);
            if bytes == curbytes || (pos != -1 && pos != curbytes << 3) {
                break 'found pos;
            }
            start += curbytes;
            bytes -= curbytes;
        }
        let tmp = if bit == 1 {
            byte_at(end) & !s.last_mask
        } else {
            byte_at(end) | s.last_mask
        };
        first_bit(&[tmp], bit)
    };
    if end_given && bit == 0 && pos == bytes << 3 {
        return Ok(-1);
    }
    Ok(if pos == -1 { -1 } else { pos + (start << 3) })
}

/// The operation of a `BITOP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BitOpKind {
    And,
    Or,
    Xor,
    Not,
}

/// `BITOP AND|OR|XOR|NOT destkey key [key ...]`
#[derive(Debug, Clone, PartialEq)]
pub struct BitOp {
    op: BitOpKind,
    dest: Bytes,
    sources: Vec<Bytes>,
}

impl BitOp {
    /// Parses the arguments: `NOT` takes exactly one source key.
    pub fn parse(parse: &mut Parse) -> Result<BitOp, ParseError> {
        let op = parse.next_bytes()?;
        let op = match op.to_ascii_lowercase().as_slice() {
            b"and" => BitOpKind::And,
            b"or" => BitOpKind::Or,
            b"xor" => BitOpKind::Xor,
            b"not" => BitOpKind::Not,
            _ => return Err(ParseError::Syntax),
        };
        if op == BitOpKind::Not && parse.remaining() != 2 {
            return Err(ParseError::Other(
                "ERR BITOP NOT must be called with a single source key.".into(),
            ));
        }
        let dest = parse.next_bytes()?;
        let sources = parse.rest();
        Ok(BitOp { op, dest, sources })
    }

    /// Runs the command: the length of the result, stored (without TTL) at the
    /// destination; an empty result deletes the destination. Missing source keys are
    /// empty strings, shorter strings are padded with zero bytes.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let mut keys: Vec<&[u8]> = Vec::with_capacity(self.sources.len() + 1);
        keys.push(&self.dest);
        keys.extend(self.sources.iter().map(|k| k.as_ref()));
        let mut locks = match ks.lock_keys(&keys, true) {
            Ok(l) => l,
            Err(e) => return write_error(e),
        };
        let values: Vec<Bytes> = self
            .sources
            .iter()
            .map(|k| locks.get(k, true).unwrap_or_default())
            .collect();
        let maxlen = values.iter().map(Bytes::len).max().unwrap_or(0);
        if maxlen == 0 {
            locks.remove(&self.dest);
            return Frame::Integer(0);
        }
        let result = combine(self.op, &values, maxlen);
        locks.put(&self.dest, &result, Encoding::Raw, None);
        Frame::Integer(maxlen as i64)
    }
}

/// The bitwise combination of `values`, each zero-padded to `len` bytes.
fn combine(op: BitOpKind, values: &[Bytes], len: usize) -> Vec<u8> {
    let byte = |v: &Bytes, j: usize| v.get(j).copied().unwrap_or(0);
    let Some((first, rest)) = values.split_first() else {
        return vec![0; len];
    };
    (0..len)
        .map(|j| {
            let init = byte(first, j);
            match op {
                BitOpKind::Not => !init,
                BitOpKind::And => rest.iter().fold(init, |acc, v| acc & byte(v, j)),
                BitOpKind::Or => rest.iter().fold(init, |acc, v| acc | byte(v, j)),
                BitOpKind::Xor => rest.iter().fold(init, |acc, v| acc ^ byte(v, j)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bit_matches_redis_bitpos() {
        assert_eq!(first_bit(&[], 1), -1);
        assert_eq!(first_bit(&[], 0), 0);
        assert_eq!(first_bit(&[0, 0, 0x10], 1), 19);
        assert_eq!(first_bit(&[0xff, 0xff], 0), 16);
        assert_eq!(first_bit(&[0xff, 0xf0], 0), 12);
        assert_eq!(first_bit(&[0; 9], 1), -1);
    }

    #[test]
    fn bit_offsets() {
        assert_eq!(parse_bit_offset(b"0"), Ok(0));
        assert_eq!(parse_bit_offset(b"4294967295"), Ok(4_294_967_295));
        for bad in [&b"4294967296"[..], b"-1", b"x", b"1.5", b""] {
            assert_eq!(parse_bit_offset(bad), Err(bad_offset()), "{bad:?}");
        }
    }
}
