//! `conclave cluster --nodes 3`: starts, serves through all three ports, survives one node
//! being killed, and stops cleanly on SIGTERM; its nodes do not outlive a supervisor that is
//! killed with SIGKILL.

mod common;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{acquire, binary, conn_to, serial};

/// A base port such that base..base+3 and the nodes' default cluster (+10000) and HTTP
/// (+1000) ports are all free.
fn free_block() -> u16 {
    let mut base = 21000 + (std::process::id() % 4000) as u16;
    loop {
        let free = (0..3).all(|i| {
            [0, 1000, 10000]
                .iter()
                .all(|off| TcpListener::bind(("127.0.0.1", base + off + i)).is_ok())
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

/// `conclave cluster --nodes 3` on the ports from `base`, data under `dir`.
fn spawn_cluster(base: u16, dir: &std::path::Path) -> std::process::Child {
    Command::new(binary())
        .args(["cluster", "--nodes", "3"])
        .args(["--base-port", &base.to_string()])
        .args(["--base-cluster-port", &(base + 10000).to_string()])
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn local_cluster_serves_survives_a_kill_and_stops_cleanly() {
    // Both tests use a block of fixed ports chosen from this process's pid.
    let _serial = serial();
    let base = free_block();
    let tmp = tempfile::tempdir().unwrap();
    let mut cluster = spawn_cluster(base, tmp.path());
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

/// The state, parent pid and start time (clock ticks after boot) of a process, from
/// `/proc/<pid>/stat`; `None` once it is gone (reaped).
fn proc_stat(pid: u32) -> Option<(char, u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count fields from the last ')'.
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    Some((
        state,
        fields.get(1)?.parse().ok()?,
        fields.get(19)?.parse().ok()?,
    ))
}

/// The pids of the running processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|&pid| matches!(proc_stat(pid), Some((s, ppid, _)) if ppid == parent && s != 'Z'))
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    pids
}

/// Processes this test started (identified by pid and start time, so a reused pid is never
/// taken for one of them); whatever still runs is SIGKILLed on drop, also when the test fails.
struct Started(Vec<(u32, u64)>);

impl Started {
    /// The pids still running (a zombie waiting for its new parent to reap it has exited).
    fn running(&self) -> Vec<u32> {
        self.0
            .iter()
            .filter(|(pid, start)| {
                matches!(proc_stat(*pid), Some((s, _, t)) if t == *start && s != 'Z')
            })
            .map(|(pid, _)| *pid)
            .collect()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        for pid in self.running() {
            let _ = Command::new("kill")
                .args(["-9", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[test]
fn nodes_exit_when_the_supervisor_is_killed() {
    let _serial = serial();
    if !std::path::Path::new("/proc/self/stat").exists() {
        eprintln!("skipped: needs /proc");
        return;
    }
    let base = free_block();
    let tmp = tempfile::tempdir().unwrap();
    let mut supervisor = spawn_cluster(base, tmp.path());
    let sup_pid = supervisor.id();
    let sup_start = proc_stat(sup_pid).expect("the supervisor is running").2;
    let mut started = Started(vec![(sup_pid, sup_start)]);

    // Every node answers, and the nodes are exactly the supervisor's children.
    let ports = [base, base + 1, base + 2];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut pids: Vec<u32> = Vec::new();
    for port in ports {
        let pid = loop {
            if let Some(pid) = node_pid(port) {
                break pid;
            }
            assert!(
                Instant::now() < deadline,
                "node on port {port} never answered"
            );
            thread::sleep(Duration::from_millis(100));
        };
        let (_, ppid, start) = proc_stat(pid).expect("a node that answered is running");
        assert_eq!(
            ppid, sup_pid,
            "node pid {pid} is not a child of the supervisor"
        );
        started.0.push((pid, start));
        pids.push(pid);
    }
    pids.sort_unstable();
    assert_eq!(children_of(sup_pid), pids);

    // SIGKILL: the supervisor cannot stop its nodes itself.
    supervisor.kill().unwrap();
    supervisor.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let running = started.running();
        if running.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nodes {running:?} still running 20 s after their supervisor was killed"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// A node option before the tool's name (`conclave --port 7000 cluster`) is refused
/// with a message that says where the tool's own options go, instead of being ignored.
#[test]
fn a_node_option_before_a_tool_is_refused() {
    let out = Command::new(binary())
        .args(["--port", "7000", "cluster", "--nodes", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--port is a node option"), "{err}");
    assert!(err.contains("--base-port"), "{err}");
}
