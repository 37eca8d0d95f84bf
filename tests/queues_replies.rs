//! The exact bytes of every `Q.*` reply (contract section 5) in RESP2 and RESP3, and the
//! errors of bad arguments, on a one-node cluster. Queue commands inside `MULTI` are
//! refused at queue time.

mod common;
mod resp_support;

use common::Server;
use resp_support::scenario::Conn;

/// `$<len>\r\n<s>\r\n`.
fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

/// Pushes `payload` to `topic`, returning the id.
fn push(c: &mut Conn, topic: &str, payload: &str) -> String {
    let r = c.cmd(&["Q.PUSH", topic, payload]);
    let id = r.split("\r\n").nth(1).expect("bulk id").to_string();
    assert_eq!(r, bulk(&id));
    id
}

#[test]
fn replies_in_resp2_and_resp3() {
    let server = Server::start(&["--queue-shards", "2"]);
    for resp3 in [false, true] {
        let mut c = if resp3 {
            Conn::resp3(server.port, "conclave")
        } else {
            Conn::open(server.port, "conclave")
        };
        let t = if resp3 { "t3" } else { "t2" };
        let null_array = if resp3 { "_\r\n" } else { "*-1\r\n" };
        let null = if resp3 { "_\r\n" } else { "$-1\r\n" };
        let map = |n: usize| {
            if resp3 {
                format!("%{n}\r\n")
            } else {
                format!("*{}\r\n", 2 * n)
            }
        };
        // Nothing to read: the null array.
        c.expect(&["Q.READ", t, "g", "c"], null_array);
        let a = push(&mut c, t, "alpha");
        let b = push(&mut c, t, "beta");
        assert!(a < b || a.len() < b.len());
        // DEDUP: the first push's id, nothing added.
        let d = push(&mut c, t, "gamma");
        let d1 = c.cmd(&["Q.PUSH", t, "x", "DEDUP", "k1"]);
        assert_eq!(c.cmd(&["Q.PUSH", t, "y", "DEDUP", "k1"]), d1);
        c.expect(&["Q.LEN", t], ":4\r\n");
        // Q.READ: [id, payload, deliveries] per message, oldest first.
        c.expect(
            &["Q.READ", t, "g", "c", "COUNT", "2"],
            &format!(
                "*2\r\n*3\r\n{}{}:1\r\n*3\r\n{}{}:1\r\n",
                bulk(&a),
                bulk("alpha"),
                bulk(&b),
                bulk("beta")
            ),
        );
        // Q.PENDING: maps id, consumer, deliveries, idle_ms.
        let p = c.cmd(&["Q.PENDING", t, "g", "COUNT", "1"]);
        let head = format!(
            "*1\r\n{}{}{}{}{}{}:1\r\n{}:",
            map(4),
            bulk("id"),
            bulk(&a),
            bulk("consumer"),
            bulk("c"),
            bulk("deliveries"),
            bulk("idle_ms")
        );
        assert!(p.starts_with(&head), "{p:?} vs {head:?}");
        c.expect(&["Q.ACK", t, "g", &a, "9-9"], ":1\r\n");
        c.expect(&["Q.NACK", t, "g", &b, "DELAY", "0"], ":1\r\n");
        c.expect(&["Q.NACK", t, "g", &a], ":0\r\n");
        c.expect(&["Q.EXTEND", t, "g", &a, "100"], ":0\r\n");
        c.expect(&["Q.REDRIVE", t], ":0\r\n");
        // Q.INFO: a map with the shard, leader, replicas, length, ids, dlq length, groups.
        let info = c.cmd(&["Q.INFO", t]);
        let shard_head = format!("{}{}:", map(8), bulk("shard"));
        assert!(info.starts_with(&shard_head), "{info:?}");
        for field in [
            "leader",
            "replicas",
            "length",
            "first_id",
            "last_id",
            "dlq_length",
            "groups",
            "consumers",
            "pending",
            "lag",
            "delivered",
            "acked",
        ] {
            assert!(info.contains(&bulk(field)), "{field} missing in {info:?}");
        }
        assert!(
            info.contains(&format!("{}:1\r\n", bulk("leader"))),
            "{info:?}"
        );
        assert!(
            info.contains(&format!("{}*1\r\n:1\r\n", bulk("replicas"))),
            "{info:?}"
        );
        let last = d1.split("\r\n").nth(1).expect("id");
        assert!(
            info.contains(&format!("{}{}", bulk("last_id"), bulk(last))),
            "{info:?}"
        );
        assert!(d.as_str() < last || d.len() < last.len());
        // Unknown topic: null ids, no groups.
        let none = c.cmd(&["Q.INFO", "nosuch"]);
        assert!(
            none.contains(&format!("{}{null}", bulk("first_id"))) || none.starts_with('-'),
            "{none:?}"
        );
        // Groups: create (from $), busy, destroy.
        c.expect(&["Q.GROUP", "CREATE", t, "late", "FROM", "$"], "+OK\r\n");
        c.expect(
            &["Q.GROUP", "CREATE", t, "late"],
            "-BUSYGROUP Consumer Group name already exists\r\n",
        );
        c.expect(&["Q.GROUP", "DESTROY", t, "late"], ":1\r\n");
        c.expect(&["Q.GROUP", "DESTROY", t, "late"], ":0\r\n");
        // Q.TOPICS with a pattern, Q.DEL.
        c.expect(&["Q.TOPICS", t], &format!("*1\r\n{}", bulk(t)));
        c.expect(&["Q.DEL", t], ":1\r\n");
        c.expect(&["Q.DEL", t], ":0\r\n");
        c.expect(&["Q.TOPICS", t], "*0\r\n");
    }
}

