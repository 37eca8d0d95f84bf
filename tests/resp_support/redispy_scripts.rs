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

/// `BITFIELD` and `BITFIELD_RO`: types, `#` offsets, overflow modes, growth, errors.
pub const BITFIELD: &str = r"
FLUSHALL
BITFIELD bf
BITFIELD bf GET u8 0
EXISTS bf
BITFIELD bf SET u8 8 255 GET u8 0 GET u4 8 GET u4 12 GET u4 13
GET bf
BITFIELD bf SET i8 #2 -3 GET i8 16 GET u8 #2 GET i16 8
BITFIELD bf INCRBY u2 100 1 OVERFLOW SAT INCRBY u2 102 1
BITFIELD bf INCRBY u2 100 1 OVERFLOW SAT INCRBY u2 102 1
BITFIELD bf INCRBY u2 100 1 OVERFLOW SAT INCRBY u2 102 1
BITFIELD bf INCRBY u2 100 1 OVERFLOW SAT INCRBY u2 102 1
BITFIELD bf OVERFLOW FAIL INCRBY u2 102 1
STRLEN bf
BITFIELD bf OVERFLOW FAIL SET i4 200 100
STRLEN bf
BITFIELD bf OVERFLOW WRAP INCRBY i8 0 200 INCRBY i8 0 -300 INCRBY u7 0 200 INCRBY u7 0 -300
BITFIELD bf OVERFLOW SAT INCRBY i8 0 200 INCRBY i8 0 -300 INCRBY u7 0 200 INCRBY u7 0 -300
BITFIELD bf OVERFLOW FAIL INCRBY i8 0 200 INCRBY i8 0 -300 INCRBY u7 0 200 INCRBY u7 0 -300
BITFIELD bf SET u8 0 -1 SET i8 0 300 SET u63 0 -1 GET u63 0 SET i64 0 -9223372036854775808 INCRBY i64 0 -1
BITFIELD bf OVERFLOW SAT SET i64 0 9223372036854775807 INCRBY i64 0 1 INCRBY i64 0 -9223372036854775808 INCRBY i64 0 -9223372036854775808
BITFIELD bf OVERFLOW WRAP SET u63 0 9223372036854775807 INCRBY u63 0 1 INCRBY u63 0 -1
BITFIELD bf OVERFLOW SAT SET u63 0 0 INCRBY u63 0 -1 INCRBY u63 0 9223372036854775807 INCRBY u63 0 9223372036854775807
BITFIELD bf GET u64 0
BITFIELD bf GET i65 0
BITFIELD bf GET I8 0
BITFIELD bf GET i0 0
BITFIELD bf GET u8 -1
BITFIELD bf GET u8 x
BITFIELD bf GET u8 #x
BITFIELD bf GET u8 4294967296
BITFIELD bf GET u8 #536870912
BITFIELD bf SET u8 0 x
BITFIELD bf SET u8 0
BITFIELD bf GET u8
BITFIELD bf FOO u8 0
BITFIELD bf OVERFLOW
BITFIELD bf OVERFLOW BAR GET u8 0
BITFIELD bf get u8 0 Overflow fail incrby u8 0 1000 set u8 0 7
BITFIELD bf GET u8 0 SET u8 x 1
BITFIELD new SET u16 #3 65535
GET new
SET str 123
BITFIELD str GET u8 0 GET i8 8 SET u8 0 49
GET str
OBJECT ENCODING str
BITFIELD_RO bf GET u8 0 GET i4 4
BITFIELD_RO bf SET u8 0 1
BITFIELD_RO bf INCRBY u8 0 1
BITFIELD_RO bf GET u8 0 SET u8 x 1
BITFIELD_RO nokey GET u8 0
BITFIELD_RO
BITFIELD
";

