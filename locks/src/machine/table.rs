//! [`LockTable`]: the deterministic lock state machine every replica applies the
//! committed Raft log to.
//!
//! Pure: no clocks, no I/O, no randomness. Time comes only from
//! [`LockRequest::now_ms`], stamped by the leader, so every replica that applies the
//! same entries reaches the same state, replies and grants.
//!
//! Why this file is long: `LockTable::apply` and the grant/queue rules it calls form one
//! deterministic transition function; splitting it would scatter the invariants over files
//! (resources, the index and deadlock detection already live in their own modules).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::deadlock::{describe, find_cycle};
use super::index::Index;
use super::resource::{Counters, Holder, Resource, Waiter};
use super::{
    bytes_map, Grant, HolderInfo, LockApplied, LockInfo, LockMode, LockOp, LockReply, LockRequest,
    LockStats, Name, RequestId, ResourceView, ResourcesView, WaiterInfo,
};

/// Shortest lease a lock may be taken with, in ms.
pub const MIN_TTL_MS: u64 = 100;
/// Longest lease a lock may be taken with, in ms (24 hours).
pub const MAX_TTL_MS: u64 = 86_400_000;

/// Every lock: holders, wait queues, fencing-token counter and statistics.
///
/// Serializes (for Raft snapshots) to its resources and counters only; the lookup
/// indexes are rebuilt on load.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockTable {
    state: State,
    index: Index,
}

/// The replicated part of the table.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
struct State {
    /// Resources with at least one holder or waiter.
    #[serde(with = "bytes_map")]
    resources: BTreeMap<Name, Resource>,
    counters: Counters,
}

impl Serialize for LockTable {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.state.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LockTable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let state = State::deserialize(deserializer)?;
        let index = Index::build(&state.resources);
        Ok(LockTable { state, index })
    }
}

fn lossy(name: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(name)
}

fn reply(reply: LockReply) -> LockApplied {
    LockApplied {
        reply,
        grants: Vec::new(),
    }
}

fn check_ttl(ttl_ms: u64) -> Result<(), LockApplied> {
    if (MIN_TTL_MS..=MAX_TTL_MS).contains(&ttl_ms) {
        Ok(())
    } else {
        Err(reply(LockReply::Error(format!(
            "ERR invalid TTL {ttl_ms} ms: must be between {MIN_TTL_MS} and {MAX_TTL_MS}"
        ))))
    }
}

fn wait_deadline(now_ms: u64, wait_ms: u64) -> Option<u64> {
    (wait_ms > 0).then(|| now_ms.saturating_add(wait_ms))
}

