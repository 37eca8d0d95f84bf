//! What ACL rules name: the command categories and every command and subcommand with
//! an id (a bit in a selector's command bitmap), built once from the command table.
//!
//! Ids follow Redis's `ACLGetCommandID` in spirit: every command of the table is its
//! [`crate::command_table::Entry::index`], every subcommand (`client|kill`) gets an id
//! after them; the last bit of the bitmap ([`FUTURE_BIT`]) is set only by `+@all`, so
//! "can run commands added later" survives in the bitmap (Redis's trick). A command's
//! categories come from its declaration ([`CommandSpec::acl_categories`]); a subcommand's
//! from its own declaration.

use std::collections::HashMap;
use std::sync::LazyLock;

use conclave_protocol::spec::CommandSpec;

use crate::builtin::subcommands;
use crate::command_table;

/// Redis 7.0's categories in its order (`ACL CAT`), then Conclave's own: `lock`
/// (`LOCK.*`), `queue` (`Q.*`), `cache` and `cluster`. Category `i` is bit `i`.
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
    "lock",
    "queue",
    "cache",
    "cluster",
];

/// Words of a command bitmap (1024 bits, as Redis's `USER_COMMAND_BITS_COUNT`).
pub const WORDS: usize = 16;
/// The bit only `+@all` sets: the selector may run commands declared later.
pub const FUTURE_BIT: usize = WORDS * 64 - 1;

/// One command or subcommand as ACL rules see it.
#[derive(Debug)]
pub struct Cmd {
    /// Redis's full name, lower case: `get`, `client|kill`.
    pub fullname: String,
    /// Its categories, one bit per [`CATEGORIES`] entry.
    pub cats: u64,
    /// The container, for a subcommand.
    pub parent: Option<usize>,
    /// The ids of its subcommands (empty for most commands).
    pub subs: std::ops::Range<usize>,
    /// Its declaration.
    pub spec: &'static CommandSpec,
}

/// Every command and subcommand with its id.
#[derive(Debug)]
pub struct Catalog {
    /// By id.
    pub cmds: Vec<Cmd>,
    /// Ids by lower-case full name.
    by_name: HashMap<String, usize>,
    /// Per table entry: the id of its first subcommand.
    sub_base: Vec<usize>,
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(build);

/// The node's catalog (built on first use from the command table).
pub fn catalog() -> &'static Catalog {
    &CATALOG
}

/// The bit of category `name` (any case), if Redis or Conclave has it.
pub fn category_bit(name: &str) -> Option<u64> {
    CATEGORIES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

fn cats_of(spec: &CommandSpec) -> u64 {
    spec.acl_categories()
        .iter()
        .filter_map(|c| category_bit(c))
        .fold(0, |a, b| a | b)
}

fn build() -> Catalog {
    let entries = command_table::all();
    let mut cmds: Vec<Cmd> = entries
        .iter()
        .map(|e| Cmd {
            fullname: e.spec.lower_name(),
            cats: cats_of(e.spec),
            parent: None,
            subs: 0..0,
            spec: e.spec,
        })
        .collect();
    let mut sub_base = Vec::with_capacity(entries.len());
    for e in entries {
        let start = cmds.len();
        sub_base.push(start);
        for sub in subcommands::of(e.spec.name) {
            cmds.push(Cmd {
                fullname: sub.lower_name(),
                cats: cats_of(sub),
                parent: Some(e.index),
                subs: 0..0,
                spec: sub,
            });
        }
        let end = cmds.len();
        if let Some(c) = cmds.get_mut(e.index) {
            c.subs = start..end;
        }
    }
    debug_assert!(
        cmds.len() < FUTURE_BIT,
        "too many commands for the ACL bitmap"
    );
    let by_name = cmds
        .iter()
        .enumerate()
        .map(|(i, c)| (c.fullname.clone(), i))
        .collect();
    Catalog {
        cmds,
        by_name,
        sub_base,
    }
}

impl Catalog {
    /// The id of a command or subcommand by full name (`GET`, `client|kill`, any case).
    pub fn lookup(&self, name: &str) -> Option<usize> {
        self.by_name.get(&name.to_ascii_lowercase()).copied()
    }

    /// The id of what a request runs: the subcommand of a container (`args[1]`) when
    /// it is one of its declared subcommands, else the command itself.
    pub fn id_of(&self, entry: &command_table::Entry, sub: Option<&[u8]>) -> usize {
        let Some(c) = self.cmds.get(entry.index) else {
            return entry.index;
        };
        if c.subs.is_empty() {
            return entry.index;
        }
        match sub.and_then(|s| subcommands::position(entry.spec.name, s)) {
            Some(pos) => self.sub_base[entry.index] + pos,
            None => entry.index,
        }
    }

    /// The top-level commands, each followed by its subcommands (the order `ACL CAT`
    /// and rule descriptions walk).
    pub fn walk(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.sub_base.len()).flat_map(move |i| {
            std::iter::once(i).chain(self.cmds.get(i).map(|c| c.subs.clone()).unwrap_or(0..0))
        })
    }

    /// Ids of the commands in category bit `cat`, in [`walk`](Self::walk) order.
    pub fn in_category(&self, cat: u64) -> impl Iterator<Item = usize> + '_ {
        self.walk().filter(move |&i| self.cmds[i].cats & cat != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_and_queue_commands_have_their_categories() {
        let c = catalog();
        let lock = category_bit("lock").unwrap();
        let queue = category_bit("queue").unwrap();
        let acquire = c.lookup("lock.acquire").unwrap();
        assert_ne!(c.cmds[acquire].cats & lock, 0);
        let push = c.lookup("Q.PUSH").unwrap();
        assert_ne!(c.cmds[push].cats & queue, 0);
        let kill = c.lookup("client|kill").unwrap();
        assert_eq!(c.cmds[kill].parent, c.lookup("client"));
        assert!(c.lookup("get|x").is_none());
    }

    #[test]
    fn no_two_categories_name_the_same_commands() {
        // The rule description picks categories by best fit; two categories with the
        // same non-empty command set would describe one by the other's name.
        let c = catalog();
        let sets: Vec<Vec<usize>> = (0..CATEGORIES.len())
            .map(|i| c.in_category(1 << i).collect())
            .collect();
        for i in 0..sets.len() {
            for j in i + 1..sets.len() {
                assert!(
                    sets[i].is_empty() || sets[i] != sets[j],
                    "{} and {} have the same commands",
                    CATEGORIES[i],
                    CATEGORIES[j]
                );
            }
        }
    }
}
