//! `CLIENT ...`: the connection's own settings and the node's clients, each
//! subcommand declared once in `subcommands.rs` (arity, syntax, help) and answered as
//! Redis 7.2 answers it (`networking.c`, `clientCommand`). Client-side caching's
//! subcommands (`TRACKING`, `CACHING`, `GETREDIR`, `TRACKINGINFO`) are in
//! [`crate::tracking::client_cmds`]; `PAUSE`/`UNPAUSE` drive [`crate::pause`];
//! `UNBLOCK` ends a blocked `LOCK.ACQUIRE ... WAIT` (see
//! `conclave_locks::service::unblock`).

use bytes::Bytes;
use conclave_protocol::blocking::Unblock;
use conclave_protocol::parse::parse_i64;
use conclave_protocol::{Frame, Parse, ParseError};

use super::connection_cmds::validate_client_name;
use super::subcommands;
use crate::clients::flag;
use crate::connection::Session;
use crate::node::Node;
use crate::tracking::client_cmds as tracking;

/// Redis's error for a subcommand called with a count of arguments it does not take
/// (`addReplySubcommandSyntaxError`).
fn syntax_error(sub: &str) -> ParseError {
    ParseError::Other(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
        sub.to_lowercase()
    ))
}

/// A client type of `CLIENT LIST|KILL TYPE`: `Some(pubsub)` for normal or pub/sub
/// clients, `None` for masters and replicas (none here).
fn client_type(name: &str) -> Result<Option<bool>, ParseError> {
    match name.to_ascii_lowercase().as_str() {
        "normal" => Ok(Some(false)),
        "pubsub" => Ok(Some(true)),
        "master" | "replica" | "slave" => Ok(None),
        _ => Err(ParseError::Other(format!(
            "ERR Unknown client type '{name}'"
        ))),
    }
}

/// An `ON|OFF` argument.
fn on_off(parse: &mut Parse) -> Result<bool, ParseError> {
    match parse.next_keyword()?.as_str() {
        "ON" => Ok(true),
        "OFF" => Ok(false),
        _ => Err(ParseError::Syntax),
    }
}

