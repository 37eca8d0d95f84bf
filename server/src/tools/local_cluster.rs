//! `conclave cluster`: a local N-node cluster of child processes on 127.0.0.1.
//!
//! Node `i` (1-based) is this same executable run with `--id i`, client port
//! `base_port + i - 1`, cluster port `base_cluster_port + i - 1`, data in `<data-dir>/node-i`
//! and the same `--peers` list on every node, followed by the pass-through node flags. The
//! nodes' output is forwarded line by line with a `[node-i]` prefix. A node that dies on its
//! own is reported and the others keep running (a cluster survives a minority failure). On
//! Ctrl-C or SIGTERM every node gets SIGTERM, then SIGKILL if it is still running after a
//! grace period; a second Ctrl-C kills at once.
//!
//! Every node is also given `--supervisor-pid <this pid>`, so that it stops by itself when this
//! process dies without stopping it (SIGKILL): see `crate::supervised`.
//!
//! While the nodes start, `crate::tools::cluster_ready` says what the supervisor is waiting
//! for (nodes accepting clients, then an agreed Raft leader) and when the cluster is ready.
//!
//! Why this file is long: one supervisor — start, watch, restart and stop N child nodes —
//! with its argument handling and unit tests; readiness reporting is in `cluster_ready.rs`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::config::LocalClusterConfig;
use crate::tools::cluster_ready::{self, Target};

/// How long nodes get to stop after SIGTERM before they are killed.
const GRACE: Duration = Duration::from_secs(5);

/// How long start-up progress is reported before giving up on a ready cluster.
const READY_LIMIT: Duration = Duration::from_secs(60);

/// Why the cluster could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// `--nodes 0`.
    #[error("--nodes must be at least 1")]
    NoNodes,
    /// A node's port would be above 65535.
    #[error("{flag} {base} + {nodes} nodes goes past port 65535")]
    PortRange {
        /// The flag at fault.
        flag: &'static str,
        /// Its value.
        base: u16,
        /// The node count.
        nodes: u16,
    },
    /// Client and cluster port ranges overlap.
    #[error("client ports {0}.. and cluster ports {1}.. overlap")]
    PortOverlap(u16, u16),
    /// The path of this executable is unknown.
    #[error("cannot find this executable: {0}")]
    CurrentExe(std::io::Error),
    /// A data directory could not be created.
    #[error("cannot create {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A node process could not be started.
    #[error("cannot start node-{id}: {source}")]
    Spawn {
        /// Node id.
        id: u16,
        /// The error.
        source: std::io::Error,
    },
    /// The tokio runtime could not be built, or signal handlers installed.
    #[error("runtime: {0}")]
    Runtime(std::io::Error),
}

/// What the supervisor asks of the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Keep running.
    Run,
    /// Stop gracefully (SIGTERM).
    Term,
    /// Stop now (SIGKILL).
    Kill,
}

/// Runs a local cluster until Ctrl-C or SIGTERM.
pub fn run(cfg: &LocalClusterConfig) -> ExitCode {
    let result = std::env::current_exe()
        .map_err(ClusterError::CurrentExe)
        .and_then(|exe| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(ClusterError::Runtime)?;
            rt.block_on(async {
                let signals = shutdown_signals().map_err(ClusterError::Runtime)?;
                supervise(&exe, cfg, signals, GRACE).await
            })
        });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("conclave cluster: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A receiver that yields once per Ctrl-C (SIGINT) or SIGTERM.
fn shutdown_signals() -> std::io::Result<mpsc::Receiver<()>> {
    let (tx, rx) = mpsc::channel(4);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(()) = int.recv() => {}
                    Some(()) = term.recv() => {}
                    else => break,
                }
                if tx.send(()).await.is_err() {
                    break;
                }
            }
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(()).await.is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// Checks the configuration: at least one node, ports in range and not overlapping.
pub fn validate(cfg: &LocalClusterConfig) -> Result<(), ClusterError> {
    if cfg.nodes == 0 {
        return Err(ClusterError::NoNodes);
    }
    let last = |flag: &'static str, base: u16| {
        base.checked_add(cfg.nodes - 1)
            .ok_or(ClusterError::PortRange {
                flag,
                base,
                nodes: cfg.nodes,
            })
    };
    let client_last = last("--base-port", cfg.base_port)?;
    let cluster_last = last("--base-cluster-port", cfg.base_cluster_port)?;
    if cfg.base_port <= cluster_last && cfg.base_cluster_port <= client_last {
        return Err(ClusterError::PortOverlap(
            cfg.base_port,
            cfg.base_cluster_port,
        ));
    }
    Ok(())
}

