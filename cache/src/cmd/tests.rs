//! Reply and error tests for every string command, against Redis 7 behaviour.
//!
//! Why this file is long: one table of cases per command.

use bytes::Bytes;

use super::Command;
use crate::keyspace::{Clock, EvictionPolicy, Keyspace, KeyspaceConfig, ManualClock};
use conclave_protocol::parse::Parse;
use conclave_protocol::Frame;

mod redis7;

const T0: u64 = 1_700_000_000_000;

fn setup() -> (Keyspace, ManualClock) {
    let clock = ManualClock::new(T0);
    let ks = Keyspace::with_clock(KeyspaceConfig::default(), Clock::Manual(clock.clone()));
    (ks, clock)
}

fn run_bytes(ks: &Keyspace, args: Vec<Bytes>) -> Frame {
    let mut parse = Parse::new(args);
    match Command::from_parse(&mut parse) {
        Some(Ok(cmd)) => cmd.apply(ks),
        Some(Err(e)) => e.to_frame(),
        None => Frame::error("ERR not a keyspace command"),
    }
}

fn run(ks: &Keyspace, args: &[&str]) -> Frame {
    run_bytes(
        ks,
        args.iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect(),
    )
}

fn bulk(s: &str) -> Frame {
    Frame::bulk_from(s.as_bytes())
}

fn int(n: i64) -> Frame {
    Frame::Integer(n)
}

fn err(s: &str) -> Frame {
    Frame::error(s)
}

fn ok() -> Frame {
    Frame::ok()
}

