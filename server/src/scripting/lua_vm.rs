//! The node's Lua VM: Lua 5.1 (vendored by mlua) set up as Redis 7 sets up its own, and
//! the compiled scripts it holds.
//!
//! The VM loads Lua's base, table, string and math libraries, then `prelude.lua` removes
//! what Redis does not offer (`os`, `io`, `debug`, `require`, `loadfile`, `dofile`,
//! `print`), adds `redis`, `bit` and `cjson`, replaces `pcall` with Redis 7's, refuses
//! bytecode in `loadstring`/`load`, and makes the globals and every library read-only.
//! Scripts are compiled once per SHA1 as chunk `@user_script`, so their errors read
//! `user_script:<line>: ...` like Redis's. At most [`MAX_EVAL_SCRIPTS`] scripts created
//! by `EVAL` are kept (least recently used first out, as Redis 7.4 does); scripts from
//! `SCRIPT LOAD` stay until `SCRIPT FLUSH`.
//!
//! (Just over 500 lines: building the VM and running a script or function share the
//! VM's private slots; the functions' side is in `fn_engine.rs`.)

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::Bytes;
use conclave_protocol::Frame;
use mlua::chunk::ChunkMode;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};

use super::busy::Run;
use super::call::{self, Caller};
use super::convert::{self, error_text};
use super::library::{self, Library, LoadSlot};
use super::{bit, cjson, sha1hex, shebang, ScriptFlags};
use crate::builtin::connection_cmds::REDIS_COMPAT_VERSION;

/// Scripts created by `EVAL` kept at most (Redis 7.4's `LRU_LIST_LENGTH`).
pub const MAX_EVAL_SCRIPTS: usize = 500;

/// Most memory the VM may allocate, in bytes; past it a script fails with
/// "not enough memory" instead of the node running out.
pub const MEMORY_LIMIT: usize = 1 << 30;

/// Lua instructions between two checks for `SCRIPT KILL` (Redis checks every 100,000).
const HOOK_EVERY: u32 = 100_000;

/// The message a killed script fails with.
pub const KILLED: &str = "ERR Script killed by user with SCRIPT KILL...";

const PRELUDE: &str = include_str!("prelude.lua");

/// One compiled script.
struct Script {
    func: Function,
    flags: ScriptFlags,
    /// Last use, for scripts created by `EVAL` (`None`: from `SCRIPT LOAD`, never evicted).
    used: Option<u64>,
}

/// What to run: a script (by body for `EVAL`, by SHA1 for `EVALSHA`) and its arguments.
#[derive(Debug)]
pub struct Invocation {
    /// Lower-case hex SHA1 of the body.
    pub sha: String,
    /// The body (`EVAL`); `None` for `EVALSHA`.
    pub body: Option<Bytes>,
    /// `KEYS`.
    pub keys: Vec<Bytes>,
    /// `ARGV`.
    pub args: Vec<Bytes>,
    /// Called as `EVAL_RO`/`EVALSHA_RO`.
    pub read_only: bool,
}

/// The VM and its scripts.
pub struct Engine {
    pub(super) lua: Lua,
    /// Where the (protected) globals live: `KEYS` and `ARGV` are set here.
    globals: Table,
    /// Per-run slots the prelude reads (`call`, `setresp`, `killed`).
    ctx: Table,
    /// Calls a script under the error handler.
    runner: Function,
    scripts: HashMap<String, Script>,
    clock: u64,
    /// Runs a library's body with the library API as globals (`FUNCTION LOAD`).
    pub(super) load_runner: Function,
    /// Calls a registered function with its keys and arguments (`FCALL`).
    pub(super) call_runner: Function,
    /// Where `redis.register_function` records, while a library loads.
    pub(super) load_slot: LoadSlot,
    /// The function libraries, by name, mirroring the meta group's set.
    pub(super) libraries: BTreeMap<String, Library>,
    /// The version of the meta group's set [`Self::libraries`] mirrors.
    pub(super) functions_version: Option<u64>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("scripts", &self.scripts.len())
            .finish()
    }
}

/// The text of an error raised by Rust (kept whole) inside Lua.
fn describe(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => describe(cause),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::MemoryError(m) => format!("ERR {m}"),
        other => format!("ERR {other}"),
    }
}