/// `CLIENT <subcommand> ...`.
pub fn client(node: &Node, session: &mut Session, parse: &mut Parse) -> Result<Frame, ParseError> {
    let argc = parse.argc();
    let raw = parse.next_bytes()?;
    let sub = subcommands::short_name(subcommands::resolve("CLIENT", &raw, argc)?);
    let arity = |parse: &Parse, n: usize| {
        if parse.remaining() == n {
            Ok(())
        } else {
            Err(ParseError::Other(format!(
                "ERR wrong number of arguments for 'client|{}' command",
                sub.to_lowercase()
            )))
        }
    };
    match sub {
        "ID" => {
            arity(parse, 0)?;
            Ok(Frame::Integer(session.handle.id as i64))
        }
        "SETNAME" => {
            arity(parse, 1)?;
            let name = parse.next_bytes()?;
            validate_client_name(&name)?;
            session.handle.names.lock().name = String::from_utf8_lossy(&name).into_owned();
            Ok(Frame::ok())
        }
        "GETNAME" => {
            arity(parse, 0)?;
            let name = session.handle.names.lock().name.clone();
            Ok(if name.is_empty() {
                Frame::Null
            } else {
                Frame::bulk_string(name)
            })
        }
        "SETINFO" => {
            arity(parse, 2)?;
            let attr = parse.next_keyword()?;
            let value = parse.next_string()?;
            if value.chars().any(|c| c == ' ' || c == '\n' || c == '\r') {
                return Err(ParseError::Other(format!(
                    "ERR {} cannot contain spaces, newlines or special characters.",
                    attr.to_lowercase()
                )));
            }
            let mut names = session.handle.names.lock();
            match attr.as_str() {
                "LIB-NAME" => names.lib_name = value,
                "LIB-VER" => names.lib_ver = value,
                _ => {
                    return Err(ParseError::Other(format!(
                        "ERR Unrecognized option '{}'",
                        attr.to_lowercase()
                    )))
                }
            }
            Ok(Frame::ok())
        }
        "INFO" => {
            arity(parse, 0)?;
            Ok(Frame::Verbatim(
                "txt",
                Bytes::from(session.handle.list_line() + "\n"),
            ))
        }
        "LIST" => {
            // `None`: every type; `Some(pubsub)`: normal clients or pub/sub ones;
            // master and replica clients do not exist here.
            let mut kind: Option<Option<bool>> = None;
            let mut only: Option<Vec<u64>> = None;
            while parse.remaining() > 0 {
                match parse.next_keyword()?.as_str() {
                    "TYPE" => kind = Some(client_type(&parse.next_string()?)?),
                    "ID" => {
                        let mut ids = Vec::new();
                        while parse.remaining() > 0 {
                            ids.push(
                                parse.next_u64().map_err(|_| {
                                    ParseError::Other("ERR Invalid client ID".into())
                                })?,
                            );
                        }
                        only = Some(ids);
                    }
                    _ => return Err(ParseError::Syntax),
                }
            }
            let mut text = String::new();
            for c in node.clients.all() {
                let type_ok = kind.is_none_or(|k| k.is_some_and(|pubsub| c.in_pubsub() == pubsub));
                if type_ok && only.as_ref().is_none_or(|ids| ids.contains(&c.id)) {
                    text.push_str(&c.list_line());
                    text.push('\n');
                }
            }
            Ok(Frame::Verbatim("txt", Bytes::from(text)))
        }
        "KILL" => client_kill(node, session, parse),
        "NO-EVICT" => {
            arity(parse, 1)?;
            session
                .handle
                .state
                .set_flag(flag::NO_EVICT, on_off(parse)?);
            Ok(Frame::ok())
        }
        "NO-TOUCH" => {
            arity(parse, 1)?;
            session
                .handle
                .state
                .set_flag(flag::NO_TOUCH, on_off(parse)?);
            Ok(Frame::ok())
        }
        "REPLY" => reply(session, parse),
        "PAUSE" => pause(node, parse),
        "UNPAUSE" => {
            arity(parse, 0)?;
            node.pause.unpause();
            node.keyspace.resume_expiry();
            Ok(Frame::ok())
        }
        "UNBLOCK" => unblock(node, parse),
        "TRACKING" => tracking::tracking(node, session, parse),
        "CACHING" => tracking::caching(session, parse),
        "GETREDIR" => Ok(tracking::getredir(session)),
        "TRACKINGINFO" => Ok(tracking::trackinginfo(session)),
        "HELP" => Ok(super::subcommands::help_frame("CLIENT")),
        other => Err(ParseError::Other(format!(
            "ERR unknown subcommand '{}'. Try CLIENT HELP.",
            other.to_lowercase()
        ))),
    }
}

/// `CLIENT KILL addr` (old form: `+OK`) or `CLIENT KILL <filter value> ...` (count).
fn client_kill(node: &Node, session: &Session, parse: &mut Parse) -> Result<Frame, ParseError> {
    if parse.remaining() == 1 {
        let addr = parse.next_string()?;
        // A client already killed may linger in the registry until its task ends: skip it.
        let target = node
            .clients
            .all()
            .into_iter()
            .find(|c| !c.is_killed() && c.addr.to_string() == addr);
        return match target {
            Some(c) => {
                c.kill();
                Ok(Frame::ok())
            }
            None => Err(ParseError::Other("ERR No such client".into())),
        };
    }
    let (mut id, mut addr, mut laddr, mut skipme) = (None, None, None, true);
    let (mut kind, mut user) = (None, None);
    while parse.remaining() > 0 {
        let key = parse.next_keyword()?;
        let value = parse.next_string().map_err(|_| ParseError::Syntax)?;
        match key.as_str() {
            "ID" => {
                id = Some(
                    value
                        .parse::<u64>()
                        .ok()
                        .filter(|&i| i > 0)
                        .ok_or_else(|| {
                            ParseError::Other("ERR client-id should be greater than 0".into())
                        })?,
                )
            }
            "ADDR" => addr = Some(value),
            "LADDR" => laddr = Some(value),
            "SKIPME" => {
                skipme = match value.to_ascii_lowercase().as_str() {
                    "yes" => true,
                    "no" => false,
                    _ => return Err(ParseError::Syntax),
                }
            }
            "TYPE" => kind = Some(client_type(&value)?),
            "USER" => {
                if node.acl.get(&value).is_none() {
                    return Err(ParseError::Other(format!("ERR No such user '{value}'")));
                }
                user = Some(value);
            }
            "MAXAGE" => {}
            _ => return Err(ParseError::Syntax),
        }
    }
    let mut killed = 0;
    for c in node.clients.all() {
        let matches = !c.is_killed()
            && kind.is_none_or(|k| k.is_some_and(|pubsub| c.in_pubsub() == pubsub))
            && id.is_none_or(|i| i == c.id)
            && addr.as_ref().is_none_or(|a| *a == c.addr.to_string())
            && laddr.as_ref().is_none_or(|a| *a == c.laddr.to_string())
            && user.as_ref().is_none_or(|u| *u == c.names.lock().user)
            && !(skipme && c.id == session.handle.id);
        if matches {
            c.kill();
            killed += 1;
        }
    }
    Ok(Frame::Integer(killed))
}

