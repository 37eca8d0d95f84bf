//! How records, votes and snapshots are serialized: a compact binary serde format
//! (postcard: varint integers, length-prefixed bytes), behind a one-byte tag.
//!
//! Data written before the binary format (JSON) carries no tag — a JSON document starts
//! with `{`, `[`, `"` or a digit, never with [`BINARY_TAG`] — so it still reads back.
//!
//! postcard is not self-describing: every field is written, in order, so
//! `#[serde(default)]` fields read back only from JSON. Changing a serialized type is a
//! format change; add a new tag for a new layout rather than reshaping this one.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// First byte of every binary payload.
pub(crate) const BINARY_TAG: u8 = 0xB1;

/// Why a payload could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Binary (postcard) encoding or decoding failed.
    #[error("binary codec: {0}")]
    Binary(#[from] postcard::Error),
    /// A JSON payload (written before the binary format) did not decode.
    #[error("json codec: {0}")]
    Json(#[from] serde_json::Error),
    /// The bytes are well formed but not a layout this version reads.
    #[error("unsupported layout: {0}")]
    Unsupported(String),
}

/// Encodes `value` as a tagged binary payload.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(postcard_after(&[BINARY_TAG], value)?)
}

/// `prefix`, then the postcard encoding of `value`, in a buffer sized for both first
/// (postcard's size walk copies nothing), so a large body — a batch entry, an
/// `AppendEntries` of many entries — is not copied again at each doubling of a growing
/// buffer. Log payloads and records, Raft RPC bodies and forwarded commands use it.
pub fn postcard_after<T: Serialize + ?Sized>(
    prefix: &[u8],
    value: &T,
) -> Result<Vec<u8>, postcard::Error> {
    let mut out =
        Vec::with_capacity(prefix.len() + postcard::experimental::serialized_size(value)?);
    out.extend_from_slice(prefix);
    postcard::to_io(value, &mut out)?;
    Ok(out)
}

/// Decodes a payload written by [`encode`], or an untagged JSON one.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        Some((&BINARY_TAG, rest)) => Ok(postcard::from_bytes(rest)?),
        _ => Ok(serde_json::from_slice(bytes)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvOp;
    use crate::machine::{Batch, Stamped};

    fn batch() -> Batch<KvOp> {
        Batch {
            requests: vec![
                Stamped {
                    now_ms: 1_764_500_000_000,
                    op: KvOp::Put {
                        key: b"orders-db".to_vec(),
                        value: vec![0xff, 0x00, b'w'],
                    },
                },
                Stamped {
                    now_ms: 1_764_500_000_001,
                    op: KvOp::Delete {
                        key: b"orders-db".to_vec(),
                    },
                },
            ],
        }
    }

    #[test]
    fn binary_round_trip_and_json_still_reads() {
        let b = batch();
        let bin = encode(&b).unwrap();
        assert_eq!(bin[0], BINARY_TAG);
        assert_eq!(decode::<Batch<KvOp>>(&bin).unwrap(), b);
        let json = serde_json::to_vec(&b).unwrap();
        assert_eq!(decode::<Batch<KvOp>>(&json).unwrap(), b);
        assert!(
            bin.len() * 2 < json.len(),
            "{} vs {}",
            bin.len(),
            json.len()
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode::<Batch<KvOp>>(&[BINARY_TAG, 0xff, 0xff]).is_err());
        assert!(decode::<Batch<KvOp>>(b"{not json").is_err());
        assert!(decode::<Batch<KvOp>>(&[]).is_err());
    }
}
