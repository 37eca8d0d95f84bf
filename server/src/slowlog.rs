//! The slow log: commands whose execution took at least `slowlog-log-slower-than`
//! microseconds, newest first, at most `slowlog-max-len` of them (Redis's
//! `slowlog.c`, read by `SLOWLOG GET|LEN|RESET`).
//!
//! Redis's rules, kept here: the time is the command's execution (not waiting in
//! the socket, not writing the reply); a negative threshold turns the log off and 0
//! logs every command; commands flagged `skip_slowlog` (`EXEC`) and commands refused
//! before running (unknown, wrong arity, `NOAUTH`) are not logged; an entry keeps at
//! most 32 arguments (the 32nd says how many more there were) of at most 128 bytes
//! each (longer ones say how many bytes more); secrets are replaced by
//! `(redacted)` (`AUTH`'s arguments, `HELLO`'s `AUTH` pair, the value of
//! `CONFIG SET requirepass`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use conclave_protocol::Frame;
use parking_lot::Mutex;

/// Redis's `SLOWLOG_ENTRY_MAX_ARGC`.
const MAX_ARGC: usize = 32;
/// Redis's `SLOWLOG_ENTRY_MAX_STRING` (bytes).
const MAX_STRING: usize = 128;

/// Redis's default `slowlog-log-slower-than` (µs).
pub const DEFAULT_SLOWER_THAN_US: i64 = 10_000;
/// Redis's default `slowlog-max-len`.
pub const DEFAULT_MAX_LEN: u64 = 128;

/// One logged command.
#[derive(Debug, Clone)]
struct Entry {
    id: u64,
    /// Unix time the command was logged, seconds.
    time: u64,
    /// Execution time, µs.
    duration_us: u64,
    args: Vec<Bytes>,
    addr: String,
    name: String,
}

/// A request's arguments kept for the slow log while its command runs: up to four
/// in place (a copy of each `Bytes` handle, no allocation: what `GET`/`SET`/`INCR`
/// need), more in a `Vec`. Kept for every command while the log is on, since whether
/// the command is slow is known only once it ran.
#[derive(Debug)]
pub enum KeptArgs {
    /// `n` arguments in place.
    Few([Bytes; 4], usize),
    /// More than four.
    Many(Vec<Bytes>),
}

impl KeptArgs {
    /// Keeps `args` (cheap copies of the handles).
    pub fn keep(args: &[Bytes]) -> KeptArgs {
        match args {
            [a] => KeptArgs::Few([a.clone(), Bytes::new(), Bytes::new(), Bytes::new()], 1),
            [a, b] => KeptArgs::Few([a.clone(), b.clone(), Bytes::new(), Bytes::new()], 2),
            [a, b, c] => KeptArgs::Few([a.clone(), b.clone(), c.clone(), Bytes::new()], 3),
            [a, b, c, d] => KeptArgs::Few([a.clone(), b.clone(), c.clone(), d.clone()], 4),
            _ => KeptArgs::Many(args.to_vec()),
        }
    }

    /// The kept arguments.
    pub fn as_slice(&self) -> &[Bytes] {
        match self {
            KeptArgs::Few(a, n) => &a[..*n],
            KeptArgs::Many(v) => v,
        }
    }
}

/// The node's slow log and its two parameters.
#[derive(Debug)]
pub struct SlowLog {
    entries: Mutex<VecDeque<Entry>>,
    next_id: AtomicU64,
    /// `slowlog-log-slower-than` in µs (< 0: off).
    slower_than_us: AtomicI64,
    /// `slowlog-max-len`.
    max_len: AtomicU64,
}

impl Default for SlowLog {
    fn default() -> Self {
        SlowLog {
            entries: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(0),
            slower_than_us: AtomicI64::new(DEFAULT_SLOWER_THAN_US),
            max_len: AtomicU64::new(DEFAULT_MAX_LEN),
        }
    }
}

