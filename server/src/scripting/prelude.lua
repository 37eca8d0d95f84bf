-- Conclave's Lua sandbox, run once per VM (chunk name "=conclave"): the `redis` API,
-- Redis 7's pcall, the error handler of EVAL, and Redis 7's global protection.
--
-- Arguments from Rust: `native` (Rust helpers, `redis.call` among them: C functions, so
-- `return redis.call(...)` is no tail call and errors name the script's line), `ctx`
-- (per-run slots Rust fills while a script runs: `killed`), and `bit` and `cjson`.
-- Returns the runner (calls a script under the error handler) and the table that holds
-- the globals (Rust sets KEYS and ARGV there).
local native, ctx, bit, cjson = ...

local G = _G
local type, error, tostring, select = type, error, tostring, select
local base_next, base_pairs, base_ipairs, base_rawget = next, pairs, ipairs, rawget
local base_rawset, base_setmetatable, base_getmetatable = rawset, setmetatable, getmetatable
local base_pcall, base_xpcall, base_loadstring, base_load = pcall, xpcall, loadstring, load
local errmsg, where = native.errmsg, native.where
local rawget, next = base_rawget, base_next

-- What Redis 7 does not offer: files, the OS, modules, printing, the debugger,
-- function environments.
G.dofile, G.loadfile, G.print, G.require, G.module = nil, nil, nil, nil, nil
G.package, G.os, G.io, G.debug = nil, nil, nil, nil
G.getfenv, G.setfenv, G.newproxy = nil, nil, nil

local readonly = base_setmetatable({}, {__mode = 'k'})
local READONLY = 'Attempt to modify a readonly table'
local function ro_error() error(READONLY, 2) end

-- redis.* --------------------------------------------------------------------------
local WRONG_ARGS = 'ERR wrong number or type of arguments'

local redis = {
    call = native.call,
    pcall = native.pcall,
    sha1hex = function(...)
        if select('#', ...) ~= 1 then error({err = 'ERR wrong number of arguments'}) end
        return native.sha1hex((...))
    end,
    error_reply = function(...)
        local e = ...
        if select('#', ...) ~= 1 or type(e) ~= 'string' then return {err = WRONG_ARGS} end
        if e:sub(1, 1) ~= '-' then e = '-' .. e end
        return {err = native.error_text(e)}
    end,
    status_reply = function(...)
        local s = ...
        if select('#', ...) ~= 1 or type(s) ~= 'string' then return {err = WRONG_ARGS} end
        return {ok = s}
    end,
    log = native.log,
    LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
    setresp = native.setresp,
    -- Effects replication is the only mode since Redis 7: these are no-ops there too.
    set_repl = function(...)
        if select('#', ...) ~= 1 then error({err = 'ERR redis.set_repl() requires one argument.'}) end
    end,
    replicate_commands = function() return true end,
    REPL_NONE = 0, REPL_AOF = 1, REPL_SLAVE = 2, REPL_REPLICA = 2, REPL_ALL = 3,
    breakpoint = function() return false end,
    debug = function() end,
    REDIS_VERSION = native.version,
    REDIS_VERSION_NUM = native.version_num,
}
G.redis = redis
G.bit = bit
G.cjson = cjson

-- Redis 7's pcall: an error table becomes its message; a killed script stays killed.
local function pcall_result(ok, ...)
    if ok then return ok, ... end
    local e = ...
    if ctx.killed and ctx.killed() then error(e, 0) end
    if type(e) == 'table' then
        local m = rawget(e, 'err')
        if type(m) == 'string' or type(m) == 'number' then e = m end
    elseif type(e) == 'userdata' then
        e = errmsg(e)
    end
    return false, e
end
G.pcall = function(...) return pcall_result(base_pcall(...)) end

local function xpcall_result(ok, ...)
    if not ok and ctx.killed and ctx.killed() then error((...), 0) end
    return ok, ...
end
G.xpcall = function(f, h) return xpcall_result(base_xpcall(f, h)) end

-- No bytecode: crafted bytecode can break out of the Lua 5.1 VM.
G.loadstring = function(s, name)
    if type(s) == 'string' and s:byte(1) == 27 then
        return nil, 'binary chunks are not allowed'
    end
    return base_loadstring(s, name)
end
G.load = function(f, name)
    local first = true
    return base_load(function()
        local piece = f()
        if first and type(piece) == 'string' and #piece > 0 then
            first = false
            if piece:byte(1) == 27 then error('binary chunks are not allowed', 0) end
        end
        return piece
    end, name)
end

-- Read-only tables (below) keep their contents in a hidden table: these see through.
local backing_of = base_setmetatable({}, {__mode = 'k'})
G.rawset = function(t, k, v)
    if readonly[t] then error(READONLY, 0) end
    return base_rawset(t, k, v)
end
G.setmetatable = function(t, mt)
    if readonly[t] then error(READONLY, 0) end
    return base_setmetatable(t, mt)
end
G.rawget = function(t, k)
    local b = backing_of[t]
    if b then return base_rawget(b, k) end
    return base_rawget(t, k)
end
G.next = function(t, k)
    local b = backing_of[t]
    if b then return base_next(b, k) end
    return base_next(t, k)
end
G.pairs = function(t)
    local b = backing_of[t]
    if b then return function(_, k) return base_next(b, k) end, t, nil end
    return base_pairs(t)
end
G.ipairs = function(t)
    local b = backing_of[t]
    if b then
        return function(_, i)
            i = i + 1
            local v = base_rawget(b, i)
            if v ~= nil then return i, v end
        end, t, 0
    end
    return base_ipairs(t)
end

-- The handler EVAL runs scripts under: every error becomes {err=..., source=..., line=...}
-- naming the script's line (Redis's __redis__err__handler).
local function handler(err)
    if type(err) == 'userdata' then
        err = {err = errmsg(err)}
    elseif type(err) ~= 'table' then
        err = {err = 'ERR ' .. tostring(err)}
    else
        local m = rawget(err, 'err')
        err = {err = m ~= nil and tostring(m) or 'ERR unknown error'}
    end
    local source, line = where()
    if source then
        err.source = source
        err.line = line
    end
    return err
