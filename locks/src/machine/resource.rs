//! One lockable resource: its holders, its FIFO wait queue, and the queue-service rule
//! that turns waiters into holders.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::{bytes_map, Grant, LockMode, Name, RequestId};

/// Whether a request in mode `a` must wait for a hold or request in mode `b`.
pub(crate) fn conflicts(a: LockMode, b: LockMode) -> bool {
    a == LockMode::Exclusive || b == LockMode::Exclusive
}

/// A current hold of a resource by one owner.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Holder {
    /// The mode held.
    pub mode: LockMode,
    /// The fencing token of the grant (a new one on upgrade/downgrade).
    pub token: u64,
    /// The lease length, used again on renewal by upgrade/downgrade and `ExtendLeases`.
    pub ttl_ms: u64,
    /// When the lease runs out (ms since the epoch, leader clock).
    pub deadline_ms: u64,
    /// The request whose grant made this hold, until the owner confirms the hold by
    /// another request (re-acquire, renew, downgrade): only then can
    /// [`LockOp::Cancel`](super::LockOp::Cancel) with `undo` take the grant back. 0: none.
    #[serde(default)]
    pub rid: RequestId,
}

impl Holder {
    /// The owner confirmed this hold by request `rid` (a repeat of the granting request
    /// keeps it revocable; any other request confirms it for good).
    pub fn confirm(&mut self, rid: RequestId) {
        if self.rid != rid {
            self.rid = 0;
        }
    }
}

/// A queued request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Waiter {
    /// Who waits.
    #[serde(with = "bytes_map::name")]
    pub owner: Name,
    /// The mode it waits for (`Exclusive` for an upgrade).
    pub mode: LockMode,
    /// An upgrade of a shared hold the owner keeps meanwhile (queued ahead of
    /// ordinary waiters).
    pub upgrade: bool,
    /// The lease length once granted (unused for upgrades: the hold's own TTL applies).
    pub ttl_ms: u64,
    /// When it was queued (for `waited_ms`).
    pub enqueued_ms: u64,
    /// When the wait gives up; `None` waits forever.
    pub deadline_ms: Option<u64>,
    /// The latest request of the owner for this place (a repeated request of the same
    /// owner takes the place over); its grant carries this id.
    #[serde(default)]
    pub rid: RequestId,
}

/// Issues fencing tokens and keeps the replicated counters.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// The last fencing token ever issued.
    pub last_token: u64,
    /// Grants made (each one issued a new token).
    pub grants: u64,
    /// Leases released by expiry.
    pub expiries: u64,
    /// Wait requests refused because they would close a cycle.
    pub deadlocks: u64,
}

impl Counters {
    /// A new token for a grant made by the entry at log `index`: strictly greater than
    /// every token before it.
    pub fn issue(&mut self, index: u64) -> u64 {
        let token = index.max(self.last_token.saturating_add(1));
        self.last_token = token;
        self.grants += 1;
        token
    }
}

/// A resource's holders and wait queue.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Resource {
    /// Current holders by owner: one exclusive, or any number of shared.
    #[serde(with = "bytes_map")]
    pub holders: BTreeMap<Name, Holder>,
    /// Waiters in service order: upgrade requests first, then FIFO.
    pub queue: VecDeque<Waiter>,
}

impl Resource {
    /// Nobody holds it and nobody waits: the table drops it.
    pub fn is_unused(&self) -> bool {
        self.holders.is_empty() && self.queue.is_empty()
    }

    /// The earliest lease or wait deadline here.
    pub fn min_deadline(&self) -> Option<u64> {
        let leases = self.holders.values().map(|h| h.deadline_ms);
        let waits = self.queue.iter().filter_map(|w| w.deadline_ms);
        leases.chain(waits).min()
    }

    /// Whether a new (non-holder) request in `mode` could be granted right now: it is
    /// compatible with every holder and nobody is waiting ahead of it.
    pub fn grantable_now(&self, mode: LockMode) -> bool {
        self.queue.is_empty() && self.holders.values().all(|h| !conflicts(mode, h.mode))
    }

    /// Position of `owner`'s queued request, if any.
    pub fn queue_position(&self, owner: &[u8]) -> Option<usize> {
        self.queue.iter().position(|w| w.owner == owner)
    }

    /// Where a new upgrade request goes: after the upgrade requests already queued.
    pub fn upgrade_slot(&self) -> usize {
        self.queue.iter().take_while(|w| w.upgrade).count()
    }

    /// Removes `owner`'s queued request; whether there was one.
    pub fn remove_waiter(&mut self, owner: &[u8]) -> bool {
        match self.queue_position(owner) {
            Some(pos) => self.queue.remove(pos).is_some(),
            None => false,
        }
    }

    /// `owner`'s queued request, if any.
    pub fn waiter_mut(&mut self, owner: &[u8]) -> Option<&mut Waiter> {
        self.queue.iter_mut().find(|w| w.owner == owner)
    }

    /// Grants from the head of the queue while the head is grantable: an upgrade once
    /// its owner is the only holder, an exclusive request when nobody holds, a shared
    /// request (and each consecutive shared one after it) when no exclusive holder.
    /// Every grant issues a new token and starts its lease at `now_ms`.
    pub fn serve(
        &mut self,
        resource: &[u8],
        index: u64,
        now_ms: u64,
        counters: &mut Counters,
        out: &mut Vec<Grant>,
    ) {
        while let Some(head) = self.queue.front() {
            if head.upgrade {
                let sole = self.holders.len() == 1;
                match self.holders.get_mut(&head.owner) {
                    // The upgrader lost its hold (cannot happen: releasing a hold also
                    // drops its upgrade request); drop the orphan and go on.
                    None => {
                        self.queue.pop_front();
                        continue;
                    }
                    Some(holder) if sole => {
                        let token = counters.issue(index);
                        holder.mode = LockMode::Exclusive;
                        holder.token = token;
                        holder.deadline_ms = now_ms.saturating_add(holder.ttl_ms);
                        holder.rid = head.rid;
                        out.push(Grant {
                            resource: resource.to_vec(),
                            owner: head.owner.clone(),
                            mode: LockMode::Exclusive,
                            token,
                            rid: head.rid,
                        });
                        self.queue.pop_front();
                    }
                    Some(_) => break,
                }
                continue;
            }
            let grantable = match head.mode {
                LockMode::Exclusive => self.holders.is_empty(),
                LockMode::Shared => self.holders.values().all(|h| h.mode == LockMode::Shared),
            };
            if !grantable {
                break;
            }
            let Some(waiter) = self.queue.pop_front() else {
                break;
            };
            let token = counters.issue(index);
            self.holders.insert(
                waiter.owner.clone(),
                Holder {
                    mode: waiter.mode,
                    token,
                    ttl_ms: waiter.ttl_ms,
                    deadline_ms: now_ms.saturating_add(waiter.ttl_ms),
                    rid: waiter.rid,
                },
            );
            out.push(Grant {
                resource: resource.to_vec(),
                owner: waiter.owner,
                mode: waiter.mode,
                token,
                rid: waiter.rid,
            });
        }
    }
}