impl SlowLog {
    /// Whether commands are logged at all (threshold ≥ 0): when not, the caller
    /// need not keep a command's arguments.
    pub fn enabled(&self) -> bool {
        self.slower_than_us.load(Relaxed) >= 0
    }

    /// `slowlog-log-slower-than` (µs).
    pub fn slower_than_us(&self) -> i64 {
        self.slower_than_us.load(Relaxed)
    }

    /// Sets `slowlog-log-slower-than` (µs; negative turns the log off).
    pub fn set_slower_than_us(&self, us: i64) {
        self.slower_than_us.store(us, Relaxed);
    }

    /// `slowlog-max-len`.
    pub fn max_len(&self) -> u64 {
        self.max_len.load(Relaxed)
    }

    /// Sets `slowlog-max-len`, dropping the oldest entries beyond it.
    pub fn set_max_len(&self, n: u64) {
        self.max_len.store(n, Relaxed);
        let mut entries = self.entries.lock();
        entries.truncate(usize::try_from(n).unwrap_or(usize::MAX));
    }

    /// Logs `args` (the command name first) if `duration_us` reaches the threshold;
    /// `client` gives the client's `ip:port` and `CLIENT SETNAME` name (asked only
    /// when the command is logged).
    pub fn observe(
        &self,
        args: &[Bytes],
        duration_us: u64,
        client: impl FnOnce() -> (String, String),
    ) {
        let threshold = self.slower_than_us.load(Relaxed);
        if threshold < 0 || duration_us < threshold.unsigned_abs() {
            return;
        }
        let (addr, name) = client();
        let max_len = usize::try_from(self.max_len()).unwrap_or(usize::MAX);
        let entry = Entry {
            id: self.next_id.fetch_add(1, Relaxed),
            time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            duration_us,
            args: logged_args(args),
            addr,
            name,
        };
        let mut entries = self.entries.lock();
        entries.push_front(entry);
        entries.truncate(max_len);
    }

    /// `SLOWLOG LEN`.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// `SLOWLOG RESET`.
    pub fn reset(&self) {
        self.entries.lock().clear();
    }

    /// `SLOWLOG GET [count]`: the newest `count` entries (all for `None`), each
    /// `[id, unix time, µs, [args...], "ip:port", name]`.
    pub fn get(&self, count: Option<usize>) -> Frame {
        let entries = self.entries.lock();
        let n = count.unwrap_or(entries.len());
        Frame::Array(
            entries
                .iter()
                .take(n)
                .map(|e| {
                    Frame::Array(vec![
                        Frame::Integer(e.id as i64),
                        Frame::Integer(e.time as i64),
                        Frame::Integer(e.duration_us as i64),
                        Frame::Array(e.args.iter().cloned().map(Frame::Bulk).collect()),
                        Frame::bulk_string(e.addr.clone()),
                        Frame::bulk_string(e.name.clone()),
                    ])
                })
                .collect(),
        )
    }
}

/// The arguments as an entry keeps them: cut to 32, each to 128 bytes, secrets
/// redacted.
fn logged_args(args: &[Bytes]) -> Vec<Bytes> {
    let redacted = redacted_positions(args);
    let kept = if args.len() > MAX_ARGC {
        MAX_ARGC - 1
    } else {
        args.len()
    };
    let mut out: Vec<Bytes> = args
        .iter()
        .take(kept)
        .enumerate()
        .map(|(i, a)| {
            if redacted.contains(&i) {
                Bytes::from_static(b"(redacted)")
            } else if a.len() > MAX_STRING {
                let mut s = a[..MAX_STRING].to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes(),
                );
                Bytes::from(s)
            } else {
                a.clone()
            }
        })
        .collect();
    if args.len() > MAX_ARGC {
        out.push(Bytes::from(format!(
            "... ({} more arguments)",
            args.len() - MAX_ARGC + 1
        )));
    }
    out
}

