//! One keyspace across the cluster: the node's driver of the coherence protocol
//! (contract 2.1).
//!
//! [`crate::coherence`] is the protocol as a sans-I/O machine; this module runs it in a
//! node. A [`Coherent`] owns the node's machine (`Node<Bytes, Exported, HashRing>`) behind
//! one mutex, and the node's [`Keyspace`] is the *store of its copies*: every granted copy
//! is installed there ([`Action::Install`]), every revoked one removed
//! ([`Action::Drop`]), and every local write is handed back to the machine, so the machine's
//! copy of a key and the keyspace's always agree while the machine holds a copy. Commands
//! then run on the keyspace exactly as on one node, and keep their exact Redis replies:
//!
//! | command | before it runs | after |
//! |---|---|---|
//! | read (`GET`, `MGET`, `STRLEN`, ...) | every key has a copy under lease (`M`/`E`/`S`), else `Read` each missing key and wait | — |
//! | write (`SET`, `INCR`, `APPEND`, `MSET`, `DEL k…`, ...) | every key `M`/`E` under lease: run at once (the silent upgrade) | each key's new value is the copy's (`write_local`) |
//! | write, some key not `M`/`E` | `Acquire` the keys: the machine takes `M` on each in key order and holds them (revocations wait) until every one is held | run, then `Release` with the new values |
//!
//! A read-modify-write thus runs where the key is held `M`, with no other copy anywhere,
//! so concurrent `INCR`s on several nodes lose nothing; `MSET`/`DEL k…` hold all their
//! keys at once (the machine takes them in key order, so two never deadlock) and no
//! reader anywhere sees part of one. A wait that outlasts `--no-leader-wait` plus one
//! lease (a write may legitimately wait a lease out for a silent sharer) gives up with
//! `-TRYAGAIN home of key unreachable` and takes no effect ([`Event::Cancel`]).
//!
//! Messages travel on the cluster channel as `FWD cache 0 <deadline> <batch>`: one task per
//! peer drains everything queued for that peer into one postcard-encoded batch, and up to
//! [`link::IN_FLIGHT`] batches per peer are in flight, so a write that revokes several
//! sharers reaches them in parallel. Lost batches are fine: the machine resends. Timers
//! (resends, leases running out at a home) run on one task that sleeps until the
//! machine's next deadline.
//!
//! The ring comes from the meta Raft group through a [`RingSource`] ([`ring`], followed by
//! `ring_follow.rs`): the machine starts with no ring (epoch 0) and grants nothing until
//! the control plane has confirmed a ring; a new epoch goes to the machine, which drops
//! the copies whose home moved and fences the keys that moved in. Until the first ring
//! arrives commands wait (within their deadline) and then answer
//! `-TRYAGAIN cache ring not ready`. A one-node cluster has no `Coherent` at all: the
//! server runs commands on the plain keyspace, with no message and no lock.
//!
//! `maxmemory` applies per node: a copy the keyspace evicts is reported
//! ([`Keyspace::take_evicted`]) and dropped by the machine before the next command (an `M`
//! copy is written back to its home first).
//!
//! Why this file is over 500 lines: the driver's state, the one path every
//! command takes through it (`attempt`) and the carrying-out of the machine's actions share
//! the lock and its invariant (machine copy = keyspace value); the links, the ring and
//! `CACHE.DIR` are in their own files.
//!
//! `FLUSHALL`/`FLUSHDB` drop every key of the cluster: every home evicts what it homes
//! ([`flush`]), then this node drops its remaining copies.
//!
//! Limits (not yet done): `KEYS`/`SCAN`/`DBSIZE`/`RANDOMKEY` see this node's copies only;
//! a `FLUSHALL` inside `MULTI`/`EXEC` or a script drops only this node's copies; a
//! transaction or script must end within a lease.

mod dir;
mod flush;
mod link;
pub mod ring;
mod ring_follow;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use conclave_cluster::group::BoxFuture;
use conclave_cluster::peer::PeerClient;
use conclave_cluster::ForwardHandler;
use conclave_protocol::Frame;
use parking_lot::Mutex;
use tokio::sync::{oneshot, Notify};
use tracing::debug;

use crate::coherence::{Action, ClientId, Config, Envelope, Event, Held, Node, NodeId};
use crate::keyspace::{Exported, Keyspace};
pub use ring::{HashRing, RingSource, RingState};

/// The service name of coherence messages on the cluster channel (`FWD cache ...`).
pub const SERVICE: &str = "cache";