impl LockTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one committed log entry at Raft log `index` (strictly increasing across
    /// calls): the proposer's reply plus every queued request it granted.
    pub fn apply(&mut self, index: u64, req: &LockRequest) -> LockApplied {
        let now = req.now_ms;
        match &req.op {
            LockOp::Acquire {
                resource,
                owner,
                mode,
                ttl_ms,
                wait_ms,
                rid,
            } => self.acquire(index, now, resource, owner, *mode, *ttl_ms, *wait_ms, *rid),
            LockOp::Release { resource, owner } => self.release(index, now, resource, owner),
            LockOp::Renew {
                resource,
                owner,
                ttl_ms,
            } => self.renew(now, resource, owner, *ttl_ms),
            LockOp::Upgrade {
                resource,
                owner,
                wait_ms,
                rid,
            } => self.upgrade(index, now, resource, owner, *wait_ms, *rid),
            LockOp::Downgrade { resource, owner } => self.downgrade(index, now, resource, owner),
            LockOp::Cancel {
                resource,
                owner,
                rid,
                undo,
                upgrade,
            } => self.cancel(index, now, resource, owner, *rid, *undo, *upgrade),
            LockOp::Expire => self.expire(index, now),
            LockOp::ExtendLeases => self.extend_leases(now),
        }
    }

    /// `LOCK.CHECK`: whether `token` belongs to a current holder of `resource`.
    pub fn check(&self, resource: &[u8], token: u64) -> bool {
        self.state
            .resources
            .get(resource)
            .is_some_and(|res| res.holders.values().any(|h| h.token == token))
    }

    /// The token of `owner`'s hold on `resource` when request `rid` granted it and the
    /// owner has not confirmed it by another request since (see [`LockOp::Cancel`]).
    pub fn granted_by(&self, resource: &[u8], owner: &[u8], rid: RequestId) -> Option<u64> {
        let hold = self.state.resources.get(resource)?.holders.get(owner)?;
        (rid != 0 && hold.rid == rid).then_some(hold.token)
    }

    /// `LOCK.INFO` as seen at `now_ms`: holders in grant order with their remaining
    /// lease (0 when due), waiters in service order with how long they have waited.
    pub fn info(&self, resource: &[u8], now_ms: u64) -> LockInfo {
        match self.state.resources.get(resource) {
            Some(res) => info_of(res, now_ms, usize::MAX).0,
            None => LockInfo {
                mode: None,
                holders: Vec::new(),
                waiters: Vec::new(),
            },
        }
    }

    /// A bounded listing for dashboards, as seen at `now_ms`: the first `limit`
    /// resources that have a holder or a waiter, in name order, each as
    /// [`LockTable::info`] reports it but with at most `per_resource` holders (lowest
    /// tokens first) and `per_resource` waiters (head of the queue first), plus how many
    /// resources, holders and waiters were left out. Reads only; the cost grows with
    /// `limit` and the holders of the listed resources, not with the table.
    pub fn resources_view(&self, limit: usize, per_resource: usize, now_ms: u64) -> ResourcesView {
        let resources = self
            .state
            .resources
            .iter()
            .take(limit)
            .map(|(name, res)| {
                let (info, more_holders, more_waiters) = info_of(res, now_ms, per_resource);
                ResourceView {
                    resource: name.clone(),
                    info,
                    more_holders,
                    more_waiters,
                }
            })
            .collect();
        ResourcesView {
            resources,
            total: self.state.resources.len(),
        }
    }

    /// The earliest lease deadline or queued-request wait deadline, if any: the leader
    /// proposes [`LockOp::Expire`] once its clock reaches it.
    pub fn next_deadline(&self) -> Option<u64> {
        self.index.next_deadline()
    }

    /// Counters for `INFO locks`.
    pub fn stats(&self) -> LockStats {
        let resources = self.state.resources.values();
        let mut stats = LockStats {
            grants: self.state.counters.grants,
            expiries: self.state.counters.expiries,
            deadlocks: self.state.counters.deadlocks,
            ..LockStats::default()
        };
        for res in resources {
            if !res.holders.is_empty() {
                stats.locked_resources += 1;
            }
            stats.holders += res.holders.len() as u64;
            stats.waiters += res.queue.len() as u64;
        }
        stats
    }

    /// After changing `resource`: drop it when unused and refresh its deadline.
    fn settle(&mut self, resource: &[u8]) {
        let (unused, deadline) = match self.state.resources.get(resource) {
            Some(res) => (res.is_unused(), res.min_deadline()),
            None => (false, None),
        };
        if unused {
            self.state.resources.remove(resource);
        }
        self.index
            .set_deadline(resource, deadline.filter(|_| !unused));
    }

    /// Grants what the head of `resource`'s queue allows, appending to `out`.
    fn serve(&mut self, resource: &[u8], index: u64, now: u64, out: &mut Vec<Grant>) {
        let Some(res) = self.state.resources.get_mut(resource) else {
            return;
        };
        let start = out.len();
        res.serve(resource, index, now, &mut self.state.counters, out);
        for grant in out.iter().skip(start) {
            self.index.remove_wait(&grant.owner, resource);
            self.index.add_hold(&grant.owner, resource);
        }
    }

    /// Refuses a wait request that would close a cycle (counting it), else `None`.
    fn deadlock(
        &mut self,
        resource: &[u8],
        owner: &[u8],
        mode: LockMode,
        pos: usize,
    ) -> Option<LockApplied> {
        let cycle = find_cycle(
            &self.state.resources,
            &self.index,
            owner,
            resource,
            mode,
            pos,
        )?;
        self.state.counters.deadlocks += 1;
        Some(reply(LockReply::Deadlock {
            cycle: describe(&cycle),
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn acquire(
        &mut self,
        index: u64,
        now: u64,
        resource: &[u8],
        owner: &[u8],
        mode: LockMode,
        ttl_ms: u64,
        wait_ms: Option<u64>,
        rid: RequestId,
    ) -> LockApplied {
        if let Err(err) = check_ttl(ttl_ms) {
            return err;
        }
        if let Some(res) = self.state.resources.get_mut(resource) {
            if let Some(hold) = res.holders.get_mut(owner) {
                if hold.mode != mode {
                    let (held, hint) = match hold.mode {
                        LockMode::Shared => ("a shared", "LOCK.UPGRADE"),
                        LockMode::Exclusive => ("an exclusive", "LOCK.DOWNGRADE"),
                    };
                    return reply(LockReply::Error(format!(
                        "ERR owner '{}' holds {held} lock on '{}', use {hint}",
                        lossy(owner),
                        lossy(resource)
                    )));
                }
                hold.ttl_ms = ttl_ms;
                hold.deadline_ms = now.saturating_add(ttl_ms);
                hold.confirm(rid);
                let token = hold.token;
                self.settle(resource);
                return reply(LockReply::Granted { token });
            }
            if self.index.is_waiting(owner, resource) {
                // The newest request of the owner takes the place over: its client is
                // the one still waiting (a client library resending after a reconnect).
                if let Some(waiter) = res.waiter_mut(owner) {
                    waiter.rid = rid;
                }
                return reply(LockReply::Queued);
            }
        }
        let grantable = match self.state.resources.get(resource) {
            Some(res) => res.grantable_now(mode),
            None => true,
        };
        if grantable {
            let token = self.state.counters.issue(index);
            let res = self.state.resources.entry(resource.to_vec()).or_default();
            res.holders.insert(
                owner.to_vec(),
                Holder {
                    mode,
                    token,
                    ttl_ms,
                    deadline_ms: now.saturating_add(ttl_ms),
                    rid,
                },
            );
            self.index.add_hold(owner, resource);
            self.settle(resource);
            return reply(LockReply::Granted { token });
        }
        let Some(wait_ms) = wait_ms else {
            return reply(LockReply::NotGranted);
        };
        let pos = self
            .state
            .resources
            .get(resource)
            .map_or(0, |res| res.queue.len());
        if let Some(refused) = self.deadlock(resource, owner, mode, pos) {
            return refused;
        }
        let res = self.state.resources.entry(resource.to_vec()).or_default();
        res.queue.push_back(Waiter {
            owner: owner.to_vec(),
            mode,
            upgrade: false,
            ttl_ms,
            enqueued_ms: now,
            deadline_ms: wait_deadline(now, wait_ms),
            rid,
        });
        self.index.add_wait(owner, resource);
        self.settle(resource);
        reply(LockReply::Queued)
    }

    fn release(&mut self, index: u64, now: u64, resource: &[u8], owner: &[u8]) -> LockApplied {
        let Some(res) = self.state.resources.get_mut(resource) else {
            return reply(LockReply::Done(false));
        };
        let held = res.holders.remove(owner).is_some();
        let queued = res.remove_waiter(owner);
        if held {
            self.index.remove_hold(owner, resource);
        }
        if queued {
            self.index.remove_wait(owner, resource);
        }
        let mut grants = Vec::new();
        if held || queued {
            self.serve(resource, index, now, &mut grants);
            self.settle(resource);
        }
        LockApplied {
            reply: LockReply::Done(held),
            grants,
        }
    }

    fn renew(&mut self, now: u64, resource: &[u8], owner: &[u8], ttl_ms: u64) -> LockApplied {
        if let Err(err) = check_ttl(ttl_ms) {
            return err;
        }
        let hold = self
            .state
            .resources
            .get_mut(resource)
            .and_then(|res| res.holders.get_mut(owner));
        let Some(hold) = hold else {
            return reply(LockReply::Done(false));
        };
        hold.ttl_ms = ttl_ms;
        hold.deadline_ms = now.saturating_add(ttl_ms);
        hold.confirm(0);
        self.settle(resource);
        reply(LockReply::Done(true))
    }

    fn upgrade(
        &mut self,
        index: u64,
        now: u64,
        resource: &[u8],
        owner: &[u8],
        wait_ms: Option<u64>,
        rid: RequestId,
    ) -> LockApplied {
        let Some(res) = self.state.resources.get_mut(resource) else {
            return not_held(LockMode::Shared, resource, owner);
        };
        let sole = res.holders.len() == 1;
        let queued = res.queue_position(owner).is_some();
        let slot = res.upgrade_slot();
        let Some(hold) = res.holders.get_mut(owner) else {
            return not_held(LockMode::Shared, resource, owner);
        };
        // Asking to upgrade shows the owner counts on its hold.
        hold.confirm(rid);
        if hold.mode == LockMode::Exclusive {
            return reply(LockReply::Granted { token: hold.token });
        }
        if queued {
            if let Some(waiter) = res.waiter_mut(owner) {
                waiter.rid = rid; // taken over, as for a repeated acquire
            }
            return reply(LockReply::Queued);
        }
        if sole {
            let token = self.state.counters.issue(index);
            hold.mode = LockMode::Exclusive;
            hold.token = token;
            hold.deadline_ms = now.saturating_add(hold.ttl_ms);
            hold.rid = rid;
            self.settle(resource);
            return reply(LockReply::Granted { token });
        }
        let ttl_ms = hold.ttl_ms;
        let Some(wait_ms) = wait_ms else {
            return reply(LockReply::NotGranted);
        };
        if let Some(refused) = self.deadlock(resource, owner, LockMode::Exclusive, slot) {
            return refused;
        }
        if let Some(res) = self.state.resources.get_mut(resource) {
            res.queue.insert(
                slot,
                Waiter {
                    owner: owner.to_vec(),
                    mode: LockMode::Exclusive,
                    upgrade: true,
                    ttl_ms,
                    enqueued_ms: now,
                    deadline_ms: wait_deadline(now, wait_ms),
                    rid,
                },
            );
            self.index.add_wait(owner, resource);
        }
        self.settle(resource);
        reply(LockReply::Queued)
    }

    fn downgrade(&mut self, index: u64, now: u64, resource: &[u8], owner: &[u8]) -> LockApplied {
        let hold = self
            .state
            .resources
            .get_mut(resource)
            .and_then(|res| res.holders.get_mut(owner));
        let Some(hold) = hold else {
            return not_held(LockMode::Exclusive, resource, owner);
        };
        hold.confirm(0);
        if hold.mode == LockMode::Shared {
            return reply(LockReply::Granted { token: hold.token });
        }
        let token = self.state.counters.issue(index);
        hold.mode = LockMode::Shared;
        hold.token = token;
        hold.deadline_ms = now.saturating_add(hold.ttl_ms);
        let mut grants = Vec::new();
        self.serve(resource, index, now, &mut grants);
        self.settle(resource);
        LockApplied {
            reply: LockReply::Granted { token },
            grants,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn cancel(
        &mut self,
        index: u64,
        now: u64,
        resource: &[u8],
        owner: &[u8],
        rid: RequestId,
        undo: bool,
        upgrade: bool,
    ) -> LockApplied {
        let Some(res) = self.state.resources.get_mut(resource) else {
            return reply(LockReply::Done(false));
        };
        let queued = res
            .waiter_mut(owner)
            .is_some_and(|w| rid == 0 || w.rid == rid);
        let mut grants = Vec::new();
        if queued {
            res.remove_waiter(owner);
            self.index.remove_wait(owner, resource);
        } else {
            let Some(hold) = res
                .holders
                .get_mut(owner)
                .filter(|h| rid != 0 && h.rid == rid)
            else {
                return reply(LockReply::Done(false));
            };
            if !undo {
                // The grant won the race with the withdrawal: the client is told.
                hold.confirm(0);
                return reply(LockReply::Granted { token: hold.token });
            }
            if upgrade {
                if hold.mode == LockMode::Exclusive {
                    hold.mode = LockMode::Shared;
                    hold.token = self.state.counters.issue(index);
                }
                hold.confirm(0);
            } else {
                res.holders.remove(owner);
                self.index.remove_hold(owner, resource);
                // An upgrade request of a hold that is gone goes with it.
                if res.remove_waiter(owner) {
                    self.index.remove_wait(owner, resource);
                }
            }
        }
        self.serve(resource, index, now, &mut grants);
        self.settle(resource);
        LockApplied {
            reply: LockReply::Done(true),
            grants,
        }
    }

    fn expire(&mut self, index: u64, now: u64) -> LockApplied {
        let mut touched = 0;
        let mut grants = Vec::new();
        for name in self.index.due(now) {
            if let Some(res) = self.state.resources.get_mut(&name) {
                let expired: Vec<Name> = res
                    .holders
                    .iter()
                    .filter(|(_, h)| h.deadline_ms <= now)
                    .map(|(owner, _)| owner.clone())
                    .collect();
                for owner in &expired {
                    res.holders.remove(owner);
                    self.index.remove_hold(owner, &name);
                    self.state.counters.expiries += 1;
                    touched += 1;
                }
                // Drop waits that ran out, and upgrade requests whose hold just expired.
                let mut dropped = Vec::new();
                res.queue.retain(|w| {
                    let due = w.deadline_ms.is_some_and(|d| d <= now);
                    let orphan = w.upgrade && !res.holders.contains_key(&w.owner);
                    if due || orphan {
                        dropped.push(w.owner.clone());
                    }
                    !(due || orphan)
                });
                for owner in &dropped {
                    self.index.remove_wait(owner, &name);
                    touched += 1;
                }
                self.serve(&name, index, now, &mut grants);
            }
            self.settle(&name);
        }
        LockApplied {
            reply: LockReply::Housekeeping { touched },
            grants,
        }
    }

    fn extend_leases(&mut self, now: u64) -> LockApplied {
        let mut touched = 0;
        for (name, res) in self.state.resources.iter_mut() {
            let mut changed = false;
            for hold in res.holders.values_mut() {
                let extended = hold.deadline_ms.max(now.saturating_add(hold.ttl_ms));
                if extended != hold.deadline_ms {
                    hold.deadline_ms = extended;
                    changed = true;
                    touched += 1;
                }
            }
            if changed {
                self.index.set_deadline(name, res.min_deadline());
            }
        }
        reply(LockReply::Housekeeping { touched })
    }

    /// Checks every internal invariant (tests only): indexes match a rebuild, no unused
    /// resource, modes compatible, queue well formed and its head not grantable.
    #[cfg(test)]
    pub(crate) fn assert_consistent(&self) {
        assert_eq!(
            self.index,
            Index::build(&self.state.resources),
            "index drift"
        );
        for (name, res) in &self.state.resources {
            assert!(!res.is_unused(), "unused resource {name:?} kept");
            let exclusive = res
                .holders
                .values()
                .filter(|h| h.mode == LockMode::Exclusive)
                .count();
            assert!(
                exclusive == 0 || res.holders.len() == 1,
                "exclusive beside others"
            );
            let mut seen = std::collections::BTreeSet::new();
            let mut upgrades_done = false;
            for w in &res.queue {
                assert!(seen.insert(w.owner.clone()), "owner queued twice");
                if w.upgrade {
                    assert!(!upgrades_done, "upgrade behind an ordinary waiter");
                    let hold = res.holders.get(&w.owner).map(|h| h.mode);
                    assert_eq!(hold, Some(LockMode::Shared), "upgrade without shared hold");
                } else {
                    upgrades_done = true;
                    assert!(!res.holders.contains_key(&w.owner), "holder queued");
                }
            }
            for h in res.holders.values() {
                assert!(h.token <= self.state.counters.last_token);
            }
            let mut copy = res.clone();
            let mut counters = self.state.counters.clone();
            let mut out = Vec::new();
            copy.serve(name, u64::MAX, 0, &mut counters, &mut out);
            assert!(out.is_empty(), "grantable head left waiting on {name:?}");
        }
    }
}

/// `LOCK.INFO` of one resource at `now`, keeping at most `per` holders (lowest tokens)
/// and `per` waiters (queue head); also returns how many of each were left out.
fn info_of(res: &Resource, now: u64, per: usize) -> (LockInfo, usize, usize) {
    let mut holders: Vec<HolderInfo> = res
        .holders
        .iter()
        .map(|(owner, h)| HolderInfo {
            owner: owner.clone(),
            token: h.token,
            ttl_ms: h.deadline_ms.saturating_sub(now),
        })
        .collect();
    let more_holders = holders.len().saturating_sub(per);
    if more_holders > 0 && per > 0 {
        holders.select_nth_unstable_by_key(per - 1, |h| h.token);
    }
    holders.truncate(per);
    holders.sort_by_key(|h| h.token);
    let waiters = res
        .queue
        .iter()
        .take(per)
        .map(|w| WaiterInfo {
            owner: w.owner.clone(),
            mode: w.mode,
            waited_ms: now.saturating_sub(w.enqueued_ms),
        })
        .collect();
    let mode = res
        .holders
        .values()
        .map(|h| h.mode)
        .max_by_key(|m| match m {
            LockMode::Shared => 0,
            LockMode::Exclusive => 1,
        });
    let info = LockInfo {
        mode,
        holders,
        waiters,
    };
    (info, more_holders, res.queue.len().saturating_sub(per))
}

fn not_held(mode: LockMode, resource: &[u8], owner: &[u8]) -> LockApplied {
    let kind = match mode {
        LockMode::Shared => "a shared",
        LockMode::Exclusive => "an exclusive",
    };
    reply(LockReply::Error(format!(
        "ERR owner '{}' does not hold {kind} lock on '{}'",
        lossy(owner),
        lossy(resource)
    )))
}

impl conclave_raft_store::StateMachine for LockTable {
    type Op = LockOp;
    type Applied = LockApplied;

    fn apply(&mut self, index: u64, req: &LockRequest) -> LockApplied {
        LockTable::apply(self, index, req)
    }
}
