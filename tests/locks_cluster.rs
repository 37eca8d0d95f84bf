//! Multi-process lock tests: a 3-node cluster on 127.0.0.1 under crashes, pauses and
//! partitions (contract section 3; issue 3, "must show" item 2).
//!
//! Each test starts its own cluster. The tests take a process-wide lock so that only
//! one cluster runs at a time: on a small machine three clusters electing leaders in
//! parallel would only measure the scheduler.
//!
//! No test asserts on speed; deadlines are generous and only bound liveness. Failover
//! times are printed (`cargo test -- --nocapture`).
//!
//! Why this file is long: one scenario per failure mode.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::lock_info::{info, info_field, retry, wait_info};
use common::{acquire, check, conn_to, read_lines, release, resp, serial, Cluster};
use redis::{RedisResult, Value};

fn others(c: &Cluster, not: u64) -> Vec<u64> {
    c.nodes
        .iter()
        .map(|s| s.id)
        .filter(|&id| id != not)
        .collect()
}

// ---------------------------------------------------------------------------------
// 1. Acquire through a follower, fencing, deadlock, mode mismatch (default settings)
// ---------------------------------------------------------------------------------

#[test]
fn acquire_through_follower_fencing_deadlock_and_modes() {
    let _serial = serial();
    let mut c = Cluster::start(3, &[]);
    let leader = c.wait_leader(Duration::from_secs(10));
    let followers = others(&c, leader);
    let (f1, f2) = (followers[0], followers[1]);

    // A follower forwards the acquire and relays the token.
    let mut con_f1 = c.node(f1).conn();
    let t1 = acquire(&mut con_f1, "r1", "alice", &[])
        .unwrap()
        .expect("granted through a follower");
    assert!(t1 > 0);
    for id in [1, 2, 3] {
        let mut con = c.node(id).conn();
        let i = info(&mut con, "r1").unwrap();
        assert_eq!(i.mode, "exclusive", "node {id}");
        assert_eq!(i.holders, vec![("alice".to_string(), t1)], "node {id}");
        assert!(i.waiters.is_empty(), "node {id}");
        assert_eq!(
            check(&mut con, "r1", t1).unwrap(),
            1,
            "CHECK of the holder's token on node {id}"
        );
        assert_eq!(
            check(&mut con, "r1", t1 - 1).unwrap(),
            0,
            "CHECK of token-1 on node {id}"
        );
        assert_eq!(
            check(&mut con, "r1", t1 + 1).unwrap(),
            0,
            "CHECK of token+1 on node {id}"
        );
    }
    // Re-acquire in the same mode: same token (a retried request is safe).
    assert_eq!(
        acquire(&mut c.node(f2).conn(), "r1", "alice", &[]).unwrap(),
        Some(t1)
    );
    // Somebody else: not granted, no wait → null.
    assert_eq!(
        acquire(&mut c.node(leader).conn(), "r1", "bob", &[]).unwrap(),
        None
    );

    // Fencing tokens strictly increase across resources and nodes.
    let mut tokens = vec![t1];
    for k in 0..9u64 {
        let node = [leader, f1, f2][(k % 3) as usize];
        let mut con = c.node(node).conn();
        let res = format!("fence-{}", k % 4);
        let owner = format!("owner-{k}");
        // Release the previous holder of this resource (if any) so the grant is new.
        if k >= 4 {
            assert_eq!(
                release(&mut con, &res, &format!("owner-{}", k - 4)).unwrap(),
                1
            );
        }
        let t = acquire(&mut con, &res, &owner, &["TTL", "60000"])
            .unwrap()
            .expect("free resource is granted");
        assert!(
            t > *tokens.last().unwrap(),
            "token {t} after {tokens:?} (node {node}, {res})"
        );
        tokens.push(t);
    }
    // Releasing alice and re-granting r1 gives a new, larger token.
    assert_eq!(release(&mut con_f1, "r1", "alice").unwrap(), 1);
    assert_eq!(
        release(&mut con_f1, "r1", "alice").unwrap(),
        0,
        "second release holds nothing"
    );
    let t_bob = acquire(&mut c.node(f2).conn(), "r1", "bob", &[])
        .unwrap()
        .expect("free again");
    assert!(t_bob > *tokens.last().unwrap());
    assert_eq!(
        check(&mut con_f1, "r1", t1).unwrap(),
        0,
        "alice's old token is stale"
    );
    assert_eq!(check(&mut con_f1, "r1", t_bob).unwrap(), 1);
    println!("tokens: {tokens:?} then {t_bob}");

    // DEADLOCK across two owners / two resources via WAIT.
    let mut con_a = c.node(f1).conn();
    let mut con_b = c.node(f2).conn();
    let ta = acquire(&mut con_a, "da", "A", &[])
        .unwrap()
        .expect("A gets da");
    let tb = acquire(&mut con_b, "db", "B", &[])
        .unwrap()
        .expect("B gets db");
    let waiter = thread::spawn(move || {
        let r = acquire(&mut con_a, "db", "A", &["WAIT", "15000"]);
        (r, con_a)
    });
    wait_info(c.port(leader), "db", Duration::from_secs(10), |i| {
        i.waiters == ["A"]
    });
    let err = acquire(&mut con_b, "da", "B", &["WAIT", "15000"])
        .expect_err("closing the cycle must fail");
    assert_eq!(err.code(), Some("DEADLOCK"), "{err}");
    println!("deadlock reply: {err}");
    // Nothing changed: B still holds db, A still waits, da is A's.
    let i = info(&mut con_b, "da").unwrap();
    assert_eq!(i.holders, vec![("A".to_string(), ta)]);
    assert!(
        i.waiters.is_empty(),
        "the refused request was not queued: {i:?}"
    );
    let i = info(&mut con_b, "db").unwrap();
    assert_eq!(i.holders, vec![("B".to_string(), tb)]);
    assert_eq!(i.waiters, ["A"]);
    // B releases db → A's wait is granted.
    assert_eq!(release(&mut con_b, "db", "B").unwrap(), 1);
    let (r, _con_a) = waiter.join().unwrap();
    let t = r.unwrap().expect("A granted db after B released");
    assert!(t > tb);

    // Mode mismatch: the error names the command to use, and nothing changes.
    let mut con = c.node(f1).conn();
    let ts = acquire(&mut con, "m", "S", &["SHARED"])
        .unwrap()
        .expect("shared granted");
    let err =
        acquire(&mut con, "m", "S", &["EXCLUSIVE"]).expect_err("shared holder asking exclusive");
    assert!(err.to_string().contains("LOCK.UPGRADE"), "{err}");
    let te = acquire(&mut con, "m2", "X", &[])
        .unwrap()
        .expect("exclusive granted");
    let err =
        acquire(&mut con, "m2", "X", &["SHARED"]).expect_err("exclusive holder asking shared");
    assert!(err.to_string().contains("LOCK.DOWNGRADE"), "{err}");
    let i = info(&mut con, "m").unwrap();
    assert_eq!(
        (i.mode.as_str(), i.holders),
        ("shared", vec![("S".to_string(), ts)])
    );
    let i = info(&mut con, "m2").unwrap();
    assert_eq!(
        (i.mode.as_str(), i.holders),
        ("exclusive", vec![("X".to_string(), te)])
    );
}

