//! `#[serde(with = "sorted_map")]` for the ordered maps of a snapshot (topics, groups,
//! messages, delivery entries).
//!
//! Written as a sequence of `(key, value)` pairs in key order; read back into a `Vec`
//! and turned into the map with `BTreeMap::from_iter`, which sorts (already sorted:
//! linear) and builds the tree in bulk, instead of serde's default of one `insert` per
//! entry; and JSON, which only has string keys, can hold keys that are ids or bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Writes `map` as a sequence of pairs in key order.
pub(crate) fn serialize<K, V, S>(map: &BTreeMap<K, V>, serializer: S) -> Result<S::Ok, S::Error>
where
    K: Serialize,
    V: Serialize,
    S: Serializer,
{
    serializer.collect_seq(map.iter())
}

/// Reads back what [`serialize`] wrote.
pub(crate) fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
where
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
    D: Deserializer<'de>,
{
    let pairs = Vec::<(K, V)>::deserialize(deserializer)?;
    Ok(pairs.into_iter().collect())
}
