//! `GET /metrics` of a 3-node cluster (contract section 7, issue 12): every node exports
//! every agreed family with its type and labels, in a text the Prometheus parser crate
//! reads, and the counters move with commands — SET/GET counts and latency histograms,
//! cache hits and misses, lock grants and waiters, the Raft applied index, fsyncs on the
//! leader, leader changes when the leader is killed.
//!
//! One cluster at a time (`serial()`); every wait polls against a deadline, nothing
//! asserts on speed.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{acquire, conn_to, release, serial, Cluster};
use prometheus_parse::{LineInfo, SampleType, Scrape, Value};

/// One parsed scrape: the samples, and the declared type of every family.
struct Metrics {
    scrape: Scrape,
    types: HashMap<String, SampleType>,
}

/// `GET /metrics` on `port`: (status, content type, body), if it answers.
fn get_metrics(port: u16) -> Option<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    let ctype = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Some((code, ctype, body.to_string()))
}

/// Scrapes and parses node `id`'s `/metrics`.
fn scrape(c: &Cluster, id: u64) -> Metrics {
    let port = c.nodes[(id - 1) as usize].metrics_port;
    let (code, ctype, body) = get_metrics(port).expect("/metrics answers");
    assert_eq!(code, 200, "node {id}: /metrics said {code}: {body}");
    assert!(
        ctype.starts_with("application/openmetrics-text"),
        "content type {ctype:?}"
    );
    assert_eq!(body.lines().last(), Some("# EOF"), "a complete exposition");
    let mut types = HashMap::new();
    for line in body.lines() {
        if let LineInfo::Type {
            metric_name,
            metric_alias,
            sample_type,
        } = LineInfo::parse(line)
        {
            // Histograms are declared under their base name (the alias).
            types.insert(metric_alias.unwrap_or(metric_name), sample_type);
        }
    }
    let scrape =
        Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("a parseable exposition");
    Metrics { scrape, types }
}

impl Metrics {
    /// The value of a counter, gauge or untyped sample with exactly these labels.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && has_labels(&s.labels, labels))
            .find_map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
                _ => None,
            })
    }

    /// [`value`](Self::value), or 0 when the series is absent (a command not run yet).
    fn value_or_zero(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or(0.0)
    }

    /// The `(le, cumulative count)` buckets of a histogram series.
    fn buckets(&self, name: &str, labels: &[(&str, &str)]) -> Option<Vec<(f64, f64)>> {
        self.scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && has_labels(&s.labels, labels))
            .find_map(|s| match &s.value {
                Value::Histogram(b) => Some(b.iter().map(|h| (h.less_than, h.count)).collect()),
                _ => None,
            })
    }

    /// Checks that a family is declared with this type and has a sample carrying `label`.
    fn check_family(&self, family: &str, ty: SampleType, label: Option<&str>) {
        assert_eq!(self.types.get(family), Some(&ty), "type of {family}");
        // Counters' samples end in _total; histograms' are grouped under the family name.
        let sample_name = match ty {
            SampleType::Counter => format!("{family}_total"),
            _ => family.to_string(),
        };
        let found = self.scrape.samples.iter().any(|s| {
            s.metric == sample_name
                && match label {
                    None => true,
                    Some(l) => s.labels.get(l).is_some(),
                }
        });
        assert!(found, "no sample of {sample_name} with label {label:?}");
    }
}

fn has_labels(have: &prometheus_parse::Labels, want: &[(&str, &str)]) -> bool {
    have.len() == want.len() && want.iter().all(|(k, v)| have.get(k) == Some(*v))
}

const G0: &[(&str, &str)] = &[("group", "0")];

