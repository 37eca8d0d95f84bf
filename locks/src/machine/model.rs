//! A deliberately naive reference model of the lock semantics (tests only): plain
//! vectors, whole-state scans, and brute-force cycle detection on the complete
//! wait-for graph of the state a wait request would produce.
//!
//! Why this file is long: the whole reference model in one place (tests only), so it can be
//! read side by side with `table.rs`.

use std::collections::BTreeMap;

use super::{
    Grant, HolderInfo, LockApplied, LockInfo, LockMode, LockOp, LockReply, LockRequest, LockStats,
    Name, WaiterInfo, MAX_TTL_MS, MIN_TTL_MS,
};

use LockMode::{Exclusive, Shared};

#[derive(Clone, Debug)]
pub struct MHold {
    pub owner: Name,
    pub mode: LockMode,
    pub token: u64,
    pub ttl: u64,
    pub deadline: u64,
    /// The granting request, until another request of the owner confirms the hold.
    pub rid: u64,
}

#[derive(Clone, Debug)]
pub struct MWait {
    pub owner: Name,
    pub mode: LockMode,
    pub upgrade: bool,
    pub ttl: u64,
    pub enqueued: u64,
    pub deadline: Option<u64>,
    pub rid: u64,
}

#[derive(Clone, Debug, Default)]
pub struct MLock {
    pub holders: Vec<MHold>,
    pub queue: Vec<MWait>,
}

/// A wait-for edge `(from, resource, to, held)`.
pub type MEdge = (Name, Name, Name, bool);

#[derive(Clone, Debug, Default)]
pub struct Model {
    pub locks: BTreeMap<Name, MLock>,
    pub last_token: u64,
    pub grants: u64,
    pub expiries: u64,
    pub deadlocks: u64,
    /// The whole wait-for graph the last refused wait request would have produced.
    pub refused_graph: Vec<MEdge>,
    /// The state the last refused wait request would have produced.
    pub refused_state: Option<Box<Model>>,
}

fn conflict(a: LockMode, b: LockMode) -> bool {
    a == Exclusive || b == Exclusive
}

fn done(reply: LockReply) -> LockApplied {
    LockApplied {
        reply,
        grants: vec![],
    }
}

fn err(text: &str) -> LockApplied {
    done(LockReply::Error(text.to_string()))
}

impl Model {
    fn token(&mut self, index: u64) -> u64 {
        let t = index.max(self.last_token + 1);
        self.last_token = t;
        self.grants += 1;
        t
    }

    fn hold_mut(&mut self, r: &[u8], o: &[u8]) -> Option<&mut MHold> {
        self.locks
            .get_mut(r)?
            .holders
            .iter_mut()
            .find(|h| h.owner == o)
    }

    fn wait_mut(&mut self, r: &[u8], o: &[u8]) -> Option<&mut MWait> {
        self.locks
            .get_mut(r)?
            .queue
            .iter_mut()
            .find(|w| w.owner == o)
    }

    fn queued(&self, r: &[u8], o: &[u8]) -> bool {
        self.locks
            .get(r)
            .is_some_and(|l| l.queue.iter().any(|w| w.owner == o))
    }

    /// Every edge of the wait-for graph.
    pub fn edges(&self) -> Vec<MEdge> {
        let mut edges = vec![];
        for (name, lock) in &self.locks {
            for (i, w) in lock.queue.iter().enumerate() {
                for h in &lock.holders {
                    if h.owner != w.owner && conflict(w.mode, h.mode) {
                        edges.push((w.owner.clone(), name.clone(), h.owner.clone(), true));
                    }
                }
                for a in &lock.queue[..i] {
                    if a.owner != w.owner && conflict(w.mode, a.mode) {
                        edges.push((w.owner.clone(), name.clone(), a.owner.clone(), false));
                    }
                }
            }
        }
        edges
    }

    /// Brute force: does any owner reach itself?
    pub fn has_cycle(edges: &[MEdge]) -> bool {
        let nodes: Vec<&Name> = edges.iter().map(|e| &e.0).collect();
        nodes.iter().any(|&start| {
            let mut seen: Vec<&Name> = vec![];
            let mut stack: Vec<&Name> = vec![start];
            while let Some(n) = stack.pop() {
                for e in edges.iter().filter(|e| &e.0 == n) {
                    if &e.2 == start {
                        return true;
                    }
                    if !seen.contains(&&e.2) {
                        seen.push(&e.2);
                        stack.push(&e.2);
                    }
                }
            }
            false
        })
    }

