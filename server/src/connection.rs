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
//! Pushes from other connections (invalidations, pub/sub messages, see
//! [`crate::push`]) are written between replies: after the reply being encoded, while
//! the connection waits for input, and while a command blocks (before its reply). A
//! command's own pushes (subscription confirmations) go where its reply goes. Replies
//! honour `CLIENT REPLY OFF|SKIP`; pushes do not (Redis's `CLIENT_PUSHING`).
//!
//! For `CLIENT LIST` the connection publishes its state in its registry entry: the
//! read buffer's bytes when a command starts (`qbuf`: that command and what follows
//! it), its arguments' size, the `MULTI` queue, buffer sizes.
//!
//! A protocol error answers `-ERR Protocol error: ...` and closes this connection
//! only. Each connection is its own task, so a slow or silent client stalls nobody
//! else. However it ends, the client's tracking and subscriptions are dropped.

use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use conclave_protocol::codec::decode_request;
use conclave_protocol::frame::Protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use crate::clients::{flag, ClientHandle, Registration};
use crate::command_table::Entry;
use crate::dispatch;
use crate::node::Node;
use crate::tracking::{self, ReadTracking};
use crate::transaction::{Transaction, Watches};

/// Flush the output buffer when it grows past this, even mid-batch.
const FLUSH_AT: usize = 64 * 1024;
/// Most input buffered from a client while one of its commands blocks.
const MAX_PENDING_WHILE_BLOCKED: usize = 16 * 1024 * 1024;
/// Most pipelined `Q.PUSH`es run together (`dispatch::execute_pushes`).
const PUSHES_TOGETHER: usize = 256;
/// Initial read buffer size.
const READ_CHUNK: usize = 16 * 1024;

/// Runs a command's pinned future to its reply: `Some(output)`, or `None` when the
/// client left (dropping the future cancels its wait). Most commands finish in their
/// first poll; one that blocks has left the read buffer, as Redis trims it (`qbuf`), and
/// meanwhile the connection keeps reading (bounded: past [`MAX_PENDING_WHILE_BLOCKED`]
/// the client waits on TCP back-pressure instead of the node buffering whatever it
/// sends) to notice the client leaving, and keeps writing pushes.
///
/// A macro, not an `async fn`, so the loop is expanded inside the connection's own task:
/// with a nested future the node used about 8% more CPU per `GET` at pipeline 16 (server
/// CPU time over 3M requests, 6 alternating runs each; a noisy but repeated difference).
macro_rules! until_done {
    ($node:ident, $handle:ident, $stream:ident, $rbuf:ident, $inbox:ident, $wbuf:ident, $fut:ident) => {{
        let first = std::future::poll_fn(|cx| Poll::Ready($fut.as_mut().poll(cx))).await;
        if let Poll::Ready(reply) = first {
            Some(reply)
        } else {
            $handle.state.qbuf.store($rbuf.len() as u64, Relaxed);
            loop {
                tokio::select! {
                    biased;
                    reply = &mut $fut => break Some(reply),
                    r = $stream.read_buf(&mut $rbuf), if $rbuf.len() < MAX_PENDING_WHILE_BLOCKED => match r {
                        Ok(0) | Err(_) => break None,
                        Ok(n) => { $node.stats.net_input.fetch_add(n as u64, Relaxed); }
                    },
                    Some(p) = $inbox.recv() => {
                        $wbuf.extend_from_slice(&p);
                        $inbox.drain_into(&mut $wbuf);
                        if write_out(&$node, &mut $stream, &mut $wbuf).await.is_err() {
                            break None;
                        }
                    }
                }
            }
        }
    }};
}

