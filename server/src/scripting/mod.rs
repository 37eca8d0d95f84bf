//! Lua scripting with Redis 7's semantics: `EVAL`, `EVALSHA`, `EVAL_RO`, `EVALSHA_RO`
//! and `SCRIPT LOAD|EXISTS|FLUSH|KILL|HELP`
//! (<https://redis.io/docs/latest/develop/interactions/programmability/eval-intro/>,
//! Redis's `eval.c`, `script.c`, `script_lua.c`).
//!
//! - **The VM** ([`lua_vm`]): one Lua 5.1 per node, made on first use, sandboxed and
//!   read-only like Redis's, with `redis.*`, `bit` and `cjson`. `SCRIPT FLUSH` throws
//!   it away with every script.
//! - **Atomicity** ([`busy`]): a script waits for its turn (scripts and `EXEC` take
//!   turns), takes the keyspace gate exclusive, and runs to its end with no other
//!   command in between. It runs on the calling task's thread turned into a blocking
//!   thread (`tokio::task::block_in_place`): tokio moves the worker's other tasks to a
//!   fresh worker, so the node keeps serving every command that does not need the
//!   keyspace. Keyspace commands of other clients wait without holding a thread, and
//!   are answered `-BUSY` once the script passes `busy-reply-threshold`; `SCRIPT KILL`
//!   stops a script that has not written.
//! - **Commands from scripts** ([`call`]) go through the node's command table with
//!   Redis's checks and error texts; **conversions** both ways are in [`convert`].
//! - **The script cache**: SHA1 of the body (shebang included); `EVALSHA` of an unknown
//!   SHA1 is `-NOSCRIPT No matching script. Please use EVAL.`.
//!
//! Errors a script raises reach its caller as Redis 7 formats them:
//! `-ERR user_script:1: boom script: <sha1>, on @user_script:1.`

pub mod bit;
pub mod busy;
pub mod call;
pub mod cjson;
pub mod convert;
mod fn_engine;
mod fn_payload;
mod fn_replies;
pub mod functions;
pub mod library;
pub mod lua_vm;
mod script_cmd;

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use conclave_cache::keyspace::SharedGate;
use conclave_protocol::command;
use conclave_protocol::parse::parse_i64;
use conclave_protocol::spec::{Declared, Service, NOKEY};
use conclave_protocol::{Frame, ParseError};
use parking_lot::Mutex;
use tokio::sync::OwnedMutexGuard;

use crate::connection::Session;
use crate::node::Node;
use busy::Busy;
use call::Caller;
use lua_vm::{Engine, Invocation};
use script_cmd::{script, script_now, subcommand, Sub};

/// A scripting command, as declared in [`COMMANDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptCmd {
    /// `EVAL script numkeys [key ...] [arg ...]`
    Eval,
    /// `EVAL_RO`: refuses write commands.
    EvalRo,
    /// `EVALSHA sha1 numkeys [key ...] [arg ...]`
    EvalSha,
    /// `EVALSHA_RO`
    EvalShaRo,
    /// `SCRIPT LOAD|EXISTS|FLUSH|KILL|HELP`
    Script,
    /// `FCALL function numkeys [key ...] [arg ...]`
    Fcall,
    /// `FCALL_RO`: refuses functions without `no-writes`.
    FcallRo,
    /// `FUNCTION LOAD|DELETE|FLUSH|RESTORE|DUMP|LIST|STATS|KILL|HELP`
    Function,
}

impl ScriptCmd {
    /// Runs a script or a function (`EVAL*`, `FCALL*`): its keys are declared after a
    /// count at argument 2.
    pub fn runs_code(self) -> bool {
        !matches!(self, ScriptCmd::Script | ScriptCmd::Function)
    }
}

