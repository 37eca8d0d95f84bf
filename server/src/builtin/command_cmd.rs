//! `COMMAND [COUNT | DOCS | GETKEYS | GETKEYSANDFLAGS | INFO | LIST | HELP]`, answered
//! from the command table and the subcommand declarations, with Redis 7's replies:
//! unknown names are a null bulk in `COMMAND INFO` and left out of `COMMAND DOCS`;
//! `COMMAND LIST` names subcommands too (`config|get`) and filters by module, ACL
//! category or pattern; `COMMAND COUNT` counts top-level commands.

use conclave_protocol::docs::{docs_entry_with, info_entry_with};
use conclave_protocol::{CommandSpec, Frame, Parse, ParseError};

use super::subcommands::{self, short_name};
use crate::command_table::{self, lookup_spec};
use conclave_cache::keyspace::glob_match;

/// `COMMAND ...` (the container's own arity is checked by dispatch).
pub fn command(parse: &mut Parse) -> Result<Frame, ParseError> {
    let argc = parse.argc();
    let Some(sub) = parse.try_next() else {
        return Ok(Frame::Array(command_table::specs().map(info).collect()));
    };
    let spec = subcommands::resolve("COMMAND", &sub, argc)?;
    let names = parse.rest();
    match short_name(spec) {
        "COUNT" => Ok(Frame::Integer(command_table::all().len() as i64)),
        "LIST" => list(&names),
        "INFO" if names.is_empty() => Ok(Frame::Array(command_table::specs().map(info).collect())),
        "INFO" => Ok(Frame::Array(
            names
                .iter()
                .map(|n| lookup_spec(n).map_or(Frame::Null, info))
                .collect(),
        )),
        "DOCS" => {
            let specs: Vec<&CommandSpec> = if names.is_empty() {
                command_table::specs().collect()
            } else {
                names.iter().filter_map(|n| lookup_spec(n)).collect()
            };
            Ok(Frame::Map(
                specs
                    .into_iter()
                    .map(|c| (Frame::bulk_string(c.lower_name()), docs(c)))
                    .collect(),
            ))
        }
        "GETKEYS" => Ok(Frame::Array(
            keys_of(&names)?
                .into_iter()
                .map(|(k, _)| Frame::Bulk(k))
                .collect(),
        )),
        "GETKEYSANDFLAGS" => Ok(Frame::Array(
            keys_of(&names)?
                .into_iter()
                .map(|(k, flags)| {
                    Frame::Array(vec![
                        Frame::Bulk(k),
                        Frame::Set(flags.iter().map(|f| Frame::simple(f)).collect()),
                    ])
                })
                .collect(),
        )),
        _ => Ok(subcommands::help_frame("COMMAND")),
    }
}

fn info(spec: &CommandSpec) -> Frame {
    info_entry_with(spec, subcommands::of(spec.name))
}

fn docs(spec: &CommandSpec) -> Frame {
    docs_entry_with(spec, subcommands::of(spec.name))
}

/// `COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]`.
fn list(args: &[bytes::Bytes]) -> Result<Frame, ParseError> {
    let all =
        command_table::specs().flat_map(|c| std::iter::once(c).chain(subcommands::of(c.name)));
    let keep: Box<dyn Fn(&CommandSpec) -> bool> = match args {
        [] => Box::new(|_| true),
        [filterby, kind, value] if filterby.eq_ignore_ascii_case(b"FILTERBY") => {
            let value = value.to_ascii_lowercase();
            match kind.to_ascii_uppercase().as_slice() {
                // No modules are loaded.
                b"MODULE" => Box::new(|_| false),
                b"ACLCAT" => {
                    let cat = String::from_utf8_lossy(&value).into_owned();
                    Box::new(move |c: &CommandSpec| c.acl_categories().contains(&cat.as_str()))
                }
                b"PATTERN" => {
                    Box::new(move |c: &CommandSpec| glob_match(&value, c.lower_name().as_bytes()))
                }
                _ => return Err(ParseError::Syntax),
            }
        }
        _ => return Err(ParseError::Syntax),
    };
    Ok(Frame::Array(
        all.filter(|c| keep(c))
            .map(|c| Frame::bulk_string(c.lower_name()))
            .collect(),
    ))
}

/// The keys of the command `args[0]` called with `args[1..]`, each with its Redis 7.0
/// key-spec flags as declared with the command ([`CommandSpec::flags_of_key`]; a
/// subcommand's own keys for a container, `MEMORY USAGE key`). Two commands' flags depend
/// on their arguments, as Redis's `getkeys_proc`s say: `SET ... GET` reads the old value
/// (`RW access update`, not `OW update`), a `BITFIELD` of `GET`s only is `RO access`. A
/// command flagged `movablekeys` (the `EVAL` family) names its keys with a count at
/// argument 2, as Redis's `keynum` key spec: the keys that count says, none when it is
/// not a number or asks for more than there are; `RW access update` (a script may do
/// anything) unless it is read-only.
fn keys_of(
    args: &[bytes::Bytes],
) -> Result<Vec<(bytes::Bytes, &'static [&'static str])>, ParseError> {
    let spec = args
        .first()
        .and_then(|n| lookup_spec(n))
        .ok_or_else(|| ParseError::Other("ERR Invalid command specified".into()))?;
    if !spec.arity_ok(args.len()) {
        return Err(ParseError::Other(
            "ERR Invalid number of arguments specified for command".into(),
        ));
    }
    let sub = args.get(1).and_then(|s| {
        let i = subcommands::position(spec.name, s)?;
        subcommands::of(spec.name).get(i)
    });
    let spec = match sub {
        Some(sub) if sub.keys.2 > 0 && sub.arity_ok(args.len()) => sub,
        Some(sub) if sub.keys.2 > 0 => {
            return Err(ParseError::Other(
                "ERR Invalid number of arguments specified for command".into(),
            ))
        }
        _ => spec,
    };
    let movable = spec.flags.contains(&"movablekeys");
    // An option word after the key (SET: after the value).
    let has =
        |from: usize, word: &[u8]| args.iter().skip(from).any(|a| a.eq_ignore_ascii_case(word));
    let variable: Option<&'static [&'static str]> = match spec.name {
        "SET" if has(3, b"GET") => Some(&["RW", "access", "update"]),
        "BITFIELD" if !has(2, b"SET") && !has(2, b"INCRBY") => Some(&["RO", "access"]),
        _ => None,
    };
    if spec.name == "MIGRATE" {
        return Ok(crate::migrate::keys_of(args)
            .into_iter()
            .map(|k| (k, spec.flags_of_key(0)))
            .collect());
    }
    if movable {
        let flags: &'static [&'static str] = if spec.flags.contains(&"readonly") {
            &["RO", "access"]
        } else {
            &["RW", "access", "update"]
        };
        let numkeys = args
            .get(2)
            .and_then(|n| std::str::from_utf8(n).ok())
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n <= args.len().saturating_sub(3));
        return Ok(args
            .iter()
            .skip(3)
            .take(numkeys.unwrap_or(0))
            .map(|k| (k.clone(), flags))
            .collect());
    }
    if spec.keys.2 <= 0 {
        return Err(ParseError::Other(
            "ERR The command has no key arguments".into(),
        ));
    }
    let keys = crate::command_table::key_positions(spec, args.len())
        .filter_map(|i| args.get(i))
        .enumerate()
        .map(|(nth, k)| (k.clone(), variable.unwrap_or(spec.flags_of_key(nth))))
        .collect();
    Ok(keys)
}
