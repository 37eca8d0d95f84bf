//! `conclave ping`: a RESP health check.
//!
//! Connects with a plain blocking socket, sends `AUTH <password>` first when one is given,
//! then `PING`, and succeeds iff the node answers `+PONG`. Made for container health checks
//! (the image has no `redis-cli`), so it needs no runtime and is bounded by `--timeout-ms`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::config::PingConfig;

/// Longest reply line accepted before giving up on the peer.
const MAX_LINE: usize = 64 * 1024;

/// Why a ping failed.
#[derive(Debug, thiserror::Error)]
pub enum PingError {
    /// The address did not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// No connection could be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address tried.
        addr: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// Reading or writing failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The deadline passed before a full reply arrived.
    #[error("no reply within {0} ms")]
    Timeout(u64),
    /// The node closed the connection before replying.
    #[error("connection closed by the node")]
    Closed,
    /// The node answered with an error reply.
    #[error("{0}")]
    Server(String),
    /// The node answered something other than what was expected.
    #[error("unexpected reply: {0}")]
    Unexpected(String),
}

/// One reply, as far as a health check cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+text`
    Simple(String),
    /// `-text`
    Error(String),
    /// Anything else (integers, bulk strings, aggregates), shown as its first line.
    Other(String),
}

/// Pings a node; exit 0 on PONG, else prints why and exits 1.
pub fn run(cfg: &PingConfig) -> ExitCode {
    match ping(cfg) {
        Ok(()) => {
            println!("PONG");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("conclave ping {}:{}: {e}", cfg.host, cfg.port);
            ExitCode::FAILURE
        }
    }
}

/// Authenticates if asked, sends PING and checks for `+PONG`, all within `cfg.timeout_ms`.
pub fn ping(cfg: &PingConfig) -> Result<(), PingError> {
    let deadline = Instant::now() + Duration::from_millis(cfg.timeout_ms.max(1));
    let mut conn = Conn::connect(&cfg.host, cfg.port, deadline, cfg.timeout_ms)?;
    if let Some(password) = cfg.password.as_deref().filter(|p| !p.is_empty()) {
        match conn.call(&[b"AUTH", password.as_bytes()])? {
            Reply::Simple(s) if s == "OK" => {}
            other => return Err(unexpected(other)),
        }
    }
    match conn.call(&[b"PING"])? {
        Reply::Simple(s) if s == "PONG" => Ok(()),
        other => Err(unexpected(other)),
    }
}

/// Turns a reply that is not the expected one into an error.
fn unexpected(reply: Reply) -> PingError {
    match reply {
        Reply::Error(e) => PingError::Server(e),
        Reply::Simple(s) => PingError::Unexpected(format!("+{s}")),
        Reply::Other(s) => PingError::Unexpected(s),
    }
}

/// A blocking connection with an overall deadline.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    deadline: Instant,
    timeout_ms: u64,
}

