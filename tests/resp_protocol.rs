//! Byte-level protocol tests against a real `conclave` process over raw sockets:
//! inline commands, pipelining, frames split across reads, binary-safe and large
//! values, every protocol error path (each answers its error, closes that connection
//! only, and the node keeps serving others), `maxclients`, slow and silent clients,
//! and shutdown by signal and by command.
//!
//! Why this file is long: one case per protocol error path and limit.

mod common;
mod resp_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::Server;
use redis::Commands;
use resp_support::{encode, Raw};

/// Asserts that nothing at all is readable on `s` right now (after a short grace period).
fn assert_no_reply_yet(s: &TcpStream) {
    s.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    let mut buf = [0u8; 64];
    match s.peek(&mut buf) {
        Ok(0) => panic!("connection closed early"),
        Ok(n) => panic!(
            "unexpected early reply {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{e}"
        ),
    }
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
}

/// A connection that is served normally: PING, SET, GET.
fn assert_serving(raw: &mut Raw, tag: &str) {
    assert_eq!(raw.cmd(&["PING"]), "+PONG\r\n", "{tag}");
    assert_eq!(raw.cmd(&["SET", "alive", tag]), "+OK\r\n", "{tag}");
    assert_eq!(
        raw.cmd(&["GET", "alive"]),
        format!("${}\r\n{tag}\r\n", tag.len()),
        "{tag}"
    );
}

#[test]
fn inline_commands() {
    let server = Server::start(&[]);
    let mut raw = Raw::connect(server.port);
    raw.send(b"PING\r\n");
    assert_eq!(raw.reply_string(), "+PONG\r\n");
    raw.send(b"ping\n");
    assert_eq!(
        raw.reply_string(),
        "+PONG\r\n",
        "a bare LF ends an inline line too"
    );
    raw.send(b"SET greeting hello\r\nGET greeting\r\n");
    assert_eq!(raw.reply_string(), "+OK\r\n");
    assert_eq!(raw.reply_string(), "$5\r\nhello\r\n");
    // Quoting like redis-cli: double quotes understand escapes, single quotes do not.
    raw.send(b"SET q \"a b\\r\\n\\x00\\x41\"\r\n");
    assert_eq!(raw.reply_string(), "+OK\r\n");
    assert_eq!(raw.cmd(&["GET", "q"]), "$7\r\na b\r\n\0A\r\n");
    raw.send(b"SET q 'it''s'\r\n");
    assert_eq!(
        raw.reply_string(),
        "-ERR Protocol error: unbalanced quotes in request\r\n"
    );
    raw.expect_closed();
    let mut raw = Raw::connect(server.port);
    raw.send(b"SET q 'x \\' y'\r\nGET q\r\n");
    assert_eq!(raw.reply_string(), "+OK\r\n");
    assert_eq!(raw.reply_string(), "$5\r\nx ' y\r\n");
    // Empty lines and empty multibulks are ignored.
    raw.send(b"\r\n\n   \r\n*0\r\n*-1\r\nPING\r\n");
    assert_eq!(raw.reply_string(), "+PONG\r\n");
    // Inline and multibulk mixed in one write, answered in order.
    let mut mixed = b"ECHO one\r\n".to_vec();
    mixed.extend(encode(&[b"ECHO", b"two"]));
    mixed.extend_from_slice(b"ECHO three\r\n");
    raw.send(&mixed);
    assert_eq!(raw.reply_string(), "$3\r\none\r\n");
    assert_eq!(raw.reply_string(), "$3\r\ntwo\r\n");
    assert_eq!(raw.reply_string(), "$5\r\nthree\r\n");
    // Inline errors are the usual command errors.
    raw.send(b"NOSUCH x\r\n");
    assert_eq!(
        raw.reply_string(),
        "-ERR unknown command 'NOSUCH', with args beginning with: 'x' \r\n"
    );
}

