//! Rendering the queue machine's replies as RESP frames (contract section 5). Maps are
//! RESP3 maps (`%`), flat arrays in RESP2; "none" is the null array (`*-1` / `_`).

use bytes::Bytes;
use conclave_protocol::Frame;

use crate::machine::{Msg, MsgId, PendingEntry, QueueReply, TopicInfo};

/// Where a topic lives, for `Q.INFO`: its shard, the shard's leader (if known) and
/// replicas (node ids).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Placement {
    /// Shard index, `0..--queue-shards`.
    pub shard: u32,
    /// Node id of the shard's leader as this node knows it.
    pub leader: Option<u64>,
    /// Node ids of the shard's replicas.
    pub replicas: Vec<u64>,
}

fn id_frame(id: MsgId) -> Frame {
    Frame::Bulk(Bytes::from(id.to_string()))
}

fn key(name: &'static str) -> Frame {
    Frame::bulk_static(name)
}

fn int(n: u64) -> Frame {
    Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// `Q.READ`'s answer: `[id, payload, deliveries]` per message, oldest first; the null
/// array when there is none.
pub fn messages_frame(msgs: &[Msg]) -> Frame {
    if msgs.is_empty() {
        return Frame::NullArray;
    }
    Frame::Array(
        msgs.iter()
            .map(|m| {
                Frame::Array(vec![
                    id_frame(m.id),
                    Frame::Bulk(m.payload.clone()),
                    int(u64::from(m.deliveries)),
                ])
            })
            .collect(),
    )
}

/// `Q.PENDING`'s answer: an array of maps `id`, `consumer`, `deliveries`, `idle_ms`.
pub fn pending_frame(entries: &[PendingEntry]) -> Frame {
    Frame::Array(
        entries
            .iter()
            .map(|e| {
                Frame::Map(vec![
                    (key("id"), id_frame(e.id)),
                    (key("consumer"), Frame::Bulk(e.consumer.clone())),
                    (key("deliveries"), int(u64::from(e.deliveries))),
                    (key("idle_ms"), int(e.idle_ms)),
                ])
            })
            .collect(),
    )
}

/// `Q.INFO`'s answer: `shard`, `leader`, `replicas`, `length`, `first_id`, `last_id`,
/// `dlq_length`, `groups` (maps `name`, `consumers`, `pending`, `lag`, `delivered`,
/// `acked`). Absent ids and an unknown leader are nulls.
pub fn info_frame(placement: &Placement, info: &TopicInfo) -> Frame {
    let opt_id = |id: Option<MsgId>| id.map_or(Frame::Null, id_frame);
    let groups = info
        .groups
        .iter()
        .map(|g| {
            Frame::Map(vec![
                (key("name"), Frame::Bulk(g.name.clone())),
                (key("consumers"), int(g.consumers)),
                (key("pending"), int(g.pending)),
                (key("lag"), int(g.lag)),
                (key("delivered"), int(g.delivered)),
                (key("acked"), int(g.acked)),
            ])
        })
        .collect();
    Frame::Map(vec![
        (key("shard"), int(u64::from(placement.shard))),
        (key("leader"), placement.leader.map_or(Frame::Null, int)),
        (
            key("replicas"),
            Frame::Array(placement.replicas.iter().map(|r| int(*r)).collect()),
        ),
        (key("length"), int(info.length)),
        (key("first_id"), opt_id(info.first_id)),
        (key("last_id"), opt_id(info.last_id)),
        (key("dlq_length"), int(info.dlq_length)),
        (key("groups"), Frame::Array(groups)),
    ])
}

/// The frame of a reply that needs no placement (everything but `Q.INFO`, which
/// [`info_frame`] renders, and `Waiting`, which the service turns into a blocked wait).
pub fn reply_frame(reply: &QueueReply) -> Frame {
    match reply {
        QueueReply::Pushed { id, .. } => id_frame(*id),
        QueueReply::Messages(msgs) => messages_frame(msgs),
        QueueReply::Waiting => Frame::NullArray,
        QueueReply::Count(n) => int(*n),
        QueueReply::Flag(b) => Frame::Integer(i64::from(*b)),
        QueueReply::Ok => Frame::ok(),
        QueueReply::Ticked { .. } => Frame::ok(),
        QueueReply::Pending(entries) => pending_frame(entries),
        QueueReply::Info(info) => info_frame(
            &Placement {
                shard: 0,
                leader: None,
                replicas: Vec::new(),
            },
            info,
        ),
        QueueReply::Topics(names) => {
            Frame::Array(names.iter().map(|n| Frame::Bulk(n.clone())).collect())
        }
        QueueReply::Error(e) => Frame::error(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_the_null_array_and_messages_are_triples() {
        assert_eq!(messages_frame(&[]), Frame::NullArray);
        let f = messages_frame(&[Msg {
            id: MsgId::new(5, 1),
            payload: Bytes::from("x"),
            deliveries: 2,
        }]);
        assert_eq!(
            f,
            Frame::Array(vec![Frame::Array(vec![
                Frame::Bulk(Bytes::from("5-1")),
                Frame::Bulk(Bytes::from("x")),
                Frame::Integer(2),
            ])])
        );
    }
}
