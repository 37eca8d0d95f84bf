//! The ring: which node is the home of a key (contract 2.1, "Home node").
//!
//! Consistent hashing (Karger et al., *Consistent Hashing and Random Trees*, STOC 1997)
//! over the live members: each member owns [`VNODES`] points on a 64-bit circle, a key's
//! home is the owner of the first point at or after the key's hash (wrapping). When a
//! member joins or leaves only the keys between its points and their neighbours move.
//!
//! The membership and its epoch come from a [`RingSource`]: the meta Raft group once it
//! exists (the integrator plugs it in behind the trait), and until then
//! [`StaticRing`], the `--peers` list at epoch 1. Every node builds the same
//! [`HashRing`] from the same [`RingState`]: the hash is fixed (FNV-1a 64 with
//! MurmurHash3's 64-bit finalizer), never seeded per process.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;

use crate::coherence::{Epoch, NodeId, Ring};

/// Virtual points per member on the circle (the contract asks for at least 128).
pub const VNODES: u64 = 128;

/// The live members of one epoch, as the meta group commits them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RingState {
    /// The epoch (bumped at each membership change).
    pub epoch: u64,
    /// The live members' node ids, sorted, each once.
    pub members: Vec<u64>,
}

/// Where the ring comes from: the meta Raft group, or [`StaticRing`].
pub trait RingSource: Send + Sync {
    /// The ring now.
    fn current(&self) -> RingState;
    /// Every later ring (a changed value is a new epoch).
    fn subscribe(&self) -> watch::Receiver<RingState>;
}

/// The ring of `--peers`: every configured node, epoch 1, never changing.
#[derive(Debug)]
pub struct StaticRing {
    tx: watch::Sender<RingState>,
}

impl StaticRing {
    /// The ring of `members` (sorted and deduplicated here) at epoch 1.
    pub fn new(mut members: Vec<u64>) -> StaticRing {
        members.sort_unstable();
        members.dedup();
        let (tx, _) = watch::channel(RingState { epoch: 1, members });
        StaticRing { tx }
    }
}

impl RingSource for StaticRing {
    fn current(&self) -> RingState {
        self.tx.borrow().clone()
    }

    fn subscribe(&self) -> watch::Receiver<RingState> {
        self.tx.subscribe()
    }
}

/// A ring built from a [`RingState`]: the points of every member, sorted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HashRing {
    epoch: Epoch,
    points: Arc<Vec<(u64, NodeId)>>,
}

impl HashRing {
    /// The ring of `state` (a state without members homes every key on node 0, which
    /// does not exist: requests go nowhere until a real ring arrives).
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
            return 0;
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

    #[test]
    fn static_ring_is_epoch_one_sorted() {
        let s = StaticRing::new(vec![3, 1, 2, 1]);
        assert_eq!(
            s.current(),
            RingState {
                epoch: 1,
                members: vec![1, 2, 3]
            }
        );
        assert_eq!(s.subscribe().borrow().epoch, 1);
    }
}
