//! Keyspace commands on a node of a cluster: through the coherence driver
//! (`conclave_cache::coherent`, contract 2.1) instead of straight on the keyspace.
//!
//! The command's keys come from its declaration (first, last, step, as `COMMAND INFO`
//! gives them); a command flagged `write` needs every key held `M`, any other a copy of
//! every key under lease. The driver runs the command on the keyspace once this node
//! holds the keys; until then the command waits (off the keyspace gate, so scripts and
//! `EXEC` are not held up by a network wait) and gives up with `-TRYAGAIN` at its
//! deadline. `CACHE.STATE`, `CACHE.DIR` and `CACHE.STATS` answer from the driver.

use bytes::Bytes;
use conclave_cache::cmd::{stats_frame, Command, Counters};
use conclave_cache::coherent::Coherent;
use conclave_protocol::spec::CommandSpec;
use conclave_protocol::{Frame, ParseError};

use crate::connection::Session;
use crate::node::Node;
use crate::tracking;

/// Why `FLUSHALL`/`FLUSHDB` are refused inside `MULTI` and scripts on a cluster of several
/// nodes (the text after `ERR`): a flush must reach every home and wait for it, and a
/// transaction or script runs under the driver's lock, which cannot wait on the network.
/// Refused at queueing, so `EXEC` aborts and nothing of the transaction runs.
pub const FLUSH_HELD: &str = "FLUSHALL and FLUSHDB cannot run inside MULTI or a script on a cluster of several nodes; run them on their own";

/// Whether `spec` is a flush that [`FLUSH_HELD`] refuses on this node.
pub fn flush_refused(node: &Node, spec: &CommandSpec) -> bool {
    node.coherent.is_some() && matches!(spec.name, "FLUSHALL" | "FLUSHDB")
}

/// The key arguments of a command, by its declared key positions.
pub fn keys_of(spec: &CommandSpec, args: &[Bytes]) -> Vec<Bytes> {
    let (first, last, step) = spec.keys;
    let n = i64::try_from(args.len()).unwrap_or(i64::MAX);
    let (first, last, step) = (i64::from(first), i64::from(last), i64::from(step));
    if step <= 0 || first <= 0 {
        return Vec::new();
    }
    let last = if last < 0 { n + last } else { last.min(n - 1) };
    let mut keys = Vec::new();
    let mut i = first;
    while i <= last {
        if let Some(k) = usize::try_from(i).ok().and_then(|i| args.get(i)) {
            keys.push(k.clone());
        }
        i += step;
    }
    keys
}

/// The coherence counters of `CACHE.STATS` / `INFO cache` (zero without a driver).
pub fn counters(node: &Node) -> Counters {
    let Some(c) = &node.coherent else {
        return Counters::one_node();
    };
    let p = c.protocol_stats();
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    Counters {
        remote_reads: p.remote_reads,
        invalidations_sent: p.invalidations_sent,
        invalidations_received: p.invalidations_received,
        writebacks: p.writebacks,
        lease_waits: p.lease_waits,
        forgotten: c.stats.forgotten.load(relaxed),
        messages_sent: c.stats.messages_sent.load(relaxed),
        messages_received: c.stats.messages_received.load(relaxed),
        ring_epoch: c.epoch(),
    }
}

/// `CACHE.DIR key` on a one-node cluster: the node is every key's home and holds every
/// key it has `E`.
pub fn dir_one_node(node: &Node, key: &[u8]) -> Frame {
    let id = Frame::Integer(i64::try_from(node.config.id).unwrap_or(i64::MAX));
    let owner = if node.keyspace.exists(key) {
        id.clone()
    } else {
        Frame::Null
    };
    Frame::Map(vec![
        (Frame::bulk_static("home"), id),
        (Frame::bulk_static("epoch"), Frame::Integer(1)),
        (Frame::bulk_static("owner"), owner),
        (Frame::bulk_static("sharers"), Frame::Array(vec![])),
    ])
}

