//! The Lua engine's side of Redis 7 functions: compiling a library (running its body
//! with the library API under `FUNCTION LOAD`'s 500 ms timeout, Redis's
//! `luaEngineCreate`), mirroring the meta group's library set, and calling a function
//! (`FCALL`, Redis's `luaEngineCall`: keys and arguments are the callback's two
//! arguments, not globals).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use conclave_cluster::meta::functions::{FunctionSet, NewLibrary, StoredLibrary};
use conclave_protocol::Frame;
use mlua::chunk::ChunkMode;
use mlua::{HookTriggers, MultiValue, Value, VmState};

use super::busy::Run;
use super::call::Caller;
use super::library::{self, FunctionDef, Library, NO_WRITES};
use super::lua_vm::{Engine, Target};

/// How long a library's body may run under `FUNCTION LOAD` (Redis's `LOAD_TIMEOUT_MS`).
pub const LOAD_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a library's body may run when it was already accepted elsewhere (restored
/// from a payload, or mirrored from the replicated set; Redis sets no limit there): a
/// bound so a body that never ends cannot hold every node's engine forever.
pub const REPLAY_TIMEOUT: Duration = Duration::from_secs(5);

impl Engine {
    /// Compiles `code` and runs its body to collect its functions; Redis's error text
    /// (without `ERR `) when the metadata, the engine, the code or the registration is
    /// wrong, the body runs past `timeout`, or it registers nothing. Nothing is kept.
    pub fn compile_library(
        &self,
        code: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Library, String> {
        let md = library::metadata(code)?;
        if !library::valid_name(&md.name) {
            return Err(library::BAD_NAME.into());
        }
        if !md.engine.eq_ignore_ascii_case("lua") {
            return Err(format!("Engine '{}' not found", md.engine));
        }
        let text = std::str::from_utf8(code)
            .map_err(|_| "Error compiling function: the library is not UTF-8".to_string())?;
        let chunk = self
            .lua
            .load(&code[md.body_at..])
            .set_name("@user_function")
            .set_mode(ChunkMode::Text)
            .into_function()
            .map_err(|e| {
                let msg = match &e {
                    mlua::Error::SyntaxError { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                format!("Error compiling function: {msg}")
            })?;
        *self.load_slot.lock() = Some(Vec::new());
        let started = Instant::now();
        if let Some(limit) = timeout {
            let hook = self.lua.set_hook(
                HookTriggers::new().every_nth_instruction(100_000),
                move |_, _| {
                    if started.elapsed() > limit {
                        return Err(mlua::Error::runtime("ERR FUNCTION LOAD timeout"));
                    }
                    Ok(VmState::Continue)
                },
            );
            if let Err(e) = hook {
                *self.load_slot.lock() = None;
                return Err(format!("Error registering functions: {e}"));
            }
        }
        let out = self.load_runner.call::<MultiValue>(chunk);
        self.lua.remove_hook();
        let registered = self.load_slot.lock().take().unwrap_or_default();
        let out = out.map_err(|e| format!("Error registering functions: ERR {e}"))?;
        let mut values = out.into_iter();
        if !matches!(values.next(), Some(Value::Boolean(true))) {
            let msg = match values.next() {
                Some(Value::Table(t)) => match t.raw_get::<Value>("err") {
                    Ok(Value::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
                    _ => "ERR unknown error".into(),
                },
                _ => "ERR unknown error".into(),
            };
            return Err(format!("Error registering functions: {msg}"));
        }
        if registered.is_empty() {
            return Err("No functions registered".into());
        }
        Ok(Library {
            name: md.name,
            code: text.to_string(),
            functions: registered,
        })
    }

    /// Makes the engine's libraries those of `set` (compiling the ones it lacks or
    /// holds with other code); nothing to do when it mirrors `set`'s version already.
    /// A library that no longer compiles here is left out and logged.
    pub fn mirror(&mut self, set: &FunctionSet) {
        if self.functions_version == Some(set.version()) {
            return;
        }
        let mut next = std::collections::BTreeMap::new();
        for (name, stored) in set.libraries() {
            match self.libraries.remove(name) {
                Some(lib) if lib.code == stored.code => {
                    next.insert(name.clone(), lib);
                }
                _ => match self.compile_library(stored.code.as_bytes(), Some(REPLAY_TIMEOUT)) {
                    Ok(lib) => {
                        next.insert(name.clone(), lib);
                    }
                    Err(e) => {
                        tracing::warn!(library = %name, error = %e, "function library does not load")
                    }
                },
            }
        }
        self.libraries = next;
        self.functions_version = Some(set.version());
    }

    /// The engine's libraries, by name.
    pub fn libraries(&self) -> &std::collections::BTreeMap<String, Library> {
        &self.libraries
    }

    /// The function named `name` (without case, as Redis's function dict).
    pub fn function(&self, name: &[u8]) -> Option<&FunctionDef> {
        self.libraries
            .values()
            .flat_map(|l| l.functions.iter())
            .find(|f| f.name.as_bytes().eq_ignore_ascii_case(name))
    }

    /// Runs function `def` (`FCALL`/`FCALL_RO`; `read_only` for `FCALL_RO`), the
    /// caller holding the keyspace exclusive.
    pub fn call_function(
        &self,
        def: &FunctionDef,
        keys: &[Bytes],
        args: &[Bytes],
        read_only: bool,
        caller: &mut Caller<'_>,
        run: &Arc<Run>,
    ) -> Frame {
        let no_writes = def.flags & NO_WRITES != 0;
        if read_only && !no_writes {
            return Frame::error(
                "ERR Can not execute a script with write flag using *_ro command.",
            );
        }
        caller.read_only = read_only || no_writes;
        let target = Target::Function(&def.func);
        match self.invoke(target, keys, args, &def.name, caller, run) {
            Ok(reply) => reply,
            Err(e) => Frame::error(format!("ERR Error running script {}, {e}", def.name)),
        }
    }
}

impl Library {
    /// The library as the meta group stores it.
    pub fn to_new(&self) -> NewLibrary {
        NewLibrary {
            name: self.name.clone(),
            library: StoredLibrary {
                code: self.code.clone(),
                functions: self.functions.iter().map(|f| f.name.clone()).collect(),
            },
        }
    }
}
