//! `INFO`: Redis's `field:value` text, section by section.
//!
//! Sections: `server`, `clients`, `memory`, `persistence`, `stats`, `replication`,
//! `cpu`, `errorstats`, `cluster`, `keyspace`, `commandstats` (Redis's, in Redis's
//! order) and `cache`, `raft`, `locks` (Conclave's). `INFO` and `INFO default` print
//! every section but `commandstats`, as Redis 7 does; `INFO all` and `INFO everything`
//! add it. Names are matched case-insensitively; unknown sections print nothing.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use crate::builtin::connection_cmds::REDIS_COMPAT_VERSION;
use crate::node::Node;

/// Every section, in print order, and whether `INFO` / `INFO default` prints it.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("errorstats", true),
    ("cluster", true),
    ("keyspace", true),
    ("commandstats", false),
    ("cache", true),
    ("raft", true),
    ("locks", true),
    ("queues", true),
];

/// Renders the requested sections (the default ones when `wanted` is empty).
pub fn render(node: &Node, wanted: &[String]) -> String {
    let everything = wanted
        .iter()
        .any(|w| matches!(w.as_str(), "all" | "everything"));
    let default = wanted.is_empty() || wanted.iter().any(|w| w == "default");
    let mut out = String::new();
    for &(section, in_default) in SECTIONS {
        let asked = wanted.iter().any(|w| w == section);
        if !(everything || asked || (default && in_default)) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let title = format!("{}{}", section[..1].to_uppercase(), &section[1..]);
        let _ = writeln!(out, "# {title}\r");
        for (k, v) in fields(node, section) {
            let _ = write!(out, "{k}:{v}\r\n");
        }
    }
    out
}

