//! What a log segment holds: entries and the control records that edit them.

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::StoreError;
use crate::frame;
use crate::types::{Entry, LogId};

/// One record of a segment, as read back during recovery.
#[derive(Debug, Deserialize)]
pub(crate) enum Record {
    /// A log entry (replaces any entry at the same index).
    Entry(Entry),
    /// Every entry with index `>=` this one is gone.
    TruncateSince(u64),
    /// Every entry up to and including this log id is gone; it is the last purged id.
    PurgeUpto(LogId),
    /// The last known committed log id.
    Committed(Option<LogId>),
}

/// The borrowed twin of [`Record`] used for writing (same serialized form).
#[derive(Serialize)]
pub(crate) enum RecordRef<'a> {
    /// See [`Record::Entry`].
    Entry(&'a Entry),
    /// See [`Record::TruncateSince`].
    TruncateSince(u64),
    /// See [`Record::PurgeUpto`].
    PurgeUpto(&'a LogId),
    /// See [`Record::Committed`].
    Committed(Option<&'a LogId>),
}

impl RecordRef<'_> {
    /// Appends this record, framed, to `out`.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), StoreError> {
        let payload = codec::encode(self)?;
        frame::encode_into(out, &payload);
        Ok(())
    }

    /// This record, framed, in a new buffer.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }
}
