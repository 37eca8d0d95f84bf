//! `MGET`, `MSET`, `MSETNX`.

use bytes::Bytes;

use super::{bulk_or_null, write_error};
use crate::keyspace::Keyspace;
use conclave_protocol::parse::{Parse, ParseError};
use conclave_protocol::Frame;

/// `MGET key [key ...]`
#[derive(Debug, Clone, PartialEq)]
pub struct MGet {
    keys: Vec<Bytes>,
}

impl MGet {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<MGet, ParseError> {
        Ok(MGet { keys: parse.rest() })
    }

    /// Runs the command: one value or null per key.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        Frame::Array(self.keys.iter().map(|k| bulk_or_null(ks.get(k))).collect())
    }
}

/// `MSET key value [key value ...]` / `MSETNX ...`
#[derive(Debug, Clone, PartialEq)]
pub struct MSet {
    pairs: Vec<(Bytes, Bytes)>,
    nx: bool,
}

impl MSet {
    /// Parses the arguments; `nx` for `MSETNX`.
    pub fn parse(parse: &mut Parse, nx: bool) -> Result<MSet, ParseError> {
        let args = parse.rest();
        if !args.len().is_multiple_of(2) {
            return Err(parse.arity_error());
        }
        let mut pairs = Vec::with_capacity(args.len() / 2);
        let mut it = args.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            pairs.push((k, v));
        }
        Ok(MSet { pairs, nx })
    }

    /// Runs the command: `+OK` (MSET) or `:1`/`:0` (MSETNX).
    pub fn apply(self, ks: &Keyspace) -> Frame {
        match ks.mset(&self.pairs, self.nx) {
            Ok(written) if self.nx => Frame::Integer(i64::from(written)),
            Ok(_) => Frame::ok(),
            Err(e) => write_error(e),
        }
    }
}
