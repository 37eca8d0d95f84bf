//! Node-local publish/subscribe: `SUBSCRIBE`, `UNSUBSCRIBE`, `PSUBSCRIBE`,
//! `PUNSUBSCRIBE`, `PUBLISH`, `PUBSUB CHANNELS|NUMSUB|NUMPAT`, with Redis 7's replies
//! (`pubsub.c`). It also carries client-side caching invalidations to RESP2 redirect
//! targets subscribed to `__redis__:invalidate` (see [`crate::tracking`]).
//!
//! - A subscription confirmation is a push per channel or pattern (`>3`/`*3 subscribe
//!   <name> <count>`), written where the command's reply would go (the command itself
//!   has no other reply); `UNSUBSCRIBE` with nothing to drop still confirms once with a
//!   null name.
//! - A client subscribed to anything is in pub/sub mode (`P` in `CLIENT LIST`); in
//!   RESP2 it may then only run `(P)SUBSCRIBE`, `(P)UNSUBSCRIBE`, `PING` (answered
//!   `*2 pong <msg>`), `QUIT` and `RESET` ([`context_error`]).
//! - `PUBLISH` reaches the channel's subscribers in subscription order, then every
//!   matching pattern subscription (one message each), and answers how many got it.
//!   Messages are queued in each receiver's push queue ([`crate::push`]).
//! - The subscriptions live in the client's registry entry, so a leaving client is
//!   removed from every channel ([`PubSub::leave`]).
//! - Inside `MULTI` a (un)subscribe command's first confirmation is its entry in
//!   `EXEC`'s array (RESP2 bytes as Redis's; in RESP3 an array where Redis nests a
//!   push); further ones follow `EXEC`'s reply, where Redis would break the array.
//!
//! Sharded pub/sub (`SSUBSCRIBE`, ...) is not offered.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use conclave_protocol::frame::Protocol;
use conclave_protocol::glob::glob_match;
use conclave_protocol::{CommandSpec, Frame, Parse, ParseError};
use parking_lot::RwLock;

use crate::clients::{flag, ClientHandle};
use crate::connection::Session;
use crate::node::Node;
use crate::push;

/// One client's subscriptions (kept in its registry entry).
#[derive(Debug, Default)]
pub struct Subscriptions {
    channels: BTreeSet<Bytes>,
    patterns: BTreeSet<Bytes>,
}

impl Subscriptions {
    fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// The channels subscribed to, then the patterns: `(name, is_pattern)` (the ACL
    /// check of a client whose user changed).
    pub fn all(&self) -> impl Iterator<Item = (&Bytes, bool)> {
        self.channels
            .iter()
            .map(|c| (c, false))
            .chain(self.patterns.iter().map(|p| (p, true)))
    }
}

type Subscribers = HashMap<Bytes, Vec<Arc<ClientHandle>>>;

/// The node's channels and patterns with their subscribers.
#[derive(Debug, Default)]
pub struct PubSub {
    channels: RwLock<Subscribers>,
    patterns: RwLock<Subscribers>,
}

fn add(map: &RwLock<Subscribers>, name: &Bytes, client: &Arc<ClientHandle>) {
    map.write()
        .entry(name.clone())
        .or_default()
        .push(client.clone());
}

fn remove(map: &RwLock<Subscribers>, name: &[u8], id: u64) {
    let mut map = map.write();
    if let Some(list) = map.get_mut(name) {
        list.retain(|c| c.id != id);
        if list.is_empty() {
            map.remove(name);
        }
    }
}

impl PubSub {
    /// Sends `message` on `channel`; how many subscriptions received it.
    pub fn publish(&self, channel: &[u8], message: &[u8]) -> usize {
        let mut receivers = 0;
        if let Some(list) = self.channels.read().get(channel) {
            for c in list {
                c.push(push::message(c.is_resp3(), channel, message));
                receivers += 1;
            }
        }
        for (pattern, list) in self.patterns.read().iter() {
            if glob_match(pattern, channel) {
                for c in list {
                    c.push(push::pmessage(c.is_resp3(), pattern, channel, message));
                    receivers += 1;
                }
            }
        }
        receivers
    }

