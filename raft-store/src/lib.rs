//! # conclave-raft-store
//!
//! Durable storage for Conclave's Raft groups (filled in by the raft-store work).