/// The scripting commands, declared once (flags as Redis 7's `COMMAND INFO`).
#[rustfmt::skip]
pub static COMMANDS: &[Declared<ScriptCmd>] = &[
    command!("EVAL", -3, ["noscript", "skip_monitor", "may_replicate", "no_mandatory_keys", "stale", "movablekeys"], NOKEY, "scripting", "Executes a server-side Lua script.", "script numkeys [key [key ...]] [arg [arg ...]]", Service::Server => ScriptCmd::Eval),
    command!("EVALSHA", -3, ["noscript", "skip_monitor", "may_replicate", "no_mandatory_keys", "stale", "movablekeys"], NOKEY, "scripting", "Executes a server-side Lua script by SHA1 digest.", "sha1 numkeys [key [key ...]] [arg [arg ...]]", Service::Server => ScriptCmd::EvalSha),
    command!("EVAL_RO", -3, ["readonly", "noscript", "skip_monitor", "no_mandatory_keys", "stale", "movablekeys"], NOKEY, "scripting", "Executes a read-only server-side Lua script.", "script numkeys [key [key ...]] [arg [arg ...]]", Service::Server => ScriptCmd::EvalRo),
    command!("EVALSHA_RO", -3, ["readonly", "noscript", "skip_monitor", "no_mandatory_keys", "stale", "movablekeys"], NOKEY, "scripting", "Executes a read-only server-side Lua script by SHA1 digest.", "sha1 numkeys [key [key ...]] [arg [arg ...]]", Service::Server => ScriptCmd::EvalShaRo),
    command!("FCALL", -3, ["noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"], NOKEY, "scripting", "Invokes a function.", "function numkeys [key [key ...]] [arg [arg ...]]", Service::Server => ScriptCmd::Fcall),
    command!("FCALL_RO", -3, ["readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"], NOKEY, "scripting", "Invokes a read-only function.", "function numkeys [key [key ...]] [arg [arg ...]]", Service::Server => ScriptCmd::FcallRo),
    command!("FUNCTION", -2, [], NOKEY, "scripting", "A container for function commands.", "LOAD [REPLACE] function-code | DELETE library-name | FLUSH [ASYNC | SYNC] | RESTORE serialized-value [FLUSH | APPEND | REPLACE] | DUMP | LIST [LIBRARYNAME library-name-pattern] [WITHCODE] | STATS | KILL | HELP", Service::Server => ScriptCmd::Function),
    command!("SCRIPT", -2, ["noscript"], NOKEY, "scripting", "A container for Lua scripts management commands.", "LOAD script | EXISTS sha1 [sha1 ...] | FLUSH [ASYNC | SYNC] | KILL | HELP", Service::Server => ScriptCmd::Script),
];

/// Shebang flags of a script (`#!lua flags=no-writes,allow-oom`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScriptFlags {
    /// The script has a shebang: its flags replace `EVAL`'s defaults.
    pub declared: bool,
    /// `no-writes`: it runs read-only, also through `EVAL_RO`.
    pub no_writes: bool,
}

/// Reads a script's shebang line (Redis's `evalExtractShebangFlags`): its flags and the
/// length of the line, which is not compiled (its line feed is, keeping line numbers).
pub fn shebang(body: &[u8]) -> Result<(ScriptFlags, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((ScriptFlags::default(), 0));
    }
    let Some(end) = body.iter().position(|&c| c == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split_ascii_whitespace();
    match parts.next() {
        None => return Err("Invalid engine in script shebang".into()),
        Some("#!lua") => {}
        Some(other) => return Err(format!("Unexpected engine in script shebang: {other}")),
    }
    let mut flags = ScriptFlags {
        declared: true,
        no_writes: false,
    };
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("Unknown lua shebang option: {part}"));
        };
        for flag in list.split(',').filter(|f| !f.is_empty()) {
            match flag {
                "no-writes" => flags.no_writes = true,
                "allow-oom" | "allow-stale" | "no-cluster" | "allow-cross-slot-keys" => {}
                other => return Err(format!("Unexpected flag in script shebang: {other}")),
            }
        }
    }
    Ok((flags, end))
}

/// Lower-case hex SHA1 (`redis.sha1hex`, script names).
pub fn sha1hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

/// A node's scripting: the VM and the busy state.
#[derive(Debug, Default)]
pub struct Scripting {
    engine: Mutex<Option<Engine>>,
    busy: Busy,
    /// When this node last synced its function libraries with the meta leader for an
    /// unknown function (at most one sync a second: see `functions::prepare`).
    last_sync: Mutex<Option<std::time::Instant>>,
}

impl Scripting {
    /// Waits for the keyspace gate (shared) while a script or an `EXEC` holds it;
    /// `-BUSY` once a script passes the threshold. Call for every keyspace command.
    pub async fn keyspace<'k>(&self, node: &'k Node) -> Result<SharedGate<'k>, Frame> {
        if let Some(gate) = node.keyspace.try_shared() {
            return Ok(gate);
        }
        self.busy.keyspace(&node.keyspace).await
    }

    /// Waits for the turn of an `EXEC` (no script running); `-BUSY` once a running
    /// script passes the threshold. Hold the guard while the transaction runs.
    pub async fn turn(&self) -> Result<OwnedMutexGuard<()>, Frame> {
        self.busy.turn().await
    }

    /// Whether a running script has passed the threshold (keyspace commands now get
    /// `-BUSY`).
    pub fn is_busy(&self) -> bool {
        self.busy.current().is_some_and(|run| run.timed_out())
    }

    /// Stops a running script even if it wrote (the node is stopping).
    pub fn abort(&self) {
        self.busy.abort();
    }

    /// Scripts in the cache and the VM's memory in bytes (`INFO memory`).
    pub fn stats(&self) -> (usize, usize) {
        match self.engine.try_lock().as_deref() {
            Some(Some(e)) => (e.len(), e.used_memory()),
            _ => (0, 0),
        }
    }
}

