//! What a log segment holds: entries and the control records that edit them, each
//! tagged with the Raft group it belongs to (one node's groups share the segments).
//!
//! The segments are shared by groups whose entries have different types, so the engine
//! keeps an entry as a [`RawEntry`] — its log id plus its encoded payload — and only
//! the group's own [`LogStore`](super::LogStore) decodes the payload. Records are written
//! behind [`RECORD_TAG`] (postcard of [`Tagged`]). Records written before the layout
//! became generic (postcard behind the encoding's binary tag, or JSON, with the payload
//! inline) are read too: a payload is the last thing in an entry record, so what
//! follows the log id *is* the encoded payload.

use serde::{Deserialize, Serialize};

use crate::crc_frame as frame;
use crate::encoding::{self as codec, CodecError, BINARY_TAG};
use crate::error::StoreError;
use crate::machine::StateMachine;
use crate::type_config::{Entry, EntryPayload, GroupId, LogId};

/// First byte of a record in the current layout.
pub(crate) const RECORD_TAG: u8 = 0xB2;

/// An entry whose payload is still encoded (with [`codec::encode`], or JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RawEntry {
    /// The entry's log id.
    pub(crate) log_id: LogId,
    /// The encoded `EntryPayload` (postcard writes it as its length and the bytes, as it
    /// would the `u8` sequence serde makes of a `Vec<u8>`, but in one copy).
    #[serde(with = "serde_bytes")]
    pub(crate) payload: Vec<u8>,
}

impl RawEntry {
    /// Encodes a typed entry.
    pub(crate) fn encode<M: StateMachine>(entry: &Entry<M>) -> Result<RawEntry, CodecError> {
        Ok(RawEntry {
            log_id: entry.log_id,
            payload: codec::encode(&entry.payload)?,
        })
    }

    /// Decodes the payload as group `M`'s.
    pub(crate) fn decode<M: StateMachine>(&self) -> Result<Entry<M>, CodecError> {
        Ok(Entry::<M> {
            log_id: self.log_id,
            payload: codec::decode::<EntryPayload<M>>(&self.payload)?,
        })
    }
}

/// One record of a segment.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Record {
    /// A log entry (replaces any entry at its index).
    Entry(RawEntry),
    /// Entries from this index on are gone.
    TruncateSince(u64),
    /// Entries up to and including this log id are gone.
    PurgeUpto(LogId),
    /// The last committed log id openraft saved.
    Committed(Option<LogId>),
    /// A group's whole log, moved in from the older per-group layout.
    Import {
        /// Every live entry.
        entries: Vec<RawEntry>,
        /// The last purged log id.
        last_purged: Option<LogId>,
        /// The last committed log id.
        committed: Option<LogId>,
    },
}

/// A record with its group.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Tagged {
    /// The group the record belongs to.
    pub(crate) group: GroupId,
    /// The record.
    pub(crate) record: Record,
}

/// [`Tagged`], borrowed, for writing.
#[derive(Serialize)]
struct TaggedRef<'a> {
    group: GroupId,
    record: &'a Record,
}

