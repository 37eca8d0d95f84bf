//! Reply tables for the bitmap commands, `LCS`, `COPY`, `TOUCH`, `RANDOMKEY`,
//! `OBJECT`, `WAIT` and `WAITAOF` (every expected reply is what redis-server 7.0.15
//! answers; `WAITAOF` follows Redis 7.2's source), and property tests of `BITCOUNT`
//! and `BITPOS` against a bit-by-bit model of their documented meaning.

use proptest::prelude::*;

use super::*;

fn run_raw(ks: &Keyspace, args: &[&[u8]]) -> Frame {
    run_bytes(ks, args.iter().map(|a| Bytes::copy_from_slice(a)).collect())
}

fn arr(items: Vec<Frame>) -> Frame {
    Frame::Array(items)
}

fn ints(items: &[i64]) -> Frame {
    arr(items.iter().map(|&n| int(n)).collect())
}

#[test]
fn setbit_getbit() {
    let (ks, _) = setup();
    assert_eq!(run(&ks, &["SETBIT", "b", "7", "1"]), int(0));
    assert_eq!(run(&ks, &["SETBIT", "b", "7", "1"]), int(1));
    assert_eq!(run(&ks, &["SETBIT", "b", "7", "0"]), int(1));
    assert_eq!(run(&ks, &["SETBIT", "b", "20", "1"]), int(0));
    assert_eq!(run(&ks, &["GET", "b"]), Frame::bulk_from(b"\x00\x00\x08"));
    assert_eq!(run(&ks, &["GETBIT", "b", "20"]), int(1));
    assert_eq!(run(&ks, &["GETBIT", "b", "21"]), int(0));
    assert_eq!(run(&ks, &["GETBIT", "b", "4294967295"]), int(0));
    assert_eq!(run(&ks, &["GETBIT", "nokey", "3"]), int(0));
    let offset = err("ERR bit offset is not an integer or out of range");
    let bit = err("ERR bit is not an integer or out of range");
    for bad in ["4294967296", "-1", "x", "01", ""] {
        assert_eq!(run(&ks, &["SETBIT", "b", bad, "1"]), offset, "{bad:?}");
        assert_eq!(run(&ks, &["GETBIT", "b", bad]), offset, "{bad:?}");
    }
    assert_eq!(run(&ks, &["SETBIT", "b", "x", "x"]), offset, "offset first");
    for bad in ["2", "-1", "x", "1.0"] {
        assert_eq!(run(&ks, &["SETBIT", "b", "1", bad]), bit, "{bad:?}");
    }
    assert_eq!(run(&ks, &["SETBIT", "b", "1"]), arity("setbit"));
    assert_eq!(run(&ks, &["GET", "b"]), Frame::bulk_from(b"\x00\x00\x08"));
    run(&ks, &["SET", "s", "foobar", "EX", "100"]);
    assert_eq!(run(&ks, &["SETBIT", "s", "0", "1"]), int(0));
    assert_eq!(run(&ks, &["GET", "s"]), Frame::bulk_from(b"\xe6oobar"));
    assert_eq!(run(&ks, &["TTL", "s"]), int(100), "SETBIT keeps the TTL");
    run(&ks, &["SET", "i", "123"]);
    assert_eq!(run(&ks, &["GETBIT", "i", "2"]), int(1), "'1' is 0x31");
    assert_eq!(run(&ks, &["SETBIT", "i", "0", "1"]), int(0));
    assert_eq!(run(&ks, &["OBJECT", "ENCODING", "i"]), bulk("raw"));
}

