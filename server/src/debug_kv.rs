//! The debug key-value groups (`--debug-kv-groups N`): N Raft groups of raft-store's
//! [`KvMachine`] (a replicated map of byte strings), ids `2001..=2000+N`, hosted beside the lock
//! group on the node's one log engine, and the two commands that reach them. A testing
//! aid: it shows one process hosting many groups of a second machine type (issue 8),
//! and lets tests and benchmarks load them through the client port.
//!
//! - `DEBUG.KVSET <group> <key> <value>` → `:<index>`, the log index of the entry that
//!   holds the write, once it is committed and applied on this node (the leader).
//! - `DEBUG.KVGET <group> <key>` → the value, or nil: a linearizable read on the leader
//!   (`ensure_linearizable`, as `LOCK.CHECK`). With `LOCAL` it reads this node's applied
//!   state instead, on any node, without that guarantee (tests compare replicas with it).
//!
//! Commands are not forwarded: on a node that does not lead the group the reply is
//! `-TRYAGAIN not leader; leader is <id>` and the client retries on that node (Redis
//! Cluster's `-MOVED` plays the same role). Errors, all `-` replies:
//!
//! | reply | meaning |
//! |---|---|
//! | `ERR value is not an integer or out of range` | the group is not a number |
//! | `ERR no such debug kv group <g> ...` | the node hosts no kv group `g` |
//! | `TRYAGAIN not leader; leader is <id>` | nothing was done; ask node `<id>` |
//! | `CLUSTERDOWN no raft leader` | no leader known within `--no-leader-wait`; nothing done |
//! | `CLUSTERDOWN no quorum` | this leader lost its majority; nothing was proposed |
//! | `CLUSTERDOWN timed out; the write may still apply` | proposed, not confirmed within `--no-leader-wait` |
//! | `ERR raft: ...` | openraft failed otherwise |
//!
//! The timeout is the one reply after which a write's effect is unknown (the lock service
//! withdraws such requests; a debug map does not need to): repeat the same `KVSET`, a
//! put of the same value is idempotent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_cluster::group_stats::GroupStats;
use conclave_cluster::{GroupConfig, HostedGroup, Peers, RaftGroup};
use conclave_protocol::command;
use conclave_protocol::spec::{Declared, Service};
use conclave_protocol::{Frame, Parse, ParseError};
use conclave_raft_store::kv::{KvMachine, KvOp};
use conclave_raft_store::proposer::{ProposeError, Proposer};
use conclave_raft_store::{GroupId, LogEngine, NodeId, DEBUG_KV_GROUP_BASE};
use openraft::error::RaftError;
use thiserror::Error;

/// Parses one `DEBUG.KV*` command's arguments (after its name).
pub type Parser = fn(&mut Parse) -> Result<KvRequest, ParseError>;

/// The key is the second argument (after the group).
const KEY2: (i32, i32, i32) = (2, 2, 1);

/// The `DEBUG.KV*` commands, in `COMMAND LIST` order.
#[rustfmt::skip]
pub static COMMANDS: &[Declared<Parser>] = &[
    command!("DEBUG.KVSET", 4, ["write"], KEY2, "server", "Testing aid: sets a key in a debug kv Raft group (--debug-kv-groups) through its leader; replies the log index once committed.", "group key value", Service::Debug => parse_set),
    command!("DEBUG.KVGET", -3, ["readonly"], KEY2, "server", "Testing aid: reads a key of a debug kv Raft group, linearizably on its leader (LOCAL: this node's applied state).", "group key [LOCAL]", Service::Debug => parse_get),
];

/// A parsed `DEBUG.KV*` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvRequest {
    /// `DEBUG.KVSET`.
    Set {
        /// The kv group's id (`2001..=2000+N`).
        group: GroupId,
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// `DEBUG.KVGET`.
    Get {
        /// The kv group's id (`2001..=2000+N`).
        group: GroupId,
        /// The key.
        key: Vec<u8>,
        /// Read this node's applied state (no leader, no linearizability).
        local: bool,
    },
}

fn parse_set(parse: &mut Parse) -> Result<KvRequest, ParseError> {
    let group = parse.next_u64()?;
    let key = parse.next_bytes()?.to_vec();
    let value = parse.next_bytes()?.to_vec();
    parse.finish()?;
    Ok(KvRequest::Set { group, key, value })
}

fn parse_get(parse: &mut Parse) -> Result<KvRequest, ParseError> {
    let group = parse.next_u64()?;
    let key = parse.next_bytes()?.to_vec();
    let local = match parse.try_next() {
        None => false,
        Some(word) if word.eq_ignore_ascii_case(b"LOCAL") => true,
        Some(_) => return Err(ParseError::Syntax),
    };
    parse.finish()?;
    Ok(KvRequest::Get { group, key, local })
}