/// Runs a scripting command for a connection.
pub async fn execute(
    node: &Node,
    session: &mut Session,
    cmd: ScriptCmd,
    args: Vec<Bytes>,
) -> Frame {
    match cmd {
        ScriptCmd::Script => return script(node, args).await,
        ScriptCmd::Function => return functions::function(node, args).await,
        ScriptCmd::Fcall | ScriptCmd::FcallRo => {
            return functions::fcall(node, session, cmd == ScriptCmd::FcallRo, args).await
        }
        _ => {}
    }
    let inv = match invocation(cmd, args) {
        Ok(inv) => inv,
        Err(reply) => return reply,
    };
    let _turn = match node.scripting.busy.turn().await {
        Ok(turn) => turn,
        Err(busy) => return busy,
    };
    blocking(|| run(node, session, inv, true))
}

/// The `KEYS` of a script invocation (`EVAL script numkeys key... arg...`, name first);
/// none when malformed (the invocation then fails on its own).
pub fn declared_keys(argv: &[Bytes]) -> Vec<Bytes> {
    let numkeys = argv
        .get(2)
        .and_then(|n| std::str::from_utf8(n).ok())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    argv.iter().skip(3).take(numkeys).cloned().collect()
}

/// Runs a script on a cluster (`crate::coherent_cache::hold`): the caller holds the turn
/// and the script's keys `M`; the keyspace gate is taken here.
pub fn execute_held(node: &Node, session: &mut Session, cmd: ScriptCmd, args: Vec<Bytes>) -> Frame {
    if matches!(cmd, ScriptCmd::Fcall | ScriptCmd::FcallRo) {
        let ro = cmd == ScriptCmd::FcallRo;
        return blocking(|| functions::fcall_now(node, session, ro, args, true));
    }
    match invocation(cmd, args) {
        Ok(inv) => blocking(|| run(node, session, inv, true)),
        Err(reply) => reply,
    }
}

/// Runs a scripting command queued in a transaction: `EXEC` already holds the turn and
/// the keyspace gate.
pub fn execute_in_exec(
    node: &Node,
    session: &mut Session,
    cmd: ScriptCmd,
    args: Vec<Bytes>,
) -> Frame {
    if cmd == ScriptCmd::Script {
        return match subcommand(&args) {
            // SCRIPT KILL inside EXEC: nothing else can be running.
            Ok(Sub::Kill) => Frame::error("NOTBUSY No scripts in execution right now."),
            Ok(sub) => script_now(node, sub, &args),
            Err(e) => e,
        };
    }
    match cmd {
        ScriptCmd::Function => return functions::function_in_exec(node, args),
        ScriptCmd::Fcall | ScriptCmd::FcallRo => {
            let ro = cmd == ScriptCmd::FcallRo;
            return blocking(|| functions::fcall_now(node, session, ro, args, false));
        }
        _ => {}
    }
    match invocation(cmd, args) {
        Ok(inv) => blocking(|| run(node, session, inv, false)),
        Err(reply) => reply,
    }
}

/// Runs `f`, which may take long, without stalling the tokio worker it is called on.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Runs a script (the caller holds the turn); takes the keyspace gate unless held.
fn run(node: &Node, session: &mut Session, inv: Invocation, take_gate: bool) -> Frame {
    let mut slot = node.scripting.engine.lock();
    let engine = match with_engine(&mut slot) {
        Ok(engine) => engine,
        Err(e) => return e,
    };
    if inv.body.is_none() && !engine.exists(&inv.sha) {
        return Frame::error("NOSCRIPT No matching script. Please use EVAL.");
    }
    let threshold = node.runtime.busy_reply_threshold.load(Relaxed);
    let running = node.scripting.busy.start(&inv.sha, threshold);
    let _gate = take_gate.then(|| node.keyspace.exclusive());
    // Changes the script makes are its client's own (NOLOOP hides them from it).
    let client = session.handle.id;
    let _scope = crate::tracking::Scope::enter(&node.tracker, client);
    let mut caller = Caller {
        node,
        session,
        read_only: false,
    };
    engine.run(inv, &mut caller, &running.run)
}

