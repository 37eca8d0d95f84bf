//! `KEYS`, `SCAN`, `DBSIZE`, `FLUSHALL`/`FLUSHDB`, `TYPE`, `RENAME`/`RENAMENX`, `COPY`.

use bytes::Bytes;

use crate::keyspace::Keyspace;
use conclave_protocol::parse::{Parse, ParseError};
use conclave_protocol::Frame;

/// `KEYS pattern`
#[derive(Debug, Clone, PartialEq)]
pub struct Keys {
    pattern: Bytes,
}

impl Keys {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<Keys, ParseError> {
        Ok(Keys {
            pattern: parse.next_bytes()?,
        })
    }

    /// Runs the command: every key matching the glob pattern.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        Frame::Array(
            ks.keys(&self.pattern)
                .into_iter()
                .map(Frame::Bulk)
                .collect(),
        )
    }
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    cursor: u64,
    pattern: Option<Bytes>,
    count: usize,
    /// False when `TYPE` names a type other than `string` (nothing can match).
    type_matches: bool,
}

impl Scan {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<Scan, ParseError> {
        let raw = parse.next_bytes()?;
        let cursor =
            parse_cursor(&raw).ok_or_else(|| ParseError::Other("ERR invalid cursor".into()))?;
        let mut scan = Scan {
            cursor,
            pattern: None,
            count: 10,
            type_matches: true,
        };
        while let Some(opt) = parse.try_next() {
            let upper = opt.to_ascii_uppercase();
            let value = match parse.remaining() {
                0 => return Err(ParseError::Syntax),
                _ => parse.next_bytes()?,
            };
            match upper.as_slice() {
                b"COUNT" => {
                    let n = conclave_protocol::parse::parse_i64(&value)
                        .ok_or(ParseError::NotInteger)?;
                    if n < 1 {
                        return Err(ParseError::Syntax);
                    }
                    scan.count = usize::try_from(n).unwrap_or(usize::MAX);
                }
                b"MATCH" => {
                    scan.pattern = (value.as_ref() != b"*").then_some(value);
                }
                b"TYPE" => scan.type_matches = value.eq_ignore_ascii_case(b"string"),
                _ => return Err(ParseError::Syntax),
            }
        }
        Ok(scan)
    }

    /// Runs the command: `[next-cursor, [keys...]]`.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let (next, keys) = ks.scan(self.cursor, self.count, self.pattern.as_deref());
        let keys = if self.type_matches { keys } else { Vec::new() };
        let mut buf = itoa::Buffer::new();
        Frame::Array(vec![
            Frame::bulk_from(buf.format(next).as_bytes()),
            Frame::Array(keys.into_iter().map(Frame::Bulk).collect()),
        ])
    }
}

/// An unsigned decimal cursor.
fn parse_cursor(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// `DBSIZE`
#[derive(Debug, Clone, PartialEq)]
pub struct DbSize;

impl DbSize {
    /// Parses the arguments (there are none; the declared arity rules out extras).
    pub fn parse(_parse: &mut Parse) -> Result<DbSize, ParseError> {
        Ok(DbSize)
    }

    /// Runs the command: the number of keys.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        Frame::Integer(ks.len() as i64)
    }
}

/// `FLUSHALL [ASYNC|SYNC]` / `FLUSHDB [ASYNC|SYNC]`
#[derive(Debug, Clone, PartialEq)]
pub struct Flush {
    asynchronous: bool,
}

impl Flush {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<Flush, ParseError> {
        if parse.remaining() > 1 {
            return Err(ParseError::Syntax);
        }
        let asynchronous = match parse.try_next() {
            None => false,
            Some(opt) if opt.eq_ignore_ascii_case(b"async") => true,
            Some(opt) if opt.eq_ignore_ascii_case(b"sync") => false,
            Some(_) => return Err(ParseError::Syntax),
        };
        Ok(Flush { asynchronous })
    }

    /// Runs the command: `+OK`.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        if self.asynchronous {
            ks.flush_async();
        } else {
            ks.flush();
        }
        Frame::ok()
    }
}

/// `TYPE key`
#[derive(Debug, Clone, PartialEq)]
pub struct Type {
    key: Bytes,
}

impl Type {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<Type, ParseError> {
        Ok(Type {
            key: parse.next_bytes()?,
        })
    }

    /// Runs the command: `+string` or `+none`.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        Frame::simple(if ks.exists(&self.key) {
            "string"
        } else {
            "none"
        })
    }
}

/// `RENAME key newkey` / `RENAMENX key newkey`
#[derive(Debug, Clone, PartialEq)]
pub struct Rename {
    from: Bytes,
    to: Bytes,
    nx: bool,
}

impl Rename {
    /// Parses the arguments; `nx` for `RENAMENX`.
    pub fn parse(parse: &mut Parse, nx: bool) -> Result<Rename, ParseError> {
        Ok(Rename {
            from: parse.next_bytes()?,
            to: parse.next_bytes()?,
            nx,
        })
    }

    /// Runs the command: `+OK` (RENAME) or `:1`/`:0` (RENAMENX).
    pub fn apply(self, ks: &Keyspace) -> Frame {
        match ks.rename(&self.from, &self.to, self.nx) {
            Ok(done) if self.nx => Frame::Integer(i64::from(done)),
            Ok(_) => Frame::ok(),
            Err(e) => Frame::error(e.to_string()),
        }
    }
}

/// `COPY source destination [DB destination-db] [REPLACE]`
#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    from: Bytes,
    to: Bytes,
    replace: bool,
}

impl Copy {
    /// Parses the arguments, in Redis's order: each option as it comes (`DB` must be
    /// an integer and, there being one database, 0), then the same-key check.
    pub fn parse(parse: &mut Parse) -> Result<Copy, ParseError> {
        let from = parse.next_bytes()?;
        let to = parse.next_bytes()?;
        let mut replace = false;
        while let Some(opt) = parse.try_next() {
            if opt.eq_ignore_ascii_case(b"replace") {
                replace = true;
            } else if opt.eq_ignore_ascii_case(b"db") && parse.remaining() >= 1 {
                let db = parse.next_i64()?;
                if i32::try_from(db).is_err() {
                    return Err(ParseError::Other(
                        "ERR value is out of range, value must between -2147483648 and 2147483647"
                            .into(),
                    ));
                }
                if db != 0 {
                    return Err(ParseError::Other("ERR DB index is out of range".into()));
                }
            } else {
                return Err(ParseError::Syntax);
            }
        }
        if from == to {
            return Err(ParseError::Other(
                "ERR source and destination objects are the same".into(),
            ));
        }
        Ok(Copy { from, to, replace })
    }

    /// Runs the command: `:1` when copied (value, TTL and encoding), `:0` when the
    /// source is missing or the destination exists without `REPLACE`.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let mut locks = match ks.lock_keys(&[&self.from, &self.to], true) {
            Ok(l) => l,
            Err(e) => return super::write_error(e),
        };
        let Some(value) = locks.get(&self.from, true) else {
            return Frame::Integer(0);
        };
        if !self.replace && locks.exists(&self.to) {
            return Frame::Integer(0);
        }
        let encoding = locks
            .encoding(&self.from)
            .unwrap_or_default()
            .duplicate(&value);
        let expire_at = locks.expire_at(&self.from);
        locks.put(&self.to, &value, encoding, expire_at);
        Frame::Integer(1)
    }
}
