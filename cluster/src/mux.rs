//! One multiplexed connection to a peer's cluster port, after its handshake.
//!
//! A call takes the next tag of the connection, registers a one-shot reply slot under
//! that tag, and queues `[tag, verb, args...]` in the connection's [`Outbox`]; a writer
//! task writes whatever is queued in batches. A reader task decodes `[tag, reply]`
//! frames as they come, in any order, and completes the slot registered under each tag.
//! A reply whose caller has given up (timed out, or its future was dropped — openraft
//! drops an `AppendEntries` at its heartbeat TTL) finds no slot and is dropped, so a late
//! reply never reaches another call.
//!
//! The connection fails as a whole — EOF, an I/O error, a frame that is not the
//! channel's, or a peer gone silent — and then every call in flight on it fails at once
//! with [`PeerError::Lost`], and new calls are refused as never sent.
//!
//! **Silence.** A peer that is paused, or gone without a reset (a host restarted behind
//! the connection), never answers and never closes. When requests have waited
//! [`SILENT_LIMIT`] with nothing at all read from the peer, the connection sends a
//! `PING`, which the peer's router answers without touching any group: a live peer busy
//! with slow requests answers it and keeps the connection; one that does not answer
//! within another [`SILENT_LIMIT`] is taken for gone. (Checked when a call starts and
//! when one gives up, so an idle connection costs nothing.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tracing::debug;

use crate::outbox::{Outbox, Refused};
use crate::peer::PeerError;
use crate::wire;

/// Silence (nothing read while requests wait) after which the connection probes the
/// peer with `PING`, and the time the probe then has to be answered, 1 s each: a node
/// restarted behind a connection that never saw a reset is reached again within about
/// 2 s, and a live peer is never cut off for being slow.
pub const SILENT_LIMIT: Duration = Duration::from_millis(1000);

/// Read buffer reserve, 64 KiB.
const READ_RESERVE: usize = 64 * 1024;

/// How a call failed.
#[derive(Debug)]
pub enum CallError {
    /// The request was never queued (the connection had failed): another connection
    /// may carry it.
    NotSent(String),
    /// The request was sent (or may have been); this is the outcome.
    Failed(PeerError),
}

type Slot = oneshot::Sender<Result<Bytes, PeerError>>;

#[derive(Debug, Default)]
struct Calls {
    /// Reply slots by tag.
    pending: HashMap<u64, Slot>,
    /// Why the connection failed, once it has.
    failed: Option<String>,
    /// Since when requests have waited with nothing heard from the peer (`None` when
    /// nothing waits).
    silent_since: Option<Instant>,
    /// A `PING` went out during the current silence.
    probed: bool,
}

/// What the silence of a connection calls for.
#[derive(Debug, PartialEq, Eq)]
enum Silence {
    /// Nothing: the peer answered lately, or nothing waits.
    Fine,
    /// Silent for [`SILENT_LIMIT`]: send a probe.
    Probe,
    /// The probe went unanswered for another [`SILENT_LIMIT`]: the peer is gone.
    Gone,
}

/// What the caller side and the two tasks share.
#[derive(Debug)]
struct Shared {
    peer: Arc<str>,
    calls: Mutex<Calls>,
    next_tag: AtomicU64,
    outbox: Outbox,
    open: AtomicBool,
    reader: Mutex<Option<AbortHandle>>,
}

impl Shared {
    /// Fails the connection: every call in flight gets [`PeerError::Lost`] with `why`,
    /// the writer stops, the reader is stopped. Only the first call has an effect.
    fn fail(&self, why: &str) {
        let drained = {
            let mut calls = self.calls.lock();
            if calls.failed.is_some() {
                return;
            }
            calls.failed = Some(why.to_string());
            calls.silent_since = None;
            std::mem::take(&mut calls.pending)
        };
        self.open.store(false, Relaxed);
        self.outbox.abandon();
        if let Some(reader) = self.reader.lock().take() {
            reader.abort();
        }
        if !drained.is_empty() {
            debug!(peer = %self.peer, in_flight = drained.len(), reason = why, "cluster connection lost");
        }
        for (_, slot) in drained {
            let _ = slot.send(Err(PeerError::Lost(self.peer.to_string(), why.to_string())));
        }
    }

    /// What the connection's silence calls for; marks the probe as sent when it says
    /// [`Silence::Probe`].
    fn silence(calls: &mut Calls) -> Silence {
        let Some(since) = calls.silent_since else {
            return Silence::Fine;
        };
        let silent = since.elapsed();
        if silent >= SILENT_LIMIT * 2 && calls.probed {
            Silence::Gone
        } else if silent >= SILENT_LIMIT && !calls.probed {
            calls.probed = true;
            Silence::Probe
        } else {
            Silence::Fine
        }
    }

    /// Acts on the connection's silence: probes the peer, or fails the connection.
    /// Returns whether the connection failed.
    fn check_silence(&self) -> bool {
        let verdict = Self::silence(&mut self.calls.lock());
        match verdict {
            Silence::Fine => false,
            Silence::Probe => {
                // Its reply, like any byte read, ends the silence; nobody waits for it.
                let tag = self.next_tag.fetch_add(1, Relaxed);
                let _ = self
                    .outbox
                    .push(|out| wire::encode_request(out, tag, &[b"PING"]));
                false
            }
            Silence::Gone => {
                self.fail("the peer answered nothing, not even a PING, for 2 s");
                true
            }
        }
    }

