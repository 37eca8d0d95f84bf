//! Property tests: random operation sequences applied to both the [`LockTable`] and the
//! naive reference [`Model`], checking after every step that replies, grants and
//! observable state agree and that the safety properties hold.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::model::{MEdge, Model};
use super::*;

use LockMode::{Exclusive, Shared};

const OWNERS: [&str; 4] = ["a", "b", "c", "d"];
/// More owners than resources: longer queues and longer cycles.
const MANY_OWNERS: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];
const RESOURCES: [&str; 3] = ["r0", "r1", "r2"];

fn owner(owners: &'static [&'static str]) -> impl Strategy<Value = Name> {
    prop::sample::select(owners).prop_map(|s| s.as_bytes().to_vec())
}

fn resource() -> impl Strategy<Value = Name> {
    prop::sample::select(&RESOURCES[..]).prop_map(|s| s.as_bytes().to_vec())
}

fn mode() -> impl Strategy<Value = LockMode> {
    prop_oneof![Just(Shared), Just(Exclusive)]
}

fn ttl() -> impl Strategy<Value = u64> {
    // 50 is invalid; the rest range from "expires soon" to "never in this run".
    prop::sample::select(vec![50u64, 100, 250, 1_000, 100_000])
}

fn wait() -> impl Strategy<Value = Option<u64>> {
    prop::sample::select(vec![None, Some(0u64), Some(150), Some(1_000)])
}

/// Request ids from a small set, so that repeated requests, take-overs of a queued
/// place and withdrawals of an old or unknown request all happen.
fn rid() -> impl Strategy<Value = RequestId> {
    0..4u64
}

fn op(owners: &'static [&'static str]) -> impl Strategy<Value = LockOp> {
    let owner = || owner(owners);
    prop_oneof![
        8 => (resource(), owner(), mode(), ttl(), wait(), rid()).prop_map(
            |(resource, owner, mode, ttl_ms, wait_ms, rid)| LockOp::Acquire {
                resource, owner, mode, ttl_ms, wait_ms, rid,
            }
        ),
        3 => (resource(), owner()).prop_map(|(resource, owner)| LockOp::Release { resource, owner }),
        1 => (resource(), owner(), ttl())
            .prop_map(|(resource, owner, ttl_ms)| LockOp::Renew { resource, owner, ttl_ms }),
        3 => (resource(), owner(), wait(), rid())
            .prop_map(|(resource, owner, wait_ms, rid)| LockOp::Upgrade { resource, owner, wait_ms, rid }),
        1 => (resource(), owner()).prop_map(|(resource, owner)| LockOp::Downgrade { resource, owner }),
        2 => (resource(), owner(), rid(), any::<bool>(), any::<bool>()).prop_map(
            |(resource, owner, rid, undo, upgrade)| LockOp::Cancel { resource, owner, rid, undo, upgrade }
        ),
        2 => Just(LockOp::Expire),
        1 => Just(LockOp::ExtendLeases),
    ]
}

/// `(clock advance, log index gap, operation)`.
type Step = (u64, u64, LockOp);

fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    steps_among(&OWNERS, max)
}

fn steps_among(owners: &'static [&'static str], max: usize) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((0..300u64, 1..3u64, op(owners)), 1..max)
}

/// Parses `owner 'a' waits for 'r' held by 'b'` into an edge.
fn parse_edge(text: &str) -> MEdge {
    let rest = text.strip_prefix("owner '").expect(text);
    let (from, rest) = rest.split_once("' waits for '").expect(text);
    let (res, rest, held) = match rest.split_once("' held by '") {
        Some((res, rest)) => (res, rest, true),
        None => {
            let (res, rest) = rest.split_once("' queued behind '").expect(text);
            (res, rest, false)
        }
    };
    let to = rest.strip_suffix('\'').expect(text);
    (from.into(), res.into(), to.into(), held)
}

/// The reported cycle is made of real edges of the graph the request would have
/// produced, is connected, and starts and ends at the requester.
fn check_cycle(text: &str, requester: &[u8], graph: &[MEdge]) {
    let edges: Vec<MEdge> = text.split(" -> ").map(parse_edge).collect();
    assert!(!edges.is_empty());
    for e in &edges {
        assert!(
            graph.contains(e),
            "edge {e:?} of {text:?} not in the graph {graph:?}"
        );
    }
    for pair in edges.windows(2) {
        assert_eq!(pair[0].2, pair[1].0, "{text}");
    }
    assert_eq!(edges[0].0, requester, "{text}");
    assert_eq!(edges[edges.len() - 1].2, requester, "{text}");
}

