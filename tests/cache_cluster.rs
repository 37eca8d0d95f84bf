//! One keyspace across a 3-node cluster of real processes (issue 11, "what it must show"
//! item 2; contract 2.1): a SET on one node is read on the others; `CACHE.STATE` moves
//! E → S → M/I as the contract says; concurrent `INCR`s from every node lose nothing;
//! `MSET` is never seen half-applied from another node.
//!
//! The no-stale-read checker and the fault tests (a stopped sharer, a killed `M` holder,
//! the planted bug the checker must catch) are in `cache_faults.rs`.
//!
//! Deadlines only bound liveness; nothing asserts on speed. (Over 500 lines: one 3-node
//! scenario per contract clause, each self-contained.)

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

// `until_ok`: the homes refuse to grant for one lease after start, so the first commands retry.
use common::{conn_to, flat_map, serial, until_ok, Cluster};
use redis::Value;

/// A connection to node `id` (ports by id) with a generous read timeout.
fn con(c: &Cluster, id: u64) -> redis::Connection {
    conn_to(c.port(id), Duration::from_secs(10)).expect("connect")
}

/// `CACHE.STATE key` on a connection.
fn state(con: &mut redis::Connection, key: &str) -> String {
    redis::cmd("CACHE.STATE")
        .arg(key)
        .query(con)
        .expect("CACHE.STATE")
}

/// `CACHE.DIR key`: (home, owner, sharers).
fn dir(con: &mut redis::Connection, key: &str) -> (i64, Option<i64>, Vec<i64>) {
    let v: Value = redis::cmd("CACHE.DIR")
        .arg(key)
        .query(con)
        .expect("CACHE.DIR");
    let map = flat_map(&v).expect("a map");
    let get = |name: &str| {
        map.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Nil)
    };
    let int = |v: &Value| match v {
        Value::Int(i) => Some(*i),
        _ => None,
    };
    let home = int(&get("home")).expect("home");
    let owner = int(&get("owner"));
    let sharers = match get("sharers") {
        Value::Array(items) => items.iter().filter_map(int).collect(),
        _ => Vec::new(),
    };
    (home, owner, sharers)
}

#[test]
fn a_set_on_one_node_is_read_on_every_other() {
    let _serial = serial();
    let c = Cluster::start(3, &[]);
    let mut cons: Vec<_> = (1..=3).map(|id| con(&c, id)).collect();
    let _: () = until_ok(Duration::from_secs(10), || {
        redis::cmd("SET")
            .arg("greeting")
            .arg("hello")
            .query(&mut cons[0])
    });
    for (i, con) in cons.iter_mut().enumerate() {
        let v: Option<String> = redis::cmd("GET").arg("greeting").query(con).unwrap();
        assert_eq!(v.as_deref(), Some("hello"), "node {}", i + 1);
    }
    // Overwritten on node 3: every node sees the new value at once (the write waited for
    // the invalidation of every copy).
    let _: () = redis::cmd("SET")
        .arg("greeting")
        .arg("bye")
        .query(&mut cons[2])
        .unwrap();
    for (i, con) in cons.iter_mut().enumerate() {
        let v: Option<String> = redis::cmd("GET").arg("greeting").query(con).unwrap();
        assert_eq!(v.as_deref(), Some("bye"), "node {}", i + 1);
    }
    // Replies keep their Redis shapes across nodes.
    let n: i64 = redis::cmd("APPEND")
        .arg("greeting")
        .arg("!")
        .query(&mut cons[1])
        .unwrap();
    assert_eq!(n, 4);
    let v: Option<String> = redis::cmd("GETDEL")
        .arg("greeting")
        .query(&mut cons[0])
        .unwrap();
    assert_eq!(v.as_deref(), Some("bye!"));
    let e: i64 = redis::cmd("EXISTS")
        .arg("greeting")
        .query(&mut cons[2])
        .unwrap();
    assert_eq!(e, 0);
    let _: () = redis::cmd("SET")
        .arg("t")
        .arg("1")
        .arg("PX")
        .arg("60000")
        .query(&mut cons[0])
        .unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg("t").query(&mut cons[1]).unwrap();
    assert!(
        (1..=60000).contains(&ttl),
        "the expiry travels with the value: {ttl}"
    );
    let err = redis::cmd("INCR")
        .arg("greeting2")
        .query::<i64>(&mut cons[1])
        .map(|_| ());
    assert!(err.is_ok());
    let _: () = redis::cmd("SET")
        .arg("word")
        .arg("abc")
        .query(&mut cons[2])
        .unwrap();
    let err = redis::cmd("INCR")
        .arg("word")
        .query::<i64>(&mut cons[0])
        .unwrap_err();
    assert!(err.to_string().contains("value is not an integer"), "{err}");
    // The counters of contract 2.1 are there.
    let stats: Value = redis::cmd("CACHE.STATS").query(&mut cons[0]).unwrap();
    let names: Vec<String> = flat_map(&stats)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for want in [
        "remote_reads",
        "invalidations_sent",
        "invalidations_received",
        "writebacks",
        "lease_waits",
    ] {
        assert!(names.iter().any(|n| n == want), "CACHE.STATS lacks {want}");
    }
    let info: String = redis::cmd("INFO").arg("cache").query(&mut cons[0]).unwrap();
    assert!(info.contains("cache_coherence:mesi"), "{info}");
    assert!(info.contains("invalidations_sent:"), "{info}");
}

