//! The replicated lock service: `LOCK.*` on top of Raft group 0.
//!
//! Path of a lock command: the connection parses it ([`crate::commands`]), then
//! [`LockService::execute`] sends it to the leader — itself, or a peer over the
//! cluster channel (`FWD locks`, served through the router as [`SERVICE`]). The leader stamps its clock into a
//! [`LockRequest`] and proposes it (`client_write`); the reply is the state machine's
//! [`LockReply`]. Reads (`LOCK.CHECK`, `LOCK.INFO`) run on the leader after
//! `ensure_linearizable`.
//!
//! A request that must wait (`WAIT`) is *queued* in the replicated table; the client
//! then blocks on the node it is connected to until that node applies the grant of
//! *its* request (raft-store's `waiters`, matched by request id). When its wait runs out a
//! `Cancel` goes through the log so the queue never grants a ghost, and its reply —
//! from state newer than the request — says whether the grant won the race.
//!
//! An error reply means the request never takes effect: an acquire or upgrade whose
//! outcome is unknown when the client is answered (no quorum, timeout, the client gone)
//! is withdrawn through the log with `undo` ([`withdraw`]), retried in the background
//! until it commits, so if the request commits after all, it grants nothing.
//!
//! A leader that has not heard from a majority within twice the election timeout
//! refuses writes at once with `-CLUSTERDOWN no quorum` (it cannot commit them, and an
//! entry it appends could be committed later). With no leader the command retries
//! until `--no-leader-wait`, then fails `-CLUSTERDOWN no raft leader`.

mod acquire;
pub mod driver;
mod route;
pub mod start;
pub mod withdraw;

use std::sync::Arc;
use std::time::Duration;

use conclave_cluster::{Peers, RaftGroup};
use conclave_protocol::{Frame, Parse};
use conclave_raft_store::proposer::{ProposeError, Proposer};
use conclave_raft_store::waiters::Waiters;
use conclave_raft_store::{NodeId, Raft, SharedStateMachine};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use conclave_protocol::blocking::BlockedWait;
pub use conclave_raft_store::proposer::now_ms;
pub use route::{ForwardError, SERVICE};

use crate::commands::{self, LockCommand, LockOutcome};
use crate::machine::{LockOp, LockStats, LockTable};

/// Why a lock command could not be served (also sent across the cluster channel inside
/// [`route::ForwardError`]).
#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceError {
    /// No leader could be reached within `--no-leader-wait`.
    #[error("CLUSTERDOWN no raft leader")]
    NoLeader,
    /// The leader (this node, or the one a forward reached) has not heard from a
    /// majority within twice the election timeout: it cannot commit anything.
    #[error("CLUSTERDOWN no quorum")]
    NoQuorum,
    /// Raft failed in a way retrying will not fix.
    #[error("ERR raft: {0}")]
    Raft(String),
}

/// The lock service of one node.
pub struct LockService {
    id: NodeId,
    group: Arc<RaftGroup<LockTable>>,
    raft: Raft<LockTable>,
    sm: SharedStateMachine<LockTable>,
    peers: Arc<Peers>,
    waiters: Arc<Waiters<u64>>,
    proposer: Proposer<LockTable>,
    no_leader_wait: Duration,
}

impl std::fmt::Debug for LockService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockService")
            .field("id", &self.id)
            .field("group", &self.group.group())
            .finish()
    }
}

impl LockService {
    /// Wraps a started lock group; with no leader a command retries for
    /// `no_leader_wait` (`--no-leader-wait`).
    pub fn new(
        group: Arc<RaftGroup<LockTable>>,
        peers: Arc<Peers>,
        waiters: Arc<Waiters<u64>>,
        no_leader_wait: Duration,
    ) -> LockService {
        let proposer = Proposer::start(group.raft().clone(), no_leader_wait);
        LockService {
            id: group.node_id(),
            raft: group.raft().clone(),
            sm: group.state().clone(),
            group,
            peers,
            waiters,
            proposer,
            no_leader_wait,
        }
    }