#[test]
fn bitcount_ranges() {
    let (ks, _) = setup();
    run(&ks, &["SET", "k", "foobar"]);
    let cases: &[(&[&str], Frame)] = &[
        (&[], int(26)),
        (&["0", "0"], int(4)),
        (&["1", "1"], int(6)),
        (&["1", "1", "BYTE"], int(6)),
        (&["5", "30", "BIT"], int(17)),
        (&["-1", "-1"], int(4)),
        (&["-2", "-1", "BIT"], int(1)),
        (&["0", "-1", "bit"], int(26)),
        (&["3", "1"], int(0)),
        (&["-1", "-5"], int(0)),
        (&["-1", "-5", "FOO"], int(0)),
        (&["0", "100"], int(26)),
        (&["-100", "100", "BIT"], int(26)),
        (&["0"], err(SYNTAX)),
        (&["0", "1", "2", "3"], err(SYNTAX)),
        (&["a", "b"], err(NOT_INT)),
        (&["0", "b"], err(NOT_INT)),
        (&["0", "1", "FOO"], err(SYNTAX)),
    ];
    for (range, want) in cases {
        let mut args = vec!["BITCOUNT", "k"];
        args.extend_from_slice(range);
        assert_eq!(&run(&ks, &args), want, "{range:?}");
    }
    // A missing key answers 0 before its arguments are looked at, as in Redis.
    assert_eq!(run(&ks, &["BITCOUNT", "nokey", "a", "b", "c", "d"]), int(0));
    run(&ks, &["SET", "e", ""]);
    assert_eq!(run(&ks, &["BITCOUNT", "e", "0", "-1", "BIT"]), int(0));
}

#[test]
fn bitpos_ranges() {
    let (ks, _) = setup();
    run_raw(&ks, &[b"SET", b"p", b"\xff\xf0\x00"]);
    let cases: &[(&[&str], i64)] = &[
        (&["0"], 12),
        (&["1"], 0),
        (&["0", "2"], 16),
        (&["1", "2"], -1),
        (&["1", "1", "-1"], 8),
        (&["0", "7", "15", "BIT"], 12),
        (&["1", "7", "15", "BIT"], 7),
        (&["0", "3", "5", "BIT"], -1),
        (&["1", "12", "23", "BIT"], -1),
        (&["0", "-100", "100", "BIT"], 12),
        (&["0", "0", "0"], -1),
    ];
    for (args, want) in cases {
        let mut full = vec!["BITPOS", "p"];
        full.extend_from_slice(args);
        assert_eq!(run(&ks, &full), int(*want), "{args:?}");
    }
    run_raw(&ks, &[b"SET", b"ones", b"\xff\xff"]);
    assert_eq!(run(&ks, &["BITPOS", "ones", "0"]), int(16), "past the end");
    assert_eq!(run(&ks, &["BITPOS", "ones", "0", "0", "-1"]), int(-1));
    assert_eq!(run(&ks, &["BITPOS", "nokey", "0"]), int(0));
    assert_eq!(run(&ks, &["BITPOS", "nokey", "1", "a", "b", "c"]), int(-1));
    let bit = err("ERR The bit argument must be 1 or 0.");
    assert_eq!(run(&ks, &["BITPOS", "nokey", "2"]), bit);
    assert_eq!(run(&ks, &["BITPOS", "p", "x"]), err(NOT_INT));
    assert_eq!(
        run(&ks, &["BITPOS", "p", "1", "0", "-1", "BIT", "x"]),
        err(SYNTAX)
    );
    assert_eq!(
        run(&ks, &["BITPOS", "p", "1", "0", "a", "FOO"]),
        err(SYNTAX)
    );
    assert_eq!(
        run(&ks, &["BITPOS", "p", "1", "a", "0", "FOO"]),
        err(NOT_INT)
    );
}

