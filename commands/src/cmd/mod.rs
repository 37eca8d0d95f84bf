//! String commands (filled in by the keyspace work).