/// The reply when a key's home cannot be reached in time (contract 2.1, "Partitions").
pub const TRYAGAIN: &str = "TRYAGAIN home of key unreachable";

/// The reply while the node has no ring yet (the meta group has not seeded one, or this
/// node has not reached its leader since it started).
pub const NO_RING: &str = "TRYAGAIN cache ring not ready (no ring from the meta group yet)";

type Machine = Node<Bytes, Exported, HashRing>;
type Env = Envelope<Bytes, Exported>;

/// Counters of the driver (besides the machine's own, [`crate::coherence::Stats`]).
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Coherence messages sent to other nodes.
    pub messages_sent: AtomicU64,
    /// Coherence messages received from other nodes.
    pub messages_received: AtomicU64,
    /// Batches (`FWD cache` calls) sent.
    pub batches_sent: AtomicU64,
    /// Commands that waited for the network (a miss, an upgrade, a renewal).
    pub waits: AtomicU64,
    /// Commands answered `-TRYAGAIN`.
    pub tryagain: AtomicU64,
    /// Keys whose latest value was forgotten (an `M` holder died, a home moved).
    pub forgotten: AtomicU64,
}

struct Inner {
    node: Machine,
    waiters: HashMap<ClientId, oneshot::Sender<()>>,
}

/// The node's coherence driver: the machine, its links to the peers, its timer.
pub struct Coherent {
    id: NodeId,
    keyspace: Arc<Keyspace>,
    inner: Mutex<Inner>,
    started: Instant,
    links: HashMap<NodeId, link::Link>,
    peers: HashMap<NodeId, Arc<PeerClient>>,
    next_tick: AtomicU64,
    timer: Notify,
    wait: Duration,
    next_client: AtomicU64,
    /// A planted bug (tests of the checkers only).
    planted: std::sync::atomic::AtomicBool,
    /// The keys left of a cluster-wide flush under way here as a home, between its rounds.
    flushing: Mutex<Option<flush::FlushRun>>,
    /// The driver's counters.
    pub stats: Arc<LinkStats>,
}

impl std::fmt::Debug for Coherent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coherent").field("id", &self.id).finish()
    }
}

/// One command's passage through the driver: its keys, whether it writes, and whether
/// the machine was asked for them. Dropped before it ran, it withdraws its request
/// ([`Event::Cancel`]): a client that went away leaves no key held.
pub struct Attempt<'a> {
    driver: &'a Coherent,
    client: ClientId,
    keys: Vec<Bytes>,
    write: bool,
    acquired: bool,
    finished: bool,
    /// When the command gives up (`-TRYAGAIN`); set when it first waits (no clock read on
    /// the fast path).
    deadline: Option<tokio::time::Instant>,
}

impl Attempt<'_> {
    /// When the command gives up waiting (`-TRYAGAIN`): `--no-leader-wait` plus a lease
    /// after it first waited.
    pub fn deadline(&mut self) -> tokio::time::Instant {
        let wait = self.driver.wait;
        *self
            .deadline
            .get_or_insert_with(|| tokio::time::Instant::now() + wait)
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let mut inner = self.driver.inner.lock();
            inner.waiters.remove(&self.client);
            let now = self.driver.now();
            let actions = inner.node.handle(
                now,
                Event::Cancel {
                    client: self.client,
                },
            );
            self.driver.apply(&mut inner, actions);
        }
    }
}

impl Coherent {
    /// Starts the driver of node `id` on `keyspace`: `peers` are the other nodes' cluster
    /// clients, `ring` the membership (the meta group), `cfg` the protocol's timing, `wait`
    /// how long a command waits for a home (`--no-leader-wait`; a lease is added). Must
    /// run inside a tokio runtime (it spawns the links, the timer and the ring follower).
    pub fn start(
        id: NodeId,
        keyspace: Arc<Keyspace>,
        ring: Arc<dyn RingSource>,
        peers: HashMap<NodeId, Arc<PeerClient>>,
        cfg: Config,
        wait: Duration,
    ) -> Arc<Coherent> {
        keyspace.record_evictions();
        let stats = Arc::new(LinkStats::default());
        let started = Instant::now();
        let incarnation = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let lease = Duration::from_millis(cfg.lease_ms + cfg.margin_ms);
        let spread_ms = cfg.epoch_spread_ms;
        // No ring yet (epoch 0, no members). A node may have been a home before a crash:
        // it grants nothing for a lease, so every copy its previous incarnation granted has
        // run out; the first ring it adopts fences every key for a lease plus the spread
        // (the keys may have been homed elsewhere meanwhile); and it grants only under the
        // control plane's lease (`fenced`).
        let node = Node::restart(
            id,
            incarnation,
            HashRing::new(&RingState::default()),
            cfg,
            1,
        )
        .fenced();
        let links = peers
            .iter()
            .filter(|(n, _)| **n != id)
            .map(|(n, p)| (*n, link::Link::start(p.clone(), stats.clone())))
            .collect();
        let driver = Arc::new(Coherent {
            id,
            keyspace,
            inner: Mutex::new(Inner {
                node,
                waiters: HashMap::new(),
            }),
            started,
            links,
            peers,
            next_tick: AtomicU64::new(u64::MAX),
            timer: Notify::new(),
            wait: wait + lease,
            next_client: AtomicU64::new(1),
            planted: std::sync::atomic::AtomicBool::new(false),
            flushing: Mutex::new(None),
            stats,
        });
        tokio::spawn(run_timer(Arc::downgrade(&driver)));
        tokio::spawn(ring_follow::run(Arc::downgrade(&driver), ring, spread_ms));
        driver
    }

