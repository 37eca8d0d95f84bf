//! The requester side of a node: its copies, the requests it has out, its clients.
//!
//! | copy | client read | client write | `Revoke` to S | `Revoke` to I | evict |
//! |---|---|---|---|---|---|
//! | I (none) | `Request(Shared)` | `Request(Modified)` | ack | ack | — |
//! | S | serve (lease) | `Request(Modified)` | ack, keep S | drop, ack | drop silently |
//! | E | serve (lease) | becomes M, no message | S, ack + data | drop, ack + data | drop silently |
//! | M | serve (lease) | write (lease) | S, ack + data | drop, ack + data | `WriteBack`, keep until acked |
//!
//! A copy is served (and written) only while `now < lease_until`, where `lease_until` is
//! the send time of the request that got it plus the lease: the home counts the same lease
//! from its (later) grant, so the holder always stops first (Gray and Cheriton). A copy
//! past its lease is kept and renewed by a `Request` naming it (`holding`: its grant's stamp).
//!
//! A grant can cross a revocation of the same copy (the revocation overtakes it, or the
//! grant is a late answer): every revocation received while a request is out raises that
//! request's `floor`, and a grant stamped at or below it is dropped.
//!
//! Writes of several keys (`MSET`, `DEL k1 k2`) take `M` on their keys one at a time in
//! key order and hold each — revocations of a held key wait — until all are held, then
//! write all at once. Two such writes can never wait on each other in a cycle, as both
//! take the keys they share in the same order (ordered locking, as in two-phase locking
//! with ordered acquisition). A held key whose lease runs out meanwhile is taken again.
//!
//! Why this file is over 500 lines: reads, writes, holds (`Acquire`/`Release`) and
//! revocations share the copy table and the pending requests, and `pump` ties them together.

use std::collections::{BTreeMap, BTreeSet};

use super::coherence_vocab::{Bug, ClientId, Epoch, Held, NodeId, Ring, Stamp, Time};
use super::event::{Action, Reply};
use super::message::{Msg, RevokeTo, Want};
use super::node::Node;

/// A copy this node holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Copy<V> {
    pub(super) state: Held,
    pub(super) value: Option<V>,
    /// Served only before this time (this node's clock).
    pub(super) lease_until: Time,
    /// The home that granted it.
    pub(super) home: NodeId,
    /// The stamp of the grant or renewal it holds; revocations stamped below it are stale.
    pub(super) gid: Stamp,
}

/// A request this node has out for a key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Pending {
    pub(super) rid: Stamp,
    pub(super) want: Want,
    pub(super) home: NodeId,
    /// When `rid` was sent: a grant for it gives a lease from this time.
    pub(super) sent_at: Time,
    /// The newest revocation from `home` seen while the request was out.
    pub(super) floor: Stamp,
}

/// An evicted `M` copy's value, kept (not served) until the home acknowledges it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct WriteBackBuf<V> {
    pub(super) rid: Stamp,
    pub(super) value: Option<V>,
    pub(super) home: NodeId,
}

/// A revocation answered with data: asked again (the answer was lost), it gets the same
/// answer. Kept until a new grant of the key, or until the home must have given up.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Answered<V> {
    pub(super) home: NodeId,
    pub(super) tx: Stamp,
    pub(super) data: Option<V>,
    pub(super) kept: bool,
    pub(super) until: Time,
}

/// A client's write of one or several keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct WriteTx<K, V> {
    pub(super) client: ClientId,
    /// In key order, each key once.
    pub(super) items: Vec<(K, Option<V>)>,
    /// How many leading keys are held `M`/`E` under a lease (their revocations wait).
    pub(super) held: usize,
    /// An [`Event::Acquire`](super::Event::Acquire): once every key is held, the client is
    /// told ([`Reply::Held`]) and the keys stay held until its `Release`.
    pub(super) acquire: bool,
    /// Whether `Held` was sent for the keys as they are held now.
    pub(super) notified: bool,
}

impl<V> Copy<V> {
    /// Whether the copy may be served at `now` (`ServeExpired` plants the bug of serving
    /// regardless).
    fn servable(&self, now: Time, ignore_lease: bool) -> bool {
        ignore_lease || now < self.lease_until
    }
}

