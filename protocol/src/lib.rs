//! # conclave-protocol
//!
//! The RESP layer every Conclave service speaks, with no sockets and no runtime:
//!
//! - [`auth`]: constant-time secret comparison for `AUTH`.
//! - [`codec`]: the request decoder (zero-copy argument slices), with Redis's limits and
//!   inline-command splitting.
//! - [`glob`]: Redis's glob matching (`KEYS`, `SCAN MATCH`, `Q.TOPICS`).
//! - [`frame`]: the reply type every command produces, and its RESP2/RESP3 encoding.
//! - [`parse`]: a cursor over a command's arguments with Redis-compatible errors.
//! - [`docs`]: the `COMMAND INFO` / `COMMAND DOCS` replies built from a declaration.
//! - [`spec`]: the declaration of a command (name, arity, flags, key positions, ACL
//!   categories, docs) that each service writes once for each of its commands.

pub mod auth;
pub mod blocking;
pub mod codec;
pub mod docs;
pub mod frame;
pub mod glob;
pub mod parse;
pub mod spec;

pub use frame::Frame;
pub use parse::{Parse, ParseError};
pub use spec::{CommandSpec, Service};