#[test]
fn bitop() {
    let (ks, _) = setup();
    run(&ks, &["SET", "a", "abc"]);
    run(&ks, &["SET", "b", "abcdef"]);
    assert_eq!(run(&ks, &["BITOP", "AND", "d", "a", "b"]), int(6));
    assert_eq!(run(&ks, &["GET", "d"]), Frame::bulk_from(b"abc\0\0\0"));
    assert_eq!(run(&ks, &["BITOP", "or", "d", "a", "b"]), int(6));
    assert_eq!(run(&ks, &["GET", "d"]), bulk("abcdef"));
    assert_eq!(run(&ks, &["BITOP", "XOR", "d", "a", "b"]), int(6));
    assert_eq!(run(&ks, &["GET", "d"]), Frame::bulk_from(b"\0\0\0def"));
    assert_eq!(run(&ks, &["BITOP", "NOT", "d", "a"]), int(3));
    assert_eq!(run(&ks, &["GET", "d"]), Frame::bulk_from(b"\x9e\x9d\x9c"));
    assert_eq!(
        run(&ks, &["BITOP", "NOT", "d", "a", "b"]),
        err("ERR BITOP NOT must be called with a single source key.")
    );
    assert_eq!(run(&ks, &["BITOP", "NAND", "d", "a"]), err(SYNTAX));
    assert_eq!(run(&ks, &["BITOP", "AND", "d"]), arity("bitop"));
    run(&ks, &["SET", "d", "x", "EX", "100"]);
    assert_eq!(run(&ks, &["BITOP", "OR", "d", "a"]), int(3));
    assert_eq!(run(&ks, &["TTL", "d"]), int(-1), "the result has no TTL");
    assert_eq!(run(&ks, &["OBJECT", "ENCODING", "d"]), bulk("raw"));
    assert_eq!(run(&ks, &["BITOP", "AND", "d", "no1", "no2"]), int(0));
    assert_eq!(
        run(&ks, &["EXISTS", "d"]),
        int(0),
        "an empty result deletes"
    );
    assert_eq!(
        run(&ks, &["BITOP", "XOR", "a", "a", "b"]),
        int(6),
        "dest as a source"
    );
    assert_eq!(run(&ks, &["GET", "a"]), Frame::bulk_from(b"\0\0\0def"));
}

#[test]
fn bit_writes_obey_maxmemory() {
    let (ks, _) = setup();
    run(&ks, &["SET", "a", "abc"]);
    ks.set_policy(EvictionPolicy::NoEviction);
    ks.set_maxmemory(1);
    let oom = err("OOM command not allowed when used memory > 'maxmemory'.");
    assert_eq!(run(&ks, &["SETBIT", "b", "1", "1"]), oom);
    assert_eq!(run(&ks, &["BITOP", "NOT", "d", "a"]), oom);
    assert_eq!(run(&ks, &["COPY", "a", "c"]), oom);
    assert_eq!(run(&ks, &["GETBIT", "a", "1"]), int(1), "reads still work");
    assert_eq!(run(&ks, &["LCS", "a", "a"]), bulk("abc"));
}

#[test]
fn lcs() {
    let (ks, _) = setup();
    run(&ks, &["SET", "a", "ohmytext"]);
    run(&ks, &["SET", "b", "mynewtext"]);
    assert_eq!(run(&ks, &["LCS", "a", "b"]), bulk("mytext"));
    assert_eq!(run(&ks, &["LCS", "a", "b", "LEN"]), int(6));
    let matches = |with_len: bool, min: usize| {
        let all: [([i64; 2], [i64; 2], i64); 2] = [([4, 7], [5, 8], 4), ([2, 3], [0, 1], 2)];
        let ms = all
            .iter()
            .filter(|(_, _, n)| *n >= min as i64)
            .map(|(x, y, n)| {
                let mut m = vec![ints(x), ints(y)];
                if with_len {
                    m.push(int(*n));
                }
                arr(m)
            })
            .collect();
        Frame::Map(vec![(bulk("matches"), arr(ms)), (bulk("len"), int(6))])
    };
    assert_eq!(run(&ks, &["LCS", "a", "b", "IDX"]), matches(false, 0));
    assert_eq!(
        run(
            &ks,
            &["LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"]
        ),
        matches(true, 4)
    );
    assert_eq!(
        run(
            &ks,
            &["LCS", "a", "b", "idx", "withmatchlen", "minmatchlen", "-5"]
        ),
        matches(true, 0)
    );
    assert_eq!(
        run(&ks, &["LCS", "a", "b", "LEN", "IDX"]),
        err("ERR If you want both the length and indexes, please just use IDX.")
    );
    assert_eq!(run(&ks, &["LCS", "a", "b", "MINMATCHLEN"]), err(SYNTAX));
    assert_eq!(
        run(&ks, &["LCS", "a", "b", "MINMATCHLEN", "x"]),
        err(NOT_INT)
    );
    assert_eq!(run(&ks, &["LCS", "a", "b", "FOO"]), err(SYNTAX));
    assert_eq!(run(&ks, &["LCS", "a", "nokey"]), bulk(""));
    assert_eq!(
        run(&ks, &["LCS", "x", "y", "IDX"]),
        Frame::Map(vec![(bulk("matches"), arr(vec![])), (bulk("len"), int(0))])
    );
    run(&ks, &["SET", "r1", "ABCBDAB"]);
    run(&ks, &["SET", "r2", "BDCABA"]);
    assert_eq!(
        run(&ks, &["LCS", "r1", "r2"]),
        bulk("BDAB"),
        "Redis's tie-break"
    );
    assert_eq!(run(&ks, &["LCS", "r2", "r1"]), bulk("BCBA"));
}

