//! Tools shipped in the `conclave` binary beside the node itself.

pub mod cluster_ready;
pub mod local_cluster;
pub mod ping;
