//! `CONFIG GET|SET|RESETSTAT|REWRITE|HELP`, with every parameter declared once in
//! [`PARAMS`]: its name, how to read it, and — for the ones `CONFIG SET` may change —
//! how to validate a new value. Immutable parameters are listed by `CONFIG GET` and
//! refused by `CONFIG SET` with Redis's "can't set immutable config".
//!
//! Redis 7's rules (`config.c`): `CONFIG GET` takes several patterns; a pattern without
//! glob characters is looked up case-insensitively and echoed as given, a glob matches
//! the canonical (lower-case) names; each parameter is answered once. `CONFIG SET`
//! takes several pairs, refuses a parameter named twice, validates every pair before
//! applying any, and names the offending argument in its error.

use std::sync::atomic::Ordering::Relaxed;

use conclave_cache::keyspace::{glob_match, EvictionPolicy};
use conclave_protocol::{Frame, Parse, ParseError};

use crate::config::parse_memory;
use crate::node::Node;

/// A validated new value of a parameter.
enum Change {
    MaxMemory(u64),
    Policy(EvictionPolicy),
    Samples(usize),
    RequirePass(Option<String>),
    AclLogMaxLen(usize),
    MaxClients(usize),
    Timeout(u64),
    ProtoMaxBulkLen(u64),
    LockDefaultTtl(u64),
    BusyReplyThreshold(u64),
    Hz(u64),
    TrackingMaxKeys(u64),
    SlowlogSlowerThan(i64),
    SlowlogMaxLen(u64),
    QueryBufferLimit(u64),
    /// A new client port (applied by binding it, which may fail: see [`set`]).
    Port(u16),
    /// A new client bind address (likewise).
    Bind(String),
    /// `save` rules (refused on a cluster of several nodes: see [`set`]).
    Save(Vec<(u64, u64)>),
    ReplBacklogSize(u64),
    /// Accepted and changes nothing (`appendonly no`, `maxmemory-clients 0`).
    Ignored,
}

/// Validates a value for `CONFIG SET`; the error is the text after Redis's
/// "CONFIG SET failed (possibly related to argument '<name>') - ".
type Setter = fn(&str) -> Result<Change, String>;

/// One configuration parameter.
struct Param {
    /// Canonical (lower-case) name.
    name: &'static str,
    /// Its current value.
    get: fn(&Node) -> String,
    /// `None`: immutable.
    set: Option<Setter>,
}

fn int(v: &str) -> Result<u64, String> {
    v.parse::<u64>()
        .map_err(|_| "argument couldn't be parsed into an integer".to_string())
}

fn signed(v: &str, lo: i64) -> Result<i64, String> {
    let n = v
        .parse::<i64>()
        .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
    if n < lo {
        return Err(format!(
            "argument must be between {lo} and {} inclusive",
            i64::MAX
        ));
    }
    Ok(n)
}

fn memory(v: &str) -> Result<u64, String> {
    parse_memory(v).map_err(|_| "argument must be a memory value".to_string())
}

fn between(n: u64, lo: u64, hi: u64) -> Result<u64, String> {
    if (lo..=hi).contains(&n) {
        Ok(n)
    } else {
        Err(format!("argument must be between {lo} and {hi} inclusive"))
    }
}

/// Parameters `CONFIG GET` answers only when named exactly, not through a glob (Redis's
/// `HIDDEN_CONFIG`): Redis's debugging `key-load-delay`, and Conclave's own immutable
/// identity (`id`, `data-dir`, `no-leader-wait`), which a `CONFIG GET *` / `CONFIG SET`
/// round trip must not meet.
const HIDDEN: &[&str] = &["key-load-delay", "id", "data-dir", "no-leader-wait"];

/// Parameters Redis 7 protects (`PROTECTED_CONFIG`): `CONFIG SET` refuses them with
/// "can't set protected config" while `enable-protected-configs` is `no` (its default).
const PROTECTED: &[&str] = &["dir", "dbfilename"];

