//! The keyspace's only view of time.
//!
//! Every primitive reads the time once through [`Clock::now_ms`] (Unix milliseconds).
//! Tests use a [`ManualClock`] to move time by hand instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Resolution of the per-entry LRU clock, in milliseconds (a `u32` of these wraps
/// after about 497 days; idle times are computed with wrapping arithmetic).
pub(crate) const LRU_RESOLUTION_MS: u64 = 10;

/// Where the keyspace reads the time from.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The system's real-time clock.
    #[default]
    System,
    /// A clock moved by hand (tests, simulations).
    Manual(ManualClock),
}

impl Clock {
    /// Milliseconds since the Unix epoch.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            Clock::Manual(m) => m.now_ms(),
        }
    }
}

/// A shared clock that only moves when told to.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A manual clock reading `start_ms`.
    pub fn new(start_ms: u64) -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(start_ms)))
    }

    /// The current reading.
    pub fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Sets the reading.
    pub fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::Relaxed);
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::Relaxed);
    }
}

/// The coarse LRU clock value for a wall-clock reading.
#[inline]
pub(crate) fn lru_clock(now_ms: u64) -> u32 {
    (now_ms / LRU_RESOLUTION_MS) as u32
}
