//! Server commands: `COMMAND`, `CONFIG`, `INFO`, `DBSIZE`, `TIME`, `FLUSHALL`,
//! `FLUSHDB`, `SHUTDOWN`, `CLUSTER`.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use conclave_cache::keyspace::{glob_match, EvictionPolicy};
use conclave_protocol::{Frame, Parse, ParseError};

use conclave_protocol::docs::{docs_entry, info_entry};
use conclave_protocol::CommandSpec;

use crate::command_table::{self, lookup_spec};
use crate::config::parse_memory;
use crate::connection::Session;
use crate::info;
use crate::node::Node;

/// Runs a server-group command.
pub fn execute(node: &Node, session: &mut Session, spec: &CommandSpec, parse: &mut Parse) -> Frame {
    let result = match spec.name {
        "COMMAND" => command(parse),
        "CONFIG" => config(node, parse),
        "INFO" => {
            let sections: Vec<String> = parse
                .rest()
                .iter()
                .map(|s| String::from_utf8_lossy(s).to_lowercase())
                .collect();
            Ok(Frame::Verbatim(
                "txt",
                Bytes::from(info::render(node, &sections)),
            ))
        }
        "TIME" => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            Ok(Frame::Array(vec![
                Frame::bulk_string(now.as_secs().to_string()),
                Frame::bulk_string(now.subsec_micros().to_string()),
            ]))
        }
        "SHUTDOWN" => {
            // Options (NOSAVE, NOW, FORCE) change nothing: the cache is not persisted and
            // the Raft log is fsynced as it goes.
            if parse
                .rest()
                .iter()
                .any(|a| a.eq_ignore_ascii_case(b"ABORT"))
            {
                return Frame::error("ERR No shutdown in progress.");
            }
            tracing::info!(client = session.handle.id, "SHUTDOWN requested by a client");
            node.request_shutdown();
            session.close = true;
            Ok(Frame::ok())
        }
        "CLUSTER" => Err(ParseError::Other(
            "ERR This instance has cluster support disabled".into(),
        )),
        _ => Err(ParseError::Other(format!(
            "ERR unknown command '{}'",
            spec.lower_name()
        ))),
    };
    result.unwrap_or_else(|e| e.to_frame())
}

/// `COMMAND [COUNT | INFO name... | DOCS [name...] | LIST]`.
fn command(parse: &mut Parse) -> Result<Frame, ParseError> {
    let Some(sub) = parse.try_next() else {
        return Ok(Frame::Array(
            command_table::specs().map(info_entry).collect(),
        ));
    };
    let names = parse.rest();
    match String::from_utf8_lossy(&sub).to_ascii_uppercase().as_str() {
        "COUNT" => Ok(Frame::Integer(command_table::all().len() as i64)),
        "LIST" => Ok(Frame::Array(
            command_table::specs()
                .map(|c| Frame::bulk_string(c.lower_name()))
                .collect(),
        )),
        "INFO" => {
            if names.is_empty() {
                return Ok(Frame::Array(
                    command_table::specs().map(info_entry).collect(),
                ));
            }
            Ok(Frame::Array(
                names
                    .iter()
                    .map(|n| lookup_spec(n).map(info_entry).unwrap_or(Frame::NullArray))
                    .collect(),
            ))
        }
        "DOCS" => {
            let specs: Vec<&CommandSpec> = if names.is_empty() {
                command_table::specs().collect()
            } else {
                names.iter().filter_map(|n| lookup_spec(n)).collect()
            };
            Ok(Frame::Map(
                specs
                    .into_iter()
                    .map(|c| (Frame::bulk_string(c.lower_name()), docs_entry(c)))
                    .collect(),
            ))
        }
        "GETKEYS" => {
            let spec = names
                .first()
                .and_then(|n| lookup_spec(n))
                .ok_or_else(|| ParseError::Other("ERR Invalid command specified".into()))?;
            let (first, last, step) = spec.keys;
            if step == 0 {
                return Err(ParseError::Other(
                    "ERR The command has no key arguments".into(),
                ));
            }
            let argc = names.len() as i32;
            let last = if last < 0 {
                argc + last
            } else {
                last.min(argc - 1)
            };
            let mut keys = Vec::new();
            let mut i = first;
            while i <= last && i < argc {
                keys.push(Frame::Bulk(names[i as usize].clone()));
                i += step;
            }
            Ok(Frame::Array(keys))
        }
        other => Err(ParseError::Other(format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            other.to_lowercase()
        ))),
    }
}

/// The parameters `CONFIG GET` knows, with their current values.
fn config_values(node: &Node) -> Vec<(&'static str, String)> {
    let c = &node.config;
    let r = &node.runtime;
    vec![
        ("bind", c.bind.clone()),
        ("port", c.port.to_string()),
        ("save", String::new()),
        ("appendonly", "no".into()),
        ("databases", "1".into()),
        ("maxmemory", node.keyspace.maxmemory().to_string()),
        (
            "maxmemory-policy",
            node.keyspace.policy().as_str().to_string(),
        ),
        ("maxmemory-samples", "5".into()),
        (
            "requirepass",
            r.requirepass.read().clone().unwrap_or_default(),
        ),
        ("maxclients", r.maxclients.load(Relaxed).to_string()),
        ("timeout", r.timeout.load(Relaxed).to_string()),
        (
            "proto-max-bulk-len",
            r.proto_max_bulk_len.load(Relaxed).to_string(),
        ),
        ("hz", c.hz.to_string()),
        (
            "lock-default-ttl",
            r.lock_default_ttl.load(Relaxed).to_string(),
        ),
        (
            "busy-reply-threshold",
            r.busy_reply_threshold.load(Relaxed).to_string(),
        ),
        (
            "lua-time-limit",
            r.busy_reply_threshold.load(Relaxed).to_string(),
        ),
        ("no-leader-wait", c.no_leader_wait.to_string()),
        (
            "cluster-port",
            c.cluster_port().map(|p| p.to_string()).unwrap_or_default(),
        ),
        ("id", c.id.to_string()),
        ("data-dir", c.data_dir.display().to_string()),
    ]
}

