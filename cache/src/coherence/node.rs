//! [`Node`]: one node's whole coherence state — its copies (the requester side,
//! `requester.rs`) and the directory of the keys it homes (the home side, `home.rs`) — and
//! [`Node::handle`], the single entry point.
//!
//! Both sides live in one value because a node is both at once, and a node is also the
//! requester of the keys it homes: messages it sends to itself are delivered inside the
//! same `handle` call (never returned as actions), so a one-node cluster sends nothing.

use std::collections::{BTreeMap, VecDeque};

use super::coherence_vocab::{
    Bug, ClientId, Config, Epoch, Held, NodeId, Ring, Stamp, Stats, Time,
};
use super::deadlines::Deadlines;
use super::event::{Action, Event};
use super::home::Entry;
use super::keymap::KeyMap;
use super::message::{Envelope, Msg, RevokeTo};
use super::requester::{Answered, Copy, Pending, WriteBackBuf, WriteTx};

/// One node of the coherence protocol: a deterministic state machine.
///
/// `K` keys, `V` values (both only compared and cloned), `R` the ring of the current epoch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node<K: Ord + std::hash::Hash, V, R> {
    pub(super) id: NodeId,
    pub(super) incarnation: u64,
    pub(super) seq: u64,
    pub(super) cfg: Config,
    pub(super) ring: R,
    /// After an epoch change: the previous ring and the time until which keys that moved
    /// here are not granted (leases granted by their old home may still run).
    pub(super) moved_in: Option<(R, Time)>,
    /// After a restart: nothing is granted before this time (leases granted by the previous
    /// incarnation may still run; Gray and Cheriton §2.3).
    pub(super) recovering_until: Time,
    /// The control plane's lease ([`Event::RingConfirmed`]): nothing is granted at or
    /// after this time. `None`: no control plane (the ring's spread is assumed, as in the
    /// model check's `Adopt` steps).
    pub(super) ring_valid_until: Option<Time>,
    // ---- requester side ----
    pub(super) copies: KeyMap<K, Copy<V>>,
    pub(super) pending: KeyMap<K, Pending>,
    /// The keys of `pending` by when to resend their request.
    pub(super) pending_due: Deadlines<K>,
    pub(super) writebacks: BTreeMap<K, WriteBackBuf<V>>,
    /// The keys of `writebacks` by when to resend them.
    pub(super) writebacks_due: Deadlines<K>,
    pub(super) readers: BTreeMap<K, Vec<ClientId>>,
    pub(super) writes: Vec<WriteTx<K, V>>,
    /// Revocations held back while a multi-key write here holds the key: (home, tx, to).
    pub(super) deferred: BTreeMap<K, (NodeId, Stamp, RevokeTo)>,
    /// The last revocation answered with data, per key, repeated if asked again (the
    /// first answer may be lost, and the data is no longer anywhere else).
    pub(super) answered: BTreeMap<K, Answered<V>>,
    // ---- home side ----
    pub(super) dir: KeyMap<K, Entry<V>>,
    /// The keys of `dir` with a transaction under way, by the transaction's deadline (so
    /// timers never walk the whole directory, nor every transaction).
    pub(super) busy: Deadlines<K>,
    pub(super) stats: Stats,
    // ---- scratch, empty between calls ----
    pub(super) loopback: VecDeque<Envelope<K, V>>,
    pub(super) out: Vec<Action<K, V>>,
}

