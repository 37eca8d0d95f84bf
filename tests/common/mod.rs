//! Test harness: real `conclave` processes on 127.0.0.1, and a fault-injecting proxy.
//!
//! - [`Server`] runs one node process with a fresh data directory; it can be killed
//!   (`SIGKILL`), paused (`SIGSTOP`), resumed and restarted on the same directory.
//! - [`Cluster`] runs N nodes whose cluster traffic goes through one [`Proxy`] per
//!   node: every node advertises its proxy's address in `--peers`, and the proxy
//!   learns the caller from the `NODE <id>` line peers send first. A partition is a
//!   set of blocked (from, to) pairs: the proxy cuts those connections and refuses
//!   new ones, in both directions.
//!
//! Everything is bounded: nodes are killed when the handle drops, waits have
//! deadlines.
//!
//! Why this file is long: the one harness every integration test shares (processes, proxy,
//! clients, waits).

#![allow(dead_code)]

pub mod lock_info;
pub mod queue_ops;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Path of the binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_conclave"))
}

/// A port nobody listens on right now, and port + 10000 too (a node's default cluster
/// port).
///
/// Taken from 10000..22000 (so port + 10000 stays below 32768): Linux hands out local
/// ports for outgoing connections from 32768 up, so a port chosen here cannot be taken by
/// some client's or peer's connection between the choice and the node's bind, as an
/// ephemeral port could. Each call moves on from the last, starting from a place
/// derived from the process id, so parallel tests and test binaries rarely meet.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
    const LOW: u32 = 10_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % SPAN,
        Relaxed,
        Relaxed,
    );
    loop {
        let port = (LOW + NEXT.fetch_add(1, Relaxed) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok()
        {
            return port;
        }
    }
}

