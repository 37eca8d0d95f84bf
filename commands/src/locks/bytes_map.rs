//! Serde helper: a `BTreeMap` keyed by binary-safe names, stored as a sequence of
//! `(name, value)` pairs with the names as byte strings.
//!
//! JSON (and most other formats) only allow string map keys, and lock names are
//! arbitrary bytes; a sequence of pairs works everywhere and `serde_bytes` keeps the
//! names compact in binary formats.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::{ByteBuf, Bytes};

use super::Name;

/// Serializes `map` as a sequence of `(bytes, value)` pairs in key order.
pub(crate) fn serialize<V, S>(map: &BTreeMap<Name, V>, serializer: S) -> Result<S::Ok, S::Error>
where
    V: Serialize,
    S: Serializer,
{
    serializer.collect_seq(map.iter().map(|(k, v)| (Bytes::new(k), v)))
}

/// Reads back what [`serialize`] wrote.
pub(crate) fn deserialize<'de, V, D>(deserializer: D) -> Result<BTreeMap<Name, V>, D::Error>
where
    V: Deserialize<'de>,
    D: Deserializer<'de>,
{
    let pairs = Vec::<(ByteBuf, V)>::deserialize(deserializer)?;
    Ok(pairs.into_iter().map(|(k, v)| (k.into_vec(), v)).collect())
}
