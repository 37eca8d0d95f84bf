//! A leader cut off from its majority refuses writes at once (and its `/health` says 503), and an acquire whose
//! client was answered an error never takes effect, even when its log entry commits
//! after the cluster heals (issue 7 item 2; contract sections 3 and 4: "an error reply
//! means the request did not take effect").
//!
//! Each test starts its own 3-node cluster; `serial()` keeps one cluster at a time. No
//! test asserts on speed: `--no-leader-wait` is set long where waiting instead of
//! refusing would show in the reply text, and waits only bound liveness.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::lock_info::{info, info_field, wait_info};
use common::{acquire, conn_to, flat_map, http_get, serial, Cluster};
use redis::Value;

/// `quorum` of node `id`'s `RAFT.STATUS`, if it answers.
fn quorum(c: &Cluster, id: u64) -> Option<bool> {
    let mut con = conn_to(c.nodes[(id - 1) as usize].port, Duration::from_secs(2))?;
    let v: Value = redis::cmd("RAFT.STATUS").query(&mut con).ok()?;
    let map = flat_map(&v)?;
    match map.iter().find(|(k, _)| k == "quorum").map(|(_, v)| v) {
        Some(Value::Boolean(b)) => Some(*b),
        Some(Value::Int(i)) => Some(*i == 1),
        _ => None,
    }
}

/// Polls until `quorum` of node `id` is `want`.
fn wait_quorum(c: &Cluster, id: u64, want: bool, within: Duration) {
    let deadline = Instant::now() + within;
    while quorum(c, id) != Some(want) {
        assert!(
            Instant::now() < deadline,
            "node {id}: RAFT.STATUS quorum never became {want} within {within:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn cut_off_leader_refuses_writes_at_once_with_the_quorum_error() {
    let _serial = serial();
    // Thirty seconds of --no-leader-wait: a node that waited for a quorum instead of
    // refusing would answer "no raft leader" after it, not "no quorum".
    let c = Cluster::start(3, &["--no-leader-wait", "30000"]);
    let leader = c.wait_leader(Duration::from_secs(20));
    for id in 1..=3 {
        wait_quorum(&c, id, true, Duration::from_secs(10));
    }
    let mut con = conn_to(c.port(leader), Duration::from_secs(60)).expect("connect");
    assert_eq!(
        info_field(&mut con, "raft", "raft_quorum").expect("INFO raft"),
        "yes"
    );

    let health =
        |c: &Cluster, id: u64| http_get(c.nodes[(id - 1) as usize].metrics_port, "/health");
    let (code, body) = health(&c, leader).expect("/health answers");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"status\":\"ok\""), "{body}");

    c.isolate(leader);
    wait_quorum(&c, leader, false, Duration::from_secs(10));
    let (code, body) = health(&c, leader).expect("/health answers");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("no quorum"), "{body}");
    assert_eq!(
        info_field(&mut con, "raft", "raft_quorum").expect("INFO raft"),
        "no"
    );
    let err = acquire(&mut con, "r", "cut-off", &["TTL", "60000"]).expect_err("refused");
    assert_eq!(err.code(), Some("CLUSTERDOWN"), "{err}");
    assert!(err.to_string().contains("no quorum"), "{err}");
    // Nothing was appended: the majority side grants the lock to somebody else, and
    // after the heal the refused request still holds nothing.
    let others: Vec<u64> = (1..=3).filter(|&id| id != leader).collect();
    let new_leader = c.wait_new_leader(leader, Duration::from_secs(20));
    let mut other = conn_to(c.port(new_leader), Duration::from_secs(60)).expect("connect");
    let token = acquire(&mut other, "r", "majority", &["TTL", "60000"])
        .expect("majority side grants")
        .expect("a token");
    c.heal();
    for id in others {
        wait_quorum(&c, id, true, Duration::from_secs(20));
    }
    // The old leader's /health flips back once it follows the new leader.
    let deadline = Instant::now() + Duration::from_secs(20);
    while health(&c, leader).map(|h| h.0) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "/health of node {leader} stayed unavailable: {:?}",
            health(&c, leader)
        );
        thread::sleep(Duration::from_millis(50));
    }
    let i = wait_info(c.port(leader), "r", Duration::from_secs(20), |_| true);
    assert_eq!(i.holders, vec![("majority".to_string(), token)]);
}

#[test]
fn acquire_answered_an_error_does_not_hold_the_lock_after_the_cluster_heals() {
    let _serial = serial();
    let mut c = Cluster::start(3, &["--no-leader-wait", "2000"]);
    let leader = c.wait_leader(Duration::from_secs(20));
    wait_quorum(&c, leader, true, Duration::from_secs(10));
    let mut con = conn_to(c.port(leader), Duration::from_secs(30)).expect("connect");
    let mut con2 = conn_to(c.port(leader), Duration::from_secs(30)).expect("connect");
    let followers: Vec<u64> = (1..=3).filter(|&id| id != leader).collect();
    for &id in &followers {
        c.node(id).kill();
    }
    // Sent at once, before the leader can know its quorum is gone: appended to its log,
    // never committed while the followers are down, so the clients get an error.
    let waiting = thread::spawn(move || {
        acquire(
            &mut con2,
            "ghost-wait",
            "g2",
            &["TTL", "60000", "WAIT", "500"],
        )
    });
    let err = acquire(&mut con, "ghost", "g1", &["TTL", "60000"]).expect_err("no quorum");
    assert_eq!(err.code(), Some("CLUSTERDOWN"), "{err}");
    match waiting.join().expect("thread") {
        Err(e) => assert_eq!(e.code(), Some("CLUSTERDOWN"), "{e}"),
        Ok(None) => {}
        Ok(Some(t)) => panic!("granted token {t} without a quorum"),
    }

    // The followers come back; the old leader (its log has the entries) may well commit
    // them. Whatever it does, the requests answered with an error must grant nothing:
    // another owner gets each lock long before the 60 s TTL.
    for &id in &followers {
        c.node(id).restart();
    }
    let leader = c.wait_leader(Duration::from_secs(20));
    wait_quorum(&c, leader, true, Duration::from_secs(20));
    for (res, ghost) in [("ghost", "g1"), ("ghost-wait", "g2")] {
        let node = followers[0];
        let mut con = conn_to(c.port(node), Duration::from_secs(30)).expect("connect");
        let started = Instant::now();
        let got = acquire(
            &mut con,
            res,
            "after-heal",
            &["TTL", "10000", "WAIT", "20000"],
        )
        .expect("acquire after the heal");
        assert!(
            got.is_some(),
            "{res}: still held after {:?}: {:?}",
            started.elapsed(),
            info(&mut con, res)
        );
        let i = info(&mut con, res).expect("LOCK.INFO");
        assert!(
            i.holders.iter().all(|(o, _)| o != ghost),
            "{res}: {ghost} holds it: {i:?}"
        );
        println!(
            "{res}: another owner got it {:?} after the heal",
            started.elapsed()
        );
    }
}
