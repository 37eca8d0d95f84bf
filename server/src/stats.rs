//! Server-wide counters for `INFO stats`, the sampler behind
//! `instantaneous_ops_per_sec` (Redis's 16-sample moving average), and the ops/s of
//! each of the last [`HISTORY_LEN`] seconds for the dashboard's sparklines.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Counters updated by connections (in batches, not per command).
#[derive(Debug, Default)]
pub struct Stats {
    /// Commands executed.
    pub commands: AtomicU64,
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections refused by `maxclients`.
    pub rejected: AtomicU64,
    /// Bytes read from clients.
    pub net_input: AtomicU64,
    /// Bytes written to clients.
    pub net_output: AtomicU64,
    /// Protocol errors (connections closed for them).
    pub protocol_errors: AtomicU64,
    /// Error replies sent (`total_error_replies`).
    pub error_replies: AtomicU64,
    /// Error replies by their first word (`INFO errorstats`: `errorstat_ERR:count=3`).
    errors_by_prefix: Mutex<std::collections::BTreeMap<String, u64>>,
    samples: Mutex<VecDeque<(Instant, u64)>>,
    history: Mutex<History>,
}

/// Seconds of ops/s kept by [`Stats::ops_history`].
pub const HISTORY_LEN: usize = 60;

/// One ops/s figure per second, oldest first.
#[derive(Debug, Default)]
struct History {
    /// Where the current second started: its time and the command counter then.
    start: Option<(Instant, u64)>,
    per_sec: VecDeque<u64>,
}

impl History {
    /// Closes the current second when one has passed since it started.
    fn sample(&mut self, now: Instant, commands: u64) {
        let Some((start, at_start)) = self.start else {
            self.start = Some((now, commands));
            return;
        };
        let elapsed = now.saturating_duration_since(start);
        if elapsed < Duration::from_secs(1) {
            return;
        }
        // A counter reset (`CONFIG RESETSTAT`) counts from zero.
        let done = commands.checked_sub(at_start).unwrap_or(commands);
        self.per_sec
            .push_back((done as f64 / elapsed.as_secs_f64()).round() as u64);
        while self.per_sec.len() > HISTORY_LEN {
            self.per_sec.pop_front();
        }
        self.start = Some((now, commands));
    }
}

impl Stats {
    /// Counts one error reply whose text is `text` (`ERR wrong number ...`): by its
    /// first word, as Redis's `errorstats` do.
    pub fn error_reply(&self, text: &[u8]) {
        self.error_replies.fetch_add(1, Relaxed);
        let prefix = text.split(|&b| b == b' ').next().unwrap_or_default();
        let prefix = String::from_utf8_lossy(prefix).into_owned();
        *self.errors_by_prefix.lock().entry(prefix).or_insert(0) += 1;
    }

    /// Error replies by first word, in name order.
    pub fn errors_by_prefix(&self) -> Vec<(String, u64)> {
        self.errors_by_prefix
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// Records a sample of the command counter; called by the server's timer.
    pub fn sample(&self) {
        let now = Instant::now();
        let commands = self.commands.load(Relaxed);
        let mut s = self.samples.lock();
        s.push_back((now, commands));
        while s.len() > 16 {
            s.pop_front();
        }
        drop(s);
        self.history.lock().sample(now, commands);
    }

    /// Commands per second in each of the last (up to) [`HISTORY_LEN`] whole seconds,
    /// oldest first.
    pub fn ops_history(&self) -> Vec<u64> {
        self.history.lock().per_sec.iter().copied().collect()
    }

    /// Commands per second over the recent samples.
    pub fn ops_per_sec(&self) -> u64 {
        let s = self.samples.lock();
        match (s.front(), s.back()) {
            (Some(first), Some(last)) if last.0 > first.0 => {
                let secs = last.0.duration_since(first.0).as_secs_f64();
                ((last.1 - first.1) as f64 / secs) as u64
            }
            _ => 0,
        }
    }

    /// `CONFIG RESETSTAT`.
    pub fn reset(&self) {
        for c in [
            &self.commands,
            &self.connections,
            &self.rejected,
            &self.net_input,
            &self.net_output,
            &self.protocol_errors,
            &self.error_replies,
        ] {
            c.store(0, Relaxed);
        }
        self.errors_by_prefix.lock().clear();
        self.samples.lock().clear();
        self.history.lock().start = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_one_rate_per_second_for_the_last_minute() {
        let mut h = History::default();
        let t0 = Instant::now();
        h.sample(t0, 0);
        h.sample(t0 + Duration::from_millis(500), 400);
        assert!(h.per_sec.is_empty(), "no second has passed yet");
        h.sample(t0 + Duration::from_secs(1), 1000);
        assert_eq!(h.per_sec, [1000]);
        // A late tick divides by the time that really passed.
        h.sample(t0 + Duration::from_secs(3), 2000);
        assert_eq!(h.per_sec, [1000, 500]);
        // A counter reset counts from zero instead of wrapping.
        h.sample(t0 + Duration::from_secs(4), 30);
        assert_eq!(h.per_sec, [1000, 500, 30]);
        for i in 0..100u64 {
            h.sample(t0 + Duration::from_secs(5 + i), 30 + 7 * (i + 1));
        }
        assert_eq!(h.per_sec.len(), HISTORY_LEN);
        assert!(h.per_sec.iter().all(|&r| r == 7));
    }

    #[test]
    fn stats_expose_the_history_oldest_first() {
        let s = Stats::default();
        assert!(s.ops_history().is_empty());
        s.history.lock().per_sec.extend([1, 2, 3]);
        assert_eq!(s.ops_history(), [1, 2, 3]);
    }
}
