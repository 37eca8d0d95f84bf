//! Mutual exclusion under faults (being written).
mod common;
