//! Record framing shared by log segments and snapshot files:
//! `[len: u32 LE][crc32 of payload: u32 LE][payload]`.

/// Bytes of the `[len][crc]` header.
pub(crate) const HEADER_LEN: usize = 8;

/// Largest payload accepted (a sanity bound that turns garbage lengths into corruption).
pub(crate) const MAX_PAYLOAD: usize = 256 << 20;

/// Appends one framed record holding `payload` to `out`.
pub(crate) fn encode_into(out: &mut Vec<u8>, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// What [`decode`] found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    /// A whole, intact record: its payload and total framed length.
    Record(&'a [u8], usize),
    /// The buffer ends before the record does (torn write, or simply the end).
    Short,
    /// The header or checksum is wrong.
    Bad(String),
}

/// Decodes the record at the start of `buf` (payloads up to [`MAX_PAYLOAD`]).
pub(crate) fn decode(buf: &[u8]) -> Decoded<'_> {
    decode_with_max(buf, MAX_PAYLOAD)
}

/// Decodes the record at the start of `buf`, accepting payloads up to `max` bytes.
pub(crate) fn decode_with_max(buf: &[u8], max: usize) -> Decoded<'_> {
    let (Some(len), Some(crc)) = (read_u32(buf, 0), read_u32(buf, 4)) else {
        return Decoded::Short;
    };
    let len = len as usize;
    if len == 0 || len > max {
        return Decoded::Bad(format!("implausible record length {len}"));
    }
    let Some(payload) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Decoded::Short;
    };
    if crc32fast::hash(payload) != crc {
        return Decoded::Bad("checksum mismatch".to_string());
    }
    Decoded::Record(payload, HEADER_LEN + len)
}

/// Reads a little-endian `u32` at `at`, if the buffer is long enough.
fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut buf = Vec::new();
        encode_into(&mut buf, b"hello");
        encode_into(&mut buf, b"world!");
        let Decoded::Record(p, n) = decode(&buf) else {
            panic!("first record")
        };
        assert_eq!(p, b"hello");
        assert_eq!(decode(&buf[n..]), Decoded::Record(b"world!", 14));
        assert_eq!(decode(&buf[..n - 1]), Decoded::Short);
        assert_eq!(decode(&buf[..3]), Decoded::Short);
        let mut bad = buf.clone();
        bad[HEADER_LEN] ^= 1;
        assert!(matches!(decode(&bad), Decoded::Bad(_)));
        assert!(matches!(decode(&[0u8; 16]), Decoded::Bad(_)));
    }
}
