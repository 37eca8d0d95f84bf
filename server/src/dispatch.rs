//! Routing one request to its command.
//!
//! Every request goes through the same gate, in Redis's order: unknown command,
//! wrong arity, authentication. Then the handler of the service that declared the
//! command runs it ([`command_table::Handler`]): connection and server commands here in
//! the server crate (they need the connection and the node), keyspace commands in
//! `conclave_cache` (they need only the keyspace), `LOCK.*` in the lock service,
//! `DEBUG.KV*` on the debug kv groups ([`crate::debug_kv`]). Every
//! command that passes the gate is marked in [`Session::timed`] for the connection to
//! count and time it for `/metrics`, and its execution is timed here for the slow log
//! ([`crate::slowlog`]: the arguments are kept, without allocating for up to four,
//! only while the log is on).
//!
//! After the gate, still in Redis's order (`processCommand`): a RESP2 client in pub/sub
//! mode may run only the pub/sub commands ([`pubsub::context_error`]); then a `CLIENT
//! PAUSE` holds the command ([`crate::pause`]); then `MULTI` queues it. The command
//! being run is published for `CLIENT LIST` (`cmd=client|list`) as soon as it is
//! looked up. A keyspace or connection command runs inside a [`tracking::Scope`] (who
//! is writing, for `NOLOOP`; its `BCAST` invalidations leave together), and a tracking
//! client's read-only command has its keys recorded before and after it runs.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use conclave_protocol::{Frame, Parse};

use crate::builtin::subcommands;
use crate::command_table::{self, Builtin, Handler};
use crate::connection::Session;
use crate::monitor::{self, Source};
use crate::node::Node;
use crate::{coherent_cache, pause, pubsub, scripting, tracking, transaction};

/// Executes one request (`args[0]` is the command name) and returns its reply.
pub async fn execute(node: &Node, session: &mut Session, args: Vec<Bytes>) -> Frame {
    let entry = match admit(node, session, &args) {
        Ok(entry) => entry,
        Err(refused) => return refused,
    };
    let spec = entry.spec;
    let exec_writes = spec.name == "EXEC" && session.tx.as_ref().is_some_and(|t| t.may_write());
    node.pause
        .wait(&session.handle, pause::may_write(spec, exec_writes))
        .await;
    session.timed = Some(entry);
    if session.tx.is_some() && !transaction::runs_inside_multi(spec) {
        return transaction::queue(node, session, entry, args);
    }
    let shown = if node.monitors.active() {
        monitor::before(node, Source::Client(&session.handle), spec, &args)
    } else {
        None
    };
    if !node.slowlog.enabled() || spec.flags.contains(&"skip_slowlog") {
        let reply = run(node, session, entry, args).await;
        if let Some(args) = shown {
            node.monitors.feed(Source::Client(&session.handle), &args);
        }
        return reply;
    }
    let logged = crate::slowlog::KeptArgs::keep(&args);
    let start = node.command_stats.now();
    let reply = run(node, session, entry, args).await;
    let us = node.command_stats.delta_ns(start, node.command_stats.now()) / 1000;
    observe_slow(node, session, &logged, us);
    if let Some(args) = shown {
        node.monitors.feed(Source::Client(&session.handle), &args);
    }
    reply
}

/// Whether `args` is a `Q.PUSH`: outside `MULTI`, a connection gathers the `Q.PUSH`es
/// pipelined one after another and runs them with [`execute_pushes`].
pub fn is_push(args: &[Bytes]) -> bool {
    args.first()
        .is_some_and(|name| name.eq_ignore_ascii_case(b"Q.PUSH"))
}