// ---------------------------------------------------------------------------------
// 2. SIGKILL the leader: new leader, locks and waiters intact, FIFO kept (defaults)
// ---------------------------------------------------------------------------------

#[test]
fn leader_sigkill_keeps_locks_and_waiter_order() {
    let _serial = serial();
    let mut c = Cluster::start(3, &[]);
    let leader = c.wait_leader(Duration::from_secs(10));
    let surv = others(&c, leader);
    let (s1, s2) = (surv[0], surv[1]);

    let mut con1 = c.node(s1).conn();
    let ta = acquire(&mut con1, "r", "A", &[])
        .unwrap()
        .expect("A holds r");
    let held = acquire(&mut con1, "other", "Z", &["TTL", "60000"])
        .unwrap()
        .expect("Z holds other");

    // B then C wait on r, from clients connected to the nodes that will survive.
    let mut con_b = c.node(s1).conn();
    let b = thread::spawn(move || acquire(&mut con_b, "r", "B", &["WAIT", "20000"]));
    wait_info(c.port(s2), "r", Duration::from_secs(10), |i| {
        i.waiters == ["B"]
    });
    let mut con_c = c.node(s2).conn();
    let cth = thread::spawn(move || acquire(&mut con_c, "r", "C", &["WAIT", "20000"]));
    wait_info(c.port(s1), "r", Duration::from_secs(10), |i| {
        i.waiters == ["B", "C"]
    });

    // A lease with little time left when the leader dies: the new leader must extend
    // it to at least its TTL from the election (contract: no early expiry because the
    // leader changed). Without the extension it would be gone before the election.
    let tl = acquire(&mut con1, "lease", "L", &["TTL", "1500"])
        .unwrap()
        .expect("L holds lease");
    thread::sleep(Duration::from_millis(1000));

    let killed_at = Instant::now();
    c.node(leader).kill();
    let new_leader = c.wait_new_leader(leader, Duration::from_secs(10));
    let elected = killed_at.elapsed();
    let seen_elected = Instant::now();
    let probe = retry(
        c.port(s1),
        Duration::from_secs(10),
        "acquire after failover",
        |con| {
            acquire(con, "probe", "P", &[])?
                .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::ResponseError, "null")))
        },
    );
    let served = killed_at.elapsed();
    println!("failover (defaults): new leader {new_leader} after {elected:?}; first acquire through a survivor after {served:?}");
    assert!(probe > ta);
    // 500 ms after we saw the new leader the extended lease (>= 1500 ms from the
    // election) still holds; the unextended one ran out ~500 ms after the kill.
    thread::sleep(Duration::from_millis(500).saturating_sub(seen_elected.elapsed()));
    let i = wait_info(c.port(s2), "lease", Duration::from_secs(5), |_| true);
    assert_eq!(
        i.holders,
        vec![("L".to_string(), tl)],
        "lease expired early across the leader change"
    );
    // ... and it does expire afterwards: expiry works under the new leader.
    wait_info(c.port(s2), "lease", Duration::from_secs(10), |i| {
        i.holders.is_empty()
    });

    // Held locks and the queue survived the crash, on both survivors.
    for id in [s1, s2] {
        let i = wait_info(c.port(id), "r", Duration::from_secs(5), |_| true);
        assert_eq!(i.holders, vec![("A".to_string(), ta)], "node {id}");
        assert_eq!(i.waiters, ["B", "C"], "node {id}");
        let i = wait_info(c.port(id), "other", Duration::from_secs(5), |_| true);
        assert_eq!(i.holders, vec![("Z".to_string(), held)], "node {id}");
    }
    assert!(
        !b.is_finished() && !cth.is_finished(),
        "waiters still blocked"
    );

    // Release A through a survivor → B (first in line) is granted, C keeps waiting.
    assert_eq!(
        retry(c.port(s2), Duration::from_secs(10), "release A", |con| {
            release(con, "r", "A")
        }),
        1
    );
    let tb = b
        .join()
        .unwrap()
        .unwrap()
        .expect("B granted after A's release");
    assert!(tb > ta);
    let i = wait_info(c.port(s2), "r", Duration::from_secs(5), |_| true);
    assert_eq!(i.holders, vec![("B".to_string(), tb)]);
    assert_eq!(i.waiters, ["C"]);
    thread::sleep(Duration::from_millis(200));
    assert!(!cth.is_finished(), "C must not be granted while B holds r");

    // Release B → C is granted.
    assert_eq!(
        retry(c.port(s1), Duration::from_secs(10), "release B", |con| {
            release(con, "r", "B")
        }),
        1
    );
    let tc = cth
        .join()
        .unwrap()
        .unwrap()
        .expect("C granted after B's release");
    assert!(tc > tb);
    let i = wait_info(c.port(s1), "r", Duration::from_secs(5), |_| true);
    assert_eq!(i.holders, vec![("C".to_string(), tc)]);
    assert!(i.waiters.is_empty());
    println!("grant order A={ta} B={tb} C={tc}");

    // The killed node comes back as a follower and catches up.
    c.node(leader).restart();
    let i = wait_info(c.port(leader), "r", Duration::from_secs(15), |i| {
        i.holders.len() == 1
    });
    assert_eq!(i.holders, vec![("C".to_string(), tc)]);
}

