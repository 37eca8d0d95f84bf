//! Users through the meta Raft group: `ACL SETUSER`/`DELUSER` are proposed there (from
//! any node, by compare-and-set on the user's rules), and every node installs the
//! applied table into its [`Acl`](super::Acl) — parsed against its own command table —
//! and disconnects the clients of users that are gone (Redis's
//! `ACLFreeUserAndKillClients`). The table is in the meta group's log and snapshots,
//! so users survive restarts; passwords are only ever stored as SHA-256.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use conclave_cluster::meta::acl::{AclApplied, AclOp, AclTable};
use tracing::warn;

use super::describe;
use super::user::{set_user, User};
use crate::node::Node;

/// How often a compare-and-set is retried after losing a race before giving up.
const ATTEMPTS: usize = 16;
/// How long a change waits for this node to apply it after the leader did.
const APPLY_WAIT: Duration = Duration::from_secs(5);

/// Parses a user's stored rules; a rule this node cannot read (a command it does not
/// know) is skipped with a warning rather than losing the user.
pub fn parse_user(name: &str, rules: &str) -> User {
    let mut u = User::new(name);
    let words: Vec<&[u8]> = rules.split_ascii_whitespace().map(str::as_bytes).collect();
    if let Ok(parsed) = set_user(&u, &words) {
        return parsed;
    }
    for w in words {
        if let Err(e) = u.apply(w) {
            warn!(user = name, rule = %String::from_utf8_lossy(w), error = e.text(), "ACL rule skipped");
        }
    }
    u
}

/// The user `name` as stored rules say, `None` when not stored.
fn stored(table: &AclTable, name: &str) -> Option<String> {
    table.users.get(name).cloned()
}

/// `ACL SETUSER name rules...`: applies the rules to the user as replicated (or to a
/// new user; `default` starts from this node's), proposes the result, retries on a
/// concurrent change. `Err` is the whole error line: Redis's `ERR ...` for a bad rule,
/// `CLUSTERDOWN ...` when the meta group has no leader or quorum.
pub async fn set(node: &Node, name: &str, rules: &[&[u8]]) -> Result<(), String> {
    let mut base = stored(&node.meta.acl_table(), name);
    for _ in 0..ATTEMPTS {
        let current = match &base {
            Some(r) => parse_user(name, r),
            None if name == "default" => (*node.acl.default_user()).clone(),
            None => User::new(name),
        };
        let new = set_user(&current, rules).map_err(|e| format!("ERR {e}"))?;
        let op = AclOp::Set {
            name: name.to_string(),
            base: base.clone(),
            rules: describe::user(&new),
        };
        match node.meta.acl_write(op).await {
            Ok(AclApplied::Done { version, .. }) => {
                wait_applied(node, version).await;
                return Ok(());
            }
            Ok(AclApplied::Conflict { current }) => base = current,
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("TRYAGAIN ACL SETUSER kept racing with other changes of this user".into())
}

/// `ACL DELUSER names...`: how many existed; `Err` is the error line.
pub async fn delete(node: &Node, names: Vec<String>) -> Result<u64, String> {
    match node.meta.acl_write(AclOp::Del { names }).await {
        Ok(AclApplied::Done { deleted, version }) => {
            wait_applied(node, version).await;
            Ok(deleted)
        }
        Ok(AclApplied::Conflict { .. }) => Err("ERR unexpected ACL conflict".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Waits until this node has installed table version `version` (bounded).
async fn wait_applied(node: &Node, version: u64) {
    let mut applied = node.meta.watch_applied();
    let deadline = tokio::time::Instant::now() + APPLY_WAIT;
    loop {
        if node.meta.acl_table().version >= version {
            install(node);
            return;
        }
        match tokio::time::timeout_at(deadline, applied.changed()).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}

/// Installs the applied table if it is newer than the installed one, and disconnects
/// clients whose user is gone.
pub fn install(node: &Node) {
    let table = node.meta.acl_table();
    {
        let mut installed = node.acl_version.lock();
        if table.version <= *installed {
            return;
        }
        *installed = table.version;
        let users: BTreeMap<String, Arc<User>> = table
            .users
            .iter()
            .map(|(n, r)| (n.clone(), Arc::new(parse_user(n, r))))
            .collect();
        node.acl.install(users);
    }
    // Redis's `ACLFreeUserAndKillClients` (user deleted) and
    // `ACLKillPubsubClientsIfNeeded` (a subscription no longer allowed).
    for c in node.clients.all() {
        let name = c.names.lock().user.clone();
        let allowed = node.acl.get(&name).is_some_and(|u| {
            let subs = c.subscriptions.lock();
            let ok = subs
                .all()
                .all(|(ch, pattern)| super::check::channel_allowed(&u, ch, pattern));
            ok
        });
        if !allowed && !c.is_killed() {
            c.kill();
        }
    }
}

/// Follows the meta group: installs every new table as this node applies it. Runs
/// for the node's life.
pub async fn follow(node: Arc<Node>) {
    let mut applied = node.meta.watch_applied();
    install(&node);
    while applied.changed().await.is_ok() {
        install(&node);
    }
}
