//! The node-local string keyspace (filled in by the keyspace work).