/// Executes consecutive pipelined `Q.PUSH`es of a connection outside `MULTI`: each goes
/// through the gate as in [`execute`], then those admitted run together
/// ([`conclave_queues::QueueService::push_all`]: one log entry per shard instead of one
/// round of consensus per push, in the client's order). Returns each reply, in order, with
/// the entry to count it under when it passed the gate. The slow log and `MONITOR` see
/// each push; the slow log charges each its share of the group's execution time.
pub async fn execute_pushes(
    node: &Node,
    session: &mut Session,
    batch: Vec<Vec<Bytes>>,
) -> Vec<(Frame, Option<&'static command_table::Entry>)> {
    let mut out: Vec<(Frame, Option<&'static command_table::Entry>)> = Vec::new();
    // (position in `out`, parser, arguments) of the pushes admitted.
    let mut admitted = Vec::with_capacity(batch.len());
    for args in batch {
        match admit(node, session, &args) {
            Ok(entry) => {
                if let Handler::Queues(parser) = entry.handler {
                    admitted.push((out.len(), entry, parser, args));
                    out.push((Frame::Null, Some(entry)));
                } else {
                    out.push((Frame::error("ERR not a queue command"), Some(entry)));
                }
            }
            Err(refused) => out.push((refused, None)),
        }
    }
    let Some(&(_, first, ..)) = admitted.first() else {
        return out;
    };
    node.pause
        .wait(&session.handle, pause::may_write(first.spec, false))
        .await;
    let monitored = node.monitors.active();
    let slowlog = node.slowlog.enabled();
    let mut shown = Vec::new();
    let mut logged = Vec::new();
    let mut parsed = Vec::with_capacity(admitted.len());
    let mut at = Vec::with_capacity(admitted.len());
    for (i, entry, parser, args) in admitted {
        if monitored {
            shown.extend(monitor::before(
                node,
                Source::Client(&session.handle),
                entry.spec,
                &args,
            ));
        }
        if slowlog {
            logged.push(crate::slowlog::KeptArgs::keep(&args));
        }
        parsed.push(parser(&mut Parse::new(args)));
        at.push(i);
    }
    let start = node.command_stats.now();
    let replies = node.queues.push_all(parsed).await;
    // Each push is charged its share of the group's time: they ran as one proposal per
    // shard, and charging each the whole wait would count it once per push.
    let us = node.command_stats.delta_ns(start, node.command_stats.now()) / 1000;
    let share = us / (replies.len().max(1) as u64);
    for kept in &logged {
        observe_slow(node, session, kept, share);
    }
    for args in shown {
        node.monitors.feed(Source::Client(&session.handle), &args);
    }
    for (i, reply) in at.into_iter().zip(replies) {
        if let Some(slot) = out.get_mut(i) {
            slot.0 = reply;
        }
    }
    out
}

/// Offers a command that ran `us` microseconds to the slow log.
fn observe_slow(node: &Node, session: &Session, kept: &crate::slowlog::KeptArgs, us: u64) {
    node.slowlog.observe(kept.as_slice(), us, || {
        let name = session.handle.names.lock().name.clone();
        (session.handle.addr.to_string(), name)
    });
}

/// The gate every request passes, in Redis's order: unknown command, subcommand
/// published for `CLIENT LIST`, arity, authentication, ACL, pub/sub context. Returns
/// the command's entry, or the refusal to reply (a `MULTI` in progress is flagged to
/// fail at `EXEC`).
fn admit(
    node: &Node,
    session: &mut Session,
    args: &[Bytes],
) -> Result<&'static command_table::Entry, Frame> {
    session.last_cmd = "";
    let Some(entry) = args.first().and_then(|name| command_table::lookup(name)) else {
        session.handle.state.set_cmd(None, None);
        transaction::refuse(session);
        return Err(unknown_command(args));
    };
    let spec = entry.spec;
    // Redis records the subcommand (`client|list`); an unknown one leaves no command.
    match args.get(1) {
        Some(sub) if !subcommands::of(spec.name).is_empty() => {
            let pos = subcommands::position(spec.name, sub);
            session.handle.state.set_cmd(pos.map(|_| entry.index), pos);
        }
        _ => session.handle.state.set_cmd(Some(entry.index), None),
    }
    session.last_cmd = spec.name;
    if !spec.arity_ok(args.len()) {
        transaction::refuse(session);
        node.command_stats.reject(entry);
        return Err(spec.arity_error());
    }
    if !session.authenticated && !spec.no_auth() {
        transaction::refuse(session);
        node.command_stats.reject(entry);
        return Err(Frame::error("NOAUTH Authentication required."));
    }
    if let Some(refused) = crate::acl::gate::dispatch(node, session, entry, args) {
        transaction::refuse(session);
        node.command_stats.reject(entry);
        return Err(refused);
    }
    if let Some(refused) = pubsub::context_error(session, spec) {
        transaction::refuse(session);
        return Err(refused);
    }
    Ok(entry)
}

