//! Server-wide counters for `INFO stats`, and the sampler behind
//! `instantaneous_ops_per_sec` (Redis's 16-sample moving average).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

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
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

impl Stats {
    /// Records a sample of the command counter; called by the server's timer.
    pub fn sample(&self) {
        let mut s = self.samples.lock();
        s.push_back((Instant::now(), self.commands.load(Relaxed)));
        while s.len() > 16 {
            s.pop_front();
        }
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
        ] {
            c.store(0, Relaxed);
        }
        self.samples.lock().clear();
    }
}
