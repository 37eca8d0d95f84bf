//! Keyspace tests: expiry, eviction, SCAN's guarantee, accounting, concurrency,
//! and a model-based property test.
//!
//! Why this file is long: test tables.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::cmd::Command;
use conclave_protocol::parse::Parse;
use conclave_protocol::Frame;

const T0: u64 = 1_700_000_000_000;

fn manual(config: KeyspaceConfig) -> (Keyspace, ManualClock) {
    let clock = ManualClock::new(T0);
    (
        Keyspace::with_clock(config, Clock::Manual(clock.clone())),
        clock,
    )
}

fn run(ks: &Keyspace, args: &[&[u8]]) -> Frame {
    let mut parse = Parse::new(args.iter().map(|a| Bytes::copy_from_slice(a)).collect());
    match Command::from_parse(&mut parse) {
        Some(Ok(cmd)) => cmd.apply(ks),
        Some(Err(e)) => e.to_frame(),
        None => Frame::error("ERR unknown"),
    }
}

fn plain_set(ks: &Keyspace, key: &[u8], value: &[u8]) {
    ks.set(key, value, SetOptions::default()).unwrap();
}

impl Keyspace {
    /// Recomputes the accounted memory from scratch and checks every shard's
    /// internal consistency.
    fn audit(&self) -> u64 {
        let mut total = 0;
        for shard in self.shards.iter() {
            let data = shard.data.read();
            data.check_invariants();
            assert_eq!(shard.len.load(Relaxed), data.len());
            assert_eq!(shard.volatile_len.load(Relaxed), data.volatile.len());
            total += data.bytes();
        }
        assert_eq!(total, self.used_bytes());
        total
    }
}

#[test]
fn policy_names_round_trip() {
    for p in [
        EvictionPolicy::AllKeysLru,
        EvictionPolicy::NoEviction,
        EvictionPolicy::VolatileLru,
        EvictionPolicy::AllKeysRandom,
    ] {
        assert_eq!(p.to_string().parse::<EvictionPolicy>(), Ok(p));
    }
    assert_eq!("ALLKEYS-LRU".parse(), Ok(EvictionPolicy::AllKeysLru));
    assert!("lfu".parse::<EvictionPolicy>().is_err());
    let ks = Keyspace::new(KeyspaceConfig::default());
    assert_eq!(ks.policy(), EvictionPolicy::AllKeysLru);
    ks.set_policy(EvictionPolicy::NoEviction);
    assert_eq!(ks.policy(), EvictionPolicy::NoEviction);
    ks.set_maxmemory(123);
    assert_eq!(ks.maxmemory(), 123);
}

#[test]
fn keyspace_is_send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Keyspace>();
}

#[test]
fn lazy_expiry_on_access() {
    let (ks, clock) = manual(KeyspaceConfig::default());
    for i in 0..10 {
        let key = format!("k{i}");
        ks.set(
            key.as_bytes(),
            b"v",
            SetOptions {
                expire: SetExpire::At(T0 + 100),
                ..SetOptions::default()
            },
        )
        .unwrap();
    }
    assert_eq!(ks.volatile_len(), 10);
    clock.advance(100);
    assert_eq!(ks.len(), 10, "nothing removed before an access");
    assert_eq!(ks.get(b"k0"), None);
    assert!(!ks.exists(b"k1"));
    assert_eq!(ks.ttl(b"k2"), KeyTtl::Missing);
    assert!(!ks.remove(b"k3"));
    assert_eq!(ks.len(), 6);
    assert_eq!(ks.stats().expired, 4);
    ks.audit();
}

#[test]
fn active_expiry_removes_only_expired_keys() {
    let (ks, clock) = manual(KeyspaceConfig::default());
    for i in 0..5000 {
        let key = format!("v{i}");
        let at = if i % 2 == 0 {
            T0 + 1000
        } else {
            T0 + 1_000_000
        };
        ks.set(
            key.as_bytes(),
            b"x",
            SetOptions {
                expire: SetExpire::At(at),
                ..SetOptions::default()
            },
        )
        .unwrap();
        plain_set(&ks, format!("p{i}").as_bytes(), b"x");
    }
    assert_eq!(ks.active_expire_cycle(Duration::from_secs(1)), 0);
    clock.advance(1000);
    let mut removed = 0;
    for _ in 0..1000 {
        removed += ks.active_expire_cycle(Duration::from_secs(1));
        if removed == 2500 {
            break;
        }
    }
    assert_eq!(removed, 2500);
    assert_eq!(ks.len(), 7500);
    assert_eq!(ks.volatile_len(), 2500);
    assert_eq!(ks.stats().expired, 2500);
    ks.audit();
}

