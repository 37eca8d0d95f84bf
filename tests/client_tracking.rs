//! Client-side caching (`CLIENT TRACKING`) and the pub/sub it uses for RESP2, with raw
//! sockets so the exact bytes of every reply and push are checked.
//!
//! Each scenario runs against a Conclave node and, when `redis-server` is installed,
//! against it too with the same assertions: the expected bytes are Redis's. Client ids
//! differ between the two, so scenarios read them (`CLIENT ID`) and build the expected
//! bytes from them.
//!
//! "Nothing was pushed" is checked by a `PING` whose `+PONG` must be the next thing read:
//! a push caused by another client's command is queued before that command is answered,
//! and a connection writes queued pushes before the replies to what it reads next.
//! Waits (expiry) are bounded by the raw client's 10 s read timeout; nothing asserts on
//! speed.
//!
//! Why this file is long: one scenario per mode of the protocol, each a transcript.

mod common;
mod resp_support;

use resp_support::scenario::{on_conclave_and_redis, Conn};

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

fn keys(keys: &[&str]) -> String {
    let mut out = format!("*{}\r\n", keys.len());
    for k in keys {
        out.push_str(&bulk(k));
    }
    out
}

/// A RESP3 invalidation push.
fn invalidate(k: &[&str]) -> String {
    format!(">2\r\n$10\r\ninvalidate\r\n{}", keys(k))
}

/// A RESP2 invalidation, as a message on `__redis__:invalidate`.
fn invalidate_msg(k: &[&str]) -> String {
    format!(
        "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n{}",
        keys(k)
    )
}

fn err(text: &str) -> String {
    format!("-{text}\r\n")
}

const OK: &str = "+OK\r\n";

#[test]
fn default_mode_invalidates_each_read_key_once() {
    on_conclave_and_redis(|port, who| {
        let mut c = Conn::resp3(port, who);
        let mut w = Conn::open(port, who);
        c.expect(&["CLIENT", "TRACKING", "ON"], OK);
        w.expect(&["SET", "k", "1"], OK);
        c.expect(&["GET", "k"], "$1\r\n1\r\n");
        w.expect(&["SET", "k", "2"], OK);
        c.expect_next(&invalidate(&["k"]));
        // Forgotten once sent: not read again, so no second invalidation.
        w.expect(&["SET", "k", "3"], OK);
        c.quiet();
        // A key that does not exist is tracked too (the client may cache the nil).
        c.expect(&["GET", "missing"], "_\r\n");
        w.expect(&["SET", "missing", "x"], OK);
        c.expect_next(&invalidate(&["missing"]));
        // One message per key of a multi-key read.
        c.expect(&["MGET", "a", "b"], "*2\r\n_\r\n_\r\n");
        w.expect(&["MSET", "a", "1", "b", "2"], OK);
        c.expect_next(&invalidate(&["a"]));
        c.expect_next(&invalidate(&["b"]));
        // Writes of keys never read, and deletes of missing keys, say nothing.
        w.expect(&["SET", "other", "1"], OK);
        w.expect(&["DEL", "nothing"], ":0\r\n");
        c.quiet();
        // Deletion and TTL changes are changes.
        c.expect(&["STRLEN", "k"], ":1\r\n");
        w.expect(&["EXPIRE", "k", "100"], ":1\r\n");
        c.expect_next(&invalidate(&["k"]));
        c.expect(&["EXISTS", "k"], ":1\r\n");
        w.expect(&["DEL", "k"], ":1\r\n");
        c.expect_next(&invalidate(&["k"]));
        // The client's own write: the invalidation follows its reply.
        c.expect(&["GET", "own"], "_\r\n");
        c.expect(&["SET", "own", "v"], OK);
        c.expect_next(&invalidate(&["own"]));
        // Writes are not reads: INCR does not track.
        c.expect(&["INCR", "n"], ":1\r\n");
        w.expect(&["INCR", "n"], ":2\r\n");
        c.quiet();
        // Off: nothing more.
        c.expect(&["GET", "k2"], "_\r\n");
        c.expect(&["CLIENT", "TRACKING", "OFF"], OK);
        w.expect(&["SET", "k2", "1"], OK);
        c.quiet();
    });
}