/// `CONFIG GET pattern...`, `CONFIG SET param value...`, `CONFIG RESETSTAT`, `CONFIG REWRITE`.
fn config(node: &Node, parse: &mut Parse) -> Result<Frame, ParseError> {
    let sub = parse.next_keyword()?;
    match sub.as_str() {
        "GET" => {
            let patterns = parse.rest();
            if patterns.is_empty() {
                return Err(ParseError::Other(
                    "ERR wrong number of arguments for 'config|get' command".into(),
                ));
            }
            let pairs = config_values(node)
                .into_iter()
                .filter(|(name, _)| {
                    patterns
                        .iter()
                        .any(|p| glob_match(&p.to_ascii_lowercase(), name.as_bytes()))
                })
                .map(|(name, value)| (Frame::bulk_static(name), Frame::bulk_string(value)))
                .collect();
            Ok(Frame::Map(pairs))
        }
        "SET" => {
            let args = parse.rest();
            if args.is_empty() || !args.len().is_multiple_of(2) {
                return Err(ParseError::Other(
                    "ERR wrong number of arguments for 'config|set' command".into(),
                ));
            }
            // Validate everything first, so a bad pair changes nothing.
            let mut changes = Vec::new();
            for pair in args.chunks(2) {
                let name = String::from_utf8_lossy(&pair[0]).to_lowercase();
                let value = String::from_utf8_lossy(&pair[1]).into_owned();
                changes.push(validate_config(&name, &value)?);
            }
            for change in changes {
                apply_config(node, change);
            }
            Ok(Frame::ok())
        }
        "RESETSTAT" => {
            node.stats.reset();
            Ok(Frame::ok())
        }
        "REWRITE" => Err(ParseError::Other(
            "ERR The server is running without a config file".into(),
        )),
        other => Err(ParseError::Other(format!(
            "ERR unknown subcommand '{}'. Try CONFIG HELP.",
            other.to_lowercase()
        ))),
    }
}

/// A validated `CONFIG SET` change.
enum ConfigChange {
    MaxMemory(u64),
    Policy(EvictionPolicy),
    RequirePass(Option<String>),
    MaxClients(usize),
    Timeout(u64),
    ProtoMaxBulkLen(u64),
    LockDefaultTtl(u64),
    BusyReplyThreshold(u64),
    Ignored,
}

fn validate_config(name: &str, value: &str) -> Result<ConfigChange, ParseError> {
    let bad = |why: &str| {
        ParseError::Other(format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
        ))
    };
    let int = |v: &str| {
        v.parse::<u64>()
            .map_err(|_| bad("argument couldn't be parsed into an integer"))
    };
    Ok(match name {
        "maxmemory" => ConfigChange::MaxMemory(parse_memory(value).map_err(|_| bad("argument must be a memory value"))?),
        "maxmemory-policy" => ConfigChange::Policy(value.parse().map_err(|_| bad("argument(s) must be one of the following: allkeys-lru, volatile-lru, allkeys-random, noeviction"))?),
        "requirepass" => ConfigChange::RequirePass(if value.is_empty() { None } else { Some(value.to_string()) }),
        "maxclients" => ConfigChange::MaxClients(int(value)?.clamp(1, 1_000_000) as usize),
        "timeout" => ConfigChange::Timeout(int(value)?),
        "proto-max-bulk-len" => {
            let n = parse_memory(value).map_err(|_| bad("argument must be a memory value"))?;
            if n < 1024 * 1024 {
                return Err(bad("argument must be between 1048576 and 9223372036854775807 inclusive"));
            }
            ConfigChange::ProtoMaxBulkLen(n)
        }
        "lock-default-ttl" => {
            let n = int(value)?;
            if !(100..=86_400_000).contains(&n) {
                return Err(bad("argument must be between 100 and 86400000 inclusive"));
            }
            ConfigChange::LockDefaultTtl(n)
        }
        "busy-reply-threshold" | "lua-time-limit" => ConfigChange::BusyReplyThreshold(int(value)?),
        "save" if value.trim().is_empty() => ConfigChange::Ignored,
        "appendonly" if value.eq_ignore_ascii_case("no") => ConfigChange::Ignored,
        "save" | "appendonly" => return Err(bad("the cache keyspace is not persisted (locks are, through the Raft log)")),
        _ => return Err(ParseError::Other(format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'"))),
    })
}

fn apply_config(node: &Node, change: ConfigChange) {
    let r = &node.runtime;
    match change {
        ConfigChange::MaxMemory(n) => node.keyspace.set_maxmemory(n),
        ConfigChange::Policy(p) => node.keyspace.set_policy(p),
        ConfigChange::RequirePass(p) => *r.requirepass.write() = p,
        ConfigChange::MaxClients(n) => r.maxclients.store(n, Relaxed),
        ConfigChange::Timeout(n) => r.timeout.store(n, Relaxed),
        ConfigChange::ProtoMaxBulkLen(n) => r.proto_max_bulk_len.store(n, Relaxed),
        ConfigChange::LockDefaultTtl(n) => r.lock_default_ttl.store(n, Relaxed),
        ConfigChange::BusyReplyThreshold(n) => r.busy_reply_threshold.store(n, Relaxed),
        ConfigChange::Ignored => {}
    }
}
