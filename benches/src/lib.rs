//! Shared parts of Conclave's benchmark tools: the CSV records that `conclave-bench` and
//! `scripts/bench-*.sh` write and `conclave-plots` reads ([`rows`]), and the live progress
//! line of long runs ([`progress`]).

pub mod progress;
pub mod rows;