    /// Plants a bug so a test can show that its checker catches it:
    /// `reply-before-invalidation` makes a write on a shared (`S`) copy change this node's
    /// copy and answer at once, while the other copies stay valid (the write never waits
    /// for the home's invalidations). Any other name is an error.
    pub fn plant_bug(&self, name: &str) -> Result<(), String> {
        if name != "reply-before-invalidation" {
            return Err(format!("unknown planted bug '{name}'"));
        }
        tracing::warn!("cache coherence runs with a PLANTED BUG ({name}): for tests only");
        self.planted.store(true, Relaxed);
        Ok(())
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The epoch of the ring this node is in (0: none yet).
    pub fn epoch(&self) -> u64 {
        self.inner.lock().node.epoch()
    }

    /// Whether this node has a ring (the meta group's first one has arrived).
    pub fn ready(&self) -> bool {
        self.epoch() > 0
    }

    /// The machine's clock: ms since the driver started (from 1).
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }

    /// Feeds one event and carries out its actions.
    fn event(&self, event: Event<Bytes, Exported, HashRing>) {
        let mut inner = self.inner.lock();
        let actions = inner.node.handle(self.now(), event);
        self.apply(&mut inner, actions);
    }

    /// Carries out the machine's actions (under its lock, so the keyspace and the
    /// machine's copies change together).
    fn apply(&self, inner: &mut Inner, actions: Vec<Action<Bytes, Exported>>) {
        for action in actions {
            match action {
                Action::Send(envelope) => match self.links.get(&envelope.to) {
                    Some(link) => link.send(envelope),
                    None => debug!(to = envelope.to, "coherence message to an unknown node"),
                },
                Action::Reply { client, .. } => {
                    if let Some(waiter) = inner.waiters.remove(&client) {
                        let _ = waiter.send(());
                    }
                }
                Action::Install { key, value } => self.keyspace.install(&key, value.as_ref()),
                Action::Drop { key } => {
                    self.keyspace.remove(&key);
                }
                Action::Forgot { key } => {
                    self.stats.forgotten.fetch_add(1, Relaxed);
                    debug!(key = %String::from_utf8_lossy(&key), "coherence: value forgotten");
                }
                Action::SetTimer(at) => {
                    let before = self.next_tick.swap(at, Relaxed);
                    if at < before {
                        self.timer.notify_one();
                    }
                }
            }
        }
    }

