//! The cluster channel's wire format: RESP2 arrays of bulk strings, multiplexed by tag.
//!
//! A node's cluster port (`--cluster-port`) speaks RESP2. A connection has two phases.
//!
//! **Handshake** (untagged, one request at a time, each answered before the next is sent):
//!
//! | request          | reply                                                   |
//! |------------------|---------------------------------------------------------|
//! | `NODE <id> [<client-addr>]` | `+OK`, or without a secret the bulk `<id> <client-addr>` of the answering node (the caller's node id, for logs and for the test harness's fault proxy, which routes on this first frame; the client addresses feed [`crate::directory`]) |
//! | `AUTH <secret>`  | `+OK` or the answering node's `<id> <client-addr>`, or `-NOAUTH invalid cluster secret` and the connection is closed |
//!
//! With `--cluster-secret` set, anything but `NODE` before a good `AUTH` is answered
//! `-NOAUTH cluster secret required` and the connection closed.
//!
//! **Tagged requests** (after the handshake): the sender puts a *tag* first, a decimal
//! `u64` it chooses, unique among its requests in flight on that connection:
//!
//! ```text
//! request:  *N\r\n $<tag> $<verb> $<arg>...          e.g. [7, RAFT, 0, APPEND, <postcard>]
//! reply:    *2\r\n $<tag> <reply>                    e.g. [7, <postcard>]  or  [7, -ERR ...]
//! ```
//!
//! `<reply>` is a bulk string (the payload) or an error line. Many requests may be in
//! flight on one connection; the receiver serves them concurrently and answers each as
//! it completes, so replies come in *completion* order and the sender matches them by
//! tag. A request that is not tagged (its first element is not all digits) is served in
//! order and answered untagged (`redis-cli -p <cluster-port> PING` works). A peer that
//! breaks the framing gets one error line and the connection is closed.
//!
//! Verbs (payloads are JSON unless said otherwise; the router,
//! [`crate::router`], serves them):
//!
//! | verb and arguments                                        | reply payload |
//! |-----------------------------------------------------------|---------------|
//! | `PING`                                                    | `PONG` |
//! | `RAFT <group> APPEND\|VOTE\|SNAPSHOT <postcard request>`   | postcard of openraft's `Result<response, RaftError>`; `-NOGROUP raft group <g> is not hosted on this node` when it is not (the sender backs off) |
//! | `FWD <service> <group> <deadline-ms> <body>`              | the service's answer, opaque to the channel (the lock service, `locks`, answers the JSON of `Result<LockOutcome, ForwardError>`); `-ERR unknown service '<s>'` when no such service is registered. `<deadline-ms>` is the sender's wall clock (ms since the Unix epoch) after which it stops waiting: the receiving service refuses a request that arrives later |
//! | `STATUS`                                                  | JSON of the node's own view (the server's `ops::node_view::NodeView`), for the dashboard |
//!
//! The functions here only encode and decode; [`crate::peer`] (sender) and
//! [`crate::peer_listener`] (receiver) own the sockets.

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::types::BytesFrame;
use thiserror::Error;

/// A frame that does not follow the channel's format.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Not RESP2 at all.
    #[error("malformed RESP: {0}")]
    Malformed(String),
    /// RESP, but not `[tag, reply]`.
    #[error("unexpected reply shape: {0}")]
    Shape(String),
}

/// A reply as it travels: the payload, or the error line (without its `-`).
pub type Reply = Result<Bytes, String>;

/// Appends the tagged request `[tag, args...]`.
pub fn encode_request(out: &mut BytesMut, tag: u64, args: &[&[u8]]) {
    let body: usize = args.iter().map(|a| a.len() + 16).sum();
    out.reserve(body + 48);
    header(out, b'*', args.len() as u64 + 1);
    bulk_number(out, tag);
    for arg in args {
        bulk(out, arg);
    }
}

/// Appends the untagged request `args` (the handshake's `NODE`, `AUTH`).
pub fn encode_untagged_request(out: &mut BytesMut, args: &[&[u8]]) {
    header(out, b'*', args.len() as u64);
    for arg in args {
        bulk(out, arg);
    }
}

/// Appends the reply to the request tagged `tag` (`[tag, reply]`), or an untagged reply
/// when `tag` is `None`.
pub fn encode_reply(out: &mut BytesMut, tag: Option<u64>, reply: &Result<&[u8], &str>) {
    if let Some(tag) = tag {
        header(out, b'*', 2);
        bulk_number(out, tag);
    }
    match reply {
        Ok(payload) => bulk(out, payload),
        Err(line) => error_line(out, line),
    }
}

/// `+OK`, the handshake's success reply.
pub fn encode_ok(out: &mut BytesMut) {
    out.extend_from_slice(b"+OK\r\n");
}

/// The tag of a request whose first element is `first`: all ASCII digits, fitting a
/// `u64`. Anything else (a verb) means the request is untagged.
pub fn parse_tag(first: &[u8]) -> Option<u64> {
    if first.is_empty() || first.len() > 20 || !first.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(first).ok()?.parse().ok()
}