    /// Removes a leaving (or `RESET`) client from every channel and pattern.
    pub fn leave(&self, client: &ClientHandle) {
        let subs = std::mem::take(&mut *client.subscriptions.lock());
        for ch in &subs.channels {
            remove(&self.channels, ch, client.id);
        }
        for p in &subs.patterns {
            remove(&self.patterns, p, client.id);
        }
        publish_counts(client, &Subscriptions::default());
    }

    /// Channels with at least one subscriber (`pubsub_channels`).
    pub fn channel_count(&self) -> usize {
        self.channels.read().len()
    }

    /// Patterns with at least one subscriber (`pubsub_patterns`).
    pub fn pattern_count(&self) -> usize {
        self.patterns.read().len()
    }
}

/// Mirrors the counts into the client's `CLIENT LIST` state and pub/sub flag.
fn publish_counts(client: &ClientHandle, subs: &Subscriptions) {
    let s = &client.state;
    s.sub.store(subs.channels.len() as u32, Relaxed);
    s.psub.store(subs.patterns.len() as u32, Relaxed);
    s.set_flag(flag::PUBSUB, subs.count() > 0);
}

/// Whether `spec` is one of the commands that only subscribe or unsubscribe.
pub fn is_subscription_command(spec: &CommandSpec) -> bool {
    matches!(
        spec.name,
        "SUBSCRIBE" | "UNSUBSCRIBE" | "PSUBSCRIBE" | "PUNSUBSCRIBE"
    )
}

/// The error for a command a RESP2 client in pub/sub mode may not run (Redis's text,
/// naming the command as `CLIENT LIST` does: `client|list` for a subcommand).
pub fn context_error(session: &Session, spec: &CommandSpec) -> Option<Frame> {
    if session.proto != Protocol::Resp2 || !session.handle.in_pubsub() {
        return None;
    }
    if is_subscription_command(spec) || matches!(spec.name, "PING" | "QUIT" | "RESET") {
        return None;
    }
    Some(Frame::error(format!(
        "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
        session.handle.state.cmd_name()
    )))
}

/// `SUBSCRIBE`, `UNSUBSCRIBE`, `PSUBSCRIBE`, `PUNSUBSCRIBE`, `PUBLISH`, `PUBSUB`.
pub fn execute(node: &Node, session: &mut Session, spec: &CommandSpec, parse: &mut Parse) -> Frame {
    let result = match spec.name {
        "SUBSCRIBE" => subscribe(node, session, parse, false),
        "PSUBSCRIBE" => subscribe(node, session, parse, true),
        "UNSUBSCRIBE" => unsubscribe(node, session, parse, false),
        "PUNSUBSCRIBE" => unsubscribe(node, session, parse, true),
        "PUBLISH" => publish(node, parse),
        "PUBSUB" => pubsub_cmd(node, parse),
        _ => Err(ParseError::Other(format!(
            "ERR unknown command '{}'",
            spec.lower_name()
        ))),
    };
    result.unwrap_or_else(|e| e.to_frame())
}

