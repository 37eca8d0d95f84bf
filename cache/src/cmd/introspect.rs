//! `OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT|HELP`, `TOUCH`, `RANDOMKEY`.

use bytes::Bytes;

use super::bulk_or_null;
use crate::keyspace::Keyspace;
use conclave_protocol::parse::{Parse, ParseError};
use conclave_protocol::Frame;

/// What `OBJECT` asks about its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectQuery {
    /// `ENCODING`
    Encoding,
    /// `FREQ`
    Freq,
    /// `IDLETIME`
    IdleTime,
    /// `REFCOUNT`
    RefCount,
}

/// `OBJECT <subcommand> [key]`
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// `OBJECT HELP`
    Help,
    /// `OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key`
    Query(ObjectQuery, Bytes),
}

/// The lines of `OBJECT HELP` between Redis's header and footer (`object.c`).
const OBJECT_HELP: &[&str] = &[
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
];

/// Redis's `-ERR unknown subcommand '<sub>'. Try <CMD> HELP.` (the subcommand as sent,
/// cut at 128 bytes).
pub(crate) fn unknown_subcommand(command: &str, sub: &[u8]) -> ParseError {
    let sub = sub.get(..sub.len().min(128)).unwrap_or_default();
    let sub = sub.split(|&c| c == 0).next().unwrap_or_default();
    ParseError::Other(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub),
        command.to_ascii_uppercase()
    ))
}

/// Redis's help reply: a header, the lines, and the `HELP` footer, as status lines.
pub(crate) fn help_reply(command: &str, lines: &[&'static str]) -> Frame {
    let mut out = Vec::with_capacity(lines.len() + 3);
    out.push(Frame::Simple(Bytes::from(format!(
        "{} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        command.to_ascii_uppercase()
    ))));
    out.extend(
        lines
            .iter()
            .map(|l| Frame::Simple(Bytes::from_static(l.as_bytes()))),
    );
    out.push(Frame::simple("HELP"));
    out.push(Frame::simple("    Prints this help."));
    Frame::Array(out)
}

impl Object {
    /// Parses the subcommand and its arguments. Each subcommand has its own arity,
    /// reported as Redis 7 does (`'object|encoding'`).
    pub fn parse(parse: &mut Parse) -> Result<Object, ParseError> {
        let name = parse.name().to_string();
        let sub = parse.next_bytes()?;
        let lower = sub.to_ascii_lowercase();
        let (query, arity) = match lower.as_slice() {
            b"help" => (None, 0),
            b"encoding" => (Some(ObjectQuery::Encoding), 1),
            b"freq" => (Some(ObjectQuery::Freq), 1),
            b"idletime" => (Some(ObjectQuery::IdleTime), 1),
            b"refcount" => (Some(ObjectQuery::RefCount), 1),
            _ => return Err(unknown_subcommand(&name, &sub)),
        };
        if parse.remaining() != arity {
            return Err(ParseError::WrongArity(format!(
                "{name}|{}",
                String::from_utf8_lossy(&lower)
            )));
        }
        Ok(match query {
            None => Object::Help,
            Some(q) => Object::Query(q, parse.next_bytes()?),
        })
    }

    /// Runs the command. `ENCODING`: `int`, `embstr` or `raw`, as Redis would have
    /// encoded the value (see [`crate::keyspace::Encoding`]); `REFCOUNT`: 2147483647
    /// for Redis's shared integers, else 1; `IDLETIME`: whole seconds since the last
    /// access (reading it does not count as one); `FREQ`: Conclave has no LFU policy,
    /// so Redis's error for that case. A missing key is a null reply.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let (query, key) = match self {
            Object::Help => return help_reply("object", OBJECT_HELP),
            Object::Query(q, key) => (q, key),
        };
        let Some(info) = ks.object(&key) else {
            return Frame::Null;
        };
        match query {
            ObjectQuery::Encoding => Frame::bulk_static(info.encoding),
            ObjectQuery::RefCount => Frame::Integer(info.refcount),
            ObjectQuery::IdleTime => Frame::Integer((info.idle_ms / 1000) as i64),
            ObjectQuery::Freq => Frame::error(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. \
                 Please note that when switching between policies at runtime LRU and LFU \
                 data will take some time to adjust.",
            ),
        }
    }
}

/// `TOUCH key [key ...]`
#[derive(Debug, Clone, PartialEq)]
pub struct Touch {
    keys: Vec<Bytes>,
}

impl Touch {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<Touch, ParseError> {
        Ok(Touch { keys: parse.rest() })
    }

    /// Runs the command: how many of the keys exist (a key named twice counts
    /// twice); each found key's LRU stamp is refreshed.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        let n = self
            .keys
            .iter()
            .filter(|k| ks.read(k, true, |_| ()).is_some())
            .count();
        Frame::Integer(n as i64)
    }
}

/// `RANDOMKEY`
#[derive(Debug, Clone, PartialEq)]
pub struct RandomKey;

impl RandomKey {
    /// Parses the arguments (there are none).
    pub fn parse(_parse: &mut Parse) -> Result<RandomKey, ParseError> {
        Ok(RandomKey)
    }

    /// Runs the command: a random key, or null when the keyspace is empty.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        bulk_or_null(ks.random_key())
    }
}
