//! The `Q.*` commands (contract section 5): their declarations ([`COMMANDS`]), argument
//! parsing into a [`QueueCommand`], and the errors bad arguments get. Replies are
//! rendered in [`crate::reply`].
//!
//! Argument errors follow Redis's texts for the same mistakes in the stream commands
//! (`XREADGROUP`, `XACK`, `XGROUP`): `ERR syntax error`, `ERR value is not an integer or
//! out of range`, `ERR Invalid stream ID specified as stream command argument`,
//! `ERR timeout is negative`.

use bytes::Bytes;
use conclave_protocol::command;
use conclave_protocol::spec::{Declared, Service, KEY1, NOKEY};
use conclave_protocol::{Parse, ParseError};
use serde::{Deserialize, Serialize};

use crate::machine::{MsgId, Name, QueueOp, QueueQuery, StartFrom};

/// Parses one `Q.*` command's arguments (after its name).
pub type Parser = fn(&mut Parse) -> Result<QueueCommand, ParseError>;

/// Key position of `Q.GROUP <sub> <topic> ...`: the topic is the third argument.
const KEY2: (i32, i32, i32) = (2, 2, 1);

/// Every `Q.*` command (contract section 5), in `COMMAND LIST` order.
pub static COMMANDS: &[Declared<Parser>] = &[
    command!("Q.PUSH", -3, ["write", "denyoom", "fast"], KEY1, "queue", "Appends a message to a replicated topic; replies its id <ms>-<seq> once a majority of the shard's replicas fsynced it.", "topic payload [DEDUP id] [DELAY milliseconds]", Service::Queues => parse_push),
    command!("Q.READ", -4, ["write", "blocking"], KEY1, "queue", "Reads up to COUNT messages for a consumer of a group, each [id, payload, deliveries]; null when none (after BLOCK, if given).", "topic group consumer [COUNT count] [BLOCK milliseconds] [VISIBILITY milliseconds]", Service::Queues => parse_read),
    command!("Q.ACK", -4, ["write", "fast"], KEY1, "queue", "Acknowledges pending messages of a group; replies how many were pending.", "topic group id [id ...]", Service::Queues => parse_ack),
    command!("Q.NACK", -4, ["write", "fast"], KEY1, "queue", "Gives a pending message back for redelivery after DELAY (default: exponential backoff); 1 if it was pending.", "topic group id [DELAY milliseconds]", Service::Queues => parse_nack),
    command!("Q.EXTEND", 5, ["write", "fast"], KEY1, "queue", "Keeps a pending message invisible that many milliseconds longer; 1 if it was pending.", "topic group id milliseconds", Service::Queues => parse_extend),
    command!("Q.REDRIVE", -2, ["write"], KEY1, "queue", "Moves dead letters from <topic>:dlq back to the topic; replies how many moved.", "topic [COUNT count]", Service::Queues => parse_redrive),
    command!("Q.PENDING", -3, ["readonly"], KEY1, "queue", "Pending messages of a group: id, consumer, deliveries, idle_ms.", "topic group [COUNT count]", Service::Queues => parse_pending),
    command!("Q.LEN", 2, ["readonly", "fast"], KEY1, "queue", "Number of messages a topic retains.", "topic", Service::Queues => parse_len),
    command!("Q.INFO", 2, ["readonly"], KEY1, "queue", "Shard, leader, replicas, length, ids, dead letters and groups of a topic.", "topic", Service::Queues => parse_info),
    command!("Q.GROUP", -4, ["write"], KEY2, "queue", "Creates (FROM 0, $ or an id) or destroys a consumer group of a topic.", "CREATE topic group [FROM 0|$|id] | DESTROY topic group", Service::Queues => parse_group),
    command!("Q.DEL", 2, ["write"], KEY1, "queue", "Deletes a topic with its messages and groups; 1 if it existed.", "topic", Service::Queues => parse_del),
    command!("Q.TOPICS", -1, ["readonly"], NOKEY, "queue", "Names of the topics (matching a glob pattern), across every shard.", "[pattern]", Service::Queues => parse_topics),
];

