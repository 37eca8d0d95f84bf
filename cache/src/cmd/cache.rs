//! `CACHE.STATS` and `CACHE.STATE` (the `CACHE.GET/SET/DEL` synonyms reuse the
//! string commands).

use bytes::Bytes;

use crate::keyspace::Keyspace;
use conclave_protocol::parse::{Parse, ParseError};
use conclave_protocol::Frame;

/// `CACHE.STATS`
#[derive(Debug, Clone, PartialEq)]
pub struct CacheStats;

impl CacheStats {
    /// Parses the arguments (there are none; the declared arity rules out extras).
    pub fn parse(_parse: &mut Parse) -> Result<CacheStats, ParseError> {
        Ok(CacheStats)
    }

    /// Runs the command: a map of the keyspace counters.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let s = ks.stats();
        let int = |name: &'static str, v: u64| {
            (
                Frame::bulk_static(name),
                Frame::Integer(i64::try_from(v).unwrap_or(i64::MAX)),
            )
        };
        Frame::Map(vec![
            int("hits", s.hits),
            int("misses", s.misses),
            (Frame::bulk_static("hit_rate"), Frame::Double(s.hit_rate())),
            int("keys", s.keys),
            int("bytes", s.bytes),
            int("evictions", s.evictions),
            int("expired", s.expired),
        ])
    }
}

/// `CACHE.STATE key`
#[derive(Debug, Clone, PartialEq)]
pub struct CacheState {
    key: Bytes,
}

impl CacheState {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<CacheState, ParseError> {
        Ok(CacheState {
            key: parse.next_bytes()?,
        })
    }

    /// Runs the command: `E` when this node holds the key, `I` otherwise (until the
    /// coherence layer adds `M` and `S`).
    pub fn apply(self, ks: &Keyspace) -> Frame {
        Frame::simple(if ks.exists(&self.key) { "E" } else { "I" })
    }
}
