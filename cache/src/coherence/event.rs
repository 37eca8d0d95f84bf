//! What goes into a [`Node`](super::Node) ([`Event`]) and what comes out ([`Action`]).
//!
//! The machine is *sans-I/O*: the driver (the server, or the model checker) owns sockets,
//! clocks and client connections. It calls `handle(now, event)` and carries out the
//! returned actions: sends each [`Action::Send`] on the cluster channel (in any order, in
//! parallel, batched; a lost message is fine), answers each [`Action::Reply`], and calls
//! `handle(now, Event::Tick)` again at or after the time of the last [`Action::SetTimer`].

use super::coherence_vocab::ClientId;
use super::message::Envelope;

/// An input to the machine.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event<K, V, R> {
    /// A client reads `key` on this node. Answered with [`Reply::Value`].
    Read {
        /// Who to answer.
        client: ClientId,
        /// The key.
        key: K,
    },
    /// A client writes one or several keys atomically (`SET`, `MSET`, `DEL k1 k2`): each
    /// `(key, value)` sets the key, `None` deletes it; a key named twice takes the last
    /// value (as `MSET` does). Answered with [`Reply::Done`] once every key is held `M`
    /// here and all values are in place at once.
    Write {
        /// Who to answer.
        client: ClientId,
        /// The keys and their new values.
        writes: Vec<(K, Option<V>)>,
    },
    /// A client takes `M` on `keys` to run a command on them itself (a read-modify-write
    /// such as `INCR`, or any write the driver executes on its own store): each key is
    /// taken in key order and held as [`Write`](Event::Write) holds it. Answered with
    /// [`Reply::Held`] once every key is held `M`/`E` under a lease; the driver then checks
    /// [`Node::holds`](super::Node::holds), runs the command and ends the hold with
    /// [`Release`](Event::Release). If a lease runs out first the keys are taken again and
    /// `Held` comes again.
    Acquire {
        /// Who to answer.
        client: ClientId,
        /// The keys.
        keys: Vec<K>,
    },
    /// Ends the hold of an [`Acquire`](Event::Acquire): the copies of the acquired keys
    /// take these values (`None`: the key is deleted) and become `M`. Answered with
    /// [`Reply::Done`]. Ignored unless [`Node::holds`](super::Node::holds) is true for
    /// `client` now; a key not acquired is ignored.
    Release {
        /// The client of the `Acquire`.
        client: ClientId,
        /// The new values of the acquired keys.
        writes: Vec<(K, Option<V>)>,
    },
    /// Renews this node's copy of `key` ahead of its lease end (a driver sends it when a
    /// copy it serves has less than half its lease left, so hot keys never wait for a
    /// renewal): the same `Request` naming the copy's grant as a renewal after the lease
    /// end. Ignored without a copy under lease, or with a request for the key out.
    Renew {
        /// The key.
        key: K,
    },
    /// A message from another node (or from this node to itself, though the machine
    /// delivers those itself).
    Receive(Envelope<K, V>),
    /// Time has passed: resend what is unanswered, give up on copies whose lease ran out.
    Tick,
    /// This node drops its copy of `key` (memory pressure): silent for `S`/`E`, `M` is
    /// written back first. Ignored while a multi-key write here holds the key.
    Evict {
        /// The key.
        key: K,
    },
    /// As the key's home, drop `key` (eviction or TTL expiry at the home): every copy is
    /// invalidated first, then the key is gone (nil) cluster-wide. Ignored on a node that
    /// is not the key's home or while a transaction on the key is under way.
    HomeEvict {
        /// The key.
        key: K,
    },
    /// The meta group committed a new ring: copies whose home moved are dropped, and
    /// keys this node now homes are not granted until every lease an older home may have
    /// granted has run out (`lease_ms + margin_ms + epoch_spread_ms` after this event).
    /// Ignored unless its epoch is newer than the node's.
    EpochChange(R),
    /// The driver confirmed with the control plane (the meta group's leader) that this
    /// node's ring was the latest at some time `s`, and `until` is `s` plus
    /// [`Config::epoch_spread_ms`](super::Config::epoch_spread_ms): as a home, this node
    /// grants nothing at or after `until` unless a later confirmation moves it (the
    /// control plane's lease that keeps the spread assumption true: a node that cannot
    /// learn of a new epoch stops granting). Before the first confirmation a node made
    /// with [`Node::fenced`](super::Node::fenced) grants nothing; `until` never moves back.
    RingConfirmed {
        /// The end of this node's right to grant (its own clock, ms).
        until: u64,
    },
    /// A waiting client gave up (its deadline passed, or its connection closed): it gets
    /// no answer, and a write of its not yet applied has no effect.
    Cancel {
        /// The client.
        client: ClientId,
    },
    /// The node restarted with empty memory (same effect as a fresh machine made with
    /// [`Node::restart`](super::Node::restart)): `incarnation` must exceed every earlier one of
    /// this node. Clients waiting on the old incarnation get no answer (their connections
    /// died with it).
    Restart {
        /// The new incarnation.
        incarnation: u64,
    },
}

/// An answer to a client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reply<V> {
    /// The value read (nil: the key does not exist).
    Value(Option<V>),
    /// The write is done and visible cluster-wide.
    Done,
    /// Every key of an [`Event::Acquire`] is held here `M`/`E` under a lease.
    Held,
}

/// An output of the machine.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action<K, V> {
    /// Send this message to `envelope.to`.
    Send(Envelope<K, V>),
    /// Answer a client.
    Reply {
        /// The client.
        client: ClientId,
        /// The answer.
        reply: Reply<V>,
    },
    /// This node now holds a granted copy of `key` with this value (nil: the key does
    /// not exist): a driver that keeps its own store of the copies installs it there.
    Install {
        /// The key.
        key: K,
        /// The granted value.
        value: Option<V>,
    },
    /// This node's copy of `key` is gone (revoked, or its home moved): a driver that
    /// keeps its own store of the copies may drop it there.
    Drop {
        /// The key.
        key: K,
    },
    /// Call `handle(Event::Tick)` at or after this time (ms); supersedes earlier timers.
    SetTimer(u64),
    /// The latest value of `key` could not be saved and is gone (its `M` holder died or
    /// was cut off for a lease, its home moved or evicted it): later reads answer nil.
    /// For counters and logs; the driver has nothing to do.
    Forgot {
        /// The key.
        key: K,
    },
}
