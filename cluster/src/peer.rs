//! Client side of the cluster channel: one [`PeerClient`] per remote node.
//!
//! A client keeps [`CONNECTIONS`] multiplexed connection(s) to its peer
//! ([`crate::mux`]), spreading calls over them in turn when there are several. Each connection carries any number of tagged
//! requests at once and matches replies by tag (wire format: [`crate::wire`]), so a
//! slow request never delays another between the same two nodes, and many small
//! messages share writes.
//!
//! - **Connecting** runs in its own task, bounded by 500 ms: `NODE <id> <client-addr>`,
//!   then `AUTH <secret>` with `--cluster-secret`; the peer's own client address comes
//!   back in one of the two answers and is kept in the [`crate::directory`]. Calls that need the connection wait for it
//!   within their own deadline; one whose caller gives up does not abandon the attempt.
//! - **Backoff**: a failed connect puts the peer in a backoff window (50 ms doubling to
//!   1 s) during which calls fail at once: a dead peer costs nothing to the healthy
//!   ones. The peer is logged once when it becomes unreachable and once when it is
//!   reached again.
//! - **Deadlines**: every call has one; past it the call fails with
//!   [`PeerError::Timeout`] and its reply, if it ever comes, is dropped.
//! - **Failure**: a connection that fails fails every call in flight on it at once with
//!   [`PeerError::Lost`]; the next call opens a new one.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::directory::Directory;
use crate::mux::{CallError, MuxConn};
use crate::wire;

/// Connections kept per peer. One multiplexes any number of requests, and measured
/// better than two (`channel_figures` against two: more calls share each write); a
/// large message (a snapshot chunk, a long `AppendEntries`) delays the others on it
/// only for the time of its copy into the socket.
pub const CONNECTIONS: usize = 1;
/// Time allowed to open a connection and finish its handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Shortest and longest reconnect backoff.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Why a request to a peer failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PeerError {
    /// Could not connect (or inside the backoff window after such a failure, or the
    /// peer stopped reading): the request was never sent.
    #[error("peer {0} unreachable: {1}")]
    Unreachable(String, String),
    /// The peer did not answer before the call's deadline; the request was sent and
    /// may have taken effect.
    #[error("peer {0} timed out")]
    Timeout(String),
    /// The connection failed (closed, broke, spoke something else than the channel's
    /// RESP, or the peer went silent) while the request was in flight: it may have
    /// taken effect. Every request in flight on that connection fails so, at once.
    #[error("peer {0} connection lost with the request in flight: {1}")]
    Lost(String, String),
    /// The peer answered with an error line.
    #[error("{0}")]
    Remote(String),
}

#[derive(Debug, Default)]
struct Backoff {
    until: Option<Instant>,
    delay: Duration,
    /// Whether the last connect failed: the peer is logged once when it goes away and
    /// once when it comes back, not on every retry.
    down: bool,
}

/// A connection slot.
#[derive(Debug)]
enum Slot {
    Empty,
    /// A connect is under way; its outcome is published here.
    Connecting(watch::Receiver<Option<Result<Arc<MuxConn>, PeerError>>>),
    Ready(Arc<MuxConn>),
}

#[derive(Debug)]
struct Inner {
    addr: Arc<str>,
    /// This node's id and client address (sent in the handshake) and where the peer's
    /// answer is recorded.
    directory: Arc<Directory>,
    secret: Option<String>,
    slots: Vec<Mutex<Slot>>,
    next: AtomicUsize,
    backoff: Mutex<Backoff>,
}

/// A multiplexing RESP client for one peer's cluster port.
#[derive(Debug)]
pub struct PeerClient {
    inner: Arc<Inner>,
}

impl PeerClient {
    /// A client for `addr` (`host:port`) used by node `self_id`, presenting `secret` on
    /// each new connection, with [`CONNECTIONS`] connections.
    pub fn new(addr: String, self_id: u64, secret: Option<String>) -> PeerClient {
        PeerClient::with_connections(addr, self_id, secret, CONNECTIONS)
    }

