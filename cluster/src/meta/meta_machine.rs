//! [`MetaMachine`]: the replicated state of the meta group (group 1) — the queue shard
//! count, the member table and the cache ring with its epoch.
//!
//! Deterministic like every machine: no clock is read, time comes only from the
//! proposing leader's stamp (`now_ms`), and every decision that depends on wall time
//! (who is down) is taken by the meta leader *before* proposing ([`super::liveness`]);
//! the machine only records it. Same log → same table, same ring, same epochs on every
//! node.
//!
//! The ring is derived: the live (`up`) members, sorted by id, and an epoch that grows by
//! one exactly when that set changes (contract 2.1: the cache's homes are chosen over the
//! live members and the epoch fences a home change). An entry that changes nothing about
//! the live set leaves the epoch alone.

use std::collections::BTreeMap;

use conclave_raft_store::{NodeId, Stamped, StateMachine};
use serde::{Deserialize, Serialize};

use super::functions::{FunctionOp, FunctionReply, FunctionSet};

/// Whether a member is alive as the meta leader sees it (contract 4.1 also names
/// `joining` and `leaving`, which come with `MEMBER.ADD`/`MEMBER.REMOVE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberState {
    /// Heard from within `--node-timeout` (or within the grace period of a new leader).
    Up,
    /// Not heard from for `--node-timeout` ms.
    Down,
}

impl MemberState {
    /// The name `MEMBER.LIST` answers (`up`, `down`).
    pub fn name(self) -> &'static str {
        match self {
            MemberState::Up => "up",
            MemberState::Down => "down",
        }
    }
}

/// One row of the member table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The node's id.
    pub id: NodeId,
    /// Its cluster (internal) address, `host:port`.
    pub addr: String,
    /// Its client address, `host:port` (empty until the node has announced it).
    pub client_addr: String,
    /// Up or down.
    pub state: MemberState,
    /// Whether it votes in the meta group.
    pub voter: bool,
    /// When the meta leader last reported hearing from it (leader's wall clock, ms
    /// since the Unix epoch), as of the last entry that changed its state or announced
    /// it; not updated on every heartbeat (that would be a log entry per heartbeat).
    pub last_heard_ms: u64,
}

/// The cache ring: the live members and the epoch of that set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ring {
    /// Grows by one whenever the set of live members changes (0: never set).
    pub epoch: u64,
    /// The live members, sorted by id.
    pub members: Vec<NodeId>,
}

/// A new member's identity, as the leader learns it from the group's Raft membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMember {
    /// The node's id.
    pub id: NodeId,
    /// Its cluster address.
    pub addr: String,
    /// Whether it votes.
    pub voter: bool,
}

/// A state change decided by the meta leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    /// The member.
    pub id: NodeId,
    /// Its new state.
    pub state: MemberState,
    /// When the leader last heard from it (ms since the Unix epoch, leader's clock).
    pub last_heard_ms: u64,
}

/// An operation of the meta group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaOp {
    /// Records the queue shard count if none is recorded yet (contract 5: set when the
    /// cluster is created). The reply is the recorded count, which wins over a
    /// different proposal.
    RecordQueueShards(u32),
    /// The group's Raft membership as the leader sees it: adds the members the table
    /// lacks (`up`, heard at the entry's time) and sets the cluster address and voter
    /// flag of known ones (their state and client address stay).
    Seed(Vec<NewMember>),
    /// A node's own announcement at start: its client address, recorded if the member
    /// is known (seeded); an unknown one changes nothing (the node asks again once the
    /// leader has seeded it), so only seeding creates members and a new cluster's ring
    /// starts with every initial member at once, in one epoch. Never changes a state.
    Announce {
        /// The node's id.
        id: NodeId,
        /// Its client address.
        client_addr: String,
    },
    /// The meta leader's liveness verdicts; unknown ids are ignored.
    SetStates(Vec<StateChange>),
    /// A change of the Redis function libraries ([`super::functions`]).
    Functions(FunctionOp),
    /// A linearizable read of the ring ([`super::Meta::confirm_ring`]): the leader answers
    /// it after a read barrier and never proposes it. Applied (it is not), it would change
    /// nothing and answer the ring.
    ReadRing,
    /// A change of the ACL users ([`super::acl`]).
    Acl(super::acl::AclOp),
}

/// The reply to a [`MetaOp`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaApplied {
    /// [`MetaOp::RecordQueueShards`]: the recorded count.
    QueueShards(u32),
    /// [`MetaOp::Announce`]: whether the member was known (and its address recorded).
    Announced(bool),
    /// Every other op: the ring after it.
    Ring(Ring),
    /// [`MetaOp::Functions`]: the libraries' version after it, or why nothing changed.
    Functions(FunctionReply),
    /// [`MetaOp::Acl`].
    Acl(super::acl::AclApplied),
}

