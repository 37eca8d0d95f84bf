//! Mutual exclusion under faults (issue 3, "must show" item 3).
//!
//! `mutual_exclusion_under_kills_and_pauses`: several clients loop acquire(WAIT) →
//! guarded write → release against random nodes of a 3-node cluster while a nemesis
//! SIGKILLs/restarts and SIGSTOPs/SIGCONTs nodes (one at a time, so a majority is
//! always there). The guarded write is what a fenced resource does: `LOCK.CHECK` with
//! the client's token must answer 1, the resource refuses a token not above the last
//! one it accepted, and it records who is inside. The counter it protects is a plain
//! read-modify-write with a pause in the middle, so two clients inside at once would
//! also lose an update. Those clients take a new owner name whenever they lose track
//! of their lock, which keeps them clear of one class of bug; `fenced_nemesis.rs` runs
//! workers that reuse their owner names, as applications do.

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

use common::{acquire, check, conn_to, release, serial, Cluster, Rng};

/// The protected resource, outside the lock service.
#[derive(Default)]
struct Guarded {
    /// Client number + 1 of whoever is inside, 0 when nobody.
    inside: AtomicU64,
    /// The protected counter (updated by a deliberately non-atomic read-modify-write).
    counter: AtomicU64,
    /// The last fencing token that entered.
    last_token: AtomicI64,
    /// Entries while someone else was inside.
    overlaps: AtomicU64,
    /// Entries whose token was not above the last one accepted.
    fencing_violations: AtomicU64,
}

impl Guarded {
    /// The critical section of client `me` holding `token`; returns the token that
    /// entered before it.
    fn enter(&self, me: u64, token: i64) -> i64 {
        if self.inside.swap(me + 1, SeqCst) != 0 {
            self.overlaps.fetch_add(1, SeqCst);
        }
        let before = self.last_token.fetch_max(token, SeqCst);
        if token <= before {
            self.fencing_violations.fetch_add(1, SeqCst);
        }
        let v = self.counter.load(SeqCst);
        thread::sleep(Duration::from_millis(1));
        self.counter.store(v + 1, SeqCst);
        if self
            .inside
            .compare_exchange(me + 1, 0, SeqCst, SeqCst)
            .is_err()
        {
            self.overlaps.fetch_add(1, SeqCst);
        }
        before
    }
}

/// What one client did.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    completed: u64,
    wait_timeouts: u64,
    errors: u64,
    check_refused: u64,
    stale_checks: u64,
    stale_passed: u64,
    lost_on_release: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.completed += o.completed;
        self.wait_timeouts += o.wait_timeouts;
        self.errors += o.errors;
        self.check_refused += o.check_refused;
        self.stale_checks += o.stale_checks;
        self.stale_passed += o.stale_passed;
        self.lost_on_release += o.lost_on_release;
    }
}

const RESOURCE: &str = "guarded-counter";