#[test]
fn a_transaction_s_reads_are_tracked_and_invalidations_follow_exec() {
    on_conclave_and_redis(|port, who| {
        let mut c = Conn::resp3(port, who);
        c.expect(&["CLIENT", "TRACKING", "ON"], OK);
        c.expect(&["MSET", "a", "1", "b", "2"], OK);
        c.expect(&["GET", "a"], "$1\r\n1\r\n");
        c.expect(&["MULTI"], OK);
        c.expect(&["INCR", "a"], "+QUEUED\r\n");
        c.expect(&["GET", "b"], "+QUEUED\r\n");
        c.expect(&["EXEC"], "*2\r\n:2\r\n$1\r\n2\r\n");
        c.expect_next(&invalidate(&["a"]));
        let mut w = Conn::open(port, who);
        w.expect(&["SET", "b", "3"], OK);
        c.expect_next(&invalidate(&["b"]));
    });
}

#[test]
fn bcast_sends_every_change_under_the_prefixes() {
    on_conclave_and_redis(|port, who| {
        let mut c = Conn::resp3(port, who);
        let mut w = Conn::open(port, who);
        c.expect(
            &[
                "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a:", "PREFIX", "b:",
            ],
            OK,
        );
        // One message per prefix with every key of the command under it, in order.
        w.expect(
            &["MSET", "b:1", "x", "c:1", "y", "a:2", "z", "a:1", "w"],
            OK,
        );
        c.expect_next(&invalidate(&["a:1", "a:2"]));
        c.expect_next(&invalidate(&["b:1"]));
        w.expect(&["SET", "c:2", "x"], OK);
        c.quiet();
        // Nothing read is needed, and every change is sent again.
        w.expect(&["INCR", "a:n"], ":1\r\n");
        c.expect_next(&invalidate(&["a:n"]));
        w.expect(&["INCR", "a:n"], ":2\r\n");
        c.expect_next(&invalidate(&["a:n"]));
        c.expect(
            &["CLIENT", "TRACKINGINFO"],
            "%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$5\r\nbcast\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*2\r\n$2\r\na:\r\n$2\r\nb:\r\n",
        );
        // Prefixes accumulate and may not overlap.
        c.expect(
            &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a:x"],
            &err("ERR Prefix 'a:x' overlaps with an existing prefix 'a:'. Prefixes for a single client must not overlap."),
        );
        c.expect(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "c:"], OK);
        w.expect(&["SET", "c:3", "x"], OK);
        c.expect_next(&invalidate(&["c:3"]));
        c.expect(
            &["CLIENT", "TRACKING", "ON"],
            &err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."),
        );
        // The empty prefix: every key.
        let mut all = Conn::resp3(port, who);
        all.expect(&["CLIENT", "TRACKING", "ON", "BCAST"], OK);
        w.expect(&["SET", "zzz", "1"], OK);
        all.expect_next(&invalidate(&["zzz"]));
        all.expect(
            &["CLIENT", "TRACKINGINFO"],
            "%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$5\r\nbcast\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*1\r\n$0\r\n\r\n",
        );
        c.quiet();
        let mut e = Conn::open(port, who);
        e.expect(
            &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "FOOBAR", "PREFIX", "FOO"],
            &err("ERR Prefix 'FOOBAR' overlaps with another provided prefix 'FOO'. Prefixes for a single client must not overlap."),
        );
        e.expect(
            &["CLIENT", "TRACKING", "ON", "PREFIX", "a"],
            &err("ERR PREFIX option requires BCAST mode to be enabled"),
        );
    });
}

