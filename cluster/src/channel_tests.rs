//! Tests of the cluster channel end to end on 127.0.0.1: [`PeerClient`] against
//! [`peer_listener::serve`] and the [`Router`], or against a hand-written server where
//! the test needs the peer to misbehave. Ordering is forced with gates the test opens,
//! never with sleeps; no assertion depends on how fast anything runs.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use conclave_protocol::codec::{decode_request, Limits};
use conclave_raft_store::GroupId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::group::BoxFuture;
use crate::peer::{PeerClient, PeerError};
use crate::peer_listener;
use crate::router::{ForwardHandler, Router};

/// Generous: a call that fails in these tests must fail for its own reason, not this.
const LONG: Duration = Duration::from_secs(60);

/// Answers the body it was sent.
struct Echo;

impl ForwardHandler for Echo {
    fn handle(&self, _group: GroupId, _deadline: u64, body: Bytes) -> BoxFuture<'_, Bytes> {
        Box::pin(async move { body })
    }
}

/// Announces each request (its body and a release) to the test, and answers its body
/// once the test releases it.
struct Gate(mpsc::UnboundedSender<(Bytes, oneshot::Sender<()>)>);

impl ForwardHandler for Gate {
    fn handle(&self, _group: GroupId, _deadline: u64, body: Bytes) -> BoxFuture<'_, Bytes> {
        Box::pin(async move {
            let (release, released) = oneshot::channel();
            let _ = self.0.send((body.clone(), release));
            let _ = released.await;
            body
        })
    }
}

type Entered = mpsc::UnboundedReceiver<(Bytes, oneshot::Sender<()>)>;

/// A listener serving a router with `echo` and `gate`; returns its address, the gate's
/// announcements and the count of accepted connections.
async fn serve(secret: Option<&str>) -> (String, Entered, Arc<AtomicUsize>) {
    let (tx, entered) = mpsc::unbounded_channel();
    let router = Arc::new(Router::new());
    router.add_service("echo", Arc::new(Echo));
    router.add_service("gate", Arc::new(Gate(tx)));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let secret: Option<Arc<str>> = secret.map(Into::into);
    tokio::spawn({
        let accepted = accepted.clone();
        async move {
            while let Ok((socket, _)) = listener.accept().await {
                accepted.fetch_add(1, SeqCst);
                tokio::spawn(peer_listener::serve(socket, router.clone(), secret.clone()));
            }
        }
    });
    (addr, entered, accepted)
}