/// One client's loop until `end`.
fn client(me: u64, ports: &[u16], guarded: &Guarded, end: Instant) -> Tally {
    let mut t = Tally::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (me + 1).wrapping_mul(0xA24B_AED4_963E_E407));
    // A new owner name whenever we cannot tell whether we still hold the lock, so a
    // re-acquire is never mistaken for a fresh grant (same owner → same token).
    let mut generation = 0u64;
    let mut con: Option<redis::Connection> = None;
    while Instant::now() < end {
        let owner = format!("client-{me}.{generation}");
        if con.is_none() {
            let port = ports[rng.below(ports.len() as u64) as usize];
            // WAIT 3000 + --no-leader-wait 2000 + slack.
            con = conn_to(port, Duration::from_secs(8));
            if con.is_none() {
                t.errors += 1;
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        }
        let Some(c) = con.as_mut() else { continue };
        let token = match acquire(c, RESOURCE, &owner, &["TTL", "2000", "WAIT", "3000"]) {
            Ok(Some(token)) => token,
            Ok(None) => {
                t.wait_timeouts += 1;
                continue;
            }
            Err(_) => {
                // Maybe granted, maybe queued: a ghost grant expires with its lease.
                t.errors += 1;
                con = None;
                generation += 1;
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        match check(c, RESOURCE, token) {
            Ok(1) => {}
            Ok(_) => {
                t.check_refused += 1;
                generation += 1;
                continue;
            }
            Err(_) => {
                t.errors += 1;
                con = None;
                generation += 1;
                continue;
            }
        }
        let before = guarded.enter(me, token);
        t.completed += 1;
        // A token that entered before ours was superseded by our grant: it must
        // never pass LOCK.CHECK again.
        if before > 0 && before < token {
            match check(c, RESOURCE, before) {
                Ok(v) => {
                    t.stale_checks += 1;
                    if v != 0 {
                        t.stale_passed += 1;
                        eprintln!("STALE token {before} passed LOCK.CHECK (holder token {token})");
                    }
                }
                Err(_) => {
                    t.errors += 1;
                    con = None;
                    generation += 1;
                    continue;
                }
            }
        }
        match con.as_mut().map(|c| release(c, RESOURCE, &owner)) {
            Some(Ok(1)) => {}
            Some(Ok(_)) => {
                t.lost_on_release += 1;
                generation += 1;
            }
            _ => {
                t.errors += 1;
                con = None;
                generation += 1;
            }
        }
    }
    t
}

/// Kills/restarts and pauses/resumes one node at a time until `end`.
fn nemesis(c: &mut Cluster, end: Instant, stop: &AtomicBool) -> Vec<String> {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut log = Vec::new();
    let started = Instant::now();
    let mut round = 0u64;
    while Instant::now() + Duration::from_secs(4) < end && !stop.load(SeqCst) {
        thread::sleep(Duration::from_millis(800 + rng.below(700)));
        // Aim at the leader every other round, at a random node otherwise.
        let leader = (1..=3).find(|&id| c.status(id).is_some_and(|s| s.0 == "leader"));
        let victim = match leader {
            Some(l) if round.is_multiple_of(2) => l,
            _ => 1 + rng.below(3),
        };
        let at = started.elapsed();
        if round % 3 == 2 {
            c.node(victim).pause();
            thread::sleep(Duration::from_millis(1200 + rng.below(1000)));
            c.node(victim).resume();
            log.push(format!(
                "{at:.1?}: SIGSTOP/SIGCONT node {victim} (leader: {leader:?})"
            ));
        } else {
            c.node(victim).kill();
            thread::sleep(Duration::from_millis(500 + rng.below(1500)));
            c.node(victim).restart();
            log.push(format!(
                "{at:.1?}: SIGKILL/restart node {victim} (leader: {leader:?})"
            ));
        }
        round += 1;
    }
    log
}

#[test]
fn mutual_exclusion_under_kills_and_pauses() {
    let _serial = serial();
    const CLIENTS: u64 = 4;
    const RUN: Duration = Duration::from_secs(25);
    let mut c = Cluster::start(
        3,
        &["--election-timeout", "300", "--heartbeat-interval", "50"],
    );
    c.wait_leader(Duration::from_secs(10));
    let ports: Vec<u16> = c.nodes.iter().map(|s| s.port).collect();
    let guarded = Guarded::default();
    let stop = AtomicBool::new(false);
    let end = Instant::now() + RUN;

    let (total, faults) = thread::scope(|s| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|me| {
                let (ports, guarded) = (&ports, &guarded);
                s.spawn(move || client(me, ports, guarded, end))
            })
            .collect();
        let faults = s.spawn(|| nemesis(&mut c, end, &stop));
        let mut total = Tally::default();
        for h in clients {
            total += h.join().expect("client thread");
        }
        stop.store(true, SeqCst);
        (total, faults.join().expect("nemesis thread"))
    });

    for f in &faults {
        println!("nemesis {f}");
    }
    let counter = guarded.counter.load(SeqCst);
    let overlaps = guarded.overlaps.load(SeqCst);
    let fencing = guarded.fencing_violations.load(SeqCst);
    println!(
        "mutual exclusion: {} critical sections, counter {counter}, overlaps {overlaps}, fencing violations {fencing}, \
         stale checks {} (passed {}), wait timeouts {}, CHECK refused {}, leases lost before release {}, errors/retries {}, faults {}",
        total.completed,
        total.stale_checks,
        total.stale_passed,
        total.wait_timeouts,
        total.check_refused,
        total.lost_on_release,
        total.errors,
        faults.len()
    );
    assert_eq!(
        overlaps, 0,
        "two clients were inside the critical section at once"
    );
    assert_eq!(
        fencing, 0,
        "a token not above the last accepted one passed LOCK.CHECK"
    );
    assert_eq!(
        total.stale_passed, 0,
        "a superseded token passed LOCK.CHECK"
    );
    assert_eq!(
        counter, total.completed,
        "the counter must equal the completed critical sections"
    );
    assert!(
        faults.len() >= 3,
        "the nemesis must have struck: {faults:?}"
    );
    assert!(total.completed > 0, "no progress at all under faults");
    assert!(total.stale_checks > 0, "the stale-token check never ran");

    // After the storm the cluster serves again, and the fencing order still holds.
    let leader = c.wait_leader(Duration::from_secs(15));
    let mut con = c.node(leader).conn();
    let deadline = Instant::now() + Duration::from_secs(15);
    let t = loop {
        match acquire(&mut con, RESOURCE, "final", &["WAIT", "5000"]) {
            Ok(Some(t)) => break t,
            _ if Instant::now() < deadline => thread::sleep(Duration::from_millis(100)),
            other => panic!("cluster did not serve after the faults: {other:?}"),
        }
    };
    assert!(
        t > guarded.last_token.load(SeqCst),
        "final token {t} is above every token that entered"
    );
    assert_eq!(
        check(&mut con, RESOURCE, guarded.last_token.load(SeqCst)).unwrap(),
        0
    );
}

#[test]
fn expired_lease_token_fails_check() {
    let _serial = serial();
    let mut c = Cluster::start(3, &[]);
    let leader = c.wait_leader(Duration::from_secs(10));
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    let mut con = c.node(follower).conn();

    let old = acquire(&mut con, "lease", "old", &["TTL", "200"])
        .unwrap()
        .expect("granted");
    assert_eq!(check(&mut con, "lease", old).unwrap(), 1);
    thread::sleep(Duration::from_millis(500));
    let new = acquire(
        &mut c.node(leader).conn(),
        "lease",
        "new",
        &["WAIT", "5000"],
    )
    .unwrap()
    .expect("granted once the old lease expired");
    assert!(new > old);
    for id in 1..=3 {
        let mut con = c.node(id).conn();
        assert_eq!(
            check(&mut con, "lease", old).unwrap(),
            0,
            "expired token passed LOCK.CHECK on node {id}"
        );
        assert_eq!(
            check(&mut con, "lease", new).unwrap(),
            1,
            "current token on node {id}"
        );
    }
    let renewed: i64 = redis::cmd("LOCK.RENEW")
        .arg("lease")
        .arg("old")
        .arg(1000)
        .query(&mut con)
        .unwrap();
    assert_eq!(renewed, 0, "an expired lease cannot be renewed");
    assert_eq!(
        release(&mut con, "lease", "old").unwrap(),
        0,
        "an expired lease releases nothing"
    );
    assert_eq!(
        check(&mut con, "lease", new).unwrap(),
        1,
        "the new holder is untouched"
    );
    println!("expired token {old} refused, current token {new} accepted");
}
