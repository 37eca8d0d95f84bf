//! The registry of connected clients, for `CLIENT LIST`, `CLIENT KILL`, `INFO clients`
//! and `maxclients`.
//!
//! Each connection registers a [`ClientHandle`] on accept and removes it on close
//! (the [`Registration`] guard does it on drop, whatever way the task ends). The
//! handle carries what `CLIENT LIST` prints and the kill switch the connection task
//! listens to.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// What the registry knows of one connection.
#[derive(Debug)]
pub struct ClientHandle {
    /// Unique, increasing id (`CLIENT ID`).
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// Local address.
    pub laddr: SocketAddr,
    /// When it connected.
    pub created: Instant,
    /// Milliseconds since `created` of the last command.
    pub last_active_ms: AtomicU64,
    /// Protocol version (2 or 3).
    pub resp: AtomicU8,
    /// `CLIENT SETNAME`, `CLIENT SETINFO LIB-NAME/LIB-VER`, last command name.
    pub names: Mutex<ClientNames>,
    killed: AtomicBool,
    kill: Notify,
}

/// The mutable text fields of a client.
#[derive(Debug, Default, Clone)]
pub struct ClientNames {
    /// `CLIENT SETNAME`.
    pub name: String,
    /// `CLIENT SETINFO LIB-NAME`.
    pub lib_name: String,
    /// `CLIENT SETINFO LIB-VER`.
    pub lib_ver: String,
    /// Lower-case name of the last command.
    pub last_cmd: String,
}

impl ClientHandle {
    /// Asks the connection to close.
    pub fn kill(&self) {
        self.killed.store(true, Relaxed);
        self.kill.notify_one();
    }

    /// Whether [`kill`](Self::kill) was called.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Relaxed)
    }

    /// Resolves once the client is killed.
    pub async fn killed(&self) {
        if !self.is_killed() {
            self.kill.notified().await;
        }
    }

    /// One `CLIENT LIST` line (without the trailing newline).
    pub fn list_line(&self) -> String {
        let names = self.names.lock().clone();
        let age = self.created.elapsed().as_secs();
        let idle = (self.created.elapsed().as_millis() as u64)
            .saturating_sub(self.last_active_ms.load(Relaxed))
            / 1000;
        format!(
            "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            names.name,
            age,
            idle,
            if names.last_cmd.is_empty() { "NULL" } else { &names.last_cmd },
            self.resp.load(Relaxed),
            names.lib_name,
            names.lib_ver,
        )
    }
}

/// All connected clients.
#[derive(Debug, Default)]
pub struct Clients {
    map: DashMap<u64, Arc<ClientHandle>>,
    next_id: AtomicU64,
}

/// Removes its client from the registry when dropped.
#[derive(Debug)]
pub struct Registration {
    clients: Arc<Clients>,
    /// The registered handle.
    pub handle: Arc<ClientHandle>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.clients.map.remove(&self.handle.id);
    }
}

impl Clients {
    /// Registers a new connection unless `maxclients` are already connected.
    pub fn register(
        self: &Arc<Self>,
        addr: SocketAddr,
        laddr: SocketAddr,
        maxclients: usize,
    ) -> Option<Registration> {
        if self.map.len() >= maxclients {
            return None;
        }
        let id = self.next_id.fetch_add(1, Relaxed) + 1;
        let handle = Arc::new(ClientHandle {
            id,
            addr,
            laddr,
            created: Instant::now(),
            last_active_ms: AtomicU64::new(0),
            resp: AtomicU8::new(2),
            names: Mutex::new(ClientNames::default()),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
        });
        self.map.insert(id, handle.clone());
        Some(Registration {
            clients: self.clone(),
            handle,
        })
    }

    /// Number of connected clients.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Snapshot of every handle, by id.
    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        let mut all: Vec<_> = self.map.iter().map(|e| e.value().clone()).collect();
        all.sort_by_key(|c| c.id);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_limit_and_drop() {
        let clients = Arc::new(Clients::default());
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let r1 = clients.register(a, a, 2).unwrap();
        let r2 = clients.register(a, a, 2).unwrap();
        assert!(clients.register(a, a, 2).is_none());
        assert!(r2.handle.id > r1.handle.id);
        drop(r1);
        assert_eq!(clients.len(), 1);
        assert!(clients.register(a, a, 2).is_some());
        assert!(r2.handle.list_line().contains("cmd=NULL"));
    }
}
