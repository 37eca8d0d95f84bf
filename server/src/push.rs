//! Out-of-band messages to a connection: client-side caching invalidations, pub/sub
//! messages, `tracking-redir-broken`.
//!
//! Whoever sends one (another connection's command, or the keyspace reporting a change
//! under a shard lock) encodes it at once for the target's protocol, as Redis appends it
//! to the target's output buffer, and queues the bytes in the target's [`Outbox`]. The
//! target's connection task writes queued pushes between replies — after the reply it
//! is encoding, never inside one — and while it is idle or blocked
//! (`connection.rs`). Pushes ignore `CLIENT REPLY OFF|SKIP` (Redis's `CLIENT_PUSHING`).
//!
//! Formats (Redis 7, `tracking.c`, `pubsub.c`):
//!
//! | push | RESP3 | RESP2 |
//! |---|---|---|
//! | invalidation | `>2 $10 invalidate <keys>` | `*3 $7 message $20 __redis__:invalidate <keys>` (only to a redirect target in pub/sub mode) |
//! | message | `>3 $7 message <channel> <payload>` | `*3 ...` |
//! | pmessage | `>4 $8 pmessage <pattern> <channel> <payload>` | `*4 ...` |
//! | (un)subscribe confirmations | `>3 $9 subscribe <channel> :<count>` | `*3 ...` |
//! | broken redirect | `>2 $21 tracking-redir-broken :<id>` | (none) |
//!
//! `<keys>` is an array of bulk strings, or a null after `FLUSHALL` (`_` when the
//! tracking client speaks RESP3, `$-1` otherwise — the tracking client's protocol, as
//! Redis picks it).
//!
//! Memory: a client that does not read its pushes is disconnected once
//! [`MAX_QUEUED_BYTES`] are waiting (Redis's hard `client-output-buffer-limit` of
//! pub/sub clients, 32 MB).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::mpsc;

/// Most bytes of pushes queued for one client before it is disconnected.
pub const MAX_QUEUED_BYTES: usize = 32 * 1024 * 1024;

/// The channel of tracking invalidations for RESP2 redirect targets.
pub const INVALIDATE_CHANNEL: &[u8] = b"__redis__:invalidate";

/// The sending half of a connection's push queue (kept in its registry entry).
#[derive(Debug)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Bytes>,
    queued: Arc<AtomicUsize>,
}

/// The receiving half, owned by the connection task.
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Bytes>,
    queued: Arc<AtomicUsize>,
}

/// A new push queue.
pub fn queue() -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        Outbox {
            tx,
            queued: queued.clone(),
        },
        Inbox { rx, queued },
    )
}

impl Outbox {
    /// Queues `bytes`; false when the client already has [`MAX_QUEUED_BYTES`] waiting
    /// (the caller disconnects it) or is gone.
    pub fn send(&self, bytes: Bytes) -> bool {
        let n = bytes.len();
        if self.queued.fetch_add(n, Relaxed) + n > MAX_QUEUED_BYTES {
            self.queued.fetch_sub(n, Relaxed);
            return false;
        }
        if self.tx.send(bytes).is_err() {
            self.queued.fetch_sub(n, Relaxed);
            return false;
        }
        true
    }

    /// Bytes waiting to be written (`CLIENT LIST`'s `omem`).
    pub fn queued(&self) -> usize {
        self.queued.load(Relaxed)
    }
}

impl Inbox {
    /// The next push, waiting for one.
    pub async fn recv(&mut self) -> Option<Bytes> {
        let b = self.rx.recv().await?;
        self.queued.fetch_sub(b.len(), Relaxed);
        Some(b)
    }

    /// Appends every queued push to `out` without waiting; whether there was any.
    pub fn drain_into(&mut self, out: &mut BytesMut) -> bool {
        let mut any = false;
        while let Ok(b) = self.rx.try_recv() {
            self.queued.fetch_sub(b.len(), Relaxed);
            out.extend_from_slice(&b);
            any = true;
        }
        any
    }
}

fn len_line(out: &mut BytesMut, tag: u8, n: usize) {
    let mut buf = itoa::Buffer::new();
    out.put_u8(tag);
    out.put_slice(buf.format(n).as_bytes());
    out.put_slice(b"\r\n");
}

fn bulk(out: &mut BytesMut, data: &[u8]) {
    len_line(out, b'$', data.len());
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// The header of a push of `n` elements: `>n` in RESP3, `*n` in RESP2.
pub fn header(out: &mut BytesMut, resp3: bool, n: usize) {
    len_line(out, if resp3 { b'>' } else { b'*' }, n);
}

/// The `<keys>` part of an invalidation: an array of bulk strings.
pub fn keys_body<'a>(keys: impl ExactSizeIterator<Item = &'a [u8]>) -> Bytes {
    let mut out = BytesMut::new();
    len_line(&mut out, b'*', keys.len());
    for k in keys {
        bulk(&mut out, k);
    }
    out.freeze()
}

