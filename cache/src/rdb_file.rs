//! Whole RDB files (`SAVE`, `BGSAVE`, loading at start-up), in Redis 7.0's layout
//! (`rdb.c`: `rdbSaveRio`, `rdbLoadRio`), so `redis-check-rdb` accepts what Conclave
//! writes, `redis-server` loads it, and a Redis dump of strings loads into Conclave.
//!
//! Layout written: `REDIS0010`; auxiliary fields (`0xFA` name value: `redis-ver`,
//! `redis-bits`, `ctime`, `used-mem`, `aof-base`, as Redis without replicas writes
//! them); for a non-empty keyspace `0xFE` (select database 0) and `0xFB` (its key and
//! deadline counts); each key as an optional `0xFC` deadline (Unix ms, 8 bytes
//! little-endian), the type byte 0 (a string), the key and the value in Redis's string
//! encoding ([`crate::rdb`]: integer, LZF or verbatim); `0xFF`; the CRC-64 of
//! everything before it (8 bytes little-endian).
//!
//! Reading accepts RDB versions 1 to 11 (Redis up to 7.2), the opcodes Redis writes
//! around keys (`0xF8` idle time and `0xF9` frequency are skipped, `0xFD` deadlines in
//! seconds read), and a zero checksum (Redis's `rdbchecksum no`). It refuses, with a
//! [`RdbError`] that says what is wrong, what Conclave cannot hold: keys of another
//! type than string, keys in a database other than 0, functions, module data. Keys
//! whose deadline has passed are skipped, as a Redis master skips them.

use std::io::{self, Write};

use crc::Digest;
use thiserror::Error;

use crate::keyspace::SnapshotEntry;
use crate::rdb::{load_len, load_string_object, save_len, save_string, CRC64, TYPE_STRING};

/// The RDB version written (Redis 7.0).
pub const RDB_VERSION: u16 = 10;
/// The newest RDB version read (Redis 7.2).
pub const MAX_RDB_VERSION: u16 = 11;

const OP_FUNCTION2: u8 = 0xF5;
const OP_FUNCTION: u8 = 0xF6;
const OP_MODULE_AUX: u8 = 0xF7;
const OP_IDLE: u8 = 0xF8;
const OP_FREQ: u8 = 0xF9;
const OP_AUX: u8 = 0xFA;
const OP_RESIZEDB: u8 = 0xFB;
const OP_EXPIRETIME_MS: u8 = 0xFC;
const OP_EXPIRETIME: u8 = 0xFD;
const OP_SELECTDB: u8 = 0xFE;
const OP_EOF: u8 = 0xFF;

/// Why an RDB file cannot be loaded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RdbError {
    /// Not an RDB file.
    #[error("not an RDB file (no REDIS signature)")]
    Signature,
    /// A version this build cannot read.
    #[error("RDB version {0} is newer than the newest known ({MAX_RDB_VERSION})")]
    Version(u16),
    /// The file ends early or holds an undecodable record.
    #[error("the RDB file is truncated or corrupt near byte {0}")]
    Corrupt(usize),
    /// The checksum at the end does not match.
    #[error("the RDB file's CRC-64 does not match its contents")]
    Checksum,
    /// A key of a type Conclave does not store.
    #[error("the RDB file holds a key of RDB object type {0}, not a string (Conclave stores strings only)")]
    NotString(u8),
    /// A key in another database than 0.
    #[error("the RDB file holds keys in database {0} (Conclave has only database 0)")]
    Database(u64),
    /// Functions or module data.
    #[error("the RDB file holds {0}, which Conclave does not have")]
    Unsupported(&'static str),
}

/// The keys of a loaded file.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The live keys.
    pub entries: Vec<SnapshotEntry>,
    /// Keys skipped because their deadline had passed (`rdb_last_load_keys_expired`).
    pub expired: u64,
}

/// Writes `out`, keeping the CRC-64 of every byte written.
struct Checksummed<'a, W: Write> {
    out: W,
    digest: Digest<'a, u64>,
}

impl<W: Write> Checksummed<'_, W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.digest.update(bytes);
        self.out.write_all(bytes)
    }
}

