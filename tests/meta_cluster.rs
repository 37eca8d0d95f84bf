//! The meta group (group 1) on 3 real processes: the member table and its liveness, the
//! cache ring and its epoch, the queue shard count recorded once.
//!
//! - `MEMBER.LIST` agrees on every node: 3 members, `up`, voters, each with its client
//!   address; RESP2 (flat arrays) and RESP3 (maps) shapes.
//! - SIGKILL the meta leader (the hardest case: the survivors elect a new one, which
//!   must give everybody a grace period and then find the dead node silent): within a few
//!   `--node-timeout`s the node is `down` on both survivors, the ring epoch grew and the
//!   ring excludes it.
//! - Restart it with another `--queue-shards`: it is `up` again everywhere, the epoch grew
//!   again, and every node (the restarted one too) still has the count recorded when the
//!   cluster was created.
//!
//! Deadlines only bound liveness; nothing asserts on speed.

mod common;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use common::{conn_to, flat_map, read_lines, resp, serial, Cluster};
use redis::Value;

const NODE_TIMEOUT_MS: u64 = 1000;

/// One `MEMBER.LIST` row: (id, addr, client_addr, state, voter).
type Row = (i64, String, String, String, bool);

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

/// `MEMBER.LIST` of the node on `port` (RESP2), if it answers.
fn members(port: u16) -> Option<Vec<Row>> {
    let mut con = conn_to(port, Duration::from_secs(2))?;
    let v: Value = redis::cmd("MEMBER.LIST").query(&mut con).ok()?;
    let Value::Array(rows) = v else { return None };
    rows.iter()
        .map(|r| {
            let m = flat_map(r)?;
            let get = |k: &str| m.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            Some((
                int(&get("id")?)?,
                text(&get("addr")?),
                text(&get("client_addr")?),
                text(&get("state")?),
                int(&get("voter")?)? == 1,
            ))
        })
        .collect()
}

/// `DEBUG.META` of the node on `port`: (queue_shards, ring_epoch, ring), if it answers.
fn meta(port: u16) -> Option<(Option<i64>, i64, Vec<i64>)> {
    let mut con = conn_to(port, Duration::from_secs(2))?;
    let v: Value = redis::cmd("DEBUG.META").query(&mut con).ok()?;
    let m = flat_map(&v)?;
    let get = |k: &str| m.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let shards = int(&get("queue_shards")?);
    let epoch = int(&get("ring_epoch")?)?;
    let Value::Array(ring) = get("ring")? else {
        return None;
    };
    Some((shards, epoch, ring.iter().filter_map(int).collect()))
}