#[test]
fn ten_thousand_pipelined_commands_in_one_write() {
    let server = Server::start(&[]);
    let stream = server.raw();
    let mut batch = Vec::new();
    for _ in 0..10_000 {
        batch.extend(encode(&[b"INCR", b"counter"]));
    }
    // Write from another thread so a full socket buffer can never deadlock the test;
    // it is still one write_all of the whole batch.
    let mut writer = stream.try_clone().unwrap();
    let t = thread::spawn(move || writer.write_all(&batch).unwrap());
    let mut raw = Raw::from_stream(stream);
    for i in 1..=10_000 {
        assert_eq!(
            raw.reply_string(),
            format!(":{i}\r\n"),
            "reply {i} out of order"
        );
    }
    t.join().unwrap();
    assert_eq!(raw.cmd(&["GET", "counter"]), "$5\r\n10000\r\n");

    // Inline pipeline too (redis-benchmark's PING_INLINE), and mixed commands.
    let mut batch = Vec::new();
    for i in 0..10_000 {
        batch.extend_from_slice(format!("SET k{i} v{i}\r\nGET k{i}\r\n").as_bytes());
    }
    raw.send(&batch);
    for i in 0..10_000 {
        assert_eq!(raw.reply_string(), "+OK\r\n");
        let v = format!("v{i}");
        assert_eq!(raw.reply_string(), format!("${}\r\n{v}\r\n", v.len()));
    }
    assert_eq!(raw.cmd(&["DBSIZE"]), ":10001\r\n");
}

