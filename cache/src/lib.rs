//! # conclave-cache
//!
//! The cache service: Redis's string keyspace served from this node's memory.
//!
//! - [`keyspace`]: the node-local string keyspace — sharded map, TTLs (lazy plus an
//!   active expire cycle), approximate-LRU/LFU eviction under `maxmemory`.
//! - [`rdb`]: `DUMP`/`RESTORE` payloads as Redis writes them ([`lzf`]: Redis's LZF).
//! - [`cmd`]: one type per string command (`GET`, `SET`, ...) with `parse` and `apply`,
//!   and [`COMMANDS`], where each command is declared once.
//! - [`coherence`]: the cluster-wide cache's protocol (directory MESI with leases) as a
//!   deterministic sans-I/O machine, model-checked in its `check` module.
//! - [`coherent`]: that machine at work in a node — the ring, the links to the peers on the
//!   cluster channel, its timer, and commands run once this node holds their keys.
//!
//! The keyspace and the protocol have no sockets and no clocks of their own; the driver in
//! [`coherent`] owns the coherence traffic (tokio tasks on the cluster channel) and the
//! server owns everything else.

pub mod cmd;
pub mod coherence;
pub mod coherent;
pub mod keyspace;
pub mod long_double;
pub mod lzf;
pub mod rdb;
pub mod rdb_file;

pub use cmd::COMMANDS;
