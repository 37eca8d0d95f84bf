//! Lua scripting (`EVAL`, `EVALSHA`, `EVAL_RO`, `SCRIPT`) against a real one-node
//! `conclave` process: the lock scripts of redsync (Go), node-redlock (JS) and redis-py
//! run unchanged through `EVALSHA` (falling back to `EVAL`, as the libraries do), Redis's
//! type conversions and error texts on the wire, atomicity under concurrent
//! read-modify-write scripts, and the busy-script rules (`-BUSY`, `SCRIPT KILL`,
//! `-UNKILLABLE`). Deadlines are generous and only bound waits; nothing asserts speed.

mod common;
mod resp_support;

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::Server;
use redis::{Script, Value};
use resp_support::{query_err, Raw};

// redsync v4 (mutex.go / scripts.go), byte for byte: the SHA1s are the ones redsync ships.
const REDSYNC_DELETE: &str = "\n\tlocal val = redis.call(\"GET\", KEYS[1])\n\tif val == ARGV[1] then\n\t\treturn redis.call(\"DEL\", KEYS[1])\n\telseif val == false then\n\t\treturn -1\n\telse\n\t\treturn 0\n\tend\n";
const REDSYNC_TOUCH_WITH_SETNX: &str = "\n\tif redis.call(\"GET\", KEYS[1]) == ARGV[1] then\n\t\treturn redis.call(\"PEXPIRE\", KEYS[1], ARGV[2])\n\telseif redis.call(\"SET\", KEYS[1], ARGV[1], \"PX\", ARGV[2], \"NX\") then\n\t\treturn 1\n\telse\n\t\treturn 0\n\tend\n";
const REDSYNC_TOUCH: &str = "\n\tif redis.call(\"GET\", KEYS[1]) == ARGV[1] then\n\t\treturn redis.call(\"PEXPIRE\", KEYS[1], ARGV[2])\n\telse\n\t\treturn 0\n\tend\n";

// node-redlock v5 (redlock.ts).
const REDLOCK_ACQUIRE: &str = "\n  -- Return 0 if an entry already exists.\n  for i, key in ipairs(KEYS) do\n    if redis.call(\"exists\", key) == 1 then\n      return 0\n    end\n  end\n\n  -- Create an entry for each provided key.\n  for i, key in ipairs(KEYS) do\n    redis.call(\"set\", key, ARGV[1], \"PX\", ARGV[2])\n  end\n\n  -- Return the number of entries added.\n  return #KEYS\n";
const REDLOCK_EXTEND: &str = "\n  -- Return 0 if an entry exists with a *different* lock value.\n  for i, key in ipairs(KEYS) do\n    if redis.call(\"get\", key) ~= ARGV[1] then\n      return 0\n    end\n  end\n\n  -- Update the entry for each provided key.\n  for i, key in ipairs(KEYS) do\n    redis.call(\"set\", key, ARGV[1], \"PX\", ARGV[2])\n  end\n\n  -- Return the number of entries updated.\n  return #KEYS\n";
const REDLOCK_RELEASE: &str = "\n  local count = 0\n  for i, key in ipairs(KEYS) do\n    -- Only remove entries for *this* lock value.\n    if redis.call(\"get\", key) == ARGV[1] then\n      redis.pcall(\"del\", key)\n      count = count + 1\n    end\n  end\n\n  -- Return the number of entries removed.\n  return count\n";

// redis-py 5/6 (redis/lock.py).
const PY_RELEASE: &str = "\n        local token = redis.call('get', KEYS[1])\n        if not token or token ~= ARGV[1] then\n            return 0\n        end\n        redis.call('del', KEYS[1])\n        return 1\n    ";
const PY_EXTEND: &str = "\n        local token = redis.call('get', KEYS[1])\n        if not token or token ~= ARGV[1] then\n            return 0\n        end\n        local expiration = redis.call('pttl', KEYS[1])\n        if not expiration then\n            expiration = 0\n        end\n        if expiration < 0 then\n            return 0\n        end\n\n        local newttl = ARGV[2]\n        if ARGV[3] == \"0\" then\n            newttl = ARGV[2] + expiration\n        end\n        redis.call('pexpire', KEYS[1], newttl)\n        return 1\n    ";
const PY_REACQUIRE: &str = "\n        local token = redis.call('get', KEYS[1])\n        if not token or token ~= ARGV[1] then\n            return 0\n        end\n        redis.call('pexpire', KEYS[1], ARGV[2])\n        return 1\n    ";

