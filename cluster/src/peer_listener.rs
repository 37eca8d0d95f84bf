//! Server side of the cluster channel: accepts peers on `--cluster-port` and hands their
//! requests to the [`Router`].
//!
//! Per connection, the reading loop decodes requests (with the client port's limits,
//! and Redis's tighter pre-`AUTH` limits while a secret is required) and:
//!
//! - answers the handshake itself — `NODE <id> [<client-addr>]` (logged at debug),
//!   `AUTH <secret>` (compared in constant time). The peer's introduction is recorded in
//!   the router's [`crate::directory`] once it is authenticated, and the request that
//!   authenticates it (`NODE` without a secret, `AUTH` with one) is answered with this
//!   node's own `<id> <client-addr>` (`OK` when there is none); with `--cluster-secret` set, any other request before
//!   a good `AUTH` is answered `-NOAUTH cluster secret required` and the connection
//!   closed after that reply;
//! - spawns a task per tagged request, which routes it and queues `[tag, reply]` when it
//!   completes: requests run concurrently and replies leave in completion order;
//! - serves an untagged request in order, before reading on.
//!
//! Replies go through the connection's [`Outbox`] (one writer task, batched writes). A
//! peer that stops reading its replies (their queue is full) is disconnected. Wire
//! format: [`crate::wire`].

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use conclave_protocol::auth::constant_time_eq;
use conclave_protocol::codec::{decode_request, Limits};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::outbox::{Outbox, Refused};
use crate::router::Router;
use crate::wire;

/// Read buffer reserve, 16 KiB.
const READ_RESERVE: usize = 16 * 1024;

