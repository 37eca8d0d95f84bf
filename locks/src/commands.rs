//! The `LOCK.*` commands: their declarations ([`COMMANDS`]), argument parsing, reply
//! rendering, and the forwardable command type.

use crate::machine::{LockInfo, LockMode, LockOp, LockReply, Name};
use conclave_protocol::{Frame, Parse, ParseError};
use serde::{Deserialize, Serialize};

use conclave_protocol::command;
use conclave_protocol::spec::{Declared, Service, KEY1};

use crate::machine::{MAX_TTL_MS, MIN_TTL_MS};

/// Smallest and largest lease, ms (the lock table's bounds; `lock-default-ttl` too).
pub const TTL_RANGE: std::ops::RangeInclusive<u64> = MIN_TTL_MS..=MAX_TTL_MS;

/// Parses one `LOCK.*` command's arguments (after its name); the second argument is
/// the lease of an acquire without `TTL` (ms).
pub type Parser = fn(&mut Parse, u64) -> Result<Parsed, ParseError>;

/// Every `LOCK.*` command (contract section 3), in `COMMAND LIST` order.
pub static COMMANDS: &[Declared<Parser>] = &[
    command!("LOCK.ACQUIRE", -3, ["write"], KEY1, "lock", "Acquires a replicated lock; replies a fencing token, or null when not granted within the wait.", "resource owner [SHARED | EXCLUSIVE] [TTL milliseconds] [WAIT milliseconds]", Service::Locks => |p, ttl| parse("LOCK.ACQUIRE", p, ttl)),
    command!("LOCK.RELEASE", 3, ["write", "fast"], KEY1, "lock", "Releases a lock held by an owner.", "resource owner", Service::Locks => |p, ttl| parse("LOCK.RELEASE", p, ttl)),
    command!("LOCK.RENEW", 4, ["write", "fast"], KEY1, "lock", "Renews the lease of a held lock.", "resource owner milliseconds", Service::Locks => |p, ttl| parse("LOCK.RENEW", p, ttl)),
    command!("LOCK.UPGRADE", -3, ["write"], KEY1, "lock", "Upgrades a shared lock to exclusive.", "resource owner [WAIT milliseconds]", Service::Locks => |p, ttl| parse("LOCK.UPGRADE", p, ttl)),
    command!("LOCK.DOWNGRADE", 3, ["write", "fast"], KEY1, "lock", "Downgrades an exclusive lock to shared.", "resource owner", Service::Locks => |p, ttl| parse("LOCK.DOWNGRADE", p, ttl)),
    command!("LOCK.CHECK", 3, ["readonly", "fast"], KEY1, "lock", "Whether a fencing token belongs to a current holder.", "resource token", Service::Locks => |p, ttl| parse("LOCK.CHECK", p, ttl)),
    command!("LOCK.INFO", 2, ["readonly", "fast"], KEY1, "lock", "Mode, holders and waiters of a lock.", "resource", Service::Locks => |p, ttl| parse("LOCK.INFO", p, ttl)),
];

/// A lock request as it travels to the leader.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum LockCommand {
    /// A write through the Raft log.
    Write(LockOp),
    /// `LOCK.CHECK` (linearizable read).
    Check {
        /// Resource.
        resource: Name,
        /// Token to check.
        token: u64,
    },
    /// `LOCK.INFO` (linearizable read).
    Info {
        /// Resource.
        resource: Name,
    },
}

/// The leader's answer to a [`LockCommand`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    /// The write was applied at `index`.
    Applied {
        /// Raft log index of the entry.
        index: u64,
        /// The state machine's reply.
        reply: LockReply,
    },
    /// `LOCK.CHECK` answer.
    Check(bool),
    /// `LOCK.INFO` answer.
    Info(InfoWire),
}

/// [`LockInfo`] in a serializable shape.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct InfoWire {
    /// Mode held, if any.
    pub mode: Option<LockMode>,
    /// `(owner, token, ttl_ms)`.
    pub holders: Vec<(Name, u64, u64)>,
    /// `(owner, mode, waited_ms)`.
    pub waiters: Vec<(Name, LockMode, u64)>,
}

