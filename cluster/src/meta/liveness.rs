//! Liveness: the meta leader's verdict on who is up.
//!
//! Evidence: an answer to one of the meta group's own Raft RPCs (the leader's
//! heartbeats, every `--heartbeat-interval`), recorded by the group's network in a
//! [`HeardFrom`] (a response, not a transport failure nor a stopped Raft node). An
//! answer proves the peer's process runs, reads its cluster port and serves the group,
//! which is what the cache ring needs to know; the cluster channel's connection state
//! alone would not (a connection can look healthy while idle).
//!
//! Every `tick` (a quarter of `--node-timeout`, between 20 and 250 ms) the task, while
//! this node leads the meta group:
//!
//! 1. seeds the member table from the Raft membership when they disagree (a node the
//!    table lacks, another cluster address or voter flag: [`MetaOp::Seed`]);
//! 2. finds every member whose state disagrees with the evidence — `down` when not
//!    heard for `--node-timeout`, `up` when heard within it (this node is always up) —
//!    and proposes all of them as *one* [`MetaOp::SetStates`] entry, so one change of
//!    the live set is one entry and one ring epoch.
//!
//! A new leader has heard nobody yet: every member gets a fresh grace period from the
//! moment this node became leader (its term), so an election never marks everybody
//! down at once; a member silent through the whole grace is marked down then. The
//! verdicts live in the log, so a leader change keeps them; the evidence does not, and
//! need not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_raft_store::proposer::now_ms;
use openraft::ServerState;

use super::meta_machine::{MemberState, MetaOp, NewMember, StateChange};
use super::Meta;
use crate::raft_network::HeardFrom;

/// The leader's verdicts for the members it knows: the changes to propose, given when
/// each was last heard (`None`: not since this process started), when this node became
/// leader, and the timeout. This node is always up.
pub fn verdicts(
    me: u64,
    members: &[(u64, MemberState)],
    last_heard: impl Fn(u64) -> Option<Instant>,
    leader_since: Instant,
    now: Instant,
    now_ms: u64,
    timeout: Duration,
) -> Vec<StateChange> {
    members
        .iter()
        .filter_map(|&(id, state)| {
            let last = last_heard(id).map_or(leader_since, |t| t.max(leader_since));
            let silent = now.saturating_duration_since(last);
            let want = if id == me || silent <= timeout {
                MemberState::Up
            } else {
                MemberState::Down
            };
            (want != state).then(|| StateChange {
                id,
                state: want,
                last_heard_ms: if id == me {
                    now_ms
                } else {
                    now_ms.saturating_sub(silent.as_millis() as u64)
                },
            })
        })
        .collect()
}

/// Runs on every node for the life of the meta group; acts while this node leads.
pub async fn run(meta: Arc<Meta>, heard: Arc<HeardFrom>, timeout: Duration) {
    let tick = (timeout / 4).clamp(Duration::from_millis(20), Duration::from_millis(250));
    let me = meta.node_id();
    let metrics = meta.group.raft().metrics();
    // The term this node leads in, and since when.
    let mut leading: Option<(u64, Instant)> = None;
    // The first tick is at once: a fresh leader seeds the table without delay.
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if metrics.has_changed().is_err() {
            return; // the group stopped
        }
        let (state, term, nodes) = {
            let m = metrics.borrow();
            let membership = m.membership_config.membership();
            let voters: Vec<u64> = membership.voter_ids().collect();
            let nodes: Vec<NewMember> = membership
                .nodes()
                .map(|(id, n)| NewMember {
                    id: *id,
                    addr: n.addr.clone(),
                    voter: voters.contains(id),
                })
                .collect();
            (m.state, m.current_term, nodes)
        };
        if state != ServerState::Leader {
            leading = None;
            continue;
        }
        let since = match leading {
            Some((t, since)) if t == term => since,
            _ => {
                let now = Instant::now();
                leading = Some((term, now));
                now
            }
        };
        if meta.group.quorum_lost() {
            continue;
        }
        let (missing, members) = {
            let sm = meta.group.state().read();
            let missing: Vec<NewMember> = nodes
                .into_iter()
                .filter(|n| {
                    sm.machine
                        .member(n.id)
                        .is_none_or(|m| m.addr != n.addr || m.voter != n.voter)
                })
                .collect();
            let members: Vec<(u64, MemberState)> =
                sm.machine.members().map(|m| (m.id, m.state)).collect();
            (missing, members)
        };
        let op = if !missing.is_empty() {
            MetaOp::Seed(missing)
        } else {
            let changes = verdicts(
                me,
                &members,
                |id| heard.last(id),
                since,
                Instant::now(),
                now_ms(),
                timeout,
            );
            if changes.is_empty() {
                continue;
            }
            tracing::info!(?changes, "meta: members' liveness changed");
            MetaOp::SetStates(changes)
        };
        // Awaited, so one verdict is in the log before the next is judged; a failure
        // is judged again on the next tick (a repeated verdict changes nothing).
        if let Err(e) = meta.propose_local(op, timeout).await {
            tracing::debug!(error = %e, "meta: liveness proposal failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(3000);

    #[test]
    fn a_new_leader_gives_everybody_a_grace_period() {
        let start = Instant::now();
        let members = [
            (1, MemberState::Up),
            (2, MemberState::Up),
            (3, MemberState::Up),
        ];
        // Nobody heard, just after the election: nothing changes.
        let at = start + Duration::from_millis(100);
        assert!(verdicts(1, &members, |_| None, start, at, 10_000, T).is_empty());
        // Heard long before the election only: still within the grace.
        let before = start.checked_sub(Duration::from_secs(60));
        assert!(verdicts(1, &members, |_| before, start, at, 10_000, T).is_empty());
        // The grace has run out for 3 (never heard); 2 answered; 1 is this node.
        let later = start + T + Duration::from_millis(1);
        let heard = |id| (id == 2).then_some(later);
        let v = verdicts(1, &members, heard, start, later, 10_000, T);
        assert_eq!(
            v,
            vec![StateChange {
                id: 3,
                state: MemberState::Down,
                last_heard_ms: 10_000 - 3001
            }]
        );
    }

    #[test]
    fn heard_again_is_up_and_this_node_is_always_up() {
        let start = Instant::now();
        let members = [(1, MemberState::Down), (2, MemberState::Down)];
        let now = start + Duration::from_secs(10);
        let v = verdicts(
            1,
            &members,
            |id| (id == 2).then_some(now),
            start,
            now,
            50,
            T,
        );
        assert_eq!(
            v.iter().map(|c| (c.id, c.state)).collect::<Vec<_>>(),
            vec![(1, MemberState::Up), (2, MemberState::Up)]
        );
    }
}
