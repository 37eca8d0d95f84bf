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

    /// Runs the command on a node without coherence traffic (one node): a map of the
    /// keyspace counters, the coherence counters all zero (the ring's epoch 1).
    pub fn apply(self, ks: &Keyspace) -> Frame {
        stats_frame(ks, &Counters::one_node())
    }
}

/// The coherence counters of `CACHE.STATS` and `INFO cache` (contract 2.1,
/// "Introspection"); all zero on a one-node cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests sent to a key's home (misses, upgrades, lease renewals).
    pub remote_reads: u64,
    /// Revocations (invalidations and recalls) sent as a home.
    pub invalidations_sent: u64,
    /// Revocations received for this node's copies.
    pub invalidations_received: u64,
    /// Modified copies written back (on recall or eviction).
    pub writebacks: u64,
    /// Revocations given up on once the copy's lease ran out.
    pub lease_waits: u64,
    /// Keys whose latest value had to be forgotten (an `M` holder died, a home moved).
    pub forgotten: u64,
    /// Coherence messages sent to other nodes.
    pub messages_sent: u64,
    /// Coherence messages received from other nodes.
    pub messages_received: u64,
    /// The epoch of the ring this node is in (the meta group's; 0 until the first ring
    /// arrives; 1 on a one-node cluster, whose ring never changes).
    pub ring_epoch: u64,
}

impl Counters {
    /// The counters of a one-node cluster: no traffic, the ring at epoch 1.
    pub fn one_node() -> Counters {
        Counters {
            ring_epoch: 1,
            ..Counters::default()
        }
    }

    /// The counters as `(name, value)` pairs, in the order `CACHE.STATS` lists them.
    pub fn fields(&self) -> [(&'static str, u64); 9] {
        [
            ("remote_reads", self.remote_reads),
            ("invalidations_sent", self.invalidations_sent),
            ("invalidations_received", self.invalidations_received),
            ("writebacks", self.writebacks),
            ("lease_waits", self.lease_waits),
            ("forgotten", self.forgotten),
            ("coherence_messages_sent", self.messages_sent),
            ("coherence_messages_received", self.messages_received),
            ("ring_epoch", self.ring_epoch),
        ]
    }
}

/// `CACHE.STATS`: a map of the keyspace counters (`hits`, `misses`, `hit_rate`, `keys`,
/// `bytes`, `evictions`, `expired`) followed by the coherence `counters`.
pub fn stats_frame(ks: &Keyspace, counters: &Counters) -> Frame {
    {
        let s = ks.stats();
        let int = |name: &'static str, v: u64| {
            (
                Frame::bulk_static(name),
                Frame::Integer(i64::try_from(v).unwrap_or(i64::MAX)),
            )
        };
        Frame::Map(
            vec![
                int("hits", s.hits),
                int("misses", s.misses),
                (Frame::bulk_static("hit_rate"), Frame::Double(s.hit_rate())),
                int("keys", s.keys),
                int("bytes", s.bytes),
                int("evictions", s.evictions),
                int("expired", s.expired),
            ]
            .into_iter()
            .chain(counters.fields().into_iter().map(|(n, v)| int(n, v)))
            .collect(),
        )
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

/// `CACHE.DIR key`
#[derive(Debug, Clone, PartialEq)]
pub struct CacheDir {
    key: Bytes,
}

impl CacheDir {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<CacheDir, ParseError> {
        Ok(CacheDir {
            key: parse.next_bytes()?,
        })
    }

    /// The key.
    pub fn key(&self) -> &Bytes {
        &self.key
    }

    /// Runs the command where no directory exists (inside a script or transaction on a
    /// node without coherence): `home` null, `epoch` 0, `owner` null, `sharers` empty.
    /// The server answers it from the key's home (`crate::coherent`) or, on one node,
    /// with the node's own id.
    pub fn apply(self, _ks: &Keyspace) -> Frame {
        Frame::Map(vec![
            (Frame::bulk_static("home"), Frame::Null),
            (Frame::bulk_static("epoch"), Frame::Integer(0)),
            (Frame::bulk_static("owner"), Frame::Null),
            (Frame::bulk_static("sharers"), Frame::Array(vec![])),
        ])
    }
}
