//! The lock service's replicated vocabulary: what goes into the Raft log
//! ([`LockRequest`]) and what comes out of applying it ([`LockApplied`]).
//!
//! These types are serialized into log entries and snapshots, so changing them is a
//! storage-format change. Names are written as JSON strings when they are UTF-8 (bytes
//! otherwise); both forms, and the older arrays of numbers, read back.

use serde::{Deserialize, Serialize};

/// A binary-safe resource or owner name.
pub type Name = Vec<u8>;

/// Identifies one client request of `LOCK.ACQUIRE` / `LOCK.UPGRADE` across the cluster:
/// chosen at random (never 0) by the node the client talks to and carried in the log
/// entry, in the queued request and in the grant, so that node recognises the effect of
/// *its* request and nothing else — owner names are reused by applications, and a node
/// that is behind the leader still applies older grants to the same owner. `0` means
/// "no id" (entries written before request ids existed).
pub type RequestId = conclave_raft_store::waiters::RequestId;

/// How a lock is held or requested.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockMode {
    /// Any number of shared holders coexist.
    Shared,
    /// One holder, nobody beside it.
    Exclusive,
}

impl LockMode {
    /// `shared` / `exclusive`, as `LOCK.INFO` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Shared => "shared",
            LockMode::Exclusive => "exclusive",
        }
    }
}

/// One operation of the lock service with the leader's clock.
///
/// The state machine never reads a clock: `now_ms` (milliseconds since the Unix
/// epoch, stamped by the leader when it proposed the entry) is its only notion of
/// time, so every replica computes the same result.
pub type LockRequest = conclave_raft_store::Stamped<LockOp>;

/// One Raft log entry of the lock service: requests proposed together by the leader
/// (batching many clients' requests into one entry is what lets one fsync serve them
/// all), applied in order.
pub type LockBatch = conclave_raft_store::Batch<LockOp>;

/// An operation on the lock table.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum LockOp {
    /// `LOCK.ACQUIRE`. With `wait: None` try once; with `Some(ms)` join the FIFO queue
    /// when not grantable (`Some(0)`: no deadline), unless joining closes a
    /// wait-for cycle. Acquiring again in the held mode renews the lease and returns
    /// the same token; asking for the other mode is an error that changes nothing.
    /// Acquiring again while already waiting keeps the original place in the queue.
    Acquire {
        #[serde(with = "super::bytes_map::name")]
        resource: Name,
        #[serde(with = "super::bytes_map::name")]
        owner: Name,
        mode: LockMode,
        ttl_ms: u64,
        wait_ms: Option<u64>,
        /// The request's id: a queued request and its later grant carry it.
        #[serde(default)]
        rid: RequestId,
    },
    /// `LOCK.RELEASE`: drop the owner's hold (and any queued request of it).
    Release {
        #[serde(with = "super::bytes_map::name")]
        resource: Name,
        #[serde(with = "super::bytes_map::name")]
        owner: Name,
    },
    /// `LOCK.RENEW`: the lease runs `ttl_ms` from `now_ms`.
    Renew {
        #[serde(with = "super::bytes_map::name")]
        resource: Name,
        #[serde(with = "super::bytes_map::name")]
        owner: Name,
        ttl_ms: u64,
    },
    /// `LOCK.UPGRADE`: shared → exclusive, waiting like `Acquire` when `wait_ms` is set.
    Upgrade {
        #[serde(with = "super::bytes_map::name")]
        resource: Name,
        #[serde(with = "super::bytes_map::name")]
        owner: Name,
        wait_ms: Option<u64>,
        /// The request's id, as for `Acquire`.
        #[serde(default)]
        rid: RequestId,
    },
    /// `LOCK.DOWNGRADE`: exclusive → shared; a new token; compatible waiters are granted.
    Downgrade {
        #[serde(with = "super::bytes_map::name")]
        resource: Name,
        #[serde(with = "super::bytes_map::name")]
        owner: Name,
    },
    /// Withdraw request `rid` of `owner` (its `WAIT` ran out, its client went away, or
    /// its client was answered an error while the request may still commit).
    ///
    /// - Still queued under `rid` → removed, the queue served: `Done(true)`.
    /// - Already granted by `rid` and nobody has confirmed the hold since (no re-acquire,
    ///   renew or downgrade by the owner): with `undo`, the grant is taken back — the hold
    ///   released, or for an `upgrade` request turned back to shared (with a new token) —
    ///   and `Done(true)`; without `undo`, the hold is confirmed: `Granted { token }`.
    /// - Otherwise (expired, withdrawn already, or the place taken over by a newer request
    ///   of the same owner): nothing changes, `Done(false)`.
    ///
    /// `rid == 0` (entries from before request ids) withdraws whatever request the owner
    /// has queued there.
    Cancel {
        #[serde(with = "super::bytes_map::name")]
        resource: Name,
        #[serde(with = "super::bytes_map::name")]
        owner: Name,
        /// The request to withdraw.
        #[serde(default)]
        rid: RequestId,
        /// Take back a grant the request already received (its client was told an error).
        #[serde(default)]
        undo: bool,
        /// The request was a `LOCK.UPGRADE` (undoing it turns the hold back to shared).
        #[serde(default)]
        upgrade: bool,
    },
    /// Proposed by the leader: release every lease whose deadline is `<= now_ms` and
    /// drop every queued request whose wait deadline passed, granting what follows.
    Expire,
    /// Proposed by a newly elected leader: every lease's deadline becomes at least
    /// `now_ms + its ttl`, so no holder loses time to the election.
    ExtendLeases,
}

