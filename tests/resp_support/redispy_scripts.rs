//! Scripts of the comparison with Redis (format in [`super::parity`]) for the commands
//! added while running redis-py's own test suite against Conclave
//! (`scripts/redis-py-suite.sh`): diagnostics, `BITFIELD`, `DUMP`/`RESTORE`.

/// `ROLE`, `REPLICAOF NO ONE`, `SLOWLOG`, `LATENCY`, `MEMORY USAGE`, their
/// parameters and errors, `COMMAND GETKEYS` of scripts.
pub const DIAGNOSTICS: &str = r"
FLUSHALL
ROLE
ROLE x
REPLICAOF NO ONE
REPLICAOF no one
SLAVEOF NO ONE
REPLICAOF NO
SLOWLOG GET x
SLOWLOG GET -2
SLOWLOG GET 1 2
SLOWLOG LEN x
SLOWLOG FOO
SLOWLOG
CONFIG GET slowlog-max-len
CONFIG GET slowlog-log-slower-than
CONFIG SET slowlog-max-len -1
CONFIG SET slowlog-log-slower-than -5
CONFIG SET slowlog-log-slower-than x
CONFIG SET slowlog-max-len 128
LATENCY LATEST
LATENCY HISTORY command
LATENCY RESET
LATENCY RESET a b
LATENCY GRAPH command
LATENCY GRAPH
LATENCY FOO
LATENCY
MEMORY USAGE nokey
SET foo bar
MEMORY USAGE foo SAMPLES x
MEMORY USAGE foo bar
MEMORY USAGE foo SAMPLES 1 2
MEMORY USAGE
MEMORY FOO
MEMORY PURGE
COMMAND GETKEYS EVAL x 2 a b c
COMMAND GETKEYS EVAL x 0 a
COMMAND GETKEYS EVAL x 5 a
COMMAND GETKEYS EVAL x -1 a
COMMAND GETKEYS EVAL x y a
COMMAND GETKEYS EVALSHA x 1 a
COMMAND GETKEYSANDFLAGS EVAL x 1 a
COMMAND GETKEYSANDFLAGS EVAL_RO x 1 a
COMMAND GETKEYS MSET a b c d e f
";
