//! The no-stale-read checker on a 3-node cluster of real processes (issue 11, "what it
//! must show" item 2; contract 2.1, "The guarantee", "A cache may forget; it never lies",
//! "Partitions").
//!
//! Writers on one node `SET` keys to increasing numbers; readers on the other nodes `GET`
//! them. Every write's reply time and every read's start time is recorded (one clock: the
//! test process's), and afterwards each read is checked against every write acknowledged
//! *before it started*: it must see that value or a newer one. A read may see nil instead
//! only if it was still running when a node holding `M` copies was killed (the key may be
//! forgotten from then on, never served older). Errors (`-TRYAGAIN`) are not reads and prove nothing either way.
//!
//! - with a sharer SIGSTOPped for longer than a lease: writes to keys it holds complete
//!   once its lease has run out (about a lease), and nobody reads stale;
//! - with the node holding the keys `M` SIGKILLed, writing going on from another node;
//! - with the home of half the keys SIGKILLed: the meta group marks it down, the ring's
//!   epoch grows, its keys get homes on the survivors (forgotten, never served older);
//! - the checker fails on a planted bug (`--cache-planted-bug reply-before-invalidation`:
//!   a write on a shared copy answers without the other copies being invalidated).
//!
//! Deadlines only bound liveness (a write during the stop must finish within a few
//! leases); nothing asserts on speed. `CONCLAVE_CACHE_FAULT_RUNS` (default 1) repeats
//! every test here that many times, each on a fresh cluster. (Over 500 lines: one scenario
//! per fault, all on the one checker above them.)

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{conn_to, flat_map, serial, Cluster, Rng};
use redis::Value;

/// The lease of the clusters here (ms), shorter than the default to keep the tests short.
const LEASE_MS: u64 = 1000;

/// Runs `test` `CONCLAVE_CACHE_FAULT_RUNS` times (default 1), one cluster at a time.
fn repeated(test: impl Fn()) {
    let _serial = serial();
    let runs = std::env::var("CONCLAVE_CACHE_FAULT_RUNS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .max(1);
    for run in 1..=runs {
        if runs > 1 {
            eprintln!("run {run} of {runs}");
        }
        test();
    }
}

/// A write's acknowledgement.
struct Ack {
    key: usize,
    value: u64,
    at: Instant,
    /// How long the write took.
    took: Duration,
}

/// A read's result.
struct Read {
    node: u64,
    key: usize,
    started: Instant,
    /// When its reply came.
    ended: Instant,
    value: Option<u64>,
}

/// What the threads record; checked at the end.
#[derive(Default)]
struct History {
    acks: Mutex<Vec<Ack>>,
    reads: Mutex<Vec<Read>>,
    /// From when a key may read nil (a node holding `M` copies was killed).
    forget_from: Mutex<Option<Instant>>,
}

impl History {
    /// Every read that saw something older than a write acknowledged before it started.
    fn violations(&self) -> Vec<String> {
        let acks = self.acks.lock().unwrap();
        let reads = self.reads.lock().unwrap();
        let forget_from = *self.forget_from.lock().unwrap();
        let mut by_key: HashMap<usize, Vec<(Instant, u64)>> = HashMap::new();
        for a in acks.iter() {
            by_key.entry(a.key).or_default().push((a.at, a.value));
        }
        let mut bad = Vec::new();
        for r in reads.iter() {
            let floor = by_key
                .get(&r.key)
                .map(|acks| {
                    acks.iter()
                        .filter(|(at, _)| *at < r.started)
                        .map(|(_, v)| *v)
                        .max()
                        .unwrap_or(0)
                })
                .unwrap_or(0);
            let ok = match r.value {
                // Forgetting happens at the kill: a read still running then may see it.
                None => floor == 0 || forget_from.is_some_and(|f| r.ended >= f),
                Some(v) => v >= floor,
            };
            if !ok {
                bad.push(format!(
                    "node {} read key {} = {:?}, but {} was acknowledged before the read began",
                    r.node, r.key, r.value, floor
                ));
            }
        }
        bad
    }
}

/// `CACHE.DIR key` → home.
fn home_of(port: u16, key: &str) -> u64 {
    let mut con = conn_to(port, Duration::from_secs(5)).expect("connect");
    let v: Value = redis::cmd("CACHE.DIR")
        .arg(key)
        .query(&mut con)
        .expect("dir");
    flat_map(&v)
        .and_then(|m| m.into_iter().find(|(k, _)| k == "home"))
        .and_then(|(_, v)| match v {
            Value::Int(i) => u64::try_from(i).ok(),
            _ => None,
        })
        .expect("home")
}

/// `n` key names whose home is not `avoid`.
fn keys_not_homed_on(port: u16, avoid: u64, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("chk:{i}"))
        .filter(|k| home_of(port, k) != avoid)
        .take(n)
        .collect()
}

