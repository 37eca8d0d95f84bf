//! The home side of a node: the directory entries of the keys it homes.
//!
//! An entry holds the key's value (current whenever nobody holds it `M`), its owner (the
//! one node holding it `M` or `E`; the home cannot tell which, the upgrade being silent),
//! its sharers, each with the lease the home granted (home's clock), at most one
//! transaction under way and the requests queued behind it. One transaction at a time per
//! key serializes everything that changes who holds the key (Li and Hudak's manager).
//!
//! | request | directory | the home does |
//! |---|---|---|
//! | Shared | no owner, no other sharer | grant `E` |
//! | Shared | no owner, other sharers | grant `S`, add sharer |
//! | Shared | owner `o` | revoke `o` to `S` (its data comes back), then grant `S` (or `E` if `o` kept nothing) |
//! | Modified | no other holder | grant `M` |
//! | Modified | holders | revoke all to `I` in parallel, **wait for every acknowledgement**, then grant `M` |
//! | holding, and listed under the grant it names | — | `Renewed` (new lease, no data) |
//! | from the owner, not holding | — | its copy is gone unchanged (grant lost, or `E` evicted): serve afresh from the home's value |
//! | from the owner, newer incarnation | — | the owner restarted: its `M` value is lost — forget (nil) |
//!
//! A holder that does not acknowledge is asked again every `retry_ms`; once its lease
//! (from the home's grant, plus the drift margin) has run out it cannot be serving, and
//! the home goes on without it — an owner, which may hold the only value, not before a
//! lease after the revocation was first sent (an idle owner past its lease is alive most
//! of the time, and answers with its data) — losing the value if it was the owner ("may forget, never
//! lies"). `WriteBack` of an evicted `M` copy sets the value; inside a transaction it
//! counts as that owner's acknowledgement. `HomeEvict` (inclusion) revokes every copy,
//! then removes the entry.
//!
//! Why this file is long: the directory's transaction (serve, start, settle, finish, give
//! up) is one state machine whose steps call each other; split, each part would need the
//! others to be read.

use std::collections::{BTreeMap, VecDeque};

use super::coherence_vocab::{Bug, Config, Epoch, Held, NodeId, Ring, Stamp, Time};
use super::message::{Msg, RevokeTo, Want};
use super::node::Node;

/// The owner of a key, as its home sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Owner {
    pub(super) node: NodeId,
    /// The incarnation that requested the copy (a request from a newer one means the
    /// copy died with the old one).
    pub(super) incarnation: u64,
    /// End of the lease granted (home's clock).
    pub(super) lease_end: Time,
    /// The stamp of the grant it holds (a renewal must name it).
    pub(super) gid: Stamp,
}

impl Owner {
    /// The owner as a copy to revoke at `now`.
    fn awaited(&self, now: Time, cfg: &Config) -> Awaited {
        Awaited {
            lease_end: self.lease_end,
            give_up_at: (self.lease_end + cfg.margin_ms).max(now + cfg.lease_ms),
            gid: self.gid,
            owner: Some(self.incarnation),
        }
    }
}

/// Why a transaction revokes copies.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Purpose {
    /// A read by `from`: the owner is recalled to `S`.
    Read { from: NodeId, rid: Stamp },
    /// A write by `from`: every other copy is invalidated.
    Write { from: NodeId, rid: Stamp },
    /// The home drops the key.
    Evict,
}

/// A copy being revoked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Awaited {
    pub(super) lease_end: Time,
    /// When the home goes on without an answer: the lease end plus the margin, and for
    /// an owner not before a lease after the revocation was sent (an owner idle past its
    /// lease still has the only value; it gets a lease to send it back).
    pub(super) give_up_at: Time,
    /// The stamp of the grant the copy was given under.
    pub(super) gid: Stamp,
    /// `Some(incarnation it was granted in)` for the owner, `None` for a sharer.
    pub(super) owner: Option<u64>,
}

/// A transaction under way on a key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Tx {
    pub(super) stamp: Stamp,
    pub(super) purpose: Purpose,
    pub(super) to: RevokeTo,
    pub(super) awaiting: BTreeMap<NodeId, Awaited>,
    pub(super) retry_at: Time,
}

/// A request waiting for the transaction ahead of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Queued {
    pub(super) from: NodeId,
    pub(super) rid: Stamp,
    pub(super) want: Want,
    pub(super) holding: Option<Stamp>,
}

