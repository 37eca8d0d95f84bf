//! One node's view of itself: what the cluster-channel `STATUS` request answers (as
//! JSON) and what `/api/cluster` combines across the members (see
//! [`cluster_view`](super::cluster_view)).
//!
//! Every field has a default when absent, so a node can read the answer of a peer that
//! runs an older or newer version. Shape (sizes in bytes, times in ms unless named):
//!
//! ```json
//! {"id":1,"version":"0.1.0","client_addr":"127.0.0.1:7001","cluster_addr":"127.0.0.1:17001",
//!  "http_addr":"127.0.0.1:8001","uptime_s":42,"connected_clients":3,"blocked_clients":0,
//!  "ops_per_sec":1200,"ops_history":[1180,1220],
//!  "groups":[{"group":0,"name":"meta","role":"leader","term":2,"leader_id":1,
//!             "commit_index":17,"applied_index":17,"last_log_index":17,"quorum":true,
//!             "members":[{"id":1,"addr":"127.0.0.1:17001","voter":true}]}],
//!  "cache":{"keys":10,"bytes":640,"used_memory":4194304,"maxmemory":0,"hits":5,"misses":1,
//!           "hit_rate":0.8333,"evictions":0,"expired":0},
//!  "locks":{"locked_resources":1,"holders":1,"waiters":0,"blocked_clients":0,"grants":3,
//!           "expiries":0,"deadlocks":0,"more_resources":0,
//!           "resources":[{"resource":"orders","mode":"exclusive",
//!                         "holders":[{"owner":"w1","token":7,"ttl_ms":9312}],"more_holders":0,
//!                         "waiters":[{"owner":"w2","mode":"exclusive","waited_ms":120}],
//!                         "more_waiters":0}]}}
//! ```

use std::time::Duration;

use conclave_locks::machine::{LockMode, ResourceView};
use conclave_raft_store::LOCK_GROUP;
use serde::{Deserialize, Serialize};

use bytes::Bytes;
use conclave_cluster::group::BoxFuture;
use conclave_cluster::StatusSource;

use crate::info::allocator_stats;
use crate::node::Node;
use conclave_cluster::group_status::role_name;
use conclave_locks::service::now_ms;

/// Lock resources listed at most (the rest are counted in `more_resources`).
pub const MAX_RESOURCES: usize = 100;
/// Holders and waiters listed at most per resource.
pub const MAX_PER_RESOURCE: usize = 20;
/// How long the commit index may take to read from the Raft core before it is left out.
const COMMIT_READ_TIMEOUT: Duration = Duration::from_millis(200);

/// A node as it reports itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct NodeView {
    /// Node id.
    pub id: u64,
    /// The node's version (`conclave` crate version).
    pub version: String,
    /// Where clients connect (`host:port`; an unspecified bind address is replaced by the
    /// host of the node's cluster address).
    pub client_addr: String,
    /// The internal cluster address the members know the node by.
    pub cluster_addr: String,
    /// The HTTP address of `/health`, `/metrics` and the dashboard, when enabled.
    pub http_addr: Option<String>,
    /// Seconds since the process started.
    pub uptime_s: u64,
    /// Connected clients.
    pub connected_clients: u64,
    /// Clients blocked in a lock wait on this node.
    pub blocked_clients: u64,
    /// Commands per second now (moving average, as `INFO`'s `instantaneous_ops_per_sec`).
    pub ops_per_sec: u64,
    /// Commands per second in each of the last (up to 60) seconds, oldest first.
    pub ops_history: Vec<u64>,
    /// The Raft groups this node is a member of (today only group 0, the meta/lock group).
    pub groups: Vec<GroupView>,
    /// The node-local cache.
    pub cache: CacheView,
    /// The lock table as this node has applied it.
    pub locks: LocksView,
}

/// One Raft group as a member sees it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct GroupView {
    /// Group id (0: meta/locks).
    pub group: u64,
    /// What the group holds (`meta`).
    pub name: String,
    /// `leader|follower|candidate|learner|shutdown`.
    pub role: String,
    /// Current term.
    pub term: u64,
    /// The leader this member knows of.
    pub leader_id: Option<u64>,
    /// Highest index known committed (absent when the Raft core did not answer in time).
    pub commit_index: Option<u64>,
    /// Highest index applied to the state machine.
    pub applied_index: u64,
    /// Highest index in the member's log.
    pub last_log_index: u64,
    /// As `RAFT.STATUS` `quorum`: the leader heard from a majority recently, or a
    /// follower heard from a leader recently.
    pub quorum: bool,
    /// The group's members as this node knows them.
    pub members: Vec<MemberView>,
}

