//! `MULTI`/`EXEC`/`DISCARD`/`WATCH`/`UNWATCH` against a real one-node `conclave`
//! process, as client libraries use them: redis-py's default pipeline is a
//! `MULTI`/`EXEC` transaction, optimistic locking is `WATCH` + `MULTI`, and many
//! clients do both at once. The concurrency checks assert isolation (no reader ever
//! sees half a transaction) and no lost update, never speed.

mod common;
mod resp_support;

use std::thread;

use common::Server;
use redis::Value;
use resp_support::{query_err, Raw};

fn exec(con: &mut redis::Connection) -> Value {
    redis::cmd("EXEC").query(con).unwrap()
}

/// redis-py's `pipeline()` (transaction=True): the writes apply once, inside EXEC.
#[test]
fn a_transactional_pipeline_applies_once() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let _: () = redis::cmd("SET")
        .arg("bal")
        .arg(100)
        .query(&mut con)
        .unwrap();
    let (bal, other): (i64, i64) = redis::pipe()
        .atomic()
        .cmd("DECRBY")
        .arg("bal")
        .arg(30)
        .cmd("INCRBY")
        .arg("other")
        .arg(30)
        .query(&mut con)
        .unwrap();
    assert_eq!((bal, other), (70, 30));
    let bal: i64 = redis::cmd("GET").arg("bal").query(&mut con).unwrap();
    assert_eq!(bal, 70);
}