#[test]
fn cache_state_moves_e_s_m_i_as_the_contract_says() {
    let _serial = serial();
    // A long lease, so no copy runs out between two steps of the test.
    let c = Cluster::start(3, &["--cache-lease-ms", "10000"]);
    let mut cons: Vec<_> = (1..=3).map(|id| con(&c, id)).collect();
    let key = "mesi";
    // Wait out the homes' start-up fence.
    let _: Option<String> = until_ok(Duration::from_secs(20), || {
        redis::cmd("GET").arg("warm-up").query(&mut cons[0])
    });
    for con in cons.iter_mut() {
        let _: Option<String> = until_ok(Duration::from_secs(20), || {
            redis::cmd("GET").arg("warm-up").query(con)
        });
    }
    let (home, _, _) = dir(&mut cons[0], key);
    assert!((1..=3).contains(&home));
    // A read miss with nobody else holding the key: E.
    let v: Option<String> = redis::cmd("GET").arg(key).query(&mut cons[0]).unwrap();
    assert_eq!(v, None);
    assert_eq!(state(&mut cons[0], key), "E");
    assert_eq!(state(&mut cons[1], key), "I");
    assert_eq!(dir(&mut cons[2], key).1, Some(1), "node 1 owns it");
    // A second reader: both S.
    let _: Option<String> = redis::cmd("GET").arg(key).query(&mut cons[1]).unwrap();
    assert_eq!(state(&mut cons[0], key), "S");
    assert_eq!(state(&mut cons[1], key), "S");
    let (_, owner, mut sharers) = dir(&mut cons[2], key);
    sharers.sort_unstable();
    assert_eq!((owner, sharers), (None, vec![1, 2]));
    // A write on node 3: M there, every other copy invalidated.
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg("x")
        .query(&mut cons[2])
        .unwrap();
    assert_eq!(state(&mut cons[2], key), "M");
    assert_eq!(state(&mut cons[0], key), "I");
    assert_eq!(state(&mut cons[1], key), "I");
    assert_eq!(dir(&mut cons[0], key).1, Some(3));
    // A write from E is silent: node 3 keeps M; repeated writes cost nothing.
    let sent_before = invalidations_sent(&mut cons, home);
    for i in 0..20 {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(i)
            .query(&mut cons[2])
            .unwrap();
    }
    assert_eq!(invalidations_sent(&mut cons, home), sent_before);
    // A read on node 1 recalls the M copy: both S, the value written back.
    let v: Option<String> = redis::cmd("GET").arg(key).query(&mut cons[0]).unwrap();
    assert_eq!(v.as_deref(), Some("19"));
    assert_eq!(state(&mut cons[2], key), "S");
    assert_eq!(state(&mut cons[0], key), "S");
    // A write from S goes through the home: M on node 1, I on node 3.
    let n: i64 = redis::cmd("INCR").arg(key).query(&mut cons[0]).unwrap();
    assert_eq!(n, 20);
    assert_eq!(state(&mut cons[0], key), "M");
    assert_eq!(state(&mut cons[2], key), "I");
}

