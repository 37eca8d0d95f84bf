//! Segment files on disk: naming, listing, and replaying them into memory on open.
//!
//! A segment is `<seq:020>.seg`, a sequence of framed records, each tagged with its
//! Raft group ([`Tagged`]); the older one-directory-per-group layout held untagged
//! [`Record`]s of one group ([`Format::Legacy`]). Segments are replayed in `seq` order.
//! Damage at the end of the LAST segment is a torn write from a crash (the records were
//! never acknowledged) and is zeroed; damage anywhere else is reported as corruption.
//! Zeros end a segment cleanly: the writer fills space ahead of itself with zeros
//! ([`super::prealloc`]), and a record's length is never 0.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::crc_frame::{self as frame, Decoded};
use crate::encoding as codec;
use crate::error::StoreError;
use crate::log::record::{self, RawEntry, Record, Tagged};
use crate::type_config::{GroupId, LogId};

/// What the writer knows about one segment file.
#[derive(Debug, Clone)]
pub(crate) struct SegmentMeta {
    /// Position in the sequence (also the file name).
    pub(crate) seq: u64,
    /// Per group, the greatest entry index written into it (groups with control records
    /// only are absent): the segment can go once every one of them is purged that far.
    pub(crate) max_index: BTreeMap<GroupId, u64>,
}

impl SegmentMeta {
    /// An empty segment `seq`.
    pub(crate) fn new(seq: u64) -> SegmentMeta {
        SegmentMeta {
            seq,
            max_index: BTreeMap::new(),
        }
    }

    /// Notes entries of `group` up to `index` in this segment.
    pub(crate) fn note(&mut self, group: GroupId, index: u64) {
        let m = self.max_index.entry(group).or_insert(index);
        *m = (*m).max(index);
    }
}

/// One group's log state rebuilt from the segments.
#[derive(Debug, Default)]
pub(crate) struct GroupState {
    /// Entries not purged or truncated.
    pub(crate) entries: BTreeMap<u64, RawEntry>,
    /// The last purged log id.
    pub(crate) last_purged: Option<LogId>,
    /// The last saved committed log id.
    pub(crate) committed: Option<LogId>,
}

/// How the records of a segment directory are written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Format {
    /// Shared segments: every record tagged with its group.
    Tagged,
    /// The older layout: one directory per group, untagged records of that group.
    Legacy(GroupId),
}

/// The logs' state rebuilt from the segments.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// Per group.
    pub(crate) groups: HashMap<GroupId, GroupState>,
    /// The segments, oldest first (the last one is appended to).
    pub(crate) segments: Vec<SegmentMeta>,
    /// Where the records of the last segment end (zeros, if anything, follow).
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

/// Replays every segment in `dir`, zeroing a torn tail of the last one.
pub(crate) fn recover(dir: &Path, format: Format) -> Result<Recovered, StoreError> {
    let seqs = list_segments(dir)?;
    let mut rec = Recovered::default();
    for (i, &seq) in seqs.iter().enumerate() {
        let is_last = i + 1 == seqs.len();
        let path = segment_path(dir, seq);
        let buf = fs::read(&path).map_err(|e| StoreError::io("read", &path, e))?;
        let mut meta = SegmentMeta::new(seq);
        let good_len = replay_segment(&path, &buf, is_last, format, &mut rec, &mut meta)?;
        let tail = buf.get(good_len..).unwrap_or_default();
        if let Some(last_nonzero) = tail.iter().rposition(|&b| b != 0) {
            // Zeroed rather than cut off: the space stays preallocated, and no stale
            // record can line up behind the records written after it.
            tracing::warn!(
                path = %path.display(),
                offset = good_len,
                dropped = last_nonzero + 1,
                "zeroing a torn tail of the log"
            );
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| StoreError::io("open", &path, e))?;
            f.write_all_at(&vec![0u8; last_nonzero + 1], good_len as u64)
                .and_then(|()| f.sync_data())
                .map_err(|e| StoreError::io("zero torn tail of", &path, e))?;
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
    format: Format,
    rec: &mut Recovered,
    meta: &mut SegmentMeta,
) -> Result<usize, StoreError> {
    let mut pos = 0usize;
    while pos < buf.len() {
        let rest = buf.get(pos..).unwrap_or_default();
        if is_zero_length(rest) && rest.iter().all(|&b| b == 0) {
            // Preallocated space: the records end here.
            return Ok(pos);
        }
        match frame::decode(rest) {
            Decoded::Record(payload, n) => {
                let corrupt = |e: codec::CodecError| StoreError::Corrupt {
                    path: path.to_path_buf(),
                    offset: pos as u64,
                    reason: format!("undecodable record: {e}"),
                };
                let legacy_group = match format {
                    Format::Tagged => None,
                    Format::Legacy(group) => Some(group),
                };
                let Tagged { group, record } =
                    record::decode(payload, legacy_group).map_err(corrupt)?;
                apply_record(group, record, rec, meta);
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

/// Whether `rest` starts with a zero record length (or fewer than 4 bytes, all zero).
fn is_zero_length(rest: &[u8]) -> bool {
    rest.iter().take(4).all(|&b| b == 0)
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

/// Applies one replayed record of `group` to the in-memory state.
fn apply_record(group: GroupId, record: Record, rec: &mut Recovered, meta: &mut SegmentMeta) {
    let state = rec.groups.entry(group).or_default();
    match record {
        Record::Entry(entry) => {
            let index = entry.log_id.index;
            meta.note(group, index);
            state.entries.insert(index, entry);
        }
        Record::TruncateSince(index) => {
            state.entries.split_off(&index);
        }
        Record::PurgeUpto(log_id) => {
            let keep = state.entries.split_off(&(log_id.index + 1));
            state.entries = keep;
            if !matches!(state.last_purged, Some(p) if p >= log_id) {
                state.last_purged = Some(log_id);
            }
        }
        Record::Committed(c) => state.committed = c,
        Record::Import {
            entries,
            last_purged,
            committed,
        } => {
            if let Some(max) = entries.last().map(|e| e.log_id.index) {
                meta.note(group, max);
            }
            *state = GroupState {
                entries: entries.into_iter().map(|e| (e.log_id.index, e)).collect(),
                last_purged,
                committed,
            };
        }
    }
}