    /// Starts a command on `keys` (`write`: it may change them).
    pub fn begin(&self, keys: Vec<Bytes>, write: bool) -> Attempt<'_> {
        Attempt {
            driver: self,
            client: self.next_client.fetch_add(1, Relaxed),
            keys,
            write,
            acquired: false,
            finished: false,
            deadline: None,
        }
    }

    /// Runs the command (`run`, on the keyspace) if this node holds its keys well enough
    /// now; otherwise asks the homes and returns what to wait on before trying again.
    pub fn attempt(
        &self,
        a: &mut Attempt<'_>,
        run: &mut dyn FnMut(&Keyspace) -> Frame,
    ) -> Result<Frame, oneshot::Receiver<()>> {
        let mut inner = self.inner.lock();
        let now = self.now();
        if inner.node.epoch() == 0 {
            // No ring yet: wait for it (`adopt` wakes every waiter).
            let (tx, rx) = oneshot::channel();
            inner.waiters.insert(a.client, tx);
            return Err(rx);
        }
        // Copies the keyspace evicted under maxmemory are gone from the store: the machine
        // drops them (an M one is written back from the machine's own value).
        for key in self.keyspace.take_evicted() {
            let actions = inner.node.handle(now, Event::Evict { key });
            self.apply(&mut inner, actions);
        }
        if a.write && !a.acquired && a.keys.len() == 1 && !self.planted.load(Relaxed) {
            // The fast path of a one-key write on a key held M/E: one lookup in the
            // machine, the command, the new value handed to the machine.
            let key = &a.keys[0];
            let keyspace = &self.keyspace;
            if let Some((reply, left)) = inner.node.write_in_place(now, key, || {
                let reply = run(keyspace);
                (reply, keyspace.export(key))
            }) {
                a.finished = true;
                if left < inner.node.config().lease_ms / 3 {
                    self.renew(&mut inner, key.clone(), now);
                }
                return Ok(reply);
            }
        }
        if a.write {
            let ready = if a.acquired {
                inner.node.holds(a.client, now)
            } else {
                a.keys.iter().all(|k| inner.node.may_write(k, now))
            };
            if !ready
                && !a.acquired
                && self.planted.load(Relaxed)
                && a.keys.iter().all(|k| inner.node.state(k, now).is_some())
            {
                // The planted bug: written here only, nobody invalidated.
                a.finished = true;
                return Ok(run(&self.keyspace));
            }
            if ready {
                let reply = run(&self.keyspace);
                let values: Vec<(Bytes, Option<Exported>)> = a
                    .keys
                    .iter()
                    .map(|k| (k.clone(), self.keyspace.export(k)))
                    .collect();
                a.finished = true;
                if a.acquired {
                    let actions = inner.node.handle(
                        now,
                        Event::Release {
                            client: a.client,
                            writes: values,
                        },
                    );
                    self.apply(&mut inner, actions);
                    self.renew_ahead(&mut inner, &a.keys, now);
                } else {
                    let third = inner.node.config().lease_ms / 3;
                    for (k, v) in values {
                        if inner
                            .node
                            .write_local(now, &k, v)
                            .is_some_and(|l| l < third)
                        {
                            self.renew(&mut inner, k, now);
                        }
                    }
                }
                return Ok(reply);
            }
            if !a.acquired {
                a.acquired = true;
                self.stats.waits.fetch_add(1, Relaxed);
                let actions = inner.node.handle(
                    now,
                    Event::Acquire {
                        client: a.client,
                        keys: a.keys.iter().map(own).collect(),
                    },
                );
                self.apply(&mut inner, actions);
            }
        } else {
            // One lookup per key: missing, or under lease (and renewed soon if little is
            // left). No allocation unless a key is missing or due.
            let third = inner.node.config().lease_ms / 3;
            let (mut missing, mut due) = (Vec::new(), Vec::new());
            for k in &a.keys {
                match inner.node.lease_left(k, now) {
                    None => missing.push(k.clone()),
                    Some(left) if left < third => due.push(k.clone()),
                    Some(_) => {}
                }
            }
            if missing.is_empty() {
                a.finished = true;
                let reply = run(&self.keyspace);
                for k in due {
                    self.renew(&mut inner, k, now);
                }
                return Ok(reply);
            }
            self.stats.waits.fetch_add(1, Relaxed);
            for key in missing {
                let actions = inner.node.handle(
                    now,
                    Event::Read {
                        client: a.client,
                        key: own(&key),
                    },
                );
                self.apply(&mut inner, actions);
            }
        }
        let (tx, rx) = oneshot::channel();
        // Answered inside the calls above (the home is this node): try again at once.
        let ready_now = if a.write {
            inner.node.holds(a.client, now)
        } else {
            a.keys.iter().all(|k| inner.node.state(k, now).is_some())
        };
        if ready_now {
            let _ = tx.send(());
        } else {
            inner.waiters.insert(a.client, tx);
        }
        Err(rx)
    }

    /// Renews, without waiting, the copies of `keys` with less than a third of a lease
    /// left (and no request out already), so keys in use never wait for a renewal.
    fn renew_ahead(&self, inner: &mut Inner, keys: &[Bytes], now: u64) {
        let third = inner.node.config().lease_ms / 3;
        for key in keys {
            if inner
                .node
                .lease_left(key, now)
                .is_some_and(|left| left < third)
            {
                self.renew(inner, key.clone(), now);
            }
        }
    }

    /// Renews `key` in the background unless a request for it is out already.
    fn renew(&self, inner: &mut Inner, key: Bytes, now: u64) {
        if !inner.node.is_pending(&key) {
            let actions = inner.node.handle(now, Event::Renew { key: own(&key) });
            self.apply(inner, actions);
        }
    }

    /// Gives up on a command that waited past its deadline: counted, withdrawn (by the
    /// attempt's drop), answered `-TRYAGAIN` (with [`NO_RING`] while there is no ring).
    pub fn give_up(&self, a: Attempt<'_>) -> Frame {
        self.stats.tryagain.fetch_add(1, Relaxed);
        drop(a);
        Frame::error(if self.ready() { TRYAGAIN } else { NO_RING })
    }

    /// Runs a command on `keys` to the end: waits for the homes as needed, gives up with
    /// `-TRYAGAIN` at the deadline.
    pub async fn execute(
        &self,
        keys: Vec<Bytes>,
        write: bool,
        run: &mut (dyn FnMut(&Keyspace) -> Frame + Send),
    ) -> Frame {
        let mut a = self.begin(keys, write);
        loop {
            match self.attempt(&mut a, run) {
                Ok(reply) => return reply,
                Err(rx) => {
                    if tokio::time::timeout_at(a.deadline(), rx).await.is_err() {
                        return self.give_up(a);
                    }
                }
            }
        }
    }

    /// This node's part of a flush: under the driver's lock, runs the flush (`run`) on
    /// this node's store, then the machine drops every copy (an `M` one is written back
    /// to its home first, from the machine's own value), so no copy is served from a store
    /// that no longer has it. Alone it empties this node's copies only (the keys live on at
    /// their homes); [`Coherent::flush_cluster`] runs it after every home has flushed.
    pub fn flush(&self, run: &mut dyn FnMut(&Keyspace) -> Frame) -> Frame {
        let mut inner = self.inner.lock();
        let reply = run(&self.keyspace);
        let now = self.now();
        for key in inner.node.copy_keys() {
            let actions = inner.node.handle(now, Event::Evict { key });
            self.apply(&mut inner, actions);
        }
        reply
    }

    /// `CACHE.STATE key`: this node's state of `key` (`M`, `E`, `S`, or `I`).
    pub fn state(&self, key: &Bytes) -> &'static str {
        let inner = self.inner.lock();
        inner.node.state(key, self.now()).map_or("I", Held::letter)
    }

    /// The machine's counters now.
    pub fn protocol_stats(&self) -> crate::coherence::Stats {
        self.inner.lock().node.stats().clone()
    }

    /// Handles a batch of messages from a peer.
    fn receive(&self, batch: Vec<Env>) {
        self.stats
            .messages_received
            .fetch_add(batch.len() as u64, Relaxed);
        let mut inner = self.inner.lock();
        let now = self.now();
        for envelope in batch {
            if envelope.to != self.id {
                continue;
            }
            let actions = inner.node.handle(now, Event::Receive(envelope));
            self.apply(&mut inner, actions);
        }
    }

    /// The timer: a `Tick` whenever the machine's next deadline comes.
    fn tick(&self) {
        self.next_tick.store(u64::MAX, Relaxed);
        self.event(Event::Tick);
    }
}

