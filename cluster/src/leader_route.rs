//! Run a command on its group's leader, wherever that is: here when this node leads,
//! else forwarded to the leader (`FWD <service> <group> <deadline-ms> <body>` on the
//! cluster channel, see [`crate::wire`]), retried through leader changes until the
//! caller's wait (`--no-leader-wait`) runs out. Any service whose commands must run on
//! a Raft group's leader implements [`LeaderService`] and gets both halves: the sender
//! ([`run_on_leader`]) and the leader's side of `FWD` ([`serve_forward`]). The lock
//! service and the meta group use it (and queue shards will).
//!
//! Every failure says whether the command may have been proposed: a refusal before any
//! log saw it (not the leader, no quorum, the sender's deadline passed) is
//! [`Attempt::Retry`]/[`Attempt::Fail`]; a timeout or a connection lost after sending is
//! `*Unknown` and sets the caller's `maybe_proposed` (the lock service then withdraws
//! the request). Body and reply of `FWD` are JSON: the service's command, and
//! `Result<Outcome, ForwardError<Error>>`.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use conclave_raft_store::proposer::{now_ms, ProposeError};
use conclave_raft_store::StateMachine;
use openraft::error::RaftError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::debug;

use crate::group::RaftGroup;
use crate::peer::PeerError;
use crate::Peers;

/// How long one forwarding attempt may take before the leader is looked up again: a
/// paused or cut-off leader never answers, and by then the metrics usually name its
/// successor.
pub const FORWARD_ATTEMPT: Duration = Duration::from_millis(1000);

/// The errors a routed service answers with (they cross the wire inside
/// [`ForwardError`], so they are serializable).
pub trait RouteError:
    Clone + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// No leader could be reached within the wait (`-CLUSTERDOWN no raft leader`).
    fn no_leader() -> Self;
    /// The leader has not heard from a majority lately (`-CLUSTERDOWN no quorum`).
    fn no_quorum() -> Self;
    /// Raft or the channel failed in a way retrying will not fix.
    fn internal(message: String) -> Self;
    /// Whether this is an [`internal`](Self::internal) failure (not worth a retry even
    /// when its outcome is unknown).
    fn is_internal(&self) -> bool;
}

/// One attempt's failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt<E> {
    /// Nothing was proposed (not the leader, leader moved): try again.
    Retry,
    /// The leader reached has no quorum and proposed nothing: try again.
    RetryNoQuorum,
    /// The command may have been proposed, its outcome is unknown: try again (the
    /// service makes a repeat harmless).
    RetryUnknown(E),
    /// Give up; nothing was proposed.
    Fail(E),
    /// Give up; the command may have been proposed.
    FailUnknown(E),
}

/// Why a leader did not answer a forwarded command with an outcome.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum ForwardError<E> {
    /// Not the leader (any more): nothing was proposed; ask the new one.
    NotLeader,
    /// The leader has not heard from a majority lately: nothing was proposed.
    NoQuorum,
    /// The sender's deadline had passed when the command arrived: nothing was proposed.
    Expired,
    /// Refused before proposing, for good.
    Refused(E),
    /// Proposed, but not confirmed in time: it may still take effect.
    Unknown(E),
}

/// A service whose commands run on the leader of one Raft group.
pub trait LeaderService: Send + Sync {
    /// The group's machine.
    type Machine: StateMachine;
    /// A command (the body of `FWD`).
    type Command: Serialize + DeserializeOwned + Send + Sync;
    /// Its outcome.
    type Outcome: Serialize + DeserializeOwned + Send;
    /// Its error.
    type Error: RouteError;

    /// The name the service registers under with the router (`FWD <name> ...`).
    const SERVICE: &'static str;

    /// The group the commands run on.
    fn raft_group(&self) -> &RaftGroup<Self::Machine>;
    /// The clients of the peers' cluster ports.
    fn peer_clients(&self) -> &Peers;
    /// Runs `cmd` here, as leader, within `left`.
    fn run_local(
        &self,
        cmd: &Self::Command,
        left: Duration,
    ) -> impl Future<Output = Result<Self::Outcome, Attempt<Self::Error>>> + Send;
}