/// The `<keys>` part of a flush invalidation: a null in the tracking client's protocol.
pub fn null_body(resp3: bool) -> Bytes {
    Bytes::from_static(if resp3 { b"_\r\n" } else { b"$-1\r\n" })
}

/// An invalidation carrying `body`: a push for a RESP3 target, else a pub/sub message
/// on [`INVALIDATE_CHANNEL`].
pub fn invalidation(resp3: bool, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(48 + body.len());
    if resp3 {
        header(&mut out, true, 2);
        bulk(&mut out, b"invalidate");
    } else {
        header(&mut out, false, 3);
        bulk(&mut out, b"message");
        bulk(&mut out, INVALIDATE_CHANNEL);
    }
    out.put_slice(body);
    out.freeze()
}

/// `tracking-redir-broken <id>` (RESP3 only).
pub fn redir_broken(id: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(48);
    header(&mut out, true, 2);
    bulk(&mut out, b"tracking-redir-broken");
    let mut buf = itoa::Buffer::new();
    out.put_u8(b':');
    out.put_slice(buf.format(id).as_bytes());
    out.put_slice(b"\r\n");
    out.freeze()
}

/// A pub/sub `message`.
pub fn message(resp3: bool, channel: &[u8], payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(40 + channel.len() + payload.len());
    header(&mut out, resp3, 3);
    bulk(&mut out, b"message");
    bulk(&mut out, channel);
    bulk(&mut out, payload);
    out.freeze()
}

/// A pub/sub `pmessage` (a pattern subscription matched).
pub fn pmessage(resp3: bool, pattern: &[u8], channel: &[u8], payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(48 + pattern.len() + channel.len() + payload.len());
    header(&mut out, resp3, 4);
    bulk(&mut out, b"pmessage");
    bulk(&mut out, pattern);
    bulk(&mut out, channel);
    bulk(&mut out, payload);
    out.freeze()
}

/// A subscription confirmation (`subscribe`, `unsubscribe`, `psubscribe`,
/// `punsubscribe`): the channel or pattern (`None`: a null, when there was nothing to
/// unsubscribe from) and the client's subscription count after it.
pub fn subscription(
    out: &mut BytesMut,
    resp3: bool,
    kind: &str,
    name: Option<&[u8]>,
    count: usize,
) {
    header(out, resp3, 3);
    bulk(out, kind.as_bytes());
    match name {
        Some(n) => bulk(out, n),
        None if resp3 => out.put_slice(b"_\r\n"),
        None => out.put_slice(b"$-1\r\n"),
    }
    let mut buf = itoa::Buffer::new();
    out.put_u8(b':');
    out.put_slice(buf.format(count).as_bytes());
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidation_formats_are_redis_bytes() {
        let body = keys_body([&b"k"[..]].into_iter());
        assert_eq!(
            &invalidation(true, &body)[..],
            b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"
        );
        assert_eq!(
            &invalidation(false, &body)[..],
            b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nk\r\n"
        );
        assert_eq!(
            &invalidation(true, &null_body(true))[..],
            b">2\r\n$10\r\ninvalidate\r\n_\r\n"
        );
        assert_eq!(
            &redir_broken(12)[..],
            b">2\r\n$21\r\ntracking-redir-broken\r\n:12\r\n"
        );
    }

    #[test]
    fn pubsub_formats() {
        assert_eq!(
            &message(false, b"ch", b"hi")[..],
            b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
        );
        assert_eq!(
            &pmessage(true, b"c*", b"ch", b"hi")[..],
            b">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$2\r\nhi\r\n"
        );
        let mut out = BytesMut::new();
        subscription(&mut out, false, "unsubscribe", None, 0);
        assert_eq!(&out[..], b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
    }

    #[tokio::test]
    async fn the_outbox_is_bounded_and_counts_bytes() {
        let (out, mut inbox) = queue();
        assert!(out.send(Bytes::from_static(b"abc")));
        assert_eq!(out.queued(), 3);
        assert!(!out.send(Bytes::from(vec![0u8; MAX_QUEUED_BYTES])));
        assert_eq!(out.queued(), 3);
        let mut buf = BytesMut::new();
        assert!(inbox.drain_into(&mut buf));
        assert_eq!(&buf[..], b"abc");
        assert_eq!(out.queued(), 0);
        assert!(out.send(Bytes::from_static(b"x")));
        assert_eq!(inbox.recv().await.as_deref(), Some(&b"x"[..]));
    }
}