/// Every parameter, in `CONFIG GET *` order.
static PARAMS: &[Param] = &[
    Param {
        name: "bind",
        get: |n| n.runtime.bind.read().clone(),
        set: Some(|v| {
            let v = v.trim();
            if v.is_empty() || v.contains(' ') {
                return Err("Conclave listens on one address".into());
            }
            Ok(Change::Bind(v.to_string()))
        }),
    },
    Param {
        name: "port",
        get: |n| n.runtime.port.load(Relaxed).to_string(),
        set: Some(|v| {
            between(int(v)?, 0, 65535).map(|p| Change::Port(u16::try_from(p).unwrap_or(0)))
        }),
    },
    Param {
        name: "save",
        get: |n| n.persistence.params_string(),
        set: Some(|v| crate::persist::parse_save_params(v).map(Change::Save)),
    },
    // Protected in Redis 7 (`enable-protected-configs no`): set with --dir/--dbfilename.
    Param {
        name: "dir",
        get: |n| n.persistence.dir(),
        set: None,
    },
    Param {
        name: "dbfilename",
        get: |n| n.persistence.dbfilename().to_string(),
        set: None,
    },
    // No replicas: accepted and shown, as a Redis master without replicas has it.
    Param {
        name: "repl-backlog-size",
        get: |n| n.runtime.repl_backlog_size.load(Relaxed).to_string(),
        set: Some(|v| between(memory(v)?, 1, i64::MAX as u64).map(Change::ReplBacklogSize)),
    },
    Param {
        name: "appendonly",
        get: |_| "no".into(),
        set: Some(|v| {
            if v.eq_ignore_ascii_case("no") {
                Ok(Change::Ignored)
            } else {
                Err("no append-only file: the cache keyspace is saved only as RDB snapshots (locks persist through the Raft log)".into())
            }
        }),
    },
    // Conclave runs in the foreground (a supervisor or container runs it in the background).
    Param {
        name: "daemonize",
        get: |_| "no".into(),
        set: None,
    },
    Param {
        name: "databases",
        get: |_| "1".into(),
        set: None,
    },
    Param {
        name: "maxmemory",
        get: |n| n.keyspace.maxmemory().to_string(),
        set: Some(|v| memory(v).map(Change::MaxMemory)),
    },
    Param {
        name: "maxmemory-clients",
        get: |_| "0".into(),
        set: Some(|v| {
            let n = match v.strip_suffix('%') {
                Some(pct) => {
                    let pct = int(pct)?;
                    if pct > 100 {
                        return Err("percentage argument must be less or equal to 100".into());
                    }
                    pct
                }
                None => memory(v).map_err(|_| "argument must be a memory or percent value")?,
            };
            if n == 0 {
                Ok(Change::Ignored)
            } else {
                Err("client eviction is not supported (only 0, off)".into())
            }
        }),
    },
    Param {
        name: "client-query-buffer-limit",
        get: |n| n.runtime.query_buffer_limit.load(Relaxed).to_string(),
        set: Some(|v| {
            between(memory(v)?, 1024 * 1024, i64::MAX as u64).map(Change::QueryBufferLimit)
        }),
    },
    // Replication is configured with REPLICAOF (only NO ONE): immutable here, as in Redis.
    Param {
        name: "replicaof",
        get: |_| String::new(),
        set: None,
    },
    Param {
        name: "slaveof",
        get: |_| String::new(),
        set: None,
    },
    // Redis's delay per key loaded at start, for its tests; Conclave loads no keys.
    Param {
        name: "key-load-delay",
        get: |_| "0".into(),
        set: Some(|v| signed(v, i64::from(i32::MIN)).map(|_| Change::Ignored)),
    },
    Param {
        name: "maxmemory-policy",
        get: |n| n.keyspace.policy().as_str().to_string(),
        set: Some(|v| {
            v.parse().map(Change::Policy).map_err(|_| {
                "argument(s) must be one of the following: allkeys-lru, volatile-lru, allkeys-random, noeviction".into()
            })
        }),
    },
    Param {
        name: "maxmemory-samples",
        get: |n| n.keyspace.eviction_samples().to_string(),
        set: Some(|v| between(int(v)?, 1, 64).map(|n| Change::Samples(n as usize))),
    },
    Param {
        name: "requirepass",
        get: |n| n.runtime.requirepass.read().clone().unwrap_or_default(),
        set: Some(|v| Ok(Change::RequirePass((!v.is_empty()).then(|| v.to_string())))),
    },
    Param {
        name: "acllog-max-len",
        get: |n| n.acl.log.max_len.load(Relaxed).to_string(),
        set: Some(|v| {
            between(int(v)?, 0, i64::MAX as u64).map(|n| Change::AclLogMaxLen(n as usize))
        }),
    },
    Param {
        name: "maxclients",
        get: |n| n.runtime.maxclients.load(Relaxed).to_string(),
        set: Some(|v| between(int(v)?, 1, 1_000_000).map(|n| Change::MaxClients(n as usize))),
    },
    Param {
        name: "timeout",
        get: |n| n.runtime.timeout.load(Relaxed).to_string(),
        set: Some(|v| between(int(v)?, 0, i32::MAX as u64).map(Change::Timeout)),
    },
    Param {
        name: "proto-max-bulk-len",
        get: |n| n.runtime.proto_max_bulk_len.load(Relaxed).to_string(),
        set: Some(|v| {
            between(memory(v)?, 1024 * 1024, i64::MAX as u64).map(Change::ProtoMaxBulkLen)
        }),
    },
    Param {
        name: "hz",
        get: |n| n.runtime.hz.load(Relaxed).to_string(),
        set: Some(|v| between(int(v)?, 0, i32::MAX as u64).map(|n| Change::Hz(n.clamp(1, 500)))),
    },
    Param {
        name: "lock-default-ttl",
        get: |n| n.runtime.lock_default_ttl.load(Relaxed).to_string(),
        set: Some(|v| {
            let range = conclave_locks::TTL_RANGE;
            between(int(v)?, *range.start(), *range.end()).map(Change::LockDefaultTtl)
        }),
    },
    Param {
        name: "tracking-table-max-keys",
        get: |n| n.keyspace.tracking_max_keys().to_string(),
        set: Some(|v| between(int(v)?, 0, i64::MAX as u64).map(Change::TrackingMaxKeys)),
    },
    Param {
        name: "busy-reply-threshold",
        get: |n| n.runtime.busy_reply_threshold.load(Relaxed).to_string(),
        set: Some(|v| int(v).map(Change::BusyReplyThreshold)),
    },
    // Redis's older name of the same parameter.
    Param {
        name: "lua-time-limit",
        get: |n| n.runtime.busy_reply_threshold.load(Relaxed).to_string(),
        set: Some(|v| int(v).map(Change::BusyReplyThreshold)),
    },
    Param {
        name: "slowlog-log-slower-than",
        get: |n| n.slowlog.slower_than_us().to_string(),
        set: Some(|v| signed(v, -1).map(Change::SlowlogSlowerThan)),
    },
    Param {
        name: "slowlog-max-len",
        get: |n| n.slowlog.max_len().to_string(),
        set: Some(|v| signed(v, 0).map(|n| Change::SlowlogMaxLen(n.unsigned_abs()))),
    },
    Param {
        name: "no-leader-wait",
        get: |n| n.config.no_leader_wait.to_string(),
        set: None,
    },
    Param {
        name: "cluster-port",
        get: |n| {
            n.config
                .cluster_port()
                .map(|p| p.to_string())
                .unwrap_or_default()
        },
        set: None,
    },
    Param {
        name: "id",
        get: |n| n.config.id.to_string(),
        set: None,
    },
    Param {
        name: "data-dir",
        get: |n| n.config.data_dir.display().to_string(),
        set: None,
    },
];

