//! Redis ACL users (contract, security): who a connection is, what it may run.
//!
//! - [`catalog`]: the categories and every command/subcommand's id, from the table;
//! - [`user`]: a user, its selectors and the `ACL SETUSER` modifiers;
//! - [`describe`]: users back as rules (`ACL LIST`, `ACL GETUSER`);
//! - [`check`]: whether a user may run a request;
//! - [`log`]: `ACL LOG`;
//! - [`gate`]: the checks in dispatch, `EXEC` and scripts;
//! - [`replicated`]: the users through the meta Raft group;
//! - here: [`Acl`], the node's users (the `default` user mirrors `requirepass`), and
//!   [`SessionUser`], a connection's user with the dispatch fast path.
//!
//! The fast path: a connection keeps its user's snapshot and the ACL *epoch* it was
//! taken at; every change of any user bumps the epoch. Dispatch loads the epoch
//! (one relaxed atomic load) and, when it has not moved and the user may run anything
//! on any key (`+@all ~* &*`, the default user), checks nothing else.
//!
//! Where users live: [`Acl`] holds the applied table; on a cluster the table is the
//! meta group's (`conclave_cluster::meta::acl`), so every node has the same users and
//! they survive restarts; changes are proposed there and land here when applied
//! ([`Acl::install`]).

pub mod catalog;
pub mod check;
pub mod describe;
pub mod gate;
pub mod log;
pub mod replicated;
pub mod user;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

pub use user::User;

/// The epoch on a cache line of its own: every command of every thread reads it, so
/// no often-written neighbour may share its line.
#[derive(Debug)]
#[repr(align(128))]
struct Epoch(AtomicU64);

/// The node's users.
#[derive(Debug)]
pub struct Acl {
    users: RwLock<BTreeMap<String, Arc<User>>>,
    /// Bumped by every change of the table; read by every command.
    epoch: Epoch,
    /// `ACL LOG`.
    pub log: log::AclLog,
}

impl Acl {
    /// The users of a fresh node: only `default`, with `requirepass` as its password
    /// (`nopass` without one).
    pub fn new(requirepass: Option<&str>) -> Acl {
        let acl = Acl {
            users: RwLock::new(BTreeMap::new()),
            epoch: Epoch(AtomicU64::new(1)),
            log: log::AclLog::default(),
        };
        acl.users
            .write()
            .insert("default".into(), Arc::new(User::default_user()));
        acl.set_requirepass(requirepass);
        acl
    }

    /// The current epoch (changes whenever any user does).
    #[inline]
    pub fn epoch(&self) -> u64 {
        self.epoch.0.load(Ordering::Acquire)
    }

    /// A user by name.
    pub fn get(&self, name: &str) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    /// The `default` user.
    pub fn default_user(&self) -> Arc<User> {
        self.get("default")
            .unwrap_or_else(|| Arc::new(User::default_user()))
    }

    /// Whether a new connection must authenticate (Redis's `authRequired`: the default
    /// user has a password or is off).
    pub fn requires_auth(&self) -> bool {
        let d = self.default_user();
        !(d.nopass && d.enabled)
    }

    /// Every user, by name.
    pub fn users(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    /// Replaces the whole table (an applied change of the replicated table, or a
    /// local change); bumps the epoch. `default` is kept if the table lacks it.
    pub fn install(&self, mut users: BTreeMap<String, Arc<User>>) {
        let mut current = self.users.write();
        if !users.contains_key("default") {
            let d = current
                .get("default")
                .cloned()
                .unwrap_or_else(|| Arc::new(User::default_user()));
            users.insert("default".into(), d);
        }
        *current = users;
        self.epoch.0.fetch_add(1, Ordering::AcqRel);
    }

    /// Stores one user (node-local change); bumps the epoch.
    pub fn put(&self, user: User) {
        self.users.write().insert(user.name.clone(), Arc::new(user));
        self.epoch.0.fetch_add(1, Ordering::AcqRel);
    }

    /// `requirepass` / `CONFIG SET requirepass`: the default user's passwords become
    /// this one (`nopass` when `None`), as Redis's `ACLUpdateDefaultUserPassword`.
    pub fn set_requirepass(&self, pass: Option<&str>) {
        let mut d = (*self.default_user()).clone();
        let _ = d.apply(b"resetpass");
        match pass {
            Some(p) => {
                let _ = d.apply(format!(">{p}").as_bytes());
            }
            None => {
                let _ = d.apply(b"nopass");
            }
        }
        self.put(d);
    }

    /// The user `name` if `pass` is one of its passwords and it is on (Redis's
    /// `ACLCheckUserCredentials`).
    pub fn authenticate(&self, name: &[u8], pass: &[u8]) -> Option<Arc<User>> {
        let name = std::str::from_utf8(name).ok()?;
        let u = self.get(name)?;
        (u.enabled && u.password_ok(pass)).then_some(u)
    }
}

/// A connection's user: a snapshot of it and the epoch it was taken at.
#[derive(Debug, Clone)]
pub struct SessionUser {
    /// The user.
    pub user: Arc<User>,
    /// [`Acl::epoch`] when `user` was read.
    pub epoch: u64,
    /// Whether `user` may run anything (no check needed).
    pub unrestricted: bool,
}

impl SessionUser {
    /// The user of a new connection: `default`.
    pub fn default_of(acl: &Acl) -> SessionUser {
        SessionUser::of(acl, acl.default_user())
    }

    /// `user` as read now (reread by name after taking the epoch, so a change between
    /// the two is never missed).
    pub fn of(acl: &Acl, user: Arc<User>) -> SessionUser {
        let epoch = acl.epoch();
        let user = acl.get(&user.name).unwrap_or(user);
        let unrestricted = user.unrestricted();
        SessionUser {
            user,
            epoch,
            unrestricted,
        }
    }

    /// Whether the connection may run anything without a check (the hot path).
    #[inline]
    pub fn fast(&self, acl: &Acl) -> bool {
        self.unrestricted && self.epoch == acl.epoch()
    }

    /// Rereads the user after a change; `false` when it was deleted.
    pub fn refresh(&mut self, acl: &Acl) -> bool {
        if self.epoch == acl.epoch() {
            return true;
        }
        let epoch = acl.epoch();
        match acl.get(&self.user.name) {
            Some(u) => {
                self.unrestricted = u.unrestricted();
                self.user = u;
                self.epoch = epoch;
                true
            }
            None => false,
        }
    }
}
