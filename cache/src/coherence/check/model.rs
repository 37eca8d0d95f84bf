//! The cluster as a `stateright` model: every node a real [`Node`] (the production code,
//! not a copy), the network a multiset of messages, time a shared clock in ticks.
//!
//! From any state the checker may take any enabled step:
//!
//! | step | when enabled |
//! |---|---|
//! | `Invoke(c)` | client `c` is idle, has operations left and its node is up |
//! | `Run(c)` | client `c`'s `Incr` was told `Held`: as the driver does, it runs the command on its copy and `Release`s it, if [`Node::holds`] still says so (a lease may have run out meanwhile: then it waits for `Held` again) |
//! | `Deliver(m)` | `m` is in flight (any of them: delay and reordering are free) |
//! | `Drop(m)` | `m` is in flight and fewer than `max_drops` were lost |
//! | `Tick` | `now < max_time`: the clock advances one tick; every live node that is in the latest committed epoch confirms its ring (the control plane's lease, until `now + epoch_spread_ms`), then handles `Tick` |
//! | `Crash(n)` | fewer than `max_crashes` crashes: node `n` loses its memory and stops |
//! | `Restart(n)` | `n` is down and `restarts` is set: it comes back with a new incarnation and no ring ([`Node::restart`], [`Node::fenced`]), then adopts and confirms the latest committed ring, as the driver does |
//! | `Evict(n, k)` | fewer than `max_evictions`: node `n` drops its copy of `k` |
//! | `HomeEvict(k)` | fewer than `max_evictions`: `k`'s home drops it (inclusion) |
//! | `Renew(n, k)` | fewer than `max_renews`: node `n` renews its copy of `k` under lease ahead of its end (the driver's renew-ahead) |
//! | `Commit` | `next_ring` is set and not yet committed: the meta group commits it now |
//! | `Adopt(n)` | `next_ring` is committed and node `n` has not adopted it yet (its applied state reached it) |
//!
//! Loss: a message that is never delivered is, for safety, a lost one — every step the
//! other nodes take is the same either way, and a run may end with messages still in
//! flight — so the runs explore loss through delay alone (`max_drops` 0), and
//! `Drop` only removes a message from the state. Retries and lease waits are exercised
//! whenever a message stays undelivered across ticks.
//!
//! A message to a node that is down is lost. Clients of a crashed node stop; their
//! operation in flight stays in flight (it may or may not have taken effect). All nodes read
//! one clock — the drift margin is 0 — so leases are checked exactly at their boundary.
//!
//! Epoch changes: the meta group commits the next ring at some step; each node adopts it
//! on its own step, in any order, arbitrarily late. Nothing bounds the spread of adoption:
//! instead the model runs the driver's mechanism that makes the protocol's assumption true
//! (`coherent/ring_follow.rs`): a node grants only until `epoch_spread_ms` after its last
//! confirmation of the ring with the control plane, and a confirmation after the commit
//! would have adopted the new ring, so a node still in the old epoch confirmed last before
//! the commit. The model confirms every node in the latest epoch at every tick (the most a
//! connected node can have) and none that lags. A node crashed meanwhile comes back with no
//! ring and adopts the latest: its first ring fences every key (`Node::epoch_change`).

//!
//! Why this file is over 500 lines: the steps, the carrying-out of the nodes' actions and
//! the control plane's part share the `World` and the model's bounds; split, each would
//! need the others to be read.

use stateright::semantics::{ConsistencyTester, LinearizabilityTester};
use stateright::{Model, Property};

use super::spec::{Key, Op, Registers, Ret, Value};
use crate::coherence::{
    Action, Config, Envelope, Epoch, Event, Held, Node, NodeId, Reply, Ring, Time,
};

/// A ring given as a table: key index → home.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TestRing {
    pub(crate) epoch: Epoch,
    pub(crate) homes: Vec<NodeId>,
}

impl Ring<Key> for TestRing {
    fn epoch(&self) -> Epoch {
        self.epoch
    }
    fn home(&self, key: &Key) -> NodeId {
        self.homes[usize::from(*key)]
    }
}

/// The node type of the model.
pub(crate) type TestNode = Node<Key, Value, TestRing>;
type Msg = Envelope<Key, Value>;