    /// The Raft group holding the lock table.
    pub fn group(&self) -> &Arc<RaftGroup<LockTable>> {
        &self.group
    }

    /// See [`RaftGroup::quorum_lost`].
    pub fn quorum_lost(&self) -> bool {
        self.group.quorum_lost()
    }

    /// See [`RaftGroup::has_quorum`].
    pub fn has_quorum(&self) -> bool {
        self.group.has_quorum()
    }

    /// The Raft handle.
    pub fn raft(&self) -> &Raft<LockTable> {
        &self.raft
    }

    /// The clients of the peers' cluster ports.
    pub fn peers(&self) -> &Arc<Peers> {
        &self.peers
    }

    /// The applied state.
    pub fn state(&self) -> &SharedStateMachine<LockTable> {
        &self.sm
    }

    /// The lock table's counters as this node applied them (walks every resource).
    pub fn lock_stats(&self) -> LockStats {
        self.sm.read().machine.stats()
    }

    /// Proposes a write through the batching proposer (for the leader's housekeeping);
    /// refused at once without a quorum.
    pub async fn propose(&self, op: LockOp, within: Duration) -> Result<(), ProposeError> {
        if self.quorum_lost() {
            return Err(ProposeError::NoQuorum);
        }
        self.proposer.propose(op, within).await.map(|_| ())
    }

    /// Clients blocked in a lock wait on this node.
    pub fn blocked_clients(&self) -> usize {
        self.waiters.len()
    }

    /// Executes a `LOCK.*` command for a client; `parser` is the command's declared
    /// parser ([`crate::COMMANDS`]) and `default_ttl` the lease of an acquire without
    /// `TTL` (`lock-default-ttl`, ms).
    pub async fn execute(
        self: &Arc<Self>,
        parser: commands::Parser,
        parse: &mut Parse,
        default_ttl: u64,
    ) -> Frame {
        self.execute_for(parser, parse, default_ttl, &BlockedWait::default())
            .await
    }

    /// [`execute`](Self::execute) for a connection whose blocked acquire `CLIENT
    /// UNBLOCK` may end through `wait` (see [`conclave_protocol::blocking`]).
    pub async fn execute_for(
        self: &Arc<Self>,
        parser: commands::Parser,
        parse: &mut Parse,
        default_ttl: u64,
        wait: &BlockedWait,
    ) -> Frame {
        let mut parsed = match parser(parse, default_ttl) {
            Ok(p) => p,
            Err(e) => return e.to_frame(),
        };
        let result = match &mut parsed.command {
            LockCommand::Write(op) => match op.request_id_mut() {
                Some(rid) => {
                    *rid = acquire::new_request_id();
                    self.acquire(op.clone(), parsed.wait_ms, wait).await
                }
                None => self.write(parsed.command).await,
            },
            _ => self.write(parsed.command).await,
        };
        result.unwrap_or_else(|e| Frame::error(e.to_string()))
    }

    /// Runs a command that cannot grant (release, renew, downgrade, reads).
    async fn write(&self, cmd: LockCommand) -> Result<Frame, ServiceError> {
        Ok(match self.run(cmd).await? {
            LockOutcome::Applied { reply, .. } => commands::reply_frame(&reply),
            LockOutcome::Check(b) => Frame::Integer(b as i64),
            LockOutcome::Info(info) => commands::info_frame(&info),
        })
    }

    /// `INFO locks` fields.
    pub fn info_locks(&self) -> Vec<(String, String)> {
        let s = self.lock_stats();
        vec![
            ("locked_resources".into(), s.locked_resources.to_string()),
            ("lock_holders".into(), s.holders.to_string()),
            ("lock_waiters".into(), s.waiters.to_string()),
            ("lock_grants".into(), s.grants.to_string()),
            ("lock_expiries".into(), s.expiries.to_string()),
            ("lock_deadlocks".into(), s.deadlocks.to_string()),
            (
                "lock_blocked_clients".into(),
                self.waiters.len().to_string(),
            ),
        ]
    }
}
