//! `ACL LOG`: the latest refusals (commands, keys, channels, failed `AUTH`), newest
//! first, as Redis 7.0 keeps them: an entry like one of the 10 newest (same reason,
//! context, object and user, within 60 s) is counted into it and moved to the front;
//! at most `acllog-max-len` entries (default 128).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use conclave_protocol::Frame;
use parking_lot::Mutex;

/// What was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A command or subcommand.
    Command,
    /// A key.
    Key,
    /// A channel.
    Channel,
    /// `AUTH` / `HELLO AUTH` with a wrong password, unknown or disabled user.
    Auth,
}

/// Where the refused command was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// A command of its own.
    Toplevel,
    /// Inside `MULTI` (queued, or run by `EXEC`).
    Multi,
    /// From a Lua script.
    Lua,
}

#[derive(Debug)]
struct Entry {
    count: u64,
    reason: Reason,
    context: Context,
    object: String,
    username: String,
    ctime_ms: u64,
    client_info: String,
}

/// The ACL log of a node.
#[derive(Debug)]
pub struct AclLog {
    entries: Mutex<VecDeque<Entry>>,
    /// `acllog-max-len`.
    pub max_len: AtomicUsize,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Default for AclLog {
    fn default() -> Self {
        AclLog {
            entries: Mutex::new(VecDeque::new()),
            max_len: AtomicUsize::new(128),
        }
    }
}

impl AclLog {
    /// Records a refusal.
    pub fn add(
        &self,
        reason: Reason,
        context: Context,
        object: String,
        username: String,
        client_info: String,
    ) {
        let now = now_ms();
        let mut entries = self.entries.lock();
        let found = entries.iter().take(10).position(|e| {
            e.reason == reason
                && e.context == context
                && e.ctime_ms.abs_diff(now) <= 60_000
                && e.object == object
                && e.username == username
        });
        if let Some(i) = found {
            if let Some(mut e) = entries.remove(i) {
                e.count += 1;
                e.ctime_ms = now;
                e.client_info = client_info;
                entries.push_front(e);
            }
            return;
        }
        entries.push_front(Entry {
            count: 1,
            reason,
            context,
            object,
            username,
            ctime_ms: now,
            client_info,
        });
        let max = self.max_len.load(Relaxed);
        entries.truncate(max);
    }

    /// Forgets every entry (`ACL LOG RESET`).
    pub fn reset(&self) {
        self.entries.lock().clear();
    }

    /// The newest `count` entries as `ACL LOG` replies them.
    pub fn frame(&self, count: usize) -> Frame {
        let now = now_ms();
        let entries = self.entries.lock();
        Frame::Array(
            entries
                .iter()
                .take(count)
                .map(|e| {
                    let reason = match e.reason {
                        Reason::Command => "command",
                        Reason::Key => "key",
                        Reason::Channel => "channel",
                        Reason::Auth => "auth",
                    };
                    let context = match e.context {
                        Context::Toplevel => "toplevel",
                        Context::Multi => "multi",
                        Context::Lua => "lua",
                    };
                    let age = now.saturating_sub(e.ctime_ms) as f64 / 1000.0;
                    Frame::Map(vec![
                        (Frame::bulk_static("count"), Frame::Integer(e.count as i64)),
                        (Frame::bulk_static("reason"), Frame::bulk_static(reason)),
                        (Frame::bulk_static("context"), Frame::bulk_static(context)),
                        (
                            Frame::bulk_static("object"),
                            Frame::Bulk(e.object.clone().into()),
                        ),
                        (
                            Frame::bulk_static("username"),
                            Frame::Bulk(e.username.clone().into()),
                        ),
                        (Frame::bulk_static("age-seconds"), Frame::Double(age)),
                        (
                            Frame::bulk_static("client-info"),
                            Frame::Bulk(e.client_info.clone().into()),
                        ),
                    ])
                })
                .collect(),
        )
    }
}