#[test]
fn bad_arguments_answer_errors_and_change_nothing() {
    let server = Server::start(&["--queue-shards", "2"]);
    let mut c = Conn::open(server.port, "conclave");
    for (args, want) in [
        (
            vec!["Q.PUSH", "t"],
            "-ERR wrong number of arguments for 'q.push' command\r\n",
        ),
        (vec!["Q.PUSH", "t", "p", "DELAY"], "-ERR syntax error\r\n"),
        (
            vec!["Q.PUSH", "t", "p", "DELAY", "-5"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (vec!["Q.PUSH", "t", "p", "NOPE"], "-ERR syntax error\r\n"),
        (
            vec!["Q.READ", "t", "g", "c", "COUNT", "0"],
            "-ERR COUNT must be positive\r\n",
        ),
        (
            vec!["Q.READ", "t", "g", "c", "BLOCK", "-1"],
            "-ERR timeout is negative\r\n",
        ),
        (
            vec!["Q.READ", "t", "g", "c", "VISIBILITY", "0"],
            "-ERR VISIBILITY must be at least 1 millisecond\r\n",
        ),
        (
            vec!["Q.ACK", "t", "g", "not-an-id"],
            "-ERR Invalid stream ID specified as stream command argument\r\n",
        ),
        (
            vec!["Q.EXTEND", "t", "g", "1-1", "x"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            vec!["Q.GROUP", "FOO", "t", "g"],
            "-ERR unknown subcommand 'FOO'. Try Q.GROUP CREATE or Q.GROUP DESTROY.\r\n",
        ),
        (vec!["Q.TOPICS", "a", "b"], "-ERR syntax error\r\n"),
    ] {
        c.expect(&args, want);
    }
    c.expect(&["Q.LEN", "t"], ":0\r\n");
    c.expect(&["Q.TOPICS"], "*0\r\n");
    // Inside MULTI: refused at queue time, and the transaction aborts.
    c.expect(&["MULTI"], "+OK\r\n");
    c.expect(
        &["Q.PUSH", "t", "p"],
        "-ERR Command not allowed inside a transaction\r\n",
    );
    c.expect(
        &["EXEC"],
        "-EXECABORT Transaction discarded because of previous errors.\r\n",
    );
    c.expect(&["Q.LEN", "t"], ":0\r\n");
}

/// `queue_waiting_reads` of `INFO queues`.
fn waiting_reads(c: &mut Conn) -> u64 {
    let info = c.cmd(&["INFO", "queues"]);
    info.lines()
        .find_map(|l| l.strip_prefix("queue_waiting_reads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("queue_waiting_reads")
}

#[test]
fn a_blocked_read_whose_client_leaves_is_withdrawn_and_takes_nothing() {
    let server = Server::start(&["--queue-shards", "2"]);
    let mut c = Conn::open(server.port, "conclave");
    let mut gone = Conn::open(server.port, "conclave");
    gone.send(&["Q.READ", "w", "g", "ghost", "BLOCK", "0"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while waiting_reads(&mut c) != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the read never queued"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(gone);
    while waiting_reads(&mut c) != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the read of a client that left is still queued"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The next push goes to a live consumer, not to the ghost.
    let id = push(&mut c, "w", "m");
    c.expect(
        &["Q.READ", "w", "g", "live"],
        &format!("*1\r\n*3\r\n{}{}:1\r\n", bulk(&id), bulk("m")),
    );
}

#[test]
fn client_unblock_ends_a_blocked_read_and_it_takes_nothing() {
    let server = Server::start(&["--queue-shards", "2"]);
    let mut c = Conn::open(server.port, "conclave");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for (how, want) in [
        ("TIMEOUT", "*-1\r\n"),
        (
            "ERROR",
            "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n",
        ),
    ] {
        let mut reader = Conn::open(server.port, "conclave");
        let id = reader.id().to_string();
        reader.send(&["Q.READ", "u", "g", "r", "BLOCK", "0"]);
        while waiting_reads(&mut c) != 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the read never queued"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let listed = c.cmd(&["CLIENT", "LIST", "ID", &id]);
        assert!(listed.contains(" flags=b "), "{listed}");
        c.expect(&["CLIENT", "UNBLOCK", &id, how], ":1\r\n");
        reader.expect_next(want);
        c.expect(&["CLIENT", "UNBLOCK", &id, how], ":0\r\n");
        while waiting_reads(&mut c) != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "an unblocked read is still queued"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // The connection serves its next command.
        reader.expect(&["PING"], "+PONG\r\n");
    }
    // Neither read took anything: the next push is a first delivery to a live consumer.
    let id = push(&mut c, "u", "m");
    c.expect(
        &["Q.READ", "u", "g", "live"],
        &format!("*1\r\n*3\r\n{}{}:1\r\n", bulk(&id), bulk("m")),
    );
}

#[test]
fn a_node_past_its_queue_memory_budget_refuses_pushes_and_loses_nothing() {
    let server = Server::start(&["--queue-shards", "2", "--queue-max-memory", "100"]);
    let mut c = Conn::open(server.port, "conclave");
    let big = "x".repeat(200);
    let first = push(&mut c, "b", &big);
    // The budget is sampled about once a second: within a few, pushes are refused.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let oom = loop {
        let r = c.cmd(&["Q.PUSH", "b", "y"]);
        if r.starts_with("-OOM") {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "never refused: {r}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(
        oom,
        "-OOM queue messages retained on this node exceed --queue-max-memory (100 bytes)\r\n"
    );
    // Every push that was answered with an id is there; the refused one is not.
    let len = c.cmd(&["Q.LEN", "b"]);
    let len: u64 = len.trim_start_matches(':').trim().parse().expect("Q.LEN");
    let r = c.cmd(&["Q.READ", "b", "g", "c", "COUNT", "1000"]);
    assert!(r.contains(&bulk(&first)), "{r}");
    assert_eq!(r.matches(&bulk(&big)).count(), 1);
    // Acknowledging everything frees the budget: pushes are taken again.
    let ids: Vec<String> = r
        .split("\r\n")
        .filter(|l| l.contains('-') && !l.starts_with('-') && !l.starts_with('$'))
        .map(str::to_string)
        .collect();
    assert_eq!(ids.len() as u64, len, "{r}");
    let mut ack = vec!["Q.ACK", "b", "g"];
    ack.extend(ids.iter().map(String::as_str));
    c.expect(&ack, &format!(":{len}\r\n"));
    loop {
        let r = c.cmd(&["Q.PUSH", "b", "z"]);
        if r.starts_with('$') {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still refused: {r}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
