//! Redis 7 functions (`FUNCTION ...`, `FCALL`, `FCALL_RO`) against real `conclave`
//! processes: the replies and errors byte for byte with a real `redis-server` 7.0 (when
//! one is installed; RESP2 and RESP3), `FUNCTION DUMP` payloads moving between Redis
//! and Conclave both ways, `MONITOR` showing `fcall` then its `lua` commands, and on a
//! 3-node cluster a library loaded on one node callable on the others at once and
//! after every node restarts (the libraries live in the meta Raft group).

mod common;
mod resp_support;

use std::time::Duration;

use common::{Cluster, Server};
use resp_support::parity::compare;
use resp_support::redis_reference::Reference;
use resp_support::Raw;

const LIB: &str = "#!lua name=mylib\nredis.register_function('myset', function(keys, args) return redis.call('set', keys[1], args[1]) end)\nredis.register_function{function_name='myget', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads a key'}";

const ONE: &str = "#!lua name=one\nredis.register_function{function_name='myget', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes', 'allow-stale'}, description='reads a key'}";

fn cmd(args: &[&str]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.as_bytes().to_vec()).collect()
}

/// Commands whose replies must be the same bytes as Redis's. `FUNCTION LIST` is asked
/// only of one library with one function (Redis lists in hash order).
fn script() -> Vec<Vec<Vec<u8>>> {
    let lua = |body: &str| format!("#!lua name=lib2\n{body}");
    vec![
        cmd(&["FUNCTION", "FLUSH"]),
        cmd(&["FUNCTION", "LIST"]),
        cmd(&["FUNCTION", "STATS"]),
        cmd(&["FUNCTION", "LOAD", LIB]),
        cmd(&["FUNCTION", "LOAD", LIB]),
        cmd(&["FUNCTION", "LOAD", "REPLACE", LIB]),
        cmd(&["FUNCTION", "LOAD", "foo", LIB]),
        cmd(&["FCALL", "myset", "1", "k", "v"]),
        cmd(&["FCALL", "MYGET", "1", "k"]),
        cmd(&["FCALL_RO", "myget", "1", "k"]),
        cmd(&["FCALL_RO", "myset", "1", "k", "v"]),
        cmd(&["FCALL", "nosuch", "0"]),
        cmd(&["FCALL", "myget", "x"]),
        cmd(&["FCALL", "myget", "3", "a"]),
        cmd(&["FCALL", "myget", "-1"]),
        cmd(&["FCALL"]),
        cmd(&["FUNCTION", "LIST", "LIBRARYNAME"]),
        cmd(&["FUNCTION", "LIST", "WITHCODE", "WITHCODE"]),
        cmd(&["FUNCTION", "LIST", "bad"]),
        cmd(&["FUNCTION", "STATS"]),
        cmd(&["FUNCTION", "DUMP"]),
        cmd(&["FUNCTION", "KILL"]),
        cmd(&["FUNCTION", "HELP"]),
        cmd(&["FUNCTION", "bogus"]),
        cmd(&["FUNCTION", "FLUSH", "bad"]),
        cmd(&["FUNCTION", "FLUSH", "sync", "extra"]),
        cmd(&["FUNCTION", "RESTORE", "bad_payload"]),
        cmd(&["FUNCTION", "RESTORE", "a", "b", "c"]),
        cmd(&["FUNCTION", "RESTORE", "a", "bad"]),
        cmd(&["FUNCTION", "DELETE", "nosuch"]),
        cmd(&["FUNCTION", "LOAD", &lua("return math.random()")]),
        cmd(&["FUNCTION", "LOAD", &lua("a = 1")]),
        cmd(&["FUNCTION", "LOAD", &lua("redis.register_function()")]),
        cmd(&["FUNCTION", "LOAD", &lua("redis.register_function('f')")]),
        cmd(&["FUNCTION", "LOAD", &lua("redis.register_function('f', 'x')")]),
        cmd(&["FUNCTION", "LOAD", &lua("redis.register_function(nil, function() end)")]),
        cmd(&["FUNCTION", "LOAD", &lua("redis.register_function('a-b', function() end)")]),
        cmd(&["FUNCTION", "LOAD", &lua("redis.register_function{function_name='f'}")]),
        cmd(&["FUNCTION", "LOAD", &lua("redis.register_function{callback=function() end}")]),
        cmd(&["FUNCTION", "LOAD", &lua("redis.register_function{function_name='f', callback=function() end, flags={'bogus'}}")]),
        cmd(&["FUNCTION", "LOAD", &lua("redis.register_function{function_name='f', callback=function() end, flags='x'}")]),
        cmd(&["FUNCTION", "LOAD", &lua("redis.register_function{function_name='f', callback=function() end, other=1}")]),
        cmd(&["FUNCTION", "LOAD", &lua("redis.register_function('f', function() end) redis.register_function('f', function() end)")]),
        cmd(&["FUNCTION", "LOAD", &lua("redis.register_function('myset', function() end)")]),
        cmd(&["FUNCTION", "LOAD", &lua("return redis.call('ping')")]),
        cmd(&["FUNCTION", "LOAD", &lua("local a = 1 while 1 do a = a + 1 end")]),
        cmd(&["FUNCTION", "LOAD", &lua("bad script")]),
        cmd(&["FUNCTION", "LOAD", &lua("return 1")]),
        cmd(&["FUNCTION", "LOAD", "#!bad name=x\n"]),
        cmd(&["FUNCTION", "LOAD", "#!lua name=x foo=bar\n"]),
        cmd(&["FUNCTION", "LOAD", "#!lua\n"]),
        cmd(&["FUNCTION", "LOAD", "return 1"]),
        cmd(&["FUNCTION", "LOAD", "#!lua name=x"]),
        cmd(&["FUNCTION", "LOAD", "#!lua name=x name=y\n"]),
        cmd(&["FUNCTION", "LOAD", "#!lua name=a-b\n"]),
        cmd(&["FUNCTION", "LOAD", &lua("redis.register_function('boom', function() error('boom') end)")]),
        cmd(&["FCALL", "boom", "0"]),
        cmd(&["FUNCTION", "DELETE", "lib2"]),
        cmd(&["FUNCTION", "DELETE", "mylib"]),
        cmd(&["FUNCTION", "LIST"]),
        // Redis lists a library's functions in hash order: one function per library here.
        cmd(&["FUNCTION", "LOAD", ONE]),
        cmd(&["FUNCTION", "LIST"]),
        cmd(&["FUNCTION", "LIST", "WITHCODE"]),
        cmd(&["FUNCTION", "LIST", "LIBRARYNAME", "my*"]),
        cmd(&["FUNCTION", "LIST", "LIBRARYNAME", "zz*"]),
        cmd(&["FUNCTION", "DUMP"]),
        cmd(&["FUNCTION", "FLUSH", "ASYNC"]),
        cmd(&["COMMAND", "GETKEYS", "FCALL", "f", "2", "a", "b", "c"]),
        cmd(&["COMMAND", "GETKEYS", "FCALL_RO", "f", "1", "a"]),
    ]
}

