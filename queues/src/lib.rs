//! `conclave-queues`: the replicated queue of Conclave (contract section 5, `Q.*`) as a
//! pure, deterministic state machine — topics of messages with ids `<ms>-<seq>`,
//! consumer groups with per-message delivery state, visibility timeouts, `NACK` with
//! exponential backoff, `EXTEND`, delayed messages, dead letters to `<topic>:dlq` and
//! `Q.REDRIVE`, a dedup window per topic, retention until every group has acknowledged,
//! and `-OOM` at `--queue-max-len`.
//!
//! No sockets, no clocks, no randomness: a shard's Raft log carries [`QueueBatch`]es of
//! requests stamped with the leader's clock, and every replica applying them with
//! [`QueueState::apply`] reaches the same state and replies. The server wires it into a
//! Raft group per shard (placement: [`placement_key`]), answers queued `Q.READ`s from the
//! [`Wake`]s applying produces, and proposes [`QueueOp::Tick`] at
//! [`QueueState::next_deadline`].
//!
//! The node side lives here too: [`commands`] (the `Q.*` declarations and parsers),
//! [`reply`] (RESP shapes) and [`service`] (placement, routing to shard leaders,
//! blocking reads, the leader's ticks). The machine itself depends on no other Conclave
//! crate but `raft-store`'s `StateMachine` trait.

pub mod commands;
pub mod machine;
pub mod reply;
pub mod service;

pub use commands::COMMANDS;
pub use conclave_protocol::glob::glob_match;
pub use machine::*;
pub use service::QueueService;