/// A parsed `Q.*` command, as it travels to a shard's leader.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum QueueCommand {
    /// A write through the shard's log (every command but the reads below; `Q.READ`
    /// too, since it changes delivery state).
    Write(QueueOp),
    /// A linearizable read on the shard's leader.
    Query(QueueQuery),
}

impl QueueCommand {
    /// The topic whose shard runs the command (`None`: `Q.TOPICS`, every shard).
    pub fn topic(&self) -> Option<&Name> {
        match self {
            QueueCommand::Write(op) => op.topic(),
            QueueCommand::Query(
                QueueQuery::Len { topic }
                | QueueQuery::Info { topic }
                | QueueQuery::Pending { topic, .. },
            ) => Some(topic),
            QueueCommand::Query(QueueQuery::Topics { .. }) => None,
        }
    }
}

fn invalid_id() -> ParseError {
    ParseError::Other("ERR Invalid stream ID specified as stream command argument".into())
}

fn next_id(p: &mut Parse) -> Result<MsgId, ParseError> {
    MsgId::parse(&p.next_bytes()?).ok_or_else(invalid_id)
}

/// An option's integer value; a missing value is a syntax error (as Redis's `XADD`,
/// `XREADGROUP` answer).
fn option_i64(p: &mut Parse) -> Result<i64, ParseError> {
    let value = p.try_next().ok_or(ParseError::Syntax)?;
    conclave_protocol::parse::parse_i64(&value).ok_or(ParseError::NotInteger)
}

/// A millisecond option: a non-negative integer.
fn next_ms(p: &mut Parse) -> Result<u64, ParseError> {
    u64::try_from(option_i64(p)?).map_err(|_| ParseError::NotInteger)
}

/// A `COUNT`: a positive integer.
fn next_count(p: &mut Parse) -> Result<u64, ParseError> {
    match option_i64(p)? {
        n if n > 0 => Ok(n as u64),
        _ => Err(ParseError::Other("ERR COUNT must be positive".into())),
    }
}

fn parse_push(p: &mut Parse) -> Result<QueueCommand, ParseError> {
    let topic = p.next_bytes()?;
    let payload = p.next_bytes()?;
    let (mut dedup, mut delay_ms) = (None, 0);
    while let Some(opt) = p.try_next() {
        match opt.to_ascii_uppercase().as_slice() {
            b"DEDUP" => dedup = Some(p.next_bytes().map_err(|_| ParseError::Syntax)?),
            b"DELAY" => delay_ms = next_ms(p)?,
            _ => return Err(ParseError::Syntax),
        }
    }
    Ok(QueueCommand::Write(QueueOp::Push {
        topic,
        payload,
        dedup,
        delay_ms,
    }))
}

fn parse_read(p: &mut Parse) -> Result<QueueCommand, ParseError> {
    let topic = p.next_bytes()?;
    let group = p.next_bytes()?;
    let consumer = p.next_bytes()?;
    let (mut count, mut block_ms, mut visibility_ms) = (1, None, None);
    while let Some(opt) = p.try_next() {
        match opt.to_ascii_uppercase().as_slice() {
            b"COUNT" => count = next_count(p)?,
            b"BLOCK" => match option_i64(p)? {
                ms if ms < 0 => return Err(ParseError::Other("ERR timeout is negative".into())),
                ms => block_ms = Some(ms as u64),
            },
            b"VISIBILITY" => match option_i64(p)? {
                ms if ms < 1 => {
                    return Err(ParseError::Other(
                        "ERR VISIBILITY must be at least 1 millisecond".into(),
                    ))
                }
                ms => visibility_ms = Some(ms as u64),
            },
            _ => return Err(ParseError::Syntax),
        }
    }
    Ok(QueueCommand::Write(QueueOp::Read {
        topic,
        group,
        consumer,
        count,
        visibility_ms,
        block_ms,
        // Set by the node the client talks to (see `service::read`).
        rid: 0,
        origin: 0,
    }))
}

