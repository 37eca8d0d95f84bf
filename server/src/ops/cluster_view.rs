//! The whole cluster as one node sees it: its own [`NodeView`] plus the one every other
//! member answers to `STATUS` on the cluster channel, asked in parallel with a
//! [`PEER_TIMEOUT`] deadline. A member that does not answer in time is *down*.
//! This is the body of `GET /api/cluster` (see [`ClusterView`] for the shape).
//!
//! Why this file is long: the `/api/cluster` document's types and the code that merges the
//! members' answers into it, with its tests.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use super::node_view::{self, CacheView, LocksView, NodeView};
use crate::node::Node;
use conclave_locks::service::now_ms;

/// How long a member has to answer `STATUS` before it is shown down.
pub const PEER_TIMEOUT: Duration = Duration::from_millis(500);

/// `GET /api/cluster`.
///
/// ```json
/// {"served_by":1,"generated_at_ms":1764514800000,"ops_per_sec":2400,"ops_history":[...],
///  "nodes":[{"id":1,"up":true,"error":null,"last_seen_ms_ago":0,"voter":true,
///            "cluster_addr":"127.0.0.1:17001","client_addr":"127.0.0.1:7001",
///            "http_addr":"127.0.0.1:8001","version":"0.1.0","uptime_s":42,"role":"leader",
///            "term":2,"leader_id":1,"commit_index":17,"applied_index":17,
///            "last_log_index":17,"quorum":true,"connected_clients":3,"blocked_clients":0,
///            "ops_per_sec":1200,"ops_history":[...],"cache":{...}},
///           {"id":3,"up":false,"error":"peer 127.0.0.1:17003 unreachable: ...",
///            "last_seen_ms_ago":5120,"client_addr":"127.0.0.1:7003","role":null,...}],
///  "groups":[{"group":0,"name":"meta","leader_id":1,"term":2,"commit_index":17,
///             "members":[1,2,3],"voters":3,"voters_up":2}],
///  "locks":{"source_node":1,"locked_resources":1,...,"resources":[...],"more_resources":0},
///  "cache":{"nodes":2,"keys":20,"bytes":1280,"used_memory":8388608,"hits":10,"misses":2,
///           "hit_rate":0.8333,"evictions":0,"expired":0}}
/// ```
///
/// `nodes` lists the members of group 0 as the serving node knows them, by id. For a
/// down node the fields it reports itself are null (addresses are the last ones it
/// reported, if it ever answered). `groups[].leader_id` is the leader of the highest
/// term any answering member knows. `locks` is the leader's table when the leader
/// answered, else the one of the answering node with the highest applied index
/// (`source_node` says which), with at most 100 resources listed. `cache` and the
/// top-level `ops_*` add up the nodes that answered (`ops_history` aligned on the
/// latest second).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClusterView {
    /// The node that answered this request.
    pub served_by: u64,
    /// When (ms since the Unix epoch, serving node's clock).
    pub generated_at_ms: u64,
    /// Commands per second, all answering nodes.
    pub ops_per_sec: u64,
    /// Per-second commands, all answering nodes, oldest first.
    pub ops_history: Vec<u64>,
    /// Every member.
    pub nodes: Vec<NodeEntry>,
    /// Every Raft group and its leader.
    pub groups: Vec<GroupSummary>,
    /// The lock table (absent only when no node answered, which cannot happen: the
    /// serving node always does).
    pub locks: Option<ClusterLocks>,
    /// The cache, added up over the answering nodes.
    pub cache: CacheTotals,
}

/// One member in [`ClusterView::nodes`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeEntry {
    /// Node id.
    pub id: u64,
    /// Whether it answered within [`PEER_TIMEOUT`].
    pub up: bool,
    /// Why it is down.
    pub error: Option<String>,
    /// Ms since it last answered a `/api/cluster` request of the serving node (`null`:
    /// never since the serving node started; the page polls every second while open).
    pub last_seen_ms_ago: Option<u64>,
    /// Whether it votes in group 0.
    pub voter: bool,
    /// Its cluster address.
    pub cluster_addr: String,
    /// Its client address, when it ever answered.
    pub client_addr: Option<String>,
    /// Its HTTP address, when it ever answered and serves HTTP.
    pub http_addr: Option<String>,
    /// Its version.
    pub version: Option<String>,
    /// Seconds since it started.
    pub uptime_s: Option<u64>,
    /// Role in group 0.
    pub role: Option<String>,
    /// Term in group 0.
    pub term: Option<u64>,
    /// The leader it knows of.
    pub leader_id: Option<u64>,
    /// Its commit index in group 0.
    pub commit_index: Option<u64>,
    /// Its applied index in group 0.
    pub applied_index: Option<u64>,
    /// Its last log index in group 0.
    pub last_log_index: Option<u64>,
    /// Its `quorum` flag (see `RAFT.STATUS`).
    pub quorum: Option<bool>,
    /// Connected clients.
    pub connected_clients: Option<u64>,
    /// Clients blocked in a lock wait.
    pub blocked_clients: Option<u64>,
    /// Commands per second now.
    pub ops_per_sec: Option<u64>,
    /// Commands per second over the last minute, oldest first (empty when down).
    pub ops_history: Vec<u64>,
    /// Its cache.
    pub cache: Option<CacheView>,
}