/// Maps a proposer's failure to an attempt's: `NotLeader` proposed nothing; a timeout
/// may still commit (reported as no quorum when this leader has lost its majority).
pub fn propose_failure<E: RouteError>(e: ProposeError, quorum_lost: bool) -> Attempt<E> {
    match e {
        ProposeError::NotLeader => Attempt::Retry,
        ProposeError::NoQuorum => Attempt::Fail(E::no_quorum()),
        ProposeError::Timeout if quorum_lost => Attempt::FailUnknown(E::no_quorum()),
        ProposeError::Timeout => Attempt::FailUnknown(E::no_leader()),
        ProposeError::Raft(e) => Attempt::FailUnknown(E::internal(e)),
    }
}

/// Confirms leadership with a quorum (`ensure_linearizable`) and waits for the state
/// machine to catch up, within `left`: the barrier of a linearizable read.
pub async fn read_barrier<M: StateMachine, E: RouteError>(
    group: &RaftGroup<M>,
    left: Duration,
) -> Result<(), Attempt<E>> {
    match tokio::time::timeout(left, group.raft().ensure_linearizable()).await {
        Err(_) => Err(Attempt::Fail(E::no_leader())),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(RaftError::APIError(_))) => Err(Attempt::Retry),
        Ok(Err(e)) => Err(Attempt::Fail(E::internal(e.to_string()))),
    }
}

/// Runs `cmd` on the leader of the service's group, wherever it is, retrying through
/// leader changes for `wait`; sets `maybe_proposed` when some attempt may have put the
/// command into a leader's log without this node learning its outcome (a timeout, a
/// connection lost after sending). A failed command for which it stays false was never
/// proposed. When the wait runs out the error is no quorum if a leader said so, else no
/// leader.
pub async fn run_on_leader<S: LeaderService>(
    svc: &S,
    cmd: &S::Command,
    wait: Duration,
    maybe_proposed: &mut bool,
) -> Result<S::Outcome, S::Error> {
    let group = svc.raft_group();
    let me = group.node_id();
    let deadline = Instant::now() + wait;
    let mut metrics = group.raft().metrics();
    let mut failure = S::Error::no_leader();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(failure);
        }
        let (leader, addr) = {
            let m = metrics.borrow();
            let leader = m.current_leader;
            let addr = leader.and_then(|l| {
                m.membership_config
                    .membership()
                    .get_node(&l)
                    .map(|n| n.addr.clone())
            });
            (leader, addr)
        };
        let attempt = match (leader, addr) {
            // Cut off from the majority: refuse at once rather than append an entry
            // that cannot commit now and might commit later.
            (Some(l), _) if l == me && group.quorum_lost() => return Err(S::Error::no_quorum()),
            (Some(l), _) if l == me => svc.run_local(cmd, left).await,
            (Some(_), Some(addr)) => forward(svc, &addr, cmd, left).await,
            (Some(_), None) => Err(Attempt::Retry),
            (None, _) => {
                let _ = tokio::time::timeout(left, metrics.changed()).await;
                continue;
            }
        };
        match attempt {
            Ok(outcome) => return Ok(outcome),
            Err(Attempt::Retry) => {}
            Err(Attempt::RetryNoQuorum) => failure = S::Error::no_quorum(),
            Err(Attempt::RetryUnknown(e)) => {
                *maybe_proposed = true;
                if e == S::Error::no_quorum() {
                    failure = e;
                }
            }
            Err(Attempt::Fail(e)) => return Err(e),
            Err(Attempt::FailUnknown(e)) => {
                *maybe_proposed = true;
                return Err(e);
            }
        }
        let pause = if leader == Some(me) { 10 } else { 20 };
        tokio::time::sleep(Duration::from_millis(pause).min(left)).await;
    }
}

