//! Conversions between replies and Lua values, exactly as Redis 7's `script_lua.c` does
//! them (<https://redis.io/docs/latest/develop/interactions/programmability/lua-api/>,
//! "Data type conversion").
//!
//! **Reply → Lua** (what `redis.call` returns), for a script speaking RESP2 (the default):
//! integer → number; bulk string → string; null bulk and null array → `false`; array →
//! table (nested); status → `{ok = text}`; error → `{err = text}`. RESP3-only replies are
//! first degraded as they would be on the wire (map → flat array, set → array, double →
//! bulk, boolean → integer). After `redis.setresp(3)`: map → `{map = {...}}`, set →
//! `{set = {member = true}}`, double → `{double = n}`, boolean → boolean, null → `nil`,
//! verbatim → `{verbatim_string = {format = ..., string = ...}}`.
//!
//! **Lua → reply** (what a script returns): number → integer (truncated toward zero);
//! string → bulk; `true` → `:1`, `false` → null (RESP3 script: booleans); table with a
//! string `err` field → error, with a string `ok` field → status, `double` → double,
//! `map`/`set`/`verbatim_string` → those replies; other tables → array of the elements
//! `1..n`, stopping at the first `nil`; anything else → null. Fields are read raw, so a
//! metatable never runs. Tables nested deeper than [`MAX_DEPTH`] end in
//! `-ERR reached lua stack limit`, as in Redis (which allows more levels).
//!
//! **Lua → command argument**: strings as they are; numbers as integers when they are
//! integral (and within ±2^62), else in the shortest round-trip form of Redis's
//! `fpconv_dtoa` (`0.1`, `1e+300`); any other type is refused.

use bytes::Bytes;
use conclave_protocol::frame::format_double;
use conclave_protocol::Frame;
use mlua::{Lua, Table, Value};

/// Deepest nesting converted either way; deeper levels become `-ERR reached lua stack
/// limit`. Redis stops when its Lua stack runs out (some thousands of levels); 128 keeps
/// the recursion (here, in encoding and in dropping the reply) far from any thread's
/// stack limit, and no reply of a command nests that deep.
pub const MAX_DEPTH: usize = 128;

/// The text Redis's `luaPushErrorBuff` stores in an error table: `-CODE msg` keeps its
/// code, anything without a leading `-` (or without a space) gets `ERR`; CR/LF are
/// trimmed from both ends of the message.
pub fn error_text(buf: &[u8]) -> Vec<u8> {
    let (code, msg): (&[u8], &[u8]) = match buf.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&c| c == b' ') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", buf),
    };
    let trim = |c: &u8| *c == b'\r' || *c == b'\n';
    let start = msg.iter().position(|c| !trim(c)).unwrap_or(msg.len());
    let end = msg.iter().rposition(|c| !trim(c)).map_or(start, |i| i + 1);
    let mut out = Vec::with_capacity(code.len() + 1 + end - start);
    out.extend_from_slice(code);
    out.push(b' ');
    out.extend_from_slice(&msg[start..end]);
    out
}

/// A `{err = text}` table.
pub fn error_table(lua: &Lua, text: &[u8]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 1)?;
    t.raw_set("err", lua.create_string(text)?)?;
    Ok(t)
}

/// A command's reply as `redis.call` returns it to a script speaking RESP3 (`resp3`) or
/// RESP2.
pub fn frame_to_lua(lua: &Lua, frame: Frame, resp3: bool) -> mlua::Result<Value> {
    frame_to_lua_at(lua, frame, resp3, 0)
}

