//! The vocabulary of the coherence protocol: node ids, epochs, time, stamps, the ring
//! (key → home), the states of a copy, the timing configuration and the counters.
//!
//! Nothing here does anything; [`super::node`] and its helpers do.

use std::fmt::Debug;

/// A node of the cluster (the same id as the node's Raft id).
pub type NodeId = u64;

/// The ring's epoch: bumped (in the meta Raft group) each time the set of live members,
/// and so the home of some keys, changes. Every coherence message carries its sender's.
pub type Epoch = u64;

/// A node's monotonic clock in milliseconds. Only differences of one node's own readings
/// are ever compared, so nodes need not agree on the origin; their rates are assumed to
/// agree up to [`Config::margin_ms`] per lease (Gray and Cheriton's drift bound).
pub type Time = u64;

/// A client connection waiting on a node (opaque to the protocol, echoed in the reply).
pub type ClientId = u64;

/// A totally ordered stamp `(incarnation, sequence)` drawn from one node's counter.
///
/// A node draws request ids from it as a requester and grant/transaction stamps from it as
/// a home. The incarnation changes at each restart (the caller picks a number larger than
/// any of the node's earlier ones, e.g. the wall clock at start-up in ms), so stamps of a
/// restarted node compare above all of its earlier ones even though the counter restarts.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Stamp {
    /// The incarnation of the node that drew the stamp.
    pub incarnation: u64,
    /// The node's counter within that incarnation (starts at 1).
    pub seq: u64,
}

/// Where each key lives in one epoch: consistent hashing over the live members, committed
/// in the meta Raft group. The protocol takes it as an input; it never computes it.
pub trait Ring<K>: Clone + Debug {
    /// The epoch this ring belongs to.
    fn epoch(&self) -> Epoch;
    /// The home node of `key` in this epoch: the node that holds its directory entry.
    fn home(&self, key: &K) -> NodeId;
}

/// The state of a copy a node holds (a node holding nothing is in `I`, which has no
/// variant here: the copy is simply absent).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Held {
    /// Modified: the only copy, newer than the home's value.
    M,
    /// Exclusive: the only copy, equal to the home's value; becomes `M` on a local write
    /// without any message (the silent upgrade).
    E,
    /// Shared: read-only, other nodes may hold it too.
    S,
}

impl Held {
    /// The letter `CACHE.STATE` answers for this state.
    pub fn letter(self) -> &'static str {
        match self {
            Held::M => "M",
            Held::E => "E",
            Held::S => "S",
        }
    }

    /// Whether a write may proceed locally (M, or E by the silent upgrade).
    pub fn exclusive(self) -> bool {
        matches!(self, Held::M | Held::E)
    }
}

/// Timing of leases and retries, in milliseconds of each node's own clock.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// Length of a lease on a copy (`--cache-lease-ms`, default 2000). A copy is served
    /// only within its lease; a home that cannot collect an acknowledgement waits this long
    /// (from its grant) plus [`margin_ms`](Self::margin_ms), then proceeds.
    pub lease_ms: u64,
    /// Allowance for clock-rate drift between nodes over one lease: a home waits this much
    /// longer than a lease before it counts a silent copy as gone (Gray and Cheriton's ε).
    pub margin_ms: u64,
    /// How far apart (at most) two nodes adopt the same new epoch — the control plane's
    /// promise: a node that has not heard of the latest epoch for this long stops serving and
    /// granting. A node that becomes a key's home in a new epoch grants it only
    /// `lease_ms + margin_ms + epoch_spread_ms` after adopting the epoch, when every lease
    /// the old home may have granted has run out.
    pub epoch_spread_ms: u64,
    /// Interval between resends of an unanswered request, revocation or write-back
    /// (messages may be lost).
    pub retry_ms: u64,
    /// A planted bug, for the model checker's self-test only (see `check`).
    #[cfg(test)]
    pub(crate) bug: Option<Bug>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lease_ms: 2000,
            margin_ms: 100,
            epoch_spread_ms: 2000,
            retry_ms: 200,
            #[cfg(test)]
            bug: None,
        }
    }
}

impl Config {
    /// Whether the planted bug `bug` is switched on (always false outside tests).
    #[cfg(test)]
    pub(crate) fn has_bug(&self, bug: Bug) -> bool {
        self.bug == Some(bug)
    }

    /// Whether the planted bug `bug` is switched on (always false outside tests).
    #[cfg(not(test))]
    #[inline(always)]
    pub(crate) fn has_bug(&self, _bug: Bug) -> bool {
        false
    }
}

/// Bugs that can be planted in the protocol to show that the model checker catches them
/// (`check`). Only a test build can switch one on ([`Config`]'s `bug` field exists only
/// under `cfg(test)`); otherwise every check below is a constant `false`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Bug {
    /// The home grants `M` before the last invalidation acknowledgement has arrived
    /// (breaks Li and Hudak's rule: the writer must be the only holder).
    EarlyGrant,
    /// A node keeps serving its copy after the lease has run out (breaks Gray and
    /// Cheriton's rule that makes waiting out a lease safe).
    ServeExpired,
    /// A requester accepts a grant that crossed a revocation of the same copy (the
    /// revocation's stamp is not compared with the grant's).
    StaleGrant,
    /// A node that becomes the home of a key in a new epoch grants it at once, while the
    /// old home's leases may still run.
    NoEpochFence,
    /// A home keeps granting after its last ring confirmation ran out (breaks the control
    /// plane's lease: a home lagging behind a new epoch grants beside the new home).
    NoRingLease,
}

/// Counters of one node (contract 2.1: `CACHE.STATS` / `INFO cache`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stats {
    /// Requests this node sent to another node, the key's home, for a key it did not
    /// hold well enough (misses, upgrades and lease renewals).
    pub remote_reads: u64,
    /// Revocations (invalidations and recalls) this node sent as a home.
    pub invalidations_sent: u64,
    /// Revocations this node received for its copies.
    pub invalidations_received: u64,
    /// Modified copies written back to their home (on eviction or recall).
    pub writebacks: u64,
    /// Times this node, as a home, gave up on an unanswered revocation once the copy's
    /// lease had run out.
    pub lease_waits: u64,
    /// Keys whose latest value this node, as a home or holder, had to forget (its `M`
    /// holder died or was cut off, its home moved, or it was evicted at the home).
    pub forgotten: u64,
}
