//! `CLIENT REPLY`, `CLIENT PAUSE`/`UNPAUSE`, `CLIENT UNBLOCK` and what `CLIENT LIST` /
//! `CLIENT INFO` show, with raw sockets for exact bytes. The scenarios that Redis can
//! run too (no `LOCK.*`, no Redis 7.2-only fields) also run against `redis-server` when
//! it is installed, with the same assertions.
//!
//! Also what a connection sees of the server around it: `MONITOR`, the query buffer's
//! size and limit (`qbuf`, `qbuf-free`, `client-query-buffer-limit`) and `CONFIG SET
//! port` moving the listener under connected clients.
//!
//! Waiting clients are found by polling `CLIENT LIST` (or `INFO`) under a generous
//! deadline; nothing asserts on speed.
//!
//! Why this file is long: one scenario per client-facing behaviour, each run twice (on
//! Conclave and on `redis-server`) with the same assertions.

mod common;
mod resp_support;

use std::time::{Duration, Instant};

use common::Server;
use resp_support::scenario::{on_conclave_and_redis, Conn};

const OK: &str = "+OK\r\n";

impl Conn {
    /// `CLIENT LIST ID <id>`'s line (the verbatim/bulk framing stripped).
    fn list_line(&mut self, id: &str) -> String {
        let r = self.cmd(&["CLIENT", "LIST", "ID", id]);
        r.lines().nth(1).unwrap_or_default().to_string()
    }

