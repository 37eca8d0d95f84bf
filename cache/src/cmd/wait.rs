//! `WAIT` and `WAITAOF`: the keyspace is neither replicated nor written to an
//! append-only file, so both answer at once with what Redis answers a standalone
//! server with `appendonly no` (`replication.c`: `waitCommand`, `waitaofCommand` of
//! Redis 7.2).
//!
//! One difference: when asked for more acknowledgements than there can be
//! (`WAIT 1 100`), Redis blocks the client until the timeout (forever for 0) before
//! answering the same; Conclave answers at once, since no acknowledgement can come.

use conclave_protocol::parse::{parse_i64, Parse, ParseError};
use conclave_protocol::Frame;

use crate::keyspace::Keyspace;

/// A millisecond timeout as Redis's `getTimeoutFromObjectOrReply` checks it.
fn parse_timeout(raw: &[u8]) -> Result<i64, ParseError> {
    let t = parse_i64(raw)
        .ok_or_else(|| ParseError::Other("ERR timeout is not an integer or out of range".into()))?;
    if t < 0 {
        return Err(ParseError::Other("ERR timeout is negative".into()));
    }
    Ok(t)
}

/// `WAIT numreplicas timeout`
#[derive(Debug, Clone, PartialEq)]
pub struct Wait;

impl Wait {
    /// Parses the arguments: `numreplicas` an integer, `timeout` a non-negative
    /// integer (ms).
    pub fn parse(parse: &mut Parse) -> Result<Wait, ParseError> {
        parse.next_i64()?;
        parse_timeout(&parse.next_bytes()?)?;
        Ok(Wait)
    }

    /// Runs the command: `:0`, the number of replicas that acknowledged.
    pub fn apply(self, _ks: &Keyspace) -> Frame {
        Frame::Integer(0)
    }
}

/// `WAITAOF numlocal numreplicas timeout`
#[derive(Debug, Clone, PartialEq)]
pub struct WaitAof;

impl WaitAof {
    /// Parses the arguments: `numlocal` 0 or 1, `numreplicas` ≥ 0, `timeout` ≥ 0 (ms);
    /// `numlocal` 1 is refused because there is no append-only file.
    pub fn parse(parse: &mut Parse) -> Result<WaitAof, ParseError> {
        let numlocal = parse.next_i64()?;
        if !(0..=1).contains(&numlocal) {
            return Err(ParseError::Other(
                "ERR value is out of range, value must between 0 and 1".into(),
            ));
        }
        if parse.next_i64()? < 0 {
            return Err(ParseError::Other(
                "ERR value is out of range, must be positive".into(),
            ));
        }
        parse_timeout(&parse.next_bytes()?)?;
        if numlocal == 1 {
            return Err(ParseError::Other(
                "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled."
                    .into(),
            ));
        }
        Ok(WaitAof)
    }

    /// Runs the command: `[0, 0]` (local fsyncs, replica acknowledgements).
    pub fn apply(self, _ks: &Keyspace) -> Frame {
        Frame::Array(vec![Frame::Integer(0), Frame::Integer(0)])
    }
}
