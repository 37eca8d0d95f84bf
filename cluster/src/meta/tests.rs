//! The meta group of three nodes in one process, over the real cluster channel on
//! 127.0.0.1 (each node: its own log engine, peer clients, router and listener): writes
//! from any node run on the leader (followers forward them), the shard count recorded
//! once wins for every proposer, the ring is published through the watch, and a node
//! that stops answering leaves the ring under a new epoch. Deadlines only bound
//! liveness; nothing asserts on speed.

use std::sync::Arc;
use std::time::Duration;

use conclave_raft_store::{open_engine, StoreOptions, META_GROUP};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{Meta, MetaConfig, Ring, SERVICE};
use crate::group_stats::GroupStats;
use crate::{peer_listener, GroupConfig, HostedGroup, Peers, Router};

const NODE_TIMEOUT: Duration = Duration::from_millis(400);
const BOUND: Duration = Duration::from_secs(30);

struct TestNode {
    meta: Arc<Meta>,
    stop: watch::Sender<bool>,
}

async fn cluster(dir: &std::path::Path) -> Vec<TestNode> {
    let mut listeners = Vec::new();
    let mut members = Vec::new();
    for id in 1..=3u64 {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        members.push((id, l.local_addr().expect("addr").to_string()));
        listeners.push(l);
    }
    let mut nodes = Vec::new();
    for (listener, (id, _)) in listeners.into_iter().zip(members.clone()) {
        let data_dir = dir.join(format!("node-{id}"));
        std::fs::create_dir_all(&data_dir).expect("dir");
        let engine = open_engine(&data_dir, &StoreOptions::default()).expect("engine");
        let peers = Arc::new(Peers::new(id, None, format!("127.0.0.1:{}", 7000 + id)));
        let config = GroupConfig {
            node_id: id,
            group: META_GROUP,
            data_dir,
            members: members.clone(),
            heartbeat_ms: 50,
            election_timeout_ms: 200,
            snapshot_every: 1000,
        };
        let meta = Meta::start(
            &config,
            &engine,
            peers,
            Arc::new(GroupStats::new(META_GROUP)),
            MetaConfig {
                no_leader_wait: Duration::from_secs(5),
                node_timeout: NODE_TIMEOUT,
                client_addr: format!("127.0.0.1:{}", 7000 + id),
            },
        )
        .await
        .expect("start");
        let router = Arc::new(Router::new());
        router.add_group(meta.group().clone());
        router.add_service(SERVICE, meta.clone());
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(peer_listener::run(listener, router, None, stopped));
        nodes.push(TestNode { meta, stop });
    }
    nodes
}

/// Waits until the node's ring watch satisfies `ok`.
async fn ring_where(meta: &Meta, ok: impl Fn(&Ring) -> bool) -> Ring {
    let mut rx = meta.watch_ring();
    let found = tokio::time::timeout(BOUND, async {
        loop {
            let ring = rx.borrow_and_update().clone();
            if ok(&ring) {
                return ring;
            }
            if rx.changed().await.is_err() {
                panic!("the ring watch ended");
            }
        }
    })
    .await;
    found.expect("the ring did not get there in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_forward_to_the_leader_and_a_silent_node_leaves_the_ring() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = cluster(dir.path()).await;

    // Every node proposes its own count at once; followers forward. One wins everywhere.
    let proposals = nodes.iter().zip([8u32, 16, 32]).map(|(n, count)| {
        let meta = n.meta.clone();
        tokio::spawn(async move { meta.record_queue_shards(count).await })
    });
    let mut answers = Vec::new();
    for p in proposals {
        answers.push(p.await.expect("task").expect("recorded"));
    }
    assert!(answers.iter().all(|&a| a == answers[0]), "{answers:?}");
    assert!([8, 16, 32].contains(&answers[0]));
    // Asked again with another count: the recorded one.
    assert_eq!(nodes[2].meta.record_queue_shards(99).await, Ok(answers[0]));
    for n in &nodes {
        let deadline = tokio::time::Instant::now() + BOUND;
        while n.meta.queue_shards() != Some(answers[0]) {
            assert!(tokio::time::Instant::now() < deadline, "not applied");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // The ring: all three, on every node, with the addresses each announced.
    let mut epoch = 0;
    for n in &nodes {
        epoch = ring_where(&n.meta, |r| r.members == [1, 2, 3]).await.epoch;
    }
    // Read linearizably through the leader from any node: the same ring, never older
    // than what the node applied.
    for n in &nodes {
        let confirmed = n.meta.confirm_ring(BOUND).await.expect("confirm");
        assert_eq!(confirmed.members, [1, 2, 3]);
        assert!(confirmed.epoch >= epoch);
    }
    for n in &nodes {
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            let members = n.meta.members();
            let announced = members.len() == 3
                && members
                    .iter()
                    .all(|m| m.voter && m.client_addr == format!("127.0.0.1:{}", 7000 + m.id));
            if announced {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{members:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // Node 3 stops answering (its Raft node and its listener stop): the others see it
    // leave the ring under a newer epoch.
    let _ = nodes[2].stop.send(true);
    nodes[2].meta.group().shutdown().await.expect("shutdown");
    for n in &nodes[..2] {
        let ring = ring_where(&n.meta, |r| r.members == [1, 2]).await;
        assert!(ring.epoch > epoch, "{ring:?} after epoch {epoch}");
        let confirmed = n.meta.confirm_ring(BOUND).await.expect("confirm");
        assert!(
            confirmed.epoch >= ring.epoch,
            "{confirmed:?} below {ring:?}"
        );
    }
    for n in &nodes[..2] {
        let _ = n.stop.send(true);
        let _ = n.meta.group().shutdown().await;
    }
}
