//! Cache coherence across the cluster: directory-based MESI with leases (contract 2.1).
//!
//! Every node serves the whole keyspace from copies in its own memory; each key's *home*
//! keeps a directory entry saying who holds a copy, and in which state, so that a write
//! anywhere is seen everywhere. This module is the protocol alone, as a deterministic,
//! *sans-I/O* state machine: [`Node::handle`] takes an [`Event`] (a client read or write, a
//! message, a tick of the clock, an eviction, an epoch change, a restart) and the current
//! time, and returns [`Action`]s (send a message, reply to a client, set a timer). It has no
//! sockets, clocks or tasks; the server drives it over the cluster channel, and the model
//! checker in `check/` drives the very same code over every interleaving of a small cluster.
//!
//! # Sources
//!
//! - K. Li and P. Hudak, *Memory Coherence in Shared Virtual Memory Systems*, ACM TOCS 7(4),
//!   1989 (IVY): the fixed distributed manager (here: the key's home), the owner, the copy
//!   set, and the rule that a write invalidates every copy **and waits for every
//!   acknowledgement** before the writer proceeds.
//! - C. Gray and D. Cheriton, *Leases: An Efficient Fault-Tolerant Mechanism for Distributed
//!   File Cache Consistency*, SOSP 1989: every copy is held under a lease; a holder stops
//!   using it when the lease ends, so a server that cannot reach a holder waits the lease
//!   out and proceeds; a restarted server waits one lease before granting; clocks need only
//!   bounded drift (ε, here [`Config::margin_ms`]).
//! - MESI states and the transient-state discipline of directory protocols as in D. Sorin,
//!   M. Hill and D. Wood, *A Primer on Memory Consistency and Cache Coherence*, ch. 8.
//!
//! # States (per node, per key)
//!
//! | state | meaning | may read | may write |
//! |---|---|---|---|
//! | `M` | the only copy, newer than the home's value | yes (lease) | yes (lease) |
//! | `E` | the only copy, equal to the home's | yes (lease) | yes: becomes `M` silently |
//! | `S` | read-only, others may hold it too | yes (lease) | no: ask the home for `M` |
//! | `I` | no copy | no: ask the home for `S` | no: ask the home for `M` |
//!
//! The directory entry at the home: the value (current unless someone holds `M`), the
//! *owner* (`M` or `E`: the upgrade is silent, so the home does not know which), the
//! *sharers* with the end of their leases, at most one transaction under way, and the
//! requests queued behind it.
//!
//! # Messages ([`Msg`], each in an [`Envelope`] with the sender's epoch)
//!
//! `Request{want: Shared|Modified, holding}` → `Grant{E|S|M, value}` or `Renewed`;
//! `Revoke{to: Shared|Invalid}` → `RevokeAck{data, kept}`; `WriteBack{value}` →
//! `WriteBackAck`.
//!
//! # Transitions
//!
//! | event | at | the protocol does |
//! |---|---|---|
//! | read, copy under lease | requester | answer locally, no message |
//! | read miss | requester → home | no owner: `E` if nobody else holds it, else `S`; an owner: recall it to `S` (data comes back), then grant `S` |
//! | write, `M`/`E` under lease | requester | write locally (`E` → `M`), no message |
//! | write from `S`/`I` | requester → home | revoke every other copy in parallel, **wait for every acknowledgement**, grant `M` |
//! | copy past its lease | requester → home | `Request{holding: its grant's stamp}`: listed under that grant → `Renewed` (no data); else a fresh grant |
//! | revocation not acknowledged | home | resend every `retry_ms`; after the holder's lease + margin (an owner: and at least a lease after the revocation), go on without it (an owner's value is then *forgotten*) |
//! | evict `S`/`E` | requester | drop silently |
//! | evict `M` | requester → home | `WriteBack`, kept (not served) until acknowledged |
//! | home evicts or expires the key | home | revoke every copy, then drop the key (inclusion) |
//! | multi-key write (`MSET`, `DEL k…`) | requester | take `M` on each key in key order, hold them (revocations wait), write all at once |
//! | restart | node | new incarnation, empty memory; as home grants nothing for a lease + margin |
//! | owner restarted | home | a request or acknowledgement from a newer incarnation: its `M` value is forgotten |
//! | epoch change | every node | copies whose home moved are dropped; a home drops its moved entries; a home grants a key that moved to it only a lease + margin + the adoption spread after adopting the epoch; messages of another epoch are dropped |
//! | ring confirmed | every node | a fenced node grants (and renews) only before the confirmation's end; a transaction that finishes after it grants nothing and the requester asks again |
//!
//! Answers are matched to questions by stamps ([`Stamp`], `(incarnation, counter)`): a
//! requester takes a grant only for its current request id and only if it is newer than
//! every revocation of that key it answered meanwhile (a revocation can overtake the grant
//! it revokes); a home takes an acknowledgement only for its current transaction.
//!
//! # Guarantees (checked in `check/`)
//!
//! - Linearizable per key, and multi-key writes atomic: once a write's reply is sent, no node
//!   serves an older value.
//! - At most one `M`/`E` copy under lease per key, and no `S` copy beside it.
//! - No copy is served past its lease.
//! - *A cache may forget; it never lies*: when an `M` holder dies or is cut off for a lease,
//!   or a key's home moves, restarts or evicts it, the key may read nil afterwards
//!   ([`Action::Forgot`] reports it), never an older value.
//!
//! # Assumptions the driver must keep
//!
//! - Clock rates of nodes differ by at most `margin_ms` over a lease; time never goes back.
//! - Incarnations grow across restarts of a node ([`Node::restart`]); a node that may have
//!   been a home in the current epoch starts with `restart`, never `new`.
//! - Every node adopts a new epoch within [`Config::epoch_spread_ms`] of the first node that
//!   adopts it, or stops granting (the control plane's own lease). The model checker found
//!   that "within a lease" is not enough when the fence is only a lease: a lagging old home
//!   keeps granting fresh leases to a lagging reader. A machine made [`Node::fenced`] keeps
//!   the "or stops granting" half itself: it grants only before the `until` of the last
//!   [`Event::RingConfirmed`], which the driver sends after reading the ring linearizably
//!   from the meta group (a node lagging behind a committed epoch cannot confirm without
//!   learning it). The first ring a machine adopts after starting with none (epoch 0)
//!   fences every key like a moved-in one.
//! - Messages may be lost, delayed, reordered or duplicated; nothing else (no forgery).

mod coherence_vocab;
mod deadlines;
mod event;
mod home;
mod keymap;
mod message;
mod node;
mod requester;

#[cfg(test)]
mod check;
#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) use coherence_vocab::Bug;
pub use coherence_vocab::{ClientId, Config, Epoch, Held, NodeId, Ring, Stamp, Stats, Time};
pub use event::{Action, Event, Reply};
pub use home::DirView;
pub use message::{Envelope, Msg, RevokeTo, Want};
pub use node::Node;
