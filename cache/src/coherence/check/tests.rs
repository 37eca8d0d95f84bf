//! The model-check runs (all on the cluster of [`cluster`]: 3 nodes, keys 0 and 1 homed
//! at nodes 2 and 0, one client per node).
//!
//! - `coherence_check_small` (default, full BFS): one operation per client — node 0 writes
//!   key 0, node 1 reads key 0, node 2 writes keys 1 and 0 atomically — with node 0 (a
//!   writer, so an `M` holder) crashing and restarting at any point, a 1-tick lease, resends
//!   every 2 ticks, the clock up to 2 ticks, at most 6 stamps per node (see
//!   `Coherence::max_stamps`). `COHERENCE_CRASH_NODE=2` crashes the home of key 0 instead.
//! - `coherence_check_large` (`#[ignore]`): two operations per client, any node may crash, a
//!   2-tick lease, 3 ticks, one eviction, 8 stamps. Sizes from `COHERENCE_OPS`,
//!   `COHERENCE_TIME`, `COHERENCE_LEASE`, `COHERENCE_RETRY`, `COHERENCE_CRASHES`,
//!   `COHERENCE_DROPS`, `COHERENCE_EVICTIONS`, `COHERENCE_STAMPS`; `COHERENCE_SECS` gives a
//!   time budget (the run then reports how far it got and checks the safety properties on
//!   what it saw), `COHERENCE_DFS=1` searches depth first (little memory), and
//!   `COHERENCE_TRACE=1` prints the steps of a counterexample found in such a run.
//! - `coherence_check_increments` (default): read-modify-writes through `Acquire`/`Release`
//!   — nodes 0 and 1 each `Incr` key 0 (no update may be lost: each returns its result) —
//!   with one renewal ahead of a lease end anywhere, node 0 (an `M` holder) crashing and
//!   restarting, a 1-tick lease that may run out between `Held` and the run (the copy
//!   holder's lease against the home's wait), 1 tick (`COHERENCE_TIME` for more).
//! - `coherence_check_home_leaves` (default): a home leaves — key 0's home, node 2, may
//!   crash for good, and the next ring (committed at any step, adopted by each node at any
//!   later step, or never) moves key 0 to node 1; node 0 writes key 0, node 1 reads it;
//!   1 tick with a 1-tick lease and spread (`COHERENCE_TIME=2` lets the new home's fence
//!   end, a far longer run; `COHERENCE_DROPS` adds explicit losses).
//! - `coherence_check_epoch` (`#[ignore]`): key 0's home moves from node 2 to node 1; nodes
//!   adopt the new ring in any order, at any time after it is committed.
//! - `coherence_check_moving_home` (`#[ignore]`): a smaller epoch change — node 0 reads key
//!   0 twice, node 1 (its new home) writes it — with a 1-tick lease and spread, 3 ticks.
//! - `coherence_planted_*`: one planted bug each; the checker must find a counterexample.
//!
//! Every run models the control plane as the driver runs it (`model.rs`): a node grants
//! only within `epoch_spread_ms` of its last confirmation of the ring, and a node lagging
//! behind a committed epoch cannot confirm. Message loss: a message never delivered is,
//! for every safety property, a lost one (the model's `Drop` only shortens the state), so
//! every run explores loss through delay; `COHERENCE_DROPS` adds explicit drops.

use std::time::{Duration, Instant};

use stateright::{Checker, HasDiscoveries, Model};

use super::model::{Coherence, Script, TestRing};
use super::spec::Op;
use super::Bug;
use crate::coherence::Config;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cfg(lease: u64, bug: Option<Bug>) -> Config {
    Config {
        lease_ms: lease,
        margin_ms: 0,
        epoch_spread_ms: 2,
        retry_ms: 1,
        bug,
    }
}

/// Keys 0 and 1, homed at nodes 2 and 0; clients on every node.
fn cluster(lease: u64, ops_per_client: usize, bug: Option<Bug>) -> Coherence {
    let scripts = vec![
        Script {
            node: 0,
            ops: vec![Op::Write(vec![(0, Some(1))]), Op::Read(1)],
        },
        Script {
            node: 1,
            ops: vec![Op::Read(0), Op::Write(vec![(0, Some(2)), (1, Some(2))])],
        },
        Script {
            node: 2,
            ops: vec![Op::Write(vec![(1, Some(3)), (0, Some(3))]), Op::Read(0)],
        },
    ];
    Coherence {
        cfg: cfg(lease, bug),
        nodes: 3,
        keys: 2,
        ring: TestRing {
            epoch: 1,
            homes: vec![2, 0],
        },
        clients: scripts
            .into_iter()
            .map(|mut s| {
                s.ops.truncate(ops_per_client);
                s
            })
            .collect(),
        max_time: 2,
        max_crashes: 1,
        crashable: vec![0, 1, 2],
        restarts: true,
        max_drops: 0,
        max_evictions: 0,
        max_renews: 0,
        next_ring: None,
        max_stamps: 6,
    }
}