/// Fields of the file's header that describe the writer.
#[derive(Debug, Clone)]
pub struct Header<'a> {
    /// `redis-ver`.
    pub version: &'a str,
    /// `ctime`, Unix seconds.
    pub ctime: u64,
    /// `used-mem`, bytes.
    pub used_mem: u64,
}

/// Writes a complete RDB file of `entries` to `out` (buffer it: many small writes).
pub fn write_rdb<W: Write>(
    out: W,
    header: &Header<'_>,
    entries: &[SnapshotEntry],
) -> io::Result<()> {
    let mut w = Checksummed {
        out,
        digest: CRC64.digest(),
    };
    w.put(format!("REDIS{RDB_VERSION:04}").as_bytes())?;
    let aux: [(&str, String); 5] = [
        ("redis-ver", header.version.to_string()),
        ("redis-bits", "64".into()),
        ("ctime", header.ctime.to_string()),
        ("used-mem", header.used_mem.to_string()),
        ("aof-base", "0".into()),
    ];
    let mut buf = Vec::with_capacity(256);
    for (name, value) in aux {
        buf.clear();
        buf.push(OP_AUX);
        save_string(&mut buf, name.as_bytes());
        save_string(&mut buf, value.as_bytes());
        w.put(&buf)?;
    }
    if !entries.is_empty() {
        buf.clear();
        buf.push(OP_SELECTDB);
        save_len(&mut buf, 0);
        buf.push(OP_RESIZEDB);
        save_len(&mut buf, entries.len() as u64);
        let volatile = entries.iter().filter(|e| e.expire_at.is_some()).count();
        save_len(&mut buf, volatile as u64);
        w.put(&buf)?;
    }
    for e in entries {
        buf.clear();
        if let Some(at) = e.expire_at {
            buf.push(OP_EXPIRETIME_MS);
            buf.extend_from_slice(&at.to_le_bytes());
        }
        buf.push(TYPE_STRING);
        save_string(&mut buf, &e.key);
        save_string(&mut buf, &e.value);
        w.put(&buf)?;
    }
    w.put(&[OP_EOF])?;
    let crc = w.digest.finalize();
    w.out.write_all(&crc.to_le_bytes())?;
    w.out.flush()
}

/// Reads a complete RDB file; keys whose deadline is at or before `now_ms` are
/// skipped.
pub fn read_rdb(file: &[u8], now_ms: u64) -> Result<Loaded, RdbError> {
    if file.len() < 9 || &file[..5] != b"REDIS" {
        return Err(RdbError::Signature);
    }
    let version = std::str::from_utf8(&file[5..9])
        .ok()
        .and_then(|v| v.parse::<u16>().ok())
        .ok_or(RdbError::Signature)?;
    if version == 0 || version > MAX_RDB_VERSION {
        return Err(RdbError::Version(version));
    }
    let mut at = 9;
    let mut loaded = Loaded::default();
    let mut expire_at: Option<u64> = None;
    let corrupt = |at: usize| RdbError::Corrupt(at);
    loop {
        let op = *file.get(at).ok_or(corrupt(at))?;
        at += 1;
        match op {
            OP_EOF => break,
            OP_AUX => {
                load_string_object(file, &mut at).ok_or(corrupt(at))?;
                load_string_object(file, &mut at).ok_or(corrupt(at))?;
            }
            OP_SELECTDB => {
                let db = plain_len(file, &mut at)?;
                if db != 0 {
                    return Err(RdbError::Database(db));
                }
            }
            OP_RESIZEDB => {
                plain_len(file, &mut at)?;
                plain_len(file, &mut at)?;
            }
            OP_EXPIRETIME_MS => {
                let b: [u8; 8] = take(file, &mut at, 8)?
                    .try_into()
                    .map_err(|_| corrupt(at))?;
                expire_at = Some(u64::from_le_bytes(b));
            }
            OP_EXPIRETIME => {
                let b: [u8; 4] = take(file, &mut at, 4)?
                    .try_into()
                    .map_err(|_| corrupt(at))?;
                expire_at = Some(u64::from(u32::from_le_bytes(b)) * 1000);
            }
            OP_IDLE => {
                plain_len(file, &mut at)?;
            }
            OP_FREQ => {
                take(file, &mut at, 1)?;
            }
            OP_FUNCTION | OP_FUNCTION2 => return Err(RdbError::Unsupported("functions")),
            OP_MODULE_AUX => return Err(RdbError::Unsupported("module data")),
            TYPE_STRING => {
                let key = load_string_object(file, &mut at).ok_or(corrupt(at))?;
                let value = load_string_object(file, &mut at).ok_or(corrupt(at))?;
                match expire_at.take() {
                    Some(when) if when <= now_ms => loaded.expired += 1,
                    when => loaded.entries.push(SnapshotEntry {
                        key: key.into(),
                        value: value.into(),
                        expire_at: when,
                    }),
                }
            }
            other => return Err(RdbError::NotString(other)),
        }
    }
    if version >= 5 {
        let b: [u8; 8] = take(file, &mut at, 8)?
            .try_into()
            .map_err(|_| corrupt(at))?;
        let expected = u64::from_le_bytes(b);
        if expected != 0 && expected != CRC64.checksum(&file[..at - 8]) {
            return Err(RdbError::Checksum);
        }
    }
    Ok(loaded)
}