/// The fields of one section.
pub fn fields(node: &Node, section: &str) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| f.push((k.to_string(), v));
    match section {
        "server" => {
            let uptime = node.started.elapsed().as_secs();
            put("redis_version", REDIS_COMPAT_VERSION.into());
            put("conclave_version", env!("CARGO_PKG_VERSION").into());
            put("redis_mode", "standalone".into());
            put("os", std::env::consts::OS.into());
            put("arch_bits", (usize::BITS).to_string());
            put("process_id", std::process::id().to_string());
            put("tcp_port", node.runtime.port.load(Relaxed).to_string());
            put(
                "cluster_port",
                node.config
                    .cluster_port()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
            );
            put("node_id", node.config.id.to_string());
            put("uptime_in_seconds", uptime.to_string());
            put("uptime_in_days", (uptime / 86_400).to_string());
            put("hz", node.runtime.hz.load(Relaxed).to_string());
            put(
                "executable",
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
        }
        "clients" => {
            put("connected_clients", node.clients.len().to_string());
            put(
                "maxclients",
                node.runtime.maxclients.load(Relaxed).to_string(),
            );
            put(
                "blocked_clients",
                (node.locks.blocked_clients() + node.pause.waiting()).to_string(),
            );
            put(
                "tracking_clients",
                node.tracker.tracking_clients().to_string(),
            );
        }
        "memory" => {
            let (allocated, resident) = allocator_stats();
            let dataset = node.keyspace.used_bytes();
            put("used_memory", allocated.to_string());
            put("used_memory_human", human(allocated));
            put("used_memory_rss", resident.to_string());
            put("used_memory_rss_human", human(resident));
            put("used_memory_dataset", dataset.to_string());
            put("used_memory_dataset_human", human(dataset));
            put("maxmemory", node.keyspace.maxmemory().to_string());
            put("maxmemory_human", human(node.keyspace.maxmemory()));
            put("maxmemory_policy", node.keyspace.policy().as_str().into());
            put("mem_allocator", "jemalloc".into());
            let (scripts, lua) = node.scripting.stats();
            put("used_memory_lua", lua.to_string());
            put("used_memory_lua_human", human(lua as u64));
            put("number_of_cached_scripts", scripts.to_string());
            // Redis 7's function counts, from the replicated library set.
            let functions = node.meta.functions();
            let count: usize = functions
                .libraries()
                .values()
                .map(|l| l.functions.len())
                .sum();
            put("number_of_functions", count.to_string());
            put(
                "number_of_libraries",
                functions.libraries().len().to_string(),
            );
        }
        "persistence" => {
            for (name, value) in node.persistence.info() {
                put(name, value);
            }
            put("aof_enabled", "0".into());
            put("raft_log_fsync", "1".into());
        }
        "stats" => {
            let s = &node.stats;
            let ks = node.keyspace.stats();
            put(
                "total_connections_received",
                s.connections.load(Relaxed).to_string(),
            );
            put(
                "total_commands_processed",
                s.commands.load(Relaxed).to_string(),
            );
            put("instantaneous_ops_per_sec", s.ops_per_sec().to_string());
            put(
                "total_net_input_bytes",
                s.net_input.load(Relaxed).to_string(),
            );
            put(
                "total_net_output_bytes",
                s.net_output.load(Relaxed).to_string(),
            );
            put("rejected_connections", s.rejected.load(Relaxed).to_string());
            put("expired_keys", ks.expired.to_string());
            put("evicted_keys", ks.evictions.to_string());
            put("keyspace_hits", ks.hits.to_string());
            put("keyspace_misses", ks.misses.to_string());
            put("pubsub_channels", node.pubsub.channel_count().to_string());
            put("pubsub_patterns", node.pubsub.pattern_count().to_string());
            // MIGRATE opens a connection per call and keeps none (`migrate.rs`).
            put("migrate_cached_sockets", "0".into());
            let tracked = node.keyspace.tracking_stats();
            put("tracking_total_keys", tracked.keys.to_string());
            put("tracking_total_items", tracked.items.to_string());
            put(
                "tracking_total_prefixes",
                node.tracker.total_prefixes().to_string(),
            );
            put(
                "total_error_replies",
                s.error_replies.load(Relaxed).to_string(),
            );
            put(
                "protocol_errors",
                s.protocol_errors.load(Relaxed).to_string(),
            );
        }
        "replication" => {
            // The keyspace is not replicated: a master without replicas, as Redis
            // reports one (the fields clients and test suites read).
            put("role", "master".into());
            put("connected_slaves", "0".into());
            put("master_failover_state", "no-failover".into());
            put("master_replid", node.replid.clone());
            put("master_replid2", "0".repeat(40));
            put("master_repl_offset", "0".into());
            put("second_repl_offset", "-1".into());
            put("repl_backlog_active", "0".into());
            put("repl_backlog_size", "1048576".into());
            put("repl_backlog_first_byte_offset", "0".into());
            put("repl_backlog_histlen", "0".into());
        }
        "cpu" => {
            let cpu = cpu_times();
            put("used_cpu_sys", format!("{:.6}", cpu[1]));
            put("used_cpu_user", format!("{:.6}", cpu[0]));
            put("used_cpu_sys_children", format!("{:.6}", cpu[3]));
            put("used_cpu_user_children", format!("{:.6}", cpu[2]));
        }
        "errorstats" => {
            for (prefix, count) in node.stats.errors_by_prefix() {
                put(&format!("errorstat_{prefix}"), format!("count={count}"));
            }
        }
        "cluster" => put("cluster_enabled", "0".into()),
        "commandstats" => {
            for (spec, s) in node.command_stats.call_stats() {
                let per_call = if s.calls == 0 {
                    0.0
                } else {
                    s.usec as f64 / s.calls as f64
                };
                put(
                    &format!("cmdstat_{}", spec.lower_name()),
                    format!(
                        "calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}",
                        s.calls, s.usec, s.rejected, s.failed
                    ),
                );
            }
        }
        "keyspace" => {
            let keys = node.keyspace.len();
            if keys > 0 {
                put(
                    "db0",
                    format!(
                        "keys={keys},expires={},avg_ttl={}",
                        node.keyspace.volatile_len(),
                        node.keyspace.avg_ttl_ms()
                    ),
                );
            }
        }
        "cache" => {
            let ks = node.keyspace.stats();
            put("cache_keys", ks.keys.to_string());
            put("cache_bytes", ks.bytes.to_string());
            put("cache_hits", ks.hits.to_string());
            put("cache_misses", ks.misses.to_string());
            put("cache_hit_rate", format!("{:.4}", ks.hit_rate()));
            put("cache_evictions", ks.evictions.to_string());
            put("cache_expired", ks.expired.to_string());
            let mode = if node.coherent.is_some() {
                "mesi"
            } else {
                "node-local"
            };
            put("cache_coherence", mode.into());
            for (name, value) in crate::coherent_cache::counters(node).fields() {
                put(name, value.to_string());
            }
        }
        "raft" => f.extend(conclave_cluster::HostedGroup::info_raft(
            &**node.locks.group(),
        )),
        "locks" => f.extend(node.locks.info_locks()),
        "queues" => f.extend(node.queues.info_queues()),
        _ => {}
    }
    f
}

/// CPU seconds of this process and its waited-for children: user, system, children's
/// user, children's system (fields 14-17 of `/proc/self/stat`, in clock ticks).
fn cpu_times() -> [f64; 4] {
    let ticks = rustix::param::clock_ticks_per_second().max(1) as f64;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces; the fields after it follow its `)`.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|f| f.parse::<f64>().unwrap_or(0.0) / ticks)
        .collect();
    let mut out = [0.0; 4];
    for (o, f) in out.iter_mut().zip(fields) {
        *o = f;
    }
    out
}

/// jemalloc's allocated and resident bytes (Redis's `used_memory` / `used_memory_rss`).
pub(crate) fn allocator_stats() -> (u64, u64) {
    use tikv_jemalloc_ctl::{epoch, stats};
    let _ = epoch::advance();
    let allocated = stats::allocated::read().unwrap_or(0) as u64;
    let resident = stats::resident::read().unwrap_or(0) as u64;
    (allocated, resident)
}

/// `1.50M`-style sizes, as Redis prints them.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", b / (1024.0 * 1024.0 * 1024.0))
    }
}