#[test]
fn optin_and_optout_follow_client_caching() {
    on_conclave_and_redis(|port, who| {
        let mut c = Conn::resp3(port, who);
        let mut w = Conn::open(port, who);
        c.expect(
            &["CLIENT", "CACHING", "YES"],
            &err("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"),
        );
        c.expect(
            &["CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"],
            &err("ERR You can't specify both OPTIN mode and OPTOUT mode"),
        );
        c.expect(
            &["CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"],
            &err("ERR OPTIN and OPTOUT are not compatible with BCAST"),
        );
        c.expect(&["CLIENT", "TRACKING", "ON", "OPTIN"], OK);
        c.expect(
            &["CLIENT", "CACHING", "NO"],
            &err("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."),
        );
        c.expect(&["CLIENT", "CACHING", "MAYBE"], &err("ERR syntax error"));
        // OPTIN: not tracked without CACHING YES...
        c.expect(&["GET", "k"], "_\r\n");
        w.expect(&["SET", "k", "1"], OK);
        c.quiet();
        // ... tracked for the one command after it.
        c.expect(&["CLIENT", "CACHING", "YES"], OK);
        c.expect(
            &["CLIENT", "TRACKINGINFO"],
            "%3\r\n$5\r\nflags\r\n~3\r\n$2\r\non\r\n$5\r\noptin\r\n$11\r\ncaching-yes\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*0\r\n",
        );
        c.expect(&["GET", "k"], "$1\r\n1\r\n");
        c.expect(&["GET", "j"], "_\r\n");
        w.expect(&["MSET", "k", "2", "j", "2"], OK);
        c.expect_next(&invalidate(&["k"]));
        c.quiet();
        c.expect(
            &["CLIENT", "TRACKING", "ON", "OPTOUT"],
            &err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."),
        );
        // OPTOUT: tracked unless CACHING NO came just before.
        c.expect(&["CLIENT", "TRACKING", "OFF"], OK);
        c.expect(&["CLIENT", "TRACKING", "ON", "OPTOUT"], OK);
        c.expect(&["CLIENT", "CACHING", "NO"], OK);
        c.expect(&["GET", "k"], "$1\r\n2\r\n");
        c.expect(&["GET", "j"], "$1\r\n2\r\n");
        w.expect(&["MSET", "k", "3", "j", "3"], OK);
        c.expect_next(&invalidate(&["j"]));
        c.quiet();
        c.expect(
            &["CLIENT", "CACHING", "YES"],
            &err("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."),
        );
    });
}

#[test]
fn noloop_hides_the_client_s_own_writes() {
    on_conclave_and_redis(|port, who| {
        let mut c = Conn::resp3(port, who);
        let mut w = Conn::open(port, who);
        c.expect(&["CLIENT", "TRACKING", "ON", "NOLOOP"], OK);
        c.expect(&["MGET", "mine", "theirs"], "*2\r\n_\r\n_\r\n");
        c.expect(&["SET", "mine", "1"], OK);
        w.expect(&["SET", "theirs", "1"], OK);
        c.expect_next(&invalidate(&["theirs"]));
        // The own write still dropped the key from the table.
        w.expect(&["SET", "mine", "2"], OK);
        c.quiet();
        c.expect(
            &["CLIENT", "TRACKINGINFO"],
            "%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$6\r\nnoloop\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*0\r\n",
        );
        // BCAST + NOLOOP: the own keys are left out of the message.
        let mut b = Conn::resp3(port, who);
        b.expect(&["CLIENT", "TRACKING", "ON", "BCAST", "NOLOOP"], OK);
        b.expect(&["SET", "x", "1"], OK);
        b.quiet();
        w.expect(&["SET", "y", "1"], OK);
        b.expect_next(&invalidate(&["y"]));
    });
}

