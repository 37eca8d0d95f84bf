//! Server diagnostics and the replication commands of a node that is always a
//! master: `SLOWLOG`, `LATENCY`, `MEMORY`, `LOLWUT`, `ROLE`, `LASTSAVE`, `SAVE`, `BGSAVE`,
//! `REPLICAOF` / `SLAVEOF`, with Redis 7's replies where Conclave has the data.
//!
//! - `SLOWLOG GET|LEN|RESET` read [`crate::slowlog`].
//! - `LATENCY`: Redis's latency monitor samples events past
//!   `latency-monitor-threshold`, which is 0 (off) by default; Conclave has no such
//!   monitor, so `LATEST`/`HISTORY` answer empty, `RESET` 0 and `GRAPH` "no samples",
//!   as Redis does with the monitor off. `HISTOGRAM` is real: each command's calls
//!   and cumulative latency counts from the per-command histograms of `/metrics`,
//!   keyed by their upper bounds in µs rounded up (3, 5, 10, 25, 50, ...), where
//!   Redis uses powers of two.
//! - `MEMORY USAGE` is the keyspace's own accounting of the key; `STATS` the figures
//!   Conclave knows (jemalloc's, the keyspace's, Lua's); `MALLOC-STATS` jemalloc's
//!   report; `PURGE` jemalloc's purge.
//! - `ROLE` answers a master without replicas; `REPLICAOF NO ONE` is `+OK` (already
//!   a master) and any other master is refused: the keyspace is not replicated.
//! - `LASTSAVE`, `SAVE`, `BGSAVE [SCHEDULE]`: RDB snapshots ([`crate::persist`]).
//!   `LASTSAVE` is the last successful save, or the start before any (as Redis sets
//!   `lastsave` at start). `BGSAVE` inside `EXEC` is scheduled for the next tick, as
//!   Redis does (`in_exec`).
//! - `LOLWUT` prints Redis 7's default (`Redis ver. <version>`) for every version.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use conclave_cluster::histogram::LATENCY_NS;
use conclave_protocol::{CommandSpec, Frame, Parse, ParseError};

use super::connection_cmds::REDIS_COMPAT_VERSION;
use super::subcommands::{self, short_name};
use crate::connection::Session;
use crate::info::{allocator_stats, human};
use crate::node::Node;

/// Runs one of this module's commands.
pub fn execute(node: &Node, session: &mut Session, spec: &CommandSpec, parse: &mut Parse) -> Frame {
    let result = match spec.name {
        "SLOWLOG" | "LATENCY" | "MEMORY" => {
            let argc = parse.argc();
            parse.next_bytes().and_then(|typed| {
                let sub = subcommands::resolve(spec.name, &typed, argc)?;
                match spec.name {
                    "SLOWLOG" => slowlog(node, short_name(sub), &typed, parse),
                    "LATENCY" => latency(node, short_name(sub), parse),
                    _ => memory(node, short_name(sub), parse),
                }
            })
        }
        "LOLWUT" => lolwut(parse),
        "ROLE" => Ok(Frame::Array(vec![
            Frame::bulk_static("master"),
            Frame::Integer(0),
            Frame::Array(vec![]),
        ])),
        "LASTSAVE" => Ok(Frame::Integer(node.persistence.lastsave() as i64)),
        "SAVE" => {
            let p = &node.persistence;
            crate::scripting::blocking(|| p.save())
                .map(|()| Frame::ok())
                .map_err(|e| ParseError::Other(e.to_string()))
        }
        "BGSAVE" => bgsave(node, session, parse),
        "REPLICAOF" | "SLAVEOF" => replicaof(spec, parse),
        _ => Err(ParseError::Other(format!(
            "ERR unknown command '{}'",
            spec.lower_name()
        ))),
    };
    result.unwrap_or_else(|e| e.to_frame())
}

/// `BGSAVE [SCHEDULE]`: Redis's `bgsaveCommand` replies.
fn bgsave(node: &Node, session: &Session, parse: &mut Parse) -> Result<Frame, ParseError> {
    let opts = parse.rest();
    if !(opts.is_empty() || (opts.len() == 1 && opts[0].eq_ignore_ascii_case(b"SCHEDULE"))) {
        return Err(ParseError::Syntax);
    }
    let started = if session.in_exec {
        node.persistence.schedule()
    } else {
        node.persistence.bgsave()
    };
    started
        .map(Frame::simple)
        .map_err(|e| ParseError::Other(e.to_string()))
}

