//! The `COMMAND INFO` and `COMMAND DOCS` replies of a declared command.
//!
//! A command's argument syntax is written once, as Redis documents it
//! (`key value [NX | XX]`), in its [`CommandSpec`]; [`docs_entry`] turns it into the
//! structured `COMMAND DOCS` reply that `redis-cli` builds its hints from (Redis's
//! `commands/*.json` argument schema: `name`, `type`, `token`, `flags`, `arguments`).

use crate::spec::CommandSpec;
use crate::Frame;

/// The `COMMAND` / `COMMAND INFO` entry of one command (Redis 7's ten fields: name,
/// arity, flags, first key, last key, step, ACL categories, tips, key specs,
/// subcommands).
pub fn info_entry(spec: &CommandSpec) -> Frame {
    info_entry_with(spec, &[])
}

/// [`info_entry`] of a container command with its subcommands (`config|get`, ...).
pub fn info_entry_with(spec: &CommandSpec, subcommands: &[CommandSpec]) -> Frame {
    let (first, last, step) = spec.keys;
    Frame::Array(vec![
        Frame::bulk_string(spec.lower_name()),
        Frame::Integer(spec.arity as i64),
        Frame::Set(spec.flags.iter().map(|f| Frame::simple(f)).collect()),
        Frame::Integer(first as i64),
        Frame::Integer(last as i64),
        Frame::Integer(step as i64),
        Frame::Set(
            spec.acl_categories()
                .iter()
                .map(|c| Frame::Simple(format!("@{c}").into()))
                .collect(),
        ),
        Frame::Set(vec![]),
        Frame::Array(vec![]),
        Frame::Array(subcommands.iter().map(info_entry).collect()),
    ])
}

/// The `COMMAND DOCS` entry of one command: `summary`, `since`, `group`,
/// `complexity`, `arguments`.
pub fn docs_entry(spec: &CommandSpec) -> Frame {
    docs_entry_with(spec, &[])
}

/// [`docs_entry`] of a container command, with a `subcommands` map (what `redis-cli`
/// reads to hint `CONFIG GET <pattern>` and to print `HELP CONFIG SET`).
pub fn docs_entry_with(spec: &CommandSpec, subcommands: &[CommandSpec]) -> Frame {
    let Frame::Map(mut fields) = docs_fields(spec) else {
        return Frame::Map(vec![]);
    };
    if !subcommands.is_empty() {
        fields.push((
            Frame::bulk_static("subcommands"),
            Frame::Map(
                subcommands
                    .iter()
                    .map(|s| (Frame::bulk_string(s.lower_name()), docs_fields(s)))
                    .collect(),
            ),
        ));
    }
    Frame::Map(fields)
}

fn docs_fields(spec: &CommandSpec) -> Frame {
    let mut fields = vec![
        (
            Frame::bulk_static("summary"),
            Frame::bulk_static(spec.summary),
        ),
        (Frame::bulk_static("since"), Frame::bulk_static("1.0.0")),
        (Frame::bulk_static("group"), Frame::bulk_static(spec.group)),
        (Frame::bulk_static("complexity"), Frame::bulk_static("O(1)")),
    ];
    let args = syntax::parse(spec.syntax);
    if !args.is_empty() {
        fields.push((
            Frame::bulk_static("arguments"),
            Frame::Array(args.iter().map(syntax::Arg::to_frame).collect()),
        ));
    }
    Frame::Map(fields)
}

/// Turns Redis-doc argument syntax into `COMMAND DOCS` argument maps.
mod syntax {
    use crate::Frame;

