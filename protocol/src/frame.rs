//! Reply frames and their wire encoding.
//!
//! Every command produces a [`Frame`]. The connection encodes it for the protocol the
//! client negotiated: RESP2 by default, RESP3 after `HELLO 3`. RESP3-only types degrade
//! the way Redis degrades them for RESP2 clients: a map becomes a flat array of
//! alternating fields and values, a set an array, a double a bulk string, a boolean an
//! integer, a verbatim string a bulk string, and every null `$-1` (or `*-1` for a
//! null array).
//!
//! Requests are decoded by [`crate::codec`];
//! this module only writes.

use bytes::{BufMut, Bytes, BytesMut};

/// The protocol version a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, the default.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

/// A reply to a client.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+OK`: a short status line without CR/LF.
    Simple(Bytes),
    /// `-ERR ...`: the whole error line, prefix included (`ERR`, `WRONGTYPE`, ...).
    Error(Bytes),
    /// `:42`
    Integer(i64),
    /// `$5\r\nhello`: binary-safe.
    Bulk(Bytes),
    /// The null reply (`$-1` in RESP2, `_` in RESP3).
    Null,
    /// The null array (`*-1` in RESP2, `_` in RESP3), e.g. a timed-out `BLPOP`.
    NullArray,
    /// `*N` followed by N frames.
    Array(Vec<Frame>),
    /// A RESP3 map (`%N`); a flat array in RESP2.
    Map(Vec<(Frame, Frame)>),
    /// A RESP3 set (`~N`); an array in RESP2.
    Set(Vec<Frame>),
    /// A RESP3 double (`,1.5`); a bulk string in RESP2.
    Double(f64),
    /// A RESP3 boolean (`#t`); `:1`/`:0` in RESP2.
    Boolean(bool),
    /// A RESP3 verbatim string with a 3-letter format (`=15\r\ntxt:...`); bulk in RESP2.
    Verbatim(&'static str, Bytes),
}

impl Frame {
    /// `+OK`
    pub fn ok() -> Frame {
        Frame::Simple(Bytes::from_static(b"OK"))
    }

    /// A simple string from a static text.
    pub fn simple(text: &'static str) -> Frame {
        Frame::Simple(Bytes::from_static(text.as_bytes()))
    }

    /// An error line; `text` must start with its prefix, e.g. `"ERR syntax error"`.
    pub fn error(text: impl Into<String>) -> Frame {
        Frame::Error(Bytes::from(text.into()))
    }

    /// A bulk string copied from a slice.
    pub fn bulk_from(data: &[u8]) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(data))
    }

    /// A bulk string from owned text.
    pub fn bulk_string(text: impl Into<String>) -> Frame {
        Frame::Bulk(Bytes::from(text.into()))
    }

    /// A bulk string from a static text.
    pub fn bulk_static(text: &'static str) -> Frame {
        Frame::Bulk(Bytes::from_static(text.as_bytes()))
    }

    /// Whether this frame is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_))
    }

    /// Appends the encoding of `self` for `proto` to `out`.
    pub fn encode(&self, proto: Protocol, out: &mut BytesMut) {
        match self {
            Frame::Simple(s) => line(out, b'+', s),
            Frame::Error(e) => line(out, b'-', e),
            Frame::Integer(n) => int_line(out, b':', *n),
            Frame::Bulk(b) => bulk(out, b'$', b),
            Frame::Null => match proto {
                Protocol::Resp2 => out.put_slice(b"$-1\r\n"),
                Protocol::Resp3 => out.put_slice(b"_\r\n"),
            },
            Frame::NullArray => match proto {
                Protocol::Resp2 => out.put_slice(b"*-1\r\n"),
                Protocol::Resp3 => out.put_slice(b"_\r\n"),
            },
            Frame::Array(items) => {
                int_line(out, b'*', items.len() as i64);
                for item in items {
                    item.encode(proto, out);
                }
            }
            Frame::Set(items) => {
                let tag = if proto == Protocol::Resp3 { b'~' } else { b'*' };
                int_line(out, tag, items.len() as i64);
                for item in items {
                    item.encode(proto, out);
                }
            }
            Frame::Map(pairs) => {
                match proto {
                    Protocol::Resp3 => int_line(out, b'%', pairs.len() as i64),
                    Protocol::Resp2 => int_line(out, b'*', 2 * pairs.len() as i64),
                }
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Frame::Double(d) => {
                let text = format_double(*d);
                match proto {
                    Protocol::Resp3 => line(out, b',', text.as_bytes()),
                    Protocol::Resp2 => bulk(out, b'$', text.as_bytes()),
                }
            }
            Frame::Boolean(b) => match proto {
                Protocol::Resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
                Protocol::Resp2 => out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
            },
            Frame::Verbatim(format, text) => match proto {
                Protocol::Resp3 => {
                    int_line(out, b'=', (text.len() + 4) as i64);
                    out.put_slice(format.as_bytes());
                    out.put_u8(b':');
                    out.put_slice(text);
                    out.put_slice(b"\r\n");
                }
                Protocol::Resp2 => bulk(out, b'$', text),
            },
        }
    }

    /// Encodes into a fresh buffer (handy in tests).
    pub fn to_bytes(&self, proto: Protocol) -> BytesMut {
        let mut out = BytesMut::new();
        self.encode(proto, &mut out);
        out
    }
}

