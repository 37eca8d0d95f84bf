//! `conclave cluster` start-up: says what it is waiting for — every node accepting clients,
//! then a Raft leader that all nodes agree on — and when the cluster is ready, so that a user
//! watching the terminal knows when to connect (and what is stuck when it takes long).
//!
//! Each node is asked `INFO raft` on its client port (after `AUTH` when a password is set)
//! every [`POLL`]; the fields `raft_role`, `raft_leader_id` and `raft_term` tell its view.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::tools::ping::encode_command;

/// How often the nodes are asked.
pub const POLL: Duration = Duration::from_millis(200);

/// How often a "still waiting" line is printed.
const REMIND: Duration = Duration::from_secs(5);

/// Longest reply accepted, bytes.
const MAX_REPLY: usize = 1 << 20;

/// A node to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Node id.
    pub id: u16,
    /// Client port on 127.0.0.1.
    pub port: u16,
}

/// One node's view of the Raft group, from `INFO raft`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub role: String,
    /// The leader it knows of.
    pub leader_id: Option<u64>,
    /// Its current term.
    pub term: u64,
}

/// Reads a node's view from an `INFO raft` text.
pub fn parse_info(text: &str) -> Option<View> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    Some(View {
        role: field("raft_role")?.to_string(),
        leader_id: field("raft_leader_id").and_then(|l| l.parse().ok()),
        term: field("raft_term")?.parse().ok()?,
    })
}

/// The leader every node names, if they all name the same one and it calls itself leader:
/// `(leader id, term)`.
pub fn agreed(views: &[(u16, View)]) -> Option<(u64, u64)> {
    let (_, first) = views.first()?;
    let leader = first.leader_id?;
    if views.iter().any(|(_, v)| v.leader_id != Some(leader)) {
        return None;
    }
    let (_, lv) = views.iter().find(|(id, _)| u64::from(*id) == leader)?;
    (lv.role == "leader").then_some((leader, lv.term))
}

/// Prints progress lines as `[cluster] ...` on stderr until the cluster is ready or `limit`
/// has passed. Meant to run as a task beside the supervisor (abort it to stop early).
pub async fn announce(targets: Vec<Target>, password: Option<String>, limit: Duration) {
    wait_ready(&targets, password.as_deref(), limit, &mut |line| {
        eprintln!("[cluster] {line}")
    })
    .await;
}

