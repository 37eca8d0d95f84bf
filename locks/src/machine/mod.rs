//! The lock service's state machine, replicated through Raft.
//!
//! - [`types`](self): the replicated vocabulary ([`LockRequest`], [`LockApplied`], ...).
//! - [`LockTable`]: the deterministic table every replica applies committed entries
//!   to: shared/exclusive holds with leases and fencing tokens, FIFO wait queues,
//!   upgrade/downgrade, expiry, and deadlock detection over the wait-for graph.
mod bytes_map;
mod deadlock;
mod index;
mod resource;
mod table;
mod types;

#[cfg(test)]
mod model;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use table::{LockTable, MAX_TTL_MS, MIN_TTL_MS};
pub use types::*;