#[test]
fn function_replies_match_redis_byte_for_byte() {
    let server = Server::start(&[]);
    let mut ours = Raw::connect(server.port);
    let Some(reference) = Reference::start() else {
        for c in script() {
            let args: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
            ours.send_cmd(&args);
            assert!(!ours.reply().is_empty());
        }
        return;
    };
    let mut theirs = Raw::connect(reference.port);
    let mut diffs = compare(&mut ours, &mut theirs, script());
    ours.cmd(&["HELLO", "3"]);
    theirs.cmd(&["HELLO", "3"]);
    diffs.extend(compare(&mut ours, &mut theirs, script()));
    assert!(diffs.is_empty(), "differences:\n{}", diffs.join("\n"));
}

#[test]
fn dumps_move_between_redis_and_conclave() {
    let server = Server::start(&[]);
    let Some(reference) = Reference::start() else {
        return;
    };
    let mut ours = Raw::connect(server.port);
    let mut theirs = Raw::connect(reference.port);
    let load = cmd(&["FUNCTION", "LOAD", LIB]);
    let args: Vec<&[u8]> = load.iter().map(Vec::as_slice).collect();
    theirs.send_cmd(&args);
    assert_eq!(theirs.reply(), b"$5\r\nmylib\r\n");
    theirs.send_cmd(&[b"FUNCTION", b"DUMP"]);
    let dump = bulk(&theirs.reply());
    ours.send_cmd(&[b"FUNCTION", b"RESTORE", &dump]);
    assert_eq!(ours.reply(), b"+OK\r\n");
    ours.send_cmd(&[b"FCALL", b"myset", b"1", b"k", b"from-redis"]);
    assert_eq!(ours.reply(), b"+OK\r\n");
    ours.send_cmd(&[b"FUNCTION", b"DUMP"]);
    let ours_dump = bulk(&ours.reply());
    assert_eq!(ours_dump, dump, "the same library dumps to the same bytes");
    theirs.send_cmd(&[b"FUNCTION", b"RESTORE", &ours_dump, b"REPLACE"]);
    assert_eq!(theirs.reply(), b"+OK\r\n");
    ours.send_cmd(&[b"FUNCTION", b"RESTORE", &ours_dump]);
    assert_eq!(ours.reply(), b"-ERR Library mylib already exists\r\n");
    ours.send_cmd(&[b"FUNCTION", b"RESTORE", &ours_dump, b"FLUSH"]);
    assert_eq!(ours.reply(), b"+OK\r\n");
}

/// The payload of a bulk string reply.
fn bulk(reply: &[u8]) -> Vec<u8> {
    let nl = reply.iter().position(|&b| b == b'\n').expect("a header");
    reply[nl + 1..reply.len() - 2].to_vec()
}