/// `invalidations_sent` of node `home` (CACHE.STATS).
fn invalidations_sent(cons: &mut [redis::Connection], home: i64) -> i64 {
    let idx = usize::try_from(home - 1).expect("id");
    let stats: Value = redis::cmd("CACHE.STATS").query(&mut cons[idx]).unwrap();
    flat_map(&stats)
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == "invalidations_sent")
        .and_then(|(_, v)| match v {
            Value::Int(i) => Some(i),
            _ => None,
        })
        .expect("invalidations_sent")
}

#[test]
fn concurrent_incr_from_every_node_loses_nothing() {
    let _serial = serial();
    let c = Cluster::start(3, &[]);
    const THREADS_PER_NODE: u64 = 3;
    const INCRS: u64 = 200;
    let keys = ["counter:a", "counter:b"];
    {
        let mut c1 = con(&c, 1);
        let _: i64 = until_ok(Duration::from_secs(10), || {
            redis::cmd("INCRBY").arg(keys[0]).arg(0).query(&mut c1)
        });
    }
    let mut handles = Vec::new();
    for node in 1..=3 {
        for t in 0..THREADS_PER_NODE {
            let port = c.port(node);
            handles.push(thread::spawn(move || {
                let mut con = conn_to(port, Duration::from_secs(10)).expect("connect");
                let mut done = 0;
                for i in 0..INCRS {
                    let key = keys[((i + t) % 2) as usize];
                    // Every INCR must succeed: an error would mean a lost or doubtful
                    // update.
                    let _: i64 = redis::cmd("INCR").arg(key).query(&mut con).expect("INCR");
                    done += 1;
                }
                done
            }));
        }
    }
    let total: u64 = handles.into_iter().map(|h| h.join().expect("thread")).sum();
    assert_eq!(total, 3 * THREADS_PER_NODE * INCRS);
    for node in 1..=3 {
        let mut con = con(&c, node);
        let a: i64 = redis::cmd("GET").arg(keys[0]).query(&mut con).unwrap();
        let b: i64 = redis::cmd("GET").arg(keys[1]).query(&mut con).unwrap();
        assert_eq!(
            u64::try_from(a + b).unwrap(),
            total,
            "node {node} sees every increment"
        );
    }
}

#[test]
fn mset_is_never_seen_half_applied_from_another_node() {
    let _serial = serial();
    let c = Cluster::start(3, &[]);
    let keys = ["pair:x", "pair:y", "pair:z"];
    {
        let mut c1 = con(&c, 1);
        let _: () = until_ok(Duration::from_secs(10), || {
            redis::cmd("MSET")
                .arg(keys[0])
                .arg(0)
                .arg(keys[1])
                .arg(0)
                .arg(keys[2])
                .arg(0)
                .query(&mut c1)
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let port1 = c.port(1);
    let writer = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut con = conn_to(port1, Duration::from_secs(10)).expect("connect");
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let _: () = redis::cmd("MSET")
                    .arg(keys[0])
                    .arg(i)
                    .arg(keys[1])
                    .arg(i)
                    .arg(keys[2])
                    .arg(i)
                    .query(&mut con)
                    .expect("MSET");
            }
            i
        })
    };
    let mut readers = Vec::new();
    for node in [2, 3] {
        let port = c.port(node);
        let stop = stop.clone();
        readers.push(thread::spawn(move || {
            let mut con = conn_to(port, Duration::from_secs(10)).expect("connect");
            let mut reads = 0u64;
            let mut latest = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let v: Vec<Option<u64>> = match redis::cmd("MGET").arg(&keys[..]).query(&mut con) {
                    Ok(v) => v,
                    Err(e) if e.to_string().contains("TRYAGAIN") => continue,
                    Err(e) => panic!("MGET: {e}"),
                };
                assert!(
                    v.iter().all(|x| *x == v[0]),
                    "node {node} saw a half-applied MSET: {v:?}"
                );
                let now = v[0].unwrap_or(0);
                assert!(
                    now >= latest,
                    "node {node} went back in time: {latest} then {now}"
                );
                latest = now;
                reads += 1;
            }
            reads
        }));
    }
    thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().expect("writer");
    let reads: u64 = readers.into_iter().map(|h| h.join().expect("reader")).sum();
    assert!(
        written > 10 && reads > 10,
        "written {written}, reads {reads}"
    );
}