// ---------------------------------------------------------------------------------
// 3. SIGKILL all three, restart: every acknowledged lock is still there (defaults)
// ---------------------------------------------------------------------------------

#[test]
fn sigkill_all_and_restart_keeps_acknowledged_locks() {
    let _serial = serial();
    let mut c = Cluster::start(3, &[]);
    c.wait_leader(Duration::from_secs(10));

    let mut expected: Vec<(String, Vec<(String, i64)>)> = Vec::new();
    let mut max_token = 0;
    for k in 0..12u64 {
        let node = k % 3 + 1;
        let mut con = c.node(node).conn();
        let res = format!("durable-{k}");
        let owner = format!("holder-{k}");
        let t = acquire(&mut con, &res, &owner, &["TTL", "120000"])
            .unwrap()
            .expect("granted");
        assert!(t > max_token);
        max_token = t;
        expected.push((res, vec![(owner, t)]));
    }
    // A shared resource with two holders, and a released one that must stay free.
    let mut con = c.node(2).conn();
    let s1 = acquire(&mut con, "shared", "reader-1", &["SHARED", "TTL", "120000"])
        .unwrap()
        .expect("shared");
    let s2 = acquire(
        &mut c.node(3).conn(),
        "shared",
        "reader-2",
        &["SHARED", "TTL", "120000"],
    )
    .unwrap()
    .expect("shared");
    max_token = max_token.max(s1).max(s2);
    acquire(&mut con, "released", "gone", &[])
        .unwrap()
        .expect("granted");
    assert_eq!(release(&mut con, "released", "gone").unwrap(), 1);
    drop(con);

    for id in [1, 2, 3] {
        c.node(id).kill();
    }
    for id in [1, 2, 3] {
        c.node(id).restart();
    }
    let leader = c.wait_leader(Duration::from_secs(20));
    println!("after kill -9 of all three: leader {leader}");

    for id in [1, 2, 3] {
        let p = c.port(id);
        for (res, holders) in &expected {
            let i = wait_info(p, res, Duration::from_secs(15), |_| true);
            assert_eq!(&i.holders, holders, "{res} on node {id}");
            assert_eq!(i.mode, "exclusive");
        }
        let i = wait_info(p, "shared", Duration::from_secs(15), |_| true);
        let got: BTreeSet<_> = i.holders.into_iter().collect();
        let want: BTreeSet<_> = [("reader-1".to_string(), s1), ("reader-2".to_string(), s2)]
            .into_iter()
            .collect();
        assert_eq!(got, want, "shared holders on node {id}");
        let i = wait_info(p, "released", Duration::from_secs(15), |_| true);
        assert!(
            i.holders.is_empty(),
            "released lock came back on node {id}: {i:?}"
        );
        let mut con = conn_to(p, Duration::from_secs(5)).expect("connect");
        for (res, holders) in &expected {
            assert_eq!(
                check(&mut con, res, holders[0].1).unwrap(),
                1,
                "{res} token still valid on node {id}"
            );
        }
    }
    // New grants continue above every token granted before the crash.
    for id in [1, 2, 3] {
        let t = retry(
            c.port(id),
            Duration::from_secs(10),
            "acquire after restart",
            |con| acquire(con, &format!("after-{id}"), "new", &[]),
        )
        .expect("free resource");
        assert!(
            t > max_token,
            "token {t} after restart must exceed {max_token}"
        );
        max_token = t;
    }
}

