//! Scenario tests of [`QueueState`], continued: queued reads and how they are answered,
//! the withdrawals a node proposes, deletion, `Q.TOPICS`, the clock, snapshots.

use super::scenarios::{b, Q};
use super::*;

#[test]
fn a_blocked_read_is_answered_by_the_push_that_feeds_it_in_fifo_order() {
    let mut q = Q::new();
    let first = q.read_op("t", "g", "c1", 5, Some(0));
    assert_eq!(first.reply, QueueReply::Waiting);
    let (rid1, _) = (q.rid, q.read_op("t", "g", "c2", 1, Some(1_000)));
    let rid2 = q.rid;
    let pushed = q.op(QueueOp::Push {
        topic: b("t"),
        payload: b("m"),
        dedup: None,
        delay_ms: 0,
    });
    assert_eq!(pushed.woken.len(), 1);
    let w = &pushed.woken[0];
    assert_eq!((w.rid, w.origin, &w.group[..]), (rid1, 1, &b"g"[..]));
    assert!(matches!(&w.outcome, WakeOutcome::Messages(m) if m.len() == 1));
    // The second waiter's deadline passes before anything comes: dropped as timed out.
    let late = q.at(1_000).op(QueueOp::Push {
        topic: b("t"),
        payload: b("n"),
        dedup: None,
        delay_ms: 0,
    });
    assert_eq!(late.woken[0].rid, rid2);
    assert_eq!(late.woken[0].outcome, WakeOutcome::TimedOut);
    assert_eq!(q.payloads("t", "g", 5), ["n"]);
}

#[test]
fn a_blocked_read_is_woken_by_a_tick_when_a_visibility_timeout_runs_out() {
    let mut q = Q::new();
    q.push("t", "m");
    q.read("t", "g", "c1", 1);
    assert_eq!(
        q.read_op("t", "g", "c2", 1, Some(0)).reply,
        QueueReply::Waiting
    );
    let due = q.s.next_deadline().expect("a deadline");
    q.now = due;
    let tick = q.op(QueueOp::Tick);
    assert_eq!(tick.woken.len(), 1);
    assert!(matches!(&tick.woken[0].outcome, WakeOutcome::Messages(m) if m[0].deliveries == 2));
}

#[test]
fn cancel_unread_and_cancel_origin_withdraw_what_a_node_asked() {
    let mut q = Q::new();
    q.read_op("t", "g", "c", 1, Some(0));
    let rid = q.rid;
    let cancel = |q: &mut Q, rid| {
        q.op(QueueOp::Cancel {
            topic: b("t"),
            group: b("g"),
            rid,
        })
        .reply
    };
    assert_eq!(cancel(&mut q, rid), QueueReply::Flag(true));
    assert_eq!(cancel(&mut q, rid), QueueReply::Flag(false));

    let id = q.push("t", "m");
    q.read("t", "g", "c", 1);
    let rid = q.rid;
    let unread = q.op(QueueOp::Unread {
        topic: b("t"),
        group: b("g"),
        rid,
        ids: vec![id, id],
    });
    assert_eq!(unread.reply, QueueReply::Count(1));
    assert!(
        q.s.pending(b"t", b"g", None, q.now).is_empty(),
        "back to never delivered"
    );
    assert_eq!(
        q.read("t", "g", "c", 1)[0].1,
        1,
        "counts as a first delivery again"
    );

    q.read_op("u", "g", "c", 1, Some(0));
    q.read_op("u", "h", "c", 1, Some(0));
    assert_eq!(
        q.op(QueueOp::CancelOrigin { origin: 1 }).reply,
        QueueReply::Count(2)
    );
    assert_eq!(q.s.stats().waiting_reads, 0);
}

#[test]
fn deleting_a_topic_answers_its_queued_reads_and_keeps_its_dead_letters() {
    let mut q = Q::with(QueueConfig {
        max_deliveries: 1,
        ..QueueConfig::default()
    });
    q.push("t", "m");
    let id = q.read("t", "g", "c", 1)[0].2;
    q.nack("t", "g", id, None);
    q.read_op("t", "g", "c", 1, Some(0));
    let del = q.op(QueueOp::Del { topic: b("t") });
    assert_eq!(del.reply, QueueReply::Flag(true));
    assert_eq!(del.woken[0].outcome, WakeOutcome::Gone);
    assert_eq!(
        q.op(QueueOp::Del { topic: b("t") }).reply,
        QueueReply::Flag(false)
    );
    assert_eq!(q.s.topics(None), [b("t:dlq")]);
    assert_eq!(
        q.s.query(&QueueQuery::Info { topic: b("t") }, q.now),
        QueueReply::Error(QueueError::NoSuchTopic)
    );
}

#[test]
fn topics_match_a_glob() {
    let mut q = Q::new();
    for t in ["orders", "orders:dlq", "mail", "o"] {
        q.push(t, "x");
    }
    let names = |q: &Q, p: &str| {
        q.s.topics(Some(p.as_bytes()))
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&q, "o*"), ["o", "orders", "orders:dlq"]);
    assert_eq!(names(&q, "*:dlq"), ["orders:dlq"]);
    assert_eq!(names(&q, "[m]ail"), ["mail"]);
    assert_eq!(q.s.topics(None).len(), 4);
}

#[test]
fn the_clock_never_runs_backwards() {
    let mut q = Q::new();
    let a = q.push("t", "a");
    q.now -= 10_000; // a new leader with a slower clock
    let c = q.push("t", "b");
    assert!(c > a);
    assert_eq!(q.s.clock(), a.ms);
}

#[test]
fn snapshots_round_trip_and_replay_identically() {
    let mut q = Q::with(QueueConfig {
        max_deliveries: 2,
        ..QueueConfig::default()
    });
    for i in 0..20 {
        q.push_with(
            if i % 2 == 0 { "a" } else { "b" },
            &format!("m{i}"),
            Some(&format!("k{}", i % 5)),
            i * 100,
        );
    }
    q.read("a", "g", "c", 3);
    q.read_op("b", "g", "c", 100, Some(0));
    q.at(40_000).read("a", "h", "c", 2);
    let bin = postcard::to_stdvec(&q.s).expect("encode");
    let mut copy: QueueState = postcard::from_bytes(&bin).expect("decode");
    assert_eq!(copy, q.s);
    for op in [
        QueueOp::Tick,
        QueueOp::Push {
            topic: b("b"),
            payload: b("z"),
            dedup: Some(b("k1")),
            delay_ms: 0,
        },
        QueueOp::Read {
            topic: b("a"),
            group: b("g"),
            consumer: b("c"),
            count: 10,
            visibility_ms: None,
            block_ms: None,
            rid: 9,
            origin: 2,
        },
    ] {
        let req = QueueRequest {
            now_ms: q.now + 31_000,
            op,
        };
        assert_eq!(copy.apply(&req), q.s.apply(&req));
    }
    assert_eq!(copy, q.s);
}