/// Polls `cond` on scrapes of node `id` until it holds.
fn wait_metrics(c: &Cluster, id: u64, what: &str, cond: impl Fn(&Metrics) -> bool) -> Metrics {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let m = scrape(c, id);
        if cond(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "node {id}: {what} never held");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_node_exports_every_family() {
    let _serial = serial();
    let c = Cluster::start(3, &[]);
    let leader = c.wait_leader(Duration::from_secs(20));
    // A command of each kind somewhere, so that the per-command families have a series,
    // and a grant so that the leader has fsynced a lock entry.
    let mut con = conn_to(c.nodes[0].port, Duration::from_secs(10)).expect("connect");
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut con)
        .expect("SET");
    let token = acquire(&mut con, "families", "o1", &["TTL", "10000"]).expect("acquire");
    assert!(token.is_some());
    for id in 1..=3 {
        let m = wait_metrics(&c, id, "leader known and the grant applied", |m| {
            m.value("conclave_raft_leader_changes_total", G0) >= Some(1.0)
                && m.value("conclave_lock_grants_total", &[]) >= Some(1.0)
        });
        use SampleType::{Counter, Gauge, Histogram};
        for (family, ty, label) in [
            ("conclave_commands", Counter, Some("command")),
            (
                "conclave_command_duration_seconds",
                Histogram,
                Some("command"),
            ),
            ("conclave_connected_clients", Gauge, None),
            ("conclave_raft_term", Gauge, Some("group")),
            ("conclave_raft_commit_index", Gauge, Some("group")),
            ("conclave_raft_applied_index", Gauge, Some("group")),
            ("conclave_raft_last_log_index", Gauge, Some("group")),
            ("conclave_raft_is_leader", Gauge, Some("group")),
            ("conclave_raft_has_quorum", Gauge, Some("group")),
            ("conclave_raft_leader_changes", Counter, Some("group")),
            (
                "conclave_raft_fsync_duration_seconds",
                Histogram,
                Some("group"),
            ),
            ("conclave_raft_fsync_appends", Histogram, Some("group")),
            ("conclave_raft_fsync_bytes", Counter, Some("group")),
            ("conclave_locks_held", Gauge, None),
            ("conclave_locked_resources", Gauge, None),
            ("conclave_lock_waiters", Gauge, None),
            ("conclave_lock_blocked_clients", Gauge, None),
            ("conclave_lock_grants", Counter, None),
            ("conclave_lock_expiries", Counter, None),
            ("conclave_lock_deadlocks", Counter, None),
            ("conclave_cache_hits", Counter, None),
            ("conclave_cache_misses", Counter, None),
            ("conclave_cache_evictions", Counter, None),
            ("conclave_cache_expired", Counter, None),
            ("conclave_cache_keys", Gauge, None),
            ("conclave_cache_bytes", Gauge, None),
        ] {
            m.check_family(family, ty, label);
        }
        let is_leader = m.value("conclave_raft_is_leader", G0);
        assert_eq!(
            is_leader,
            Some(if id == leader { 1.0 } else { 0.0 }),
            "node {id}"
        );
        assert!(m.value("conclave_raft_term", G0) >= Some(1.0));
        assert_eq!(m.value("conclave_locks_held", &[]), Some(1.0), "node {id}");
        // Every node fsyncs the entries it appends (followers too).
        assert!(m.value("conclave_raft_fsync_bytes_total", G0) > Some(0.0));
    }
    // Node 1 served the SET: the histogram agrees with the counter, and its buckets are
    // cumulative and end in +Inf.
    let m = scrape(&c, 1);
    let set = [("command", "set")];
    assert_eq!(m.value("conclave_commands_total", &set), Some(1.0));
    assert_eq!(
        m.value("conclave_command_duration_seconds_count", &set),
        Some(1.0)
    );
    let b = m
        .buckets("conclave_command_duration_seconds", &set)
        .expect("SET latency buckets");
    assert!(b.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
    assert_eq!(b.last().map(|x| x.1), Some(1.0));
    assert!(b.last().is_some_and(|x| x.0.is_infinite()));
    assert!(m.value("conclave_connected_clients", &[]) >= Some(1.0));
    release(&mut con, "families", "o1").expect("release");
}

#[test]
fn counters_move_with_commands() {
    let _serial = serial();
    let c = Cluster::start(3, &[]);
    let leader = c.wait_leader(Duration::from_secs(20));
    let follower = (1..=3).find(|&id| id != leader).expect("a follower");

    // SET/GET on a follower: counted there (strings are node-local), cache hits and misses.
    let before = scrape(&c, follower);
    let mut con = conn_to(
        c.nodes[(follower - 1) as usize].port,
        Duration::from_secs(10),
    )
    .expect("connect");
    for i in 0..10 {
        let _: () = redis::cmd("SET")
            .arg(format!("key:{i}"))
            .arg("v")
            .query(&mut con)
            .expect("SET");
    }
    for i in 0..5 {
        let _: Option<String> = redis::cmd("GET")
            .arg(format!("key:{i}"))
            .query(&mut con)
            .expect("GET");
    }
    let _: Option<String> = redis::cmd("GET")
        .arg("missing")
        .query(&mut con)
        .expect("GET");
    let after = scrape(&c, follower);
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value_or_zero(name, labels) - before.value_or_zero(name, labels)
    };
    assert_eq!(
        delta("conclave_commands_total", &[("command", "set")]),
        10.0
    );
    assert_eq!(delta("conclave_commands_total", &[("command", "get")]), 6.0);
    assert_eq!(
        delta(
            "conclave_command_duration_seconds_count",
            &[("command", "get")]
        ),
        6.0
    );
    assert!(
        delta(
            "conclave_command_duration_seconds_sum",
            &[("command", "get")]
        ) > 0.0
    );
    assert_eq!(delta("conclave_cache_hits_total", &[]), 5.0);
    assert_eq!(delta("conclave_cache_misses_total", &[]), 1.0);
    assert!(after.value("conclave_cache_keys", &[]) >= Some(10.0));
    assert!(after.value("conclave_cache_bytes", &[]) > Some(0.0));

    // A lock granted through the follower: grants and the applied index move on every
    // node, and the leader fsynced it.
    let applied = |m: &Metrics| m.value("conclave_raft_applied_index", G0).unwrap_or(0.0);
    let grants = |m: &Metrics| m.value("conclave_lock_grants_total", &[]).unwrap_or(0.0);
    let fsyncs = |m: &Metrics| {
        m.value("conclave_raft_fsync_duration_seconds_count", G0)
            .unwrap_or(0.0)
    };
    let before: Vec<Metrics> = (1..=3).map(|id| scrape(&c, id)).collect();
    assert!(acquire(&mut con, "res", "holder", &["TTL", "30000"])
        .expect("acquire")
        .is_some());
    for id in 1..=3 {
        let b = &before[(id - 1) as usize];
        wait_metrics(&c, id, "grant applied", |m| {
            grants(m) > grants(b) && applied(m) > applied(b)
        });
    }
    let b = &before[(leader - 1) as usize];
    let m = scrape(&c, leader);
    assert!(fsyncs(&m) > fsyncs(b), "the leader fsynced the grant");
    assert!(
        m.value("conclave_raft_fsync_appends_count", G0) > Some(0.0),
        "fsync batch sizes recorded"
    );
    assert!(m.value("conclave_raft_commit_index", G0) >= Some(applied(b) + 1.0));
    assert_eq!(
        m.value("conclave_commands_total", &[("command", "lock.acquire")]),
        None,
        "the acquire was counted where the client sent it, not where it was forwarded"
    );

    // A second owner blocks on the follower: a queued waiter everywhere, a blocked
    // client on the follower only, until the holder releases.
    let port = c.nodes[(follower - 1) as usize].port;
    let waiter = thread::spawn(move || {
        let mut con = conn_to(port, Duration::from_secs(30)).expect("connect");
        acquire(
            &mut con,
            "res",
            "waiter",
            &["TTL", "30000", "WAIT", "20000"],
        )
    });
    wait_metrics(&c, follower, "a blocked client", |m| {
        m.value("conclave_lock_blocked_clients", &[]) == Some(1.0)
            && m.value("conclave_lock_waiters", &[]) == Some(1.0)
    });
    wait_metrics(&c, leader, "a queued waiter", |m| {
        m.value("conclave_lock_waiters", &[]) == Some(1.0)
            && m.value("conclave_lock_blocked_clients", &[]) == Some(0.0)
    });
    release(&mut con, "res", "holder").expect("release");
    let granted = waiter.join().expect("waiter thread").expect("acquire");
    assert!(
        granted.is_some(),
        "the waiter got the lock after the release"
    );
    wait_metrics(&c, follower, "waiter granted", |m| {
        m.value("conclave_lock_blocked_clients", &[]) == Some(0.0)
            && m.value("conclave_lock_waiters", &[]) == Some(0.0)
            && m.value("conclave_locks_held", &[]) == Some(1.0)
            && m.value_or_zero("conclave_commands_total", &[("command", "lock.acquire")]) == 2.0
    });
}

#[test]
fn survivors_count_a_leader_change() {
    let _serial = serial();
    let mut c = Cluster::start(3, &[]);
    let leader = c.wait_leader(Duration::from_secs(20));
    let changes = |m: &Metrics| {
        m.value("conclave_raft_leader_changes_total", G0)
            .unwrap_or(0.0)
    };
    let survivors: Vec<u64> = (1..=3).filter(|&id| id != leader).collect();
    let before: Vec<f64> = survivors
        .iter()
        .map(|&id| changes(&wait_metrics(&c, id, "leader seen", |m| changes(m) >= 1.0)))
        .collect();
    c.node(leader).kill();
    let new_leader = c.wait_new_leader(leader, Duration::from_secs(20));
    for (&id, &b) in survivors.iter().zip(&before) {
        let m = wait_metrics(&c, id, "the new leader counted", |m| {
            changes(m) > b
                && m.value("conclave_raft_is_leader", G0)
                    == Some(if id == new_leader { 1.0 } else { 0.0 })
        });
        assert!(m.value("conclave_raft_term", G0) >= Some(2.0));
    }
}
