//! The registry of connected clients, for `CLIENT LIST`, `CLIENT KILL`, `INFO clients`,
//! `maxclients`, and for reaching another client: its push queue (invalidations,
//! pub/sub messages), its tracking mode, its lock wait (`CLIENT UNBLOCK`).
//!
//! Each connection registers a [`ClientHandle`] on accept and removes it on close
//! (the [`Registration`] guard does it on drop, whatever way the task ends). The
//! handle carries what `CLIENT LIST` prints (the connection publishes its state there,
//! see [`ClientState`]) and the kill switch the connection task listens to.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use conclave_protocol::blocking::BlockedWait;
use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tracing::warn;

use crate::pubsub::Subscriptions;
use crate::push::{self, Inbox, Outbox};
use crate::tracking::ClientTracking;

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
    /// `CLIENT SETNAME`, `CLIENT SETINFO LIB-NAME/LIB-VER`.
    pub names: Mutex<ClientNames>,
    /// The socket's file descriptor (`fd=`).
    pub fd: i64,
    /// Pushes for this client (see [`crate::push`]).
    pub outbox: Outbox,
    /// Its `CLIENT TRACKING` mode, read by whoever sends it invalidations.
    pub tracking: Mutex<ClientTracking>,
    /// Its lock wait, which `CLIENT UNBLOCK` may end.
    pub wait: BlockedWait,
    /// Its pub/sub channels and patterns.
    pub subscriptions: Mutex<Subscriptions>,
    /// What the connection publishes of its state for `CLIENT LIST`.
    pub state: ClientState,
    killed: AtomicBool,
    /// Asked (by the node's cron) to free its idle query buffer.
    trim: AtomicBool,
    /// Wakes the connection task: killed, or asked to trim.
    kill: Notify,
}

/// The connection's state as `CLIENT LIST` shows it, published by the connection task
/// (relaxed atomics: a listing is a snapshot).
#[derive(Debug, Default)]
pub struct ClientState {
    /// The command being run, or last run: `(table index + 1) << 8 | (subcommand
    /// index + 1)`; 0 = none (`cmd=NULL`).
    cmd: AtomicU32,
    /// [`flag`] bits.
    flags: AtomicU32,
    /// Channels and patterns subscribed (`sub=`, `psub=`).
    pub sub: AtomicU32,
    /// Patterns subscribed (`psub=`).
    pub psub: AtomicU32,
    /// Commands queued in `MULTI` (-1 outside).
    multi: AtomicI64,
    /// Bytes in the read buffer: the current command and what follows it (`qbuf=`).
    pub qbuf: AtomicU64,
    /// Free bytes of the read buffer (`qbuf-free=`).
    pub qbuf_free: AtomicU64,
    /// Bytes of the current command's arguments (`argv-mem=`).
    pub argv_mem: AtomicU64,
    /// Bytes of the queued `MULTI` commands' arguments (`multi-mem=`).
    pub multi_mem: AtomicU64,
    /// Size of the reply buffer (`rbs=`) and its peak use (`rbp=`).
    pub rbs: AtomicU64,
    /// Peak use of the reply buffer (`rbp=`).
    pub rbp: AtomicU64,
    /// Total memory of the connection's buffers (`tot-mem=`).
    pub tot_mem: AtomicU64,
}

/// Bits of [`ClientState`]'s flags (the ones the connection owns).
pub mod flag {
    /// Subscribed to a channel or pattern (`P`).
    pub const PUBSUB: u32 = 1;
    /// In `MULTI` (`x`).
    pub const MULTI: u32 = 1 << 1;
    /// Waiting out a `CLIENT PAUSE` (`b`).
    pub const PAUSED: u32 = 1 << 2;
    /// A watched key changed (`d`).
    pub const DIRTY_CAS: u32 = 1 << 3;
    /// `CLIENT NO-EVICT ON` (`e`).
    pub const NO_EVICT: u32 = 1 << 4;
    /// `CLIENT NO-TOUCH ON` (`T`).
    pub const NO_TOUCH: u32 = 1 << 5;
    /// In `MONITOR` mode (`O`).
    pub const MONITOR: u32 = 1 << 6;
}

impl ClientState {
    /// Records the command being run (`None`: unknown, `cmd=NULL`), by its index in
    /// the command table and, for a container, its subcommand's index.
    pub fn set_cmd(&self, entry: Option<usize>, sub: Option<usize>) {
        let v = entry.map_or(0, |e| {
            let e = u32::try_from(e + 1).unwrap_or(0) << 8;
            e | sub.map_or(0, |s| u32::try_from(s + 1).unwrap_or(0) & 0xff)
        });
        self.cmd.store(v, Relaxed);
    }