/// Per-connection protocol state.
#[derive(Debug)]
pub struct Session {
    /// Negotiated protocol.
    pub proto: Protocol,
    /// Whether `AUTH` succeeded (or no password is set).
    pub authenticated: bool,
    /// The ACL user (`default` until `AUTH`).
    pub acl: crate::acl::SessionUser,
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
    /// `CLIENT REPLY OFF`: no replies until `CLIENT REPLY ON`.
    pub reply_off: bool,
    /// The current command's reply is skipped (`CLIENT REPLY SKIP` came just before).
    pub reply_skip: bool,
    /// `CLIENT REPLY SKIP` ran: skip the next command's reply.
    pub reply_skip_next: bool,
    /// The current command has no reply of its own (its pushes in [`Session::out`] are
    /// all it sends, or it is `CLIENT REPLY OFF|SKIP`).
    pub no_reply: bool,
    /// Pushes the current command produced (subscription confirmations), written
    /// where its reply goes, whatever `CLIENT REPLY` says.
    pub out: BytesMut,
    /// This client's default-mode tracking of its reads (`None`: off, or `BCAST`).
    pub read_tracking: Option<ReadTracking>,
    /// `CLIENT CACHING YES|NO` was given for the next command (or transaction).
    pub caching: bool,
    /// `EXEC` is running the queued commands (their replies go into its array).
    pub in_exec: bool,
    /// On a cluster, while an `EXEC` or a script holds its keys: those keys, the only
    /// ones a script may touch (`crate::coherent_cache::hold`).
    pub cluster_keys: Option<Vec<bytes::Bytes>>,
}

impl Session {
    /// A fresh session for `handle`.
    fn new(node: &Node, handle: Arc<ClientHandle>) -> Session {
        Session {
            proto: Protocol::Resp2,
            authenticated: !node.requires_auth(),
            acl: crate::acl::SessionUser::default_of(&node.acl),
            close: false,
            last_cmd: "",
            timed: None,
            handle,
            tx: None,
            watches: None,
            reply_off: false,
            reply_skip: false,
            reply_skip_next: false,
            no_reply: false,
            out: BytesMut::new(),
            read_tracking: None,
            caching: false,
            in_exec: false,
            cluster_keys: None,
        }
    }

    /// Appends the current command's reply (unless `CLIENT REPLY` or the command
    /// itself silences it) and its pushes to `wbuf`.
    fn emit(&mut self, reply: &conclave_protocol::Frame, wbuf: &mut BytesMut) {
        if !(self.no_reply || self.reply_off || self.reply_skip) {
            reply.encode(self.proto, wbuf);
        }
        if !self.out.is_empty() {
            wbuf.extend_from_slice(&self.out);
            self.out.clear();
        }
    }

    /// After each command (Redis's `resetClient`): `CLIENT CACHING` lasts one command
    /// (or a whole `MULTI` ... `EXEC`, and across other `CLIENT` calls), `CLIENT REPLY
    /// SKIP` silences the next one. Publishes the state `CLIENT LIST` shows.
    fn command_done(&mut self) {
        if self.tx.is_none() && self.last_cmd != "CLIENT" {
            self.caching = false;
        }
        self.reply_skip = std::mem::take(&mut self.reply_skip_next);
        self.no_reply = false;
        let state = &self.handle.state;
        state.set_multi(self.tx.as_ref().map(Transaction::queued));
        state
            .multi_mem
            .store(self.tx.as_ref().map_or(0, Transaction::arg_bytes), Relaxed);
        state.set_flag(
            flag::DIRTY_CAS,
            self.watches.as_ref().is_some_and(Watches::dirty),
        );
    }
}

/// Drops the client's tracking and subscriptions, then its registry entry, however
/// its connection ends — before the socket is closed on a `QUIT`, so a client that saw
/// the close never finds it registered (a redirect to it is then broken at once).
struct Leave<'a> {
    node: &'a Node,
    registration: Registration,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        tracking::forget(self.node, &self.registration.handle);
        self.node.monitors.remove(&self.registration.handle);
        self.node.pubsub.leave(&self.registration.handle);
    }
}

