//! The internal cluster channel: RESP over TCP on `--cluster-port`.
//!
//! Peers exchange RESP arrays of bulk strings, the payloads being JSON:
//!
//! | request                                   | reply                                  |
//! |-------------------------------------------|----------------------------------------|
//! | `AUTH <secret>`                           | `+OK` or `-NOAUTH` (then closed)       |
//! | `PING`                                    | `+PONG`                                |
//! | `RAFT <group> APPEND\|VOTE\|SNAPSHOT <json>` | bulk JSON `Result<response, RaftError>` |
//! | `LOCKFWD <group> <deadline-ms> <json LockCommand>` | bulk JSON `Result<LockOutcome, ForwardError>` (the error says whether the command was proposed); refused past the deadline |
//! | `STATUS`                                  | bulk JSON of the node's own view (`ops::node_view::NodeView`), for the dashboard |
//!
//! - [`peer`]: the client side — a pool of connections per peer, so concurrent
//!   requests never queue behind each other, reconnect with backoff, timeouts.
//! - [`listener`]: the server side — authenticates and serves peers.
//! - [`raft_network`]: openraft's `RaftNetwork` on top of [`peer`].

pub mod listener;
