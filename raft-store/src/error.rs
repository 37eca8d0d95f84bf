//! Errors of the store, and their mapping onto openraft's [`StorageError`].

use std::io;
use std::path::PathBuf;

use openraft::{ErrorSubject, ErrorVerb, StorageIOError};

use crate::type_config::{NodeId, StorageError};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O call failed.
    #[error("{context} {path}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A record or file on disk is damaged somewhere a torn write cannot explain.
    #[error("corrupt {path} at byte {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Encoding or decoding a record failed.
    #[error("codec: {0}")]
    Codec(#[from] crate::encoding::CodecError),
    /// A group was opened a second time on the same log engine.
    #[error("raft group {0} is already open on this log engine")]
    GroupAlreadyOpen(crate::type_config::GroupId),
    /// The log writer thread stopped (an earlier write failed, or the store was dropped).
    #[error("log writer stopped: {0}")]
    WriterStopped(String),
}

impl StoreError {
    /// Wraps an [`io::Error`] with what was done to which path.
    pub(crate) fn io(context: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            context,
            path: path.into(),
            source,
        }
    }

    /// Converts into openraft's error, naming the subject and the verb.
    pub(crate) fn into_storage(
        self,
        subject: ErrorSubject<NodeId>,
        verb: ErrorVerb,
    ) -> StorageError {
        StorageIOError::new(subject, verb, openraft::AnyError::new(&self)).into()
    }

    /// As a log write failure.
    pub(crate) fn write_logs(self) -> StorageError {
        self.into_storage(ErrorSubject::Logs, ErrorVerb::Write)
    }

    /// As a vote write failure.
    pub(crate) fn write_vote(self) -> StorageError {
        self.into_storage(ErrorSubject::Vote, ErrorVerb::Write)
    }

    /// As a state-machine write failure.
    pub(crate) fn write_sm(self) -> StorageError {
        self.into_storage(ErrorSubject::StateMachine, ErrorVerb::Write)
    }

    /// As a snapshot write failure.
    pub(crate) fn write_snapshot(self) -> StorageError {
        self.into_storage(ErrorSubject::Snapshot(None), ErrorVerb::Write)
    }
}