/// One client: the node it talks to and the operations it issues, one after another.
#[derive(Clone, Debug)]
pub(crate) struct Script {
    pub(crate) node: NodeId,
    pub(crate) ops: Vec<Op>,
}

/// What the checker explores.
#[derive(Clone, Debug)]
pub(crate) struct Coherence {
    pub(crate) cfg: Config,
    pub(crate) nodes: usize,
    pub(crate) keys: usize,
    pub(crate) ring: TestRing,
    pub(crate) clients: Vec<Script>,
    pub(crate) max_time: Time,
    pub(crate) max_crashes: u8,
    /// The nodes that may crash.
    pub(crate) crashable: Vec<NodeId>,
    /// Whether a crashed node comes back (`false`: it has left for good).
    pub(crate) restarts: bool,
    pub(crate) max_drops: u8,
    pub(crate) max_evictions: u8,
    /// How many ahead-of-time renewals (`Renew`) a run may make.
    pub(crate) max_renews: u8,
    pub(crate) next_ring: Option<TestRing>,
    /// Bound on each node's stamp counter (requests, grants, revocations it has issued):
    /// adversarial reordering can make a grant and a revocation chase each other forever
    /// (a liveness, not a safety, matter), so exploration stops there.
    pub(crate) max_stamps: u64,
}

/// A client's progress through its script.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Progress {
    next: usize,
    busy: bool,
    dead: bool,
    /// An `Incr` was told `Held` and may run.
    held: bool,
    /// The result of the `Incr` being released (answered with its `Done`).
    result: Option<Value>,
}

/// The whole cluster at one instant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct World {
    pub(crate) now: Time,
    pub(crate) nodes: Vec<Option<TestNode>>,
    incarnations: Vec<u64>,
    /// Messages in flight, sorted (a multiset).
    net: Vec<Msg>,
    clients: Vec<Progress>,
    pub(crate) tester: LinearizabilityTester<usize, Registers>,
    crashes: u8,
    drops: u8,
    evictions: u8,
    renews: u8,
    forgets: usize,
    /// The forgets of keys that the committed ring moved to another home, not yet
    /// complete: (key, the forget's thread, the new home).
    moving: Vec<(Key, usize, NodeId)>,
    /// When the meta group committed `next_ring`.
    committed: Option<Time>,
    /// Some read returned a value (coverage).
    pub(crate) read_a_value: bool,
    /// Some `Incr` completed (coverage).
    pub(crate) incremented: bool,
    /// Some home waited out a lease (coverage).
    pub(crate) waited_out_lease: bool,
}

/// One step.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Step {
    Invoke(usize),
    Run(usize),
    Deliver(Msg),
    Drop(Msg),
    Tick,
    Crash(NodeId),
    Restart(NodeId),
    Evict(NodeId, Key),
    HomeEvict(Key),
    Renew(NodeId, Key),
    Commit,
    Adopt(NodeId),
}

/// The home of every key in a ring before any is known (epoch 0): a node that does not
/// exist, so messages sent there are lost.
const NOBODY: NodeId = 99;

impl Coherence {
    fn node_index(id: NodeId) -> usize {
        usize::try_from(id).unwrap_or(usize::MAX)
    }

    /// Carries out what a node asked for.
    fn apply(&self, world: &mut World, actions: Vec<crate::coherence::Action<Key, Value>>) {
        for action in actions {
            match action {
                Action::Send(envelope) if envelope.to == NOBODY => {}
                Action::Send(envelope) => {
                    let at = world.net.partition_point(|m| *m < envelope);
                    world.net.insert(at, envelope);
                }
                Action::Reply { client, reply } => {
                    let client = usize::try_from(client).unwrap_or(usize::MAX);
                    let Some(progress) = world.clients.get_mut(client) else {
                        continue;
                    };
                    if !progress.busy || progress.dead {
                        continue;
                    }
                    let ret = match reply {
                        Reply::Held => {
                            progress.held = true;
                            continue;
                        }
                        Reply::Value(v) => {
                            world.read_a_value |= v.is_some();
                            Ret::Value(v)
                        }
                        Reply::Done => match progress.result.take() {
                            Some(v) => {
                                world.incremented = true;
                                Ret::Value(Some(v))
                            }
                            None => Ret::Done,
                        },
                    };
                    progress.busy = false;
                    let _ = world.tester.on_return(client, ret);
                }
                Action::Forgot { key } => {
                    self.forget(world, key);
                }
                Action::SetTimer(_) | Action::Install { .. } | Action::Drop { .. } => {}
            }
        }
    }