    /// Queues `w` on `r` at `pos` unless that closes a cycle.
    fn wait(&mut self, r: &[u8], pos: usize, w: MWait) -> LockApplied {
        let mut after = self.clone();
        after.refused_state = None;
        after
            .locks
            .entry(r.to_vec())
            .or_default()
            .queue
            .insert(pos, w);
        let edges = after.edges();
        if Self::has_cycle(&edges) {
            self.deadlocks += 1;
            self.refused_graph = edges;
            self.refused_state = Some(Box::new(after));
            return done(LockReply::Deadlock {
                cycle: String::new(),
            });
        }
        *self = after;
        done(LockReply::Queued)
    }

    fn serve(&mut self, r: &[u8], index: u64, now: u64) -> Vec<Grant> {
        let mut grants = vec![];
        while let Some(lock) = self.locks.get(r) {
            let Some(head) = lock.queue.first().cloned() else {
                break;
            };
            let ok = if head.upgrade {
                lock.holders.len() == 1 && lock.holders[0].owner == head.owner
            } else if head.mode == Exclusive {
                lock.holders.is_empty()
            } else {
                lock.holders.iter().all(|h| h.mode == Shared)
            };
            if !ok {
                break;
            }
            let token = self.token(index);
            let lock = self.locks.get_mut(r).unwrap();
            lock.queue.remove(0);
            if head.upgrade {
                let h = &mut lock.holders[0];
                h.mode = Exclusive;
                h.token = token;
                h.deadline = now + h.ttl;
                h.rid = head.rid;
            } else {
                lock.holders.push(MHold {
                    owner: head.owner.clone(),
                    mode: head.mode,
                    token,
                    ttl: head.ttl,
                    deadline: now + head.ttl,
                    rid: head.rid,
                });
            }
            grants.push(Grant {
                resource: r.to_vec(),
                owner: head.owner,
                mode: head.mode,
                token,
                rid: head.rid,
            });
        }
        grants
    }

    fn cleanup(&mut self) {
        self.locks
            .retain(|_, l| !l.holders.is_empty() || !l.queue.is_empty());
    }

    pub fn apply(&mut self, index: u64, req: &LockRequest) -> LockApplied {
        let out = self.apply_inner(index, req);
        self.cleanup();
        out
    }