/// One node process.
pub struct Server {
    pub id: u64,
    pub port: u16,
    pub cluster_port: u16,
    /// The HTTP port (`/health`, metrics); 0 when off.
    pub metrics_port: u16,
    pub data_dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// A one-node server with extra flags.
    pub fn start(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut s = Server {
            id: 1,
            port,
            cluster_port: port + 10000,
            metrics_port: 0,
            data_dir: tmp.path().join("data"),
            args: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
            _tmp: Some(tmp),
        };
        s.spawn();
        s.wait_ready();
        s
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(binary());
        cmd.arg("--id")
            .arg(self.id.to_string())
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--cluster-port")
            .arg(self.cluster_port.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir);
        // The HTTP port: a free one of its own in a cluster, off for a lone server unless
        // its test passes one (the default, port + 1000, could collide across tests).
        if !self.args.iter().any(|a| a == "--metrics-port") {
            cmd.arg("--metrics-port").arg(self.metrics_port.to_string());
        }
        cmd.args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var("CONCLAVE_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if std::env::var("CONCLAVE_TEST_LOG").is_ok() {
                Stdio::inherit()
            } else {
                // Kept beside the data directory, so a node that fails to start says why.
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.log_path())
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null())
            });
        self.child = Some(cmd.spawn().expect("spawn conclave"));
    }

    /// Waits until the client port answers PING.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                if s.write_all(b"PING\r\n").is_ok() {
                    let mut buf = [0u8; 7];
                    // With --requirepass the node answers -NOAUTH: it is up all the same.
                    if s.read_exact(&mut buf).is_ok()
                        && (&buf == b"+PONG\r\n" || &buf == b"-NOAUTH")
                    {
                        return;
                    }
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        panic!(
            "node {} did not become ready on port {}; its last log lines:\n{}",
            self.id,
            self.port,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }

    /// Where the node's stderr goes (beside its data directory).
    fn log_path(&self) -> PathBuf {
        self.data_dir.with_extension("log")
    }

    /// `redis://` URL of the client port.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A synchronous `redis` connection.
    pub fn conn(&self) -> redis::Connection {
        let client = redis::Client::open(self.url()).expect("client");
        let con = client
            .get_connection_with_timeout(Duration::from_secs(5))
            .expect("connect");
        con.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        con
    }

    /// A raw socket to the client port.
    pub fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect raw");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).expect("running")
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        match self.child.as_mut() {
            None => true,
            Some(c) => c.try_wait().ok().flatten().is_some(),
        }
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(c.id().to_string())
                .status();
        }
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// SIGTERM and wait up to 10 s for a clean exit; returns whether it exited 0.
    pub fn terminate(&mut self) -> bool {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        if let Some(mut c) = self.child.take() {
            while Instant::now() < deadline {
                if let Ok(Some(status)) = c.try_wait() {
                    return status.success();
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        false
    }

    /// Adds flags for the next start (`restart`).
    pub fn add_args(&mut self, extra: &[&str]) {
        self.args.extend(extra.iter().map(|s| s.to_string()));
    }

    /// Starts the process again on the same data directory and ports.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
        self.wait_ready();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.resume();
        self.kill();
    }
}

/// Blocked (from, to) node pairs, shared by the proxies.
type Blocked = Arc<Mutex<HashSet<(u64, u64)>>>;

/// A TCP proxy in front of one node's cluster port that can cut chosen peers off.
pub struct Proxy {
    pub port: u16,
    target: u64,
    blocked: Blocked,
    conns: Arc<Mutex<Vec<(u64, TcpStream)>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(target_id: u64, target_port: u16, blocked: Blocked) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let conns: Arc<Mutex<Vec<(u64, TcpStream)>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (c2, b2, s2) = (conns.clone(), blocked.clone(), stop.clone());
        thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (c3, b3) = (c2.clone(), b2.clone());
                        thread::spawn(move || proxy_conn(client, target_id, target_port, b3, c3));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Proxy {
            port,
            target: target_id,
            blocked,
            conns,
            stop,
        }
    }

    /// Cuts the open connections that are now blocked.
    fn enforce(&self) {
        let blocked = self.blocked.lock().expect("lock").clone();
        let mut conns = self.conns.lock().expect("lock");
        conns.retain(|(from, s)| {
            if blocked.contains(&(*from, self.target)) {
                let _ = s.shutdown(Shutdown::Both);
                false
            } else {
                true
            }
        });
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads the first request (`NODE <id>`) to learn the caller, then pipes bytes.
fn proxy_conn(
    mut client: TcpStream,
    target_id: u64,
    target_port: u16,
    blocked: Blocked,
    conns: Arc<Mutex<Vec<(u64, TcpStream)>>>,
) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    let from = loop {
        match client.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if let Some(id) = parse_node_line(&head) {
            break id;
        }
        if head.len() > 1024 {
            return;
        }
    };
    if blocked.lock().expect("lock").contains(&(from, target_id)) {
        return;
    }
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", target_port)) else {
        return;
    };
    let _ = client.set_read_timeout(None);
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    if server.write_all(&head).is_err() {
        return;
    }
    if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
        let mut list = conns.lock().expect("lock");
        list.push((from, c));
        list.push((from, s));
    }
    let (mut c_read, mut s_write) = match (client.try_clone(), server.try_clone()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return,
    };
    thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut s_write);
        let _ = s_write.shutdown(Shutdown::Both);
    });
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(Shutdown::Both);
}

/// Parses `*2\r\n$4\r\nNODE\r\n$N\r\n<id>\r\n` at the start of `buf`.
fn parse_node_line(buf: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(buf).ok()?;
    let mut parts = text.split("\r\n");
    let (_, _, cmd, _, id) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    parts.next()?; // the id line is complete
    if !cmd.eq_ignore_ascii_case("NODE") {
        return None;
    }
    id.parse().ok()
}

