//! `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH` with Redis's semantics
//! (<https://redis.io/docs/latest/develop/interactions/transactions/>).
//!
//! - Inside `MULTI` a command that passes the dispatch gate is queued (`+QUEUED`); one
//!   that fails it (unknown, wrong arity, `NOAUTH`, or a command not allowed in a
//!   transaction — `LOCK.*`, `RAFT.STATUS`, `DEBUG.KV*`, `MIGRATE`, flag `no_multi`) is answered with its error
//!   and marks the transaction, whose `EXEC` then answers `-EXECABORT` and runs nothing.
//! - `EXEC` runs the queued commands with the keyspace's gate held exclusive
//!   ([`Keyspace::exclusive`](conclave_cache::keyspace::Keyspace::exclusive)): no other
//!   client's command runs in between. Errors of individual commands (a wrong type, a
//!   syntax error found when the command runs) are their replies in `EXEC`'s array; the
//!   others still apply — Redis has no rollback.
//! - `WATCH` registers the connection's flag under each key; any change to one of them,
//!   from any connection (this one included), before `EXEC` makes `EXEC` answer a null
//!   array and run nothing. `EXEC`, `DISCARD`, `UNWATCH`, `RESET` and the connection
//!   closing drop the watches.
//! - `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `QUIT` and `RESET` run at once even inside
//!   `MULTI`, as in Redis (`MULTI` and `WATCH` then answer their errors).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::Bytes;
use conclave_cache::keyspace::{Keyspace, WatchFlag};
use conclave_protocol::{CommandSpec, Frame, Parse};

use crate::command_table::{Builtin, Entry, Handler};
use crate::connection::Session;
use crate::node::Node;

/// The commands queued by `MULTI`.
#[derive(Debug, Default)]
pub struct Transaction {
    queued: Vec<(&'static Entry, Vec<Bytes>)>,
    /// A command was refused while queueing: `EXEC` aborts.
    aborted: bool,
}

impl Transaction {
    /// Commands queued (`CLIENT LIST`'s `multi=`).
    pub fn queued(&self) -> usize {
        self.queued.len()
    }

    /// Bytes of the queued commands' arguments (`multi-mem=`).
    pub fn arg_bytes(&self) -> u64 {
        self.queued
            .iter()
            .flat_map(|(_, args)| args.iter())
            .map(|a| a.len() as u64)
            .sum()
    }

    /// Every key the queued commands name (declared key positions; a script's `KEYS`),
    /// for a cluster to hold them all `M` while `EXEC` runs.
    pub fn keys(&self) -> Vec<Bytes> {
        let mut keys = Vec::new();
        for (entry, args) in &self.queued {
            match entry.handler {
                Handler::Cache(_) => keys.extend(crate::coherent_cache::keys_of(entry.spec, args)),
                Handler::Script(cmd) if cmd.runs_code() => {
                    keys.extend(crate::scripting::declared_keys(args))
                }
                _ => {}
            }
        }
        keys
    }

