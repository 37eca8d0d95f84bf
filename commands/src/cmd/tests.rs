//! Command reply tests.
