//! `GET /metrics`: the node's metrics in the OpenMetrics text format (which Prometheus
//! scrapes natively), encoded by prometheus-client from a snapshot taken per scrape.
//!
//! Nothing here is on the command path: commands, fsyncs and leader changes are recorded
//! into atomics ([`super::command_stats`], [`super::raft_stats`]); the rest (Raft state,
//! locks, cache, clients) is read from the node when scraped. Names follow the agreement
//! of issue 12 (`conclave_` prefix, `_total` counters, `_seconds` histograms, labels
//! `command` — lower-case — and `group`):
//!
//! | family | type | labels |
//! |---|---|---|
//! | `conclave_commands_total` | counter | `command` |
//! | `conclave_command_duration_seconds` | histogram | `command` |
//! | `conclave_connected_clients` | gauge | |
//! | `conclave_raft_term`, `_commit_index`, `_applied_index`, `_last_log_index` | gauge | `group` |
//! | `conclave_raft_is_leader`, `conclave_raft_has_quorum` (0/1) | gauge | `group` |
//! | `conclave_raft_leader_changes_total` | counter | `group` |
//! | `conclave_raft_fsync_duration_seconds` | histogram | `group` |
//! | `conclave_raft_fsync_appends` (appends per fdatasync) | histogram | `group` |
//! | `conclave_raft_fsync_bytes_total` | counter | `group` |
//! | `conclave_locks_held`, `conclave_locked_resources`, `conclave_lock_waiters`, `conclave_lock_blocked_clients` | gauge | |
//! | `conclave_lock_grants_total`, `_expiries_total`, `_deadlocks_total` | counter | |
//! | `conclave_cache_hits_total`, `_misses_total`, `_evictions_total`, `_expired_total` | counter | |
//! | `conclave_cache_keys`, `conclave_cache_bytes` | gauge | |
//!
//! Commands appear once executed. Answers 200 with
//! `Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8`, or 500
//! with a text body if encoding fails.
//!
//! Why this file is long: every metric family of the exposition is listed here once, beside
//! the snapshot it is read from and its unit tests.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use conclave_cache::keyspace::KeyspaceStats;
use conclave_locks::machine::LockStats;
use conclave_raft_store::GroupId;
use openraft::ServerState;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::node::Node;
use conclave_cluster::histogram::{Bounds, Snapshot, BATCH, FSYNC_NS, LATENCY_NS};
use conclave_locks::service::LockService;
use conclave_protocol::CommandSpec;

/// The content type of the answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long a scrape waits for Raft's committed index before leaving it out.
const RAFT_STATE_WAIT: Duration = Duration::from_secs(1);

/// The `/metrics` handler.
pub async fn metrics(State(node): State<Arc<Node>>) -> Response {
    let snapshot = NodeMetrics::take(&node).await;
    match render(snapshot) {
        Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the metrics\n",
        )
            .into_response(),
    }
}

/// Encodes a snapshot as a complete OpenMetrics exposition (ending in `# EOF`).
pub fn render(snapshot: NodeMetrics) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    let mut body = String::with_capacity(32 * 1024);
    prometheus_client::encoding::text::encode(&mut body, &registry)?;
    Ok(body)
}

