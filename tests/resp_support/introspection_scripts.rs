//! Scripts of the comparison with Redis (format in [`super::parity`]) for what the last
//! Tcl-suite leftovers of issue 9 needed: Redis 7.0's key-spec flags of every keyspace
//! command in `COMMAND GETKEYSANDFLAGS` (and a subcommand's keys, `MEMORY USAGE`), and
//! the `CONFIG` parameters and errors the `introspection` unit checks.

/// `COMMAND GETKEYSANDFLAGS` / `GETKEYS` of every keyspace command Conclave has.
pub const KEY_SPECS: &str = r"
COMMAND GETKEYSANDFLAGS get k
COMMAND GETKEYSANDFLAGS set k v
COMMAND GETKEYSANDFLAGS set k v get
COMMAND GETKEYSANDFLAGS set k get
COMMAND GETKEYSANDFLAGS set k v nx
COMMAND GETKEYSANDFLAGS setnx k v
COMMAND GETKEYSANDFLAGS setex k 1 v
COMMAND GETKEYSANDFLAGS psetex k 1 v
COMMAND GETKEYSANDFLAGS getset k v
COMMAND GETKEYSANDFLAGS getdel k
COMMAND GETKEYSANDFLAGS getex k persist
COMMAND GETKEYSANDFLAGS getrange k 0 1
COMMAND GETKEYSANDFLAGS setrange k 0 v
COMMAND GETKEYSANDFLAGS mget a b
COMMAND GETKEYSANDFLAGS mset k1 v1 k2 v2
COMMAND GETKEYSANDFLAGS msetnx a 1 b 2
COMMAND GETKEYSANDFLAGS del a b
COMMAND GETKEYSANDFLAGS unlink a b
COMMAND GETKEYSANDFLAGS exists a b
COMMAND GETKEYSANDFLAGS type k
COMMAND GETKEYSANDFLAGS incr k
COMMAND GETKEYSANDFLAGS incrby k 1
COMMAND GETKEYSANDFLAGS incrbyfloat k 1
COMMAND GETKEYSANDFLAGS decr k
COMMAND GETKEYSANDFLAGS decrby k 1
COMMAND GETKEYSANDFLAGS append k v
COMMAND GETKEYSANDFLAGS strlen k
COMMAND GETKEYSANDFLAGS expire k 1
COMMAND GETKEYSANDFLAGS pexpire k 1
COMMAND GETKEYSANDFLAGS expireat k 1
COMMAND GETKEYSANDFLAGS pexpireat k 1
COMMAND GETKEYSANDFLAGS ttl k
COMMAND GETKEYSANDFLAGS pttl k
COMMAND GETKEYSANDFLAGS persist k
COMMAND GETKEYSANDFLAGS rename a b
COMMAND GETKEYSANDFLAGS renamenx a b
COMMAND GETKEYSANDFLAGS expiretime k
COMMAND GETKEYSANDFLAGS pexpiretime k
COMMAND GETKEYSANDFLAGS substr k 0 1
COMMAND GETKEYSANDFLAGS setbit k 1 1
COMMAND GETKEYSANDFLAGS getbit k 1
COMMAND GETKEYSANDFLAGS bitcount k
COMMAND GETKEYSANDFLAGS bitpos k 1
COMMAND GETKEYSANDFLAGS bitop and d a b
COMMAND GETKEYSANDFLAGS bitfield k get u8 0
COMMAND GETKEYSANDFLAGS bitfield k set u8 0 1
COMMAND GETKEYSANDFLAGS bitfield k incrby u8 0 1
COMMAND GETKEYSANDFLAGS bitfield_ro k get u8 0
COMMAND GETKEYSANDFLAGS lcs a b
COMMAND GETKEYSANDFLAGS copy a b
COMMAND GETKEYSANDFLAGS dump k
COMMAND GETKEYSANDFLAGS restore k 0 x
COMMAND GETKEYSANDFLAGS touch a b
COMMAND GETKEYSANDFLAGS watch a b
COMMAND GETKEYSANDFLAGS eval s 2 a b
COMMAND GETKEYSANDFLAGS evalsha_ro s 1 a
COMMAND GETKEYSANDFLAGS memory usage k
COMMAND GETKEYS memory usage key
COMMAND GETKEYS memory usage
COMMAND GETKEYS memory purge
";

/// `CONFIG` parameters and errors of the `introspection` unit (values that do not
/// depend on how the server was started).
pub const CONFIG: &str = r"
CONFIG GET daemonize
CONFIG SET daemonize yes
CONFIG SET daemonize no
CONFIG GET replicaof
CONFIG GET slaveof
CONFIG SET replicaof x
CONFIG GET maxmemory-clients
CONFIG SET maxmemory-clients 200%
CONFIG SET maxmemory-clients 0
CONFIG SET maxmemory-clients x
CONFIG GET client-query-buffer-limit
CONFIG SET client-query-buffer-limit 10
CONFIG SET client-query-buffer-limit x
CONFIG SET client-query-buffer-limit 10mb
CONFIG GET client-query-buffer-limit
CONFIG SET client-query-buffer-limit 1gb
CONFIG GET key-load-delay
CONFIG SET maxmemory 10000001 maxmemory-clients 200% client-query-buffer-limit invalid
CONFIG GET maxmemory
CONFIG SET maxmemory 10000002 maxmemory 10000003
CONFIG SET port 0x
CONFIG SET port 70000
CONFIG SET maxmemory 0
";
