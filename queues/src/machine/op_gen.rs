//! Random operation sequences for the property tests (tests only): a small world of
//! topics, groups and consumers, parameters small enough that timeouts, backoff caps,
//! dead letters, dedup expiry and `-OOM` all happen within a few dozen steps, and
//! message ids / request ids picked among those seen so far when a step runs.

use bytes::Bytes;
use proptest::prelude::*;

use super::*;

pub(super) const TOPICS: [&str; 3] = ["a", "b", "a:dlq"];
pub(super) const GROUPS: [&str; 2] = ["g", "h"];
pub(super) const CONSUMERS: [&str; 3] = ["c1", "c2", "c3"];

/// Small parameters so that timeouts, backoff caps, dead letters, dedup expiry and
/// `-OOM` all happen within a few dozen steps.
pub(super) fn test_config() -> QueueConfig {
    QueueConfig {
        visibility_ms: 100,
        backoff_base_ms: 20,
        backoff_cap_ms: 120,
        max_deliveries: 3,
        dedup_window_ms: 300,
        max_len: 10,
    }
}

pub(super) fn name(s: &str) -> Name {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A generated operation; ids and request ids are picked among those seen so far
/// when the step runs (see [`Ids`]).
#[derive(Clone, Debug)]
pub(super) enum Gen {
    Push {
        t: usize,
        dedup: Option<u8>,
        delay: u64,
    },
    Read {
        t: usize,
        g: usize,
        c: usize,
        count: u64,
        vis: Option<u64>,
        block: Option<u64>,
    },
    Ack {
        t: usize,
        g: usize,
        picks: Vec<usize>,
    },
    Nack {
        t: usize,
        g: usize,
        pick: usize,
        delay: Option<u64>,
    },
    Extend {
        t: usize,
        g: usize,
        pick: usize,
        ms: u64,
    },
    Unread {
        read: usize,
    },
    Cancel {
        read: usize,
    },
    CancelOrigin {
        origin: u64,
    },
    Redrive {
        t: usize,
        count: Option<u64>,
    },
    GroupCreate {
        t: usize,
        g: usize,
        from: u8,
        pick: usize,
    },
    GroupDestroy {
        t: usize,
        g: usize,
    },
    Del {
        t: usize,
    },
    Tick,
    Configure {
        max_deliveries: u32,
    },
}

fn gen() -> impl Strategy<Value = Gen> {
    let t = 0..TOPICS.len();
    let g = 0..GROUPS.len();
    let pick = || 0..64usize;
    prop_oneof![
        10 => (0..2usize, prop::option::weighted(0.5, 0..3u8), prop::sample::select(vec![0u64, 0, 0, 50, 250]))
            .prop_map(|(t, dedup, delay)| Gen::Push { t, dedup, delay }),
        10 => (t.clone(), g.clone(), 0..CONSUMERS.len(), 1..4u64,
               prop::option::weighted(0.3, prop::sample::select(vec![0u64, 30, 400])),
               prop::option::weighted(0.3, prop::sample::select(vec![0u64, 80, 500])))
            .prop_map(|(t, g, c, count, vis, block)| Gen::Read { t, g, c, count, vis, block }),
        6 => (t.clone(), g.clone(), prop::collection::vec(pick(), 1..4))
            .prop_map(|(t, g, picks)| Gen::Ack { t, g, picks }),
        3 => (t.clone(), g.clone(), pick(), prop::option::of(prop::sample::select(vec![0u64, 40])))
            .prop_map(|(t, g, pick, delay)| Gen::Nack { t, g, pick, delay }),
        1 => (t.clone(), g.clone(), pick(), 0..200u64)
            .prop_map(|(t, g, pick, ms)| Gen::Extend { t, g, pick, ms }),
        1 => pick().prop_map(|read| Gen::Unread { read }),
        1 => pick().prop_map(|read| Gen::Cancel { read }),
        1 => (1..3u64).prop_map(|origin| Gen::CancelOrigin { origin }),
        2 => (0..2usize, prop::option::of(0..3u64)).prop_map(|(t, count)| Gen::Redrive { t, count }),
        1 => (t.clone(), g.clone(), 0..3u8, pick())
            .prop_map(|(t, g, from, pick)| Gen::GroupCreate { t, g, from, pick }),
        1 => (t.clone(), g.clone()).prop_map(|(t, g)| Gen::GroupDestroy { t, g }),
        1 => t.prop_map(|t| Gen::Del { t }),
        4 => Just(Gen::Tick),
        1 => (1..5u32).prop_map(|max_deliveries| Gen::Configure { max_deliveries }),
    ]
}

/// `(clock advance in ms, operation)`.
pub(super) type Step = (u64, Gen);

pub(super) fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    // Exact steps of the visibility (100) and the dedup window (300) hit the
    // boundaries of both.
    let boundaries = prop::sample::select(vec![99u64, 100, 101, 299, 300, 301]);
    let advance = prop_oneof![
        4 => Just(0u64),
        6 => 0..30u64,
        3 => 0..200u64,
        2 => boundaries,
        1 => 500..1500u64,
    ];
    prop::collection::vec((advance, gen()), 1..max)
}