/// The directory entry of one key at its home.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Entry<V> {
    pub(super) value: Option<V>,
    pub(super) owner: Option<Owner>,
    /// Each sharer's lease end and the stamp of its grant.
    pub(super) sharers: BTreeMap<NodeId, (Time, Stamp)>,
    pub(super) tx: Option<Tx>,
    pub(super) queue: VecDeque<Queued>,
}

impl<V> Default for Entry<V> {
    fn default() -> Self {
        Entry {
            value: None,
            owner: None,
            sharers: BTreeMap::new(),
            tx: None,
            queue: VecDeque::new(),
        }
    }
}

impl<V> Entry<V> {
    /// Every copy a write or an eviction must revoke: the sharers (but `except`, the
    /// requester) and the owner, each with its lease end; revoked at `now`.
    fn copies_to_revoke(
        &self,
        except: Option<NodeId>,
        now: Time,
        cfg: &Config,
    ) -> BTreeMap<NodeId, Awaited> {
        let mut awaiting: BTreeMap<NodeId, Awaited> = self
            .sharers
            .iter()
            .filter(|(n, _)| Some(**n) != except)
            .map(|(n, (end, gid))| {
                (
                    *n,
                    Awaited {
                        lease_end: *end,
                        give_up_at: end + cfg.margin_ms,
                        gid: *gid,
                        owner: None,
                    },
                )
            })
            .collect();
        if let Some(owner) = &self.owner {
            awaiting.insert(owner.node, owner.awaited(now, cfg));
        }
        awaiting
    }

    /// When the transaction needs attention: a resend or a lease running out.
    pub(super) fn deadline(&self) -> Option<Time> {
        let tx = self.tx.as_ref()?;
        let give_up = tx.awaiting.values().map(|a| a.give_up_at).min();
        Some(give_up.map_or(tx.retry_at, |g| g.min(tx.retry_at)))
    }

    /// Whether the entry carries nothing worth keeping.
    fn is_idle_nil(&self) -> bool {
        self.value.is_none() && self.owner.is_none() && self.sharers.is_empty() && self.tx.is_none()
    }
}

/// A view of a directory entry (`CACHE.DIR`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirView {
    /// The node holding the key `M` or `E`.
    pub owner: Option<NodeId>,
    /// The nodes holding it `S`.
    pub sharers: Vec<NodeId>,
}

