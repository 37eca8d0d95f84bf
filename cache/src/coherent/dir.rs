//! `CACHE.DIR key`: the key's directory entry, asked of its home (contract 2.1,
//! "Introspection"): a map of `home`, `epoch`, `owner` (the node holding it `M`/`E`, or
//! null) and `sharers` (the nodes holding it `S`).
//!
//! The home answers `FWD cache 1 <deadline> <key>` with the entry, postcard-encoded.

use std::time::Duration;

use bytes::Bytes;
use conclave_protocol::Frame;
use serde::{Deserialize, Serialize};

use super::{Coherent, NO_RING, SERVICE, TRYAGAIN};
use crate::coherence::{NodeId, Ring};

/// A directory entry as the home sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DirEntry {
    home: NodeId,
    epoch: u64,
    owner: Option<NodeId>,
    sharers: Vec<NodeId>,
}

impl Coherent {
    /// This node's answer as home: the encoded entry, or empty if it is not the home.
    pub(super) fn dir_local(&self, key: &[u8]) -> Bytes {
        let inner = self.inner.lock();
        let key = Bytes::copy_from_slice(key);
        let epoch = inner.node.epoch();
        match inner.node.dir_view(&key) {
            Some(view) => {
                let entry = DirEntry {
                    home: self.id,
                    epoch,
                    owner: view.owner,
                    sharers: view.sharers,
                };
                postcard::to_allocvec(&entry).map_or_else(|_| Bytes::new(), Bytes::from)
            }
            None => Bytes::new(),
        }
    }

    /// `CACHE.DIR key`: the map above, or `-TRYAGAIN` when the home does not answer (or
    /// there is no ring yet).
    pub async fn dir(&self, key: Bytes) -> Frame {
        let (home, epoch) = {
            let inner = self.inner.lock();
            (inner.node.ring().home(&key), inner.node.epoch())
        };
        if epoch == 0 {
            return Frame::error(NO_RING);
        }
        let encoded = if home == self.id {
            self.dir_local(&key)
        } else {
            let Some(peer) = self.peers.get(&home) else {
                return Frame::error(TRYAGAIN);
            };
            let deadline = conclave_cluster::now_ms() + 2000;
            match peer
                .forward(SERVICE, 1, deadline, &key, Duration::from_secs(2))
                .await
            {
                Ok(reply) => reply,
                Err(_) => return Frame::error(TRYAGAIN),
            }
        };
        let Ok(entry) = postcard::from_bytes::<DirEntry>(&encoded) else {
            return Frame::error(TRYAGAIN);
        };
        let id = |n: NodeId| Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX));
        Frame::Map(vec![
            (Frame::bulk_static("home"), id(entry.home)),
            (Frame::bulk_static("epoch"), id(entry.epoch)),
            (
                Frame::bulk_static("owner"),
                entry.owner.map_or(Frame::Null, id),
            ),
            (
                Frame::bulk_static("sharers"),
                Frame::Array(entry.sharers.into_iter().map(id).collect()),
            ),
        ])
    }
}