    /// The command's full name as Redis prints it (`client|list`, `get`, `NULL`).
    pub fn cmd_name(&self) -> String {
        let v = self.cmd.load(Relaxed);
        let Some(entry) = (v >> 8)
            .checked_sub(1)
            .and_then(|i| crate::command_table::all().get(i as usize))
        else {
            return "NULL".into();
        };
        let sub = (v & 0xff)
            .checked_sub(1)
            .and_then(|i| crate::builtin::subcommands::of(entry.spec.name).get(i as usize));
        sub.unwrap_or(entry.spec).lower_name()
    }

    /// Sets or clears flag bits.
    pub fn set_flag(&self, bit: u32, on: bool) {
        // A plain load first: after each command most flags are already as wanted.
        if self.has_flag(bit) == on {
            return;
        }
        if on {
            self.flags.fetch_or(bit, Relaxed);
        } else {
            self.flags.fetch_and(!bit, Relaxed);
        }
    }

    /// Whether `bit` is set.
    pub fn has_flag(&self, bit: u32) -> bool {
        self.flags.load(Relaxed) & bit != 0
    }

    /// Commands queued in `MULTI` (`None`: not in one).
    pub fn set_multi(&self, queued: Option<usize>) {
        let n = queued.map_or(-1, |n| n as i64);
        if self.multi.load(Relaxed) != n {
            self.multi.store(n, Relaxed);
        }
        self.set_flag(flag::MULTI, queued.is_some());
    }
}

/// The mutable text fields of a client.
#[derive(Debug, Clone)]
pub struct ClientNames {
    /// `CLIENT SETNAME`.
    pub name: String,
    /// `CLIENT SETINFO LIB-NAME`.
    pub lib_name: String,
    /// `CLIENT SETINFO LIB-VER`.
    pub lib_ver: String,
    /// The ACL user (`CLIENT LIST`'s `user=`; its clients are closed when it is deleted).
    pub user: String,
}

impl Default for ClientNames {
    fn default() -> Self {
        ClientNames {
            name: String::new(),
            lib_name: String::new(),
            lib_ver: String::new(),
            user: "default".into(),
        }
    }
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

    /// Resolves once the client is killed or asked to trim (see [`take_trim`]).
    ///
    /// [`take_trim`]: Self::take_trim
    pub async fn woken(&self) {
        if !self.is_killed() && !self.trim.load(Relaxed) {
            self.kill.notified().await;
        }
    }

    /// Asks the connection to free its query buffer if it is still idle (Redis's
    /// `clientsCronResizeQueryBuffer`).
    pub fn request_trim(&self) {
        self.trim.store(true, Relaxed);
        self.kill.notify_one();
    }

    /// Whether a trim was asked for since the last call.
    pub fn take_trim(&self) -> bool {
        self.trim.swap(false, Relaxed)
    }

    /// Milliseconds since this client's last command.
    pub fn idle_ms(&self) -> u64 {
        (self.created.elapsed().as_millis() as u64)
            .saturating_sub(self.last_active_ms.load(Relaxed))
    }

    /// Whether it speaks RESP3.
    pub fn is_resp3(&self) -> bool {
        self.resp.load(Relaxed) == 3
    }

    /// Whether it is in pub/sub mode (subscribed to a channel or pattern).
    pub fn in_pubsub(&self) -> bool {
        self.state.has_flag(flag::PUBSUB)
    }

    /// Whether it is blocked: in a lock wait, or waiting out `CLIENT PAUSE`.
    pub fn is_blocked(&self) -> bool {
        self.wait.is_blocked() || self.state.has_flag(flag::PAUSED)
    }

    /// Queues a push for this client; one that lets [`push::MAX_QUEUED_BYTES`] pile up
    /// is disconnected (Redis's pub/sub output buffer limit).
    pub fn push(&self, bytes: Bytes) {
        if !self.outbox.send(bytes) && !self.is_killed() {
            warn!(client = self.id, addr = %self.addr, "client closed for overcoming its push buffer limit ({} bytes)", push::MAX_QUEUED_BYTES);
            self.kill();
        }
    }

    /// The `flags=` letters, in Redis's order (`catClientInfoString`).
    fn flag_letters(&self) -> String {
        let mut f = String::new();
        let s = &self.state;
        let tracking = self.tracking.lock().flags();
        if s.has_flag(flag::MONITOR) {
            f.push('O');
        }
        if s.has_flag(flag::PUBSUB) {
            f.push('P');
        }
        if s.has_flag(flag::MULTI) {
            f.push('x');
        }
        if self.is_blocked() {
            f.push('b');
        }
        f.push_str(&tracking);
        if s.has_flag(flag::DIRTY_CAS) {
            f.push('d');
        }
        if s.has_flag(flag::NO_EVICT) {
            f.push('e');
        }
        if s.has_flag(flag::NO_TOUCH) {
            f.push('T');
        }
        if f.is_empty() {
            f.push('N');
        }
        f
    }

