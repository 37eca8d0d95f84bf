//! [`MsgId`]: a message id `<ms>-<seq>`, as Redis Streams writes entry ids.
//!
//! Ids are strictly increasing within a topic: a push takes `ms = max(now_ms, last.ms)`
//! and `seq = last.seq + 1` when `ms` did not grow, `0` when it did (Redis `XADD *`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A message id: milliseconds (the leader's clock when pushed) and a sequence number
/// within that millisecond. Ordered by `(ms, seq)`; `0-0` is never assigned.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub struct MsgId {
    /// Milliseconds since the Unix epoch (leader's clock, never decreasing in a topic).
    pub ms: u64,
    /// Sequence within `ms`, from 0.
    pub seq: u64,
}

impl MsgId {
    /// `0-0`: below every assigned id.
    pub const MIN: MsgId = MsgId { ms: 0, seq: 0 };

    /// An id from its parts.
    pub const fn new(ms: u64, seq: u64) -> Self {
        MsgId { ms, seq }
    }

    /// The id a push at `now_ms` gets after `self` (the topic's last id): strictly
    /// greater than `self`, with `ms = max(now_ms, self.ms)`.
    pub fn next_at(self, now_ms: u64) -> MsgId {
        if now_ms > self.ms {
            MsgId::new(now_ms, 0)
        } else {
            self.successor()
        }
    }

    /// The smallest id greater than `self`.
    pub fn successor(self) -> MsgId {
        match self.seq.checked_add(1) {
            Some(seq) => MsgId::new(self.ms, seq),
            None => MsgId::new(self.ms.saturating_add(1), 0),
        }
    }

    /// Parses `<ms>-<seq>` or `<ms>` (meaning `<ms>-0`), as Redis accepts ids in
    /// `XGROUP CREATE`. `None` for anything else (the caller answers
    /// `-ERR Invalid stream ID specified as stream command argument`).
    pub fn parse(text: &[u8]) -> Option<MsgId> {
        let text = std::str::from_utf8(text).ok()?;
        let (ms, seq) = match text.split_once('-') {
            Some((ms, seq)) => (ms, Some(seq)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || seq.is_some_and(|s| !digits(s)) {
            return None;
        }
        let ms = ms.parse().ok()?;
        let seq = match seq {
            Some(s) => s.parse().ok()?,
            None => 0,
        };
        Some(MsgId::new(ms, seq))
    }
}

/// `<ms>-<seq>`, the bulk string `Q.PUSH` answers.
impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_ids_strictly_increase() {
        let a = MsgId::MIN.next_at(0);
        assert_eq!(a, MsgId::new(0, 1), "0-0 is never assigned");
        let b = a.next_at(5);
        assert_eq!(b, MsgId::new(5, 0));
        assert_eq!(b.next_at(5), MsgId::new(5, 1));
        // A clock that went back keeps the last ms.
        assert_eq!(MsgId::new(9, 3).next_at(2), MsgId::new(9, 4));
        assert_eq!(
            MsgId::new(9, u64::MAX).successor(),
            MsgId::new(10, 0),
            "sequence overflow moves to the next ms"
        );
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(MsgId::parse(b"17-3"), Some(MsgId::new(17, 3)));
        assert_eq!(MsgId::parse(b"17"), Some(MsgId::new(17, 0)));
        for bad in [&b""[..], b"-", b"1-", b"-1", b"a-1", b"1-2-3", b"+1", b"1 "] {
            assert_eq!(MsgId::parse(bad), None, "{bad:?}");
        }
        assert_eq!(MsgId::parse(b"99999999999999999999"), None, "overflow");
        assert_eq!(
            MsgId::new(1700000000000, 12).to_string(),
            "1700000000000-12"
        );
        assert!(MsgId::new(1, 9) < MsgId::new(2, 0));
    }
}