#[test]
fn active_expiry_respects_a_zero_budget() {
    let (ks, clock) = manual(KeyspaceConfig::default());
    for i in 0..100 {
        ks.set(
            format!("k{i}").as_bytes(),
            b"x",
            SetOptions {
                expire: SetExpire::At(T0 + 1),
                ..SetOptions::default()
            },
        )
        .unwrap();
    }
    clock.advance(5);
    // A zero budget still makes progress on at least one shard, never panics.
    let n = ks.active_expire_cycle(Duration::ZERO);
    assert!(n >= 1);
}

#[test]
fn eviction_keeps_memory_bounded() {
    let (ks, _) = manual(KeyspaceConfig::default());
    let max = 2 << 20;
    ks.set_maxmemory(max);
    let value = [b'x'; 32];
    for i in 0..100_000u32 {
        ks.set(
            format!("key:{i:012}").as_bytes(),
            &value,
            SetOptions::default(),
        )
        .unwrap();
        // Bounded by the limit plus the last write, which may also have doubled
        // one shard's vector and index.
        assert!(
            ks.used_bytes() <= max + 16 * 1024,
            "used {} at {i}",
            ks.used_bytes()
        );
    }
    let stats = ks.stats();
    assert!(stats.evictions > 50_000, "{stats:?}");
    assert!(ks.len() < 100_000);
    assert_eq!(stats.keys + stats.evictions, 100_000);
    ks.audit();
}

#[test]
fn eviction_prefers_idle_keys() {
    let (ks, clock) = manual(KeyspaceConfig::default());
    for i in 0..2000 {
        plain_set(&ks, format!("old:{i}").as_bytes(), &[b'v'; 32]);
    }
    clock.advance(60_000);
    for i in 0..100 {
        assert!(ks.get(format!("old:{i}").as_bytes()).is_some());
    }
    clock.advance(1_000);
    ks.set_maxmemory(ks.used_bytes());
    for i in 0..500 {
        plain_set(&ks, format!("new:{i}").as_bytes(), &[b'v'; 32]);
    }
    assert!(ks.stats().evictions >= 400, "{:?}", ks.stats());
    let survivors = (0..100)
        .filter(|i| ks.exists(format!("old:{i}").as_bytes()))
        .count();
    assert!(
        survivors >= 90,
        "only {survivors} of 100 recently read keys survived"
    );
    let new_survivors = (0..500)
        .filter(|i| ks.exists(format!("new:{i}").as_bytes()))
        .count();
    assert!(new_survivors >= 450, "{new_survivors}");
}

#[test]
fn volatile_lru_evicts_only_volatile_keys() {
    let (ks, _) = manual(KeyspaceConfig {
        maxmemory: 0,
        policy: EvictionPolicy::VolatileLru,
    });
    for i in 0..200 {
        plain_set(&ks, format!("p{i}").as_bytes(), b"x");
        ks.set(
            format!("v{i}").as_bytes(),
            b"x",
            SetOptions {
                expire: SetExpire::At(T0 + 1_000_000),
                ..SetOptions::default()
            },
        )
        .unwrap();
    }
    ks.set_maxmemory(ks.used_bytes() - 1);
    plain_set(&ks, b"trigger", b"x");
    assert!(ks.stats().evictions >= 1);
    assert!((0..200).all(|i| ks.exists(format!("p{i}").as_bytes())));
    // With no volatile keys left to evict, writes fail.
    ks.set_maxmemory(1);
    assert_eq!(
        ks.set(b"more", b"x", SetOptions::default()),
        Err(WriteError::OutOfMemory)
    );
    assert_eq!(ks.volatile_len(), 0);
}

#[test]
fn allkeys_random_evicts() {
    let (ks, _) = manual(KeyspaceConfig {
        maxmemory: 64 * 1024,
        policy: EvictionPolicy::AllKeysRandom,
    });
    for i in 0..5000 {
        plain_set(&ks, format!("k{i}").as_bytes(), &[0; 32]);
    }
    assert!(ks.stats().evictions > 0);
    assert!(ks.used_bytes() <= 64 * 1024 + 16 * 1024);
}

