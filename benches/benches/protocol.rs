//! Criterion micro-benchmarks of the RESP request decoder and the reply encoder.

use bytes::{Bytes, BytesMut};
use conclave_protocol::codec::{decode_request, Limits};
use conclave_protocol::frame::{Frame, Protocol};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn set_request(value_len: usize) -> Vec<u8> {
    let value = "v".repeat(value_len);
    format!(
        "*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000042\r\n${}\r\n{}\r\n",
        value.len(),
        value
    )
    .into_bytes()
}

fn decode(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("decode");
    for (name, wire) in [
        (
            "get",
            b"*2\r\n$3\r\nGET\r\n$16\r\nkey:000000000042\r\n".to_vec(),
        ),
        ("set_32b", set_request(32)),
        ("set_4kb", set_request(4096)),
        ("inline_ping", b"PING\r\n".to_vec()),
    ] {
        group.throughput(Throughput::Elements(1));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut buf = BytesMut::from(&wire[..]);
                black_box(decode_request(&mut buf, &limits).ok().flatten())
            })
        });
    }
    // A pipeline of 16 GETs in one buffer, as redis-benchmark -P 16 sends them.
    let one = b"*2\r\n$3\r\nGET\r\n$16\r\nkey:000000000042\r\n";
    let pipeline: Vec<u8> = one.iter().copied().cycle().take(one.len() * 16).collect();
    group.throughput(Throughput::Elements(16));
    group.bench_function("pipeline_16_get", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&pipeline[..]);
            let mut n = 0;
            while let Ok(Some(args)) = decode_request(&mut buf, &limits) {
                n += args.len();
            }
            black_box(n)
        })
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    let bulk = Frame::Bulk(Bytes::from(vec![b'x'; 32]));
    let map = Frame::Map(vec![
        (Frame::bulk_static("hits"), Frame::Integer(123_456)),
        (Frame::bulk_static("misses"), Frame::Integer(789)),
        (Frame::bulk_static("hit_rate"), Frame::Double(0.99)),
    ]);
    for (name, frame) in [
        ("ok", Frame::ok()),
        ("integer", Frame::Integer(1_234_567)),
        ("bulk_32b", bulk),
        ("map_resp3", map),
    ] {
        group.bench_function(name, |b| {
            let mut out = BytesMut::with_capacity(4096);
            b.iter(|| {
                out.clear();
                black_box(&frame).encode(Protocol::Resp3, &mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
