//! The live dashboard (contract section 7, issue 12): `GET /api/cluster` of any node
//! reports every member, the meta group's leader and the lock table; and the page,
//! loaded in a real headless browser (Debian's `chromium`), shows all three nodes and
//! the leader, then a SIGKILLed node as down. With `--cluster-secret` the members still
//! answer each other's `STATUS`, and nobody else's.
//!
//! The browser test needs `chromium` on the PATH (or `CONCLAVE_CHROMIUM=<path>`): CI
//! installs it (`.ci/run`) and there, with `CI` set, a missing browser fails the test.
//! Elsewhere (the README's `cargo test --workspace` on a fresh machine) the browser test
//! says it is skipped and how to run it (`apt-get install chromium`).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{acquire, conn_to, http_get, resp, serial, Cluster};
use serde_json::Value;

/// `GET /api/cluster` on a node's HTTP port, parsed.
fn cluster_json(port: u16) -> Value {
    let (code, body) = http_get(port, "/api/cluster").expect("/api/cluster answers");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The entry of node `id` in an `/api/cluster` answer.
fn node_entry(view: &Value, id: u64) -> &Value {
    view["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["id"] == id))
        .unwrap_or_else(|| panic!("node {id} not listed: {view}"))
}

/// Polls `/api/cluster` on `port` until `ok` holds (10 s at most), returning the view.
fn wait_view(port: u16, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let view = cluster_json(port);
        if ok(&view) {
            return view;
        }
        assert!(Instant::now() < deadline, "{what}: {view:#}");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn api_cluster_shows_every_member_the_leader_locks_and_a_dead_node() {
    let _serial = serial();
    let mut c = Cluster::start(3, &[]);
    let leader = c.wait_leader(Duration::from_secs(10));
    let follower = (1..=3).find(|&id| id != leader).expect("a follower");

    // A held lock with a waiter: the waiter's client blocks on a raw socket.
    let port = c.node(follower).port;
    let mut con = conn_to(port, Duration::from_secs(5)).expect("connect");
    let token = acquire(&mut con, "dash-res", "owner-a", &["TTL", "60000"])
        .expect("acquire")
        .expect("granted");
    let mut waiter = TcpStream::connect(("127.0.0.1", port)).expect("waiter");
    waiter
        .write_all(&resp(&[
            "LOCK.ACQUIRE",
            "dash-res",
            "owner-b",
            "WAIT",
            "30000",
        ]))
        .expect("send");
    let _: String = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut con)
        .expect("set");
    let _: Option<String> = redis::cmd("GET").arg("k").query(&mut con).expect("get");

    let port_f = c.node(follower).metrics_port;
    let view = wait_view(port_f, "the waiter shows", |v| {
        v["locks"]["waiters"] == 1 && v["nodes"].as_array().is_some_and(|n| n.len() == 3)
    });
    assert_eq!(view["served_by"], follower);
    assert_eq!(view["groups"][0]["group"], 0);
    assert_eq!(view["groups"][0]["leader_id"], leader);
    assert_eq!(view["groups"][0]["voters_up"], 3);
    for id in 1..=3 {
        let n = node_entry(&view, id);
        assert_eq!(n["up"], true, "{n}");
        let client = format!("127.0.0.1:{}", c.node(id).port);
        assert_eq!(n["client_addr"], client.as_str());
        let role = if id == leader { "leader" } else { "follower" };
        assert_eq!(n["role"], role, "{n}");
        assert!(n["applied_index"].as_u64().is_some_and(|i| i > 0), "{n}");
    }
    let res = view["locks"]["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["resource"] == "dash-res"))
        .unwrap_or_else(|| panic!("dash-res not listed: {view:#}"));
    assert_eq!(res["mode"], "exclusive");
    assert_eq!(res["holders"][0]["owner"], "owner-a");
    assert_eq!(res["holders"][0]["token"], token);
    assert!(res["holders"][0]["ttl_ms"]
        .as_u64()
        .is_some_and(|t| t <= 60_000));
    assert_eq!(res["waiters"][0]["owner"], "owner-b");
    assert_eq!(res["waiters"][0]["mode"], "exclusive");
    let own = node_entry(&view, follower);
    assert_eq!(own["cache"]["keys"], 1);
    assert_eq!(own["cache"]["hits"], 1);
    // After a couple of seconds every node has per-second ops samples.
    let view = wait_view(port_f, "ops history", |v| {
        (1..=3).all(|id| {
            node_entry(v, id)["ops_history"]
                .as_array()
                .is_some_and(|h| h.len() >= 2)
        })
    });
    assert!(view["ops_history"].as_array().is_some_and(|h| h.len() >= 2));

    // Kill a follower that is not serving: the page of the serving node shows it down,
    // still with the client address it last reported.
    let victim = (1..=3)
        .find(|&id| id != leader && id != follower)
        .expect("victim");
    c.node(victim).kill();
    let view = wait_view(port_f, "the killed node shows down", |v| {
        node_entry(v, victim)["up"].as_bool() == Some(false)
    });
    let dead = node_entry(&view, victim);
    assert!(
        dead["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{dead}"
    );
    assert_eq!(dead["role"], Value::Null);
    let victim_client = format!("127.0.0.1:{}", c.node(victim).port);
    assert_eq!(dead["client_addr"], victim_client.as_str());
    assert!(dead["last_seen_ms_ago"].as_u64().is_some(), "{dead}");
    assert_eq!(view["groups"][0]["voters_up"], 2);
    assert_eq!(view["groups"][0]["leader_id"], leader);
    drop(waiter);
}

/// The browser: `CONCLAVE_CHROMIUM`, else `chromium` (Debian) or `chromium-browser`
/// on the PATH; `None` (with a line saying so) outside CI when there is none. Panics,
/// naming the package, when CI (`CI` set) has none.
fn chromium() -> Option<PathBuf> {
    const MISSING: &str = "the dashboard browser test needs a headless Chromium: install \
        Debian's `chromium` package (`apt-get install chromium`; .ci/run does it) or set \
        CONCLAVE_CHROMIUM to its path";
    if let Some(p) = std::env::var_os("CONCLAVE_CHROMIUM") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "CONCLAVE_CHROMIUM={}: no such file; {MISSING}",
            p.display()
        );
        return Some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!("{MISSING}");
    }
    eprintln!("SKIPPED the browser test: {MISSING}");
    None
}

/// Loads `http://127.0.0.1:<port>/` in headless Chromium and returns the DOM after its
/// scripts ran (5 s of virtual time: several refreshes).
fn dump_dom(port: u16) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let browser = chromium().expect("the browser test checked for a browser first");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("http://127.0.0.1:{port}/"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut out = child.stdout.take().expect("stdout");
    let reader = thread::spawn(move || {
        let mut dom = String::new();
        let _ = out.read_to_string(&mut dom);
        dom
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().expect("wait chromium").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        thread::sleep(Duration::from_millis(50));
    }
    reader.join().expect("reader")
}

/// The opening tag of the element carrying `attr` (e.g. `data-node-id="2"`).
fn tag_with<'a>(dom: &'a str, attr: &str) -> Option<&'a str> {
    let at = dom.find(attr)?;
    let start = dom[..at].rfind('<')?;
    let end = at + dom[at..].find('>')?;
    Some(&dom[start..=end])
}

/// Loads the page until `ok` holds for its DOM (three loads at most).
fn page_until(port: u16, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let mut dom = String::new();
    for _ in 0..3 {
        dom = dump_dom(port);
        if ok(&dom) {
            return dom;
        }
    }
    panic!("{what}; last DOM:\n{dom}");
}

#[test]
fn the_page_in_a_browser_shows_the_nodes_the_leader_and_a_killed_node_down() {
    // First, and clearly: no browser fails in CI, is a stated skip elsewhere.
    if chromium().is_none() {
        return;
    }
    let _serial = serial();
    let mut c = Cluster::start(3, &[]);
    let leader = c.wait_leader(Duration::from_secs(10));
    let other = (1..=3).find(|&id| id != leader).expect("a follower");
    let port = c.node(other).metrics_port;

    let dom = page_until(port, "all three nodes up with the leader", |dom| {
        (1..=3).all(|id| {
            tag_with(dom, &format!("data-node-id=\"{id}\""))
                .is_some_and(|t| t.contains("data-up=\"true\""))
        }) && dom.contains(&format!("data-leader-id=\"{leader}\""))
    });
    let leader_row = tag_with(&dom, &format!("data-node-id=\"{leader}\"")).expect("leader row");
    assert!(leader_row.contains("data-role=\"leader\""), "{leader_row}");
    assert!(leader_row.contains("data-leader=\"true\""), "{leader_row}");
    assert!(dom.contains(">healthy<"), "health pill: {dom}");
    assert!(!dom.contains("loading…"), "the script ran: {dom}");

    // SIGKILL the leader: a survivor's page shows it down and the new leader.
    c.node(leader).kill();
    let new_leader = c.wait_new_leader(leader, Duration::from_secs(20));
    let dom = page_until(port, "the killed node down and the new leader", |dom| {
        tag_with(dom, &format!("data-node-id=\"{leader}\""))
            .is_some_and(|t| t.contains("data-up=\"false\""))
            && dom.contains(&format!("data-leader-id=\"{new_leader}\""))
    });
    let survivors = (1..=3).filter(|&id| id != leader);
    for id in survivors {
        let row = tag_with(&dom, &format!("data-node-id=\"{id}\"")).expect("row");
        assert!(row.contains("data-up=\"true\""), "{row}");
    }
    assert!(dom.contains(">degraded<"), "health pill: {dom}");
}

#[test]
fn with_a_cluster_secret_peers_answer_status_only_when_authenticated() {
    let _serial = serial();
    let mut c = Cluster::start(3, &["--cluster-secret", "dash-secret"]);
    let port = c.node(1).metrics_port;
    let view = wait_view(port, "all members up behind the secret", |v| {
        (1..=3).all(|id| node_entry(v, id)["up"] == true)
    });
    assert_eq!(view["groups"][0]["voters_up"], 3);
    // The lock table is not for whoever reaches the cluster port.
    let mut raw = TcpStream::connect(("127.0.0.1", c.node(2).cluster_port)).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    raw.write_all(&resp(&["STATUS"])).expect("send");
    let mut reply = String::new();
    let _ = raw.read_to_string(&mut reply);
    assert!(reply.starts_with("-NOAUTH"), "{reply}");
}

/// The members of node `port`'s `RAFT.STATUS` as `(id, client_addr)`, in the RESP3 wire
/// bytes of each member map checked on the way: `id`, `addr`, `client_addr`, `voter`.
fn raft_members(port: u16) -> Vec<(i64, Option<String>)> {
    let Some(mut con) = conn_to(port, Duration::from_secs(2)) else {
        return Vec::new();
    };
    let _: redis::RedisResult<redis::Value> = redis::cmd("HELLO").arg(3).query(&mut con);
    let Ok(v) = redis::cmd("RAFT.STATUS").query::<redis::Value>(&mut con) else {
        return Vec::new();
    };
    let map = common::flat_map(&v).unwrap_or_default();
    let Some((_, redis::Value::Array(members))) = map.iter().find(|(k, _)| k == "members") else {
        return Vec::new();
    };
    members
        .iter()
        .filter_map(|m| {
            let fields = common::flat_map(m)?;
            let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(names, ["id", "addr", "client_addr", "voter"], "{m:?}");
            let id = match &fields[0].1 {
                redis::Value::Int(i) => *i,
                other => panic!("id {other:?}"),
            };
            let client = match &fields[2].1 {
                redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                redis::Value::Nil => None,
                other => panic!("client_addr {other:?}"),
            };
            Some((id, client))
        })
        .collect()
}

/// Waits until every node's `RAFT.STATUS` lists each member with the client address it
/// runs with now.
fn wait_client_addrs(c: &Cluster, what: &str) {
    let want: Vec<(i64, Option<String>)> = c
        .nodes
        .iter()
        .map(|s| (s.id as i64, Some(format!("127.0.0.1:{}", s.port))))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    for s in &c.nodes {
        loop {
            let mut got = raft_members(s.port);
            got.sort();
            if got == want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: node {} shows {got:?}, want {want:?}",
                s.id
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn raft_status_members_carry_their_client_address_also_after_a_restart_on_another_port() {
    let _serial = serial();
    // With a secret, introductions travel in the answer to AUTH (and are believed only
    // from an authenticated peer).
    let mut c = Cluster::start(3, &["--cluster-secret", "s3cret"]);
    wait_client_addrs(&c, "at start");
    // The raw RESP3 shape of one member entry.
    let port = c.port(1);
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(&resp(&["HELLO", "3"])).expect("write");
    let mut buf = vec![0u8; 4096];
    let _ = s.read(&mut buf).expect("hello");
    s.write_all(&resp(&["RAFT.STATUS"])).expect("write");
    thread::sleep(Duration::from_millis(200));
    let n = s.read(&mut buf).expect("status");
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    let addr = format!("127.0.0.1:{port}");
    let entry = format!(
        "$11\r\nclient_addr\r\n${}\r\n{addr}\r\n$5\r\nvoter\r\n#t\r\n",
        addr.len()
    );
    assert!(
        text.contains("%4\r\n$2\r\nid\r\n:1\r\n$4\r\naddr\r\n") && text.contains(&entry),
        "{text:?}"
    );

    // Node 3 comes back on another client port: the others learn it at its reconnect.
    let node = c.node(3);
    node.kill();
    node.port = common::free_port();
    node.restart();
    wait_client_addrs(&c, "after node 3 restarted on another port");
}
