//! Client side of the cluster channel: one [`PeerClient`] per remote node.
//!
//! Each request takes an idle connection from the peer's pool (or opens one), sends
//! one RESP request and reads one reply, then returns the connection to the pool.
//! A connection carries one request at a time, so a slow request never delays
//! another between the same two nodes. Connect failures put the peer in a backoff
//! window (50 ms doubling to 1 s) during which requests fail at once: a dead peer
//! costs nothing to the healthy ones. Every request has a deadline.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::encode::extend_encode;
use redis_protocol::resp2::types::BytesFrame;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{info, warn};

/// Idle connections kept per peer.
const MAX_IDLE: usize = 16;
/// Time allowed to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Why a request to a peer failed.
#[derive(Debug, Error)]
pub enum PeerError {
    /// Could not connect (or inside the backoff window after such a failure).
    #[error("peer {0} unreachable: {1}")]
    Unreachable(String, String),
    /// The peer did not answer in time.
    #[error("peer {0} timed out")]
    Timeout(String),
    /// The connection broke or the reply was not RESP.
    #[error("peer {0} connection failed: {1}")]
    Io(String, String),
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

/// A pooled RESP client for one peer's cluster port.
#[derive(Debug)]
pub struct PeerClient {
    addr: String,
    self_id: u64,
    secret: Option<String>,
    idle: Mutex<Vec<TcpStream>>,
    backoff: Mutex<Backoff>,
}

impl PeerClient {
    /// A client for `addr` (`host:port`) used by node `self_id`, presenting `secret` on
    /// each new connection.
    pub fn new(addr: String, self_id: u64, secret: Option<String>) -> PeerClient {
        PeerClient {
            addr,
            self_id,
            secret,
            idle: Mutex::new(Vec::new()),
            backoff: Mutex::new(Backoff::default()),
        }
    }

    /// Sends one request (`args` as a RESP array of bulk strings) and returns the reply's
    /// payload (bulk or simple string), within `timeout`.
    pub async fn call(&self, args: &[&[u8]], timeout: Duration) -> Result<Bytes, PeerError> {
        let pooled = self.idle.lock().pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect().await?,
        };
        match tokio::time::timeout(timeout, exchange(&mut conn, args)).await {
            Ok(Ok(reply)) => {
                let mut idle = self.idle.lock();
                if idle.len() < MAX_IDLE {
                    idle.push(conn);
                }
                reply.map_err(PeerError::Remote)
            }
            Ok(Err(e)) => Err(PeerError::Io(self.addr.clone(), e.to_string())),
            Err(_) => Err(PeerError::Timeout(self.addr.clone())),
        }
    }

    async fn connect(&self) -> Result<TcpStream, PeerError> {
        {
            let b = self.backoff.lock();
            if let Some(until) = b.until {
                if Instant::now() < until {
                    return Err(PeerError::Unreachable(
                        self.addr.clone(),
                        "in reconnect backoff".into(),
                    ));
                }
            }
        }
        let attempt = async {
            let mut s = TcpStream::connect(&self.addr).await?;
            s.set_nodelay(true)?;
            // Say who we are first: peers log it, and test harnesses route on it.
            let id = self.self_id.to_string();
            if let Err(e) = exchange(&mut s, &[b"NODE", id.as_bytes()]).await? {
                return Err(std::io::Error::other(e));
            }
            if let Some(secret) = &self.secret {
                match exchange(&mut s, &[b"AUTH", secret.as_bytes()]).await? {
                    Ok(_) => {}
                    Err(e) => {
                        return Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, e))
                    }
                }
            }
            Ok::<_, std::io::Error>(s)
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(Ok(s)) => {
                let was_down = std::mem::take(&mut *self.backoff.lock()).down;
                if was_down {
                    info!(peer = %self.addr, "peer reachable again");
                }
                Ok(s)
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "connect timed out".to_string(),
                };
                let mut b = self.backoff.lock();
                b.delay = (b.delay * 2).clamp(Duration::from_millis(50), Duration::from_secs(1));
                b.until = Some(Instant::now() + b.delay);
                if !b.down {
                    b.down = true;
                    warn!(peer = %self.addr, error = %why, "peer unreachable; retrying quietly");
                }
                Err(PeerError::Unreachable(self.addr.clone(), why))
            }
        }
    }
}

/// Writes one request and reads one reply: `Ok(Ok(payload))`, `Ok(Err(error line))`.
async fn exchange(conn: &mut TcpStream, args: &[&[u8]]) -> std::io::Result<Result<Bytes, String>> {
    let frame = BytesFrame::Array(
        args.iter()
            .map(|a| BytesFrame::BulkString(Bytes::copy_from_slice(a)))
            .collect(),
    );
    let mut out = BytesMut::new();
    extend_encode(&mut out, &frame, false)
        .map_err(|e| std::io::Error::other(e.details().to_string()))?;
    conn.write_all(&out).await?;
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        if let Some((frame, _, _)) = decode_bytes_mut(&mut buf)
            .map_err(|e| std::io::Error::other(e.details().to_string()))?
        {
            return Ok(match frame {
                BytesFrame::BulkString(b) | BytesFrame::SimpleString(b) => Ok(b),
                BytesFrame::Error(e) => Err(e.to_string()),
                other => Err(format!("unexpected reply {other:?}")),
            });
        }
        if conn.read_buf(&mut buf).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "peer closed the connection",
            ));
        }
    }
}