/// Runs a parsed keyspace command through the driver `c`.
pub async fn execute(
    node: &Node,
    session: &Session,
    c: &Coherent,
    spec: &CommandSpec,
    keys: Vec<Bytes>,
    parsed: Result<Command, ParseError>,
) -> Frame {
    let command = match parsed {
        Ok(command) => command,
        Err(e) => return e.to_frame(),
    };
    match &command {
        Command::CacheState(_) => {
            return Frame::simple(keys.first().map_or("I", |k| c.state(k)));
        }
        Command::CacheDir(d) => return c.dir(d.key().clone()).await,
        Command::CacheStats(_) => return stats_frame(&node.keyspace, &counters(node)),
        Command::Flush(_) => {
            // Every home drops what it homes, then this node its copies (contract 2.1).
            let mut command = Some(command);
            return c
                .flush_cluster(&mut |ks| command.take().map_or(Frame::Null, |cmd| cmd.apply(ks)))
                .await;
        }
        _ => {}
    }
    let mut command = Some(command);
    let mut run = |ks: &conclave_cache::keyspace::Keyspace| {
        command.take().map_or(Frame::Null, |cmd| cmd.apply(ks))
    };
    let mut attempt = c.begin(keys, spec.is_write());
    loop {
        // A script past its busy threshold answers -BUSY here; otherwise EXEC and scripts
        // exclude this command by the driver's lock they run under (see `hold`).
        if let Err(busy) = node.scripting.keyspace(node).await {
            return busy;
        }
        let step = {
            let _scope = tracking::Scope::enter(&node.tracker, session.handle.id);
            c.attempt(&mut attempt, &mut run)
        };
        match step {
            Ok(reply) => return reply,
            Err(ready) => {
                if tokio::time::timeout_at(attempt.deadline(), ready)
                    .await
                    .is_err()
                {
                    return c.give_up(attempt);
                }
            }
        }
    }
}

/// `EXEC` or a script on a cluster: takes the scripting turn, then holds every key it
/// names (`keys`) `M` in key order for its whole run — the driver runs it under its lock,
/// so no other command of this node interleaves and no other node can take a key away —
/// and hands the new values to the driver after. A script may touch only its declared
/// keys ([`Session::cluster_keys`]). The run must end within a lease (it is meant for
/// short transactions and scripts, as in Redis).
pub async fn hold(
    node: &Node,
    session: &mut Session,
    entry: &'static crate::command_table::Entry,
    args: Vec<Bytes>,
    c: &Coherent,
    keys: Vec<Bytes>,
) -> Frame {
    use crate::command_table::{Builtin, Handler};
    let _turn = match node.scripting.turn().await {
        Ok(turn) => turn,
        Err(busy) => return busy,
    };
    session.cluster_keys = Some(keys.clone());
    let mut args = Some(args);
    let mut attempt = c.begin(keys, true);
    let reply = loop {
        let step = {
            let session = &mut *session;
            let args = &mut args;
            let mut run = |_: &conclave_cache::keyspace::Keyspace| {
                let Some(args) = args.take() else {
                    return Frame::Null;
                };
                let _scope = tracking::Scope::enter(&node.tracker, session.handle.id);
                match entry.handler {
                    Handler::Builtin(Builtin::Sync(run)) => {
                        let mut parse = conclave_protocol::Parse::new(args);
                        run(node, session, entry.spec, &mut parse)
                    }
                    Handler::Script(cmd) => crate::scripting::execute_held(
                        node,
                        session,
                        cmd,
                        args.into_iter().skip(1).collect(),
                    ),
                    _ => Frame::Null,
                }
            };
            c.attempt(&mut attempt, &mut run)
        };
        match step {
            Ok(reply) => break reply,
            Err(ready) => {
                if tokio::time::timeout_at(attempt.deadline(), ready)
                    .await
                    .is_err()
                {
                    break c.give_up(attempt);
                }
            }
        }
    };
    session.cluster_keys = None;
    reply
}

/// `WATCH` on a cluster: first takes a copy of every key, so a write on another node
/// invalidates it here (and so sets the watch) — a key this node held no copy of would
/// change elsewhere unseen.
pub async fn copy_keys(c: &Coherent, keys: Vec<Bytes>) -> Result<(), Frame> {
    let reply = c.execute(keys, false, &mut |_| Frame::Null).await;
    match reply {
        Frame::Error(_) => Err(reply),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(parts: &[&str]) -> Vec<Bytes> {
        parts.iter().map(|p| Bytes::from(p.to_string())).collect()
    }

    fn keys(name: &str, a: &[&str]) -> Vec<Bytes> {
        let entry = crate::command_table::lookup(name.as_bytes()).expect("declared");
        keys_of(entry.spec, &args(a))
    }

    #[test]
    fn keys_follow_the_declared_positions() {
        assert_eq!(keys("SET", &["SET", "k", "v", "EX", "5"]), args(&["k"]));
        assert_eq!(
            keys("MSET", &["MSET", "a", "1", "b", "2"]),
            args(&["a", "b"])
        );
        assert_eq!(keys("DEL", &["DEL", "a", "b", "c"]), args(&["a", "b", "c"]));
        assert_eq!(
            keys("BITOP", &["BITOP", "AND", "d", "x", "y"]),
            args(&["d", "x", "y"])
        );
        assert_eq!(keys("RENAME", &["RENAME", "a", "b"]), args(&["a", "b"]));
        assert!(keys("DBSIZE", &["DBSIZE"]).is_empty());
    }
}