fn parse_ack(p: &mut Parse) -> Result<QueueCommand, ParseError> {
    let topic = p.next_bytes()?;
    let group = p.next_bytes()?;
    let mut ids = vec![next_id(p)?];
    while let Some(id) = p.try_next() {
        ids.push(MsgId::parse(&id).ok_or_else(invalid_id)?);
    }
    Ok(QueueCommand::Write(QueueOp::Ack { topic, group, ids }))
}

fn parse_nack(p: &mut Parse) -> Result<QueueCommand, ParseError> {
    let topic = p.next_bytes()?;
    let group = p.next_bytes()?;
    let id = next_id(p)?;
    let mut delay_ms = None;
    while let Some(opt) = p.try_next() {
        match opt.to_ascii_uppercase().as_slice() {
            b"DELAY" => delay_ms = Some(next_ms(p)?),
            _ => return Err(ParseError::Syntax),
        }
    }
    Ok(QueueCommand::Write(QueueOp::Nack {
        topic,
        group,
        id,
        delay_ms,
    }))
}

fn parse_extend(p: &mut Parse) -> Result<QueueCommand, ParseError> {
    let topic = p.next_bytes()?;
    let group = p.next_bytes()?;
    let id = next_id(p)?;
    let ms = p.next_u64()?;
    Ok(QueueCommand::Write(QueueOp::Extend {
        topic,
        group,
        id,
        ms,
    }))
}

fn parse_redrive(p: &mut Parse) -> Result<QueueCommand, ParseError> {
    let topic = p.next_bytes()?;
    let count = optional_count(p)?;
    Ok(QueueCommand::Write(QueueOp::Redrive { topic, count }))
}

/// `[COUNT n]` and nothing else.
fn optional_count(p: &mut Parse) -> Result<Option<u64>, ParseError> {
    let mut count = None;
    while let Some(opt) = p.try_next() {
        match opt.to_ascii_uppercase().as_slice() {
            b"COUNT" => count = Some(next_count(p)?),
            _ => return Err(ParseError::Syntax),
        }
    }
    Ok(count)
}

fn parse_pending(p: &mut Parse) -> Result<QueueCommand, ParseError> {
    let topic = p.next_bytes()?;
    let group = p.next_bytes()?;
    let count = optional_count(p)?;
    Ok(QueueCommand::Query(QueueQuery::Pending {
        topic,
        group,
        count,
    }))
}

fn parse_len(p: &mut Parse) -> Result<QueueCommand, ParseError> {
    Ok(QueueCommand::Query(QueueQuery::Len {
        topic: p.next_bytes()?,
    }))
}

fn parse_info(p: &mut Parse) -> Result<QueueCommand, ParseError> {
    Ok(QueueCommand::Query(QueueQuery::Info {
        topic: p.next_bytes()?,
    }))
}

fn parse_group(p: &mut Parse) -> Result<QueueCommand, ParseError> {
    let sub = p.next_bytes()?.to_ascii_uppercase();
    let topic = p.next_bytes()?;
    let group = p.next_bytes()?;
    match sub.as_slice() {
        b"CREATE" => {
            let from = match p.try_next() {
                None => StartFrom::Oldest,
                Some(opt) if opt.eq_ignore_ascii_case(b"FROM") => {
                    let at = p.next_bytes().map_err(|_| ParseError::Syntax)?;
                    match at.as_ref() {
                        b"0" => StartFrom::Oldest,
                        b"$" => StartFrom::Latest,
                        id => StartFrom::After(MsgId::parse(id).ok_or_else(invalid_id)?),
                    }
                }
                Some(_) => return Err(ParseError::Syntax),
            };
            p.finish().map_err(|_| ParseError::Syntax)?;
            Ok(QueueCommand::Write(QueueOp::GroupCreate {
                topic,
                group,
                from,
            }))
        }
        b"DESTROY" => {
            p.finish().map_err(|_| ParseError::Syntax)?;
            Ok(QueueCommand::Write(QueueOp::GroupDestroy { topic, group }))
        }
        _ => Err(ParseError::Other(format!(
            "ERR unknown subcommand '{}'. Try Q.GROUP CREATE or Q.GROUP DESTROY.",
            String::from_utf8_lossy(&sub)
        ))),
    }
}