/// The meta group's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaMachine {
    /// The queue shard count, once recorded.
    queue_shards: Option<u32>,
    /// The member table by id.
    members: BTreeMap<NodeId, Member>,
    /// The cache ring.
    ring: Ring,
    /// The Redis function libraries (after the fields above: a snapshot from before them ends before it).
    #[serde(default, deserialize_with = "super::functions::absent_is_empty")]
    functions: FunctionSet,
    /// The ACL users (last: older snapshots end before it, or before the libraries).
    #[serde(default, deserialize_with = "super::acl::lenient")]
    acl: super::acl::AclTable,
}

impl MetaMachine {
    /// The recorded queue shard count.
    pub fn queue_shards(&self) -> Option<u32> {
        self.queue_shards
    }

    /// The Redis function libraries.
    pub fn functions(&self) -> &FunctionSet {
        &self.functions
    }

    /// The cache ring.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// The member table, by id.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// The ACL users.
    pub fn acl(&self) -> &super::acl::AclTable {
        &self.acl
    }

    /// One member.
    pub fn member(&self, id: NodeId) -> Option<&Member> {
        self.members.get(&id)
    }

    /// Recomputes the ring from the table; the epoch grows only when the live set
    /// changed.
    fn refresh_ring(&mut self) {
        let live: Vec<NodeId> = self
            .members
            .values()
            .filter(|m| m.state == MemberState::Up)
            .map(|m| m.id)
            .collect();
        if live != self.ring.members {
            self.ring.members = live;
            self.ring.epoch += 1;
        }
    }
}

impl StateMachine for MetaMachine {
    type Op = MetaOp;
    type Applied = MetaApplied;