/// Serves peers until `shutdown` turns true. `secret` is `--cluster-secret`.
pub async fn run(
    listener: TcpListener,
    router: Arc<Router>,
    secret: Option<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    let secret: Option<Arc<str>> = secret.map(Into::into);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((socket, addr)) => {
                let router = router.clone();
                let secret = secret.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(socket, router, secret).await {
                        debug!(%addr, error = %e, "cluster connection closed");
                    }
                });
            }
            Err(e) => {
                warn!(error = %e, "cluster accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves one peer connection until it closes.
pub async fn serve(
    socket: TcpStream,
    router: Arc<Router>,
    secret: Option<Arc<str>>,
) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let (mut rd, wr) = socket.into_split();
    let outbox = Arc::new(Outbox::default());
    let writer = tokio::spawn({
        let outbox = outbox.clone();
        async move {
            let result = outbox.run(wr).await;
            outbox.abandon();
            result
        }
    });
    let result = read_requests(&mut rd, &router, secret.as_deref(), &outbox).await;
    if result.is_err() {
        outbox.abandon();
    }
    // Replies still being computed are dropped with the connection.
    let _ = writer.await;
    result
}

/// The reading loop of [`serve`]; returns when the peer closes, breaks the framing or
/// fails authentication (after queuing the reply).
async fn read_requests(
    rd: &mut (impl AsyncReadExt + Unpin),
    router: &Arc<Router>,
    secret: Option<&str>,
    outbox: &Arc<Outbox>,
) -> std::io::Result<()> {
    let mut authed = secret.is_none();
    // The peer's `NODE` introduction, kept until it authenticates.
    let mut introduction: Option<String> = None;
    let mut buf = BytesMut::with_capacity(READ_RESERVE);
    'read: loop {
        let limits = Limits {
            unauthenticated: !authed,
            ..Limits::default()
        };
        loop {
            let args = match decode_request(&mut buf, &limits) {
                Ok(Some(args)) => args,
                Ok(None) => break,
                Err(e) => {
                    let line = e.to_string();
                    let _ = outbox.push(|out| wire::encode_reply(out, None, &Err(&line)));
                    outbox.finish();
                    return Err(std::io::Error::other(line));
                }
            };
            let tag = args.first().and_then(|a| wire::parse_tag(a));
            let request = if tag.is_some() { &args[1..] } else { &args[..] };
            let Some(verb) = request.first() else {
                if let Some(tag) = tag {
                    let _ = outbox
                        .push(|out| wire::encode_reply(out, Some(tag), &Err("ERR empty request")));
                }
                continue;
            };
            if verb.eq_ignore_ascii_case(b"NODE") {
                let peer = request
                    .get(1)
                    .map(|b| String::from_utf8_lossy(b).into_owned());
                debug!(peer = ?peer, "peer identified");
                // An introduction is believed, and answered, only once authenticated
                // (with a secret: at the good `AUTH` that follows).
                introduction = match (peer, request.get(2)) {
                    (Some(id), Some(addr)) => {
                        Some(format!("{id} {}", String::from_utf8_lossy(addr)))
                    }
                    _ => None,
                };
                if authed {
                    introduce(router, outbox, tag, introduction.take());
                } else {
                    queue_ok(outbox, tag);
                }
                continue;
            }
            if verb.eq_ignore_ascii_case(b"AUTH") {
                authed = match (secret, request.get(1)) {
                    (None, _) => true,
                    (Some(s), Some(given)) => constant_time_eq(s.as_bytes(), given),
                    (Some(_), None) => false,
                };
                if authed {
                    introduce(router, outbox, tag, introduction.take());
                    // The limits change with authentication: decode the rest with them.
                    continue 'read;
                }
                let _ = outbox.push(|out| {
                    wire::encode_reply(out, tag, &Err("NOAUTH invalid cluster secret"))
                });
                outbox.finish();
                return Ok(());
            }
            if !authed {
                let _ = outbox.push(|out| {
                    wire::encode_reply(out, tag, &Err("NOAUTH cluster secret required"))
                });
                outbox.finish();
                return Ok(());
            }
            match tag {
                Some(tag) => {
                    let router = router.clone();
                    let outbox = outbox.clone();
                    tokio::spawn(async move {
                        let reply = router.route(&args[1..]).await;
                        queue_reply(&outbox, Some(tag), &reply);
                    });
                }
                None => {
                    let reply = router.route(request).await;
                    queue_reply(outbox, None, &reply);
                }
            }
        }
        if !outbox.is_open() {
            return Ok(());
        }
        if buf.capacity() - buf.len() < READ_RESERVE / 4 {
            buf.reserve(READ_RESERVE);
        }
        if rd.read_buf(&mut buf).await? == 0 {
            outbox.finish();
            return Ok(());
        }
    }
}

/// Records an authenticated peer's introduction in the router's directory and answers
/// with this node's own (`OK` without a directory or a client address).
fn introduce(router: &Router, outbox: &Outbox, tag: Option<u64>, introduction: Option<String>) {
    let Some(directory) = router.directory() else {
        return queue_ok(outbox, tag);
    };
    if let Some(intro) = introduction {
        directory.learn_introduction(intro.as_bytes());
    }
    match directory.introduction() {
        Some(own) => queue_reply(outbox, tag, &Ok(Bytes::from(own))),
        None => queue_ok(outbox, tag),
    }
}

fn queue_ok(outbox: &Outbox, tag: Option<u64>) {
    match tag {
        None => {
            let _ = outbox.push(wire::encode_ok);
        }
        Some(tag) => queue_reply(outbox, Some(tag), &Ok(Bytes::from_static(b"OK"))),
    }
}

/// Queues a reply; a peer whose replies no longer fit (it does not read them) is
/// disconnected. On a closing connection the reply is dropped.
fn queue_reply(outbox: &Outbox, tag: Option<u64>, reply: &wire::Reply) {
    let reply = match reply {
        Ok(payload) => Ok(&payload[..]),
        Err(line) => Err(line.as_str()),
    };
    if outbox.push(|out| wire::encode_reply(out, tag, &reply)) == Err(Refused::Full) {
        outbox.abandon();
    }
}