end

local function run(f) return base_xpcall(f, handler) end

-- Global protection (Redis 7): the globals and every library table become read-only.
-- A protected table keeps its identity but holds nothing itself: reads go to a hidden
-- copy, writes fail with Redis's error, and its metatable cannot be reached.
local function sealed_view()
    local v = {}
    base_setmetatable(v, {__newindex = ro_error, __metatable = false})
    readonly[v] = true
    return v
end

local function protect(t)
    local backing = {}
    for k, v in next, t do backing[k] = v end
    for k in next, backing do base_rawset(t, k, nil) end
    local mt = {__index = backing, __newindex = ro_error, __metatable = sealed_view()}
    base_setmetatable(t, mt)
    readonly[t] = true
    backing_of[t] = backing
    return backing, mt
end

local function missing_global(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end

for _, name in ipairs({'string', 'table', 'math', 'coroutine', 'redis', 'bit', 'cjson'}) do
    protect(G[name])
end
-- String methods keep working through the protected `string`; its metatable is sealed.
local string_mt = base_getmetatable('')
string_mt.__metatable = sealed_view()

local globals, globals_mt = protect(G)
base_setmetatable(globals, {__index = missing_global})

-- FUNCTION LOAD's environment (Redis's library API): while a library's body runs, the
-- globals show only `redis` with `register_function`, `log` and the version; anything
-- else is a nonexistent global. Functions it registers keep the ordinary globals.
local load_redis = {
    register_function = native.register_function,
    log = native.log,
    LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
    REDIS_VERSION = native.version,
    REDIS_VERSION_NUM = native.version_num,
}
local load_redis_backing = protect(load_redis)
base_setmetatable(load_redis_backing, {__index = missing_global})
local load_globals = protect({redis = load_redis})
base_setmetatable(load_globals, {__index = missing_global})

-- Runs a library's body with the library API as its globals.
local function load_library(f)
    globals_mt.__index = load_globals
    local ok, err = base_xpcall(f, handler)
    globals_mt.__index = globals
    return ok, err
end

-- Calls a registered function with its keys and arguments (FCALL).
local function call_function(f, keys, args)
    return base_xpcall(function() return f(keys, args) end, handler)
end

return run, globals, load_library, call_function
