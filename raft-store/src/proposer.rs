//! Leader-side batching of a group's writes: group commit at the Raft level.
//!
//! openraft 0.9 waits for each `append` to be flushed before it appends the next, so
//! one log entry per client request would cost one fsync per request. Instead every
//! write on the leader goes through the [`Proposer`]: a task takes the first queued
//! request, waits for a free in-flight slot (meanwhile more requests queue up), drains
//! the queue into one [`Batch`] entry stamped with one clock reading, proposes it,
//! and hands each request its own reply. Under load a batch holds every request that
//! arrived during the previous round; a lone request still goes out at once.
//!
//! [`Proposer::propose_all`] submits several operations that must stay together and in
//! order (one connection's pipelined pushes to a shard): they go into one entry, so
//! they commit or fail as one, in the order given.

use std::sync::Arc;
use std::time::Duration;

use std::time::{SystemTime, UNIX_EPOCH};

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::machine::{Batch, Stamped, StateMachine};
use crate::type_config::Raft;

/// The wall clock in ms since the Unix epoch: what the leader stamps on an entry.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Most requests in one entry.
const MAX_BATCH: usize = 1024;
/// Batches proposed but not yet applied at once.
const MAX_IN_FLIGHT: usize = 2;

/// Why a proposal did not produce a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposeError {
    /// This node is not (or no longer) the leader.
    NotLeader,
    /// This node leads but has not heard from a majority lately: nothing was proposed.
    NoQuorum,
    /// No quorum confirmed the entry in time.
    Timeout,
    /// Raft failed otherwise.
    Raft(String),
}

/// The log index of the entry that held the operation, and the operation's result.
pub type Reply<M> = Result<(u64, <M as StateMachine>::Applied), ProposeError>;

/// The log index of the entry that held the operations, and their results in order.
pub type Replies<M> = Result<(u64, Vec<<M as StateMachine>::Applied>), ProposeError>;

/// What waits in the queue: one operation, or several that share one entry.
enum Pending<M: StateMachine> {
    One {
        op: M::Op,
        reply: oneshot::Sender<Reply<M>>,
    },
    All {
        ops: Vec<M::Op>,
        reply: oneshot::Sender<Replies<M>>,
    },
}

impl<M: StateMachine> Pending<M> {
    /// The number of operations it adds to an entry.
    fn len(&self) -> usize {
        match self {
            Pending::One { .. } => 1,
            Pending::All { ops, .. } => ops.len(),
        }
    }
}

/// Where the replies of one [`Pending`] go once its entry is applied.
enum Answer<M: StateMachine> {
    One(oneshot::Sender<Reply<M>>),
    All(usize, oneshot::Sender<Replies<M>>),
}

/// The batching front of `client_write` for a group of machine `M`.
pub struct Proposer<M: StateMachine> {
    tx: mpsc::UnboundedSender<Pending<M>>,
}

impl<M: StateMachine> Clone for Proposer<M> {
    fn clone(&self) -> Self {
        Proposer {
            tx: self.tx.clone(),
        }
    }
}

impl<M: StateMachine> std::fmt::Debug for Proposer<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proposer").finish_non_exhaustive()
    }
}

impl<M: StateMachine> Proposer<M> {
    /// Starts the batching task; each batch waits at most `timeout` for its commit.
    pub fn start(raft: Raft<M>, timeout: Duration) -> Proposer<M> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx, timeout));
        Proposer { tx }
    }

    /// Proposes `op`; returns the log index of its entry and the state machine's reply,
    /// or `Timeout` when none came `within` (the entry may still commit later).
    pub async fn propose(&self, op: M::Op, within: Duration) -> Reply<M> {
        let (reply, rx) = oneshot::channel();
        self.submit(Pending::One { op, reply }, rx, within).await
    }

    /// Proposes `ops` together: they go into one log entry, in this order, so they
    /// commit (or fail) as one. Returns the entry's index and each operation's reply in
    /// order, or `Timeout` when none came `within` (the entry may still commit later).
    pub async fn propose_all(&self, ops: Vec<M::Op>, within: Duration) -> Replies<M> {
        let (reply, rx) = oneshot::channel();
        self.submit(Pending::All { ops, reply }, rx, within).await
    }

    /// Queues `pending` and waits at most `within` for what its entry answers on `rx`.
    async fn submit<R>(
        &self,
        pending: Pending<M>,
        rx: oneshot::Receiver<Result<R, ProposeError>>,
        within: Duration,
    ) -> Result<R, ProposeError> {
        self.tx
            .send(pending)
            .map_err(|_| ProposeError::Raft("proposer stopped".into()))?;
        match tokio::time::timeout(within, rx).await {
            Ok(reply) => {
                reply.unwrap_or_else(|_| Err(ProposeError::Raft("proposer stopped".into())))
            }
            Err(_) => Err(ProposeError::Timeout),
        }
    }
}

async fn run<M: StateMachine>(
    raft: Raft<M>,
    mut rx: mpsc::UnboundedReceiver<Pending<M>>,
    timeout: Duration,
) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // Every queued request up to about MAX_BATCH operations (a `propose_all` is
        // never split, so one may carry the entry past it).
        let mut ops = first.len();
        let mut batch = vec![first];
        while ops < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => {
                    ops += p.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            propose_batch(&raft, batch, timeout).await;
            drop(slot);
        });
    }
}

async fn propose_batch<M: StateMachine>(raft: &Raft<M>, batch: Vec<Pending<M>>, timeout: Duration) {
    let now = now_ms();
    let mut requests = Vec::with_capacity(batch.len());
    let mut answers: Vec<Answer<M>> = Vec::with_capacity(batch.len());
    for p in batch {
        match p {
            Pending::One { op, reply } => {
                requests.push(Stamped { now_ms: now, op });
                answers.push(Answer::One(reply));
            }
            Pending::All { ops, reply } => {
                answers.push(Answer::All(ops.len(), reply));
                requests.extend(ops.into_iter().map(|op| Stamped { now_ms: now, op }));
            }
        }
    }
    let entry = Batch { requests };
    let failure = match tokio::time::timeout(timeout, raft.client_write(entry)).await {
        Ok(Ok(resp)) => {
            let index = resp.log_id.index;
            let missing = || ProposeError::Raft("missing reply in batch".into());
            let mut applied = resp.data.into_iter();
            for answer in answers {
                match answer {
                    Answer::One(reply) => {
                        let _ = reply.send(applied.next().map(|a| (index, a)).ok_or_else(missing));
                    }
                    Answer::All(n, reply) => {
                        let got: Vec<_> = applied.by_ref().take(n).collect();
                        let r = if got.len() == n {
                            Ok((index, got))
                        } else {
                            Err(missing())
                        };
                        let _ = reply.send(r);
                    }
                }
            }
            return;
        }
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
            ProposeError::NotLeader
        }
        Ok(Err(e)) => ProposeError::Raft(e.to_string()),
        Err(_) => ProposeError::Timeout,
    };
    for answer in answers {
        match answer {
            Answer::One(reply) => {
                let _ = reply.send(Err(failure.clone()));
            }
            Answer::All(_, reply) => {
                let _ = reply.send(Err(failure.clone()));
            }
        }
    }
}
