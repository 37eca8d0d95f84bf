//! One client connection: read, decode, execute, reply — pipelined.
//!
//! Every read is decoded into as many requests as it holds; they run in order and
//! their replies are encoded into one output buffer that is written once per read
//! (or whenever it passes 64 KB), so a pipeline of N commands costs one read and
//! about one write. A frame split across reads simply waits in the read buffer.
//!
//! Each command that passed the dispatch gate is counted and timed for `/metrics` with
//! one clock read: its service time runs from the end of the previous command of the
//! same batch (or the read that brought the batch) to its reply being encoded, so it
//! covers decoding, executing (blocking waits included) and encoding it. A blocked
//! command whose client leaves is not recorded.
//!
//! A protocol error answers `-ERR Protocol error: ...` and closes this connection
//! only. Each connection is its own task, so a slow or silent client stalls nobody
//! else.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use conclave_protocol::codec::decode_request;
use conclave_protocol::frame::Protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, info};

use crate::clients::ClientHandle;
use crate::command_table::Entry;
use crate::dispatch;
use crate::node::Node;
use crate::transaction::{Transaction, Watches};

/// Flush the output buffer when it grows past this, even mid-batch.
const FLUSH_AT: usize = 64 * 1024;
/// Most input buffered from a client while one of its commands blocks.
const MAX_PENDING_WHILE_BLOCKED: usize = 16 * 1024 * 1024;
/// Initial read buffer size.
const READ_CHUNK: usize = 16 * 1024;

/// Per-connection protocol state.
#[derive(Debug)]
pub struct Session {
    /// Negotiated protocol.
    pub proto: Protocol,
    /// Whether `AUTH` succeeded (or no password is set).
    pub authenticated: bool,
    /// Close after the current reply (`QUIT`).
    pub close: bool,
    /// Name of the last command run (for `CLIENT LIST`).
    pub last_cmd: &'static str,
    /// The command being executed, once it passed the dispatch gate: counted and
    /// timed for `/metrics` when its reply is encoded.
    pub timed: Option<&'static Entry>,
    /// The registry entry of this client.
    pub handle: Arc<ClientHandle>,
    /// The open `MULTI`, if any.
    pub tx: Option<Transaction>,
    /// The keys this connection `WATCH`es.
    pub watches: Option<Watches>,
}

/// Serves one client until it disconnects, is killed, errs or the node stops.
pub async fn serve(node: Arc<Node>, mut stream: TcpStream, handle: Arc<ClientHandle>) {
    let _ = stream.set_nodelay(true);
    let mut session = Session {
        proto: Protocol::Resp2,
        authenticated: !node.requires_auth(),
        close: false,
        last_cmd: "",
        timed: None,
        handle,
        tx: None,
        watches: None,
    };
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut wbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut shutdown = node.shutdown.subscribe();
    loop {
        // Execute everything that is buffered.
        let mut executed = 0u64;
        let mut fatal = false;
        // Where the next command's service time starts (see the module docs).
        let mut mark = node.command_stats.now();
        loop {
            match decode_request(&mut rbuf, &node.limits(session.authenticated)) {
                Ok(Some(args)) if args.is_empty() => continue,
                Ok(Some(args)) => {
                    executed += 1;
                    // Run the command; a blocking one (LOCK.ACQUIRE ... WAIT) may take a
                    // while, so keep reading meanwhile to notice the client leaving —
                    // dropping the command's future cancels its wait.
                    let reply = {
                        let fut = dispatch::execute(&node, &mut session, args);
                        tokio::pin!(fut);
                        loop {
                            tokio::select! {
                                biased;
                                reply = &mut fut => break Some(reply),
                                // Bounded: past the cap the client waits (TCP back-pressure)
                                // instead of the node buffering whatever it sends.
                                r = stream.read_buf(&mut rbuf), if rbuf.len() < MAX_PENDING_WHILE_BLOCKED => match r {
                                    Ok(0) | Err(_) => break None,
                                    Ok(n) => { node.stats.net_input.fetch_add(n as u64, Relaxed); }
                                },
                            }
                        }
                    };
                    let Some(reply) = reply else { return };
                    reply.encode(session.proto, &mut wbuf);
                    let now = node.command_stats.now();
                    let timed = session.timed.take();
                    if let Some(entry) = timed {
                        node.command_stats.record(entry, mark, now);
                    }
                    if let conclave_protocol::Frame::Error(text) = &reply {
                        node.stats.error_reply(text);
                        if let Some(entry) = timed {
                            node.command_stats.fail(entry);
                        }
                    }
                    mark = now;
                    if session.close {
                        break;
                    }
                    if wbuf.len() >= FLUSH_AT {
                        if write_out(&node, &mut stream, &mut wbuf).await.is_err() {
                            return;
                        }
                        mark = node.command_stats.now();
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    info!(client = session.handle.id, addr = %session.handle.addr, error = %e, "protocol error; closing the connection");
                    node.stats.protocol_errors.fetch_add(1, Relaxed);
                    conclave_protocol::Frame::error(e.to_string()).encode(session.proto, &mut wbuf);
                    fatal = true;
                    break;
                }
            }
        }
        if executed > 0 {
            node.stats.commands.fetch_add(executed, Relaxed);
            let ms = session.handle.created.elapsed().as_millis() as u64;
            session.handle.last_active_ms.store(ms, Relaxed);
            let mut names = session.handle.names.lock();
            if !names.last_cmd.eq_ignore_ascii_case(session.last_cmd) {
                names.last_cmd = session.last_cmd.to_ascii_lowercase();
            }
        }
        if !wbuf.is_empty() && write_out(&node, &mut stream, &mut wbuf).await.is_err() {
            return;
        }
        if fatal || session.close || session.handle.is_killed() {
            let _ = stream.shutdown().await;
            return;
        }
        // Read more.
        if rbuf.capacity() - rbuf.len() < READ_CHUNK / 2 {
            rbuf.reserve(READ_CHUNK);
        }
        let idle = node.runtime.timeout.load(Relaxed);
        let read = async {
            if idle == 0 {
                stream.read_buf(&mut rbuf).await
            } else {
                match tokio::time::timeout(Duration::from_secs(idle), stream.read_buf(&mut rbuf))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => Ok(0),
                }
            }
        };
        tokio::select! {
            r = read => match r {
                Ok(0) => return,
                Ok(n) => { node.stats.net_input.fetch_add(n as u64, Relaxed); }
                Err(e) => {
                    debug!(client = session.handle.id, addr = %session.handle.addr, error = %e, "connection read failed");
                    return;
                }
            },
            _ = session.handle.killed() => return,
            _ = shutdown.changed() => return,
        }
    }
}

async fn write_out(
    node: &Node,
    stream: &mut TcpStream,
    wbuf: &mut BytesMut,
) -> std::io::Result<()> {
    let n = wbuf.len();
    let res = stream.write_all(wbuf).await;
    wbuf.clear();
    if res.is_ok() {
        node.stats.net_output.fetch_add(n as u64, Relaxed);
    }
    res
}