impl Conn {
    /// Connects to the first address of `host:port` that accepts before the deadline.
    fn connect(
        host: &str,
        port: u16,
        deadline: Instant,
        timeout_ms: u64,
    ) -> Result<Conn, PingError> {
        let text = format!("{host}:{port}");
        let addrs: Vec<_> = (host, port)
            .to_socket_addrs()
            .map_err(|_| PingError::Resolve(text.clone()))?
            .collect();
        let mut last = PingError::Resolve(text.clone());
        for addr in addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PingError::Timeout(timeout_ms));
            }
            match TcpStream::connect_timeout(&addr, left) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    return Ok(Conn {
                        stream,
                        buf: Vec::new(),
                        deadline,
                        timeout_ms,
                    });
                }
                Err(source) => {
                    last = PingError::Connect {
                        addr: addr.to_string(),
                        source,
                    }
                }
            }
        }
        Err(last)
    }

    /// Sends one command and reads its reply.
    fn call(&mut self, args: &[&[u8]]) -> Result<Reply, PingError> {
        self.set_timeouts()?;
        self.stream.write_all(&encode_command(args))?;
        loop {
            if let Some((reply, used)) = parse_reply(&self.buf)? {
                self.buf.drain(..used);
                return Ok(reply);
            }
            self.set_timeouts()?;
            let mut chunk = [0u8; 4096];
            let n = match self.stream.read(&mut chunk) {
                Ok(0) => return Err(PingError::Closed),
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(PingError::Timeout(self.timeout_ms))
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            self.buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }

    /// Sets the socket timeouts to what is left until the deadline.
    fn set_timeouts(&self) -> Result<(), PingError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(PingError::Timeout(self.timeout_ms));
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.set_write_timeout(Some(left))?;
        Ok(())
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Parses the first reply line in `buf`: `Ok(None)` when the line is not complete yet,
/// otherwise the reply and the number of bytes of its first line.
///
/// Only the first line matters to a health check: `+PONG` and `+OK` are single lines, and
/// anything else ends the check, so multi-line replies are reported by their first line.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, PingError> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() > MAX_LINE {
            return Err(PingError::Unexpected(format!(
                "reply line longer than {MAX_LINE} bytes"
            )));
        }
        return Ok(None);
    };
    let line = buf.get(..end).unwrap_or_default();
    let Some((&kind, rest)) = line.split_first() else {
        return Err(PingError::Unexpected("empty reply line".into()));
    };
    let text = String::from_utf8_lossy(rest).into_owned();
    let reply = match kind {
        b'+' => Reply::Simple(text),
        b'-' => Reply::Error(text),
        _ => Reply::Other(String::from_utf8_lossy(line).into_owned()),
    };
    Ok(Some((reply, end + 2)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_simple_and_error_lines() {
        assert_eq!(
            parse_reply(b"+PONG\r\n").unwrap(),
            Some((Reply::Simple("PONG".into()), 7))
        );
        assert_eq!(
            parse_reply(b"-NOAUTH Authentication required.\r\nrest").unwrap(),
            Some((Reply::Error("NOAUTH Authentication required.".into()), 34))
        );
        assert_eq!(
            parse_reply(b"$4\r\nPONG\r\n").unwrap(),
            Some((Reply::Other("$4".into()), 4))
        );
        assert_eq!(
            parse_reply(b":1\r\n").unwrap(),
            Some((Reply::Other(":1".into()), 4))
        );
    }

    #[test]
    fn incomplete_lines_wait_for_more() {
        assert_eq!(parse_reply(b"").unwrap(), None);
        assert_eq!(parse_reply(b"+PON").unwrap(), None);
        assert_eq!(parse_reply(b"+PONG\r").unwrap(), None);
    }

    #[test]
    fn rejects_empty_and_endless_lines() {
        assert!(parse_reply(b"\r\n").is_err());
        assert!(parse_reply(&vec![b'+'; MAX_LINE + 1]).is_err());
    }

    #[test]
    fn encodes_resp_arrays() {
        assert_eq!(encode_command(&[b"PING"]), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(
            encode_command(&[b"AUTH", b"p w"]),
            b"*2\r\n$4\r\nAUTH\r\n$3\r\np w\r\n"
        );
    }

    /// A one-connection fake node: answers each command with the next canned reply and
    /// returns the bytes it received.
    fn fake_node(replies: &'static [&'static [u8]]) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut seen = Vec::new();
            for reply in replies {
                let mut chunk = [0u8; 1024];
                let n = s.read(&mut chunk).unwrap();
                seen.extend_from_slice(&chunk[..n]);
                s.write_all(reply).unwrap();
            }
            seen
        });
        (port, handle)
    }

    fn cfg(port: u16, password: Option<&str>) -> PingConfig {
        PingConfig {
            host: "127.0.0.1".into(),
            port,
            password: password.map(Into::into),
            timeout_ms: 2000,
        }
    }

    #[test]
    fn pong_is_success() {
        let (port, node) = fake_node(&[b"+PONG\r\n"]);
        ping(&cfg(port, None)).unwrap();
        assert_eq!(node.join().unwrap(), b"*1\r\n$4\r\nPING\r\n");
    }

    #[test]
    fn auth_goes_first() {
        let (port, node) = fake_node(&[b"+OK\r\n", b"+PONG\r\n"]);
        ping(&cfg(port, Some("secret"))).unwrap();
        assert_eq!(
            node.join().unwrap(),
            b"*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n*1\r\n$4\r\nPING\r\n"
        );
    }

    #[test]
    fn error_replies_fail() {
        let (port, _node) = fake_node(&[b"-NOAUTH Authentication required.\r\n"]);
        let err = ping(&cfg(port, None)).unwrap_err();
        assert_eq!(err.to_string(), "NOAUTH Authentication required.");

        let (port, _node) = fake_node(&[b"-WRONGPASS invalid username-password pair\r\n"]);
        assert!(matches!(
            ping(&cfg(port, Some("x"))),
            Err(PingError::Server(_))
        ));

        let (port, _node) = fake_node(&[b"$4\r\nPONG\r\n"]);
        assert!(matches!(
            ping(&cfg(port, None)),
            Err(PingError::Unexpected(_))
        ));
    }

    #[test]
    fn silence_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut c = cfg(port, None);
        c.timeout_ms = 200;
        assert!(matches!(ping(&c), Err(PingError::Timeout(200))));
        drop(listener);
    }

    #[test]
    fn refused_connection_fails() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        assert!(matches!(
            ping(&cfg(port, None)),
            Err(PingError::Connect { .. })
        ));
    }
}
