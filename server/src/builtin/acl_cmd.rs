//! `ACL` (Redis 7.0's `aclCommand`, src/acl.c): `SETUSER`, `GETUSER`, `DELUSER`,
//! `USERS`, `LIST`, `WHOAMI`, `CAT`, `GENPASS`, `DRYRUN`, `LOG`, `LOAD`/`SAVE` (no ACL
//! file can be configured: Redis's error for that case), `HELP`. `SETUSER` and
//! `DELUSER` change the replicated users ([`crate::acl::replicated`]), so they run
//! asynchronously; inside `EXEC` (which runs synchronously) they are refused.

use bytes::Bytes;
use conclave_protocol::{Frame, Parse, ParseError};

use super::subcommands;
use crate::acl::catalog::{catalog, category_bit, CATEGORIES};
use crate::acl::check::{self, Denied};
use crate::acl::{describe, replicated, user};
use crate::command_table;
use crate::connection::Session;
use crate::node::Node;

const NO_ACLFILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

/// Runs `ACL ...` (dispatch).
pub async fn execute(node: &Node, session: &mut Session, parse: &mut Parse) -> Frame {
    let args = parse.rest();
    let sub = match resolve(&args) {
        Ok(s) => s,
        Err(e) => return e.to_frame(),
    };
    match sub {
        "SETUSER" => setuser(node, &args).await,
        "DELUSER" => deluser(node, &args).await,
        _ => run_sync(node, session, sub, &args),
    }
}

/// Runs `ACL ...` where nothing may wait (inside `EXEC`).
pub fn execute_sync(node: &Node, session: &mut Session, parse: &mut Parse) -> Frame {
    let args = parse.rest();
    match resolve(&args) {
        Ok("SETUSER" | "DELUSER") => {
            Frame::error("ERR ACL SETUSER and ACL DELUSER are not allowed inside MULTI (users are replicated through Raft)")
        }
        Ok(sub) => run_sync(node, session, sub, &args),
        Err(e) => e.to_frame(),
    }
}

/// The subcommand (upper case), checked against its declared arity.
fn resolve(args: &[Bytes]) -> Result<&'static str, ParseError> {
    let sub = args.first().ok_or(ParseError::Syntax)?;
    let spec = subcommands::resolve("ACL", sub, args.len() + 1)?;
    Ok(subcommands::short_name(spec))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn setuser(node: &Node, args: &[Bytes]) -> Frame {
    let name = &args[1];
    if user::has_spaces(name) {
        return Frame::error("ERR Usernames can't contain spaces or null characters");
    }
    let Ok(name) = std::str::from_utf8(name) else {
        return Frame::error("ERR Usernames must be valid UTF-8");
    };
    let rules: Vec<&[u8]> = args[2..].iter().map(|a| &a[..]).collect();
    match replicated::set(node, name, &rules).await {
        Ok(()) => Frame::ok(),
        Err(e) => Frame::error(e),
    }
}

async fn deluser(node: &Node, args: &[Bytes]) -> Frame {
    let names: Vec<String> = args[1..].iter().map(|a| text(a)).collect();
    if names.iter().any(|n| n == "default") {
        return Frame::error("ERR The 'default' user cannot be removed");
    }
    match replicated::delete(node, names).await {
        Ok(n) => Frame::Integer(n as i64),
        Err(e) => Frame::error(e),
    }
}

fn run_sync(node: &Node, session: &mut Session, sub: &str, args: &[Bytes]) -> Frame {
    // Redis's `addReplySubcommandSyntaxError` for the optional-argument forms.
    if matches!(sub, "CAT" | "LOG" | "GENPASS") && args.len() > 2 {
        return Frame::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
            text(&args[0][..args[0].len().min(128)])
        ));
    }
    match sub {
        "GETUSER" => getuser(node, &args[1]),
        "USERS" => Frame::Array(
            node.acl
                .users()
                .iter()
                .map(|u| Frame::Bulk(Bytes::from(u.name.clone())))
                .collect(),
        ),
        "LIST" => Frame::Array(
            node.acl
                .users()
                .iter()
                .map(|u| {
                    Frame::Bulk(Bytes::from(format!(
                        "user {} {}",
                        u.name,
                        describe::user(u)
                    )))
                })
                .collect(),
        ),
        "WHOAMI" => Frame::Bulk(Bytes::from(session.acl.user.name.clone())),
        "CAT" => cat(args),
        "GENPASS" => genpass(args),
        "LOG" => log(node, args),
        "DRYRUN" => dryrun(node, args),
        "LOAD" | "SAVE" => Frame::error(NO_ACLFILE),
        _ => subcommands::help_frame("ACL"),
    }
}

