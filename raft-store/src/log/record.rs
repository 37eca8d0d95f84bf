//! What a log segment holds: entries and the control records that edit them, each
//! tagged with the Raft group it belongs to (one node's groups share the segments).

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::StoreError;
use crate::frame;
use crate::types::{Entry, GroupId, LogId};

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
    /// The whole state of a group's log, replacing whatever came before: how a log kept
    /// in the older one-directory-per-group layout moves into the shared segments, in
    /// one framed (so all-or-nothing) record.
    Import {
        /// Every live entry.
        entries: Vec<Entry>,
        /// The last purged log id.
        last_purged: Option<LogId>,
        /// The last known committed log id.
        committed: Option<LogId>,
    },
}

/// A record with its group, as stored in the shared segments.
#[derive(Debug, Deserialize)]
pub(crate) struct Tagged {
    /// The group the record belongs to.
    pub(crate) group: GroupId,
    /// The record.
    pub(crate) record: Record,
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
    /// See [`Record::Import`].
    Import {
        /// Every live entry.
        entries: Vec<&'a Entry>,
        /// The last purged log id.
        last_purged: Option<&'a LogId>,
        /// The last known committed log id.
        committed: Option<&'a LogId>,
    },
}

/// The borrowed twin of [`Tagged`].
#[derive(Serialize)]
struct TaggedRef<'a> {
    group: GroupId,
    record: &'a RecordRef<'a>,
}

impl RecordRef<'_> {
    /// Appends this record of `group`, framed, to `out`.
    pub(crate) fn encode_into(&self, group: GroupId, out: &mut Vec<u8>) -> Result<(), StoreError> {
        let payload = codec::encode(&TaggedRef {
            group,
            record: self,
        })?;
        frame::encode_into(out, &payload);
        Ok(())
    }

    /// This record of `group`, framed, in a new buffer.
    pub(crate) fn encode(&self, group: GroupId) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        self.encode_into(group, &mut out)?;
        Ok(out)
    }
}
