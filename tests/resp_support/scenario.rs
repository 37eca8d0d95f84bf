//! Scenarios that run the same exact-bytes conversation on a Conclave node and, when one is
//! installed, on a real `redis-server` ([`on_conclave_and_redis`]), through [`Conn`]: a raw
//! connection that names which server it talks to in every failed assertion.

use std::sync::Mutex;

use super::redis_reference::Reference;
use super::Raw;
use crate::common::Server;

/// A raw connection to the server called `who`.
pub struct Conn {
    /// The raw client underneath (for what the helpers do not cover).
    pub raw: Raw,
    who: &'static str,
}

impl Conn {
    /// A RESP2 connection.
    pub fn open(port: u16, who: &'static str) -> Conn {
        Conn {
            raw: Raw::connect(port),
            who,
        }
    }

    /// A RESP3 connection (`HELLO 3`, reply read and dropped).
    pub fn resp3(port: u16, who: &'static str) -> Conn {
        let mut c = Conn::open(port, who);
        let hello = c.cmd(&["HELLO", "3"]);
        assert!(hello.starts_with('%'), "{who}: HELLO 3 -> {hello:?}");
        c
    }

    /// Sends `args` and returns the raw reply.
    pub fn cmd(&mut self, args: &[&str]) -> String {
        self.raw.cmd(args)
    }

    /// Sends `args` and asserts the exact reply.
    pub fn expect(&mut self, args: &[&str], want: &str) {
        let got = self.raw.cmd(args);
        assert_eq!(got, want, "{}: {:?}", self.who, args);
    }

    /// Sends without reading.
    pub fn send(&mut self, args: &[&str]) {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.raw.send_cmd(&args);
    }

    /// Asserts the next thing read (a push, or a reply to something sent earlier).
    pub fn expect_next(&mut self, want: &str) {
        let got = self.raw.reply_string();
        assert_eq!(got, want, "{}: next message", self.who);
    }

    /// Asserts nothing was pushed: a `PING`'s `+PONG` comes next.
    pub fn quiet(&mut self) {
        self.expect(&["PING"], "+PONG\r\n");
    }

    /// `CLIENT ID`.
    pub fn id(&mut self) -> u64 {
        let r = self.cmd(&["CLIENT", "ID"]);
        r.trim_start_matches(':').trim().parse().expect("client id")
    }

    /// The server this connection talks to (`conclave` or `redis-server`).
    pub fn who(&self) -> &'static str {
        self.who
    }
}

/// Runs `scenario` on a Conclave node, then on `redis-server` when installed. The
/// reference servers run one at a time: two started at once could pick the same port.
pub fn on_conclave_and_redis(scenario: fn(u16, &'static str)) {
    static ONE_REDIS: Mutex<()> = Mutex::new(());
    let server = Server::start(&[]);
    scenario(server.port, "conclave");
    let _one = ONE_REDIS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(redis) = Reference::start() {
        scenario(redis.port, "redis-server");
    }
}