#[test]
fn frame_split_byte_by_byte() {
    let server = Server::start(&[]);
    let stream = server.raw();
    stream.set_nodelay(true).unwrap();
    let mut raw = Raw::from_stream(stream.try_clone().unwrap());
    let mut w = stream.try_clone().unwrap();
    let value = b"hello\r\nworld";
    let frame = encode(&[b"SET", b"split", value]);
    for (i, byte) in frame.iter().enumerate() {
        w.write_all(std::slice::from_ref(byte)).unwrap();
        w.flush().unwrap();
        if i + 1 < frame.len() && i % 4 == 0 {
            thread::sleep(Duration::from_millis(2));
            assert_no_reply_yet(&stream);
        }
    }
    assert_eq!(raw.reply_string(), "+OK\r\n");
    // Exactly one reply came from the whole frame: the next one is the PING's.
    assert_eq!(raw.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(raw.cmd(&["GET", "split"]), "$12\r\nhello\r\nworld\r\n");

    // An inline command split byte by byte.
    for byte in b"ECHO piecewise\r\n" {
        w.write_all(std::slice::from_ref(byte)).unwrap();
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(raw.reply_string(), "$9\r\npiecewise\r\n");

    // Two frames whose boundary falls inside a read, split at every possible offset.
    let two = [encode(&[b"INCR", b"c"]), encode(&[b"ECHO", b"ab\r\ncd"])].concat();
    for cut in 1..two.len() {
        w.write_all(&two[..cut]).unwrap();
        thread::sleep(Duration::from_millis(1));
        w.write_all(&two[cut..]).unwrap();
        assert_eq!(raw.reply_string(), format!(":{cut}\r\n"));
        assert_eq!(raw.reply_string(), "$6\r\nab\r\ncd\r\n");
    }
}

#[test]
fn binary_safe_values() {
    let server = Server::start(&[]);
    let mut raw = Raw::connect(server.port);
    let all: Vec<u8> = (0..=255u8)
        .chain(b"\r\n\0\r\n*1\r\n$3\r\n".iter().copied())
        .collect();
    let key: &[u8] = b"bin\r\nkey\0with\x00nul";
    raw.send_cmd(&[b"SET", key, &all]);
    assert_eq!(raw.reply_string(), "+OK\r\n");
    raw.send_cmd(&[b"GET", key]);
    let mut want = format!("${}\r\n", all.len()).into_bytes();
    want.extend_from_slice(&all);
    want.extend_from_slice(b"\r\n");
    assert_eq!(raw.reply(), want);
    raw.send_cmd(&[b"STRLEN", key]);
    assert_eq!(raw.reply_string(), format!(":{}\r\n", all.len()));
    raw.send_cmd(&[b"APPEND", key, b"\r\n"]);
    assert_eq!(raw.reply_string(), format!(":{}\r\n", all.len() + 2));
    raw.send_cmd(&[b"EXISTS", key]);
    assert_eq!(raw.reply_string(), ":1\r\n");

    // Through the redis crate, RESP2 and RESP3.
    let mut con = server.conn();
    let v: Vec<u8> = con.get(key).unwrap();
    assert_eq!(v, [all.as_slice(), b"\r\n"].concat());
    let _: () = con.set(b"\0", b"\r\n\0").unwrap();
    let v: Vec<u8> = con.get(b"\0").unwrap();
    assert_eq!(v, b"\r\n\0");
    let empty: Vec<u8> = {
        let _: () = con.set("empty", b"").unwrap();
        con.get("empty").unwrap()
    };
    assert!(empty.is_empty());
    raw.send_cmd(&[b"GET", b"empty"]);
    assert_eq!(raw.reply_string(), "$0\r\n\r\n");
}

#[test]
fn ten_megabyte_value() {
    let server = Server::start(&[]);
    let big: Vec<u8> = (0..10 * 1024 * 1024)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut con = server.conn();
    let _: () = con.set("big", &big).unwrap();
    let back: Vec<u8> = con.get("big").unwrap();
    assert_eq!(back.len(), big.len());
    assert!(back == big, "10 MB value differs after the round trip");
    let n: i64 = con.strlen("big").unwrap();
    assert_eq!(n, 10 * 1024 * 1024);
    // Raw: the value written in one go, the reply read back whole.
    let mut raw = Raw::connect(server.port);
    let stream = raw.stream().try_clone().unwrap();
    let frame = encode(&[b"SET", b"big2", &big]);
    let mut w = stream.try_clone().unwrap();
    let t = thread::spawn(move || w.write_all(&frame).unwrap());
    assert_eq!(raw.reply_string(), "+OK\r\n");
    t.join().unwrap();
    raw.send_cmd(&[b"GET", b"big2"]);
    let reply = raw.reply();
    let header = format!("${}\r\n", big.len());
    assert_eq!(&reply[..header.len()], header.as_bytes());
    assert!(reply[header.len()..reply.len() - 2] == big[..]);
}

/// Each bad input: its exact error line, then the connection is closed, while a
/// client connected before keeps being served.
#[test]
fn protocol_errors_close_only_that_connection() {
    let server = Server::start(&["--proto-max-bulk-len", "1mb"]);
    let mut bystander = Raw::connect(server.port);
    assert_serving(&mut bystander, "before");
    let long_digits = |n: usize| "1".repeat(n);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "multibulk length not a number",
            b"*abc\r\n".to_vec(),
            "invalid multibulk length",
        ),
        (
            "multibulk length too large",
            b"*2000000\r\n".to_vec(),
            "invalid multibulk length",
        ),
        (
            "multibulk length overflows",
            b"*99999999999999999999999\r\n".to_vec(),
            "invalid multibulk length",
        ),
        (
            "element not a bulk",
            b"*1\r\n+x\r\n".to_vec(),
            "expected '$', got '+'",
        ),
        (
            "element is an integer",
            b"*2\r\n$3\r\nGET\r\n:1\r\n".to_vec(),
            "expected '$', got ':'",
        ),
        (
            "negative bulk length",
            b"*1\r\n$-5\r\n".to_vec(),
            "invalid bulk length",
        ),
        (
            "bulk length -1",
            b"*1\r\n$-1\r\n".to_vec(),
            "invalid bulk length",
        ),
        (
            "bulk length not a number",
            b"*1\r\n$abc\r\n".to_vec(),
            "invalid bulk length",
        ),
        (
            "bulk length over proto-max-bulk-len",
            b"*1\r\n$2000000\r\n".to_vec(),
            "invalid bulk length",
        ),
        (
            "bulk length over 512 MB",
            b"*1\r\n$600000000\r\n".to_vec(),
            "invalid bulk length",
        ),
        (
            "too big inline request",
            vec![b'a'; 70 * 1024],
            "too big inline request",
        ),
        (
            "too big mbulk count string",
            [b"*".to_vec(), long_digits(70 * 1024).into_bytes()].concat(),
            "too big mbulk count string",
        ),
        (
            "too big bulk count string",
            [b"*1\r\n$".to_vec(), long_digits(40 * 1024).into_bytes()].concat(),
            "too big bulk count string",
        ),
        (
            "unbalanced double quotes",
            b"SET k \"abc\r\n".to_vec(),
            "unbalanced quotes in request",
        ),
        (
            "unbalanced single quotes",
            b"SET k 'abc\r\n".to_vec(),
            "unbalanced quotes in request",
        ),
        (
            "text after a closing quote",
            b"SET k \"a\"b\r\n".to_vec(),
            "unbalanced quotes in request",
        ),
    ];
    for (what, input, message) in cases {
        let mut victim = Raw::connect(server.port);
        // A good command pipelined before the bad input is answered first.
        let mut bytes = b"PING\r\n".to_vec();
        bytes.extend_from_slice(&input);
        let mut w = victim.stream().try_clone().unwrap();
        let t = thread::spawn(move || {
            let _ = w.write_all(&bytes);
        });
        assert_eq!(victim.reply_string(), "+PONG\r\n", "{what}");
        assert_eq!(
            victim.reply_string(),
            format!("-ERR Protocol error: {message}\r\n"),
            "{what}"
        );
        victim.expect_closed();
        t.join().unwrap();
        assert_serving(&mut bystander, what);
    }
    // A value at the limit is still accepted; one byte more is not.
    let mut raw = Raw::connect(server.port);
    let at_limit = vec![b'v'; 1024 * 1024];
    raw.send_cmd(&[b"SET", b"limit", &at_limit]);
    assert_eq!(raw.reply_string(), "+OK\r\n");
    let over = vec![b'v'; 1024 * 1024 + 1];
    let frame = encode(&[b"SET", b"limit", &over]);
    let mut w = raw.stream().try_clone().unwrap();
    let t = thread::spawn(move || {
        let _ = w.write_all(&frame);
    });
    assert_eq!(
        raw.reply_string(),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    raw.expect_closed();
    t.join().unwrap();
    assert_serving(&mut bystander, "after");
    // The node's counters and clients survived all of that.
    let mut con = server.conn();
    let v: usize = con.strlen("limit").unwrap();
    assert_eq!(v, 1024 * 1024);
}

#[test]
fn garbage_never_crashes_the_node() {
    let server = Server::start(&[]);
    let mut bystander = Raw::connect(server.port);
    // Deterministic pseudo-random byte soup, each blob on its own connection.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..200 {
        let len = 1 + (round * 37) % 300;
        let mut blob = Vec::with_capacity(len);
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let b = match seed % 8 {
                0 => b'*',
                1 => b'$',
                2 => b'\r',
                3 => b'\n',
                4 => b'-',
                5 => b'0' + (seed >> 8) as u8 % 10,
                6 => b'"',
                _ => (seed >> 16) as u8,
            };
            blob.push(b);
        }
        let mut s = server.raw();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let _ = s.write_all(&blob);
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        drop(s);
        if round % 20 == 0 {
            assert_serving(&mut bystander, &format!("round{round}"));
        }
    }
    assert_serving(&mut bystander, "end");
}

