//! Property tests, part 1: random operation sequences (with time advancing) applied to
//! both the [`QueueState`] and the naive reference [`Model`]; after every step the
//! replies, the answered queued reads, `Q.LEN` / `Q.INFO` / `Q.PENDING` / `Q.TOPICS`,
//! the stats and the machine's internal consistency must agree, and a queued read
//! waiting on an expiry must be covered by [`QueueState::next_deadline`]. Snapshots
//! (postcard and JSON) are taken at random points, must equal the state, and the run
//! continues from the restored copy.
//!
//! The operation generator is in `op_gen`.

use proptest::prelude::*;

use super::op_gen::{steps, test_config, Ids, Step, GROUPS};
use super::reference::Model;
use super::*;

/// The machine and the model side by side.
struct Harness {
    state: QueueState,
    model: Model,
    ids: Ids,
    now: u64,
    steps: u64,
    coverage: Coverage,
}

/// How often the interesting outcomes happened (so the generator is seen to reach
/// them).
#[derive(Default, Debug)]
struct Coverage {
    duplicates: u64,
    full: u64,
    waiting: u64,
    woken_messages: u64,
    timed_out: u64,
    gone: u64,
    dead_letters: u64,
    redriven: u64,
    unread: u64,
    cancelled: u64,
    redeliveries: u64,
    nacked: u64,
    acked: u64,
}

impl Coverage {
    fn note(&mut self, op: &QueueOp, applied: &QueueApplied) {
        match (op, &applied.reply) {
            (
                _,
                QueueReply::Pushed {
                    duplicate: true, ..
                },
            ) => self.duplicates += 1,
            (_, QueueReply::Error(QueueError::TopicFull { .. })) => self.full += 1,
            (_, QueueReply::Waiting) => self.waiting += 1,
            (QueueOp::Redrive { .. }, QueueReply::Count(n)) => self.redriven += n,
            (QueueOp::Unread { .. }, QueueReply::Count(n)) => self.unread += n,
            (QueueOp::Ack { .. }, QueueReply::Count(n)) => self.acked += n,
            (QueueOp::Cancel { .. }, QueueReply::Flag(true)) => self.cancelled += 1,
            (QueueOp::Nack { .. }, QueueReply::Flag(true)) => self.nacked += 1,
            (_, QueueReply::Messages(m)) => {
                self.redeliveries += m.iter().filter(|m| m.deliveries > 1).count() as u64
            }
            _ => {}
        }
        for w in &applied.woken {
            match w.outcome {
                WakeOutcome::Messages(_) => self.woken_messages += 1,
                WakeOutcome::TimedOut => self.timed_out += 1,
                WakeOutcome::Gone => self.gone += 1,
            }
        }
    }
}

/// Topics whose observable state is compared (dead-letter chains included).
const OBSERVED: [&str; 5] = ["a", "b", "a:dlq", "b:dlq", "a:dlq:dlq"];

impl Harness {
    fn new(configure: bool) -> Self {
        Harness {
            state: QueueState::new(test_config()),
            model: Model::new(test_config()),
            ids: Ids {
                configure,
                ..Ids::default()
            },
            now: 1_000_000,
            steps: 0,
            coverage: Coverage::default(),
        }
    }

    fn step(&mut self, (advance, gen): &Step) {
        self.now += advance;
        self.steps += 1;
        let op = self.ids.resolve(gen);
        let req = QueueRequest {
            now_ms: self.now,
            op: op.clone(),
        };
        let got = self.state.apply(&req);
        let want = self.model.apply(&req);
        assert_eq!(got, want, "step {} {op:?}", self.steps);
        self.ids.record(&op, &got);
        self.coverage.note(&op, &got);
        self.state.assert_consistent();
        self.compare();
        if self.steps % 7 == 3 {
            self.restore_from_snapshot();
        }
    }

    fn compare(&self) {
        for t in OBSERVED {
            assert_eq!(
                self.state.len(t.as_bytes()),
                self.model.len(t.as_bytes()),
                "len {t}"
            );
            assert_eq!(
                self.state.info(t.as_bytes()),
                self.model.info(t.as_bytes()),
                "info {t}"
            );
            for g in GROUPS {
                assert_eq!(
                    self.state
                        .pending(t.as_bytes(), g.as_bytes(), None, self.now + 5),
                    self.model.pending(t.as_bytes(), g.as_bytes(), self.now + 5),
                    "pending {t} {g}"
                );
            }
        }
        assert_eq!(self.state.stats(), self.model.stats(), "stats");
        let names: Vec<Name> = self.model.topics.keys().cloned().collect();
        assert_eq!(self.state.topics(None), names);
        // A queued read waiting on an expiry or a delay gets a tick in time.
        if let Some(wake) = self.model.wake_deadline() {
            let next = self.state.next_deadline();
            assert!(
                next.is_some_and(|n| n <= wake),
                "next_deadline {next:?}, a queued read needs a tick at {wake}"
            );
        }
    }

    /// Snapshot round trip in both formats; the run continues on the restored copy,
    /// so rebuilt indexes must behave exactly like the originals.
    fn restore_from_snapshot(&mut self) {
        let bin = postcard::to_stdvec(&self.state).expect("postcard");
        let back: QueueState = postcard::from_bytes(&bin).expect("postcard back");
        assert_eq!(back, self.state);
        back.assert_consistent();
        let json = serde_json::to_string(&self.state).expect("json");
        let from_json: QueueState = serde_json::from_str(&json).expect("json back");
        assert_eq!(from_json, self.state);
        assert_eq!(back.next_deadline(), self.state.next_deadline());
        self.state = back;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn machine_agrees_with_the_reference_model(steps in steps(120)) {
        let mut h = Harness::new(false);
        for step in &steps {
            h.step(step);
        }
    }

    #[test]
    fn machine_agrees_with_the_model_when_parameters_change(steps in steps(120)) {
        let mut h = Harness::new(true);
        for step in &steps {
            h.step(step);
        }
    }
}

/// The generator reaches every interesting outcome (a fixed-seed run).
#[test]
fn generator_reaches_the_interesting_cases() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let mut total = Coverage::default();
    for _ in 0..60 {
        let steps = steps(120).new_tree(&mut runner).expect("steps").current();
        let mut h = Harness::new(false);
        for step in &steps {
            h.step(step);
        }
        let c = h.coverage;
        total.duplicates += c.duplicates;
        total.full += c.full;
        total.waiting += c.waiting;
        total.woken_messages += c.woken_messages;
        total.timed_out += c.timed_out;
        total.gone += c.gone;
        total.dead_letters += h.state.stats().dead_letters;
        total.redriven += c.redriven;
        total.unread += c.unread;
        total.cancelled += c.cancelled;
        total.redeliveries += c.redeliveries;
        total.nacked += c.nacked;
        total.acked += c.acked;
    }
    println!("{total:?}");
    let Coverage {
        duplicates,
        full,
        waiting,
        woken_messages,
        timed_out,
        gone,
        dead_letters,
        redriven,
        unread,
        cancelled,
        redeliveries,
        nacked,
        acked,
    } = total;
    for (what, n) in [
        ("duplicates", duplicates),
        ("full", full),
        ("waiting", waiting),
        ("woken_messages", woken_messages),
        ("timed_out", timed_out),
        ("gone", gone),
        ("dead_letters", dead_letters),
        ("redriven", redriven),
        ("unread", unread),
        ("cancelled", cancelled),
        ("redeliveries", redeliveries),
        ("nacked", nacked),
        ("acked", acked),
    ] {
        assert!(n >= 3, "{what} reached only {n} times: {total:?}");
    }
}
