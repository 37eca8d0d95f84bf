//! What a service implements to be replicated: a deterministic [`StateMachine`], and
//! the shape of its log entries ([`Batch`] of [`Stamped`] operations).
//!
//! The machine never reads a clock: each operation carries `now_ms`, the proposing
//! leader's wall clock (ms since the Unix epoch), as its only notion of time, so every
//! replica computes the same result (the lock and queue machines expire leases and
//! visibility timeouts from it).

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A replicated, deterministic state machine: the whole state of one Raft group.
///
/// The state is serialized whole into snapshots, so it must be `Serialize` and
/// `Deserialize`; applying the same operations in the same order to equal states must
/// give equal states and results on every replica.
pub trait StateMachine:
    Default + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// One operation, as a client's request asks for it.
    type Op: Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The result of applying one operation (what the proposer hands back, and what the
    /// apply hook sees on every replica).
    type Applied: Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Applies `req`, which is part of the log entry at `index`.
    fn apply(&mut self, index: u64, req: &Stamped<Self::Op>) -> Self::Applied;
}

/// One operation with the proposing leader's clock.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Stamped<Op> {
    /// The proposing leader's wall clock, ms since the Unix epoch.
    pub now_ms: u64,
    /// What to do.
    pub op: Op,
}

/// One Raft log entry: operations proposed together by the leader (batching many
/// clients' requests into one entry is what lets one fsync serve them all), applied in
/// order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Batch<Op> {
    /// The operations, in the order they are applied.
    pub requests: Vec<Stamped<Op>>,
}

impl<Op> Default for Batch<Op> {
    fn default() -> Self {
        Batch {
            requests: Vec::new(),
        }
    }
}

impl<Op> From<Stamped<Op>> for Batch<Op> {
    fn from(req: Stamped<Op>) -> Self {
        Batch {
            requests: vec![req],
        }
    }
}