/// A member of a Raft group.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct MemberView {
    /// Node id.
    pub id: u64,
    /// Its cluster address.
    pub addr: String,
    /// Whether it votes (else a learner).
    pub voter: bool,
}

/// The node-local string cache.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CacheView {
    /// Keys stored.
    pub keys: u64,
    /// Bytes of keys and values as counted for `maxmemory`.
    pub bytes: u64,
    /// Bytes allocated by the process (jemalloc), as `INFO`'s `used_memory`.
    pub used_memory: u64,
    /// `maxmemory` in bytes (0: no limit).
    pub maxmemory: u64,
    /// Reads that found their key.
    pub hits: u64,
    /// Reads that did not.
    pub misses: u64,
    /// hits / (hits + misses), 0 before any read.
    pub hit_rate: f64,
    /// Keys evicted by `maxmemory`.
    pub evictions: u64,
    /// Keys removed by expiry.
    pub expired: u64,
}

/// The lock table: counters and a bounded listing of the resources in use.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct LocksView {
    /// Resources with at least one holder.
    pub locked_resources: u64,
    /// Holds (a shared lock with three holders counts three).
    pub holders: u64,
    /// Queued requests.
    pub waiters: u64,
    /// Clients blocked in a lock wait on this node.
    pub blocked_clients: u64,
    /// Grants ever made.
    pub grants: u64,
    /// Leases released by expiry.
    pub expiries: u64,
    /// Requests refused with `-DEADLOCK`.
    pub deadlocks: u64,
    /// Up to [`MAX_RESOURCES`] resources with holders or waiters, in name order.
    pub resources: Vec<LockResourceView>,
    /// Resources in use that are not listed.
    pub more_resources: u64,
}

/// One lock resource (names are shown as UTF-8, invalid bytes replaced).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct LockResourceView {
    /// Resource name.
    pub resource: String,
    /// `none|shared|exclusive`.
    pub mode: String,
    /// Up to [`MAX_PER_RESOURCE`] holders, lowest token first.
    pub holders: Vec<HolderView>,
    /// Holders not listed.
    pub more_holders: u64,
    /// Up to [`MAX_PER_RESOURCE`] waiters, in service order.
    pub waiters: Vec<WaiterView>,
    /// Waiters not listed.
    pub more_waiters: u64,
}

/// A holder of a lock.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct HolderView {
    /// Owner name.
    pub owner: String,
    /// Fencing token.
    pub token: u64,
    /// Remaining lease in ms.
    pub ttl_ms: u64,
}

/// A queued lock request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct WaiterView {
    /// Owner name.
    pub owner: String,
    /// `shared|exclusive`.
    pub mode: String,
    /// Time waited so far in ms.
    pub waited_ms: u64,
}

