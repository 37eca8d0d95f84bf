//! Scenario tests of the protocol on a hand-driven cluster (in-order delivery unless a
//! test holds messages back). The exhaustive check is in `check/`. (Over 500 lines: one
//! self-contained scenario per rule of the protocol, on one small harness.)

use std::collections::VecDeque;

use super::check::TestRing;
use super::{Action, ClientId, Config, Envelope, Event, Held, Msg, Node, NodeId, Reply, Time};

type TestNode = Node<u8, u8, TestRing>;

struct Cluster {
    nodes: Vec<TestNode>,
    now: Time,
    net: VecDeque<Envelope<u8, u8>>,
    replies: Vec<(ClientId, Reply<u8>)>,
    forgot: Vec<u8>,
    /// Messages to or from this node are lost.
    cut: Option<NodeId>,
    sent: usize,
}

fn cfg() -> Config {
    Config {
        lease_ms: 2000,
        margin_ms: 100,
        epoch_spread_ms: 1000,
        retry_ms: 200,
        bug: None,
    }
}

impl Cluster {
    /// `homes[k]` is the home of key `k`.
    fn new(nodes: usize, homes: Vec<NodeId>) -> Self {
        let ring = TestRing { epoch: 1, homes };
        Cluster {
            nodes: (0..nodes)
                .map(|i| Node::new(i as NodeId, 1, ring.clone(), cfg()))
                .collect(),
            now: 1000,
            net: VecDeque::new(),
            replies: Vec::new(),
            forgot: Vec::new(),
            cut: None,
            sent: 0,
        }
    }

    fn on(&mut self, node: NodeId, event: Event<u8, u8, TestRing>) {
        let actions = self.nodes[node as usize].handle(self.now, event);
        for action in actions {
            match action {
                Action::Send(m) => {
                    self.sent += 1;
                    self.net.push_back(m);
                }
                Action::Reply { client, reply } => self.replies.push((client, reply)),
                Action::Forgot { key } => self.forgot.push(key),
                Action::SetTimer(_) | Action::Install { .. } | Action::Drop { .. } => {}
            }
        }
    }

    /// Delivers every message in flight, in order, until none is left.
    fn settle(&mut self) {
        while let Some(m) = self.net.pop_front() {
            if self.cut.is_some_and(|c| c == m.to || c == m.from) {
                continue;
            }
            self.on(m.to, Event::Receive(m));
        }
    }

    fn tick(&mut self, ms: Time) {
        self.now += ms;
        for id in 0..self.nodes.len() {
            self.on(id as NodeId, Event::Tick);
        }
        self.settle();
    }

    fn read(&mut self, node: NodeId, client: ClientId, key: u8) {
        self.on(node, Event::Read { client, key });
    }

    fn write(&mut self, node: NodeId, client: ClientId, writes: Vec<(u8, Option<u8>)>) {
        self.on(node, Event::Write { client, writes });
    }

    /// The reply to `client`, if any (taken).
    fn reply(&mut self, client: ClientId) -> Option<Reply<u8>> {
        let at = self.replies.iter().position(|(c, _)| *c == client)?;
        Some(self.replies.remove(at).1)
    }

    fn state(&self, node: NodeId, key: u8) -> Option<Held> {
        self.nodes[node as usize].state(&key, self.now)
    }
}

#[test]
fn one_node_cluster_sends_nothing() {
    let mut c = Cluster::new(1, vec![0, 0]);
    c.write(0, 1, vec![(0, Some(7))]);
    c.read(0, 2, 0);
    c.read(0, 3, 1);
    assert_eq!(c.reply(1), Some(Reply::Done));
    assert_eq!(c.reply(2), Some(Reply::Value(Some(7))));
    assert_eq!(c.reply(3), Some(Reply::Value(None)));
    assert_eq!(c.sent, 0);
}

#[test]
fn read_miss_gets_e_then_a_second_reader_makes_both_s() {
    let mut c = Cluster::new(3, vec![0]);
    c.write(0, 1, vec![(0, Some(5))]);
    c.read(1, 2, 0);
    c.settle();
    assert_eq!(c.reply(2), Some(Reply::Value(Some(5))));
    // Node 0 (the home) held it M; the recall left it S, node 1 S.
    assert_eq!(c.state(0, 0), Some(Held::S));
    assert_eq!(c.state(1, 0), Some(Held::S));
    c.read(2, 3, 0);
    c.settle();
    assert_eq!(c.reply(3), Some(Reply::Value(Some(5))));
    assert_eq!(c.state(2, 0), Some(Held::S));

    let mut c = Cluster::new(3, vec![0]);
    c.read(1, 1, 0);
    c.settle();
    assert_eq!(c.reply(1), Some(Reply::Value(None)));
    assert_eq!(c.state(1, 0), Some(Held::E));
    c.read(2, 2, 0);
    c.settle();
    assert_eq!(
        (c.state(1, 0), c.state(2, 0)),
        (Some(Held::S), Some(Held::S))
    );
}

