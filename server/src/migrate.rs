//! `MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password]
//! [AUTH2 username password] [KEYS key ...]`, as Redis 7.0's `migrateCommand`
//! (`cluster.c`): each key is sent to the target as `RESTORE key ttl payload
//! [REPLACE]` (the payload is `DUMP`'s), over one client connection, and deleted here
//! once the target acknowledged it (unless `COPY`).
//!
//! Order of checks and replies, as Redis: options (`-ERR syntax error`; `KEYS` with a
//! non-empty key argument is refused), then `timeout` and `destination-db` as integers
//! (`timeout` ≤ 0 means 1000 ms); no key present → `+NOKEY` without connecting; a
//! failed connection → `-IOERR error or timeout connecting to the client`; the
//! pipeline `AUTH`, `SELECT`, `RESTORE`s is written and one line read per command
//! (each step bounded by `timeout`; a refused connection is reported as Redis reports it,
//! as failing to write); the first error line of the target →
//! `-ERR Target instance replied with error: <its error>` (keys the target accepted are
//! still deleted here); a write or read that fails → `-IOERR error or timeout writing|
//! reading to target instance`; else `+OK`.
//!
//! Differences from Redis: the connection is not cached between calls (Redis keeps
//! one per target for 10 s), so `SELECT` is sent every time and there is no retry on
//! a stale cached socket; `MIGRATE` is refused inside `MULTI` and scripts (it waits on
//! the network, which a transaction or script holding the keyspace must not). The local
//! keys are read (`DUMP`, `PTTL`) and deleted (`DEL`) as the client's own keyspace
//! commands, so on a cluster they go through the coherence layer like any other.

use std::time::Duration;

use bytes::Bytes;
use conclave_protocol::{Frame, Parse};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::coherent_cache;
use crate::command_table::{self, Handler};
use crate::connection::Session;
use crate::node::Node;

/// Parsed `MIGRATE` arguments.
struct Request {
    host: String,
    port: u16,
    db: i64,
    timeout: Duration,
    copy: bool,
    replace: bool,
    /// `AUTH` / `AUTH2` credentials: (username, password).
    auth: Option<(Option<Bytes>, Bytes)>,
    keys: Vec<Bytes>,
}

fn syntax() -> Frame {
    Frame::error("ERR syntax error")
}

fn parse(args: &[Bytes]) -> Result<Request, Frame> {
    if args.len() < 6 {
        return Err(Frame::error(
            "ERR wrong number of arguments for 'migrate' command",
        ));
    }
    let (mut copy, mut replace, mut auth) = (false, false, None);
    let mut keys = vec![args[3].clone()];
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j];
        if opt.eq_ignore_ascii_case(b"COPY") {
            copy = true;
        } else if opt.eq_ignore_ascii_case(b"REPLACE") {
            replace = true;
        } else if opt.eq_ignore_ascii_case(b"AUTH") {
            if more < 1 {
                return Err(syntax());
            }
            auth = Some((None, args[j + 1].clone()));
            j += 1;
        } else if opt.eq_ignore_ascii_case(b"AUTH2") {
            if more < 2 {
                return Err(syntax());
            }
            auth = Some((Some(args[j + 1].clone()), args[j + 2].clone()));
            j += 2;
        } else if opt.eq_ignore_ascii_case(b"KEYS") {
            if !args[3].is_empty() {
                return Err(Frame::error(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            keys = args[j + 1..].to_vec();
            break;
        } else {
            return Err(syntax());
        }
        j += 1;
    }
    let int = |b: &Bytes| {
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| Frame::error("ERR value is not an integer or out of range"))
    };
    let timeout = int(&args[5])?;
    let db = int(&args[4])?;
    let timeout = if timeout <= 0 { 1000 } else { timeout };
    Ok(Request {
        host: String::from_utf8_lossy(&args[1]).into_owned(),
        // Redis's `atoi`: a port that is not a number is 0, and connecting fails.
        port: std::str::from_utf8(&args[2])
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0),
        db,
        timeout: Duration::from_millis(timeout.unsigned_abs()),
        copy,
        replace,
        auth,
        keys,
    })
}