    /// Records that `key` may be forgotten from now on (the forget's thread).
    fn forget(&self, world: &mut World, key: Key) -> usize {
        let thread = self.clients.len() + world.forgets;
        world.forgets += 1;
        let _ = world.tester.on_invoke(thread, Op::Forget(key));
        thread
    }

    fn step_node(&self, world: &mut World, id: NodeId, event: Event<Key, Value, TestRing>) {
        let now = world.now;
        let Some(Some(node)) = world.nodes.get_mut(Self::node_index(id)) else {
            return;
        };
        // A key the committed ring moved here is forgotten by the time this node, its new
        // home, may grant it: it starts without the old home's value (see `Step::Commit`).
        let fence_over = self.adopted(node)
            && node
                .moved_in
                .as_ref()
                .is_none_or(|(_, until)| now >= *until);
        if fence_over && world.moving.iter().any(|(_, _, home)| *home == id) {
            for (_, thread, _) in world.moving.iter().filter(|(_, _, home)| *home == id) {
                let _ = world.tester.on_return(*thread, Ret::Done);
            }
            world.moving.retain(|(_, _, home)| *home != id);
        }
        let actions = node.handle(now, event);
        world.waited_out_lease |= node.stats().lease_waits > 0;
        node.reset_stats();
        self.apply(world, actions);
    }

    /// Whether some client's script has an operation that `is`.
    fn scripts(&self, is: impl Fn(&Op) -> bool) -> bool {
        self.clients.iter().any(|s| s.ops.iter().any(&is))
    }

    fn adopted(&self, node: &TestNode) -> bool {
        self.next_ring
            .as_ref()
            .is_none_or(|r| node.epoch() >= r.epoch)
    }

    /// The latest ring the meta group committed.
    fn latest(&self, world: &World) -> TestRing {
        match (&self.next_ring, world.committed) {
            (Some(next), Some(_)) => next.clone(),
            _ => self.ring.clone(),
        }
    }

    /// Whether `node` is in the latest committed epoch (so a confirmation now changes
    /// nothing but the end of its control-plane lease).
    fn current(&self, world: &World, node: &TestNode) -> bool {
        node.epoch() >= self.latest(world).epoch
    }

    /// A node as the driver makes it, confirmed at `now` in `ring`: at the cluster's first
    /// start (`restart` false) in that ring at once; after a crash with no ring, then
    /// adopting `ring` as its first (which fences every key).
    fn fresh_node(
        &self,
        id: NodeId,
        incarnation: u64,
        now: Time,
        ring: TestRing,
        restart: bool,
    ) -> TestNode {
        let mut node = if restart {
            let none = TestRing {
                epoch: 0,
                homes: vec![NOBODY; self.keys],
            };
            let mut node = Node::restart(id, incarnation, none, self.cfg.clone(), now).fenced();
            let _ = node.handle(now, Event::EpochChange(ring));
            node
        } else {
            Node::new(id, incarnation, ring, self.cfg.clone()).fenced()
        };
        let until = now + self.cfg.epoch_spread_ms;
        let _ = node.handle(now, Event::RingConfirmed { until });
        node
    }
}

impl Model for Coherence {
    type State = World;
    type Action = Step;

    fn init_states(&self) -> Vec<World> {
        let nodes = (0..self.nodes)
            .map(|i| Some(self.fresh_node(i as NodeId, 1, 0, self.ring.clone(), false)))
            .collect();
        vec![World {
            now: 0,
            nodes,
            incarnations: vec![1; self.nodes],
            net: Vec::new(),
            clients: self
                .clients
                .iter()
                .map(|_| Progress {
                    next: 0,
                    busy: false,
                    dead: false,
                    held: false,
                    result: None,
                })
                .collect(),
            tester: LinearizabilityTester::new(Registers::new(self.keys)),
            crashes: 0,
            drops: 0,
            evictions: 0,
            renews: 0,
            forgets: 0,
            moving: Vec::new(),
            committed: None,
            read_a_value: false,
            incremented: false,
            waited_out_lease: false,
        }]
    }

