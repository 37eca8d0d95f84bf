//! Redis 7 functions: `FCALL`, `FCALL_RO` and `FUNCTION
//! LOAD|DELETE|FLUSH|RESTORE|DUMP|LIST|STATS|KILL|HELP` (Redis's `functions.c`, with its
//! replies and error texts).
//!
//! The libraries are cluster state: every change goes through the meta Raft group
//! ([`conclave_cluster::meta::functions`]), so every node holds the same libraries and
//! they survive restarts (the meta group's log and snapshots, where Redis keeps them in
//! its RDB/AOF). The node taking `FUNCTION LOAD` compiles the library and runs its body
//! first (Redis's checks and the 500 ms load timeout), then proposes it; the reply comes
//! once the change is applied on the meta leader and on this node. Each node's Lua
//! engine mirrors the applied set lazily: before a function command it compiles what
//! changed since the version it mirrors ([`super::lua_vm::Engine::mirror`]). A node
//! asked for a function it does not know first syncs with the meta leader (a no-op
//! entry through the log, then waits to apply it), so a library loaded on any node is
//! callable on every node once `FUNCTION LOAD` has replied.
//!
//! `FCALL` runs like `EVAL` (same VM, same turn with `EXEC`, same keyspace gate, same
//! `redis.call` checks, same busy rules — `FUNCTION KILL` for functions); on a cluster it
//! holds its declared keys `M` for its run. Inside `MULTI`, `FCALL` and the reading
//! subcommands run; `FUNCTION LOAD|DELETE|FLUSH|RESTORE` are refused there (they wait on
//! the log).

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use conclave_cluster::meta::functions::{FunctionOp, RestorePolicy};
use conclave_protocol::Frame;

use super::call::Caller;
use super::fn_engine::{LOAD_TIMEOUT, REPLAY_TIMEOUT};
use super::fn_payload;
use super::fn_replies::{help, list, stats};
use super::library;
use super::{blocking, with_engine};
use crate::connection::Session;
use crate::node::Node;

/// Brings this node's engine up to the applied library set; if `name` is still not
/// a function, syncs with the meta leader once (on a node of several; a no-op entry
/// through the meta log, so at most one a second per node, whatever clients call) and
/// looks again. Call before taking the turn for `FCALL` (this takes it for a moment:
/// the engine is busy while a script runs).
pub async fn prepare(node: &Node, name: Option<&Bytes>) {
    let Ok(_turn) = node.scripting.busy.turn().await else {
        return;
    };
    let known = |node: &Node| {
        let mut slot = node.scripting.engine.lock();
        let Ok(engine) = with_engine(&mut slot) else {
            return true;
        };
        engine.mirror_from(node);
        name.is_none_or(|n| engine.function(n).is_some())
    };
    if known(node) || node.coherent.is_none() {
        return;
    }
    drop(_turn);
    {
        let mut last = node.scripting.last_sync.lock();
        if last.is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(1)) {
            return;
        }
        *last = Some(std::time::Instant::now());
    }
    if let Ok(Ok(version)) = node.meta.functions_write(FunctionOp::Sync).await {
        node.meta.wait_functions(version).await;
    }
}

impl super::lua_vm::Engine {
    /// [`Self::mirror`] of this node's applied set, when its version moved.
    pub fn mirror_from(&mut self, node: &Node) {
        if self.functions_version != Some(node.meta.functions_version()) {
            self.mirror(&node.meta.functions());
        }
    }
}

/// `FCALL`/`FCALL_RO` from a connection (not on a cluster, not in `MULTI`).
pub async fn fcall(node: &Node, session: &mut Session, ro: bool, args: Vec<Bytes>) -> Frame {
    prepare(node, args.first()).await;
    let _turn = match node.scripting.busy.turn().await {
        Ok(turn) => turn,
        Err(busy) => return busy,
    };
    blocking(|| fcall_now(node, session, ro, args, true))
}

/// Runs `FCALL`/`FCALL_RO` now: the caller holds the turn (and the keyspace gate unless
/// `take_gate`). Redis's order: function, number of keys, `FCALL_RO` of a writer, memory.
pub fn fcall_now(
    node: &Node,
    session: &mut Session,
    ro: bool,
    args: Vec<Bytes>,
    take_gate: bool,
) -> Frame {
    let mut slot = node.scripting.engine.lock();
    let engine = match with_engine(&mut slot) {
        Ok(engine) => engine,
        Err(e) => return e,
    };
    engine.mirror_from(node);
    let Some(def) = args.first().and_then(|n| engine.function(n)).cloned() else {
        return Frame::error("ERR Function not found");
    };
    let numkeys = args
        .get(1)
        .and_then(|n| std::str::from_utf8(n).ok())
        .and_then(|n| n.parse::<i64>().ok());
    let Some(numkeys) = numkeys else {
        return Frame::error("ERR Bad number of keys provided");
    };
    let rest = &args[2.min(args.len())..];
    if numkeys > rest.len() as i64 {
        return Frame::error("ERR Number of keys can't be greater than number of args");
    }
    if numkeys < 0 {
        return Frame::error("ERR Number of keys can't be negative");
    }
    let (keys, argv) = rest.split_at(numkeys as usize);
    if ro && def.flags & library::NO_WRITES == 0 {
        return Frame::error("ERR Can not execute a script with write flag using *_ro command.");
    }
    if def.flags & (library::NO_WRITES | library::ALLOW_OOM) == 0 {
        if let Err(oom) = check_memory(node, engine.used_memory()) {
            return oom;
        }
    }
    let threshold = node.runtime.busy_reply_threshold.load(Relaxed);
    let mut command = Vec::with_capacity(args.len() + 1);
    command.push(Bytes::from_static(if ro { b"fcall_ro" } else { b"fcall" }));
    command.extend(args.iter().cloned());
    let running = node
        .scripting
        .busy
        .start_function(&def.name, command, threshold);
    let _gate = take_gate.then(|| node.keyspace.exclusive());
    let client = session.handle.id;
    let _scope = crate::tracking::Scope::enter(&node.tracker, client);
    let mut caller = Caller {
        node,
        session,
        read_only: false,
    };
    engine.call_function(&def, keys, argv, ro, &mut caller, &running.run)
}