pub(super) fn with_engine(slot: &mut Option<Engine>) -> Result<&mut Engine, Frame> {
    if slot.is_none() {
        let engine = Engine::new()
            .map_err(|e| Frame::error(format!("ERR cannot start the Lua interpreter: {e}")))?;
        *slot = Some(engine);
    }
    slot.as_mut()
        .ok_or_else(|| Frame::error("ERR cannot start the Lua interpreter"))
}

/// Reads `EVAL*`'s arguments in Redis's order of checks.
fn invocation(cmd: ScriptCmd, args: Vec<Bytes>) -> Result<Invocation, Frame> {
    let by_sha = matches!(cmd, ScriptCmd::EvalSha | ScriptCmd::EvalShaRo);
    let read_only = matches!(cmd, ScriptCmd::EvalRo | ScriptCmd::EvalShaRo);
    let mut args = args.into_iter();
    let (Some(script), Some(numkeys)) = (args.next(), args.next()) else {
        let name = match cmd {
            ScriptCmd::Eval => "eval",
            ScriptCmd::EvalRo => "eval_ro",
            ScriptCmd::EvalSha => "evalsha",
            ScriptCmd::EvalShaRo => "evalsha_ro",
            ScriptCmd::Fcall => "fcall",
            ScriptCmd::FcallRo => "fcall_ro",
            ScriptCmd::Script => "script",
            ScriptCmd::Function => "function",
        };
        return Err(Frame::error(format!(
            "ERR wrong number of arguments for '{name}' command"
        )));
    };
    if by_sha && script.len() != 40 {
        return Err(Frame::error(
            "NOSCRIPT No matching script. Please use EVAL.",
        ));
    }
    let numkeys = parse_i64(&numkeys).ok_or_else(|| ParseError::NotInteger.to_frame())?;
    let rest: Vec<Bytes> = args.collect();
    if numkeys > rest.len() as i64 {
        return Err(Frame::error(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    if numkeys < 0 {
        return Err(Frame::error("ERR Number of keys can't be negative"));
    }
    let mut keys = rest;
    let args = keys.split_off(numkeys as usize);
    let (sha, body) = if by_sha {
        (String::from_utf8_lossy(&script).to_ascii_lowercase(), None)
    } else {
        (sha1hex(&script), Some(script))
    };
    Ok(Invocation {
        sha,
        body,
        keys,
        args,
        read_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_of_scripts() {
        assert_eq!(sha1hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            sha1hex(b"Pizza & Mandolino"),
            "74822d82031af7493c20eefa13bd07ec4fada82f"
        );
    }

    #[test]
    fn shebang_flags() {
        assert_eq!(shebang(b"return 1"), Ok((ScriptFlags::default(), 0)));
        let (flags, skip) = shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap();
        assert!(flags.declared && flags.no_writes);
        assert_eq!(skip, 31);
        assert_eq!(
            shebang(b"#!lua\nreturn 1").map(|(f, _)| f.no_writes),
            Ok(false)
        );
        assert!(shebang(b"#!lua").is_err());
        assert_eq!(
            shebang(b"#!python\n").unwrap_err(),
            "Unexpected engine in script shebang: #!python"
        );
        assert_eq!(
            shebang(b"#!lua flags=bogus\n").unwrap_err(),
            "Unexpected flag in script shebang: bogus"
        );
        assert_eq!(
            shebang(b"#!lua name=x\n").unwrap_err(),
            "Unknown lua shebang option: name=x"
        );
    }

    fn args(items: &[&str]) -> Vec<Bytes> {
        items
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn eval_arguments_in_redis_order() {
        let err = |cmd, a: &[&str]| invocation(cmd, args(a)).unwrap_err();
        assert_eq!(
            err(ScriptCmd::Eval, &["return 1", "2", "a"]),
            Frame::error("ERR Number of keys can't be greater than number of args")
        );
        assert_eq!(
            err(ScriptCmd::Eval, &["return 1", "-12"]),
            Frame::error("ERR Number of keys can't be negative")
        );
        assert_eq!(
            err(ScriptCmd::EvalSha, &["NotValidShaSUM", "x"]),
            Frame::error("NOSCRIPT No matching script. Please use EVAL.")
        );
        let inv = invocation(
            ScriptCmd::EvalShaRo,
            args(&[
                "FD758D1589D044DD850A6F05D52F2EEFD27F033F",
                "1",
                "k",
                "a",
                "b",
            ]),
        )
        .unwrap();
        assert_eq!(inv.sha, "fd758d1589d044dd850a6f05d52f2eefd27f033f");
        assert!(inv.read_only && inv.body.is_none());
        assert_eq!((inv.keys.len(), inv.args.len()), (1, 2));
    }
}
