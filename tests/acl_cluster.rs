//! ACL users on a 3-node cluster (contract, security): a user created on one node
//! authenticates on another, keeps existing after a node restarts and after the whole
//! cluster restarts (the users live in the meta Raft group), its rights hold on every
//! node (`+@read` cannot `LOCK.ACQUIRE` or `Q.PUSH`), and deleting it closes its
//! connections on every node.

mod common;

use std::time::Duration;

use common::{conn_to, until_ok, Cluster};

fn con(c: &Cluster, id: u64) -> redis::Connection {
    conn_to(c.port(id), Duration::from_secs(10)).expect("connect")
}

fn auth(con: &mut redis::Connection, user: &str, pass: &str) -> redis::RedisResult<String> {
    redis::cmd("AUTH").arg(user).arg(pass).query(con)
}

/// Authenticates as `reader` on node `id`, retrying while the node catches up.
fn auth_reader(c: &Cluster, id: u64) -> redis::Connection {
    until_ok(Duration::from_secs(20), || {
        let mut k = conn_to(c.port(id), Duration::from_secs(10))
            .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::IoError, "connect")))?;
        auth(&mut k, "reader", "pw")?;
        Ok(k)
    })
}

#[test]
fn users_are_the_same_on_every_node_and_survive_restarts() {
    let mut c = Cluster::start(3, &[]);
    let mut admin = con(&c, 1);
    let ok: String = until_ok(Duration::from_secs(20), || {
        redis::cmd("ACL")
            .arg(&[
                "SETUSER",
                "reader",
                "on",
                ">pw",
                "+@read",
                "+acl|whoami",
                "~*",
            ])
            .query(&mut admin)
    });
    assert_eq!(ok, "OK");

    // Another node knows the user, with its rights.
    let mut r2 = auth_reader(&c, 2);
    let who: String = redis::cmd("ACL").arg("WHOAMI").query(&mut r2).unwrap();
    assert_eq!(who, "reader");
    let got: Option<String> = redis::cmd("GET").arg("k").query(&mut r2).unwrap();
    assert_eq!(got, None);
    let mut r3 = auth_reader(&c, 3);
    let err = redis::cmd("LOCK.ACQUIRE")
        .arg(&["res", "me"])
        .query::<redis::Value>(&mut r3)
        .unwrap_err();
    assert_eq!(err.code(), Some("NOPERM"), "{err}");
    assert!(err.to_string().contains("'lock.acquire' command"), "{err}");
    let err = redis::cmd("Q.PUSH")
        .arg(&["topic", "m"])
        .query::<redis::Value>(&mut r3)
        .unwrap_err();
    assert_eq!(err.code(), Some("NOPERM"), "{err}");
    // A wrong password stays wrong everywhere.
    let mut x = con(&c, 3);
    let err = auth(&mut x, "reader", "nope").unwrap_err();
    assert_eq!(err.code(), Some("WRONGPASS"));

    // One node restarts: the user is there.
    c.node(2).restart();
    let mut r2 = auth_reader(&c, 2);
    let who: String = redis::cmd("ACL").arg("WHOAMI").query(&mut r2).unwrap();
    assert_eq!(who, "reader");

    // The whole cluster restarts: still there, only as a hash.
    for id in 1..=3 {
        c.node(id).kill();
    }
    for id in 1..=3 {
        c.node(id).restart();
    }
    c.wait_leader(Duration::from_secs(30));
    let mut r1 = auth_reader(&c, 1);
    let list: Vec<String> = redis::cmd("ACL")
        .arg("LIST")
        .query(&mut con(&c, 3))
        .unwrap();
    assert!(
        list.iter()
            .any(|l| l.starts_with("user reader on #") && !l.contains("pw ")),
        "{list:?}"
    );

    // Deleting the user on one node closes its connections on the others.
    let mut admin = con(&c, 3);
    let n: i64 = until_ok(Duration::from_secs(20), || {
        redis::cmd("ACL")
            .arg(&["DELUSER", "reader"])
            .query(&mut admin)
    });
    assert_eq!(n, 1);
    until_ok(Duration::from_secs(10), || {
        match redis::cmd("PING").query::<String>(&mut r1) {
            Ok(_) => Err(redis::RedisError::from((
                redis::ErrorKind::IoError,
                "still open",
            ))),
            Err(_) => Ok(()),
        }
    });
    // A fresh connection per attempt: one that authenticated before node 2 applied the
    // deletion is closed by it (Redis closes a deleted user's clients).
    let err = until_ok(Duration::from_secs(10), || {
        let mut y = con(&c, 2);
        match auth(&mut y, "reader", "pw") {
            Ok(_) => Err(redis::RedisError::from((
                redis::ErrorKind::IoError,
                "still there",
            ))),
            Err(e) => Ok(e),
        }
    });
    assert_eq!(err.code(), Some("WRONGPASS"), "{err:?}");
}
