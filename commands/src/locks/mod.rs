//! The lock state machine (filled in by the lock-state-machine work).
mod types;
pub use types::*;
