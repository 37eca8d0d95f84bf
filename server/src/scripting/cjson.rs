//! The `cjson` library Redis embeds (lua-cjson 2.1): `cjson.encode`, `cjson.decode`,
//! `cjson.null` and the configuration functions, with lua-cjson's output format
//! (<https://kyne.com.au/~mark/software/lua-cjson-manual.html>).
//!
//! Encoding: a table whose keys are all positive integers is an array (holes are
//! `null`; an "excessively sparse" one — largest key > 2 × count and > 10 — is an error
//! unless `encode_sparse_array(true)`), any other table an object (an empty table is
//! `{}`); object keys are strings or numbers (numbers become strings); numbers use
//! `%.14g`; `/` is escaped as `\/`, control characters as `\uXXXX`, other bytes pass
//! through. Keys come in Lua's own `next` order, as in Redis. Decoding parses with
//! `serde_json` (so strings must be valid UTF-8, and nesting stops at serde_json's
//! 128 levels where lua-cjson allows 1000) and builds tables in document order; JSON
//! `null` is `cjson.null`.

use std::sync::Arc;

use mlua::{Lua, Result, Table, Value};
use parking_lot::Mutex;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// lua-cjson's settings, changed by its configuration functions.
#[derive(Debug, Clone, Copy)]
struct Config {
    encode_max_depth: usize,
    decode_max_depth: usize,
    encode_invalid_numbers: bool,
    precision: usize,
    sparse_convert: bool,
    sparse_ratio: usize,
    sparse_safe: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: false,
            precision: 14,
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
        }
    }
}

/// Builds the `cjson` table.
pub fn create(lua: &Lua) -> Result<Table> {
    let config = Arc::new(Mutex::new(Config::default()));
    let t = lua.create_table()?;
    t.raw_set("null", Value::NULL)?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    let c = config.clone();
    t.raw_set(
        "encode",
        lua.create_function(move |lua, v: Value| {
            let cfg = *c.lock();
            let mut out = Vec::new();
            encode(&v, &cfg, 0, &mut out)?;
            lua.create_string(&out)
        })?,
    )?;
    let c = config.clone();
    t.raw_set(
        "decode",
        lua.create_function(move |lua, text: mlua::LuaString| {
            let depth = c.lock().decode_max_depth;
            let bytes = text.as_bytes();
            let mut de = serde_json::Deserializer::from_slice(&bytes);
            let v = LuaSeed {
                lua,
                depth: 0,
                max: depth,
            }
            .deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v))
            .map_err(|e| mlua::Error::runtime(format!("Expected JSON: {e}")))?;
            Ok(v)
        })?,
    )?;
    let setting = |f: fn(&mut Config, Option<f64>) -> f64| {
        let c = config.clone();
        lua.create_function(move |_, v: Option<Value>| {
            let n = match v {
                Some(Value::Boolean(b)) => Some(if b { 1.0 } else { 0.0 }),
                Some(Value::Integer(n)) => Some(n as f64),
                Some(Value::Number(n)) => Some(n),
                _ => None,
            };
            Ok(f(&mut c.lock(), n))
        })
    };
    t.raw_set(
        "encode_max_depth",
        setting(|c, n| {
            if let Some(n) = n.filter(|n| *n >= 1.0) {
                c.encode_max_depth = n as usize;
            }
            c.encode_max_depth as f64
        })?,
    )?;
    t.raw_set(
        "decode_max_depth",
        setting(|c, n| {
            if let Some(n) = n.filter(|n| *n >= 1.0) {
                c.decode_max_depth = n as usize;
            }
            c.decode_max_depth as f64
        })?,
    )?;
    t.raw_set(
        "encode_number_precision",
        setting(|c, n| {
            if let Some(n) = n.filter(|n| (1.0..=14.0).contains(n)) {
                c.precision = n as usize;
            }
            c.precision as f64
        })?,
    )?;
    t.raw_set(
        "encode_invalid_numbers",
        setting(|c, n| {
            if let Some(n) = n {
                c.encode_invalid_numbers = n != 0.0;
            }
            f64::from(u8::from(c.encode_invalid_numbers))
        })?,
    )?;
    // Accepted for compatibility; they change nothing here.
    t.raw_set("encode_keep_buffer", setting(|_, _| 1.0)?)?;
    t.raw_set("decode_invalid_numbers", setting(|_, _| 1.0)?)?;
    let c = config.clone();
    t.raw_set(
        "encode_sparse_array",
        lua.create_function(
            move |_, (convert, ratio, safe): (Option<bool>, Option<f64>, Option<f64>)| {
                let mut c = c.lock();
                if let Some(convert) = convert {
                    c.sparse_convert = convert;
                }
                if let Some(r) = ratio.filter(|r| *r >= 0.0) {
                    c.sparse_ratio = r as usize;
                }
                if let Some(s) = safe.filter(|s| *s >= 0.0) {
                    c.sparse_safe = s as usize;
                }
                Ok((
                    c.sparse_convert,
                    c.sparse_ratio as f64,
                    c.sparse_safe as f64,
                ))
            },
        )?,
    )?;
    // `cjson.new()` gives an independent module in lua-cjson; one shared module here.
    let module = t.clone();
    t.raw_set("new", lua.create_function(move |_, ()| Ok(module.clone()))?)?;
    Ok(t)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) | Value::UserData(_) | Value::Error(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

fn refuse(v: &Value, why: &str) -> mlua::Error {
    mlua::Error::runtime(format!("Cannot serialise {}: {why}", type_name(v)))
}

fn encode(v: &Value, cfg: &Config, depth: usize, out: &mut Vec<u8>) -> Result<()> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(n) => number(*n as f64, v, cfg, out)?,
        Value::Number(n) => number(*n, v, cfg, out)?,
        Value::String(s) => string(&s.as_bytes(), out),
        Value::Table(t) => {
            if depth + 1 > cfg.encode_max_depth {
                return Err(mlua::Error::runtime(format!(
                    "Cannot serialise, excessive nesting ({})",
                    depth + 1
                )));
            }
            table(t, cfg, depth + 1, out)?
        }
        other => return Err(refuse(other, "type not supported")),
    }
    Ok(())
}

