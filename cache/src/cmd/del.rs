//! `DEL`, `UNLINK` (and `CACHE.DEL`), `EXISTS`.

use bytes::Bytes;

use crate::keyspace::Keyspace;
use conclave_protocol::parse::{Parse, ParseError};
use conclave_protocol::Frame;

/// `DEL key [key ...]` (also `UNLINK`: values are freed inline, they are flat).
#[derive(Debug, Clone, PartialEq)]
pub struct Del {
    keys: Vec<Bytes>,
}

impl Del {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<Del, ParseError> {
        Ok(Del { keys: parse.rest() })
    }

    /// Runs the command: how many keys were deleted.
    pub fn apply(self, ks: &Keyspace) -> Frame {
        Frame::Integer(self.keys.iter().filter(|k| ks.remove(k)).count() as i64)
    }
}

/// `EXISTS key [key ...]`
#[derive(Debug, Clone, PartialEq)]
pub struct Exists {
    keys: Vec<Bytes>,
}

impl Exists {
    /// Parses the arguments.
    pub fn parse(parse: &mut Parse) -> Result<Exists, ParseError> {
        Ok(Exists { keys: parse.rest() })
    }

    /// Runs the command: how many of the keys exist (a repeated key counts each time).
    pub fn apply(self, ks: &Keyspace) -> Frame {
        Frame::Integer(self.keys.iter().filter(|k| ks.exists(k)).count() as i64)
    }
}