fn set_nx_px(con: &mut redis::Connection, key: &str, value: &str, ms: u64) -> bool {
    let r: Option<String> = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .arg("NX")
        .arg("PX")
        .arg(ms)
        .query(con)
        .unwrap();
    r.is_some()
}

fn pttl(con: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(con).unwrap()
}

#[test]
fn redsync_scripts_run_unchanged() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    // The SHA1s redsync ships with its scripts: our cache names them the same.
    for (body, sha) in [
        (REDSYNC_DELETE, "e950836ed1e694540c503ef9972b8de518044d3b"),
        (
            REDSYNC_TOUCH_WITH_SETNX,
            "b6b55c439e02c6f52ffb8be7ec8c0d0ac816ea79",
        ),
        (REDSYNC_TOUCH, "d75bb8b5bd13532ddedd17762e772346e39b321e"),
    ] {
        assert_eq!(Script::new(body).get_hash(), sha);
    }
    let delete = Script::new(REDSYNC_DELETE);
    let touch = Script::new(REDSYNC_TOUCH);
    let touch_nx = Script::new(REDSYNC_TOUCH_WITH_SETNX);
    assert!(set_nx_px(&mut con, "m", "v1", 8000));
    assert!(!set_nx_px(&mut con, "m", "v2", 8000));
    // Extend: ours → PEXPIRE's 1; someone else's → 0.
    let n: i64 = touch
        .key("m")
        .arg("v1")
        .arg(20_000)
        .invoke(&mut con)
        .unwrap();
    assert_eq!(n, 1);
    assert!(pttl(&mut con, "m") > 8000);
    let n: i64 = touch
        .key("m")
        .arg("v2")
        .arg(20_000)
        .invoke(&mut con)
        .unwrap();
    assert_eq!(n, 0);
    // Release: someone else's value → 0, ours → DEL's 1, then gone → -1.
    let n: i64 = delete.key("m").arg("v2").invoke(&mut con).unwrap();
    assert_eq!(n, 0);
    let n: i64 = delete.key("m").arg("v1").invoke(&mut con).unwrap();
    assert_eq!(n, 1);
    let n: i64 = delete.key("m").arg("v1").invoke(&mut con).unwrap();
    assert_eq!(n, -1);
    // touchWithSetNX re-takes an expired lock (SET ... NX inside the script).
    let n: i64 = touch_nx
        .key("m")
        .arg("v1")
        .arg(5000)
        .invoke(&mut con)
        .unwrap();
    assert_eq!(n, 1);
    let v: String = redis::cmd("GET").arg("m").query(&mut con).unwrap();
    assert_eq!(v, "v1");
    let n: i64 = touch_nx
        .key("m")
        .arg("v2")
        .arg(5000)
        .invoke(&mut con)
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn node_redlock_scripts_run_unchanged() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let acquire = Script::new(REDLOCK_ACQUIRE);
    let extend = Script::new(REDLOCK_EXTEND);
    let release = Script::new(REDLOCK_RELEASE);
    let n: i64 = acquire
        .key("a")
        .key("b")
        .arg("tok")
        .arg(10_000)
        .invoke(&mut con)
        .unwrap();
    assert_eq!(n, 2);
    let n: i64 = acquire
        .key("b")
        .key("c")
        .arg("other")
        .arg(10_000)
        .invoke(&mut con)
        .unwrap();
    assert_eq!(n, 0, "one of the keys is held");
    let exists: i64 = redis::cmd("EXISTS").arg("c").query(&mut con).unwrap();
    assert_eq!(exists, 0, "a refused acquire created nothing");
    let n: i64 = extend
        .key("a")
        .key("b")
        .arg("tok")
        .arg(30_000)
        .invoke(&mut con)
        .unwrap();
    assert_eq!(n, 2);
    assert!(pttl(&mut con, "a") > 10_000 && pttl(&mut con, "b") > 10_000);
    let n: i64 = extend
        .key("a")
        .arg("other")
        .arg(30_000)
        .invoke(&mut con)
        .unwrap();
    assert_eq!(n, 0);
    let n: i64 = release
        .key("a")
        .key("b")
        .key("c")
        .arg("tok")
        .invoke(&mut con)
        .unwrap();
    assert_eq!(n, 2);
    let left: i64 = redis::cmd("EXISTS")
        .arg("a")
        .arg("b")
        .query(&mut con)
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn redis_py_lock_scripts_run_unchanged() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let release = Script::new(PY_RELEASE);
    let extend = Script::new(PY_EXTEND);
    let reacquire = Script::new(PY_REACQUIRE);
    assert!(set_nx_px(&mut con, "py", "t1", 5000));
    let n: i64 = extend
        .key("py")
        .arg("t1")
        .arg(10_000)
        .arg("0")
        .invoke(&mut con)
        .unwrap();
    assert_eq!(n, 1);
    assert!(pttl(&mut con, "py") > 10_000, "additional time is added");
    let n: i64 = extend
        .key("py")
        .arg("t1")
        .arg(3000)
        .arg("1")
        .invoke(&mut con)
        .unwrap();
    assert_eq!(n, 1);
    assert!(pttl(&mut con, "py") <= 3000, "replace_ttl replaces");
    let n: i64 = reacquire
        .key("py")
        .arg("t1")
        .arg(9000)
        .invoke(&mut con)
        .unwrap();
    assert_eq!(n, 1);
    assert!(pttl(&mut con, "py") > 3000);
    let n: i64 = release.key("py").arg("nope").invoke(&mut con).unwrap();
    assert_eq!(n, 0);
    let n: i64 = release.key("py").arg("t1").invoke(&mut con).unwrap();
    assert_eq!(n, 1);
    let n: i64 = extend
        .key("py")
        .arg("t1")
        .arg(1000)
        .arg("0")
        .invoke(&mut con)
        .unwrap();
    assert_eq!(n, 0, "no lock, nothing to extend");
}