/// `DUMP` payloads (integers, verbatim, LZF) and `RESTORE` of Redis's payloads, its
/// options, TTLs and errors in Redis's order. (A list's payload, which Conclave
/// refuses, is checked in `dump_restore_refuses_other_types`.)
pub const DUMP_RESTORE: &str = r"
FLUSHALL
SET s bar
DUMP s
DUMP nokey
SET n 12345
DUMP n
SET n -1
DUMP n
SET n 2147483648
DUMP n
SET n -9223372036854775808
DUMP n
SET n 007
DUMP n
SET e ''
DUMP e
SET a aaaaaaaaaaaaaaaaaaaa
DUMP a
SET a aaaaaaaaaaaaaaaaaaaaa
DUMP a
SET a aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
DUMP a
SET h hello\x20world\x20hello\x20world\x20hello\x20world
DUMP h
SETRANGE big 20000 x
DUMP big
RESTORE r 0 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17
GET r
RESTORE r 0 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17
RESTORE r 0 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17 REPLACE
RESTORE r2 0 \x00\xc3\x092\x01aa\xe0\x25\x00\x01aa\x0a\x00\x09\xacH\xb9\xab\x15\xfb\xc9
GET r2
RESTORE r3 0 \x00\xc190\x0a\x00\x9d\x94\xea\x27\x93\xfc\x08\xb9
GET r3
OBJECT ENCODING r3
RESTORE r4 0 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfdx
RESTORE r4 0 \x00\x03bar\x0c\x00\xe6\xbeI\x60\xeef\xfd\x17
RESTORE r4 0 abc
RESTORE r4 0 ''
RESTORE r4 x \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17
RESTORE r4 -1 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17
RESTORE r x \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17
RESTORE r4 0 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17 FOO
RESTORE r4 0 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17 IDLETIME
RESTORE r4 0 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17 IDLETIME x
RESTORE r4 0 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17 IDLETIME -1
RESTORE r4 0 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17 FREQ 256
RESTORE r4 0 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17 FREQ -1
RESTORE r4 0 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17 FREQ x
RESTORE r4 0 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17 FREQ 1 IDLETIME 1
RESTORE r4 0 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17 IDLETIME 1 FREQ 1
RESTORE r4 0 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17 IDLETIME 1000 REPLACE ABSTTL
OBJECT IDLETIME r4
RESTORE r5 0 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17 FREQ 5
GET r5
RESTORE r6 1 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17 ABSTTL
EXISTS r6
RESTORE r REPLACE
RESTORE r 1 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17 REPLACE ABSTTL
EXISTS r
RESTORE r7 100000 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17
TTL r7
RESTORE r8 4102444800000 \x00\x03bar\x0a\x00\xe6\xbeI\x60\xeef\xfd\x17 ABSTTL
EXPIRETIME r8
RESTORE
";

/// `n` rounds of `SET` of a random value (repetitive runs of a small alphabet, random
/// bytes, numbers; 0 to 600 bytes) and `DUMP` of it: Redis's LZF and integer
/// encodings on inputs no one chose.
pub fn random_dumps(seed: u64, n: usize) -> Vec<Vec<Vec<u8>>> {
    let mut rng = super::parity::Rng::new(seed);
    let mut out = Vec::new();
    for _ in 0..n {
        let value: Vec<u8> = match rng.range(0, 3) {
            0 => rng
                .range(-3_000_000_000, 3_000_000_000)
                .to_string()
                .into_bytes(),
            1 => (0..rng.range(0, 600))
                .map(|_| (rng.next() & 0xff) as u8)
                .collect(),
            _ => {
                let alphabet = *rng.pick::<&[u8]>(&[b"a", b"ab", b"abc", b"hello world "]);
                let mut v = Vec::new();
                let len = rng.range(0, 600) as usize;
                while v.len() < len {
                    let run = rng.range(1, 40) as usize;
                    let start = rng.range(0, alphabet.len() as i64 - 1) as usize;
                    v.extend(alphabet.iter().cycle().skip(start).take(run));
                    if rng.range(0, 4) == 0 {
                        v.push((rng.next() & 0xff) as u8);
                    }
                }
                v.truncate(len);
                v
            }
        };
        out.push(vec![b"SET".to_vec(), b"d".to_vec(), value]);
        out.push(vec![b"DUMP".to_vec(), b"d".to_vec()]);
    }
    out
}