/// A recorded read: where, its request id and what it got.
#[derive(Clone, Debug)]
pub(super) struct ReadRecord {
    pub(super) topic: Name,
    pub(super) group: Name,
    pub(super) rid: RequestId,
    pub(super) ids: Vec<MsgId>,
}

/// Ids and reads seen so far, from which generated picks are resolved.
#[derive(Default)]
pub(super) struct Ids {
    pub(super) by_topic: [Vec<MsgId>; 3],
    pub(super) reads: Vec<ReadRecord>,
    /// Reads answered `Waiting`.
    pub(super) blocked: Vec<ReadRecord>,
    pub(super) next_rid: u64,
    pub(super) next_payload: u64,
    /// Whether `Gen::Configure` changes parameters (otherwise it is a `Tick`).
    pub(super) configure: bool,
}

impl Ids {
    fn pick(&self, t: usize, pick: usize) -> MsgId {
        let ids = &self.by_topic[t];
        if ids.is_empty() || pick % 7 == 6 {
            MsgId::new(1, pick as u64) // unknown or long gone
        } else if pick.is_multiple_of(2) {
            // Mostly recent ones: they are likelier to be pending.
            ids[ids.len() - 1 - (pick / 2) % ids.len().min(6)]
        } else {
            ids[pick % ids.len()]
        }
    }