impl From<LockInfo> for InfoWire {
    fn from(i: LockInfo) -> Self {
        InfoWire {
            mode: i.mode,
            holders: i
                .holders
                .into_iter()
                .map(|h| (h.owner, h.token, h.ttl_ms))
                .collect(),
            waiters: i
                .waiters
                .into_iter()
                .map(|w| (w.owner, w.mode, w.waited_ms))
                .collect(),
        }
    }
}

/// A parsed `LOCK.*` command: what to send, and how long to block for a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The command.
    pub command: LockCommand,
    /// `WAIT` of an acquire/upgrade (`Some(0)`: forever).
    pub wait_ms: Option<u64>,
}

/// Parses `LOCK.<name>` arguments (after the name).
pub fn parse(name: &str, parse: &mut Parse, default_ttl: u64) -> Result<Parsed, ParseError> {
    let resource = parse.next_bytes()?.to_vec();
    let write = |op| {
        Ok(Parsed {
            command: LockCommand::Write(op),
            wait_ms: None,
        })
    };
    match name {
        "LOCK.ACQUIRE" => {
            let owner = parse.next_bytes()?.to_vec();
            let (mut mode, mut ttl_ms, mut wait_ms) = (None, None, None);
            while parse.remaining() > 0 {
                match parse.next_keyword()?.as_str() {
                    "SHARED" if mode.is_none() => mode = Some(LockMode::Shared),
                    "EXCLUSIVE" if mode.is_none() => mode = Some(LockMode::Exclusive),
                    "TTL" if ttl_ms.is_none() => ttl_ms = Some(parse_ttl(parse)?),
                    "WAIT" if wait_ms.is_none() => wait_ms = Some(parse_wait(parse)?),
                    _ => return Err(ParseError::Syntax),
                }
            }
            let ttl_ms = ttl_ms.unwrap_or(default_ttl);
            let op = LockOp::Acquire {
                resource,
                owner,
                mode: mode.unwrap_or(LockMode::Exclusive),
                ttl_ms,
                wait_ms,
                rid: 0, // the service gives each request its id
            };
            Ok(Parsed {
                command: LockCommand::Write(op),
                wait_ms,
            })
        }
        "LOCK.RELEASE" => {
            let owner = parse.next_bytes()?.to_vec();
            write(LockOp::Release { resource, owner })
        }
        "LOCK.RENEW" => {
            let owner = parse.next_bytes()?.to_vec();
            let ttl_ms = parse_ttl(parse)?;
            write(LockOp::Renew {
                resource,
                owner,
                ttl_ms,
            })
        }
        "LOCK.UPGRADE" => {
            let owner = parse.next_bytes()?.to_vec();
            let mut wait_ms = None;
            while parse.remaining() > 0 {
                match parse.next_keyword()?.as_str() {
                    "WAIT" if wait_ms.is_none() => wait_ms = Some(parse_wait(parse)?),
                    _ => return Err(ParseError::Syntax),
                }
            }
            Ok(Parsed {
                command: LockCommand::Write(LockOp::Upgrade {
                    resource,
                    owner,
                    wait_ms,
                    rid: 0,
                }),
                wait_ms,
            })
        }
        "LOCK.DOWNGRADE" => {
            let owner = parse.next_bytes()?.to_vec();
            write(LockOp::Downgrade { resource, owner })
        }
        "LOCK.CHECK" => {
            let token = parse.next_u64()?;
            Ok(Parsed {
                command: LockCommand::Check { resource, token },
                wait_ms: None,
            })
        }
        "LOCK.INFO" => Ok(Parsed {
            command: LockCommand::Info { resource },
            wait_ms: None,
        }),
        _ => Err(ParseError::Other(format!(
            "ERR unknown command '{}'",
            name.to_lowercase()
        ))),
    }
}

fn parse_ttl(parse: &mut Parse) -> Result<u64, ParseError> {
    let ttl = parse.next_i64()?;
    if ttl < 0 || !TTL_RANGE.contains(&(ttl as u64)) {
        return Err(ParseError::Other(format!(
            "ERR invalid TTL: must be between {MIN_TTL_MS} and {MAX_TTL_MS} milliseconds"
        )));
    }
    Ok(ttl as u64)
}