/// Runs a command that passed the gate with the handler of its service.
async fn run(
    node: &Node,
    session: &mut Session,
    entry: &'static command_table::Entry,
    args: Vec<Bytes>,
) -> Frame {
    let spec = entry.spec;
    // Client-side caching: record the keys before the read and again after it (see
    // `tracking`), so no write in between goes unnoticed.
    let read_keys = tracking::records(session, spec).then(|| args.clone());
    if let Some(keys) = &read_keys {
        tracking::remember(&node.keyspace, session, spec, keys);
    }
    // On a cluster, EXEC and scripts hold every key they name M while they run, and
    // WATCH takes a copy of its keys first (contract 2.1; `coherent_cache`).
    if let Some(c) = &node.coherent {
        let held = match entry.handler {
            Handler::Builtin(Builtin::Sync(_)) if spec.name == "EXEC" => {
                session.tx.as_ref().map(|tx| tx.keys())
            }
            Handler::Script(cmd) if cmd.runs_code() => {
                if matches!(
                    cmd,
                    scripting::ScriptCmd::Fcall | scripting::ScriptCmd::FcallRo
                ) {
                    scripting::functions::prepare(node, args.get(1)).await;
                }
                Some(scripting::declared_keys(&args))
            }
            _ => None,
        };
        if let Some(keys) = held {
            return coherent_cache::hold(node, session, entry, args, c, keys).await;
        }
        if spec.name == "WATCH" && session.tx.is_none() {
            if let Err(reply) = coherent_cache::copy_keys(c, args[1..].to_vec()).await {
                return reply;
            }
        }
    }
    // On a cluster, a keyspace command needs its keys held here first (contract 2.1).
    let coherent = match (entry.handler, &node.coherent) {
        (Handler::Cache(_), Some(c)) => Some((c, coherent_cache::keys_of(spec, &args))),
        _ => None,
    };
    let migrate_args =
        matches!(entry.handler, Handler::Builtin(Builtin::Migrate)).then(|| args.clone());
    let mut parse = Parse::new(args);
    let reply = match entry.handler {
        Handler::Cache(parser) if coherent.is_some() => match coherent {
            Some((c, keys)) => {
                coherent_cache::execute(node, session, c, spec, keys, parser(&mut parse)).await
            }
            None => Frame::Null,
        },
        Handler::Cache(parser) if spec.name == "CACHE.DIR" => match parser(&mut parse) {
            Ok(conclave_cache::cmd::Command::CacheDir(d)) => {
                coherent_cache::dir_one_node(node, d.key())
            }
            Ok(_) => Frame::Null,
            Err(e) => e.to_frame(),
        },
        Handler::Builtin(Builtin::Sync(run)) => {
            // EXEC takes its turn with scripts (it must not wait for one on this thread).
            // Refused by a busy script, EXEC discards the transaction (Redis's
            // `execCommandAbort`).
            let _turn = if spec.name == "EXEC" && session.tx.is_some() {
                match node.scripting.turn().await {
                    Ok(turn) => Some(turn),
                    Err(_) => {
                        session.tx = None;
                        session.watches = None;
                        return Frame::error(format!(
                            "EXECABORT Transaction discarded because of: {}",
                            scripting::busy::BUSY
                        ));
                    }
                }
            } else {
                None
            };
            let _scope = tracking::Scope::enter(&node.tracker, session.handle.id);
            run(node, session, spec, &mut parse)
        }
        Handler::Builtin(Builtin::RaftStatus) => raft_status(node, &mut parse).await,
        Handler::Builtin(Builtin::Migrate) => {
            crate::migrate::execute(node, session, migrate_args.unwrap_or_default()).await
        }
        Handler::Builtin(Builtin::Acl) => {
            crate::builtin::acl_cmd::execute(node, session, &mut parse).await
        }
        Handler::Cache(parser) => apply_local(node, session, parser(&mut parse)).await,
        Handler::Script(cmd) => scripting::execute(node, session, cmd, parse.rest()).await,
        Handler::Locks(parser) => {
            let default_ttl = node.runtime.lock_default_ttl.load(Relaxed);
            node.locks
                .execute_for(parser, &mut parse, default_ttl, &session.handle.wait)
                .await
        }
        Handler::Queues(parser) => {
            node.queues
                .execute(parser, &mut parse, &session.handle.wait)
                .await
        }
        Handler::Meta(parser) => node.meta.execute(parser, &mut parse),
        Handler::DebugKv(parser) => node.debug_kv.execute(parser, &mut parse).await,
    };
    if let Some(keys) = &read_keys {
        tracking::remember(&node.keyspace, session, spec, keys);
    }
    if spec.name == "FLUSHALL" && reply == Frame::ok() && node.persistence.saving_configured() {
        // Redis's `flushAllDataAndResetRDB`: with save rules set, the empty keyspace is
        // saved at once, so a restart does not bring the flushed keys back.
        let p = &node.persistence;
        if let Err(e) = scripting::blocking(|| p.save_waiting()) {
            tracing::warn!(error = %e, "saving the snapshot after FLUSHALL failed");
        }
    }
    reply
}

