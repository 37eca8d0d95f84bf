#!/usr/bin/env bash
# Runs units of Redis's own Tcl suite against a fresh Conclave node (issue 9). A test that raises
# an exception
# (it aborts the unit) is recorded and skipped, and the unit rerun, until it completes.
# Prints per unit: ok / err / exceptions (tests skipped after raising one).
# Usage: SUITE=<redis-7.0.15 source dir> scripts/redis-tcl-suite.sh target/debug/conclave type/string ...
# The suite is Redis's public tests/ directory (tag 7.0.15, the redis-server this machine has),
# unpatched. Results go to /tmp/redis-tcl-*.log.
# PORT (default 21999) is the node's client port (PORT+1 its cluster port); BASEPORT, if set,
# moves the harness's own ports (default 21111) so runs side by side do not collide.
# Units acl, acl-v2 and auth tag every server block `external:skip`; to run the blocks that
# need no config file (acl and acl-v2: the first; auth: the first three; not the replica one)
# against an external node, drop `external:skip` from those blocks' tags first.
set -uo pipefail
BIN=$1; shift
PORT=${PORT:-21999}
TAGS=${TAGS:--needs:repl -needs:debug -needs:save -needs:pfdebug}
# A test name as a --skiptest regexp matching every value of its variables.
as_regexp() {
  python3 -c 'import re, sys; print("/^" + re.sub(r"\\\$\w+", ".*", re.escape(sys.argv[1])) + "$")' "$1"
}
for unit in "$@"; do
  skips=(); exc_names=()
  for attempt in $(seq 1 40); do
    d=$(mktemp -d)
    "$BIN" --port $PORT --metrics-port 0 --cluster-port $((PORT+1)) --data-dir "$d" >"$d/node.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 50); do redis-cli -p $PORT ping >/dev/null 2>&1 && break; sleep 0.1; done
    log=/tmp/redis-tcl-$(echo "$unit" | tr / _).log
    args=()
    for s in "${skips[@]}"; do args+=(--skiptest "$s"); done
    (cd ${SUITE:?set SUITE to a Redis 7.0.15 source directory} && timeout 600 ./runtest --host 127.0.0.1 --port $PORT --singledb --single "unit/$unit" --clients 1 --timeout 60 --tags "$TAGS" ${BASEPORT:+--baseport $BASEPORT} "${args[@]}" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >"$log")
    kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$d"
    if grep -q "^\[exception\]" "$log"; then
      name=$(sed -n '/^\[exception\]/,$p' "$log" | grep -m1 -oP '^"test (\{|")\K[^}"]*')
      [ -z "$name" ] && break
      exc_names+=("$name")
      # A name built from a variable (`SSCAN with encoding $enc`) is skipped as a regexp
      # (`/^SSCAN with encoding .*$`), else the rerun raises the same exception again.
      [[ "$name" == *'$'* ]] && name=$(as_regexp "$name")
      skips+=("$name")
      continue
    fi
    break
  done
  ok=$(grep -c "^\[ok\]" "$log"); err=$(grep -c "^\[err\]" "$log")
  echo "$unit ok=$ok err=$err exception=${#exc_names[@]}"
  printf '%s\n' "${exc_names[@]}" | sort | uniq -c | sed 's/^ *\([0-9]*\) /   exception (x\1): /' | grep -v '^   exception (x[0-9]*): $'
  grep "^\[err\]" "$log" | sed 's/^/   /' | head -40
done