// ---------------------------------------------------------------------------------
// 4. A node cut off cannot grant; the majority serves; the node catches up (defaults)
// ---------------------------------------------------------------------------------

#[test]
fn isolated_node_cannot_grant_and_catches_up() {
    let _serial = serial();
    let mut c = Cluster::start(3, &[]);
    let leader = c.wait_leader(Duration::from_secs(10));
    let f = others(&c, leader)[0];
    let (p_leader, p_f) = (c.port(leader), c.port(f));
    let t0 = acquire(
        &mut c.node(leader).conn(),
        "before",
        "x",
        &["TTL", "120000"],
    )
    .unwrap()
    .expect("granted");

    // --- a follower cut off (once it has applied `before`) ---
    let target = c.status(leader).expect("leader status").3;
    c.wait_applied(f, target, Duration::from_secs(10));
    c.isolate(f);
    let minority = thread::spawn(move || {
        let mut answers = Vec::new();
        for k in 0..3 {
            let mut con =
                conn_to(p_f, Duration::from_secs(10)).expect("isolated node still accepts clients");
            let started = Instant::now();
            let r = acquire(&mut con, &format!("iso-{k}"), "minority", &[]);
            answers.push((
                r.map_err(|e| (e.code().map(str::to_string), e.to_string())),
                started.elapsed(),
            ));
            let r: RedisResult<Value> = redis::cmd("LOCK.INFO").arg("before").query(&mut con);
            assert!(
                r.is_err(),
                "an isolated node must not serve a linearizable read: {r:?}"
            );
        }
        answers
    });
    // The majority keeps granting meanwhile.
    let mut during = Vec::new();
    for k in 0..5 {
        let node = if k % 2 == 0 {
            leader
        } else {
            others(&c, leader)[1]
        };
        let t = retry(
            c.port(node),
            Duration::from_secs(10),
            "majority acquire",
            |con| acquire(con, &format!("during-{k}"), "majority", &["TTL", "120000"]),
        )
        .expect("free resource");
        assert!(t > t0);
        during.push((format!("during-{k}"), t));
    }
    for (r, took) in minority.join().unwrap() {
        match r {
            Ok(v) => panic!("isolated node answered {v:?} to LOCK.ACQUIRE"),
            Err((code, text)) => {
                assert_eq!(code.as_deref(), Some("CLUSTERDOWN"), "{text}");
                println!("isolated follower: {text} after {took:?}");
            }
        }
    }
    // The isolated node's own state has not seen the new grants.
    let mut con = conn_to(p_f, Duration::from_secs(5)).unwrap();
    let before_heal: u64 = info_field(&mut con, "locks", "lock_holders")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        before_heal, 1,
        "the isolated node cannot have applied grants made without it"
    );

    let term_before = c.status(leader).map(|s| s.1);
    c.heal();
    let healed = Instant::now();
    // The target: what the majority had applied after its grants.
    let target = [leader, others(&c, leader)[1]]
        .iter()
        .filter_map(|&id| c.status(id))
        .map(|s| s.3)
        .max()
        .unwrap();
    c.wait_applied(f, target, Duration::from_secs(20));
    println!(
        "isolated follower caught up to index {target} in {:?} after heal",
        healed.elapsed()
    );
    let now_leader = c.wait_leader(Duration::from_secs(10));
    println!(
        "term before heal {term_before:?}, after: {:?} (leader {now_leader})",
        c.status(now_leader).map(|s| s.1)
    );
    let mut con = conn_to(p_f, Duration::from_secs(5)).unwrap();
    let holders: u64 = info_field(&mut con, "locks", "lock_holders")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        holders,
        1 + during.len() as u64,
        "local state of the healed node"
    );
    for (res, t) in &during {
        let i = wait_info(p_f, res, Duration::from_secs(10), |_| true);
        assert_eq!(
            i.holders,
            vec![("majority".to_string(), *t)],
            "{res} seen from the healed node"
        );
    }
    for k in 0..3 {
        let i = wait_info(p_f, &format!("iso-{k}"), Duration::from_secs(10), |_| true);
        assert!(
            i.holders.is_empty(),
            "nothing was granted by the isolated node: {i:?}"
        );
    }

    // --- the leader cut off ---
    let old = c.wait_leader(Duration::from_secs(10));
    let p_old = c.port(old);
    c.isolate(old);
    let cut_at = Instant::now();
    let stale = thread::spawn(move || {
        let mut con = conn_to(p_old, Duration::from_secs(10)).expect("connect");
        let r = acquire(&mut con, "contested", "ghost", &[]);
        let r2 = check(&mut con, "before", t0);
        (r.map_err(|e| e.to_string()), r2.map_err(|e| e.to_string()))
    });
    let new = c.wait_new_leader(old, Duration::from_secs(10));
    println!(
        "isolated leader {old}: new leader {new} after {:?}",
        cut_at.elapsed()
    );
    let survivor = others(&c, old)[0];
    let tm = retry(
        c.port(survivor),
        Duration::from_secs(10),
        "majority acquire after leader isolation",
        |con| acquire(con, "contested", "majority", &["TTL", "120000"]),
    );
    let (ghost, stale_check) = stale.join().unwrap();
    assert!(
        ghost.is_err(),
        "the cut-off leader answered LOCK.ACQUIRE with {ghost:?}"
    );
    assert!(
        stale_check.is_err(),
        "the cut-off leader answered LOCK.CHECK (a linearizable read) with {stale_check:?}"
    );
    println!(
        "cut-off leader answered: {} / {}",
        ghost.unwrap_err(),
        stale_check.unwrap_err()
    );
    let tm = tm.expect("the majority grants 'contested' (the ghost never held it)");

    c.heal();
    let target = others(&c, old)
        .iter()
        .filter_map(|&id| c.status(id))
        .map(|s| s.3)
        .max()
        .unwrap();
    c.wait_applied(old, target, Duration::from_secs(20));
    for id in [1, 2, 3] {
        let i = wait_info(c.port(id), "contested", Duration::from_secs(10), |_| true);
        assert_eq!(i.holders, vec![("majority".to_string(), tm)], "node {id}");
    }
    // Everyone serves again.
    for id in [1, 2, 3] {
        retry(
            c.port(id),
            Duration::from_secs(10),
            "acquire after heal",
            |con| acquire(con, &format!("healed-{id}"), "h", &[]),
        )
        .expect("granted");
    }
    let _ = p_leader;
}

