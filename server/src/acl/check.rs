//! Whether a user may run a request (Redis 7.0's `ACLCheckAllUserCommandPerm`): some
//! selector must allow the command (or subcommand, or first argument), every key it
//! names with the access it needs (`%R~` for reads, `%W~` for writes, by the key's
//! declared flags) and every channel it publishes or subscribes to. When none does,
//! the most relevant refusal is reported: channel over key over command, a later
//! argument over an earlier one.

use bytes::Bytes;
use conclave_protocol::glob::glob_match;

use super::catalog::catalog;
use super::user::{Selector, User, READ, WRITE};
use crate::command_table::{self, Entry};

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The command or subcommand (`ACL_DENIED_CMD`).
    Command,
    /// The key at this argument position (`ACL_DENIED_KEY`).
    Key(usize),
    /// The channel at this argument position (`ACL_DENIED_CHANNEL`).
    Channel(usize),
}

impl Denied {
    fn rank(self) -> (u8, usize) {
        match self {
            Denied::Command => (1, 0),
            Denied::Key(i) => (2, i),
            Denied::Channel(i) => (4, i),
        }
    }

    /// The `-NOPERM` reply of a refused command (Redis's `processCommand`).
    pub fn reply(self, fullname: &str) -> String {
        match self {
            Denied::Command => {
                format!("NOPERM this user has no permissions to run the '{fullname}' command")
            }
            Denied::Key(_) => {
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .into()
            }
            Denied::Channel(_) => "NOPERM this user has no permissions to access one of the channels used as arguments".into(),
        }
    }
}

/// The permissions a key's declared flags need.
fn needs(flags: &[&str]) -> u8 {
    flags.iter().fold(0, |acc, f| match *f {
        "access" => acc | READ,
        "insert" | "delete" | "update" => acc | WRITE,
        _ => acc,
    })
}

fn key_ok(s: &Selector, key: &[u8], need: u8) -> bool {
    s.all_keys
        || s.patterns
            .iter()
            .any(|p| p.flags & need == need && glob_match(&p.pattern, key))
}

fn channel_ok(s: &Selector, channel: &[u8], is_pattern: bool) -> bool {
    s.all_channels
        || s.channels.iter().any(|c| {
            if is_pattern {
                c == channel
            } else {
                glob_match(c, channel)
            }
        })
}

/// Whether some selector of `user` allows `channel` (a pattern must be allowed
/// literally), as Redis's `ACLUserCheckChannelPerm`.
pub fn channel_allowed(user: &User, channel: &[u8], is_pattern: bool) -> bool {
    user.selectors
        .iter()
        .any(|s| channel_ok(s, channel, is_pattern))
}

/// The channel arguments of a pub/sub command: (first position, whether patterns).
fn channel_args(name: &str, argc: usize) -> Option<(std::ops::Range<usize>, bool)> {
    match name {
        "PUBLISH" | "SPUBLISH" => Some((1..2.min(argc), false)),
        "SUBSCRIBE" | "SSUBSCRIBE" => Some((1..argc, false)),
        "PSUBSCRIBE" => Some((1..argc, true)),
        _ => None,
    }
}

fn check_selector(s: &Selector, entry: &Entry, id: usize, args: &[Bytes]) -> Result<(), Denied> {
    let cat = catalog();
    let Some(cmd) = cat.cmds.get(id) else {
        return Err(Denied::Command);
    };
    if !s.all_commands && !entry.spec.no_auth() && !s.bit(id) {
        let idx = if cmd.parent.is_some() { 2 } else { 1 };
        let allowed = args.get(idx).is_some_and(|arg| {
            s.firstargs_of(id)
                .iter()
                .any(|a| a.as_bytes().eq_ignore_ascii_case(arg))
        });
        if !allowed {
            return Err(Denied::Command);
        }
    }
    let spec = cmd.spec;
    if !s.all_keys && spec.keys.2 != 0 {
        // Redis's variable key flags: `SET ... GET` reads its key too; a `BITFIELD`
        // without `SET`/`INCRBY` only reads it.
        let has = |from: usize, words: &[&[u8]]| {
            args.iter()
                .skip(from)
                .any(|a| words.iter().any(|w| a.eq_ignore_ascii_case(w)))
        };
        let set_get = spec.name == "SET" && has(3, &[b"GET"]);
        let bitfield_ro = spec.name == "BITFIELD" && !has(2, &[b"SET", b"INCRBY"]);
        for (nth, pos) in command_table::key_positions(spec, args.len()).enumerate() {
            let Some(key) = args.get(pos) else { continue };
            let need = match needs(spec.flags_of_key(nth)) {
                _ if bitfield_ro => READ,
                n if set_get => n | READ,
                n => n,
            };
            if !key_ok(s, key, need) {
                return Err(Denied::Key(pos));
            }
        }
    }
    if !s.all_channels {
        if let Some((range, pattern)) = channel_args(entry.spec.name, args.len()) {
            for pos in range {
                if !channel_ok(s, &args[pos], pattern) {
                    return Err(Denied::Channel(pos));
                }
            }
        }
    }
    Ok(())
}

