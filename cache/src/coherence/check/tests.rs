use std::time::Instant;

use stateright::{Checker, Model};

use super::model::{Coherence, Script, TestRing};
use super::spec::Op;
use super::Bug;
use crate::coherence::Config;

fn cfg(bug: Option<Bug>) -> Config {
    Config {
        lease_ms: 2,
        margin_ms: 0,
        retry_ms: 1,
        bug,
    }
}

fn small(bug: Option<Bug>) -> Coherence {
    Coherence {
        cfg: cfg(bug),
        nodes: 3,
        keys: 2,
        ring: TestRing {
            epoch: 1,
            homes: vec![2, 0],
        },
        clients: vec![
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
                ops: vec![Op::Read(0), Op::Read(1)],
            },
        ],
        max_time: 3,
        max_crashes: 1,
        max_drops: 1,
        max_evictions: 0,
        next_ring: None,
        adopt_within: 0,
        max_stamps: 8,
    }
}

#[test]
fn coherence_small_cluster_is_linearizable() {
    let start = Instant::now();
    let checker = small(None).checker().threads(2).spawn_bfs().join();
    eprintln!(
        "states {} unique {} depth {} in {:?}",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        start.elapsed()
    );
    checker.assert_properties();
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore]
fn coherence_explore() {
    let mut model = small(None);
    model.max_time = env("T", 2);
    model.max_crashes = env("C", 0) as u8;
    model.max_drops = env("D", 0) as u8;
    model.max_stamps = env("S", 8);
    let ops = env("OPS", 2) as usize;
    for c in &mut model.clients {
        c.ops.truncate(ops);
    }
    let start = Instant::now();
    let checker = model
        .checker()
        .threads(2)
        .timeout(std::time::Duration::from_secs(env("SECS", 60)))
        .spawn_bfs()
        .join();
    eprintln!(
        "states {} unique {} depth {} in {:?}",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        start.elapsed()
    );
    checker.assert_properties();
}

#[test]
#[ignore]
fn coherence_walk() {
    use rand::{Rng, SeedableRng};
    let mut model = small(None);
    model.max_time = 0;
    for c in &mut model.clients {
        c.ops.truncate(1);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(env("SEED", 1));
    for _ in 0..2000 {
        let mut world = model.init_states().remove(0);
        let mut trail = Vec::new();
        for _ in 0..200 {
            let mut actions = Vec::new();
            model.actions(&world, &mut actions);
            if actions.is_empty() {
                break;
            }
            let a = actions[rng.gen_range(0..actions.len())].clone();
            trail.push(a.clone());
            world = model.next_state(&world, a).unwrap_or(world);
        }
        if trail.len() >= 200 {
            for a in &trail[150..] {
                eprintln!("{a:?}");
            }
            eprintln!("{:#?}", world.nodes);
            panic!("long run");
        }
    }
}

#[test]
#[ignore]
fn coherence_deep() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut model = small(None);
    model.max_time = 0;
    for c in &mut model.clients {
        c.ops.truncate(1);
    }
    static SHOWN: AtomicBool = AtomicBool::new(false);
    let checker = model
        .checker()
        .threads(1)
        .timeout(std::time::Duration::from_secs(20))
        .visitor(|path: stateright::Path<_, super::model::Step>| {
            let actions = path.into_actions();
            if actions.len() > 60 && !SHOWN.swap(true, Ordering::SeqCst) {
                for a in &actions {
                    eprintln!("{a:?}");
                }
            }
        })
        .spawn_bfs()
        .join();
    eprintln!("depth {}", checker.max_depth());
}
