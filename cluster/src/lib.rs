//! # conclave-cluster
//!
//! What a node needs to talk to the other nodes, whatever the service:
//!
//! - the cluster channel: [`wire`] (its RESP format: a handshake, then tagged requests
//!   multiplexed on each connection), [`peer`] (the client side: a few multiplexed
//!   connections per peer, with deadlines and connect backoff, over [`mux`] and
//!   [`outbox`]), [`peer_listener`] (the server side) and [`router`] (which hands each
//!   request to the Raft group or the service it names, so the channel names none);
//! - [`raft_network`]: openraft's network over that channel, for a group of any
//!   machine;
//! - [`group`]: a Raft group hosted by this node ([`RaftGroup`]) — start, quorum
//!   tracking, the peers' RPCs — and its type-erased face ([`HostedGroup`]) for the
//!   router, `RAFT.STATUS` and metrics;
//! - [`directory`]: the members' client addresses, exchanged at each handshake;
//! - [`group_status`], [`group_stats`], [`histogram`]: what a group reports;
//! - [`leader_route`]: run a command on its group's leader or forward it there (`FWD`),
//!   for any service;
//! - [`meta`]: the meta group (group 1) — queue shard count, members and liveness, the
//!   cache ring — and `MEMBER.LIST`.

pub mod directory;
pub mod group;
pub mod group_stats;
pub mod group_status;
pub mod histogram;
pub mod leader_route;
pub mod meta;
pub mod mux;
pub mod outbox;
pub mod peer;
pub mod peer_listener;
pub mod raft_network;
pub mod router;
pub mod wire;

#[cfg(test)]
mod channel_tests;

/// The wall clock in ms since the Unix epoch: the clock of every `FWD` deadline.
pub use conclave_raft_store::proposer::now_ms;
pub use directory::Directory;
pub use group::{GroupConfig, HostedGroup, RaftGroup};
pub use raft_network::{HeardFrom, Peers};
pub use router::{ForwardHandler, Router, StatusSource};
