//! `conclave cluster --nodes 3`: starts, serves through all three ports, survives one node
//! being killed, and stops cleanly on SIGTERM.

mod common;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{acquire, binary, conn_to};

/// A base port such that base..base+3 and base+10000.. are all free.
fn free_block() -> u16 {
    let mut base = 21000 + (std::process::id() % 4000) as u16;
    loop {
        let free = (0..3).all(|i| {
            TcpListener::bind(("127.0.0.1", base + i)).is_ok()
                && TcpListener::bind(("127.0.0.1", base + 10000 + i)).is_ok()
        });
        if free {
            return base;
        }
        base += 3;
    }
}

/// Acquires a fresh lock through `port`, retrying until `within` runs out.
fn acquire_eventually(port: u16, res: &str, within: Duration) -> Option<i64> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(mut con) = conn_to(port, Duration::from_secs(5)) {
            if let Ok(Some(token)) = acquire(&mut con, res, "local-cluster-test", &["TTL", "5000"])
            {
                return Some(token);
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
    None
}

/// The `process_id` a node reports in `INFO server`.
fn node_pid(port: u16) -> Option<u32> {
    let mut con = conn_to(port, Duration::from_secs(5))?;
    let info: String = redis::cmd("INFO").arg("server").query(&mut con).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|p| p.trim().parse().ok())
}

#[test]
fn local_cluster_serves_survives_a_kill_and_stops_cleanly() {
    let base = free_block();
    let tmp = tempfile::tempdir().unwrap();
    let mut cluster = Command::new(binary())
        .args(["cluster", "--nodes", "3"])
        .args(["--base-port", &base.to_string()])
        .args(["--base-cluster-port", &(base + 10000).to_string()])
        .arg("--data-dir")
        .arg(tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ports = [base, base + 1, base + 2];
    for (i, port) in ports.iter().enumerate() {
        let token = acquire_eventually(*port, &format!("r{i}"), Duration::from_secs(30));
        assert!(token.is_some(), "node on port {port} never granted a lock");
    }
    let pids: Vec<u32> = ports.iter().map(|p| node_pid(*p).unwrap()).collect();

    // Kill one node: the other two keep serving (a majority of three).
    let status = Command::new("kill")
        .args(["-9", &pids[0].to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        acquire_eventually(ports[1], "after-kill", Duration::from_secs(15)).is_some(),
        "survivors stopped serving after one node was killed"
    );
    assert!(
        cluster.try_wait().unwrap().is_none(),
        "the supervisor exited when one node died"
    );

    // SIGTERM the supervisor: it stops the rest and exits 0.
    let status = Command::new("kill")
        .args(["-TERM", &cluster.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = cluster.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "conclave cluster did not stop");
        thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "conclave cluster exited with {exit:?}");
    for pid in &pids[1..] {
        let alive = Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(
            !alive.success(),
            "node pid {pid} still running after the cluster stopped"
        );
    }
}