#[test]
fn resp2_invalidations_go_to_a_subscribed_redirect_target() {
    on_conclave_and_redis(|port, who| {
        let mut target = Conn::open(port, who);
        let target_id = target.id();
        target.expect(
            &["SUBSCRIBE", "__redis__:invalidate"],
            "*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n",
        );
        let mut c = Conn::open(port, who);
        let mut w = Conn::open(port, who);
        let tid = target_id.to_string();
        c.expect(
            &["CLIENT", "TRACKING", "ON", "REDIRECT", "999999"],
            &err("ERR The client ID you want redirect to does not exist"),
        );
        c.expect(
            &["CLIENT", "TRACKING", "ON", "REDIRECT", "x"],
            &err("ERR value is not an integer or out of range"),
        );
        c.expect(
            &[
                "CLIENT", "TRACKING", "ON", "REDIRECT", &tid, "REDIRECT", &tid,
            ],
            &err("ERR A client can only redirect to a single other client"),
        );
        c.expect(
            &["CLIENT", "TRACKING", "ON", "REDIRECT"],
            &err("ERR syntax error"),
        );
        c.expect(&["CLIENT", "TRACKING", "MAYBE"], &err("ERR syntax error"));
        c.expect(&["CLIENT", "GETREDIR"], ":-1\r\n");
        c.expect(&["CLIENT", "TRACKING", "ON", "REDIRECT", &tid], OK);
        c.expect(&["CLIENT", "GETREDIR"], &format!(":{tid}\r\n"));
        c.expect(&["GET", "k"], "$-1\r\n");
        w.expect(&["SET", "k", "1"], OK);
        target.expect_next(&invalidate_msg(&["k"]));
        // In RESP2 pub/sub mode only the pub/sub commands run.
        target.expect(
            &["GET", "k"],
            &err("ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"),
        );
        target.expect(&["PING"], "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
        target.expect(&["PING", "hi"], "*2\r\n$4\r\npong\r\n$2\r\nhi\r\n");
        // Out of pub/sub mode a RESP2 target cannot receive them: nothing is sent.
        target.expect(
            &["UNSUBSCRIBE"],
            "*3\r\n$11\r\nunsubscribe\r\n$20\r\n__redis__:invalidate\r\n:0\r\n",
        );
        target.expect(
            &["UNSUBSCRIBE"],
            "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n",
        );
        c.expect(&["GET", "k"], "$1\r\n1\r\n");
        w.expect(&["SET", "k", "2"], OK);
        target.quiet();
        // Several clients may redirect to one target; a RESP3 target gets pushes.
        let mut target3 = Conn::resp3(port, who);
        let t3 = target3.id().to_string();
        let mut c2 = Conn::open(port, who);
        c.expect(&["CLIENT", "TRACKING", "ON", "REDIRECT", &t3], OK);
        c2.expect(&["CLIENT", "TRACKING", "ON", "REDIRECT", &t3], OK);
        c.expect(&["GET", "p"], "$-1\r\n");
        c2.expect(&["GET", "q"], "$-1\r\n");
        w.expect(&["SET", "p", "1"], OK);
        w.expect(&["SET", "q", "1"], OK);
        target3.expect_next(&invalidate(&["p"]));
        target3.expect_next(&invalidate(&["q"]));
    });
}

#[test]
fn a_gone_redirect_target_is_reported_broken() {
    on_conclave_and_redis(|port, who| {
        let mut target = Conn::open(port, who);
        let tid = target.id();
        let mut c = Conn::resp3(port, who);
        let mut w = Conn::open(port, who);
        c.expect(
            &["CLIENT", "TRACKING", "ON", "REDIRECT", &tid.to_string()],
            OK,
        );
        c.expect(&["GET", "k"], "_\r\n");
        target.expect(&["QUIT"], OK);
        target.raw.expect_closed();
        w.expect(&["SET", "k", "1"], OK);
        c.expect_next(&format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{tid}\r\n"));
        c.expect(
            &["CLIENT", "TRACKINGINFO"],
            &format!("%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$15\r\nbroken_redirect\r\n$8\r\nredirect\r\n:{tid}\r\n$8\r\nprefixes\r\n*0\r\n"),
        );
    });
}

#[test]
fn flushall_sends_every_tracking_client_a_null() {
    on_conclave_and_redis(|port, who| {
        let mut target = Conn::open(port, who);
        let tid = target.id().to_string();
        target.expect(
            &["SUBSCRIBE", "__redis__:invalidate"],
            "*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n",
        );
        let mut r2 = Conn::open(port, who);
        r2.expect(&["CLIENT", "TRACKING", "ON", "REDIRECT", &tid], OK);
        let mut c = Conn::resp3(port, who);
        c.expect(&["CLIENT", "TRACKING", "ON"], OK);
        let mut b = Conn::resp3(port, who);
        b.expect(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "zz"], OK);
        c.expect(&["GET", "k"], "_\r\n");
        let mut w = Conn::open(port, who);
        w.expect(&["SET", "k", "1"], OK);
        c.expect_next(&invalidate(&["k"]));
        // Tracking clients hear of a flush whatever they read (the null: all keys).
        w.expect(&["FLUSHALL"], OK);
        c.expect_next(">2\r\n$10\r\ninvalidate\r\n_\r\n");
        b.expect_next(">2\r\n$10\r\ninvalidate\r\n_\r\n");
        target.expect_next("*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n");
        // The table went with the keys: nothing more for k.
        w.expect(&["SET", "k", "2"], OK);
        c.quiet();
        // The client's own flush: reply first.
        c.expect(&["FLUSHDB"], OK);
        c.expect_next(">2\r\n$10\r\ninvalidate\r\n_\r\n");
        b.expect_next(">2\r\n$10\r\ninvalidate\r\n_\r\n");
        target.expect_next("*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n");
    });
}

#[test]
fn expiry_invalidates_like_a_write() {
    on_conclave_and_redis(|port, who| {
        let mut c = Conn::resp3(port, who);
        let mut w = Conn::open(port, who);
        c.expect(&["CLIENT", "TRACKING", "ON"], OK);
        w.expect(&["SET", "k", "v", "PX", "100"], OK);
        c.expect(&["GET", "k"], "$1\r\nv\r\n");
        // No command: the active expiry cycle removes it and the push arrives alone.
        c.expect_next(&invalidate(&["k"]));
        let mut b = Conn::resp3(port, who);
        b.expect(&["CLIENT", "TRACKING", "ON", "BCAST", "NOLOOP"], OK);
        // NOLOOP does not hide an expiry, even of the client's own key.
        b.expect(&["SET", "e", "v", "PX", "100"], OK);
        b.expect_next(&invalidate(&["e"]));
    });
}

#[test]
fn rueidis_connects_and_gets_invalidations() {
    on_conclave_and_redis(|port, who| {
        // rueidis's connection handshake, pipelined as it sends it.
        let mut c = Conn::open(port, who);
        c.send(&["HELLO", "3"]);
        c.send(&["CLIENT", "TRACKING", "ON", "OPTIN"]);
        let hello = c.raw.reply_string();
        assert!(hello.starts_with("%7\r\n"), "{who}: {hello:?}");
        assert!(hello.contains("$5\r\nproto\r\n:3\r\n"), "{who}: {hello:?}");
        c.expect_next(OK);
        let mut w = Conn::open(port, who);
        w.expect(&["SET", "k", "v"], OK);
        // An older rueidis DoCache: CACHING YES, the read and PTTL, pipelined.
        c.send(&["CLIENT", "CACHING", "YES"]);
        c.send(&["GET", "k"]);
        c.send(&["PTTL", "k"]);
        c.expect_next(OK);
        c.expect_next("$1\r\nv\r\n");
        c.expect_next(":-1\r\n");
        w.expect(&["SET", "k", "v2"], OK);
        c.expect_next(&invalidate(&["k"]));
        // Today's rueidis: CACHING YES, then MULTI / PTTL / GET / EXEC.
        for args in [
            &["CLIENT", "CACHING", "YES"][..],
            &["MULTI"],
            &["PTTL", "k"],
            &["GET", "k"],
            &["EXEC"],
        ] {
            c.send(args);
        }
        c.expect_next(OK);
        c.expect_next(OK);
        c.expect_next("+QUEUED\r\n");
        c.expect_next("+QUEUED\r\n");
        c.expect_next("*2\r\n:-1\r\n$2\r\nv2\r\n");
        w.expect(&["SET", "k", "v3"], OK);
        c.expect_next(&invalidate(&["k"]));
        // Without CACHING YES nothing is tracked (OPTIN).
        c.expect(&["GET", "k"], "$2\r\nv3\r\n");
        w.expect(&["SET", "k", "v4"], OK);
        c.quiet();
    });
}

#[test]
fn pubsub_messages_and_patterns() {
    on_conclave_and_redis(|port, who| {
        let mut s = Conn::open(port, who);
        let mut p = Conn::resp3(port, who);
        let mut w = Conn::open(port, who);
        s.expect(
            &["SUBSCRIBE", "news", "sports"],
            "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n",
        );
        s.expect_next("*3\r\n$9\r\nsubscribe\r\n$6\r\nsports\r\n:2\r\n");
        p.expect(
            &["PSUBSCRIBE", "n*"],
            ">3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:1\r\n",
        );
        w.expect(&["PUBLISH", "news", "hello"], ":2\r\n");
        s.expect_next("*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
        p.expect_next(">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
        w.expect(&["PUBLISH", "nobody", "x"], ":1\r\n");
        p.expect_next(">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$6\r\nnobody\r\n$1\r\nx\r\n");
        w.expect(&["PUBLISH", "void", "x"], ":0\r\n");
        w.expect(
            &["PUBSUB", "NUMSUB", "news", "void"],
            "*4\r\n$4\r\nnews\r\n:1\r\n$4\r\nvoid\r\n:0\r\n",
        );
        w.expect(&["PUBSUB", "NUMPAT"], ":1\r\n");
        // RESP3 clients may run anything while subscribed.
        p.expect(&["GET", "nothing"], "_\r\n");
        p.expect(
            &["PUNSUBSCRIBE"],
            ">3\r\n$12\r\npunsubscribe\r\n$2\r\nn*\r\n:0\r\n",
        );
        s.expect(
            &["UNSUBSCRIBE", "sports", "never"],
            "*3\r\n$11\r\nunsubscribe\r\n$6\r\nsports\r\n:1\r\n",
        );
        s.expect_next("*3\r\n$11\r\nunsubscribe\r\n$5\r\nnever\r\n:1\r\n");
        // RESET leaves pub/sub mode without confirmations.
        s.expect(&["RESET"], "+RESET\r\n");
        s.expect(&["GET", "nothing"], "$-1\r\n");
        w.expect(&["PUBLISH", "news", "again"], ":0\r\n");
        // Inside MULTI a confirmation is the command's entry in EXEC's array, and the
        // client is in pub/sub mode for the commands that follow it there.
        s.expect(&["MULTI"], OK);
        s.expect(&["SUBSCRIBE", "m"], "+QUEUED\r\n");
        s.expect(&["PING"], "+QUEUED\r\n");
        s.expect(
            &["EXEC"],
            "*2\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nm\r\n:1\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n",
        );
        w.expect(&["PUBLISH", "m", "hi"], ":1\r\n");
        s.expect_next("*3\r\n$7\r\nmessage\r\n$1\r\nm\r\n$2\r\nhi\r\n");
        // A message published to oneself follows the PUBLISH reply (Redis 7.2; the 7.0
        // reference sends it before, so it is left out of the comparison).
        if who == "conclave" {
            p.expect(
                &["SUBSCRIBE", "self"],
                ">3\r\n$9\r\nsubscribe\r\n$4\r\nself\r\n:1\r\n",
            );
            p.expect(&["PUBLISH", "self", "x"], ":1\r\n");
            p.expect_next(">3\r\n$7\r\nmessage\r\n$4\r\nself\r\n$1\r\nx\r\n");
        }
    });
}

#[test]
fn the_tracking_table_is_counted_and_bounded() {
    on_conclave_and_redis(|port, who| {
        let mut c = Conn::resp3(port, who);
        let mut admin = Conn::open(port, who);
        c.expect(&["CLIENT", "TRACKING", "ON"], OK);
        c.expect(&["MGET", "k1", "k2"], "*2\r\n_\r\n_\r\n");
        let stats = admin.cmd(&["INFO", "stats"]);
        for line in ["tracking_total_keys:2\r\n", "tracking_total_items:2\r\n"] {
            assert!(stats.contains(line), "{who}: {line:?} missing: {stats}");
        }
        let clients = admin.cmd(&["INFO", "clients"]);
        assert!(
            clients.contains("tracking_clients:1\r\n"),
            "{who}: {clients}"
        );
        // Over the limit, keys are forgotten and their clients told, as if changed.
        admin.expect(&["CONFIG", "SET", "tracking-table-max-keys", "1"], OK);
        admin.expect(
            &["CONFIG", "GET", "tracking-table-max-keys"],
            "*2\r\n$23\r\ntracking-table-max-keys\r\n$1\r\n1\r\n",
        );
        let push = c.raw.reply_string();
        assert!(
            push == invalidate(&["k1"]) || push == invalidate(&["k2"]),
            "{who}: {push:?}"
        );
        let stats = admin.cmd(&["INFO", "stats"]);
        assert!(
            stats.contains("tracking_total_keys:1\r\n"),
            "{who}: {stats}"
        );
        admin.expect(&["CONFIG", "SET", "tracking-table-max-keys", "1000000"], OK);
    });
}

/// Keys a script reads are tracked like a command's, and with NOLOOP the script's own
/// writes are the client's own (Redis's tracking.tcl "Tracking gets notification on
/// tracking table key eviction" family of script cases).
#[test]
fn keys_read_by_scripts_are_tracked() {
    on_conclave_and_redis(|port, who| {
        let mut c = Conn::resp3(port, who);
        let mut w = Conn::open(port, who);
        c.expect(&["CLIENT", "TRACKING", "ON", "NOLOOP"], OK);
        w.expect(&["SET", "k", "1"], OK);
        c.expect(
            &["EVAL", "return redis.call('get', KEYS[1])", "1", "k"],
            "$1\r\n1\r\n",
        );
        w.expect(&["SET", "k", "2"], OK);
        c.expect_next(&invalidate(&["k"]));
        // The client's own script writes a key it read: NOLOOP says nothing.
        c.expect(&["GET", "mine"], "_\r\n");
        c.expect(
            &[
                "EVAL",
                "return redis.call('set', KEYS[1], 'x')",
                "1",
                "mine",
            ],
            OK,
        );
        c.quiet();
    });
}
