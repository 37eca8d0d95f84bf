//! The queue state machine of one shard, replicated through Raft.
//!
//! - Vocabulary: [`QueueBatch`] / [`QueueRequest`] / [`QueueOp`] go into the log,
//!   [`QueueQuery`] asks a replica; [`QueueApplied`] (a [`QueueReply`] plus the queued
//!   reads it answered, [`Wake`]) comes out. [`MsgId`] is a message id, [`QueueConfig`]
//!   the `--queue-*` parameters.
//! - [`QueueState`]: the deterministic machine (topics → messages, groups, dedup ids),
//!   with lazy expiry and leader-proposed ticks (see its docs).
//!
//! Layout: `topic` (messages and retention), `group` (one group's cursor, delivery
//! entries and their indexes), `dedup` (the dedup window), `deliveries` (push, read,
//! ack, nack, extend, withdrawals), `admin` (groups, delete, redrive), `queries`.
mod admin;
mod applied;
mod consumer_group;
mod dedup;
mod deliveries;
mod group_view;
mod msg_id;
mod queries;
mod queue_config;
mod queue_state;
mod replicated;
mod sorted_map;
mod topic;
mod vocab;

#[cfg(test)]
mod model_props;
#[cfg(test)]
mod op_gen;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod reference_ops;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod scenarios_waiting;
#[cfg(test)]
mod trace_drain;
#[cfg(test)]
mod trace_props;

pub use applied::*;
pub use msg_id::MsgId;
pub use queue_config::QueueConfig;
pub use queue_state::{dlq_name, placement_key, QueueState, DLQ_SUFFIX};
pub use vocab::*;