/// `CLIENT REPLY ON|OFF|SKIP`: `ON` answers `+OK`; `OFF` and `SKIP` answer nothing
/// (`SKIP` silences the next command; it does nothing while replies are off).
fn reply(session: &mut Session, parse: &mut Parse) -> Result<Frame, ParseError> {
    match parse.next_keyword()?.as_str() {
        "ON" => {
            session.reply_off = false;
            session.reply_skip = false;
            session.reply_skip_next = false;
            Ok(Frame::ok())
        }
        "OFF" => {
            session.reply_off = true;
            session.no_reply = true;
            Ok(Frame::ok())
        }
        "SKIP" => {
            if !session.reply_off {
                session.reply_skip_next = true;
            }
            session.no_reply = true;
            Ok(Frame::ok())
        }
        _ => Err(ParseError::Syntax),
    }
}

/// `CLIENT PAUSE timeout [WRITE|ALL]` (timeout in ms): `+OK`.
fn pause(node: &Node, parse: &mut Parse) -> Result<Frame, ParseError> {
    if parse.remaining() > 2 {
        return Err(syntax_error("pause"));
    }
    let timeout = parse.next_bytes()?;
    let all = match parse.try_next() {
        None => true,
        Some(mode) if mode.eq_ignore_ascii_case(b"WRITE") => false,
        Some(mode) if mode.eq_ignore_ascii_case(b"ALL") => true,
        Some(_) => {
            return Err(ParseError::Other(
                "ERR CLIENT PAUSE mode must be WRITE or ALL".into(),
            ))
        }
    };
    let ms = parse_i64(&timeout)
        .ok_or_else(|| ParseError::Other("ERR timeout is not an integer or out of range".into()))?;
    let ms = u64::try_from(ms).map_err(|_| ParseError::Other("ERR timeout is negative".into()))?;
    node.pause.pause(ms, all);
    // The dataset stays still meanwhile (`CLIENT PAUSE` pauses expiry in Redis 7).
    if ms > 0 {
        let now = node.keyspace.now_ms();
        node.keyspace.pause_expiry(now.saturating_add(ms));
    }
    Ok(Frame::ok())
}

/// `CLIENT UNBLOCK id [TIMEOUT|ERROR]`: `:1` when client `id` was blocked in a lock
/// wait and is now unblocked, else `:0`.
fn unblock(node: &Node, parse: &mut Parse) -> Result<Frame, ParseError> {
    if parse.remaining() > 2 {
        return Err(syntax_error("unblock"));
    }
    let id = parse.next_bytes()?;
    let how = match parse.try_next() {
        None => Unblock::Timeout,
        Some(r) if r.eq_ignore_ascii_case(b"TIMEOUT") => Unblock::Timeout,
        Some(r) if r.eq_ignore_ascii_case(b"ERROR") => Unblock::Error,
        Some(_) => {
            return Err(ParseError::Other(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR".into(),
            ))
        }
    };
    let id = parse_i64(&id).ok_or(ParseError::NotInteger)?;
    let unblocked = u64::try_from(id)
        .ok()
        .and_then(|id| node.clients.get(id))
        .is_some_and(|c| c.wait.unblock(how));
    Ok(Frame::Integer(i64::from(unblocked)))
}
