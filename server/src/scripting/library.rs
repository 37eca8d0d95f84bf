//! A Redis 7 function library as the Lua engine holds it, and what `FUNCTION LOAD` reads
//! of one: the `#!lua name=<lib>` metadata line (Redis's `functionExtractLibMetaData`)
//! and the calls to `redis.register_function` its body makes (`function_lua.c`:
//! positional `(name, callback)` or named `{function_name=, callback=, flags=,
//! description=}`), with Redis's error texts.

use std::sync::Arc;

use mlua::{Function, Lua, MultiValue, Table, Value};
use parking_lot::Mutex;

/// Function flags (`scripts_flags_def`, in Redis's order, which `FUNCTION LIST` keeps).
pub const FLAG_NAMES: [&str; 5] = [
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];
/// `no-writes`: the function may run through `FCALL_RO` and never writes.
pub const NO_WRITES: u8 = 1;
/// `allow-oom`: runs while memory is full.
pub const ALLOW_OOM: u8 = 2;

/// Redis's rule for library and function names.
pub const BAD_NAME: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// One registered function.
#[derive(Debug, Clone)]
pub struct FunctionDef {
    /// Its name as registered.
    pub name: String,
    /// `description`, if given.
    pub description: Option<String>,
    /// Bits of [`FLAG_NAMES`] (bit `i` is `FLAG_NAMES[i]`).
    pub flags: u8,
    /// The callback.
    pub func: Function,
}

/// A loaded library.
#[derive(Debug, Clone)]
pub struct Library {
    /// Its name (from the metadata line).
    pub name: String,
    /// The whole `FUNCTION LOAD` payload.
    pub code: String,
    /// Its functions, in registration order.
    pub functions: Vec<FunctionDef>,
}

/// What the metadata line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The engine named after `#!` (`lua`; compared without case).
    pub engine: String,
    /// The library's name.
    pub name: String,
    /// Where the body starts: at the line feed ending the metadata (kept, so line
    /// numbers match the payload's).
    pub body_at: usize,
}

/// Reads the metadata line (`#!<engine> name=<lib>`; arguments split like
/// `sdssplitargs`, so `name="foo"` names `foo`). Errors are Redis's texts.
pub fn metadata(code: &[u8]) -> Result<Metadata, String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&c| c == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let parts = conclave_protocol::codec::split_inline(&code[..end])
        .map_err(|_| "Invalid library metadata".to_string())?;
    let Some(first) = parts.first() else {
        return Err("Invalid library metadata".into());
    };
    let engine = String::from_utf8_lossy(first.get(2..).unwrap_or_default()).into_owned();
    let mut name = None;
    for part in &parts[1..] {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(
                    "Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(String::from_utf8_lossy(&part[5..]).into_owned());
            continue;
        }
        return Err(format!(
            "Invalid metadata value given: {}",
            String::from_utf8_lossy(part)
        ));
    }
    let name = name.ok_or_else(|| "Library name was not given".to_string())?;
    Ok(Metadata {
        engine,
        name,
        body_at: end,
    })
}

/// Whether `name` is a valid library or function name (`[a-zA-Z0-9_]+`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Where `redis.register_function` puts what it registers: `Some` only while a
/// `FUNCTION LOAD` runs a library's body.
pub type LoadSlot = Arc<Mutex<Option<Vec<FunctionDef>>>>;

fn fail(msg: &str) -> mlua::Error {
    mlua::Error::runtime(format!("ERR {msg}"))
}

/// A Lua string or number as text (Redis's `luaGetStringSds`).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
        Value::Integer(_) | Value::Number(_) => v.to_string().ok(),
        _ => None,
    }
}

