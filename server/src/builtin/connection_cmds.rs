//! Connection commands: `PING`, `ECHO`, `HELLO`, `AUTH`, `SELECT`, `QUIT`, `RESET`,
//! `CLIENT ...`.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use conclave_protocol::frame::Protocol;
use conclave_protocol::{Frame, Parse, ParseError};

use crate::connection::Session;
use crate::node::Node;
use conclave_protocol::CommandSpec;

/// The Redis version Conclave reports for client compatibility checks.
pub const REDIS_COMPAT_VERSION: &str = "7.2.0";

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Runs a connection-group command.
pub fn execute(node: &Node, session: &mut Session, spec: &CommandSpec, parse: &mut Parse) -> Frame {
    let result = match spec.name {
        "PING" => ping(parse),
        "ECHO" => parse.next_bytes().map(Frame::Bulk),
        "HELLO" => hello(node, session, parse),
        "AUTH" => auth(node, session, parse),
        "SELECT" => select(parse),
        "QUIT" => {
            session.close = true;
            Ok(Frame::ok())
        }
        "RESET" => {
            session.proto = Protocol::Resp2;
            session.handle.resp.store(2, Relaxed);
            session.authenticated = !node.requires_auth();
            session.handle.names.lock().name.clear();
            session.tx = None;
            session.watches = None;
            Ok(Frame::simple("RESET"))
        }
        "CLIENT" => client(node, session, parse),
        _ => Err(ParseError::Other(format!(
            "ERR unknown command '{}'",
            spec.lower_name()
        ))),
    };
    result.unwrap_or_else(|e| e.to_frame())
}

fn ping(parse: &mut Parse) -> Result<Frame, ParseError> {
    match parse.try_next() {
        None => Ok(Frame::simple("PONG")),
        Some(msg) => {
            parse.finish().map_err(|_| parse.arity_error())?;
            Ok(Frame::Bulk(msg))
        }
    }
}

fn select(parse: &mut Parse) -> Result<Frame, ParseError> {
    match parse.next_i64()? {
        0 => Ok(Frame::ok()),
        _ => Err(ParseError::Other("ERR DB index is out of range".into())),
    }
}

fn auth(node: &Node, session: &mut Session, parse: &mut Parse) -> Result<Frame, ParseError> {
    let first = parse.next_bytes()?;
    let (user, pass) = match parse.try_next() {
        Some(pass) => (Some(first), pass),
        None => (None, first),
    };
    parse.finish().map_err(|_| ParseError::Syntax)?;
    if !node.requires_auth() && user.is_none() {
        return Err(ParseError::Other(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?".into(),
        ));
    }
    if check_credentials(node, user.as_deref(), &pass) {
        session.authenticated = true;
        Ok(Frame::ok())
    } else {
        Err(ParseError::Other(WRONGPASS.into()))
    }
}