    fn actions(&self, world: &World, actions: &mut Vec<Step>) {
        for (c, progress) in world.clients.iter().enumerate() {
            let script = &self.clients[c];
            let up = world.nodes[Self::node_index(script.node)].is_some();
            if up && !progress.busy && !progress.dead && progress.next < script.ops.len() {
                actions.push(Step::Invoke(c));
            }
            if up && progress.busy && progress.held && !progress.dead {
                actions.push(Step::Run(c));
            }
        }
        let mut last: Option<&Msg> = None;
        for m in &world.net {
            if last == Some(m) {
                continue;
            }
            last = Some(m);
            actions.push(Step::Deliver(m.clone()));
            if world.drops < self.max_drops {
                actions.push(Step::Drop(m.clone()));
            }
        }
        if world.now < self.max_time {
            actions.push(Step::Tick);
        }
        if self.next_ring.is_some() && world.committed.is_none() {
            actions.push(Step::Commit);
        }
        for (i, node) in world.nodes.iter().enumerate() {
            let id = i as NodeId;
            match node {
                Some(node) => {
                    if world.crashes < self.max_crashes && self.crashable.contains(&id) {
                        actions.push(Step::Crash(id));
                    }
                    if world.evictions < self.max_evictions {
                        for key in 0..self.keys as Key {
                            if node.copy_state(&key).is_some() {
                                actions.push(Step::Evict(id, key));
                            }
                        }
                    }
                    if world.renews < self.max_renews {
                        for key in 0..self.keys as Key {
                            if node.state(&key, world.now).is_some() && !node.is_pending(&key) {
                                actions.push(Step::Renew(id, key));
                            }
                        }
                    }
                    if world.committed.is_some() && !self.adopted(node) {
                        actions.push(Step::Adopt(id));
                    }
                }
                None if self.restarts => actions.push(Step::Restart(id)),
                None => {}
            }
        }
        if world.evictions < self.max_evictions {
            for key in 0..self.keys as Key {
                actions.push(Step::HomeEvict(key));
            }
        }
    }