/// Checks `args` (`args[0]` the name) of command `entry`, run as subcommand/command
/// `id`, against every selector of `user`.
pub fn check(user: &User, entry: &Entry, id: usize, args: &[Bytes]) -> Result<(), Denied> {
    let mut worst: Option<Denied> = None;
    for s in &user.selectors {
        match check_selector(s, entry, id, args) {
            Ok(()) => return Ok(()),
            Err(d) => {
                if worst.is_none_or(|w| d.rank() > w.rank()) {
                    worst = Some(d);
                }
            }
        }
    }
    Err(worst.unwrap_or(Denied::Command))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::user::set_user;

    fn run(user: &User, args: &[&str]) -> Result<(), Denied> {
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let entry = command_table::lookup(&args[0]).unwrap();
        let id = catalog().id_of(entry, args.get(1).map(|b| &b[..]));
        check(user, entry, id, &args)
    }

    #[test]
    fn commands_keys_and_read_write_patterns() {
        let u = set_user(
            &User::new("u"),
            &[b"on", b"+get", b"+set", b"~foo:*", b"%R~ro:*"],
        )
        .unwrap();
        assert_eq!(run(&u, &["GET", "foo:1"]), Ok(()));
        assert_eq!(run(&u, &["GET", "ro:1"]), Ok(()));
        assert_eq!(run(&u, &["SET", "ro:1", "x"]), Err(Denied::Key(1)));
        assert_eq!(run(&u, &["SET", "bar", "x"]), Err(Denied::Key(1)));
        assert_eq!(run(&u, &["INCR", "foo:1"]), Err(Denied::Command));
    }

    #[test]
    fn read_category_cannot_lock_or_push() {
        let u = set_user(&User::new("u"), &[b"on", b"+@read", b"~*"]).unwrap();
        assert_eq!(run(&u, &["GET", "k"]), Ok(()));
        assert_eq!(run(&u, &["LOCK.ACQUIRE", "r", "o"]), Err(Denied::Command));
        assert_eq!(run(&u, &["Q.PUSH", "t", "m"]), Err(Denied::Command));
        let u = set_user(&u, &[b"+@lock", b"+@queue"]).unwrap();
        assert_eq!(run(&u, &["LOCK.ACQUIRE", "r", "o"]), Ok(()));
        assert_eq!(run(&u, &["Q.PUSH", "t", "m"]), Ok(()));
    }

    #[test]
    fn subcommands_and_first_args() {
        let u = set_user(
            &User::new("u"),
            &[b"+@all", b"-client", b"+client|id", b"+select|0", b"~*"],
        )
        .unwrap();
        assert_eq!(run(&u, &["CLIENT", "ID"]), Ok(()));
        assert_eq!(run(&u, &["CLIENT", "KILL", "x"]), Err(Denied::Command));
        let u = set_user(&User::new("u"), &[b"+select|0"]).unwrap();
        assert_eq!(run(&u, &["SELECT", "0"]), Ok(()));
        assert_eq!(run(&u, &["SELECT", "1"]), Err(Denied::Command));
    }

    #[test]
    fn selectors_add_up() {
        let u = set_user(&User::new("u"), &[b"+get", b"~a", b"(+set ~b)"]).unwrap();
        assert_eq!(run(&u, &["GET", "a"]), Ok(()));
        assert_eq!(run(&u, &["SET", "b", "1"]), Ok(()));
        assert_eq!(run(&u, &["SET", "a", "1"]), Err(Denied::Key(1)));
    }
}