fn check_credentials(node: &Node, user: Option<&[u8]>, pass: &[u8]) -> bool {
    let user_ok = user.is_none_or(|u| u == b"default");
    user_ok && node.password_matches(pass)
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`.
fn hello(node: &Node, session: &mut Session, parse: &mut Parse) -> Result<Frame, ParseError> {
    let mut proto = session.proto;
    if let Some(ver) = parse.try_next() {
        proto = match conclave_protocol::parse::parse_i64(&ver) {
            Some(2) => Protocol::Resp2,
            Some(3) => Protocol::Resp3,
            Some(_) => {
                return Err(ParseError::Other(
                    "NOPROTO unsupported protocol version".into(),
                ))
            }
            None => {
                return Err(ParseError::Other(
                    "ERR Protocol version is not an integer or out of range".into(),
                ))
            }
        };
    }
    let mut authenticated = session.authenticated;
    let mut name: Option<Bytes> = None;
    while parse.remaining() > 0 {
        let option = parse.next_bytes()?;
        match option.to_ascii_uppercase().as_slice() {
            b"AUTH" if parse.remaining() >= 2 => {
                let user = parse.next_bytes()?;
                let pass = parse.next_bytes()?;
                if !check_credentials(node, Some(&user), &pass) {
                    return Err(ParseError::Other(WRONGPASS.into()));
                }
                authenticated = true;
            }
            b"SETNAME" if parse.remaining() >= 1 => name = Some(parse.next_bytes()?),
            _ => {
                return Err(ParseError::Other(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&option)
                )))
            }
        }
    }
    if !authenticated {
        return Err(ParseError::Other(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into(),
        ));
    }
    if let Some(n) = &name {
        validate_client_name(n)?;
    }
    session.authenticated = true;
    session.proto = proto;
    session
        .handle
        .resp
        .store(if proto == Protocol::Resp3 { 3 } else { 2 }, Relaxed);
    if let Some(n) = name {
        session.handle.names.lock().name = String::from_utf8_lossy(&n).into_owned();
    }
    Ok(Frame::Map(vec![
        (Frame::bulk_static("server"), Frame::bulk_static("conclave")),
        (
            Frame::bulk_static("version"),
            Frame::bulk_static(REDIS_COMPAT_VERSION),
        ),
        (
            Frame::bulk_static("proto"),
            Frame::Integer(if proto == Protocol::Resp3 { 3 } else { 2 }),
        ),
        (
            Frame::bulk_static("id"),
            Frame::Integer(session.handle.id as i64),
        ),
        (Frame::bulk_static("mode"), Frame::bulk_static("standalone")),
        // Every node accepts writes (locks are forwarded to the Raft leader), so to a
        // client each one is a master; the Raft role is in RAFT.STATUS.
        (Frame::bulk_static("role"), Frame::bulk_static("master")),
        (Frame::bulk_static("modules"), Frame::Array(vec![])),
    ]))
}

fn validate_client_name(name: &[u8]) -> Result<(), ParseError> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(ParseError::Other(
            "ERR Client names cannot contain spaces, newlines or special characters.".into(),
        ));
    }
    Ok(())
}

/// `CLIENT ID|SETNAME|GETNAME|SETINFO|INFO|LIST|KILL|NO-EVICT|NO-TOUCH|HELP`.
fn client(node: &Node, session: &mut Session, parse: &mut Parse) -> Result<Frame, ParseError> {
    let argc = parse.argc();
    let raw = parse.next_bytes()?;
    let sub = super::subcommands::short_name(super::subcommands::resolve("CLIENT", &raw, argc)?);
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
            let mut only: Option<Vec<u64>> = None;
            while parse.remaining() > 0 {
                match parse.next_keyword()?.as_str() {
                    "TYPE" => {
                        let t = parse.next_keyword()?;
                        if !matches!(t.as_str(), "NORMAL" | "MASTER" | "REPLICA" | "PUBSUB") {
                            return Err(ParseError::Other(format!(
                                "ERR Unknown client type '{}'",
                                t.to_lowercase()
                            )));
                        }
                        if t != "NORMAL" {
                            only = Some(vec![]);
                        }
                    }
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
                if only.as_ref().is_none_or(|ids| ids.contains(&c.id)) {
                    text.push_str(&c.list_line());
                    text.push('\n');
                }
            }
            Ok(Frame::Verbatim("txt", Bytes::from(text)))
        }
        "KILL" => client_kill(node, session, parse),
        "NO-EVICT" | "NO-TOUCH" => {
            arity(parse, 1)?;
            match parse.next_keyword()?.as_str() {
                "ON" | "OFF" => Ok(Frame::ok()),
                _ => Err(ParseError::Syntax),
            }
        }
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
    // Every client here is of type `normal` (no replicas or masters).
    let mut normal_type = true;
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
            "TYPE" => {
                if !["normal", "master", "replica", "slave", "pubsub"]
                    .contains(&value.to_ascii_lowercase().as_str())
                {
                    return Err(ParseError::Other(format!(
                        "ERR Unknown client type '{value}'"
                    )));
                }
                normal_type = value.eq_ignore_ascii_case("normal");
            }
            "USER" | "MAXAGE" => {}
            _ => return Err(ParseError::Syntax),
        }
    }
    let mut killed = 0;
    for c in node.clients.all() {
        let matches = !c.is_killed()
            && normal_type
            && id.is_none_or(|i| i == c.id)
            && addr.as_ref().is_none_or(|a| *a == c.addr.to_string())
            && laddr.as_ref().is_none_or(|a| *a == c.laddr.to_string())
            && !(skipme && c.id == session.handle.id);
        if matches {
            c.kill();
            killed += 1;
        }
    }
    Ok(Frame::Integer(killed))
}