/// One Raft group in [`ClusterView::groups`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupSummary {
    /// Group id.
    pub group: u64,
    /// What it holds (`meta`: membership and locks).
    pub name: String,
    /// Its leader (`null`: none known).
    pub leader_id: Option<u64>,
    /// The highest term an answering member knows.
    pub term: u64,
    /// The leader's commit index when the leader answered, else the highest reported.
    pub commit_index: Option<u64>,
    /// Member ids.
    pub members: Vec<u64>,
    /// Voting members.
    pub voters: u64,
    /// Voting members that answered.
    pub voters_up: u64,
}

/// The lock table in [`ClusterView::locks`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClusterLocks {
    /// The node whose applied table this is.
    pub source_node: u64,
    /// The table.
    #[serde(flatten)]
    pub table: LocksView,
}

/// The cache summed over the answering nodes (each node caches on its own).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CacheTotals {
    /// Nodes added up.
    pub nodes: u64,
    /// Keys.
    pub keys: u64,
    /// Bytes of keys and values.
    pub bytes: u64,
    /// Bytes allocated by the processes.
    pub used_memory: u64,
    /// Read hits.
    pub hits: u64,
    /// Read misses.
    pub misses: u64,
    /// hits / (hits + misses), 0 before any read.
    pub hit_rate: f64,
    /// Keys evicted.
    pub evictions: u64,
    /// Keys expired.
    pub expired: u64,
}

/// What the serving node remembers of a member that answered before.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    client_addr: String,
    http_addr: Option<String>,
    version: String,
}

/// Builds [`ClusterView`]s for one node, remembering when each member last answered.
#[derive(Debug)]
pub struct Gatherer {
    node: Arc<Node>,
    seen: Mutex<HashMap<u64, Seen>>,
}

/// A member's answer: its view, or why there is none.
type Answer = Result<NodeView, String>;