/// Redis's `denyoom` check for `FUNCTION LOAD|RESTORE` and a function that may write:
/// the keyspace past `maxmemory` (after evicting what the policy allows), or the keyspace
/// and the Lua VM's `lua_bytes` together past it (Redis counts the functions' memory as
/// used memory).
fn check_memory(node: &Node, lua_bytes: usize) -> Result<(), Frame> {
    node.keyspace
        .check_memory()
        .map_err(|oom| Frame::error(oom.to_string()))?;
    let max = node.keyspace.maxmemory();
    if max > 0 && node.keyspace.used_bytes() + lua_bytes as u64 > max {
        return Err(Frame::error(
            "OOM command not allowed when used memory > 'maxmemory'.",
        ));
    }
    Ok(())
}

/// A `FUNCTION` subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    Load,
    Delete,
    Flush,
    Restore,
    Dump,
    List,
    Stats,
    Kill,
    Help,
}

fn subcommand(args: &[Bytes]) -> Result<Sub, Frame> {
    let name = args.first().cloned().unwrap_or_default();
    let spec = crate::builtin::subcommands::resolve("FUNCTION", &name, args.len() + 1)
        .map_err(|e| e.to_frame())?;
    Ok(match crate::builtin::subcommands::short_name(spec) {
        "LOAD" => Sub::Load,
        "DELETE" => Sub::Delete,
        "FLUSH" => Sub::Flush,
        "RESTORE" => Sub::Restore,
        "DUMP" => Sub::Dump,
        "LIST" => Sub::List,
        "STATS" => Sub::Stats,
        "KILL" => Sub::Kill,
        _ => Sub::Help,
    })
}

/// Redis's `addReplySubcommandSyntaxError`.
fn syntax_error(sub: &Bytes) -> Frame {
    Frame::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
        String::from_utf8_lossy(&sub[..sub.len().min(128)])
    ))
}

/// `FUNCTION ...` from a connection.
pub async fn function(node: &Node, args: Vec<Bytes>) -> Frame {
    let sub = match subcommand(&args) {
        Ok(sub) => sub,
        Err(e) => return e,
    };
    match sub {
        Sub::Kill => node.scripting.busy.kill(true).await,
        Sub::Stats => stats(node),
        Sub::Load => load(node, &args).await,
        Sub::Delete => write(node, FunctionOp::Delete(text(&args[1]))).await,
        Sub::Flush => match flush_mode(&args) {
            Ok(()) => write(node, FunctionOp::Flush).await,
            Err(e) => e,
        },
        Sub::Restore => restore(node, &args).await,
        Sub::Dump | Sub::Help => read_now(node, sub, &args),
        Sub::List => match node.scripting.busy.turn().await {
            Ok(_turn) => read_now(node, sub, &args),
            Err(busy) => busy,
        },
    }
}

/// `FUNCTION ...` queued in a transaction (`EXEC` holds the turn): the reading
/// subcommands run, the writing ones are refused.
pub fn function_in_exec(node: &Node, args: Vec<Bytes>) -> Frame {
    match subcommand(&args) {
        Ok(Sub::Kill) => Frame::error("NOTBUSY No scripts in execution right now."),
        Ok(Sub::Stats) => stats(node),
        Ok(sub @ (Sub::Dump | Sub::List | Sub::Help)) => read_now(node, sub, &args),
        Ok(_) => Frame::error(
            "ERR FUNCTION LOAD, DELETE, FLUSH and RESTORE are not allowed inside MULTI on Conclave (they go through the cluster log)",
        ),
        Err(e) => e,
    }
}

fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn flush_mode(args: &[Bytes]) -> Result<(), Frame> {
    match args.len() {
        1 => Ok(()),
        2 if args[1].eq_ignore_ascii_case(b"sync") || args[1].eq_ignore_ascii_case(b"async") => {
            Ok(())
        }
        2 => Err(Frame::error(
            "ERR FUNCTION FLUSH only supports SYNC|ASYNC option",
        )),
        _ => Err(syntax_error(&args[0])),
    }
}