/// Which arguments hold secrets (Redis's `redactClientCommandArgument` calls).
pub(crate) fn redacted_positions(args: &[Bytes]) -> Vec<usize> {
    let is = |i: usize, word: &[u8]| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(word));
    if is(0, b"AUTH") {
        return (1..args.len()).collect();
    }
    if is(0, b"HELLO") {
        // HELLO [protover [AUTH username password] [SETNAME name]]
        let mut out = Vec::new();
        let mut i = 2;
        while i < args.len() {
            if is(i, b"AUTH") {
                out.extend([i + 1, i + 2]);
                i += 3;
            } else {
                i += 2;
            }
        }
        return out;
    }
    if is(0, b"MIGRATE") {
        return crate::migrate::redacted_positions(args);
    }
    if is(0, b"ACL") && is(1, b"SETUSER") {
        // Redis redacts the user name and every rule (passwords among them).
        return (2..args.len()).collect();
    }
    if is(0, b"CONFIG") && is(1, b"SET") {
        return (2..args.len())
            .step_by(2)
            .filter(|&i| is(i, b"requirepass"))
            .map(|i| i + 1)
            .collect();
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> (String, String) {
        ("127.0.0.1:1".into(), "n".into())
    }

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn threshold_and_length() {
        let log = SlowLog::default();
        log.observe(&args(&["GET", "a"]), 9_999, client);
        assert_eq!(log.len(), 0, "below the default 10 ms");
        log.set_slower_than_us(0);
        for i in 0..5 {
            log.observe(&args(&["GET", &i.to_string()]), 0, client);
        }
        assert_eq!(log.len(), 5);
        log.set_max_len(3);
        assert_eq!(log.len(), 3);
        let Frame::Array(got) = log.get(Some(1)) else {
            panic!("array")
        };
        let Some(Frame::Array(first)) = got.first() else {
            panic!("entry")
        };
        assert_eq!(first[0], Frame::Integer(4), "newest first, ids from 0");
        assert_eq!(
            first[3],
            Frame::Array(vec![Frame::bulk_static("GET"), Frame::bulk_static("4")])
        );
        log.set_slower_than_us(-1);
        log.observe(&args(&["GET", "x"]), 1_000_000, client);
        assert_eq!(log.len(), 3, "off");
        log.reset();
        assert_eq!(log.len(), 0);
    }

    #[test]
    fn kept_args_are_the_request() {
        for n in 0..7 {
            let a: Vec<Bytes> = (0..n).map(|i| Bytes::from(i.to_string())).collect();
            assert_eq!(KeptArgs::keep(&a).as_slice(), &a[..]);
        }
    }

    #[test]
    fn entries_are_cut_and_redacted_as_redis_does() {
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let many: Vec<&str> = std::iter::once("MSET")
            .chain(many.iter().map(String::as_str))
            .collect();
        let got = logged_args(&args(&many));
        assert_eq!(got.len(), 32);
        assert_eq!(got[31], Bytes::from("... (10 more arguments)"));
        let long = "x".repeat(130);
        let got = logged_args(&args(&["SET", "k", &long]));
        assert_eq!(
            got[2],
            Bytes::from(format!("{}... (2 more bytes)", "x".repeat(128)))
        );
        let r = Bytes::from_static(b"(redacted)");
        assert_eq!(
            logged_args(&args(&["auth", "u", "p"]))[1..],
            [r.clone(), r.clone()]
        );
        assert_eq!(
            logged_args(&args(&["hello", "2", "auth", "u", "p", "setname", "n"])),
            args(&[
                "hello",
                "2",
                "auth",
                "(redacted)",
                "(redacted)",
                "setname",
                "n"
            ])
        );
        assert_eq!(
            logged_args(&args(&[
                "config",
                "set",
                "requirepass",
                "s",
                "maxclients",
                "9"
            ])),
            args(&[
                "config",
                "set",
                "requirepass",
                "(redacted)",
                "maxclients",
                "9"
            ])
        );
    }
}
