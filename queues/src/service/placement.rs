//! Placement (contract section 5): topic → shard by hashing the topic's name, shard →
//! replicas by consistent hashing of the shard over the nodes.
//!
//! - **Topic → shard**: SipHash-2-4 with zero keys of [`placement_key`] (the name
//!   without its `:dlq` suffixes, so a topic and its dead letters share a shard), modulo
//!   the shard count. Stable across processes and builds, as every node must agree.
//! - **Shard → replicas**: a ring of [`VNODES`] virtual points per node (the `hashring`
//!   crate, SipHash with zero keys); the replicas of shard `s` are the first
//!   `--queue-replicas` distinct nodes met walking clockwise from the point of `s`. The
//!   first of them is the shard's *preferred leader*: it runs a shorter election timeout,
//!   so the leaders of the shards spread over the nodes as the ring does. With fewer nodes
//!   than replicas, every node holds every shard.

use std::hash::Hasher;

use hashring::HashRing;
use siphasher::sip::SipHasher;

use crate::machine::placement_key;

/// Virtual points per node on the ring (the contract asks for at least 128).
pub const VNODES: u32 = 160;

/// The shard of `topic` among `shards` shards (`shards ≥ 1`).
pub fn shard_of(topic: &[u8], shards: u32) -> u32 {
    let mut h = SipHasher::new();
    h.write(placement_key(topic));
    (h.finish() % u64::from(shards.max(1))) as u32
}

/// One virtual point of a node on the ring.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
struct Point {
    node: u64,
    i: u32,
}

/// The replica sets of every shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `replicas[s]`: node ids holding shard `s`, the preferred leader first.
    pub replicas: Vec<Vec<u64>>,
}

impl Layout {
    /// Places `shards` shards with `rf` replicas each over `nodes` (node ids).
    pub fn new(nodes: &[u64], shards: u32, rf: usize) -> Layout {
        let mut ring = HashRing::new();
        for &node in nodes {
            for i in 0..VNODES {
                ring.add(Point { node, i });
            }
        }
        let points = nodes.len() * VNODES as usize;
        let distinct = {
            let mut d = nodes.to_vec();
            d.sort_unstable();
            d.dedup();
            d.len()
        };
        let rf = rf.clamp(1, distinct.max(1));
        let replicas = (0..shards)
            .map(|s| {
                let mut chosen = Vec::with_capacity(rf);
                let walk = ring
                    .get_with_replicas(&("queue-shard", s), points)
                    .unwrap_or_default();
                for p in walk {
                    if !chosen.contains(&p.node) {
                        chosen.push(p.node);
                        if chosen.len() == rf {
                            break;
                        }
                    }
                }
                chosen
            })
            .collect();
        Layout { replicas }
    }

    /// The shards node `id` holds.
    pub fn shards_of(&self, id: u64) -> impl Iterator<Item = u32> + '_ {
        self.replicas
            .iter()
            .enumerate()
            .filter(move |(_, r)| r.contains(&id))
            .map(|(s, _)| s as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_and_its_dead_letters_share_a_shard_and_names_spread() {
        assert_eq!(shard_of(b"orders", 16), shard_of(b"orders:dlq", 16));
        assert_eq!(shard_of(b"orders", 16), shard_of(b"orders:dlq:dlq", 16));
        let mut used = [0u32; 16];
        for i in 0..1600 {
            used[shard_of(format!("topic-{i}").as_bytes(), 16) as usize] += 1;
        }
        assert!(used.iter().all(|&n| n > 50), "{used:?}");
        assert_eq!(shard_of(b"x", 1), 0);
    }

    #[test]
    fn replicas_are_distinct_and_everyone_holds_everything_when_few() {
        let l = Layout::new(&[1, 2, 3], 16, 3);
        for r in &l.replicas {
            let mut s = r.clone();
            s.sort_unstable();
            assert_eq!(s, vec![1, 2, 3]);
        }
        // Fewer nodes than replicas: every node holds every shard.
        let l = Layout::new(&[1, 2], 4, 3);
        assert!(l.replicas.iter().all(|r| r.len() == 2));
    }

    #[test]
    fn preferred_leaders_spread_and_few_shards_move_when_a_node_joins() {
        let nodes: Vec<u64> = (1..=5).collect();
        let l = Layout::new(&nodes, 64, 3);
        let mut first = std::collections::BTreeMap::new();
        for r in &l.replicas {
            assert_eq!(r.len(), 3);
            *first.entry(r[0]).or_insert(0) += 1;
        }
        assert_eq!(first.len(), 5, "every node prefers some shards: {first:?}");
        // One more node: a replica set changes only by the newcomer taking one place,
        // in about RF/N of the shards.
        let more = Layout::new(&(1..=6).collect::<Vec<_>>(), 64, 3);
        let mut changed = 0;
        for s in 0..64 {
            let (before, after) = (&l.replicas[s], &more.replicas[s]);
            let lost: Vec<_> = before.iter().filter(|n| !after.contains(n)).collect();
            if lost.is_empty() {
                continue;
            }
            changed += 1;
            assert!(
                after.contains(&6) && lost.len() == 1,
                "{before:?} -> {after:?}"
            );
        }
        assert!(
            (8..=48).contains(&changed),
            "{changed} of 64 shards changed"
        );
        // Same inputs, same layout (every node computes it alone).
        assert_eq!(Layout::new(&nodes, 64, 3), l);
    }
}
