//! The cache ring from the meta group across node failures (issue 11, "Ring and epochs";
//! contract 2.1, "Home node", "A cache may forget; it never lies"): on a 3-node cluster of
//! real processes, started without churn (epoch 1, all three live), a key's home is SIGKILLed; the meta leader marks it down, the ring's
//! epoch grows (seen in `CACHE.DIR` and `INFO cache`), the key gets a home on a survivor,
//! and every read of it meanwhile answers nil or the last acknowledged value, never an
//! older one. The killed node is restarted: it rejoins under a newer epoch and serves the
//! keyspace coherently with the others.
//!
//! Each round kills another node (the meta leader too, some rounds);
//! `CONCLAVE_CACHE_RING_ROUNDS` (default 3) sets how many. The time from the SIGKILL to
//! the first successful `SET`, on a survivor, of a key the killed node homed is printed
//! per round with the median (it is measured, never asserted on: deadlines only bound
//! liveness); the cluster runs a 1 s lease and node timeout, or the defaults with
//! `CONCLAVE_CACHE_RING_DEFAULTS=1`.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{conn_to, flat_map, serial, until_ok, Cluster};
use redis::Value;

/// The lease of the cluster here (ms).
const LEASE_MS: &str = "1000";
/// How long the meta leader waits for a silent node before marking it down (ms).
const NODE_TIMEOUT_MS: &str = "1000";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn con(c: &Cluster, id: u64) -> redis::Connection {
    conn_to(c.port(id), Duration::from_secs(10)).expect("connect")
}

/// `CACHE.DIR key` → (home, epoch), or the error (`-TRYAGAIN` while the home is away).
fn dir(con: &mut redis::Connection, key: &str) -> redis::RedisResult<(u64, u64)> {
    let v: Value = redis::cmd("CACHE.DIR").arg(key).query(con)?;
    let map = flat_map(&v).unwrap_or_default();
    let int = |name: &str| {
        map.iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| match v {
                Value::Int(i) => u64::try_from(*i).ok(),
                _ => None,
            })
            .unwrap_or(0)
    };
    Ok((int("home"), int("epoch")))
}

