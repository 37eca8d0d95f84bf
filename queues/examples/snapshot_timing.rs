//! How long a queue shard's snapshot takes with a million messages retained, and how
//! fast the machine applies pushes, reads and acks (in memory, no Raft, no disk).
//!
//! `cargo run --release -p conclave-queues --example snapshot_timing [messages] [payload-bytes]`
//!
//! Builds one shard retaining `messages` messages (default 1,000,000 of 100 bytes) over
//! 4 topics, each with one consumer group that has acknowledged a tenth of what was
//! pushed and holds another tenth pending; then times postcard encoding and decoding of
//! the whole state (what a Raft snapshot costs) and checks the copy equals the original.

use std::time::Instant;

use bytes::Bytes;
use conclave_queues::{QueueBatch, QueueConfig, QueueOp, QueueReply, QueueRequest, QueueState};

const TOPICS: usize = 4;
const BATCH: usize = 512;

fn main() {
    let mut args = std::env::args().skip(1);
    let messages: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let payload = Bytes::from(vec![b'x'; size]);
    let topic = |i: usize| Bytes::from(format!("topic-{}", i % TOPICS));
    let mut state = QueueState::new(QueueConfig::default());
    let mut now = 1_700_000_000_000u64;

    // Groups first, so every message counts them.
    for t in 0..TOPICS {
        let req = QueueRequest {
            now_ms: now,
            op: QueueOp::GroupCreate {
                topic: topic(t),
                group: Bytes::from_static(b"workers"),
                from: conclave_queues::StartFrom::Oldest,
            },
        };
        state.apply(&req);
    }

    // A tenth of what is pushed gets acknowledged (and removed) below.
    let pushes = messages / 9 * 10;
    let start = Instant::now();
    let mut batch = QueueBatch::default();
    for i in 0..pushes {
        batch.requests.push(QueueRequest {
            now_ms: now,
            op: QueueOp::Push {
                topic: topic(i),
                payload: payload.clone(),
                dedup: None,
                delay_ms: 0,
            },
        });
        if batch.requests.len() == BATCH {
            state.apply_batch(&batch);
            batch.requests.clear();
            now += 1;
        }
    }
    state.apply_batch(&batch);
    let push_s = start.elapsed().as_secs_f64();

    // Each group reads a fifth of its messages and acknowledges half of those.
    let start = Instant::now();
    let (mut read, mut acked) = (0usize, 0u64);
    for t in 0..TOPICS {
        let per_topic = pushes / TOPICS / 5;
        let mut left = per_topic;
        while left > 0 {
            let count = left.min(100);
            left -= count;
            let reply = state.apply(&QueueRequest {
                now_ms: now,
                op: QueueOp::Read {
                    topic: topic(t),
                    group: Bytes::from_static(b"workers"),
                    consumer: Bytes::from(format!("c{}", left % 16)),
                    count: count as u64,
                    visibility_ms: Some(3_600_000),
                    block_ms: None,
                    rid: 0,
                    origin: 1,
                },
            });
            let QueueReply::Messages(msgs) = reply.reply else {
                panic!("read");
            };
            read += msgs.len();
            let ids = msgs.iter().step_by(2).map(|m| m.id).collect();
            let reply = state.apply(&QueueRequest {
                now_ms: now,
                op: QueueOp::Ack {
                    topic: topic(t),
                    group: Bytes::from_static(b"workers"),
                    ids,
                },
            });
            if let QueueReply::Count(n) = reply.reply {
                acked += n;
            }
        }
    }
    let read_s = start.elapsed().as_secs_f64();
    let stats = state.stats();

    // A clone (payloads are refcounted) lets a snapshot be encoded off the apply path.
    let start = Instant::now();
    let cloned = state.clone();
    let clone_s = start.elapsed().as_secs_f64();
    drop(cloned);

    let start = Instant::now();
    let bytes = postcard::to_stdvec(&state).expect("encode");
    let encode_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let copy: QueueState = postcard::from_bytes(&bytes).expect("decode");
    let decode_s = start.elapsed().as_secs_f64();
    assert!(copy == state, "the decoded snapshot differs");

    println!(
        "{} messages of {size} B retained over {TOPICS} topics, {} pending",
        stats.messages, stats.pending
    );
    println!(
        "apply: {:.2} M pushes/s (batches of {BATCH}); {read} reads + {acked} acks in {:.3} s ({:.2} M msgs/s)",
        pushes as f64 / push_s / 1e6,
        read_s,
        (read as f64 + acked as f64) / read_s / 1e6
    );
    println!(
        "snapshot: {:.1} MB; clone {:.0} ms, postcard encode {:.0} ms, decode (with index rebuild) {:.0} ms",
        bytes.len() as f64 / 1e6,
        clone_s * 1e3,
        encode_s * 1e3,
        decode_s * 1e3
    );
}