fn frame_to_lua_at(lua: &Lua, frame: Frame, resp3: bool, depth: usize) -> mlua::Result<Value> {
    if depth > MAX_DEPTH {
        return Ok(Value::Table(error_table(
            lua,
            b"ERR reached lua stack limit",
        )?));
    }
    let string = |b: &[u8]| lua.create_string(b).map(Value::String);
    let field = |name: &str, v: Value| -> mlua::Result<Value> {
        let t = lua.create_table_with_capacity(0, 1)?;
        t.raw_set(name, v)?;
        Ok(Value::Table(t))
    };
    Ok(match frame {
        Frame::Integer(n) => Value::Number(n as f64),
        Frame::Bulk(b) => string(&b)?,
        Frame::Simple(s) => field("ok", string(&s)?)?,
        Frame::Error(e) => {
            let mut buf = Vec::with_capacity(e.len() + 1);
            buf.push(b'-');
            buf.extend_from_slice(&e);
            Value::Table(error_table(lua, &error_text(&buf))?)
        }
        Frame::Null | Frame::NullArray if resp3 => Value::Nil,
        Frame::Null | Frame::NullArray => Value::Boolean(false),
        Frame::Array(items) => array(lua, items, resp3, depth)?,
        Frame::Set(items) if !resp3 => array(lua, items, resp3, depth)?,
        Frame::Set(items) => {
            let set = lua.create_table_with_capacity(0, items.len())?;
            for item in items {
                set.raw_set(frame_to_lua_at(lua, item, resp3, depth + 1)?, true)?;
            }
            field("set", Value::Table(set))?
        }
        Frame::Map(pairs) if !resp3 => {
            let flat = pairs.into_iter().flat_map(|(k, v)| [k, v]).collect();
            array(lua, flat, resp3, depth)?
        }
        Frame::Map(pairs) => {
            let map = lua.create_table_with_capacity(0, pairs.len())?;
            for (k, v) in pairs {
                let k = frame_to_lua_at(lua, k, resp3, depth + 1)?;
                map.raw_set(k, frame_to_lua_at(lua, v, resp3, depth + 1)?)?;
            }
            field("map", Value::Table(map))?
        }
        Frame::Double(d) if resp3 => field("double", Value::Number(d))?,
        Frame::Double(d) => string(format_double(d).as_bytes())?,
        Frame::Boolean(b) if resp3 => Value::Boolean(b),
        Frame::Boolean(b) => Value::Number(if b { 1.0 } else { 0.0 }),
        Frame::Verbatim(format, text) if resp3 => {
            let v = lua.create_table_with_capacity(0, 2)?;
            v.raw_set("format", format)?;
            v.raw_set("string", lua.create_string(&text)?)?;
            field("verbatim_string", Value::Table(v))?
        }
        Frame::Verbatim(_, text) => string(&text)?,
    })
}

fn array(lua: &Lua, items: Vec<Frame>, resp3: bool, depth: usize) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.into_iter().enumerate() {
        t.raw_set(i + 1, frame_to_lua_at(lua, item, resp3, depth + 1)?)?;
    }
    Ok(Value::Table(t))
}

/// A script's return value as the reply to its caller; `resp3` is the protocol the
/// script selected with `redis.setresp` (it decides what booleans become).
pub fn lua_to_frame(value: &Value, resp3: bool) -> Frame {
    lua_to_frame_at(value, resp3, 0)
}

fn lua_to_frame_at(value: &Value, resp3: bool, depth: usize) -> Frame {
    if depth > MAX_DEPTH {
        return Frame::error("ERR reached lua stack limit");
    }
    match value {
        Value::String(s) => Frame::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) if resp3 => Frame::Boolean(*b),
        Value::Boolean(true) => Frame::Integer(1),
        Value::Boolean(false) => Frame::Null,
        Value::Integer(n) => Frame::Integer(*n),
        Value::Number(n) => Frame::Integer(to_long_long(*n)),
        Value::Table(t) => table_to_frame(t, resp3, depth),
        _ => Frame::Null,
    }
}

/// C's `(long long)` cast on x86-64 (`cvttsd2si`): truncates toward zero; NaN and values
/// out of range give `i64::MIN`, as Redis returns for `math.huge` or `0/0`.
fn to_long_long(n: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if n.is_nan() || !(-LIMIT..LIMIT).contains(&n) {
        return i64::MIN;
    }
    n as i64
}

