//! `SCRIPT LOAD|EXISTS|FLUSH [ASYNC|SYNC]|KILL|HELP` (Redis's `scriptCommand`, with
//! the per-subcommand arity Redis 7 declares). `KILL` and `HELP` answer at once; the
//! others take their turn like a script (so they see no script half-run, and get `-BUSY`
//! behind a timed-out one). `SCRIPT FLUSH` drops the whole VM, as Redis resets its Lua
//! state; `ASYNC` frees it on another thread.

use bytes::Bytes;
use conclave_protocol::Frame;

use super::with_engine;
use crate::node::Node;

/// A `SCRIPT` subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sub {
    Load,
    Exists,
    Flush { lazy: bool },
    Kill,
    Help,
}

/// Names the subcommand and checks its arity against its declaration
/// (`builtin::subcommands`, Redis 7's `script|load` ...).
pub(super) fn subcommand(args: &[Bytes]) -> Result<Sub, Frame> {
    let name = args.first().cloned().unwrap_or_default();
    // Redis counts the command name too.
    let spec = crate::builtin::subcommands::resolve("SCRIPT", &name, args.len() + 1)
        .map_err(|e| e.to_frame())?;
    let sub = match crate::builtin::subcommands::short_name(spec) {
        "LOAD" => Sub::Load,
        "EXISTS" => Sub::Exists,
        "FLUSH" => Sub::Flush { lazy: false },
        "KILL" => Sub::Kill,
        _ => Sub::Help,
    };
    if let Sub::Flush { .. } = sub {
        return match args.get(1) {
            None => Ok(Sub::Flush { lazy: false }),
            Some(m) if m.eq_ignore_ascii_case(b"sync") => Ok(Sub::Flush { lazy: false }),
            Some(m) if m.eq_ignore_ascii_case(b"async") => Ok(Sub::Flush { lazy: true }),
            Some(_) => Err(Frame::error(
                "ERR SCRIPT FLUSH only support SYNC|ASYNC option",
            )),
        };
    }
    Ok(sub)
}

/// `SCRIPT ...` from a connection: `KILL` and `HELP` at once, the others in turn.
pub(super) async fn script(node: &Node, args: Vec<Bytes>) -> Frame {
    let sub = match subcommand(&args) {
        Ok(sub) => sub,
        Err(e) => return e,
    };
    match sub {
        Sub::Kill => node.scripting.busy.kill(false).await,
        Sub::Help => script_now(node, sub, &args),
        _ => {
            let _turn = match node.scripting.busy.turn().await {
                Ok(turn) => turn,
                Err(busy) => return busy,
            };
            script_now(node, sub, &args)
        }
    }
}

/// `SCRIPT LOAD|EXISTS|FLUSH|HELP` (no script is running).
pub(super) fn script_now(node: &Node, sub: Sub, args: &[Bytes]) -> Frame {
    match sub {
        Sub::Help => {
            let lines = [
                "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "EXISTS <sha1> [<sha1> ...]",
                "    Return information about the existence of the scripts in the script cache.",
                "FLUSH [ASYNC|SYNC]",
                "    Flush the Lua scripts cache. Very dangerous on replicas.",
                "    When called without the optional mode argument, the behavior is determined by the",
                "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                "    * ASYNC: Asynchronously flush the scripts cache.",
                "    * SYNC: Synchronously flush the scripts cache.",
                "KILL",
                "    Kill the currently executing Lua script.",
                "LOAD <script>",
                "    Load a script into the scripts cache without executing it.",
                "HELP",
                "    Prints this help.",
            ];
            Frame::Array(lines.iter().map(|l| Frame::simple(l)).collect())
        }
        Sub::Flush { lazy } => {
            let old = node.scripting.engine.lock().take();
            if lazy {
                if let Some(old) = old {
                    std::thread::spawn(move || drop(old));
                }
            }
            Frame::ok()
        }
        Sub::Exists => {
            let slot = node.scripting.engine.lock();
            let exists = |sha: &Bytes| {
                let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
                slot.as_ref().is_some_and(|e| e.exists(&sha))
            };
            Frame::Array(
                args[1..]
                    .iter()
                    .map(|sha| Frame::Integer(i64::from(exists(sha))))
                    .collect(),
            )
        }
        Sub::Load => {
            let mut slot = node.scripting.engine.lock();
            let engine = match with_engine(&mut slot) {
                Ok(engine) => engine,
                Err(e) => return e,
            };
            match engine.load(&args[1]) {
                Ok(sha) => Frame::bulk_string(sha),
                Err(e) => e,
            }
        }
        Sub::Kill => Frame::error("NOTBUSY No scripts in execution right now."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Vec<Bytes> {
        items
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn script_subcommands_check_arity() {
        let sub = |a: &[&str]| subcommand(&args(a));
        assert_eq!(sub(&["flush", "ASYNC"]), Ok(Sub::Flush { lazy: true }));
        assert_eq!(
            sub(&["flush", "x"]),
            Err(Frame::error(
                "ERR SCRIPT FLUSH only support SYNC|ASYNC option"
            ))
        );
        assert_eq!(
            sub(&["load"]),
            Err(Frame::error(
                "ERR wrong number of arguments for 'script|load' command"
            ))
        );
        assert_eq!(
            sub(&["bogus"]),
            Err(Frame::error(
                "ERR unknown subcommand 'bogus'. Try SCRIPT HELP."
            ))
        );
    }
}