fn lookup(name: &[u8]) -> Option<&'static Param> {
    PARAMS
        .iter()
        .find(|p| p.name.as_bytes().eq_ignore_ascii_case(name))
}

/// `CONFIG <subcommand> ...` (arity of the subcommand already checked).
pub fn config(node: &Node, sub: &str, parse: &mut Parse) -> Result<Frame, ParseError> {
    match sub {
        "GET" => Ok(get(node, &parse.rest())),
        "SET" => set(node, &parse.rest()),
        "RESETSTAT" => {
            node.command_stats.reset();
            node.stats.reset();
            Ok(Frame::ok())
        }
        "REWRITE" => Err(ParseError::Other(
            "ERR The server is running without a config file".into(),
        )),
        _ => Ok(super::subcommands::help_frame("CONFIG")),
    }
}

fn get(node: &Node, patterns: &[bytes::Bytes]) -> Frame {
    let mut found: Vec<(String, &'static Param)> = Vec::new();
    for pattern in patterns {
        let is_glob = pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
        if !is_glob {
            if let Some(p) = lookup(pattern) {
                if !found.iter().any(|(_, q)| std::ptr::eq(*q, p)) {
                    found.push((String::from_utf8_lossy(pattern).into_owned(), p));
                }
            }
            continue;
        }
        let lower = pattern.to_ascii_lowercase();
        for p in PARAMS.iter().filter(|p| !HIDDEN.contains(&p.name)) {
            if glob_match(&lower, p.name.as_bytes())
                && !found.iter().any(|(_, q)| std::ptr::eq(*q, p))
            {
                found.push((p.name.to_string(), p));
            }
        }
    }
    Frame::Map(
        found
            .into_iter()
            .map(|(name, p)| (Frame::bulk_string(name), Frame::bulk_string((p.get)(node))))
            .collect(),
    )
}

fn set(node: &Node, args: &[bytes::Bytes]) -> Result<Frame, ParseError> {
    if args.is_empty() || !args.len().is_multiple_of(2) {
        return Err(ParseError::Other(
            "ERR wrong number of arguments for 'config|set' command".into(),
        ));
    }
    let failed = |name: &str, why: &str| {
        ParseError::Other(format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
        ))
    };
    // Validate every pair before applying any: a bad pair changes nothing.
    let mut seen: Vec<&'static str> = Vec::new();
    let mut changes = Vec::new();
    for pair in args.chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).into_owned();
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        let Some(param) = lookup(&pair[0]) else {
            return Err(ParseError::Other(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            )));
        };
        if seen.contains(&param.name) {
            return Err(failed(&name, "duplicate parameter"));
        }
        seen.push(param.name);
        let Some(setter) = param.set else {
            let why = if PROTECTED.contains(&param.name) {
                "can't set protected config"
            } else {
                "can't set immutable config"
            };
            return Err(failed(&name, why));
        };
        let change = setter(&value).map_err(|why| failed(&name, &why))?;
        if matches!(&change, Change::Save(p) if !p.is_empty()) && node.persistence.refused() {
            return Err(failed(&name, crate::persist::CLUSTER_REFUSAL));
        }
        changes.push(change);
    }
    // The one apply step that can fail, first: listening on a new client address. When
    // it fails nothing else is applied (Redis rolls back every change of the command).
    let port = changes.iter().find_map(|c| match c {
        Change::Port(p) => Some(*p),
        _ => None,
    });
    let bind = changes.iter().find_map(|c| match c {
        Change::Bind(b) => Some(b.clone()),
        _ => None,
    });
    if port.is_some() || bind.is_some() {
        let r = &node.runtime;
        let old_port = u16::try_from(r.port.load(Relaxed)).unwrap_or(0);
        let old_bind = r.bind.read().clone();
        let (new_port, new_bind) = (port.unwrap_or(old_port), bind.unwrap_or(old_bind.clone()));
        if (new_port, &new_bind) != (old_port, &old_bind) {
            let culprit = if new_port != old_port { "port" } else { "bind" };
            let listener = listen(&new_bind, new_port).map_err(|e| {
                let why = if culprit == "port" {
                    format!("Unable to listen on this port: {e}")
                } else {
                    format!("Failed to bind to specified addresses: {e}")
                };
                failed(culprit, &why)
            })?;
            let bound = listener.local_addr().map_or(new_port, |a| a.port());
            if node.runtime.rebind.send(listener).is_err() {
                return Err(failed(culprit, "the client listener has stopped"));
            }
            r.port.store(u64::from(bound), Relaxed);
            // What peers show as this node's client address from their next handshake.
            let directory = node.locks.peers().directory();
            let cluster = directory.own_client_addr();
            let host = cluster.rsplit_once(':').map_or("", |(h, _)| h).to_string();
            let own = crate::ops::node_view::advertised(
                &format!("{new_bind}:{bound}"),
                &format!("{host}:0"),
            );
            directory.set_own_client_addr(own);
            *r.bind.write() = new_bind;
        }
    }
    for change in changes {
        apply(node, change);
    }
    Ok(Frame::ok())
}

