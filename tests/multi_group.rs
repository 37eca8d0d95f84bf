//! One process hosts many Raft groups of a second machine type (issue 8, "what it must
//! show" item 2): a 3-node cluster of real processes, each hosting the lock group and 16
//! debug kv groups (`--debug-kv-groups 16`, raft-store's `KvMachine`) on its one log.
//!
//! Writers load all 16 groups at once through any node (a follower answers `-TRYAGAIN
//! ... leader is <id>`; the writer asks that node next and repeats the same write on
//! any error: a write counts as acknowledged only once it got `:index`). Mid-load the
//! node leading the most groups is SIGKILLed; writing goes on until every group has
//! acknowledged writes under a new leader; the node restarts on its data directory and
//! writing goes on. Then every node must catch up (its applied index reaches the
//! leader's commit index in every group), and every acknowledged write must be read back
//! from every group: linearizably through the leader, and from each node's own applied
//! state (`DEBUG.KVGET ... LOCAL`).
//!
//! Deadlines only bound liveness; nothing asserts on speed.

mod common;

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{conn_to, flat_map, serial, Cluster, Rng};
use redis::{RedisError, Value};

const GROUPS: u64 = 16;
/// The first debug kv group's id (`DEBUG_KV_GROUP_BASE + 1`).
const FIRST_GROUP: u64 = 2001;
const NODES: u64 = 3;
const WRITERS: u64 = 6;

/// One acknowledged write.
#[derive(Debug, Clone)]
struct Acked {
    group: u64,
    key: String,
    value: String,
    /// When it was acknowledged, relative to the kill (for the report).
    after_kill: bool,
}

/// What the writers share.
struct Load {
    /// Client port of each node (index id - 1).
    ports: Vec<u16>,
    /// The leader of each group as last told by a `-TRYAGAIN` (or seen answering).
    leaders: Mutex<HashMap<u64, u64>>,
    acked: Mutex<Vec<Acked>>,
    killed: AtomicBool,
    stop: AtomicBool,
}

/// `RAFT.STATUS <group>` of the node on `port`: (role, leader_id, commit_index,
/// applied_index), if it answers.
fn group_status(port: u16, group: u64) -> Option<(String, Option<i64>, i64, i64)> {
    let mut con = conn_to(port, Duration::from_secs(2))?;
    let v: Value = redis::cmd("RAFT.STATUS").arg(group).query(&mut con).ok()?;
    let map = flat_map(&v)?;
    let field = |k: &str| map.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
    let int = |k: &str| match field(k) {
        Some(Value::Int(i)) => Some(i),
        _ => None,
    };
    let role = match field("role")? {
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        _ => return None,
    };
    Some((
        role,
        int("leader_id"),
        int("commit_index")?,
        int("applied_index")?,
    ))
}

