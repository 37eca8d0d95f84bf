//! ACL users (contract, security; issue 9): replies compared byte for byte with a real
//! `redis-server` 7.0 (`ACL SETUSER`/`GETUSER`/`LIST`/`WHOAMI`/`CAT`/`DRYRUN`, the
//! `-NOPERM` texts for commands and keys, `AUTH` and `HELLO ... AUTH` errors), and
//! what only Conclave has: `@lock`/`@queue` rights, `CLIENT LIST`'s `user=`, a deleted
//! user's clients closed, `RESET` back to `default`, `requirepass` as the default
//! user's password, `MONITOR` and the slow log not showing `ACL SETUSER`'s rules.

mod common;
mod resp_support;

use std::io::{Read, Write};
use std::time::Duration;

use common::Server;
use resp_support::parity::differences;
use resp_support::redis_reference::Reference;
use resp_support::Raw;

/// Rules and errors whose replies do not depend on the order of Redis's command table
/// (single commands, categories, patterns, passwords).
const SETUSER_GETUSER: &str = r"
ACL WHOAMI
ACL LIST
ACL SETUSER newuser
ACL GETUSER newuser
ACL SETUSER newuser on >passwd1 >passwd2 <passwd1 +get ~foo:* %R~ro:* %W~wo:* &chan:*
ACL GETUSER newuser
ACL LIST
ACL USERS
ACL SETUSER newuser #34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6
ACL SETUSER newuser !34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6
ACL SETUSER newuser #34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e
ACL SETUSER newuser #34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4eq
ACL SETUSER newuser <nosuchpass
ACL SETUSER newuser +nosuchcommand
ACL SETUSER newuser +@nosuchcategory
ACL SETUSER newuser +config|get|appendonly
ACL SETUSER newuser +get|key1|key2
ACL SETUSER newuser bogus
ACL SETUSER newuser allkeys ~foo
ACL SETUSER newuser allchannels &foo
ACL SETUSER newuser (+get ~x
ACL SETUSER a\x20a
ACL GETUSER newuser
ACL SETUSER sel on nopass +set ~a (+get ~b) (%R~c +@string)
ACL GETUSER sel
ACL SETUSER sel clearselectors
ACL GETUSER sel
ACL SETUSER cats reset +@all -@string
ACL GETUSER cats
ACL SETUSER cats reset -@all +@string
ACL GETUSER cats
ACL SETUSER cats reset +@all -client|kill
ACL GETUSER cats
ACL SETUSER cats reset +memory|doctor
ACL GETUSER cats
ACL SETUSER cats +memory
ACL GETUSER cats
ACL SETUSER cats reset +select|0
ACL GETUSER cats
ACL GETUSER nosuchuser
ACL DELUSER default
ACL DELUSER nosuchuser cats
ACL USERS
ACL CAT nosuchcategory
ACL CAT a b
ACL LOG 1 2
ACL GENPASS -236
ACL GENPASS 5000
ACL GENPASS 1 2
ACL WHOAMI x
ACL HELP x
ACL nosuchsub
ACL LOAD
ACL SAVE
ACL DRYRUN newuser GET foo:1
ACL DRYRUN newuser SET foo:1 x
ACL DRYRUN newuser GET bar
ACL DRYRUN newuser GET
ACL DRYRUN nosuchuser GET x
ACL DRYRUN newuser nosuchcommand x
ACL DRYRUN sel GET b
ACL DRYRUN sel GET c
ACL DRYRUN sel GETRANGE c 0 1
ACL SETUSER command-test +@all %R~read* %W~write* %RW~rw*
ACL GETUSER command-test
ACL DRYRUN command-test TOUCH read
ACL DRYRUN command-test TOUCH nothing
ACL DRYRUN command-test EXISTS write
ACL DRYRUN command-test TYPE rw
ACL DRYRUN command-test STRLEN read
ACL DRYRUN command-test MEMORY USAGE write
ACL DRYRUN command-test MEMORY USAGE nothing
ACL DRYRUN command-test GET write
ACL DRYRUN command-test SET read v
ACL DRYRUN command-test SET write v
ACL DRYRUN command-test SET write v GET
ACL DRYRUN command-test SET rw v GET
ACL DRYRUN command-test BITFIELD read GET u4 0
ACL DRYRUN command-test BITFIELD read SET u4 0 1
ACL DRYRUN command-test COPY read write
ACL DRYRUN command-test COPY write read
ACL DRYRUN command-test PUBLISH ch m
ACL DRYRUN sel PUBLISH ch m
";

/// `-NOPERM` for commands, keys and subcommands, and the `AUTH` / `HELLO` errors, on
/// one connection that logs in and out.
const NOPERM_AND_AUTH: &str = r"
AUTH x
AUTH a b c
AUTH nosuchuser pass
ACL SETUSER u1 on >secret +get +set +client|getname +multi +exec ~k* %R~r*
AUTH u1 wrong
AUTH u1 secret
ACL WHOAMI
GET k1
GET other
SET r1 v
SET k1 v
INCR k1
CLIENT GETNAME
CLIENT KILL 127.0.0.1:1
MULTI
INCR k1
GET k1
EXEC
HELLO 2 AUTH u1 wrong
AUTH default whatever
ACL SETUSER u1 off
AUTH u1 secret
HELLO 2 AUTH u1 secret
ACL SETUSER u1 on
CONFIG SET requirepass foobar
AUTH foobar
AUTH default foobar
AUTH wrong
CONFIG SET requirepass ''
AUTH x
";

/// Replays the scripts on Conclave and on `redis-server` (when installed) and
/// requires identical bytes, RESP2 then (for `GETUSER`'s map and set) RESP3.
#[test]
fn acl_replies_match_redis_byte_for_byte() {
    let server = Server::start(&[]);
    let Some(reference) = Reference::start() else {
        return;
    };
    let mut diffs = Vec::new();
    for proto in ["2", "3"] {
        for script in [SETUSER_GETUSER, NOPERM_AND_AUTH] {
            let mut ours = Raw::connect(server.port);
            let mut theirs = Raw::connect(reference.port);
            ours.cmd(&["HELLO", proto]);
            theirs.cmd(&["HELLO", proto]);
            for con in [&mut ours, &mut theirs] {
                for user in ["newuser", "sel", "cats", "u1", "command-test"] {
                    con.cmd(&["ACL", "DELUSER", user]);
                }
            }
            diffs.extend(differences(&mut ours, &mut theirs, script));
        }
    }
    assert!(
        diffs.is_empty(),
        "replies differ from Redis:\n{}",
        diffs.join("\n")
    );
}

fn cmd(raw: &mut Raw, args: &[&str]) -> String {
    raw.cmd(args)
}

/// `+@read` runs reads but not `LOCK.ACQUIRE` or `Q.PUSH`; `+@lock`/`+@queue` allow
/// them; `ACL CAT lock|queue` list the services' commands.
#[test]
fn lock_and_queue_categories() {
    let server = Server::start(&[]);
    let mut admin = Raw::connect(server.port);
    assert_eq!(
        cmd(
            &mut admin,
            &["ACL", "SETUSER", "reader", "on", ">pw", "+@read", "~*"]
        ),
        "+OK\r\n"
    );
    let mut r = Raw::connect(server.port);
    assert_eq!(cmd(&mut r, &["AUTH", "reader", "pw"]), "+OK\r\n");
    assert_eq!(cmd(&mut r, &["GET", "x"]), "$-1\r\n");
    assert_eq!(
        cmd(&mut r, &["LOCK.ACQUIRE", "res", "me"]),
        "-NOPERM this user has no permissions to run the 'lock.acquire' command\r\n"
    );
    assert_eq!(
        cmd(&mut r, &["Q.PUSH", "topic", "m"]),
        "-NOPERM this user has no permissions to run the 'q.push' command\r\n"
    );
    assert_eq!(
        cmd(
            &mut admin,
            &["ACL", "SETUSER", "reader", "+@lock", "+@queue"]
        ),
        "+OK\r\n"
    );
    assert!(cmd(&mut r, &["LOCK.ACQUIRE", "res", "me"]).starts_with(':'));
    let cat = cmd(&mut admin, &["ACL", "CAT", "lock"]);
    assert!(
        cat.contains("lock.acquire") && !cat.contains("q.push"),
        "{cat}"
    );
    let cat = cmd(&mut admin, &["ACL", "CAT", "queue"]);
    assert!(
        cat.contains("q.push") && !cat.contains("lock.acquire"),
        "{cat}"
    );
}

/// `CLIENT LIST` names each client's user; `RESET` returns to `default`; deleting a
/// user closes its connections (after the deleting command's reply).
#[test]
fn client_user_reset_and_deleted_users() {
    let server = Server::start(&[]);
    let mut admin = Raw::connect(server.port);
    cmd(
        &mut admin,
        &[
            "ACL", "SETUSER", "user1", "on", ">secret", "+@all", "~*", "&*",
        ],
    );
    let mut c = Raw::connect(server.port);
    assert_eq!(cmd(&mut c, &["AUTH", "user1", "secret"]), "+OK\r\n");
    assert!(cmd(&mut admin, &["CLIENT", "LIST"]).contains(" user=user1 "));
    assert_eq!(cmd(&mut c, &["RESET"]), "+RESET\r\n");
    assert_eq!(cmd(&mut c, &["ACL", "WHOAMI"]), "$7\r\ndefault\r\n");
    assert_eq!(cmd(&mut c, &["AUTH", "user1", "secret"]), "+OK\r\n");
    // The user deletes itself: the reply comes, then the connection closes.
    assert_eq!(cmd(&mut c, &["ACL", "DELUSER", "user1"]), ":1\r\n");
    let mut s = c.stream().try_clone().expect("clone");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = s.write_all(b"PING\r\n");
    let mut buf = [0u8; 64];
    let read = s.read(&mut buf);
    assert!(matches!(read, Ok(0) | Err(_)), "still open: {read:?}");
    assert_eq!(cmd(&mut admin, &["PING"]), "+PONG\r\n");
}

/// `CLIENT KILL USER <name>` closes that user's connections only; an unknown name is
/// Redis's error (redis-py's `test_client_kill_filter_by_user`).
#[test]
fn client_kill_by_user() {
    let server = Server::start(&[]);
    let mut admin = Raw::connect(server.port);
    assert_eq!(
        cmd(&mut admin, &["CLIENT", "KILL", "USER", "nosuch"]),
        "-ERR No such user 'nosuch'\r\n"
    );
    cmd(
        &mut admin,
        &["ACL", "SETUSER", "victim", "on", "nopass", "+@all", "~*"],
    );
    let mut v = Raw::connect(server.port);
    assert_eq!(cmd(&mut v, &["AUTH", "victim", "x"]), "+OK\r\n");
    let mut bystander = Raw::connect(server.port);
    assert_eq!(
        cmd(&mut admin, &["CLIENT", "KILL", "USER", "victim"]),
        ":1\r\n"
    );
    assert!(!cmd(&mut admin, &["CLIENT", "LIST"]).contains(" user=victim "));
    assert_eq!(cmd(&mut bystander, &["PING"]), "+PONG\r\n");
    // Nobody else is that user now.
    assert_eq!(
        cmd(&mut admin, &["CLIENT", "KILL", "USER", "victim"]),
        ":0\r\n"
    );
}

/// `MONITOR` and the slow log show `ACL SETUSER`'s name and rules redacted, and `AUTH`'s
/// arguments.
#[test]
fn secrets_are_redacted() {
    let server = Server::start(&[]);
    let mut admin = Raw::connect(server.port);
    cmd(
        &mut admin,
        &["CONFIG", "SET", "slowlog-log-slower-than", "0"],
    );
    cmd(&mut admin, &["ACL", "SETUSER", "u", "on", ">topsecret"]);
    let log = cmd(&mut admin, &["SLOWLOG", "GET", "2"]);
    assert!(
        !log.contains("topsecret") && log.contains("(redacted)"),
        "{log}"
    );
    let mut mon = Raw::connect(server.port);
    assert_eq!(cmd(&mut mon, &["MONITOR"]), "+OK\r\n");
    cmd(&mut admin, &["AUTH", "u", "topsecret"]);
    let line = mon.reply_string();
    assert!(
        line.contains("\"auth\" \"(redacted)\" \"(redacted)\"")
            || line.contains("\"AUTH\" \"(redacted)\" \"(redacted)\""),
        "{line}"
    );
}