fn table_to_frame(t: &Table, resp3: bool, depth: usize) -> Frame {
    let get = |name: &str| t.raw_get::<Value>(name).unwrap_or(Value::Nil);
    if let Value::String(e) = get("err") {
        return Frame::Error(Bytes::copy_from_slice(&e.as_bytes()));
    }
    if let Value::String(s) = get("ok") {
        return Frame::Simple(Bytes::copy_from_slice(&s.as_bytes()));
    }
    match get("double") {
        Value::Number(d) => return Frame::Double(d),
        Value::Integer(n) => return Frame::Double(n as f64),
        _ => {}
    }
    if let Value::String(s) = get("big_number") {
        // No big-number frame: its RESP2 form, a bulk string.
        return Frame::Bulk(Bytes::copy_from_slice(&s.as_bytes()));
    }
    if let Value::Table(v) = get("verbatim_string") {
        let format = v.raw_get::<Value>("format").unwrap_or(Value::Nil);
        let text = v.raw_get::<Value>("string").unwrap_or(Value::Nil);
        if let (Value::String(format), Value::String(text)) = (format, text) {
            let format = match &format.as_bytes()[..] {
                b"mkd" => "mkd",
                _ => "txt",
            };
            return Frame::Verbatim(format, Bytes::copy_from_slice(&text.as_bytes()));
        }
    }
    if let Value::Table(m) = get("map") {
        let pairs = m
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, v)| {
                (
                    lua_to_frame_at(&k, resp3, depth + 1),
                    lua_to_frame_at(&v, resp3, depth + 1),
                )
            })
            .collect();
        return Frame::Map(pairs);
    }
    if let Value::Table(s) = get("set") {
        let members = s
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, _)| lua_to_frame_at(&k, resp3, depth + 1))
            .collect();
        return Frame::Set(members);
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(lua_to_frame_at(&v, resp3, depth + 1)),
        }
    }
    Frame::Array(items)
}

