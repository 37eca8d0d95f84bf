//! A live progress line on stderr, once a second, while `conclave-bench` runs:
//!
//! ```text
//! [locks 3 s]    23012 ops/s now    22870 ops/s so far    68610 ops    0 errors
//! ```
//!
//! The load loops count into shared [`Counters`]; a thread samples them every second.
//! Standard output keeps only the final report, so scripts can capture it alone.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the load loops count.
#[derive(Debug, Default)]
pub struct Counters {
    /// Successful operations.
    pub ops: AtomicU64,
    /// Failed operations.
    pub errors: AtomicU64,
}

impl Counters {
    /// Counts one successful operation.
    pub fn ok(&self) {
        self.ops.fetch_add(1, Relaxed);
    }

    /// Counts `n` successful operations.
    pub fn ok_n(&self, n: u64) {
        self.ops.fetch_add(n, Relaxed);
    }

    /// Counts one failed operation.
    pub fn error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }
}

/// The stop signal shared with the printing thread.
type Stop = Arc<(Mutex<bool>, Condvar)>;

/// A running progress line; it stops when finished or dropped.
#[derive(Debug)]
pub struct Progress {
    counters: Arc<Counters>,
    stop: Stop,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts printing `[label N s] ...` every second to stderr (nothing when `enabled` is
    /// false; the counters still count).
    pub fn start(label: &str, enabled: bool) -> Progress {
        let counters = Arc::new(Counters::default());
        let stop: Stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread = enabled.then(|| {
            let (counters, stop, label) = (counters.clone(), stop.clone(), label.to_string());
            std::thread::spawn(move || print_every_second(&label, &counters, &stop))
        });
        Progress {
            counters,
            stop,
            thread,
        }
    }

    /// The counters to count into.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Stops the line.
    pub fn finish(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        let (lock, cvar) = &*self.stop;
        if let Ok(mut stopped) = lock.lock() {
            *stopped = true;
        }
        cvar.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// One progress line: elapsed seconds, the rate over the last interval and overall.
pub fn line(
    label: &str,
    elapsed: Duration,
    interval: Duration,
    delta: u64,
    ops: u64,
    errors: u64,
) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let now = delta as f64 / interval.as_secs_f64().max(1e-9);
    format!(
        "[{label} {:.0} s] {now:>10.0} ops/s now {:>10.0} ops/s so far {ops:>10} ops {errors:>6} errors",
        elapsed.as_secs_f64(),
        ops as f64 / secs,
    )
}

fn print_every_second(label: &str, counters: &Counters, stop: &Stop) {
    let started = Instant::now();
    let (mut last_ops, mut last_at) = (0u64, started);
    let mut tick = 1u32;
    let (lock, cvar) = &**stop;
    loop {
        let due = started + Duration::from_secs(u64::from(tick));
        let Ok(mut stopped) = lock.lock() else { return };
        while !*stopped {
            let left = due.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            stopped = match cvar.wait_timeout(stopped, left) {
                Ok((guard, _)) => guard,
                Err(_) => return,
            };
        }
        if *stopped {
            return;
        }
        drop(stopped);
        let now = Instant::now();
        let ops = counters.ops.load(Relaxed);
        let errors = counters.errors.load(Relaxed);
        let text = line(
            label,
            now - started,
            now - last_at,
            ops - last_ops,
            ops,
            errors,
        );
        // A closed stderr is no reason to stop the benchmark.
        let _ = writeln!(std::io::stderr().lock(), "{text}");
        (last_ops, last_at) = (ops, now);
        tick += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rates() {
        let l = line(
            "locks",
            Duration::from_secs(2),
            Duration::from_secs(1),
            500,
            1500,
            3,
        );
        assert!(l.starts_with("[locks 2 s]"), "{l}");
        assert!(l.contains("500 ops/s now"), "{l}");
        assert!(l.contains("750 ops/s so far"), "{l}");
        assert!(l.contains("1500 ops"), "{l}");
        assert!(l.contains("3 errors"), "{l}");
    }

    #[test]
    fn counts_and_stops() {
        let p = Progress::start("test", true);
        let c = p.counters();
        c.ok();
        c.ok_n(4);
        c.error();
        assert_eq!(c.ops.load(Relaxed), 5);
        assert_eq!(c.errors.load(Relaxed), 1);
        // Returns (rather than waiting out the second) once told to stop.
        p.finish();
    }
}