    /// Turns a generated operation into a request.
    pub(super) fn resolve(&mut self, gen: &Gen) -> QueueOp {
        let tn = |t: usize| name(TOPICS[t]);
        let gn = |g: usize| name(GROUPS[g]);
        match gen {
            Gen::Push { t, dedup, delay } => {
                self.next_payload += 1;
                QueueOp::Push {
                    topic: tn(*t),
                    payload: Bytes::from(format!("p{}", self.next_payload)),
                    dedup: dedup.map(|d| Bytes::from(format!("d{d}"))),
                    delay_ms: *delay,
                }
            }
            Gen::Read {
                t,
                g,
                c,
                count,
                vis,
                block,
            } => {
                self.next_rid += 1;
                QueueOp::Read {
                    topic: tn(*t),
                    group: gn(*g),
                    consumer: name(CONSUMERS[*c]),
                    count: *count,
                    visibility_ms: *vis,
                    block_ms: *block,
                    rid: self.next_rid,
                    origin: 1 + self.next_rid % 2,
                }
            }
            Gen::Ack { t, g, picks } => QueueOp::Ack {
                topic: tn(*t),
                group: gn(*g),
                ids: picks.iter().map(|p| self.pick(*t, *p)).collect(),
            },
            Gen::Nack { t, g, pick, delay } => QueueOp::Nack {
                topic: tn(*t),
                group: gn(*g),
                id: self.pick(*t, *pick),
                delay_ms: *delay,
            },
            Gen::Extend { t, g, pick, ms } => QueueOp::Extend {
                topic: tn(*t),
                group: gn(*g),
                id: self.pick(*t, *pick),
                ms: *ms,
            },
            Gen::Unread { read } | Gen::Cancel { read } => {
                // Cancel withdraws queued reads; Unread gives back deliveries.
                let from = match gen {
                    Gen::Cancel { .. } => &self.blocked,
                    _ => &self.reads,
                };
                let r = from.get(read % from.len().max(1)).cloned();
                let r = r.unwrap_or(ReadRecord {
                    topic: tn(0),
                    group: gn(0),
                    rid: 999,
                    ids: vec![],
                });
                match gen {
                    Gen::Unread { .. } => QueueOp::Unread {
                        topic: r.topic,
                        group: r.group,
                        rid: r.rid,
                        ids: r.ids,
                    },
                    _ => QueueOp::Cancel {
                        topic: r.topic,
                        group: r.group,
                        rid: r.rid,
                    },
                }
            }
            Gen::CancelOrigin { origin } => QueueOp::CancelOrigin { origin: *origin },
            Gen::Redrive { t, count } => QueueOp::Redrive {
                topic: tn(*t),
                count: *count,
            },
            Gen::GroupCreate { t, g, from, pick } => QueueOp::GroupCreate {
                topic: tn(*t),
                group: gn(*g),
                from: match from {
                    0 => StartFrom::Oldest,
                    1 => StartFrom::Latest,
                    _ => StartFrom::After(self.pick(*t, *pick)),
                },
            },
            Gen::GroupDestroy { t, g } => QueueOp::GroupDestroy {
                topic: tn(*t),
                group: gn(*g),
            },
            Gen::Del { t } => QueueOp::Del { topic: tn(*t) },
            Gen::Tick => QueueOp::Tick,
            Gen::Configure { .. } if !self.configure => QueueOp::Tick,
            Gen::Configure { max_deliveries } => QueueOp::Configure(QueueConfig {
                max_deliveries: *max_deliveries,
                ..test_config()
            }),
        }
    }

    /// Records ids and reads from an applied request.
    pub(super) fn record(&mut self, op: &QueueOp, applied: &QueueApplied) {
        match (op, &applied.reply) {
            (QueueOp::Push { topic, .. }, QueueReply::Pushed { id, .. }) => {
                if let Some(t) = topic_index(topic) {
                    self.by_topic[t].push(*id);
                }
            }
            (
                QueueOp::Read {
                    topic, group, rid, ..
                },
                QueueReply::Messages(m),
            ) => self.note(topic, group, *rid, m),
            (
                QueueOp::Read {
                    topic, group, rid, ..
                },
                QueueReply::Waiting,
            ) => self.blocked.push(ReadRecord {
                topic: topic.clone(),
                group: group.clone(),
                rid: *rid,
                ids: vec![],
            }),
            _ => {}
        }
        for w in &applied.woken {
            if let WakeOutcome::Messages(m) = &w.outcome {
                self.note(&w.topic, &w.group, w.rid, m);
            }
        }
    }

    fn note(&mut self, topic: &Name, group: &Name, rid: RequestId, msgs: &[Msg]) {
        if let Some(t) = topic_index(topic) {
            self.by_topic[t].extend(msgs.iter().map(|m| m.id));
        }
        self.reads.push(ReadRecord {
            topic: topic.clone(),
            group: group.clone(),
            rid,
            ids: msgs.iter().map(|m| m.id).collect(),
        });
    }
}

/// Index of a generated topic name.
pub(super) fn topic_index(topic: &[u8]) -> Option<usize> {
    TOPICS.iter().position(|t| t.as_bytes() == topic)
}
