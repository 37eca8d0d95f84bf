//! A fixed-bucket histogram of atomic counters, cheap enough for the command hot path:
//! one observation is a short scan of the bounds and two relaxed `fetch_add`s (bucket
//! and sum), no lock and no allocation. A scrape reads it with [`Histogram::add_to`] into
//! a [`Snapshot`], which the exporter turns into Prometheus buckets.
//!
//! Values are integers in the histogram's own unit (nanoseconds for latencies, a count
//! for batch sizes); [`Bounds`] gives the upper bounds in that unit and how many of it
//! make one exported unit (1e9 ns in a second).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Most buckets a histogram has, `+Inf` included.
pub const MAX_BUCKETS: usize = 24;

/// The upper bounds of a histogram's buckets, ascending, without `+Inf`.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Inclusive upper bounds in the recorded unit (at most `MAX_BUCKETS - 1`).
    pub upper: &'static [u64],
    /// Recorded units per exported unit (1e9: nanoseconds to seconds). A division, so
    /// that bounds print as written (`2500 / 1e9` is `2.5e-6` exactly as a double can be).
    pub per_unit: f64,
}

/// Command latency: 2.5 µs .. 10 s, in nanoseconds (exported in seconds).
pub const LATENCY_NS: Bounds = Bounds {
    upper: &[
        2_500,
        5_000,
        10_000,
        25_000,
        50_000,
        100_000,
        250_000,
        500_000,
        1_000_000,
        2_500_000,
        5_000_000,
        10_000_000,
        25_000_000,
        50_000_000,
        100_000_000,
        250_000_000,
        500_000_000,
        1_000_000_000,
        2_500_000_000,
        5_000_000_000,
        10_000_000_000,
    ],
    per_unit: 1e9,
};

/// `fdatasync` latency: 100 µs doubling to 6.55 s, in nanoseconds (exported in seconds).
pub const FSYNC_NS: Bounds = Bounds {
    upper: &[
        100_000,
        200_000,
        400_000,
        800_000,
        1_600_000,
        3_200_000,
        6_400_000,
        12_800_000,
        25_600_000,
        51_200_000,
        102_400_000,
        204_800_000,
        409_600_000,
        819_200_000,
        1_638_400_000,
        3_276_800_000,
        6_553_600_000,
    ],
    per_unit: 1e9,
};

/// Appends made durable by one `fdatasync`: 1, 2, 4, .. 1024.
pub const BATCH: Bounds = Bounds {
    upper: &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    per_unit: 1.0,
};

/// Per-bucket counts and their sum. Aligned to a cache line so that histograms written
/// by different threads never share one.
#[derive(Debug)]
#[repr(align(64))]
pub struct Histogram {
    counts: [AtomicU64; MAX_BUCKETS],
    sum: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one value (in the unit of `bounds`).
    #[inline]
    pub fn observe(&self, bounds: &Bounds, value: u64) {
        let bucket = bounds
            .upper
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(bounds.upper.len());
        if let Some(c) = self.counts.get(bucket) {
            c.fetch_add(1, Relaxed);
        }
        self.sum.fetch_add(value, Relaxed);
    }

    /// Adds this histogram's counts into `acc` (shards are summed this way).
    pub fn add_to(&self, acc: &mut Snapshot) {
        for (a, c) in acc.counts.iter_mut().zip(&self.counts) {
            *a += c.load(Relaxed);
        }
        acc.sum = acc.sum.wrapping_add(self.sum.load(Relaxed));
    }

    /// The counts now.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::default();
        self.add_to(&mut s);
        s
    }
}

/// A histogram read at one point in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Per-bucket (not cumulative) counts; index `bounds.upper.len()` is `+Inf`.
    pub counts: [u64; MAX_BUCKETS],
    /// Sum of the recorded values, in the recorded unit.
    pub sum: u64,
}

impl Snapshot {
    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The sum in the exported unit.
    pub fn scaled_sum(&self, bounds: &Bounds) -> f64 {
        self.sum as f64 / bounds.per_unit
    }

    /// `(upper bound in the exported unit, per-bucket count)` pairs ending with `+Inf`
    /// (`f64::INFINITY`), as prometheus-client's `encode_histogram` takes them.
    pub fn buckets(&self, bounds: &Bounds) -> Vec<(f64, u64)> {
        let mut out: Vec<(f64, u64)> = bounds
            .upper
            .iter()
            .zip(self.counts)
            .map(|(&b, c)| (b as f64 / bounds.per_unit, c))
            .collect();
        let inf = self.counts.get(bounds.upper.len()).copied().unwrap_or(0);
        out.push((f64::INFINITY, inf));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_fit_and_ascend() {
        for b in [LATENCY_NS, FSYNC_NS, BATCH] {
            assert!(b.upper.len() < MAX_BUCKETS);
            assert!(b.upper.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn observations_land_in_their_bucket() {
        let h = Histogram::default();
        h.observe(&BATCH, 1); // le 1
        h.observe(&BATCH, 3); // le 4
        h.observe(&BATCH, 4); // le 4
        h.observe(&BATCH, 5000); // +Inf
        let s = h.snapshot();
        assert_eq!(s.count(), 4);
        assert_eq!(s.sum, 5008);
        let b = s.buckets(&BATCH);
        assert_eq!(b.len(), BATCH.upper.len() + 1);
        assert_eq!(b[0], (1.0, 1));
        assert_eq!(b[2], (4.0, 2));
        assert_eq!(b[BATCH.upper.len()], (f64::INFINITY, 1));
    }

    #[test]
    fn latency_scales_to_seconds() {
        let h = Histogram::default();
        h.observe(&LATENCY_NS, 1_500_000); // 1.5 ms: le 0.0025
        let s = h.snapshot();
        assert!((s.scaled_sum(&LATENCY_NS) - 0.0015).abs() < 1e-12);
        let b = s.buckets(&LATENCY_NS);
        let hit = b.iter().find(|(_, c)| *c == 1).map(|(le, _)| *le);
        assert_eq!(hit, Some(0.0025));
        assert_eq!(b[0].0, 2.5e-6);
    }
}