/// N nodes with proxied cluster links.
pub struct Cluster {
    pub nodes: Vec<Server>,
    proxies: Vec<Proxy>,
    blocked: Blocked,
    _tmp: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` nodes and waits for a leader.
    pub fn start(n: u64, extra: &[&str]) -> Cluster {
        let tmp = tempfile::tempdir().expect("tempdir");
        let blocked: Blocked = Arc::default();
        let mut ports = Vec::new();
        for _ in 0..n {
            ports.push(free_port());
        }
        let proxies: Vec<Proxy> = (1..=n)
            .map(|id| Proxy::start(id, ports[(id - 1) as usize] + 10000, blocked.clone()))
            .collect();
        let peers = proxies
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}@127.0.0.1:{}", i + 1, p.port))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = Vec::new();
        for id in 1..=n {
            let port = ports[(id - 1) as usize];
            let mut args: Vec<String> = vec!["--peers".into(), peers.clone()];
            args.extend(extra.iter().map(|s| s.to_string()));
            let mut s = Server {
                id,
                port,
                cluster_port: port + 10000,
                metrics_port: free_port(),
                data_dir: tmp.path().join(format!("node-{id}")),
                args,
                child: None,
                _tmp: None,
            };
            s.spawn();
            nodes.push(s);
        }
        for s in &nodes {
            s.wait_ready();
        }
        let c = Cluster {
            nodes,
            proxies,
            blocked,
            _tmp: tmp,
        };
        c.wait_leader(Duration::from_secs(20));
        c
    }

    /// The node with this id.
    pub fn node(&mut self, id: u64) -> &mut Server {
        &mut self.nodes[(id - 1) as usize]
    }

    /// `RAFT.STATUS` of a node as (role, term, leader_id, applied_index), if it answers.
    pub fn status(&self, id: u64) -> Option<(String, i64, Option<i64>, i64)> {
        let s = &self.nodes[(id - 1) as usize];
        let client = redis::Client::open(s.url()).ok()?;
        let mut con = client
            .get_connection_with_timeout(Duration::from_millis(500))
            .ok()?;
        con.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        let v: redis::Value = redis::cmd("RAFT.STATUS").query(&mut con).ok()?;
        let map = flat_map(&v)?;
        let get_int = |k: &str| match map.iter().find(|(f, _)| f == k).map(|(_, v)| v) {
            Some(redis::Value::Int(i)) => Some(*i),
            _ => None,
        };
        let role = match map.iter().find(|(f, _)| f == "role").map(|(_, v)| v) {
            Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => return None,
        };
        Some((
            role,
            get_int("term")?,
            get_int("leader_id"),
            get_int("applied_index")?,
        ))
    }

    /// The client port of node `id`.
    pub fn port(&self, id: u64) -> u16 {
        self.nodes[(id - 1) as usize].port
    }

    /// Waits until node `id` has applied log index `target` (panics after `within`).
    pub fn wait_applied(&self, id: u64, target: i64, within: Duration) {
        let deadline = Instant::now() + within;
        while self.status(id).is_none_or(|s| s.3 < target) {
            assert!(
                Instant::now() < deadline,
                "node {id} did not reach applied index {target} within {within:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until some live node is leader and the others that answer agree.
    pub fn wait_leader(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            for s in &self.nodes {
                if let Some((role, _, _, _)) = self.status(s.id) {
                    if role == "leader" {
                        return s.id;
                    }
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("no leader within {timeout:?}");
    }

    /// Waits for a leader other than `not`.
    pub fn wait_new_leader(&self, not: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            for s in &self.nodes {
                if s.id == not {
                    continue;
                }
                if let Some((role, _, _, _)) = self.status(s.id) {
                    if role == "leader" {
                        return s.id;
                    }
                }
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!("no new leader within {timeout:?}");
    }

    /// Cuts `isolated` off from every other node, both directions.
    pub fn isolate(&self, isolated: u64) {
        {
            let mut b = self.blocked.lock().expect("lock");
            for s in &self.nodes {
                if s.id != isolated {
                    b.insert((isolated, s.id));
                    b.insert((s.id, isolated));
                }
            }
        }
        for p in &self.proxies {
            p.enforce();
        }
    }

    /// Removes every partition.
    pub fn heal(&self) {
        self.blocked.lock().expect("lock").clear();
    }
}

/// Serializes the tests of one test binary that run a cluster: one cluster at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the one-cluster-at-a-time lock (a failed test does not poison it).
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A connection to a client port with a chosen read timeout, if it can be opened.
pub fn conn_to(port: u16, read_timeout: Duration) -> Option<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let con = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    con.set_read_timeout(Some(read_timeout)).ok()?;
    con.set_write_timeout(Some(read_timeout)).ok()?;
    Some(con)
}

/// `LOCK.ACQUIRE res owner [extra...]` → token or null.
pub fn acquire(
    con: &mut redis::Connection,
    res: &str,
    owner: &str,
    extra: &[&str],
) -> redis::RedisResult<Option<i64>> {
    redis::cmd("LOCK.ACQUIRE")
        .arg(res)
        .arg(owner)
        .arg(extra)
        .query(con)
}

/// `LOCK.RELEASE res owner`.
pub fn release(con: &mut redis::Connection, res: &str, owner: &str) -> redis::RedisResult<i64> {
    redis::cmd("LOCK.RELEASE").arg(res).arg(owner).query(con)
}

/// `LOCK.CHECK res token`.
pub fn check(con: &mut redis::Connection, res: &str, token: i64) -> redis::RedisResult<i64> {
    redis::cmd("LOCK.CHECK").arg(res).arg(token).query(con)
}

/// A RESP2 flat map (or RESP3 map) as (field, value) pairs.
pub fn flat_map(v: &redis::Value) -> Option<Vec<(String, redis::Value)>> {
    match v {
        redis::Value::Map(pairs) => Some(
            pairs
                .iter()
                .filter_map(|(k, v)| match k {
                    redis::Value::BulkString(b) => {
                        Some((String::from_utf8_lossy(b).into_owned(), v.clone()))
                    }
                    redis::Value::SimpleString(s) => Some((s.clone(), v.clone())),
                    _ => None,
                })
                .collect(),
        ),
        redis::Value::Array(items) => items
            .chunks(2)
            .map(|kv| match (&kv[0], kv.get(1)) {
                (redis::Value::BulkString(b), Some(v)) => {
                    Some((String::from_utf8_lossy(b).into_owned(), v.clone()))
                }
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Sends raw bytes and reads until `expect_len` bytes or the timeout.
pub fn raw_roundtrip(s: &mut TcpStream, send: &[u8], expect_len: usize) -> Vec<u8> {
    s.write_all(send).expect("write");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    while out.len() < expect_len && Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    out
}

/// `GET path` on 127.0.0.1:`port` over HTTP/1.0: the status code and the body, if the
/// port answers within a few seconds.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// One RESP request as bytes.
pub fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Reads `n` single-line replies (integers, nulls, errors) from a raw socket.
pub fn read_lines(s: &mut TcpStream, n: usize, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    while buf.windows(2).filter(|w| w == b"\r\n").count() < n && Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&buf)
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Retries `f` until it succeeds or `within` passes (then panics with the last error).
pub fn until_ok<T>(within: Duration, mut f: impl FnMut() -> redis::RedisResult<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        match f() {
            Ok(v) => return v,
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("still failing after {within:?}: {e}"),
        }
    }
}

/// A tiny deterministic PRNG (xorshift64*), enough to pick nodes and delays.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_line() {
        assert_eq!(parse_node_line(b"*2\r\n$4\r\nNODE\r\n$1\r\n3\r\n"), Some(3));
        assert_eq!(parse_node_line(b"*2\r\n$4\r\nNODE\r\n$1\r\n"), None);
        assert_eq!(parse_node_line(b"*2\r\n$4\r\nAUTH\r\n$1\r\n3\r\n"), None);
    }
}
