//! The ring: which node is the home of a key (contract 2.1, "Home node").
//!
//! Consistent hashing (Karger et al., *Consistent Hashing and Random Trees*, STOC 1997)
//! over the live members: each member owns [`VNODES`] points on a 64-bit circle, a key's
//! home is the owner of the first point at or after the key's hash (wrapping). When a
//! member joins or leaves only the keys between its points and their neighbours move.
//!
//! The live members and their epoch come from a [`RingSource`]: the meta Raft group
//! ([`Meta`], `conclave_cluster::meta`), whose leader marks members up and down and
//! bumps the epoch exactly when the live set changes. Every node builds the same
//! [`HashRing`] from the same [`RingState`]: the hash is fixed (FNV-1a 64 with
//! MurmurHash3's 64-bit finalizer), never seeded per process.
//!
//! Why not the `hashring` crate the queue placement uses (`queues/src/service/placement.rs`):
//! a key's home is looked up on every miss, request and epoch change with the key as raw
//! bytes; this ring hashes the bytes once with a fixed, documented function and keeps the
//! points in one shared, immutable vector that every machine clone shares (`Arc`), where
//! `hashring` would SipHash the key through `Hash` (length-prefixed) and clone its vector
//! with the machine. The two rings never need to agree: they place different things.

use std::sync::Arc;

use bytes::Bytes;
use conclave_cluster::group::BoxFuture;
use conclave_cluster::meta::{Meta, MetaError, Ring as MetaRing};
use tokio::sync::watch;

use crate::coherence::{Epoch, NodeId, Ring};

/// Virtual points per member on the circle (the contract asks for at least 128).
pub const VNODES: u64 = 128;

/// The home of every key before there is a ring: no node has this id.
pub const NOBODY: NodeId = NodeId::MAX;

/// The live members of one epoch, as the meta group commits them (epoch 0, no members:
/// no ring yet — the meta leader has not seeded it).
pub type RingState = MetaRing;

/// Where the ring comes from: the meta Raft group.
pub trait RingSource: Send + Sync {
    /// The ring as this node has applied it, and every later one (a changed value is a
    /// new epoch). It may lag the latest ring and, while a restarted node replays its
    /// log, pass through older epochs.
    fn subscribe(&self) -> watch::Receiver<RingState>;
    /// The latest ring, read linearizably from the control plane: every ring committed
    /// before the call began is at or below the answer's epoch. Errors when no leader
    /// with a quorum answers within `within`.
    fn confirm(&self, within: std::time::Duration) -> BoxFuture<'_, Result<RingState, MetaError>>;
}

impl RingSource for Meta {
    fn subscribe(&self) -> watch::Receiver<RingState> {
        self.watch_ring()
    }

    fn confirm(&self, within: std::time::Duration) -> BoxFuture<'_, Result<RingState, MetaError>> {
        Box::pin(self.confirm_ring(within))
    }
}

/// A ring built from a [`RingState`]: the points of every member, sorted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HashRing {
    epoch: Epoch,
    points: Arc<Vec<(u64, NodeId)>>,
}

impl HashRing {
    /// The ring of `state` (a state without members homes every key on [`NOBODY`], which
    /// is no node: requests go nowhere until a real ring arrives, and every key counts as
    /// having moved when the first ring comes).
    pub fn new(state: &RingState) -> HashRing {
        let mut points: Vec<(u64, NodeId)> = state
            .members
            .iter()
            .flat_map(|&m| {
                (0..VNODES).map(move |v| {
                    let mut seed = [0u8; 16];
                    seed[..8].copy_from_slice(&m.to_le_bytes());
                    seed[8..].copy_from_slice(&v.to_le_bytes());
                    (hash(&seed), m)
                })
            })
            .collect();
        points.sort_unstable();
        HashRing {
            epoch: state.epoch,
            points: Arc::new(points),
        }
    }

    /// The home of `key`.
    pub fn home_of(&self, key: &[u8]) -> NodeId {
        if self.points.is_empty() {
            return NOBODY;
        }
        let h = hash(key);
        let at = self.points.partition_point(|(p, _)| *p < h);
        self.points[at % self.points.len()].1
    }
}

impl Ring<Bytes> for HashRing {
    fn epoch(&self) -> Epoch {
        self.epoch
    }

    fn home(&self, key: &Bytes) -> NodeId {
        self.home_of(key)
    }
}

/// FNV-1a 64 of `bytes`, finished with MurmurHash3's `fmix64` (FNV alone clusters
/// short, similar keys).
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(epoch: u64, members: &[u64]) -> HashRing {
        HashRing::new(&RingState {
            epoch,
            members: members.to_vec(),
        })
    }

    #[test]
    fn every_member_homes_a_fair_share_and_the_ring_is_the_same_everywhere() {
        let r = ring(1, &[1, 2, 3]);
        let mut count = [0usize; 4];
        for i in 0..30_000 {
            let key = format!("key:{i}");
            let home = r.home_of(key.as_bytes());
            assert_eq!(home, ring(1, &[3, 1, 2]).home_of(key.as_bytes()));
            count[home as usize] += 1;
        }
        for n in 1..=3 {
            assert!((6_000..14_000).contains(&count[n]), "{count:?}");
        }
    }

    #[test]
    fn a_member_leaving_moves_only_its_keys() {
        let before = ring(1, &[1, 2, 3]);
        let after = ring(2, &[1, 3]);
        for i in 0..5_000 {
            let key = format!("k{i}");
            let (b, a) = (
                before.home_of(key.as_bytes()),
                after.home_of(key.as_bytes()),
            );
            if b != 2 {
                assert_eq!(a, b);
            } else {
                assert_ne!(a, 2);
            }
        }
    }
}