    /// One `CLIENT LIST` line (without the trailing newline), Redis 7.2's fields.
    pub fn list_line(&self) -> String {
        let names = self.names.lock().clone();
        let age = self.created.elapsed().as_secs();
        let idle = (self.created.elapsed().as_millis() as u64)
            .saturating_sub(self.last_active_ms.load(Relaxed))
            / 1000;
        let s = &self.state;
        let omem = self.outbox.queued() as u64;
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db=0 sub={} psub={} ssub=0 multi={} qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={} rbp={} obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user={} redir={} resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            names.name,
            age,
            idle,
            self.flag_letters(),
            s.sub.load(Relaxed),
            s.psub.load(Relaxed),
            s.multi.load(Relaxed),
            s.qbuf.load(Relaxed),
            s.qbuf_free.load(Relaxed),
            s.argv_mem.load(Relaxed),
            s.multi_mem.load(Relaxed),
            s.rbs.load(Relaxed),
            s.rbp.load(Relaxed),
            omem,
            s.tot_mem.load(Relaxed) + omem,
            s.cmd_name(),
            names.user,
            self.tracking.lock().redir(),
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
    /// The receiving end of the client's pushes, for its connection task.
    pub inbox: Option<Inbox>,
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
        fd: i64,
        maxclients: usize,
    ) -> Option<Registration> {
        if self.map.len() >= maxclients {
            return None;
        }
        let id = self.next_id.fetch_add(1, Relaxed) + 1;
        let (outbox, inbox) = push::queue();
        let state = ClientState::default();
        state.set_multi(None);
        let handle = Arc::new(ClientHandle {
            id,
            addr,
            laddr,
            created: Instant::now(),
            last_active_ms: AtomicU64::new(0),
            resp: AtomicU8::new(2),
            names: Mutex::new(ClientNames::default()),
            fd,
            outbox,
            tracking: Mutex::new(ClientTracking::default()),
            wait: BlockedWait::default(),
            subscriptions: Mutex::new(Subscriptions::default()),
            state,
            killed: AtomicBool::new(false),
            trim: AtomicBool::new(false),
            kill: Notify::new(),
        });
        self.map.insert(id, handle.clone());
        Some(Registration {
            clients: self.clone(),
            handle,
            inbox: Some(inbox),
        })
    }

    /// The connected client `id`.
    pub fn get(&self, id: u64) -> Option<Arc<ClientHandle>> {
        self.map.get(&id).map(|e| e.value().clone())
    }

    /// Number of connected clients. A killed client whose task has not ended yet is not
    /// counted: Redis frees a client `CLIENT KILL` names at once.
    pub fn len(&self) -> usize {
        self.map.iter().filter(|e| !e.value().is_killed()).count()
    }

    /// Snapshot of every handle but the killed ones (as [`len`](Self::len)), by id.
    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        let mut all: Vec<_> = self
            .map
            .iter()
            .filter(|e| !e.value().is_killed())
            .map(|e| e.value().clone())
            .collect();
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
        let r1 = clients.register(a, a, 7, 2).unwrap();
        let r2 = clients.register(a, a, 8, 2).unwrap();
        assert!(clients.register(a, a, 9, 2).is_none());
        assert!(r2.handle.id > r1.handle.id);
        assert!(clients.get(r1.handle.id).is_some());
        drop(r1);
        assert_eq!(clients.len(), 1);
        assert!(clients.register(a, a, 9, 2).is_some());
        let line = r2.handle.list_line();
        assert!(line.contains(" fd=8 "), "{line}");
        assert!(line.contains(" flags=N "), "{line}");
        assert!(line.contains(" multi=-1 "), "{line}");
        assert!(line.contains("cmd=NULL"), "{line}");
        assert!(line.contains(" redir=-1 "), "{line}");
    }

    #[test]
    fn cmd_names_the_subcommand() {
        let state = ClientState::default();
        let client = crate::command_table::lookup(b"CLIENT").unwrap();
        let list = crate::builtin::subcommands::of("CLIENT")
            .iter()
            .position(|s| s.name == "CLIENT|LIST");
        state.set_cmd(Some(client.index), list);
        assert_eq!(state.cmd_name(), "client|list");
        let get = crate::command_table::lookup(b"GET").unwrap();
        state.set_cmd(Some(get.index), None);
        assert_eq!(state.cmd_name(), "get");
        state.set_cmd(None, None);
        assert_eq!(state.cmd_name(), "NULL");
    }
}
