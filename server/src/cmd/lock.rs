//! `LOCK.*` and `RAFT.STATUS`: parsed here, executed by the lock service.

use conclave_commands::{Frame, Parse};

use crate::command_table::CommandSpec;
use crate::node::Node;

/// Runs a lock-group command (or `RAFT.STATUS`).
pub async fn execute(node: &Node, spec: &CommandSpec, parse: &mut Parse) -> Frame {
    node.locks.execute(node, spec, parse).await
}
