//! The end of a property-test history (see `trace_props`): drain every group with
//! time running far past every timeout, audit what is left with a fresh group, and
//! check that nothing acknowledged was lost.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use proptest::strategy::Strategy;

use super::op_gen::steps;
use super::trace_props::Trace;
use super::*;

impl Trace {
    /// Reads and acknowledges everything, with time running far past every timeout,
    /// then audits what is left in each topic with a fresh group.
    pub(super) fn drain(&mut self) {
        // Queued reads of the run's clients would still take messages: their nodes
        // drop them (as after a restart) — though one may already hold a delivery.
        for origin in 1..=2 {
            self.apply(QueueOp::CancelOrigin { origin });
        }
        for _ in 0..50 {
            self.now += 10_000;
            self.apply(QueueOp::Tick);
            let mut left = 0;
            for topic in self.state.topics(None) {
                for group in self.groups(&topic) {
                    self.drain_group(&topic, &group, b"drain");
                }
                let info = self.state.info(&topic).into_iter().flat_map(|i| i.groups);
                left += info.map(|g| g.pending + g.lag).sum::<u64>();
            }
            if left == 0 {
                break;
            }
        }
        for topic in self.state.topics(None) {
            let audit = Bytes::from_static(b"zz-audit");
            let fresh = self
                .state
                .info(&topic)
                .is_some_and(|i| !i.groups.iter().any(|g| g.name == audit));
            if fresh {
                self.drain_group(&topic, &audit, b"audit");
            }
        }
    }

    fn drain_group(&mut self, topic: &Name, group: &Name, consumer: &'static [u8]) -> usize {
        self.ids.next_rid += 1;
        let read = QueueOp::Read {
            topic: topic.clone(),
            group: group.clone(),
            consumer: Bytes::from_static(consumer),
            count: 1_000,
            visibility_ms: Some(1_000_000),
            block_ms: None,
            rid: self.ids.next_rid,
            origin: 9,
        };
        let QueueReply::Messages(msgs) = self.apply(read).reply else {
            panic!("drain read");
        };
        if !msgs.is_empty() {
            self.apply(QueueOp::Tick);
            let ids = msgs.iter().map(|m| m.id).collect();
            self.apply(QueueOp::Ack {
                topic: topic.clone(),
                group: group.clone(),
                ids,
            });
        }
        msgs.len()
    }

    /// After the drain: nothing lost.
    pub(super) fn check_nothing_lost(&self) {
        for ((topic, group), owed) in &self.owed {
            let Some(info) = self.state.info(topic) else {
                continue;
            };
            let Some(g) = info.groups.iter().find(|g| g.name == *group) else {
                continue;
            };
            assert_eq!(
                (g.pending, g.lag),
                (0, 0),
                "{topic:?}/{group:?} not drained"
            );
            let acked = self.acked.get(&(topic.clone(), group.clone()));
            let dead = self.dead_by.get(&(topic.clone(), group.clone()));
            for p in owed {
                assert!(
                    acked.is_some_and(|a| a.contains(p)) || dead.is_some_and(|d| d.contains(p)),
                    "{topic:?}/{group:?} lost {p:?}"
                );
            }
        }
        for (topic, expected) in &self.dead_expected {
            let seen = self.dead_seen.get(topic);
            for p in expected {
                assert!(
                    seen.is_some_and(|s| s.contains(p)),
                    "dead letter {p:?} of {topic:?} never reached {:?}",
                    dlq_name(topic)
                );
            }
        }
    }
}

/// The trace checks have something to check (a fixed-seed run): messages owed,
/// acknowledged and dead-lettered, dead letters seen arriving, redeliveries.
#[test]
fn trace_checks_are_exercised() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let (mut owed, mut acked, mut dead, mut seen, mut shadowed) = (0, 0, 0, 0, 0);
    for _ in 0..40 {
        let steps = steps(150).new_tree(&mut runner).expect("steps").current();
        let mut t = Trace::new();
        for step in &steps {
            t.step(step);
        }
        shadowed += t.shadow.values().map(BTreeMap::len).sum::<usize>();
        t.drain();
        t.check_nothing_lost();
        owed += t.owed.values().map(BTreeSet::len).sum::<usize>();
        acked += t.acked.values().map(BTreeSet::len).sum::<usize>();
        dead += t.dead_by.values().map(BTreeSet::len).sum::<usize>();
        seen += t.dead_seen.values().map(BTreeSet::len).sum::<usize>();
    }
    println!("owed {owed} acked {acked} dead {dead} seen {seen} shadowed {shadowed}");
    for (what, n) in [
        ("owed", owed),
        ("acked", acked),
        ("dead", dead),
        ("seen", seen),
        ("shadowed", shadowed),
    ] {
        assert!(n >= 10, "{what}: {n}");
    }
}