    /// One documented argument.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Arg {
        pub name: String,
        pub kind: Kind,
        pub optional: bool,
        pub multiple: bool,
    }

    /// The argument's doc type.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Kind {
        /// A user-supplied value (`key`, `string`, `integer`).
        Value(&'static str),
        /// A fixed keyword.
        Token,
        /// One of several alternatives.
        OneOf(Vec<Arg>),
        /// A keyword followed by a value, or a sequence.
        Block(Vec<Arg>),
    }

    impl Arg {
        pub fn to_frame(&self) -> Frame {
            let mut m = vec![(
                Frame::bulk_static("name"),
                Frame::bulk_string(self.name.to_lowercase()),
            )];
            let ty = match &self.kind {
                Kind::Value(t) => t,
                Kind::Token => "pure-token",
                Kind::OneOf(_) => "oneof",
                Kind::Block(_) => "block",
            };
            m.push((Frame::bulk_static("type"), Frame::bulk_static(ty)));
            if self.kind == Kind::Token {
                m.push((
                    Frame::bulk_static("token"),
                    Frame::bulk_string(self.name.clone()),
                ));
            }
            let mut flags = Vec::new();
            if self.optional {
                flags.push(Frame::simple("optional"));
            }
            if self.multiple {
                flags.push(Frame::simple("multiple"));
            }
            if !flags.is_empty() {
                m.push((Frame::bulk_static("flags"), Frame::Set(flags)));
            }
            if let Kind::OneOf(items) | Kind::Block(items) = &self.kind {
                m.push((
                    Frame::bulk_static("arguments"),
                    Frame::Array(items.iter().map(Arg::to_frame).collect()),
                ));
            }
            Frame::Map(m)
        }
    }

    /// Parses `key value [NX | XX] [EX seconds | PX milliseconds] [key ...]`.
    pub fn parse(text: &str) -> Vec<Arg> {
        let tokens = tokenize(text);
        let mut pos = 0;
        seq(&tokens, &mut pos)
    }

    fn tokenize(text: &str) -> Vec<String> {
        let spaced = text
            .replace('[', " [ ")
            .replace(']', " ] ")
            .replace('|', " | ");
        spaced.split_whitespace().map(str::to_string).collect()
    }

    /// A sequence until `]` or `|` or the end.
    fn seq(tokens: &[String], pos: &mut usize) -> Vec<Arg> {
        let mut out: Vec<Arg> = Vec::new();
        while let Some(t) = tokens.get(*pos) {
            match t.as_str() {
                "]" | "|" => break,
                "[" => {
                    *pos += 1;
                    let mut alts = vec![seq(tokens, pos)];
                    while tokens.get(*pos).map(String::as_str) == Some("|") {
                        *pos += 1;
                        alts.push(seq(tokens, pos));
                    }
                    *pos += 1; // the closing bracket
                    let mut arg = group(alts);
                    arg.optional = true;
                    out.push(arg);
                }
                "..." => {
                    *pos += 1;
                    if let Some(last) = out.last_mut() {
                        last.multiple = true;
                    }
                }
                word => {
                    *pos += 1;
                    // `[key ...]` repeats the argument before it: fold it into that one.
                    if tokens.get(*pos).map(String::as_str) == Some("...")
                        && out.last().map(|a| a.name.as_str()) == Some(word)
                    {
                        continue;
                    }
                    out.push(word_arg(word));
                }
            }
        }
        // A sequence `KEYWORD value` is one block named after the value.
        out
    }

    fn group(mut alts: Vec<Vec<Arg>>) -> Arg {
        if alts.len() == 1 {
            let items = alts.remove(0);
            return block(items);
        }
        let items: Vec<Arg> = alts.into_iter().map(block).collect();
        let name = items
            .iter()
            .map(|a| a.name.clone())
            .collect::<Vec<_>>()
            .join("-");
        Arg {
            name,
            kind: Kind::OneOf(items),
            optional: false,
            multiple: false,
        }
    }

    fn block(mut items: Vec<Arg>) -> Arg {
        if items.len() == 1 {
            return items.remove(0);
        }
        let name = items
            .iter()
            .rev()
            .find(|a| a.kind != Kind::Token)
            .or(items.first())
            .map(|a| a.name.clone())
            .unwrap_or_default();
        Arg {
            name,
            kind: Kind::Block(items),
            optional: false,
            multiple: false,
        }
    }

    fn word_arg(word: &str) -> Arg {
        let is_token = word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '-' || c == '_' || c.is_ascii_digit())
            && word.chars().any(|c| c.is_ascii_uppercase());
        let kind = if is_token {
            Kind::Token
        } else if word == "key" || word == "newkey" || word == "resource" {
            Kind::Value("key")
        } else if matches!(
            word,
            "seconds"
                | "milliseconds"
                | "cursor"
                | "count"
                | "index"
                | "offset"
                | "start"
                | "end"
                | "token"
                | "increment"
                | "decrement"
                | "protover"
        ) || word.starts_with("unix-time")
        {
            Kind::Value("integer")
        } else {
            Kind::Value("string")
        };
        Arg {
            name: word.to_string(),
            kind,
            optional: false,
            multiple: false,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn set_syntax() {
            let args = parse("key value [NX | XX] [GET] [EX seconds | PX milliseconds | KEEPTTL]");
            assert_eq!(args.len(), 5);
            assert_eq!(args[0].kind, Kind::Value("key"));
            assert!(matches!(&args[2].kind, Kind::OneOf(v) if v.len() == 2));
            assert!(args[2].optional);
            assert_eq!(args[3].kind, Kind::Token);
            let Kind::OneOf(expiry) = &args[4].kind else {
                panic!("oneof")
            };
            assert!(matches!(&expiry[0].kind, Kind::Block(v) if v.len() == 2));
            assert_eq!(expiry[2].kind, Kind::Token);
        }

        #[test]
        fn repeated_keys() {
            let args = parse("key [key ...]");
            assert_eq!(args.len(), 2);
            assert!(args[1].optional && args[1].multiple);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Service, KEY1};

    #[test]
    fn every_shape_documents() {
        let spec = CommandSpec {
            name: "SET",
            arity: -3,
            flags: &["write"],
            keys: KEY1,
            group: "string",
            summary: "Sets a key.",
            syntax: "key value [NX | XX] [GET] [EX seconds | PX milliseconds | KEEPTTL]",
            service: Service::Cache,
            key_flags: crate::spec::KeyFlags::DERIVED,
        };
        assert!(matches!(docs_entry(&spec), Frame::Map(_)));
        assert!(matches!(info_entry(&spec), Frame::Array(v) if v.len() == 10));
    }
}
