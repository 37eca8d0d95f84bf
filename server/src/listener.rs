//! Accepting client connections.
//!
//! Each accepted socket is registered (refused with `-ERR max number of clients
//! reached` past `maxclients`) and served by its own task.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::connection;
use crate::node::Node;

/// Accepts clients until the node shuts down.
pub async fn run(node: Arc<Node>, listener: TcpListener) {
    let mut shutdown = node.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (mut socket, addr) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        node.stats.connections.fetch_add(1, Relaxed);
        let laddr = socket.local_addr().unwrap_or(addr);
        let maxclients = node.runtime.maxclients.load(Relaxed);
        let fd = i64::from(std::os::fd::AsRawFd::as_raw_fd(&socket));
        let Some(registration) = node.clients.register(addr, laddr, fd, maxclients) else {
            node.stats.rejected.fetch_add(1, Relaxed);
            debug!(%addr, "refused: maxclients reached");
            tokio::spawn(async move {
                let _ = socket
                    .write_all(b"-ERR max number of clients reached\r\n")
                    .await;
            });
            continue;
        };
        let node = node.clone();
        tokio::spawn(connection::serve(node, socket, registration));
    }
}