/// `n` key names whose home is `home`.
fn keys_homed_on(port: u16, home: u64, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("chk:{i}"))
        .filter(|k| home_of(port, k) == home)
        .take(n)
        .collect()
}

/// Waits until a write through `port` succeeds (the homes' start-up fence).
fn warm_up(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut con = conn_to(port, Duration::from_secs(10)).expect("connect");
    while redis::cmd("SET")
        .arg("warm")
        .arg(1)
        .query::<()>(&mut con)
        .is_err()
    {
        assert!(Instant::now() < deadline, "no write succeeded");
        thread::sleep(Duration::from_millis(100));
    }
}

/// A writer on `port`: sets the keys round-robin to increasing values (from `base`)
/// until `stop`.
fn writer(
    port: u16,
    keys: Arc<Vec<String>>,
    base: u64,
    history: Arc<History>,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut con = conn_to(port, Duration::from_secs(20)).expect("connect");
        let mut next = base;
        let mut acked = 0;
        while !stop.load(Ordering::Relaxed) {
            for (key, name) in keys.iter().enumerate() {
                next += 1;
                let start = Instant::now();
                let r: redis::RedisResult<()> =
                    redis::cmd("SET").arg(name).arg(next).query(&mut con);
                if r.is_ok() {
                    let at = Instant::now();
                    history.acks.lock().unwrap().push(Ack {
                        key,
                        value: next,
                        at,
                        took: at - start,
                    });
                    acked += 1;
                }
            }
        }
        acked
    })
}

/// A reader on node `node` (`port`): random keys until `stop`.
fn reader(
    node: u64,
    port: u16,
    keys: Arc<Vec<String>>,
    history: Arc<History>,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut rng = Rng(seed);
        let mut con = conn_to(port, Duration::from_secs(20)).expect("connect");
        let mut reads = 0;
        while !stop.load(Ordering::Relaxed) {
            let key = usize::try_from(rng.below(keys.len() as u64)).unwrap_or(0);
            let started = Instant::now();
            let r: redis::RedisResult<Option<u64>> =
                redis::cmd("GET").arg(&keys[key]).query(&mut con);
            if let Ok(value) = r {
                history.reads.lock().unwrap().push(Read {
                    node,
                    key,
                    started,
                    ended: Instant::now(),
                    value,
                });
                reads += 1;
            }
        }
        reads
    })
}

/// Runs writers on `writer_node` and readers on `reader_nodes` over `keys` for
/// `before`, then calls `fault`, then runs for `after`; returns (acks, reads).
struct Run {
    history: Arc<History>,
    stop: Arc<AtomicBool>,
    keys: Arc<Vec<String>>,
    threads: Vec<thread::JoinHandle<u64>>,
    readers: Vec<thread::JoinHandle<u64>>,
}

impl Run {
    fn start(c: &Cluster, writer_node: u64, reader_nodes: &[u64], keys: Vec<String>) -> Run {
        let history = Arc::new(History::default());
        let stop = Arc::new(AtomicBool::new(false));
        let keys = Arc::new(keys);
        let threads = vec![writer(
            c.port(writer_node),
            keys.clone(),
            0,
            history.clone(),
            stop.clone(),
        )];
        let mut readers = Vec::new();
        for (i, &node) in reader_nodes.iter().enumerate() {
            for t in 0..2 {
                readers.push(reader(
                    node,
                    c.port(node),
                    keys.clone(),
                    history.clone(),
                    stop.clone(),
                    0x9E37_79B9 + (i as u64) * 7 + t,
                ));
            }
        }
        Run {
            history,
            stop,
            keys,
            threads,
            readers,
        }
    }

    /// Stops every thread; returns (acks, reads).
    fn finish(self) -> (Arc<History>, u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let acks = self.threads.into_iter().map(|h| h.join().unwrap()).sum();
        let reads = self.readers.into_iter().map(|h| h.join().unwrap()).sum();
        (self.history, acks, reads)
    }
}