/// The `--peers` value shared by every node: `1@127.0.0.1:17001,2@127.0.0.1:17002,...`.
pub fn peers(cfg: &LocalClusterConfig) -> String {
    (1..=cfg.nodes)
        .map(|i| {
            format!(
                "{i}@127.0.0.1:{}",
                u32::from(cfg.base_cluster_port) + u32::from(i) - 1
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The data directory of node `i`.
pub fn node_dir(cfg: &LocalClusterConfig, i: u16) -> PathBuf {
    cfg.data_dir.join(format!("node-{i}"))
}

/// The command-line arguments of node `i` (1-based).
pub fn node_args(cfg: &LocalClusterConfig, i: u16) -> Vec<OsString> {
    let port = u32::from(cfg.base_port) + u32::from(i) - 1;
    let cluster_port = u32::from(cfg.base_cluster_port) + u32::from(i) - 1;
    let mut args: Vec<OsString> = vec![
        "--id".into(),
        i.to_string().into(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--port".into(),
        port.to_string().into(),
        "--cluster-port".into(),
        cluster_port.to_string().into(),
        "--data-dir".into(),
        node_dir(cfg, i).into_os_string(),
        "--peers".into(),
        peers(cfg).into(),
    ];
    // The nodes share this machine: split its cores between them (fewer threads each
    // means fewer context switches), unless the node arguments say otherwise.
    if !cfg.node_args.iter().any(|a| a.starts_with("--threads")) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let each = (cores / usize::from(cfg.nodes.max(1))).max(1);
        args.extend(["--threads".into(), each.to_string().into()]);
    }
    args.extend(cfg.node_args.iter().map(OsString::from));
    args
}

/// Starts the nodes from `exe`, forwards their output and keeps them running until `signals`
/// yields; then stops them (SIGTERM, SIGKILL after `grace` or a second signal).
///
/// Returns success after a requested stop, failure if every node died on its own.
pub async fn supervise(
    exe: &Path,
    cfg: &LocalClusterConfig,
    mut signals: mpsc::Receiver<()>,
    grace: Duration,
) -> Result<ExitCode, ClusterError> {
    validate(cfg)?;
    for i in 1..=cfg.nodes {
        let path = node_dir(cfg, i);
        std::fs::create_dir_all(&path).map_err(|source| ClusterError::DataDir { path, source })?;
    }

    let (stop_tx, stop_rx) = watch::channel(Stop::Run);
    let mut nodes: JoinSet<(u16, std::io::Result<ExitStatus>)> = JoinSet::new();
    for i in 1..=cfg.nodes {
        match spawn_node(exe, cfg, i) {
            Ok(child) => {
                let stop = stop_rx.clone();
                nodes.spawn(async move { (i, watch_node(child, stop).await) });
            }
            Err(source) => {
                eprintln!("[cluster] cannot start node-{i}: {source}; stopping the others");
                stop_all(&stop_tx, &mut nodes, grace, &mut signals).await;
                return Err(ClusterError::Spawn { id: i, source });
            }
        }
    }
    print_banner(cfg);
    let ready = tokio::spawn(cluster_ready::announce(
        ready_targets(cfg),
        password(cfg),
        READY_LIMIT,
    ));
    let result = watch_nodes(&stop_tx, &mut nodes, grace, &mut signals, &ready).await;
    ready.abort();
    result
}

/// Runs until every node has exited or a signal asks to stop (then stops them all).
async fn watch_nodes(
    stop_tx: &watch::Sender<Stop>,
    nodes: &mut JoinSet<(u16, std::io::Result<ExitStatus>)>,
    grace: Duration,
    signals: &mut mpsc::Receiver<()>,
    ready: &tokio::task::JoinHandle<()>,
) -> Result<ExitCode, ClusterError> {
    loop {
        tokio::select! {
            joined = nodes.join_next() => match joined {
                Some(Ok((i, status))) => {
                    eprintln!("[cluster] node-{i} {}; the other nodes keep running", describe(&status));
                    if nodes.is_empty() {
                        eprintln!("[cluster] every node has exited");
                        return Ok(ExitCode::FAILURE);
                    }
                }
                Some(Err(e)) => eprintln!("[cluster] node supervisor failed: {e}"),
                None => return Ok(ExitCode::FAILURE),
            },
            signal = signals.recv() => {
                if signal.is_none() {
                    // No more signals can arrive: wait for the nodes only.
                    while let Some(joined) = nodes.join_next().await {
                        if let Ok((i, status)) = joined {
                            eprintln!("[cluster] node-{i} {}", describe(&status));
                        }
                    }
                    return Ok(ExitCode::FAILURE);
                }
                ready.abort();
                eprintln!("[cluster] stopping {} node(s)", nodes.len());
                stop_all(stop_tx, nodes, grace, signals).await;
                eprintln!("[cluster] stopped");
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

/// Sends SIGTERM to every node, waits up to `grace` (or a second signal), then SIGKILL.
async fn stop_all(
    stop: &watch::Sender<Stop>,
    nodes: &mut JoinSet<(u16, std::io::Result<ExitStatus>)>,
    grace: Duration,
    signals: &mut mpsc::Receiver<()>,
) {
    stop.send_replace(Stop::Term);
    let deadline = tokio::time::sleep(grace);
    tokio::pin!(deadline);
    let mut killed = false;
    loop {
        tokio::select! {
            joined = nodes.join_next() => match joined {
                Some(Ok((i, status))) => eprintln!("[cluster] node-{i} {}", describe(&status)),
                Some(Err(e)) => eprintln!("[cluster] node supervisor failed: {e}"),
                None => return,
            },
            () = &mut deadline, if !killed => {
                eprintln!("[cluster] {} node(s) still running after {} ms: killing", nodes.len(), grace.as_millis());
                stop.send_replace(Stop::Kill);
                killed = true;
            }
            Some(()) = signals.recv(), if !killed => {
                eprintln!("[cluster] second signal: killing {} node(s)", nodes.len());
                stop.send_replace(Stop::Kill);
                killed = true;
            }
        }
    }
}

/// The nodes' client ports, for the start-up progress.
fn ready_targets(cfg: &LocalClusterConfig) -> Vec<Target> {
    (1..=cfg.nodes)
        .filter_map(|i| {
            let port = u16::try_from(u32::from(cfg.base_port) + u32::from(i) - 1).ok()?;
            Some(Target { id: i, port })
        })
        .collect()
}

/// The password the nodes require: `--requirepass` among the node flags, else the
/// `CONCLAVE_REQUIREPASS` the nodes inherit.
fn password(cfg: &LocalClusterConfig) -> Option<String> {
    let mut args = cfg.node_args.iter();
    let mut found = None;
    while let Some(a) = args.next() {
        if a == "--requirepass" {
            found = args.next().cloned();
        } else if let Some(v) = a.strip_prefix("--requirepass=") {
            found = Some(v.to_string());
        }
    }
    found.or_else(|| std::env::var("CONCLAVE_REQUIREPASS").ok())
}

/// The arguments that tie a node to this supervisor: it exits when this process does.
fn supervisor_args() -> [OsString; 2] {
    [
        "--supervisor-pid".into(),
        std::process::id().to_string().into(),
    ]
}

/// Starts node `i` with its output forwarded under a `[node-i]` prefix.
///
/// Call it on the thread that runs the supervisor: Linux signals a node when the thread that
/// started it exits, not the process.
fn spawn_node(exe: &Path, cfg: &LocalClusterConfig, i: u16) -> std::io::Result<Child> {
    let mut child = Command::new(exe)
        .args(node_args(cfg, i))
        .args(supervisor_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let prefix = format!("[node-{i}] ");
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward(out, prefix.clone(), false));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward(err, prefix, true));
    }
    Ok(child)
}

/// Copies lines from a node's pipe to our stdout or stderr with a prefix.
async fn forward(pipe: impl AsyncRead + Unpin, prefix: String, to_stderr: bool) {
    use std::io::Write;
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                // A closed stdout/stderr of our own is no reason to stop the nodes.
                let _ = if to_stderr {
                    writeln!(std::io::stderr().lock(), "{prefix}{text}")
                } else {
                    writeln!(std::io::stdout().lock(), "{prefix}{text}")
                };
            }
        }
    }
}

/// Waits for a node to exit, signalling it as the supervisor asks.
async fn watch_node(
    mut child: Child,
    mut stop: watch::Receiver<Stop>,
) -> std::io::Result<ExitStatus> {
    loop {
        tokio::select! {
            status = child.wait() => return status,
            changed = stop.changed() => {
                let order = *stop.borrow_and_update();
                match order {
                    Stop::Run => {}
                    Stop::Term => terminate(&mut child),
                    Stop::Kill => {
                        let _ = child.start_kill();
                    }
                }
                if changed.is_err() {
                    // The supervisor is gone: make sure the node does not outlive it.
                    let _ = child.start_kill();
                    return child.wait().await;
                }
            }
        }
    }
}

/// Asks a node to stop with SIGTERM (falls back to killing it when that is impossible).
fn terminate(child: &mut Child) {
    let Some(pid) = child.id() else { return };
    #[cfg(unix)]
    {
        // `kill(1)` rather than a libc binding: it keeps this crate free of unsafe code.
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if sent {
            return;
        }
    }
    let _ = pid;
    let _ = child.start_kill();
}

/// A human description of how a node ended.
fn describe(status: &std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(s) => {
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                if let Some(sig) = s.signal() {
                    return format!("was killed by signal {sig}");
                }
            }
            match s.code() {
                Some(0) => "exited".to_string(),
                Some(c) => format!("exited with status {c}"),
                None => format!("exited ({s})"),
            }
        }
        Err(e) => format!("could not be waited for: {e}"),
    }
}

/// Tells the user how to reach the nodes.
fn print_banner(cfg: &LocalClusterConfig) {
    let mut text = format!("conclave cluster: {} node(s) on 127.0.0.1\n", cfg.nodes);
    for i in 1..=cfg.nodes {
        let port = u32::from(cfg.base_port) + u32::from(i) - 1;
        let cport = u32::from(cfg.base_cluster_port) + u32::from(i) - 1;
        text.push_str(&format!(
            "  node-{i}: redis-cli -p {port}    (cluster port {cport}, dashboard and metrics http://127.0.0.1:{}/, data {})\n",
            port + 1000,
            node_dir(cfg, i).display()
        ));
    }
    text.push_str("Press Ctrl-C to stop all nodes.");
    println!("{text}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn cfg(dir: &Path, nodes: u16) -> LocalClusterConfig {
        LocalClusterConfig {
            nodes,
            base_port: 7001,
            base_cluster_port: 17001,
            data_dir: dir.to_path_buf(),
            node_args: vec!["--maxmemory".into(), "100mb".into()],
        }
    }

    #[test]
    fn node_arguments() {
        let c = cfg(Path::new("/tmp/cc"), 3);
        assert_eq!(
            peers(&c),
            "1@127.0.0.1:17001,2@127.0.0.1:17002,3@127.0.0.1:17003"
        );
        let args: Vec<String> = node_args(&c, 2)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = (cores / 3).max(1).to_string();
        assert_eq!(
            args,
            [
                "--id",
                "2",
                "--bind",
                "127.0.0.1",
                "--port",
                "7002",
                "--cluster-port",
                "17002",
                "--data-dir",
                "/tmp/cc/node-2",
                "--peers",
                "1@127.0.0.1:17001,2@127.0.0.1:17002,3@127.0.0.1:17003",
                "--threads",
                &threads,
                "--maxmemory",
                "100mb",
            ]
        );
    }

    #[test]
    fn node_arguments_parse_as_a_node_command_line() {
        use clap::Parser;
        let c = cfg(Path::new("/tmp/cc"), 3);
        let mut full: Vec<OsString> = vec!["conclave".into()];
        full.extend(node_args(&c, 3));
        full.extend(supervisor_args());
        let cli = crate::config::Cli::try_parse_from(full).unwrap();
        assert_eq!(cli.node.supervisor_pid, Some(std::process::id()));
        assert!(cli.command.is_none());
        assert_eq!(cli.node.id, 3);
        assert_eq!(cli.node.port, 7003);
        assert_eq!(cli.node.cluster_port().unwrap(), 17003);
        assert_eq!(cli.node.peer_list().unwrap().len(), 3);
        assert_eq!(cli.node.maxmemory, 100 * 1024 * 1024);
    }

    #[test]
    fn start_up_targets_and_password() {
        let mut c = cfg(Path::new("/tmp/cc"), 3);
        assert_eq!(
            ready_targets(&c),
            [
                Target { id: 1, port: 7001 },
                Target { id: 2, port: 7002 },
                Target { id: 3, port: 7003 }
            ]
        );
        c.node_args = vec!["--requirepass".into(), "s3cret".into()];
        assert_eq!(password(&c).as_deref(), Some("s3cret"));
        c.node_args = vec!["--requirepass=other".into()];
        assert_eq!(password(&c).as_deref(), Some("other"));
    }

    #[test]
    fn validation() {
        let d = Path::new("/tmp/cc");
        assert!(validate(&cfg(d, 3)).is_ok());
        assert!(matches!(validate(&cfg(d, 0)), Err(ClusterError::NoNodes)));
        let mut c = cfg(d, 3);
        c.base_port = 65534;
        assert!(matches!(validate(&c), Err(ClusterError::PortRange { .. })));
        let mut c = cfg(d, 3);
        c.base_cluster_port = 7003;
        assert!(matches!(validate(&c), Err(ClusterError::PortOverlap(..))));
        c.base_cluster_port = 7004;
        assert!(validate(&c).is_ok());
    }

    /// Writes a fake node: a shell script that logs its arguments and then behaves as `body`.
    fn fake_node(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("fake-node.sh");
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho \"started $*\"\necho oops >&2\n{body}\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Counts the pids of running fake nodes started from `exe`.
    fn running(exe: &Path) -> usize {
        let out = std::process::Command::new("pgrep")
            .arg("-f")
            .arg(exe)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    }

    #[tokio::test]
    async fn stops_every_node_with_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let exe = fake_node(
            dir.path(),
            "trap 'exit 0' TERM\nwhile :; do sleep 0.05; done",
        );
        let c = cfg(&dir.path().join("data"), 3);
        let (tx, rx) = mpsc::channel(1);
        let sup = tokio::spawn({
            let exe = exe.clone();
            async move { supervise(&exe, &c, rx, Duration::from_secs(20)).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(running(&exe), 3);
        for i in 1..=3 {
            assert!(dir.path().join(format!("data/node-{i}")).is_dir());
        }
        tx.send(()).await.unwrap();
        let code = tokio::time::timeout(Duration::from_secs(15), sup)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        assert_eq!(running(&exe), 0);
    }

    #[tokio::test]
    async fn kills_nodes_that_ignore_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let exe = fake_node(dir.path(), "trap '' TERM\nwhile :; do sleep 0.05; done");
        let c = cfg(&dir.path().join("data"), 2);
        let (tx, rx) = mpsc::channel(1);
        let sup = tokio::spawn({
            let exe = exe.clone();
            async move { supervise(&exe, &c, rx, Duration::from_millis(300)).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(running(&exe), 2);
        tx.send(()).await.unwrap();
        let code = tokio::time::timeout(Duration::from_secs(15), sup)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        assert_eq!(running(&exe), 0);
    }

    #[tokio::test]
    async fn one_node_dying_leaves_the_others_running() {
        let dir = tempfile::tempdir().unwrap();
        // Node 2 exits at once; the others run until told to stop.
        let exe = fake_node(
            dir.path(),
            "case \"$*\" in *'--id 2 '*) exit 3;; esac\ntrap 'exit 0' TERM\nwhile :; do sleep 0.05; done",
        );
        let c = cfg(&dir.path().join("data"), 3);
        let (tx, rx) = mpsc::channel(1);
        let sup = tokio::spawn({
            let exe = exe.clone();
            async move { supervise(&exe, &c, rx, Duration::from_secs(20)).await }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(running(&exe), 2);
        assert!(!sup.is_finished());
        tx.send(()).await.unwrap();
        let code = tokio::time::timeout(Duration::from_secs(15), sup)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        assert_eq!(running(&exe), 0);
    }

    #[tokio::test]
    async fn all_nodes_dying_is_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let exe = fake_node(dir.path(), "exit 1");
        let c = cfg(&dir.path().join("data"), 2);
        let (_tx, rx) = mpsc::channel(1);
        let code = tokio::time::timeout(Duration::from_secs(15), supervise(&exe, &c, rx, GRACE))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(code, ExitCode::FAILURE);
    }

    #[tokio::test]
    async fn a_missing_executable_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(&dir.path().join("data"), 2);
        let (_tx, rx) = mpsc::channel(1);
        let err = supervise(&dir.path().join("nope"), &c, rx, GRACE)
            .await
            .unwrap_err();
        assert!(matches!(err, ClusterError::Spawn { id: 1, .. }));
    }
}