#[test]
fn a_write_from_e_is_silent_and_a_later_read_recalls_it() {
    let mut c = Cluster::new(3, vec![0]);
    c.read(1, 1, 0);
    c.settle();
    assert_eq!(c.state(1, 0), Some(Held::E));
    let before = c.sent;
    c.write(1, 2, vec![(0, Some(9))]);
    assert_eq!(c.reply(2), Some(Reply::Done));
    assert_eq!(c.sent, before, "E → M sends nothing");
    assert_eq!(c.state(1, 0), Some(Held::M));
    c.read(2, 3, 0);
    c.settle();
    assert_eq!(c.reply(3), Some(Reply::Value(Some(9))));
    assert_eq!(c.nodes[0].stats().invalidations_sent, 1);
    assert_eq!(c.nodes[1].stats().writebacks, 1);
}

#[test]
fn a_write_waits_for_every_acknowledgement_or_the_lease() {
    let mut c = Cluster::new(3, vec![0]);
    c.read(1, 1, 0);
    c.read(2, 2, 0);
    c.settle();
    assert_eq!(
        (c.state(1, 0), c.state(2, 0)),
        (Some(Held::S), Some(Held::S))
    );
    // Node 2 is cut off: its invalidation is never acknowledged.
    c.cut = Some(2);
    c.write(1, 3, vec![(0, Some(4))]);
    c.settle();
    assert_eq!(c.reply(3), None, "no M while a sharer may still serve");
    c.tick(1000);
    assert_eq!(c.reply(3), None);
    // Node 2's own lease has run out: it stops serving (its read goes to the home).
    c.tick(1000);
    c.read(2, 4, 0);
    assert_eq!(c.reply(4), None);
    assert_eq!(c.reply(3), None, "the home waits lease + margin");
    c.tick(100);
    assert_eq!(c.reply(3), Some(Reply::Done));
    assert_eq!(c.nodes[0].stats().lease_waits, 1);
    c.cut = None;
    c.tick(200);
    assert_eq!(c.reply(4), Some(Reply::Value(Some(4))));
}

#[test]
fn an_m_holder_that_restarts_is_forgotten_never_served_stale() {
    let mut c = Cluster::new(3, vec![0]);
    c.write(1, 1, vec![(0, Some(1))]);
    c.settle();
    c.write(1, 2, vec![(0, Some(2))]);
    assert_eq!(c.reply(2), Some(Reply::Done));
    c.on(1, Event::Restart { incarnation: 2 });
    c.read(2, 3, 0);
    c.settle();
    assert_eq!(c.reply(3), Some(Reply::Value(None)), "nil, never 1");
    assert_eq!(c.forgot, vec![0]);
}

#[test]
fn evicting_m_writes_the_value_back() {
    let mut c = Cluster::new(3, vec![0]);
    c.write(1, 1, vec![(0, Some(3))]);
    c.settle();
    c.on(1, Event::Evict { key: 0 });
    c.settle();
    assert_eq!(c.state(1, 0), None);
    c.read(2, 2, 0);
    c.settle();
    assert_eq!(c.reply(2), Some(Reply::Value(Some(3))));
    assert_eq!(c.nodes[0].stats().invalidations_sent, 0, "no recall needed");
}

#[test]
fn a_home_evicting_a_key_invalidates_every_copy_first() {
    let mut c = Cluster::new(3, vec![0]);
    c.write(1, 1, vec![(0, Some(3))]);
    c.settle();
    c.read(2, 2, 0);
    c.settle();
    c.on(0, Event::HomeEvict { key: 0 });
    c.settle();
    assert_eq!((c.state(1, 0), c.state(2, 0)), (None, None));
    c.read(2, 3, 0);
    c.settle();
    assert_eq!(c.reply(3), Some(Reply::Value(None)));
}

#[test]
fn mset_holds_its_keys_until_all_are_written() {
    // Keys 0 and 1 homed on nodes 0 and 2; node 1 writes both.
    let mut c = Cluster::new(3, vec![0, 2]);
    c.write(0, 1, vec![(0, Some(1))]);
    c.write(2, 2, vec![(1, Some(1))]);
    c.settle();
    c.write(1, 3, vec![(1, Some(2)), (0, Some(2))]);
    // Deliver only what concerns key 0: node 1 gets it M and holds it.
    let mut held_back = VecDeque::new();
    while let Some(m) = c.net.pop_front() {
        if *m.msg.key() == 0 {
            c.on(m.to, Event::Receive(m));
        } else {
            held_back.push_back(m);
        }
    }
    assert_eq!(c.state(1, 0), Some(Held::M));
    // A reader of key 0 elsewhere must wait: the revocation is held back by node 1.
    c.read(2, 4, 0);
    while let Some(m) = c.net.pop_front() {
        if *m.msg.key() == 0 {
            c.on(m.to, Event::Receive(m));
        } else {
            held_back.push_back(m);
        }
    }
    assert_eq!(c.reply(4), None);
    c.net.extend(held_back);
    c.settle();
    assert_eq!(c.reply(3), Some(Reply::Done));
    assert_eq!(c.reply(4), Some(Reply::Value(Some(2))));
    c.read(0, 5, 1);
    c.settle();
    assert_eq!(c.reply(5), Some(Reply::Value(Some(2))));
}