#[test]
fn scan_returns_every_stable_key_despite_concurrent_deletes() {
    let ks = Arc::new(Keyspace::new(KeyspaceConfig::default()));
    for round in 0..3 {
        ks.flush();
        let stable: HashSet<Vec<u8>> = (0..20_000)
            .map(|i| format!("keep:{i}").into_bytes())
            .collect();
        for k in &stable {
            plain_set(&ks, k, b"x");
        }
        for i in 0..20_000 {
            plain_set(&ks, format!("del:{i}").as_bytes(), b"x");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let churn = {
            let (ks, stop) = (ks.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    ks.remove(format!("del:{}", i % 20_000).as_bytes());
                    plain_set(&ks, format!("new:{round}:{i}").as_bytes(), b"y");
                    i += 1;
                }
            })
        };
        let mut seen = HashSet::new();
        let mut cursor = 0;
        loop {
            let (next, keys) = ks.scan(cursor, 50, None);
            seen.extend(keys.into_iter().map(|k| k.to_vec()));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        stop.store(true, Ordering::Relaxed);
        churn.join().unwrap();
        let missing = stable.iter().filter(|k| !seen.contains(*k)).count();
        assert_eq!(
            missing, 0,
            "round {round}: {missing} stable keys never returned"
        );
    }
}

