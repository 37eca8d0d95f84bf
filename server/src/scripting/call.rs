//! `redis.call` and `redis.pcall`: a command from a script, through the node's command
//! table, with Redis 7's checks in `scriptCall`'s order (`script.c`):
//!
//! 1. at least one argument, each a string or a number ("Please specify at least one
//!    argument for this redis lib call", "Lua redis lib command arguments must be
//!    strings or integers");
//! 2. a known command ("Unknown Redis command called from script") with the right
//!    arity ("Wrong number of args calling Redis command from script");
//! 3. allowed in scripts ("This Redis command is not allowed from script"): not flagged
//!    `noscript` (transactions, `SCRIPT`, `EVAL*`, `AUTH`, `HELLO`, `CLIENT`, `CONFIG`,
//!    `SHUTDOWN`, ...), and not one that waits: `LOCK.*` (Raft round trips and blocking
//!    acquires) and `RAFT.STATUS`;
//! 4. in a read-only script (`EVAL_RO`, `EVALSHA_RO`, shebang `no-writes`) not a write
//!    ("Write commands are not allowed from read-only scripts.").
//!
//! A refusal is an error table `{err = "ERR ..."}`; `redis.call` raises it, `redis.pcall`
//! returns it. A command that runs marks the script as having written when it is
//! flagged `write` (then `SCRIPT KILL` refuses, as in Redis). The keyspace gate is
//! already held exclusive by the script, so keyspace commands apply directly.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use conclave_protocol::{Frame, Parse};
use mlua::{Lua, MultiValue, Value};

use super::busy::Run;
use super::convert::{self, error_table, frame_to_lua};
use crate::command_table::{self, Builtin, Handler};
use crate::connection::Session;
use crate::node::Node;

/// Who runs a script's commands: the node and the calling connection.
pub struct Caller<'a> {
    /// The node.
    pub node: &'a Node,
    /// The connection that called `EVAL` (its commands run in its session, as Redis's
    /// script client runs them with the caller's database and user).
    pub session: &'a mut Session,
    /// Writes are refused.
    pub read_only: bool,
}

/// Runs one `redis.call`/`redis.pcall`: the reply as a Lua value and whether it is an
/// error (which `redis.call` raises).
pub fn redis_call(
    lua: &Lua,
    caller: &mut Caller<'_>,
    run: &Run,
    args: MultiValue,
    resp3: bool,
) -> mlua::Result<(Value, bool)> {
    let refuse = |msg: &str| -> mlua::Result<(Value, bool)> {
        let text = convert::error_text(msg.as_bytes());
        Ok((Value::Table(error_table(lua, &text)?), true))
    };
    if args.is_empty() {
        return refuse("Please specify at least one argument for this redis lib call");
    }
    let mut argv: Vec<Bytes> = Vec::with_capacity(args.len());
    for arg in &args {
        match convert::lua_to_arg(arg) {
            Some(b) => argv.push(b),
            None => return refuse("Lua redis lib command arguments must be strings or integers"),
        }
    }
    let reply = match execute(caller, run, argv) {
        Ok(reply) => reply,
        Err(msg) => return refuse(msg),
    };
    let failed = reply.is_error();
    Ok((frame_to_lua(lua, reply, resp3)?, failed))
}

/// Checks and runs one command; `Err` is a refusal message (without its `ERR` code).
fn execute(caller: &mut Caller<'_>, run: &Run, argv: Vec<Bytes>) -> Result<Frame, &'static str> {
    let Some(entry) = argv.first().and_then(|name| command_table::lookup(name)) else {
        return Err("Unknown Redis command called from script");
    };
    let spec = entry.spec;
    if !spec.arity_ok(argv.len()) {
        return Err("Wrong number of args calling Redis command from script");
    }
    let allowed = !spec.flags.contains(&"noscript")
        && matches!(
            entry.handler,
            Handler::Cache(_) | Handler::Builtin(Builtin::Sync(_))
        );
    if !allowed {
        return Err("This Redis command is not allowed from script");
    }
    crate::acl::gate::script(caller.node, caller.session, entry, &argv)?;
    if crate::coherent_cache::flush_refused(caller.node, spec) {
        return Err(crate::coherent_cache::FLUSH_HELD);
    }
    if let Some(held) = &caller.session.cluster_keys {
        let keys = crate::coherent_cache::keys_of(spec, &argv);
        if !keys.iter().all(|k| held.contains(k)) {
            return Err(
                "Script attempted to access a key not declared in KEYS (on a cluster a script may touch only the keys it declares)",
            );
        }
    }
    if spec.is_write() {
        if caller.read_only {
            return Err("Write commands are not allowed from read-only scripts.");
        }
        run.wrote.store(true, Relaxed);
    }
    // A tracking client is told of later changes to the keys its scripts read too.
    crate::tracking::remember(&caller.node.keyspace, caller.session, spec, &argv);
    let shown = (caller.node.monitors.active() && crate::monitor::Monitors::shows(spec))
        .then(|| argv.clone());
    let mut parse = Parse::new(argv);
    let reply = match entry.handler {
        Handler::Cache(parser) => match parser(&mut parse) {
            Ok(command) => command.apply(&caller.node.keyspace),
            Err(e) => e.to_frame(),
        },
        Handler::Builtin(Builtin::Sync(f)) => f(caller.node, caller.session, spec, &mut parse),
        _ => return Err("This Redis command is not allowed from script"),
    };
    if let Some(argv) = shown {
        caller
            .node
            .monitors
            .feed(crate::monitor::Source::Lua, &argv);
    }
    Ok(reply)
}
