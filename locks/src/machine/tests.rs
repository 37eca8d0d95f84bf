//! Focused unit tests of the lock table, one rule at a time.
//!
//! Why this file is long: one rule per test.

use super::*;

use LockMode::{Exclusive, Shared};

/// A table plus a log index and a leader clock that tests move by hand.
struct Fixture {
    table: LockTable,
    index: u64,
    now: u64,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            table: LockTable::new(),
            index: 0,
            now: 1_000_000,
        }
    }

    fn run(&mut self, op: LockOp) -> LockApplied {
        self.index += 1;
        let applied = self.table.apply(
            self.index,
            &LockRequest {
                now_ms: self.now,
                op,
            },
        );
        self.table.assert_consistent();
        applied
    }

    fn acquire(&mut self, r: &str, o: &str, mode: LockMode, wait: Option<u64>) -> LockReply {
        self.acquire_ttl(r, o, mode, 10_000, wait)
    }

    fn acquire_ttl(
        &mut self,
        r: &str,
        o: &str,
        mode: LockMode,
        ttl_ms: u64,
        wait_ms: Option<u64>,
    ) -> LockReply {
        let applied = self.run(LockOp::Acquire {
            resource: r.into(),
            owner: o.into(),
            mode,
            ttl_ms,
            wait_ms,
            rid: 0,
        });
        assert!(applied.grants.is_empty(), "acquire never grants others");
        applied.reply
    }

    fn release(&mut self, r: &str, o: &str) -> LockApplied {
        self.run(LockOp::Release {
            resource: r.into(),
            owner: o.into(),
        })
    }

    fn upgrade(&mut self, r: &str, o: &str, wait_ms: Option<u64>) -> LockApplied {
        self.run(LockOp::Upgrade {
            resource: r.into(),
            owner: o.into(),
            wait_ms,
            rid: 0,
        })
    }

    fn downgrade(&mut self, r: &str, o: &str) -> LockApplied {
        self.run(LockOp::Downgrade {
            resource: r.into(),
            owner: o.into(),
        })
    }

    fn cancel(&mut self, r: &str, o: &str) -> LockApplied {
        self.run(LockOp::Cancel {
            resource: r.into(),
            owner: o.into(),
            rid: 0,
            undo: false,
            upgrade: false,
        })
    }

    fn token(&mut self, r: &str, o: &str, mode: LockMode) -> u64 {
        match self.acquire(r, o, mode, None) {
            LockReply::Granted { token } => token,
            other => panic!("expected a grant, got {other:?}"),
        }
    }

    fn info(&self, r: &str) -> LockInfo {
        self.table.info(r.as_bytes(), self.now)
    }

    fn holders(&self, r: &str) -> Vec<String> {
        self.info(r)
            .holders
            .iter()
            .map(|h| String::from_utf8_lossy(&h.owner).into_owned())
            .collect()
    }

    fn waiters(&self, r: &str) -> Vec<String> {
        self.info(r)
            .waiters
            .iter()
            .map(|w| String::from_utf8_lossy(&w.owner).into_owned())
            .collect()
    }
}

