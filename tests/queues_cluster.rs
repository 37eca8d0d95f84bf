//! The replicated queue on 3 real node processes (issue 10, "what it must show" item 2):
//! push through one node, read and ack through the others; SIGKILL of a shard's leader
//! keeps pending and acknowledged state and still serves blocked readers; a full-cluster
//! SIGKILL and restart keeps every acknowledged push, still pending where it was; a node
//! cut off from its peers refuses pushes (`-CLUSTERDOWN`) while the majority serves;
//! pipelined pushes, run together per shard, are answered and delivered in order.
//!
//! Each test starts its own cluster; `serial()` keeps one at a time. Nothing asserts on
//! speed: waits only bound liveness.

mod common;

use std::collections::BTreeSet;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use common::queue_ops::{info_field, pending_ids, q, read, shard_leader, text};
use common::{serial, until_ok, Cluster};
use redis::Value;

const SHARDS: &[&str] = &["--queue-shards", "4"];

fn push(port: u16, topic: &str, payload: &str) -> redis::RedisResult<String> {
    q(port, &["Q.PUSH", topic, payload], Duration::from_secs(10)).map(|v| text(&v))
}

#[test]
fn push_on_one_node_read_and_ack_on_the_others() {
    let _serial = serial();
    let c = Cluster::start(3, SHARDS);
    let (p1, p2, p3) = (c.port(1), c.port(2), c.port(3));
    let ids: Vec<String> = (0..5)
        .map(|i| {
            until_ok(Duration::from_secs(20), || {
                push(p1, "orders", &format!("m{i}"))
            })
        })
        .collect();
    // Ids grow strictly in push order.
    assert!(ids.windows(2).all(|w| {
        let parse = |s: &str| {
            let (a, b) = s.split_once('-').expect("ms-seq");
            (a.parse::<u64>().unwrap(), b.parse::<u64>().unwrap())
        };
        parse(&w[0]) < parse(&w[1])
    }));
    // Read through node 2: oldest first, one delivery each.
    let got = read(p2, "orders", "billing", "c2", &["COUNT", "3"]).expect("read");
    assert_eq!(
        got,
        (0..3)
            .map(|i| (ids[i].clone(), format!("m{i}"), 1))
            .collect::<Vec<_>>()
    );
    // The group sees them pending on every node's answer (reads run on the leader).
    assert_eq!(pending_ids(p3, "orders", "billing").unwrap(), {
        let mut v = ids[..3].to_vec();
        v.sort();
        v
    });
    // Ack through node 3: only pending ids count.
    let acked = q(
        p3,
        &[
            "Q.ACK", "orders", "billing", &ids[0], &ids[1], &ids[4], "9-9",
        ],
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(acked, Value::Int(2));
    assert_eq!(
        pending_ids(p1, "orders", "billing").unwrap(),
        vec![ids[2].clone()]
    );
    // A second group reads independently from the oldest *retained* message: the two
    // acknowledged by the only group there was are gone (retention).
    let other = read(p3, "orders", "audit", "a", &["COUNT", "10"]).unwrap();
    let other_ids: Vec<&str> = other.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(
        other_ids,
        ids[2..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    // A blocked reader on node 3 is woken by a push through node 1.
    let waiter = thread::spawn(move || read(p3, "jobs", "w", "c", &["BLOCK", "0"]));
    thread::sleep(Duration::from_millis(300));
    let id = until_ok(Duration::from_secs(10), || push(p1, "jobs", "wake-up"));
    let woken = waiter.join().expect("reader").expect("blocked read");
    assert_eq!(woken, vec![(id, "wake-up".to_string(), 1)]);
    // BLOCK that runs out answers the null array.
    assert_eq!(
        q(
            p2,
            &["Q.READ", "empty", "g", "c", "BLOCK", "200"],
            Duration::from_secs(10)
        )
        .unwrap(),
        Value::Nil
    );
    // Q.INFO names the shard, its leader and replicas; every node agrees on placement.
    let shard = info_field(p1, "orders", "shard");
    assert_eq!(shard, info_field(p2, "orders", "shard"));
    match info_field(p3, "orders", "replicas") {
        Some(Value::Array(r)) => assert_eq!(r.len(), 3),
        other => panic!("replicas: {other:?}"),
    }
    // Q.TOPICS spans every shard.
    let topics = q(p2, &["Q.TOPICS"], Duration::from_secs(10)).unwrap();
    let Value::Array(t) = topics else {
        panic!("{topics:?}")
    };
    let names: BTreeSet<String> = t.iter().map(text).collect();
    assert!(
        names.contains("orders") && names.contains("jobs"),
        "{names:?}"
    );
}

#[test]
fn killing_a_shard_leader_keeps_pending_and_acked_state_and_serves_blocked_readers() {
    let _serial = serial();
    let mut c = Cluster::start(3, SHARDS);
    let p = |c: &Cluster, id: u64| c.port(id);
    let ids: Vec<String> = (0..20)
        .map(|i| {
            until_ok(Duration::from_secs(20), || {
                push(p(&c, 1), "t", &format!("m{i}"))
            })
        })
        .collect();
    let got = read(p(&c, 2), "t", "g", "c", &["COUNT", "10"]).unwrap();
    assert_eq!(got.len(), 10);
    let ack: Vec<&str> = got[..5].iter().map(|m| m.0.as_str()).collect();
    let mut args = vec!["Q.ACK", "t", "g"];
    args.extend(&ack);
    assert_eq!(
        q(p(&c, 3), &args, Duration::from_secs(10)).unwrap(),
        Value::Int(5)
    );
    let still: Vec<String> = got[5..].iter().map(|m| m.0.clone()).collect();

    let leader = shard_leader(p(&c, 1), "t", Duration::from_secs(10));
    let survivor = (1..=3).find(|&n| n != leader).unwrap();
    let other = (1..=3).find(|&n| n != leader && n != survivor).unwrap();
    // A reader blocked on a survivor, on a group with nothing to read yet.
    until_ok(Duration::from_secs(10), || {
        q(
            p(&c, survivor),
            &["Q.GROUP", "CREATE", "t", "late", "FROM", "$"],
            Duration::from_secs(10),
        )
    });
    let port = p(&c, other);
    let waiter = thread::spawn(move || read(port, "t", "late", "w", &["BLOCK", "0"]));
    thread::sleep(Duration::from_millis(300));

    c.node(leader).kill();
    // Pending and acknowledged state intact on the new leader.
    let pending = until_ok(Duration::from_secs(20), || {
        pending_ids(p(&c, survivor), "t", "g")
    });
    assert_eq!(pending, still, "pending after the leader's SIGKILL");
    let len = until_ok(Duration::from_secs(20), || {
        q(p(&c, survivor), &["Q.LEN", "t"], Duration::from_secs(10))
    });
    // The 5 acknowledged before group 'late' existed are gone; nothing else is.
    assert_eq!(len, Value::Int(15));
    // The blocked reader is served by a push after the failover.
    let id = until_ok(Duration::from_secs(20), || {
        push(p(&c, survivor), "t", "after")
    });
    let woken = waiter.join().unwrap().expect("blocked read after failover");
    assert_eq!(woken, vec![(id.clone(), "after".to_string(), 1)]);
    // The rest of g's messages are still there, in order, after the pending ones.
    let next = read(p(&c, survivor), "t", "g", "c", &["COUNT", "20"]).unwrap();
    let next_ids: Vec<&str> = next.iter().map(|m| m.0.as_str()).collect();
    let mut expect: Vec<&str> = ids[10..].iter().map(String::as_str).collect();
    expect.push(&id);
    assert_eq!(next_ids, expect);
    c.node(leader).restart();
    // The restarted node catches up and answers the same.
    let pending = until_ok(Duration::from_secs(20), || {
        pending_ids(p(&c, leader), "t", "g")
    });
    assert_eq!(pending.len(), 5 + next.len());
}

#[test]
fn full_cluster_sigkill_and_restart_keeps_every_acknowledged_push_where_it_was() {
    let _serial = serial();
    let mut c = Cluster::start(3, SHARDS);
    let topics = ["a", "b", "c", "d", "e", "f"];
    let mut acked: Vec<(String, String)> = Vec::new();
    for i in 0..120 {
        let topic = topics[i % topics.len()];
        let port = c.port(1 + (i as u64 % 3));
        let id = until_ok(Duration::from_secs(20), || {
            push(port, topic, &format!("p{i}"))
        });
        acked.push((topic.to_string(), id));
    }
    // Some of each topic delivered (pending), some acknowledged.
    let mut pending_before = Vec::new();
    for t in topics {
        let got = read(c.port(2), t, "g", "c", &["COUNT", "8"]).unwrap();
        assert_eq!(got.len(), 8);
        let first = got[0].0.clone();
        assert_eq!(
            q(
                c.port(3),
                &["Q.ACK", t, "g", &first],
                Duration::from_secs(10)
            )
            .unwrap(),
            Value::Int(1)
        );
        let mut p = pending_ids(c.port(1), t, "g").unwrap();
        p.sort();
        pending_before.push(p);
    }
    for id in 1..=3 {
        c.node(id).kill();
    }
    for id in 1..=3 {
        c.node(id).restart();
    }
    for (i, t) in topics.iter().enumerate() {
        let p = until_ok(Duration::from_secs(30), || pending_ids(c.port(1), t, "g"));
        assert_eq!(
            p, pending_before[i],
            "pending of {t} after the full restart"
        );
    }
    // Every acknowledged push is there but the one each topic's only group acknowledged
    // (retention): a new group reads them all, in push order.
    for t in topics {
        let got = until_ok(Duration::from_secs(20), || {
            read(c.port(2), t, "fresh", "x", &["COUNT", "1000"])
        });
        let want: Vec<&str> = acked
            .iter()
            .filter(|(topic, _)| topic == t)
            .skip(1)
            .map(|(_, id)| id.as_str())
            .collect();
        let have: Vec<&str> = got.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(have, want, "topic {t}");
    }
}

#[test]
fn a_cut_off_node_refuses_pushes_while_the_majority_serves() {
    let _serial = serial();
    let c = Cluster::start(3, &["--queue-shards", "4", "--no-leader-wait", "1500"]);
    until_ok(Duration::from_secs(20), || push(c.port(1), "warm", "x"));
    c.isolate(3);
    // Node 3 holds every shard but none of their majorities: it refuses, after the wait.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match push(c.port(3), "cut", "nope") {
            Err(e) if e.code() == Some("CLUSTERDOWN") || e.to_string().contains("CLUSTERDOWN") => {
                break
            }
            other => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "node 3 still accepts pushes while cut off: {other:?}"
                );
                thread::sleep(Duration::from_millis(200));
            }
        }
    }
    // The majority serves.
    let id = until_ok(Duration::from_secs(20), || push(c.port(1), "cut", "yes"));
    let got = until_ok(Duration::from_secs(20), || {
        read(c.port(2), "cut", "g", "c", &[])
    });
    assert_eq!(got.first().map(|m| m.0.clone()), Some(id));
    c.heal();
    until_ok(Duration::from_secs(30), || push(c.port(3), "cut", "healed"));
}