/// Formats a double the way Redis does in replies (`inf`, `-inf`, `nan`, shortest form).
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".to_string()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{d}")
    }
}

fn line(out: &mut BytesMut, tag: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(tag);
    // A status or error line must not contain CR/LF: replace them, as Redis does.
    if text.iter().any(|&c| c == b'\r' || c == b'\n') {
        out.extend(
            text.iter()
                .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
        );
    } else {
        out.put_slice(text);
    }
    out.put_slice(b"\r\n");
}

fn int_line(out: &mut BytesMut, tag: u8, n: i64) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(n).as_bytes();
    out.reserve(digits.len() + 3);
    out.put_u8(tag);
    out.put_slice(digits);
    out.put_slice(b"\r\n");
}

fn bulk(out: &mut BytesMut, tag: u8, data: &[u8]) {
    int_line(out, tag, data.len() as i64);
    out.reserve(data.len() + 2);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: Frame, p: Protocol) -> Vec<u8> {
        f.to_bytes(p).to_vec()
    }

    #[test]
    fn scalars() {
        assert_eq!(enc(Frame::ok(), Protocol::Resp2), b"+OK\r\n");
        assert_eq!(enc(Frame::Integer(-7), Protocol::Resp2), b":-7\r\n");
        assert_eq!(
            enc(Frame::bulk_from(b"a\r\nb"), Protocol::Resp2),
            b"$4\r\na\r\nb\r\n"
        );
        assert_eq!(enc(Frame::Null, Protocol::Resp2), b"$-1\r\n");
        assert_eq!(enc(Frame::Null, Protocol::Resp3), b"_\r\n");
        assert_eq!(enc(Frame::NullArray, Protocol::Resp2), b"*-1\r\n");
        assert_eq!(
            enc(Frame::error("ERR x\r\ny"), Protocol::Resp2),
            b"-ERR x  y\r\n"
        );
    }

    #[test]
    fn map_degrades_to_flat_array() {
        let m = Frame::Map(vec![(Frame::bulk_static("a"), Frame::Integer(1))]);
        assert_eq!(enc(m.clone(), Protocol::Resp2), b"*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(m, Protocol::Resp3), b"%1\r\n$1\r\na\r\n:1\r\n");
    }

    #[test]
    fn resp3_types() {
        assert_eq!(enc(Frame::Double(1.5), Protocol::Resp3), b",1.5\r\n");
        assert_eq!(enc(Frame::Double(1.5), Protocol::Resp2), b"$3\r\n1.5\r\n");
        assert_eq!(enc(Frame::Boolean(true), Protocol::Resp3), b"#t\r\n");
        assert_eq!(
            enc(
                Frame::Verbatim("txt", Bytes::from_static(b"hi")),
                Protocol::Resp3
            ),
            b"=6\r\ntxt:hi\r\n"
        );
    }
}