    /// [`new`](Self::new) with `connections` connections (at least one).
    pub fn with_connections(
        addr: String,
        self_id: u64,
        secret: Option<String>,
        connections: usize,
    ) -> PeerClient {
        let directory = Arc::new(Directory::new(self_id, String::new()));
        PeerClient::introduced(addr, directory, secret, connections)
    }

    /// A client that introduces this node with `directory`'s own id and client address
    /// at each handshake (`NODE <id> <client-addr>`) and records the peer's answer there
    /// (see [`crate::directory`]).
    pub fn introduced(
        addr: String,
        directory: Arc<Directory>,
        secret: Option<String>,
        connections: usize,
    ) -> PeerClient {
        PeerClient {
            inner: Arc::new(Inner {
                addr: addr.into(),
                directory,
                secret,
                slots: (0..connections.max(1))
                    .map(|_| Mutex::new(Slot::Empty))
                    .collect(),
                next: AtomicUsize::new(0),
                backoff: Mutex::new(Backoff::default()),
            }),
        }
    }

    /// The peer's address.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// Sends one request (`args`, verb first, as a RESP array of bulk strings after the
    /// tag) and returns the reply's payload, within `timeout`.
    pub async fn call(&self, args: &[&[u8]], timeout: Duration) -> Result<Bytes, PeerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        // A connection that failed before the request was queued did not send it: one
        // more try on a fresh connection.
        let mut last = String::new();
        for _ in 0..2 {
            let conn = self.connection(deadline).await?;
            match conn.call(args, deadline).await {
                Ok(reply) => return Ok(reply),
                Err(CallError::Failed(e)) => return Err(e),
                Err(CallError::NotSent(why)) => last = why,
            }
        }
        Err(PeerError::Unreachable(self.inner.addr.to_string(), last))
    }

    /// Forwards a client command to service `service` of group `group` on the peer:
    /// `FWD <service> <group> <deadline-ms> <body>`, where `deadline_ms` is this node's
    /// wall clock (ms since the Unix epoch) after which it stops waiting. The reply is
    /// the service's answer, opaque here.
    pub async fn forward(
        &self,
        service: &str,
        group: u64,
        deadline_ms: u64,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Bytes, PeerError> {
        let mut g = itoa::Buffer::new();
        let mut d = itoa::Buffer::new();
        self.call(
            &[
                b"FWD",
                service.as_bytes(),
                g.format(group).as_bytes(),
                d.format(deadline_ms).as_bytes(),
                body,
            ],
            timeout,
        )
        .await
    }

    /// An open connection (the next slot in turn), connecting if needed, by `deadline`.
    async fn connection(&self, deadline: tokio::time::Instant) -> Result<Arc<MuxConn>, PeerError> {
        let inner = &self.inner;
        let i = inner.next.fetch_add(1, Relaxed) % inner.slots.len();
        let mut outcome = {
            let mut slot = inner.slots[i].lock();
            match &*slot {
                Slot::Ready(conn) if conn.is_open() => return Ok(conn.clone()),
                Slot::Connecting(rx) => rx.clone(),
                Slot::Ready(_) | Slot::Empty => {
                    inner.check_backoff()?;
                    let (tx, rx) = watch::channel(None);
                    *slot = Slot::Connecting(rx.clone());
                    tokio::spawn(connect_slot(inner.clone(), i, tx));
                    rx
                }
            }
        };
        let waited = tokio::time::timeout_at(deadline, outcome.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(done)) => match &*done {
                Some(result) => result.clone(),
                None => Err(inner.unreachable("connect abandoned")),
            },
            Ok(Err(_)) => Err(inner.unreachable("connect abandoned")),
            Err(_) => Err(inner.unreachable("not connected within the call's deadline")),
        }
    }
}