#[test]
fn maxclients_refuses_the_extra_client() {
    let server = Server::start(&["--maxclients", "2"]);
    // The readiness probe's connection may still be counted for a moment: retry.
    let connect_served = || -> Raw {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut raw = Raw::connect(server.port);
            raw.send(b"PING\r\n");
            let reply = raw.reply_string();
            if reply == "+PONG\r\n" {
                return raw;
            }
            assert_eq!(reply, "-ERR max number of clients reached\r\n");
            assert!(Instant::now() < deadline, "no slot freed");
            thread::sleep(Duration::from_millis(20));
        }
    };
    let mut a = connect_served();
    let mut b = connect_served();
    let mut c = Raw::connect(server.port);
    assert_eq!(
        c.reply_string(),
        "-ERR max number of clients reached\r\n",
        "refused without sending anything"
    );
    c.expect_closed();
    assert_eq!(a.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(b.cmd(&["PING"]), "+PONG\r\n");
    let info = a.cmd(&["INFO", "stats"]);
    assert!(info.contains("rejected_connections:"), "{info}");
    // Closing one frees its slot.
    drop(a);
    let mut d = connect_served();
    assert_eq!(d.cmd(&["ECHO", "in"]), "$2\r\nin\r\n");
    // CONFIG SET maxclients takes effect for new connections.
    assert_eq!(d.cmd(&["CONFIG", "SET", "maxclients", "3"]), "+OK\r\n");
    let mut e = connect_served();
    assert_eq!(e.cmd(&["PING"]), "+PONG\r\n");
    let mut f = Raw::connect(server.port);
    assert_eq!(f.reply_string(), "-ERR max number of clients reached\r\n");
}