    fn apply(&mut self, _index: u64, req: &Stamped<MetaOp>) -> MetaApplied {
        match &req.op {
            MetaOp::RecordQueueShards(n) => {
                return MetaApplied::QueueShards(*self.queue_shards.get_or_insert(*n));
            }
            MetaOp::Seed(new) => {
                for m in new {
                    let member = self.members.entry(m.id).or_insert_with(|| Member {
                        id: m.id,
                        addr: String::new(),
                        client_addr: String::new(),
                        state: MemberState::Up,
                        voter: m.voter,
                        last_heard_ms: req.now_ms,
                    });
                    member.addr.clone_from(&m.addr);
                    member.voter = m.voter;
                }
            }
            MetaOp::Announce { id, client_addr } => {
                let Some(member) = self.members.get_mut(id) else {
                    return MetaApplied::Announced(false);
                };
                member.client_addr.clone_from(client_addr);
                member.last_heard_ms = member.last_heard_ms.max(req.now_ms);
                return MetaApplied::Announced(true);
            }
            MetaOp::Functions(op) => return MetaApplied::Functions(self.functions.apply(op)),
            MetaOp::Acl(op) => return MetaApplied::Acl(self.acl.apply(op)),
            MetaOp::SetStates(changes) => {
                for c in changes {
                    if let Some(m) = self.members.get_mut(&c.id) {
                        m.state = c.state;
                        m.last_heard_ms = m.last_heard_ms.max(c.last_heard_ms);
                    }
                }
            }
            MetaOp::ReadRing => return MetaApplied::Ring(self.ring.clone()),
        }
        self.refresh_ring();
        MetaApplied::Ring(self.ring.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(now_ms: u64, op: MetaOp) -> Stamped<MetaOp> {
        Stamped { now_ms, op }
    }

    fn seed(ids: &[NodeId]) -> MetaOp {
        MetaOp::Seed(
            ids.iter()
                .map(|&id| NewMember {
                    id,
                    addr: format!("127.0.0.1:{}", 17000 + id),
                    voter: true,
                })
                .collect(),
        )
    }

    fn set(id: NodeId, state: MemberState, last_heard_ms: u64) -> MetaOp {
        MetaOp::SetStates(vec![StateChange {
            id,
            state,
            last_heard_ms,
        }])
    }

    #[test]
    fn queue_shards_are_recorded_once() {
        let mut m = MetaMachine::default();
        assert_eq!(m.queue_shards(), None);
        assert_eq!(
            m.apply(1, &at(1, MetaOp::RecordQueueShards(16))),
            MetaApplied::QueueShards(16)
        );
        assert_eq!(
            m.apply(2, &at(2, MetaOp::RecordQueueShards(32))),
            MetaApplied::QueueShards(16),
            "the first recorded value wins"
        );
        assert_eq!(m.queue_shards(), Some(16));
        assert_eq!(m.ring().epoch, 0, "recording touches no ring");
    }

    #[test]
    fn the_epoch_grows_only_when_the_live_set_changes() {
        let mut m = MetaMachine::default();
        m.apply(1, &at(10, seed(&[3, 1, 2])));
        assert_eq!(
            m.ring(),
            &Ring {
                epoch: 1,
                members: vec![1, 2, 3]
            }
        );
        // Seeding known members, re-announcing, marking up what is up: no change.
        m.apply(2, &at(11, seed(&[1, 2, 3])));
        m.apply(
            3,
            &at(
                12,
                MetaOp::Announce {
                    id: 2,
                    client_addr: "127.0.0.1:7002".into(),
                },
            ),
        );
        m.apply(4, &at(13, set(1, MemberState::Up, 13)));
        assert_eq!(m.ring().epoch, 1);
        assert_eq!(
            m.member(2).map(|x| x.client_addr.as_str()),
            Some("127.0.0.1:7002")
        );
        // Down: the epoch grows and the ring excludes it.
        m.apply(5, &at(20, set(3, MemberState::Down, 14)));
        assert_eq!(
            m.ring(),
            &Ring {
                epoch: 2,
                members: vec![1, 2]
            }
        );
        // Down again: nothing changes.
        m.apply(6, &at(21, set(3, MemberState::Down, 14)));
        assert_eq!(m.ring().epoch, 2);
        // Up again: it grows once more.
        m.apply(7, &at(30, set(3, MemberState::Up, 30)));
        assert_eq!(
            m.ring(),
            &Ring {
                epoch: 3,
                members: vec![1, 2, 3]
            }
        );
        assert_eq!(m.member(3).map(|x| x.last_heard_ms), Some(30));
        // Unknown ids are ignored.
        m.apply(8, &at(31, set(9, MemberState::Down, 0)));
        assert_eq!(m.ring().epoch, 3);
        // A node not seeded yet announcing itself changes nothing (it asks again).
        let unknown = MetaOp::Announce {
            id: 4,
            client_addr: "b".into(),
        };
        assert_eq!(m.apply(9, &at(32, unknown)), MetaApplied::Announced(false));
        assert!(m.member(4).is_none());
        assert_eq!(m.ring().epoch, 3);
        // Seeded, it joins the live set.
        m.apply(10, &at(33, seed(&[4])));
        assert_eq!(
            m.ring(),
            &Ring {
                epoch: 4,
                members: vec![1, 2, 3, 4]
            }
        );
    }

    #[test]
    fn one_entry_with_several_changes_is_one_epoch() {
        let mut m = MetaMachine::default();
        m.apply(1, &at(1, seed(&[1, 2, 3])));
        let both = MetaOp::SetStates(vec![
            StateChange {
                id: 2,
                state: MemberState::Down,
                last_heard_ms: 1,
            },
            StateChange {
                id: 3,
                state: MemberState::Down,
                last_heard_ms: 1,
            },
        ]);
        assert_eq!(
            m.apply(2, &at(5, both)),
            MetaApplied::Ring(Ring {
                epoch: 2,
                members: vec![1]
            })
        );
    }

    #[test]
    fn replay_is_deterministic_and_snapshots_round_trip() {
        let log = [
            at(1, seed(&[1, 2, 3])),
            at(2, MetaOp::RecordQueueShards(8)),
            at(3, set(2, MemberState::Down, 2)),
            at(
                4,
                MetaOp::Announce {
                    id: 1,
                    client_addr: "y".into(),
                },
            ),
            at(5, MetaOp::RecordQueueShards(4)),
            at(6, set(2, MemberState::Up, 6)),
            at(7, set(3, MemberState::Down, 5)),
        ];
        let run = || {
            let mut m = MetaMachine::default();
            let replies: Vec<MetaApplied> = log
                .iter()
                .enumerate()
                .map(|(i, e)| m.apply(i as u64 + 1, e))
                .collect();
            (m, replies)
        };
        let (a, ra) = run();
        let (b, rb) = run();
        assert_eq!(a, b);
        assert_eq!(ra, rb);
        assert_eq!(a.ring().epoch, 4);
        assert_eq!(a.queue_shards(), Some(8));
        // A snapshot (the whole state, encoded) restores the same machine.
        let bytes = serde_json::to_vec(&a).expect("encode");
        let c: MetaMachine = serde_json::from_slice(&bytes).expect("decode");
        assert_eq!(a, c);
    }
}