impl Gatherer {
    /// A gatherer serving from `node`.
    pub fn new(node: Arc<Node>) -> Gatherer {
        Gatherer {
            node,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Asks every member (in parallel, within [`PEER_TIMEOUT`]) and combines the answers.
    pub async fn gather(&self) -> ClusterView {
        let own = node_view::local(&self.node).await;
        let me = own.id;
        let mut members: Vec<(u64, String, bool)> = own
            .groups
            .first()
            .map(|g| {
                g.members
                    .iter()
                    .map(|m| (m.id, m.addr.clone(), m.voter))
                    .collect()
            })
            .unwrap_or_default();
        if !members.iter().any(|(id, _, _)| *id == me) {
            members.push((me, own.cluster_addr.clone(), false));
        }
        members.sort_by_key(|(id, _, _)| *id);
        let mut asks = JoinSet::new();
        for (id, addr, _) in members.iter().filter(|(id, _, _)| *id != me) {
            let client = self.node.locks.peers().client(addr);
            let id = *id;
            asks.spawn(async move {
                let answer = match tokio::time::timeout(
                    PEER_TIMEOUT,
                    client.call(&[b"STATUS"], PEER_TIMEOUT),
                )
                .await
                {
                    Err(_) => Err("no answer within 500 ms".to_string()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Ok(Ok(json)) => serde_json::from_slice::<NodeView>(&json)
                        .map_err(|e| format!("unreadable STATUS answer: {e}")),
                };
                (id, answer)
            });
        }
        let mut answers: HashMap<u64, Answer> = HashMap::new();
        while let Some(done) = asks.join_next().await {
            if let Ok((id, answer)) = done {
                answers.insert(id, answer);
            }
        }
        answers.insert(me, Ok(own));
        let now = Instant::now();
        let mut seen = self.seen.lock();
        let nodes: Vec<(NodeEntry, Option<NodeView>)> = members
            .into_iter()
            .map(|(id, addr, voter)| {
                let answer = answers
                    .remove(&id)
                    .unwrap_or_else(|| Err("the request failed".into()));
                if let Ok(v) = &answer {
                    seen.insert(
                        id,
                        Seen {
                            at: now,
                            client_addr: v.client_addr.clone(),
                            http_addr: v.http_addr.clone(),
                            version: v.version.clone(),
                        },
                    );
                }
                let entry = entry(id, addr, voter, &answer, seen.get(&id), now);
                (entry, answer.ok())
            })
            .collect();
        drop(seen);
        combine(me, nodes)
    }
}

/// One member's entry from its answer (and what was remembered of it).
fn entry(
    id: u64,
    cluster_addr: String,
    voter: bool,
    answer: &Answer,
    seen: Option<&Seen>,
    now: Instant,
) -> NodeEntry {
    let mut e = NodeEntry {
        id,
        voter,
        cluster_addr,
        last_seen_ms_ago: seen.map(|s| now.saturating_duration_since(s.at).as_millis() as u64),
        client_addr: seen.map(|s| s.client_addr.clone()),
        http_addr: seen.and_then(|s| s.http_addr.clone()),
        version: seen.map(|s| s.version.clone()),
        ..NodeEntry::default()
    };
    match answer {
        Err(why) => e.error = Some(why.clone()),
        Ok(v) => {
            let g = v.groups.first().cloned().unwrap_or_default();
            e.up = true;
            e.uptime_s = Some(v.uptime_s);
            e.role = Some(g.role);
            e.term = Some(g.term);
            e.leader_id = g.leader_id;
            e.commit_index = g.commit_index;
            e.applied_index = Some(g.applied_index);
            e.last_log_index = Some(g.last_log_index);
            e.quorum = Some(g.quorum);
            e.connected_clients = Some(v.connected_clients);
            e.blocked_clients = Some(v.blocked_clients);
            e.ops_per_sec = Some(v.ops_per_sec);
            e.ops_history = v.ops_history.clone();
            e.cache = Some(v.cache.clone());
        }
    }
    e
}

/// Combines the members' entries and answers (in id order) into the cluster view.
fn combine(served_by: u64, nodes: Vec<(NodeEntry, Option<NodeView>)>) -> ClusterView {
    let up: Vec<&NodeEntry> = nodes.iter().map(|(e, _)| e).filter(|e| e.up).collect();
    // The leader of the highest term known: a node that says it leads that term, else
    // the leader the nodes in that term name.
    let term = up.iter().filter_map(|e| e.term).max().unwrap_or(0);
    let in_term: Vec<&NodeEntry> = up
        .iter()
        .copied()
        .filter(|e| e.term == Some(term))
        .collect();
    let leader_id = in_term
        .iter()
        .find(|e| e.role.as_deref() == Some("leader"))
        .map(|e| e.id)
        .or_else(|| in_term.iter().find_map(|e| e.leader_id));
    let leader_up = leader_id.and_then(|l| up.iter().find(|e| e.id == l));
    let commit_index = leader_up
        .and_then(|e| e.commit_index)
        .or_else(|| up.iter().filter_map(|e| e.commit_index).max());
    let group = GroupSummary {
        group: 0,
        name: "meta".into(),
        leader_id,
        term,
        commit_index,
        members: nodes.iter().map(|(e, _)| e.id).collect(),
        voters: nodes.iter().filter(|(e, _)| e.voter).count() as u64,
        voters_up: up.iter().filter(|e| e.voter).count() as u64,
    };
    // The freshest lock table: the leader's, else the most applied one.
    let source = nodes
        .iter()
        .filter_map(|(_, v)| v.as_ref())
        .max_by_key(|v| {
            let applied = v.groups.first().map_or(0, |g| g.applied_index);
            (Some(v.id) == leader_id, applied)
        });
    let locks = source.map(|v| ClusterLocks {
        source_node: v.id,
        table: v.locks.clone(),
    });
    let mut cache = CacheTotals::default();
    for c in up.iter().filter_map(|e| e.cache.as_ref()) {
        cache.nodes += 1;
        cache.keys += c.keys;
        cache.bytes += c.bytes;
        cache.used_memory += c.used_memory;
        cache.hits += c.hits;
        cache.misses += c.misses;
        cache.evictions += c.evictions;
        cache.expired += c.expired;
    }
    let reads = cache.hits + cache.misses;
    cache.hit_rate = if reads == 0 {
        0.0
    } else {
        cache.hits as f64 / reads as f64
    };
    let ops_history = sum_aligned_right(up.iter().map(|e| e.ops_history.as_slice()));
    ClusterView {
        served_by,
        generated_at_ms: now_ms(),
        ops_per_sec: up.iter().filter_map(|e| e.ops_per_sec).sum(),
        ops_history,
        groups: vec![group],
        locks,
        cache,
        nodes: nodes.into_iter().map(|(e, _)| e).collect(),
    }
}

/// Element-wise sum of series that all end at the same (latest) second.
fn sum_aligned_right<'a>(series: impl Iterator<Item = &'a [u64]>) -> Vec<u64> {
    let series: Vec<&[u64]> = series.collect();
    let len = series.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![0u64; len];
    for s in series {
        let offset = len - s.len();
        for (i, v) in s.iter().enumerate() {
            out[offset + i] += v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::node_view::{GroupView, LocksView};

    fn view(id: u64, role: &str, term: u64, leader: Option<u64>, applied: u64) -> NodeView {
        NodeView {
            id,
            client_addr: format!("127.0.0.1:700{id}"),
            ops_history: vec![id; id as usize],
            groups: vec![GroupView {
                role: role.into(),
                term,
                leader_id: leader,
                applied_index: applied,
                commit_index: Some(applied),
                ..GroupView::default()
            }],
            cache: CacheView {
                hits: 3,
                misses: 1,
                keys: 10,
                ..CacheView::default()
            },
            locks: LocksView {
                grants: id,
                ..LocksView::default()
            },
            ..NodeView::default()
        }
    }

    fn nodes(answers: Vec<(u64, Answer)>) -> Vec<(NodeEntry, Option<NodeView>)> {
        let now = Instant::now();
        answers
            .into_iter()
            .map(|(id, a)| {
                let e = entry(id, format!("127.0.0.1:1700{id}"), true, &a, None, now);
                (e, a.ok())
            })
            .collect()
    }

    #[test]
    fn the_leader_of_the_highest_term_wins_and_its_locks_are_shown() {
        let v = combine(
            2,
            nodes(vec![
                // A deposed leader still thinks it leads an older term.
                (1, Ok(view(1, "leader", 3, Some(1), 40))),
                (2, Ok(view(2, "follower", 4, Some(3), 50))),
                (3, Ok(view(3, "leader", 4, Some(3), 45))),
            ]),
        );
        assert_eq!(v.groups[0].leader_id, Some(3));
        assert_eq!(v.groups[0].term, 4);
        assert_eq!(v.groups[0].commit_index, Some(45), "the leader's");
        assert_eq!(v.groups[0].voters_up, 3);
        assert_eq!(v.locks.as_ref().map(|l| l.source_node), Some(3));
        assert_eq!(v.cache.nodes, 3);
        assert_eq!(v.cache.keys, 30);
        assert!((v.cache.hit_rate - 0.75).abs() < 1e-9);
        assert_eq!(
            v.ops_history,
            [3, 3 + 2, 3 + 2 + 1],
            "aligned on the latest second"
        );
    }

    #[test]
    fn a_silent_member_is_down_and_the_freshest_table_stands_in_for_the_leader() {
        let v = combine(
            1,
            nodes(vec![
                (1, Ok(view(1, "follower", 5, Some(2), 70))),
                (2, Err("no answer within 500 ms".into())),
                (3, Ok(view(3, "follower", 5, Some(2), 71))),
            ]),
        );
        let down = &v.nodes[1];
        assert!(!down.up);
        assert_eq!(down.error.as_deref(), Some("no answer within 500 ms"));
        assert_eq!(down.role, None);
        assert!(down.ops_history.is_empty());
        assert_eq!(v.groups[0].leader_id, Some(2), "named by the followers");
        assert_eq!(v.groups[0].voters_up, 2);
        assert_eq!(v.groups[0].commit_index, Some(71));
        assert_eq!(v.locks.as_ref().map(|l| l.source_node), Some(3));
        assert_eq!(v.cache.nodes, 2);
    }

    #[test]
    fn a_down_member_keeps_the_addresses_it_last_reported() {
        let now = Instant::now();
        let seen = Seen {
            at: now - Duration::from_secs(2),
            client_addr: "10.0.0.3:6379".into(),
            http_addr: Some("10.0.0.3:7379".into()),
            version: "0.1.0".into(),
        };
        let e = entry(
            3,
            "10.0.0.3:16379".into(),
            true,
            &Err("refused".into()),
            Some(&seen),
            now,
        );
        assert!(!e.up);
        assert_eq!(e.client_addr.as_deref(), Some("10.0.0.3:6379"));
        assert!(e.last_seen_ms_ago.is_some_and(|ms| ms >= 2000));
    }

    #[test]
    fn the_json_has_the_documented_top_level_fields() {
        let v = combine(1, nodes(vec![(1, Ok(view(1, "leader", 1, Some(1), 1)))]));
        let json = serde_json::to_value(&v).expect("json");
        for field in [
            "served_by",
            "generated_at_ms",
            "ops_per_sec",
            "ops_history",
            "nodes",
            "groups",
            "locks",
            "cache",
        ] {
            assert!(json.get(field).is_some(), "missing {field}");
        }
        assert_eq!(json["locks"]["source_node"], 1);
        assert_eq!(json["locks"]["grants"], 1, "the table is flattened");
        assert_eq!(json["nodes"][0]["role"], "leader");
    }
}
