//! Commands that need more than the keyspace: the connection, the node, the cluster.
//!
//! String and cache commands live in `conclave_commands::cmd`; these are the ones
//! that touch connection state (`HELLO`, `AUTH`, `CLIENT`), node state (`CONFIG`,
//! `INFO`, `SHUTDOWN`) or the replicated lock service (`LOCK.*`, `RAFT.STATUS`).

pub mod connection;
pub mod lock;
pub mod server;
