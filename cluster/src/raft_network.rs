//! openraft's network, carried over the cluster channel.
//!
//! Every RPC is `RAFT <group> <kind> <json request>` (a tagged request on one of the
//! peer's multiplexed connections, see [`crate::wire`]); the reply is the JSON of the
//! remote `Result<response, RaftError>`, which the peer's router got from the group's
//! [`crate::HostedGroup::handle_raft_rpc`]. A transport failure (never sent, timed out,
//! connection lost) is reported to openraft as `Unreachable` (it then backs off), an
//! error line from the peer as `NetworkError`, the remote `RaftError` as `RemoteError`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::marker::PhantomData;

use conclave_raft_store::{GroupId, NodeId, StateMachine, TypeConfig};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::directory::Directory;
use crate::peer::{PeerClient, PeerError};

/// The clients of every peer (a few multiplexed connections each), shared by all Raft
/// groups, the forwarders and the dashboard.
#[derive(Debug, Default)]
pub struct Peers {
    directory: Arc<Directory>,
    secret: Option<String>,
    clients: Mutex<HashMap<String, Arc<PeerClient>>>,
}

impl Peers {
    /// The peer set of node `self_id`, presenting `secret` to every peer and introducing
    /// itself with `client_addr` (its advertised client address, see
    /// [`crate::directory`]; empty: none).
    pub fn new(self_id: u64, secret: Option<String>, client_addr: String) -> Peers {
        Peers {
            directory: Arc::new(Directory::new(self_id, client_addr)),
            secret,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The members' client addresses, as learned at each handshake.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// The client for a peer's internal address.
    pub fn client(&self, addr: &str) -> Arc<PeerClient> {
        self.clients
            .lock()
            .entry(addr.to_string())
            .or_insert_with(|| {
                Arc::new(PeerClient::introduced(
                    addr.to_string(),
                    self.directory.clone(),
                    self.secret.clone(),
                    crate::peer::CONNECTIONS,
                ))
            })
            .clone()
    }
}

/// When this node last got an answer to a Raft RPC of one group from each peer: a
/// response or a Raft error the peer's group returned (a higher vote, a conflict), not a
/// fatal one (its Raft node stopped) nor a failure of the channel or of the peer's
/// router. The meta leader's heartbeats make this its liveness evidence
/// ([`crate::meta`]).
#[derive(Debug, Default)]
pub struct HeardFrom {
    at: Mutex<HashMap<NodeId, Instant>>,
}

impl HeardFrom {
    /// Records an answer from `node` now.
    pub fn heard(&self, node: NodeId) {
        self.at.lock().insert(node, Instant::now());
    }

    /// When `node` last answered (`None`: never, since this process started).
    pub fn last(&self, node: NodeId) -> Option<Instant> {
        self.at.lock().get(&node).copied()
    }
}

/// Builds a [`RaftLink`] per target node for one Raft group of machine `M`.
#[derive(Debug)]
pub struct RaftNetworkFactoryImpl<M> {
    /// The group this factory serves.
    pub group: GroupId,
    /// The shared peer clients.
    pub peers: Arc<Peers>,
    /// Told of every answer from a peer, when set.
    pub heard: Option<Arc<HeardFrom>>,
    machine: PhantomData<fn() -> M>,
}

impl<M> RaftNetworkFactoryImpl<M> {
    /// The network of `group` over `peers`.
    pub fn new(group: GroupId, peers: Arc<Peers>) -> Self {
        RaftNetworkFactoryImpl {
            group,
            peers,
            heard: None,
            machine: PhantomData,
        }
    }
}

impl<M: StateMachine> RaftNetworkFactory<TypeConfig<M>> for RaftNetworkFactoryImpl<M> {
    type Network = RaftLink;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> RaftLink {
        RaftLink {
            target,
            group: self.group,
            client: self.peers.client(&node.addr),
            heard: self.heard.clone(),
        }
    }
}

/// The Raft RPC link to one peer (for one group).
#[derive(Debug)]
pub struct RaftLink {
    target: NodeId,
    group: GroupId,
    client: Arc<PeerClient>,
    heard: Option<Arc<HeardFrom>>,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl RaftLink {
    async fn rpc<Req, Resp, E>(&self, kind: &str, req: &Req, ttl: Duration) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body = conclave_raft_store::postcard_after(&[], req)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let group = self.group.to_string();
        let reply = self
            .client
            .call(&[b"RAFT", group.as_bytes(), kind.as_bytes(), &body], ttl)
            .await;
        let reply = reply.map_err(|e| match &e {
            // The peer does not host the group (yet): back off as from a peer that is
            // down, rather than retry at once (a storm while a node starts its groups).
            PeerError::Remote(text) if error_code(text) == crate::router::NO_GROUP => {
                RPCError::Unreachable(Unreachable::new(&e))
            }
            PeerError::Remote(_) => RPCError::Network(NetworkError::new(&e)),
            _ => RPCError::Unreachable(Unreachable::new(&e)),
        })?;
        let result: Result<Resp, RaftError<NodeId, E>> =
            postcard::from_bytes(&reply).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        if let Some(heard) = &self.heard {
            // A stopped Raft node answers every RPC with a fatal error: not alive.
            if !matches!(result, Err(RaftError::Fatal(_))) {
                heard.heard(self.target);
            }
        }
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl<M: StateMachine> RaftNetwork<TypeConfig<M>> for RaftLink {
    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<TypeConfig<M>>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        self.rpc("APPEND", &req, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<TypeConfig<M>>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.rpc("SNAPSHOT", &req, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        req: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        self.rpc("VOTE", &req, option.hard_ttl()).await
    }
}

/// The code of a RESP error line: its first word (`NOGROUP` of `NOGROUP raft group 7 ...`).
fn error_code(text: &str) -> &str {
    text.split_once(' ').map_or(text, |(code, _)| code)
}

#[cfg(test)]
mod error_code_tests {
    use super::error_code;

    #[test]
    fn the_code_is_the_first_word() {
        assert_eq!(
            error_code("NOGROUP raft group 7 is not hosted on this node"),
            crate::router::NO_GROUP
        );
        assert_eq!(error_code("ERR Raft error"), "ERR");
        assert_eq!(error_code("NOGROUP"), "NOGROUP");
    }
}
