//! The cluster's Redis 7 function libraries, replicated by the meta group: what `FUNCTION
//! LOAD|DELETE|FLUSH|RESTORE` change and every node's Lua engine mirrors.
//!
//! The machine keeps each library's code (the whole `FUNCTION LOAD` payload, shebang
//! included, as Redis keeps it for `FUNCTION DUMP`) and the names of the functions it
//! registers. Compiling and running the code happens on the node that takes the command
//! (it needs a Lua VM and a clock for the load timeout); the op carries the outcome — the
//! library's name and its functions — and the machine only checks what depends on the
//! replicated set, in Redis's order (`functionsCreateWithLibraryCtx`, `libraryJoin`):
//! an existing library without `REPLACE`, then a function name another library
//! already registers (names compare without case, as Redis's function dict does). Each
//! applied change bumps [`FunctionSet::version`], which nodes compare with the version
//! their engine mirrors.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// One library as replicated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLibrary {
    /// The whole `FUNCTION LOAD` payload (`#!lua name=<lib>\n...`).
    pub code: String,
    /// The functions it registers, as named in `redis.register_function`.
    pub functions: Vec<String>,
}

/// A library change proposed by a node that compiled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLibrary {
    /// Its name (from the shebang).
    pub name: String,
    /// The library as it will be stored.
    pub library: StoredLibrary,
}

/// How `FUNCTION RESTORE` treats libraries already loaded (Redis's `restorePolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestorePolicy {
    /// Drop every library first.
    Flush,
    /// Add the payload's; an existing name fails the whole restore (the default).
    Append,
    /// Add the payload's, replacing libraries of the same name.
    Replace,
}

/// A change of the function libraries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FunctionOp {
    /// `FUNCTION LOAD [REPLACE]`.
    Load {
        /// The compiled library.
        library: NewLibrary,
        /// `REPLACE` was given.
        replace: bool,
    },
    /// `FUNCTION DELETE <library>`.
    Delete(String),
    /// `FUNCTION FLUSH`.
    Flush,
    /// `FUNCTION RESTORE`.
    Restore {
        /// The payload's libraries.
        libraries: Vec<NewLibrary>,
        /// What to do with the loaded ones.
        policy: RestorePolicy,
    },
    /// Changes nothing; its reply carries the version (a node syncing with the leader).
    Sync,
}

/// The reply to a [`FunctionOp`]: the version after it, or Redis's error text (without
/// its `ERR ` code); an error changed nothing.
pub type FunctionReply = Result<u64, String>;

/// The replicated libraries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionSet {
    /// Libraries by name (case-sensitive, as Redis's library dict).
    libraries: BTreeMap<String, StoredLibrary>,
    /// Grows by one with every applied change.
    version: u64,
}

impl FunctionSet {
    /// The libraries, by name.
    pub fn libraries(&self) -> &BTreeMap<String, StoredLibrary> {
        &self.libraries
    }

    /// How many changes have been applied.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Applies `op`: the new version, or the reason nothing changed.
    pub fn apply(&mut self, op: &FunctionOp) -> FunctionReply {
        match op {
            FunctionOp::Sync => return Ok(self.version),
            FunctionOp::Load { library, replace } => {
                if self.libraries.contains_key(&library.name) && !replace {
                    return Err(format!("Library '{}' already exists", library.name));
                }
                self.join(std::slice::from_ref(library), true)?;
            }
            FunctionOp::Delete(name) => {
                if self.libraries.remove(name).is_none() {
                    return Err("Library not found".into());
                }
            }
            FunctionOp::Flush => self.libraries.clear(),
            FunctionOp::Restore { libraries, policy } => match policy {
                RestorePolicy::Flush => {
                    let mut fresh = FunctionSet::default();
                    fresh.join(libraries, false)?;
                    self.libraries = fresh.libraries;
                }
                RestorePolicy::Append => self.join(libraries, false)?,
                RestorePolicy::Replace => self.join(libraries, true)?,
            },
        }
        self.version += 1;
        Ok(self.version)
    }

    /// Adds `new` (Redis's `libraryJoin`): a library of an existing name fails unless
    /// `replace`, then any function name another remaining library registers fails; on
    /// failure nothing changes.
    fn join(&mut self, new: &[NewLibrary], replace: bool) -> Result<(), String> {
        let mut kept = self.libraries.clone();
        for lib in new {
            if kept.contains_key(&lib.name) {
                if !replace {
                    return Err(format!("Library {} already exists", lib.name));
                }
                kept.remove(&lib.name);
            }
        }
        let mut taken: Vec<String> = kept
            .values()
            .flat_map(|l| l.functions.iter().map(|f| f.to_ascii_lowercase()))
            .collect();
        for lib in new {
            for f in &lib.library.functions {
                let lower = f.to_ascii_lowercase();
                if taken.contains(&lower) {
                    return Err(format!("Function {f} already exists"));
                }
                taken.push(lower);
            }
        }
        for lib in new {
            kept.insert(lib.name.clone(), lib.library.clone());
        }
        self.libraries = kept;
        Ok(())
    }
}