    fn apply_inner(&mut self, index: u64, req: &LockRequest) -> LockApplied {
        let now = req.now_ms;
        let bad_ttl = |t: u64| !(MIN_TTL_MS..=MAX_TTL_MS).contains(&t);
        let deadline = |w: u64| if w == 0 { None } else { Some(now + w) };
        match req.op.clone() {
            LockOp::Acquire {
                resource: r,
                owner: o,
                mode,
                ttl_ms,
                wait_ms,
                rid,
            } => {
                if bad_ttl(ttl_ms) {
                    return err("ERR invalid TTL");
                }
                if let Some(h) = self.hold_mut(&r, &o) {
                    if h.mode != mode {
                        return err(if h.mode == Shared {
                            "use LOCK.UPGRADE"
                        } else {
                            "use LOCK.DOWNGRADE"
                        });
                    }
                    h.ttl = ttl_ms;
                    h.deadline = now + ttl_ms;
                    if h.rid != rid {
                        h.rid = 0;
                    }
                    return done(LockReply::Granted { token: h.token });
                }
                if let Some(w) = self.wait_mut(&r, &o) {
                    w.rid = rid;
                    return done(LockReply::Queued);
                }
                let lock = self.locks.get(&r).cloned().unwrap_or_default();
                if lock.queue.is_empty() && lock.holders.iter().all(|h| !conflict(mode, h.mode)) {
                    let token = self.token(index);
                    self.locks.entry(r).or_default().holders.push(MHold {
                        owner: o,
                        mode,
                        token,
                        ttl: ttl_ms,
                        deadline: now + ttl_ms,
                        rid,
                    });
                    return done(LockReply::Granted { token });
                }
                match wait_ms {
                    None => done(LockReply::NotGranted),
                    Some(w) => self.wait(
                        &r,
                        lock.queue.len(),
                        MWait {
                            owner: o,
                            mode,
                            upgrade: false,
                            ttl: ttl_ms,
                            enqueued: now,
                            deadline: deadline(w),
                            rid,
                        },
                    ),
                }
            }
            LockOp::Release {
                resource: r,
                owner: o,
            } => {
                let Some(lock) = self.locks.get_mut(&r) else {
                    return done(LockReply::Done(false));
                };
                let held = lock.holders.iter().any(|h| h.owner == o);
                let queued = lock.queue.iter().any(|w| w.owner == o);
                lock.holders.retain(|h| h.owner != o);
                lock.queue.retain(|w| w.owner != o);
                let grants = if held || queued {
                    self.serve(&r, index, now)
                } else {
                    vec![]
                };
                LockApplied {
                    reply: LockReply::Done(held),
                    grants,
                }
            }
            LockOp::Renew {
                resource: r,
                owner: o,
                ttl_ms,
            } => {
                if bad_ttl(ttl_ms) {
                    return err("ERR invalid TTL");
                }
                match self.hold_mut(&r, &o) {
                    Some(h) => {
                        h.ttl = ttl_ms;
                        h.deadline = now + ttl_ms;
                        h.rid = 0;
                        done(LockReply::Done(true))
                    }
                    None => done(LockReply::Done(false)),
                }
            }
            LockOp::Upgrade {
                resource: r,
                owner: o,
                wait_ms,
                rid,
            } => {
                let queued = self.queued(&r, &o);
                let Some(lock) = self.locks.get(&r).cloned() else {
                    return err("does not hold a shared lock");
                };
                let Some(h) = lock.holders.iter().find(|h| h.owner == o).cloned() else {
                    return err("does not hold a shared lock");
                };
                if h.rid != rid {
                    self.hold_mut(&r, &o).unwrap().rid = 0;
                }
                if h.mode == Exclusive {
                    return done(LockReply::Granted { token: h.token });
                }
                if queued {
                    self.wait_mut(&r, &o).unwrap().rid = rid;
                    return done(LockReply::Queued);
                }
                if lock.holders.len() == 1 {
                    let token = self.token(index);
                    let h = self.hold_mut(&r, &o).unwrap();
                    h.mode = Exclusive;
                    h.token = token;
                    h.deadline = now + h.ttl;
                    h.rid = rid;
                    return done(LockReply::Granted { token });
                }
                match wait_ms {
                    None => done(LockReply::NotGranted),
                    Some(w) => {
                        let pos = lock.queue.iter().filter(|w| w.upgrade).count();
                        self.wait(
                            &r,
                            pos,
                            MWait {
                                owner: o,
                                mode: Exclusive,
                                upgrade: true,
                                ttl: h.ttl,
                                enqueued: now,
                                deadline: deadline(w),
                                rid,
                            },
                        )
                    }
                }
            }
            LockOp::Downgrade {
                resource: r,
                owner: o,
            } => {
                let Some(mode) = self.hold_mut(&r, &o).map(|h| h.mode) else {
                    return err("does not hold an exclusive lock");
                };
                self.hold_mut(&r, &o).unwrap().rid = 0;
                if mode == Shared {
                    let token = self.hold_mut(&r, &o).unwrap().token;
                    return done(LockReply::Granted { token });
                }
                let token = self.token(index);
                let h = self.hold_mut(&r, &o).unwrap();
                h.mode = Shared;
                h.token = token;
                h.deadline = now + h.ttl;
                LockApplied {
                    reply: LockReply::Granted { token },
                    grants: self.serve(&r, index, now),
                }
            }
            LockOp::Cancel {
                resource: r,
                owner: o,
                rid,
                undo,
                upgrade,
            } => {
                let queued = self.locks.get(&r).is_some_and(|l| {
                    l.queue
                        .iter()
                        .any(|w| w.owner == o && (rid == 0 || w.rid == rid))
                });
                if queued {
                    self.locks
                        .get_mut(&r)
                        .unwrap()
                        .queue
                        .retain(|w| w.owner != o);
                } else {
                    let Some(h) = self.hold_mut(&r, &o).filter(|h| rid != 0 && h.rid == rid) else {
                        return done(LockReply::Done(false));
                    };
                    if !undo {
                        h.rid = 0;
                        return done(LockReply::Granted { token: h.token });
                    }
                    if upgrade {
                        let was_exclusive = h.mode == Exclusive;
                        h.rid = 0;
                        if was_exclusive {
                            let token = self.token(index);
                            let h = self.hold_mut(&r, &o).unwrap();
                            h.mode = Shared;
                            h.token = token;
                        }
                    } else {
                        let lock = self.locks.get_mut(&r).unwrap();
                        lock.holders.retain(|h| h.owner != o);
                        lock.queue.retain(|w| w.owner != o);
                    }
                }
                LockApplied {
                    reply: LockReply::Done(true),
                    grants: self.serve(&r, index, now),
                }
            }
            LockOp::Expire => {
                let mut touched = 0;
                let mut grants = vec![];
                let names: Vec<Name> = self.locks.keys().cloned().collect();
                for r in names {
                    let lock = self.locks.get_mut(&r).unwrap();
                    let before = lock.holders.len();
                    lock.holders.retain(|h| h.deadline > now);
                    let expired = (before - lock.holders.len()) as u64;
                    self.expiries += expired;
                    touched += expired;
                    let holders: Vec<Name> = lock.holders.iter().map(|h| h.owner.clone()).collect();
                    let before = lock.queue.len();
                    lock.queue.retain(|w| {
                        !matches!(w.deadline, Some(d) if d <= now)
                            && (!w.upgrade || holders.contains(&w.owner))
                    });
                    touched += (before - lock.queue.len()) as u64;
                    grants.extend(self.serve(&r, index, now));
                }
                LockApplied {
                    reply: LockReply::Housekeeping { touched },
                    grants,
                }
            }
            LockOp::ExtendLeases => {
                let mut touched = 0;
                for lock in self.locks.values_mut() {
                    for h in &mut lock.holders {
                        if now + h.ttl > h.deadline {
                            h.deadline = now + h.ttl;
                            touched += 1;
                        }
                    }
                }
                done(LockReply::Housekeeping { touched })
            }
        }
    }

