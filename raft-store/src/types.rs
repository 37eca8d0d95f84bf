//! The openraft type configuration of every Conclave Raft group, declared once.

use conclave_commands::locks::{LockApplied, LockBatch};

openraft::declare_raft_types!(
    /// Conclave's Raft type configuration: lock requests in, lock results out.
    pub TypeConfig:
        D = LockBatch,
        R = Vec<LockApplied>,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A running Raft node of one group.
pub type Raft = openraft::Raft<TypeConfig>;
/// A node's id within the cluster.
pub type NodeId = u64;
/// A node's address record.
pub type Node = openraft::BasicNode;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log entry's payload.
pub type EntryPayload = openraft::EntryPayload<TypeConfig>;
/// `(term, leader, index)` of a log entry.
pub type LogId = openraft::LogId<NodeId>;
/// A term plus the node voted for.
pub type Vote = openraft::Vote<NodeId>;
/// A membership config with the log id it was written at.
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
/// A snapshot with its data.
pub type Snapshot = openraft::Snapshot<TypeConfig>;
/// What a snapshot covers.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
/// The storage error openraft's traits speak.
pub type StorageError = openraft::StorageError<NodeId>;
/// First and last log ids present in a log store.
pub type LogState = openraft::LogState<TypeConfig>;

/// Identifies one Raft group of a node (each has its own log, state machine and directory).
pub type GroupId = u64;

/// The group holding cluster metadata and the lock table.
pub const META_GROUP: GroupId = 0;