#[test]
fn monitor_shows_fcall_then_its_commands() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(LIB)
        .query(&mut con)
        .unwrap();
    let mut monitor = Raw::connect(server.port);
    monitor.send_cmd(&[b"MONITOR"]);
    assert_eq!(monitor.reply(), b"+OK\r\n");
    let _: () = redis::cmd("FCALL")
        .arg("myset")
        .arg(1)
        .arg("foo")
        .arg("bar")
        .query(&mut con)
        .unwrap();
    let first = String::from_utf8_lossy(&monitor.reply()).into_owned();
    let second = String::from_utf8_lossy(&monitor.reply()).into_owned();
    assert!(
        first.ends_with("\"FCALL\" \"myset\" \"1\" \"foo\" \"bar\"\r\n"),
        "{first}"
    );
    assert!(
        second.ends_with("[0 lua] \"set\" \"foo\" \"bar\"\r\n"),
        "{second}"
    );
}

fn fcall(port: u16, name: &str) -> redis::RedisResult<String> {
    let mut con = common::conn_to(port, Duration::from_secs(10))
        .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::IoError, "cannot connect")))?;
    redis::cmd("FCALL").arg(name).arg(0).query(&mut con)
}

#[test]
fn a_library_loaded_on_one_node_runs_on_every_node_and_after_restarts() {
    let _serial = common::serial();
    let mut c = Cluster::start(3, &[]);
    let code = "#!lua name=greet\nredis.register_function('hello', function() return 'hello' end)\nredis.register_function('setk', function(keys, args) return redis.call('set', keys[1], args[1]) end)";
    let mut one = common::conn_to(c.port(1), Duration::from_secs(10)).expect("node 1");
    let name: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(code)
        .query(&mut one)
        .unwrap();
    assert_eq!(name, "greet");
    // Callable on the other nodes as soon as LOAD has replied.
    for id in [2, 3] {
        assert_eq!(fcall(c.port(id), "hello").unwrap(), "hello", "node {id}");
    }
    // A function's writes hold its keys cluster-wide like EVAL's: node 3 reads them.
    let mut two = common::conn_to(c.port(2), Duration::from_secs(10)).expect("node 2");
    let _: () = redis::cmd("FCALL")
        .arg("setk")
        .arg(1)
        .arg("k")
        .arg("from-2")
        .query(&mut two)
        .unwrap();
    let mut three = common::conn_to(c.port(3), Duration::from_secs(10)).expect("node 3");
    let got: String = redis::cmd("GET").arg("k").query(&mut three).unwrap();
    assert_eq!(got, "from-2");
    // A replacement made on node 2 is what node 3 runs.
    let replaced = code.replace("return 'hello'", "return 'hi'");
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("REPLACE")
        .arg(&replaced)
        .query(&mut two)
        .unwrap();
    assert_eq!(fcall(c.port(3), "hello").unwrap(), "hi");
    // Every node restarts: the library is still there, everywhere.
    for id in 1..=3 {
        c.node(id).kill();
    }
    for id in 1..=3 {
        c.node(id).restart();
    }
    c.wait_leader(Duration::from_secs(30));
    for id in 1..=3 {
        let got = common::until_ok(Duration::from_secs(30), || fcall(c.port(id), "hello"));
        assert_eq!(got, "hi", "node {id} after the restart");
    }
    // A delete on node 3 is seen by node 1 (retried while the meta group may still be
    // electing its leader after the restart: `-CLUSTERDOWN no raft leader`).
    let mut three = common::conn_to(c.port(3), Duration::from_secs(10)).expect("node 3");
    let _: () = common::until_ok(Duration::from_secs(30), || {
        redis::cmd("FUNCTION")
            .arg("DELETE")
            .arg("greet")
            .query(&mut three)
    });
    let err = fcall(c.port(1), "hello").unwrap_err();
    assert!(err.to_string().contains("Function not found"), "{err}");
}

#[test]
fn fcall_runs_inside_multi() {
    let server = Server::start(&[]);
    let mut raw = Raw::connect(server.port);
    let load = cmd(&["FUNCTION", "LOAD", LIB]);
    let args: Vec<&[u8]> = load.iter().map(Vec::as_slice).collect();
    raw.send_cmd(&args);
    assert_eq!(raw.reply(), b"$5\r\nmylib\r\n");
    assert_eq!(raw.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["FCALL", "myset", "1", "k", "v"]), "+QUEUED\r\n");
    assert_eq!(raw.cmd(&["FCALL_RO", "myget", "1", "k"]), "+QUEUED\r\n");
    assert_eq!(raw.cmd(&["FUNCTION", "FLUSH"]), "+QUEUED\r\n");
    let reply = raw.cmd(&["EXEC"]);
    assert!(
        reply.starts_with("*3\r\n+OK\r\n$1\r\nv\r\n-ERR FUNCTION LOAD, DELETE, FLUSH and RESTORE are not allowed inside MULTI"),
        "{reply}"
    );
    assert_eq!(raw.cmd(&["FCALL", "myget", "1", "k"]), "$1\r\nv\r\n");
}
