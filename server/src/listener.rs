//! Accepting client connections.
//!
//! Each accepted socket is registered (refused with `-ERR max number of clients
//! reached` past `maxclients`) and served by its own task.
//!
//! `CONFIG SET port|bind` binds the new address itself (so a failure is its error reply)
//! and hands the listener over through [`Rebind`]; the old one is closed, the clients it
//! accepted stay connected (as in Redis).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::connection;
use crate::node::Node;

/// Where `CONFIG SET port|bind` sends the listener to accept on from then on.
pub type Rebind = tokio::sync::mpsc::UnboundedSender<TcpListener>;

/// Accepts clients until the node shuts down, on `listener` and then on each listener
/// that arrives on `rebinds`.
pub async fn run(
    node: Arc<Node>,
    mut listener: TcpListener,
    mut rebinds: tokio::sync::mpsc::UnboundedReceiver<TcpListener>,
) {
    let mut shutdown = node.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            Some(next) = rebinds.recv() => {
                listener = next;
                continue;
            }
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