impl Inner {
    fn unreachable(&self, why: &str) -> PeerError {
        PeerError::Unreachable(self.addr.to_string(), why.to_string())
    }

    /// Fails at once inside the backoff window.
    fn check_backoff(&self) -> Result<(), PeerError> {
        match self.backoff.lock().until {
            Some(until) if Instant::now() < until => Err(self.unreachable("in reconnect backoff")),
            _ => Ok(()),
        }
    }

    /// Connects and handshakes within [`CONNECT_TIMEOUT`], keeping the backoff and the
    /// once-only logs.
    async fn connect(&self) -> Result<MuxConn, PeerError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.open()).await {
            Ok(Ok((stream, leftover))) => {
                let was_down = std::mem::take(&mut *self.backoff.lock()).down;
                if was_down {
                    info!(peer = %self.addr, "peer reachable again");
                }
                Ok(MuxConn::start(self.addr.clone(), stream, leftover))
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "connect timed out".to_string(),
                };
                let mut b = self.backoff.lock();
                b.delay = (b.delay * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
                b.until = Some(Instant::now() + b.delay);
                if !b.down {
                    b.down = true;
                    warn!(peer = %self.addr, error = %why, "peer unreachable; retrying quietly");
                }
                Err(PeerError::Unreachable(self.addr.to_string(), why))
            }
        }
    }

    /// Opens the socket and runs the handshake; returns the stream and any bytes read
    /// past the handshake's replies.
    async fn open(&self) -> std::io::Result<(TcpStream, BytesMut)> {
        let mut s = TcpStream::connect(&*self.addr).await?;
        s.set_nodelay(true)?;
        let mut buf = BytesMut::with_capacity(1024);
        // Say who we are first (`NODE <id> [<client-addr>]`): peers log it, and test
        // harnesses route on it. A listener believes and answers an introduction only
        // from an authenticated peer: without a secret it answers `NODE` with its own
        // `<id> <client-addr>`, with one it answers the good `AUTH` so (an older peer
        // answers `OK`). Either answer is recorded in the directory.
        let id = itoa::Buffer::new()
            .format(self.directory.own_id())
            .to_string();
        let own = self.directory.own_client_addr();
        let mut node: Vec<&[u8]> = vec![b"NODE", id.as_bytes()];
        if !own.is_empty() {
            node.push(own.as_bytes());
        }
        match handshake(&mut s, &mut buf, &node).await? {
            Ok(answer) => self.directory.learn_introduction(&answer),
            Err(e) => return Err(std::io::Error::other(e)),
        }
        if let Some(secret) = &self.secret {
            match handshake(&mut s, &mut buf, &[b"AUTH", secret.as_bytes()]).await? {
                Ok(answer) => self.directory.learn_introduction(&answer),
                Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, e)),
            }
        }
        Ok((s, buf))
    }
}

/// The connect task of slot `i`: publishes the outcome to the calls waiting for it.
async fn connect_slot(
    inner: Arc<Inner>,
    i: usize,
    done: watch::Sender<Option<Result<Arc<MuxConn>, PeerError>>>,
) {
    let result = inner.connect().await.map(Arc::new);
    *inner.slots[i].lock() = match &result {
        Ok(conn) => Slot::Ready(conn.clone()),
        Err(_) => Slot::Empty,
    };
    done.send_replace(Some(result));
}

/// One untagged handshake exchange: `Ok(Ok(payload))`, `Ok(Err(error line))`.
async fn handshake(
    conn: &mut TcpStream,
    buf: &mut BytesMut,
    args: &[&[u8]],
) -> std::io::Result<Result<Bytes, String>> {
    let mut out = BytesMut::new();
    wire::encode_untagged_request(&mut out, args);
    conn.write_all(&out).await?;
    loop {
        if let Some(reply) = wire::decode_untagged_reply(buf).map_err(std::io::Error::other)? {
            return Ok(reply);
        }
        if conn.read_buf(buf).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "peer closed the connection",
            ));
        }
    }
}
