//! The queue service's background work.
//!
//! - **Per shard this node leads** (the machine never reads a clock, so time-driven
//!   changes are proposed by the leader like any write): on each new term, `Configure`
//!   when the parameters in force differ from this node's `--queue-*`; then `Tick`
//!   whenever the earliest visibility timeout, delay or `BLOCK` has run out, so blocked
//!   reads are answered and dead letters appear without waiting for traffic.
//! - **Withdrawals and give-backs**: `Cancel` of reads whose clients stopped waiting,
//!   `Unread` of messages answered to nobody, and at start `CancelOrigin` of the reads
//!   queued by this node's previous process — each retried until it commits.
//! - The `INFO queues` rates, sampled once a second.

use std::sync::Arc;
use std::time::Duration;

use conclave_raft_store::proposer::now_ms;
use openraft::ServerState;
use tokio::sync::{mpsc, watch};
use tracing::debug;

use super::route::Forwarded;
use super::start::Started;
use super::QueueService;
use crate::commands::QueueCommand;
use crate::machine::QueueOp;

/// How often a shard's leader looks at its deadlines (the precision of visibility
/// timeouts, delays and `BLOCK`, beyond the commit of the tick).
const TICK: Duration = Duration::from_millis(10);

/// Runs until `shutdown` flips.
pub async fn run(started: Started, shutdown: watch::Receiver<bool>) {
    let Started {
        service,
        giveback,
        previous_origin,
    } = started;
    for shard in 0..service.shard_count() {
        if service.shards[shard as usize].local.is_some() {
            tokio::spawn(lead(service.clone(), shard, shutdown.clone()));
        }
        if let Some(origin) = previous_origin {
            tokio::spawn(propose_until_committed(
                service.clone(),
                shard,
                QueueOp::CancelOrigin { origin },
                shutdown.clone(),
            ));
        }
    }
    tokio::spawn(give_back(service.clone(), giveback, shutdown.clone()));
    let mut shutdown = shutdown;
    let mut every_second = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = every_second.tick() => service.sample_rates(),
            _ = shutdown.changed() => return,
        }
    }
}

/// The leader's housekeeping of one shard.
async fn lead(service: Arc<QueueService>, shard: u32, mut shutdown: watch::Receiver<bool>) {
    let Some(local) = &service.shards[shard as usize].local else {
        return;
    };
    let mut configured_term: Option<u64> = None;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Changes with the role and vote only (not with every applied entry).
    let mut role = local.group.raft().server_metrics();
    loop {
        if role.borrow_and_update().state != ServerState::Leader {
            // A follower has nothing to propose: sleep until its role changes rather than
            // waking every tick (a node replicates every shard; it leads about a third).
            configured_term = None;
            tokio::select! {
                changed = role.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
            continue;
        }
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let (state, term) = {
            let m = local.group.raft().metrics();
            let m = m.borrow();
            (m.state, m.current_term)
        };
        if state != ServerState::Leader || local.group.quorum_lost() {
            configured_term = None;
            continue;
        }
        if configured_term != Some(term) {
            let differs = local.group.state().read().machine.config() != &service.config;
            if !differs || propose(local, QueueOp::Configure(service.config.clone())).await {
                configured_term = Some(term);
            }
            continue;
        }
        let due = local.group.state().read().machine.next_deadline();
        if due.is_some_and(|d| d <= now_ms()) {
            propose(local, QueueOp::Tick).await;
        }
    }
}

async fn propose(local: &super::LocalShard, op: QueueOp) -> bool {
    match local.proposer.propose(op, Duration::from_secs(2)).await {
        Ok(_) => true,
        Err(e) => {
            debug!(error = ?e, "queue housekeeping proposal failed");
            false
        }
    }
}

/// Proposes the withdrawals and give-backs of reads nobody waits for.
async fn give_back(
    service: Arc<QueueService>,
    mut rx: mpsc::UnboundedReceiver<(u32, QueueOp)>,
    shutdown: watch::Receiver<bool>,
) {
    while let Some((shard, op)) = rx.recv().await {
        tokio::spawn(propose_until_committed(
            service.clone(),
            shard,
            op,
            shutdown.clone(),
        ));
    }
}

/// Runs `op` on `shard`'s leader until it commits (every op sent here is harmless to
/// apply twice) or the node shuts down.
async fn propose_until_committed(
    service: Arc<QueueService>,
    shard: u32,
    op: QueueOp,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut pause = Duration::from_millis(50);
    loop {
        let cmd = QueueCommand::Write(op.clone());
        match service.run(shard, Forwarded::now(cmd)).await {
            Ok(_) => return,
            Err(e) => debug!(shard, error = %e, "queue withdrawal not committed yet; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}
