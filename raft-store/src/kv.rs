//! [`KvMachine`]: the smallest useful [`StateMachine`] — a replicated map of byte
//! strings. It exercises the generic engine in tests and benchmarks, and backs the
//! node's `DEBUG.KV*` groups (`--debug-kv-groups`), which test many groups of a
//! second machine type in one process.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::machine::{Stamped, StateMachine};

/// A replicated map from key to value (both byte strings).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvMachine {
    /// The map.
    pub map: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// An operation on a [`KvMachine`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOp {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The new value.
        value: Vec<u8>,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
}

/// The result of a [`KvOp`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvApplied {
    /// The log index of the entry that held the operation.
    pub index: u64,
    /// The key's value before the operation.
    pub previous: Option<Vec<u8>>,
}

impl StateMachine for KvMachine {
    type Op = KvOp;
    type Applied = KvApplied;

    fn apply(&mut self, index: u64, req: &Stamped<KvOp>) -> KvApplied {
        let previous = match &req.op {
            KvOp::Put { key, value } => self.map.insert(key.clone(), value.clone()),
            KvOp::Delete { key } => self.map.remove(key),
        };
        KvApplied { index, previous }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_and_delete_report_the_previous_value() {
        let mut m = KvMachine::default();
        let put = |v: &[u8]| Stamped {
            now_ms: 1,
            op: KvOp::Put {
                key: b"k".to_vec(),
                value: v.to_vec(),
            },
        };
        assert_eq!(m.apply(1, &put(b"a")).previous, None);
        assert_eq!(m.apply(2, &put(b"b")).previous, Some(b"a".to_vec()));
        let del = Stamped {
            now_ms: 2,
            op: KvOp::Delete { key: b"k".to_vec() },
        };
        assert_eq!(
            m.apply(3, &del),
            KvApplied {
                index: 3,
                previous: Some(b"b".to_vec())
            }
        );
        assert!(m.map.is_empty());
    }
}