// ---------------------------------------------------------------------------------
// 5. SIGSTOP the leader past the election timeout, then SIGCONT (defaults)
// ---------------------------------------------------------------------------------

#[test]
fn paused_leader_never_yields_two_exclusive_holders() {
    let _serial = serial();
    let mut c = Cluster::start(3, &[]);
    let leader = c.wait_leader(Duration::from_secs(10));
    let surv = others(&c, leader);
    let (s1, s2) = (surv[0], surv[1]);
    let ports: Vec<u16> = c.nodes.iter().map(|s| s.port).collect();

    let ta = acquire(&mut c.node(leader).conn(), "x", "A", &["TTL", "1000"])
        .unwrap()
        .expect("A holds x");

    // Watch LOCK.INFO x on every node for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::<(String, i64)>::new()));
    let observations = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stop, seen, observations, ports) = (
            stop.clone(),
            seen.clone(),
            observations.clone(),
            ports.clone(),
        );
        thread::spawn(move || {
            let mut cons: Vec<Option<redis::Connection>> = ports.iter().map(|_| None).collect();
            let mut violations = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for (k, &p) in ports.iter().enumerate() {
                    if cons[k].is_none() {
                        cons[k] = conn_to(p, Duration::from_millis(400));
                    }
                    let Some(con) = cons[k].as_mut() else {
                        continue;
                    };
                    match info(con, "x") {
                        Ok(i) => {
                            observations.fetch_add(1, Ordering::Relaxed);
                            if i.holders.len() > 1
                                || (i.mode == "exclusive") != (i.holders.len() == 1)
                            {
                                violations.push((k + 1, i.clone()));
                            }
                            let mut s = seen.lock().unwrap();
                            for h in i.holders {
                                if s.last() != Some(&h) {
                                    s.push(h);
                                }
                            }
                        }
                        Err(_) => cons[k] = None,
                    }
                }
                thread::sleep(Duration::from_millis(10));
            }
            violations
        })
    };

    thread::sleep(Duration::from_millis(200));
    c.node(leader).pause();
    let paused_at = Instant::now();

    // Keep acquiring through the survivors until B becomes the exclusive holder.
    let p1 = c.port(s1);
    let tb = {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut attempts = 0;
        loop {
            attempts += 1;
            if let Some(mut con) = conn_to(p1, Duration::from_secs(15)) {
                if let Ok(Some(t)) = acquire(&mut con, "x", "B", &["TTL", "60000", "WAIT", "10000"])
                {
                    break t;
                }
            }
            assert!(
                Instant::now() < deadline,
                "B never got x through the survivors ({attempts} attempts)"
            );
            thread::sleep(Duration::from_millis(50));
        }
    };
    assert!(tb > ta);
    let new_leader = c.wait_new_leader(leader, Duration::from_secs(10));
    println!("paused leader {leader}: B granted x (token {tb}) through node {s1} after {:?}; new leader {new_leader}", paused_at.elapsed());

    // Requests queued on the paused old leader run first thing after SIGCONT, before it
    // has heard of the new term: none of them may see or grant a stale state.
    let mut raw =
        TcpStream::connect(("127.0.0.1", c.port(leader))).expect("connect to paused node");
    let mut pipeline = resp(&["LOCK.CHECK", "x", &ta.to_string()]);
    pipeline.extend(resp(&["LOCK.ACQUIRE", "x", "C"]));
    pipeline.extend(resp(&["LOCK.ACQUIRE", "x", "A", "TTL", "1000"]));
    pipeline.extend(resp(&["LOCK.CHECK", "x", &tb.to_string()]));
    raw.write_all(&pipeline).expect("write while paused");
    thread::sleep(Duration::from_millis(100));
    c.node(leader).resume();
    let replies = read_lines(&mut raw, 4, Duration::from_secs(15));
    println!("resumed old leader answered {replies:?}");
    assert_eq!(replies.len(), 4, "{replies:?}");
    assert!(
        replies[0] == ":0" || replies[0].starts_with('-'),
        "stale token passed CHECK on the resumed leader: {replies:?}"
    );
    assert!(
        !replies[1].starts_with(':'),
        "resumed leader granted x to C while B holds it: {replies:?}"
    );
    assert!(
        !replies[2].starts_with(':'),
        "resumed leader granted x back to A: {replies:?}"
    );
    assert!(
        replies[3] == ":1" || replies[3].starts_with('-'),
        "B's token must still be valid: {replies:?}"
    );

    // The old leader rejoins; keep watching for a while after the resume.
    let i = wait_info(c.port(leader), "x", Duration::from_secs(15), |_| true);
    assert_eq!(i.holders, vec![("B".to_string(), tb)]);
    thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let violations = watcher.join().unwrap();
    assert!(
        violations.is_empty(),
        "two exclusive holders / inconsistent LOCK.INFO: {violations:?}"
    );
    let seen = seen.lock().unwrap().clone();
    println!(
        "LOCK.INFO observations: {}; holder sequence {seen:?}",
        observations.load(Ordering::Relaxed)
    );
    assert!(observations.load(Ordering::Relaxed) > 10);
    assert_eq!(seen.first(), Some(&("A".to_string(), ta)));
    assert_eq!(seen.last(), Some(&("B".to_string(), tb)));
    assert!(
        seen.iter().all(|h| h.0 == "A" || h.0 == "B"),
        "only A then B ever held x: {seen:?}"
    );
    let mut con = c.node(s2).conn();
    assert_eq!(check(&mut con, "x", ta).unwrap(), 0);
    assert_eq!(check(&mut con, "x", tb).unwrap(), 1);
}