#[test]
fn no_stale_read_while_a_sharer_is_stopped() {
    repeated(no_stale_read_while_a_sharer_is_stopped_once);
}

fn no_stale_read_while_a_sharer_is_stopped_once() {
    let lease = LEASE_MS.to_string();
    let c = Cluster::start(3, &["--cache-lease-ms", &lease]);
    for id in 1..=3 {
        warm_up(c.port(id));
    }
    // Keys node 3 only shares (their homes stay reachable while it is stopped).
    let keys = keys_not_homed_on(c.port(1), 3, 6);
    let run = Run::start(&c, 1, &[2, 3], keys);
    thread::sleep(Duration::from_secs(2));
    let stopped_at = Instant::now();
    c.nodes[2].pause();
    thread::sleep(Duration::from_millis(4 * LEASE_MS));
    c.nodes[2].resume();
    let resumed_at = Instant::now();
    thread::sleep(Duration::from_secs(2));
    let (history, acks, reads) = run.finish();
    let bad = history.violations();
    assert!(
        bad.is_empty(),
        "{} stale reads, first: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    // Writes went on while the sharer was stopped, each within a few leases.
    let during: Vec<Duration> = history
        .acks
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.at > stopped_at && a.at < resumed_at)
        .map(|a| a.took)
        .collect();
    assert!(
        !during.is_empty(),
        "no write completed while node 3 was stopped"
    );
    let worst = during.iter().max().copied().unwrap_or_default();
    assert!(
        worst < Duration::from_millis(3 * LEASE_MS + 1000),
        "a write waited {worst:?} for a stopped sharer (lease {LEASE_MS} ms)"
    );
    assert!(acks > 20 && reads > 20, "acks {acks}, reads {reads}");
    eprintln!(
        "stopped sharer: {acks} writes, {reads} reads, {} writes during the stop, slowest {worst:?}",
        during.len()
    );
}

#[test]
fn no_stale_read_after_the_m_holder_is_killed() {
    repeated(no_stale_read_after_the_m_holder_is_killed_once);
}

fn no_stale_read_after_the_m_holder_is_killed_once() {
    let lease = LEASE_MS.to_string();
    let mut c = Cluster::start(3, &["--cache-lease-ms", &lease]);
    for id in 1..=3 {
        warm_up(c.port(id));
    }
    // Node 3 writes (and so holds the keys M); its keys are homed elsewhere.
    let keys = keys_not_homed_on(c.port(1), 3, 6);
    let run = Run::start(&c, 3, &[1, 2], keys);
    thread::sleep(Duration::from_secs(3));
    *run.history.forget_from.lock().unwrap() = Some(Instant::now());
    c.node(3).kill();
    // Writing goes on from node 1, above every value node 3 may have written.
    let max_acked = run
        .history
        .acks
        .lock()
        .unwrap()
        .iter()
        .map(|a| a.value)
        .max()
        .unwrap_or(0);
    let restarted_writer = writer(
        c.port(1),
        run.keys.clone(),
        max_acked + 1_000_000,
        run.history.clone(),
        run.stop.clone(),
    );
    thread::sleep(Duration::from_secs(5));
    let writes_after = AtomicU64::new(0);
    run.stop.store(true, Ordering::Relaxed);
    writes_after.store(restarted_writer.join().unwrap(), Ordering::Relaxed);
    let (history, acks, reads) = run.finish();
    let bad = history.violations();
    assert!(
        bad.is_empty(),
        "{} stale reads, first: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    assert!(
        writes_after.load(Ordering::Relaxed) > 0,
        "no write succeeded after the kill"
    );
    // Reads of every key succeed again once the dead owner's leases ran out.
    let killed = history.forget_from.lock().unwrap().expect("set");
    let late_reads = history
        .reads
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.started > killed + Duration::from_millis(3 * LEASE_MS))
        .count();
    assert!(late_reads > 0, "no read succeeded after the kill");
    eprintln!(
        "killed M holder: {acks} writes before, {} after, {reads} reads",
        writes_after.load(Ordering::Relaxed)
    );
}

#[test]
fn the_checker_catches_a_write_that_replies_before_its_invalidations() {
    repeated(the_checker_catches_a_write_that_replies_before_its_invalidations_once);
}

