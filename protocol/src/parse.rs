//! A cursor over one command's arguments.
//!
//! The server hands every request to a command as a [`Parse`]: the command name
//! first, then its arguments, each a binary-safe [`Bytes`] slice of the read buffer
//! (no copy). Commands pull what they need and call [`Parse::finish`]; every
//! failure is a [`ParseError`] whose text is the exact Redis error line.

use bytes::Bytes;
use thiserror::Error;

use crate::frame::Frame;

/// Why a command's arguments were refused. `Display` gives the RESP error line.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Too few or too many arguments.
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    /// An argument that must be an integer is not one (or is out of range).
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// An argument that must be a float is not one.
    #[error("ERR value is not a valid float")]
    NotFloat,
    /// Unknown option or options in a bad combination.
    #[error("ERR syntax error")]
    Syntax,
    /// Any other error; the text carries its own prefix (`ERR ...`, `WRONGTYPE ...`).
    #[error("{0}")]
    Other(String),
}

impl ParseError {
    /// The error as a reply frame.
    pub fn to_frame(&self) -> Frame {
        Frame::error(self.to_string())
    }
}

/// Cursor over a command's arguments, the name first.
#[derive(Debug, Clone)]
pub struct Parse {
    args: std::vec::IntoIter<Bytes>,
    name: String,
    total: usize,
}

impl Parse {
    /// Wraps a request's arguments; `args[0]` is the command name (may be empty).
    pub fn new(args: Vec<Bytes>) -> Parse {
        let total = args.len();
        let mut args = args.into_iter();
        let name = args
            .next()
            .map(|n| String::from_utf8_lossy(&n).to_ascii_lowercase())
            .unwrap_or_default();
        Parse { args, name, total }
    }

    /// The command name, lower case, as Redis prints it in arity errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many arguments the request had, the name included (Redis's `argc`).
    pub fn argc(&self) -> usize {
        self.total
    }

    /// How many arguments are left.
    pub fn remaining(&self) -> usize {
        self.args.len()
    }

    /// The wrong-arity error for this command.
    pub fn arity_error(&self) -> ParseError {
        ParseError::WrongArity(self.name.clone())
    }

    /// The next argument, raw.
    pub fn next_bytes(&mut self) -> Result<Bytes, ParseError> {
        self.args.next().ok_or_else(|| self.arity_error())
    }

    /// The next argument if there is one.
    pub fn try_next(&mut self) -> Option<Bytes> {
        self.args.next()
    }

    /// The next argument as (lossy) UTF-8 text.
    pub fn next_string(&mut self) -> Result<String, ParseError> {
        let b = self.next_bytes()?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    /// The next argument upper-cased, for matching option keywords.
    pub fn next_keyword(&mut self) -> Result<String, ParseError> {
        Ok(self.next_string()?.to_ascii_uppercase())
    }

    /// The next argument as an `i64` (Redis's `string2ll` rules).
    pub fn next_i64(&mut self) -> Result<i64, ParseError> {
        let b = self.next_bytes()?;
        parse_i64(&b).ok_or(ParseError::NotInteger)
    }

    /// The next argument as a non-negative integer.
    pub fn next_u64(&mut self) -> Result<u64, ParseError> {
        let n = self.next_i64()?;
        u64::try_from(n).map_err(|_| ParseError::NotInteger)
    }

    /// All remaining arguments.
    pub fn rest(&mut self) -> Vec<Bytes> {
        self.args.by_ref().collect()
    }

    /// Fails with a syntax error if arguments are left over.
    pub fn finish(&mut self) -> Result<(), ParseError> {
        if self.args.len() == 0 {
            Ok(())
        } else {
            Err(ParseError::Syntax)
        }
    }
}

/// Parses a decimal `i64` exactly as Redis's `string2ll`: optional `-`, no `+`, no
/// spaces, no leading zeros (except `0` itself), at most 20 characters, no overflow.
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let (neg, digits) = match b[0] {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || neg)) {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        let d = (c - b'0') as i64;
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(d)?
        } else {
            v.checked_add(d)?
        };
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Parse {
        Parse::new(
            args.iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect(),
        )
    }

    #[test]
    fn integers_follow_redis_rules() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"01",
            b"-0",
            b"1a",
            b"9223372036854775808",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn cursor_and_errors() {
        let mut parse = p(&["GET", "k"]);
        assert_eq!(parse.name(), "get");
        assert_eq!(parse.argc(), 2);
        assert_eq!(&parse.next_bytes().unwrap()[..], b"k");
        assert!(parse.finish().is_ok());
        assert_eq!(
            parse.next_bytes().unwrap_err().to_string(),
            "ERR wrong number of arguments for 'get' command"
        );
        let mut parse = p(&["SET", "k", "v", "junk"]);
        parse.next_bytes().unwrap();
        parse.next_bytes().unwrap();
        assert_eq!(parse.finish(), Err(ParseError::Syntax));
    }
}