/// redis-py's own `Lock` class (tests/scripting/redis_py_lock.py) when python3 has
/// redis-py; the Rust tests above cover the same scripts when it has not.
#[test]
fn redis_py_lock_class_when_available() {
    let has_redis_py = Command::new("python3")
        .args(["-c", "import redis"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_redis_py {
        eprintln!("redis-py is not installed for python3: redis_py_lock.py not run");
        return;
    }
    let server = Server::start(&[]);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/scripting/redis_py_lock.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(server.port.to_string())
        .output()
        .expect("run python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(", 0 failed"), "{text}");
}

/// Redis's conversions both ways, checked on the wire.
#[test]
fn type_conversions_both_ways() {
    let server = Server::start(&[]);
    let mut raw = Raw::connect(server.port);
    assert_eq!(raw.cmd(&["SET", "s", "text"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["SET", "n", "41"]), "+OK\r\n");
    let cases: &[(&str, &str)] = &[
        // Lua → reply
        ("return 'hello'", "$5\r\nhello\r\n"),
        ("return 100.5", ":100\r\n"),
        ("return -3.9", ":-3\r\n"),
        ("return true", ":1\r\n"),
        ("return false", "$-1\r\n"),
        ("return nil", "$-1\r\n"),
        ("return {ok='fine'}", "+fine\r\n"),
        (
            "return {err='ERR this is an error'}",
            "-ERR this is an error\r\n",
        ),
        (
            "return {1,2,3,'ciao',{1,2}}",
            "*5\r\n:1\r\n:2\r\n:3\r\n$4\r\nciao\r\n*2\r\n:1\r\n:2\r\n",
        ),
        ("return {1,nil,3}", "*1\r\n:1\r\n"),
        ("return {1,false,3}", "*3\r\n:1\r\n$-1\r\n:3\r\n"),
        ("return _G", "*0\r\n"),
        ("return redis.status_reply('FINE')", "+FINE\r\n"),
        ("return redis.error_reply('My Error')", "-My Error\r\n"),
        ("return redis.error_reply('MyError')", "-ERR MyError\r\n"),
        // reply → Lua
        (
            "local v = redis.call('incr','n') return {type(v), v}",
            "*2\r\n$6\r\nnumber\r\n:42\r\n",
        ),
        (
            "local v = redis.call('get','s') return {type(v), v}",
            "*2\r\n$6\r\nstring\r\n$4\r\ntext\r\n",
        ),
        (
            "local v = redis.call('get','none') return {type(v), tostring(v)}",
            "*2\r\n$7\r\nboolean\r\n$5\r\nfalse\r\n",
        ),
        (
            "local v = redis.call('set','k','v') return {type(v), v.ok}",
            "*2\r\n$5\r\ntable\r\n$2\r\nOK\r\n",
        ),
        (
            "local v = redis.pcall('incr','s') return {type(v), v.err}",
            "*2\r\n$5\r\ntable\r\n$43\r\nERR value is not an integer or out of range\r\n",
        ),
        (
            "local v = redis.call('mget','s','none') return {#v, v[1], tostring(v[2])}",
            "*3\r\n:2\r\n$4\r\ntext\r\n$5\r\nfalse\r\n",
        ),
        // numbers as command arguments
        (
            "redis.call('set','f',9007199254740991) return redis.call('get','f')",
            "$16\r\n9007199254740991\r\n",
        ),
        (
            "redis.call('set','f',0.5) return redis.call('get','f')",
            "$3\r\n0.5\r\n",
        ),
        (
            "return redis.sha1hex('Pizza & Mandolino')",
            "$40\r\n74822d82031af7493c20eefa13bd07ec4fada82f\r\n",
        ),
        ("return cjson.encode({1,'a/b'})", "$10\r\n[1,\"a\\/b\"]\r\n"),
        ("return cjson.decode('{\"k\":[1,2]}').k[2]", ":2\r\n"),
        ("return bit.tohex(65535, -2147483648)", "$8\r\n0000FFFF\r\n"),
    ];
    for (script, wire) in cases {
        assert_eq!(raw.cmd(&["EVAL", script, "0"]), *wire, "{script}");
    }
    // KEYS and ARGV.
    assert_eq!(
        raw.cmd(&[
            "EVAL",
            "return {KEYS[1],KEYS[2],ARGV[1],ARGV[2]}",
            "2",
            "a",
            "b",
            "c",
            "d"
        ]),
        "*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n"
    );
}

/// Errors: pcall catches them; redis.call raises them in Redis 7's format.
#[test]
fn errors_and_pcall() {
    let server = Server::start(&[]);
    let mut raw = Raw::connect(server.port);
    let cases: &[(&str, &str)] = &[
        (
            "redis.call('nosuchcommand')",
            "-ERR Unknown Redis command called from script script: SHA, on @user_script:1.\r\n",
        ),
        (
            "\nreturn redis.call('get','a','b')",
            "-ERR Wrong number of args calling Redis command from script script: SHA, on @user_script:2.\r\n",
        ),
        (
            "return redis.call('multi')",
            "-ERR This Redis command is not allowed from script script: SHA, on @user_script:1.\r\n",
        ),
        (
            "return redis.call('lock.acquire','r','me')",
            "-ERR This Redis command is not allowed from script script: SHA, on @user_script:1.\r\n",
        ),
        (
            "error('boom')",
            "-ERR user_script:1: boom script: SHA, on @user_script:1.\r\n",
        ),
        ("return a", "-ERR user_script:1: Script attempted to access nonexistent global variable 'a' script: SHA, on @user_script:1.\r\n"),
        ("a = 10", "-ERR user_script:1: Attempt to modify a readonly table script: SHA, on @user_script:1.\r\n"),
        ("redis.call = nil", "-ERR user_script:1: Attempt to modify a readonly table script: SHA, on @user_script:1.\r\n"),
        ("os.exit()", "-ERR user_script:1: Script attempted to access nonexistent global variable 'os' script: SHA, on @user_script:1.\r\n"),
        ("return pcall(function() redis.call('nosuch') end)", "$-1\r\n"),
        (
            "local ok, e = pcall(function() redis.call('nosuch') end) return e",
            "$44\r\nERR Unknown Redis command called from script\r\n",
        ),
        ("local ok, e = pcall(error, {err='X'}) return e", "$1\r\nX\r\n"),
        ("return redis.pcall('nosuch')", "-ERR Unknown Redis command called from script\r\n"),
        ("return 'x' ..", "-ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'\r\n"),
    ];
    for (script, wire) in cases {
        let sha = sha1_of(&mut raw, script);
        let want = wire.replace("SHA", &sha);
        assert_eq!(raw.cmd(&["EVAL", script, "0"]), want, "{script}");
    }
    assert_eq!(
        raw.cmd(&["EVAL", "return 1", "-1"]),
        "-ERR Number of keys can't be negative\r\n"
    );
    assert_eq!(
        raw.cmd(&["EVAL", "return 1", "2", "a"]),
        "-ERR Number of keys can't be greater than number of args\r\n"
    );
    // A failing script leaves the connection usable.
    assert_eq!(raw.cmd(&["PING"]), "+PONG\r\n");
}

fn sha1_of(raw: &mut Raw, script: &str) -> String {
    // SCRIPT LOAD names the SHA1 (or refuses a script that does not compile).
    let reply = raw.cmd(&["SCRIPT", "LOAD", script]);
    reply.lines().nth(1).unwrap_or("").to_string()
}

#[test]
fn script_cache_noscript_and_read_only() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    let mut raw = Raw::connect(server.port);
    let sha = sha1_of(&mut raw, "return 'loaded'");
    assert_eq!(sha, "b534286061d4b9e4026607613b95c06c06015ae8");
    assert_eq!(raw.cmd(&["EVALSHA", &sha, "0"]), "$6\r\nloaded\r\n");
    assert_eq!(
        raw.cmd(&["EVALSHA", &sha.to_uppercase(), "0"]),
        "$6\r\nloaded\r\n"
    );
    assert_eq!(
        raw.cmd(&[
            "SCRIPT",
            "EXISTS",
            &sha,
            "ffd632c7d33e571e9f24556ebed26c3479a87130"
        ]),
        "*2\r\n:1\r\n:0\r\n"
    );
    assert_eq!(raw.cmd(&["SCRIPT", "FLUSH"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["SCRIPT", "EXISTS", &sha]), "*1\r\n:0\r\n");
    let noscript = "-NOSCRIPT No matching script. Please use EVAL.\r\n";
    assert_eq!(raw.cmd(&["EVALSHA", &sha, "0"]), noscript);
    assert_eq!(raw.cmd(&["EVALSHA", "NotValidShaSUM", "0"]), noscript);
    assert_eq!(raw.cmd(&["SCRIPT", "FLUSH", "ASYNC"]), "+OK\r\n");
    assert_eq!(
        raw.cmd(&["SCRIPT", "FLUSH", "LATER"]),
        "-ERR SCRIPT FLUSH only support SYNC|ASYNC option\r\n"
    );
    // EVAL caches the script for EVALSHA.
    assert_eq!(
        raw.cmd(&["EVAL", "return 'loaded'", "0"]),
        "$6\r\nloaded\r\n"
    );
    assert_eq!(raw.cmd(&["EVALSHA", &sha, "0"]), "$6\r\nloaded\r\n");
    // EVAL_RO refuses a write and changes nothing; reads work.
    let write = "return redis.call('set', KEYS[1], 'v')";
    let err = query_err(&mut con, redis::cmd("EVAL_RO").arg(write).arg(1).arg("ro"));
    assert!(
        err.starts_with("ERR Write commands are not allowed from read-only scripts."),
        "{err}"
    );
    let exists: i64 = redis::cmd("EXISTS").arg("ro").query(&mut con).unwrap();
    assert_eq!(exists, 0);
    let _: () = redis::cmd("SET")
        .arg("ro")
        .arg("x")
        .query(&mut con)
        .unwrap();
    let v: String = redis::cmd("EVAL_RO")
        .arg("return redis.call('get', KEYS[1])")
        .arg(1)
        .arg("ro")
        .query(&mut con)
        .unwrap();
    assert_eq!(v, "x");
    // A no-writes shebang makes EVAL read-only too.
    let err = query_err(
        &mut con,
        redis::cmd("EVAL")
            .arg("#!lua flags=no-writes\n".to_string() + write)
            .arg(1)
            .arg("ro"),
    );
    assert!(err.contains("Write commands are not allowed"), "{err}");
}

/// Scripts inside MULTI/EXEC run in EXEC, atomically with the other queued commands.
#[test]
fn eval_inside_a_transaction() {
    let server = Server::start(&[]);
    let mut raw = Raw::connect(server.port);
    assert_eq!(raw.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["SET", "t", "1"]), "+QUEUED\r\n");
    assert_eq!(
        raw.cmd(&["EVAL", "return redis.call('incr', KEYS[1])", "1", "t"]),
        "+QUEUED\r\n"
    );
    assert_eq!(raw.cmd(&["EXEC"]), "*2\r\n+OK\r\n:2\r\n");
}

/// Concurrent clients doing GET-then-SET in a script never lose an update.
#[test]
fn scripts_are_atomic() {
    let server = Server::start(&[]);
    let port = server.port;
    let clients = 8;
    let rounds = 200;
    let rmw = "local v = tonumber(redis.call('get', KEYS[1]) or '0') redis.call('set', KEYS[1], v + 1) return v + 1";
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            thread::spawn(move || {
                let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
                let mut con = client.get_connection().unwrap();
                let script = Script::new(rmw);
                for _ in 0..rounds {
                    let _: i64 = script.key("counter").invoke(&mut con).unwrap();
                    // Plain commands interleave with the scripts.
                    let _: i64 = redis::cmd("INCR").arg("plain").query(&mut con).unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let mut con = server.conn();
    let n: i64 = redis::cmd("GET").arg("counter").query(&mut con).unwrap();
    assert_eq!(n, clients * rounds);
    let n: i64 = redis::cmd("GET").arg("plain").query(&mut con).unwrap();
    assert_eq!(n, clients * rounds);
}

/// Polls `f` until it returns `Some`, for at most `within`.
fn wait_for<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not reached in {within:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn get_reply(raw: &mut Raw) -> String {
    raw.cmd(&["GET", "k"])
}

#[test]
fn script_kill_stops_a_busy_loop_and_busy_replies_meanwhile() {
    let server = Server::start(&[]);
    let mut admin = Raw::connect(server.port);
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "100"]),
        "+OK\r\n"
    );
    assert_eq!(admin.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(
        admin.cmd(&["SCRIPT", "KILL"]),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
    for script in [
        "while true do end",
        // Redis's pcall trick: the kill is raised again outside pcall.
        "local f = function() while 1 do redis.call('ping') end end while 1 do pcall(f) end",
    ] {
        let mut busy = Raw::connect(server.port);
        busy.send_cmd(&[b"EVAL", script.as_bytes(), b"0"]);
        let busy_reply = "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n";
        let mut other = Raw::connect(server.port);
        wait_for(Duration::from_secs(20), || {
            (get_reply(&mut other) == busy_reply).then_some(())
        });
        // Commands that do not touch the keyspace are still served.
        assert_eq!(other.cmd(&["PING"]), "+PONG\r\n");
        assert_eq!(admin.cmd(&["SCRIPT", "KILL"]), "+OK\r\n");
        let reply = busy.reply_string();
        assert!(
            reply.starts_with("-ERR Script killed by user with SCRIPT KILL..."),
            "{reply}"
        );
        assert_eq!(get_reply(&mut other), "$1\r\nv\r\n");
        assert_eq!(busy.cmd(&["PING"]), "+PONG\r\n");
    }
}

#[test]
fn a_script_that_wrote_is_unkillable() {
    let server = Server::start(&[]);
    let mut admin = Raw::connect(server.port);
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "lua-time-limit", "100"]),
        "+OK\r\n"
    );
    // Writes, then spins for about two seconds of the node's clock.
    let script = "redis.call('set', KEYS[1], 'y') \
        local s = tonumber(redis.call('time')[1]) \
        while tonumber(redis.call('time')[1]) < s + 2 do end \
        return 'done'";
    let mut busy = Raw::connect(server.port);
    busy.send_cmd(&[b"EVAL", script.as_bytes(), b"1", b"w"]);
    let reply = wait_for(Duration::from_secs(20), || {
        let r = admin.cmd(&["SCRIPT", "KILL"]);
        (!r.starts_with("-NOTBUSY")).then_some(r)
    });
    assert!(
        reply.starts_with("-UNKILLABLE Sorry the script already executed write commands"),
        "{reply}"
    );
    assert_eq!(busy.reply_string(), "$4\r\ndone\r\n");
    assert_eq!(admin.cmd(&["GET", "w"]), "$1\r\ny\r\n");
}

#[test]
fn sandbox_and_info() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    for script in [
        "return loadstring(string.dump(function() return 1 end))",
        "return getmetatable(_G).__index",
        "return rawget(_G, 'redis') == redis",
    ] {
        let v: Value = redis::cmd("EVAL")
            .arg(script)
            .arg(0)
            .query(&mut con)
            .unwrap();
        assert!(matches!(v, Value::Nil | Value::Int(1)), "{script}: {v:?}");
    }
    for script in [
        "setmetatable(_G, {})",
        "rawset(_G, 'x', 1)",
        "string.rep = nil",
        "getmetatable('').__index = nil",
    ] {
        let err = query_err(&mut con, redis::cmd("EVAL").arg(script).arg(0));
        assert!(
            err.contains("Attempt to modify a readonly table"),
            "{script}: {err}"
        );
    }
    let info: String = redis::cmd("INFO").arg("memory").query(&mut con).unwrap();
    assert!(info.contains("number_of_cached_scripts:"), "{info}");
}