#[test]
fn an_expired_copy_is_renewed_without_its_value() {
    let mut c = Cluster::new(2, vec![0]);
    c.write(1, 1, vec![(0, Some(8))]);
    c.settle();
    c.tick(2500);
    assert_eq!(c.state(1, 0), None, "lease ran out");
    let sent = c.sent;
    c.read(1, 2, 0);
    c.settle();
    assert_eq!(c.reply(2), Some(Reply::Value(Some(8))));
    assert_eq!(c.state(1, 0), Some(Held::M), "kept its modified copy");
    assert_eq!(c.sent, sent + 2, "one request, one renewal");
}

#[test]
fn a_new_epoch_drops_moved_copies_and_fences_the_new_home() {
    let mut c = Cluster::new(3, vec![0]);
    c.read(1, 1, 0);
    c.read(2, 2, 0);
    c.settle();
    let ring = TestRing {
        epoch: 2,
        homes: vec![2],
    };
    for id in 0..3 {
        c.on(id, Event::EpochChange(ring.clone()));
    }
    assert_eq!(c.state(1, 0), None, "its home moved");
    c.read(1, 3, 0);
    c.settle();
    c.tick(3000);
    assert_eq!(
        c.reply(3),
        None,
        "the new home waits out the old leases and the adoption spread"
    );
    c.tick(200);
    assert_eq!(c.reply(3), Some(Reply::Value(None)));
}

#[test]
fn a_home_drops_requests_of_another_epoch() {
    let mut c = Cluster::new(2, vec![0]);
    let stale = Envelope {
        from: 1,
        to: 0,
        epoch: 0,
        msg: Msg::Request {
            key: 0,
            rid: super::Stamp {
                incarnation: 1,
                seq: 1,
            },
            want: super::Want::Shared,
            holding: None,
        },
    };
    c.on(0, Event::Receive(stale));
    assert!(c.net.is_empty());
}

#[test]
fn a_cancelled_write_has_no_effect() {
    let mut c = Cluster::new(2, vec![0]);
    c.write(1, 1, vec![(0, Some(1))]);
    c.on(1, Event::Cancel { client: 1 });
    c.settle();
    assert_eq!(c.reply(1), None);
    c.read(0, 2, 0);
    c.settle();
    assert_eq!(c.reply(2), Some(Reply::Value(None)));
}

#[test]
fn acquire_holds_the_keys_until_release_and_revocations_wait_for_it() {
    let mut c = Cluster::new(3, vec![0, 0]);
    c.write(2, 9, vec![(0, Some(1))]);
    c.settle();
    assert_eq!(c.reply(9), Some(Reply::Done));
    // Node 1 takes both keys M to run a command on them itself (an INCR).
    c.on(
        1,
        Event::Acquire {
            client: 1,
            keys: vec![1, 0],
        },
    );
    c.settle();
    assert_eq!(c.reply(1), Some(Reply::Held));
    assert!(c.nodes[1].holds(1, c.now));
    // A read elsewhere must wait: the recall is held back while node 1 holds the key.
    c.read(2, 2, 0);
    c.settle();
    assert_eq!(c.reply(2), None, "no read while the hold is on");
    c.on(
        1,
        Event::Release {
            client: 1,
            writes: vec![(0, Some(2)), (1, Some(7))],
        },
    );
    assert_eq!(c.reply(1), Some(Reply::Done));
    assert!(!c.nodes[1].holds(1, c.now));
    c.settle();
    assert_eq!(
        c.reply(2),
        Some(Reply::Value(Some(2))),
        "the released value"
    );
    // A release without a hold does nothing.
    c.on(
        1,
        Event::Release {
            client: 5,
            writes: vec![(1, None)],
        },
    );
    assert_eq!(c.reply(5), None);
}