    /// Polls `CLIENT LIST ID <id>` until its line contains every one of `parts`.
    fn wait_listed(&mut self, id: &str, parts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let line = self.list_line(id);
            if parts.iter().all(|p| line.contains(p)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "{}: client {id} never showed {parts:?}: {line}",
                self.who()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn client_reply_off_and_skip_silence_replies_not_pushes() {
    on_conclave_and_redis(|port, who| {
        let mut c = Conn::open(port, who);
        // OFF: nothing comes back (errors neither) until ON, which answers.
        c.send(&["CLIENT", "REPLY", "OFF"]);
        c.send(&["SET", "a", "1"]);
        c.send(&["GET", "a"]);
        c.send(&["CLIENT", "REPLY", "BOGUS"]);
        c.send(&["CLIENT", "REPLY", "SKIP"]);
        c.expect(&["CLIENT", "REPLY", "ON"], OK);
        // SKIP: the next command's reply only.
        c.send(&["CLIENT", "REPLY", "SKIP"]);
        c.send(&["GET", "a"]);
        c.expect(&["GET", "a"], "$1\r\n1\r\n");
        c.expect(&["CLIENT", "REPLY", "BOGUS"], "-ERR syntax error\r\n");
        // Pushes still arrive while replies are off.
        let mut t = Conn::open(port, who);
        let hello = t.cmd(&["HELLO", "3"]);
        assert!(hello.starts_with('%'), "{who}: {hello:?}");
        t.expect(&["CLIENT", "TRACKING", "ON"], OK);
        t.expect(&["GET", "k"], "_\r\n");
        t.send(&["CLIENT", "REPLY", "OFF"]);
        c.expect(&["SET", "k", "1"], OK);
        t.expect_next(">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n");
        t.expect(&["CLIENT", "REPLY", "ON"], OK);
        t.expect(&["PING"], "+PONG\r\n");
    });
}

#[test]
fn client_pause_write_holds_only_writes_until_unpause() {
    on_conclave_and_redis(|port, who| {
        let mut admin = Conn::open(port, who);
        let mut c = Conn::open(port, who);
        let cid = c.id().to_string();
        let mut m = Conn::open(port, who);
        admin.expect(
            &["CLIENT", "PAUSE", "abc"],
            "-ERR timeout is not an integer or out of range\r\n",
        );
        admin.expect(&["CLIENT", "PAUSE", "-1"], "-ERR timeout is negative\r\n");
        admin.expect(
            &["CLIENT", "PAUSE", "10", "SOME"],
            "-ERR CLIENT PAUSE mode must be WRITE or ALL\r\n",
        );
        // A transaction with a write, queued before the pause.
        m.expect(&["MULTI"], OK);
        m.expect(&["SET", "t", "1"], "+QUEUED\r\n");
        admin.expect(&["CLIENT", "PAUSE", "100000", "WRITE"], OK);
        // Reads and read-only transactions pass.
        c.expect(&["GET", "a"], "$-1\r\n");
        let mut r = Conn::open(port, who);
        r.expect(&["MULTI"], OK);
        r.expect(&["GET", "a"], "+QUEUED\r\n");
        r.expect(&["EXEC"], "*1\r\n$-1\r\n");
        // A write waits, blocked, showing what it runs.
        c.send(&["SET", "a", "1"]);
        // (Its command has left the read buffer: qbuf=0, as Redis shows it.)
        admin.wait_listed(&cid, &[" flags=b ", " cmd=set ", " qbuf=0 "]);
        m.send(&["EXEC"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !admin
            .cmd(&["INFO", "clients"])
            .contains("blocked_clients:2\r\n")
        {
            assert!(Instant::now() < deadline, "{who}: blocked_clients never 2");
            std::thread::sleep(Duration::from_millis(20));
        }
        admin.expect(&["CLIENT", "UNPAUSE"], OK);
        c.expect_next(OK);
        m.expect_next("*1\r\n+OK\r\n");
        admin.wait_listed(&cid, &[" flags=N "]);
    });
}

#[test]
fn client_pause_all_holds_every_command_for_its_time() {
    on_conclave_and_redis(|port, who| {
        let mut admin = Conn::open(port, who);
        let mut c = Conn::open(port, who);
        // The later end and the stricter mode of two pauses win.
        admin.expect(&["CLIENT", "PAUSE", "300", "ALL"], OK);
        admin.expect(&["CLIENT", "PAUSE", "10", "WRITE"], OK);
        // Even reads wait; the pause ends by itself.
        c.expect(&["GET", "x"], "$-1\r\n");
        admin.expect(&["PING"], "+PONG\r\n");
    });
}

#[test]
fn client_unblock_ends_a_lock_wait_as_a_timeout_or_an_error() {
    let server = Server::start(&[]);
    let (port, who) = (server.port, "conclave");
    let mut holder = Conn::open(port, who);
    let mut waiter = Conn::open(port, who);
    let wid = waiter.id().to_string();
    let mut admin = Conn::open(port, who);
    let token = holder.cmd(&["LOCK.ACQUIRE", "r", "o1", "TTL", "60000"]);
    assert!(token.starts_with(':'), "{token}");
    admin.expect(&["CLIENT", "UNBLOCK", &wid], ":0\r\n");
    admin.expect(
        &["CLIENT", "UNBLOCK", "x"],
        "-ERR value is not an integer or out of range\r\n",
    );
    admin.expect(
        &["CLIENT", "UNBLOCK", &wid, "SOON"],
        "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n",
    );
    // TIMEOUT: answered as a wait that ran out (a null), the request cancelled.
    waiter.send(&["LOCK.ACQUIRE", "r", "o2", "WAIT", "100000"]);
    admin.wait_listed(&wid, &[" flags=b ", " cmd=lock.acquire "]);
    admin.expect(&["CLIENT", "UNBLOCK", &wid, "TIMEOUT"], ":1\r\n");
    waiter.expect_next("$-1\r\n");
    let info = admin.cmd(&["LOCK.INFO", "r"]);
    assert!(info.contains("$7\r\nwaiters\r\n*0\r\n"), "{info}");
    admin.wait_listed(&wid, &[" flags=N "]);
    admin.expect(&["CLIENT", "UNBLOCK", &wid], ":0\r\n");
    // ERROR: an error reply, and the request is withdrawn (in the background).
    waiter.send(&["LOCK.ACQUIRE", "r", "o3", "WAIT", "100000"]);
    admin.wait_listed(&wid, &[" flags=b "]);
    admin.expect(&["CLIENT", "UNBLOCK", &wid, "ERROR"], ":1\r\n");
    waiter.expect_next("-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = admin.cmd(&["LOCK.INFO", "r"]);
        if info.contains("$7\r\nwaiters\r\n*0\r\n") {
            break;
        }
        assert!(Instant::now() < deadline, "o3 never withdrawn: {info}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Neither withdrawn request is granted once the lock is free.
    holder.expect(&["LOCK.RELEASE", "r", "o1"], ":1\r\n");
    let info = admin.cmd(&["LOCK.INFO", "r"]);
    assert!(info.contains("$4\r\nmode\r\n$4\r\nnone\r\n"), "{info}");
    // The waiter's connection is still usable.
    waiter.expect(&["PING"], "+PONG\r\n");
}

#[test]
fn client_list_shows_the_current_command_buffers_and_modes() {
    let server = Server::start(&[]);
    let (port, who) = (server.port, "conclave");
    let mut c = Conn::open(port, who);
    let cid = c.id().to_string();
    // The command being run, its bytes in the read buffer, its arguments' size.
    let list = c.cmd(&["CLIENT", "LIST"]);
    let own = list
        .lines()
        .find(|l| l.contains(&format!("id={cid} ")))
        .unwrap_or_default()
        .to_string();
    for part in [
        " flags=N ",
        " qbuf=26 ",
        " argv-mem=10 ",
        " multi=-1 ",
        " cmd=client|list ",
        " redir=-1 ",
        " resp=2 ",
        " sub=0 psub=0 ",
    ] {
        assert!(own.contains(part), "{part} missing: {own}");
    }
    let info = c.cmd(&["CLIENT", "INFO"]);
    assert!(
        info.contains(" qbuf=26 ") && info.contains(" cmd=client|info "),
        "{info}"
    );
    // RESP3, library name, tracking with its redirect target.
    let mut s = Conn::open(port, who);
    let sid = s.id().to_string();
    let hello = c.cmd(&["HELLO", "3"]);
    assert!(hello.starts_with('%'), "{hello}");
    c.expect(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"], OK);
    c.expect(&["CLIENT", "TRACKING", "ON", "REDIRECT", &sid], OK);
    let info = c.cmd(&["CLIENT", "INFO"]);
    for part in [
        " flags=t ",
        &format!(" redir={sid} "),
        " resp=3 ",
        " lib-name=redis-py ",
    ] {
        assert!(info.contains(part), "{part} missing: {info}");
    }
    c.expect(&["CLIENT", "TRACKING", "OFF"], OK);
    c.expect(&["CLIENT", "TRACKING", "ON", "BCAST"], OK);
    c.expect(&["CLIENT", "NO-EVICT", "ON"], OK);
    let info = c.cmd(&["CLIENT", "INFO"]);
    assert!(
        info.contains(" flags=tBe ") && info.contains(" redir=0 "),
        "{info}"
    );
    // (Off again, so no invalidation comes between the replies read below.)
    c.expect(&["CLIENT", "TRACKING", "OFF"], OK);
    // A subscriber is a pub/sub client.
    s.expect(
        &["SUBSCRIBE", "ch"],
        "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
    );
    let line = c.wait_listed(&sid, &[" flags=P ", " sub=1 psub=0 ", " cmd=subscribe "]);
    assert!(line.contains(" qbuf=0 "), "{line}");
    let pubsub = c.cmd(&["CLIENT", "LIST", "TYPE", "PUBSUB"]);
    assert!(
        pubsub.contains(&format!("id={sid} ")) && !pubsub.contains(&format!("id={cid} ")),
        "{pubsub}"
    );
    let normal = c.cmd(&["CLIENT", "LIST", "TYPE", "NORMAL"]);
    assert!(
        !normal.contains(&format!("id={sid} ")) && normal.contains(&format!("id={cid} ")),
        "{normal}"
    );
    // In MULTI: the queue's length, the last command queued.
    let mut m = Conn::open(port, who);
    let mid = m.id().to_string();
    m.expect(&["MULTI"], OK);
    m.expect(&["SET", "a", "1"], "+QUEUED\r\n");
    m.expect(&["GET", "a"], "+QUEUED\r\n");
    c.wait_listed(&mid, &[" flags=x ", " multi=2 ", " cmd=get "]);
    m.expect(&["EXEC"], "*2\r\n+OK\r\n$1\r\n1\r\n");
    c.wait_listed(&mid, &[" flags=N ", " multi=-1 ", " cmd=exec "]);
    // An unknown command leaves none (Redis's cmd=NULL).
    let err = m.cmd(&["NOSUCH"]);
    assert!(err.starts_with("-ERR unknown command"), "{err}");
    c.wait_listed(&mid, &[" cmd=NULL "]);
    // A watched key that changed.
    m.expect(&["WATCH", "w"], OK);
    c.expect(&["SET", "w", "1"], OK);
    m.expect(&["PING"], "+PONG\r\n");
    c.wait_listed(&mid, &[" flags=d "]);
}

fn expired_keys(c: &mut Conn) -> u64 {
    let stats = c.cmd(&["INFO", "stats"]);
    stats
        .lines()
        .find_map(|l| l.strip_prefix("expired_keys:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("expired_keys")
}

#[test]
fn a_pause_keeps_the_dataset_still_and_starts_after_exec() {
    on_conclave_and_redis(|port, who| {
        let mut c = Conn::open(port, who);
        let before = expired_keys(&mut c);
        // The pause comes from inside a transaction: the writes queued after it run.
        c.expect(&["MULTI"], OK);
        c.expect(&["SET", "foo", "bar", "PX", "10"], "+QUEUED\r\n");
        c.expect(&["SET", "bar", "foo", "PX", "10"], "+QUEUED\r\n");
        c.expect(&["CLIENT", "PAUSE", "50000", "WRITE"], "+QUEUED\r\n");
        c.expect(&["SET", "after", "1"], "+QUEUED\r\n");
        c.expect(&["EXEC"], "*4\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n");
        let mut w = Conn::open(port, who);
        let wid = w.id().to_string();
        w.send(&["SET", "held", "1"]);
        c.wait_listed(&wid, &[" flags=b "]);
        // Expired keys read as missing, but nothing deletes them meanwhile.
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.cmd(&["GET", "foo"]) != "$-1\r\n" || c.cmd(&["GET", "bar"]) != "$-1\r\n" {
            assert!(
                Instant::now() < deadline,
                "{who}: keys never logically expired"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(expired_keys(&mut c), before, "{who}");
        c.expect(&["GET", "after"], "$1\r\n1\r\n");
        c.expect(&["GET", "held"], "$-1\r\n");
        c.expect(&["CLIENT", "UNPAUSE"], OK);
        w.expect_next(OK);
        c.expect(&["GET", "foo"], "$-1\r\n");
        c.expect(&["GET", "bar"], "$-1\r\n");
        assert_eq!(expired_keys(&mut c), before + 2, "{who}");
    });
}

/// The next `MONITOR` line of `m` with its time replaced by `T` and `addr` (the sending
/// client's address) by `A`.
fn monitor_line(m: &mut Conn, addr: &str) -> String {
    let line = m.raw.reply_string();
    let (time, rest) = line
        .strip_prefix('+')
        .and_then(|l| l.split_once(' '))
        .unwrap_or_else(|| panic!("{}: not a monitor line: {line:?}", m.who()));
    let (secs, micros) = time.split_once('.').expect("a time with microseconds");
    assert!(
        secs.bytes().all(|b| b.is_ascii_digit())
            && micros.len() == 6
            && micros.bytes().all(|b| b.is_ascii_digit()),
        "{}: time {time:?}",
        m.who()
    );
    format!("+T {}", rest.replace(addr, "A"))
}

#[test]
fn monitor_streams_commands_scripts_and_transactions_as_redis_does() {
    on_conclave_and_redis(|port, who| {
        let mut m = Conn::open(port, who);
        m.expect(&["MONITOR"], OK);
        let mut c = Conn::resp3(port, who);
        let addr = c.raw.stream().local_addr().expect("addr").to_string();
        let mut next = |want: &str| assert_eq!(monitor_line(&mut m, &addr), want, "{who}");
        next("+T [0 A] \"HELLO\" \"3\"\r\n");
        // Quoted as sdscatrepr; the name as sent.
        c.expect(&["set", "k\"\\", "a\r\n\t\u{1}b"], OK);
        next("+T [0 A] \"set\" \"k\\\"\\\\\" \"a\\r\\n\\t\\x01b\"\r\n");
        // EVAL before its script's commands, which come from `lua`.
        c.expect(
            &["EVAL", "return redis.call('get', KEYS[1])", "1", "k\"\\"],
            "$6\r\na\r\n\t\u{1}b\r\n",
        );
        next("+T [0 A] \"EVAL\" \"return redis.call('get', KEYS[1])\" \"1\" \"k\\\"\\\\\"\r\n");
        next("+T [0 lua] \"get\" \"k\\\"\\\\\"\r\n");
        // Not shown: refused commands, queued ones (until EXEC runs them), admin ones
        // (CONFIG, CLIENT LIST), and secrets.
        c.expect(&["MULTI"], OK);
        c.expect(&["SET", "a", "1"], "+QUEUED\r\n");
        c.expect(&["EXEC"], "*1\r\n+OK\r\n");
        next("+T [0 A] \"MULTI\"\r\n");
        next("+T [0 A] \"SET\" \"a\" \"1\"\r\n");
        next("+T [0 A] \"EXEC\"\r\n");
        c.expect(&["MULTI"], OK);
        c.expect(
            &["NOSUCH"],
            "-ERR unknown command 'NOSUCH', with args beginning with: \r\n",
        );
        c.expect(
            &["EXEC"],
            "-EXECABORT Transaction discarded because of previous errors.\r\n",
        );
        c.expect(
            &["GET"],
            "-ERR wrong number of arguments for 'get' command\r\n",
        );
        c.cmd(&["CONFIG", "GET", "maxmemory"]);
        c.cmd(&["CLIENT", "LIST"]);
        c.expect(&["AUTH", "secret"], "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n");
        let id = c.id();
        c.expect(&["CLIENT", "ID"], &format!(":{id}\r\n"));
        next("+T [0 A] \"MULTI\"\r\n");
        next("+T [0 A] \"EXEC\"\r\n");
        next("+T [0 A] \"AUTH\" \"(redacted)\"\r\n");
        next("+T [0 A] \"CLIENT\" \"ID\"\r\n");
        next("+T [0 A] \"CLIENT\" \"ID\"\r\n");
        // A second MONITOR answers nothing; RESET ends monitoring.
        m.send(&["MONITOR"]);
        m.expect(&["RESET"], "+RESET\r\n");
        c.expect(&["SET", "a", "2"], OK);
        m.quiet();
        let listed = c.cmd(&["CLIENT", "LIST"]);
        assert!(!listed.contains("flags=O"), "{who}: {listed}");
    });
}

/// A port nothing listens on (bound and released at once).
fn unused_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn config_set_port_moves_the_listener_and_a_port_in_use_rolls_the_whole_set_back() {
    on_conclave_and_redis(|port, who| {
        let mut c = Conn::open(port, who);
        c.expect(&["CONFIG", "SET", "maxmemory", "10000002"], OK);
        // A port in use: the apply step fails, nothing of the command stays applied.
        let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let busy_port = busy.local_addr().expect("addr").port().to_string();
        let refused = c.cmd(&["CONFIG", "SET", "maxmemory", "10000001", "port", &busy_port]);
        assert!(
            refused.starts_with(
                "-ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port"
            ),
            "{who}: {refused:?}"
        );
        c.expect(
            &["CONFIG", "GET", "maxmemory"],
            "*2\r\n$9\r\nmaxmemory\r\n$8\r\n10000002\r\n",
        );
        // Setting the port it has changes nothing; a new one moves the listener, and the
        // clients already connected stay.
        c.expect(&["CONFIG", "SET", "port", &port.to_string()], OK);
        let moved = unused_port();
        c.expect(&["CONFIG", "SET", "port", &moved.to_string()], OK);
        let mut d = Conn::open(moved, who);
        d.expect(&["PING"], "+PONG\r\n");
        c.expect(&["PING"], "+PONG\r\n");
        let old = std::net::TcpStream::connect(("127.0.0.1", port));
        assert!(old.is_err(), "{who}: the old port still accepts");
        let p = moved.to_string();
        c.expect(
            &["CONFIG", "GET", "port"],
            &format!("*2\r\n$4\r\nport\r\n${}\r\n{p}\r\n", p.len()),
        );
        // Back where the harness expects it.
        c.expect(&["CONFIG", "SET", "port", &port.to_string()], OK);
        c.expect(&["CONFIG", "SET", "maxmemory", "0"], OK);
        drop(busy);
    });
}

#[test]
fn a_client_past_client_query_buffer_limit_is_closed() {
    on_conclave_and_redis(|port, who| {
        let mut c = Conn::open(port, who);
        c.expect(&["CONFIG", "SET", "client-query-buffer-limit", "1mb"], OK);
        let mut big = Conn::open(port, who);
        // A 2 MB argument announced, 1.5 MB of it sent: past the limit, unparsed.
        big.raw.send(b"*2\r\n$3\r\nSET\r\n$2000000\r\n");
        big.raw.send(&vec![b'x'; 1_500_000]);
        big.raw.expect_closed();
        c.expect(&["CONFIG", "SET", "client-query-buffer-limit", "1gb"], OK);
        c.expect(&["PING"], "+PONG\r\n");
    });
}

/// `qbuf + qbuf-free` of client `id` (its query buffer's allocation) in `CLIENT LIST`.
fn query_buffer(c: &mut Conn, id: &str) -> u64 {
    let line = c.list_line(id);
    let field = |name: &str| -> u64 {
        line.split(' ')
            .find_map(|f| f.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{}: no {name} in {line}", c.who()))
    };
    field("qbuf=") + field("qbuf-free=")
}

#[test]
fn the_query_buffer_grows_shrinks_after_a_peak_and_is_freed_when_idle() {
    on_conclave_and_redis(|port, who| {
        let mut c = Conn::open(port, who);
        let mut q = Conn::open(port, who);
        let id = q.id().to_string();
        let fresh = query_buffer(&mut c, &id);
        assert!((16384..32768).contains(&fresh), "{who}: fresh {fresh}");
        // A 400 kB argument: the buffer grows past Redis's 32 KiB resize threshold.
        let big = "A".repeat(400_000);
        q.expect(&["SET", "x", &big], OK);
        let grown = query_buffer(&mut c, &id);
        assert!(grown > 32768, "{who}: grown {grown}");
        // Small commands after it: trimmed to what they need, not to nothing.
        let deadline = Instant::now() + Duration::from_secs(10);
        let trimmed = loop {
            q.expect(&["SET", "x", "AAAA"], OK);
            let now = query_buffer(&mut c, &id);
            if now < grown {
                break now;
            }
            assert!(
                Instant::now() < deadline,
                "{who}: never trimmed from {grown}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(trimmed > 0, "{who}: trimmed to nothing");
        // A client idle for more than 2 s: its buffer is freed. (A fresh one: Redis frees
        // only a buffer with more than 4 KiB unused, which a trimmed one may not have.)
        let mut idle = Conn::open(port, who);
        let idle_id = idle.id().to_string();
        let deadline = Instant::now() + Duration::from_secs(20);
        while query_buffer(&mut c, &idle_id) != 0 {
            assert!(Instant::now() < deadline, "{who}: idle buffer never freed");
            std::thread::sleep(Duration::from_millis(100));
        }
        idle.expect(&["PING"], "+PONG\r\n");
        q.expect(&["PING"], "+PONG\r\n");
    });
}
