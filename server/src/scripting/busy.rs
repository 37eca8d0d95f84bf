//! Who may use the keyspace while a script runs: Redis's busy-script rules.
//!
//! A script runs alone: it holds the *lane* (one async mutex shared with `EXEC`, so
//! scripts and transactions take turns) and, while it runs, the keyspace gate exclusive.
//! Meanwhile other clients' keyspace commands, `EXEC`, `EVAL*` and `SCRIPT
//! LOAD|EXISTS|FLUSH` wait — asynchronously, so no worker thread is held and every
//! other command (`PING`, `INFO`, `LOCK.*`, `SCRIPT KILL`, ...) is served. Once the
//! script has run for `busy-reply-threshold` ms (Redis's `lua-time-limit`, default
//! 5000; 0 = never), the waiting and arriving ones are answered `-BUSY` instead, as
//! Redis answers them once a script is timed out.
//!
//! `SCRIPT KILL` (Redis's `scriptKill`): `-NOTBUSY` when no script runs, `-UNKILLABLE`
//! once the script has called a write command, else it asks the script to stop (the
//! instruction hook checks every 100,000 instructions) and answers `OK`. Arriving before
//! the threshold it waits for it, as in Redis, where it could only be read then.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_cache::keyspace::{Keyspace, SharedGate};
use conclave_protocol::Frame;
use parking_lot::Mutex;
use tokio::sync::{Notify, OwnedMutexGuard};
use tracing::warn;

/// Redis's reply to a command refused while a script is timed out (`shared.slowevalerr`).
pub const BUSY: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";

/// One running script, as the rest of the node sees it.
#[derive(Debug)]
pub struct Run {
    /// When it started.
    pub started: Instant,
    /// Set by `SCRIPT KILL` (or the node stopping): the hook stops the script.
    pub kill: AtomicBool,
    /// It called a write command: `SCRIPT KILL` refuses.
    pub wrote: AtomicBool,
    /// `busy-reply-threshold` when it started, in ms (0 = never busy).
    threshold_ms: u64,
    /// Its SHA1 (for the log), or the function's name.
    sha: String,
    warned: AtomicBool,
    /// For a function (`FCALL`): the command that called it, for `FUNCTION STATS`.
    pub function: Option<Vec<bytes::Bytes>>,
}

/// Redis's reply to a command refused while a function is timed out
/// (`shared.slowscripterr`).
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

impl Run {
    /// The `-BUSY` error for this run (it names `SCRIPT KILL` or `FUNCTION KILL`).
    pub fn busy_error(&self) -> Frame {
        Frame::error(if self.function.is_some() {
            BUSY_FUNCTION
        } else {
            BUSY
        })
    }

    /// The script's SHA1 or the function's name.
    pub fn name(&self) -> &str {
        &self.sha
    }

    /// Whether other clients are now answered `-BUSY`.
    pub fn timed_out(&self) -> bool {
        self.threshold_ms > 0 && self.started.elapsed() >= self.threshold()
    }

    fn threshold(&self) -> Duration {
        Duration::from_millis(self.threshold_ms)
    }

    /// When other clients start being answered `-BUSY` (`None`: never).
    fn busy_at(&self) -> Option<tokio::time::Instant> {
        (self.threshold_ms > 0)
            .then(|| tokio::time::Instant::from_std(self.started + self.threshold()))
    }

    /// Logs Redis's slow-script warning once, when the threshold passes.
    pub fn warn_if_slow(&self) {
        if self.timed_out() && !self.warned.swap(true, Relaxed) {
            warn!(
                elapsed_ms = self.started.elapsed().as_millis() as u64,
                script = %self.sha,
                "Slow script detected: still in execution; you can try killing it with SCRIPT KILL"
            );
        }
    }
}

/// The busy state of a node's scripting.
#[derive(Debug, Default)]
pub struct Busy {
    lane: Arc<tokio::sync::Mutex<()>>,
    current: Mutex<Option<Arc<Run>>>,
    done: Notify,
}

/// Marks a script as running until dropped.
#[derive(Debug)]
pub struct Running<'a> {
    busy: &'a Busy,
    /// The run.
    pub run: Arc<Run>,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        *self.busy.current.lock() = None;
        self.busy.done.notify_waiters();
    }
}

