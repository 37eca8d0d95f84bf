//! A node's queue budget: `Q.PUSH` answers `-OOM` once the node is past it, rather than
//! take a message it may not be able to keep (contract section 5, "Retention").
//!
//! Two limits, sampled about once a second by the driver (so a push costs one atomic
//! load):
//! - memory: payload bytes retained by the queue shards this node replicates, against
//!   `--queue-max-memory` (bytes, 0 = no limit);
//! - disk: free space of the filesystem holding the data directory, against
//!   `--queue-min-free-disk` (bytes, 0 = no limit). A full disk would stop the node's Raft
//!   log writer for every group; refusing pushes first keeps locks and acks working.
//!
//! The shard's leader checks its own node: the replicas of a shard hold the same
//! messages, so their retained bytes agree, while free disk is each node's own.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

use crate::service::ServiceError;

const WITHIN: u8 = 0;
const MEMORY: u8 = 1;
const DISK: u8 = 2;

/// The limits and the last verdict.
#[derive(Debug)]
pub(crate) struct Budget {
    max_memory: u64,
    min_free_disk: u64,
    data_dir: PathBuf,
    over: AtomicU8,
}

impl Budget {
    /// A budget of `max_memory` retained payload bytes and `min_free_disk` free bytes
    /// under `data_dir` (0: that limit is off).
    pub(crate) fn new(max_memory: u64, min_free_disk: u64, data_dir: PathBuf) -> Budget {
        Budget {
            max_memory,
            min_free_disk,
            data_dir,
            over: AtomicU8::new(WITHIN),
        }
    }

    /// Re-evaluates the verdict: `retained` payload bytes held by this node's shards.
    /// A failed `statvfs` leaves the disk limit unchecked (logged at debug).
    pub(crate) fn sample(&self, retained: u64) {
        let verdict = if self.max_memory > 0 && retained > self.max_memory {
            MEMORY
        } else if self.min_free_disk > 0
            && free_disk(&self.data_dir).is_some_and(|free| free < self.min_free_disk)
        {
            DISK
        } else {
            WITHIN
        };
        self.over.store(verdict, Relaxed);
    }

    /// `Ok` while a push may be taken, else the `-OOM` to answer.
    pub(crate) fn admit_push(&self) -> Result<(), ServiceError> {
        match self.over.load(Relaxed) {
            MEMORY => Err(ServiceError::OverBudget(format!(
                "queue messages retained on this node exceed --queue-max-memory ({} bytes)",
                self.max_memory
            ))),
            DISK => Err(ServiceError::OverBudget(format!(
                "less than --queue-min-free-disk ({} bytes) free on this node's disk",
                self.min_free_disk
            ))),
            _ => Ok(()),
        }
    }
}

/// Bytes available to unprivileged users on the filesystem holding `dir`.
fn free_disk(dir: &std::path::Path) -> Option<u64> {
    match rustix::fs::statvfs(dir) {
        Ok(st) => Some(st.f_bavail.saturating_mul(st.f_frsize)),
        Err(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "statvfs failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_and_disk_limits() {
        let dir = std::env::temp_dir();
        let b = Budget::new(1000, 0, dir.clone());
        b.sample(1000);
        assert!(b.admit_push().is_ok(), "at the limit is within it");
        b.sample(1001);
        let err = b.admit_push().unwrap_err().to_string();
        assert!(err.starts_with("OOM "), "{err}");
        b.sample(10);
        assert!(b.admit_push().is_ok());
        // No filesystem has u64::MAX bytes free.
        let b = Budget::new(0, u64::MAX, dir.clone());
        b.sample(0);
        assert!(b.admit_push().unwrap_err().to_string().contains("disk"));
        let off = Budget::new(0, 0, dir);
        off.sample(u64::MAX);
        assert!(off.admit_push().is_ok());
    }
}
