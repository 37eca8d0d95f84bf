//! Command scripts replayed on Conclave and on a real `redis-server` (see
//! [`super::reference`]), reply by reply, byte for byte.
//!
//! A script is one command per line, arguments split on spaces; `''` is an empty
//! argument and `\xNN` a byte. Only deterministic replies belong here (no
//! `RANDOMKEY`, idle times or relative TTLs of keys set in the past).

use super::Raw;

/// Splits a script into commands of raw arguments.
pub fn commands(script: &str) -> Vec<Vec<Vec<u8>>> {
    script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| line.split(' ').map(decode).collect())
        .collect()
}

fn decode(token: &str) -> Vec<u8> {
    if token == "''" {
        return Vec::new();
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i..i + 4)
            .filter(|w| w.starts_with(b"\\x"))
            .and_then(|w| std::str::from_utf8(&w[2..]).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// Runs `script` on both connections and returns every command whose replies differ,
/// as `command: conclave reply != redis reply`.
pub fn differences(conclave: &mut Raw, redis: &mut Raw, script: &str) -> Vec<String> {
    let mut diffs = Vec::new();
    for cmd in commands(script) {
        let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
        conclave.send_cmd(&args);
        let ours = conclave.reply();
        redis.send_cmd(&args);
        let theirs = redis.reply();
        if ours != theirs {
            let shown: Vec<String> = cmd
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            diffs.push(format!(
                "{}: conclave {:?} != redis {:?}",
                shown.join(" "),
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            ));
        }
    }
    diffs
}
