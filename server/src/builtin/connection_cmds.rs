//! Connection commands: `PING`, `ECHO`, `HELLO`, `AUTH`, `SELECT`, `QUIT`, `RESET`
//! (`CLIENT ...` is in `client_cmd.rs`).

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
        "PING" => ping(session, parse),
        "ECHO" => parse.next_bytes().map(Frame::Bulk),
        "HELLO" => hello(node, session, parse),
        "AUTH" => auth(node, session, parse),
        "SELECT" => select(parse),
        "QUIT" => {
            session.close = true;
            Ok(Frame::ok())
        }
        "RESET" => {
            reset(node, session);
            Ok(Frame::simple("RESET"))
        }
        "CLIENT" => super::client_cmd::client(node, session, parse),
        _ => Err(ParseError::Other(format!(
            "ERR unknown command '{}'",
            spec.lower_name()
        ))),
    };
    result.unwrap_or_else(|e| e.to_frame())
}

/// `PING [message]`; a RESP2 client in pub/sub mode gets `*2 pong <message or "">`.
fn ping(session: &Session, parse: &mut Parse) -> Result<Frame, ParseError> {
    let msg = parse.try_next();
    if msg.is_some() {
        parse.finish().map_err(|_| parse.arity_error())?;
    }
    if session.proto == Protocol::Resp2 && session.handle.in_pubsub() {
        return Ok(Frame::Array(vec![
            Frame::bulk_static("pong"),
            Frame::Bulk(msg.unwrap_or_default()),
        ]));
    }
    Ok(msg.map_or_else(|| Frame::simple("PONG"), Frame::Bulk))
}

/// `RESET` (Redis's `clearClientConnectionState`): tracking off, every subscription
/// dropped without confirmations, RESP2, default authentication, no transaction or
/// watches, no name, replies on, `NO-EVICT`/`NO-TOUCH` off. The library name and
/// version stay.
fn reset(node: &Node, session: &mut Session) {
    crate::tracking::forget(node, &session.handle);
    session.read_tracking = None;
    session.caching = false;
    node.pubsub.leave(&session.handle);
    node.monitors.remove(&session.handle);
    session.proto = Protocol::Resp2;
    session.handle.resp.store(2, Relaxed);
    // Redis selects the default user, authenticated if it needs no password.
    session.authenticated = !node.requires_auth();
    session.acl = crate::acl::SessionUser::default_of(&node.acl);
    {
        let mut names = session.handle.names.lock();
        names.name.clear();
        names.user = "default".into();
    }
    session.tx = None;
    session.watches = None;
    session.reply_off = false;
    session.reply_skip_next = false;
    let state = &session.handle.state;
    state.set_flag(crate::clients::flag::NO_EVICT, false);
    state.set_flag(crate::clients::flag::NO_TOUCH, false);
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
    if user.is_none() && node.acl.default_user().nopass {
        return Err(ParseError::Other(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?".into(),
        ));
    }
    let name = user.as_deref().unwrap_or(b"default");
    login(node, session, name, &pass, "AUTH")?;
    Ok(Frame::ok())
}

/// Authenticates the connection as `user` (Redis's `ACLAuthenticateUser`); a failure is
/// `-WRONGPASS` and an `ACL LOG` entry (object: the command's name as sent).
fn login(
    node: &Node,
    session: &mut Session,
    user: &[u8],
    pass: &[u8],
    command: &str,
) -> Result<(), ParseError> {
    match node.acl.authenticate(user, pass) {
        Some(u) => {
            session.handle.names.lock().user.clone_from(&u.name);
            session.acl = crate::acl::SessionUser::of(&node.acl, u);
            session.authenticated = true;
            Ok(())
        }
        None => {
            let context = if session.tx.is_some() {
                crate::acl::log::Context::Multi
            } else {
                crate::acl::log::Context::Toplevel
            };
            node.acl.log.add(
                crate::acl::log::Reason::Auth,
                context,
                command.to_string(),
                String::from_utf8_lossy(user).into_owned(),
                session.handle.list_line(),
            );
            Err(ParseError::Other(WRONGPASS.into()))
        }
    }
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
    let mut auth: Option<(Bytes, Bytes)> = None;
    while parse.remaining() > 0 {
        let option = parse.next_bytes()?;
        match option.to_ascii_uppercase().as_slice() {
            b"AUTH" if parse.remaining() >= 2 => {
                let user = parse.next_bytes()?;
                let pass = parse.next_bytes()?;
                auth = Some((user, pass));
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
    // Redis authenticates before the NOAUTH check and the name's.
    if let Some((user, pass)) = auth {
        login(node, session, &user, &pass, "HELLO")?;
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

/// Redis's check of a client name (`CLIENT SETNAME`, `HELLO ... SETNAME`).
pub(super) fn validate_client_name(name: &[u8]) -> Result<(), ParseError> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(ParseError::Other(
            "ERR Client names cannot contain spaces, newlines or special characters.".into(),
        ));
    }
    Ok(())
}