fn parse_del(p: &mut Parse) -> Result<QueueCommand, ParseError> {
    Ok(QueueCommand::Write(QueueOp::Del {
        topic: p.next_bytes()?,
    }))
}

fn parse_topics(p: &mut Parse) -> Result<QueueCommand, ParseError> {
    let pattern: Option<Bytes> = p.try_next();
    p.finish().map_err(|_| ParseError::Syntax)?;
    Ok(QueueCommand::Query(QueueQuery::Topics { pattern }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(parser: Parser, args: &[&str]) -> Result<QueueCommand, ParseError> {
        let args = args.iter().map(|a| Bytes::from(a.to_string())).collect();
        parser(&mut Parse::new(args))
    }

    #[test]
    fn push_options() {
        let c = parse(
            parse_push,
            &["Q.PUSH", "t", "p", "dedup", "d1", "DELAY", "50"],
        )
        .unwrap();
        assert_eq!(
            c,
            QueueCommand::Write(QueueOp::Push {
                topic: Bytes::from("t"),
                payload: Bytes::from("p"),
                dedup: Some(Bytes::from("d1")),
                delay_ms: 50,
            })
        );
        assert_eq!(
            parse(parse_push, &["Q.PUSH", "t", "p", "DELAY", "-1"]),
            Err(ParseError::NotInteger)
        );
        assert_eq!(
            parse(parse_push, &["Q.PUSH", "t", "p", "BOGUS"]),
            Err(ParseError::Syntax)
        );
        assert_eq!(
            parse(parse_push, &["Q.PUSH", "t", "p", "DEDUP"]),
            Err(ParseError::Syntax)
        );
    }

    #[test]
    fn read_options() {
        let Ok(QueueCommand::Write(QueueOp::Read {
            count,
            block_ms,
            visibility_ms,
            ..
        })) = parse(
            parse_read,
            &[
                "Q.READ",
                "t",
                "g",
                "c",
                "COUNT",
                "5",
                "block",
                "0",
                "VISIBILITY",
                "10",
            ],
        )
        else {
            panic!("not a read")
        };
        assert_eq!((count, block_ms, visibility_ms), (5, Some(0), Some(10)));
        for (args, err) in [
            (vec!["COUNT", "0"], "ERR COUNT must be positive"),
            (vec!["BLOCK", "-1"], "ERR timeout is negative"),
            (
                vec!["VISIBILITY", "0"],
                "ERR VISIBILITY must be at least 1 millisecond",
            ),
            (
                vec!["COUNT", "x"],
                "ERR value is not an integer or out of range",
            ),
            (vec!["NOPE"], "ERR syntax error"),
        ] {
            let mut all = vec!["Q.READ", "t", "g", "c"];
            all.extend(args);
            assert_eq!(parse(parse_read, &all).unwrap_err().to_string(), err);
        }
    }

    #[test]
    fn ids_and_groups() {
        assert_eq!(
            parse(parse_ack, &["Q.ACK", "t", "g", "1-1", "nope"])
                .unwrap_err()
                .to_string(),
            "ERR Invalid stream ID specified as stream command argument"
        );
        assert!(matches!(
            parse(parse_group, &["Q.GROUP", "create", "t", "g", "FROM", "$"]),
            Ok(QueueCommand::Write(QueueOp::GroupCreate {
                from: StartFrom::Latest,
                ..
            }))
        ));
        assert!(matches!(
            parse(parse_group, &["Q.GROUP", "CREATE", "t", "g", "FROM", "5-1"]),
            Ok(QueueCommand::Write(QueueOp::GroupCreate {
                from: StartFrom::After(MsgId { ms: 5, seq: 1 }),
                ..
            }))
        ));
        assert_eq!(
            parse(parse_group, &["Q.GROUP", "DESTROY", "t", "g", "x"]),
            Err(ParseError::Syntax)
        );
        assert!(parse(parse_group, &["Q.GROUP", "FOO", "t", "g"])
            .unwrap_err()
            .to_string()
            .starts_with("ERR unknown subcommand 'FOO'"));
    }
}