    fn next_state(&self, last: &World, step: Step) -> Option<World> {
        let mut world = last.clone();
        match step {
            Step::Invoke(c) => {
                let script = &self.clients[c];
                let op = script.ops[world.clients[c].next].clone();
                world.clients[c].next += 1;
                world.clients[c].busy = true;
                let _ = world.tester.on_invoke(c, op.clone());
                let event = match op {
                    Op::Read(key) => Event::Read {
                        client: c as u64,
                        key,
                    },
                    Op::Write(writes) => Event::Write {
                        client: c as u64,
                        writes,
                    },
                    Op::Incr(key) => Event::Acquire {
                        client: c as u64,
                        keys: vec![key],
                    },
                    Op::Forget(_) => return None,
                };
                self.step_node(&mut world, script.node, event);
            }
            Step::Run(c) => {
                let script = &self.clients[c];
                let Some(Op::Incr(key)) = script.ops.get(world.clients[c].next - 1).cloned() else {
                    return None;
                };
                world.clients[c].held = false;
                let node = world.nodes[Self::node_index(script.node)].as_ref()?;
                if !node.holds(c as u64, world.now) {
                    // The lease ran out after `Held`: the machine takes the key again.
                    return Some(world);
                }
                let old = node.copy_value(&key).flatten();
                let new = old.unwrap_or(0).wrapping_add(1);
                world.clients[c].result = Some(new);
                let event = Event::Release {
                    client: c as u64,
                    writes: vec![(key, Some(new))],
                };
                self.step_node(&mut world, script.node, event);
            }
            Step::Deliver(m) => {
                let at = world.net.binary_search(&m).ok()?;
                world.net.remove(at);
                let to = m.to;
                self.step_node(&mut world, to, Event::Receive(m));
            }
            Step::Drop(m) => {
                let at = world.net.binary_search(&m).ok()?;
                world.net.remove(at);
                world.drops += 1;
            }
            Step::Tick => {
                world.now += 1;
                let until = world.now + self.cfg.epoch_spread_ms;
                for id in 0..self.nodes {
                    let confirms = world.nodes[id]
                        .as_ref()
                        .is_some_and(|n| self.current(&world, n));
                    if confirms {
                        self.step_node(&mut world, id as NodeId, Event::RingConfirmed { until });
                    }
                    self.step_node(&mut world, id as NodeId, Event::Tick);
                }
            }
            Step::Crash(id) => {
                let i = Self::node_index(id);
                world.nodes[i] = None;
                world.crashes += 1;
                for (c, script) in self.clients.iter().enumerate() {
                    if script.node == id {
                        world.clients[c].dead = true;
                    }
                }
                // Its directory dies with it: every key it homes may be lost.
                for key in 0..self.keys as Key {
                    if self.ring.home(&key) == id
                        || self.next_ring.as_ref().is_some_and(|r| r.home(&key) == id)
                    {
                        self.forget(&mut world, key);
                    }
                }
            }
            Step::Restart(id) => {
                let i = Self::node_index(id);
                world.incarnations[i] += 1;
                let ring = self.latest(&world);
                let node = self.fresh_node(id, world.incarnations[i], world.now, ring, true);
                world.nodes[i] = Some(node);
            }
            Step::Evict(id, key) => {
                world.evictions += 1;
                self.step_node(&mut world, id, Event::Evict { key });
            }
            Step::HomeEvict(key) => {
                // Only the key's home (in its own ring) acts on it.
                world.evictions += 1;
                for id in 0..self.nodes {
                    self.step_node(&mut world, id as NodeId, Event::HomeEvict { key });
                }
            }
            Step::Renew(id, key) => {
                world.renews += 1;
                self.step_node(&mut world, id, Event::Renew { key });
            }
            Step::Commit => {
                world.committed = Some(world.now);
                // A key whose home moves loses its value: the new home starts without it
                // (contract 2.1, epochs). The forget takes effect somewhere between the
                // commit and the end of the new home's fence, when it may first grant the
                // key (completed in `step_node`); the old home may serve the old value
                // until its control-plane lease and the leases it granted run out, all
                // before that fence ends.
                if let Some(next) = &self.next_ring {
                    for key in 0..self.keys as Key {
                        let home = next.home(&key);
                        if self.ring.home(&key) != home {
                            let thread = self.forget(&mut world, key);
                            world.moving.push((key, thread, home));
                        }
                    }
                }
            }
            Step::Adopt(id) => {
                let ring = self.next_ring.clone()?;
                self.step_node(&mut world, id, Event::EpochChange(ring));
            }
        }
        Some(world)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("linearizable", |_, world: &World| {
                world.tester.serialized_history().is_some()
            }),
            Property::always("single writer", |model: &Coherence, world: &World| {
                single_writer(model, world)
            }),
            Property::sometimes(
                "a read returns a value (if any is scripted)",
                |model: &Coherence, world: &World| {
                    world.read_a_value || !model.scripts(|op| matches!(op, Op::Read(_)))
                },
            ),
            Property::sometimes("a home waits out a lease", |_, world: &World| {
                world.waited_out_lease
            }),
            Property::sometimes(
                "an increment completes (if any is scripted)",
                |model: &Coherence, world: &World| {
                    world.incremented || !model.scripts(|op| matches!(op, Op::Incr(_)))
                },
            ),
        ]
    }

    fn within_boundary(&self, world: &World) -> bool {
        world.now <= self.max_time
            && world
                .nodes
                .iter()
                .flatten()
                .all(|n| n.stamps_drawn() <= self.max_stamps)
    }
}

/// Among the copies that may be served now, per key: at most one `M`/`E`, and none beside it.
fn single_writer(model: &Coherence, world: &World) -> bool {
    (0..model.keys as Key).all(|key| {
        let held: Vec<Held> = world
            .nodes
            .iter()
            .flatten()
            .filter_map(|n| n.state(&key, world.now))
            .collect();
        let exclusive = held.iter().filter(|h| h.exclusive()).count();
        exclusive == 0 || held.len() == 1
    })
}
