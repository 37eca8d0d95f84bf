//! # conclave-cluster
//!
//! What a node needs to talk to the other nodes, whatever the service:
//!
//! - [`peer`]: the client side of the cluster channel (pooled RESP connections to each
//!   peer's cluster port, with deadlines and connect backoff);
//! - [`raft_network`]: openraft's network over that channel, for a group of any
//!   machine;
//! - [`group`]: a Raft group hosted by this node ([`RaftGroup`]) — start, quorum
//!   tracking, the peers' RPCs — and its type-erased face ([`HostedGroup`]) for the
//!   router, `RAFT.STATUS` and metrics;
//! - [`group_status`], [`group_stats`], [`histogram`]: what a group reports.

pub mod group;
pub mod group_stats;
pub mod group_status;
pub mod histogram;
pub mod peer;
pub mod raft_network;

pub use group::{GroupConfig, HostedGroup, RaftGroup};
pub use raft_network::Peers;
