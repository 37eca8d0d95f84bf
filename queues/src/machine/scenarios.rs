//! Scenario tests of [`QueueState`]: one behaviour of contract section 5 each, spelled
//! out step by step (the property tests cover the combinations). Queued reads,
//! withdrawals, deletion and snapshots are in `scenarios_waiting`.

use bytes::Bytes;

use super::*;

pub(super) fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A state and a clock.
pub(super) struct Q {
    pub(super) s: QueueState,
    pub(super) now: u64,
    pub(super) rid: u64,
}

impl Q {
    pub(super) fn new() -> Self {
        Q::with(QueueConfig::default())
    }

    pub(super) fn with(config: QueueConfig) -> Self {
        Q {
            s: QueueState::new(config),
            now: 1_700_000_000_000,
            rid: 0,
        }
    }

    pub(super) fn at(&mut self, advance: u64) -> &mut Self {
        self.now += advance;
        self
    }

    pub(super) fn op(&mut self, op: QueueOp) -> QueueApplied {
        let applied = self.s.apply(&QueueRequest {
            now_ms: self.now,
            op,
        });
        self.s.assert_consistent();
        applied
    }

    pub(super) fn push_with(
        &mut self,
        topic: &str,
        payload: &str,
        dedup: Option<&str>,
        delay_ms: u64,
    ) -> QueueReply {
        self.op(QueueOp::Push {
            topic: b(topic),
            payload: b(payload),
            dedup: dedup.map(b),
            delay_ms,
        })
        .reply
    }

    pub(super) fn push(&mut self, topic: &str, payload: &str) -> MsgId {
        match self.push_with(topic, payload, None, 0) {
            QueueReply::Pushed { id, .. } => id,
            other => panic!("{other:?}"),
        }
    }

    pub(super) fn read_op(
        &mut self,
        topic: &str,
        group: &str,
        consumer: &str,
        count: u64,
        block: Option<u64>,
    ) -> QueueApplied {
        self.rid += 1;
        self.op(QueueOp::Read {
            topic: b(topic),
            group: b(group),
            consumer: b(consumer),
            count,
            visibility_ms: None,
            block_ms: block,
            rid: self.rid,
            origin: 1,
        })
    }