fn number(n: f64, v: &Value, cfg: &Config, out: &mut Vec<u8>) -> Result<()> {
    if !n.is_finite() && !cfg.encode_invalid_numbers {
        return Err(refuse(v, "must not be NaN or Inf"));
    }
    out.extend_from_slice(format_g(n, cfg.precision).as_bytes());
    Ok(())
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\x08' => out.extend_from_slice(b"\\b"),
            b'\x0c' => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            c if c < 0x20 || c == 0x7f => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

/// The array length lua-cjson would use, `None` for an object.
fn array_length(t: &Table, cfg: &Config) -> Result<Option<usize>> {
    let (mut max, mut items) = (0usize, 0usize);
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let n = match k {
            Value::Integer(n) if n >= 1 => n as f64,
            Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => n,
            _ => return Ok(None),
        };
        max = max.max(n as usize);
        items += 1;
    }
    if cfg.sparse_ratio > 0 && max > items * cfg.sparse_ratio && max > cfg.sparse_safe {
        if !cfg.sparse_convert {
            return Err(refuse(&Value::Table(t.clone()), "excessively sparse array"));
        }
        return Ok(None);
    }
    Ok((max > 0).then_some(max))
}

fn table(t: &Table, cfg: &Config, depth: usize, out: &mut Vec<u8>) -> Result<()> {
    if let Some(len) = array_length(t, cfg)? {
        out.push(b'[');
        for i in 1..=len {
            if i > 1 {
                out.push(b',');
            }
            encode(&t.raw_get::<Value>(i)?, cfg, depth, out)?;
        }
        out.push(b']');
        return Ok(());
    }
    out.push(b'{');
    let mut first = true;
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        if !first {
            out.push(b',');
        }
        first = false;
        match &k {
            Value::String(s) => string(&s.as_bytes(), out),
            Value::Integer(n) => string(format_g(*n as f64, cfg.precision).as_bytes(), out),
            Value::Number(n) => string(format_g(*n, cfg.precision).as_bytes(), out),
            other => return Err(refuse(other, "table key must be a number or string")),
        }
        out.push(b':');
        encode(&v, cfg, depth, out)?;
    }
    out.push(b'}');
    Ok(())
}

/// C's `%.<precision>g`.
pub fn format_g(n: f64, precision: usize) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if n.is_infinite() {
        return if n < 0.0 { "-inf" } else { "inf" }.into();
    }
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let p = precision.max(1);
    let sci = format!("{:.*e}", p - 1, n);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= p as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{n:.decimals$}"))
    }
}

