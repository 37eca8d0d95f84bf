//! Helpers for the RESP tests: a raw client that sends exact bytes and reads exact
//! replies, and conversions of `redis` crate errors back to their wire text.

#![allow(dead_code)]

pub mod introspection_scripts;
pub mod keyspace_scripts;
pub mod parity;
pub mod redis_reference;
pub mod redispy_scripts;
pub mod scenario;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A raw RESP client over one TCP connection: what is sent and read is bytes.
pub struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    /// Connects to `127.0.0.1:port` with a 10 s read timeout.
    pub fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect raw");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Raw::from_stream(s)
    }

    /// Wraps an existing stream.
    pub fn from_stream(s: TcpStream) -> Raw {
        let writer = s.try_clone().expect("clone stream");
        Raw {
            reader: BufReader::with_capacity(1 << 16, s),
            writer,
        }
    }

    /// The underlying stream (for timeouts, shutdown).
    pub fn stream(&self) -> &TcpStream {
        &self.writer
    }

    /// Writes bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// Sends one command as a RESP array of bulk strings.
    pub fn send_cmd(&mut self, args: &[&[u8]]) {
        self.send(&encode(args));
    }

    /// Sends a command and returns its raw reply.
    pub fn cmd(&mut self, args: &[&str]) -> String {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send_cmd(&args);
        self.reply_string()
    }

    /// Reads exactly one reply (nested replies included) and returns its wire bytes.
    pub fn reply(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.read_one(&mut out);
        out
    }

    /// [`Raw::reply`] as (lossy) text.
    pub fn reply_string(&mut self) -> String {
        String::from_utf8_lossy(&self.reply()).into_owned()
    }

    fn read_line(&mut self, out: &mut Vec<u8>) -> Vec<u8> {
        let start = out.len();
        let n = self.reader.read_until(b'\n', out).expect("read reply line");
        assert!(
            n > 0,
            "connection closed while reading a reply (got {:?})",
            String::from_utf8_lossy(out)
        );
        assert!(
            out.ends_with(b"\r\n"),
            "reply line not CRLF-terminated: {:?}",
            String::from_utf8_lossy(out)
        );
        out[start..out.len() - 2].to_vec()
    }

    fn read_one(&mut self, out: &mut Vec<u8>) {
        let line = self.read_line(out);
        let (tag, rest) = line.split_first().expect("empty reply line");
        let num = || -> i64 {
            std::str::from_utf8(rest)
                .expect("utf8 len")
                .parse()
                .expect("reply length")
        };
        match tag {
            b'+' | b'-' | b':' | b',' | b'#' | b'_' | b'(' => {}
            b'$' | b'!' | b'=' => {
                let n = num();
                if n >= 0 {
                    let mut body = vec![0u8; n as usize + 2];
                    self.reader.read_exact(&mut body).expect("read bulk body");
                    assert_eq!(&body[n as usize..], b"\r\n", "bulk not CRLF-terminated");
                    out.extend_from_slice(&body);
                }
            }
            b'*' | b'~' | b'>' => {
                for _ in 0..num().max(0) {
                    self.read_one(out);
                }
            }
            b'%' | b'|' => {
                for _ in 0..num().max(0) * 2 {
                    self.read_one(out);
                }
            }
            other => panic!("unknown reply type byte {:?}", *other as char),
        }
    }

    /// Asserts that the server closed the connection: the next read sees EOF (or a reset)
    /// and no more bytes.
    pub fn expect_closed(&mut self) {
        let mut buf = [0u8; 256];
        match self.reader.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!(
                "expected close, got {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                ) => {}
            Err(e) => panic!("expected close, got error {e}"),
        }
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The wire text of a server error as the `redis` crate reports it: `CODE detail`.
pub fn err_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => format!("{e}"),
    }
}

/// Runs a command expected to fail and returns its error text.
pub fn query_err(con: &mut redis::Connection, cmd: &redis::Cmd) -> String {
    match cmd.query::<redis::Value>(con) {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => err_text(&e),
    }
}

/// A `redis::Value` string (bulk, simple or verbatim) as text.
pub fn text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::VerbatimString { text, .. } => text.clone(),
        redis::Value::Okay => "OK".into(),
        other => panic!("not a string: {other:?}"),
    }
}