impl Record {
    /// Appends this record of `group`, framed, to `out`.
    pub(crate) fn encode_into(&self, group: GroupId, out: &mut Vec<u8>) -> Result<(), StoreError> {
        let payload = codec::postcard_after(
            &[RECORD_TAG],
            &TaggedRef {
                group,
                record: self,
            },
        )
        .map_err(CodecError::from)?;
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

/// Decodes a record; `group` is `Some` for the untagged records of the older
/// per-group layout.
pub(crate) fn decode(payload: &[u8], group: Option<GroupId>) -> Result<Tagged, CodecError> {
    match payload.split_first() {
        Some((&RECORD_TAG, rest)) => {
            let tagged: Tagged = postcard::from_bytes(rest)?;
            Ok(Tagged {
                group: group.unwrap_or(tagged.group),
                record: tagged.record,
            })
        }
        Some((&BINARY_TAG, rest)) => legacy_binary(rest, group),
        _ => legacy_json(payload, group),
    }
}

/// A record of the first binary layout: `[group]` (when tagged), the variant, then the
/// variant's fields, the entry payload inline and last.
fn legacy_binary(bytes: &[u8], group: Option<GroupId>) -> Result<Tagged, CodecError> {
    let (group, rest) = match group {
        Some(g) => (g, bytes),
        None => postcard::take_from_bytes::<GroupId>(bytes)?,
    };
    let (variant, rest) = postcard::take_from_bytes::<u32>(rest)?;
    let record = match variant {
        0 => {
            let (log_id, payload) = postcard::take_from_bytes::<LogId>(rest)?;
            let mut tagged_payload = Vec::with_capacity(payload.len() + 1);
            tagged_payload.push(BINARY_TAG);
            tagged_payload.extend_from_slice(payload);
            Record::Entry(RawEntry {
                log_id,
                payload: tagged_payload,
            })
        }
        1 => Record::TruncateSince(postcard::from_bytes(rest)?),
        2 => Record::PurgeUpto(postcard::from_bytes(rest)?),
        3 => Record::Committed(postcard::from_bytes(rest)?),
        other => {
            return Err(CodecError::Unsupported(format!(
                "record variant {other} of the first binary layout (an import written by \
                 an older version cannot be split without its entry type)"
            )))
        }
    };
    Ok(Tagged { group, record })
}

/// A JSON record (written before any binary layout): self-describing, so entries are
/// split out of it and their payload kept as JSON.
fn legacy_json(bytes: &[u8], group: Option<GroupId>) -> Result<Tagged, CodecError> {
    use serde_json::Value;
    let value: Value = serde_json::from_slice(bytes)?;
    let (group, record) = match group {
        Some(g) => (g, value),
        None => {
            let group = serde_json::from_value(value.get("group").cloned().unwrap_or_default())?;
            (group, value.get("record").cloned().unwrap_or_default())
        }
    };
    let entry = |v: &Value| -> Result<RawEntry, CodecError> {
        Ok(RawEntry {
            log_id: serde_json::from_value(v.get("log_id").cloned().unwrap_or_default())?,
            payload: serde_json::to_vec(v.get("payload").unwrap_or(&Value::Null))?,
        })
    };
    let record = if let Some(e) = record.get("Entry") {
        Record::Entry(entry(e)?)
    } else if let Some(i) = record.get("TruncateSince") {
        Record::TruncateSince(serde_json::from_value(i.clone())?)
    } else if let Some(p) = record.get("PurgeUpto") {
        Record::PurgeUpto(serde_json::from_value(p.clone())?)
    } else if let Some(c) = record.get("Committed") {
        Record::Committed(serde_json::from_value(c.clone())?)
    } else if let Some(imp) = record.get("Import") {
        let entries = imp
            .get("entries")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(entry).collect::<Result<Vec<_>, _>>())
            .transpose()?
            .unwrap_or_default();
        Record::Import {
            entries,
            last_purged: serde_json::from_value(
                imp.get("last_purged").cloned().unwrap_or_default(),
            )?,
            committed: serde_json::from_value(imp.get("committed").cloned().unwrap_or_default())?,
        }
    } else {
        return Err(CodecError::Unsupported("unknown JSON record".into()));
    };
    Ok(Tagged { group, record })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `RawEntry` as it was written before its payload was marked `serde_bytes`.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct SeqEntry {
        log_id: LogId,
        payload: Vec<u8>,
    }

    /// The payload written as bytes is byte-for-byte what the `u8` sequence was, so
    /// segments written by either version read in the other.
    #[test]
    fn bytes_payload_keeps_the_record_layout() {
        let log_id = LogId::new(openraft::CommittedLeaderId::new(3, 1), 77);
        let payload: Vec<u8> = (0..=255u8).chain(0..40).collect();
        let new = postcard::to_stdvec(&RawEntry {
            log_id,
            payload: payload.clone(),
        })
        .unwrap();
        let old = postcard::to_stdvec(&SeqEntry {
            log_id,
            payload: payload.clone(),
        })
        .unwrap();
        assert_eq!(new, old);
        let back: RawEntry = postcard::from_bytes(&old).unwrap();
        assert_eq!(back.payload, payload);
        let record = Record::Entry(back).encode(5).unwrap();
        assert!(record.len() > payload.len());
    }
}