/// Why a `DEBUG.KV*` command was not served; `Display` is the RESP error line.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum KvError {
    /// The node hosts no kv group with this id.
    #[error("ERR no such debug kv group {group} on this node (it hosts {hosted}: ids 2001..={last}, see --debug-kv-groups)", last = DEBUG_KV_GROUP_BASE + *hosted as u64)]
    NoSuchGroup {
        /// The id asked for.
        group: GroupId,
        /// How many kv groups the node hosts.
        hosted: usize,
    },
    /// Another node leads the group; nothing was done.
    #[error("TRYAGAIN not leader; leader is {0}")]
    NotLeader(NodeId),
    /// No leader became known within `--no-leader-wait`; nothing was done.
    #[error("CLUSTERDOWN no raft leader")]
    NoLeader,
    /// This node leads but has not heard from a majority lately; nothing was proposed.
    #[error("CLUSTERDOWN no quorum")]
    NoQuorum,
    /// Proposed (or read barrier started) but not confirmed within `--no-leader-wait`:
    /// a write may still apply.
    #[error("CLUSTERDOWN timed out; the write may still apply")]
    Timeout,
    /// openraft failed otherwise.
    #[error("ERR raft: {0}")]
    Raft(String),
}

/// One hosted kv group and the batching front of its writes.
struct KvGroup {
    group: Arc<RaftGroup<KvMachine>>,
    proposer: Proposer<KvMachine>,
}

/// The node's debug kv groups (ids `2001..=2000+N`, [`DEBUG_KV_GROUP_BASE`]` + n`; none
/// without `--debug-kv-groups`).
pub struct DebugKv {
    groups: Vec<KvGroup>,
    no_leader_wait: Duration,
}

impl std::fmt::Debug for DebugKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebugKv")
            .field("groups", &self.groups.len())
            .finish()
    }
}

impl DebugKv {
    /// Starts `count` kv groups, ids `2001..=2000+count`, on `engine`; `config(id)` describes
    /// group `id` (fresh groups are initialized with its members). A command waits up to
    /// `no_leader_wait` for a leader, a commit or a read barrier.
    pub async fn start(
        count: u64,
        config: impl Fn(GroupId) -> GroupConfig,
        engine: &Arc<LogEngine>,
        peers: &Arc<Peers>,
        no_leader_wait: Duration,
    ) -> anyhow::Result<DebugKv> {
        let mut groups = Vec::new();
        for id in (1..=count).map(|n| DEBUG_KV_GROUP_BASE + n) {
            let stats = Arc::new(GroupStats::new(id));
            let group =
                RaftGroup::<KvMachine>::start(&config(id), engine, peers.clone(), stats, None)
                    .await?;
            let proposer = Proposer::start(group.raft().clone(), no_leader_wait);
            groups.push(KvGroup { group, proposer });
        }
        Ok(DebugKv {
            groups,
            no_leader_wait,
        })
    }