/// This node's view of itself now.
pub async fn local(node: &Node) -> NodeView {
    let raft = node.locks.raft();
    let commit_index = tokio::time::timeout(
        COMMIT_READ_TIMEOUT,
        raft.with_raft_state(|st| st.committed.map(|c| c.index)),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .map(|c| c.unwrap_or(0));
    let group = {
        let m = raft.metrics();
        let m = m.borrow();
        let membership = m.membership_config.membership();
        let voters: Vec<u64> = membership.voter_ids().collect();
        GroupView {
            group: LOCK_GROUP,
            name: "meta".into(),
            role: role_name(m.state).into(),
            term: m.current_term,
            leader_id: m.current_leader,
            commit_index,
            applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            last_log_index: m.last_log_index.unwrap_or(0),
            quorum: node.locks.has_quorum(),
            members: membership
                .nodes()
                .map(|(id, n)| MemberView {
                    id: *id,
                    addr: n.addr.clone(),
                    voter: voters.contains(id),
                })
                .collect(),
        }
    };
    let id = node.config.id;
    let cluster_addr = group
        .members
        .iter()
        .find(|m| m.id == id)
        .map(|m| m.addr.clone())
        .or_else(|| node.config.cluster_addr().ok())
        .unwrap_or_default();
    let http_addr = node
        .config
        .metrics_addr()
        .ok()
        .flatten()
        .map(|a| advertised(&a, &cluster_addr));
    let blocked = node.locks.blocked_clients() as u64;
    NodeView {
        id,
        version: env!("CARGO_PKG_VERSION").into(),
        client_addr: advertised(&node.config.client_addr(), &cluster_addr),
        cluster_addr,
        http_addr,
        uptime_s: node.started.elapsed().as_secs(),
        connected_clients: node.clients.len() as u64,
        blocked_clients: blocked,
        ops_per_sec: node.stats.ops_per_sec(),
        ops_history: node.stats.ops_history(),
        groups: vec![group],
        cache: cache(node),
        locks: locks(node, blocked),
    }
}

fn cache(node: &Node) -> CacheView {
    let ks = node.keyspace.stats();
    CacheView {
        keys: ks.keys,
        bytes: ks.bytes,
        used_memory: allocator_stats().0,
        maxmemory: node.keyspace.maxmemory(),
        hits: ks.hits,
        misses: ks.misses,
        hit_rate: ks.hit_rate(),
        evictions: ks.evictions,
        expired: ks.expired,
    }
}

fn locks(node: &Node, blocked_clients: u64) -> LocksView {
    let now = now_ms();
    let (stats, view) = {
        let sm = node.locks.state().read();
        (
            sm.machine.stats(),
            sm.machine
                .resources_view(MAX_RESOURCES, MAX_PER_RESOURCE, now),
        )
    };
    LocksView {
        locked_resources: stats.locked_resources,
        holders: stats.holders,
        waiters: stats.waiters,
        blocked_clients,
        grants: stats.grants,
        expiries: stats.expiries,
        deadlocks: stats.deadlocks,
        more_resources: view.more() as u64,
        resources: view.resources.into_iter().map(resource).collect(),
    }
}

fn resource(r: ResourceView) -> LockResourceView {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    LockResourceView {
        resource: text(&r.resource),
        mode: r.info.mode.map(LockMode::as_str).unwrap_or("none").into(),
        holders: r
            .info
            .holders
            .iter()
            .map(|h| HolderView {
                owner: text(&h.owner),
                token: h.token,
                ttl_ms: h.ttl_ms,
            })
            .collect(),
        more_holders: r.more_holders as u64,
        waiters: r
            .info
            .waiters
            .iter()
            .map(|w| WaiterView {
                owner: text(&w.owner),
                mode: w.mode.as_str().into(),
                waited_ms: w.waited_ms,
            })
            .collect(),
        more_waiters: r.more_waiters as u64,
    }
}

/// `bind_addr` (`host:port`) as another machine would reach it: an unspecified host
/// (`0.0.0.0`, `::`, `[::]`) is replaced by the host of `cluster_addr`.
pub fn advertised(bind_addr: &str, cluster_addr: &str) -> String {
    let Some((host, port)) = bind_addr.rsplit_once(':') else {
        return bind_addr.to_string();
    };
    let unspecified = matches!(host, "0.0.0.0" | "::" | "[::]" | "");
    match cluster_addr.rsplit_once(':') {
        Some((cluster_host, _)) if unspecified && !cluster_host.is_empty() => {
            format!("{cluster_host}:{port}")
        }
        _ => bind_addr.to_string(),
    }
}

/// The cluster channel's `STATUS` (registered with the router at start): [`local`] as
/// JSON.
impl StatusSource for Node {
    fn status(&self) -> BoxFuture<'_, Result<Bytes, String>> {
        Box::pin(async move {
            serde_json::to_vec(&local(self).await)
                .map(Bytes::from)
                .map_err(|e| format!("ERR {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_replaces_only_an_unspecified_host() {
        assert_eq!(
            advertised("0.0.0.0:6379", "conclave1:16379"),
            "conclave1:6379"
        );
        assert_eq!(advertised("[::]:6379", "10.0.0.2:16379"), "10.0.0.2:6379");
        assert_eq!(
            advertised("127.0.0.1:7001", "127.0.0.1:17001"),
            "127.0.0.1:7001"
        );
        assert_eq!(advertised("0.0.0.0:6379", ""), "0.0.0.0:6379");
    }

    #[test]
    fn a_view_reads_back_with_missing_and_unknown_fields() {
        let v: NodeView =
            serde_json::from_str(r#"{"id":2,"ops_history":[1,2],"future_field":{"x":1}}"#)
                .expect("lenient");
        assert_eq!(v.id, 2);
        assert_eq!(v.ops_history, [1, 2]);
        assert!(v.groups.is_empty());
        let full = NodeView {
            id: 3,
            groups: vec![GroupView {
                role: "leader".into(),
                leader_id: Some(3),
                ..GroupView::default()
            }],
            ..NodeView::default()
        };
        let text = serde_json::to_string(&full).expect("json");
        assert_eq!(serde_json::from_str::<NodeView>(&text).expect("back"), full);
    }
}