/// Runs a full check and reports what it explored (`COHERENCE_DFS=1`: depth first, which
/// keeps only one path in memory instead of a whole BFS frontier).
fn run(name: &str, model: Coherence, budget: Option<Duration>) {
    let start = Instant::now();
    let mut builder = model.checker().threads(2);
    if let Some(budget) = budget {
        builder = builder.timeout(budget);
    }
    if env("COHERENCE_DFS", 0) == 1 {
        report(name, "DFS", start, budget, builder.spawn_dfs().join());
    } else {
        report(name, "BFS", start, budget, builder.spawn_bfs().join());
    }
}

fn report(
    name: &str,
    how: &str,
    start: Instant,
    budget: Option<Duration>,
    checker: impl Checker<Coherence>,
) {
    let stopped = budget.is_some_and(|b| start.elapsed() >= b);
    eprintln!(
        "{name} ({how}): {} states ({} unique), max depth {}, {:.1?}{}",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        start.elapsed(),
        if stopped {
            " — stopped by the time budget"
        } else {
            ""
        }
    );
    if stopped {
        // A partial run cannot vouch for `sometimes` properties; the safety ones hold on
        // everything it saw.
        for property in ["linearizable", "single writer"] {
            if let Some(path) = checker.discovery(property) {
                if std::env::var("COHERENCE_TRACE").is_ok() {
                    for a in path.clone().into_actions() {
                        eprintln!("ACTION {a:?}");
                    }
                }
                panic!("{property} violated: {:?}", path.last_state().tester);
            }
        }
    } else {
        checker.assert_properties();
    }
}

#[test]
fn coherence_check_small() {
    let mut model = cluster(1, 1, None);
    model.cfg.retry_ms = 2;
    model.crashable = vec![env("COHERENCE_CRASH_NODE", 0)];
    run("small", model, None);
}

#[test]
#[ignore]
fn coherence_check_large() {
    let ops = env("COHERENCE_OPS", 2) as usize;
    let mut model = cluster(env("COHERENCE_LEASE", 2), ops, None);
    model.max_crashes = env("COHERENCE_CRASHES", 1) as u8;
    model.max_time = env("COHERENCE_TIME", 3);
    model.max_drops = env("COHERENCE_DROPS", 1) as u8;
    model.max_stamps = env("COHERENCE_STAMPS", 8);
    model.max_evictions = env("COHERENCE_EVICTIONS", 1) as u8;
    model.cfg.retry_ms = env("COHERENCE_RETRY", 1);
    let secs = env("COHERENCE_SECS", 0);
    run(
        "large",
        model,
        (secs > 0).then(|| Duration::from_secs(secs)),
    );
}

#[test]
#[ignore]
fn coherence_check_epoch() {
    let mut model = cluster(2, 1, None);
    model.max_crashes = 0;
    model.max_time = env("COHERENCE_TIME", 3);
    model.next_ring = Some(TestRing {
        epoch: 2,
        homes: vec![1, 0],
    });
    model.max_stamps = env("COHERENCE_STAMPS", 6);
    let secs = env("COHERENCE_SECS", 0);
    run(
        "epoch",
        model,
        (secs > 0).then(|| Duration::from_secs(secs)),
    );
}

#[test]
fn coherence_check_increments() {
    let mut model = cluster(1, 1, None);
    model.cfg.retry_ms = 2;
    model.clients = vec![
        Script {
            node: 0,
            ops: vec![Op::Incr(0)],
        },
        Script {
            node: 1,
            ops: vec![Op::Incr(0)],
        },
    ];
    model.crashable = vec![0];
    model.max_renews = 1;
    model.max_drops = env("COHERENCE_DROPS", 0) as u8;
    model.max_time = env("COHERENCE_TIME", 1);
    run("increments", model, None);
}