#[test]
fn copy() {
    let (ks, _) = setup();
    run(&ks, &["SET", "a", "v", "EX", "100"]);
    assert_eq!(run(&ks, &["COPY", "a", "b"]), int(1));
    assert_eq!(run(&ks, &["GET", "b"]), bulk("v"));
    assert_eq!(run(&ks, &["TTL", "b"]), int(100), "the TTL is copied");
    run(&ks, &["SET", "a", "w"]);
    assert_eq!(run(&ks, &["COPY", "a", "b"]), int(0));
    assert_eq!(run(&ks, &["COPY", "a", "b", "REPLACE"]), int(1));
    assert_eq!(
        (run(&ks, &["GET", "b"]), run(&ks, &["TTL", "b"])),
        (bulk("w"), int(-1))
    );
    assert_eq!(run(&ks, &["COPY", "nokey", "c"]), int(0));
    assert_eq!(run(&ks, &["COPY", "a", "c", "DB", "0"]), int(1));
    let same = err("ERR source and destination objects are the same");
    assert_eq!(run(&ks, &["COPY", "a", "a"]), same);
    let db = err("ERR DB index is out of range");
    assert_eq!(run(&ks, &["COPY", "a", "d", "DB", "1"]), db);
    assert_eq!(run(&ks, &["COPY", "a", "a", "DB", "1"]), db, "the DB first");
    assert_eq!(run(&ks, &["COPY", "a", "d", "DB", "x"]), err(NOT_INT));
    assert_eq!(
        run(&ks, &["COPY", "a", "d", "DB", "99999999999"]),
        err("ERR value is out of range, value must between -2147483648 and 2147483647")
    );
    assert_eq!(run(&ks, &["COPY", "a", "d", "DB"]), err(SYNTAX));
    assert_eq!(run(&ks, &["COPY", "a", "a", "FOO"]), err(SYNTAX));
    run(&ks, &["SET", "n", "5"]);
    run(&ks, &["COPY", "n", "n2"]);
    assert_eq!(run(&ks, &["OBJECT", "ENCODING", "n2"]), bulk("int"));
    assert_eq!(
        run(&ks, &["OBJECT", "REFCOUNT", "n2"]),
        int(1),
        "copies are unshared"
    );
    assert_eq!(run(&ks, &["OBJECT", "REFCOUNT", "n"]), int(2_147_483_647));
}

#[test]
fn touch_randomkey() {
    let (ks, clock) = setup();
    assert_eq!(run(&ks, &["RANDOMKEY"]), Frame::Null);
    run(&ks, &["SET", "a", "1"]);
    clock.advance(5_000);
    assert_eq!(run(&ks, &["OBJECT", "IDLETIME", "a"]), int(5));
    assert_eq!(run(&ks, &["TOUCH", "a", "nokey", "a"]), int(2));
    assert_eq!(run(&ks, &["OBJECT", "IDLETIME", "a"]), int(0));
    assert_eq!(run(&ks, &["RANDOMKEY"]), bulk("a"));
    assert_eq!(run(&ks, &["RANDOMKEY", "x"]), arity("randomkey"));
    assert_eq!(run(&ks, &["TOUCH"]), arity("touch"));
}