/// Decodes one tagged reply from the front of `buf`, consuming it. `Ok(None)`: more
/// bytes are needed (nothing consumed).
pub fn decode_reply(buf: &mut BytesMut) -> Result<Option<(u64, Reply)>, WireError> {
    let Some((frame, _, _)) =
        decode_bytes_mut(buf).map_err(|e| WireError::Malformed(e.details().to_string()))?
    else {
        return Ok(None);
    };
    let BytesFrame::Array(mut items) = frame else {
        return Err(WireError::Shape(format!("{frame:?}")));
    };
    if items.len() != 2 {
        return Err(WireError::Shape(format!("array of {}", items.len())));
    }
    let reply = items.pop().map(payload_of);
    let tag = match items.pop() {
        Some(BytesFrame::BulkString(t)) => parse_tag(&t),
        _ => None,
    };
    match (tag, reply) {
        (Some(tag), Some(Ok(reply))) => Ok(Some((tag, reply))),
        (Some(_), Some(Err(shape))) => Err(WireError::Shape(shape)),
        _ => Err(WireError::Shape("the first element is not a tag".into())),
    }
}

/// Decodes one untagged reply (the handshake's) from the front of `buf`.
pub fn decode_untagged_reply(buf: &mut BytesMut) -> Result<Option<Reply>, WireError> {
    let Some((frame, _, _)) =
        decode_bytes_mut(buf).map_err(|e| WireError::Malformed(e.details().to_string()))?
    else {
        return Ok(None);
    };
    payload_of(frame).map(Some).map_err(WireError::Shape)
}

/// A reply element as a [`Reply`]; `Err` names a shape the channel never sends.
fn payload_of(frame: BytesFrame) -> Result<Reply, String> {
    match frame {
        BytesFrame::BulkString(b) | BytesFrame::SimpleString(b) => Ok(Ok(b)),
        BytesFrame::Error(e) => Ok(Err(e.to_string())),
        other => Err(format!("{other:?}")),
    }
}

fn header(out: &mut BytesMut, kind: u8, n: u64) {
    out.extend_from_slice(&[kind]);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn bulk(out: &mut BytesMut, data: &[u8]) {
    header(out, b'$', data.len() as u64);
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn bulk_number(out: &mut BytesMut, n: u64) {
    bulk(out, itoa::Buffer::new().format(n).as_bytes());
}

/// `-<line>\r\n`, with any CR or LF in `line` made a space so the frame stays whole.
fn error_line(out: &mut BytesMut, line: &str) {
    out.extend_from_slice(b"-");
    out.extend(
        line.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_protocol::codec::{decode_request, Limits};

    #[test]
    fn a_tagged_request_decodes_as_a_request_whose_first_argument_is_the_tag() {
        let mut buf = BytesMut::new();
        encode_request(
            &mut buf,
            42,
            &[b"FWD", b"locks", b"0", b"123", b"{\"a\":1}"],
        );
        let args = decode_request(&mut buf, &Limits::default())
            .expect("valid")
            .expect("complete");
        assert_eq!(parse_tag(&args[0]), Some(42));
        assert_eq!(&args[1][..], b"FWD");
        assert_eq!(&args[5][..], b"{\"a\":1}");
        assert!(buf.is_empty());
    }

    #[test]
    fn replies_round_trip_and_partial_frames_wait_for_more_bytes() {
        let mut wire = BytesMut::new();
        encode_reply(&mut wire, Some(7), &Ok(b"payload\r\nwith crlf"));
        encode_reply(&mut wire, Some(u64::MAX), &Err("ERR bad\r\nthing"));
        let whole = wire.clone();
        // Byte by byte: nothing is decoded before a frame is complete.
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in whole.iter() {
            buf.extend_from_slice(&[*b]);
            while let Some(r) = decode_reply(&mut buf).expect("valid") {
                got.push(r);
            }
        }
        assert_eq!(
            got,
            vec![
                (7, Ok(Bytes::from_static(b"payload\r\nwith crlf"))),
                (u64::MAX, Err("ERR bad  thing".to_string())),
            ]
        );
    }

    #[test]
    fn tags_are_decimal_u64_and_verbs_are_not_tags() {
        assert_eq!(parse_tag(b"0"), Some(0));
        assert_eq!(parse_tag(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_tag(b"18446744073709551616"), None);
        assert_eq!(parse_tag(b"NODE"), None);
        assert_eq!(parse_tag(b"-1"), None);
        assert_eq!(parse_tag(b""), None);
    }

    #[test]
    fn a_reply_that_is_not_tag_and_payload_is_a_shape_error() {
        let mut buf = BytesMut::from(&b"+OK\r\n"[..]);
        assert!(matches!(decode_reply(&mut buf), Err(WireError::Shape(_))));
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nabc\r\n$1\r\nx\r\n"[..]);
        assert!(matches!(decode_reply(&mut buf), Err(WireError::Shape(_))));
        let mut buf = BytesMut::from(&b"*1\r\n$1\r\n1\r\n"[..]);
        assert!(matches!(decode_reply(&mut buf), Err(WireError::Shape(_))));
    }

    #[test]
    fn handshake_frames_keep_the_shape_the_fault_proxy_parses() {
        let mut buf = BytesMut::new();
        encode_untagged_request(&mut buf, &[b"NODE", b"3"]);
        assert_eq!(&buf[..], b"*2\r\n$4\r\nNODE\r\n$1\r\n3\r\n");
        let mut reply = BytesMut::new();
        encode_ok(&mut reply);
        assert_eq!(
            decode_untagged_reply(&mut reply).expect("valid"),
            Some(Ok(Bytes::from_static(b"OK")))
        );
    }
}