fn the_checker_catches_a_write_that_replies_before_its_invalidations_once() {
    let lease = LEASE_MS.to_string();
    let c = Cluster::start(
        3,
        &[
            "--cache-lease-ms",
            &lease,
            "--cache-planted-bug",
            "reply-before-invalidation",
        ],
    );
    for id in 1..=3 {
        warm_up(c.port(id));
    }
    let keys = keys_not_homed_on(c.port(1), 3, 6);
    let run = Run::start(&c, 1, &[2, 3], keys);
    thread::sleep(Duration::from_secs(4));
    let (history, acks, reads) = run.finish();
    let bad = history.violations();
    assert!(
        !bad.is_empty(),
        "the checker missed the planted bug ({acks} writes, {reads} reads)"
    );
    eprintln!(
        "planted bug: {} stale reads caught, e.g. {}",
        bad.len(),
        bad[0]
    );
}

#[test]
fn a_partitioned_node_stops_serving_at_lease_end_and_answers_tryagain() {
    repeated(a_partitioned_node_stops_serving_at_lease_end_and_answers_tryagain_once);
}

fn a_partitioned_node_stops_serving_at_lease_end_and_answers_tryagain_once() {
    let lease = LEASE_MS.to_string();
    let c = Cluster::start(3, &["--cache-lease-ms", &lease, "--no-leader-wait", "500"]);
    for id in 1..=3 {
        warm_up(c.port(id));
    }
    let key = keys_not_homed_on(c.port(1), 3, 1).remove(0);
    let mut one = conn_to(c.port(1), Duration::from_secs(10)).expect("connect");
    let mut three = conn_to(c.port(3), Duration::from_secs(10)).expect("connect");
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("old")
        .query(&mut one)
        .unwrap();
    let v: Option<String> = redis::cmd("GET").arg(&key).query(&mut three).unwrap();
    assert_eq!(v.as_deref(), Some("old"));
    c.isolate(3);
    // The write waits out node 3's lease, then succeeds.
    let start = Instant::now();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("new")
        .query(&mut one)
        .unwrap();
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(3 * LEASE_MS + 1000),
        "{took:?}"
    );
    // Node 3's lease has run out: it may not serve "old", and cannot reach the home.
    let r: redis::RedisResult<Option<String>> = redis::cmd("GET").arg(&key).query(&mut three);
    match r {
        Err(e) => assert!(e.to_string().contains("home of key unreachable"), "{e}"),
        Ok(v) => panic!("a cut-off node answered {v:?} after its lease"),
    }
    c.heal();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r: redis::RedisResult<Option<String>> = redis::cmd("GET").arg(&key).query(&mut three);
        match r {
            Ok(v) => {
                assert_eq!(v.as_deref(), Some("new"));
                break;
            }
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("node 3 never read the key again: {e}"),
        }
    }
}

#[test]
fn no_stale_read_when_a_home_is_killed() {
    repeated(no_stale_read_when_a_home_is_killed_once);
}

fn no_stale_read_when_a_home_is_killed_once() {
    let lease = LEASE_MS.to_string();
    let mut c = Cluster::start(3, &["--cache-lease-ms", &lease, "--node-timeout", "1000"]);
    for id in 1..=3 {
        warm_up(c.port(id));
    }
    // Half the keys are homed on node 3, which dies; node 1 writes, nodes 1 and 2 read.
    let mut keys = keys_homed_on(c.port(1), 3, 3);
    let moved = keys.len();
    keys.extend(keys_not_homed_on(c.port(1), 3, 3));
    let run = Run::start(&c, 1, &[1, 2], keys);
    thread::sleep(Duration::from_secs(3));
    let killed = Instant::now();
    // Its directory dies with it: its keys may read nil from here on, never older.
    *run.history.forget_from.lock().unwrap() = Some(killed);
    c.node(3).kill();
    thread::sleep(Duration::from_secs(8));
    let (history, acks, reads) = run.finish();
    let bad = history.violations();
    assert!(
        bad.is_empty(),
        "{} stale reads, first: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    // The killed node's keys were written again on their new homes, and read.
    let written_again = history
        .acks
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.key < moved && a.at > killed)
        .count();
    assert!(
        written_again > 0,
        "no key of the dead home was written after the kill"
    );
    let read_again = history
        .reads
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.key < moved && r.started > killed + Duration::from_millis(3 * LEASE_MS))
        .count();
    assert!(
        read_again > 0,
        "no key of the dead home was read after the kill"
    );
    eprintln!(
        "killed home: {acks} writes, {reads} reads, {written_again} writes of its keys after the kill"
    );
}