/// Polls the nodes, telling `say` what it waits for; returns the agreed `(leader, term)`, or
/// `None` after `limit`.
pub async fn wait_ready(
    targets: &[Target],
    password: Option<&str>,
    limit: Duration,
    say: &mut (dyn FnMut(String) + Send),
) -> Option<(u64, u64)> {
    let started = Instant::now();
    let mut reminded = started;
    let mut answered = vec![false; targets.len()];
    let names = targets
        .iter()
        .map(|t| format!("node-{} (port {})", t.id, t.port))
        .collect::<Vec<_>>()
        .join(", ");
    say(format!("waiting for the nodes to accept clients: {names}"));
    let mut said_leader_wait = false;
    loop {
        let mut views = Vec::new();
        let mut pending = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            match query(t.port, password).await {
                Ok(view) => {
                    if !answered[i] {
                        answered[i] = true;
                        say(format!(
                            "node-{} accepts clients on port {} ({:.1} s)",
                            t.id,
                            t.port,
                            started.elapsed().as_secs_f64()
                        ));
                    }
                    views.push((t.id, view));
                }
                Err(why) => pending.push(format!("node-{}: {why}", t.id)),
            }
        }
        if pending.is_empty() {
            if let Some((leader, term)) = agreed(&views) {
                say(format!(
                    "ready after {:.1} s: node-{leader} is the Raft leader (term {term}); connect with redis-cli -p {}",
                    started.elapsed().as_secs_f64(),
                    targets.first().map_or(0, |t| t.port),
                ));
                return Some((leader, term));
            }
            if !said_leader_wait {
                said_leader_wait = true;
                say("waiting for the nodes to elect a Raft leader and agree on it".into());
            }
        }
        if started.elapsed() >= limit {
            say(format!(
                "not ready after {} s ({}); the nodes keep running: see their logs above",
                limit.as_secs(),
                describe(&pending, &views)
            ));
            return None;
        }
        if reminded.elapsed() >= REMIND {
            reminded = Instant::now();
            say(format!(
                "still waiting ({:.0} s): {}",
                started.elapsed().as_secs_f64(),
                describe(&pending, &views)
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What is missing: nodes not answering, and each answering node's view.
fn describe(pending: &[String], views: &[(u16, View)]) -> String {
    let mut parts: Vec<String> = pending.to_vec();
    parts.extend(views.iter().map(|(id, v)| {
        let leader = v
            .leader_id
            .map_or("no leader".to_string(), |l| format!("leader node-{l}"));
        format!("node-{id}: {} in term {}, sees {leader}", v.role, v.term)
    }));
    parts.join("; ")
}

/// Asks the node on 127.0.0.1:`port` for its view (1 s per attempt).
async fn query(port: u16, password: Option<&str>) -> Result<View, String> {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| short_io(&e))?;
        if let Some(pw) = password.filter(|p| !p.is_empty()) {
            call(&mut stream, &[b"AUTH", pw.as_bytes()]).await?;
        }
        let info = call(&mut stream, &[b"INFO", b"raft"]).await?;
        parse_info(&String::from_utf8_lossy(&info)).ok_or_else(|| "no raft fields in INFO".into())
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .unwrap_or_else(|_| Err("no answer within 1 s".into()))
}

fn short_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        _ => e.to_string(),
    }
}

/// Sends a command and reads a simple, error or bulk-string reply (its payload).
async fn call(stream: &mut TcpStream, args: &[&[u8]]) -> Result<Vec<u8>, String> {
    stream
        .write_all(&encode_command(args))
        .await
        .map_err(|e| short_io(&e))?;
    let mut buf = Vec::new();
    loop {
        if let Some(reply) = parse(&buf)? {
            return reply;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.map_err(|e| short_io(&e))?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if buf.len() > MAX_REPLY {
            return Err("reply too long".into());
        }
    }
}

/// Parses one reply: `Ok(None)` when incomplete, `Ok(Some(Ok(payload)))` for `+` and `$`,
/// `Ok(Some(Err(text)))` for `-`; `Err` for anything else.
type Parsed = Option<Result<Vec<u8>, String>>;

fn parse(buf: &[u8]) -> Result<Parsed, String> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let line = buf.get(1..end).unwrap_or_default();
    match buf.first() {
        Some(b'+') => Ok(Some(Ok(line.to_vec()))),
        Some(b'-') => Ok(Some(Err(String::from_utf8_lossy(line).into_owned()))),
        Some(b'$') => {
            let len: i64 = std::str::from_utf8(line)
                .ok()
                .and_then(|l| l.parse().ok())
                .ok_or("bad bulk length")?;
            let Ok(len) = usize::try_from(len) else {
                return Ok(Some(Ok(Vec::new())));
            };
            let start = end + 2;
            Ok(buf
                .get(start..start + len)
                .filter(|_| buf.len() >= start + len + 2)
                .map(|payload| Ok(payload.to_vec())))
        }
        _ => Err(format!(
            "unexpected reply {:?}",
            String::from_utf8_lossy(buf.get(..end).unwrap_or_default())
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn view(role: &str, leader: Option<u64>) -> View {
        View {
            role: role.into(),
            leader_id: leader,
            term: 2,
        }
    }

    #[test]
    fn parses_info_raft() {
        let v = parse_info(
            "# Raft\r\nraft_node_id:2\r\nraft_role:follower\r\nraft_term:3\r\nraft_leader_id:1\r\n",
        )
        .unwrap();
        assert_eq!(v.role, "follower");
        assert_eq!(v.leader_id, Some(1));
        assert_eq!(v.term, 3);
        let v = parse_info("raft_role:candidate\r\nraft_term:4\r\nraft_leader_id:\r\n").unwrap();
        assert_eq!(v.leader_id, None);
        assert!(parse_info("# Server\r\nredis_version:7\r\n").is_none());
    }

    #[test]
    fn agreement_needs_every_node_and_a_real_leader() {
        let ok = [
            (1, view("leader", Some(1))),
            (2, view("follower", Some(1))),
            (3, view("follower", Some(1))),
        ];
        assert_eq!(agreed(&ok), Some((1, 2)));
        let split = [(1, view("leader", Some(1))), (2, view("follower", None))];
        assert_eq!(agreed(&split), None);
        // Everyone names node 2, but node 2 does not call itself leader (yet).
        let stale = [
            (1, view("follower", Some(2))),
            (2, view("candidate", Some(2))),
        ];
        assert_eq!(agreed(&stale), None);
        assert_eq!(agreed(&[]), None);
    }

    #[test]
    fn parses_replies_in_pieces() {
        assert_eq!(parse(b"").unwrap(), None);
        assert_eq!(parse(b"+OK\r\n").unwrap(), Some(Ok(b"OK".to_vec())));
        assert_eq!(
            parse(b"-NOAUTH x\r\n").unwrap(),
            Some(Err("NOAUTH x".into()))
        );
        assert_eq!(parse(b"$5\r\nab").unwrap(), None);
        assert_eq!(parse(b"$5\r\nabcde").unwrap(), None);
        assert_eq!(
            parse(b"$5\r\nabcde\r\n").unwrap(),
            Some(Ok(b"abcde".to_vec()))
        );
        assert!(parse(b":1\r\n").is_err());
    }

    /// A fake node answering every INFO with `info` (and OK to anything else).
    async fn fake_node(info: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let req = String::from_utf8_lossy(&buf[..n]).to_string();
                        let reply = if req.contains("INFO") {
                            format!("${}\r\n{info}\r\n", info.len())
                        } else {
                            "+OK\r\n".to_string()
                        };
                        if s.write_all(reply.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn reports_each_node_then_the_leader() {
        let p1 = fake_node("raft_role:leader\r\nraft_term:5\r\nraft_leader_id:1\r\n").await;
        let p2 = fake_node("raft_role:follower\r\nraft_term:5\r\nraft_leader_id:1\r\n").await;
        let targets = [Target { id: 1, port: p1 }, Target { id: 2, port: p2 }];
        let mut lines = Vec::new();
        let got = wait_ready(&targets, Some("pw"), Duration::from_secs(30), &mut |l| {
            lines.push(l)
        })
        .await;
        assert_eq!(got, Some((1, 5)));
        let text = lines.join("\n");
        assert!(
            text.contains("waiting for the nodes to accept clients"),
            "{text}"
        );
        assert!(
            text.contains(&format!("node-2 accepts clients on port {p2}")),
            "{text}"
        );
        assert!(
            text.contains("node-1 is the Raft leader (term 5)"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn gives_up_and_says_what_is_missing() {
        // A port nothing listens on: bind, note the port, close.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut lines = Vec::new();
        let got = wait_ready(
            &[Target { id: 3, port }],
            None,
            Duration::from_millis(300),
            &mut |l| lines.push(l),
        )
        .await;
        assert_eq!(got, None);
        let last = lines.last().unwrap();
        assert!(
            last.contains("not ready after") && last.contains("node-3"),
            "{last}"
        );
    }
}
