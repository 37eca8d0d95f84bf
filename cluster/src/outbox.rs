//! A connection's outgoing bytes, batched: any task appends an encoded frame, one writer
//! task writes everything queued with one `write_all`.
//!
//! Producers (callers on the sending side, request tasks on the receiving side) encode
//! straight into the shared buffer under a short lock, and wake the writer when the
//! buffer goes from empty to non-empty. The writer swaps the buffer with its spare one
//! (double buffering: no allocation once both have grown) and writes it. While a write
//! is in progress, frames pile up and go out together in the next one: many small
//! messages cost about one syscall per batch, not one each.
//!
//! The queue is bounded ([`MAX_QUEUED`] bytes): a peer that stops reading (paused, cut
//! off) does not make this node buffer without limit; a frame that does not fit is
//! refused, and the caller fails it without having sent it.

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// Bytes that may wait for the writer before further frames are refused, 64 MiB. A
/// frame larger than this still goes when nothing else waits.
pub const MAX_QUEUED: usize = 64 * 1024 * 1024;
/// Capacity each buffer starts with, 16 KiB.
const INITIAL: usize = 16 * 1024;
/// A buffer grown past this (by a snapshot, say) is given back after its write, 1 MiB.
const KEEP: usize = 1024 * 1024;

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The connection is closed (or closing).
    Closed,
    /// [`MAX_QUEUED`] bytes already wait: the peer is not reading.
    Full,
}

#[derive(Debug)]
struct State {
    buf: BytesMut,
    /// Frames are accepted.
    open: bool,
    /// The writer stops at once, dropping what is queued.
    abandoned: bool,
}

/// The outgoing side of one connection.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    wake: Notify,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            state: Mutex::new(State {
                buf: BytesMut::with_capacity(INITIAL),
                open: true,
                abandoned: false,
            }),
            wake: Notify::new(),
        }
    }
}

impl Outbox {
    /// Appends one frame written by `encode` (which must append exactly one whole frame).
    pub fn push(&self, encode: impl FnOnce(&mut BytesMut)) -> Result<(), Refused> {
        let was_empty = {
            let mut st = self.state.lock();
            if !st.open {
                return Err(Refused::Closed);
            }
            if st.buf.len() >= MAX_QUEUED {
                return Err(Refused::Full);
            }
            let was_empty = st.buf.is_empty();
            encode(&mut st.buf);
            was_empty
        };
        if was_empty {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Refuses further frames; the writer writes what is queued, then stops (and dropping
    /// the write half closes the sending direction).
    pub fn finish(&self) {
        self.state.lock().open = false;
        self.wake.notify_one();
    }

    /// Refuses further frames and stops the writer without writing what is queued.
    pub fn abandon(&self) {
        {
            let mut st = self.state.lock();
            st.open = false;
            st.abandoned = true;
            st.buf.clear();
        }
        self.wake.notify_one();
    }

    /// Whether frames are still accepted.
    pub fn is_open(&self) -> bool {
        self.state.lock().open
    }

    /// The writer: writes every batch queued until [`finish`](Self::finish) (after the
    /// last batch) or [`abandon`](Self::abandon). An I/O error ends it; the caller then
    /// fails the connection.
    pub async fn run(&self, mut out: impl AsyncWrite + Unpin) -> std::io::Result<()> {
        let mut spare = BytesMut::with_capacity(INITIAL);
        loop {
            let finished = {
                let mut st = self.state.lock();
                if st.abandoned {
                    return Ok(());
                }
                if !st.buf.is_empty() {
                    std::mem::swap(&mut st.buf, &mut spare);
                }
                spare.is_empty() && !st.open
            };
            if finished {
                return out.flush().await;
            }
            if spare.is_empty() {
                self.wake.notified().await;
                continue;
            }
            out.write_all(&spare).await?;
            spare.clear();
            if spare.capacity() > KEEP {
                spare = BytesMut::with_capacity(INITIAL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn frames_pushed_before_finish_are_all_written_in_order() {
        let outbox = Arc::new(Outbox::default());
        let (w, mut r) = tokio::io::duplex(64);
        let writer = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.run(w).await }
        });
        for i in 0..1000u32 {
            outbox
                .push(|b| b.extend_from_slice(format!("{i};").as_bytes()))
                .expect("open");
            if i % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
        outbox.finish();
        assert_eq!(outbox.push(|_| {}), Err(Refused::Closed));
        let mut got = String::new();
        r.read_to_string(&mut got).await.expect("read");
        let want: String = (0..1000).map(|i| format!("{i};")).collect();
        assert_eq!(got, want);
        writer.await.expect("join").expect("write");
    }

    #[tokio::test]
    async fn a_peer_that_does_not_read_fills_the_queue_and_then_frames_are_refused() {
        let outbox = Outbox::default();
        // No writer runs: nothing drains.
        let big = vec![0u8; MAX_QUEUED / 4];
        let mut pushed = 0;
        while outbox.push(|b| b.extend_from_slice(&big)).is_ok() {
            pushed += 1;
        }
        assert_eq!(pushed, 4);
        assert_eq!(
            outbox.push(|b| b.extend_from_slice(b"x")),
            Err(Refused::Full)
        );
        outbox.abandon();
        assert!(!outbox.is_open());
    }
}