/// One subscription confirmation: kind, channel or pattern (`None`: nothing to drop),
/// the client's subscription count after it.
type Confirmation = (&'static str, Option<Bytes>, usize);

/// The confirmations go out as pushes where the reply would go; the command has no
/// reply of its own. Inside `EXEC` the first is the command's entry in `EXEC`'s array
/// (an array, where Redis writes its push there), any others follow `EXEC`'s reply.
fn confirmations(session: &mut Session, items: Vec<Confirmation>) -> Result<Frame, ParseError> {
    let resp3 = session.proto == Protocol::Resp3;
    let mut items = items.into_iter();
    let first = if session.in_exec {
        items.next().map(|(kind, name, count)| {
            Frame::Array(vec![
                Frame::bulk_static(kind),
                name.map_or(Frame::Null, Frame::Bulk),
                Frame::Integer(count as i64),
            ])
        })
    } else {
        None
    };
    let mut out = BytesMut::new();
    for (kind, name, count) in items {
        push::subscription(&mut out, resp3, kind, name.as_deref(), count);
    }
    session.out.extend_from_slice(&out);
    Ok(first.unwrap_or_else(|| {
        session.no_reply = true;
        Frame::Null
    }))
}

fn subscribe(
    node: &Node,
    session: &mut Session,
    parse: &mut Parse,
    patterns: bool,
) -> Result<Frame, ParseError> {
    let handle = session.handle.clone();
    let mut out = Vec::new();
    {
        let mut subs = handle.subscriptions.lock();
        for name in parse.rest() {
            let (set, map, kind) = if patterns {
                (&mut subs.patterns, &node.pubsub.patterns, "psubscribe")
            } else {
                (&mut subs.channels, &node.pubsub.channels, "subscribe")
            };
            if set.insert(name.clone()) {
                add(map, &name, &handle);
            }
            out.push((kind, Some(name), subs.count()));
        }
        publish_counts(&handle, &subs);
    }
    confirmations(session, out)
}

fn unsubscribe(
    node: &Node,
    session: &mut Session,
    parse: &mut Parse,
    patterns: bool,
) -> Result<Frame, ParseError> {
    let handle = session.handle.clone();
    let kind = if patterns {
        "punsubscribe"
    } else {
        "unsubscribe"
    };
    let map = if patterns {
        &node.pubsub.patterns
    } else {
        &node.pubsub.channels
    };
    let mut out = Vec::new();
    {
        let mut subs = handle.subscriptions.lock();
        let mut names = parse.rest();
        let all = names.is_empty();
        if all {
            let set = if patterns {
                &subs.patterns
            } else {
                &subs.channels
            };
            names = set.iter().cloned().collect();
            if names.is_empty() {
                out.push((kind, None, subs.count()));
            }
        }
        for name in names {
            let set = if patterns {
                &mut subs.patterns
            } else {
                &mut subs.channels
            };
            if set.remove(&name) {
                remove(map, &name, handle.id);
            }
            let count = subs.count();
            out.push((kind, Some(name), count));
        }
        publish_counts(&handle, &subs);
    }
    confirmations(session, out)
}

fn publish(node: &Node, parse: &mut Parse) -> Result<Frame, ParseError> {
    let channel = parse.next_bytes()?;
    let message = parse.next_bytes()?;
    Ok(Frame::Integer(
        node.pubsub.publish(&channel, &message) as i64
    ))
}

/// `PUBSUB CHANNELS [pattern]`, `PUBSUB NUMSUB [channel ...]`, `PUBSUB NUMPAT`,
/// `PUBSUB HELP`.
fn pubsub_cmd(node: &Node, parse: &mut Parse) -> Result<Frame, ParseError> {
    let argc = parse.argc();
    let raw = parse.next_bytes()?;
    let sub = crate::builtin::subcommands::resolve("PUBSUB", &raw, argc)?;
    match crate::builtin::subcommands::short_name(sub) {
        "CHANNELS" => {
            let pattern = parse.try_next();
            let mut names: Vec<Bytes> = node
                .pubsub
                .channels
                .read()
                .keys()
                .filter(|c| pattern.as_ref().is_none_or(|p| glob_match(p, c)))
                .cloned()
                .collect();
            names.sort();
            Ok(Frame::Array(names.into_iter().map(Frame::Bulk).collect()))
        }
        "NUMSUB" => {
            let channels = node.pubsub.channels.read();
            let mut pairs = Vec::new();
            for ch in parse.rest() {
                let n = channels.get(&ch).map_or(0, Vec::len);
                pairs.push(Frame::Bulk(ch));
                pairs.push(Frame::Integer(n as i64));
            }
            Ok(Frame::Array(pairs))
        }
        "NUMPAT" => Ok(Frame::Integer(node.pubsub.pattern_count() as i64)),
        "HELP" => Ok(crate::builtin::subcommands::help_frame("PUBSUB")),
        other => Err(ParseError::Other(format!(
            "ERR unknown subcommand '{}'. Try PUBSUB HELP.",
            other.to_lowercase()
        ))),
    }
}