/// Builds Lua values straight from the JSON parser, so objects keep document order.
struct LuaSeed<'a> {
    lua: &'a Lua,
    depth: usize,
    max: usize,
}

impl<'de> DeserializeSeed<'de> for LuaSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl LuaSeed<'_> {
    fn nested<E: serde::de::Error>(&self) -> std::result::Result<LuaSeed<'_>, E> {
        if self.depth + 1 > self.max {
            return Err(E::custom(format!(
                "Found too many nested data structures ({})",
                self.depth + 1
            )));
        }
        Ok(LuaSeed {
            lua: self.lua,
            depth: self.depth + 1,
            max: self.max,
        })
    }
}

impl<'de> Visitor<'de> for LuaSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Value, E> {
        Ok(Value::NULL)
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> std::result::Result<Value, E> {
        Ok(Value::Boolean(b))
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> std::result::Result<Value, E> {
        Ok(Value::Number(n as f64))
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> std::result::Result<Value, E> {
        Ok(Value::Number(n as f64))
    }

    fn visit_f64<E: serde::de::Error>(self, n: f64) -> std::result::Result<Value, E> {
        Ok(Value::Number(n))
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> std::result::Result<Value, E> {
        self.lua
            .create_string(s)
            .map(Value::String)
            .map_err(E::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let seed = self.nested()?;
        let t = self.lua.create_table().map_err(serde::de::Error::custom)?;
        let mut i = 1;
        while let Some(v) = seq.next_element_seed(LuaSeed { ..seed })? {
            t.raw_set(i, v).map_err(serde::de::Error::custom)?;
            i += 1;
        }
        Ok(Value::Table(t))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let seed = self.nested()?;
        let t = self.lua.create_table().map_err(serde::de::Error::custom)?;
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(LuaSeed { ..seed })?;
            t.raw_set(k, v).map_err(serde::de::Error::custom)?;
        }
        Ok(Value::Table(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals().set("cjson", create(&lua).unwrap()).unwrap();
        lua
    }

    #[test]
    fn encodes_like_lua_cjson() {
        let lua = lua();
        let enc = |src: &str| lua.load(src).eval::<String>().unwrap();
        assert_eq!(enc("return cjson.encode({1,2,'a'})"), "[1,2,\"a\"]");
        assert_eq!(enc("return cjson.encode({})"), "{}");
        assert_eq!(enc("return cjson.encode({a='x/y'})"), "{\"a\":\"x\\/y\"}");
        assert_eq!(enc("return cjson.encode({[1]=1,[3]=3})"), "[1,null,3]");
        assert_eq!(enc("return cjson.encode(0.1)"), "0.1");
        assert_eq!(enc("return cjson.encode(1/3)"), "0.33333333333333");
        assert_eq!(enc("return cjson.encode(1e20)"), "1e+20");
        assert_eq!(enc("return cjson.encode(cjson.null)"), "null");
        assert_eq!(enc("return cjson.encode('\\1')"), "\"\\u0001\"");
        assert!(lua.load("return cjson.encode({[false]=1})").exec().is_err());
        assert!(lua.load("return cjson.encode({[100]=1})").exec().is_err());
        assert!(lua.load("return cjson.encode(0/0)").exec().is_err());
    }

    #[test]
    fn decodes_in_document_order() {
        let lua = lua();
        let s = |src: &str| lua.load(src).eval::<String>().unwrap();
        assert_eq!(
            s("return table.concat(cjson.decode('[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]'), ' ')"),
            "0 -5000 -1 0.0003 1023.2 0"
        );
        assert_eq!(
            s("local d = cjson.decode('{\"keya\": \"a\", \"keyb\": \"b\"}') return d.keya .. d.keyb"),
            "ab"
        );
        assert_eq!(
            s("return tostring(cjson.decode('[null]')[1] == cjson.null)"),
            "true"
        );
        assert!(lua.load("return cjson.decode('{')").exec().is_err());
    }

    #[test]
    fn format_g_is_printf() {
        assert_eq!(format_g(100.0, 14), "100");
        assert_eq!(format_g(1023.2, 14), "1023.2");
        assert_eq!(format_g(0.0003, 14), "0.0003");
        assert_eq!(format_g(0.00001, 14), "1e-05");
        assert_eq!(format_g(123456789012345.0, 14), "1.2345678901234e+14");
    }
}
