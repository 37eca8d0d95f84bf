//! Segment files on disk: naming, listing, and replaying them into memory on open.
//!
//! A segment is `<seq:020>.seg`, a sequence of framed [`Record`]s. Segments are
//! replayed in `seq` order. Damage at the end of the LAST segment is a torn write
//! from a crash (the records were never acknowledged) and is cut off; damage
//! anywhere else is reported as corruption.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use crate::codec;
use crate::error::StoreError;
use crate::frame::{self, Decoded};
use crate::log::record::Record;
use crate::types::{Entry, LogId};

/// What the writer knows about one segment file.
#[derive(Debug, Clone)]
pub(crate) struct SegmentMeta {
    /// Position in the sequence (also the file name).
    pub(crate) seq: u64,
    /// The greatest entry index written into it, `None` for control records only.
    pub(crate) max_index: Option<u64>,
}

/// The log's state rebuilt from its segments.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// Entries not purged or truncated.
    pub(crate) entries: BTreeMap<u64, Entry>,
    /// The last purged log id.
    pub(crate) last_purged: Option<LogId>,
    /// The last saved committed log id.
    pub(crate) committed: Option<LogId>,
    /// The segments, oldest first (the last one is appended to).
    pub(crate) segments: Vec<SegmentMeta>,
    /// Length of the last segment after any torn tail was cut.
    pub(crate) last_len: u64,
}

/// The path of segment `seq` in `dir`.
pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.seg"))
}

/// The sequence numbers of the segments in `dir`, ascending.
fn list_segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let rd = fs::read_dir(dir).map_err(|e| StoreError::io("list", dir, e))?;
    let mut seqs = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| StoreError::io("list", dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seq) = name
            .strip_suffix(".seg")
            .and_then(|s| s.parse::<u64>().ok())
        {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// Replays every segment in `dir`, cutting off a torn tail of the last one.
pub(crate) fn recover(dir: &Path) -> Result<Recovered, StoreError> {
    let seqs = list_segments(dir)?;
    let mut rec = Recovered::default();
    for (i, &seq) in seqs.iter().enumerate() {
        let is_last = i + 1 == seqs.len();
        let path = segment_path(dir, seq);
        let buf = fs::read(&path).map_err(|e| StoreError::io("read", &path, e))?;
        let mut meta = SegmentMeta {
            seq,
            max_index: None,
        };
        let good_len = replay_segment(&path, &buf, is_last, &mut rec, &mut meta)?;
        if good_len < buf.len() {
            tracing::warn!(
                path = %path.display(),
                offset = good_len,
                dropped = buf.len() - good_len,
                "cutting off a torn tail of the log"
            );
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| StoreError::io("open", &path, e))?;
            f.set_len(good_len as u64)
                .and_then(|()| f.sync_all())
                .map_err(|e| StoreError::io("truncate torn tail of", &path, e))?;
        }
        if is_last {
            rec.last_len = good_len as u64;
        }
        rec.segments.push(meta);
    }
    Ok(rec)
}

/// Applies the records of one segment to `rec`; returns how many bytes are good.
fn replay_segment(
    path: &Path,
    buf: &[u8],
    is_last: bool,
    rec: &mut Recovered,
    meta: &mut SegmentMeta,
) -> Result<usize, StoreError> {
    let mut pos = 0usize;
    while pos < buf.len() {
        let rest = buf.get(pos..).unwrap_or_default();
        match frame::decode(rest) {
            Decoded::Record(payload, n) => {
                let record: Record = codec::decode(payload).map_err(|e| StoreError::Corrupt {
                    path: path.to_path_buf(),
                    offset: pos as u64,
                    reason: format!("undecodable record: {e}"),
                })?;
                apply_record(record, rec, meta);
                pos += n;
            }
            Decoded::Short if is_last => return Ok(pos),
            Decoded::Bad(reason) if is_last && !intact_record_follows(rest) => {
                tracing::warn!(path = %path.display(), offset = pos, %reason, "torn log record");
                return Ok(pos);
            }
            Decoded::Short => {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    offset: pos as u64,
                    reason: "segment ends inside a record".to_string(),
                })
            }
            Decoded::Bad(reason) => {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    offset: pos as u64,
                    reason,
                })
            }
        }
    }
    Ok(pos)
}

/// Whether, behind a damaged record at the start of `rest`, an intact one follows:
/// then the damage is in the middle of the log, not a torn tail.
fn intact_record_follows(rest: &[u8]) -> bool {
    let Some(len) = rest.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
        return false;
    };
    let next = frame::HEADER_LEN.saturating_add(u32::from_le_bytes(len) as usize);
    match rest.get(next..) {
        Some(after) if !after.is_empty() => matches!(frame::decode(after), Decoded::Record(..)),
        _ => false,
    }
}

/// Applies one replayed record to the in-memory state.
fn apply_record(record: Record, rec: &mut Recovered, meta: &mut SegmentMeta) {
    match record {
        Record::Entry(entry) => {
            let index = entry.log_id.index;
            meta.max_index = Some(meta.max_index.map_or(index, |m| m.max(index)));
            rec.entries.insert(index, entry);
        }
        Record::TruncateSince(index) => {
            rec.entries.split_off(&index);
        }
        Record::PurgeUpto(log_id) => {
            let keep = rec.entries.split_off(&(log_id.index + 1));
            rec.entries = keep;
            if !matches!(rec.last_purged, Some(p) if p >= log_id) {
                rec.last_purged = Some(log_id);
            }
        }
        Record::Committed(c) => rec.committed = c,
    }
}