fn getuser(node: &Node, name: &[u8]) -> Frame {
    let Some(u) = std::str::from_utf8(name).ok().and_then(|n| node.acl.get(n)) else {
        return Frame::Null;
    };
    let selector_fields = |s: &user::Selector| {
        vec![
            (
                Frame::bulk_static("commands"),
                Frame::Bulk(describe::commands(s).into()),
            ),
            (
                Frame::bulk_static("keys"),
                Frame::Bulk(describe::keys(s).into()),
            ),
            (
                Frame::bulk_static("channels"),
                Frame::Bulk(describe::channels(s).into()),
            ),
        ]
    };
    let mut fields = vec![
        (
            Frame::bulk_static("flags"),
            Frame::Set(u.flags().into_iter().map(Frame::bulk_static).collect()),
        ),
        (
            Frame::bulk_static("passwords"),
            Frame::Array(
                u.passwords
                    .iter()
                    .map(|p| Frame::Bulk(Bytes::from(p.clone())))
                    .collect(),
            ),
        ),
    ];
    fields.extend(selector_fields(u.root()));
    fields.push((
        Frame::bulk_static("selectors"),
        Frame::Array(
            u.selectors[1..]
                .iter()
                .map(|s| Frame::Map(selector_fields(s)))
                .collect(),
        ),
    ));
    Frame::Map(fields)
}

fn cat(args: &[Bytes]) -> Frame {
    let c = catalog();
    match args.get(1) {
        None => Frame::Array(
            CATEGORIES
                .iter()
                .filter(|name| {
                    category_bit(name).is_some_and(|bit| c.in_category(bit).next().is_some())
                })
                .map(|n| Frame::bulk_static(n))
                .collect(),
        ),
        Some(name) => {
            let Some(bit) = std::str::from_utf8(name).ok().and_then(category_bit) else {
                let shown = &name[..name.len().min(128)];
                return Frame::error(format!("ERR Unknown category '{}'", text(shown)));
            };
            Frame::Array(
                c.in_category(bit)
                    .map(|id| Frame::Bulk(Bytes::from(c.cmds[id].fullname.clone())))
                    .collect(),
            )
        }
    }
}

fn genpass(args: &[Bytes]) -> Frame {
    let bits = match args.get(1) {
        None => 256,
        Some(b) => match conclave_protocol::parse::parse_i64(b) {
            Some(n) => n,
            None => return Frame::error("ERR value is not an integer or out of range"),
        },
    };
    if bits <= 0 || bits > 4096 {
        return Frame::error("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096");
    }
    let chars = ((bits + 3) / 4) as usize;
    let mut out = String::with_capacity(chars);
    while out.len() < chars {
        out.push_str(&format!("{:016x}", rand::random::<u64>()));
    }
    out.truncate(chars);
    Frame::Bulk(Bytes::from(out))
}

fn log(node: &Node, args: &[Bytes]) -> Frame {
    let count = match args.get(1) {
        None => 10,
        Some(a) if a.eq_ignore_ascii_case(b"RESET") => {
            node.acl.log.reset();
            return Frame::ok();
        }
        Some(a) => match conclave_protocol::parse::parse_i64(a) {
            Some(n) => n.max(0) as usize,
            None => return Frame::error("ERR value is not an integer or out of range"),
        },
    };
    node.acl.log.frame(count)
}

fn dryrun(node: &Node, args: &[Bytes]) -> Frame {
    let Some(u) = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|n| node.acl.get(n))
    else {
        return Frame::error(format!("ERR User '{}' not found", text(&args[1])));
    };
    let cmd_args = &args[2..];
    let Some(entry) = command_table::lookup(&cmd_args[0]) else {
        return Frame::error(format!("ERR Command '{}' not found", text(&cmd_args[0])));
    };
    let id = catalog().id_of(entry, cmd_args.get(1).map(|b| &b[..]));
    let cmd = &catalog().cmds[id];
    if !cmd.spec.arity_ok(cmd_args.len()) {
        return Frame::error(format!(
            "ERR wrong number of arguments for '{}' command",
            cmd.fullname
        ));
    }
    match check::check(&u, entry, id, cmd_args) {
        Ok(()) => Frame::ok(),
        Err(Denied::Command) => Frame::Bulk(Bytes::from(format!(
            "This user has no permissions to run the '{}' command",
            cmd.fullname
        ))),
        Err(Denied::Key(i)) => Frame::Bulk(Bytes::from(format!(
            "This user has no permissions to access the '{}' key",
            text(&cmd_args[i])
        ))),
        Err(Denied::Channel(i)) => Frame::Bulk(Bytes::from(format!(
            "This user has no permissions to access the '{}' channel",
            text(&cmd_args[i])
        ))),
    }
}