impl Busy {
    /// The running script, if any.
    pub fn current(&self) -> Option<Arc<Run>> {
        self.current.lock().clone()
    }

    /// Registers a script as running (call with the lane held).
    pub fn start(&self, sha: &str, threshold_ms: u64) -> Running<'_> {
        self.start_run(sha, threshold_ms, None)
    }

    /// Registers a function called by `command` as running (call with the lane held).
    pub fn start_function(
        &self,
        name: &str,
        command: Vec<bytes::Bytes>,
        threshold_ms: u64,
    ) -> Running<'_> {
        self.start_run(name, threshold_ms, Some(command))
    }

    fn start_run(
        &self,
        sha: &str,
        threshold_ms: u64,
        function: Option<Vec<bytes::Bytes>>,
    ) -> Running<'_> {
        let run = Arc::new(Run {
            started: Instant::now(),
            kill: AtomicBool::new(false),
            wrote: AtomicBool::new(false),
            threshold_ms,
            sha: sha.to_string(),
            warned: AtomicBool::new(false),
            function,
        });
        *self.current.lock() = Some(run.clone());
        Running { busy: self, run }
    }

    /// Waits for the lane (no script or `EXEC` running), or `-BUSY` once a running
    /// script times out.
    pub async fn turn(&self) -> Result<OwnedMutexGuard<()>, Frame> {
        loop {
            if let Ok(guard) = self.lane.clone().try_lock_owned() {
                return Ok(guard);
            }
            let deadline = match self.current() {
                Some(run) if run.timed_out() => return Err(run.busy_error()),
                Some(run) => run.busy_at(),
                // An EXEC, or a script about to start: look again soon.
                None => Some(tokio::time::Instant::now() + Duration::from_millis(5)),
            };
            let lane = self.lane.clone().lock_owned();
            match deadline {
                Some(at) => {
                    if let Ok(guard) = tokio::time::timeout_at(at, lane).await {
                        return Ok(guard);
                    }
                }
                None => return Ok(lane.await),
            }
        }
    }

    /// Enters the keyspace as one of many commands, waiting (without blocking the
    /// thread) while an `EXEC` or a script holds it; `-BUSY` once a script times out.
    pub async fn keyspace<'k>(&self, ks: &'k Keyspace) -> Result<SharedGate<'k>, Frame> {
        let mut spins = 0u32;
        loop {
            if let Some(gate) = ks.try_shared() {
                return Ok(gate);
            }
            let done = self.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            match self.current() {
                Some(run) if run.timed_out() => return Err(run.busy_error()),
                Some(run) => match run.busy_at() {
                    Some(at) => {
                        let _ = tokio::time::timeout_at(at, done).await;
                    }
                    None => done.await,
                },
                // An EXEC (short) holds the gate: yield, then poll gently.
                None if spins < 64 => {
                    spins += 1;
                    tokio::task::yield_now().await;
                }
                None => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }

    /// `SCRIPT KILL` (`function`: `FUNCTION KILL`). Each kills only its own kind of
    /// run; the other kind's is answered `-BUSY` naming the right command (Redis's
    /// `scriptKill`).
    pub async fn kill(&self, function: bool) -> Frame {
        loop {
            let Some(run) = self.current() else {
                return Frame::error("NOTBUSY No scripts in execution right now.");
            };
            if run.wrote.load(Relaxed) {
                return Frame::error("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.");
            }
            match (function, run.function.is_some()) {
                (false, true) => return Frame::error(BUSY_FUNCTION),
                (true, false) => return Frame::error(BUSY),
                _ => {}
            }
            let done = self.done.notified();
            match run.busy_at() {
                Some(at) if !run.timed_out() => {
                    // Redis reads SCRIPT KILL only once the script is timed out.
                    let _ = tokio::time::timeout_at(at, done).await;
                    continue;
                }
                _ => {}
            }
            run.kill.store(true, Relaxed);
            return Frame::ok();
        }
    }

    /// Stops the running script, written or not (the node is stopping).
    pub fn abort(&self) {
        if let Some(run) = self.current() {
            run.kill.store(true, Relaxed);
        }
    }
}