/// Errors found when a queued command runs are its entry in `EXEC`'s array (exact
/// wire text); the other commands still apply (Redis has no rollback).
#[test]
fn queued_replies_and_per_command_errors() {
    let server = Server::start(&[]);
    let mut raw = Raw::connect(server.port);
    assert_eq!(raw.cmd(&["SET", "s", "text"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["INCR", "s"]), "+QUEUED\r\n");
    assert_eq!(raw.cmd(&["SET", "t", "1"]), "+QUEUED\r\n");
    assert_eq!(raw.cmd(&["INCR", "t"]), "+QUEUED\r\n");
    assert_eq!(
        raw.cmd(&["EXEC"]),
        "*3\r\n-ERR value is not an integer or out of range\r\n+OK\r\n:2\r\n"
    );
    assert_eq!(raw.cmd(&["GET", "t"]), "$1\r\n2\r\n");
    // A watched key changed: a null array (RESP2 `*-1`).
    assert_eq!(raw.cmd(&["WATCH", "t"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["SET", "t", "5"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["GET", "t"]), "+QUEUED\r\n");
    assert_eq!(raw.cmd(&["EXEC"]), "*-1\r\n");
}

#[test]
fn a_refused_command_aborts_the_whole_transaction() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let _: () = redis::cmd("MULTI").query(&mut con).unwrap();
    let _: String = redis::cmd("SET").arg("x").arg("1").query(&mut con).unwrap();
    let err = query_err(&mut con, redis::cmd("GET").arg("a").arg("b"));
    assert!(err.contains("wrong number of arguments"), "{err}");
    let err = query_err(&mut con, &redis::cmd("NOSUCHCMD"));
    assert!(err.contains("unknown command"), "{err}");
    let err = query_err(&mut con, redis::cmd("LOCK.ACQUIRE").arg("r").arg("o"));
    assert!(err.contains("not allowed inside a transaction"), "{err}");
    let err = query_err(&mut con, &redis::cmd("EXEC"));
    assert!(err.starts_with("EXECABORT"), "{err}");
    let x: Value = redis::cmd("GET").arg("x").query(&mut con).unwrap();
    assert_eq!(x, Value::Nil, "nothing of an aborted transaction applies");
}

#[test]
fn misuse_errors_match_redis() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let err = query_err(&mut con, &redis::cmd("EXEC"));
    assert_eq!(err, "ERR EXEC without MULTI");
    let err = query_err(&mut con, &redis::cmd("DISCARD"));
    assert_eq!(err, "ERR DISCARD without MULTI");
    let _: () = redis::cmd("MULTI").query(&mut con).unwrap();
    let err = query_err(&mut con, &redis::cmd("MULTI"));
    assert_eq!(err, "ERR MULTI calls can not be nested");
    let err = query_err(&mut con, redis::cmd("WATCH").arg("k"));
    assert_eq!(err, "ERR WATCH inside MULTI is not allowed");
    // Neither error aborts the transaction.
    let _: String = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    assert_eq!(exec(&mut con), Value::Array(vec![Value::Okay]));
    // DISCARD drops the queue.
    let _: () = redis::cmd("MULTI").query(&mut con).unwrap();
    let _: String = redis::cmd("SET")
        .arg("k")
        .arg("other")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("DISCARD").query(&mut con).unwrap();
    let k: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(k, "v");
}

#[test]
fn watch_aborts_exec_after_a_change_from_any_connection() {
    let server = Server::start(&[]);
    let mut a = server.conn();
    let mut b = server.conn();
    let _: () = redis::cmd("SET").arg("k").arg(1).query(&mut a).unwrap();
    // Unchanged: EXEC runs.
    let _: () = redis::cmd("WATCH").arg("k").query(&mut a).unwrap();
    let _: () = redis::cmd("MULTI").query(&mut a).unwrap();
    let _: String = redis::cmd("INCR").arg("k").query(&mut a).unwrap();
    assert_eq!(exec(&mut a), Value::Array(vec![Value::Int(2)]));
    // Changed by another connection between WATCH and EXEC: nil, nothing runs.
    let _: () = redis::cmd("WATCH").arg("k").query(&mut a).unwrap();
    let _: () = redis::cmd("SET").arg("k").arg(10).query(&mut b).unwrap();
    let _: () = redis::cmd("MULTI").query(&mut a).unwrap();
    let _: String = redis::cmd("INCR").arg("k").query(&mut a).unwrap();
    assert_eq!(exec(&mut a), Value::Nil);
    let k: i64 = redis::cmd("GET").arg("k").query(&mut a).unwrap();
    assert_eq!(k, 10);
    // EXEC dropped the watch: the next transaction runs.
    let _: () = redis::cmd("SET").arg("k").arg(20).query(&mut b).unwrap();
    let _: () = redis::cmd("MULTI").query(&mut a).unwrap();
    let _: String = redis::cmd("INCR").arg("k").query(&mut a).unwrap();
    assert_eq!(exec(&mut a), Value::Array(vec![Value::Int(21)]));
    // UNWATCH forgets too; a change to another key never matters.
    let _: () = redis::cmd("WATCH").arg("k").query(&mut a).unwrap();
    let _: () = redis::cmd("UNWATCH").query(&mut a).unwrap();
    let _: () = redis::cmd("SET").arg("k").arg(0).query(&mut b).unwrap();
    let _: () = redis::cmd("WATCH").arg("k2").query(&mut a).unwrap();
    let _: () = redis::cmd("SET").arg("k").arg(5).query(&mut b).unwrap();
    let _: () = redis::cmd("MULTI").query(&mut a).unwrap();
    let _: String = redis::cmd("INCR").arg("k").query(&mut a).unwrap();
    assert_eq!(exec(&mut a), Value::Array(vec![Value::Int(6)]));
}

/// Optimistic locking from many clients: every increment that `EXEC` reports is in
/// the final count, and none other (no lost update, no phantom).
#[test]
fn watch_based_increments_lose_nothing() {
    let server = Server::start(&[]);
    let clients = 8;
    let per_client = 100;
    let committed: usize = (0..clients)
        .map(|_| {
            let mut con = server.conn();
            thread::spawn(move || {
                let mut done = 0;
                let mut attempts = 0;
                while done < per_client && attempts < per_client * 50 {
                    attempts += 1;
                    let _: () = redis::cmd("WATCH").arg("counter").query(&mut con).unwrap();
                    let n: Option<i64> = redis::cmd("GET").arg("counter").query(&mut con).unwrap();
                    let _: () = redis::cmd("MULTI").query(&mut con).unwrap();
                    let _: String = redis::cmd("SET")
                        .arg("counter")
                        .arg(n.unwrap_or(0) + 1)
                        .query(&mut con)
                        .unwrap();
                    if exec(&mut con) != Value::Nil {
                        done += 1;
                    }
                }
                done
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    let mut con = server.conn();
    let counter: i64 = redis::cmd("GET").arg("counter").query(&mut con).unwrap();
    assert_eq!(counter as usize, committed);
    assert!(committed > 0);
}

/// Isolation: writers move units between 20 keys in transactions of 20 commands;
/// readers read all 20 keys in one transaction and must always see the same total.
#[test]
fn no_reader_sees_half_a_transaction() {
    const KEYS: usize = 20;
    let server = Server::start(&[]);
    let mut setup = server.conn();
    for i in 0..KEYS {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(100)
            .query(&mut setup)
            .unwrap();
    }
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let mut con = server.conn();
            thread::spawn(move || {
                for round in 0..150 {
                    let mut pipe = redis::pipe();
                    pipe.atomic();
                    // Half the keys give one unit, the other half take it (which half
                    // turns with the round and the writer).
                    for i in 0..KEYS {
                        let give = (i + round + w) % 2 == 0;
                        pipe.cmd(if give { "DECR" } else { "INCR" })
                            .arg(format!("k{i}"))
                            .ignore();
                    }
                    let _: () = pipe.query(&mut con).unwrap();
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let mut con = server.conn();
            thread::spawn(move || {
                for _ in 0..300 {
                    let mut pipe = redis::pipe();
                    pipe.atomic();
                    for i in 0..KEYS {
                        pipe.cmd("GET").arg(format!("k{i}"));
                    }
                    let values: Vec<i64> = pipe.query(&mut con).unwrap();
                    let total: i64 = values.iter().sum();
                    assert_eq!(
                        total,
                        100 * KEYS as i64,
                        "saw half a transaction: {values:?}"
                    );
                }
            })
        })
        .collect();
    for h in writers.into_iter().chain(readers) {
        h.join().unwrap();
    }
}

const OOM: &str = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";

/// Out of memory (Redis's `processCommand`): every command queued in `MULTI` is refused
/// and aborts the transaction, `DISCARD` still works, an `EXEC` of read-only commands
/// runs while one that may grow memory is discarded whole — byte for byte as
/// `redis-server` answers (with `noeviction`, where both are out of memory).
#[test]
fn out_of_memory_refuses_queueing_and_an_exec_that_may_grow_memory() {
    use resp_support::scenario::{on_conclave_and_redis, Conn};
    on_conclave_and_redis(|port, who| {
        let mut admin = Conn::open(port, who);
        let mut c = Conn::open(port, who);
        admin.expect(
            &["CONFIG", "SET", "maxmemory-policy", "noeviction"],
            "+OK\r\n",
        );
        admin.expect(&["SET", "k", "v"], "+OK\r\n");
        // Queued before memory fills up, run after.
        c.expect(&["MULTI"], "+OK\r\n");
        c.expect(&["GET", "k"], "+QUEUED\r\n");
        c.expect(&["PING"], "+QUEUED\r\n");
        admin.expect(&["CONFIG", "SET", "maxmemory", "1"], "+OK\r\n");
        c.expect(&["EXEC"], "*2\r\n$1\r\nv\r\n+PONG\r\n");
        admin.expect(&["CONFIG", "SET", "maxmemory", "0"], "+OK\r\n");
        c.expect(&["MULTI"], "+OK\r\n");
        c.expect(&["SET", "x", "1"], "+QUEUED\r\n");
        c.expect(&["GET", "x"], "+QUEUED\r\n");
        admin.expect(&["CONFIG", "SET", "maxmemory", "1"], "+OK\r\n");
        c.expect(
            &["EXEC"],
            "-EXECABORT Transaction discarded because of: OOM command not allowed when used memory > 'maxmemory'.\r\n",
        );
        c.expect(&["GET", "x"], "$-1\r\n");
        // Queued while out of memory: refused, the transaction aborted; DISCARD works.
        c.expect(&["MULTI"], "+OK\r\n");
        c.expect(&["SET", "x", "1"], OOM);
        c.expect(&["GET", "k"], OOM);
        c.expect(&["DISCARD"], "+OK\r\n");
        c.expect(&["MULTI"], "+OK\r\n");
        c.expect(&["GET", "k"], OOM);
        admin.expect(&["CONFIG", "SET", "maxmemory", "0"], "+OK\r\n");
        c.expect(&["GET", "k"], "+QUEUED\r\n");
        c.expect(
            &["EXEC"],
            "-EXECABORT Transaction discarded because of previous errors.\r\n",
        );
        admin.expect(
            &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
            "+OK\r\n",
        );
    });
}

/// A busy script (past `busy-reply-threshold`): a keyspace command queued meanwhile is
/// refused with `-BUSY` and aborts the transaction; an `EXEC` arriving meanwhile
/// discards it (`EXECABORT ... BUSY`) — nothing of it runs, and the connection leaves
/// `MULTI`. As `redis-server` answers.
#[test]
fn a_busy_script_aborts_transactions_queued_or_executed_meanwhile() {
    use resp_support::scenario::{on_conclave_and_redis, Conn};
    const BUSY: &str =
        "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n";
    fn busy_script(port: u16, who: &'static str, admin: &mut Conn, during: impl FnOnce()) {
        let mut script = Conn::open(port, who);
        script.send(&["EVAL", "while true do end", "0"]);
        thread::sleep(std::time::Duration::from_millis(300));
        during();
        admin.expect(&["SCRIPT", "KILL"], "+OK\r\n");
        let killed = script.raw.reply_string();
        assert!(killed.starts_with("-"), "{who}: {killed:?}");
    }
    on_conclave_and_redis(|port, who| {
        let mut admin = Conn::open(port, who);
        admin.expect(&["CONFIG", "SET", "busy-reply-threshold", "50"], "+OK\r\n");
        admin.expect(&["SET", "xx", "1"], "+OK\r\n");
        // EXEC during the script.
        let mut c = Conn::open(port, who);
        c.expect(&["MULTI"], "+OK\r\n");
        c.expect(&["INCR", "xx"], "+QUEUED\r\n");
        busy_script(port, who, &mut admin, || {
            c.expect(&["INCR", "xx"], BUSY);
            c.expect(
                &["EXEC"],
                &format!(
                    "-EXECABORT Transaction discarded because of: {}",
                    &BUSY[1..]
                ),
            );
        });
        c.expect(&["PING", "out"], "$3\r\nout\r\n");
        // Queued during the script, EXEC after it.
        c.expect(&["MULTI"], "+OK\r\n");
        busy_script(port, who, &mut admin, || c.expect(&["INCR", "xx"], BUSY));
        c.expect(&["INCR", "xx"], "+QUEUED\r\n");
        c.expect(
            &["EXEC"],
            "-EXECABORT Transaction discarded because of previous errors.\r\n",
        );
        admin.expect(&["GET", "xx"], "$1\r\n1\r\n");
        admin.expect(
            &["CONFIG", "SET", "busy-reply-threshold", "5000"],
            "+OK\r\n",
        );
    });
}

/// `SHUTDOWN` and `SAVE` are `no_multi`: refused at queue time (`SHUTDOWN` would stop
/// the node at `EXEC`).
#[test]
fn shutdown_is_refused_inside_multi() {
    use resp_support::scenario::{on_conclave_and_redis, Conn};
    on_conclave_and_redis(|port, who| {
        let mut c = Conn::open(port, who);
        c.expect(&["MULTI"], "+OK\r\n");
        c.expect(
            &["SHUTDOWN"],
            "-ERR Command not allowed inside a transaction\r\n",
        );
        c.expect(
            &["SAVE"],
            "-ERR Command not allowed inside a transaction\r\n",
        );
        c.expect(
            &["EXEC"],
            "-EXECABORT Transaction discarded because of previous errors.\r\n",
        );
        c.expect(&["PING"], "+PONG\r\n");
    });
}