fn parse_wait(parse: &mut Parse) -> Result<u64, ParseError> {
    let wait = parse.next_i64()?;
    u64::try_from(wait).map_err(|_| {
        ParseError::Other("ERR invalid WAIT: must be a non-negative number of milliseconds".into())
    })
}

/// The client reply for a state-machine reply.
pub fn reply_frame(reply: &LockReply) -> Frame {
    match reply {
        LockReply::Granted { token } => Frame::Integer(*token as i64),
        LockReply::Queued | LockReply::NotGranted => Frame::Null,
        LockReply::Deadlock { cycle } => Frame::error(format!("DEADLOCK {cycle}")),
        LockReply::Done(b) => Frame::Integer(*b as i64),
        LockReply::Error(e) => Frame::error(e.clone()),
        LockReply::Housekeeping { touched } => Frame::Integer(*touched as i64),
    }
}

/// The `LOCK.INFO` map.
pub fn info_frame(info: &InfoWire) -> Frame {
    let mode = info.mode.map(LockMode::as_str).unwrap_or("none");
    let holders = info
        .holders
        .iter()
        .map(|(owner, token, ttl)| {
            Frame::Map(vec![
                (Frame::bulk_static("owner"), Frame::bulk_from(owner)),
                (Frame::bulk_static("token"), Frame::Integer(*token as i64)),
                (Frame::bulk_static("ttl_ms"), Frame::Integer(*ttl as i64)),
            ])
        })
        .collect();
    let waiters = info
        .waiters
        .iter()
        .map(|(owner, mode, waited)| {
            Frame::Map(vec![
                (Frame::bulk_static("owner"), Frame::bulk_from(owner)),
                (
                    Frame::bulk_static("mode"),
                    Frame::bulk_static(mode.as_str()),
                ),
                (
                    Frame::bulk_static("waited_ms"),
                    Frame::Integer(*waited as i64),
                ),
            ])
        })
        .collect();
    Frame::Map(vec![
        (Frame::bulk_static("mode"), Frame::bulk_static(mode)),
        (Frame::bulk_static("holders"), Frame::Array(holders)),
        (Frame::bulk_static("waiters"), Frame::Array(waiters)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn p(args: &[&str]) -> Result<Parsed, ParseError> {
        let mut parse = Parse::new(
            args.iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect(),
        );
        super::parse(&args[0].to_ascii_uppercase(), &mut parse, 30_000)
    }

    #[test]
    fn acquire_defaults_and_options() {
        let got = p(&["LOCK.ACQUIRE", "r", "me"]).unwrap();
        assert_eq!(
            got.command,
            LockCommand::Write(LockOp::Acquire {
                resource: b"r".to_vec(),
                owner: b"me".to_vec(),
                mode: LockMode::Exclusive,
                ttl_ms: 30_000,
                wait_ms: None,
                rid: 0,
            })
        );
        let got = p(&[
            "lock.acquire",
            "r",
            "me",
            "shared",
            "TTL",
            "500",
            "WAIT",
            "0",
        ])
        .unwrap();
        assert_eq!(got.wait_ms, Some(0));
        assert!(p(&["LOCK.ACQUIRE", "r", "me", "TTL", "5"]).is_err());
        assert!(p(&["LOCK.ACQUIRE", "r", "me", "TTL", "x"]).is_err());
        assert!(p(&["LOCK.ACQUIRE", "r", "me", "SHARED", "EXCLUSIVE"]).is_err());
        assert!(p(&["LOCK.ACQUIRE", "r", "me", "WAIT", "-1"]).is_err());
        assert!(p(&["LOCK.ACQUIRE", "r", "me", "TTL"]).is_err());
    }

    #[test]
    fn replies() {
        assert_eq!(
            reply_frame(&LockReply::Granted { token: 5 }),
            Frame::Integer(5)
        );
        assert_eq!(reply_frame(&LockReply::NotGranted), Frame::Null);
        assert!(reply_frame(&LockReply::Deadlock { cycle: "a".into() }).is_error());
    }
}
