//! The commands the server crate itself declares and runs: those that need the
//! connection (`HELLO`, `AUTH`, `CLIENT`, ...) or the node (`CONFIG`, `INFO`,
//! `COMMAND`, `SHUTDOWN`, `RAFT.STATUS`, the diagnostics `SLOWLOG`, `LATENCY`,
//! `MEMORY`, ...). Keyspace commands live in `conclave_cache`,
//! `LOCK.*` in `conclave_locks`.

pub mod acl_cmd;
pub mod client_cmd;
pub mod command_cmd;
pub mod config_cmd;
pub mod connection_cmds;
pub mod diagnostic_cmds;
pub mod server_cmds;
pub mod subcommands;