/// Reads the meta machine's [`FunctionSet`], the last field of the last item of a meta
/// snapshot: one written before functions existed ends before it (postcard then fails at
/// the end of the input), which reads as no libraries. Data written since always has it.
pub(super) fn absent_is_empty<'de, D: Deserializer<'de>>(d: D) -> Result<FunctionSet, D::Error> {
    Ok(FunctionSet::deserialize(d).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use conclave_raft_store::{NodeId, Stamped, StateMachine};

    use super::*;
    use crate::meta::meta_machine::{Member, MetaMachine, MetaOp, NewMember, Ring};

    fn at(now_ms: u64, op: MetaOp) -> Stamped<MetaOp> {
        Stamped { now_ms, op }
    }

    fn lib(name: &str, functions: &[&str]) -> NewLibrary {
        NewLibrary {
            name: name.into(),
            library: StoredLibrary {
                code: format!("#!lua name={name}\n"),
                functions: functions.iter().map(|f| f.to_string()).collect(),
            },
        }
    }

    fn load(set: &mut FunctionSet, l: NewLibrary, replace: bool) -> FunctionReply {
        set.apply(&FunctionOp::Load {
            library: l,
            replace,
        })
    }

    #[test]
    fn load_replace_delete_flush_in_redis_order() {
        let mut s = FunctionSet::default();
        assert_eq!(load(&mut s, lib("a", &["f1", "f2"]), false), Ok(1));
        assert_eq!(
            load(&mut s, lib("a", &["f3"]), false),
            Err("Library 'a' already exists".into())
        );
        assert_eq!(
            load(&mut s, lib("b", &["F1"]), false),
            Err("Function F1 already exists".into()),
            "function names collide without case"
        );
        assert_eq!(load(&mut s, lib("a", &["f1"]), true), Ok(2));
        assert_eq!(s.libraries()["a"].functions, vec!["f1".to_string()]);
        assert_eq!(s.apply(&FunctionOp::Sync), Ok(2));
        assert_eq!(
            s.apply(&FunctionOp::Delete("zz".into())),
            Err("Library not found".into())
        );
        assert_eq!(s.apply(&FunctionOp::Delete("a".into())), Ok(3));
        load(&mut s, lib("a", &["f1"]), false).unwrap();
        assert_eq!(s.apply(&FunctionOp::Flush), Ok(5));
        assert!(s.libraries().is_empty());
    }

    #[test]
    fn restore_policies() {
        let mut s = FunctionSet::default();
        load(&mut s, lib("lib1", &["f6"]), false).unwrap();
        load(&mut s, lib("lib2", &["f3", "f4"]), false).unwrap();
        let payload = vec![lib("lib1", &["f1", "f2", "f3"])];
        let restore = |policy| FunctionOp::Restore {
            libraries: payload.clone(),
            policy,
        };
        let before = s.clone();
        assert_eq!(
            s.apply(&restore(RestorePolicy::Append)),
            Err("Library lib1 already exists".into())
        );
        assert_eq!(
            s.apply(&restore(RestorePolicy::Replace)),
            Err("Function f3 already exists".into())
        );
        assert_eq!(s, before, "a failed restore changes nothing");
        assert_eq!(s.apply(&restore(RestorePolicy::Flush)), Ok(3));
        assert_eq!(s.libraries().len(), 1);
    }

    #[test]
    fn a_snapshot_from_before_functions_reads_with_none() {
        #[derive(Serialize)]
        struct Before {
            queue_shards: Option<u32>,
            members: BTreeMap<NodeId, Member>,
            ring: Ring,
        }
        let mut m = MetaMachine::default();
        let seed = MetaOp::Seed(vec![NewMember {
            id: 1,
            addr: "127.0.0.1:17001".into(),
            voter: true,
        }]);
        m.apply(1, &at(1, seed));
        let before = Before {
            queue_shards: Some(4),
            members: m.members().map(|x| (x.id, x.clone())).collect(),
            ring: m.ring().clone(),
        };
        let old: MetaMachine =
            postcard::from_bytes(&postcard::to_allocvec(&before).unwrap()).unwrap();
        assert_eq!(old.queue_shards(), Some(4));
        assert_eq!(old.ring(), m.ring());
        assert!(old.functions().libraries().is_empty());
        let json: MetaMachine =
            serde_json::from_slice(&serde_json::to_vec(&before).unwrap()).unwrap();
        assert_eq!(json, old);
        // Today's snapshots keep their libraries.
        let mut now = old.clone();
        let load = FunctionOp::Load {
            library: NewLibrary {
                name: "l".into(),
                library: StoredLibrary {
                    code: "#!lua name=l\n".into(),
                    functions: vec!["f".into()],
                },
            },
            replace: false,
        };
        now.apply(2, &at(2, MetaOp::Functions(load)));
        let back: MetaMachine =
            postcard::from_bytes(&postcard::to_allocvec(&now).unwrap()).unwrap();
        assert_eq!(back, now);
    }
}
