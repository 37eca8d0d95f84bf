//! Micro-benchmarks of the string keyspace: GET hit/miss, SET of a new key and
//! over an existing one, and INCR through the command layer.
//!
//! `cargo bench -p conclave-benches --bench keyspace`

use bytes::Bytes;
use conclave_cache::cmd::Command;
use conclave_cache::keyspace::{Keyspace, KeyspaceConfig, SetOptions};
use conclave_protocol::Parse;
use criterion::{black_box, criterion_group, criterion_main, Criterion};

const PRELOAD: usize = 100_000;

fn keys(prefix: &str, n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| Bytes::from(format!("{prefix}:{i:012}")))
        .collect()
}

fn keyspace(c: &mut Criterion) {
    let ks = Keyspace::new(KeyspaceConfig::default());
    let value = [b'x'; 32];
    let present = keys("key", PRELOAD);
    for k in &present {
        ks.set(k, &value, SetOptions::default())
            .expect("unbounded keyspace accepts writes");
    }
    let absent = keys("miss", PRELOAD);
    let mut group = c.benchmark_group("keyspace");

    let mut i = 0usize;
    group.bench_function("get_hit", |b| {
        b.iter(|| {
            i = (i + 1) % PRELOAD;
            black_box(ks.get(&present[i]))
        })
    });

    let mut i = 0usize;
    group.bench_function("get_miss", |b| {
        b.iter(|| {
            i = (i + 1) % PRELOAD;
            black_box(ks.get(&absent[i]))
        })
    });

    let mut n = 0u64;
    group.bench_function("set_new", |b| {
        b.iter(|| {
            n += 1;
            let mut key = [0u8; 12];
            key[..4].copy_from_slice(b"new:");
            key[4..].copy_from_slice(&n.to_le_bytes());
            black_box(ks.set(&key, &value, SetOptions::default()))
        })
    });

    let mut i = 0usize;
    group.bench_function("set_overwrite", |b| {
        b.iter(|| {
            i = (i + 1) % PRELOAD;
            black_box(ks.set(&present[i], &value, SetOptions::default()))
        })
    });

    let incr = vec![Bytes::from_static(b"INCR"), Bytes::from_static(b"counter")];
    group.bench_function("incr", |b| {
        b.iter(|| {
            let mut parse = Parse::new(incr.clone());
            match Command::from_parse(&mut parse) {
                Some(Ok(cmd)) => black_box(cmd.apply(&ks)),
                _ => unreachable!("INCR parses"),
            }
        })
    });
    group.finish();
}

criterion_group!(benches, keyspace);
criterion_main!(benches);
