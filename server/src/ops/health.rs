//! `GET /health`: 200 when this node has a leader for the meta group that it can count on
//! (contract section 7), else 503 with the reason. Both answer a small JSON body:
//!
//! ```json
//! {"status":"ok","node_id":1,"role":"leader","leader_id":1,"term":3}
//! {"status":"unavailable","reason":"no quorum","node_id":3,"role":"leader","leader_id":3,"term":3}
//! ```

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use crate::node::Node;
use conclave_cluster::group_status::role_name;

/// The body of a `/health` answer.
#[derive(Debug, Serialize)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    /// Why the node is unavailable (absent when ok).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// This node's id.
    pub node_id: u64,
    /// Its Raft role in the meta group.
    pub role: &'static str,
    /// The meta group's leader as this node knows it.
    pub leader_id: Option<u64>,
    /// The meta group's term.
    pub term: u64,
}

/// What `/health` answers now.
pub fn check(node: &Node) -> (StatusCode, Health) {
    let (state, leader, term) = {
        let m = node.locks.raft().metrics();
        let m = m.borrow();
        (m.state, m.current_leader, m.current_term)
    };
    let reason = if leader.is_none() {
        Some("no leader for the meta group")
    } else if !node.locks.has_quorum() {
        Some("no quorum")
    } else {
        None
    };
    let status = if reason.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let health = Health {
        status: if reason.is_none() {
            "ok"
        } else {
            "unavailable"
        },
        reason,
        node_id: node.config.id,
        role: role_name(state),
        leader_id: leader,
        term,
    };
    (status, health)
}

/// The `/health` handler.
pub async fn health(State(node): State<Arc<Node>>) -> (StatusCode, Json<Health>) {
    let (status, body) = check(&node);
    (status, Json(body))
}
