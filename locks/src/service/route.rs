//! Where a lock command runs: here when this node leads, else forwarded to the leader
//! (`FWD locks <group> <deadline-ms> <json>` on the cluster channel, see
//! `conclave_cluster::wire`), retried through leader changes until `--no-leader-wait`
//! runs out. The lock service registers with the node's cluster router as [`SERVICE`].
//! The retry loop and both halves of `FWD` are `conclave_cluster::leader_route`'s,
//! shared with the meta group; this file says how a lock command runs on the leader.
//!
//! Every failure says whether the command may have been proposed: a refusal before any
//! log saw it (not the leader, no quorum, the sender's deadline passed) needs no
//! withdrawal; a timeout or a connection lost after sending does (see [`super::withdraw`]).

use std::time::Duration;

use bytes::Bytes;
use conclave_cluster::group::BoxFuture;
use conclave_cluster::leader_route::{
    self, encode_reply, propose_failure, read_barrier, Attempt, LeaderService, RouteError,
};
use conclave_cluster::router::ForwardHandler;
use conclave_cluster::{Peers, RaftGroup};
use conclave_raft_store::GroupId;

use super::{now_ms, LockService, ServiceError};
use crate::commands::{InfoWire, LockCommand, LockOutcome};
use crate::machine::LockTable;

/// Why a leader did not answer a forwarded command (`FWD locks`) with an outcome: not
/// the leader, no quorum, expired (nothing proposed), refused for good, or unknown
/// (proposed, not confirmed in time).
pub type ForwardError = leader_route::ForwardError<ServiceError>;

impl RouteError for ServiceError {
    fn no_leader() -> Self {
        ServiceError::NoLeader
    }
    fn no_quorum() -> Self {
        ServiceError::NoQuorum
    }
    fn internal(message: String) -> Self {
        ServiceError::Raft(message)
    }
    fn is_internal(&self) -> bool {
        matches!(self, ServiceError::Raft(_))
    }
}

impl LockService {
    /// Runs a command on the leader, wherever it is, retrying through leader changes
    /// until `--no-leader-wait` runs out.
    pub async fn run(&self, cmd: LockCommand) -> Result<LockOutcome, ServiceError> {
        self.run_tracked(cmd, &mut false).await
    }

    /// [`run`](Self::run), setting `maybe_proposed` when some attempt may have put the
    /// command into a leader's log without this node learning its outcome (a timeout,
    /// a connection lost after sending). A failed command for which it stays false was
    /// never proposed.
    pub(super) async fn run_tracked(
        &self,
        cmd: LockCommand,
        maybe_proposed: &mut bool,
    ) -> Result<LockOutcome, ServiceError> {
        leader_route::run_on_leader(self, &cmd, self.no_leader_wait, maybe_proposed).await
    }

    /// Serves a forwarded command from a peer (`FWD locks`): run here if leader and the
    /// sender still waits (`deadline_ms`, its wall clock). The reply is JSON
    /// `Result<LockOutcome, ForwardError>`.
    pub async fn handle_forward(&self, deadline_ms: u64, body: &[u8]) -> Bytes {
        leader_route::serve_forward(self, deadline_ms, body).await
    }
}

impl LeaderService for LockService {
    type Machine = LockTable;
    type Command = LockCommand;
    type Outcome = LockOutcome;
    type Error = ServiceError;

    const SERVICE: &'static str = SERVICE;

    fn raft_group(&self) -> &RaftGroup<LockTable> {
        &self.group
    }

    fn peer_clients(&self) -> &Peers {
        &self.peers
    }

    /// Runs `cmd` here, as leader: a write through the proposer, a read after a read
    /// barrier.
    async fn run_local(
        &self,
        cmd: &LockCommand,
        left: Duration,
    ) -> Result<LockOutcome, Attempt<ServiceError>> {
        match cmd {
            LockCommand::Write(op) => match self.proposer.propose(op.clone(), left).await {
                Ok((index, applied)) => Ok(LockOutcome::Applied {
                    index,
                    reply: applied.reply,
                }),
                Err(e) => Err(propose_failure(e, self.quorum_lost())),
            },
            LockCommand::Check { resource, token } => {
                read_barrier(&self.group, left).await?;
                Ok(LockOutcome::Check(
                    self.sm.read().machine.check(resource, *token),
                ))
            }
            LockCommand::Info { resource } => {
                read_barrier(&self.group, left).await?;
                Ok(LockOutcome::Info(InfoWire::from(
                    self.sm.read().machine.info(resource, now_ms()),
                )))
            }
        }
    }
}

/// The name the lock service registers under with the cluster router (`FWD locks ...`).
pub const SERVICE: &str = "locks";

/// Forwarded commands arrive through the node's cluster router.
impl ForwardHandler for LockService {
    fn handle(&self, group: GroupId, deadline_ms: u64, body: Bytes) -> BoxFuture<'_, Bytes> {
        Box::pin(async move {
            if group != self.group.group() {
                return encode_reply::<LockService>(&Err(ForwardError::Refused(
                    ServiceError::Raft(format!("no lock group {group} on this node")),
                )));
            }
            self.handle_forward(deadline_ms, &body).await
        })
    }
}
