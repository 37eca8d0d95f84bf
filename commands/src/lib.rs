//! # conclave-commands
//!
//! Everything Conclave knows about *what a command means*, with no sockets and no
//! clocks of its own:
//!
//! - [`frame`]: the reply type every command produces, and its RESP2/RESP3 encoding.
//! - [`parse`]: a cursor over a command's arguments with Redis-compatible errors.
//! - [`keyspace`]: the node-local string keyspace (the cache): sharded map, TTLs,
//!   approximate-LRU eviction under `maxmemory`.
//! - [`cmd`]: one type per string command (`GET`, `SET`, ...) with `parse` and `apply`.
//! - [`locks`]: the deterministic lock state machine replicated through Raft.
//!
//! The `server` crate owns the network; this crate is what it calls.

pub mod cmd;
pub mod codec;
pub mod frame;
pub mod keyspace;
pub mod locks;
pub mod parse;

pub use frame::Frame;
pub use parse::{Parse, ParseError};