/// Sends `cmd` to the leader at `addr`.
async fn forward<S: LeaderService>(
    svc: &S,
    addr: &str,
    cmd: &S::Command,
    left: Duration,
) -> Result<S::Outcome, Attempt<S::Error>> {
    let body =
        serde_json::to_vec(cmd).map_err(|e| Attempt::Fail(S::Error::internal(e.to_string())))?;
    let attempt = left.min(FORWARD_ATTEMPT);
    // The leader drops a request that reaches it after this: a request stuck in a cut
    // connection must not be applied long after its client was told CLUSTERDOWN.
    let deadline = now_ms() + attempt.as_millis() as u64;
    let reply = svc
        .peer_clients()
        .client(addr)
        .forward(
            S::SERVICE,
            svc.raft_group().group(),
            deadline,
            &body,
            attempt,
        )
        .await;
    match reply {
        Ok(reply) => {
            match serde_json::from_slice::<Result<S::Outcome, ForwardError<S::Error>>>(&reply) {
                Ok(Ok(outcome)) => Ok(outcome),
                Ok(Err(ForwardError::NotLeader | ForwardError::Expired)) => Err(Attempt::Retry),
                Ok(Err(ForwardError::NoQuorum)) => Err(Attempt::RetryNoQuorum),
                Ok(Err(ForwardError::Refused(e))) => Err(Attempt::Fail(e)),
                Ok(Err(ForwardError::Unknown(e))) if e.is_internal() => {
                    Err(Attempt::FailUnknown(e))
                }
                Ok(Err(ForwardError::Unknown(e))) => Err(Attempt::RetryUnknown(e)),
                Err(e) => Err(Attempt::FailUnknown(S::Error::internal(e.to_string()))),
            }
        }
        // Never sent, or refused by the peer's cluster listener.
        Err(e @ (PeerError::Unreachable(..) | PeerError::Remote(_))) => {
            debug!(service = S::SERVICE, error = %e, "forward to leader failed; retrying");
            Err(Attempt::Retry)
        }
        // Sent, perhaps received: the outcome is unknown.
        Err(PeerError::Timeout(_)) if attempt >= left => {
            Err(Attempt::FailUnknown(S::Error::no_leader()))
        }
        Err(e) => {
            debug!(service = S::SERVICE, error = %e, "forward to leader failed; retrying");
            Err(Attempt::RetryUnknown(S::Error::no_leader()))
        }
    }
}

/// Serves a forwarded command from a peer (`FWD <service>`): runs it here if this node
/// leads, has its quorum, and the sender still waits (`deadline_ms`, its wall clock).
/// The reply is JSON `Result<Outcome, ForwardError<Error>>`.
pub async fn serve_forward<S: LeaderService>(svc: &S, deadline_ms: u64, body: &[u8]) -> Bytes {
    let group = svc.raft_group();
    let result = match serde_json::from_slice::<S::Command>(body) {
        Err(e) => Err(ForwardError::Refused(S::Error::internal(format!(
            "bad forwarded command: {e}"
        )))),
        Ok(_) if now_ms() > deadline_ms => Err(ForwardError::Expired),
        Ok(_) if group.raft().metrics().borrow().current_leader != Some(group.node_id()) => {
            Err(ForwardError::NotLeader)
        }
        Ok(_) if group.quorum_lost() => Err(ForwardError::NoQuorum),
        Ok(cmd) => {
            // Answer within the sender's budget: it stops waiting at the deadline.
            let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms()));
            svc.run_local(&cmd, left).await.map_err(|a| match a {
                Attempt::Retry => ForwardError::NotLeader,
                Attempt::RetryNoQuorum => ForwardError::NoQuorum,
                Attempt::Fail(e) => ForwardError::Refused(e),
                Attempt::RetryUnknown(e) | Attempt::FailUnknown(e) => ForwardError::Unknown(e),
            })
        }
    };
    encode_reply::<S>(&result)
}

/// The JSON reply of `FWD`, as [`serve_forward`] writes it (for a service's own
/// refusals, such as a group it does not host).
pub fn encode_reply<S: LeaderService>(
    result: &Result<S::Outcome, ForwardError<S::Error>>,
) -> Bytes {
    Bytes::from(serde_json::to_vec(result).unwrap_or_default())
}