#[test]
fn silent_and_slow_clients_do_not_stall_others() {
    let server = Server::start(&[]);
    // Half a frame, never finished.
    let mut silent = server.raw();
    silent
        .write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc")
        .unwrap();
    // A connection that sent nothing at all.
    let _idle = server.raw();
    // Half an inline line.
    let mut half_inline = server.raw();
    half_inline.write_all(b"SET k v").unwrap();
    // A client that asks for lots of data and never reads it (its socket buffers fill).
    let mut hog = server.raw();
    let mut con = server.conn();
    let big = vec![b'x'; 1024 * 1024];
    let _: () = con.set("big", &big).unwrap();
    let mut gets = Vec::new();
    for _ in 0..64 {
        gets.extend(encode(&[b"GET", b"big"]));
    }
    hog.write_all(&gets).unwrap();

    // Everyone else is served normally, many times over.
    let mut other = Raw::connect(server.port);
    for i in 0..200 {
        assert_eq!(other.cmd(&["INCR", "n"]), format!(":{}\r\n", i + 1));
    }
    let v: i64 = con.get("n").unwrap();
    assert_eq!(v, 200);
    for i in 0..5 {
        let mut fresh = Raw::connect(server.port);
        assert_serving(&mut fresh, &format!("fresh{i}"));
    }
    // The silent client's half frame did not take effect; finishing it later works.
    let k: Option<String> = con.get("k").unwrap();
    assert_eq!(k, None);
    silent.write_all(&[b'y'; 97]).unwrap();
    silent.write_all(b"\r\n").unwrap();
    let mut silent = Raw::from_stream(silent);
    assert_eq!(silent.reply_string(), "+OK\r\n");
    let k: String = con.get("k").unwrap();
    assert_eq!(k.len(), 100);
    // The hog still gets its replies when it finally reads.
    let mut hog = Raw::from_stream(hog);
    for _ in 0..64 {
        assert_eq!(hog.reply().len(), big.len() + "$1048576\r\n\r\n".len());
    }
}