    /// Whether a queued command may change data (a `CLIENT PAUSE WRITE` holds the
    /// `EXEC`).
    pub fn may_write(&self) -> bool {
        self.queued
            .iter()
            .any(|(e, _)| crate::pause::may_write(e.spec, false))
    }
}

/// The keys a connection watches; unregisters them when dropped.
#[derive(Debug)]
pub struct Watches {
    keyspace: Arc<Keyspace>,
    flag: WatchFlag,
    keys: Vec<Bytes>,
}

impl Watches {
    /// Whether a watched key changed (`EXEC` will fail; `CLIENT LIST`'s `d` flag).
    pub fn dirty(&self) -> bool {
        self.flag.load(Relaxed)
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        for key in &self.keys {
            self.keyspace.unwatch(key, &self.flag);
        }
    }
}

/// Whether `spec` runs at once even inside `MULTI`.
pub fn runs_inside_multi(spec: &CommandSpec) -> bool {
    matches!(
        spec.name,
        "MULTI" | "EXEC" | "DISCARD" | "WATCH" | "QUIT" | "RESET"
    )
}

/// Marks the open transaction (if any) as failed: a command was refused while queueing.
pub fn refuse(session: &mut Session) {
    if let Some(tx) = session.tx.as_mut() {
        tx.aborted = true;
    }
}

/// Queues a command that passed the gate; refuses the ones a transaction cannot hold,
/// and — in Redis's order (`processCommand`) — any command while the keyspace is out of
/// memory (queueing may use any amount of it) and a keyspace command or script while a
/// script is busy: each refusal aborts the transaction (`EXECABORT` at `EXEC`).
pub fn queue(node: &Node, session: &mut Session, entry: &'static Entry, args: Vec<Bytes>) -> Frame {
    let allowed = !entry.spec.flags.contains(&"no_multi")
        && !matches!(
            entry.handler,
            Handler::Locks(_)
                | Handler::Queues(_)
                | Handler::DebugKv(_)
                | Handler::Builtin(Builtin::RaftStatus)
                | Handler::Builtin(Builtin::Migrate)
        );
    let Some(tx) = session.tx.as_mut() else {
        return Frame::error("ERR no transaction");
    };
    if !allowed {
        tx.aborted = true;
        return Frame::error("ERR Command not allowed inside a transaction");
    }
    if crate::coherent_cache::flush_refused(node, entry.spec) {
        tx.aborted = true;
        return Frame::error(format!("ERR {}", crate::coherent_cache::FLUSH_HELD));
    }
    if let Err(oom) = node.keyspace.check_memory() {
        tx.aborted = true;
        return Frame::error(oom.to_string());
    }
    if matches!(entry.handler, Handler::Cache(_) | Handler::Script(_)) && node.scripting.is_busy() {
        tx.aborted = true;
        return Frame::error(crate::scripting::busy::BUSY);
    }
    tx.queued.push((entry, args));
    Frame::simple("QUEUED")
}

/// `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`.
pub fn execute(node: &Node, session: &mut Session, spec: &CommandSpec, parse: &mut Parse) -> Frame {
    match spec.name {
        "MULTI" => {
            if session.tx.is_some() {
                return Frame::error("ERR MULTI calls can not be nested");
            }
            session.tx = Some(Transaction::default());
            Frame::ok()
        }
        "DISCARD" => {
            if session.tx.take().is_none() {
                return Frame::error("ERR DISCARD without MULTI");
            }
            session.watches = None;
            Frame::ok()
        }
        "WATCH" => {
            if session.tx.is_some() {
                return Frame::error("ERR WATCH inside MULTI is not allowed");
            }
            let watches = session.watches.get_or_insert_with(|| Watches {
                keyspace: node.keyspace.clone(),
                flag: WatchFlag::default(),
                keys: Vec::new(),
            });
            for key in parse.rest() {
                if !watches.keys.contains(&key) {
                    node.keyspace.watch(&key, &watches.flag);
                    watches.keys.push(key);
                }
            }
            Frame::ok()
        }
        "UNWATCH" => {
            session.watches = None;
            Frame::ok()
        }
        "EXEC" => exec(node, session),
        _ => Frame::error(format!("ERR unknown command '{}'", spec.lower_name())),
    }
}

/// Runs the queued commands alone, unless a watched key changed or queueing failed.
fn exec(node: &Node, session: &mut Session) -> Frame {
    let Some(tx) = session.tx.take() else {
        return Frame::error("ERR EXEC without MULTI");
    };
    if tx.aborted {
        session.watches = None;
        return Frame::error("EXECABORT Transaction discarded because of previous errors.");
    }
    // A transaction that may grow memory is refused as a whole when memory is full
    // (Redis: EXEC inherits its commands' `denyoom`).
    if tx
        .queued
        .iter()
        .any(|(e, _)| e.spec.flags.contains(&"denyoom"))
    {
        if let Err(oom) = node.keyspace.check_memory() {
            session.watches = None;
            return Frame::error(format!("EXECABORT Transaction discarded because of: {oom}"));
        }
    }
    let _alone = node.keyspace.exclusive();
    let changed = session
        .watches
        .as_ref()
        .is_some_and(|w| w.flag.load(Relaxed));
    session.watches = None;
    if changed {
        return Frame::NullArray;
    }
    session.in_exec = true;
    let replies = tx
        .queued
        .into_iter()
        .map(|(entry, args)| run_queued(node, session, entry, args))
        .collect();
    session.in_exec = false;
    session.last_cmd = "EXEC";
    Frame::Array(replies)
}

/// Runs one queued command (the gate is already held exclusive).
fn run_queued(
    node: &Node,
    session: &mut Session,
    entry: &'static Entry,
    args: Vec<Bytes>,
) -> Frame {
    // The gate is held exclusive: recording the keys once, before, leaves no race.
    crate::tracking::remember(&node.keyspace, session, entry.spec, &args);
    let shown = if node.monitors.active() {
        let source = crate::monitor::Source::Client(&session.handle);
        crate::monitor::before(node, source, entry.spec, &args)
    } else {
        None
    };
    // ACL rules may have changed since the command was queued (Redis's `execCommand`).
    if let Some(refused) = crate::acl::gate::exec(node, session, entry, &args) {
        return refused;
    }
    let mut parse = Parse::new(args);
    session.last_cmd = entry.spec.name;
    let reply = match entry.handler {
        Handler::Builtin(Builtin::Sync(run)) => run(node, session, entry.spec, &mut parse),
        Handler::Builtin(Builtin::Acl) => {
            crate::builtin::acl_cmd::execute_sync(node, session, &mut parse)
        }
        Handler::Cache(parser) => match parser(&mut parse) {
            Ok(command) => command.apply(&node.keyspace),
            Err(e) => e.to_frame(),
        },
        Handler::Script(cmd) => crate::scripting::execute_in_exec(node, session, cmd, parse.rest()),
        Handler::Meta(parser) => node.meta.execute(parser, &mut parse),
        Handler::Builtin(Builtin::RaftStatus | Builtin::Migrate)
        | Handler::Locks(_)
        | Handler::Queues(_)
        | Handler::DebugKv(_) => Frame::error("ERR Command not allowed inside a transaction"),
    };
    if let Some(args) = shown {
        let source = crate::monitor::Source::Client(&session.handle);
        node.monitors.feed(source, &args);
    }
    reply
}
