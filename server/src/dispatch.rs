//! Routing one request to its command.
//!
//! Every request goes through the same gate, in Redis's order: unknown command,
//! wrong arity, authentication. Then the command table's group picks the handler:
//! connection and server commands here in the server crate (they need the
//! connection and the node), string and cache commands in `conclave_commands::cmd`
//! (they need only the keyspace), and `LOCK.*` / `RAFT.STATUS` in the lock service.
//! Every command that passes the gate is marked in [`Session::timed`] for the
//! connection to count and time it for `/metrics`.

use bytes::Bytes;
use conclave_commands::cmd::Command;
use conclave_commands::{Frame, Parse};

use crate::cmd;
use crate::command_table::{self, CommandSpec};
use crate::connection::Session;
use crate::node::Node;

/// Executes one request (`args[0]` is the command name) and returns its reply.
pub async fn execute(node: &Node, session: &mut Session, args: Vec<Bytes>) -> Frame {
    let Some(spec) = args.first().and_then(|name| command_table::lookup(name)) else {
        return unknown_command(&args);
    };
    if !spec.arity_ok(args.len()) {
        return wrong_arity(spec);
    }
    if !session.authenticated && !spec.no_auth() {
        return Frame::error("NOAUTH Authentication required.");
    }
    session.last_cmd = spec.name;
    session.timed = Some(spec);
    let mut parse = Parse::new(args);
    match spec.group {
        "connection" => cmd::connection::execute(node, session, spec, &mut parse),
        "server" | "cluster" if spec.name != "RAFT.STATUS" => {
            cmd::server::execute(node, session, spec, &mut parse)
        }
        "lock" | "cluster" => cmd::lock::execute(node, spec, &mut parse).await,
        _ => match Command::from_parse(&mut parse) {
            Some(Ok(command)) => command.apply(&node.keyspace),
            Some(Err(e)) => e.to_frame(),
            None => unknown_command_named(spec),
        },
    }
}

/// `-ERR wrong number of arguments for 'x' command`.
pub fn wrong_arity(spec: &CommandSpec) -> Frame {
    Frame::error(format!(
        "ERR wrong number of arguments for '{}' command",
        spec.lower_name()
    ))
}

fn unknown_command_named(spec: &CommandSpec) -> Frame {
    Frame::error(format!(
        "ERR unknown command '{}', with args beginning with: ",
        spec.lower_name()
    ))
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
