//! A real one-member openraft cluster on this store: writes are applied and survive a
//! restart (re-applied from the log), and a snapshot plus purge survives one too.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use conclave_locks::machine::{LockBatch, LockMode, LockOp, LockReply, LockRequest, LockTable};
use conclave_raft_store::{open_group, Node, NodeId};

type TypeConfig = conclave_raft_store::TypeConfig<LockTable>;
type Raft = conclave_raft_store::Raft<LockTable>;
type SharedStateMachine = conclave_raft_store::SharedStateMachine<LockTable>;
type ApplyHook = conclave_raft_store::ApplyHook<LockTable>;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{Config, ServerState};

/// A network to nowhere: a one-member cluster never sends anything.
struct NoNetwork;

#[derive(Debug, thiserror::Error)]
#[error("no peers in this test")]
struct NoPeers;

impl RaftNetworkFactory<TypeConfig> for NoNetwork {
    type Network = NoNetwork;
    async fn new_client(&mut self, _target: NodeId, _node: &Node) -> NoNetwork {
        NoNetwork
    }
}

impl RaftNetwork<TypeConfig> for NoNetwork {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        Err(RPCError::Unreachable(Unreachable::new(&NoPeers)))
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        Err(RPCError::Unreachable(Unreachable::new(&NoPeers)))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        Err(RPCError::Unreachable(Unreachable::new(&NoPeers)))
    }
}

async fn start(dir: &Path, hook: Option<ApplyHook>) -> (Raft, SharedStateMachine) {
    let (log, sm) = open_group(dir, 0, hook).unwrap();
    let shared = sm.shared();
    let config = Config {
        heartbeat_interval: 100,
        election_timeout_min: 200,
        election_timeout_max: 400,
        ..Config::default()
    };
    let raft = Raft::new(1, Arc::new(config.validate().unwrap()), NoNetwork, log, sm)
        .await
        .unwrap();
    (raft, shared)
}

fn acquire(resource: &str) -> LockBatch {
    LockBatch::from(LockRequest {
        now_ms: 1_000_000,
        op: LockOp::Acquire {
            resource: resource.as_bytes().to_vec(),
            owner: b"me".to_vec(),
            mode: LockMode::Exclusive,
            ttl_ms: 60_000,
            wait_ms: None,
            rid: 0,
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_restart_and_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let timeout = Some(Duration::from_secs(10));
    let mut tokens = Vec::new();
    {
        let hooked = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let hook: ApplyHook = {
            let hooked = hooked.clone();
            Arc::new(move |index, _applied| hooked.lock().push(index))
        };
        let (raft, shared) = start(tmp.path(), Some(hook)).await;
        raft.initialize(BTreeMap::from([(1, Node::default())]))
            .await
            .unwrap();
        raft.wait(timeout)
            .state(ServerState::Leader, "leader")
            .await
            .unwrap();
        for r in ["a", "b", "c"] {
            let resp = raft.client_write(acquire(r)).await.unwrap();
            let LockReply::Granted { token } = resp.data[0].reply else {
                panic!("not granted: {:?}", resp.data)
            };
            assert_eq!(token, resp.log_id.index);
            tokens.push(token);
        }
        assert_eq!(*hooked.lock(), tokens);
        raft.ensure_linearizable().await.unwrap();
        assert!(shared.read().machine.check(b"b", tokens[1]));
        raft.shutdown().await.unwrap();
    }

    // Restart: the state machine starts empty and openraft re-applies the committed log.
    let last = *tokens.last().unwrap();
    {
        let (raft, shared) = start(tmp.path(), None).await;
        raft.wait(timeout)
            .applied_index_at_least(Some(last), "re-applied")
            .await
            .unwrap();
        for (r, t) in ["a", "b", "c"].iter().zip(&tokens) {
            assert!(shared.read().machine.check(r.as_bytes(), *t), "{r}");
        }
        raft.wait(timeout)
            .state(ServerState::Leader, "leader again")
            .await
            .unwrap();
        let resp = raft.client_write(acquire("d")).await.unwrap();
        assert!(matches!(resp.data[0].reply, LockReply::Granted { .. }));
        tokens.push(resp.log_id.index);
        raft.trigger().snapshot().await.unwrap();
        raft.wait(timeout)
            .metrics(
                |m| m.snapshot.is_some_and(|s| s.index >= resp.log_id.index),
                "snapshot",
            )
            .await
            .unwrap();
        raft.trigger().purge_log(resp.log_id.index).await.unwrap();
        raft.wait(timeout)
            .metrics(
                |m| m.purged.is_some_and(|p| p.index >= resp.log_id.index),
                "purged",
            )
            .await
            .unwrap();
        raft.shutdown().await.unwrap();
    }

    // Restart from snapshot + empty log.
    let (raft, shared) = start(tmp.path(), None).await;
    raft.wait(timeout)
        .applied_index_at_least(tokens.last().copied(), "from snapshot")
        .await
        .unwrap();
    for (r, t) in ["a", "b", "c", "d"].iter().zip(&tokens) {
        assert!(shared.read().machine.check(r.as_bytes(), *t), "{r}");
    }
    raft.shutdown().await.unwrap();
}

fn acquire_op(resource: &str, owner: &str) -> LockOp {
    LockOp::Acquire {
        resource: resource.as_bytes().to_vec(),
        owner: owner.as_bytes().to_vec(),
        mode: LockMode::Exclusive,
        ttl_ms: 60_000,
        wait_ms: None,
        rid: 0,
    }
}

/// `Proposer::propose_all` puts its operations into one entry, in the order given, while
/// other requests are proposed around them: A's acquire, B's refused acquire, A's release
/// and B's acquire again only come out this way in this order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propose_all_keeps_its_operations_together_and_in_order() {
    use conclave_raft_store::proposer::Proposer;
    let tmp = tempfile::tempdir().unwrap();
    let (raft, _shared) = start(tmp.path(), None).await;
    raft.initialize(BTreeMap::from([(1, Node::default())]))
        .await
        .unwrap();
    raft.wait(Some(Duration::from_secs(10)))
        .state(ServerState::Leader, "leader")
        .await
        .unwrap();
    let proposer = Proposer::start(raft.clone(), Duration::from_secs(10));
    let within = Duration::from_secs(10);
    for round in 0..20 {
        let x = format!("x{round}");
        let others: Vec<_> = (0..8)
            .map(|i| {
                let p = proposer.clone();
                let r = format!("other{round}-{i}");
                tokio::spawn(async move { p.propose(acquire_op(&r, "o"), within).await })
            })
            .collect();
        let ops = vec![
            acquire_op(&x, "a"),
            acquire_op(&x, "b"),
            LockOp::Release {
                resource: x.as_bytes().to_vec(),
                owner: b"a".to_vec(),
            },
            acquire_op(&x, "b"),
        ];
        let (index, applied) = proposer.propose_all(ops, within).await.unwrap();
        let replies: Vec<_> = applied.into_iter().map(|a| a.reply).collect();
        let [LockReply::Granted { token: first }, LockReply::NotGranted, LockReply::Done(true), LockReply::Granted { token: second }] =
            replies[..]
        else {
            panic!("round {round}: {replies:?}")
        };
        // Fencing tokens: at least the entry's index, strictly increasing.
        assert!(
            index <= first && first < second,
            "round {round}: {replies:?} at {index}"
        );
        for o in others {
            let (_, a) = o.await.unwrap().unwrap();
            assert!(matches!(a.reply, LockReply::Granted { .. }));
        }
    }
    raft.shutdown().await.unwrap();
}