#[test]
fn sigterm_exits_cleanly() {
    let mut server = Server::start(&[]);
    // Open connections, one idle mid-frame, do not hold the node up.
    let mut busy = server.raw();
    busy.write_all(b"*2\r\n$4\r\nECHO\r\n$10\r\nabc").unwrap();
    let mut raw = Raw::connect(server.port);
    assert_eq!(raw.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert!(
        server.terminate(),
        "SIGTERM did not end the node with exit status 0"
    );
    raw.expect_closed();
}

#[test]
fn shutdown_command_stops_the_node() {
    let mut server = Server::start(&[]);
    let mut other = Raw::connect(server.port);
    assert_eq!(other.cmd(&["PING"]), "+PONG\r\n");
    let mut raw = Raw::connect(server.port);
    raw.send_cmd(&[b"SHUTDOWN", b"NOSAVE"]);
    // Redis closes the connection without a reply; an +OK first is tolerated.
    let mut buf = Vec::new();
    let _ = raw.stream().try_clone().unwrap().read_to_end(&mut buf);
    assert!(
        buf.is_empty() || buf == b"+OK\r\n",
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.exited() {
        assert!(
            Instant::now() < deadline,
            "node still running after SHUTDOWN"
        );
        thread::sleep(Duration::from_millis(20));
    }
    other.expect_closed();
    assert!(
        TcpStream::connect(("127.0.0.1", server.port)).is_err(),
        "port still accepting"
    );
}

#[test]
fn protocol_error_after_hello3_and_before_auth() {
    let server = Server::start(&["--requirepass", "pw"]);
    let mut bystander = Raw::connect(server.port);
    assert_eq!(bystander.cmd(&["AUTH", "pw"]), "+OK\r\n");
    // Unauthenticated: still the protocol error, then the close.
    let mut raw = Raw::connect(server.port);
    raw.send(b"*1\r\n+x\r\n");
    assert_eq!(
        raw.reply_string(),
        "-ERR Protocol error: expected '$', got '+'\r\n"
    );
    raw.expect_closed();
    // After HELLO 3.
    let mut raw = Raw::connect(server.port);
    assert!(raw
        .cmd(&["HELLO", "3", "AUTH", "default", "pw"])
        .starts_with("%7\r\n"));
    raw.send(b"*x\r\n");
    assert_eq!(
        raw.reply_string(),
        "-ERR Protocol error: invalid multibulk length\r\n"
    );
    raw.expect_closed();
    assert_serving(&mut bystander, "bystander");
}

#[test]
fn bytes_after_a_bulk_and_odd_lengths_behave_like_redis() {
    let server = Server::start(&[]);
    let mut raw = Raw::connect(server.port);
    // Redis skips the two bytes after a bulk without looking at them; what follows is
    // parsed afresh (here an empty inline line).
    raw.send(b"*2\r\n$4\r\nECHO\r\n$3\r\nabcde\r\n");
    assert_eq!(raw.reply_string(), "$3\r\nabc\r\n");
    // A leading zero in a length is fine.
    raw.send(b"*01\r\n$04\r\nPING\r\n");
    assert_eq!(raw.reply_string(), "+PONG\r\n");
    // An empty command name is an unknown command, not a protocol error.
    raw.send(b"*1\r\n$0\r\n\r\n");
    assert_eq!(
        raw.reply_string(),
        "-ERR unknown command '', with args beginning with: \r\n"
    );
    // CR/LF inside a name never breaks the error line.
    raw.send(b"*1\r\n$4\r\nA\r\nB\r\n");
    let line = raw.reply_string();
    assert!(
        line.starts_with("-ERR unknown command 'A") && line.matches("\r\n").count() == 1,
        "{line:?}"
    );
    // Signs and blanks in lengths are protocol errors.
    for bad in [
        &b"*+1\r\n"[..],
        b"*1\r\n$+4\r\nPING\r\n",
        b"*1\r\n$ 4\r\nPING\r\n",
    ] {
        let mut r = Raw::connect(server.port);
        r.send(bad);
        let reply = r.reply_string();
        assert!(
            reply.starts_with("-ERR Protocol error: invalid "),
            "{bad:?}: {reply:?}"
        );
        r.expect_closed();
    }
    assert_eq!(raw.cmd(&["PING"]), "+PONG\r\n");
}

#[test]
fn idle_timeout_closes_idle_clients_only() {
    let server = Server::start(&[]);
    let mut admin = server.conn();
    let r: redis::Value = redis::cmd("CONFIG")
        .arg("SET")
        .arg("timeout")
        .arg(1)
        .query(&mut admin)
        .unwrap();
    assert_eq!(r, redis::Value::Okay);
    let mut idle = Raw::connect(server.port);
    assert_eq!(idle.cmd(&["PING"]), "+PONG\r\n");
    let mut busy = Raw::connect(server.port);
    // The idle client is closed within a few seconds; the busy one, pinging every
    // 200 ms, is not.
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        assert_eq!(busy.cmd(&["PING"]), "+PONG\r\n");
        thread::sleep(Duration::from_millis(200));
    }
    idle.expect_closed();
}

#[test]
fn input_while_a_command_blocks_is_bounded() {
    let server = Server::start(&[]);
    let mut holder = Raw::connect(server.port);
    let token = holder.cmd(&["LOCK.ACQUIRE", "res", "a", "TTL", "60000"]);
    assert!(token.starts_with(':'), "{token:?}");
    let mut waiter = Raw::connect(server.port);
    waiter.send_cmd(&[b"LOCK.ACQUIRE", b"res", b"b", b"WAIT", b"0"]);
    thread::sleep(Duration::from_millis(200));
    // While it waits, pipeline far more than any sane buffer: the node must stop
    // reading at some point (TCP back-pressure) instead of buffering it all.
    let s = waiter.stream().try_clone().unwrap();
    s.set_nonblocking(true).unwrap();
    let chunk = b"PING\r\n".repeat(1 << 17); // 768 KB
    let mut written = 0usize;
    let cap = 256 * 1024 * 1024;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stalled_since: Option<Instant> = None;
    while written < cap && Instant::now() < deadline {
        match (&s).write(&chunk) {
            Ok(n) => {
                written += n;
                stalled_since = None;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let since = *stalled_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(500) {
                    break; // the node stopped reading
                }
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("write failed: {e}"),
        }
    }
    assert!(
        written < 128 * 1024 * 1024,
        "the node buffered {written} bytes behind a blocked command"
    );
    // Others are served meanwhile; releasing the lock wakes the waiter, and then the
    // buffered pipeline is answered.
    let mut other = Raw::connect(server.port);
    assert_serving(&mut other, "other");
    assert_eq!(holder.cmd(&["LOCK.RELEASE", "res", "a"]), ":1\r\n");
    s.set_nonblocking(false).unwrap();
    let granted = waiter.reply_string();
    assert!(granted.starts_with(':'), "{granted:?}");
    assert_eq!(waiter.reply_string(), "+PONG\r\n");
}
