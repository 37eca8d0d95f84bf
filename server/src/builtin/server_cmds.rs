//! Server commands: `COMMAND` (in `command_cmd`), `CONFIG` (in `config_cmd`), `INFO`,
//! `TIME`, `SHUTDOWN`, `CLUSTER`.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use conclave_protocol::{CommandSpec, Frame, Parse, ParseError};

use crate::connection::Session;
use crate::info;
use crate::node::Node;

/// Runs a server-group command.
pub fn execute(node: &Node, session: &mut Session, spec: &CommandSpec, parse: &mut Parse) -> Frame {
    let result = match spec.name {
        "COMMAND" => super::command_cmd::command(parse),
        "CONFIG" => {
            let argc = parse.argc();
            parse.next_bytes().and_then(|sub| {
                let sub = super::subcommands::resolve("CONFIG", &sub, argc)?;
                super::config_cmd::config(node, super::subcommands::short_name(sub), parse)
            })
        }
        "INFO" => {
            let sections: Vec<String> = parse
                .rest()
                .iter()
                .map(|s| String::from_utf8_lossy(s).to_lowercase())
                .collect();
            Ok(Frame::Verbatim(
                "txt",
                Bytes::from(info::render(node, &sections)),
            ))
        }
        "TIME" => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            Ok(Frame::Array(vec![
                Frame::bulk_string(now.as_secs().to_string()),
                Frame::bulk_string(now.subsec_micros().to_string()),
            ]))
        }
        "SHUTDOWN" => {
            // Redis's `shutdownCommand`: NOSAVE skips the save, SAVE forces one, neither
            // saves when `save` rules are set; a failed save stops the shutdown unless
            // FORCE. NOW changes nothing (no replicas to wait for); the Raft log is
            // fsynced as it goes.
            let opts = parse.rest();
            let has = |w: &[u8]| opts.iter().any(|a| a.eq_ignore_ascii_case(w));
            if opts.iter().any(|a| {
                !["NOSAVE", "SAVE", "NOW", "FORCE", "ABORT"]
                    .iter()
                    .any(|w| a.eq_ignore_ascii_case(w.as_bytes()))
            }) || (has(b"SAVE") && has(b"NOSAVE"))
                || (has(b"ABORT") && opts.iter().any(|a| !a.eq_ignore_ascii_case(b"ABORT")))
            {
                return Frame::error("ERR syntax error");
            }
            if has(b"ABORT") {
                return Frame::error("ERR No shutdown in progress.");
            }
            let save = has(b"SAVE") || (!has(b"NOSAVE") && node.persistence.saving_configured());
            if save {
                let p = &node.persistence;
                if let Err(e) = crate::scripting::blocking(|| p.save_waiting()) {
                    tracing::warn!(error = %e, "SHUTDOWN: saving the snapshot failed");
                    if !has(b"FORCE") {
                        return Frame::error("ERR Errors trying to SHUTDOWN. Check logs.");
                    }
                }
            }
            tracing::info!(client = session.handle.id, "SHUTDOWN requested by a client");
            node.request_shutdown();
            session.close = true;
            Ok(Frame::ok())
        }
        "CLUSTER" => Err(ParseError::Other(
            "ERR This instance has cluster support disabled".into(),
        )),
        _ => Err(ParseError::Other(format!(
            "ERR unknown command '{}'",
            spec.lower_name()
        ))),
    };
    result.unwrap_or_else(|e| e.to_frame())
}