/// `SLOWLOG GET [count] | LEN | RESET | HELP` (`typed`: the subcommand as sent).
fn slowlog(node: &Node, sub: &str, typed: &[u8], parse: &mut Parse) -> Result<Frame, ParseError> {
    match sub {
        "GET" if parse.remaining() > 1 => Err(ParseError::Other(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            String::from_utf8_lossy(typed)
        ))),
        "GET" => {
            let count = match parse.try_next() {
                None => Some(10),
                Some(arg) => {
                    let n = std::str::from_utf8(&arg)
                        .ok()
                        .and_then(|s| s.parse::<i64>().ok())
                        .filter(|&n| n >= -1)
                        .ok_or_else(|| {
                            ParseError::Other(
                                "ERR count should be greater than or equal to -1".into(),
                            )
                        })?;
                    usize::try_from(n).ok()
                }
            };
            Ok(node.slowlog.get(count))
        }
        "LEN" => Ok(Frame::Integer(node.slowlog.len() as i64)),
        "RESET" => {
            node.slowlog.reset();
            Ok(Frame::ok())
        }
        _ => Ok(subcommands::help_frame("SLOWLOG")),
    }
}

/// `LATENCY DOCTOR | GRAPH event | HISTOGRAM [command ...] | HISTORY event | LATEST |
/// RESET [event ...] | HELP`.
fn latency(node: &Node, sub: &str, parse: &mut Parse) -> Result<Frame, ParseError> {
    match sub {
        "LATEST" | "HISTORY" => Ok(Frame::Array(vec![])),
        "RESET" => Ok(Frame::Integer(0)),
        "GRAPH" => {
            let event = parse.next_bytes()?;
            Err(ParseError::Other(format!(
                "ERR No samples available for event '{}'",
                String::from_utf8_lossy(&event)
            )))
        }
        "DOCTOR" => Ok(Frame::Verbatim(
            "txt",
            Bytes::from_static(
                b"This node has no latency monitor (as Redis with latency-monitor-threshold 0): \
                  no latency events are recorded. LATENCY HISTOGRAM, SLOWLOG and the \
                  conclave_command_duration_seconds histograms of /metrics give per-command \
                  latencies.\n",
            ),
        )),
        "HISTOGRAM" => Ok(histogram(node, &parse.rest())),
        _ => Ok(subcommands::help_frame("LATENCY")),
    }
}

/// `LATENCY HISTOGRAM`: per command executed at least once (or per named command),
/// `calls` and `histogram_usec` (upper bound in µs → calls at most that long).
fn histogram(node: &Node, names: &[Bytes]) -> Frame {
    let wanted = |spec: &CommandSpec| {
        names.is_empty()
            || names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(spec.name.as_bytes()))
    };
    let entries = node
        .command_stats
        .snapshot()
        .into_iter()
        .filter(|(spec, _)| wanted(spec))
        .map(|(spec, snap)| {
            let mut cumulative = 0u64;
            let mut buckets = Vec::new();
            for (i, &count) in snap.counts.iter().enumerate() {
                if count == 0 {
                    continue;
                }
                cumulative += count;
                let upper_us = LATENCY_NS
                    .upper
                    .get(i)
                    .map_or(i64::MAX, |&ns| ns.div_ceil(1000) as i64);
                buckets.push((Frame::Integer(upper_us), Frame::Integer(cumulative as i64)));
            }
            let body = Frame::Map(vec![
                (
                    Frame::bulk_static("calls"),
                    Frame::Integer(snap.count() as i64),
                ),
                (Frame::bulk_static("histogram_usec"), Frame::Map(buckets)),
            ]);
            (Frame::bulk_string(spec.lower_name()), body)
        })
        .collect();
    Frame::Map(entries)
}