/// The sum of the 4 queue shards' commit indexes, as `RAFT.STATUS <group>` on `port`
/// reports them.
fn shard_commits(port: u16) -> i64 {
    (1000..1004)
        .map(|g| {
            let v = q(
                port,
                &["RAFT.STATUS", &g.to_string()],
                Duration::from_secs(10),
            )
            .expect("RAFT.STATUS");
            let map = common::flat_map(&v).expect("a map");
            match map.iter().find(|(f, _)| f == "commit_index") {
                Some((_, Value::Int(i))) => *i,
                other => panic!("commit_index of group {g}: {other:?}"),
            }
        })
        .sum()
}

/// What a request of the pipeline below must be answered with.
enum Expect {
    /// A message id.
    Id,
    /// An error reply starting with this.
    Error(&'static str),
    Pong,
}

/// A connection's pipelined `Q.PUSH`es run together, one log entry per shard
/// (`dispatch::execute_pushes`): every request is answered in order, a bad push gets its
/// own error and the others still run, another command keeps its place, and each topic
/// delivers its messages in pipeline order — sent to every node, so through shard
/// leaders, followers forwarding, and more than one shard in one pipeline.
#[test]
fn pipelined_pushes_are_answered_and_delivered_in_order() {
    let _serial = serial();
    let c = Cluster::start(3, SHARDS);
    let topics = ["pa", "pb", "pc", "pd", "pe", "pf", "pg", "ph"];
    for t in topics {
        until_ok(Duration::from_secs(20), || push(c.port(1), t, "warm"));
    }
    let entries_before = shard_commits(c.port(1));
    for node in 1..=3u64 {
        let mut pipe = redis::pipe();
        let mut expect = Vec::new();
        for i in 0..400 {
            match i {
                100 => {
                    pipe.cmd("Q.PUSH").arg("pa");
                    expect.push(Expect::Error("ERR wrong number of arguments"));
                }
                150 => {
                    pipe.cmd("Q.PUSH").arg(&["pa", "x", "DELAY", "soon"]);
                    expect.push(Expect::Error("ERR value is not an integer"));
                }
                200 => {
                    pipe.cmd("PING");
                    expect.push(Expect::Pong);
                }
                _ => {}
            }
            let t = topics[i % topics.len()];
            let payload = format!("n{node}-{i}");
            pipe.cmd("Q.PUSH").arg(t).arg(&payload);
            expect.push(Expect::Id);
        }
        let mut stream = TcpStream::connect(("127.0.0.1", c.port(node))).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream
            .write_all(&pipe.get_packed_pipeline())
            .expect("send the pipeline");
        let mut reader = BufReader::new(stream);
        let mut parser = redis::Parser::new();
        for (n, e) in expect.iter().enumerate() {
            let v = parser.parse_value(&mut reader).expect("a reply");
            match (e, &v) {
                (Expect::Id, Value::BulkString(id)) => {
                    let id = String::from_utf8_lossy(id);
                    assert!(id.split_once('-').is_some(), "reply {n}: {id}");
                }
                (Expect::Error(start), Value::ServerError(err)) => {
                    let text = format!("{} {}", err.code(), err.details().unwrap_or(""));
                    assert!(text.starts_with(start), "reply {n}: {text}");
                }
                (Expect::Pong, Value::SimpleString(s)) if s == "PONG" => {}
                _ => panic!("node {node}, reply {n}: {v:?}"),
            }
        }
    }
    // Together: far fewer log entries than pushes (1,200 pushes, of which each node's
    // pipeline fills at most 4 shard entries per 256 pushes, plus the shards' own ticks).
    let entries = shard_commits(c.port(1)) - entries_before;
    assert!(
        entries < 300,
        "{entries} log entries for 1,200 pipelined pushes"
    );
    // Every topic, read from its start: the warm-up push, then each node's pushes in
    // pipeline order, with growing ids.
    for t in topics {
        let got = read(c.port(2), t, "g", "c", &["COUNT", "100000"]).expect("read");
        let mut want = vec!["warm".to_string()];
        for node in 1..=3u64 {
            want.extend(
                (0..400)
                    .filter(|i| topics[i % topics.len()] == t)
                    .map(|i| format!("n{node}-{i}")),
            );
        }
        let payloads: Vec<String> = got.iter().map(|m| m.1.clone()).collect();
        assert_eq!(payloads, want, "topic {t}");
        let parse = |s: &str| {
            let (a, b) = s.split_once('-').expect("ms-seq");
            (a.parse::<u64>().unwrap(), b.parse::<u64>().unwrap())
        };
        assert!(
            got.windows(2).all(|w| parse(&w[0].0) < parse(&w[1].0)),
            "topic {t}: ids not growing"
        );
    }
}
