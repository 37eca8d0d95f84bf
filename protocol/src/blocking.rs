//! Ending a blocked command early: `CLIENT UNBLOCK <id> [TIMEOUT|ERROR]` (Redis's
//! `unblockClientOnTimeout` / `unblockClientOnError`).
//!
//! Each connection lends its blocking commands (`LOCK.ACQUIRE ... WAIT`, `Q.READ ...
//! BLOCK`) a [`BlockedWait`]. While such a command waits, the wait is marked blocked
//! (`CLIENT LIST` shows the `b` flag); another connection may then cut it short:
//!
//! - [`Unblock::Timeout`]: the command goes on exactly as when its wait runs out (an
//!   acquire proposes `Cancel` and answers from that reply; a read withdraws itself and
//!   answers what it got, a null when nothing).
//! - [`Unblock::Error`]: the command answers `-UNBLOCKED client unblocked via CLIENT
//!   UNBLOCK` and takes its request back in the background, as when the client goes
//!   away: an error reply means no effect.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::SeqCst};

use tokio::sync::Notify;

/// How `CLIENT UNBLOCK` ends a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unblock {
    /// As if the wait ran out.
    Timeout,
    /// With `-UNBLOCKED client unblocked via CLIENT UNBLOCK`.
    Error,
}

/// The error reply of a wait ended by `CLIENT UNBLOCK <id> ERROR` (Redis's text).
pub const UNBLOCKED_ERROR: &str = "UNBLOCKED client unblocked via CLIENT UNBLOCK";

/// One connection's blocked-wait switch (see the module docs).
#[derive(Debug, Default)]
pub struct BlockedWait {
    blocked: AtomicBool,
    error: AtomicU8,
    cut: Notify,
}

/// Clears the blocked mark however the wait ends.
struct Unmark<'a>(&'a AtomicBool);

impl Drop for Unmark<'_> {
    fn drop(&mut self) {
        self.0.store(false, SeqCst);
    }
}

impl BlockedWait {
    /// Whether a lock wait of this connection is blocked now.
    pub fn is_blocked(&self) -> bool {
        self.blocked.load(SeqCst)
    }

    /// Ends the current wait `how`; false when nothing is blocked (Redis answers
    /// `CLIENT UNBLOCK` with `:0` then).
    pub fn unblock(&self, how: Unblock) -> bool {
        if self
            .blocked
            .compare_exchange(true, false, SeqCst, SeqCst)
            .is_err()
        {
            return false;
        }
        self.error.store(u8::from(how == Unblock::Error), SeqCst);
        self.cut.notify_waiters();
        true
    }

    /// Runs `wait` marked blocked; `Err` when [`unblock`](Self::unblock) cut it short.
    pub async fn run<F: Future>(&self, wait: F) -> Result<F::Output, Unblock> {
        let cut = self.cut.notified();
        tokio::pin!(cut);
        // Registered before the mark is visible, so no unblock is missed.
        cut.as_mut().enable();
        self.error.store(0, SeqCst);
        self.blocked.store(true, SeqCst);
        let _unmark = Unmark(&self.blocked);
        tokio::select! {
            out = wait => Ok(out),
            _ = cut => Err(if self.error.load(SeqCst) == 1 { Unblock::Error } else { Unblock::Timeout }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn unblock_ends_only_a_blocked_wait() {
        let w = Arc::new(BlockedWait::default());
        assert!(!w.is_blocked());
        assert!(!w.unblock(Unblock::Timeout), "nothing blocked");
        assert_eq!(w.run(async { 5 }).await, Ok(5));
        assert!(!w.is_blocked());
        for how in [Unblock::Timeout, Unblock::Error] {
            let w2 = w.clone();
            let waiting =
                tokio::spawn(
                    async move { w2.run(tokio::time::sleep(Duration::from_secs(3600))).await },
                );
            while !w.is_blocked() {
                tokio::task::yield_now().await;
            }
            assert!(w.unblock(how));
            assert!(!w.unblock(how), "already cut");
            assert_eq!(waiting.await.ok(), Some(Err(how)));
            assert!(!w.is_blocked());
        }
    }
}
