//! `RAFT.STATUS` and `INFO raft` of a hosted group.

use conclave_protocol::Frame;
use openraft::ServerState;

use crate::directory::Directory;
use crate::group::HostedGroup;

/// The role name of a Raft server state.
pub fn role_name(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

/// The `RAFT.STATUS` map (contract section 4), plus `quorum`: as leader, whether a
/// majority acknowledged it within twice the election timeout; as follower, whether a
/// leader's `AppendEntries` reached it within that time. Each member is `id`, `addr`
/// (cluster address), `client_addr` (the address its clients use, from `directory`;
/// null until that member has introduced itself on the cluster channel) and `voter`.
pub async fn raft_status(service: &dyn HostedGroup, directory: &Directory) -> Frame {
    let m = service.metrics();
    let committed = service.committed_index().await;
    let membership = m.membership_config.membership();
    let voters: Vec<u64> = membership.voter_ids().collect();
    let members = membership
        .nodes()
        .map(|(id, node)| {
            Frame::Map(vec![
                (Frame::bulk_static("id"), Frame::Integer(*id as i64)),
                (
                    Frame::bulk_static("addr"),
                    Frame::bulk_string(node.addr.clone()),
                ),
                (
                    Frame::bulk_static("client_addr"),
                    directory
                        .client_addr(*id)
                        .map_or(Frame::Null, Frame::bulk_string),
                ),
                (
                    Frame::bulk_static("voter"),
                    Frame::Boolean(voters.contains(id)),
                ),
            ])
        })
        .collect();
    Frame::Map(vec![
        (Frame::bulk_static("node_id"), Frame::Integer(m.id as i64)),
        (
            Frame::bulk_static("role"),
            Frame::bulk_static(role_name(m.state)),
        ),
        (
            Frame::bulk_static("term"),
            Frame::Integer(m.current_term as i64),
        ),
        (
            Frame::bulk_static("leader_id"),
            m.current_leader
                .map(|l| Frame::Integer(l as i64))
                .unwrap_or(Frame::Null),
        ),
        (
            Frame::bulk_static("commit_index"),
            Frame::Integer(committed.map(|c| c as i64).unwrap_or(0)),
        ),
        (
            Frame::bulk_static("applied_index"),
            Frame::Integer(m.last_applied.map(|l| l.index as i64).unwrap_or(0)),
        ),
        (Frame::bulk_static("members"), Frame::Array(members)),
        (
            Frame::bulk_static("quorum"),
            Frame::Boolean(service.has_quorum()),
        ),
    ])
}

/// `INFO raft` fields.
pub fn info_raft(service: &dyn HostedGroup) -> Vec<(String, String)> {
    let m = service.metrics();
    let idx = |l: Option<u64>| l.map(|i| i.to_string()).unwrap_or_else(|| "0".into());
    vec![
        ("raft_node_id".into(), m.id.to_string()),
        ("raft_role".into(), role_name(m.state).into()),
        ("raft_term".into(), m.current_term.to_string()),
        (
            "raft_leader_id".into(),
            m.current_leader.map(|l| l.to_string()).unwrap_or_default(),
        ),
        ("raft_last_log_index".into(), idx(m.last_log_index)),
        (
            "raft_applied_index".into(),
            idx(m.last_applied.map(|l| l.index)),
        ),
        (
            "raft_snapshot_index".into(),
            idx(m.snapshot.map(|l| l.index)),
        ),
        ("raft_purged_index".into(), idx(m.purged.map(|l| l.index))),
        (
            "raft_members".into(),
            m.membership_config.membership().nodes().count().to_string(),
        ),
        (
            "raft_quorum".into(),
            if service.has_quorum() { "yes" } else { "no" }.into(),
        ),
        (
            "raft_millis_since_quorum_ack".into(),
            m.millis_since_quorum_ack
                .map(|v| v.to_string())
                .unwrap_or_default(),
        ),
    ]
}
