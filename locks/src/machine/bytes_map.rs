//! Serde helpers for binary-safe names in snapshots.
//!
//! A name is written as a string when it is valid UTF-8 and the format is human
//! readable (JSON: `"orders"` rather than `[111,114,100,101,114,115]`), and as bytes
//! otherwise; reading accepts either form. Maps keyed by names are written as
//! sequences of `(name, value)` pairs, since JSON only allows string map keys.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Name;

/// A name to write.
struct NameRef<'a>(&'a [u8]);

impl Serialize for NameRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(self.0) {
            Ok(text) if serializer.is_human_readable() => serializer.serialize_str(text),
            _ => serializer.serialize_bytes(self.0),
        }
    }
}

/// A name read back: from a string, a byte string or a sequence of bytes.
struct NameBuf(Name);

impl<'de> Deserialize<'de> for NameBuf {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Self-describing formats (JSON) may hold a string, bytes or a sequence of bytes;
        // binary ones (postcard) hold exactly what `serialize_bytes` wrote.
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(NameVisitor).map(NameBuf)
        } else {
            deserializer.deserialize_byte_buf(NameVisitor).map(NameBuf)
        }
    }
}

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Name;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a name as a string or bytes")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Name, E> {
        Ok(v.as_bytes().to_vec())
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Name, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Name, E> {
        Ok(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Name, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element::<u8>()? {
            out.push(byte);
        }
        Ok(out)
    }
}

/// `#[serde(with = "bytes_map::name")]` for a single name field.
pub(crate) mod name {
    use super::*;

    /// Writes a name (see the module docs).
    pub(crate) fn serialize<S: Serializer>(name: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        NameRef(name).serialize(serializer)
    }

    /// Reads a name written by [`serialize`] (or by `serde_bytes`).
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Name, D::Error> {
        NameBuf::deserialize(deserializer).map(|n| n.0)
    }
}

/// Serializes `map` as a sequence of `(name, value)` pairs in key order.
pub(crate) fn serialize<V, S>(map: &BTreeMap<Name, V>, serializer: S) -> Result<S::Ok, S::Error>
where
    V: Serialize,
    S: Serializer,
{
    serializer.collect_seq(map.iter().map(|(k, v)| (NameRef(k), v)))
}

/// Reads back what [`serialize`] wrote.
pub(crate) fn deserialize<'de, V, D>(deserializer: D) -> Result<BTreeMap<Name, V>, D::Error>
where
    V: Deserialize<'de>,
    D: Deserializer<'de>,
{
    let pairs = Vec::<(NameBuf, V)>::deserialize(deserializer)?;
    Ok(pairs.into_iter().map(|(k, v)| (k.0, v)).collect())
}
