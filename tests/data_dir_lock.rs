//! One node process per data directory (issue 7, item 3).
//!
//! A second `conclave` on a directory that a running node holds must refuse to start, name
//! the directory and the holder's pid, and leave the first node serving. The lock dies with
//! its process, so after `kill -9` a new node starts on the directory at once.

mod common;

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{acquire, binary, free_port, Server};

/// Runs a node on `data_dir` with fresh ports; returns its exit status and stderr, or
/// `None` (after killing it) if it is still running after `within`.
fn run_second_node(data_dir: &std::path::Path, within: Duration) -> Option<(ExitStatus, String)> {
    let port = free_port();
    let mut child = Command::new(binary())
        .args(["--port", &port.to_string()])
        .args(["--cluster-port", &(port + 10000).to_string()])
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the second node");
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    Some((status, stderr))
}

/// A fresh lock can be granted through this node within a few seconds.
fn grants_a_lock(server: &Server, res: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let mut con = server.conn();
        if let Ok(Some(_)) = acquire(&mut con, res, "dir-lock-test", &["TTL", "5000"]) {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn a_second_process_on_the_same_data_dir_is_refused() {
    let mut first = Server::start(&[]);
    let first_pid = first.pid();
    assert!(
        grants_a_lock(&first, "before"),
        "the first node never granted a lock"
    );
    let shown = first
        .data_dir
        .canonicalize()
        .expect("the first node created its data directory");

    let (status, stderr) = run_second_node(&first.data_dir, Duration::from_secs(20))
        .expect("a second node on the same data directory kept running");
    assert!(
        !status.success(),
        "the second node exited with {status:?}; stderr:\n{stderr}"
    );
    assert!(
        status.code().is_some_and(|c| c != 101) && !stderr.contains("panicked"),
        "the second node did not fail cleanly ({status:?}); stderr:\n{stderr}"
    );
    let expected = format!(
        "data directory {} is in use by another conclave process (pid {first_pid})",
        shown.display()
    );
    assert!(
        stderr.contains(&expected),
        "stderr does not say {expected:?}:\n{stderr}"
    );

    // The first node never noticed.
    assert!(!first.exited(), "the first node exited");
    assert!(
        grants_a_lock(&first, "after-refusal"),
        "the first node stopped serving after the refusal"
    );

    // SIGKILL leaves the LOCK file behind but not the lock: a new node starts at once.
    first.restart();
    let second_pid = first.pid();
    assert_ne!(second_pid, first_pid);
    assert!(
        grants_a_lock(&first, "after-restart"),
        "the restarted node never granted a lock"
    );
    let recorded = std::fs::read_to_string(first.data_dir.join("LOCK")).expect("read LOCK");
    assert_eq!(recorded.trim(), second_pid.to_string());
}