/// MULTI/EXEC and Lua scripts on a cluster hold every key they name `M` for their whole
/// run (issue 11 item "Transactions and scripts").
#[test]
fn transactions_and_scripts_are_atomic_across_the_cluster() {
    let _serial = serial();
    let c = Cluster::start(3, &[]);
    {
        let mut c1 = con(&c, 1);
        let _: () = until_ok(Duration::from_secs(10), || {
            redis::cmd("MSET")
                .arg("tx:a")
                .arg(0)
                .arg("tx:b")
                .arg(0)
                .arg("lua:n")
                .arg(0)
                .query(&mut c1)
        });
    }
    const ROUNDS: u64 = 100;
    let script = "local v = tonumber(redis.call('GET', KEYS[1]) or '0'); \
                  redis.call('SET', KEYS[1], tostring(v + 1)); return v + 1";
    let stop = Arc::new(AtomicBool::new(false));
    // A reader on node 3 must never see tx:a and tx:b apart.
    let reader = {
        let (port, stop) = (c.port(3), stop.clone());
        thread::spawn(move || {
            let mut con = conn_to(port, Duration::from_secs(10)).expect("connect");
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let v: Vec<Option<i64>> =
                    match redis::cmd("MGET").arg("tx:a").arg("tx:b").query(&mut con) {
                        Ok(v) => v,
                        Err(_) => continue,
                    };
                assert_eq!(v[0], v[1], "a transaction seen half-applied");
                reads += 1;
            }
            reads
        })
    };
    let mut writers = Vec::new();
    for node in 1..=3 {
        let port = c.port(node);
        writers.push(thread::spawn(move || {
            let mut con = conn_to(port, Duration::from_secs(10)).expect("connect");
            for _ in 0..ROUNDS {
                // Read-modify-write in a transaction: both keys move together.
                let r: (i64, i64) = redis::pipe()
                    .atomic()
                    .cmd("INCR")
                    .arg("tx:a")
                    .cmd("INCR")
                    .arg("tx:b")
                    .query(&mut con)
                    .expect("EXEC");
                assert_eq!(r.0, r.1);
                // A script's GET then SET is one step cluster-wide.
                let _: i64 = redis::cmd("EVAL")
                    .arg(script)
                    .arg(1)
                    .arg("lua:n")
                    .query(&mut con)
                    .expect("EVAL");
            }
        }));
    }
    for w in writers {
        w.join().expect("writer");
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("reader");
    assert!(reads > 0);
    let mut c2 = con(&c, 2);
    let v: Vec<i64> = redis::cmd("MGET")
        .arg("tx:a")
        .arg("tx:b")
        .arg("lua:n")
        .query(&mut c2)
        .unwrap();
    assert_eq!(v, vec![3 * ROUNDS as i64; 3], "no update lost");
    // A script may touch only the keys it declares.
    let err = redis::cmd("EVAL")
        .arg("return redis.call('GET', 'undeclared')")
        .arg(0)
        .query::<Value>(&mut c2)
        .unwrap_err();
    assert!(err.to_string().contains("not declared"), "{err}");
}

#[test]
fn watch_sees_a_write_made_on_another_node() {
    let _serial = serial();
    let c = Cluster::start(3, &[]);
    let mut one = con(&c, 1);
    let mut two = con(&c, 2);
    let _: () = until_ok(Duration::from_secs(10), || {
        redis::cmd("SET").arg("w").arg("0").query(&mut two)
    });
    let _: () = redis::cmd("WATCH").arg("w").query(&mut one).unwrap();
    let _: () = redis::cmd("SET").arg("w").arg("1").query(&mut two).unwrap();
    let _: () = redis::cmd("MULTI").query(&mut one).unwrap();
    let _: String = redis::cmd("SET").arg("w").arg("2").query(&mut one).unwrap();
    let r: Value = redis::cmd("EXEC").query(&mut one).unwrap();
    assert_eq!(r, Value::Nil, "EXEC must abort: w changed on node 2");
    let v: String = redis::cmd("GET").arg("w").query(&mut one).unwrap();
    assert_eq!(v, "1");
    // Unchanged: the transaction runs.
    let _: () = redis::cmd("WATCH").arg("w").query(&mut one).unwrap();
    let _: () = redis::cmd("MULTI").query(&mut one).unwrap();
    let _: String = redis::cmd("SET").arg("w").arg("3").query(&mut one).unwrap();
    let r: Vec<String> = redis::cmd("EXEC").query(&mut one).unwrap();
    assert_eq!(r, vec!["OK".to_string()]);
    let v: String = redis::cmd("GET").arg("w").query(&mut two).unwrap();
    assert_eq!(v, "3");
}