impl<K, V, R> Node<K, V, R>
where
    K: Clone + Ord + std::hash::Hash,
    V: Clone + Eq,
    R: Ring<K>,
{
    /// Queues a client write (keys sorted, a repeated key keeps its last value).
    pub(super) fn admit_write(&mut self, client: ClientId, writes: Vec<(K, Option<V>)>) {
        let items: BTreeMap<K, Option<V>> = writes.into_iter().collect();
        if items.is_empty() {
            self.out.push(Action::Reply {
                client,
                reply: Reply::Done,
            });
            return;
        }
        self.writes.push(WriteTx {
            client,
            items: items.into_iter().collect(),
            held: 0,
            acquire: false,
            notified: false,
        });
    }

    /// Asks the home to renew the copy of `key` while it is still under lease.
    pub(super) fn renew_early(&mut self, now: Time, key: K) {
        if self.state(&key, now).is_some() {
            self.ensure_request(now, &key, Want::Shared);
        }
    }

    /// Queues a client's hold of `keys` (sorted, each once).
    pub(super) fn admit_acquire(&mut self, client: ClientId, keys: Vec<K>) {
        let keys: BTreeSet<K> = keys.into_iter().collect();
        if keys.is_empty() {
            self.out.push(Action::Reply {
                client,
                reply: Reply::Held,
            });
            return;
        }
        self.writes.push(WriteTx {
            client,
            items: keys.into_iter().map(|k| (k, None)).collect(),
            held: 0,
            acquire: true,
            notified: false,
        });
    }

    /// Whether `client`'s [`Acquire`](super::Event::Acquire) holds every one of its keys
    /// `M`/`E` under a lease at `now`: the driver may run its command on them.
    pub fn holds(&self, client: ClientId, now: Time) -> bool {
        self.writes.iter().any(|w| {
            w.client == client
                && w.acquire
                && w.notified
                && w.items.iter().all(|(k, _)| self.writable(now, k))
        })
    }

    /// Whether this node may write `key` at `now` without asking anyone (`M`, or `E` by
    /// the silent upgrade, under a lease).
    pub fn may_write(&self, key: &K, now: Time) -> bool {
        self.writable(now, key)
    }

    /// Writes `key` here at `now` if this node may ([`may_write`](Self::may_write)): the
    /// copy becomes `M` with `value`. Returns how long its lease still runs (ms), or `None`
    /// when it could not write. The same as a one-key [`Event::Write`](super::Event::Write)
    /// that needs no message, without the reply.
    pub fn write_local(&mut self, now: Time, key: &K, value: Option<V>) -> Option<u64> {
        let copy = self.copies.get_mut(key)?;
        if !(copy.state.exclusive() && now < copy.lease_until) {
            return None;
        }
        copy.state = Held::M;
        copy.value = value;
        Some(copy.lease_until - now)
    }

    /// The one-lookup form of [`may_write`](Self::may_write) then
    /// [`write_local`](Self::write_local), for the fast path of a one-key write: if this
    /// node may write `key` at `now`, runs `write` (which changes the node's store and
    /// returns its reply and the key's new value), makes the copy `M` with that value, and
    /// returns the reply and how long the copy's lease still runs (ms). `None`, without
    /// running `write`, when the node may not write the key.
    pub fn write_in_place<T>(
        &mut self,
        now: Time,
        key: &K,
        write: impl FnOnce() -> (T, Option<V>),
    ) -> Option<(T, u64)> {
        let copy = self.copies.get_mut(key)?;
        if !(copy.state.exclusive() && now < copy.lease_until) {
            return None;
        }
        let (reply, value) = write();
        copy.state = Held::M;
        copy.value = value;
        Some((reply, copy.lease_until - now))
    }

    /// Ends `client`'s hold (see [`Event::Release`](super::Event::Release)).
    pub(super) fn release(&mut self, now: Time, client: ClientId, writes: Vec<(K, Option<V>)>) {
        if !self.holds(client, now) {
            return;
        }
        let Some(index) = self
            .writes
            .iter()
            .position(|w| w.client == client && w.acquire)
        else {
            return;
        };
        let write = self.writes.remove(index);
        for (key, value) in writes {
            if write.items.iter().any(|(k, _)| *k == key) {
                if let Some(copy) = self.copies.get_mut(&key) {
                    copy.state = Held::M;
                    copy.value = value;
                }
            }
        }
        self.out.push(Action::Reply {
            client,
            reply: Reply::Done,
        });
    }

    /// Forgets a client that gave up.
    pub(super) fn cancel(&mut self, client: ClientId) {
        for waiting in self.readers.values_mut() {
            waiting.retain(|c| *c != client);
        }
        self.readers.retain(|_, waiting| !waiting.is_empty());
        self.writes.retain(|w| w.client != client);
    }

    /// Serves what can be served, sends the requests the rest needs, releases revocations
    /// no write holds any more. Runs after every event.
    pub(super) fn pump(&mut self, now: Time) {
        self.serve_readers(now);
        self.advance_writes(now);
        self.release_deferred(now);
    }

    fn serve_readers(&mut self, now: Time) {
        let ignore_lease = self.cfg.has_bug(Bug::ServeExpired);
        let keys: Vec<K> = self.readers.keys().cloned().collect();
        for key in keys {
            let servable = self
                .copies
                .get(&key)
                .filter(|c| c.servable(now, ignore_lease))
                .map(|c| c.value.clone());
            match servable {
                Some(value) => {
                    for client in self.readers.remove(&key).unwrap_or_default() {
                        self.out.push(Action::Reply {
                            client,
                            reply: Reply::Value(value.clone()),
                        });
                    }
                }
                None => self.ensure_request(now, &key, Want::Shared),
            }
        }
    }

    /// Moves every write that shares no key with an earlier one as far as it can go.
    fn advance_writes(&mut self, now: Time) {
        let mut claimed: BTreeSet<K> = BTreeSet::new();
        let mut index = 0;
        while index < self.writes.len() {
            let blocked = self.writes[index]
                .items
                .iter()
                .any(|(k, _)| claimed.contains(k));
            claimed.extend(self.writes[index].items.iter().map(|(k, _)| k.clone()));
            if blocked {
                index += 1;
                continue;
            }
            let held = self.writes[index]
                .items
                .iter()
                .position(|(k, _)| !self.writable(now, k));
            match held {
                Some(first_missing) => {
                    self.writes[index].held = first_missing;
                    self.writes[index].notified = false;
                    let key = self.writes[index].items[first_missing].0.clone();
                    self.ensure_request(now, &key, Want::Modified);
                    index += 1;
                }
                None if self.writes[index].acquire => {
                    let write = &mut self.writes[index];
                    write.held = write.items.len();
                    if !write.notified {
                        write.notified = true;
                        let client = write.client;
                        self.out.push(Action::Reply {
                            client,
                            reply: Reply::Held,
                        });
                    }
                    index += 1;
                }
                None => {
                    let write = self.writes.remove(index);
                    for (key, value) in write.items {
                        if let Some(copy) = self.copies.get_mut(&key) {
                            copy.state = Held::M;
                            copy.value = value;
                        }
                    }
                    self.out.push(Action::Reply {
                        client: write.client,
                        reply: Reply::Done,
                    });
                }
            }
        }
    }

    /// Whether this node may write `key` now: `M` or `E` under a lease.
    fn writable(&self, now: Time, key: &K) -> bool {
        self.copies
            .get(key)
            .is_some_and(|c| c.state.exclusive() && now < c.lease_until)
    }

    /// Whether a write here holds `key` (its revocation must wait).
    fn held_by_write(&self, key: &K) -> bool {
        self.writes
            .iter()
            .any(|w| w.items[..w.held].iter().any(|(k, _)| k == key))
    }

    /// Answers the revocations of keys no write holds any more.
    fn release_deferred(&mut self, now: Time) {
        let free: Vec<K> = self
            .deferred
            .keys()
            .filter(|k| !self.held_by_write(k))
            .cloned()
            .collect();
        for key in free {
            if let Some((home, tx, to)) = self.deferred.remove(&key) {
                self.answer_revoke(now, home, key, tx, to);
            }
        }
    }

    /// Sends a request for `key` unless one is out or a write-back of it is unanswered.
    fn ensure_request(&mut self, now: Time, key: &K, want: Want) {
        if self.pending.contains_key(key) || self.writebacks.contains_key(key) {
            return;
        }
        let home = self.ring.home(key);
        let rid = self.stamp();
        self.pending_due.set(key, Some(now + self.cfg.retry_ms));
        self.pending.insert(
            key.clone(),
            Pending {
                rid,
                want,
                home,
                sent_at: now,
                floor: Stamp::default(),
            },
        );
        self.send_request(key, home, rid, want);
    }

    fn send_request(&mut self, key: &K, home: NodeId, rid: Stamp, want: Want) {
        let holding = self
            .copies
            .get(key)
            .filter(|c| c.home == home && (want == Want::Shared || c.state.exclusive()))
            .map(|c| c.gid);
        if home != self.id {
            self.stats.remote_reads += 1;
        }
        self.send(
            home,
            Msg::Request {
                key: key.clone(),
                rid,
                want,
                holding,
            },
        );
    }

    /// Resends unanswered requests (each with a new id and send time) and write-backs.
    pub(super) fn requester_tick(&mut self, now: Time) {
        self.answered.retain(|_, a| a.until > now);
        let retry_at = now + self.cfg.retry_ms;
        for key in self.pending_due.due(now) {
            let rid = self.stamp();
            let Some(p) = self.pending.get_mut(&key) else {
                continue;
            };
            p.rid = rid;
            p.sent_at = now;
            let (home, want) = (p.home, p.want);
            self.pending_due.set(&key, Some(retry_at));
            self.send_request(&key, home, rid, want);
        }
        for key in self.writebacks_due.due(now) {
            let Some(w) = self.writebacks.get(&key) else {
                continue;
            };
            let (home, rid, value) = (w.home, w.rid, w.value.clone());
            self.writebacks_due.set(&key, Some(retry_at));
            self.send(home, Msg::WriteBack { key, rid, value });
        }
    }

    /// The answer to the request out for `key`, if `rid` is it and nothing revoked since.
    fn take_answer(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        key: &K,
        rid: Stamp,
        gid: Stamp,
    ) -> Option<Pending> {
        let p = self.pending.get(key)?;
        if epoch != self.ring.epoch() || p.rid != rid || p.home != from {
            return None;
        }
        if gid <= p.floor && !self.cfg.has_bug(Bug::StaleGrant) {
            // Granted before a revocation we already answered: stale. Ask again.
            self.pending.remove(key);
            self.pending_due.remove(key);
            return None;
        }
        self.pending_due.remove(key);
        self.pending.remove(key)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_grant(
        &mut self,
        _now: Time,
        from: NodeId,
        epoch: Epoch,
        key: K,
        rid: Stamp,
        gid: Stamp,
        state: Held,
        value: Option<V>,
    ) {
        let Some(p) = self.take_answer(from, epoch, &key, rid, gid) else {
            return;
        };
        self.answered.remove(&key);
        self.out.push(Action::Install {
            key: key.clone(),
            value: value.clone(),
        });
        self.copies.insert(
            key,
            Copy {
                state,
                value,
                lease_until: p.sent_at + self.cfg.lease_ms,
                home: from,
                gid,
            },
        );
    }

    pub(super) fn on_renewed(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        key: K,
        rid: Stamp,
        gid: Stamp,
    ) {
        let Some(p) = self.take_answer(from, epoch, &key, rid, gid) else {
            return;
        };
        if let Some(copy) = self.copies.get_mut(&key).filter(|c| c.home == from) {
            copy.lease_until = p.sent_at + self.cfg.lease_ms;
            copy.gid = gid;
        }
    }

    pub(super) fn on_revoke(&mut self, now: Time, from: NodeId, key: K, tx: Stamp, to: RevokeTo) {
        self.stats.invalidations_received += 1;
        if let Some(p) = self.pending.get_mut(&key).filter(|p| p.home == from) {
            p.floor = p.floor.max(tx);
        }
        if self.held_by_write(&key) {
            self.deferred.insert(key, (from, tx, to));
            return;
        }
        self.answer_revoke(now, from, key, tx, to);
    }

    /// Gives up (or downgrades) the copy granted by `home` before `tx` and acknowledges.
    fn answer_revoke(&mut self, now: Time, home: NodeId, key: K, tx: Stamp, to: RevokeTo) {
        let incarnation = self.incarnation;
        if let Some(a) = self
            .answered
            .get(&key)
            .filter(|a| a.home == home && a.tx == tx)
        {
            let (data, kept) = (Some(a.data.clone()), a.kept);
            let msg = Msg::RevokeAck {
                key,
                tx,
                data,
                kept,
                incarnation,
            };
            return self.send(home, msg);
        }
        let mut data = None;
        let mut kept = false;
        if let Some(wb) = self.writebacks.get(&key).filter(|w| w.home == home) {
            data = Some(wb.value.clone());
            self.writebacks.remove(&key);
            self.writebacks_due.remove(&key);
        }
        if let Some(copy) = self.copies.get_mut(&key) {
            if copy.home == home && copy.gid < tx {
                if copy.state.exclusive() {
                    data = Some(copy.value.clone());
                }
                if copy.state == Held::M {
                    self.stats.writebacks += 1;
                }
                match to {
                    RevokeTo::Shared => {
                        copy.state = Held::S;
                        kept = true;
                    }
                    RevokeTo::Invalid => {
                        self.copies.remove(&key);
                        self.out.push(Action::Drop { key: key.clone() });
                    }
                }
            }
        }
        if let Some(value) = &data {
            let until = now + self.cfg.lease_ms + self.cfg.margin_ms + self.cfg.retry_ms;
            self.answered.insert(
                key.clone(),
                Answered {
                    home,
                    tx,
                    data: value.clone(),
                    kept,
                    until,
                },
            );
        }
        self.send(
            home,
            Msg::RevokeAck {
                key,
                tx,
                data,
                kept,
                incarnation,
            },
        );
    }

    pub(super) fn on_write_back_ack(&mut self, from: NodeId, key: K, rid: Stamp) {
        if self
            .writebacks
            .get(&key)
            .is_some_and(|w| w.rid == rid && w.home == from)
        {
            self.writebacks.remove(&key);
            self.writebacks_due.remove(&key);
        }
    }

    /// Drops this node's copy of `key`: `S`/`E` silently, `M` by a write-back.
    pub(super) fn evict(&mut self, now: Time, key: K) {
        if self.held_by_write(&key) {
            return;
        }
        let Some(copy) = self.copies.remove(&key) else {
            return;
        };
        if copy.state == Held::M {
            let rid = self.stamp();
            self.stats.writebacks += 1;
            self.writebacks_due.set(&key, Some(now + self.cfg.retry_ms));
            self.writebacks.insert(
                key.clone(),
                WriteBackBuf {
                    rid,
                    value: copy.value.clone(),
                    home: copy.home,
                },
            );
            self.send(
                copy.home,
                Msg::WriteBack {
                    key,
                    rid,
                    value: copy.value,
                },
            );
        }
    }

    /// A new ring: copies and write-backs whose home moved are dropped (an `M` one is
    /// forgotten), requests are asked again in the new epoch.
    pub(super) fn requester_epoch_change(&mut self) {
        let ring = self.ring.clone();
        let mut lost = Vec::new();
        let mut dropped = Vec::new();
        self.copies.retain(|k, c| {
            let stays = ring.home(k) == c.home;
            if !stays && c.state == Held::M {
                lost.push(k.clone());
            }
            if !stays {
                dropped.push(k.clone());
            }
            stays
        });
        // In key order: the map's own order depends on its hasher (see `keymap`).
        dropped.sort_unstable();
        for key in dropped {
            self.out.push(Action::Drop { key });
        }
        self.writebacks.retain(|k, w| {
            let stays = ring.home(k) == w.home;
            if !stays {
                lost.push(k.clone());
            }
            stays
        });
        let writebacks = &self.writebacks;
        self.writebacks_due.retain(|k| writebacks.contains_key(k));
        self.deferred
            .retain(|k, (home, _, _)| ring.home(k) == *home);
        self.answered.retain(|k, a| ring.home(k) == a.home);
        self.pending.clear();
        self.pending_due.clear();
        lost.sort_unstable();
        for key in lost {
            self.forgot(&key);
        }
    }
}
