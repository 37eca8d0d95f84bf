//! What the log benchmarks share: a lock-sized entry and the appender loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use conclave_raft_store::kv::{KvMachine, KvOp};
use conclave_raft_store::{Batch, LogId, Stamped};
use openraft::CommittedLeaderId;
use tokio::sync::oneshot;

/// An entry of the benchmarks' machine.
pub type Entry = conclave_raft_store::Entry<KvMachine>;
/// A log of the benchmarks' machine.
pub type LogStore = conclave_raft_store::LogStore<KvMachine>;

/// A small request, the size of a lock release (`orders-db` by `worker-17`).
pub fn entry(index: u64) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: conclave_raft_store::EntryPayload::Normal(Batch::from(Stamped {
            now_ms: 1_700_000_000_000 + index,
            op: KvOp::Put {
                key: b"orders-db".to_vec(),
                value: b"worker-17".to_vec(),
            },
        })),
    }
}

/// A log and the next index to append to it.
pub type Target = (Arc<LogStore>, Arc<parking_lot::Mutex<u64>>);

/// Runs `appenders` tasks until `deadline`, appender `i` on `targets[i % len]`, each
/// waiting for its entry to be durable before appending the next; returns the appends.
pub async fn run_appenders(targets: &[Target], appenders: usize, deadline: Instant) -> u64 {
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..appenders)
        .map(|i| {
            let (log, next) = targets[i % targets.len()].clone();
            let done = done.clone();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let (tx, rx) = oneshot::channel();
                    {
                        let mut n = next.lock();
                        log.append_with([entry(*n)], move |r| {
                            let _ = tx.send(r);
                        })
                        .expect("append");
                        *n += 1;
                    }
                    rx.await.expect("callback").expect("durable");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    done.load(Ordering::Relaxed)
}