#[test]
fn write_local_needs_m_or_e_under_a_lease() {
    let mut c = Cluster::new(2, vec![0]);
    assert!(c.nodes[1].write_local(c.now, &0, Some(3)).is_none());
    c.read(1, 1, 0);
    c.settle();
    assert_eq!(c.state(1, 0), Some(Held::E));
    let now = c.now;
    assert!(c.nodes[1].write_local(now, &0, Some(3)).is_some());
    assert_eq!(c.state(1, 0), Some(Held::M));
    c.read(0, 2, 0);
    c.settle();
    assert_eq!(c.reply(2), Some(Reply::Value(Some(3))));
    c.now += 5000;
    let now = c.now;
    assert!(
        c.nodes[1].write_local(now, &0, Some(4)).is_none(),
        "lease over"
    );
}

/// Found by the multi-process partition test (tests/cache_faults.rs): a cut-off sharer's
/// copy is given up at its lease end; back in touch, its first fresh grant is lost, and
/// its next request still says it holds a copy. Renewing on a bare "holding" revived the
/// old copy (a stale read); the request now names the grant it holds, and only that
/// grant is renewed.
#[test]
fn a_renewal_of_a_copy_given_up_on_is_a_fresh_grant() {
    let mut c = Cluster::new(3, vec![0]);
    c.write(1, 1, vec![(0, Some(1))]);
    c.read(2, 2, 0);
    c.settle();
    assert_eq!(c.reply(2), Some(Reply::Value(Some(1))));
    c.cut = Some(2);
    c.write(1, 3, vec![(0, Some(2))]);
    c.settle();
    c.tick(1000);
    c.tick(1000);
    c.tick(200);
    assert_eq!(c.reply(3), Some(Reply::Done), "the home gave node 2 up");
    // Node 2 reads again: its request reaches the home, the grant back is lost.
    c.cut = None;
    c.read(2, 4, 0);
    let request = c.net.pop_front().expect("the request");
    assert_eq!(request.from, 2);
    c.on(request.to, Event::Receive(request));
    c.cut = Some(2);
    c.settle();
    // In touch again: the resend (naming the old copy) must not renew it.
    c.cut = None;
    c.tick(200);
    assert_eq!(c.reply(4), Some(Reply::Value(Some(2))), "never the old 1");
}

/// An owner idle past its lease still holds the only value: a read elsewhere waits for
/// its answer (up to a lease) instead of forgetting the key at once.
#[test]
fn an_idle_owner_past_its_lease_is_asked_not_forgotten() {
    let mut c = Cluster::new(3, vec![0]);
    c.write(1, 1, vec![(0, Some(7))]);
    c.settle();
    assert_eq!(c.reply(1), Some(Reply::Done));
    c.now += 10_000;
    c.read(2, 2, 0);
    c.settle();
    assert_eq!(c.reply(2), Some(Reply::Value(Some(7))));
    assert!(c.forgot.is_empty());
}

#[test]
fn a_copy_renewed_ahead_of_its_lease_end_never_stops_serving() {
    let mut c = Cluster::new(2, vec![0]);
    c.write(1, 1, vec![(0, Some(3))]);
    c.settle();
    assert_eq!(c.reply(1), Some(Reply::Done));
    c.now += 1500;
    c.on(1, Event::Renew { key: 0 });
    c.settle();
    c.now += 1000;
    // 2.5 s after the grant: still M under the renewed lease, the value kept.
    assert_eq!(c.state(1, 0), Some(Held::M));
    c.read(1, 2, 0);
    assert_eq!(c.reply(2), Some(Reply::Value(Some(3))));
    c.read(0, 3, 0);
    c.settle();
    assert_eq!(c.reply(3), Some(Reply::Value(Some(3))));
}

#[test]
fn a_fenced_home_grants_only_within_its_ring_confirmation() {
    let mut c = Cluster::new(2, vec![0]);
    c.nodes[0] = c.nodes[0].clone().fenced();
    // Not confirmed yet: node 1's read gets nothing.
    c.read(1, 1, 0);
    c.settle();
    assert_eq!(c.reply(1), None);
    // Confirmed until 500 ms from now: the resent request is granted.
    let until = c.now + 500;
    c.on(0, Event::RingConfirmed { until });
    c.tick(200);
    assert_eq!(c.reply(1), Some(Reply::Value(None)));
    // A confirmation never moves back.
    c.on(0, Event::RingConfirmed { until: until - 400 });
    // Past the confirmation's end, and past the lease of node 1's copy (E): its write
    // needs the home (a renewal or M), and waits however long until the ring is
    // confirmed again.
    for _ in 0..12 {
        c.tick(200);
    }
    assert_eq!(c.state(1, 0), None);
    c.write(1, 2, vec![(0, Some(9))]);
    c.settle();
    for _ in 0..10 {
        c.tick(200);
    }
    assert_eq!(c.reply(2), None, "granted past the control plane's lease");
    let until = c.now + 500;
    c.on(0, Event::RingConfirmed { until });
    c.tick(200);
    assert_eq!(c.reply(2), Some(Reply::Done));
    assert_eq!(c.state(1, 0), Some(Held::M));
}