fn granted(owners: &[(&str, &str, LockMode)], grants: &[Grant]) {
    let got: Vec<(String, String, LockMode)> = grants
        .iter()
        .map(|g| {
            (
                String::from_utf8_lossy(&g.resource).into_owned(),
                String::from_utf8_lossy(&g.owner).into_owned(),
                g.mode,
            )
        })
        .collect();
    let want: Vec<(String, String, LockMode)> = owners
        .iter()
        .map(|(r, o, m)| (r.to_string(), o.to_string(), *m))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn grant_token_is_the_log_index_and_reacquire_renews() {
    let mut f = Fixture::new();
    f.index = 41;
    assert_eq!(
        f.acquire_ttl("r", "a", Exclusive, 1_000, None),
        LockReply::Granted { token: 42 }
    );
    assert!(f.table.check(b"r", 42));
    assert!(!f.table.check(b"r", 41));
    f.now += 600;
    assert_eq!(f.info("r").holders[0].ttl_ms, 400);
    // A retry in the same mode: same token, fresh lease with the new TTL.
    assert_eq!(
        f.acquire_ttl("r", "a", Exclusive, 5_000, None),
        LockReply::Granted { token: 42 }
    );
    assert_eq!(f.info("r").holders[0].ttl_ms, 5_000);
    assert_eq!(f.table.next_deadline(), Some(f.now + 5_000));
    assert_eq!(f.table.stats().grants, 1, "re-acquires are not grants");
    assert_eq!(f.info("r").mode, Some(Exclusive));
}

#[test]
fn other_mode_than_held_is_an_error_that_changes_nothing() {
    let mut f = Fixture::new();
    f.token("s", "a", Shared);
    f.token("x", "a", Exclusive);
    let before = f.table.clone();
    match f.acquire("s", "a", Exclusive, Some(0)) {
        LockReply::Error(e) => {
            assert!(e.starts_with("ERR "), "{e}");
            assert!(e.contains("LOCK.UPGRADE"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    match f.acquire("x", "a", Shared, None) {
        LockReply::Error(e) => assert!(e.contains("LOCK.DOWNGRADE"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.table, before);
}

#[test]
fn invalid_ttl_is_refused() {
    let mut f = Fixture::new();
    for ttl in [0, 99, MAX_TTL_MS + 1] {
        match f.acquire_ttl("r", "a", Exclusive, ttl, None) {
            LockReply::Error(e) => assert!(e.starts_with("ERR invalid TTL"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(f.table, LockTable::new());
    f.acquire_ttl("r", "a", Exclusive, MIN_TTL_MS, None);
    let renew = f.run(LockOp::Renew {
        resource: "r".into(),
        owner: "a".into(),
        ttl_ms: 5,
    });
    assert!(matches!(renew.reply, LockReply::Error(_)));
}

#[test]
fn try_once_conflict_is_not_granted_and_leaves_no_trace() {
    let mut f = Fixture::new();
    f.token("r", "a", Exclusive);
    assert_eq!(f.acquire("r", "b", Shared, None), LockReply::NotGranted);
    assert_eq!(f.acquire("r", "b", Exclusive, None), LockReply::NotGranted);
    assert!(f.info("r").waiters.is_empty());
    f.token("s", "a", Shared);
    f.token("s", "b", Shared);
    assert_eq!(f.holders("s"), ["a", "b"]);
    assert_eq!(f.info("s").mode, Some(Shared));
}

#[test]
fn fifo_with_shared_batching() {
    let mut f = Fixture::new();
    f.token("r", "x", Exclusive);
    assert_eq!(f.acquire("r", "s1", Shared, Some(0)), LockReply::Queued);
    assert_eq!(f.acquire("r", "s2", Shared, Some(0)), LockReply::Queued);
    assert_eq!(f.acquire("r", "e", Exclusive, Some(0)), LockReply::Queued);
    assert_eq!(f.acquire("r", "s3", Shared, Some(0)), LockReply::Queued);
    assert_eq!(f.waiters("r"), ["s1", "s2", "e", "s3"]);

    let applied = f.release("r", "x");
    assert_eq!(applied.reply, LockReply::Done(true));
    granted(&[("r", "s1", Shared), ("r", "s2", Shared)], &applied.grants);
    assert!(applied.grants[0].token < applied.grants[1].token);
    assert!(applied.grants.iter().all(|g| f.table.check(b"r", g.token)));
    assert_eq!(f.waiters("r"), ["e", "s3"]);

    assert!(f.release("r", "s1").grants.is_empty());
    granted(&[("r", "e", Exclusive)], &f.release("r", "s2").grants);
    granted(&[("r", "s3", Shared)], &f.release("r", "e").grants);
    f.release("r", "s3");
    assert_eq!(
        f.table.stats(),
        LockStats {
            grants: 5,
            ..LockStats::default()
        }
    );
    assert_eq!(f.table.next_deadline(), None);
}

#[test]
fn writer_is_not_starved_by_later_readers() {
    let mut f = Fixture::new();
    f.token("r", "a", Shared);
    assert_eq!(f.acquire("r", "w", Exclusive, Some(0)), LockReply::Queued);
    // Compatible with the holder, but a writer waits ahead: no jumping the queue.
    assert_eq!(f.acquire("r", "b", Shared, None), LockReply::NotGranted);
    assert_eq!(f.acquire("r", "b", Shared, Some(0)), LockReply::Queued);
    granted(&[("r", "w", Exclusive)], &f.release("r", "a").grants);
    granted(&[("r", "b", Shared)], &f.release("r", "w").grants);
}

#[test]
fn queued_retry_keeps_its_place() {
    let mut f = Fixture::new();
    f.token("r", "x", Exclusive);
    f.acquire("r", "a", Exclusive, Some(0));
    f.acquire("r", "b", Exclusive, Some(0));
    assert_eq!(f.acquire("r", "a", Shared, Some(100)), LockReply::Queued);
    assert_eq!(f.acquire("r", "a", Exclusive, None), LockReply::Queued);
    assert_eq!(f.waiters("r"), ["a", "b"]);
    assert_eq!(f.info("r").waiters[0].mode, Exclusive);
}

#[test]
fn upgrade_and_downgrade() {
    let mut f = Fixture::new();
    let t1 = f.token("r", "a", Shared);
    let up = f.upgrade("r", "a", None);
    let LockReply::Granted { token: t2 } = up.reply else {
        panic!("{up:?}")
    };
    assert!(t2 > t1);
    assert!(!f.table.check(b"r", t1));
    assert!(f.table.check(b"r", t2));
    assert_eq!(f.info("r").mode, Some(Exclusive));
    // Idempotent once exclusive.
    assert_eq!(
        f.upgrade("r", "a", None).reply,
        LockReply::Granted { token: t2 }
    );

    f.acquire("r", "s1", Shared, Some(0));
    f.acquire("r", "s2", Shared, Some(0));
    f.acquire("r", "e", Exclusive, Some(0));
    let down = f.downgrade("r", "a");
    let LockReply::Granted { token: t3 } = down.reply else {
        panic!("{down:?}")
    };
    assert!(t3 > t2);
    granted(&[("r", "s1", Shared), ("r", "s2", Shared)], &down.grants);
    assert!(down.grants.iter().all(|g| g.token > t3));
    assert_eq!(f.info("r").mode, Some(Shared));
    assert_eq!(f.holders("r"), ["a", "s1", "s2"]);
    assert_eq!(f.waiters("r"), ["e"]);
    // Idempotent once shared.
    assert_eq!(
        f.downgrade("r", "a").reply,
        LockReply::Granted { token: t3 }
    );
}

#[test]
fn upgrade_and_downgrade_need_the_right_hold() {
    let mut f = Fixture::new();
    for applied in [f.upgrade("r", "a", Some(0)), f.downgrade("r", "a")] {
        assert!(
            matches!(applied.reply, LockReply::Error(ref e) if e.starts_with("ERR owner 'a' does not hold"))
        );
    }
    f.token("r", "b", Shared);
    assert!(matches!(
        f.upgrade("r", "a", None).reply,
        LockReply::Error(_)
    ));
    let down = f.downgrade("r", "a");
    assert!(
        matches!(down.reply, LockReply::Error(ref e) if e.contains("exclusive")),
        "{down:?}"
    );
}

#[test]
fn waiting_upgrade_goes_ahead_of_ordinary_waiters() {
    let mut f = Fixture::new();
    let ta = f.token("r", "a", Shared);
    f.token("r", "b", Shared);
    f.acquire("r", "w", Exclusive, Some(0));
    assert_eq!(f.upgrade("r", "a", None).reply, LockReply::NotGranted);
    assert_eq!(f.upgrade("r", "a", Some(0)).reply, LockReply::Queued);
    assert_eq!(
        f.upgrade("r", "a", Some(0)).reply,
        LockReply::Queued,
        "retry"
    );
    assert_eq!(f.waiters("r"), ["a", "w"]);
    assert_eq!(f.info("r").waiters[0].mode, Exclusive);
    // It keeps its shared hold meanwhile.
    assert!(f.table.check(b"r", ta));
    let applied = f.release("r", "b");
    granted(&[("r", "a", Exclusive)], &applied.grants);
    assert!(applied.grants[0].token > ta);
    assert!(!f.table.check(b"r", ta));
    assert_eq!(f.waiters("r"), ["w"]);
    granted(&[("r", "w", Exclusive)], &f.release("r", "a").grants);
}

#[test]
fn two_upgraders_are_the_classic_deadlock() {
    let mut f = Fixture::new();
    f.token("r", "a", Shared);
    f.token("r", "b", Shared);
    assert_eq!(f.upgrade("r", "a", Some(0)).reply, LockReply::Queued);
    let before = f.table.clone();
    let applied = f.upgrade("r", "b", Some(0));
    assert_eq!(
        applied.reply,
        LockReply::Deadlock {
            cycle: "owner 'b' waits for 'r' held by 'a' -> owner 'a' waits for 'r' held by 'b'"
                .into()
        }
    );
    assert_eq!(f.table.stats().deadlocks, 1);
    // Nothing but the counter changed.
    assert_eq!(f.info("r"), before.info(b"r", f.now));
    assert_eq!(f.table.next_deadline(), before.next_deadline());
    // b gives up its hold: a's upgrade goes through.
    let applied = f.release("r", "b");
    granted(&[("r", "a", Exclusive)], &applied.grants);
    assert_eq!(f.table.stats().holders, 1);
}

#[test]
fn three_owner_cycle_across_three_resources() {
    let mut f = Fixture::new();
    f.token("r1", "a", Exclusive);
    f.token("r2", "b", Exclusive);
    f.token("r3", "c", Exclusive);
    assert_eq!(f.acquire("r2", "a", Exclusive, Some(0)), LockReply::Queued);
    assert_eq!(f.acquire("r3", "b", Shared, Some(5_000)), LockReply::Queued);
    let before = f.table.clone();
    assert_eq!(
        f.acquire("r1", "c", Exclusive, Some(0)),
        LockReply::Deadlock {
            cycle: "owner 'c' waits for 'r1' held by 'a' -> owner 'a' waits for 'r2' held by 'b' \
                    -> owner 'b' waits for 'r3' held by 'c'"
                .into()
        }
    );
    assert_eq!(f.table.stats().deadlocks, 1);
    assert_eq!(f.info("r1"), before.info(b"r1", f.now));
    // A try-once request never deadlocks: it just is not granted.
    assert_eq!(f.acquire("r1", "c", Exclusive, None), LockReply::NotGranted);
    // Without the cycle the same wait is fine.
    f.release("r3", "c");
    assert_eq!(f.acquire("r1", "c", Exclusive, Some(0)), LockReply::Queued);
}

#[test]
fn queue_order_counts_in_the_wait_for_graph() {
    let mut f = Fixture::new();
    f.token("r1", "x", Exclusive);
    f.token("r2", "b", Exclusive);
    f.acquire("r1", "a", Exclusive, Some(0));
    f.acquire("r1", "b", Exclusive, Some(0));
    // Once x releases, a holds r1 while b waits behind it: a waiting for b's r2 would
    // deadlock, so it is refused now.
    assert_eq!(
        f.acquire("r2", "a", Shared, Some(0)),
        LockReply::Deadlock {
            cycle: "owner 'a' waits for 'r2' held by 'b' -> owner 'b' waits for 'r1' queued \
                    behind 'a'"
                .into()
        }
    );
}

#[test]
fn shared_waiters_do_not_wait_for_each_other() {
    let mut f = Fixture::new();
    f.token("r1", "x", Exclusive);
    f.token("r2", "b", Exclusive);
    f.acquire("r1", "a", Shared, Some(0));
    f.acquire("r1", "b", Shared, Some(0));
    // a and b will be granted r1 together: a waiting for b's r2 closes no cycle.
    assert_eq!(f.acquire("r2", "a", Exclusive, Some(0)), LockReply::Queued);
    granted(
        &[("r1", "a", Shared), ("r1", "b", Shared)],
        &f.release("r1", "x").grants,
    );
    granted(&[("r2", "a", Exclusive)], &f.release("r2", "b").grants);
}

#[test]
fn cancel_withdraws_a_wait_and_serves_the_queue() {
    let mut f = Fixture::new();
    f.token("r", "a", Shared);
    f.acquire("r", "e", Exclusive, Some(0));
    f.acquire("r", "s", Shared, Some(0));
    let applied = f.cancel("r", "e");
    assert_eq!(applied.reply, LockReply::Done(true));
    granted(&[("r", "s", Shared)], &applied.grants);
    // Not queued (granted already, or unknown): a no-op.
    let before = f.table.clone();
    assert_eq!(f.cancel("r", "s").reply, LockReply::Done(false));
    assert_eq!(f.cancel("r", "zz").reply, LockReply::Done(false));
    assert_eq!(f.cancel("nope", "zz").reply, LockReply::Done(false));
    assert_eq!(f.table, before);
}

#[test]
fn release_reports_holds_and_withdraws_waits() {
    let mut f = Fixture::new();
    assert_eq!(f.release("r", "a").reply, LockReply::Done(false));
    f.token("r", "a", Exclusive);
    f.acquire("r", "b", Exclusive, Some(0));
    f.acquire("r", "c", Exclusive, Some(0));
    // b only waited: its wait is dropped, :0.
    let applied = f.release("r", "b");
    assert_eq!(applied.reply, LockReply::Done(false));
    assert!(applied.grants.is_empty());
    assert_eq!(f.waiters("r"), ["c"]);
    let applied = f.release("r", "a");
    assert_eq!(applied.reply, LockReply::Done(true));
    granted(&[("r", "c", Exclusive)], &applied.grants);
    f.release("r", "c");
    // The unused resource is gone, not kept around empty.
    assert_eq!(
        serde_json::to_value(&f.table).unwrap()["resources"],
        serde_json::json!([])
    );
    assert_eq!(f.table.stats().locked_resources, 0);
    assert_eq!(f.info("r").mode, None);
    assert_eq!(f.table.next_deadline(), None);
}

#[test]
fn renew_extends_only_a_held_lease() {
    let mut f = Fixture::new();
    f.acquire_ttl("r", "a", Shared, 1_000, None);
    f.now += 900;
    let renew = |f: &mut Fixture, o: &str| {
        f.run(LockOp::Renew {
            resource: "r".into(),
            owner: o.into(),
            ttl_ms: 2_000,
        })
        .reply
    };
    assert_eq!(renew(&mut f, "a"), LockReply::Done(true));
    assert_eq!(f.info("r").holders[0].ttl_ms, 2_000);
    assert_eq!(renew(&mut f, "b"), LockReply::Done(false));
}

#[test]
fn expiry_releases_the_lease_then_grants_the_next() {
    let mut f = Fixture::new();
    let t0 = f.now;
    let old = match f.acquire_ttl("r", "a", Exclusive, 100, None) {
        LockReply::Granted { token } => token,
        other => panic!("{other:?}"),
    };
    f.acquire_ttl("r", "b", Exclusive, 500, Some(0));
    assert_eq!(f.table.next_deadline(), Some(t0 + 100));
    f.now = t0 + 99;
    let applied = f.run(LockOp::Expire);
    assert_eq!(applied.reply, LockReply::Housekeeping { touched: 0 });
    assert_eq!(f.info("r").holders[0].ttl_ms, 1);
    f.now = t0 + 100;
    assert_eq!(f.info("r").holders[0].ttl_ms, 0);
    let applied = f.run(LockOp::Expire);
    assert_eq!(applied.reply, LockReply::Housekeeping { touched: 1 });
    granted(&[("r", "b", Exclusive)], &applied.grants);
    assert!(!f.table.check(b"r", old));
    assert!(f.table.check(b"r", applied.grants[0].token));
    assert_eq!(f.table.next_deadline(), Some(t0 + 600));
    assert_eq!(f.table.stats().expiries, 1);
    assert_eq!(f.release("r", "a").reply, LockReply::Done(false), "lost");
}

#[test]
fn wait_deadline_drops_the_request() {
    let mut f = Fixture::new();
    let t0 = f.now;
    f.token("r", "a", Exclusive);
    f.now += 50;
    f.acquire("r", "b", Exclusive, Some(150));
    assert_eq!(f.info("r").waiters[0].waited_ms, 0);
    assert_eq!(f.table.next_deadline(), Some(t0 + 200));
    f.now = t0 + 200;
    assert_eq!(f.info("r").waiters[0].waited_ms, 150);
    let applied = f.run(LockOp::Expire);
    assert_eq!(applied.reply, LockReply::Housekeeping { touched: 1 });
    assert!(f.info("r").waiters.is_empty());
    assert_eq!(f.table.stats().expiries, 0, "only leases count as expiries");
    // The wait is gone even though the lock is released right after.
    assert!(f.release("r", "a").grants.is_empty());
    assert_eq!(f.table.stats().locked_resources, 0);
}

#[test]
fn expired_upgrader_loses_its_upgrade_request() {
    let mut f = Fixture::new();
    f.acquire_ttl("r", "a", Shared, 100, None);
    f.acquire_ttl("r", "b", Shared, 10_000, None);
    f.acquire("r", "w", Exclusive, Some(0));
    f.upgrade("r", "a", Some(0));
    f.now += 100;
    let applied = f.run(LockOp::Expire);
    assert_eq!(applied.reply, LockReply::Housekeeping { touched: 2 });
    assert!(applied.grants.is_empty());
    assert_eq!(f.waiters("r"), ["w"]);
    assert_eq!(f.holders("r"), ["b"]);
}

#[test]
fn extend_leases_gives_every_holder_its_ttl_again() {
    let mut f = Fixture::new();
    f.acquire_ttl("r1", "a", Exclusive, 1_000, None);
    f.acquire_ttl("r2", "b", Shared, 10_000, None);
    f.now += 900;
    let applied = f.run(LockOp::ExtendLeases);
    assert_eq!(applied.reply, LockReply::Housekeeping { touched: 2 });
    assert_eq!(f.info("r1").holders[0].ttl_ms, 1_000);
    assert_eq!(f.info("r2").holders[0].ttl_ms, 10_000);
    assert_eq!(f.table.next_deadline(), Some(f.now + 1_000));
    // Already at least a full TTL away: untouched.
    assert_eq!(
        f.run(LockOp::ExtendLeases).reply,
        LockReply::Housekeeping { touched: 0 }
    );
}

#[test]
fn tokens_strictly_increase_even_within_one_entry() {
    let mut f = Fixture::new();
    f.index = 10;
    let t = f.token("r", "x", Exclusive);
    assert_eq!(t, 11);
    for o in ["a", "b", "c"] {
        f.acquire("r", o, Shared, Some(0));
    }
    let applied = f.release("r", "x"); // index 15
    let tokens: Vec<u64> = applied.grants.iter().map(|g| g.token).collect();
    assert_eq!(tokens, [15, 16, 17]);
    // The next entry (index 16) still gets a greater token than all of them.
    assert_eq!(f.token("s", "a", Exclusive), 18);
    assert_eq!(f.token("s2", "a", Exclusive), 18 + 1);
    f.index = 100;
    assert_eq!(f.token("s3", "a", Exclusive), 101);
}

#[test]
fn binary_names_are_printed_lossily() {
    let mut f = Fixture::new();
    let r = vec![0xff, b'r'];
    f.run(LockOp::Acquire {
        resource: r.clone(),
        owner: vec![0xfe],
        mode: Shared,
        ttl_ms: 1_000,
        wait_ms: None,
        rid: 0,
    });
    let applied = f.run(LockOp::Acquire {
        resource: r.clone(),
        owner: vec![0xfe],
        mode: Exclusive,
        ttl_ms: 1_000,
        wait_ms: None,
        rid: 0,
    });
    assert_eq!(
        applied.reply,
        LockReply::Error(
            "ERR owner '\u{fffd}' holds a shared lock on '\u{fffd}r', use LOCK.UPGRADE".into()
        )
    );
    let json = serde_json::to_string(&f.table).unwrap();
    let back: LockTable = serde_json::from_str(&json).unwrap();
    assert_eq!(back, f.table);
    back.assert_consistent();
}

#[test]
fn stats_count_holders_waiters_and_resources() {
    let mut f = Fixture::new();
    f.token("r1", "a", Shared);
    f.token("r1", "b", Shared);
    f.token("r2", "a", Exclusive);
    f.acquire("r2", "c", Exclusive, Some(0));
    f.acquire("r1", "c", Exclusive, Some(0));
    let stats = f.table.stats();
    assert_eq!(
        stats,
        LockStats {
            locked_resources: 2,
            holders: 3,
            waiters: 2,
            grants: 3,
            expiries: 0,
            deadlocks: 0,
        }
    );
}

#[test]
fn snapshot_round_trip_keeps_behaviour() {
    let mut f = Fixture::new();
    f.acquire_ttl("r1", "a", Shared, 1_000, None);
    f.acquire_ttl("r1", "b", Shared, 2_000, None);
    f.upgrade("r1", "a", Some(500));
    f.acquire("r1", "c", Exclusive, Some(0));
    let json = serde_json::to_string(&f.table).unwrap();
    let mut back: LockTable = serde_json::from_str(&json).unwrap();
    assert_eq!(back, f.table);
    assert_eq!(back.next_deadline(), f.table.next_deadline());
    let req = LockRequest {
        now_ms: f.now + 2_000,
        op: LockOp::Expire,
    };
    assert_eq!(back.apply(99, &req), f.table.apply(99, &req));
    assert_eq!(back, f.table);
}

// --- Request ids: a client is answered by the effect of its own request only. ---

impl Fixture {
    fn acquire_rid(&mut self, r: &str, o: &str, wait: Option<u64>, rid: RequestId) -> LockReply {
        self.run(LockOp::Acquire {
            resource: r.into(),
            owner: o.into(),
            mode: Exclusive,
            ttl_ms: 10_000,
            wait_ms: wait,
            rid,
        })
        .reply
    }

    fn withdraw(&mut self, r: &str, o: &str, rid: RequestId, undo: bool) -> LockApplied {
        self.run(LockOp::Cancel {
            resource: r.into(),
            owner: o.into(),
            rid,
            undo,
            upgrade: false,
        })
    }
}

#[test]
fn a_grant_from_the_queue_carries_the_latest_request_of_the_owner() {
    let mut f = Fixture::new();
    f.token("r", "x", Exclusive);
    assert_eq!(f.acquire_rid("r", "w", Some(0), 11), LockReply::Queued);
    // The owner's client resends after a reconnect: the new request takes the place over.
    assert_eq!(f.acquire_rid("r", "w", Some(0), 12), LockReply::Queued);
    // The old request's withdrawal no longer touches the place.
    assert_eq!(f.withdraw("r", "w", 11, true).reply, LockReply::Done(false));
    let applied = f.release("r", "x");
    assert_eq!(applied.grants.len(), 1);
    assert_eq!(applied.grants[0].rid, 12);
    assert_eq!(f.holders("r"), ["w"]);
}

#[test]
fn withdrawing_a_granted_request_undoes_or_confirms_it() {
    let mut f = Fixture::new();
    f.token("r", "x", Exclusive);
    f.acquire_rid("r", "w", Some(0), 21);
    f.acquire("r", "v", Exclusive, Some(0));
    let granted = f.release("r", "x").grants[0].token;
    // Without undo (a timed-out wait that lost the race): the client is told its token.
    assert_eq!(
        f.withdraw("r", "w", 21, false).reply,
        LockReply::Granted { token: granted }
    );
    // Told once, the grant is the client's: a later undo of the same request is a no-op.
    assert_eq!(f.withdraw("r", "w", 21, true).reply, LockReply::Done(false));
    assert_eq!(f.holders("r"), ["w"]);

    // With undo (the client was answered an error): the grant is taken back and the
    // queue served.
    let mut f = Fixture::new();
    f.token("r", "x", Exclusive);
    f.acquire_rid("r", "w", Some(0), 31);
    f.acquire("r", "v", Exclusive, Some(0));
    f.release("r", "x");
    let applied = f.withdraw("r", "w", 31, true);
    assert_eq!(applied.reply, LockReply::Done(true));
    assert_eq!(f.holders("r"), ["v"]);
    assert_eq!(applied.grants.len(), 1);
}

#[test]
fn an_undo_never_takes_back_a_hold_the_owner_confirmed() {
    let mut f = Fixture::new();
    // An immediate grant whose client was answered an error, then the owner asks again
    // (a retry): the second answer is the same token, so the first request's undo must
    // not release it.
    assert!(matches!(
        f.acquire_rid("r", "w", None, 41),
        LockReply::Granted { .. }
    ));
    assert!(matches!(
        f.acquire_rid("r", "w", None, 42),
        LockReply::Granted { .. }
    ));
    assert_eq!(f.withdraw("r", "w", 41, true).reply, LockReply::Done(false));
    assert_eq!(f.withdraw("r", "w", 42, true).reply, LockReply::Done(false));
    assert_eq!(f.holders("r"), ["w"]);
    // A renewal confirms too.
    f.acquire_rid("s", "w", None, 43);
    f.run(LockOp::Renew {
        resource: "s".into(),
        owner: "w".into(),
        ttl_ms: 5_000,
    });
    assert_eq!(f.withdraw("s", "w", 43, true).reply, LockReply::Done(false));
    // An unconfirmed grant is undone; a repeat of the same request keeps it undoable.
    f.acquire_rid("t", "w", None, 44);
    f.acquire_rid("t", "w", None, 44);
    assert_eq!(f.withdraw("t", "w", 44, true).reply, LockReply::Done(true));
    assert!(f.holders("t").is_empty());
}

#[test]
fn undoing_an_upgrade_turns_the_hold_back_to_shared_under_a_new_token() {
    let mut f = Fixture::new();
    f.token("r", "a", Shared);
    let up = f.run(LockOp::Upgrade {
        resource: "r".into(),
        owner: "a".into(),
        wait_ms: None,
        rid: 51,
    });
    let LockReply::Granted { token: upgraded } = up.reply else {
        panic!("{up:?}")
    };
    f.acquire("r", "b", Shared, Some(0));
    let applied = f.run(LockOp::Cancel {
        resource: "r".into(),
        owner: "a".into(),
        rid: 51,
        undo: true,
        upgrade: true,
    });
    assert_eq!(applied.reply, LockReply::Done(true));
    let info = f.info("r");
    assert_eq!(info.mode, Some(Shared));
    assert!(info.holders.iter().all(|h| h.token > upgraded));
    assert_eq!(f.holders("r"), ["a", "b"], "the shared waiter is served");
}

#[test]
fn resources_view_lists_holders_and_waiters_within_its_bounds() {
    let mut f = Fixture::new();
    assert_eq!(
        f.table.resources_view(10, 10, f.now),
        ResourcesView::default()
    );
    // "a": three shared holders and two waiters; "b": one exclusive holder; "c": free again.
    let first = f.token("a", "s1", Shared);
    f.token("a", "s2", Shared);
    f.token("a", "s3", Shared);
    f.acquire("a", "x1", Exclusive, Some(0));
    f.now += 250;
    f.acquire("a", "x2", Exclusive, Some(0));
    f.token("b", "solo", Exclusive);
    f.token("c", "gone", Exclusive);
    f.release("c", "gone");

    let all = f.table.resources_view(10, 10, f.now);
    assert_eq!(all.total, 2, "released resources are not listed");
    assert_eq!(all.more(), 0);
    let names: Vec<&[u8]> = all.resources.iter().map(|r| &r.resource[..]).collect();
    assert_eq!(names, [&b"a"[..], &b"b"[..]], "name order");
    let a = &all.resources[0];
    assert_eq!(a.info, f.info("a"), "same as LOCK.INFO when nothing is cut");
    assert_eq!((a.more_holders, a.more_waiters), (0, 0));
    assert_eq!(a.info.waiters[0].waited_ms, 250);

    // Bounds: one resource, two holders (lowest tokens), one waiter (the queue head).
    let cut = f.table.resources_view(1, 2, f.now);
    assert_eq!(cut.total, 2);
    assert_eq!(cut.more(), 1);
    let a = &cut.resources[0];
    assert_eq!(a.info.mode, Some(Shared));
    let tokens: Vec<u64> = a.info.holders.iter().map(|h| h.token).collect();
    assert_eq!(tokens, [first, first + 1]);
    assert_eq!(a.more_holders, 1);
    assert_eq!(a.info.waiters.len(), 2);
    let cut = f.table.resources_view(1, 1, f.now);
    assert_eq!(cut.resources[0].info.waiters[0].owner, b"x1");
    assert_eq!(cut.resources[0].more_waiters, 1);
    assert_eq!(cut.resources[0].info.holders.len(), 1);
    assert_eq!(cut.resources[0].info.holders[0].token, first);
    // Nothing is listed with a zero limit, but the total still counts.
    assert_eq!(f.table.resources_view(0, 5, f.now).more(), 2);
}
