//! RDB snapshots and `MIGRATE` against real processes: a `conclave` node and, when one is
//! installed, `redis-server` 7.0 and `redis-check-rdb` (the comparisons are skipped
//! without them). Snapshots go both ways (Conclave's file checked by `redis-check-rdb`
//! and loaded by `redis-server`; a `redis-server` dump loaded by Conclave), a node killed
//! with SIGKILL after `SAVE` comes back with its keys, `MIGRATE` moves keys both ways,
//! and replies are compared byte for byte with Redis's.
//!
//! Why this file is long: one file for one feature (snapshots and key transfer with Redis),
//! most of it the exact reply texts compared with Redis's.

mod common;
mod resp_support;

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;
use resp_support::scenario::{on_conclave_and_redis, Conn};
use resp_support::Raw;

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A `redis-server` with its own directory (its `dump.rdb` lives there), killed on drop.
struct RedisDir {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl RedisDir {
    /// Starts one in `dir` (loading `dir/dump.rdb` if present); `None` when not installed.
    fn start(dir: &Path) -> Option<RedisDir> {
        let Some(bin) = on_path("redis-server") else {
            eprintln!("redis-server not installed: skipping the comparison with Redis");
            return None;
        };
        let base = 30_000 + (std::process::id() % 2_000) as u16;
        let port = (0..500u16)
            .map(|i| base + i * 3)
            .find(|&p| TcpListener::bind(("127.0.0.1", p)).is_ok())?;
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let r = RedisDir {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                drop(s);
                // Answers PING once loading is over.
                let mut raw = Raw::connect(port);
                if raw.cmd(&["PING"]) == "+PONG\r\n" {
                    return Some(r);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for RedisDir {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every key with its value and whether it has a TTL, and the TTL in s (rounded).
fn contents(port: u16) -> BTreeMap<String, (String, i64)> {
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .and_then(|c| c.get_connection())
        .expect("connect");
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).expect("KEYS");
    keys.into_iter()
        .map(|k| {
            let v: String = redis::cmd("GET").arg(&k).query(&mut con).expect("GET");
            let ttl: i64 = redis::cmd("TTL").arg(&k).query(&mut con).expect("TTL");
            // Seconds pass between the two reads: compare TTLs to the 10 s.
            (k, (v, if ttl < 0 { ttl } else { (ttl + 5) / 10 }))
        })
        .collect()
}

/// Strings of every RDB encoding: small and large integers, a non-canonical number,
/// verbatim, LZF-compressed, binary, empty; some with a TTL.
fn fill(port: u16) {
    let mut raw = Raw::connect(port);
    let long = "hello world ".repeat(200);
    let sets: Vec<Vec<&str>> = vec![
        vec!["SET", "int8", "7"],
        vec!["SET", "int16", "-1234"],
        vec!["SET", "int32", "123456789"],
        vec!["SET", "big", "12345678901234"],
        vec!["SET", "padded", "007"],
        vec!["SET", "text", "some value"],
        vec!["SET", "long", &long],
        vec!["SET", "empty", ""],
        vec!["SET", "bin\u{1}key", "a\r\nb\u{0}c"],
        vec!["SET", "ttl", "v", "EX", "1000"],
        vec!["SET", "ttl-long", &long, "PX", "500000"],
    ];
    for args in sets {
        assert_eq!(raw.cmd(&args), "+OK\r\n", "{args:?}");
    }
}

/// A node killed with SIGKILL after `SAVE` comes back with its keys and TTLs; keys
/// written after the save are gone (memory only until the next save).
#[test]
fn save_then_kill_9_then_restart_brings_keys_back() {
    let mut server = Server::start(&[]);
    fill(server.port);
    let before = contents(server.port);
    let mut raw = Raw::connect(server.port);
    assert_eq!(raw.cmd(&["SAVE"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["SET", "after", "save"]), "+OK\r\n");
    server.kill();
    server.restart();
    assert_eq!(contents(server.port), before);
    let info = Raw::connect(server.port).cmd(&["INFO", "persistence"]);
    assert!(info.contains("rdb_last_load_keys_loaded:11\r\n"), "{info}");
    assert!(info.contains("rdb_changes_since_last_save:0\r\n"), "{info}");
}

/// `BGSAVE` writes in the background; the `save` rule saves by itself; `SHUTDOWN`
/// saves when rules are set, `SHUTDOWN NOSAVE` does not.
#[test]
fn bgsave_save_rules_and_shutdown() {
    let mut server = Server::start(&["--save", "1 1"]);
    let mut raw = Raw::connect(server.port);
    assert_eq!(raw.cmd(&["SET", "k", "v"]), "+OK\r\n");
    // The rule (1 s, 1 change) fires within a few ticks.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = raw.cmd(&["INFO", "persistence"]);
        if info.contains("rdb_saves:1\r\n") && info.contains("rdb_bgsave_in_progress:0") {
            assert!(info.contains("rdb_last_bgsave_status:ok\r\n"), "{info}");
            break;
        }
        assert!(Instant::now() < deadline, "no save: {info}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        raw.cmd(&["CONFIG", "GET", "save"]),
        "*2\r\n$4\r\nsave\r\n$3\r\n1 1\r\n"
    );
    assert_eq!(raw.cmd(&["CONFIG", "SET", "save", ""]), "+OK\r\n");
    assert_eq!(raw.cmd(&["BGSAVE"]), "+Background saving started\r\n");
    assert_eq!(raw.cmd(&["SET", "k2", "v2"]), "+OK\r\n");
    // SHUTDOWN SAVE saves k2 too.
    assert_eq!(raw.cmd(&["CONFIG", "SET", "save", "3600 1"]), "+OK\r\n");
    raw.send_cmd(&[b"SHUTDOWN", b"SAVE"]);
    wait_for_exit(&mut server);
    server.restart();
    let mut raw = Raw::connect(server.port);
    assert_eq!(raw.cmd(&["GET", "k2"]), "$2\r\nv2\r\n");
    // No rule may save k3 before SHUTDOWN NOSAVE (the node restarted with --save "1 1").
    assert_eq!(raw.cmd(&["CONFIG", "SET", "save", ""]), "+OK\r\n");
    assert_eq!(raw.cmd(&["SET", "k3", "v3"]), "+OK\r\n");
    raw.send_cmd(&[b"SHUTDOWN", b"NOSAVE"]);
    wait_for_exit(&mut server);
    server.restart();
    let mut raw = Raw::connect(server.port);
    assert_eq!(raw.cmd(&["EXISTS", "k3"]), ":0\r\n");
    // FLUSHALL with save rules saves the empty keyspace: nothing comes back.
    assert_eq!(raw.cmd(&["CONFIG", "SET", "save", "3600 1"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["FLUSHALL"]), "+OK\r\n");
    let info = raw.cmd(&["INFO", "persistence"]);
    assert!(info.contains("rdb_changes_since_last_save:0\r\n"), "{info}");
    server.kill();
    server.restart();
    assert_eq!(Raw::connect(server.port).cmd(&["DBSIZE"]), ":0\r\n");
}

/// Conclave's file passes `redis-check-rdb` and `redis-server` loads the same keys and
/// TTLs; a `redis-server` dump of strings loads into Conclave.
#[test]
fn snapshots_move_between_conclave_and_redis() {
    let server = Server::start(&[]);
    fill(server.port);
    let ours = contents(server.port);
    assert_eq!(Raw::connect(server.port).cmd(&["SAVE"]), "+OK\r\n");
    let file = server.data_dir.join("dump.rdb");
    if let Some(check) = on_path("redis-check-rdb") {
        let out = Command::new(check)
            .arg(&file)
            .output()
            .expect("redis-check-rdb");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("RDB looks OK"),
            "{text}"
        );
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&file, tmp.path().join("dump.rdb")).expect("copy");
    let Some(redis) = RedisDir::start(tmp.path()) else {
        return;
    };
    assert_eq!(
        contents(redis.port),
        ours,
        "redis-server loading Conclave's file"
    );

    // And back: Redis writes its own file of the same keys, Conclave loads it.
    let mut raw = Raw::connect(redis.port);
    assert_eq!(raw.cmd(&["SET", "from-redis", "yes"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["SAVE"]), "+OK\r\n");
    let theirs = contents(redis.port);
    let mut second = Server::start(&[]);
    second.kill();
    std::fs::copy(redis.dir.join("dump.rdb"), second.data_dir.join("dump.rdb")).expect("copy");
    second.restart();
    assert_eq!(
        contents(second.port),
        theirs,
        "Conclave loading redis-server's file"
    );
}

/// A snapshot holding a type Conclave lacks stops the start with the reason.
#[test]
fn a_dump_with_a_list_is_refused_at_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(redis) = RedisDir::start(tmp.path()) else {
        return;
    };
    let mut raw = Raw::connect(redis.port);
    assert_eq!(raw.cmd(&["RPUSH", "l", "a"]), ":1\r\n");
    assert_eq!(raw.cmd(&["SAVE"]), "+OK\r\n");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(tmp.path().join("dump.rdb"), dir.path().join("dump.rdb")).expect("copy");
    let out = Command::new(common::binary())
        .args([
            "--port",
            &common::free_port().to_string(),
            "--metrics-port",
            "0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("run conclave");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        log.contains("not a string (Conclave stores strings only)"),
        "{log}"
    );
}

/// `MIGRATE` from Conclave to Redis and from Redis to Conclave, with TTLs, `COPY`,
/// `REPLACE`, `KEYS`, and the target's errors relayed as Redis relays them.
#[test]
fn migrate_both_ways_with_redis() {
    let server = Server::start(&["--requirepass", "pw"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(redis) = RedisDir::start(tmp.path()) else {
        return;
    };
    let (c_port, r_port) = (server.port.to_string(), redis.port.to_string());
    let mut c = Raw::connect(server.port);
    let mut r = Raw::connect(redis.port);
    assert_eq!(c.cmd(&["AUTH", "pw"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "a", "1", "EX", "1000"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "b", &"x".repeat(1000)]), "+OK\r\n");
    let to_redis = ["MIGRATE", "127.0.0.1", &r_port];
    let cmd = |base: &[&str], rest: &[&str]| -> Vec<String> {
        base.iter().chain(rest).map(|s| s.to_string()).collect()
    };
    let run = |raw: &mut Raw, args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        raw.cmd(&a)
    };
    assert_eq!(run(&mut c, cmd(&to_redis, &["a", "0", "1000"])), "+OK\r\n");
    assert_eq!(c.cmd(&["EXISTS", "a"]), ":0\r\n");
    let ttl = r.cmd(&["TTL", "a"]);
    assert!(ttl == ":1000\r\n" || ttl == ":999\r\n", "{ttl}");
    assert_eq!(
        run(
            &mut c,
            cmd(&to_redis, &["", "0", "1000", "COPY", "KEYS", "b", "nope"])
        ),
        "+OK\r\n"
    );
    assert_eq!(c.cmd(&["EXISTS", "b"]), ":1\r\n");
    assert_eq!(r.cmd(&["STRLEN", "b"]), ":1000\r\n");
    assert_eq!(
        run(&mut c, cmd(&to_redis, &["b", "0", "1000"])),
        "-ERR Target instance replied with error: BUSYKEY Target key name already exists.\r\n"
    );
    assert_eq!(
        c.cmd(&["EXISTS", "b"]),
        ":1\r\n",
        "an error deletes nothing"
    );
    assert_eq!(
        run(&mut c, cmd(&to_redis, &["b", "0", "1000", "REPLACE"])),
        "+OK\r\n"
    );
    assert_eq!(
        run(&mut c, cmd(&to_redis, &["b", "0", "1000"])),
        "+NOKEY\r\n"
    );

    // Redis to Conclave, which wants a password, and has only database 0.
    let to_conclave = ["MIGRATE", "127.0.0.1", &c_port];
    assert_eq!(
        run(&mut r, cmd(&to_conclave, &["a", "0", "1000"])),
        "-ERR Target instance replied with error: NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        run(&mut r, cmd(&to_conclave, &["a", "0", "1000", "AUTH", "bad"])),
        "-ERR Target instance replied with error: WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        run(&mut r, cmd(&to_conclave, &["a", "1", "1000", "AUTH", "pw"])),
        "-ERR Target instance replied with error: ERR DB index is out of range\r\n"
    );
    // As with Redis as the target, the RESTORE after the refused SELECT ran in database 0.
    assert_eq!(c.cmd(&["DEL", "a"]), ":1\r\n");
    assert_eq!(
        run(
            &mut r,
            cmd(&to_conclave, &["a", "0", "1000", "AUTH2", "default", "pw"])
        ),
        "+OK\r\n"
    );
    let ttl = c.cmd(&["TTL", "a"]);
    assert!(ttl.starts_with(":99") || ttl == ":1000\r\n", "{ttl}");
    assert_eq!(c.cmd(&["GET", "a"]), "$1\r\n1\r\n");
}

/// Replies and errors, byte for byte as Redis 7.0 sends them.
#[test]
fn replies_match_redis() {
    on_conclave_and_redis(|port, who| {
        let mut c = Conn::open(port, who);
        let closed = common::free_port().to_string();
        c.expect(
            &["MIGRATE", "127.0.0.1", &closed, "k", "0", "100"],
            "+NOKEY\r\n",
        );
        c.expect(&["SET", "k", "v"], "+OK\r\n");
        c.expect(
            &["MIGRATE", "127.0.0.1", &closed, "k", "0", "100"],
            "-IOERR error or timeout writing to target instance\r\n",
        );
        c.expect(
            &["MIGRATE", "h", "1", "k", "0", "100", "AUTH"],
            "-ERR syntax error\r\n",
        );
        c.expect(
            &["MIGRATE", "h", "1", "k", "0", "100", "AUTH2", "u"],
            "-ERR syntax error\r\n",
        );
        c.expect(
            &["MIGRATE", "h", "1", "k", "0", "100", "BOGUS"],
            "-ERR syntax error\r\n",
        );
        c.expect(
            &["MIGRATE", "h", "1", "k", "0", "100", "KEYS", "a"],
            "-ERR When using MIGRATE KEYS option, the key argument must be set to the empty string\r\n",
        );
        c.expect(
            &["MIGRATE", "h", "1", "k", "x", "100"],
            "-ERR value is not an integer or out of range\r\n",
        );
        c.expect(
            &["MIGRATE", "h", "1", "k", "0"],
            "-ERR wrong number of arguments for 'migrate' command\r\n",
        );
        c.expect(
            &[
                "COMMAND", "GETKEYS", "MIGRATE", "h", "1", "", "0", "5", "AUTH2", "u", "p", "KEYS",
                "a", "b",
            ],
            "*2\r\n$1\r\na\r\n$1\r\nb\r\n",
        );
        c.expect(
            &["COMMAND", "GETKEYS", "MIGRATE", "h", "1", "k", "0", "5"],
            "*1\r\n$1\r\nk\r\n",
        );
        let info = c.cmd(&["COMMAND", "INFO", "MIGRATE"]);
        assert!(info.contains("movablekeys"), "{who}: {info}");
        c.expect(&["BGSAVE", "NOW"], "-ERR syntax error\r\n");
        c.expect(&["BGSAVE", "SCHEDULE", "x"], "-ERR syntax error\r\n");
        c.expect(&["CONFIG", "SET", "save", "1"], "-ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters\r\n");
        c.expect(&["CONFIG", "SET", "save", "0 1"], "-ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters\r\n");
        c.expect(
            &[
                "CONFIG",
                "SET",
                "save",
                "3000 5",
                "repl-backlog-size",
                "10000002",
            ],
            "+OK\r\n",
        );
        c.expect(
            &["CONFIG", "GET", "save"],
            "*2\r\n$4\r\nsave\r\n$6\r\n3000 5\r\n",
        );
        c.expect(
            &["CONFIG", "GET", "repl-backlog-size"],
            "*2\r\n$17\r\nrepl-backlog-size\r\n$8\r\n10000002\r\n",
        );
        c.expect(&["CONFIG", "SET", "save", ""], "+OK\r\n");
        c.expect(&["CONFIG", "GET", "save"], "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
        c.expect(&["CONFIG", "SET", "dir", "/tmp"], "-ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config\r\n");
        c.expect(&["CONFIG", "SET", "dbfilename", "x.rdb"], "-ERR CONFIG SET failed (possibly related to argument 'dbfilename') - can't set protected config\r\n");
        c.expect(
            &["CONFIG", "GET", "dbfilename"],
            "*2\r\n$10\r\ndbfilename\r\n$8\r\ndump.rdb\r\n",
        );
        c.expect(&["SHUTDOWN", "SAVE", "NOSAVE"], "-ERR syntax error\r\n");
        c.expect(&["SHUTDOWN", "ABORT", "NOW"], "-ERR syntax error\r\n");
        c.expect(&["SHUTDOWN", "BOGUS"], "-ERR syntax error\r\n");
        c.expect(&["MULTI"], "+OK\r\n");
        c.expect(
            &["SAVE"],
            "-ERR Command not allowed inside a transaction\r\n",
        );
        c.expect(
            &["EXEC"],
            "-EXECABORT Transaction discarded because of previous errors.\r\n",
        );
        let lastsave = c.cmd(&["LASTSAVE"]);
        assert!(lastsave.starts_with(':'), "{who}: {lastsave}");
        let info = c.cmd(&["INFO", "persistence"]);
        for field in [
            "rdb_changes_since_last_save:",
            "rdb_bgsave_in_progress:0",
            "rdb_last_bgsave_status:ok",
            "rdb_last_save_time:",
        ] {
            assert!(info.contains(field), "{who}: {field} in {info}");
        }
    });
}

/// `MONITOR` shows `MIGRATE`'s passwords as `(redacted)`, as Redis does.
#[test]
fn monitor_redacts_migrate_credentials() {
    on_conclave_and_redis(|port, who| {
        let mut m = Conn::open(port, who);
        m.expect(&["MONITOR"], "+OK\r\n");
        let mut c = Conn::open(port, who);
        let p = port.to_string();
        c.expect(
            &[
                "MIGRATE",
                "127.0.0.1",
                &p,
                "key",
                "9",
                "5000",
                "AUTH",
                "secret",
            ],
            "+NOKEY\r\n",
        );
        c.expect(
            &[
                "MIGRATE",
                "127.0.0.1",
                &p,
                "key",
                "9",
                "5000",
                "AUTH2",
                "user",
                "secret",
            ],
            "+NOKEY\r\n",
        );
        let one = m.raw.reply_string();
        assert!(one.ends_with(&format!("\"MIGRATE\" \"127.0.0.1\" \"{p}\" \"key\" \"9\" \"5000\" \"AUTH\" \"(redacted)\"\r\n")), "{who}: {one}");
        let two = m.raw.reply_string();
        assert!(
            two.ends_with("\"AUTH2\" \"(redacted)\" \"(redacted)\"\r\n"),
            "{who}: {two}"
        );
    });
}

/// On a cluster of several nodes snapshots are refused, with the reason.
#[test]
fn snapshots_are_refused_on_a_cluster() {
    let mut cluster = common::Cluster::start(2, &[]);
    let port = cluster.node(1).port;
    let mut raw = Raw::connect(port);
    let why = "snapshots are off on a cluster of several nodes: the coherence layer owns the values and a node's copies may be stale after a restart";
    assert_eq!(raw.cmd(&["SAVE"]), format!("-ERR {why}\r\n"));
    assert_eq!(raw.cmd(&["BGSAVE"]), format!("-ERR {why}\r\n"));
    assert_eq!(
        raw.cmd(&["CONFIG", "SET", "save", "60 1"]),
        format!("-ERR CONFIG SET failed (possibly related to argument 'save') - {why}\r\n")
    );
    assert_eq!(raw.cmd(&["CONFIG", "SET", "save", ""]), "+OK\r\n");
}

/// Waits (at most 10 s) until a node told to `SHUTDOWN` has exited.
fn wait_for_exit(server: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.exited() {
        assert!(Instant::now() < deadline, "SHUTDOWN did not stop the node");
        std::thread::sleep(Duration::from_millis(20));
    }
}