fn plain_len(file: &[u8], at: &mut usize) -> Result<u64, RdbError> {
    match load_len(file, at) {
        Some(Ok(n)) => Ok(n),
        _ => Err(RdbError::Corrupt(*at)),
    }
}

fn take<'a>(file: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8], RdbError> {
    let s = file.get(*at..*at + n).ok_or(RdbError::Corrupt(*at))?;
    *at += n;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(k: &str, v: &[u8], at: Option<u64>) -> SnapshotEntry {
        SnapshotEntry {
            key: bytes::Bytes::copy_from_slice(k.as_bytes()),
            value: bytes::Bytes::copy_from_slice(v),
            expire_at: at,
        }
    }

    fn header() -> Header<'static> {
        Header {
            version: "7.0.15",
            ctime: 1_700_000_000,
            used_mem: 1_000_000,
        }
    }

    #[test]
    fn round_trip_keeps_keys_and_deadlines_and_skips_expired() {
        let long = vec![b'x'; 5000];
        let entries = vec![
            entry("a", b"1", None),
            entry("b", b"hello", Some(2_000)),
            entry("c", &long, None),
            entry("gone", b"v", Some(500)),
            entry("", b"", None),
        ];
        let mut file = Vec::new();
        write_rdb(&mut file, &header(), &entries).unwrap();
        assert_eq!(&file[..9], b"REDIS0010");
        let loaded = read_rdb(&file, 1_000).unwrap();
        assert_eq!(loaded.expired, 1);
        let mut expected = entries.clone();
        expected.remove(3);
        assert_eq!(loaded.entries, expected);
    }

    #[test]
    fn refuses_damage_and_foreign_contents() {
        let mut file = Vec::new();
        write_rdb(&mut file, &header(), &[entry("k", b"v", None)]).unwrap();
        let n = file.len();
        let mut bad = file.clone();
        bad[n - 12] ^= 0x20; // the value's byte
        assert_eq!(read_rdb(&bad, 0).unwrap_err(), RdbError::Checksum);
        assert!(matches!(
            read_rdb(&file[..n - 4], 0),
            Err(RdbError::Corrupt(_))
        ));
        assert_eq!(read_rdb(b"HELLO0010", 0).unwrap_err(), RdbError::Signature);
        assert_eq!(
            read_rdb(b"REDIS0012\xff", 0).unwrap_err(),
            RdbError::Version(12)
        );
        // Checksum 0 (rdbchecksum no) is accepted.
        let mut unchecked = file[..n - 8].to_vec();
        unchecked.extend_from_slice(&[0; 8]);
        assert_eq!(read_rdb(&unchecked, 0).unwrap().entries.len(), 1);
        // A list (type 18, quicklist 2) and a key in database 9.
        assert_eq!(
            read_rdb(b"REDIS0010\xfe\x00\x12\x01k", 0).unwrap_err(),
            RdbError::NotString(18)
        );
        assert_eq!(
            read_rdb(b"REDIS0010\xfe\x09\x00\x01k\x01v\xff", 0).unwrap_err(),
            RdbError::Database(9)
        );
    }
}