/// `maxmemory` per node: evicted copies are dropped (an `M` one written back first); a node
/// may forget a key, it never answers an older value.
#[test]
fn evicting_copies_under_maxmemory_never_serves_an_older_value() {
    let _serial = serial();
    let c = Cluster::start(3, &["--maxmemory", "3mb"]);
    let mut one = con(&c, 1);
    let mut two = con(&c, 2);
    let _: () = until_ok(Duration::from_secs(10), || {
        redis::cmd("SET").arg("warm").arg(1).query(&mut one)
    });
    let value = |i: u64, round: u64| format!("{round}:{i}:{}", "x".repeat(1000));
    const KEYS: u64 = 4000;
    for round in 0..2u64 {
        if round == 1 {
            // Node 1 evicted many of its M copies: a nil from node 1 means the key is
            // gone for every node (never nil here and the old value there).
            for i in 0..KEYS {
                let key = format!("ev:{i}");
                let here: Option<String> = redis::cmd("GET").arg(&key).query(&mut one).unwrap();
                let there: Option<String> = redis::cmd("GET").arg(&key).query(&mut two).unwrap();
                if here.is_none() {
                    assert_eq!(there, None, "{key}: nil on node 1, a value on node 2");
                }
            }
        }
        // Round 0 written on node 1, round 1 on node 2: node 1's copies go stale.
        let con = if round == 0 { &mut one } else { &mut two };
        for i in 0..KEYS {
            let _: () = redis::cmd("SET")
                .arg(format!("ev:{i}"))
                .arg(value(i, round))
                .query(con)
                .expect("SET");
        }
    }
    let mut found = 0;
    for con in [&mut one, &mut two] {
        for i in 0..KEYS {
            let v: Option<String> = redis::cmd("GET")
                .arg(format!("ev:{i}"))
                .query(con)
                .expect("GET");
            if let Some(v) = v {
                assert_eq!(v, value(i, 1), "an older value of ev:{i}");
                found += 1;
            }
        }
    }
    assert!(found > 0);
    let stats: Value = redis::cmd("CACHE.STATS").query(&mut one).unwrap();
    let evictions = flat_map(&stats)
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == "evictions")
        .map(|(_, v)| v);
    assert!(
        matches!(evictions, Some(Value::Int(n)) if n > 0),
        "no eviction happened: {evictions:?}"
    );
}

