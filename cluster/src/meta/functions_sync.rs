//! Making a function library change visible on every live node before its command
//! replies: after the change is applied on the meta leader and on the node that took the
//! command, that node asks every other `up` member (`FWD meta-functions 1 <deadline>
//! <version>`) to answer once it has applied that version of the libraries. Each
//! waits for its own meta group to apply it (bounded by the sender's deadline), so
//! `FCALL` of a library loaded, replaced or deleted on one node gives the new answer on
//! every node once `FUNCTION LOAD|DELETE|FLUSH|RESTORE` has replied. A member that is
//! down or slower than the bound is not waited for past it; it catches up from the log
//! like any follower.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use conclave_raft_store::proposer::now_ms;
use conclave_raft_store::{GroupId, META_GROUP};

use super::{MemberState, Meta};
use crate::group::BoxFuture;
use crate::router::ForwardHandler;

/// The service name nodes answer function-version waits under.
pub const SYNC_SERVICE: &str = "meta-functions";

/// Answers `FWD meta-functions`: `1` once this node applied the asked version, `0` if
/// the sender's deadline passed first.
pub struct FunctionsSync(pub Arc<Meta>);

impl ForwardHandler for FunctionsSync {
    fn handle(&self, _group: GroupId, deadline_ms: u64, body: Bytes) -> BoxFuture<'_, Bytes> {
        Box::pin(async move {
            let version = std::str::from_utf8(&body)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms()));
            let done = self.0.wait_functions_within(version, left).await;
            Bytes::from_static(if done { b"1" } else { b"0" })
        })
    }
}

impl Meta {
    /// Waits (at most `within`) until every other `up` member has applied function
    /// version `version`; the ids of the members that did not confirm it in time.
    pub async fn functions_broadcast(&self, version: u64, within: Duration) -> Vec<u64> {
        let me = self.node_id();
        let deadline_ms = now_ms() + within.as_millis() as u64;
        let body = version.to_string();
        let calls: Vec<_> = self
            .members()
            .into_iter()
            .filter(|m| m.id != me && m.state == MemberState::Up && !m.addr.is_empty())
            .map(|m| {
                let client = self.peers.client(&m.addr);
                let body = body.clone();
                let call = tokio::spawn(async move {
                    let reply = client
                        .forward(
                            SYNC_SERVICE,
                            META_GROUP,
                            deadline_ms,
                            body.as_bytes(),
                            within,
                        )
                        .await;
                    matches!(reply.as_deref(), Ok(b"1"))
                });
                (m.id, call)
            })
            .collect();
        let mut late = Vec::new();
        for (id, call) in calls {
            if !matches!(call.await, Ok(true)) {
                late.push(id);
            }
        }
        late
    }
}