/// The leader a `-TRYAGAIN not leader; leader is <id>` names.
fn named_leader(e: &RedisError) -> Option<u64> {
    let text = e.to_string();
    let (_, tail) = text.split_once("leader is ")?;
    tail.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Writes `key = value` to `group` through whichever node leads it, until it is
/// acknowledged (`Some`) or the load stops (`None`). Any failure is retried with the
/// same write: a put of the same value twice changes nothing more.
fn write_until_acked(
    load: &Load,
    conns: &mut HashMap<u64, redis::Connection>,
    rng: &mut Rng,
    group: u64,
    key: &str,
    value: &str,
) -> Option<i64> {
    let mut node = load
        .leaders
        .lock()
        .unwrap()
        .get(&group)
        .copied()
        .unwrap_or_else(|| 1 + rng.below(NODES));
    while !load.stop.load(Ordering::Relaxed) {
        let con = match conns.entry(node) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                match conn_to(load.ports[(node - 1) as usize], Duration::from_secs(5)) {
                    Some(c) => e.insert(c),
                    None => {
                        // Down (the killed node): try another one.
                        node = 1 + (node % NODES);
                        thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                }
            }
        };
        let reply: redis::RedisResult<i64> = redis::cmd("DEBUG.KVSET")
            .arg(group)
            .arg(key)
            .arg(value)
            .query(con);
        match reply {
            Ok(index) => {
                load.leaders.lock().unwrap().insert(group, node);
                return Some(index);
            }
            Err(e) if e.code() == Some("TRYAGAIN") => match named_leader(&e) {
                Some(leader) if leader != node => node = leader,
                _ => {
                    node = 1 + (node % NODES);
                    thread::sleep(Duration::from_millis(10));
                }
            },
            Err(e) if e.code() == Some("CLUSTERDOWN") => {
                thread::sleep(Duration::from_millis(20));
                node = 1 + rng.below(NODES);
            }
            Err(e) if e.code().is_some() => panic!("DEBUG.KVSET {group} {key}: {e}"),
            // Connection lost or timed out (the node was killed): another node.
            Err(_) => {
                conns.remove(&node);
                node = 1 + (node % NODES);
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
    None
}

/// One writer: keys `w<w>-<seq>`, spread round-robin over every group.
fn writer(load: Arc<Load>, w: u64) {
    let mut conns = HashMap::new();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w + 1));
    let mut seq = 0u64;
    while !load.stop.load(Ordering::Relaxed) {
        let group = FIRST_GROUP + (seq * WRITERS + w) % GROUPS;
        let key = format!("w{w}-{seq}");
        let value = format!("value-{w}-{seq}-g{group}");
        let after_kill = load.killed.load(Ordering::Relaxed);
        if write_until_acked(&load, &mut conns, &mut rng, group, &key, &value).is_some() {
            load.acked.lock().unwrap().push(Acked {
                group,
                key,
                value,
                after_kill,
            });
        }
        seq += 1;
    }
}

/// Lets the load run for at least `at_least` and until `done` holds for the
/// acknowledged writes (panics after `within`).
fn wait_acked(
    load: &Load,
    at_least: Duration,
    within: Duration,
    what: &str,
    done: impl Fn(&[Acked]) -> bool,
) {
    let start = Instant::now();
    let deadline = start + within;
    while start.elapsed() < at_least || !done(&load.acked.lock().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {within:?} ({} writes acknowledged)",
            load.acked.lock().unwrap().len()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// The groups with writes acknowledged that were started after the kill.
fn groups_after_kill(acked: &[Acked]) -> BTreeSet<u64> {
    acked
        .iter()
        .filter(|a| a.after_kill)
        .map(|a| a.group)
        .collect()
}

/// The node every live member names as `group`'s leader, with its commit index, once
/// that leader answers as leader.
fn leader_of(c: &Cluster, group: u64, within: Duration) -> (u64, i64) {
    let deadline = Instant::now() + within;
    loop {
        for id in 1..=NODES {
            if let Some((role, _, commit, _)) = group_status(c.port(id), group) {
                if role == "leader" {
                    return (id, commit);
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "group {group}: no leader within {within:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Reads `key` of `group` on node `id` (`LOCAL`: its applied state), or through the
/// group's leader, following `-TRYAGAIN` (`id` is where to start). Connections are kept
/// in `conns` by node.
fn read(
    c: &Cluster,
    conns: &mut HashMap<u64, redis::Connection>,
    mut id: u64,
    group: u64,
    key: &str,
    local: bool,
) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let con = conns
            .entry(id)
            .or_insert_with(|| conn_to(c.port(id), Duration::from_secs(10)).expect("connect"));
        let mut cmd = redis::cmd("DEBUG.KVGET");
        cmd.arg(group).arg(key);
        if local {
            cmd.arg("LOCAL");
        }
        match cmd.query(con) {
            Ok(v) => return v,
            Err(e) if !local && Instant::now() < deadline && e.code() == Some("TRYAGAIN") => {
                id = named_leader(&e).unwrap_or(1 + id % NODES);
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("DEBUG.KVGET {group} {key} on node {id}: {e}"),
        }
    }
}

#[test]
fn sixteen_groups_survive_a_kill_and_restart_with_every_acknowledged_write() {
    let _serial = serial();
    let started = Instant::now();
    let groups = GROUPS.to_string();
    let mut c = Cluster::start(NODES, &["--debug-kv-groups", &groups]);
    let load = Arc::new(Load {
        ports: (1..=NODES).map(|id| c.port(id)).collect(),
        leaders: Mutex::default(),
        acked: Mutex::default(),
        killed: AtomicBool::new(false),
        stop: AtomicBool::new(false),
    });
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let load = load.clone();
            thread::spawn(move || writer(load, w))
        })
        .collect();

    // Load every group.
    let phase = Duration::from_millis(1500);
    wait_acked(
        &load,
        phase,
        Duration::from_secs(30),
        "writes to all 16 groups",
        |a| {
            a.iter().map(|w| w.group).collect::<BTreeSet<_>>().len() == GROUPS as usize
                && a.len() >= 3 * GROUPS as usize
        },
    );

    // Kill the node that leads the most kv groups.
    let mut led: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for g in FIRST_GROUP..FIRST_GROUP + GROUPS {
        led.entry(leader_of(&c, g, Duration::from_secs(10)).0)
            .or_default()
            .push(g);
    }
    let (&victim, victim_groups) = led
        .iter()
        .max_by_key(|(_, gs)| gs.len())
        .expect("some leader");
    println!("leaders: {led:?}; SIGKILL node {victim} (leads {victim_groups:?})");
    let before_kill = load.acked.lock().unwrap().len();
    load.killed.store(true, Ordering::Relaxed);
    c.node(victim).kill();

    // Writing goes on: every group commits writes without the victim.
    wait_acked(
        &load,
        phase,
        Duration::from_secs(30),
        "writes to all 16 groups after the kill",
        |a| groups_after_kill(a).len() == GROUPS as usize,
    );
    let before_restart = load.acked.lock().unwrap().len();
    c.node(victim).restart();
    wait_acked(
        &load,
        phase,
        Duration::from_secs(30),
        "more writes after the restart",
        |a| a.len() >= before_restart + 2 * GROUPS as usize,
    );
    load.stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    let acked = load.acked.lock().unwrap().clone();
    println!(
        "acknowledged writes: {} before the kill, {} before the restart, {} in all",
        before_kill,
        before_restart,
        acked.len()
    );

    // Every node catches up in every group: applied index reaches the leader's commit.
    for g in FIRST_GROUP..FIRST_GROUP + GROUPS {
        let (leader, commit) = leader_of(&c, g, Duration::from_secs(20));
        let deadline = Instant::now() + Duration::from_secs(20);
        for id in 1..=NODES {
            while group_status(c.port(id), g).is_none_or(|s| s.3 < commit) {
                assert!(
                    Instant::now() < deadline,
                    "group {g}: node {id} did not apply up to the leader's (node {leader}) commit index {commit}: {:?}",
                    group_status(c.port(id), g)
                );
                thread::sleep(Duration::from_millis(20));
            }
        }
    }

    // Every acknowledged write, read back from every group: through the leader, and
    // from each node's own applied state.
    let leaders: BTreeMap<u64, u64> = (FIRST_GROUP..FIRST_GROUP + GROUPS)
        .map(|g| (g, leader_of(&c, g, Duration::from_secs(20)).0))
        .collect();
    let mut conns = HashMap::new();
    for a in &acked {
        assert_eq!(
            read(&c, &mut conns, leaders[&a.group], a.group, &a.key, false).as_deref(),
            Some(a.value.as_str()),
            "linearizable read of acknowledged write {a:?}"
        );
        for id in 1..=NODES {
            assert_eq!(
                read(&c, &mut conns, id, a.group, &a.key, true).as_deref(),
                Some(a.value.as_str()),
                "node {id}'s applied state lacks acknowledged write {a:?}"
            );
        }
    }
    println!("all checked in {:?}", started.elapsed());
}
