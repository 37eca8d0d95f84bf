//! `CLIENT PAUSE timeout [WRITE|ALL]` and `CLIENT UNPAUSE` (Redis 7: `networking.c`
//! `pauseClientsByClient`, `server.c` `processCommand`).
//!
//! While a pause is in force a client's command waits before it runs — after the
//! dispatch gate (unknown command, arity, `AUTH`, pub/sub context) and before `MULTI`
//! queues it, as in Redis — until the pause ends or `CLIENT UNPAUSE`. `ALL` holds every
//! command (`CLIENT UNPAUSE` included, as in Redis, so an `ALL` pause runs its time);
//! `WRITE` holds the commands
//! that may change data: flagged `write` or `may_replicate`, and an `EXEC` whose queue
//! holds one. A waiting client shows the `b` flag and counts in `blocked_clients`.
//!
//! A new pause keeps the later end and the more restrictive mode of the one in force.
//! `CLIENT PAUSE` also pauses expiry in the keyspace (`Keyspace::pause_expiry`: expired
//! keys read as missing but are not deleted), as Redis keeps the dataset still.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::time::{Duration, Instant};

use conclave_protocol::CommandSpec;
use tokio::sync::watch;

use crate::clients::{flag, ClientHandle};

/// The pause in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct State {
    /// When it ends (`None`: no pause).
    until: Option<Instant>,
    /// `ALL` (else `WRITE`).
    all: bool,
}

impl State {
    fn holds(&self, may_write: bool, now: Instant) -> bool {
        self.until.is_some_and(|u| u > now) && (self.all || may_write)
    }
}

/// The node's pause switch.
#[derive(Debug)]
pub struct Pause {
    state: watch::Sender<State>,
    /// A pause was set and not yet seen to end (fast path for every command).
    active: AtomicBool,
    /// Clients waiting now.
    waiting: AtomicUsize,
}

impl Default for Pause {
    fn default() -> Self {
        Pause {
            state: watch::Sender::new(State::default()),
            active: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
        }
    }
}

/// Unmarks a waiting client however its wait ends.
struct Waiting<'a>(&'a Pause, &'a ClientHandle);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Relaxed);
        self.1.state.set_flag(flag::PAUSED, false);
    }
}

impl Pause {
    /// `CLIENT PAUSE`: holds commands for `ms` (0 changes nothing but the mode); `all`
    /// for `ALL`, else `WRITE`.
    pub fn pause(&self, ms: u64, all: bool) {
        let now = Instant::now();
        let until = now.checked_add(Duration::from_millis(ms));
        self.state.send_modify(|s| {
            let in_force = s.until.is_some_and(|u| u > now);
            s.all = all || (in_force && s.all);
            s.until = match (s.until.filter(|_| in_force), until) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        });
        self.active.store(true, SeqCst);
    }

    /// `CLIENT UNPAUSE`.
    pub fn unpause(&self) {
        self.state.send_replace(State::default());
        self.active.store(false, SeqCst);
    }

    /// Clients waiting out a pause now (part of `blocked_clients`).
    pub fn waiting(&self) -> usize {
        self.waiting.load(Relaxed)
    }

    /// Waits while a pause holds a command that `may_write` (see the module docs),
    /// marking `client` blocked meanwhile.
    pub async fn wait(&self, client: &ClientHandle, may_write: bool) {
        if !self.active.load(SeqCst) {
            return;
        }
        let mut rx = self.state.subscribe();
        let state = *rx.borrow_and_update();
        let now = Instant::now();
        if state.until.is_none_or(|u| u <= now) {
            // The pause ran out: back to the fast path, unless a new one just began
            // (`pause` sets the state before the flag, so one of us sees the other).
            self.active.store(false, SeqCst);
            if self
                .state
                .borrow()
                .until
                .is_some_and(|u| u > Instant::now())
            {
                self.active.store(true, SeqCst);
            }
            return;
        }
        if !state.holds(may_write, now) {
            return;
        }
        self.waiting.fetch_add(1, Relaxed);
        client.state.set_flag(flag::PAUSED, true);
        let _unmark = Waiting(self, client);
        loop {
            let state = *rx.borrow_and_update();
            if !state.holds(may_write, Instant::now()) {
                return;
            }
            let Some(until) = state.until else {
                return;
            };
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep_until(until.into()) => {}
            }
        }
    }
}

/// Whether a `WRITE` pause holds `spec` (Redis's `is_may_replicate_command`);
/// `exec_writes`: an `EXEC` whose queue holds such a command.
pub fn may_write(spec: &CommandSpec, exec_writes: bool) -> bool {
    spec.is_write() || spec.flags.contains(&"may_replicate") || exec_writes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_pause_keeps_the_later_end_and_the_stricter_mode() {
        let p = Pause::default();
        let holds = |p: &Pause, write| p.state.borrow().holds(write, Instant::now());
        assert!(!holds(&p, false));
        p.pause(60_000, true);
        p.pause(10, false);
        let s = *p.state.borrow();
        assert!(s.all, "ALL stays");
        assert!(s
            .until
            .is_some_and(|u| u > Instant::now() + Duration::from_secs(30)));
        assert!(holds(&p, false));
        p.unpause();
        assert!(!holds(&p, true));
        p.pause(60_000, false);
        assert!(holds(&p, true));
        assert!(!holds(&p, false), "reads pass a WRITE pause");
        p.pause(0, false);
        assert!(holds(&p, true), "PAUSE 0 keeps the pause in force");
    }
}