/// Applies a parsed keyspace command to this node's keyspace, under the keyspace gate (a
/// running script answers `-BUSY`) and in its client's tracking scope; a parse error is
/// its error reply.
pub(crate) async fn apply_local(
    node: &Node,
    session: &Session,
    parsed: Result<conclave_cache::cmd::Command, conclave_protocol::ParseError>,
) -> Frame {
    match parsed {
        Ok(command) => {
            let _gate = match node.scripting.keyspace(node).await {
                Ok(gate) => gate,
                Err(busy) => return busy,
            };
            let _scope = tracking::Scope::enter(&node.tracker, session.handle.id);
            command.apply(&node.keyspace)
        }
        Err(e) => e.to_frame(),
    }
}

/// `RAFT.STATUS [group]`: the status of a group this node hosts.
async fn raft_status(node: &Node, parse: &mut Parse) -> Frame {
    let group = match parse.try_next() {
        None => conclave_raft_store::LOCK_GROUP,
        Some(g) => match std::str::from_utf8(&g).ok().and_then(|g| g.parse().ok()) {
            Some(g) => g,
            None => return Frame::error("ERR value is not an integer or out of range"),
        },
    };
    match node.group(group) {
        Some(g) => g.status_frame().await,
        None => Frame::error(format!("ERR no such raft group {group} on this node")),
    }
}

/// Redis's unknown-command error: the name and the first arguments, each cut at 128 bytes.
pub fn unknown_command(args: &[Bytes]) -> Frame {
    let cut = |b: &Bytes| String::from_utf8_lossy(&b[..b.len().min(128)]).into_owned();
    let name = args.first().map(cut).unwrap_or_default();
    let mut msg = format!("ERR unknown command '{name}', with args beginning with: ");
    for arg in args.iter().skip(1) {
        if msg.len() > 400 {
            break;
        }
        msg.push_str(&format!("'{}' ", cut(arg)));
    }
    Frame::error(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_command_text() {
        let args: Vec<Bytes> = ["foo", "a", "b"].iter().map(|s| Bytes::from(*s)).collect();
        assert_eq!(
            unknown_command(&args),
            Frame::error("ERR unknown command 'foo', with args beginning with: 'a' 'b' ")
        );
    }
}
