//! [`QueueConfig`]: the `--queue-*` parameters, held in the replicated state so every
//! replica of a shard applies the same ones.

use serde::{Deserialize, Serialize};

/// Parameters of the queue semantics (contract section 5). Held in
/// [`QueueState`](super::QueueState) and in its snapshots; changed through the log
/// ([`QueueOp::Configure`](super::QueueOp::Configure)).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// `--queue-visibility`: how long a read message stays invisible to the rest of its
    /// group when `Q.READ` gives no `VISIBILITY`, in ms. Default 30000.
    pub visibility_ms: u64,
    /// `--queue-backoff-base`: the `Q.NACK` delay after the first delivery, in ms,
    /// doubling with each further delivery. Default 1000.
    pub backoff_base_ms: u64,
    /// Cap of the `Q.NACK` backoff, in ms. Default 60000.
    pub backoff_cap_ms: u64,
    /// `--queue-max-deliveries`: a message delivered this many times to a group and
    /// still not acknowledged moves to `<topic>:dlq`. Default 20; 0 means never.
    pub max_deliveries: u32,
    /// `--queue-dedup-window`: how long a `DEDUP` id is remembered, in ms. Default
    /// 120000; 0 turns dedup off.
    pub dedup_window_ms: u64,
    /// `--queue-max-len`: messages a topic may retain before `Q.PUSH` answers `-OOM`.
    /// Default 0: unbounded.
    pub max_len: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            visibility_ms: 30_000,
            backoff_base_ms: 1_000,
            backoff_cap_ms: 60_000,
            max_deliveries: 20,
            dedup_window_ms: 120_000,
            max_len: 0,
        }
    }
}

impl QueueConfig {
    /// The `Q.NACK` delay for a message delivered `deliveries` times (≥ 1):
    /// `backoff_base_ms * 2^(deliveries-1)`, at most `backoff_cap_ms`.
    pub fn backoff_ms(&self, deliveries: u32) -> u64 {
        let doublings = deliveries.saturating_sub(1).min(63);
        self.backoff_base_ms
            .saturating_mul(1u64 << doublings)
            .min(self.backoff_cap_ms)
    }

    /// Whether a message delivered `deliveries` times is exhausted (goes to the DLQ
    /// once its visibility runs out).
    pub fn exhausted(&self, deliveries: u32) -> bool {
        self.max_deliveries > 0 && deliveries >= self.max_deliveries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = QueueConfig::default();
        let delays: Vec<u64> = (1..=8).map(|d| c.backoff_ms(d)).collect();
        assert_eq!(
            delays,
            [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]
        );
        assert_eq!(c.backoff_ms(0), 1_000);
        assert_eq!(c.backoff_ms(u32::MAX), 60_000, "no overflow");
    }

    #[test]
    fn zero_max_deliveries_never_exhausts() {
        let mut c = QueueConfig::default();
        assert!(!c.exhausted(19));
        assert!(c.exhausted(20));
        c.max_deliveries = 0;
        assert!(!c.exhausted(u32::MAX));
    }
}
