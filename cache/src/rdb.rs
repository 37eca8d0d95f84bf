//! `DUMP` payloads of string values, byte for byte as Redis writes them, and their
//! loading for `RESTORE` (Redis's `rdb.c` and `cluster.c`: `createDumpPayload`,
//! `verifyDumpPayload`, `rdbSaveRawString`, `rdbGenericLoadStringObject`).
//!
//! A payload is the value as one RDB object — the type byte (0, a string), then the
//! string: as an 8, 16 or 32-bit integer when it is one written canonically in at
//! most 11 bytes, LZF-compressed when longer than 20 bytes and LZF saves at least 4,
//! else its length and bytes — followed by the RDB version (2 bytes, little-endian)
//! and the CRC-64 (Jones, Redis's `crc64`) of everything before it (8 bytes,
//! little-endian).
//!
//! Version: payloads are written as RDB 10 (Redis 7.0), whose string encoding RDB 11
//! (Redis 7.2) keeps, so Redis 7.0 and later restore them; payloads up to RDB 11 are
//! read, as the Redis 7.2 that Conclave reports itself as does. Other object types
//! (lists, hashes, ...) are refused: Conclave stores strings only.

use crc::{Crc, CRC_64_REDIS};
use thiserror::Error;

use crate::cmd::MAX_STRING_LEN;
use crate::lzf;

/// The RDB version `DUMP` writes.
pub const DUMP_VERSION: u16 = 10;
/// The newest RDB version `RESTORE` reads.
pub const MAX_LOAD_VERSION: u16 = 11;

pub(crate) const CRC64: Crc<u64> = Crc::<u64>::new(&CRC_64_REDIS);

pub(crate) const TYPE_STRING: u8 = 0;
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// Why a payload cannot be restored; `Display` gives Redis's error line.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// Too short, a newer RDB version, or a wrong checksum.
    #[error("ERR DUMP payload version or checksum are wrong")]
    VersionOrChecksum,
    /// The object cannot be decoded.
    #[error("ERR Bad data format")]
    BadFormat,
    /// A valid object of a type Conclave does not store.
    #[error(
        "ERR Bad data format: RDB object type {0} is not a string (Conclave stores strings only)"
    )]
    NotString(u8),
}

/// The `DUMP` payload of the string `value`.
pub fn dump_string(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 16);
    out.push(TYPE_STRING);
    save_string(&mut out, value);
    out.extend_from_slice(&DUMP_VERSION.to_le_bytes());
    let crc = CRC64.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Appends a `DUMP` payload's footer to `out`: [`DUMP_VERSION`] and the CRC-64 of