/// A key the machine keeps in its tables, in an allocation of its own: a command's key
/// is a slice of the client's read buffer, and kept as it is it would keep that whole
/// buffer (16 KiB or more) alive for as long as the machine knows the key.
fn own(key: &Bytes) -> Bytes {
    Bytes::copy_from_slice(key)
}

/// Sleeps until the machine's next deadline and ticks it, until the driver is gone.
async fn run_timer(driver: std::sync::Weak<Coherent>) {
    loop {
        let Some(d) = driver.upgrade() else { return };
        let at = d.next_tick.load(Relaxed);
        let now = d.now();
        if at <= now {
            d.tick();
            continue;
        }
        let sleep = Duration::from_millis(if at == u64::MAX { 500 } else { at - now });
        let notified = d.timer.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = notified => {}
        }
    }
}

impl ForwardHandler for Coherent {
    /// Group 0: a batch of coherence messages (answered with nothing); group 1: a
    /// directory query of `CACHE.DIR` (see [`dir`]); group 2: a cluster-wide flush (see
    /// [`flush`]).
    fn handle(&self, group: u64, deadline_ms: u64, body: Bytes) -> BoxFuture<'_, Bytes> {
        Box::pin(async move {
            match group {
                0 => match postcard::from_bytes::<Vec<Env>>(&body) {
                    Ok(batch) => self.receive(batch),
                    Err(e) => debug!(error = %e, "undecodable coherence batch"),
                },
                1 => return self.dir_local(&body),
                flush::FLUSH_GROUP => return self.flush_request(deadline_ms, &body).await,
                _ => {}
            }
            Bytes::new()
        })
    }
}