/// Runs one keyspace command of this client's (`DUMP`, `PTTL`, `DEL`) as dispatch
/// would: through the coherence layer on a cluster, under the keyspace gate otherwise.
async fn local(node: &Node, session: &Session, args: Vec<Bytes>) -> Frame {
    let Some(entry) = args.first().and_then(|n| command_table::lookup(n)) else {
        return Frame::Null;
    };
    let Handler::Cache(parser) = entry.handler else {
        return Frame::Null;
    };
    let keys = coherent_cache::keys_of(entry.spec, &args);
    let mut parse = Parse::new(args);
    match &node.coherent {
        Some(c) => {
            coherent_cache::execute(node, session, c, entry.spec, keys, parser(&mut parse)).await
        }
        None => crate::dispatch::apply_local(node, session, parser(&mut parse)).await,
    }
}

/// RESP for one command.
fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// `MIGRATE ...` (arity checked).
pub async fn execute(node: &Node, session: &mut Session, args: Vec<Bytes>) -> Frame {
    let req = match parse(&args) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    // The keys present, with their payloads and TTLs (ms, 0 = none).
    let mut found: Vec<(Bytes, Bytes, i64)> = Vec::new();
    for key in &req.keys {
        let dump = local(
            node,
            session,
            vec![Bytes::from_static(b"DUMP"), key.clone()],
        )
        .await;
        let Frame::Bulk(payload) = dump else {
            if let Frame::Error(_) = dump {
                return dump;
            }
            continue;
        };
        let pttl = local(
            node,
            session,
            vec![Bytes::from_static(b"PTTL"), key.clone()],
        )
        .await;
        match pttl {
            Frame::Integer(-2) => continue,
            Frame::Integer(ms) if ms > 0 => found.push((key.clone(), payload, ms)),
            _ => found.push((key.clone(), payload, 0)),
        }
    }
    if found.is_empty() {
        return Frame::simple("NOKEY");
    }
    let connect = TcpStream::connect((req.host.as_str(), req.port));
    // Redis's blocking connect waits only for the socket to be writable: a refused
    // connection shows up as the first write failing, a silent target as a timeout.
    let stream = match tokio::time::timeout(req.timeout, connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => return Frame::error("IOERR error or timeout writing to target instance"),
        Err(_) => return Frame::error("IOERR error or timeout connecting to the client"),
    };
    let _ = stream.set_nodelay(true);
    let mut out = Vec::new();
    if let Some((user, password)) = &req.auth {
        match user {
            Some(u) => encode(&mut out, &[b"AUTH", u, password]),
            None => encode(&mut out, &[b"AUTH", password]),
        }
    }
    encode(&mut out, &[b"SELECT", req.db.to_string().as_bytes()]);
    for (key, payload, ttl) in &found {
        let ttl = ttl.to_string();
        let mut cmd: Vec<&[u8]> = vec![b"RESTORE", key, ttl.as_bytes(), payload];
        if req.replace {
            cmd.push(b"REPLACE");
        }
        encode(&mut out, &cmd);
    }
    let (read, mut write) = stream.into_split();
    match tokio::time::timeout(req.timeout, write.write_all(&out)).await {
        Ok(Ok(())) => {}
        _ => return Frame::error("IOERR error or timeout writing to target instance"),
    }
    let mut lines = BufReader::new(read);
    // The AUTH and SELECT replies, then one per RESTORE.
    let mut first_error: Option<Vec<u8>> = None;
    let preamble = 1 + usize::from(req.auth.is_some());
    for _ in 0..preamble {
        let Some(line) = read_line(&mut lines, req.timeout).await else {
            return Frame::error("IOERR error or timeout reading to target instance");
        };
        if line.first() == Some(&b'-') && first_error.is_none() {
            first_error = Some(line);
        }
    }
    // A refused AUTH or SELECT fails every key, as in Redis.
    let preamble_failed = first_error.is_some();
    let mut socket_error = false;
    for (key, _, _) in &found {
        let Some(line) = read_line(&mut lines, req.timeout).await else {
            socket_error = true;
            break;
        };
        if preamble_failed || line.first() == Some(&b'-') {
            first_error.get_or_insert(line);
        } else if !req.copy {
            local(node, session, vec![Bytes::from_static(b"DEL"), key.clone()]).await;
        }
    }
    match first_error {
        Some(e) => Frame::error(format!(
            "ERR Target instance replied with error: {}",
            String::from_utf8_lossy(&e[1..])
        )),
        None if socket_error => Frame::error("IOERR error or timeout reading to target instance"),
        None => Frame::ok(),
    }
}

