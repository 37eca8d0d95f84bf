//! Model check of the protocol with `stateright`: the production [`Node`](super::Node)s of a
//! small cluster, every interleaving of client operations, message deliveries, losses,
//! clock ticks, crashes and restarts, checked against linearizability with forgetting
//! (`spec.rs`) and the single-writer invariant (`model.rs`).
//!
//! Planted bugs ([`Bug`]) show the check can fail: each test switches one on and requires
//! the checker to find a counterexample.

mod model;
mod spec;
mod tests;

pub(crate) use super::Bug;
pub(crate) use model::TestRing;
