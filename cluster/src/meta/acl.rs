//! The replicated ACL table (contract, security: the same users on every node, after
//! restarts too): user name → the user's rules as `ACL LIST` writes them (passwords
//! only as `#<sha256>`), changed by compare-and-set so concurrent `ACL SETUSER`s on
//! different nodes never lose one another's rules: a node computes the new rules from
//! the rules it read (`base`) and the leader applies them only if the user's rules
//! are still `base`; otherwise the node gets the current rules and recomputes.
//!
//! The rules are opaque here (the server crate parses them against its command table),
//! so this machine stays deterministic whatever commands a node knows.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// The users, by name, with a version bumped by every change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclTable {
    /// Rules by user name.
    pub users: BTreeMap<String, String>,
    /// Bumped by every applied change.
    pub version: u64,
}

/// A change of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AclOp {
    /// Sets `name`'s rules to `rules` if they are still `base` (`None`: no such user).
    Set {
        /// The user.
        name: String,
        /// Its rules when the change was computed.
        base: Option<String>,
        /// Its new rules.
        rules: String,
    },
    /// Deletes users (absent ones are skipped).
    Del {
        /// The users.
        names: Vec<String>,
    },
}

/// The reply to an [`AclOp`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AclApplied {
    /// Applied: how many users were deleted (0 for a set), and the table's version.
    Done {
        /// Users deleted.
        deleted: u64,
        /// The version after the change.
        version: u64,
    },
    /// A set whose base is stale: the user's current rules.
    Conflict {
        /// The rules now (`None`: no such user).
        current: Option<String>,
    },
}

impl AclTable {
    /// Applies `op` (deterministic).
    pub fn apply(&mut self, op: &AclOp) -> AclApplied {
        match op {
            AclOp::Set { name, base, rules } => {
                let current = self.users.get(name);
                if current != base.as_ref() {
                    return AclApplied::Conflict {
                        current: current.cloned(),
                    };
                }
                self.users.insert(name.clone(), rules.clone());
                self.version += 1;
                AclApplied::Done {
                    deleted: 0,
                    version: self.version,
                }
            }
            AclOp::Del { names } => {
                let deleted = names
                    .iter()
                    .filter(|n| self.users.remove(n.as_str()).is_some())
                    .count() as u64;
                self.version += 1;
                AclApplied::Done {
                    deleted,
                    version: self.version,
                }
            }
        }
    }
}

/// Reads the table as the last field of the meta state: a snapshot written before the
/// table existed ends before it (postcard reports the end of input), which reads as
/// an empty table.
pub(crate) fn lenient<'de, D: Deserializer<'de>>(d: D) -> Result<AclTable, D::Error> {
    Ok(AclTable::deserialize(d).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{MetaMachine, Ring};

    /// The meta state as it was serialized before the ACL table existed.
    #[derive(Serialize)]
    struct Before {
        queue_shards: Option<u32>,
        members: BTreeMap<u64, u8>,
        ring: Ring,
    }

    #[test]
    fn a_meta_state_written_before_the_table_reads_back_empty() {
        let before = Before {
            queue_shards: Some(16),
            members: BTreeMap::new(),
            ring: Ring {
                epoch: 3,
                members: vec![1, 2],
            },
        };
        let binary: MetaMachine =
            postcard::from_bytes(&postcard::to_allocvec(&before).unwrap()).unwrap();
        assert_eq!(binary.queue_shards(), Some(16));
        assert_eq!(binary.ring().epoch, 3);
        assert_eq!(binary.acl(), &AclTable::default());
        let json: MetaMachine =
            serde_json::from_slice(&serde_json::to_vec(&before).unwrap()).unwrap();
        assert_eq!(json.acl(), &AclTable::default());
        // And a state with users round-trips.
        let mut with = MetaMachine::default();
        let op = AclOp::Set {
            name: "u".into(),
            base: None,
            rules: "on".into(),
        };
        let _ = conclave_raft_store::StateMachine::apply(
            &mut with,
            1,
            &conclave_raft_store::Stamped {
                now_ms: 0,
                op: crate::meta::MetaOp::Acl(op),
            },
        );
        let back: MetaMachine =
            postcard::from_bytes(&postcard::to_allocvec(&with).unwrap()).unwrap();
        assert_eq!(back.acl().users.get("u").map(String::as_str), Some("on"));
    }

    #[test]
    fn compare_and_set() {
        let mut t = AclTable::default();
        let set = |base: Option<&str>, rules: &str| AclOp::Set {
            name: "u".into(),
            base: base.map(str::to_string),
            rules: rules.into(),
        };
        assert!(matches!(
            t.apply(&set(None, "on")),
            AclApplied::Done { version: 1, .. }
        ));
        assert_eq!(
            t.apply(&set(None, "off")),
            AclApplied::Conflict {
                current: Some("on".into())
            }
        );
        assert!(matches!(
            t.apply(&set(Some("on"), "off")),
            AclApplied::Done { version: 2, .. }
        ));
        let del = AclOp::Del {
            names: vec!["u".into(), "x".into()],
        };
        assert!(matches!(t.apply(&del), AclApplied::Done { deleted: 1, .. }));
        assert!(t.users.is_empty());
    }
}