/// Everything one scrape reports, read from the node at one time.
#[derive(Debug, Default)]
pub struct NodeMetrics {
    /// Executed commands with their latency histogram (ns).
    pub commands: Vec<(&'static CommandSpec, Snapshot)>,
    /// Connected clients.
    pub clients: usize,
    /// One entry per Raft group this node runs.
    pub groups: Vec<GroupMetrics>,
    /// The lock table's counters.
    pub locks: LockStats,
    /// Clients blocked in a lock wait on this node.
    pub blocked_clients: usize,
    /// The keyspace's counters.
    pub cache: KeyspaceStats,
}

/// One Raft group on this node.
#[derive(Debug, Default)]
pub struct GroupMetrics {
    /// The group id (`0`: meta/locks).
    pub group: GroupId,
    /// Current term.
    pub term: u64,
    /// Committed index; `None` when Raft did not answer in time.
    pub commit_index: Option<u64>,
    /// Last applied index (0 before any).
    pub applied_index: u64,
    /// Last log index (0 before any).
    pub last_log_index: u64,
    /// Whether this node leads the group.
    pub is_leader: bool,
    /// `RAFT.STATUS` `quorum`.
    pub has_quorum: bool,
    /// Leader changes seen.
    pub leader_changes: u64,
    /// `fdatasync` latency (ns).
    pub fsync: Snapshot,
    /// Appends per `fdatasync`.
    pub fsync_appends: Snapshot,
    /// Bytes made durable.
    pub fsync_bytes: u64,
}

impl NodeMetrics {
    /// Reads the node now.
    pub async fn take(node: &Node) -> NodeMetrics {
        NodeMetrics {
            commands: node.command_stats.snapshot(),
            clients: node.clients.len(),
            groups: vec![GroupMetrics::take(&node.locks).await],
            locks: node.locks.lock_stats(),
            blocked_clients: node.locks.blocked_clients(),
            cache: node.keyspace.stats(),
        }
    }
}

impl GroupMetrics {
    /// Reads the lock service's group (group 0).
    pub async fn take(service: &LockService) -> GroupMetrics {
        use std::sync::atomic::Ordering::Relaxed;
        let (term, applied, last_log, leader) = {
            let m = service.raft().metrics();
            let m = m.borrow();
            (
                m.current_term,
                m.last_applied.map_or(0, |l| l.index),
                m.last_log_index.unwrap_or(0),
                m.state == ServerState::Leader,
            )
        };
        let committed = service
            .raft()
            .with_raft_state(|st| st.committed.map_or(0, |c| c.index));
        let commit_index = tokio::time::timeout(RAFT_STATE_WAIT, committed)
            .await
            .ok()
            .and_then(Result::ok);
        let stats = service.group().stats();
        GroupMetrics {
            group: stats.group,
            term,
            commit_index,
            applied_index: applied,
            last_log_index: last_log,
            is_leader: leader,
            has_quorum: service.has_quorum(),
            leader_changes: stats.leader_changes.load(Relaxed),
            fsync: stats.fsync.snapshot(),
            fsync_appends: stats.fsync_appends.snapshot(),
            fsync_bytes: stats.fsync_bytes.load(Relaxed),
        }
    }
}

/// A gauge value as prometheus-client encodes it (saturating at `i64::MAX`).
fn gauge(v: u64) -> ConstGauge<i64> {
    ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX))
}

/// Writes one family without labels.
fn single(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    let m = enc.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(m)
}