/// One reply line of the target (without its CRLF); `None` on EOF, error or timeout.
async fn read_line(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    timeout: Duration,
) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    match tokio::time::timeout(timeout, lines.read_until(b'\n', &mut line)).await {
        Ok(Ok(n)) if n > 0 => {
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            Some(line)
        }
        _ => None,
    }
}

/// The keys of a `MIGRATE` call (`COMMAND GETKEYS`): those after `KEYS` when the key
/// argument is empty and the option is there, else the key argument (Redis's
/// `migrateGetKeys`).
pub fn keys_of(args: &[Bytes]) -> Vec<Bytes> {
    if args.get(3).is_some_and(|k| k.is_empty()) {
        if let Some(at) = args
            .iter()
            .skip(6)
            .position(|a| a.eq_ignore_ascii_case(b"KEYS"))
        {
            return args[6 + at + 1..].to_vec();
        }
    }
    args.get(3).cloned().into_iter().collect()
}

/// Arguments `MONITOR` and the slow log show as `(redacted)`: the passwords (and
/// `AUTH2`'s user name) of `AUTH`/`AUTH2`, as Redis's `redactClientCommandArgument`.
pub fn redacted_positions(args: &[Bytes]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut j = 6;
    while j < args.len() {
        let a = &args[j];
        if a.eq_ignore_ascii_case(b"AUTH") && j + 1 < args.len() {
            out.push(j + 1);
            j += 1;
        } else if a.eq_ignore_ascii_case(b"AUTH2") && j + 2 < args.len() {
            out.extend([j + 1, j + 2]);
            j += 2;
        } else if a.eq_ignore_ascii_case(b"KEYS") {
            break;
        }
        j += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn options_keys_and_redaction() {
        let a = args(&[
            "MIGRATE", "h", "1", "", "0", "5", "AUTH2", "u", "p", "KEYS", "a", "b",
        ]);
        assert_eq!(keys_of(&a), args(&["a", "b"]));
        assert_eq!(redacted_positions(&a), vec![7, 8]);
        let r = parse(&a)
            .ok()
            .map(|r| (r.keys.len(), r.timeout, r.auth.is_some()));
        assert_eq!(r, Some((2, Duration::from_millis(5), true)));
        let b = args(&["MIGRATE", "h", "1", "k", "0", "0", "AUTH", "pw"]);
        assert_eq!(keys_of(&b), args(&["k"]));
        assert_eq!(redacted_positions(&b), vec![7]);
        assert_eq!(
            parse(&b).ok().map(|r| r.timeout),
            Some(Duration::from_millis(1000))
        );
        assert_eq!(
            parse(&args(&["MIGRATE", "h", "1", "k", "0", "5", "AUTH"])).err(),
            Some(syntax())
        );
        assert_eq!(
            parse(&args(&["MIGRATE", "h", "1", "k", "0", "5", "BOGUS"])).err(),
            Some(syntax())
        );
        assert!(parse(&args(&["MIGRATE", "h", "1", "k", "0", "5", "KEYS", "a"])).is_err());
        assert_eq!(
            parse(&args(&["MIGRATE", "h", "1", "k", "x", "5"])).err(),
            Some(Frame::error("ERR value is not an integer or out of range"))
        );
    }
}