fn arity(name: &str) -> Frame {
    err(&format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

const NOT_INT: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";

#[test]
fn unknown_commands_are_not_ours() {
    let mut parse = Parse::new(vec![Bytes::from_static(b"LOCK.ACQUIRE")]);
    assert!(Command::from_parse(&mut parse).is_none());
}

#[test]
fn get_set_basics() {
    let (ks, _) = setup();
    assert_eq!(run(&ks, &["GET", "k"]), Frame::Null);
    assert_eq!(run(&ks, &["SET", "k", "v"]), ok());
    assert_eq!(run(&ks, &["GET", "k"]), bulk("v"));
    assert_eq!(run(&ks, &["set", "k", "v2"]), ok());
    assert_eq!(run(&ks, &["get", "k"]), bulk("v2"));
    assert_eq!(run(&ks, &["GET"]), arity("get"));
    assert_eq!(run(&ks, &["GET", "a", "b"]), arity("get"));
    assert_eq!(run(&ks, &["SET", "k"]), arity("set"));
    assert_eq!(run(&ks, &["SET", "k", "v", "junk"]), err(SYNTAX));
    assert_eq!(run(&ks, &["SET", "", ""]), ok());
    assert_eq!(run(&ks, &["GET", ""]), bulk(""));
}

#[test]
fn set_nx_xx_get() {
    let (ks, _) = setup();
    assert_eq!(run(&ks, &["SET", "k", "1", "XX"]), Frame::Null);
    assert_eq!(run(&ks, &["SET", "k", "1", "NX"]), ok());
    assert_eq!(run(&ks, &["SET", "k", "2", "NX"]), Frame::Null);
    assert_eq!(run(&ks, &["SET", "k", "3", "XX"]), ok());
    assert_eq!(run(&ks, &["GET", "k"]), bulk("3"));
    assert_eq!(run(&ks, &["SET", "k", "4", "GET"]), bulk("3"));
    assert_eq!(run(&ks, &["SET", "new", "x", "GET"]), Frame::Null);
    assert_eq!(run(&ks, &["GET", "new"]), bulk("x"));
    // NX + GET (Redis 7): returns the old value and does not write.
    assert_eq!(run(&ks, &["SET", "k", "5", "NX", "GET"]), bulk("4"));
    assert_eq!(run(&ks, &["GET", "k"]), bulk("4"));
    assert_eq!(run(&ks, &["SET", "k", "1", "NX", "XX"]), err(SYNTAX));
    assert_eq!(run(&ks, &["SET", "k", "1", "XX", "NX"]), err(SYNTAX));
    // A repeated NX is accepted; the key exists, so nothing is written.
    assert_eq!(run(&ks, &["SET", "k", "1", "NX", "NX"]), Frame::Null);
}

#[test]
fn set_expire_options() {
    let (ks, clock) = setup();
    assert_eq!(run(&ks, &["SET", "k", "v", "EX", "10"]), ok());
    assert_eq!(run(&ks, &["TTL", "k"]), int(10));
    assert_eq!(run(&ks, &["PTTL", "k"]), int(10_000));
    assert_eq!(run(&ks, &["SET", "k", "v", "PX", "1500"]), ok());
    assert_eq!(run(&ks, &["PTTL", "k"]), int(1500));
    assert_eq!(run(&ks, &["TTL", "k"]), int(2)); // rounded
    let at = (T0 / 1000 + 100).to_string();
    assert_eq!(run(&ks, &["SET", "k", "v", "EXAT", &at]), ok());
    assert_eq!(run(&ks, &["TTL", "k"]), int(100));
    let pat = (T0 + 5000).to_string();
    assert_eq!(run(&ks, &["SET", "k", "v", "PXAT", &pat]), ok());
    assert_eq!(run(&ks, &["PTTL", "k"]), int(5000));
    assert_eq!(run(&ks, &["SET", "k", "v2", "KEEPTTL"]), ok());
    assert_eq!(run(&ks, &["PTTL", "k"]), int(5000));
    assert_eq!(run(&ks, &["SET", "k", "v3"]), ok());
    assert_eq!(run(&ks, &["TTL", "k"]), int(-1));
    // The same option twice is allowed (last wins); different ones conflict.
    assert_eq!(run(&ks, &["SET", "k", "v", "EX", "1", "EX", "7"]), ok());
    assert_eq!(run(&ks, &["TTL", "k"]), int(7));
    for bad in [
        &["SET", "k", "v", "EX", "1", "PX", "1"][..],
        &["SET", "k", "v", "EX", "1", "KEEPTTL"],
        &["SET", "k", "v", "KEEPTTL", "PX", "1"],
        &["SET", "k", "v", "EX"],
        &["SET", "k", "v", "PERSIST"],
        &["SET", "k", "v", "EXAT", "1", "PXAT", "1"],
    ] {
        assert_eq!(run(&ks, bad), err(SYNTAX), "{bad:?}");
    }
    let inv = err("ERR invalid expire time in 'set' command");
    assert_eq!(run(&ks, &["SET", "k", "v", "EX", "0"]), inv);
    assert_eq!(run(&ks, &["SET", "k", "v", "PX", "-5"]), inv);
    assert_eq!(
        run(&ks, &["SET", "k", "v", "EX", "9223372036854775807"]),
        inv
    );
    assert_eq!(
        run(&ks, &["SET", "k", "v", "PX", "9223372036854775807"]),
        inv
    );
    assert_eq!(run(&ks, &["SET", "k", "v", "EX", "abc"]), err(NOT_INT));
    assert_eq!(
        run(&ks, &["CACHE.SET", "k", "v", "EX", "0"]),
        err("ERR invalid expire time in 'cache.set' command")
    );
    // A past absolute time stores nothing.
    assert_eq!(run(&ks, &["SET", "gone", "v", "PXAT", "1"]), ok());
    assert_eq!(run(&ks, &["GET", "gone"]), Frame::Null);
    // Expiry happens when the clock passes the deadline.
    assert_eq!(run(&ks, &["SET", "t", "v", "PX", "100"]), ok());
    clock.advance(99);
    assert_eq!(run(&ks, &["GET", "t"]), bulk("v"));
    clock.advance(1);
    assert_eq!(run(&ks, &["GET", "t"]), Frame::Null);
    assert_eq!(run(&ks, &["TTL", "t"]), int(-2));
}

#[test]
fn setnx_setex_psetex_getset() {
    let (ks, _) = setup();
    assert_eq!(run(&ks, &["SETNX", "k", "1"]), int(1));
    assert_eq!(run(&ks, &["SETNX", "k", "2"]), int(0));
    assert_eq!(run(&ks, &["SETNX", "k"]), arity("setnx"));
    assert_eq!(run(&ks, &["SETEX", "k", "10", "v"]), ok());
    assert_eq!(run(&ks, &["TTL", "k"]), int(10));
    assert_eq!(run(&ks, &["PSETEX", "k", "1234", "v"]), ok());
    assert_eq!(run(&ks, &["PTTL", "k"]), int(1234));
    assert_eq!(
        run(&ks, &["SETEX", "k", "0", "v"]),
        err("ERR invalid expire time in 'setex' command")
    );
    assert_eq!(
        run(&ks, &["PSETEX", "k", "-1", "v"]),
        err("ERR invalid expire time in 'psetex' command")
    );
    assert_eq!(run(&ks, &["SETEX", "k", "x", "v"]), err(NOT_INT));
    assert_eq!(run(&ks, &["SETEX", "k", "1"]), arity("setex"));
    assert_eq!(run(&ks, &["GETSET", "k", "new"]), bulk("v"));
    assert_eq!(run(&ks, &["TTL", "k"]), int(-1)); // GETSET clears the TTL
    assert_eq!(run(&ks, &["GETSET", "nokey", "x"]), Frame::Null);
    assert_eq!(run(&ks, &["GET", "nokey"]), bulk("x"));
}

#[test]
fn getdel_getex() {
    let (ks, _) = setup();
    run(&ks, &["SET", "k", "v"]);
    assert_eq!(run(&ks, &["GETDEL", "k"]), bulk("v"));
    assert_eq!(run(&ks, &["GETDEL", "k"]), Frame::Null);
    assert_eq!(run(&ks, &["GETEX", "k"]), Frame::Null);
    run(&ks, &["SET", "k", "v"]);
    assert_eq!(run(&ks, &["GETEX", "k", "EX", "100"]), bulk("v"));
    assert_eq!(run(&ks, &["TTL", "k"]), int(100));
    assert_eq!(run(&ks, &["GETEX", "k", "PERSIST"]), bulk("v"));
    assert_eq!(run(&ks, &["TTL", "k"]), int(-1));
    assert_eq!(run(&ks, &["GETEX", "k", "PXAT", "1"]), bulk("v"));
    assert_eq!(run(&ks, &["EXISTS", "k"]), int(0));
    assert_eq!(run(&ks, &["GETEX", "k", "EX", "1", "PERSIST"]), err(SYNTAX));
    assert_eq!(run(&ks, &["GETEX", "k", "KEEPTTL"]), err(SYNTAX));
    assert_eq!(run(&ks, &["GETEX", "k", "NX"]), err(SYNTAX));
    assert_eq!(
        run(&ks, &["GETEX", "k", "EX", "0"]),
        err("ERR invalid expire time in 'getex' command")
    );
    assert_eq!(run(&ks, &["GETEX"]), arity("getex"));
}

#[test]
fn mget_mset_msetnx() {
    let (ks, _) = setup();
    assert_eq!(run(&ks, &["MSET", "a", "1", "b", "2"]), ok());
    assert_eq!(
        run(&ks, &["MGET", "a", "b", "c"]),
        Frame::Array(vec![bulk("1"), bulk("2"), Frame::Null])
    );
    assert_eq!(run(&ks, &["MSET", "a", "1", "b"]), arity("mset"));
    assert_eq!(run(&ks, &["MSET", "a"]), arity("mset"));
    assert_eq!(run(&ks, &["MGET"]), arity("mget"));
    assert_eq!(run(&ks, &["MSETNX", "a", "9", "z", "9"]), int(0));
    assert_eq!(run(&ks, &["GET", "z"]), Frame::Null);
    assert_eq!(run(&ks, &["MSETNX", "y", "9", "z", "9"]), int(1));
    assert_eq!(run(&ks, &["MSETNX", "y", "9", "z"]), arity("msetnx"));
    // Later duplicates win; MSET clears TTLs.
    run(&ks, &["SET", "t", "v", "EX", "100"]);
    assert_eq!(run(&ks, &["MSET", "t", "1", "t", "2"]), ok());
    assert_eq!(run(&ks, &["GET", "t"]), bulk("2"));
    assert_eq!(run(&ks, &["TTL", "t"]), int(-1));
}

#[test]
fn del_unlink_exists() {
    let (ks, _) = setup();
    run(&ks, &["MSET", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(run(&ks, &["EXISTS", "a", "a", "b", "x"]), int(3));
    assert_eq!(run(&ks, &["DEL", "a", "x", "a"]), int(1));
    assert_eq!(run(&ks, &["UNLINK", "b"]), int(1));
    assert_eq!(run(&ks, &["CACHE.DEL", "c"]), int(1));
    assert_eq!(run(&ks, &["EXISTS", "a", "b", "c"]), int(0));
    assert_eq!(run(&ks, &["DEL"]), arity("del"));
    assert_eq!(run(&ks, &["EXISTS"]), arity("exists"));
    assert_eq!(run(&ks, &["DBSIZE"]), int(0));
}

#[test]
fn incr_family() {
    let (ks, _) = setup();
    assert_eq!(run(&ks, &["INCR", "n"]), int(1));
    assert_eq!(run(&ks, &["INCRBY", "n", "10"]), int(11));
    assert_eq!(run(&ks, &["DECR", "n"]), int(10));
    assert_eq!(run(&ks, &["DECRBY", "n", "20"]), int(-10));
    assert_eq!(run(&ks, &["GET", "n"]), bulk("-10"));
    assert_eq!(run(&ks, &["INCRBY", "n", "x"]), err(NOT_INT));
    assert_eq!(run(&ks, &["INCR"]), arity("incr"));
    run(&ks, &["SET", "s", "abc"]);
    assert_eq!(run(&ks, &["INCR", "s"]), err(NOT_INT));
    run(&ks, &["SET", "s", " 1"]);
    assert_eq!(run(&ks, &["INCR", "s"]), err(NOT_INT));
    run(&ks, &["SET", "max", "9223372036854775807"]);
    let overflow = err("ERR increment or decrement would overflow");
    assert_eq!(run(&ks, &["INCR", "max"]), overflow);
    run(&ks, &["SET", "min", "-9223372036854775808"]);
    assert_eq!(run(&ks, &["DECR", "min"]), overflow);
    assert_eq!(
        run(&ks, &["DECRBY", "min", "-9223372036854775808"]),
        err("ERR decrement would overflow")
    );
    // INCR keeps the TTL.
    run(&ks, &["SET", "t", "1", "EX", "100"]);
    assert_eq!(run(&ks, &["INCR", "t"]), int(2));
    assert_eq!(run(&ks, &["TTL", "t"]), int(100));
}

#[test]
fn incrbyfloat() {
    let (ks, _) = setup();
    assert_eq!(run(&ks, &["INCRBYFLOAT", "f", "10.5"]), bulk("10.5"));
    assert_eq!(run(&ks, &["INCRBYFLOAT", "f", "0.1"]), bulk("10.6"));
    assert_eq!(run(&ks, &["INCRBYFLOAT", "f", "-5"]), bulk("5.6"));
    assert_eq!(run(&ks, &["INCRBYFLOAT", "f", "-5.6"]), bulk("0"));
    run(&ks, &["SET", "i", "5000"]);
    assert_eq!(run(&ks, &["INCRBYFLOAT", "i", "2.0e3"]), bulk("7000"));
    assert_eq!(
        run(&ks, &["INCRBYFLOAT", "f", "abc"]),
        err("ERR value is not a valid float")
    );
    run(&ks, &["SET", "s", "x"]);
    assert_eq!(
        run(&ks, &["INCRBYFLOAT", "s", "1"]),
        err("ERR value is not a valid float")
    );
    assert_eq!(
        run(&ks, &["INCRBYFLOAT", "f", "inf"]),
        err("ERR increment would produce NaN or Infinity")
    );
}

/// Redis adds in `long double` and prints with `%.17Lf`: every reply below is what
/// redis-server 7.0.15 on x86-64 answers.
#[test]
fn incrbyfloat_is_redis_long_double() {
    let (ks, _) = setup();
    run(&ks, &["SET", "a", "0.1"]);
    assert_eq!(run(&ks, &["INCRBYFLOAT", "a", "0.2"]), bulk("0.3"));
    run(&ks, &["SET", "g", "1000"]);
    assert_eq!(
        run(&ks, &["INCRBYFLOAT", "g", "1.8"]),
        bulk("1001.79999999999999999")
    );
    assert_eq!(run(&ks, &["GET", "g"]), bulk("1001.79999999999999999"));
    assert_eq!(run(&ks, &["INCRBYFLOAT", "u", "1e-18"]), bulk("0"));
    assert_eq!(run(&ks, &["INCRBYFLOAT", "h", "0x10"]), bulk("16"));
    run(&ks, &["SET", "k", "10.5"]);
    assert_eq!(run(&ks, &["INCRBYFLOAT", "k", "0.1"]), bulk("10.6"));
    assert_eq!(run(&ks, &["INCRBYFLOAT", "e", "5.0e3"]), bulk("5000"));
    assert_eq!(run(&ks, &["INCRBYFLOAT", "z", "-0"]), bulk("0"));
    run(&ks, &["SET", "big", "1e308"]);
    let Frame::Bulk(big) = run(&ks, &["INCRBYFLOAT", "big", "1e308"]) else {
        panic!("not a bulk");
    };
    assert_eq!(big.len(), 309);
    assert!(big.starts_with(b"19999999999999999999337"));
    let not_float = err("ERR value is not a valid float");
    for bad in ["1 ", " 1", "", "1e", "nan", "0x", "1e99999"] {
        assert_eq!(run(&ks, &["INCRBYFLOAT", "k", bad]), not_float, "{bad:?}");
        run(&ks, &["SET", "bad", bad]);
        assert_eq!(run(&ks, &["INCRBYFLOAT", "bad", "1"]), not_float, "{bad:?}");
    }
    assert_eq!(
        run(&ks, &["GET", "k"]),
        bulk("10.6"),
        "errors change nothing"
    );
    run(&ks, &["SET", "t", "1", "EX", "100"]);
    assert_eq!(run(&ks, &["INCRBYFLOAT", "t", "1.5"]), bulk("2.5"));
    assert_eq!(run(&ks, &["TTL", "t"]), int(100), "the TTL is kept");
}

#[test]
fn append_strlen_getrange_setrange() {
    let (ks, _) = setup();
    assert_eq!(run(&ks, &["APPEND", "k", "Hello"]), int(5));
    assert_eq!(run(&ks, &["APPEND", "k", " World"]), int(11));
    assert_eq!(run(&ks, &["STRLEN", "k"]), int(11));
    assert_eq!(run(&ks, &["STRLEN", "none"]), int(0));
    assert_eq!(run(&ks, &["GETRANGE", "k", "0", "4"]), bulk("Hello"));
    assert_eq!(run(&ks, &["GETRANGE", "k", "-5", "-1"]), bulk("World"));
    assert_eq!(run(&ks, &["GETRANGE", "k", "0", "-1"]), bulk("Hello World"));
    assert_eq!(run(&ks, &["GETRANGE", "k", "5", "3"]), bulk(""));
    assert_eq!(run(&ks, &["GETRANGE", "k", "-1", "-5"]), bulk(""));
    assert_eq!(
        run(&ks, &["GETRANGE", "k", "0", "100"]),
        bulk("Hello World")
    );
    assert_eq!(run(&ks, &["GETRANGE", "none", "0", "1"]), bulk(""));
    assert_eq!(run(&ks, &["GETRANGE", "k", "a", "1"]), err(NOT_INT));
    assert_eq!(run(&ks, &["SETRANGE", "k", "6", "Redis"]), int(11));
    assert_eq!(run(&ks, &["GET", "k"]), bulk("Hello Redis"));
    assert_eq!(run(&ks, &["SETRANGE", "p", "3", "x"]), int(4));
    assert_eq!(run(&ks, &["GET", "p"]), Frame::bulk_from(b"\0\0\0x"));
    assert_eq!(run(&ks, &["SETRANGE", "empty", "5", ""]), int(0));
    assert_eq!(run(&ks, &["EXISTS", "empty"]), int(0));
    assert_eq!(run(&ks, &["SETRANGE", "k", "100", ""]), int(11));
    assert_eq!(
        run(&ks, &["SETRANGE", "k", "-1", "x"]),
        err("ERR offset is out of range")
    );
    assert_eq!(
        run(&ks, &["SETRANGE", "k", "536870912", "x"]),
        err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    );
    assert_eq!(run(&ks, &["APPEND", "k"]), arity("append"));
}

#[test]
fn expire_family() {
    let (ks, clock) = setup();
    assert_eq!(run(&ks, &["EXPIRE", "k", "10"]), int(0));
    run(&ks, &["SET", "k", "v"]);
    assert_eq!(run(&ks, &["TTL", "k"]), int(-1));
    assert_eq!(run(&ks, &["EXPIRE", "k", "10"]), int(1));
    assert_eq!(run(&ks, &["TTL", "k"]), int(10));
    assert_eq!(run(&ks, &["PEXPIRE", "k", "20000"]), int(1));
    assert_eq!(run(&ks, &["TTL", "k"]), int(20));
    let at = (T0 / 1000 + 30).to_string();
    assert_eq!(run(&ks, &["EXPIREAT", "k", &at]), int(1));
    assert_eq!(run(&ks, &["TTL", "k"]), int(30));
    assert_eq!(run(&ks, &["EXPIRETIME", "k"]), int((T0 / 1000 + 30) as i64));
    assert_eq!(run(&ks, &["PEXPIRETIME", "k"]), int((T0 + 30_000) as i64));
    let pat = (T0 + 40_000).to_string();
    assert_eq!(run(&ks, &["PEXPIREAT", "k", &pat]), int(1));
    assert_eq!(run(&ks, &["PTTL", "k"]), int(40_000));
    // NX / XX / GT / LT
    assert_eq!(run(&ks, &["EXPIRE", "k", "100", "NX"]), int(0));
    assert_eq!(run(&ks, &["EXPIRE", "k", "100", "XX"]), int(1));
    assert_eq!(run(&ks, &["EXPIRE", "k", "50", "GT"]), int(0));
    assert_eq!(run(&ks, &["EXPIRE", "k", "200", "GT"]), int(1));
    assert_eq!(run(&ks, &["EXPIRE", "k", "300", "LT"]), int(0));
    assert_eq!(run(&ks, &["EXPIRE", "k", "150", "lt"]), int(1));
    assert_eq!(run(&ks, &["TTL", "k"]), int(150));
    assert_eq!(run(&ks, &["PERSIST", "k"]), int(1));
    assert_eq!(run(&ks, &["PERSIST", "k"]), int(0));
    assert_eq!(run(&ks, &["PERSIST", "none"]), int(0));
    assert_eq!(run(&ks, &["EXPIRE", "k", "100", "GT"]), int(0)); // no TTL = infinite
    assert_eq!(run(&ks, &["EXPIRE", "k", "100", "XX", "LT"]), int(0));
    assert_eq!(run(&ks, &["EXPIRE", "k", "100", "LT"]), int(1));
    assert_eq!(run(&ks, &["EXPIRE", "k", "100", "XX", "LT"]), int(0)); // not less
    assert_eq!(run(&ks, &["EXPIRE", "k", "90", "XX", "LT"]), int(1));
    assert_eq!(run(&ks, &["EXPIRE", "k", "100", "NX"]), int(0));
    // Errors, in Redis's order: options first, then the number.
    assert_eq!(
        run(&ks, &["EXPIRE", "k", "100", "NX", "XX"]),
        err("ERR NX and XX, GT or LT options at the same time are not compatible")
    );
    assert_eq!(
        run(&ks, &["EXPIRE", "k", "100", "GT", "LT"]),
        err("ERR GT and LT options at the same time are not compatible")
    );
    assert_eq!(
        run(&ks, &["EXPIRE", "k", "x", "foo"]),
        err("ERR Unsupported option foo")
    );
    assert_eq!(run(&ks, &["EXPIRE", "k", "x"]), err(NOT_INT));
    assert_eq!(
        run(&ks, &["EXPIRE", "k", "9223372036854775807"]),
        err("ERR invalid expire time in 'expire' command")
    );
    assert_eq!(
        run(&ks, &["PEXPIRE", "k", "9223372036854775807"]),
        err("ERR invalid expire time in 'pexpire' command")
    );
    assert_eq!(run(&ks, &["EXPIRE", "k"]), arity("expire"));
    // A non-positive TTL deletes the key and answers 1.
    assert_eq!(run(&ks, &["EXPIRE", "k", "-1"]), int(1));
    assert_eq!(run(&ks, &["EXISTS", "k"]), int(0));
    assert_eq!(run(&ks, &["TTL", "k"]), int(-2));
    assert_eq!(run(&ks, &["EXPIRETIME", "k"]), int(-2));
    run(&ks, &["SET", "k", "v"]);
    assert_eq!(run(&ks, &["PEXPIRETIME", "k"]), int(-1));
    assert_eq!(run(&ks, &["PEXPIRE", "k", "10"]), int(1));
    clock.advance(10);
    assert_eq!(run(&ks, &["PTTL", "k"]), int(-2));
}

#[test]
fn keys_scan_type_dbsize_flush() {
    let (ks, _) = setup();
    run(
        &ks,
        &[
            "MSET", "hello", "1", "hallo", "2", "hxllo", "3", "other", "4",
        ],
    );
    let mut keys = match run(&ks, &["KEYS", "h[ae]llo"]) {
        Frame::Array(items) => items,
        other => panic!("{other:?}"),
    };
    keys.sort_by_key(|f| format!("{f:?}"));
    assert_eq!(keys, vec![bulk("hallo"), bulk("hello")]);
    assert_eq!(run(&ks, &["KEYS"]), arity("keys"));
    assert_eq!(run(&ks, &["DBSIZE"]), int(4));
    assert_eq!(run(&ks, &["DBSIZE", "x"]), arity("dbsize"));
    assert_eq!(run(&ks, &["TYPE", "hello"]), Frame::simple("string"));
    assert_eq!(run(&ks, &["TYPE", "nope"]), Frame::simple("none"));

    // A full SCAN with MATCH and a small COUNT.
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    loop {
        let reply = run(&ks, &["SCAN", &cursor, "MATCH", "h*", "COUNT", "2"]);
        let Frame::Array(parts) = reply else { panic!() };
        let [Frame::Bulk(c), Frame::Array(found)] = &parts[..] else {
            panic!()
        };
        cursor = String::from_utf8(c.to_vec()).unwrap();
        seen.extend(found.iter().cloned());
        if cursor == "0" {
            break;
        }
    }
    seen.sort_by_key(|f| format!("{f:?}"));
    assert_eq!(seen, vec![bulk("hallo"), bulk("hello"), bulk("hxllo")]);
    let Frame::Array(parts) = run(&ks, &["SCAN", "0", "COUNT", "1000", "TYPE", "hash"]) else {
        panic!()
    };
    assert_eq!(parts[1], Frame::Array(vec![]));
    assert_eq!(run(&ks, &["SCAN", "x"]), err("ERR invalid cursor"));
    assert_eq!(run(&ks, &["SCAN", "-1"]), err("ERR invalid cursor"));
    assert_eq!(run(&ks, &["SCAN", "0", "COUNT", "0"]), err(SYNTAX));
    assert_eq!(run(&ks, &["SCAN", "0", "COUNT", "x"]), err(NOT_INT));
    assert_eq!(run(&ks, &["SCAN", "0", "MATCH"]), err(SYNTAX));
    assert_eq!(run(&ks, &["SCAN", "0", "FOO", "bar"]), err(SYNTAX));
    assert_eq!(run(&ks, &["SCAN"]), arity("scan"));

    assert_eq!(run(&ks, &["FLUSHALL", "FOO"]), err(SYNTAX));
    assert_eq!(run(&ks, &["FLUSHALL", "SYNC", "x"]), err(SYNTAX));
    assert_eq!(run(&ks, &["FLUSHALL"]), ok());
    assert_eq!(run(&ks, &["DBSIZE"]), int(0));
    run(&ks, &["SET", "a", "1"]);
    assert_eq!(run(&ks, &["FLUSHDB", "ASYNC"]), ok());
    assert_eq!(run(&ks, &["DBSIZE"]), int(0));
    assert_eq!(ks.used_bytes(), 0);
}

#[test]
fn rename() {
    let (ks, _) = setup();
    assert_eq!(run(&ks, &["RENAME", "a", "b"]), err("ERR no such key"));
    assert_eq!(run(&ks, &["RENAMENX", "a", "b"]), err("ERR no such key"));
    run(&ks, &["SET", "a", "1", "EX", "100"]);
    assert_eq!(run(&ks, &["RENAME", "a", "a"]), ok());
    assert_eq!(run(&ks, &["RENAMENX", "a", "a"]), int(0));
    assert_eq!(run(&ks, &["RENAME", "a", "b"]), ok());
    assert_eq!(run(&ks, &["GET", "a"]), Frame::Null);
    assert_eq!(run(&ks, &["GET", "b"]), bulk("1"));
    assert_eq!(run(&ks, &["TTL", "b"]), int(100));
    run(&ks, &["SET", "c", "2"]);
    assert_eq!(run(&ks, &["RENAMENX", "b", "c"]), int(0));
    assert_eq!(run(&ks, &["RENAME", "b", "c"]), ok());
    assert_eq!(run(&ks, &["GET", "c"]), bulk("1"));
    assert_eq!(run(&ks, &["DBSIZE"]), int(1));
    assert_eq!(run(&ks, &["RENAMENX", "c", "d"]), int(1));
    // Many renames across (and within) shards keep every index consistent.
    for i in 0..200 {
        let (from, to) = (format!("r{i}"), format!("r{}", i + 1));
        if i == 0 {
            run(&ks, &["SET", &from, "x"]);
        }
        assert_eq!(run(&ks, &["RENAME", &from, &to]), ok());
    }
    assert_eq!(run(&ks, &["GET", "r200"]), bulk("x"));
    assert_eq!(run(&ks, &["DBSIZE"]), int(2));
}

#[test]
fn cache_synonyms_stats_state() {
    let (ks, _) = setup();
    assert_eq!(run(&ks, &["CACHE.SET", "k", "v", "PX", "1000"]), ok());
    assert_eq!(run(&ks, &["CACHE.GET", "k"]), bulk("v"));
    assert_eq!(run(&ks, &["CACHE.GET", "nope"]), Frame::Null);
    assert_eq!(run(&ks, &["CACHE.STATE", "k"]), Frame::simple("E"));
    assert_eq!(run(&ks, &["CACHE.STATE", "nope"]), Frame::simple("I"));
    let Frame::Map(pairs) = run(&ks, &["CACHE.STATS"]) else {
        panic!()
    };
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| *k == bulk(name))
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("hits"), int(1));
    assert_eq!(get("misses"), int(1));
    assert_eq!(get("hit_rate"), Frame::Double(0.5));
    assert_eq!(get("keys"), int(1));
    assert!(matches!(get("bytes"), Frame::Integer(n) if n > 0));
    assert_eq!(get("evictions"), int(0));
    assert_eq!(get("expired"), int(0));
    assert_eq!(run(&ks, &["CACHE.STATS", "x"]), arity("cache.stats"));
    assert_eq!(run(&ks, &["CACHE.DEL", "k"]), int(1));
}

#[test]
fn noeviction_answers_oom() {
    let (ks, _) = setup();
    ks.set_policy(EvictionPolicy::NoEviction);
    run(&ks, &["SET", "a", "1"]);
    ks.set_maxmemory(1);
    let oom = err("OOM command not allowed when used memory > 'maxmemory'.");
    assert_eq!(run(&ks, &["SET", "b", "1"]), oom);
    assert_eq!(run(&ks, &["INCR", "a"]), oom);
    assert_eq!(run(&ks, &["APPEND", "a", "x"]), oom);
    assert_eq!(run(&ks, &["MSET", "x", "1"]), oom);
    // Reads and deletes still work.
    assert_eq!(run(&ks, &["GET", "a"]), bulk("1"));
    assert_eq!(run(&ks, &["DEL", "a"]), int(1));
    ks.set_maxmemory(0);
    assert_eq!(run(&ks, &["SET", "b", "1"]), ok());
}

#[test]
fn binary_safe_and_large_values() {
    let (ks, _) = setup();
    let key = Bytes::from_static(b"bin\x00\r\n\xff");
    let big = Bytes::from(vec![0xA5u8; 10 << 20]);
    let reply = run_bytes(
        &ks,
        vec![Bytes::from_static(b"SET"), key.clone(), big.clone()],
    );
    assert_eq!(reply, ok());
    let got = run_bytes(&ks, vec![Bytes::from_static(b"GET"), key.clone()]);
    assert_eq!(got, Frame::Bulk(big));
    assert!(ks.used_bytes() >= 10 << 20);
    run_bytes(&ks, vec![Bytes::from_static(b"DEL"), key]);
    assert_eq!(ks.len(), 0);
}

#[test]
fn write_commands_are_flagged() {
    let mut p = Parse::new(vec![Bytes::from_static(b"GET"), Bytes::from_static(b"k")]);
    assert!(!Command::from_parse(&mut p).unwrap().unwrap().is_write());
    let mut p = Parse::new(vec![Bytes::from_static(b"DEL"), Bytes::from_static(b"k")]);
    assert!(Command::from_parse(&mut p).unwrap().unwrap().is_write());
}