/// A client listener on `bind:port`, ready for the accept loop.
fn listen(bind: &str, port: u16) -> std::io::Result<tokio::net::TcpListener> {
    let host = bind.trim_start_matches('[').trim_end_matches(']');
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&addr)?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As the listener bound at start (tokio's `bind`): a port in TIME_WAIT is reusable.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

fn apply(node: &Node, change: Change) {
    let r = &node.runtime;
    match change {
        Change::MaxMemory(n) => node.keyspace.set_maxmemory(n),
        Change::Policy(p) => node.keyspace.set_policy(p),
        Change::Samples(n) => node.keyspace.set_eviction_samples(n),
        Change::RequirePass(p) => {
            node.acl.set_requirepass(p.as_deref());
            *r.requirepass.write() = p;
        }
        Change::AclLogMaxLen(n) => node.acl.log.max_len.store(n, Relaxed),
        Change::MaxClients(n) => r.maxclients.store(n, Relaxed),
        Change::Timeout(n) => r.timeout.store(n, Relaxed),
        Change::ProtoMaxBulkLen(n) => r.proto_max_bulk_len.store(n, Relaxed),
        Change::LockDefaultTtl(n) => r.lock_default_ttl.store(n, Relaxed),
        Change::Hz(n) => r.hz.store(n, Relaxed),
        Change::TrackingMaxKeys(n) => node.keyspace.set_tracking_max_keys(n),
        Change::BusyReplyThreshold(n) => r.busy_reply_threshold.store(n, Relaxed),
        Change::SlowlogSlowerThan(us) => node.slowlog.set_slower_than_us(us),
        Change::SlowlogMaxLen(n) => node.slowlog.set_max_len(n),
        Change::QueryBufferLimit(n) => r.query_buffer_limit.store(n, Relaxed),
        Change::Save(params) => node.persistence.set_params(params),
        Change::ReplBacklogSize(n) => r.repl_backlog_size.store(n, Relaxed),
        Change::Port(_) | Change::Bind(_) | Change::Ignored => {}
    }
}