impl LockOp {
    /// The request id of a `LOCK.ACQUIRE` / `LOCK.UPGRADE` (the operations that can
    /// grant), `None` for the others.
    pub fn request_id_mut(&mut self) -> Option<&mut RequestId> {
        match self {
            LockOp::Acquire { rid, .. } | LockOp::Upgrade { rid, .. } => Some(rid),
            _ => None,
        }
    }

    /// The [`LockOp::Cancel`] that withdraws this `Acquire` / `Upgrade` (`undo`: also
    /// take back a grant it already received); `None` for other operations.
    pub fn withdrawal(&self, undo: bool) -> Option<LockOp> {
        let (resource, owner, rid, upgrade) = match self {
            LockOp::Acquire {
                resource,
                owner,
                rid,
                ..
            } => (resource, owner, *rid, false),
            LockOp::Upgrade {
                resource,
                owner,
                rid,
                ..
            } => (resource, owner, *rid, true),
            _ => return None,
        };
        Some(LockOp::Cancel {
            resource: resource.clone(),
            owner: owner.clone(),
            rid,
            undo,
            upgrade,
        })
    }
}

/// What the proposer of an entry is told.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum LockReply {
    /// Granted (or re-acquired): the fencing token.
    Granted { token: u64 },
    /// Queued behind others; the later [`Grant`] carrying this request's id wakes the client.
    Queued,
    /// Try-once request that could not be granted now.
    NotGranted,
    /// Waiting would close a wait-for cycle; nothing changed.
    Deadlock { cycle: String },
    /// `LOCK.RELEASE` / `LOCK.RENEW` / cancel: whether the owner held (or waited) there.
    Done(bool),
    /// A request refused with an error line (prefix included, e.g. `ERR ...`);
    /// nothing changed.
    Error(String),
    /// Housekeeping entries (`Expire`, `ExtendLeases`, membership, blank): how many
    /// leases or waits it touched.
    Housekeeping { touched: u64 },
}

/// A queued request granted as a side effect of applying some entry (a release,
/// an expiry, a downgrade...). The server wakes the waiting client with it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    #[serde(with = "super::bytes_map::name")]
    pub resource: Name,
    #[serde(with = "super::bytes_map::name")]
    pub owner: Name,
    pub mode: LockMode,
    pub token: u64,
    /// The id of the request this grant answers (0: a request without one).
    #[serde(default)]
    pub rid: RequestId,
}

/// The result of applying one entry: the proposer's reply plus the grants it caused.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LockApplied {
    /// The reply for whoever proposed the entry.
    pub reply: LockReply,
    /// Queued requests this entry granted (in grant order).
    pub grants: Vec<Grant>,
}

/// One holder, as `LOCK.INFO` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderInfo {
    pub owner: Name,
    pub token: u64,
    /// Remaining lease at the time asked (0 when already due).
    pub ttl_ms: u64,
}

/// One queued request, as `LOCK.INFO` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaiterInfo {
    pub owner: Name,
    pub mode: LockMode,
    pub waited_ms: u64,
}

/// `LOCK.INFO` of one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    /// `None` when nobody holds it.
    pub mode: Option<LockMode>,
    pub holders: Vec<HolderInfo>,
    pub waiters: Vec<WaiterInfo>,
}

/// One resource of a [`ResourcesView`]: its [`LockInfo`] with at most the requested
/// number of holders and waiters, and how many of each were left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceView {
    pub resource: Name,
    /// Holders lowest token first, waiters in service order (both possibly cut).
    pub info: LockInfo,
    /// Holders not listed.
    pub more_holders: usize,
    /// Waiters not listed (the tail of the queue).
    pub more_waiters: usize,
}

/// A bounded, read-only listing of the lock table for dashboards
/// ([`LockTable::resources_view`](super::LockTable::resources_view)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourcesView {
    /// Listed resources, in name order.
    pub resources: Vec<ResourceView>,
    /// Resources with at least one holder or waiter, listed or not.
    pub total: usize,
}

impl ResourcesView {
    /// Resources left out of the listing.
    pub fn more(&self) -> usize {
        self.total.saturating_sub(self.resources.len())
    }
}

/// Counters for `INFO locks`; part of the replicated state, so identical everywhere.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct LockStats {
    /// Resources with at least one holder.
    pub locked_resources: u64,
    /// Holds (a shared lock with three holders counts three).
    pub holders: u64,
    /// Queued requests.
    pub waiters: u64,
    /// Grants ever made (immediate and from the queue; re-acquires excluded).
    pub grants: u64,
    /// Leases released by expiry.
    pub expiries: u64,
    /// Requests refused with `-DEADLOCK`.
    pub deadlocks: u64,
}