#[test]
fn object() {
    let (ks, _) = setup();
    let enc = |ks: &Keyspace, k: &str| run(ks, &["OBJECT", "ENCODING", k]);
    run(&ks, &["SET", "i", "12345"]);
    run(&ks, &["SET", "e", "hello"]);
    run(&ks, &["SET", "r", &"x".repeat(45)]);
    run(&ks, &["SET", "e44", &"x".repeat(44)]);
    assert_eq!(enc(&ks, "i"), bulk("int"));
    assert_eq!(enc(&ks, "e"), bulk("embstr"));
    assert_eq!(enc(&ks, "r"), bulk("raw"));
    assert_eq!(enc(&ks, "e44"), bulk("embstr"));
    assert_eq!(enc(&ks, "nokey"), Frame::Null);
    run(&ks, &["INCRBYFLOAT", "f", "3"]);
    assert_eq!(enc(&ks, "f"), bulk("embstr"), "INCRBYFLOAT makes a string");
    run(&ks, &["APPEND", "i", "6"]);
    assert_eq!(enc(&ks, "i"), bulk("raw"));
    run(&ks, &["APPEND", "new", "12"]);
    assert_eq!(enc(&ks, "new"), bulk("int"));
    run(&ks, &["SETRANGE", "e", "0", "H"]);
    assert_eq!(enc(&ks, "e"), bulk("raw"));
    run(&ks, &["INCR", "e44x"]);
    assert_eq!(enc(&ks, "e44x"), bulk("int"));
    assert_eq!(
        run(&ks, &["OBJECT", "REFCOUNT", "e44x"]),
        int(2_147_483_647)
    );
    assert_eq!(run(&ks, &["OBJECT", "REFCOUNT", "e"]), int(1));
    assert_eq!(
        run(&ks, &["OBJECT", "FREQ", "e"]),
        err(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. \
             Please note that when switching between policies at runtime LRU and LFU data \
             will take some time to adjust."
        )
    );
    assert_eq!(run(&ks, &["OBJECT", "FREQ", "nokey"]), Frame::Null);
    let Frame::Array(help) = run(&ks, &["OBJECT", "help"]) else {
        panic!("OBJECT HELP is an array");
    };
    assert_eq!(help.len(), 15);
    assert_eq!(
        help.first(),
        Some(&Frame::simple(
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
        ))
    );
    assert_eq!(run(&ks, &["OBJECT", "HELP", "x"]), arity("object|help"));
    assert_eq!(run(&ks, &["OBJECT", "Encoding"]), arity("object|encoding"));
    assert_eq!(
        run(&ks, &["OBJECT", "REFCOUNT", "a", "b"]),
        arity("object|refcount")
    );
    assert_eq!(
        run(&ks, &["OBJECT", "Foo", "bar"]),
        err("ERR unknown subcommand 'Foo'. Try OBJECT HELP.")
    );
    assert_eq!(run(&ks, &["OBJECT"]), arity("object"));
}

