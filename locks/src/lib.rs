//! # conclave-locks
//!
//! The distributed lock service, in one place:
//!
//! - [`machine`]: the deterministic lock table every replica applies — shared /
//!   exclusive holds with leases and fencing tokens, FIFO wait queues, upgrade and
//!   downgrade, expiry, deadlock detection over the wait-for graph.
//! - [`commands`]: the `LOCK.*` commands, declared once ([`COMMANDS`]: name, arity,
//!   flags, docs and parser), and their replies.
//! - [`service`]: the node side — route a command to the group leader, batch it into the
//!   Raft log, block a waiting client until *its* grant is applied on its node, withdraw
//!   requests whose outcome the client was not told, and the leader's lease housekeeping.

pub mod commands;
pub mod machine;
pub mod service;

pub use commands::{COMMANDS, TTL_RANGE};
pub use service::LockService;