/// `MEMORY USAGE key [SAMPLES n] | STATS | DOCTOR | MALLOC-STATS | PURGE | HELP`.
fn memory(node: &Node, sub: &str, parse: &mut Parse) -> Result<Frame, ParseError> {
    match sub {
        "USAGE" => {
            let key = parse.next_bytes()?;
            match parse.try_next() {
                None => {}
                Some(opt) if opt.eq_ignore_ascii_case(b"SAMPLES") && parse.remaining() == 1 => {
                    // Strings have no nested values to sample: checked, then unused.
                    parse.next_i64()?;
                }
                Some(_) => return Err(ParseError::Syntax),
            }
            Ok(node
                .keyspace
                .memory_usage(&key)
                .map_or(Frame::Null, |n| Frame::Integer(n as i64)))
        }
        "STATS" => Ok(memory_stats(node)),
        "DOCTOR" => {
            let (allocated, resident) = allocator_stats();
            Ok(Frame::Verbatim(
                "txt",
                Bytes::from(format!(
                    "Conclave memory report: {} allocated, {} resident, {} in {} keys of the \
                     keyspace (maxmemory {}, policy {}). No memory issue detected.\n",
                    human(allocated),
                    human(resident),
                    human(node.keyspace.used_bytes()),
                    node.keyspace.len(),
                    human(node.keyspace.maxmemory()),
                    node.keyspace.policy().as_str(),
                )),
            ))
        }
        "MALLOC-STATS" => Ok(Frame::Verbatim(
            "txt",
            Bytes::from(crate::allocator::stats_text()),
        )),
        "PURGE" => {
            if crate::allocator::purge() {
                Ok(Frame::ok())
            } else {
                Err(ParseError::Other("ERR Error purging dirty pages".into()))
            }
        }
        _ => Ok(subcommands::help_frame("MEMORY")),
    }
}

/// `MEMORY STATS`: the fields of Redis's reply that Conclave can fill truthfully.
fn memory_stats(node: &Node) -> Frame {
    let (allocated, resident) = allocator_stats();
    let dataset = node.keyspace.used_bytes();
    let keys = node.keyspace.len() as u64;
    let (_, lua) = node.scripting.stats();
    let int = |n: u64| Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    let mut fields = vec![
        ("total.allocated", int(allocated)),
        ("replication.backlog", int(0)),
        ("clients.slaves", int(0)),
        ("aof.buffer", int(0)),
        ("lua.caches", int(lua as u64)),
        ("keys.count", int(keys)),
        (
            "keys.bytes-per-key",
            int(dataset.checked_div(keys).unwrap_or(0)),
        ),
        ("dataset.bytes", int(dataset)),
    ];
    if allocated > 0 {
        fields.push((
            "dataset.percentage",
            Frame::Double(dataset as f64 * 100.0 / allocated as f64),
        ));
    }
    fields.push(("allocator.allocated", int(allocated)));
    fields.push(("allocator.resident", int(resident)));
    if allocated > 0 {
        fields.push((
            "allocator-rss.ratio",
            Frame::Double(resident as f64 / allocated as f64),
        ));
    }
    fields.push(("maxmemory", int(node.keyspace.maxmemory())));
    fields.push(("connected.clients", int(node.clients.len() as u64)));
    fields.push((
        "maxclients",
        int(node.runtime.maxclients.load(Relaxed) as u64),
    ));
    Frame::Map(
        fields
            .into_iter()
            .map(|(k, v)| (Frame::bulk_static(k), v))
            .collect(),
    )
}

/// `LOLWUT [VERSION v] [...]`: Redis 7's default output for every version.
fn lolwut(parse: &mut Parse) -> Result<Frame, ParseError> {
    if let Some(first) = parse.try_next() {
        if first.eq_ignore_ascii_case(b"VERSION") {
            parse.next_i64()?;
        }
    }
    Ok(Frame::Verbatim(
        "txt",
        Bytes::from(format!("Redis ver. {REDIS_COMPAT_VERSION}\n")),
    ))
}

/// `REPLICAOF host port`: `NO ONE` is a no-op on a master; a real master is refused.
fn replicaof(spec: &CommandSpec, parse: &mut Parse) -> Result<Frame, ParseError> {
    let host = parse.next_bytes()?;
    let port = parse.next_bytes()?;
    if host.eq_ignore_ascii_case(b"NO") && port.eq_ignore_ascii_case(b"ONE") {
        return Ok(Frame::ok());
    }
    Err(ParseError::Other(format!(
        "ERR {} is not supported: a Conclave node does not replicate its keyspace from \
         another server (locks are replicated through Raft)",
        spec.name
    )))
}