/// Writes one family with a `group` label per Raft group.
fn per_group<M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    groups: &[GroupMetrics],
    name: &str,
    help: &str,
    metric_type: MetricType,
    value: impl Fn(&GroupMetrics) -> Option<M>,
) -> Result<(), std::fmt::Error> {
    let mut family = enc.encode_descriptor(name, help, None, metric_type)?;
    for g in groups {
        if let Some(metric) = value(g) {
            let labels = [("group", g.group.to_string())];
            metric.encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// Writes one histogram family with a `group` label per Raft group.
fn group_histogram(
    enc: &mut DescriptorEncoder,
    groups: &[GroupMetrics],
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    bounds: &Bounds,
    pick: impl Fn(&GroupMetrics) -> &Snapshot,
) -> Result<(), std::fmt::Error> {
    let mut family = enc.encode_descriptor(name, help, unit, MetricType::Histogram)?;
    for g in groups {
        let h = pick(g);
        let labels = [("group", g.group.to_string())];
        family
            .encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(
                h.scaled_sum(bounds),
                h.count(),
                &h.buckets(bounds),
                None,
            )?;
    }
    Ok(())
}

impl Collector for NodeMetrics {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let enc = &mut enc;
        self.encode_commands(enc)?;
        single(
            enc,
            "conclave_connected_clients",
            "Client connections open now.",
            gauge(self.clients as u64),
        )?;
        self.encode_raft(enc)?;
        self.encode_locks(enc)?;
        self.encode_cache(enc)
    }
}

impl NodeMetrics {
    fn encode_commands(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let names: Vec<String> = self.commands.iter().map(|(s, _)| s.lower_name()).collect();
        {
            let mut family = enc.encode_descriptor(
                "conclave_commands",
                "Commands executed, by name (those past the unknown-command, arity and auth checks).",
                None,
                MetricType::Counter,
            )?;
            for (name, (_, h)) in names.iter().zip(&self.commands) {
                let labels = [("command", name.as_str())];
                ConstCounter::new(h.count()).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = enc.encode_descriptor(
            "conclave_command_duration",
            "Time this node spent serving the command: decoding, executing (blocking waits included) and encoding its reply.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (name, (_, h)) in names.iter().zip(&self.commands) {
            let labels = [("command", name.as_str())];
            family
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(
                    h.scaled_sum(&LATENCY_NS),
                    h.count(),
                    &h.buckets(&LATENCY_NS),
                    None,
                )?;
        }
        Ok(())
    }

    fn encode_raft(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let g = &self.groups;
        let gauge_of =
            |f: fn(&GroupMetrics) -> Option<u64>| move |m: &GroupMetrics| f(m).map(gauge);
        per_group(
            enc,
            g,
            "conclave_raft_term",
            "Current Raft term.",
            MetricType::Gauge,
            gauge_of(|m| Some(m.term)),
        )?;
        per_group(
            enc,
            g,
            "conclave_raft_commit_index",
            "Highest log index known committed.",
            MetricType::Gauge,
            gauge_of(|m| m.commit_index),
        )?;
        per_group(
            enc,
            g,
            "conclave_raft_applied_index",
            "Highest log index applied to the state machine.",
            MetricType::Gauge,
            gauge_of(|m| Some(m.applied_index)),
        )?;
        per_group(
            enc,
            g,
            "conclave_raft_last_log_index",
            "Highest log index in this node's log.",
            MetricType::Gauge,
            gauge_of(|m| Some(m.last_log_index)),
        )?;
        per_group(
            enc,
            g,
            "conclave_raft_is_leader",
            "1 when this node leads the group.",
            MetricType::Gauge,
            gauge_of(|m| Some(m.is_leader as u64)),
        )?;
        per_group(
            enc,
            g,
            "conclave_raft_has_quorum",
            "1 when this node can count on a quorum (RAFT.STATUS quorum).",
            MetricType::Gauge,
            gauge_of(|m| Some(m.has_quorum as u64)),
        )?;
        per_group(
            enc,
            g,
            "conclave_raft_leader_changes",
            "Times this node saw a new leader of the group.",
            MetricType::Counter,
            |m| Some(ConstCounter::new(m.leader_changes)),
        )?;
        group_histogram(
            enc,
            g,
            "conclave_raft_fsync_duration",
            "Time of each fdatasync of the group's log.",
            Some(&Unit::Seconds),
            &FSYNC_NS,
            |m| &m.fsync,
        )?;
        group_histogram(
            enc,
            g,
            "conclave_raft_fsync_appends",
            "Appends made durable by one fdatasync of the group's log (batch size).",
            None,
            &BATCH,
            |m| &m.fsync_appends,
        )?;
        per_group(
            enc,
            g,
            "conclave_raft_fsync_bytes",
            "Log bytes made durable by fdatasync.",
            MetricType::Counter,
            |m| Some(ConstCounter::new(m.fsync_bytes)),
        )
    }

    fn encode_locks(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let l = &self.locks;
        single(
            enc,
            "conclave_locks_held",
            "Lock holds (a shared lock with three holders counts three).",
            gauge(l.holders),
        )?;
        single(
            enc,
            "conclave_locked_resources",
            "Resources with at least one holder.",
            gauge(l.locked_resources),
        )?;
        single(
            enc,
            "conclave_lock_waiters",
            "Requests queued for a lock.",
            gauge(l.waiters),
        )?;
        single(
            enc,
            "conclave_lock_blocked_clients",
            "Clients of this node blocked in a lock wait.",
            gauge(self.blocked_clients as u64),
        )?;
        single(
            enc,
            "conclave_lock_grants",
            "Locks granted (replicated state).",
            ConstCounter::new(l.grants),
        )?;
        single(
            enc,
            "conclave_lock_expiries",
            "Leases ended by expiry (replicated state).",
            ConstCounter::new(l.expiries),
        )?;
        single(
            enc,
            "conclave_lock_deadlocks",
            "Requests refused with -DEADLOCK (replicated state).",
            ConstCounter::new(l.deadlocks),
        )
    }

    fn encode_cache(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = &self.cache;
        single(
            enc,
            "conclave_cache_hits",
            "Reads that found their key.",
            ConstCounter::new(c.hits),
        )?;
        single(
            enc,
            "conclave_cache_misses",
            "Reads that did not find their key.",
            ConstCounter::new(c.misses),
        )?;
        single(
            enc,
            "conclave_cache_evictions",
            "Keys evicted under maxmemory.",
            ConstCounter::new(c.evictions),
        )?;
        single(
            enc,
            "conclave_cache_expired",
            "Keys removed because their TTL passed.",
            ConstCounter::new(c.expired),
        )?;
        single(
            enc,
            "conclave_cache_keys",
            "Keys stored now.",
            gauge(c.keys),
        )?;
        single(
            enc,
            "conclave_cache_bytes",
            "Accounted memory of the keyspace, in bytes.",
            gauge(c.bytes),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command_table::lookup;
    use conclave_cluster::histogram::Histogram;

    fn sample() -> NodeMetrics {
        let h = Histogram::default();
        h.observe(&LATENCY_NS, 3_000);
        let f = Histogram::default();
        f.observe(&FSYNC_NS, 1_000_000);
        let a = Histogram::default();
        a.observe(&BATCH, 5);
        NodeMetrics {
            commands: vec![(lookup(b"LOCK.ACQUIRE").expect("spec").spec, h.snapshot())],
            clients: 2,
            groups: vec![GroupMetrics {
                group: 0,
                term: 3,
                commit_index: Some(7),
                applied_index: 7,
                last_log_index: 8,
                is_leader: true,
                has_quorum: true,
                leader_changes: 1,
                fsync: f.snapshot(),
                fsync_appends: a.snapshot(),
                fsync_bytes: 512,
            }],
            locks: LockStats {
                holders: 4,
                grants: 9,
                ..LockStats::default()
            },
            blocked_clients: 1,
            cache: KeyspaceStats {
                hits: 5,
                ..KeyspaceStats::default()
            },
        }
    }

    #[test]
    fn renders_the_agreed_names() {
        let text = render(sample()).expect("encodes");
        for line in [
            "# TYPE conclave_commands counter",
            "conclave_commands_total{command=\"lock.acquire\"} 1",
            "# TYPE conclave_command_duration_seconds histogram",
            "conclave_command_duration_seconds_count{command=\"lock.acquire\"} 1",
            "conclave_command_duration_seconds_bucket{le=\"0.000005\",command=\"lock.acquire\"} 1",
            "conclave_connected_clients 2",
            "conclave_raft_term{group=\"0\"} 3",
            "conclave_raft_commit_index{group=\"0\"} 7",
            "conclave_raft_last_log_index{group=\"0\"} 8",
            "conclave_raft_is_leader{group=\"0\"} 1",
            "conclave_raft_leader_changes_total{group=\"0\"} 1",
            "conclave_raft_fsync_duration_seconds_count{group=\"0\"} 1",
            "conclave_raft_fsync_appends_bucket{le=\"8.0\",group=\"0\"} 1",
            "conclave_raft_fsync_bytes_total{group=\"0\"} 512",
            "conclave_raft_fsync_duration_seconds_bucket{le=\"+Inf\",group=\"0\"} 1",
            "conclave_locks_held 4",
            "conclave_lock_grants_total 9",
            "conclave_lock_blocked_clients 1",
            "conclave_cache_hits_total 5",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
    }

    #[test]
    fn unknown_commit_index_is_left_out() {
        let mut m = sample();
        m.groups[0].commit_index = None;
        let text = render(m).expect("encodes");
        assert!(text.contains("# TYPE conclave_raft_commit_index gauge"));
        assert!(!text.contains("conclave_raft_commit_index{"));
    }
}
