//! Small `Q.*` helpers for the queue tests: one command on a node's port with a fresh
//! connection, replies decoded into messages, pending entries and `Q.INFO` fields.

use std::thread;
use std::time::{Duration, Instant};

use redis::{RedisResult, Value};

use super::{conn_to, flat_map};

/// A delivered message: `(id, payload, deliveries)`.
pub type Msg = (String, String, i64);

/// Runs one command on `port` with a fresh connection (read timeout `timeout`).
pub fn q(port: u16, args: &[&str], timeout: Duration) -> RedisResult<Value> {
    let Some(mut con) = conn_to(port, timeout) else {
        return Err(redis::RedisError::from((
            redis::ErrorKind::IoError,
            "connect failed",
        )));
    };
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut con)
}

/// Text of a bulk or simple string.
pub fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Okay => "OK".into(),
        Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// The messages of a `Q.READ` reply (empty for the null array).
pub fn messages(v: &Value) -> Vec<Msg> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|m| match m {
            Value::Array(f) if f.len() == 3 => {
                let d = match &f[2] {
                    Value::Int(i) => *i,
                    _ => -1,
                };
                Some((text(&f[0]), text(&f[1]), d))
            }
            _ => None,
        })
        .collect()
}

/// `Q.READ` through `port`: the messages (none on the null array).
pub fn read(
    port: u16,
    topic: &str,
    group: &str,
    consumer: &str,
    extra: &[&str],
) -> RedisResult<Vec<Msg>> {
    let mut args = vec!["Q.READ", topic, group, consumer];
    args.extend_from_slice(extra);
    q(port, &args, Duration::from_secs(30)).map(|v| messages(&v))
}

/// The ids of `Q.PENDING topic group COUNT 100000` through `port`, sorted.
pub fn pending_ids(port: u16, topic: &str, group: &str) -> RedisResult<Vec<String>> {
    let v = q(
        port,
        &["Q.PENDING", topic, group, "COUNT", "100000"],
        Duration::from_secs(10),
    )?;
    let Value::Array(items) = v else {
        return Ok(Vec::new());
    };
    let mut ids: Vec<String> = items
        .iter()
        .filter_map(|e| {
            flat_map(e)?
                .into_iter()
                .find(|(k, _)| k == "id")
                .map(|(_, v)| text(&v))
        })
        .collect();
    ids.sort();
    Ok(ids)
}

/// One field of `Q.INFO topic` through `port`.
pub fn info_field(port: u16, topic: &str, field: &str) -> Option<Value> {
    let v = q(port, &["Q.INFO", topic], Duration::from_secs(10)).ok()?;
    flat_map(&v)?
        .into_iter()
        .find(|(k, _)| k == field)
        .map(|(_, v)| v)
}

/// The leader of `topic`'s shard per `Q.INFO` on `port`, waiting up to `within`.
pub fn shard_leader(port: u16, topic: &str, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        if let Some(Value::Int(l)) = info_field(port, topic, "leader") {
            return l as u64;
        }
        assert!(Instant::now() < deadline, "no leader for {topic}'s shard");
        thread::sleep(Duration::from_millis(50));
    }
}
