//! `INCRBYFLOAT`'s arithmetic, byte-identical to Redis 7.
//!
//! Redis parses both operands with the C library's `strtold`, adds them as
//! `long double` (the x87 80-bit extended format on x86-64, 64-bit mantissa), refuses
//! a NaN or infinite sum, and prints the result with `"%.17Lf"` before stripping
//! trailing zeros and a trailing dot (`util.c`: `string2ld`, `ld2string` in
//! `LD_STR_HUMAN` mode). So `0.1 + 0.2` is `0.3`, `1000 + 1.8` is
//! `1001.79999999999999999`, `0 + 1e-18` is `0`, `0x10` is 16 and `1e308 + 1e308`
//! is a 309-digit integer rather than `inf`.
//!
//! Rust has no `long double`, and a software 80-bit float would still need glibc's
//! exact decimal conversions both ways, so the arithmetic lives in a tiny C file
//! (`csrc/long_double.c`, built by `build.rs`) that calls the very functions Redis
//! calls. The `long double` never crosses the FFI boundary: strings go in, text comes
//! out. On other targets the C `long double` is that platform's, as it is for a Redis
//! built there.

use std::ffi::{c_char, c_int, c_long};

/// Room for any result: Redis's `MAX_LONG_DOUBLE_CHARS` (5 KiB). The largest finite
/// x87 value prints as 4933 digits plus `.` and 17 decimals.
const OUT_LEN: usize = 5 * 1024;

extern "C" {
    fn conclave_ld_valid(s: *const c_char, len: usize) -> c_int;
    fn conclave_ld_incr(
        old: *const c_char,
        oldlen: usize,
        has_old: c_int,
        incr: *const c_char,
        incrlen: usize,
        out: *mut c_char,
        outlen: usize,
    ) -> c_long;
}

/// Why [`incr`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IncrFloatError {
    /// The stored value or the increment is not a valid float (Redis's `string2ld`:
    /// no leading space, nothing after the number, no NaN, no overflow, at most
    /// 5119 bytes).
    #[error("ERR value is not a valid float")]
    NotFloat,
    /// The sum is NaN or infinite.
    #[error("ERR increment would produce NaN or Infinity")]
    NanOrInfinity,
}

/// Whether `s` is a float `INCRBYFLOAT` accepts (Redis's `string2ld`).
pub fn is_valid(s: &[u8]) -> bool {
    // SAFETY: the C side reads exactly `len` bytes from `s`, copies them into its own
    // NUL-terminated buffer (refusing anything too long first) and keeps no pointer.
    unsafe { conclave_ld_valid(s.as_ptr().cast(), s.len()) == 1 }
}

/// `old + by` as Redis's `INCRBYFLOAT` computes and prints it; `old` is `None` for a
/// missing key (counted as 0).
pub fn incr(old: Option<&[u8]>, by: &[u8]) -> Result<Vec<u8>, IncrFloatError> {
    let mut out = vec![0u8; OUT_LEN];
    let (old_ptr, old_len) = old.map_or((std::ptr::null(), 0), |o| (o.as_ptr(), o.len()));
    // SAFETY: both inputs are read for exactly their lengths (a null `old` only with
    // `has_old == 0`, when it is not read at all); `out` is writable for `OUT_LEN`
    // bytes, the length passed, and snprintf never writes past it.
    let n = unsafe {
        conclave_ld_incr(
            old_ptr.cast(),
            old_len,
            c_int::from(old.is_some()),
            by.as_ptr().cast(),
            by.len(),
            out.as_mut_ptr().cast(),
            out.len(),
        )
    };
    match n {
        -3 => Err(IncrFloatError::NanOrInfinity),
        n if n > 0 => {
            out.truncate(usize::try_from(n).unwrap_or(0).min(OUT_LEN));
            Ok(out)
        }
        // -1 (stored value), -2 (increment) and -4 (cannot happen: no room) all
        // answer the same as Redis does for an unparsable value.
        _ => Err(IncrFloatError::NotFloat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(old: Option<&str>, by: &str) -> Result<String, IncrFloatError> {
        incr(old.map(str::as_bytes), by.as_bytes()).map(|v| String::from_utf8(v).expect("ascii"))
    }

    #[test]
    fn redis_examples() {
        assert_eq!(add(Some("0.1"), "0.2").unwrap(), "0.3");
        assert_eq!(add(Some("1000"), "1.8").unwrap(), "1001.79999999999999999");
        assert_eq!(add(None, "1e-18").unwrap(), "0");
        assert_eq!(add(None, "0x10").unwrap(), "16");
        assert_eq!(add(Some("10.5"), "0.1").unwrap(), "10.6");
        assert_eq!(add(Some("10"), "5.0e3").unwrap(), "5010");
        assert_eq!(add(None, "-0").unwrap(), "0");
        assert_eq!(add(Some("-0"), "-0").unwrap(), "0");
        assert_eq!(add(None, "-1e-18").unwrap(), "0");
        assert_eq!(add(None, "1.5").unwrap(), "1.5");
        assert_eq!(add(Some("3"), "-5").unwrap(), "-2");
        assert_eq!(add(None, "1.0e3").unwrap(), "1000");
        assert_eq!(add(None, "  1").unwrap_err(), IncrFloatError::NotFloat);
        // Beyond f64's range yet finite in long double; the digits are redis-server 7.0.15's.
        assert_eq!(
            add(Some("1e308"), "1e308").unwrap(),
            "1999999999999999999933717593116912913211201996948311344155940959898434697376\
             7612374420025384377707864089349445010802644630426949918792116719484162886039\
             2837535918200039206381557326219209014213335878306791577877829121087126122536\
             7298032372604341731785068897632475826017115146362848490209054565100926878571\
             56096"
        );
    }

    #[test]
    fn invalid_inputs() {
        for bad in ["", " 1", "1 ", "1x", "abc", "nan", "-nan", "1e99999", "1\0"] {
            assert_eq!(add(None, bad), Err(IncrFloatError::NotFloat), "{bad:?}");
            assert!(!is_valid(bad.as_bytes()), "{bad:?}");
            assert_eq!(
                add(Some(bad), "1"),
                Err(IncrFloatError::NotFloat),
                "{bad:?}"
            );
        }
        let long = "1".repeat(5120);
        assert!(!is_valid(long.as_bytes()));
        assert!(is_valid(b"0x1p3") && is_valid(b"-.5") && is_valid(b"1e-4940"));
        // Underflow to zero is refused, as strtold's ERANGE with a zero result.
        assert!(!is_valid(b"1e-5000"));
    }

    #[test]
    fn nan_and_infinity() {
        assert_eq!(add(None, "inf"), Err(IncrFloatError::NanOrInfinity));
        assert_eq!(add(Some("inf"), "-inf"), Err(IncrFloatError::NanOrInfinity));
        let max = add(None, "1.18973149535723176502e+4932").unwrap();
        assert_eq!(add(Some(&max), &max), Err(IncrFloatError::NanOrInfinity));
    }
}
