//! Tools shipped in the `conclave` binary beside the node itself.

pub mod local_cluster;
pub mod ping;