/// A `redis.call` argument: `None` for a type Redis refuses ("Lua redis lib command
/// arguments must be strings or integers").
pub fn lua_to_arg(value: &Value) -> Option<Bytes> {
    match value {
        Value::String(s) => Some(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Integer(n) => Some(Bytes::from(number_text(*n as f64))),
        Value::Number(n) => Some(Bytes::from(number_text(*n))),
        _ => None,
    }
}

/// A Lua number as Redis writes it into a command argument: `ll2string` when the number
/// is integral within ±2^62 (`double2ll`), else `fpconv_dtoa`.
pub fn number_text(d: f64) -> String {
    const HALF: f64 = (i64::MAX / 2) as f64;
    if (-HALF..=HALF).contains(&d) && d.trunc() == d {
        return (d as i64).to_string();
    }
    fpconv_dtoa(d)
}

/// Redis's `fpconv_dtoa`: the shortest digits that round-trip, written plainly when the
/// exponent is small and in `d.ddde+XX` form otherwise.
fn fpconv_dtoa(d: f64) -> String {
    let neg = d.is_sign_negative();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if d.is_nan() {
        out.push_str("nan");
        return out;
    }
    if d.is_infinite() {
        out.push_str("inf");
        return out;
    }
    if d == 0.0 {
        out.push('0');
        return out;
    }
    // `{:e}` gives the shortest round-trip digits: "1.2345e-7".
    let sci = format!("{:e}", d.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exp10: i32 = exp.parse().unwrap_or(0);
    let ndigits = digits.len() as i32;
    // value = digits × 10^k
    let k = exp10 - (ndigits - 1);
    let exp = (k + ndigits - 1).abs();
    if k >= 0 && exp < ndigits + 7 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', k as usize));
        return out;
    }
    if k < 0 && (k > -7 || exp < 4) {
        let offset = ndigits - k.abs();
        if offset <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-offset) as usize));
            out.push_str(&digits);
        } else {
            let (int, frac) = digits.split_at(offset as usize);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        }
        return out;
    }
    let keep = digits.len().min(if neg { 17 } else { 18 });
    out.push_str(&digits[..1]);
    if keep > 1 {
        out.push('.');
        out.push_str(&digits[1..keep]);
    }
    out.push('e');
    out.push(if k + ndigits - 1 < 0 { '-' } else { '+' });
    if exp > 99 {
        out.push_str(&exp.to_string());
    } else {
        out.push_str(&format!("{exp:02}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_is_luas_error_table_text() {
        assert_eq!(error_text(b"-WRONGTYPE Operation"), b"WRONGTYPE Operation");
        assert_eq!(error_text(b"-My Error\r\n"), b"My Error");
        assert_eq!(error_text(b"-nospace"), b"ERR nospace");
        assert_eq!(error_text(b"plain text"), b"ERR plain text");
    }

    #[test]
    fn numbers_as_arguments() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (42.0, "42"),
            (-7.0, "-7"),
            (9007199254740991.0, "9007199254740991"),
            (0.1, "0.1"),
            (2.75, "2.75"),
            (-2.5, "-2.5"),
            (1e-7, "1e-07"),
            (0.000123, "0.000123"),
            (1e300, "1e+300"),
            (1.5e20, "1.5e+20"),
            (123456789.25, "123456789.25"),
            (1e25, "1e+25"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (d, text) in cases {
            assert_eq!(number_text(*d), *text, "{d}");
        }
    }

    #[test]
    fn replies_round_trip_through_lua() {
        let lua = Lua::new();
        let cases = vec![
            (Frame::Integer(7), Frame::Integer(7)),
            (Frame::bulk_static("x"), Frame::bulk_static("x")),
            (Frame::Null, Frame::Null),
            (Frame::simple("OK"), Frame::simple("OK")),
            (Frame::error("WRONGTYPE bad"), Frame::error("WRONGTYPE bad")),
            (
                Frame::Array(vec![Frame::Integer(1), Frame::bulk_static("a")]),
                Frame::Array(vec![Frame::Integer(1), Frame::bulk_static("a")]),
            ),
            // A null inside an array becomes false, which returns as null.
            (
                Frame::Array(vec![Frame::Null, Frame::Integer(2)]),
                Frame::Array(vec![Frame::Null, Frame::Integer(2)]),
            ),
            (Frame::Double(1.5), Frame::bulk_static("1.5")),
            (Frame::Boolean(true), Frame::Integer(1)),
        ];
        for (reply, back) in cases {
            let v = frame_to_lua(&lua, reply.clone(), false).unwrap();
            assert_eq!(lua_to_frame(&v, false), back, "{reply:?}");
        }
    }

    #[test]
    fn lua_values_to_replies() {
        let lua = Lua::new();
        let eval = |src: &str| lua_to_frame(&lua.load(src).eval::<Value>().unwrap(), false);
        assert_eq!(eval("return 100.5"), Frame::Integer(100));
        assert_eq!(eval("return -3.9"), Frame::Integer(-3));
        assert_eq!(eval("return true"), Frame::Integer(1));
        assert_eq!(eval("return false"), Frame::Null);
        assert_eq!(eval("return nil"), Frame::Null);
        assert_eq!(eval("return {ok='fine'}"), Frame::simple("fine"));
        assert_eq!(eval("return {err='ERR x'}"), Frame::error("ERR x"));
        assert_eq!(
            eval("return {1,2,3,'ciao',{1,2}}"),
            Frame::Array(vec![
                Frame::Integer(1),
                Frame::Integer(2),
                Frame::Integer(3),
                Frame::bulk_static("ciao"),
                Frame::Array(vec![Frame::Integer(1), Frame::Integer(2)]),
            ])
        );
        assert_eq!(
            eval("return {1,nil,3}"),
            Frame::Array(vec![Frame::Integer(1)])
        );
        assert_eq!(
            eval("local a = {}; setmetatable(a, {__index=function() error('x') end}); return a"),
            Frame::Array(vec![])
        );
        assert_eq!(eval("return {double=1.5}"), Frame::Double(1.5));
        let deep = eval("local a = {}; a[1] = a; return a");
        let mut depth = 0;
        let mut f = &deep;
        while let Frame::Array(items) = f {
            depth += 1;
            f = &items[0];
        }
        assert_eq!(depth, MAX_DEPTH + 1);
        assert_eq!(f, &Frame::error("ERR reached lua stack limit"));
    }
}
