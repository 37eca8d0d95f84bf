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

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use conclave_protocol::{Frame, Parse};

use crate::command_table::{self, Builtin, Handler};
use crate::connection::Session;
use crate::node::Node;
use crate::{scripting, transaction};

/// Executes one request (`args[0]` is the command name) and returns its reply.
pub async fn execute(node: &Node, session: &mut Session, args: Vec<Bytes>) -> Frame {
    let Some(entry) = args.first().and_then(|name| command_table::lookup(name)) else {
        transaction::refuse(session);
        return unknown_command(&args);
    };
    let spec = entry.spec;
    if !spec.arity_ok(args.len()) {
        transaction::refuse(session);
        node.command_stats.reject(entry);
        return spec.arity_error();
    }
    if !session.authenticated && !spec.no_auth() {
        transaction::refuse(session);
        node.command_stats.reject(entry);
        return Frame::error("NOAUTH Authentication required.");
    }
    session.last_cmd = spec.name;
    session.timed = Some(entry);
    if session.tx.is_some() && !transaction::runs_inside_multi(spec) {
        return transaction::queue(session, entry, args);
    }
    if !node.slowlog.enabled() || spec.flags.contains(&"skip_slowlog") {
        return run(node, session, entry, args).await;
    }
    let logged = crate::slowlog::KeptArgs::keep(&args);
    let start = node.command_stats.now();
    let reply = run(node, session, entry, args).await;
    let us = node.command_stats.delta_ns(start, node.command_stats.now()) / 1000;
    node.slowlog.observe(logged.as_slice(), us, || {
        let name = session.handle.names.lock().name.clone();
        (session.handle.addr.to_string(), name)
    });
    reply
}

/// Runs a command that passed the gate with the handler of its service.
async fn run(
    node: &Node,
    session: &mut Session,
    entry: &'static command_table::Entry,
    args: Vec<Bytes>,
) -> Frame {
    let spec = entry.spec;
    let mut parse = Parse::new(args);
    match entry.handler {
        Handler::Builtin(Builtin::Sync(run)) => {
            // EXEC takes its turn with scripts (it must not wait for one on this thread).
            let _turn = if spec.name == "EXEC" && session.tx.is_some() {
                match node.scripting.turn().await {
                    Ok(turn) => Some(turn),
                    Err(busy) => return busy,
                }
            } else {
                None
            };
            run(node, session, spec, &mut parse)
        }
        Handler::Builtin(Builtin::RaftStatus) => raft_status(node, &mut parse).await,
        Handler::Cache(parser) => match parser(&mut parse) {
            Ok(command) => {
                let _gate = match node.scripting.keyspace(node).await {
                    Ok(gate) => gate,
                    Err(busy) => return busy,
                };
                command.apply(&node.keyspace)
            }
            Err(e) => e.to_frame(),
        },
        Handler::Script(cmd) => scripting::execute(node, session, cmd, parse.rest()).await,
        Handler::Locks(parser) => {
            let default_ttl = node.runtime.lock_default_ttl.load(Relaxed);
            node.locks.execute(parser, &mut parse, default_ttl).await
        }
        Handler::DebugKv(parser) => node.debug_kv.execute(parser, &mut parse).await,
    }
}

/// `RAFT.STATUS [group]`: the status of a group this node hosts.
async fn raft_status(node: &Node, parse: &mut Parse) -> Frame {
    let group = match parse.try_next() {
        None => conclave_raft_store::META_GROUP,
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