    /// Payloads and delivery counts read.
    pub(super) fn read(
        &mut self,
        topic: &str,
        group: &str,
        consumer: &str,
        count: u64,
    ) -> Vec<(String, u32, MsgId)> {
        match self.read_op(topic, group, consumer, count, None).reply {
            QueueReply::Messages(m) => m
                .into_iter()
                .map(|m| {
                    (
                        String::from_utf8_lossy(&m.payload).into_owned(),
                        m.deliveries,
                        m.id,
                    )
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    pub(super) fn payloads(&mut self, topic: &str, group: &str, count: u64) -> Vec<String> {
        self.read(topic, group, "c", count)
            .into_iter()
            .map(|m| m.0)
            .collect()
    }

    pub(super) fn ack(&mut self, topic: &str, group: &str, ids: &[MsgId]) -> QueueReply {
        self.op(QueueOp::Ack {
            topic: b(topic),
            group: b(group),
            ids: ids.to_vec(),
        })
        .reply
    }

    pub(super) fn nack(
        &mut self,
        topic: &str,
        group: &str,
        id: MsgId,
        delay_ms: Option<u64>,
    ) -> QueueReply {
        self.op(QueueOp::Nack {
            topic: b(topic),
            group: b(group),
            id,
            delay_ms,
        })
        .reply
    }
}

#[test]
fn push_read_ack_and_retention() {
    let mut q = Q::new();
    let a = q.push("t", "one");
    let c = q.push("t", "two");
    assert_eq!(a, MsgId::new(q.now, 0));
    assert_eq!(c, MsgId::new(q.now, 1), "same ms: the sequence grows");
    assert_eq!(q.at(5).push("t", "three"), MsgId::new(q.now, 0));
    assert_eq!(q.s.len(b"t"), 3, "no group: everything is kept");

    let got = q.read("t", "g", "c1", 2);
    assert_eq!(
        got.iter().map(|m| (m.0.as_str(), m.1)).collect::<Vec<_>>(),
        [("one", 1), ("two", 1)]
    );
    assert_eq!(
        q.ack("t", "g", &[a, a, MsgId::new(1, 1)]),
        QueueReply::Count(1)
    );
    assert_eq!(q.s.len(b"t"), 2, "acknowledged by the only group: removed");
    assert_eq!(q.s.pending(b"t", b"g", None, q.now).len(), 1);
    assert_eq!(q.ack("t", "nogroup", &[c]), QueueReply::Count(0));
}

#[test]
fn a_message_stays_until_every_group_acknowledged_it() {
    let mut q = Q::new();
    q.op(QueueOp::GroupCreate {
        topic: b("t"),
        group: b("g1"),
        from: StartFrom::Oldest,
    });
    q.op(QueueOp::GroupCreate {
        topic: b("t"),
        group: b("g2"),
        from: StartFrom::Oldest,
    });
    let id = q.push("t", "m");
    q.read("t", "g1", "c", 1);
    q.read("t", "g2", "c", 1);
    q.ack("t", "g1", &[id]);
    assert_eq!(q.s.len(b"t"), 1);
    q.ack("t", "g2", &[id]);
    assert_eq!(q.s.len(b"t"), 0);
    let info = q.s.info(b"t").expect("topic");
    assert_eq!((info.first_id, info.last_id), (None, Some(id)));
    assert_eq!(info.groups[0].acked, 1);
}

#[test]
fn visibility_timeout_redelivers_to_another_consumer() {
    let mut q = Q::new();
    q.push("t", "m");
    assert_eq!(q.read("t", "g", "c1", 1)[0].1, 1);
    assert!(
        q.at(29_999).read("t", "g", "c2", 1).is_empty(),
        "still invisible"
    );
    let again = q.at(1).read("t", "g", "c2", 1);
    assert_eq!((again[0].0.as_str(), again[0].1), ("m", 2));
    let pending = q.s.pending(b"t", b"g", None, q.now + 7);
    assert_eq!(
        (
            &pending[0].consumer[..],
            pending[0].deliveries,
            pending[0].idle_ms
        ),
        (&b"c2"[..], 2, 7)
    );
}

#[test]
fn nack_backs_off_exponentially_up_to_the_cap() {
    let mut q = Q::with(QueueConfig {
        max_deliveries: 0,
        ..QueueConfig::default()
    });
    q.push("t", "m");
    let mut waits = vec![];
    for _ in 0..8 {
        let got = q.read("t", "g", "c", 1);
        assert_eq!(q.nack("t", "g", got[0].2, None), QueueReply::Flag(true));
        let mut waited = 0;
        while q.read("t", "g", "c", 1).is_empty() {
            q.at(500);
            waited += 500;
        }
        waits.push(waited);
        // Give the message back at once for the next round.
        let id = got[0].2;
        assert_eq!(q.nack("t", "g", id, Some(0)), QueueReply::Flag(true));
    }
    // Deliveries 1, 3, 5, ... when nacked with the default delay.
    assert_eq!(
        waits,
        [1_000, 4_000, 16_000, 60_000, 60_000, 60_000, 60_000, 60_000]
    );
    assert_eq!(
        q.nack("t", "g", MsgId::new(1, 0), None),
        QueueReply::Flag(false)
    );
}

#[test]
fn extend_keeps_a_message_invisible_longer() {
    let mut q = Q::new();
    q.push("t", "m");
    let id = q.read("t", "g", "c", 1)[0].2;
    q.at(20_000);
    let extend = |q: &mut Q, ms| {
        q.op(QueueOp::Extend {
            topic: b("t"),
            group: b("g"),
            id,
            ms,
        })
        .reply
    };
    assert_eq!(extend(&mut q, 5_000), QueueReply::Flag(true));
    assert!(
        q.at(14_999).read("t", "g", "c", 1).is_empty(),
        "invisible until 35000"
    );
    assert_eq!(q.at(1).read("t", "g", "c", 1).len(), 1);
    q.ack("t", "g", &[id]);
    assert_eq!(
        extend(&mut q, 5_000),
        QueueReply::Flag(false),
        "not pending"
    );
}

#[test]
fn delayed_messages_wait_and_do_not_block_later_ones() {
    let mut q = Q::new();
    assert!(matches!(
        q.push_with("t", "late", None, 1_000),
        QueueReply::Pushed { .. }
    ));
    q.push("t", "now");
    assert_eq!(q.payloads("t", "g", 10), ["now"]);
    assert_eq!(
        q.s.info(b"t").expect("t").groups[0].lag,
        1,
        "the delayed one is not delivered yet"
    );
    assert!(q.at(999).payloads("t", "g", 10).is_empty());
    assert_eq!(q.at(1).payloads("t", "g", 10), ["late"]);
}

#[test]
fn exhausted_messages_move_to_the_dead_letter_topic_and_redrive_back() {
    let mut q = Q::with(QueueConfig {
        max_deliveries: 2,
        ..QueueConfig::default()
    });
    q.push("t", "bad");
    q.push("t", "good");
    assert_eq!(q.read("t", "g", "c", 1)[0].1, 1);
    assert_eq!(
        q.at(30_000).read("t", "g", "c", 1)[0].1,
        2,
        "redelivered ahead of newer ones"
    );
    assert_eq!(q.s.next_deadline(), Some(q.now + 30_000));
    let tick = q.at(30_000).op(QueueOp::Tick);
    assert_eq!(
        tick.reply,
        QueueReply::Ticked {
            dead_lettered: 1,
            woken: 0
        }
    );
    assert_eq!((q.s.len(b"t"), q.s.len(b"t:dlq")), (1, 1));
    assert_eq!(q.s.info(b"t").expect("t").dlq_length, 1);
    assert_eq!(
        q.payloads("t:dlq", "ops", 10),
        ["bad"],
        "a topic like any other"
    );
    let redrive = q.op(QueueOp::Redrive {
        topic: b("t"),
        count: None,
    });
    assert_eq!(redrive.reply, QueueReply::Count(1));
    assert_eq!(q.s.len(b"t:dlq"), 0);
    let got = q.read("t", "g", "c", 10);
    assert_eq!(
        got.iter().map(|m| (m.0.as_str(), m.1)).collect::<Vec<_>>(),
        [("good", 1), ("bad", 1)]
    );
}

#[test]
fn nack_of_an_exhausted_message_dead_letters_it_at_once() {
    let mut q = Q::with(QueueConfig {
        max_deliveries: 1,
        ..QueueConfig::default()
    });
    q.push("t", "m");
    let id = q.read("t", "g", "c", 1)[0].2;
    assert_eq!(q.nack("t", "g", id, None), QueueReply::Flag(true));
    assert_eq!((q.s.len(b"t"), q.s.len(b"t:dlq")), (0, 1));
}

#[test]
fn dedup_answers_the_first_id_inside_the_window_only() {
    let mut q = Q::new();
    let first = q.push_with("t", "a", Some("k"), 0);
    let QueueReply::Pushed {
        id,
        duplicate: false,
    } = first
    else {
        panic!("{first:?}");
    };
    assert_eq!(
        q.at(119_999).push_with("t", "b", Some("k"), 0),
        QueueReply::Pushed {
            id,
            duplicate: true
        }
    );
    assert_eq!(q.s.len(b"t"), 1, "nothing added");
    assert!(matches!(
        q.at(1).push_with("t", "c", Some("k"), 0),
        QueueReply::Pushed {
            duplicate: false,
            ..
        }
    ));
    assert!(matches!(
        q.push_with("other", "c", Some("k"), 0),
        QueueReply::Pushed {
            duplicate: false,
            ..
        }
    ));
}

#[test]
fn max_len_refuses_pushes_without_dropping() {
    let mut q = Q::with(QueueConfig {
        max_len: 2,
        ..QueueConfig::default()
    });
    q.push("t", "1");
    q.push("t", "2");
    let refused = q.push_with("t", "3", None, 0);
    assert_eq!(
        refused,
        QueueReply::Error(QueueError::TopicFull { max_len: 2 })
    );
    assert_eq!(
        QueueError::TopicFull { max_len: 2 }
            .to_string()
            .split(' ')
            .next(),
        Some("OOM")
    );
    assert_eq!(q.s.len(b"t"), 2);
}

#[test]
fn groups_start_where_asked_and_are_created_once() {
    let mut q = Q::new();
    let first = q.push("t", "old");
    q.push("t", "mid");
    let create = |q: &mut Q, g: &str, from| {
        q.op(QueueOp::GroupCreate {
            topic: b("t"),
            group: b(g),
            from,
        })
        .reply
    };
    assert_eq!(create(&mut q, "latest", StartFrom::Latest), QueueReply::Ok);
    assert_eq!(
        create(&mut q, "after", StartFrom::After(first)),
        QueueReply::Ok
    );
    assert_eq!(
        create(&mut q, "after", StartFrom::Oldest),
        QueueReply::Error(QueueError::BusyGroup)
    );
    q.push("t", "new");
    assert_eq!(q.payloads("t", "latest", 10), ["new"]);
    assert_eq!(q.payloads("t", "after", 10), ["mid", "new"]);
    assert_eq!(q.payloads("t", "first-read", 10), ["old", "mid", "new"]);
    let destroy = |q: &mut Q| {
        q.op(QueueOp::GroupDestroy {
            topic: b("t"),
            group: b("after"),
        })
        .reply
    };
    assert_eq!(destroy(&mut q), QueueReply::Flag(true));
    assert_eq!(destroy(&mut q), QueueReply::Flag(false));
}

/// Found by the trace property test: a blocked read with `VISIBILITY 0` waiting beside a
/// delivered message must not take that message's pending state away — it is still
/// pending to its consumer and its ack counts.
#[test]
fn a_waiting_read_with_zero_visibility_leaves_pending_messages_pending() {
    let mut q = Q::new();
    q.push_with("t", "m", None, 0);
    let got = q.read("t", "g", "c", 1);
    let id = got[0].2;
    q.at(100);
    assert!(q.read("t", "g", "c", 1).is_empty());
    q.rid += 1;
    let rid = q.rid;
    let waiting = q.op(QueueOp::Read {
        topic: b("t"),
        group: b("g"),
        consumer: b("c"),
        count: 1,
        visibility_ms: Some(0),
        block_ms: Some(0),
        rid,
        origin: 1,
    });
    assert_eq!(waiting.reply, QueueReply::Waiting);
    q.at(100);
    assert_eq!(q.ack("t", "g", &[id]), QueueReply::Count(1));
}