/// `redis.register_function(...)` (Redis's `luaRegisterFunction`).
pub fn register_function(slot: &LoadSlot, args: MultiValue) -> mlua::Result<()> {
    let mut guard = slot.lock();
    let Some(registered) = guard.as_mut() else {
        return Err(fail(
            "redis.register_function can only be called on FUNCTION LOAD command",
        ));
    };
    let def = match args.len() {
        1 => named_args(args.front())?,
        2 => {
            let mut it = args.into_iter();
            let name = it.next().unwrap_or(Value::Nil);
            let callback = it.next().unwrap_or(Value::Nil);
            let Some(name) = text(&name) else {
                return Err(fail(
                    "first argument to redis.register_function must be a string",
                ));
            };
            let Value::Function(func) = callback else {
                return Err(fail(
                    "second argument to redis.register_function must be a function",
                ));
            };
            FunctionDef {
                name,
                description: None,
                flags: 0,
                func,
            }
        }
        _ => return Err(fail("wrong number of arguments to redis.register_function")),
    };
    if !valid_name(&def.name) {
        return Err(fail(BAD_NAME));
    }
    if registered.iter().any(|f| f.name == def.name) {
        return Err(fail("Function already exists in the library"));
    }
    registered.push(def);
    Ok(())
}

fn named_args(arg: Option<&Value>) -> mlua::Result<FunctionDef> {
    let Some(Value::Table(t)) = arg else {
        return Err(fail("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments)."));
    };
    let (mut name, mut description, mut func, mut flags) = (None, None, None, 0u8);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, v) = pair?;
        let Some(key) = text(&k) else {
            return Err(fail(
                "named argument key given to redis.register_function is not a string",
            ));
        };
        match key.to_ascii_lowercase().as_str() {
            "function_name" => {
                name = Some(text(&v).ok_or_else(|| {
                    fail("function_name argument given to redis.register_function must be a string")
                })?)
            }
            "description" => {
                description = Some(text(&v).ok_or_else(|| {
                    fail("description argument given to redis.register_function must be a string")
                })?)
            }
            "callback" => match v {
                Value::Function(f) => func = Some(f),
                _ => {
                    return Err(fail(
                        "callback argument given to redis.register_function must be a function",
                    ))
                }
            },
            "flags" => {
                let Value::Table(list) = v else {
                    return Err(fail("flags argument to redis.register_function must be a table representing function flags"));
                };
                flags = read_flags(&list).ok_or_else(|| fail("unknown flag given"))?;
            }
            _ => return Err(fail("unknown argument given to redis.register_function")),
        }
    }
    let name =
        name.ok_or_else(|| fail("redis.register_function must get a function name argument"))?;
    let func = func.ok_or_else(|| fail("redis.register_function must get a callback argument"))?;
    Ok(FunctionDef {
        name,
        description,
        flags,
        func,
    })
}

/// The flags of a `flags={...}` list; `None` for an unknown one.
fn read_flags(list: &Table) -> Option<u8> {
    let mut flags = 0u8;
    for i in 1.. {
        let v: Value = list.raw_get(i).ok()?;
        if v.is_nil() {
            break;
        }
        let name = text(&v)?;
        let bit = FLAG_NAMES
            .iter()
            .position(|f| f.eq_ignore_ascii_case(&name))?;
        flags |= 1 << bit;
    }
    Some(flags)
}

/// Makes `redis.register_function` for the VM, writing into `slot`.
pub fn create_register(lua: &Lua, slot: LoadSlot) -> mlua::Result<Function> {
    lua.create_function(move |_, args: MultiValue| register_function(&slot, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_in_redis_order() {
        let m = metadata(b"#!lua name=mylib\nreturn").unwrap();
        assert_eq!(
            (m.engine.as_str(), m.name.as_str(), m.body_at),
            ("lua", "mylib", 16)
        );
        assert_eq!(metadata(b"#!lua name=\"foo\"\n").unwrap().name, "foo");
        assert_eq!(
            metadata(b"return 1").unwrap_err(),
            "Missing library metadata"
        );
        assert_eq!(
            metadata(b"#!lua name=x").unwrap_err(),
            "Invalid library metadata"
        );
        assert_eq!(metadata(b"#! name=test\n").unwrap().engine, "");
        assert_eq!(
            metadata(b"#!lua name=test foo=bar\n").unwrap_err(),
            "Invalid metadata value given: foo=bar"
        );
        assert_eq!(
            metadata(b"#!lua\n").unwrap_err(),
            "Library name was not given"
        );
        assert_eq!(
            metadata(b"#!lua name=foo name=bar\n").unwrap_err(),
            "Invalid metadata value, name argument was given multiple times"
        );
    }

    #[test]
    fn names() {
        assert!(valid_name("my_lib1"));
        assert!(!valid_name(""));
        assert!(!valid_name("bad\0name"));
        assert!(!valid_name("a-b"));
    }
}