/// `ring_epoch` of `INFO cache`.
fn info_epoch(con: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("cache").query(con).expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("ring_epoch:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("ring_epoch in INFO cache")
}

/// `DEBUG.META` → (ring epoch, ring members) as this node applied them.
fn meta_ring(con: &mut redis::Connection) -> redis::RedisResult<(u64, Vec<u64>)> {
    let v: Value = redis::cmd("DEBUG.META").query(con)?;
    let map = flat_map(&v).unwrap_or_default();
    let mut epoch = 0;
    let mut members = Vec::new();
    for (k, v) in map {
        match (k.as_str(), v) {
            ("ring_epoch", Value::Int(e)) => epoch = u64::try_from(e).unwrap_or(0),
            ("ring", Value::Array(items)) => {
                members = items
                    .iter()
                    .filter_map(|i| match i {
                        Value::Int(n) => u64::try_from(*n).ok(),
                        _ => None,
                    })
                    .collect();
            }
            _ => {}
        }
    }
    Ok((epoch, members))
}

/// A key (named after `prefix`) whose home, as `con`'s node sees it, is `home`.
fn key_homed_on(con: &mut redis::Connection, home: u64, prefix: &str) -> (String, u64) {
    for i in 0.. {
        let key = format!("{prefix}:{i}");
        let (h, epoch) = until_ok(Duration::from_secs(20), || dir(con, &key));
        if h == home {
            return (key, epoch);
        }
    }
    unreachable!()
}

/// A read that may only answer nil or one of `allowed` (an error proves nothing).
fn read_is_never_older(con: &mut redis::Connection, key: &str, allowed: &[&str], who: u64) {
    let r: redis::RedisResult<Option<String>> = redis::cmd("GET").arg(key).query(con);
    if let Ok(Some(v)) = r {
        assert!(
            allowed.contains(&v.as_str()),
            "node {who} read {key} = {v:?}; only nil or {allowed:?} may be read"
        );
    }
}

#[test]
fn a_killed_home_moves_its_keys_and_a_restarted_node_rejoins() {
    let _serial = serial();
    let rounds = env_u64("CONCLAVE_CACHE_RING_ROUNDS", 3);
    // `CONCLAVE_CACHE_RING_DEFAULTS=1`: the default lease and node timeout (to measure).
    let short = [
        "--cache-lease-ms",
        LEASE_MS,
        "--node-timeout",
        NODE_TIMEOUT_MS,
    ];
    let defaults = env_u64("CONCLAVE_CACHE_RING_DEFAULTS", 0) == 1;
    let mut c = Cluster::start(3, if defaults { &[] } else { &short });
    for id in 1..=3 {
        let mut con = con(&c, id);
        let _: () = until_ok(Duration::from_secs(30), || {
            redis::cmd("SET").arg("warm").arg(id).query(&mut con)
        });
    }
    // A normal start does not churn: every node is in the first epoch, all three live.
    for id in 1..=3 {
        let mut con = con(&c, id);
        let ring = meta_ring(&mut con).expect("DEBUG.META");
        assert_eq!(
            ring,
            (1, vec![1, 2, 3]),
            "the ring churned at start (node {id})"
        );
        assert_eq!(info_epoch(&mut con), 1, "node {id}");
    }
    let mut took = Vec::new();
    for round in 0..rounds {
        let victim = 3 - round % 3;
        let (a, b) = match victim {
            1 => (2, 3),
            2 => (1, 3),
            _ => (1, 2),
        };
        let (mut ca, mut cb) = (con(&c, a), con(&c, b));
        let (key, epoch_before) = key_homed_on(&mut ca, victim, &format!("ring{round}"));
        // An older value from b, then the newer one from a (a holds it M, b was
        // invalidated); and a key the victim itself holds M.
        let _: () = until_ok(Duration::from_secs(20), || {
            redis::cmd("SET").arg(&key).arg("old").query(&mut cb)
        });
        let _: () = until_ok(Duration::from_secs(20), || {
            redis::cmd("SET").arg(&key).arg("new").query(&mut ca)
        });
        let mut cv = con(&c, victim);
        let (own, _) = key_homed_on(&mut cv, victim, &format!("own{round}"));
        let _: () = until_ok(Duration::from_secs(20), || {
            redis::cmd("SET").arg(&own).arg("mine").query(&mut cv)
        });
        drop(cv);

        let killed = Instant::now();
        c.node(victim).kill();
        // Until a survivor's SET goes through, the key reads nil or "new" everywhere.
        let deadline = killed + Duration::from_secs(60);
        loop {
            read_is_never_older(&mut ca, &key, &["new"], a);
            read_is_never_older(&mut cb, &key, &["new"], b);
            let r: redis::RedisResult<()> = redis::cmd("SET").arg(&key).arg("after").query(&mut cb);
            if r.is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no SET of {key} succeeded within 60 s of killing its home {victim}"
            );
            thread::sleep(Duration::from_millis(10));
        }
        let t = killed.elapsed();
        took.push(t);
        eprintln!("round {round}: killed node {victim}; first SET of a key it homed after {t:?}");
        // A new home on a survivor, a newer epoch, everywhere the new value.
        let (home, epoch_after) = dir(&mut ca, &key).expect("CACHE.DIR");
        assert!(
            home == a || home == b,
            "home {home} after node {victim} died"
        );
        assert!(
            epoch_after > epoch_before,
            "epoch {epoch_after} not above {epoch_before}"
        );
        assert!(info_epoch(&mut ca) >= epoch_after);
        for (con, id) in [(&mut ca, a), (&mut cb, b)] {
            let v: Option<String> = until_ok(Duration::from_secs(20), || {
                redis::cmd("GET").arg(&key).query(con)
            });
            assert_eq!(v.as_deref(), Some("after"), "node {id}");
            // The victim's own write died with it (it held the only copy): nil, never
            // anything else.
            read_is_never_older(con, &own, &["mine"], id);
        }

        // The victim comes back: a newer epoch with it in the ring, and it serves.
        c.node(victim).restart();
        let deadline = Instant::now() + Duration::from_secs(60);
        let epoch_rejoined = loop {
            if let Ok((epoch, members)) = meta_ring(&mut ca) {
                if members.contains(&victim) && epoch > epoch_after {
                    break epoch;
                }
            }
            assert!(
                Instant::now() < deadline,
                "node {victim} never rejoined the ring"
            );
            thread::sleep(Duration::from_millis(50));
        };
        let mut cv = con(&c, victim);
        let _: () = until_ok(Duration::from_secs(30), || {
            redis::cmd("SET").arg(&key).arg("rejoined").query(&mut cv)
        });
        assert!(info_epoch(&mut cv) >= epoch_rejoined);
        for (con, id) in [(&mut ca, a), (&mut cb, b)] {
            let v: Option<String> = until_ok(Duration::from_secs(20), || {
                redis::cmd("GET").arg(&key).query(con)
            });
            assert_eq!(v.as_deref(), Some("rejoined"), "node {id}");
        }
        let _: () = until_ok(Duration::from_secs(20), || {
            redis::cmd("SET").arg(&key).arg("again").query(&mut ca)
        });
        let v: Option<String> = until_ok(Duration::from_secs(20), || {
            redis::cmd("GET").arg(&key).query(&mut cv)
        });
        assert_eq!(v.as_deref(), Some("again"));
        let (_, epoch_now) = dir(&mut cv, &key).expect("CACHE.DIR");
        assert!(epoch_now >= epoch_rejoined);
    }
    took.sort();
    eprintln!(
        "SIGKILL of a home → first SET of a key it homed on a survivor: {:?}, median {:?}",
        took,
        took[took.len() / 2]
    );
}
