//! The messages nodes exchange, each in an [`Envelope`] that names sender, receiver and
//! the sender's epoch.
//!
//! | message | from → to | meaning |
//! |---|---|---|
//! | [`Request`](Msg::Request) | requester → home | "give me `S` (read) / `M` (write)", or renew the lease of the copy I hold |
//! | [`Grant`](Msg::Grant) | home → requester | a copy in `E`, `S` or `M` with the home's value, stamped |
//! | [`Renewed`](Msg::Renewed) | home → requester | keep your copy (and its value), a new lease from the request's send time |
//! | [`Revoke`](Msg::Revoke) | home → holder | invalidate (`to: Invalid`) or recall to shared (`to: Shared`) |
//! | [`RevokeAck`](Msg::RevokeAck) | holder → home | done; carries the data if the holder had `M`/`E` |
//! | [`WriteBack`](Msg::WriteBack) | owner → home | an evicted `M` copy's value |
//! | [`WriteBackAck`](Msg::WriteBackAck) | home → owner | the value is at the home (or no longer wanted) |
//!
//! Stamps tie answers to questions: a requester accepts a `Grant`/`Renewed` only for its
//! current request id (`rid`), and only if it is newer than any revocation of that key it has
//! seen meanwhile; a home accepts a `RevokeAck` only for its current transaction (`tx`).
//! Messages may be lost, delayed, reordered or duplicated; each sender resends until
//! answered (every handler is idempotent).

use super::coherence_vocab::{Epoch, Held, NodeId, Stamp};

/// One message on the wire.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Envelope<K, V> {
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// The sender's epoch when it sent the message; a home drops requests and
    /// acknowledgements of another epoch, a requester drops grants of another epoch.
    pub epoch: Epoch,
    /// The message.
    pub msg: Msg<K, V>,
}

/// What a requester asks its home for.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Want {
    /// A readable copy (`E` or `S`).
    Shared,
    /// The writable copy (`M`).
    Modified,
}

/// What a revoked holder keeps.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum RevokeTo {
    /// Keep a shared copy (a read elsewhere recalls an `M`/`E` copy).
    Shared,
    /// Keep nothing (a write elsewhere, or the home evicting the key).
    Invalid,
}

/// The body of a message. `Option<V>` is a value or nil (the key does not exist).
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Msg<K, V> {
    /// Requester → home: a copy of `key` with at least `want`. `holding` names the copy the
    /// requester still holds (its lease ran out or is about to) by the stamp of its grant:
    /// if the home lists the requester as a holder good enough for `want` *under that very
    /// grant*, the answer is [`Renewed`](Msg::Renewed). (A bare "I hold a copy" is not
    /// enough: the home may have given up on that copy at its lease end and granted the
    /// requester a newer one that was lost; renewing would revive the stale copy.)
    Request {
        /// The key.
        key: K,
        /// The requester's id for this attempt (each resend draws a new one).
        rid: Stamp,
        /// Read or write.
        want: Want,
        /// The grant stamp of the copy the requester still holds (renewal), if any.
        holding: Option<Stamp>,
    },
    /// Home → requester: a copy of `key` in `state` holding `value`.
    Grant {
        /// The key.
        key: K,
        /// The request answered.
        rid: Stamp,
        /// The home's stamp of this grant (above every earlier revocation's).
        gid: Stamp,
        /// `E`, `S` or `M`.
        state: Held,
        /// The home's value (nil: the key does not exist).
        value: Option<V>,
    },
    /// Home → requester: the copy the requester holds stays as it is, under a new lease.
    Renewed {
        /// The key.
        key: K,
        /// The request answered.
        rid: Stamp,
        /// The stamp of the grant renewed (the copy keeps it).
        gid: Stamp,
    },
    /// Home → holder: give up (or downgrade) the copy of `key` granted before `tx`.
    Revoke {
        /// The key.
        key: K,
        /// The home's transaction; only copies granted before it are affected.
        tx: Stamp,
        /// What the holder may keep.
        to: RevokeTo,
    },
    /// Holder → home: the copy is gone (or shared).
    RevokeAck {
        /// The key.
        key: K,
        /// The transaction answered.
        tx: Stamp,
        /// `Some(value)` when the holder had the key `M` or `E` (or an unacknowledged
        /// write-back of it): the latest value. `None` when it held nothing newer than
        /// the home (an `S` copy, or nothing at all).
        data: Option<Option<V>>,
        /// Whether the holder kept a shared copy (recall to `Shared`).
        kept: bool,
        /// The holder's incarnation. An owner answering `data: None` from the incarnation
        /// it was granted in never changed the key (the grant had not reached it, or it
        /// dropped a clean `E` copy); from a newer one, its copy died in a restart.
        incarnation: u64,
    },
    /// Owner → home: the value of an `M` copy this node evicted.
    WriteBack {
        /// The key.
        key: K,
        /// This write-back's id (the acknowledgement echoes it).
        rid: Stamp,
        /// The value written back.
        value: Option<V>,
    },
    /// Home → owner: the write-back `rid` needs no resending.
    WriteBackAck {
        /// The key.
        key: K,
        /// The write-back answered.
        rid: Stamp,
    },
}

impl<K, V> Msg<K, V> {
    /// The key the message is about.
    pub fn key(&self) -> &K {
        match self {
            Msg::Request { key, .. }
            | Msg::Grant { key, .. }
            | Msg::Renewed { key, .. }
            | Msg::Revoke { key, .. }
            | Msg::RevokeAck { key, .. }
            | Msg::WriteBack { key, .. }
            | Msg::WriteBackAck { key, .. } => key,
        }
    }
}
