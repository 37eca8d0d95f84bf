//! `LOCK.INFO` parsed into a small struct, and polling helpers for lock tests.

use std::thread;
use std::time::{Duration, Instant};

use redis::{RedisResult, Value};

use super::{conn_to, flat_map};

/// `LOCK.INFO` as the tests need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub mode: String,
    /// (owner, token)
    pub holders: Vec<(String, i64)>,
    /// owners, queue order
    pub waiters: Vec<String>,
}

pub fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

pub fn field<'a>(map: &'a [(String, Value)], name: &str) -> &'a Value {
    &map.iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no field {name} in {map:?}"))
        .1
}

pub fn parse_info(v: &Value) -> Info {
    let map = flat_map(v).unwrap_or_else(|| panic!("LOCK.INFO reply is not a map: {v:?}"));
    let list = |name: &str| match field(&map, name) {
        Value::Array(items) => items
            .iter()
            .map(|i| flat_map(i).expect("entry map"))
            .collect::<Vec<_>>(),
        other => panic!("{name} is not an array: {other:?}"),
    };
    let holders = list("holders")
        .iter()
        .map(|h| {
            let token = match field(h, "token") {
                Value::Int(t) => *t,
                other => panic!("token not an integer: {other:?}"),
            };
            (text(field(h, "owner")), token)
        })
        .collect();
    let waiters = list("waiters")
        .iter()
        .map(|w| text(field(w, "owner")))
        .collect();
    Info {
        mode: text(field(&map, "mode")),
        holders,
        waiters,
    }
}

pub fn info(con: &mut redis::Connection, res: &str) -> RedisResult<Info> {
    let v: Value = redis::cmd("LOCK.INFO").arg(res).query(con)?;
    Ok(parse_info(&v))
}

/// Retries `f` on a fresh connection to `port` until it succeeds or `within` runs out.
pub fn retry<T>(
    port: u16,
    within: Duration,
    what: &str,
    mut f: impl FnMut(&mut redis::Connection) -> RedisResult<T>,
) -> T {
    let deadline = Instant::now() + within;
    let mut last = String::from("no connection");
    while Instant::now() < deadline {
        if let Some(mut con) = conn_to(port, Duration::from_secs(5)) {
            match f(&mut con) {
                Ok(v) => return v,
                Err(e) => last = e.to_string(),
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: no success within {within:?} (last error: {last})");
}

/// Polls `LOCK.INFO res` on `port` until `pred` holds.
pub fn wait_info(port: u16, res: &str, within: Duration, pred: impl Fn(&Info) -> bool) -> Info {
    let deadline = Instant::now() + within;
    let mut last = None;
    while Instant::now() < deadline {
        if let Some(mut con) = conn_to(port, Duration::from_secs(5)) {
            if let Ok(i) = info(&mut con, res) {
                if pred(&i) {
                    return i;
                }
                last = Some(i);
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("LOCK.INFO {res} never satisfied the condition within {within:?}; last: {last:?}");
}

/// The `field:value` of an `INFO <section>` reply.
pub fn info_field(con: &mut redis::Connection, section: &str, name: &str) -> RedisResult<String> {
    let text: String = redis::cmd("INFO").arg(section).query(con)?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .unwrap_or_else(|| panic!("INFO {section} has no {name}: {text}"))
        .trim()
        .to_string())
}
