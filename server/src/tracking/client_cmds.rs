//! `CLIENT TRACKING`, `CLIENT CACHING`, `CLIENT GETREDIR`, `CLIENT TRACKINGINFO`, with
//! Redis 7's parsing order and error texts (`networking.c`, `clientCommand`).

use conclave_protocol::parse::parse_i64;
use conclave_protocol::{Frame, Parse, ParseError};

use super::bcast::{check_collisions, Options};
use super::ReadTracking;
use crate::connection::Session;
use crate::node::Node;

fn err(text: &str) -> ParseError {
    ParseError::Other(text.to_string())
}

/// `CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT]
/// [NOLOOP]`: `+OK`. Options are parsed (and a redirect target checked) even for `OFF`.
pub fn tracking(
    node: &Node,
    session: &mut Session,
    parse: &mut Parse,
) -> Result<Frame, ParseError> {
    let switch = parse.next_bytes()?;
    let mut opts = Options::default();
    while parse.remaining() > 0 {
        let opt = parse.next_bytes()?.to_ascii_uppercase();
        let more = parse.remaining() > 0;
        match opt.as_slice() {
            b"REDIRECT" if more => {
                let value = parse.next_bytes()?;
                if opts.redirect != 0 {
                    return Err(err(
                        "ERR A client can only redirect to a single other client",
                    ));
                }
                let id = parse_i64(&value).ok_or(ParseError::NotInteger)?;
                // Redis requires the target to exist now (it may leave later).
                let found = u64::try_from(id)
                    .ok()
                    .filter(|&id| node.clients.get(id).is_some());
                let Some(id) = found else {
                    return Err(err("ERR The client ID you want redirect to does not exist"));
                };
                opts.redirect = id;
            }
            b"BCAST" => opts.bcast = true,
            b"OPTIN" => opts.optin = true,
            b"OPTOUT" => opts.optout = true,
            b"NOLOOP" => opts.noloop = true,
            b"PREFIX" if more => opts.prefixes.push(parse.next_bytes()?),
            _ => return Err(ParseError::Syntax),
        }
    }
    if switch.eq_ignore_ascii_case(b"ON") {
        let current = session.handle.tracking.lock().clone();
        if !opts.bcast && !opts.prefixes.is_empty() {
            return Err(err("ERR PREFIX option requires BCAST mode to be enabled"));
        }
        if current.on && current.bcast != opts.bcast {
            return Err(err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."));
        }
        if opts.bcast && (opts.optin || opts.optout) {
            return Err(err("ERR OPTIN and OPTOUT are not compatible with BCAST"));
        }
        if opts.optin && opts.optout {
            return Err(err("ERR You can't specify both OPTIN mode and OPTOUT mode"));
        }
        if (opts.optin && current.optout) || (opts.optout && current.optin) {
            return Err(err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."));
        }
        if opts.bcast {
            check_collisions(&current, &opts.prefixes).map_err(ParseError::Other)?;
        }
        session.read_tracking = (!opts.bcast).then_some(ReadTracking {
            optin: opts.optin,
            optout: opts.optout,
        });
        node.tracker.enable(&node.keyspace, &session.handle, opts);
    } else if switch.eq_ignore_ascii_case(b"OFF") {
        node.tracker.disable(&node.keyspace, &session.handle);
        session.read_tracking = None;
        session.caching = false;
    } else {
        return Err(ParseError::Syntax);
    }
    Ok(Frame::ok())
}

/// `CLIENT CACHING YES|NO`: the next command (or `MULTI` ... `EXEC`) is tracked
/// (`OPTIN`) or not (`OPTOUT`).
pub fn caching(session: &mut Session, parse: &mut Parse) -> Result<Frame, ParseError> {
    let t = session.handle.tracking.lock().clone();
    if !t.on {
        return Err(err("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"));
    }
    let opt = parse.next_bytes()?;
    if opt.eq_ignore_ascii_case(b"YES") {
        if !t.optin {
            return Err(err(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if opt.eq_ignore_ascii_case(b"NO") {
        if !t.optout {
            return Err(err(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(ParseError::Syntax);
    }
    session.caching = true;
    Ok(Frame::ok())
}

/// `CLIENT GETREDIR`: the redirect target, 0 without one, -1 when tracking is off.
pub fn getredir(session: &Session) -> Frame {
    Frame::Integer(session.handle.tracking.lock().redir())
}

/// `CLIENT TRACKINGINFO`: a map of `flags` (a set: `on`/`off`, `bcast`, `optin`,
/// `caching-yes`, `optout`, `caching-no`, `noloop`, `broken_redirect`), `redirect`
/// (as `GETREDIR`) and `prefixes` (an array, in byte order).
pub fn trackinginfo(session: &Session) -> Frame {
    let t = session.handle.tracking.lock().clone();
    let flag = Frame::bulk_static;
    let mut flags = vec![flag(if t.on { "on" } else { "off" })];
    if t.bcast {
        flags.push(flag("bcast"));
    }
    if t.optin {
        flags.push(flag("optin"));
        if session.caching {
            flags.push(flag("caching-yes"));
        }
    }
    if t.optout {
        flags.push(flag("optout"));
        if session.caching {
            flags.push(flag("caching-no"));
        }
    }
    if t.noloop {
        flags.push(flag("noloop"));
    }
    if t.broken_redirect {
        flags.push(flag("broken_redirect"));
    }
    Frame::Map(vec![
        (flag("flags"), Frame::Set(flags)),
        (flag("redirect"), Frame::Integer(t.redir())),
        (
            flag("prefixes"),
            Frame::Array(t.prefixes.iter().cloned().map(Frame::Bulk).collect()),
        ),
    ])
}
