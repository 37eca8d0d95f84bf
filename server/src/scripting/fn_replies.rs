//! The replies of `FUNCTION STATS`, `FUNCTION LIST` and `FUNCTION HELP`, shaped as Redis 7.0
//! sends them (`functionStatsCommand`, `functionListCommand`, `functionHelpCommand`):
//! maps (flat arrays in RESP2), a null description, the flags as a set of status strings.

use bytes::Bytes;
use conclave_protocol::glob::glob_match;
use conclave_protocol::Frame;

use super::library::FLAG_NAMES;
use super::with_engine;
use crate::node::Node;

fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `FUNCTION STATS`: the running function (null when none) and the engine's counts.
pub(super) fn stats(node: &Node) -> Frame {
    let running = match node.scripting.busy.current() {
        Some(run) if run.function.is_none() => {
            return Frame::error(super::busy::BUSY);
        }
        Some(run) => {
            let command = run.function.clone().unwrap_or_default();
            Frame::Map(vec![
                (Frame::bulk_static("name"), Frame::bulk_string(run.name())),
                (
                    Frame::bulk_static("command"),
                    Frame::Array(command.into_iter().map(Frame::Bulk).collect()),
                ),
                (
                    Frame::bulk_static("duration_ms"),
                    Frame::Integer(run.started.elapsed().as_millis() as i64),
                ),
            ])
        }
        None => Frame::Null,
    };
    let set = node.meta.functions();
    let functions: usize = set.libraries().values().map(|l| l.functions.len()).sum();
    Frame::Map(vec![
        (Frame::bulk_static("running_script"), running),
        (
            Frame::bulk_static("engines"),
            Frame::Map(vec![(
                Frame::bulk_static("LUA"),
                Frame::Map(vec![
                    (
                        Frame::bulk_static("libraries_count"),
                        Frame::Integer(set.libraries().len() as i64),
                    ),
                    (
                        Frame::bulk_static("functions_count"),
                        Frame::Integer(functions as i64),
                    ),
                ]),
            )]),
        ),
    ])
}

/// `FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]`.
pub(super) fn list(node: &Node, args: &[Bytes]) -> Frame {
    let (mut with_code, mut pattern) = (false, None);
    let mut i = 1;
    while i < args.len() {
        let arg = &args[i];
        if !with_code && arg.eq_ignore_ascii_case(b"withcode") {
            with_code = true;
        } else if pattern.is_none() && arg.eq_ignore_ascii_case(b"libraryname") {
            if i >= args.len() - 1 {
                return Frame::error("ERR library name argument was not given");
            }
            i += 1;
            pattern = Some(args[i].clone());
        } else {
            return Frame::error(format!("ERR Unknown argument {}", text(arg)));
        }
        i += 1;
    }
    let mut slot = node.scripting.engine.lock();
    let engine = match with_engine(&mut slot) {
        Ok(engine) => engine,
        Err(e) => return e,
    };
    engine.mirror_from(node);
    let libs = engine
        .libraries()
        .values()
        .filter(|l| {
            pattern
                .as_ref()
                .is_none_or(|p| glob_match(p, l.name.as_bytes()))
        })
        .map(|l| {
            let functions = l
                .functions
                .iter()
                .map(|f| {
                    let flags = FLAG_NAMES
                        .iter()
                        .enumerate()
                        .filter(|(bit, _)| f.flags & (1 << bit) != 0)
                        .map(|(_, name)| Frame::simple(name))
                        .collect();
                    Frame::Map(vec![
                        (
                            Frame::bulk_static("name"),
                            Frame::bulk_string(f.name.clone()),
                        ),
                        (
                            Frame::bulk_static("description"),
                            f.description
                                .clone()
                                .map_or(Frame::Null, Frame::bulk_string),
                        ),
                        (Frame::bulk_static("flags"), Frame::Set(flags)),
                    ])
                })
                .collect();
            let mut fields = vec![
                (
                    Frame::bulk_static("library_name"),
                    Frame::bulk_string(l.name.clone()),
                ),
                (Frame::bulk_static("engine"), Frame::bulk_static("LUA")),
                (Frame::bulk_static("functions"), Frame::Array(functions)),
            ];
            if with_code {
                fields.push((
                    Frame::bulk_static("library_code"),
                    Frame::bulk_string(l.code.clone()),
                ));
            }
            Frame::Map(fields)
        })
        .collect();
    Frame::Array(libs)
}

pub(super) fn help() -> Frame {
    let lines = [
        "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LOAD [REPLACE] <FUNCTION CODE>",
        "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>",
        "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    Return general information on all the libraries:",
        "    * Library name",
        "    * The engine used to run the Library",
        "    * Library description",
        "    * Functions list",
        "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
        "STATS",
        "    Return information about the current function running:",
        "    * Function name",
        "    * Command used to run the function",
        "    * Duration in MS that the function is running",
        "    If no function is running, return nil",
        "    In addition, returns a list of available engines.",
        "KILL",
        "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]",
        "    Delete all the libraries.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the libraries.",
        "    * SYNC: Synchronously flush the libraries.",
        "DUMP",
        "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
        "    control how to handle existing libraries (default APPEND):",
        "    * FLUSH: delete all existing libraries.",
        "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
        "      libraries with the new libraries (notice that even on this option there is a chance of failure",
        "      in case of functions name collision with another library).",
        "HELP",
        "    Prints this help.",
    ];
    Frame::Array(lines.iter().map(|l| Frame::simple(l)).collect())
}