impl Engine {
    /// A fresh VM with the sandbox and Redis's libraries.
    pub fn new() -> mlua::Result<Engine> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::new(),
        )?;
        lua.set_memory_limit(MEMORY_LIMIT)?;
        let native = lua.create_table()?;
        native.raw_set(
            "errmsg",
            lua.create_function(|lua, v: Value| match v {
                Value::Error(e) => lua.create_string(describe(&e)).map(Value::String),
                other => Ok(other),
            })?,
        )?;
        native.raw_set(
            "where",
            lua.create_function(|lua, ()| {
                for level in 1.. {
                    let found = lua.inspect_stack(level, |d| {
                        let src = d.source();
                        let source = src.source.as_deref().unwrap_or("").to_string();
                        // Skip C functions, the prelude's wrappers and tail-call marks.
                        let ours = matches!(source.as_str(), "=conclave" | "=(tail call)");
                        (!matches!(src.what, "C" | "tail") && !ours)
                            .then(|| (source, d.current_line().unwrap_or(0)))
                    });
                    match found {
                        None => break,
                        Some(Some((source, line))) => return Ok((Some(source), Some(line))),
                        Some(None) => {}
                    }
                }
                Ok((None, None))
            })?,
        )?;
        native.raw_set(
            "error_text",
            lua.create_function(|lua, s: mlua::LuaString| {
                lua.create_string(error_text(&s.as_bytes()))
            })?,
        )?;
        native.raw_set(
            "sha1hex",
            lua.create_function(|_, v: Value| {
                let bytes = match &v {
                    Value::String(s) => s.as_bytes().to_vec(),
                    Value::Integer(_) | Value::Number(_) => {
                        v.to_string().unwrap_or_default().into_bytes()
                    }
                    _ => Vec::new(),
                };
                Ok(sha1hex(&bytes))
            })?,
        )?;
        native.raw_set("log", lua.create_function(log)?)?;
        let ctx = lua.create_table()?;
        // redis.call / redis.pcall / redis.setresp: C functions that forward to this run's
        // slots in `ctx` (filled by `invoke` for the length of one script).
        let c = ctx.clone();
        native.raw_set(
            "call",
            lua.create_function(move |_, args: MultiValue| {
                let f: Function = c.raw_get("call")?;
                let (reply, failed): (Value, bool) = f.call(args)?;
                if failed {
                    return Err(mlua::Error::runtime(err_field(&reply)));
                }
                Ok(reply)
            })?,
        )?;
        let c = ctx.clone();
        native.raw_set(
            "pcall",
            lua.create_function(move |_, args: MultiValue| {
                let f: Function = c.raw_get("call")?;
                let (reply, _): (Value, bool) = f.call(args)?;
                Ok(reply)
            })?,
        )?;
        let c = ctx.clone();
        native.raw_set(
            "setresp",
            lua.create_function(move |_, args: MultiValue| {
                let f: Function = c.raw_get("setresp")?;
                f.call::<()>(args)
            })?,
        )?;
        let load_slot = LoadSlot::default();
        native.raw_set(
            "register_function",
            library::create_register(&lua, load_slot.clone())?,
        )?;
        native.raw_set("version", REDIS_COMPAT_VERSION)?;
        native.raw_set("version_num", version_num(REDIS_COMPAT_VERSION))?;
        let (runner, globals, load_runner, call_runner): (Function, Table, Function, Function) =
            lua.load(PRELUDE)
                .set_name("=conclave")
                .set_mode(ChunkMode::Text)
                .call((
                    native,
                    ctx.clone(),
                    bit::create(&lua)?,
                    cjson::create(&lua)?,
                ))?;
        Ok(Engine {
            lua,
            globals,
            ctx,
            runner,
            scripts: HashMap::new(),
            clock: 0,
            load_runner,
            call_runner,
            load_slot,
            libraries: BTreeMap::new(),
            functions_version: None,
        })
    }

    /// Whether a script with this SHA1 (lower-case hex) is loaded.
    pub fn exists(&self, sha: &str) -> bool {
        self.scripts.contains_key(sha)
    }

    /// Number of scripts held.
    pub fn len(&self) -> usize {
        self.scripts.len()
    }

    /// Bytes the VM uses.
    pub fn used_memory(&self) -> usize {
        self.lua.used_memory()
    }

    /// `SCRIPT LOAD`: compiles `body` (unless known) and keeps it until `SCRIPT FLUSH`;
    /// the SHA1 or Redis's compile error.
    pub fn load(&mut self, body: &[u8]) -> Result<String, Frame> {
        let sha = sha1hex(body);
        match self.scripts.get_mut(&sha) {
            Some(script) => script.used = None,
            None => {
                let script = self.compile(body)?;
                self.scripts.insert(sha.clone(), script);
            }
        }
        Ok(sha)
    }

    fn compile(&self, body: &[u8]) -> Result<Script, Frame> {
        let (flags, skip) = shebang(body).map_err(|e| Frame::error(format!("ERR {e}")))?;
        let func = self
            .lua
            .load(&body[skip..])
            .set_name("@user_script")
            .set_mode(ChunkMode::Text)
            .into_function()
            .map_err(|e| {
                let msg = match &e {
                    mlua::Error::SyntaxError { message, .. } => message.clone(),
                    other => describe(other),
                };
                Frame::error(format!("ERR Error compiling script (new function): {msg}"))
            })?;
        Ok(Script {
            func,
            flags,
            used: Some(0),
        })
    }

    /// Finds (or, for `EVAL`, compiles) the script of `inv`.
    fn script(&mut self, inv: &Invocation) -> Result<(Function, ScriptFlags), Frame> {
        self.clock += 1;
        let now = self.clock;
        if let Some(s) = self.scripts.get_mut(&inv.sha) {
            if s.used.is_some() {
                s.used = Some(now);
            }
            return Ok((s.func.clone(), s.flags));
        }
        let Some(body) = &inv.body else {
            return Err(Frame::error(
                "NOSCRIPT No matching script. Please use EVAL.",
            ));
        };
        let mut script = self.compile(body)?;
        script.used = Some(now);
        let evictable = self.scripts.values().filter(|s| s.used.is_some()).count();
        if evictable >= MAX_EVAL_SCRIPTS {
            let oldest = self
                .scripts
                .iter()
                .filter_map(|(sha, s)| s.used.map(|u| (u, sha.clone())))
                .min();
            if let Some((_, sha)) = oldest {
                self.scripts.remove(&sha);
            }
        }
        let found = (script.func.clone(), script.flags);
        self.scripts.insert(inv.sha.clone(), script);
        Ok(found)
    }

    /// Runs `inv` to its end (or its kill) and returns the reply for its caller.
    /// Commands run through `caller`, which must already hold the keyspace exclusive.
    pub fn run(&mut self, inv: Invocation, caller: &mut Caller<'_>, run: &Arc<Run>) -> Frame {
        let (func, flags) = match self.script(&inv) {
            Ok(found) => found,
            Err(reply) => return reply,
        };
        if inv.read_only && flags.declared && !flags.no_writes {
            return Frame::error(
                "ERR Can not execute a script with write flag using *_ro command.",
            );
        }
        caller.read_only = inv.read_only || flags.no_writes;
        let target = Target::Script(&func);
        match self.invoke(target, &inv.keys, &inv.args, &inv.sha, caller, run) {
            Ok(reply) => reply,
            Err(e) => Frame::error(format!(
                "ERR Error running script {}, {}",
                inv.sha,
                describe(&e)
            )),
        }
    }

    /// Runs a script (`KEYS`/`ARGV` as globals) or a function (keys and arguments as
    /// its two arguments) under the error handler; `label` (SHA1 or function name)
    /// names it in errors.
    pub(super) fn invoke(
        &self,
        target: Target<'_>,
        keys: &[Bytes],
        args: &[Bytes],
        label: &str,
        caller: &mut Caller<'_>,
        run: &Arc<Run>,
    ) -> mlua::Result<Frame> {
        let lua = &self.lua;
        let strings = |items: &[Bytes]| -> mlua::Result<Table> {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, lua.create_string(item)?)?;
            }
            Ok(t)
        };
        let (keys, args) = (strings(keys)?, strings(args)?);
        if let Target::Script(_) = target {
            self.globals.raw_set("KEYS", keys.clone())?;
            self.globals.raw_set("ARGV", args.clone())?;
        }
        let hook_run = run.clone();
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |_, _| {
                if hook_run.kill.load(Relaxed) {
                    return Err(mlua::Error::runtime(KILLED));
                }
                hook_run.warn_if_slow();
                Ok(VmState::Continue)
            },
        )?;
        let resp3 = std::cell::Cell::new(false);
        let result = lua.scope(|scope| {
            let call_fn = scope.create_function_mut(|lua, args: MultiValue| {
                if run.kill.load(Relaxed) {
                    return Ok((
                        Value::Table(convert::error_table(lua, KILLED.as_bytes())?),
                        true,
                    ));
                }
                call::redis_call(lua, caller, run, args, resp3.get())
            })?;
            let setresp = scope.create_function(|_, args: MultiValue| {
                if args.len() != 1 {
                    return Err(mlua::Error::runtime(
                        "ERR redis.setresp() requires one argument.",
                    ));
                }
                let version = match args.front() {
                    Some(Value::Integer(n)) => *n as f64,
                    Some(Value::Number(n)) => *n,
                    _ => 0.0,
                };
                match version as i64 {
                    2 => resp3.set(false),
                    3 => resp3.set(true),
                    _ => return Err(mlua::Error::runtime("ERR RESP version must be 2 or 3.")),
                }
                Ok(())
            })?;
            let killed = scope.create_function(|_, ()| Ok(run.kill.load(Relaxed)))?;
            self.ctx.raw_set("call", call_fn)?;
            self.ctx.raw_set("setresp", setresp)?;
            self.ctx.raw_set("killed", killed)?;
            let out = match target {
                Target::Script(func) => self.runner.call::<MultiValue>(func.clone()),
                Target::Function(func) => {
                    self.call_runner
                        .call::<MultiValue>((func.clone(), keys, args))
                }
            };
            self.ctx.raw_set("call", Value::Nil)?;
            self.ctx.raw_set("setresp", Value::Nil)?;
            self.ctx.raw_set("killed", Value::Nil)?;
            let out = out?;
            let mut values = out.into_iter();
            let ok = matches!(values.next(), Some(Value::Boolean(true)));
            let value = values.next().unwrap_or(Value::Nil);
            Ok(if ok {
                convert::lua_to_frame(&value, resp3.get())
            } else {
                failure(&value, label)
            })
        });
        lua.remove_hook();
        result
    }
}