#[test]
fn scan_with_pattern_and_empty_keyspace() {
    let ks = Keyspace::new(KeyspaceConfig::default());
    assert_eq!(ks.scan(0, 10, None), (0, vec![]));
    for i in 0..1000 {
        plain_set(&ks, format!("user:{i}").as_bytes(), b"x");
        plain_set(&ks, format!("item:{i}").as_bytes(), b"x");
    }
    let mut cursor = 0;
    let mut found = HashSet::new();
    loop {
        let (next, keys) = ks.scan(cursor, 100, Some(b"user:1*"));
        found.extend(keys);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(found.len(), 111); // 1, 10-19, 100-199
    assert_eq!(ks.keys(b"item:99?").len(), 10);
}

#[test]
fn accounting_matches_a_full_recount() {
    let (ks, clock) = manual(KeyspaceConfig::default());
    for i in 0..3000 {
        let key = format!("k{i}");
        plain_set(&ks, key.as_bytes(), &vec![b'v'; i % 300]);
        if i % 7 == 0 {
            ks.expire(key.as_bytes(), (T0 + 50) as i64, ExpireCondition::Always);
        }
    }
    ks.audit();
    for i in (0..3000).step_by(3) {
        ks.remove(format!("k{i}").as_bytes());
    }
    ks.audit();
    clock.advance(100);
    ks.active_expire_cycle(Duration::from_secs(1));
    ks.audit();
    for i in 0..3000 {
        let key = format!("k{i}");
        let _ = ks.modify(key.as_bytes(), |v| {
            let mut v = v.unwrap_or_default().to_vec();
            v.extend_from_slice(b"more");
            Modify::Put(v, ())
        });
    }
    let used = ks.audit();
    assert!(used > 3000 * (32 + 32));
    for i in 0..3000 {
        ks.remove(format!("k{i}").as_bytes());
    }
    ks.audit();
    assert!(ks.is_empty());
    ks.flush();
    assert_eq!(ks.used_bytes(), 0);
}

#[test]
fn stats_count_hits_and_misses() {
    let ks = Keyspace::new(KeyspaceConfig::default());
    plain_set(&ks, b"a", b"1");
    ks.get(b"a");
    ks.get(b"a");
    ks.get(b"b");
    let s = ks.stats();
    assert_eq!((s.hits, s.misses, s.keys), (2, 1, 1));
    assert!((s.hit_rate() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(KeyspaceStats::default().hit_rate(), 0.0);
}

#[test]
fn concurrent_increments_are_atomic() {
    let ks = Arc::new(Keyspace::new(KeyspaceConfig::default()));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let ks = ks.clone();
            std::thread::spawn(move || {
                for _ in 0..2000 {
                    run(&ks, &[b"INCR", b"counter"]);
                    run(&ks, &[b"MSET", b"a", b"1", b"b", b"2"]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ks.get(b"counter").as_deref(), Some(&b"8000"[..]));
    ks.audit();
}

/// One step of the model test.
#[derive(Debug, Clone)]
enum Op {
    Get(u8),
    Set(u8, Vec<u8>),
    Del(u8),
    Incr(u8),
    Append(u8, Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..8;
    let value = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        (-1000i64..1000).prop_map(|n| n.to_string().into_bytes()),
    ];
    prop_oneof![
        key.clone().prop_map(Op::Get),
        (key.clone(), value.clone()).prop_map(|(k, v)| Op::Set(k, v)),
        key.clone().prop_map(Op::Del),
        key.clone().prop_map(Op::Incr),
        (key, value).prop_map(|(k, v)| Op::Append(k, v)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn behaves_like_a_hashmap(ops in proptest::collection::vec(op(), 1..200)) {
        let ks = Keyspace::new(KeyspaceConfig::default());
        let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        for op in ops {
            let (reply, expected) = match op {
                Op::Get(k) => {
                    let key = [b'k', k];
                    (run(&ks, &[b"GET", &key]),
                     model.get(&key[..]).map_or(Frame::Null, |v| Frame::bulk_from(v)))
                }
                Op::Set(k, v) => {
                    let key = [b'k', k];
                    model.insert(key.to_vec(), v.clone());
                    (run(&ks, &[b"SET", &key, &v]), Frame::ok())
                }
                Op::Del(k) => {
                    let key = [b'k', k];
                    let existed = model.remove(&key[..]).is_some();
                    (run(&ks, &[b"DEL", &key]), Frame::Integer(i64::from(existed)))
                }
                Op::Incr(k) => {
                    let key = [b'k', k];
                    let current = model.get(&key[..]).cloned().unwrap_or_else(|| b"0".to_vec());
                    let expected = match conclave_protocol::parse::parse_i64(&current).and_then(|n| n.checked_add(1)) {
                        Some(n) => {
                            model.insert(key.to_vec(), n.to_string().into_bytes());
                            Frame::Integer(n)
                        }
                        None => Frame::error("ERR value is not an integer or out of range"),
                    };
                    (run(&ks, &[b"INCR", &key]), expected)
                }
                Op::Append(k, v) => {
                    let key = [b'k', k];
                    let entry = model.entry(key.to_vec()).or_default();
                    entry.extend_from_slice(&v);
                    let len = entry.len() as i64;
                    (run(&ks, &[b"APPEND", &key, &v]), Frame::Integer(len))
                }
            };
            prop_assert_eq!(reply, expected);
        }
        prop_assert_eq!(ks.len(), model.len());
        let mut keys: Vec<Vec<u8>> = ks.keys(b"*").into_iter().map(|k| k.to_vec()).collect();
        keys.sort();
        let mut model_keys: Vec<Vec<u8>> = model.keys().cloned().collect();
        model_keys.sort();
        prop_assert_eq!(keys, model_keys);
        ks.audit();
    }
}

/// Memory report: `cargo test --release -p conclave-cache -- --ignored memory_report --nocapture`.
#[test]
#[ignore]
fn memory_report() {
    fn rss_kb() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(0)
    }
    let before = rss_kb();
    let ks = Keyspace::new(KeyspaceConfig::default());
    let value = [b'x'; 32];
    let started = std::time::Instant::now();
    for i in 0..1_000_000u64 {
        let key = format!("key:{i:012}");
        ks.set(key.as_bytes(), &value, SetOptions::default())
            .unwrap();
    }
    let elapsed = started.elapsed();
    let after = rss_kb();
    let n = ks.len() as u64;
    println!(
        "keys={n} used_bytes={} ({:.1} B/key) rss_delta={} KiB ({:.1} B/key) load={:?}",
        ks.used_bytes(),
        ks.used_bytes() as f64 / n as f64,
        after - before,
        (after - before) as f64 * 1024.0 / n as f64,
        elapsed
    );
}

/// `WATCH`: every kind of change to the watched key sets the flag; reads, changes to
/// other keys and no-op TTL changes do not.
#[test]
fn watches_see_every_change_to_their_key_and_nothing_else() {
    type Change = fn(&Keyspace, &ManualClock);
    let cases: &[(&str, Change, bool)] = &[
        ("get", |ks, _| drop(run(ks, &[b"GET", b"k"])), false),
        ("other key", |ks, _| plain_set(ks, b"other", b"v"), false),
        ("set", |ks, _| plain_set(ks, b"k", b"v2"), true),
        (
            "incr",
            |ks, _| drop(run(ks, &[b"APPEND", b"k", b"x"])),
            true,
        ),
        ("del", |ks, _| drop(run(ks, &[b"DEL", b"k"])), true),
        (
            "expire",
            |ks, _| drop(run(ks, &[b"EXPIRE", b"k", b"100"])),
            true,
        ),
        (
            "persist without ttl",
            |ks, _| drop(run(ks, &[b"PERSIST", b"k"])),
            false,
        ),
        ("flushall", |ks, _| ks.flush(), true),
        (
            "rename away",
            |ks, _| drop(run(ks, &[b"RENAME", b"k", b"k2"])),
            true,
        ),
        (
            "expiry",
            |ks, clock| {
                drop(run(ks, &[b"PEXPIRE", b"k", b"10"]));
                clock.advance(20);
                drop(run(ks, &[b"GET", b"k"]));
            },
            true,
        ),
    ];
    for (name, change, expect) in cases {
        let (ks, clock) = manual(KeyspaceConfig::default());
        plain_set(&ks, b"k", b"v");
        let flag: WatchFlag = Arc::default();
        ks.watch(b"k", &flag);
        change(&ks, &clock);
        assert_eq!(flag.load(Ordering::Relaxed), *expect, "{name}");
        ks.unwatch(b"k", &flag);
        flag.store(false, Ordering::Relaxed);
        plain_set(&ks, b"k", b"v3");
        assert!(!flag.load(Ordering::Relaxed), "{name}: unwatched");
    }
}

/// Creating a watched key that did not exist is a change; flushing a keyspace where
/// the watched key does not exist is not (Redis's `touchAllWatchedKeysInDb`).
#[test]
fn watching_a_missing_key() {
    let (ks, _) = manual(KeyspaceConfig::default());
    let flag: WatchFlag = Arc::default();
    ks.watch(b"new", &flag);
    ks.flush();
    assert!(!flag.load(Ordering::Relaxed));
    plain_set(&ks, b"new", b"v");
    assert!(flag.load(Ordering::Relaxed));
}

#[test]
fn patch_grows_in_place_and_keeps_ttl() {
    let (ks, _) = manual(KeyspaceConfig::default());
    let len = ks.patch(b"bits", 3, |v| v.len()).unwrap();
    assert_eq!(len, 3);
    assert_eq!(ks.get(b"bits").unwrap(), &b"\0\0\0"[..]);
    ks.set(b"s", b"ab", SetOptions::default()).unwrap();
    assert!(ks.expire(b"s", (T0 + 5000) as i64, ExpireCondition::Always));
    ks.patch(b"s", 4, |v| v[3] = b'z').unwrap();
    assert_eq!(ks.get(b"s").unwrap(), &b"ab\0z"[..]);
    assert_eq!(ks.ttl(b"s"), KeyTtl::ExpiresAt(T0 + 5000));
    ks.patch(b"s", 1, |v| v[0] = b'A').unwrap();
    assert_eq!(ks.get(b"s").unwrap(), &b"Ab\0z"[..]);
    assert_eq!(ks.object(b"s").unwrap().encoding, "raw");
    ks.audit();
}

#[test]
fn lock_keys_reads_and_writes_together() {
    let (ks, clock) = manual(KeyspaceConfig::default());
    plain_set(&ks, b"a", b"1");
    ks.set(
        b"gone",
        b"x",
        SetOptions {
            expire: SetExpire::At(T0 + 10),
            ..SetOptions::default()
        },
    )
    .unwrap();
    clock.advance(20);
    {
        let mut locks = ks.lock_keys(&[b"a", b"b", b"gone", b"a"], true).unwrap();
        assert_eq!(locks.get(b"a", true).unwrap(), &b"1"[..]);
        assert_eq!(
            locks.get(b"gone", true),
            None,
            "expired keys read as missing"
        );
        assert!(locks.put(b"b", b"two", Encoding::Raw, Some(T0 + 1000)));
        assert_eq!(locks.expire_at(b"b"), Some(T0 + 1000));
        assert_eq!(locks.encoding(b"b"), Some(Encoding::Raw));
        assert!(locks.remove(b"a"));
        assert!(!locks.exists(b"a"));
    }
    assert_eq!(ks.get(b"b").unwrap(), &b"two"[..]);
    assert!(!ks.exists(b"a"));
    ks.audit();
}

#[test]
fn object_encodings_follow_the_write_path() {
    let (ks, _) = manual(KeyspaceConfig::default());
    let enc = |k: &[u8]| ks.object(k).map(|o| o.encoding);
    plain_set(&ks, b"int", b"12345");
    plain_set(&ks, b"small", b"12");
    plain_set(&ks, b"emb", b"hello");
    plain_set(&ks, b"raw", &[b'x'; 45]);
    plain_set(&ks, b"neg0", b"-0");
    assert_eq!(enc(b"int"), Some("int"));
    assert_eq!(enc(b"emb"), Some("embstr"));
    assert_eq!(enc(b"raw"), Some("raw"));
    assert_eq!(enc(b"neg0"), Some("embstr"));
    assert_eq!(enc(b"none"), None);
    assert_eq!(ks.object(b"small").unwrap().refcount, i64::from(i32::MAX));
    assert_eq!(ks.object(b"int").unwrap().refcount, 1);
    ks.set_maxmemory(1 << 30);
    assert_eq!(
        ks.object(b"small").unwrap().refcount,
        1,
        "no sharing under LRU"
    );
    ks.modify(b"f", |_| {
        Modify::PutAs(b"3".to_vec(), Encoding::Embedded, ())
    })
    .unwrap();
    assert_eq!(enc(b"f"), Some("embstr"));
    assert_eq!(Encoding::Compact.duplicate(b"7"), Encoding::OwnedInt);
    assert_eq!(Encoding::OwnedInt.refcount(b"7", true), 1);
}

#[test]
fn object_idle_time_is_not_refreshed_by_object() {
    let (ks, clock) = manual(KeyspaceConfig::default());
    plain_set(&ks, b"k", b"v");
    clock.advance(3_000);
    assert_eq!(ks.object(b"k").unwrap().idle_ms, 3_000);
    clock.advance(2_000);
    assert_eq!(ks.object(b"k").unwrap().idle_ms, 5_000);
    ks.get(b"k");
    assert_eq!(ks.object(b"k").unwrap().idle_ms, 0);
}

#[test]
fn random_key_skips_and_deletes_expired_keys() {
    let (ks, clock) = manual(KeyspaceConfig::default());
    assert_eq!(ks.random_key(), None);
    for i in 0..50 {
        ks.set(
            format!("dying{i}").as_bytes(),
            b"x",
            SetOptions {
                expire: SetExpire::At(T0 + 10),
                ..SetOptions::default()
            },
        )
        .unwrap();
    }
    plain_set(&ks, b"live", b"v");
    clock.advance(20);
    for _ in 0..20 {
        assert_eq!(ks.random_key().unwrap(), &b"live"[..]);
    }
    ks.remove(b"live");
    assert_eq!(ks.random_key(), None);
    assert_eq!(ks.len(), 0, "expired keys met on the way were deleted");
}

/// An in-place edit (`SETBIT`, `SETRANGE`) is a change the watchers of the key see.
#[test]
fn patch_touches_watchers() {
    let (ks, _) = manual(KeyspaceConfig::default());
    plain_set(&ks, b"bits", b"\0");
    let flag: WatchFlag = Arc::default();
    ks.watch(b"bits", &flag);
    ks.patch(b"bits", 1, |v| v[0] = 1).unwrap();
    assert!(flag.load(Ordering::Relaxed));
}

#[test]
fn paused_expiry_keeps_expired_keys_until_resumed() {
    let (ks, clock) = manual(KeyspaceConfig::default());
    plain_set(&ks, b"k", b"v");
    assert!(ks.expire(b"k", (T0 + 10) as i64, ExpireCondition::Always));
    ks.pause_expiry(T0 + 60_000);
    clock.advance(20);
    // Reads see it gone, but nothing deletes it.
    assert_eq!(ks.get(b"k"), None);
    assert_eq!(ks.active_expire_cycle(Duration::from_millis(5)), 0);
    assert_eq!(ks.len(), 1);
    assert_eq!(ks.stats().expired, 0);
    // A write still replaces it.
    plain_set(&ks, b"w", b"1");
    assert!(ks.expire(b"w", (T0 + 25) as i64, ExpireCondition::Always));
    clock.advance(10);
    plain_set(&ks, b"w", b"2");
    assert_eq!(ks.get(b"w").as_deref(), Some(&b"2"[..]));
    ks.resume_expiry();
    assert_eq!(ks.get(b"k"), None);
    assert_eq!(ks.len(), 1);
    assert_eq!(ks.stats().expired, 2);
}
