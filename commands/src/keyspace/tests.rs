//! Keyspace tests.
