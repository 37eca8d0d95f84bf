//! `FUNCTION DUMP` / `FUNCTION RESTORE` payloads in Redis 7's format
//! (`functionDumpCommand`, `rdbFunctionLoad`), so a dump moves between Conclave and
//! Redis 7.0 both ways: per library the RDB opcode `FUNCTION2` (245) and its code as an
//! RDB string (integer, LZF or verbatim: `conclave_cache::rdb`), then the RDB version
//! (2 bytes) and a CRC-64 (8 bytes), little-endian. The older `FUNCTION` opcode (246,
//! Redis 7.0 release candidates: name, engine, optional description, body) is read too.

use conclave_cache::rdb;

/// `RDB_OPCODE_FUNCTION2`.
const OPCODE_FUNCTION2: u8 = 245;
/// `RDB_OPCODE_FUNCTION` (7.0 rc1/rc2).
const OPCODE_FUNCTION: u8 = 246;

/// The payload of libraries with these codes.
pub fn encode(codes: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(OPCODE_FUNCTION2);
        rdb::save_string(&mut out, code);
    }
    rdb::seal(&mut out);
    out
}

/// The library codes of a payload; Redis's error text (without `ERR `) otherwise.
pub fn decode(payload: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    rdb::verify(payload).map_err(|_| "DUMP payload version or checksum are wrong".to_string())?;
    let body = &payload[..payload.len() - 10];
    let mut at = 0;
    let mut codes = Vec::new();
    while at < body.len() {
        let kind = body[at];
        at += 1;
        match kind {
            OPCODE_FUNCTION2 => codes.push(string(body, &mut at, "library payload")?),
            OPCODE_FUNCTION => {
                let name = string(body, &mut at, "library name")?;
                let engine = string(body, &mut at, "engine name")?;
                // The description indicator is a length; a description follows when set.
                let has_desc = match body.get(at) {
                    Some(&b) if b < 0x40 => {
                        at += 1;
                        b != 0
                    }
                    _ => return Err("Failed loading library description indicator".into()),
                };
                if has_desc {
                    string(body, &mut at, "library description")?;
                }
                let blob = string(body, &mut at, "library blob")?;
                let mut code = b"#!".to_vec();
                code.extend_from_slice(&engine);
                code.extend_from_slice(b" name=");
                code.extend_from_slice(&name);
                code.push(b'\n');
                code.extend_from_slice(&blob);
                codes.push(code);
            }
            _ => return Err("given type is not a function".into()),
        }
    }
    Ok(codes)
}

/// The RDB string at `*at`, or `Failed loading <what>`.
fn string(body: &[u8], at: &mut usize, what: &str) -> Result<Vec<u8>, String> {
    rdb::load_string_object(body, at).ok_or_else(|| format!("Failed loading {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_redis_bytes() {
        let code = b"#!lua name=t\nredis.register_function('t', function() return 1 end)";
        let payload = encode(&[code]);
        assert_eq!(payload[0], OPCODE_FUNCTION2);
        assert_eq!(decode(&payload).unwrap(), vec![code.to_vec()]);
        assert_eq!(
            decode(b"bad_payload").unwrap_err(),
            "DUMP payload version or checksum are wrong"
        );
        // Two libraries and an empty set.
        let two = encode(&[b"#!lua name=a\n", b"#!lua name=b\n"]);
        assert_eq!(decode(&two).unwrap().len(), 2);
        assert!(decode(&encode(&[])).unwrap().is_empty());
    }

    #[test]
    fn release_candidate_payloads_read_as_a_shebang() {
        // 7.0 rc1/rc2: name, engine, a description flag (and description), the body.
        let mut p = vec![OPCODE_FUNCTION];
        for s in [&b"lib"[..], b"LUA"] {
            rdb::save_string(&mut p, s);
        }
        p.push(1);
        rdb::save_string(&mut p, b"a description");
        rdb::save_string(
            &mut p,
            b"redis.register_function('f', function() return 1 end)",
        );
        rdb::seal(&mut p);
        assert_eq!(
            decode(&p).unwrap(),
            vec![b"#!LUA name=lib\nredis.register_function('f', function() return 1 end)".to_vec()]
        );
        let mut other = vec![0u8];
        rdb::save_string(&mut other, b"x");
        rdb::seal(&mut other);
        assert_eq!(decode(&other).unwrap_err(), "given type is not a function");
    }
}