    /// Completes the calls of `replies` (one read's worth, perhaps none), and restarts
    /// the silence clock: the peer is alive.
    fn deliver(&self, replies: &mut Vec<(u64, wire::Reply)>) {
        let mut slots = Vec::with_capacity(replies.len());
        {
            let mut calls = self.calls.lock();
            for (tag, reply) in replies.drain(..) {
                if let Some(slot) = calls.pending.remove(&tag) {
                    slots.push((slot, reply));
                }
            }
            calls.silent_since = (!calls.pending.is_empty()).then(Instant::now);
            calls.probed = false;
        }
        for (slot, reply) in slots {
            let _ = slot.send(reply.map_err(PeerError::Remote));
        }
    }
}

/// A multiplexed connection (see the module docs).
#[derive(Debug)]
pub struct MuxConn {
    shared: Arc<Shared>,
}

impl MuxConn {
    /// Starts the reader and writer tasks on `stream`, whose handshake is done;
    /// `leftover` holds any bytes read past the handshake's replies.
    pub fn start(peer: Arc<str>, stream: TcpStream, leftover: BytesMut) -> MuxConn {
        let (rd, wr) = stream.into_split();
        let shared = Arc::new(Shared {
            peer,
            calls: Mutex::new(Calls::default()),
            next_tag: AtomicU64::new(1),
            outbox: Outbox::default(),
            open: AtomicBool::new(true),
            reader: Mutex::new(None),
        });
        let reader = tokio::spawn(read_replies(shared.clone(), rd, leftover));
        *shared.reader.lock() = Some(reader.abort_handle());
        tokio::spawn({
            let shared = shared.clone();
            async move {
                let why = match shared.outbox.run(wr).await {
                    Ok(()) => "connection closed".to_string(),
                    Err(e) => format!("write failed: {e}"),
                };
                shared.fail(&why);
            }
        });
        MuxConn { shared }
    }

    /// Whether the connection can still carry calls.
    pub fn is_open(&self) -> bool {
        self.shared.open.load(Relaxed)
    }

    /// Sends `args` (verb first) and waits for its reply until `deadline`.
    pub async fn call(
        &self,
        args: &[&[u8]],
        deadline: tokio::time::Instant,
    ) -> Result<Bytes, CallError> {
        if self.shared.check_silence() {
            return Err(CallError::NotSent("the peer went silent".into()));
        }
        let tag = self.shared.next_tag.fetch_add(1, Relaxed);
        let (slot, reply) = oneshot::channel();
        {
            let mut calls = self.shared.calls.lock();
            if let Some(why) = &calls.failed {
                return Err(CallError::NotSent(why.clone()));
            }
            calls.pending.insert(tag, slot);
            if calls.silent_since.is_none() {
                calls.silent_since = Some(Instant::now());
            }
        }
        let mut waiting = Waiting {
            shared: &self.shared,
            tag,
            armed: true,
        };
        if let Err(refused) = self
            .shared
            .outbox
            .push(|out| wire::encode_request(out, tag, args))
        {
            waiting.forget();
            return Err(CallError::NotSent(match refused {
                Refused::Closed => "connection closed".into(),
                Refused::Full => format!(
                    "{} MiB queued: peer not reading",
                    crate::outbox::MAX_QUEUED >> 20
                ),
            }));
        }
        match tokio::time::timeout_at(deadline, reply).await {
            Ok(Ok(outcome)) => {
                waiting.armed = false;
                outcome.map_err(CallError::Failed)
            }
            Ok(Err(_)) => {
                waiting.armed = false;
                Err(CallError::Failed(PeerError::Lost(
                    self.shared.peer.to_string(),
                    "connection dropped".into(),
                )))
            }
            Err(_) => Err(CallError::Failed(PeerError::Timeout(
                self.shared.peer.to_string(),
            ))),
        }
    }
}

impl Drop for MuxConn {
    fn drop(&mut self) {
        // No call holds the connection any more: close it (the writer's exit closes the
        // sending direction, the peer then closes its side).
        self.shared.fail("connection dropped");
    }
}

/// A call waiting for its reply. Dropped while armed (the call timed out, or its future
/// was dropped), it removes its slot, so a late reply is discarded, and checks the
/// connection's silence.
struct Waiting<'a> {
    shared: &'a Shared,
    tag: u64,
    armed: bool,
}

impl Waiting<'_> {
    /// Removes the slot (the request was never queued).
    fn forget(&mut self) {
        self.armed = false;
        let mut calls = self.shared.calls.lock();
        calls.pending.remove(&self.tag);
        if calls.pending.is_empty() && !calls.probed {
            calls.silent_since = None;
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.armed {
            // This call's own wait counts towards the silence: check before forgetting it.
            self.shared.check_silence();
            self.forget();
        }
    }
}

/// The reader task: decodes replies until the connection fails.
async fn read_replies(shared: Arc<Shared>, mut rd: OwnedReadHalf, mut buf: BytesMut) {
    let mut replies = Vec::new();
    let why = loop {
        loop {
            match wire::decode_reply(&mut buf) {
                Ok(Some(reply)) => replies.push(reply),
                Ok(None) => break,
                Err(e) => {
                    shared.fail(&format!("bad reply: {e}"));
                    return;
                }
            }
        }
        // Every read counts as a sign of life, even a part of a large reply.
        shared.deliver(&mut replies);
        if buf.capacity() - buf.len() < READ_RESERVE / 4 {
            buf.reserve(READ_RESERVE);
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => break "the peer closed the connection".to_string(),
            Ok(_) => {}
            Err(e) => break format!("read failed: {e}"),
        }
    };
    shared.fail(&why);
}