#[test]
fn wait_and_waitaof() {
    let (ks, _) = setup();
    assert_eq!(run(&ks, &["WAIT", "0", "0"]), int(0));
    assert_eq!(run(&ks, &["WAIT", "3", "100"]), int(0));
    assert_eq!(run(&ks, &["WAIT", "x", "0"]), err(NOT_INT));
    assert_eq!(
        run(&ks, &["WAIT", "0", "1.5"]),
        err("ERR timeout is not an integer or out of range")
    );
    assert_eq!(
        run(&ks, &["WAIT", "0", "-1"]),
        err("ERR timeout is negative")
    );
    assert_eq!(run(&ks, &["WAIT", "0"]), arity("wait"));
    assert_eq!(run(&ks, &["WAITAOF", "0", "0", "0"]), ints(&[0, 0]));
    assert_eq!(run(&ks, &["WAITAOF", "0", "2", "10"]), ints(&[0, 0]));
    assert_eq!(
        run(&ks, &["WAITAOF", "1", "0", "0"]),
        err("ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.")
    );
    assert_eq!(
        run(&ks, &["WAITAOF", "2", "0", "0"]),
        err("ERR value is out of range, value must between 0 and 1")
    );
    assert_eq!(
        run(&ks, &["WAITAOF", "0", "-1", "0"]),
        err("ERR value is out of range, must be positive")
    );
    assert_eq!(
        run(&ks, &["WAITAOF", "1", "0", "-1"]),
        err("ERR timeout is negative"),
        "arguments before the AOF check"
    );
}

// ----------------------------------------------------------------- models

/// Bit `i` of `v` (bit 0 is the top bit of the first byte).
fn bit_at(v: &[u8], i: i64) -> u8 {
    v.get((i / 8) as usize)
        .map_or(0, |b| (b >> (7 - i % 8)) & 1)
}

/// The inclusive bit range a `BITCOUNT`/`BITPOS` range covers, by the documented
/// rules: negative indexes from the end, clamped to the string.
fn bit_range(len: i64, start: i64, end: i64, bits: bool) -> (i64, i64) {
    let total = if bits { len * 8 } else { len };
    let clamp = |i: i64| if i < 0 { (i + total).max(0) } else { i };
    let (s, e) = (clamp(start), clamp(end).min(total - 1));
    if bits {
        (s, e)
    } else {
        (s * 8, e * 8 + 7)
    }
}

fn unit(bits: bool) -> &'static str {
    if bits {
        "BIT"
    } else {
        "BYTE"
    }
}

proptest! {
    #[test]
    fn bitcount_counts_the_bits_in_range(
        v in proptest::collection::vec(any::<u8>(), 1..12),
        start in -100i64..100,
        end in -100i64..100,
        bits in any::<bool>(),
    ) {
        let (ks, _) = setup();
        run_raw(&ks, &[b"SET", b"k", &v]);
        let len = v.len() as i64;
        let want = if start < 0 && end < 0 && start > end {
            0
        } else {
            let (lo, hi) = bit_range(len, start, end, bits);
            (lo..=hi).map(|i| i64::from(bit_at(&v, i))).sum()
        };
        let (s, e) = (start.to_string(), end.to_string());
        prop_assert_eq!(run(&ks, &["BITCOUNT", "k", &s, &e, unit(bits)]), int(want));
    }

    #[test]
    fn bitpos_finds_the_first_bit_in_range(
        v in proptest::collection::vec(prop_oneof![Just(0u8), Just(0xff), any::<u8>()], 1..12),
        bit in 0u8..2,
        start in -100i64..100,
        end in proptest::option::of(-100i64..100),
        bits in any::<bool>(),
    ) {
        let (ks, _) = setup();
        run_raw(&ks, &[b"SET", b"k", &v]);
        let len = v.len() as i64;
        // BIT needs an explicit end; without one the range runs to the end of the
        // string and, looking for a 0, the string counts as followed by zeros.
        let bits = bits && end.is_some();
        let (lo, hi) = bit_range(len, start, end.unwrap_or(-1), bits);
        let want = if lo > hi {
            -1
        } else {
            match (lo..=hi).find(|&i| bit_at(&v, i) == bit) {
                Some(i) => i,
                None if bit == 0 && end.is_none() => hi + 1,
                None => -1,
            }
        };
        let (b, s) = (bit.to_string(), start.to_string());
        let mut args = vec!["BITPOS", "k", &b, &s];
        let e = end.map(|e| e.to_string());
        if let Some(e) = &e {
            args.push(e);
            args.push(unit(bits));
        }
        prop_assert_eq!(run(&ks, &args), int(want));
    }
}