/// Proposes `op`; the reply `FUNCTION DELETE|FLUSH|RESTORE` give.
async fn write(node: &Node, op: FunctionOp) -> Frame {
    match node.meta.functions_write(op).await {
        Ok(Ok(_)) => Frame::ok(),
        Ok(Err(e)) => Frame::error(format!("ERR {e}")),
        Err(e) => Frame::error(e.to_string()),
    }
}

/// `FUNCTION LOAD [REPLACE] code`.
async fn load(node: &Node, args: &[Bytes]) -> Frame {
    let mut replace = false;
    let mut at = 1;
    while at < args.len() - 1 {
        if args[at].eq_ignore_ascii_case(b"replace") {
            replace = true;
            at += 1;
            continue;
        }
        return Frame::error(format!("ERR Unknown option given: {}", text(&args[at])));
    }
    if at >= args.len() {
        return Frame::error("ERR Function code is missing");
    }
    if let Err(oom) = check_memory(node, node.scripting.stats().1) {
        return oom;
    }
    let code = &args[at];
    prepare(node, None).await;
    let compiled = on_engine(node, |engine| {
        engine.mirror_from(node);
        let md = library::metadata(code).map_err(|e| Frame::error(format!("ERR {e}")))?;
        if library::valid_name(&md.name)
            && md.engine.eq_ignore_ascii_case("lua")
            && engine.libraries().contains_key(&md.name)
            && !replace
        {
            return Err(Frame::error(format!(
                "ERR Library '{}' already exists",
                md.name
            )));
        }
        engine
            .compile_library(code, Some(LOAD_TIMEOUT))
            .map_err(|e| Frame::error(format!("ERR {e}")))
    })
    .await;
    let lib = match compiled {
        Ok(lib) => lib,
        Err(e) => return e,
    };
    let name = lib.name.clone();
    let op = FunctionOp::Load {
        library: lib.to_new(),
        replace,
    };
    match node.meta.functions_write(op).await {
        Ok(Ok(_)) => Frame::bulk_string(name),
        Ok(Err(e)) => Frame::error(format!("ERR {e}")),
        Err(e) => Frame::error(e.to_string()),
    }
}

/// `FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]`.
async fn restore(node: &Node, args: &[Bytes]) -> Frame {
    if args.len() > 3 {
        return syntax_error(&args[0]);
    }
    let policy =
        match args.get(2) {
            None => RestorePolicy::Append,
            Some(p) if p.eq_ignore_ascii_case(b"append") => RestorePolicy::Append,
            Some(p) if p.eq_ignore_ascii_case(b"replace") => RestorePolicy::Replace,
            Some(p) if p.eq_ignore_ascii_case(b"flush") => RestorePolicy::Flush,
            Some(_) => return Frame::error(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ),
        };
    if let Err(oom) = check_memory(node, node.scripting.stats().1) {
        return oom;
    }
    let codes = match fn_payload::decode(&args[1]) {
        Ok(codes) => codes,
        Err(e) => return Frame::error(format!("ERR {e}")),
    };
    let compiled = on_engine(node, |engine| {
        let mut libs: Vec<conclave_cluster::meta::functions::NewLibrary> = Vec::new();
        for code in &codes {
            let lib = engine
                .compile_library(code, Some(REPLAY_TIMEOUT))
                .map_err(|e| Frame::error(format!("ERR {e}")))?;
            if libs.iter().any(|l| l.name == lib.name) {
                return Err(Frame::error(format!(
                    "ERR Library '{}' already exists",
                    lib.name
                )));
            }
            libs.push(lib.to_new());
        }
        Ok(libs)
    })
    .await;
    match compiled {
        Ok(libraries) => write(node, FunctionOp::Restore { libraries, policy }).await,
        Err(e) => e,
    }
}

/// Runs `f` on the node's Lua engine (made on first use), holding the scripting turn so
/// no script runs meanwhile: how `FUNCTION LOAD` and `RESTORE` compile libraries before
/// they go to the meta log. `Err` is the reply: `-BUSY` past a running script's
/// threshold, an engine that cannot start, or `f`'s own error.
async fn on_engine<T>(
    node: &Node,
    f: impl FnOnce(&mut super::lua_vm::Engine) -> Result<T, Frame>,
) -> Result<T, Frame> {
    let _turn = node.scripting.busy.turn().await?;
    blocking(|| {
        let mut slot = node.scripting.engine.lock();
        f(with_engine(&mut slot)?)
    })
}

/// `FUNCTION DUMP|LIST|HELP` (for `LIST` the caller holds the turn: the engine is
/// in use while a script runs).
fn read_now(node: &Node, sub: Sub, args: &[Bytes]) -> Frame {
    match sub {
        Sub::Dump => {
            let set = node.meta.functions();
            let codes: Vec<&[u8]> = set
                .libraries()
                .values()
                .map(|l| l.code.as_bytes())
                .collect();
            Frame::Bulk(Bytes::from(fn_payload::encode(&codes)))
        }
        Sub::List => list(node, args),
        _ => help(),
    }
}
