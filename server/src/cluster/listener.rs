//! Server side of the cluster channel: accepts peers on `--cluster-port`.
//!
//! With `--cluster-secret` set, the first request on a connection must be
//! `AUTH <secret>`; anything else is answered `-NOAUTH` and the connection closed.
//! A connecting peer first says `NODE <id>` (for logs and for test harnesses that
//! route cluster traffic through a fault-injecting proxy).
//! Requests on one connection are served in order (peers pool connections, so
//! concurrency comes from having several). Besides Raft and lock forwarding, `STATUS`
//! answers the node's own view as JSON for the dashboard
//! ([`crate::ops::node_view::NodeView`]).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use conclave_protocol::codec::{decode_request, Limits};
use conclave_protocol::frame::Protocol;
use conclave_protocol::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use conclave_protocol::auth::constant_time_eq;

use crate::node::Node;
use crate::ops::node_view;

/// Serves peers until the node shuts down.
pub async fn run(listener: TcpListener, node: Arc<Node>) {
    let mut shutdown = node.shutdown.subscribe();
    let secret = node.config.cluster_secret.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((socket, addr)) => {
                let node = node.clone();
                let secret = secret.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_peer(socket, node, secret).await {
                        debug!(%addr, error = %e, "cluster connection closed");
                    }
                });
            }
            Err(e) => {
                warn!(error = %e, "cluster accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_peer(
    mut socket: TcpStream,
    node: Arc<Node>,
    secret: Option<String>,
) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let mut authed = secret.is_none();
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    let mut wbuf = BytesMut::with_capacity(16 * 1024);
    let limits = Limits::default();
    loop {
        while let Some(args) = decode_request(&mut rbuf, &limits).map_err(std::io::Error::other)? {
            if args.is_empty() {
                continue;
            }
            let name = args[0].to_ascii_uppercase();
            let reply = if name == b"NODE" {
                let peer = args.get(1).map(|b| String::from_utf8_lossy(b).into_owned());
                debug!(peer = ?peer, "peer identified");
                Frame::ok()
            } else if name == b"AUTH" {
                let ok = match (&secret, args.get(1)) {
                    (None, _) => true,
                    (Some(s), Some(given)) => constant_time_eq(s.as_bytes(), given),
                    (Some(_), None) => false,
                };
                authed = ok;
                if ok {
                    Frame::ok()
                } else {
                    Frame::error("NOAUTH invalid cluster secret")
                }
            } else if !authed {
                Frame::error("NOAUTH cluster secret required")
            } else {
                handle(&node, &name, &args).await
            };
            let refused = !authed && name != b"NODE"; // NODE may come before AUTH
            reply.encode(Protocol::Resp2, &mut wbuf);
            socket.write_all(&wbuf).await?;
            wbuf.clear();
            if refused {
                return Ok(());
            }
        }
        if socket.read_buf(&mut rbuf).await? == 0 {
            return Ok(());
        }
    }
}

async fn handle(node: &Node, name: &[u8], args: &[Bytes]) -> Frame {
    let locks = &node.locks;
    // Argument `i` as a number (a group id or a deadline).
    let number = |i: usize| -> Option<u64> { std::str::from_utf8(args.get(i)?).ok()?.parse().ok() };
    match name {
        b"PING" => Frame::simple("PONG"),
        b"RAFT" => match (number(1), args.get(2), args.get(3)) {
            (Some(g), Some(kind), Some(body)) => match node.group(g) {
                Some(group) => match group.handle_raft_rpc(kind, body).await {
                    Ok(json) => Frame::Bulk(json),
                    Err(e) => Frame::error(format!("ERR {e}")),
                },
                None => Frame::error(format!("ERR unknown raft group {g}")),
            },
            _ => Frame::error("ERR wrong number of arguments for 'raft' command"),
        },
        b"LOCKFWD" => match (number(1), number(2), args.get(3)) {
            (Some(_), Some(deadline), Some(body)) => {
                Frame::Bulk(locks.handle_forward(deadline, body).await)
            }
            _ => Frame::error("ERR wrong number of arguments for 'lockfwd' command"),
        },
        b"STATUS" => match serde_json::to_vec(&node_view::local(node).await) {
            Ok(json) => Frame::Bulk(json.into()),
            Err(e) => Frame::error(format!("ERR {e}")),
        },
        _ => Frame::error(format!(
            "ERR unknown cluster command '{}'",
            String::from_utf8_lossy(name)
        )),
    }
}
