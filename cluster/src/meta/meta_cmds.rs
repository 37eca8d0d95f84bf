//! The meta group's client commands, declared once ([`COMMANDS`]); both read this
//! node's applied state and may run inside `MULTI`:
//!
//! - `MEMBER.LIST` → array of maps, one per member in id order: `id` (integer), `addr`
//!   (the cluster address), `client_addr`, `state` (`up` or `down`), `voter` (boolean;
//!   `:1`/`:0` in RESP2, where each map is a flat array) — contract 4.1. It reads this
//!   node's applied member table (any node answers, without a round trip; the nodes
//!   agree once they have applied the same log).
//! - `DEBUG.META` (a testing aid, like `DEBUG.KV*`) → map: `queue_shards` (integer, or
//!   null until recorded), `ring_epoch` (integer), `ring` (array of the live members'
//!   ids, sorted) — this node's applied meta state, for tests and operators to watch
//!   the ring move.

use conclave_protocol::command;
use conclave_protocol::spec::{Declared, Service, NOKEY};
use conclave_protocol::{Frame, Parse, ParseError};

use super::{Member, Meta};

/// Parses one meta command's arguments (after its name).
pub type Parser = fn(&mut Parse) -> Result<MetaRequest, ParseError>;

/// The meta commands, in `COMMAND LIST` order.
#[rustfmt::skip]
pub static COMMANDS: &[Declared<Parser>] = &[
    command!("MEMBER.LIST", 1, ["readonly", "fast", "stale"], NOKEY, "cluster", "Lists the cluster's members: id, cluster and client address, state (up|down) and whether each votes, from this node's applied meta group.", "", Service::Cluster => parse_member_list),
    command!("DEBUG.META", 1, ["readonly", "fast", "stale"], NOKEY, "server", "Testing aid: this node's applied meta group state: the queue shard count, the cache ring's epoch and live members.", "", Service::Cluster => parse_debug_meta),
];

/// A parsed meta command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaRequest {
    /// `MEMBER.LIST`.
    MemberList,
    /// `DEBUG.META`.
    DebugMeta,
}

fn parse_member_list(parse: &mut Parse) -> Result<MetaRequest, ParseError> {
    parse.finish()?;
    Ok(MetaRequest::MemberList)
}

fn parse_debug_meta(parse: &mut Parse) -> Result<MetaRequest, ParseError> {
    parse.finish()?;
    Ok(MetaRequest::DebugMeta)
}

/// One member as a `MEMBER.LIST` map.
pub fn member_frame(m: &Member) -> Frame {
    Frame::Map(vec![
        (Frame::bulk_static("id"), Frame::Integer(m.id as i64)),
        (
            Frame::bulk_static("addr"),
            Frame::bulk_string(m.addr.clone()),
        ),
        (
            Frame::bulk_static("client_addr"),
            Frame::bulk_string(m.client_addr.clone()),
        ),
        (
            Frame::bulk_static("state"),
            Frame::bulk_static(m.state.name()),
        ),
        (Frame::bulk_static("voter"), Frame::Boolean(m.voter)),
    ])
}

impl Meta {
    /// Runs a meta command; `parser` is its declared parser ([`COMMANDS`]).
    pub fn execute(&self, parser: Parser, parse: &mut Parse) -> Frame {
        match parser(parse) {
            Ok(MetaRequest::MemberList) => {
                Frame::Array(self.members().iter().map(member_frame).collect())
            }
            Ok(MetaRequest::DebugMeta) => {
                let ring = self.ring();
                Frame::Map(vec![
                    (
                        Frame::bulk_static("queue_shards"),
                        self.queue_shards()
                            .map_or(Frame::Null, |n| Frame::Integer(i64::from(n))),
                    ),
                    (
                        Frame::bulk_static("ring_epoch"),
                        Frame::Integer(ring.epoch as i64),
                    ),
                    (
                        Frame::bulk_static("ring"),
                        Frame::Array(
                            ring.members
                                .iter()
                                .map(|&id| Frame::Integer(id as i64))
                                .collect(),
                        ),
                    ),
                ])
            }
            Err(e) => e.to_frame(),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::meta::MemberState;

    #[test]
    fn member_list_takes_no_arguments() {
        let args = |a: &[&str]| Parse::new(a.iter().map(|s| Bytes::from(s.to_string())).collect());
        assert_eq!(
            parse_member_list(&mut args(&["MEMBER.LIST"])),
            Ok(MetaRequest::MemberList)
        );
        assert!(parse_member_list(&mut args(&["MEMBER.LIST", "x"])).is_err());
    }

    #[test]
    fn a_member_is_a_map_of_five_fields() {
        let m = Member {
            id: 2,
            addr: "127.0.0.1:17002".into(),
            client_addr: "127.0.0.1:7002".into(),
            state: MemberState::Down,
            voter: true,
            last_heard_ms: 5,
        };
        let Frame::Map(fields) = member_frame(&m) else {
            panic!("not a map")
        };
        let keys: Vec<Frame> = fields.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(
            keys,
            ["id", "addr", "client_addr", "state", "voter"]
                .map(Frame::bulk_static)
                .to_vec()
        );
        assert_eq!(fields[3].1, Frame::bulk_static("down"));
        assert_eq!(fields[4].1, Frame::Boolean(true));
    }
}
