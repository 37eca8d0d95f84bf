//! `MONITOR`: every command this node runs, as Redis 7.0 streams it to its monitors.
//!
//! A monitor gets one status line per command, in the order the commands *complete*
//! (Redis feeds monitors at the end of `call()`), whatever protocol it speaks:
//!
//! ```text
//! +1764514800.123456 [0 127.0.0.1:52144] "set" "foo" "bar"
//! +1764514800.123501 [0 lua] "set" "foo" "bar"
//! ```
//!
//! - the time is the Unix time with microseconds; `0` is the database; the client is its
//!   address, or `lua` for a command a script runs (`redis.call`/`redis.pcall`);
//! - each argument is quoted as Redis's `sdscatrepr` does (`\\`, `\"`, `\n`, `\r`, `\t`,
//!   `\a`, `\b`, other unprintable bytes as `\xHH`); the command name is shown as sent;
//! - not shown: commands refused before they run (unknown, wrong arity, `NOAUTH`, queued
//!   in `MULTI` — they show when `EXEC` runs them, before the `exec` line), `admin`
//!   commands (`CONFIG`, `DEBUG`, `MONITOR`...) and the ones flagged `skip_monitor`:
//!   `EVAL*` and `FCALL*` are shown *before* they run instead, so a script's own commands follow its
//!   line (Redis's `evalCommand`);
//! - secrets are redacted as in the slow log (`AUTH`, `HELLO ... AUTH`, `CONFIG SET
//!   requirepass`): `"(redacted)"`.
//!
//! Lines go through each monitor's push queue ([`crate::push`]), written between its own
//! replies. With no monitor, the cost per command is one atomic load
//! ([`Monitors::active`]). `RESET` and disconnecting end monitoring; `CLIENT LIST` shows a
//! monitor with the `O` flag.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use conclave_protocol::CommandSpec;
use parking_lot::RwLock;

use crate::clients::{flag, ClientHandle};

/// Who ran a command, as the monitor line names it.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A client connection.
    Client(&'a ClientHandle),
    /// A script's `redis.call`/`redis.pcall`.
    Lua,
}

/// The node's monitors.
#[derive(Debug, Default)]
pub struct Monitors {
    count: AtomicUsize,
    list: RwLock<Vec<Arc<ClientHandle>>>,
}

impl Monitors {
    /// Whether any client monitors (one relaxed load: the hot path's only cost).
    pub fn active(&self) -> bool {
        self.count.load(Relaxed) > 0
    }

    /// Makes `client` a monitor; false when it already was (Redis then answers nothing).
    pub fn add(&self, client: &Arc<ClientHandle>) -> bool {
        let mut list = self.list.write();
        if list.iter().any(|c| c.id == client.id) {
            return false;
        }
        list.push(client.clone());
        client.state.set_flag(flag::MONITOR, true);
        self.count.store(list.len(), Relaxed);
        true
    }

    /// Ends monitoring by client `id` (`RESET`, disconnect); nothing if it was not one.
    pub fn remove(&self, client: &ClientHandle) {
        if !client.state.has_flag(flag::MONITOR) {
            return;
        }
        client.state.set_flag(flag::MONITOR, false);
        let mut list = self.list.write();
        list.retain(|c| c.id != client.id);
        self.count.store(list.len(), Relaxed);
    }

    /// Whether a command of `spec` is shown after it runs (not `admin`, not
    /// `skip_monitor`).
    pub fn shows(spec: &CommandSpec) -> bool {
        !spec
            .flags
            .iter()
            .any(|f| *f == "admin" || *f == "skip_monitor")
    }

    /// Sends the line of `args`, run by `source`, to every monitor.
    pub fn feed(&self, source: Source<'_>, args: &[Bytes]) {
        let line = line(source, args, now_us());
        let list = self.list.read();
        for monitor in list.iter() {
            monitor.push(line.clone());
        }
    }
}

/// With monitors active, at the start of a command that passed the gate: `EVAL*` are
/// fed now (their scripts' commands follow them); a shown command's arguments are
/// returned to be fed once it has run.
pub fn before(
    node: &crate::node::Node,
    source: Source<'_>,
    spec: &CommandSpec,
    args: &[Bytes],
) -> Option<Vec<Bytes>> {
    if spec.name.starts_with("EVAL") || spec.name.starts_with("FCALL") {
        node.monitors.feed(source, args);
        return None;
    }
    // A container's subcommand has its own flags (`client|list` is `admin`).
    let sub = args.get(1).and_then(|sub| {
        let subs = crate::builtin::subcommands::of(spec.name);
        crate::builtin::subcommands::position(spec.name, sub).and_then(|i| subs.get(i))
    });
    Monitors::shows(sub.unwrap_or(spec)).then(|| args.to_vec())
}

/// `MONITOR`: `+OK`, then the lines; nothing more when the client already monitors
/// (Redis answers nothing then). Refused inside `MULTI` as Redis refuses it to a client
/// that must get one reply per command.
pub fn execute(
    node: &crate::node::Node,
    session: &mut crate::connection::Session,
    _spec: &CommandSpec,
    _parse: &mut conclave_protocol::Parse,
) -> conclave_protocol::Frame {
    if session.in_exec {
        return conclave_protocol::Frame::error(
            "ERR MONITOR isn't allowed for DENY BLOCKING client",
        );
    }
    if node.monitors.add(&session.handle) {
        conclave_protocol::Frame::ok()
    } else {
        session.no_reply = true;
        conclave_protocol::Frame::ok()
    }
}

/// Microseconds since the Unix epoch.
fn now_us() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

/// The monitor line of `args` (Redis's `replicationFeedMonitors`).
fn line(source: Source<'_>, args: &[Bytes], at_us: u128) -> Bytes {
    let mut out = BytesMut::with_capacity(64 + args.iter().map(|a| a.len() + 3).sum::<usize>());
    out.extend_from_slice(format!("+{}.{:06} ", at_us / 1_000_000, at_us % 1_000_000).as_bytes());
    match source {
        Source::Client(c) => out.extend_from_slice(format!("[0 {}]", c.addr).as_bytes()),
        Source::Lua => out.extend_from_slice(b"[0 lua]"),
    }
    let redacted = crate::slowlog::redacted_positions(args);
    for (i, arg) in args.iter().enumerate() {
        out.extend_from_slice(b" ");
        if redacted.contains(&i) {
            repr(&mut out, b"(redacted)");
        } else {
            repr(&mut out, arg);
        }
    }
    out.extend_from_slice(b"\r\n");
    out.freeze()
}

/// `bytes` quoted as Redis's `sdscatrepr`.
fn repr(out: &mut BytesMut, bytes: &[u8]) {
    out.extend_from_slice(b"\"");
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.extend_from_slice(&[b]),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.extend_from_slice(b"\"");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_quote_and_redact_as_redis_does() {
        let args: Vec<Bytes> = ["SET", "k\"\\", "a\r\n\t\x07\x08\x01\u{7f}"]
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect();
        assert_eq!(
            &line(Source::Lua, &args, 1_764_514_800_000_042)[..],
            b"+1764514800.000042 [0 lua] \"SET\" \"k\\\"\\\\\" \"a\\r\\n\\t\\a\\b\\x01\\x7f\"\r\n"
        );
        let auth: Vec<Bytes> = ["auth", "user", "pw"]
            .iter()
            .map(|s| Bytes::from_static(s.as_bytes()))
            .collect();
        assert_eq!(
            &line(Source::Lua, &auth, 1_000_000)[..],
            b"+1.000000 [0 lua] \"auth\" \"(redacted)\" \"(redacted)\"\r\n"
        );
    }
}