/// A flush of many keys takes as long as it needs: `--no-leader-wait` (500 ms here)
/// bounds a flush without progress, not its length. 20,000 keys held `M` by node 1 took
/// seconds to flush (every event walked all the home's open transactions) and answered
/// `-TRYAGAIN` after the wait, with part of the keys flushed.
#[test]
fn flushall_of_many_held_keys_finishes_past_the_wait() {
    let _serial = serial();
    let c = Cluster::start(3, &["--no-leader-wait", "500"]);
    let mut one = con(&c, 1);
    let _: () = until_ok(Duration::from_secs(10), || {
        redis::cmd("SET").arg("big:warm").arg("1").query(&mut one)
    });
    const KEYS: usize = 20_000;
    for chunk in 0..KEYS / 1000 {
        let mut pipe = redis::pipe();
        for i in chunk * 1000..(chunk + 1) * 1000 {
            pipe.cmd("SET").arg(format!("big:{i}")).arg(i).ignore();
        }
        let _: () = pipe.query(&mut one).unwrap();
    }
    let size: usize = redis::cmd("DBSIZE").query(&mut one).unwrap();
    assert_eq!(size, KEYS + 1, "node 1 holds every key it wrote");
    let mut two = con(&c, 2);
    let flushed: redis::RedisResult<()> = redis::cmd("FLUSHALL").query(&mut two);
    assert!(flushed.is_ok(), "FLUSHALL of {KEYS} keys: {flushed:?}");
    for id in 1..=3 {
        let mut con = con(&c, id);
        let mut mget = redis::cmd("MGET");
        for i in (0..KEYS).step_by(997) {
            mget.arg(format!("big:{i}"));
        }
        let v: Vec<Option<String>> = mget.query(&mut con).unwrap();
        assert!(
            v.iter().all(Option::is_none),
            "node {id} still answers {v:?}"
        );
        // A home that waited out node 1's lease instead of its answer (a slow debug
        // build) is done before node 1 has read every revocation: its copies serve
        // nothing (their leases are over) and are dropped as the revocations arrive.
        let mut size = usize::MAX;
        for _ in 0..200 {
            size = redis::cmd("DBSIZE").query(&mut con).unwrap();
            if size == 0 {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(size, 0, "node {id} kept keys after FLUSHALL");
    }
}

/// `FLUSHALL` on a node of a cluster empties that node's copies only (an `M` copy is
/// written back first): no node answers nil for a key that still exists.
#[test]
fn flushall_on_one_node_drops_every_key_of_the_cluster() {
    let _serial = serial();
    let c = Cluster::start(3, &[]);
    let mut one = con(&c, 1);
    let mut two = con(&c, 2);
    let mut three = con(&c, 3);
    // f:a held M by node 1, f:b written on node 2 and shared with node 3, and a hundred
    // keys written on node 1 (their homes spread over the three nodes).
    let _: () = until_ok(Duration::from_secs(10), || {
        redis::cmd("SET").arg("f:a").arg("1").query(&mut one)
    });
    let _: () = redis::cmd("SET")
        .arg("f:b")
        .arg("2")
        .query(&mut two)
        .unwrap();
    let _: Option<String> = redis::cmd("GET").arg("f:b").query(&mut three).unwrap();
    let mut mset = redis::cmd("MSET");
    for i in 0..100 {
        mset.arg(format!("f:k{i}")).arg(i);
    }
    let _: () = mset.query(&mut one).unwrap();
    assert_eq!(state(&mut one, "f:a"), "M");
    assert_eq!(state(&mut three, "f:b"), "S");
    // FLUSHALL on node 3, which holds none of them M: every home drops what it homes.
    let _: () = redis::cmd("FLUSHALL").query(&mut three).unwrap();
    assert_eq!(state(&mut one, "f:a"), "I");
    assert_eq!(state(&mut three, "f:b"), "I");
    for con in [&mut one, &mut two, &mut three] {
        let mut mget = redis::cmd("MGET");
        mget.arg("f:a").arg("f:b");
        for i in 0..100 {
            mget.arg(format!("f:k{i}"));
        }
        let v: Vec<Option<String>> = mget.query(con).unwrap();
        assert!(
            v.iter().all(Option::is_none),
            "a key survived FLUSHALL: {v:?}"
        );
    }
    // Inside MULTI or a script a flush cannot wait for the homes: refused, and the
    // transaction aborts as a whole (its SET never runs).
    let _: () = redis::cmd("MULTI").query(&mut two).unwrap();
    let _: () = redis::cmd("SET")
        .arg("f:t")
        .arg("1")
        .query(&mut two)
        .unwrap();
    let queued: redis::RedisResult<()> = redis::cmd("FLUSHALL").query(&mut two);
    let err = queued.expect_err("FLUSHALL queued").to_string();
    assert!(err.contains("cannot run inside MULTI"), "{err}");
    let exec: redis::RedisResult<Value> = redis::cmd("EXEC").query(&mut two);
    let err = exec.expect_err("EXEC after a refused command").to_string();
    assert!(err.contains("Transaction discarded"), "{err}");
    let v: Option<String> = redis::cmd("GET").arg("f:t").query(&mut one).unwrap();
    assert_eq!(v, None);
    let script: redis::RedisResult<Value> = redis::cmd("EVAL")
        .arg("return redis.call('FLUSHDB')")
        .arg(0)
        .query(&mut two);
    let err = script.expect_err("FLUSHDB from a script").to_string();
    assert!(err.contains("cannot run inside MULTI or a script"), "{err}");
    // The cache goes on: a new write is seen everywhere.
    let _: () = redis::cmd("SET")
        .arg("f:a")
        .arg("3")
        .query(&mut two)
        .unwrap();
    for con in [&mut one, &mut three] {
        let v: Option<String> = redis::cmd("GET").arg("f:a").query(con).unwrap();
        assert_eq!(v.as_deref(), Some("3"));
    }
}