impl<K, V, R> Node<K, V, R>
where
    K: Clone + Ord + std::hash::Hash,
    V: Clone + Eq,
    R: Ring<K>,
{
    /// A node at the very first start of a cluster, when no lease can exist yet. Any later
    /// start of a node that may have been a home in the same epoch must use
    /// [`restart`](Self::restart).
    pub fn new(id: NodeId, incarnation: u64, ring: R, cfg: Config) -> Self {
        Node {
            id,
            incarnation,
            seq: 0,
            cfg,
            ring,
            moved_in: None,
            recovering_until: 0,
            ring_valid_until: None,
            copies: KeyMap::default(),
            pending: KeyMap::default(),
            pending_due: Deadlines::default(),
            writebacks: BTreeMap::new(),
            writebacks_due: Deadlines::default(),
            readers: BTreeMap::new(),
            writes: Vec::new(),
            deferred: BTreeMap::new(),
            answered: BTreeMap::new(),
            dir: KeyMap::default(),
            busy: Deadlines::default(),
            stats: Stats::default(),
            loopback: VecDeque::new(),
            out: Vec::new(),
        }
    }

    /// A node starting with empty memory at `now` after a crash: as a home it grants nothing
    /// for one lease plus margin, so every copy its previous incarnation granted has run out
    /// first. `incarnation` must exceed every earlier one of this node.
    pub fn restart(id: NodeId, incarnation: u64, ring: R, cfg: Config, now: Time) -> Self {
        let wait = cfg.lease_ms + cfg.margin_ms;
        let mut node = Node::new(id, incarnation, ring, cfg);
        node.recovering_until = now + wait;
        node
    }

    /// This node made to grant only under the control plane's lease: nothing until the
    /// first [`Event::RingConfirmed`] (a driver whose ring comes from the meta group).
    pub fn fenced(mut self) -> Self {
        self.ring_valid_until = Some(0);
        self
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The epoch of the ring this node is in.
    pub fn epoch(&self) -> Epoch {
        self.ring.epoch()
    }

    /// The ring of the epoch this node is in.
    pub fn ring(&self) -> &R {
        &self.ring
    }

    /// This node's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// This node's state of `key` at `now` (`CACHE.STATE`): `None` is `I` (no copy, or its
    /// lease has run out).
    pub fn state(&self, key: &K, now: Time) -> Option<Held> {
        self.copies
            .get(key)
            .filter(|c| now < c.lease_until)
            .map(|c| c.state)
    }

    /// How long this node's copy of `key` stays under lease after `now` (ms); `None`
    /// without a copy under lease.
    pub fn lease_left(&self, key: &K, now: Time) -> Option<u64> {
        self.copies
            .get(key)
            .filter(|c| now < c.lease_until)
            .map(|c| c.lease_until - now)
    }

    /// The keys this node holds a copy of (whatever the lease).
    pub fn copy_keys(&self) -> Vec<K> {
        self.copies.sorted_keys()
    }

    /// Whether a request for `key` is out (a renewal asked for, say).
    pub fn is_pending(&self, key: &K) -> bool {
        self.pending.contains_key(key)
    }

    /// The protocol's timing.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Zeroes the counters (the checker keeps them out of the states it compares).
    #[cfg(test)]
    pub(crate) fn reset_stats(&mut self) {
        self.stats = Stats::default();
    }

    /// How many stamps this incarnation has drawn (for bounding checks).
    #[cfg(test)]
    pub(crate) fn stamps_drawn(&self) -> u64 {
        self.seq
    }

    /// This node's copy of `key` whatever its lease (for checks).
    #[cfg(test)]
    pub(crate) fn copy_state(&self, key: &K) -> Option<Held> {
        self.copies.get(key).map(|c| c.state)
    }

    /// The value of this node's copy of `key` (`None`: no copy; `Some(None)`: nil), as a
    /// driver reads it from its store to run a command under an `Acquire` (for checks).
    #[cfg(test)]
    pub(crate) fn copy_value(&self, key: &K) -> Option<Option<V>> {
        self.copies.get(key).map(|c| c.value.clone())
    }

    /// Feeds one event to the machine and returns what the driver must do.
    pub fn handle(&mut self, now: Time, event: Event<K, V, R>) -> Vec<Action<K, V>> {
        match event {
            Event::Read { client, key } => self.readers.entry(key).or_default().push(client),
            Event::Write { client, writes } => self.admit_write(client, writes),
            Event::Acquire { client, keys } => self.admit_acquire(client, keys),
            Event::Release { client, writes } => self.release(now, client, writes),
            Event::Renew { key } => self.renew_early(now, key),
            Event::Receive(envelope) => self.receive(now, envelope),
            Event::Tick => {
                self.requester_tick(now);
                self.home_tick(now);
            }
            Event::Evict { key } => self.evict(now, key),
            Event::HomeEvict { key } => self.home_evict(now, key),
            Event::EpochChange(ring) => self.epoch_change(now, ring),
            Event::RingConfirmed { until } => {
                self.ring_valid_until = Some(self.ring_valid_until.map_or(until, |t| t.max(until)));
            }
            Event::Cancel { client } => self.cancel(client),
            Event::Restart { incarnation } => {
                let ring = self.ring.clone();
                let cfg = self.cfg.clone();
                let fenced = self.ring_valid_until.is_some();
                *self = Node::restart(self.id, incarnation, ring, cfg, now);
                if fenced {
                    self.ring_valid_until = Some(0);
                }
            }
        }
        self.pump(now);
        while let Some(envelope) = self.loopback.pop_front() {
            self.receive(now, envelope);
            self.pump(now);
        }
        if let Some(at) = self.next_deadline() {
            self.out.push(Action::SetTimer(at));
        }
        std::mem::take(&mut self.out)
    }

    /// Draws the next stamp of this incarnation.
    pub(super) fn stamp(&mut self) -> Stamp {
        self.seq += 1;
        Stamp {
            incarnation: self.incarnation,
            seq: self.seq,
        }
    }

    /// Sends `msg` to `to` in this node's epoch (to itself: delivered in this call).
    pub(super) fn send(&mut self, to: NodeId, msg: Msg<K, V>) {
        let envelope = Envelope {
            from: self.id,
            to,
            epoch: self.ring.epoch(),
            msg,
        };
        if to == self.id {
            self.loopback.push_back(envelope);
        } else {
            self.out.push(Action::Send(envelope));
        }
    }

    /// Records that the latest value of `key` is gone.
    pub(super) fn forgot(&mut self, key: &K) {
        self.stats.forgotten += 1;
        self.out.push(Action::Forgot { key: key.clone() });
    }

    /// Routes a message to the side it is for.
    fn receive(&mut self, now: Time, envelope: Envelope<K, V>) {
        let Envelope {
            from, epoch, msg, ..
        } = envelope;
        match msg {
            Msg::Request {
                key,
                rid,
                want,
                holding,
            } => self.on_request(now, from, epoch, key, rid, want, holding),
            Msg::RevokeAck {
                key,
                tx,
                data,
                kept,
                incarnation,
            } => self.on_revoke_ack(now, from, epoch, key, tx, data, kept, incarnation),
            Msg::WriteBack { key, rid, value } => {
                self.on_write_back(now, from, epoch, key, rid, value)
            }
            Msg::Grant {
                key,
                rid,
                gid,
                state,
                value,
            } => self.on_grant(now, from, epoch, key, rid, gid, state, value),
            Msg::Renewed { key, rid, gid } => self.on_renewed(from, epoch, key, rid, gid),
            Msg::Revoke { key, tx, to } => self.on_revoke(now, from, key, tx, to),
            Msg::WriteBackAck { key, rid } => self.on_write_back_ack(from, key, rid),
        }
    }

    /// A new ring: drop what moved, fence what moved in. The first ring of a machine that
    /// started with none (epoch 0) must be the latest committed one (the driver reads it
    /// linearizably): adopted from a replayed log instead, an older ring followed by the
    /// latest would hide keys that were homed elsewhere in between.
    fn epoch_change(&mut self, now: Time, ring: R) {
        if ring.epoch() <= self.ring.epoch() {
            return;
        }
        let old = std::mem::replace(&mut self.ring, ring);
        self.requester_epoch_change();
        self.home_epoch_change();
        // Keys that moved here in the previous change may still be fenced: only the last
        // ring is remembered, so fence every key until that earlier fence ends.
        if let Some((_, until)) = self.moved_in.take().filter(|(_, until)| now < *until) {
            self.recovering_until = self.recovering_until.max(until);
        }
        // From no ring to the cluster's first one nothing moved: no node homed anything
        // before it (a restart is covered by `recovering_until`). Any other first ring
        // fences every key (the old ring, epoch 0, homes nothing here).
        if old.epoch() == 0 && self.ring.epoch() == 1 {
            return;
        }
        let fence = self.cfg.lease_ms + self.cfg.margin_ms + self.cfg.epoch_spread_ms;
        self.moved_in = Some((old, now + fence));
    }

    /// Whether, as home, this node may grant `key` at `now` (not recovering from a restart,
    /// within the control plane's lease, and the key did not just move here from another
    /// home).
    pub(super) fn may_grant(&self, now: Time, key: &K) -> bool {
        let lapsed =
            self.ring_valid_until.is_some_and(|t| now >= t) && !self.cfg.has_bug(Bug::NoRingLease);
        if now < self.recovering_until || lapsed {
            return false;
        }
        match &self.moved_in {
            Some((old, until)) if now < *until && !self.cfg.has_bug(Bug::NoEpochFence) => {
                old.home(key) == self.id
            }
            _ => true,
        }
    }

    /// The earliest time something is due (a resend or a lease running out at the home).
    fn next_deadline(&self) -> Option<Time> {
        [
            self.pending_due.first(),
            self.writebacks_due.first(),
            self.busy.first(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}
