//! The openraft type configuration of a Raft group, generic over its
//! [`StateMachine`]: [`TypeConfig<M>`] replicates [`Batch`]es of `M::Op` and answers
//! one `M::Applied` per operation.

use std::cmp::Ordering;
use std::fmt;
use std::marker::PhantomData;

use crate::machine::{Batch, StateMachine};

/// The openraft type configuration of a group whose state machine is `M`.
pub struct TypeConfig<M>(PhantomData<fn() -> M>);

// openraft asks for these traits of a type configuration; `M` needs none of them
// (the derive would demand them of `M`), so they are written out.
impl<M> fmt::Debug for TypeConfig<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TypeConfig")
    }
}
impl<M> Clone for TypeConfig<M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M> Copy for TypeConfig<M> {}
impl<M> Default for TypeConfig<M> {
    fn default() -> Self {
        TypeConfig(PhantomData)
    }
}
impl<M> PartialEq for TypeConfig<M> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<M> Eq for TypeConfig<M> {}
impl<M> PartialOrd for TypeConfig<M> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<M> Ord for TypeConfig<M> {
    fn cmp(&self, _: &Self) -> Ordering {
        Ordering::Equal
    }
}

impl<M: StateMachine> openraft::RaftTypeConfig for TypeConfig<M> {
    type D = Batch<M::Op>;
    type R = Vec<M::Applied>;
    type NodeId = NodeId;
    type Node = Node;
    type Entry = openraft::Entry<TypeConfig<M>>;
    type SnapshotData = std::io::Cursor<Vec<u8>>;
    type AsyncRuntime = openraft::TokioRuntime;
    type Responder = openraft::impls::OneshotResponder<TypeConfig<M>>;
}

/// A running Raft node of a group whose state machine is `M`.
pub type Raft<M> = openraft::Raft<TypeConfig<M>>;
/// A node's id within the cluster.
pub type NodeId = u64;
/// A node's address record.
pub type Node = openraft::BasicNode;
/// A log entry of a group whose state machine is `M`.
pub type Entry<M> = openraft::Entry<TypeConfig<M>>;
/// A log entry's payload.
pub type EntryPayload<M> = openraft::EntryPayload<TypeConfig<M>>;
/// `(term, leader, index)` of a log entry.
pub type LogId = openraft::LogId<NodeId>;
/// A term plus the node voted for.
pub type Vote = openraft::Vote<NodeId>;
/// A membership config with the log id it was written at.
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
/// A snapshot with its data.
pub type Snapshot<M> = openraft::Snapshot<TypeConfig<M>>;
/// What a snapshot covers.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
/// The storage error openraft's traits speak.
pub type StorageError = openraft::StorageError<NodeId>;
/// First and last log ids present in a log store.
pub type LogState<M> = openraft::LogState<TypeConfig<M>>;

/// Identifies one Raft group of a node (each has its own log, state machine and directory).
pub type GroupId = u64;

/// The group holding the lock table (`LOCK.*`).
pub const LOCK_GROUP: GroupId = 0;

/// The group holding cluster metadata (the queue shard count, the cache's ring and its
/// epoch, membership).
pub const META_GROUP: GroupId = 1;

/// Queue shard `s` (`0..--queue-shards`) is group `QUEUE_GROUP_BASE + s`.
pub const QUEUE_GROUP_BASE: GroupId = 1000;

/// Debug kv group `n` (`1..=--debug-kv-groups`) is group `DEBUG_KV_GROUP_BASE + n`.
pub const DEBUG_KV_GROUP_BASE: GroupId = 2000;