    /// The groups, type-erased, for `Node::groups` (the router, `RAFT.STATUS <group>`).
    pub fn hosted(&self) -> impl Iterator<Item = Arc<dyn HostedGroup>> + '_ {
        self.groups
            .iter()
            .map(|g| g.group.clone() as Arc<dyn HostedGroup>)
    }

    /// Runs a `DEBUG.KV*` command; `parser` is its declared parser ([`COMMANDS`]).
    pub async fn execute(&self, parser: Parser, parse: &mut Parse) -> Frame {
        let request = match parser(parse) {
            Ok(r) => r,
            Err(e) => return e.to_frame(),
        };
        let result = match request {
            KvRequest::Set { group, key, value } => self.set(group, key, value).await,
            KvRequest::Get { group, key, local } => self.get(group, &key, local).await,
        };
        result.unwrap_or_else(|e| Frame::error(e.to_string()))
    }

    fn group(&self, id: GroupId) -> Result<&KvGroup, KvError> {
        id.checked_sub(DEBUG_KV_GROUP_BASE + 1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.groups.get(i))
            .ok_or(KvError::NoSuchGroup {
                group: id,
                hosted: self.groups.len(),
            })
    }

    /// `DEBUG.KVSET`: proposes the put on this node if it leads; `:index` once applied.
    async fn set(&self, id: GroupId, key: Vec<u8>, value: Vec<u8>) -> Result<Frame, KvError> {
        let g = self.group(id)?;
        let deadline = Instant::now() + self.no_leader_wait;
        loop {
            self.lead(&g.group, deadline).await?;
            if g.group.quorum_lost() {
                return Err(KvError::NoQuorum);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let op = KvOp::Put {
                key: key.clone(),
                value: value.clone(),
            };
            match g.proposer.propose(op, left).await {
                Ok((index, _)) => return Ok(Frame::Integer(index as i64)),
                // Lost the leadership before appending: nothing was proposed; look again.
                Err(ProposeError::NotLeader) => pause(deadline).await,
                Err(ProposeError::NoQuorum) => return Err(KvError::NoQuorum),
                Err(ProposeError::Timeout) => return Err(KvError::Timeout),
                Err(ProposeError::Raft(e)) => return Err(KvError::Raft(e)),
            }
        }
    }

    /// `DEBUG.KVGET`: after a read barrier on the leader, or from local state.
    async fn get(&self, id: GroupId, key: &[u8], local: bool) -> Result<Frame, KvError> {
        let g = self.group(id)?;
        if !local {
            let deadline = Instant::now() + self.no_leader_wait;
            loop {
                self.lead(&g.group, deadline).await?;
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, g.group.raft().ensure_linearizable()).await {
                    Err(_) => return Err(KvError::Timeout),
                    Ok(Ok(_)) => break,
                    // Not the leader any more: look again.
                    Ok(Err(RaftError::APIError(_))) => pause(deadline).await,
                    Ok(Err(e)) => return Err(KvError::Raft(e.to_string())),
                }
            }
        }
        let state = g.group.state().read();
        Ok(match state.machine.map.get(key) {
            Some(v) => Frame::bulk_from(v),
            None => Frame::Null,
        })
    }

    /// Ok when this node leads `group`; `NotLeader` naming the leader when another node
    /// does; waits for one to be known until `deadline` (then `NoLeader`).
    async fn lead(&self, group: &RaftGroup<KvMachine>, deadline: Instant) -> Result<(), KvError> {
        let mut metrics = group.raft().metrics();
        loop {
            match metrics.borrow_and_update().current_leader {
                Some(l) if l == group.node_id() => return Ok(()),
                Some(l) => return Err(KvError::NotLeader(l)),
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, metrics.changed()).await {
                Ok(Ok(())) => {}
                // Out of time, or the group stopped.
                _ => return Err(KvError::NoLeader),
            }
        }
    }
}

/// A short pause before looking at the leader again, never past `deadline`.
async fn pause(deadline: Instant) {
    let left = deadline.saturating_duration_since(Instant::now());
    tokio::time::sleep(Duration::from_millis(10).min(left)).await;
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn parse(parser: Parser, args: &[&str]) -> Result<KvRequest, ParseError> {
        let args = args.iter().map(|a| Bytes::from(a.to_string())).collect();
        parser(&mut Parse::new(args))
    }

    #[test]
    fn set_and_get_parse() {
        assert_eq!(
            parse(parse_set, &["DEBUG.KVSET", "3", "k", "v"]),
            Ok(KvRequest::Set {
                group: 3,
                key: b"k".to_vec(),
                value: b"v".to_vec()
            })
        );
        assert_eq!(
            parse(parse_get, &["DEBUG.KVGET", "1", "k", "local"]),
            Ok(KvRequest::Get {
                group: 1,
                key: b"k".to_vec(),
                local: true
            })
        );
        assert_eq!(
            parse(parse_get, &["DEBUG.KVGET", "1", "k"]),
            Ok(KvRequest::Get {
                group: 1,
                key: b"k".to_vec(),
                local: false
            })
        );
    }

    #[test]
    fn bad_arguments_are_clear_errors() {
        assert_eq!(
            parse(parse_set, &["DEBUG.KVSET", "x", "k", "v"]),
            Err(ParseError::NotInteger)
        );
        assert_eq!(
            parse(parse_set, &["DEBUG.KVSET", "-1", "k", "v"]),
            Err(ParseError::NotInteger)
        );
        assert_eq!(
            parse(parse_get, &["DEBUG.KVGET", "1", "k", "NOW"]),
            Err(ParseError::Syntax)
        );
        assert_eq!(
            parse(parse_get, &["DEBUG.KVGET", "1", "k", "LOCAL", "x"]),
            Err(ParseError::Syntax)
        );
    }

    #[tokio::test]
    async fn unknown_groups_are_refused() {
        let kv = DebugKv {
            groups: Vec::new(),
            no_leader_wait: Duration::from_millis(10),
        };
        for g in ["0", "1", "2001", "9223372036854775807"] {
            let args = ["DEBUG.KVSET", g, "k", "v"]
                .iter()
                .map(|a| Bytes::from(a.to_string()))
                .collect();
            let reply = kv.execute(parse_set, &mut Parse::new(args)).await;
            let Frame::Error(e) = reply else {
                panic!("{reply:?}")
            };
            assert!(e.starts_with(b"ERR no such debug kv group"), "{e:?}");
        }
    }
}
