//! `DUMP` and `RESTORE`: a string value serialized as Redis serializes it
//! ([`crate::rdb`]), and restored from such a payload, Redis's or ours.
//!
//! `RESTORE` checks in Redis 7's order (`restoreCommand`): options first (syntax,
//! `IDLETIME`, `FREQ`), then an existing key without `REPLACE` (`-BUSYKEY`), then the
//! TTL, then the payload's version and checksum, then its contents. A TTL already in
//! the past stores nothing (and with `REPLACE` deletes the old key) but answers
//! `+OK`. `IDLETIME` sets the key's LRU idle time; `FREQ` is checked and, with no
//! LFU policy in Conclave, has no effect (as in Redis under an LRU policy).

use bytes::Bytes;

use super::write_error;
use crate::keyspace::{Keyspace, SetCondition, SetExpire, SetOptions};
use crate::rdb;
use conclave_protocol::parse::{parse_i64, Parse, ParseError};
use conclave_protocol::Frame;

fn busy_key() -> Frame {
    Frame::error("BUSYKEY Target key name already exists.")
}

/// `DUMP key`
#[derive(Debug, Clone, PartialEq)]
pub struct Dump {
    key: Bytes,
}

impl Dump {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<Dump, ParseError> {
        Ok(Dump {
            key: parse.next_bytes()?,
        })
    }

    /// Runs the command: the payload, or null for a missing key.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        ks.read(&self.key, true, rdb::dump_string)
            .map_or(Frame::Null, |p| Frame::Bulk(Bytes::from(p)))
    }
}

/// `RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ
/// frequency]`
#[derive(Debug, Clone, PartialEq)]
pub struct Restore {
    key: Bytes,
    /// Checked when the command runs, after the `BUSYKEY` check (Redis's order).
    ttl: Bytes,
    payload: Bytes,
    replace: bool,
    absttl: bool,
    idle_secs: Option<u64>,
}

impl Restore {
    /// Parses the arguments and options.
    pub fn parse(parse: &mut Parse) -> Result<Restore, ParseError> {
        let key = parse.next_bytes()?;
        let ttl = parse.next_bytes()?;
        let payload = parse.next_bytes()?;
        let opts = parse.rest();
        let (mut replace, mut absttl) = (false, false);
        let (mut idle, mut freq) = (None, None);
        let mut i = 0;
        while let Some(opt) = opts.get(i) {
            let value = opts.get(i + 1);
            if opt.eq_ignore_ascii_case(b"REPLACE") {
                replace = true;
            } else if opt.eq_ignore_ascii_case(b"ABSTTL") {
                absttl = true;
            } else if let (true, Some(v), None) =
                (opt.eq_ignore_ascii_case(b"IDLETIME"), value, freq)
            {
                let n = parse_i64(v).ok_or(ParseError::NotInteger)?;
                let n = u64::try_from(n).map_err(|_| {
                    ParseError::Other("ERR Invalid IDLETIME value, must be >= 0".into())
                })?;
                idle = Some(n);
                i += 1;
            } else if let (true, Some(v), None) = (opt.eq_ignore_ascii_case(b"FREQ"), value, idle) {
                let n = parse_i64(v).ok_or(ParseError::NotInteger)?;
                if !(0..=255).contains(&n) {
                    return Err(ParseError::Other(
                        "ERR Invalid FREQ value, must be >= 0 and <= 255".into(),
                    ));
                }
                freq = Some(n);
                i += 1;
            } else {
                return Err(ParseError::Syntax);
            }
            i += 1;
        }
        Ok(Restore {
            key,
            ttl,
            payload,
            replace,
            absttl,
            idle_secs: idle,
        })
    }

    /// Runs the command: `+OK`, or the first error in Redis's order.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        if !self.replace && ks.exists(&self.key) {
            return busy_key();
        }
        let ttl = match parse_i64(&self.ttl) {
            None => return ParseError::NotInteger.to_frame(),
            Some(t) if t < 0 => return Frame::error("ERR Invalid TTL value, must be >= 0"),
            Some(t) => t.unsigned_abs(),
        };
        let value = match rdb::load_string(&self.payload) {
            Ok(v) => v,
            Err(e) => return Frame::error(e.to_string()),
        };
        let now = ks.now_ms();
        let expire_at = match ttl {
            0 => None,
            t if self.absttl => Some(t),
            t => Some(now.saturating_add(t)),
        };
        if expire_at.is_some_and(|at| at <= now) {
            if self.replace {
                ks.remove(&self.key);
            }
            return Frame::ok();
        }
        let opts = SetOptions {
            condition: if self.replace {
                SetCondition::Always
            } else {
                SetCondition::IfAbsent
            },
            expire: expire_at.map_or(SetExpire::Clear, SetExpire::At),
            return_old: false,
        };
        match ks.set(&self.key, &value, opts) {
            Ok(outcome) if !outcome.written => busy_key(),
            Ok(_) => {
                if let Some(secs) = self.idle_secs {
                    ks.set_idle(&self.key, secs.saturating_mul(1000));
                }
                Frame::ok()
            }
            Err(e) => write_error(e),
        }
    }
}