#[test]
fn coherence_check_home_leaves() {
    let mut model = cluster(1, 1, None);
    model.cfg.epoch_spread_ms = 1;
    model.cfg.retry_ms = 2;
    model.clients = vec![
        Script {
            node: 0,
            ops: vec![Op::Write(vec![(0, Some(1))])],
        },
        Script {
            node: 1,
            ops: vec![Op::Read(0)],
        },
    ];
    model.crashable = vec![2];
    model.restarts = false;
    model.next_ring = Some(TestRing {
        epoch: 2,
        homes: vec![1, 0],
    });
    model.max_drops = env("COHERENCE_DROPS", 0) as u8;
    model.max_time = env("COHERENCE_TIME", 1);
    run("home leaves", model, None);
}

/// Requires the checker to find a counterexample to one of the safety properties.
fn finds(bug: Bug, model: Coherence) {
    let start = Instant::now();
    let checker = model
        .checker()
        .threads(2)
        .finish_when(HasDiscoveries::AnyFailures)
        .spawn_bfs()
        .join();
    let found: Vec<&str> = ["linearizable", "single writer"]
        .into_iter()
        .filter(|p| checker.discovery(p).is_some())
        .collect();
    eprintln!(
        "planted {bug:?}: violated {found:?} after {} states, {:.1?}",
        checker.state_count(),
        start.elapsed()
    );
    if let Some(path) = checker.discovery("linearizable") {
        eprintln!("history: {:?}", path.last_state().tester);
    }
    assert!(!found.is_empty(), "planted bug {bug:?} went unnoticed");
}

#[test]
fn coherence_planted_early_grant_is_caught() {
    finds(Bug::EarlyGrant, cluster(1, 1, Some(Bug::EarlyGrant)));
}

#[test]
fn coherence_planted_serve_expired_is_caught() {
    // Two sharers of key 0 (node 2 is its home); node 0 writes it, the invalidation of
    // node 1 is delayed, the home waits out node 1's lease; node 1 reads again.
    let mut model = cluster(1, 1, Some(Bug::ServeExpired));
    model.clients = vec![
        Script {
            node: 0,
            ops: vec![Op::Write(vec![(0, Some(1))])],
        },
        Script {
            node: 1,
            ops: vec![Op::Read(0), Op::Read(0)],
        },
        Script {
            node: 2,
            ops: vec![Op::Read(0)],
        },
    ];
    model.max_crashes = 0;
    model.max_drops = 0;
    finds(Bug::ServeExpired, model);
}

#[test]
fn coherence_planted_stale_grant_is_caught() {
    let mut model = cluster(1, 2, Some(Bug::StaleGrant));
    model.max_crashes = 0;
    model.max_time = 1;
    finds(Bug::StaleGrant, model);
}

/// Node 0 reads key 0 from its home, node 2; the next ring moves key 0 to node 1, which
/// writes it; node 0 reads again, perhaps before it has adopted the new ring.
fn moving_home(bug: Option<Bug>) -> Coherence {
    let mut model = cluster(1, 1, bug);
    model.cfg.epoch_spread_ms = 1;
    model.cfg.retry_ms = 2;
    model.clients = vec![
        Script {
            node: 0,
            ops: vec![Op::Read(0), Op::Read(0)],
        },
        Script {
            node: 1,
            ops: vec![Op::Write(vec![(0, Some(1))])],
        },
    ];
    model.max_crashes = 0;
    model.next_ring = Some(TestRing {
        epoch: 2,
        homes: vec![1, 0],
    });
    model
}

#[test]
#[ignore]
fn coherence_check_moving_home() {
    let mut model = moving_home(None);
    model.max_time = env("COHERENCE_TIME", 3);
    let secs = env("COHERENCE_SECS", 0);
    run(
        "moving home",
        model,
        (secs > 0).then(|| Duration::from_secs(secs)),
    );
}

#[test]
fn coherence_planted_no_epoch_fence_is_caught() {
    let mut model = moving_home(Some(Bug::NoEpochFence));
    model.max_time = 1;
    finds(Bug::NoEpochFence, model);
}

#[test]
fn coherence_planted_no_ring_lease_is_caught() {
    // Node 2, the old home of key 0, never adopts the next ring and keeps granting past its
    // last confirmation; node 1, the new home, grants once its fence ends (2 ticks).
    let mut model = moving_home(Some(Bug::NoRingLease));
    model.max_time = 2;
    finds(Bug::NoRingLease, model);
}