    pub fn info(&self, r: &[u8], now: u64) -> LockInfo {
        let lock = self.locks.get(r).cloned().unwrap_or_default();
        let mut holders: Vec<HolderInfo> = lock
            .holders
            .iter()
            .map(|h| HolderInfo {
                owner: h.owner.clone(),
                token: h.token,
                ttl_ms: h.deadline.saturating_sub(now),
            })
            .collect();
        holders.sort_by_key(|h| h.token);
        LockInfo {
            mode: lock.holders.first().map(|h| h.mode),
            holders,
            waiters: lock
                .queue
                .iter()
                .map(|w| WaiterInfo {
                    owner: w.owner.clone(),
                    mode: w.mode,
                    waited_ms: now.saturating_sub(w.enqueued),
                })
                .collect(),
        }
    }

    pub fn stats(&self) -> LockStats {
        LockStats {
            locked_resources: self
                .locks
                .values()
                .filter(|l| !l.holders.is_empty())
                .count() as u64,
            holders: self.locks.values().map(|l| l.holders.len() as u64).sum(),
            waiters: self.locks.values().map(|l| l.queue.len() as u64).sum(),
            grants: self.grants,
            expiries: self.expiries,
            deadlocks: self.deadlocks,
        }
    }

    pub fn next_deadline(&self) -> Option<u64> {
        self.locks
            .values()
            .flat_map(|l| {
                l.holders
                    .iter()
                    .map(|h| Some(h.deadline))
                    .chain(l.queue.iter().map(|w| w.deadline))
            })
            .flatten()
            .min()
    }

    /// Semantic deadlock check, independent of any wait-for graph: let every owner
    /// that waits nowhere release all it holds (as it eventually will), over and
    /// over; returns the requests that are still queued when nothing moves any more.
    pub fn stuck_after_releases(&self) -> Vec<(Name, Name)> {
        let mut m = self.clone();
        loop {
            let waiting: Vec<Name> = m
                .locks
                .values()
                .flat_map(|l| l.queue.iter().map(|w| w.owner.clone()))
                .collect();
            let free: Vec<(Name, Name)> = m
                .locks
                .iter()
                .flat_map(|(r, l)| l.holders.iter().map(move |h| (r.clone(), h.owner.clone())))
                .filter(|(_, o)| !waiting.contains(o))
                .collect();
            if free.is_empty() {
                break;
            }
            for (resource, owner) in free {
                let req = LockRequest {
                    now_ms: 0,
                    op: LockOp::Release { resource, owner },
                };
                m.apply(u64::MAX / 2, &req);
            }
        }
        m.locks
            .iter()
            .flat_map(|(r, l)| l.queue.iter().map(move |w| (r.clone(), w.owner.clone())))
            .collect()
    }

    pub fn holds_token(&self, r: &[u8], token: u64) -> bool {
        self.locks
            .get(r)
            .is_some_and(|l| l.holders.iter().any(|h| h.token == token))
    }
}