impl<K, V, R> Node<K, V, R>
where
    K: Clone + Ord + std::hash::Hash,
    V: Clone + Eq,
    R: Ring<K>,
{
    /// The directory entry of `key` if this node is its home (`CACHE.DIR`).
    pub fn dir_view(&self, key: &K) -> Option<DirView> {
        if self.ring.home(key) != self.id {
            return None;
        }
        let entry = self.dir.get(key);
        Some(DirView {
            owner: entry.and_then(|e| e.owner.as_ref().map(|o| o.node)),
            sharers: entry.map_or_else(Vec::new, |e| e.sharers.keys().copied().collect()),
        })
    }

    /// The keys this node is the home of that hold anything (a value, an owner, sharers,
    /// or a transaction under way), in key order: what a cluster-wide `FLUSHALL` evicts
    /// here ([`Event::HomeEvict`](super::Event::HomeEvict) each).
    pub fn homed_keys(&self) -> Vec<K> {
        let mut keys: Vec<K> = self
            .dir
            .iter()
            .filter(|(k, e)| {
                self.ring.home(k) == self.id
                    && (e.value.is_some()
                        || e.owner.is_some()
                        || !e.sharers.is_empty()
                        || e.tx.is_some())
            })
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// The transaction under way on `key` at its home: its stamp and whether it is an
    /// eviction (`None`: no transaction, or no entry).
    pub fn home_tx(&self, key: &K) -> Option<(Stamp, bool)> {
        self.dir
            .get(key)
            .and_then(|e| e.tx.as_ref())
            .map(|t| (t.stamp, matches!(t.purpose, Purpose::Evict)))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_request(
        &mut self,
        now: Time,
        from: NodeId,
        epoch: Epoch,
        key: K,
        rid: Stamp,
        want: Want,
        holding: Option<Stamp>,
    ) {
        // Not ours, another epoch, or leases of an earlier home may run: the requester
        // asks again.
        if epoch != self.ring.epoch()
            || self.ring.home(&key) != self.id
            || !self.may_grant(now, &key)
        {
            return;
        }
        let request = Queued {
            from,
            rid,
            want,
            holding,
        };
        let entry = self.dir.entry(key.clone()).or_default();
        if entry.tx.is_some() {
            entry.queue.retain(|q| q.from != from);
            entry.queue.push_back(request);
            return;
        }
        self.serve(now, key, request);
    }

    /// Serves one request on an entry with no transaction under way (dropped, as at
    /// arrival, when this node may not grant now: the requester asks again).
    fn serve(&mut self, now: Time, key: K, q: Queued) {
        if !self.may_grant(now, &key) {
            return;
        }
        let lease_end = now + self.cfg.lease_ms;
        let margin = self.cfg.margin_ms;
        let Some(entry) = self.dir.get_mut(&key) else {
            return;
        };
        entry.sharers.retain(|_, (end, _)| *end + margin > now);
        let mut forget = false;
        if let Some(owner) = entry.owner.as_mut().filter(|o| o.node == q.from) {
            if q.rid.incarnation < owner.incarnation {
                // A late request of an incarnation that has since restarted.
                return;
            }
            if q.rid.incarnation > owner.incarnation {
                // The owner restarted: whatever it wrote died with it.
                entry.owner = None;
                entry.value = None;
                forget = true;
            } else if q.holding == Some(owner.gid) {
                owner.lease_end = lease_end;
                let gid = owner.gid;
                return self.renew(key, q, gid);
            } else {
                // Same incarnation, not holding the copy granted: it never got that grant
                // (it may still hold an older copy, revoked since: its lease is over) or
                // dropped a clean copy (an M copy is written back first), so the home's
                // value is current.
                entry.owner = None;
            }
        }
        if forget {
            self.forgot(&key);
        }
        let Some(entry) = self.dir.get_mut(&key) else {
            return;
        };
        match q.want {
            Want::Shared => {
                if let Some((end, gid)) = entry
                    .sharers
                    .get_mut(&q.from)
                    .filter(|(_, gid)| q.holding == Some(*gid))
                {
                    *end = lease_end;
                    let gid = *gid;
                    return self.renew(key, q, gid);
                }
                if let Some(owner) = &entry.owner {
                    let awaiting = BTreeMap::from([(owner.node, owner.awaited(now, &self.cfg))]);
                    let purpose = Purpose::Read {
                        from: q.from,
                        rid: q.rid,
                    };
                    return self.start_tx(now, key, purpose, RevokeTo::Shared, awaiting);
                }
                self.grant_read(now, key, q.from, q.rid);
            }
            Want::Modified => {
                let awaiting = entry.copies_to_revoke(Some(q.from), now, &self.cfg);
                let purpose = Purpose::Write {
                    from: q.from,
                    rid: q.rid,
                };
                if awaiting.is_empty() {
                    self.finish(now, key, purpose);
                } else {
                    self.start_tx(now, key, purpose, RevokeTo::Invalid, awaiting);
                }
            }
        }
    }

    /// Renews the copy `q.from` holds under grant `gid` (the copy keeps its stamp).
    fn renew(&mut self, key: K, q: Queued, gid: Stamp) {
        self.send(
            q.from,
            Msg::Renewed {
                key,
                rid: q.rid,
                gid,
            },
        );
    }

    /// Grants a readable copy: `E` if nobody else holds one, else `S`.
    fn grant_read(&mut self, now: Time, key: K, from: NodeId, rid: Stamp) {
        if !self.may_grant(now, &key) {
            return;
        }
        let lease_end = now + self.cfg.lease_ms;
        let gid = self.stamp();
        let Some(entry) = self.dir.get_mut(&key) else {
            return;
        };
        let state = if entry.sharers.keys().all(|n| *n == from) {
            entry.sharers.remove(&from);
            entry.owner = Some(Owner {
                node: from,
                incarnation: rid.incarnation,
                lease_end,
                gid,
            });
            Held::E
        } else {
            entry.sharers.insert(from, (lease_end, gid));
            Held::S
        };
        let value = entry.value.clone();
        self.grant(key, from, rid, gid, state, value);
    }

    /// Sends a grant stamped `gid` (drawn by the caller, who records it).
    fn grant(&mut self, key: K, to: NodeId, rid: Stamp, gid: Stamp, state: Held, value: Option<V>) {
        self.send(
            to,
            Msg::Grant {
                key,
                rid,
                gid,
                state,
                value,
            },
        );
    }

    fn start_tx(
        &mut self,
        now: Time,
        key: K,
        purpose: Purpose,
        to: RevokeTo,
        awaiting: BTreeMap<NodeId, Awaited>,
    ) {
        let stamp = self.stamp();
        let targets: Vec<NodeId> = awaiting.keys().copied().collect();
        if let Some(entry) = self.dir.get_mut(&key) {
            entry.tx = Some(Tx {
                stamp,
                purpose,
                to,
                awaiting,
                retry_at: now + self.cfg.retry_ms,
            });
            self.busy.set(&key, entry.deadline());
        }
        for node in targets {
            self.stats.invalidations_sent += 1;
            self.send(
                node,
                Msg::Revoke {
                    key: key.clone(),
                    tx: stamp,
                    to,
                },
            );
        }
        self.maybe_finish(now, key);
    }

    /// One holder's revocation is settled: its data (if it had the key `M`/`E`), whether
    /// it kept `S`, the incarnation that answered (`None`: nobody did, the lease ran out).
    /// The owner's value is lost when it neither answered with data nor, from the
    /// incarnation it was granted in, said it never changed the key.
    fn settle(
        &mut self,
        key: &K,
        node: NodeId,
        data: Option<Option<V>>,
        kept: bool,
        answered_by: Option<u64>,
    ) -> bool {
        let Some(entry) = self.dir.get_mut(key) else {
            return false;
        };
        let Some(tx) = entry.tx.as_mut() else {
            return false;
        };
        let Some(awaited) = tx.awaiting.remove(&node) else {
            return false;
        };
        let to = tx.to;
        self.busy.set(key, entry.deadline());
        let mut lost = false;
        if let Some(granted_to) = awaited.owner {
            entry.owner = None;
            match data {
                Some(value) => entry.value = value,
                None if answered_by == Some(granted_to) => {}
                None => {
                    entry.value = None;
                    lost = true;
                }
            }
            if kept && to == RevokeTo::Shared {
                entry.sharers.insert(node, (awaited.lease_end, awaited.gid));
            }
        } else {
            entry.sharers.remove(&node);
        }
        if lost {
            self.forgot(key);
        }
        true
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_revoke_ack(
        &mut self,
        now: Time,
        from: NodeId,
        epoch: Epoch,
        key: K,
        tx: Stamp,
        data: Option<Option<V>>,
        kept: bool,
        incarnation: u64,
    ) {
        if epoch != self.ring.epoch() {
            return;
        }
        let current = self
            .dir
            .get(&key)
            .and_then(|e| e.tx.as_ref())
            .is_some_and(|t| t.stamp == tx);
        if current && self.settle(&key, from, data, kept, Some(incarnation)) {
            self.maybe_finish(now, key);
        }
    }

    pub(super) fn on_write_back(
        &mut self,
        now: Time,
        from: NodeId,
        epoch: Epoch,
        key: K,
        rid: Stamp,
        value: Option<V>,
    ) {
        if epoch == self.ring.epoch() && self.ring.home(&key) == self.id {
            let awaited_owner = self
                .dir
                .get(&key)
                .and_then(|e| e.tx.as_ref())
                .and_then(|t| t.awaiting.get(&from))
                .is_some_and(|a| a.owner.is_some());
            if awaited_owner {
                if self.settle(&key, from, Some(value), false, Some(rid.incarnation)) {
                    self.maybe_finish(now, key.clone());
                }
            } else if let Some(entry) = self.dir.get_mut(&key) {
                let is_owner = entry
                    .owner
                    .as_ref()
                    .is_some_and(|o| o.node == from && o.incarnation == rid.incarnation);
                if is_owner && entry.tx.is_none() {
                    entry.owner = None;
                    entry.value = value;
                }
            }
        }
        self.send(from, Msg::WriteBackAck { key, rid });
    }

    /// Finishes the transaction once nobody is left to wait for (`EarlyGrant` plants the
    /// bug of granting `M` with one acknowledgement still missing).
    fn maybe_finish(&mut self, now: Time, key: K) {
        let early = self.cfg.has_bug(Bug::EarlyGrant);
        let Some(entry) = self.dir.get_mut(&key) else {
            return;
        };
        let done = entry.tx.as_ref().is_some_and(|t| {
            t.awaiting.is_empty()
                || (early && t.awaiting.len() == 1 && matches!(t.purpose, Purpose::Write { .. }))
        });
        if !done {
            return;
        }
        let Some(tx) = entry.tx.take() else {
            return;
        };
        self.busy.remove(&key);
        for node in tx.awaiting.keys() {
            entry.sharers.remove(node);
        }
        self.finish(now, key, tx.purpose);
    }

    /// Completes a transaction (all copies revoked), then serves what queued behind it.
    fn finish(&mut self, now: Time, key: K, purpose: Purpose) {
        match purpose {
            Purpose::Read { from, rid } => {
                if let Some(entry) = self.dir.get_mut(&key) {
                    entry.owner = None;
                }
                self.grant_read(now, key.clone(), from, rid);
            }
            // Past the control plane's lease (a transaction that outlived it) the writer
            // gets nothing now and asks again.
            Purpose::Write { from, rid } if self.may_grant(now, &key) => {
                let lease_end = now + self.cfg.lease_ms;
                let gid = self.stamp();
                let Some(entry) = self.dir.get_mut(&key) else {
                    return;
                };
                entry.sharers.clear();
                entry.owner = Some(Owner {
                    node: from,
                    incarnation: rid.incarnation,
                    lease_end,
                    gid,
                });
                let value = entry.value.clone();
                self.grant(key.clone(), from, rid, gid, Held::M, value);
            }
            Purpose::Write { .. } => {}
            Purpose::Evict => {
                if let Some(entry) = self.dir.get_mut(&key) {
                    entry.value = None;
                    entry.owner = None;
                    entry.sharers.clear();
                }
                self.forgot(&key);
            }
        }
        self.serve_queue(now, key);
    }

    fn serve_queue(&mut self, now: Time, key: K) {
        loop {
            let Some(entry) = self.dir.get_mut(&key) else {
                return;
            };
            if entry.tx.is_some() {
                return;
            }
            let Some(q) = entry.queue.pop_front() else {
                if entry.is_idle_nil() {
                    self.dir.remove(&key);
                }
                return;
            };
            self.serve(now, key.clone(), q);
        }
    }

    /// Resends unanswered revocations; gives up on holders whose lease has run out. Only
    /// the transactions with a deadline now or earlier have anything to do.
    pub(super) fn home_tick(&mut self, now: Time) {
        for key in self.busy.due(now) {
            let expired: Vec<NodeId> = self
                .dir
                .get(&key)
                .and_then(|e| e.tx.as_ref())
                .map(|t| {
                    t.awaiting
                        .iter()
                        .filter(|(_, a)| a.give_up_at <= now)
                        .map(|(n, _)| *n)
                        .collect()
                })
                .unwrap_or_default();
            for node in expired {
                self.stats.lease_waits += 1;
                self.settle(&key, node, None, false, None);
            }
            self.maybe_finish(now, key.clone());
            let retry_ms = self.cfg.retry_ms;
            let mut resend = None;
            if let Some(entry) = self.dir.get_mut(&key) {
                if let Some(t) = entry.tx.as_mut().filter(|t| t.retry_at <= now) {
                    t.retry_at = now + retry_ms;
                    resend = Some((
                        t.stamp,
                        t.to,
                        t.awaiting.keys().copied().collect::<Vec<_>>(),
                    ));
                    self.busy.set(&key, entry.deadline());
                }
            }
            if let Some((tx, to, nodes)) = resend {
                for node in nodes {
                    self.stats.invalidations_sent += 1;
                    self.send(
                        node,
                        Msg::Revoke {
                            key: key.clone(),
                            tx,
                            to,
                        },
                    );
                }
            }
        }
    }

    /// Inclusion: as home, drop `key` after revoking every copy.
    pub(super) fn home_evict(&mut self, now: Time, key: K) {
        if self.ring.home(&key) != self.id {
            return;
        }
        let margin = self.cfg.margin_ms;
        let Some(entry) = self.dir.get_mut(&key) else {
            return;
        };
        if entry.tx.is_some() {
            return;
        }
        entry.sharers.retain(|_, (end, _)| *end + margin > now);
        let awaiting = entry.copies_to_revoke(None, now, &self.cfg);
        if awaiting.is_empty() {
            self.finish(now, key, Purpose::Evict);
        } else {
            self.start_tx(now, key, Purpose::Evict, RevokeTo::Invalid, awaiting);
        }
    }

    /// A new ring: entries of keys homed elsewhere now are dropped (their values are
    /// forgotten); queued requests are dropped (their requesters ask again).
    pub(super) fn home_epoch_change(&mut self) {
        let ring = self.ring.clone();
        let id = self.id;
        let mut lost = Vec::new();
        self.dir.retain(|k, e| {
            let stays = ring.home(k) == id;
            if !stays && (e.value.is_some() || e.owner.is_some()) {
                lost.push(k.clone());
            }
            e.queue.clear();
            stays
        });
        let dir = &self.dir;
        self.busy
            .retain(|k| dir.get(k).is_some_and(|e| e.tx.is_some()));
        lost.sort_unstable();
        for key in lost {
            self.forgot(&key);
        }
    }
}