async fn fwd(client: &PeerClient, service: &str, body: &str) -> Result<Bytes, PeerError> {
    client
        .forward(service, 0, u64::MAX, body.as_bytes(), LONG)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_over_one_connection_all_complete() {
    let (addr, _entered, accepted) = serve(None).await;
    let client = Arc::new(PeerClient::with_connections(addr, 1, None, 1));
    let mut calls = JoinSet::new();
    for i in 0..500 {
        let client = client.clone();
        calls.spawn(async move { (i, fwd(&client, "echo", &format!("call-{i}")).await) });
    }
    let mut done = 0;
    while let Some(joined) = calls.join_next().await {
        let (i, reply) = joined.expect("join");
        assert_eq!(reply, Ok(Bytes::from(format!("call-{i}"))));
        done += 1;
    }
    assert_eq!(done, 500);
    assert_eq!(accepted.load(SeqCst), 1, "every call shared one connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_does_not_delay_a_fast_one_on_the_same_connection() {
    let (addr, mut entered, accepted) = serve(None).await;
    let client = Arc::new(PeerClient::with_connections(addr, 1, None, 1));
    let slow = tokio::spawn({
        let client = client.clone();
        async move { fwd(&client, "gate", "slow").await }
    });
    // The slow request is being served (and will stay so until released)...
    let (body, release) = entered.recv().await.expect("slow request entered");
    assert_eq!(&body[..], b"slow");
    // ...and a fast one on the same connection completes meanwhile.
    assert_eq!(fwd(&client, "echo", "fast").await, Ok(Bytes::from("fast")));
    assert!(!slow.is_finished());
    release.send(()).expect("release");
    assert_eq!(slow.await.expect("join"), Ok(Bytes::from("slow")));
    assert_eq!(accepted.load(SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_in_reverse_order_reach_their_own_callers() {
    let (addr, mut entered, accepted) = serve(None).await;
    let client = Arc::new(PeerClient::with_connections(addr, 1, None, 1));
    const N: usize = 64;
    let mut calls = JoinSet::new();
    for i in 0..N {
        let client = client.clone();
        calls.spawn(async move { (i, fwd(&client, "gate", &format!("req-{i}")).await) });
    }
    // Every request is in flight and held...
    let mut held = Vec::new();
    while held.len() < N {
        held.push(entered.recv().await.expect("entered"));
    }
    // ...then released last-in first-out: each reply leaves as its request completes.
    while let Some((_, release)) = held.pop() {
        release.send(()).expect("release");
    }
    let mut seen = 0;
    while let Some(joined) = calls.join_next().await {
        let (i, reply) = joined.expect("join");
        assert_eq!(reply, Ok(Bytes::from(format!("req-{i}"))), "call {i}");
        seen += 1;
    }
    assert_eq!(seen, N);
    assert_eq!(accepted.load(SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_reply_is_dropped_and_never_given_to_another_call() {
    let (addr, mut entered, _) = serve(None).await;
    let client = PeerClient::with_connections(addr, 1, None, 1);
    // Times out while held (the timeout is short; nothing asserts how long it took).
    let late = client
        .forward("gate", 0, u64::MAX, b"late", Duration::from_millis(50))
        .await;
    assert!(matches!(late, Err(PeerError::Timeout(_))), "{late:?}");
    let (_, release) = entered.recv().await.expect("entered");
    release.send(()).expect("release");
    // The late reply arrives on the connection; the next calls get their own.
    for i in 0..20 {
        let body = format!("fresh-{i}");
        assert_eq!(fwd(&client, "echo", &body).await, Ok(Bytes::from(body)));
    }
}

/// A server that completes the handshake, waits until `requests` tagged requests have
/// arrived, then drops the connection without answering.
async fn drop_after(requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        drop(listener); // later connects are refused
        let mut buf = BytesMut::new();
        let mut seen = 0;
        while seen < requests + 1 {
            while let Ok(Some(args)) = decode_request(&mut buf, &Limits::default()) {
                if args
                    .first()
                    .is_some_and(|a| a.eq_ignore_ascii_case(b"NODE"))
                {
                    let _ = socket.write_all(b"+OK\r\n").await;
                }
                seen += 1;
            }
            if seen < requests + 1 && socket.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                return;
            }
        }
        drop(socket);
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_fails_every_call_in_flight_at_once() {
    let addr = drop_after(3).await;
    let client = Arc::new(PeerClient::with_connections(addr, 1, None, 1));
    let mut calls = JoinSet::new();
    for i in 0..3 {
        let client = client.clone();
        calls.spawn(async move { fwd(&client, "echo", &format!("{i}")).await });
    }
    while let Some(joined) = calls.join_next().await {
        let reply = joined.expect("join");
        assert!(
            matches!(&reply, Err(PeerError::Lost(_, why)) if why.contains("closed")),
            "{reply:?}"
        );
    }
    // The next call needs a new connection, which the peer refuses: never sent.
    let next = fwd(&client, "echo", "again").await;
    assert!(matches!(next, Err(PeerError::Unreachable(..))), "{next:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_spread_over_the_connections_of_a_peer() {
    let (addr, _entered, accepted) = serve(None).await;
    let client = PeerClient::with_connections(addr, 1, None, 2);
    for i in 0..10 {
        let body = format!("{i}");
        assert_eq!(fwd(&client, "echo", &body).await, Ok(Bytes::from(body)));
    }
    assert_eq!(accepted.load(SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_secret_is_checked_at_the_handshake() {
    let (addr, _entered, _) = serve(Some("s3cret")).await;
    let wrong = PeerClient::with_connections(addr.clone(), 1, Some("nope".into()), 1);
    let refused = fwd(&wrong, "echo", "x").await;
    assert!(
        matches!(&refused, Err(PeerError::Unreachable(_, why)) if why.contains("NOAUTH")),
        "{refused:?}"
    );
    let right = PeerClient::with_connections(addr, 1, Some("s3cret".into()), 1);
    assert_eq!(fwd(&right, "echo", "x").await, Ok(Bytes::from("x")));
}

/// Writes `frames` on a raw connection and reads until the peer closes it.
async fn raw_exchange(addr: &str, frames: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(frames).await.expect("write");
    let mut got = Vec::new();
    let _ = tokio::time::timeout(LONG, s.read_to_end(&mut got)).await;
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_before_auth_is_refused_and_the_connection_closed() {
    let (addr, _entered, _) = serve(Some("s3cret")).await;
    let got = raw_exchange(
        &addr,
        b"*2\r\n$4\r\nNODE\r\n$1\r\n9\r\n*2\r\n$2\r\n17\r\n$4\r\nPING\r\n",
    )
    .await;
    assert_eq!(
        got,
        b"+OK\r\n*2\r\n$2\r\n17\r\n-NOAUTH cluster secret required\r\n".to_vec()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untagged_requests_are_answered_untagged_in_order() {
    let (addr, _entered, _) = serve(None).await;
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    s.write_all(
        b"*1\r\n$4\r\nPING\r\n*5\r\n$3\r\nFWD\r\n$4\r\necho\r\n$1\r\n0\r\n$1\r\n9\r\n$2\r\nhi\r\n",
    )
    .await
    .expect("write");
    let want = b"$4\r\nPONG\r\n$2\r\nhi\r\n";
    let mut got = vec![0u8; want.len()];
    s.read_exact(&mut got).await.expect("read");
    assert_eq!(&got[..], &want[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_refuses_connections_is_in_backoff_and_fails_fast() {
    // A port nobody listens on (bound, then released).
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let client = PeerClient::with_connections(addr, 1, None, 1);
    let first = fwd(&client, "echo", "x").await;
    assert!(
        matches!(first, Err(PeerError::Unreachable(..))),
        "{first:?}"
    );
    // Within the backoff window calls fail without connecting; the window is 50 ms, so
    // a slow machine may see it end first: try until one lands inside it.
    let mut in_backoff = false;
    for _ in 0..100 {
        if let Err(PeerError::Unreachable(_, why)) = fwd(&client, "echo", "x").await {
            if why.contains("backoff") {
                in_backoff = true;
                break;
            }
        }
    }
    assert!(in_backoff);
}

/// A server that completes the handshake, then reads requests and never answers (a
/// paused process, or one gone without a reset, looks the same from here).
async fn silent() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = BytesMut::new();
                loop {
                    while let Ok(Some(args)) = decode_request(&mut buf, &Limits::default()) {
                        if args
                            .first()
                            .is_some_and(|a| a.eq_ignore_ascii_case(b"NODE"))
                        {
                            let _ = socket.write_all(b"+OK\r\n").await;
                        }
                    }
                    if socket.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_silent_while_requests_wait_is_taken_for_gone() {
    let addr = silent().await;
    let client = Arc::new(PeerClient::with_connections(addr, 1, None, 1));
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { fwd(&client, "echo", "never answered").await }
    });
    // Other calls time out one after another; once the peer has been silent for
    // SILENT_LIMIT with requests waiting, the connection is failed, and the call still
    // waiting (whose own deadline is far) fails with it.
    while !waiting.is_finished() {
        let short = client
            .forward("echo", 0, u64::MAX, b"x", Duration::from_millis(100))
            .await;
        assert!(short.is_err());
    }
    let reply = waiting.await.expect("join");
    assert!(
        matches!(&reply, Err(PeerError::Lost(_, why)) if why.contains("answered nothing")),
        "{reply:?}"
    );
}

/// Not a test: prints the channel's figures on this machine (one connection, an echo
/// service): sequential round trips, and 50 concurrent callers.
/// `cargo test -p conclave-cluster --release -- --ignored --nocapture channel_figures`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn channel_figures() {
    let (addr, _entered, _) = serve(None).await;
    for round in 0..3 {
        let client = Arc::new(PeerClient::with_connections(addr.clone(), 1, None, 1));
        let _ = fwd(&client, "echo", "warm").await;
        let n = 20_000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            let _ = fwd(&client, "echo", "x").await;
        }
        let sequential = start.elapsed().as_secs_f64() * 1e6 / n as f64;
        let start = std::time::Instant::now();
        let mut calls = JoinSet::new();
        for _ in 0..50 {
            let client = client.clone();
            calls.spawn(async move {
                for _ in 0..2_000 {
                    let _ = fwd(&client, "echo", "x").await;
                }
            });
        }
        while calls.join_next().await.is_some() {}
        let rate = 100_000.0 / start.elapsed().as_secs_f64();
        println!("round {round}: sequential {sequential:.1} us/call, 50 callers {rate:.0} calls/s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_peer_whose_requests_are_all_slow_keeps_its_connection() {
    let (addr, mut entered, accepted) = serve(None).await;
    let client = Arc::new(PeerClient::with_connections(addr, 1, None, 1));
    let long = tokio::spawn({
        let client = client.clone();
        async move { fwd(&client, "gate", "long").await }
    });
    let mut held = vec![entered.recv().await.expect("entered").1];
    // More than twice SILENT_LIMIT with no request answered: the connection probes the
    // peer, which answers the PING, so nothing is cut.
    let quiet_for = crate::mux::SILENT_LIMIT * 3;
    let start = std::time::Instant::now();
    while start.elapsed() < quiet_for {
        let short = client
            .forward("gate", 0, u64::MAX, b"short", Duration::from_millis(100))
            .await;
        assert!(matches!(short, Err(PeerError::Timeout(_))), "{short:?}");
        held.push(entered.recv().await.expect("entered").1);
    }
    for release in held {
        let _ = release.send(());
    }
    assert_eq!(long.await.expect("join"), Ok(Bytes::from("long")));
    assert_eq!(accepted.load(SeqCst), 1);
}
