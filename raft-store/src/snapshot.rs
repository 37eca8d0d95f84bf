//! The snapshot file of one group: `<group>/snapshot/current.snap`, replaced atomically.
//!
//! File format: two framed records (see the `frame` module): the [`SnapshotMeta`] as JSON,
//! then the snapshot data. The data is itself the JSON of [`SnapshotPayload`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::crc_frame::{self as frame, Decoded};
use crate::encoding as codec;
use crate::error::StoreError;
use crate::fsutil;
use crate::type_config::{LogId, SnapshotMeta, StoredMembership};

/// What a snapshot's data holds: the whole applied state.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct SnapshotPayload<M> {
    /// The last log id the state includes.
    pub(crate) last_applied: Option<LogId>,
    /// The membership in effect at that point.
    pub(crate) last_membership: StoredMembership,
    /// The service's state machine (named `table`: the lock table was the first).
    pub(crate) table: M,
}

/// A snapshot held in memory: its meta and its encoded data.
#[derive(Clone, Debug)]
pub(crate) struct StoredSnapshot {
    /// What it covers.
    pub(crate) meta: SnapshotMeta,
    /// The [`SnapshotPayload`] JSON.
    pub(crate) data: Vec<u8>,
}

/// The snapshot directory of a group.
#[derive(Debug)]
pub(crate) struct SnapshotDir {
    path: PathBuf,
}

impl SnapshotDir {
    /// Opens (creating) the directory.
    pub(crate) fn open(dir: &Path) -> Result<SnapshotDir, StoreError> {
        fsutil::create_dir_durable(dir)?;
        Ok(SnapshotDir {
            path: dir.join("current.snap"),
        })
    }

    /// Reads the current snapshot, if any.
    pub(crate) fn load(&self) -> Result<Option<StoredSnapshot>, StoreError> {
        let Some(bytes) = fsutil::read_optional(&self.path)? else {
            return Ok(None);
        };
        let (meta_bytes, n) = self.record(&bytes, 0)?;
        let meta: SnapshotMeta = codec::decode(meta_bytes)?;
        let (data, _) = self.record(&bytes, n)?;
        Ok(Some(StoredSnapshot {
            meta,
            data: data.to_vec(),
        }))
    }

    /// Replaces the current snapshot durably.
    pub(crate) fn save(&self, snap: &StoredSnapshot) -> Result<(), StoreError> {
        let meta = codec::encode(&snap.meta)?;
        if u32::try_from(snap.data.len()).is_err() {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                offset: 0,
                reason: format!("snapshot of {} bytes exceeds 4 GiB", snap.data.len()),
            });
        }
        let mut out = Vec::with_capacity(meta.len() + snap.data.len() + 2 * frame::HEADER_LEN);
        frame::encode_into(&mut out, &meta);
        frame::encode_into(&mut out, &snap.data);
        fsutil::write_atomic(&self.path, &out)
    }

    /// The framed record at `offset` of the file's bytes, and where the next one starts.
    fn record<'a>(&self, bytes: &'a [u8], offset: usize) -> Result<(&'a [u8], usize), StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            path: self.path.clone(),
            offset: offset as u64,
            reason,
        };
        match frame::decode_with_max(bytes.get(offset..).unwrap_or_default(), u32::MAX as usize) {
            Decoded::Record(payload, n) => Ok((payload, offset + n)),
            Decoded::Short => Err(corrupt("snapshot file ends early".to_string())),
            Decoded::Bad(reason) => Err(corrupt(reason)),
        }
    }
}

impl<M: serde::de::DeserializeOwned> SnapshotPayload<M> {
    /// Decodes snapshot data.
    pub(crate) fn decode(data: &[u8]) -> Result<SnapshotPayload<M>, StoreError> {
        Ok(codec::decode(data)?)
    }
}