/// Waits until `ok` holds, for at most `within`; panics with `what` otherwise.
fn wait_for(within: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// The meta group's leader as the node on `port` sees it.
fn meta_leader(port: u16) -> Option<i64> {
    let mut con = conn_to(port, Duration::from_secs(2))?;
    let v: Value = redis::cmd("RAFT.STATUS").arg(1).query(&mut con).ok()?;
    let m = flat_map(&v)?;
    m.iter()
        .find(|(k, _)| k == "leader_id")
        .and_then(|(_, v)| int(v))
}

/// The rows every node in `ids` answers, once they all answer the same and `ok` holds.
fn agreed(c: &Cluster, ids: &[u64], ok: impl Fn(&[Row]) -> bool) -> Option<Vec<Row>> {
    let first = members(c.port(ids[0]))?;
    for &id in &ids[1..] {
        if members(c.port(id))? != first {
            return None;
        }
    }
    ok(&first).then_some(first)
}

#[test]
fn member_list_liveness_ring_epochs_and_queue_shards() {
    let _serial = serial();
    let timeout = NODE_TIMEOUT_MS.to_string();
    let mut c = Cluster::start(3, &["--node-timeout", &timeout]);
    let all = [1, 2, 3];
    let bound = Duration::from_secs(30);

    // Every node lists the same 3 members, up, voters, with their addresses.
    let mut rows = None;
    wait_for(bound, "MEMBER.LIST to agree on 3 up members", || {
        rows = agreed(&c, &all, |r| {
            r.len() == 3
                && r.iter()
                    .all(|m| m.3 == "up" && m.4 && !m.2.is_empty() && !m.1.is_empty())
        });
        rows.is_some()
    });
    let rows = rows.unwrap_or_default();
    for (i, row) in rows.iter().enumerate() {
        let id = i as u64 + 1;
        assert_eq!(row.0, id as i64);
        assert_eq!(row.2, format!("127.0.0.1:{}", c.port(id)), "{row:?}");
    }

    // RESP3: an array of maps.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", c.port(2))).expect("connect");
    s.write_all(&resp(&["HELLO", "3"])).expect("hello");
    let hello = read_lines(&mut s, 1, Duration::from_secs(5));
    assert!(
        hello.first().is_some_and(|l| l.starts_with('%')),
        "{hello:?}"
    );
    // Drain the rest of HELLO's reply.
    thread::sleep(Duration::from_millis(200));
    let _ = read_lines(&mut s, 1000, Duration::from_millis(300));
    s.write_all(&resp(&["MEMBER.LIST"])).expect("member.list");
    let lines = read_lines(&mut s, 12, Duration::from_secs(5));
    assert_eq!(
        lines.get(..7).map(|l| l.to_vec()),
        Some(
            ["*3", "%5", "$2", "id", ":1", "$4", "addr"]
                .map(String::from)
                .to_vec()
        ),
        "{lines:?}"
    );
    let voter = lines.iter().position(|l| l == "voter").expect("voter key");
    assert_eq!(lines.get(voter + 1).map(String::as_str), Some("#t"));

    // The ring: every member, one epoch on every node; 16 queue shards recorded.
    let mut first = None;
    wait_for(bound, "DEBUG.META to agree", || {
        let views: Vec<_> = all.iter().filter_map(|&id| meta(c.port(id))).collect();
        let ok = views.len() == 3
            && views.iter().all(|v| *v == views[0])
            && views[0].0 == Some(16)
            && views[0].2 == vec![1, 2, 3];
        if ok {
            first = Some(views[0].clone());
        }
        ok
    });
    let (_, epoch0, _) = first.unwrap_or_default();
    assert!(epoch0 >= 1);

    // SIGKILL the meta leader.
    let mut leader = None;
    wait_for(bound, "a meta leader", || {
        leader = meta_leader(c.port(1));
        leader.is_some()
    });
    let dead = leader.unwrap_or(1) as u64;
    let alive: Vec<u64> = all.iter().copied().filter(|&id| id != dead).collect();
    c.node(dead).kill();
    let mut epoch1 = 0;
    wait_for(
        Duration::from_millis(NODE_TIMEOUT_MS * 10),
        "the killed node to be down on every survivor",
        || {
            let rows = agreed(&c, &alive, |r| {
                r.len() == 3
                    && r.iter()
                        .all(|m| m.3 == if m.0 as u64 == dead { "down" } else { "up" })
            });
            let views: Vec<_> = alive.iter().filter_map(|&id| meta(c.port(id))).collect();
            let ring: Vec<i64> = alive.iter().map(|&id| id as i64).collect();
            let ok = rows.is_some()
                && views.len() == alive.len()
                && views.iter().all(|v| *v == views[0])
                && views[0].1 > epoch0
                && views[0].2 == ring;
            if ok {
                epoch1 = views[0].1;
            }
            ok
        },
    );

    // Restart it, asking for another shard count: it is up again, the epoch grew
    // again, and the count recorded at creation stands.
    c.node(dead).add_args(&["--queue-shards", "99"]);
    c.node(dead).restart();
    let mut last = None;
    wait_for(bound, "the restarted node to be up everywhere", || {
        let rows = agreed(&c, &all, |r| r.len() == 3 && r.iter().all(|m| m.3 == "up"));
        let views: Vec<_> = all.iter().filter_map(|&id| meta(c.port(id))).collect();
        let ok = rows.is_some()
            && views.len() == 3
            && views.iter().all(|v| *v == views[0])
            && views[0].1 > epoch1
            && views[0].2 == vec![1, 2, 3];
        if ok {
            last = Some(views[0].clone());
        }
        ok
    });
    // The restarted node's own attempt to record 99 has had time to be answered (it
    // retries until the meta group replies, and the replies above came after its
    // start): the count is the one recorded when the cluster was created.
    thread::sleep(Duration::from_millis(NODE_TIMEOUT_MS));
    for id in all {
        assert_eq!(
            meta(c.port(id)).map(|m| m.0),
            Some(Some(16)),
            "node {id} after the restart"
        );
    }
    assert!(last.is_some_and(|l| l.0 == Some(16)));
}