fn requester(op: &LockOp) -> &[u8] {
    match op {
        LockOp::Acquire { owner, .. } | LockOp::Upgrade { owner, .. } => owner,
        _ => &[],
    }
}

fn infos(table: &LockTable, now: u64) -> BTreeMap<&'static str, LockInfo> {
    RESOURCES
        .iter()
        .map(|r| (*r, table.info(r.as_bytes(), now)))
        .collect()
}

/// Runs a table and the reference model side by side.
struct Harness {
    table: LockTable,
    model: Model,
    now: u64,
    index: u64,
    /// The greatest token seen so far.
    max_token: u64,
    /// Arrival order of the current ordinary queued requests, by (resource, owner).
    seq: BTreeMap<(&'static str, Name), u64>,
    next_seq: u64,
    /// Totals over the run, to see the generator reaches the interesting cases.
    deadlocks: u64,
    queue_grants: u64,
}

impl Harness {
    fn new() -> Self {
        Harness {
            table: LockTable::new(),
            model: Model::default(),
            now: 1_000_000,
            index: 0,
            max_token: 0,
            seq: BTreeMap::new(),
            next_seq: 0,
            deadlocks: 0,
            queue_grants: 0,
        }
    }

    fn step(&mut self, (advance, gap, op): &Step) {
        self.now += advance;
        self.index += gap;
        let req = LockRequest {
            now_ms: self.now,
            op: op.clone(),
        };
        let before = infos(&self.table, self.now);
        let got = self.table.apply(self.index, &req);
        let want = self.model.apply(self.index, &req);
        self.table.assert_consistent();

        // Replies and grants agree with the model.
        match (&got.reply, &want.reply) {
            (LockReply::Deadlock { cycle }, LockReply::Deadlock { .. }) => {
                self.deadlocks += 1;
                check_cycle(cycle, requester(op), &self.model.refused_graph);
                // The refusal was not spurious: had the request waited, some
                // requests could never be granted, whatever the others release.
                let refused = self.model.refused_state.as_ref().expect("refused state");
                assert!(!refused.stuck_after_releases().is_empty(), "{cycle}");
            }
            (LockReply::Error(g), LockReply::Error(w)) => {
                assert!(
                    g.starts_with("ERR ") && g.contains(w.as_str()),
                    "{g} vs {w}"
                );
            }
            (g, w) => assert_eq!(g, w, "reply to {op:?}"),
        }
        assert_eq!(got.grants, want.grants, "grants of {op:?}");
        self.queue_grants += got.grants.len() as u64;

        // Observable state agrees with the model.
        let after = infos(&self.table, self.now);
        for (r, info) in &after {
            assert_eq!(info, &self.model.info(r.as_bytes(), self.now), "info {r}");
            for h in &info.holders {
                assert!(self.table.check(r.as_bytes(), h.token));
                assert!(self.model.holds_token(r.as_bytes(), h.token));
            }
            assert!(!self.table.check(r.as_bytes(), 0));
            // Mutual exclusion.
            let exclusive = self.model.locks.get(r.as_bytes()).map_or(0, |l| {
                l.holders.iter().filter(|h| h.mode == Exclusive).count()
            });
            assert!(exclusive <= 1);
            if exclusive == 1 {
                assert_eq!(info.holders.len(), 1, "exclusive beside others on {r}");
                assert_eq!(info.mode, Some(Exclusive));
            }
        }
        assert_eq!(self.table.stats(), self.model.stats());
        assert_eq!(self.table.next_deadline(), self.model.next_deadline());
        // The wait-for graph never has a cycle, and indeed nothing is deadlocked:
        // once everyone not waiting releases, every queued request gets granted.
        assert!(!Model::has_cycle(&self.model.edges()));
        assert_eq!(self.model.stuck_after_releases(), vec![]);

        // Tokens: every new one is greater than all before it.
        let mut issued = vec![];
        if let LockReply::Granted { token } = got.reply {
            let (r, o) = match op {
                LockOp::Acquire {
                    resource, owner, ..
                }
                | LockOp::Upgrade {
                    resource, owner, ..
                }
                | LockOp::Downgrade { resource, owner }
                | LockOp::Cancel {
                    resource, owner, ..
                } => (resource, owner),
                other => panic!("granted {other:?}"),
            };
            let r = std::str::from_utf8(r).unwrap();
            let old = before[r].holders.iter().find(|h| &h.owner == o);
            if old.map(|h| h.token) != Some(token) {
                issued.push(token);
            }
        }
        issued.extend(got.grants.iter().map(|g| g.token));
        // Tokens that appear without being reported (an undone upgrade turns the hold
        // back to shared under a new token) must be new as well.
        for (r, info) in &after {
            for h in &info.holders {
                let known = before[r].holders.iter().any(|b| b.token == h.token);
                if !known && !issued.contains(&h.token) {
                    issued.push(h.token);
                }
            }
        }
        issued.sort_unstable();
        for token in issued {
            assert!(
                token > self.max_token,
                "token {token} after {}",
                self.max_token
            );
            self.max_token = token;
        }
        for r in RESOURCES {
            assert!(!self.table.check(r.as_bytes(), self.max_token + 1));
        }

        // FIFO: number new ordinary waiters in arrival order...
        for (r, info) in &after {
            let holders: Vec<&Name> = info.holders.iter().map(|h| &h.owner).collect();
            let was_waiting: Vec<&Name> = before[r].waiters.iter().map(|w| &w.owner).collect();
            for w in &info.waiters {
                let ordinary = !holders.contains(&&w.owner);
                if ordinary && !was_waiting.contains(&&w.owner) {
                    self.seq.insert((r, w.owner.clone()), self.next_seq);
                    self.next_seq += 1;
                }
            }
            // ...ordinary waiters stay in arrival order (upgrades go first)...
            let order: Vec<u64> = info
                .waiters
                .iter()
                .filter(|w| !holders.contains(&&w.owner))
                .map(|w| self.seq[&(*r, w.owner.clone())])
                .collect();
            assert!(
                order.windows(2).all(|p| p[0] < p[1]),
                "queue order {order:?}"
            );
            let upgrades_first = info
                .waiters
                .iter()
                .skip_while(|w| holders.contains(&&w.owner))
                .all(|w| !holders.contains(&&w.owner));
            assert!(upgrades_first);
        }
        // ...and no ordinary request is granted while an earlier one keeps waiting.
        for g in &got.grants {
            let r = std::str::from_utf8(&g.resource).unwrap();
            let r = RESOURCES.iter().find(|x| **x == r).unwrap();
            if before[r].holders.iter().any(|h| h.owner == g.owner) {
                continue; // an upgrade: served ahead of ordinary waiters by design
            }
            let mine = self.seq[&(*r, g.owner.clone())];
            let holders: Vec<&Name> = after[r].holders.iter().map(|h| &h.owner).collect();
            for w in &after[r].waiters {
                if !holders.contains(&&w.owner) {
                    assert!(self.seq[&(*r, w.owner.clone())] > mine, "{w:?} overtaken");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn table_agrees_with_the_reference_model(steps in steps(80)) {
        let mut h = Harness::new();
        for step in &steps {
            h.step(step);
        }
    }

    #[test]
    fn table_agrees_with_the_reference_model_with_many_owners(
        steps in steps_among(&MANY_OWNERS, 150)
    ) {
        let mut h = Harness::new();
        for step in &steps {
            h.step(step);
        }
    }

    #[test]
    fn snapshot_round_trip(first in steps(50), then in steps(30)) {
        let mut h = Harness::new();
        for step in &first {
            h.step(step);
        }
        let json = serde_json::to_string(&h.table).unwrap();
        let mut back: LockTable = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &h.table);
        back.assert_consistent();
        prop_assert_eq!(back.next_deadline(), h.table.next_deadline());
        prop_assert_eq!(back.stats(), h.table.stats());
        // The restored table goes on exactly like the original.
        let (mut now, mut index) = (h.now, h.index);
        for (advance, gap, op) in &then {
            now += advance;
            index += gap;
            let req = LockRequest { now_ms: now, op: op.clone() };
            prop_assert_eq!(back.apply(index, &req), h.table.apply(index, &req));
        }
        prop_assert_eq!(&back, &h.table);
    }
}

/// The generator does reach deadlocks, queue grants and expiries (a fixed long run).
#[test]
fn generator_reaches_the_interesting_cases() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let mut h = Harness::new();
    for _ in 0..40 {
        let steps = steps(200).new_tree(&mut runner).unwrap().current();
        for step in &steps {
            h.step(step);
        }
    }
    let stats = h.table.stats();
    assert!(h.deadlocks > 10, "deadlocks {}", h.deadlocks);
    assert!(h.queue_grants > 50, "queue grants {}", h.queue_grants);
    assert!(stats.expiries > 10, "{stats:?}");
}
