//! # conclave-cache
//!
//! The cache service: Redis's string keyspace served from this node's memory.
//!
//! - [`keyspace`]: the node-local string keyspace — sharded map, TTLs (lazy plus an
//!   active expire cycle), approximate-LRU/LFU eviction under `maxmemory`.
//! - [`rdb`]: `DUMP`/`RESTORE` payloads as Redis writes them ([`lzf`]: Redis's LZF).
//! - [`cmd`]: one type per string command (`GET`, `SET`, ...) with `parse` and `apply`,
//!   and [`COMMANDS`], where each command is declared once.
//!
//! No sockets and no clocks of its own: the server owns the network and calls this
//! crate; the coherence layer of the cluster-wide cache will live here too.

pub mod cmd;
pub mod coherence;
pub mod coherent;
pub mod keyspace;
pub mod long_double;
pub mod lzf;
pub mod rdb;

pub use cmd::COMMANDS;