/// everything before the checksum, both little-endian.
pub fn seal(out: &mut Vec<u8>) {
    out.extend_from_slice(&DUMP_VERSION.to_le_bytes());
    let crc = CRC64.checksum(out);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// The string value of a `RESTORE` payload.
pub fn load_string(payload: &[u8]) -> Result<Vec<u8>, LoadError> {
    verify(payload)?;
    let body = &payload[..payload.len() - 10];
    let (&kind, rest) = body.split_first().ok_or(LoadError::BadFormat)?;
    if kind != TYPE_STRING {
        // Redis's object types run from 0 to 21 (RDB 11); anything else is garbage.
        return Err(if kind <= 21 {
            LoadError::NotString(kind)
        } else {
            LoadError::BadFormat
        });
    }
    let mut at = 0;
    load_string_object(rest, &mut at).ok_or(LoadError::BadFormat)
}

/// Redis's `verifyDumpPayload`: the footer's RDB version is one we read and its CRC-64
/// matches (`FUNCTION RESTORE` checks its payload the same way).
pub fn verify(payload: &[u8]) -> Result<(), LoadError> {
    if payload.len() < 10 {
        return Err(LoadError::VersionOrChecksum);
    }
    let footer = &payload[payload.len() - 10..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > MAX_LOAD_VERSION {
        return Err(LoadError::VersionOrChecksum);
    }
    let crc = CRC64.checksum(&payload[..payload.len() - 8]);
    if crc.to_le_bytes() != footer[2..] {
        return Err(LoadError::VersionOrChecksum);
    }
    Ok(())
}

/// `rdbSaveLen`.
pub(crate) fn save_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// `rdbSaveRawString`: integer, LZF or verbatim (also the library code of a `FUNCTION
/// DUMP` payload).
pub fn save_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 11 {
        let canonical = std::str::from_utf8(s)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
            .filter(|n| n.to_string().as_bytes() == s);
        if let Some(n) = canonical {
            if let Ok(n) = i8::try_from(n) {
                out.extend_from_slice(&[0xC0 | ENC_INT8, n as u8]);
                return;
            }
            if let Ok(n) = i16::try_from(n) {
                out.push(0xC0 | ENC_INT16);
                out.extend_from_slice(&n.to_le_bytes());
                return;
            }
            if let Ok(n) = i32::try_from(n) {
                out.push(0xC0 | ENC_INT32);
                out.extend_from_slice(&n.to_le_bytes());
                return;
            }
        }
    }
    if s.len() > 20 {
        if let Some(compressed) = lzf::compress(s, s.len() - 4) {
            out.push(0xC0 | ENC_LZF);
            save_len(out, compressed.len() as u64);
            save_len(out, s.len() as u64);
            out.extend_from_slice(&compressed);
            return;
        }
    }
    save_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// A length, or an encoding tag (`Err(tag)`), as `rdbLoadLenByRef` reads them.
pub(crate) fn load_len(b: &[u8], at: &mut usize) -> Option<Result<u64, u8>> {
    let first = *b.get(*at)?;
    *at += 1;
    Some(match first >> 6 {
        0 => Ok(u64::from(first & 0x3f)),
        1 => {
            let second = *b.get(*at)?;
            *at += 1;
            Ok((u64::from(first & 0x3f) << 8) | u64::from(second))
        }
        3 => Err(first & 0x3f),
        _ if first == 0x80 => {
            let bytes: [u8; 4] = b.get(*at..*at + 4)?.try_into().ok()?;
            *at += 4;
            Ok(u64::from(u32::from_be_bytes(bytes)))
        }
        _ if first == 0x81 => {
            let bytes: [u8; 8] = b.get(*at..*at + 8)?.try_into().ok()?;
            *at += 8;
            Ok(u64::from_be_bytes(bytes))
        }
        _ => return None,
    })
}

fn plain_len(b: &[u8], at: &mut usize) -> Option<usize> {
    let len = load_len(b, at)?.ok()?;
    usize::try_from(len).ok().filter(|&n| n <= MAX_STRING_LEN)
}

/// `rdbGenericLoadStringObject`: the string at `*at` (moved past it), `None` when
/// malformed.
pub fn load_string_object(b: &[u8], at: &mut usize) -> Option<Vec<u8>> {
    match load_len(b, at)? {
        Ok(len) => {
            let len = usize::try_from(len).ok()?;
            let s = b.get(*at..at.checked_add(len)?)?.to_vec();
            *at += len;
            Some(s)
        }
        Err(ENC_INT8) => {
            let v = *b.get(*at)? as i8;
            *at += 1;
            Some(v.to_string().into_bytes())
        }
        Err(ENC_INT16) => {
            let v = i16::from_le_bytes(b.get(*at..*at + 2)?.try_into().ok()?);
            *at += 2;
            Some(v.to_string().into_bytes())
        }
        Err(ENC_INT32) => {
            let v = i32::from_le_bytes(b.get(*at..*at + 4)?.try_into().ok()?);
            *at += 4;
            Some(v.to_string().into_bytes())
        }
        Err(ENC_LZF) => {
            let clen = plain_len(b, at)?;
            let len = plain_len(b, at)?;
            let compressed = b.get(*at..at.checked_add(clen)?)?;
            *at += clen;
            lzf::decompress(compressed, len)
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_as_redis_writes_them() {
        // From redis-server 7.0: DUMP of "bar", "123", "-129" and "12345678901".
        assert_eq!(
            dump_string(b"bar"),
            b"\x00\x03bar\n\x00\xe6\xbeI`\xeef\xfd\x17".to_vec()
        );
        assert_eq!(
            dump_string(&[b'a'; 50]),
            b"\x00\xc3\t2\x01aa\xe0%\x00\x01aa\n\x00\t\xacH\xb9\xab\x15\xfb\xc9".to_vec()
        );
        assert_eq!(
            dump_string(b"hello world hello world hello world"),
            b"\x00\xc3\x14#\x0chello world h\xe0\x0b\x0b\x01ld\n\x00w\x83\x90ii4\xac\xb7".to_vec()
        );
        assert_eq!(dump_string(b"123")[..3], [0, 0xC0, 123]);
        assert_eq!(dump_string(b"-129")[..4], [0, 0xC1, 0x7f, 0xff]);
        assert_eq!(dump_string(b"12345678901")[..2], [0, 11]);
        assert_eq!(dump_string(b"0123")[..2], [0, 4], "not canonical: verbatim");
    }

    #[test]
    fn round_trips_and_refusals() {
        for v in [
            &b""[..],
            b"x",
            b"-2147483648",
            b"2147483648",
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            &[7u8; 70000],
        ] {
            assert_eq!(load_string(&dump_string(v)).as_deref(), Ok(v));
        }
        let mut p = dump_string(b"bar");
        let n = p.len();
        p[n - 1] ^= 1;
        assert_eq!(load_string(&p), Err(LoadError::VersionOrChecksum));
        assert_eq!(load_string(b"short"), Err(LoadError::VersionOrChecksum));
        let mut newer = b"\x00\x03bar\x0c\x00".to_vec();
        let crc = CRC64.checksum(&newer);
        newer.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(load_string(&newer), Err(LoadError::VersionOrChecksum));
        let mut list = b"\x12\x01\x02\x0a\x00".to_vec();
        let crc = CRC64.checksum(&list);
        list.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(load_string(&list), Err(LoadError::NotString(18)));
    }
}