/// What [`Engine::invoke`] runs.
#[derive(Clone, Copy)]
pub(super) enum Target<'a> {
    /// An `EVAL` script (a chunk).
    Script(&'a Function),
    /// A registered function.
    Function(&'a Function),
}

/// The `err` text of an error table (what `redis.call` raises).
fn err_field(reply: &Value) -> String {
    match reply {
        Value::Table(t) => match t.raw_get::<Value>("err") {
            Ok(Value::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
            _ => "ERR unknown error".into(),
        },
        _ => "ERR unknown error".into(),
    }
}

/// The reply to a script that raised an error: `-<err> script: <sha>, on <source>:<line>.`
fn failure(err: &Value, sha: &str) -> Frame {
    let Value::Table(t) = err else {
        return Frame::error(format!("ERR Error running script {sha}, execution failure"));
    };
    let text = |k: &str| match t.raw_get::<Value>(k) {
        Ok(Value::String(s)) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
        Ok(Value::Integer(n)) => Some(n.to_string()),
        Ok(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let msg = text("err").unwrap_or_else(|| "ERR unknown error".into());
    match (text("source"), text("line")) {
        (Some(source), Some(line)) => {
            Frame::error(format!("{msg} script: {sha}, on {source}:{line}."))
        }
        _ => Frame::error(msg),
    }
}

/// `redis.log(level, message...)`: to the node's log (levels as Redis's `LOG_*`).
fn log(_: &Lua, args: MultiValue) -> mlua::Result<()> {
    let mut args = args.into_iter();
    if args.len() < 2 {
        return Err(mlua::Error::runtime(
            "ERR redis.log() requires two arguments or more.",
        ));
    }
    let level = match args.next() {
        Some(Value::Integer(n)) => n,
        Some(Value::Number(n)) => n as i64,
        _ => {
            return Err(mlua::Error::runtime(
                "ERR First argument must be a number (log level).",
            ))
        }
    };
    if !(0..=3).contains(&level) {
        return Err(mlua::Error::runtime("ERR Invalid debug level."));
    }
    let text: Vec<String> = args
        .filter_map(|v| match v {
            Value::String(s) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
            Value::Integer(_) | Value::Number(_) => v.to_string().ok(),
            _ => None,
        })
        .collect();
    let text = text.join(" ");
    match level {
        0 => tracing::debug!(target: "lua", "{text}"),
        1 | 2 => tracing::info!(target: "lua", "{text}"),
        _ => tracing::warn!(target: "lua", "{text}"),
    }
    Ok(())
}

/// `7.2.0` → `0x070200`, as `REDIS_VERSION_NUM`.
fn version_num(v: &str) -> i64 {
    v.split('.')
        .take(3)
        .fold(0, |acc, part| (acc << 8) | part.parse::<i64>().unwrap_or(0))
}