/// Serves one registered client until it disconnects, is killed, errs or the node
/// stops; its registration ends with the connection.
pub async fn serve(node: Arc<Node>, mut stream: TcpStream, mut registration: Registration) {
    let _ = stream.set_nodelay(true);
    let handle = registration.handle.clone();
    let Some(mut inbox) = registration.inbox.take() else {
        return;
    };
    let mut leave = Some(Leave {
        node: &node,
        registration,
    });
    let mut session = Session::new(&node, handle.clone());
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut qbuf = QueryBuffer {
        alloc: READ_CHUNK,
        peak: 0,
    };
    let mut wbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut wpeak = 0usize;
    let mut shutdown = node.shutdown.subscribe();
    // A request decoded while gathering pipelined pushes, run after them.
    let mut carried = None;
    loop {
        // Execute everything that is buffered.
        let mut executed = 0u64;
        let mut fatal = false;
        // Where the next command's service time starts (see the module docs).
        let mut mark = node.command_stats.now();
        // Pushes queued before this input was read go out before its replies.
        inbox.drain_into(&mut wbuf);
        loop {
            let buffered = rbuf.len();
            let decoded = match carried.take() {
                Some(decoded) => decoded,
                None => decode_request(&mut rbuf, &node.limits(session.authenticated)),
            };
            match decoded {
                Ok(Some(args)) if args.is_empty() => continue,
                Ok(Some(args)) => {
                    executed += 1;
                    qbuf.peak = qbuf.peak.max(buffered);
                    handle.state.qbuf.store(buffered as u64, Relaxed);
                    let argv: usize = args.iter().map(|a| a.len()).sum();
                    handle.state.argv_mem.store(argv as u64, Relaxed);
                    // Pipelined `Q.PUSH`es that follow one another run together (see
                    // `dispatch::execute_pushes`); the first other request waits in
                    // `carried`.
                    let mut pushes = Vec::new();
                    let mut args = Some(args);
                    if let Some(first) =
                        args.take_if(|a| session.tx.is_none() && dispatch::is_push(a))
                    {
                        pushes.push(first);
                        while pushes.len() < PUSHES_TOGETHER {
                            match decode_request(&mut rbuf, &node.limits(session.authenticated)) {
                                Ok(Some(next)) if next.is_empty() => {}
                                Ok(Some(next)) if dispatch::is_push(&next) => pushes.push(next),
                                other => {
                                    carried = Some(other);
                                    break;
                                }
                            }
                        }
                        executed += pushes.len() as u64 - 1;
                        if pushes.len() == 1 {
                            args = pushes.pop();
                        }
                    }
                    // Run the command; a blocking one (LOCK.ACQUIRE ... WAIT, or one held
                    // by CLIENT PAUSE) may take a while, so keep reading meanwhile to
                    // notice the client leaving — dropping the command's future cancels
                    // its wait — and keep delivering pushes.
                    // One reply, or a group's (a `Vec` only for a group: no allocation
                    // per command).
                    let (one, group) = if let Some(args) = args {
                        let reply = {
                            let fut = dispatch::execute(&node, &mut session, args);
                            tokio::pin!(fut);
                            until_done!(node, handle, stream, rbuf, inbox, wbuf, fut)
                        };
                        let Some(reply) = reply else { return };
                        (Some((reply, session.timed.take())), Vec::new())
                    } else {
                        // Boxed: kept out of this task's own state, which every command
                        // walks.
                        let mut fut =
                            Box::pin(dispatch::execute_pushes(&node, &mut session, pushes));
                        let done = until_done!(node, handle, stream, rbuf, inbox, wbuf, fut);
                        let Some(replies) = done else { return };
                        (None, replies)
                    };
                    for (reply, timed) in one.into_iter().chain(group) {
                        session.emit(&reply, &mut wbuf);
                        inbox.drain_into(&mut wbuf);
                        session.command_done();
                        let now = node.command_stats.now();
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
                    }
                    if session.close {
                        break;
                    }
                    if wbuf.len() >= FLUSH_AT {
                        wpeak = wpeak.max(wbuf.len());
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
        }
        wpeak = wpeak.max(wbuf.len());
        qbuf.resize(&mut rbuf);
        publish_buffers(&handle, &rbuf, &qbuf, &wbuf, wpeak);
        if !wbuf.is_empty() && write_out(&node, &mut stream, &mut wbuf).await.is_err() {
            return;
        }
        if fatal || session.close || session.handle.is_killed() {
            drop(leave.take());
            let _ = stream.shutdown().await;
            return;
        }
        // Read more.
        if rbuf.capacity() - rbuf.len() < READ_CHUNK / 2 {
            rbuf.reserve(READ_CHUNK);
            qbuf.alloc = qbuf.alloc.max(rbuf.capacity());
        }
        // Redis never times out a client in pub/sub mode.
        let idle = if handle.in_pubsub() {
            0
        } else {
            node.runtime.timeout.load(Relaxed)
        };
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
            // Pushes before input: one queued before the client's next command was read
            // must reach it before that command's reply (as Redis writes it at once).
            biased;
            _ = session.handle.woken() => {
                if session.handle.is_killed() {
                    return;
                }
                // Idle past 2 s (the cron asked): free the empty query buffer.
                if session.handle.take_trim() && rbuf.is_empty() {
                    rbuf = BytesMut::new();
                    qbuf.alloc = 0;
                    publish_buffers(&handle, &rbuf, &qbuf, &wbuf, wpeak);
                }
            }
            _ = shutdown.changed() => return,
            Some(p) = inbox.recv() => {
                wbuf.extend_from_slice(&p);
                inbox.drain_into(&mut wbuf);
            }
            r = read => match r {
                Ok(0) => return,
                Ok(n) => {
                    node.stats.net_input.fetch_add(n as u64, Relaxed);
                    // Unparsed input past `client-query-buffer-limit` closes the client.
                    if rbuf.len() as u64 > node.runtime.query_buffer_limit.load(Relaxed) {
                        warn!(client = session.handle.id, addr = %session.handle.addr, qbuf = rbuf.len(), "closing client that reached max query buffer length");
                        return;
                    }
                }
                Err(e) => {
                    debug!(client = session.handle.id, addr = %session.handle.addr, error = %e, "connection read failed");
                    return;
                }
            },
        }
    }
}

/// The query buffer's size as Redis accounts for it (`qbuf` + `qbuf-free` in `CLIENT
/// LIST`). The read buffer hands each command's bytes to its arguments without copying,
/// so its own capacity shrinks as commands are taken out and grows back when they are
/// dropped; `alloc` follows what is allocated for it instead: the 16 KiB first read
/// buffer, grown to the largest input held, trimmed as Redis's cron trims it.
#[derive(Debug)]
struct QueryBuffer {
    /// Bytes allocated for client input.
    alloc: usize,
    /// Most bytes buffered at once during the current batch (Redis's `querybuf_peak`).
    peak: usize,
}

/// Redis's `PROTO_RESIZE_THRESHOLD`: a query buffer past 32 KiB may be trimmed.
const RESIZE_THRESHOLD: usize = 32 * 1024;

impl QueryBuffer {
    /// After a batch: a buffer past [`RESIZE_THRESHOLD`] whose batch used less than
    /// half of it is reallocated to what that batch needed (Redis's second condition in
    /// `clientsCronResizeQueryBuffer`; the first, idle for 2 s, frees it from the cron,
    /// see `housekeeping`). Costs two comparisons per batch otherwise.
    fn resize(&mut self, rbuf: &mut BytesMut) {
        self.alloc = self.alloc.max(self.peak);
        if self.alloc > RESIZE_THRESHOLD && self.peak < self.alloc / 2 && rbuf.is_empty() {
            self.alloc = self.peak.max(rbuf.len());
            *rbuf = BytesMut::with_capacity(self.alloc);
        }
        self.peak = rbuf.len();
    }
}

/// Publishes the buffers' sizes for `CLIENT LIST` (between commands `qbuf` is what is
/// left of a partly received command).
fn publish_buffers(
    handle: &ClientHandle,
    rbuf: &BytesMut,
    q: &QueryBuffer,
    wbuf: &BytesMut,
    wpeak: usize,
) {
    let s = &handle.state;
    s.qbuf.store(rbuf.len() as u64, Relaxed);
    s.qbuf_free
        .store(q.alloc.saturating_sub(rbuf.len()) as u64, Relaxed);
    s.argv_mem.store(0, Relaxed);
    s.rbs.store(wbuf.capacity() as u64, Relaxed);
    s.rbp.store(wpeak as u64, Relaxed);
    let fixed = std::mem::size_of::<Session>() + std::mem::size_of::<ClientHandle>();
    s.tot_mem.store(
        (q.alloc.max(rbuf.len()) + wbuf.capacity() + fixed) as u64,
        Relaxed,
    );
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
