#!/usr/bin/env bash
# redis-py's own test suite (tests/test_commands.py and tests/test_lock.py of the
# released redis-py) against a fresh one-node Conclave built from this tree, in RESP2
# and then RESP3. Tests that need what Conclave does not offer (lists, sets, sorted
# sets, hashes, streams, geo, hyperloglog, ACL users, a second database, a replica)
# are listed with their reason in scripts/redis-py-suite/exclusions.txt and reported
# as "excluded" (not run); tests marked onlycluster or redismod are deselected.
# Tests the suite gates on a newer server (redis_version > 7.2.0) are its own skips.
# Prints, per protocol, the closing line "conclave: N passed, N failed, N skipped".
#
#   scripts/redis-py-suite.sh                 # both protocols, debug build
#   PROTOCOLS=3 scripts/redis-py-suite.sh     # RESP3 only
#   K='bitfield or dump' scripts/redis-py-suite.sh   # a pytest -k filter
#   PORT=6379 scripts/redis-py-suite.sh       # also runs the two tests that hard-code
#                                             # localhost:6379 (the port must be free)
#
# What it does (by hand, the same steps):
#   1. pip download redis==$REDISPY_VERSION --no-binary :all: --no-deps
#      (the sdist carries tests/, conftest.py and the pytest settings in pyproject.toml)
#      and unpack it in $WORK; pytest imports redis from that tree, so client and
#      tests are the same release.
#   2. python3 -m venv $WORK/venv; pip install pytest pytest-asyncio pytest-timeout packaging
#   3. cargo build -p conclave; conclave --port $PORT --cluster-port <free> --metrics-port 0
#      --data-dir <tmp> (killed by pid at exit)
#   4. cd $WORK/redis-$REDISPY_VERSION && python -m pytest tests/test_commands.py
#      tests/test_lock.py --redis-url=redis://127.0.0.1:$PORT --protocol=<2|3>
#      -m 'not onlycluster and not redismod' -p no:cacheprovider
#      -p conclave_exclusions (PYTHONPATH=scripts/redis-py-suite)
# Exit status: 0 when no test failed in any protocol.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
REDISPY_VERSION=${REDISPY_VERSION:-8.1.0}
WORK=${WORK:-/tmp/conclave-redis-py}
PROTOCOLS=${PROTOCOLS:-"2 3"}
K=${K:-}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

free_port() { # [first port to try]
  python3 -c 'import socket, sys
for p in range(int(sys.argv[1]), 40000, 7):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass
    finally: s.close()' "${1:-21379}"
}
PORT=${PORT:-$(free_port)}
CLUSTER_PORT=$(free_port 31379) # not PORT+10000: PORT=6379 must not need 16379

mkdir -p "$WORK"
SRC="$WORK/redis-$REDISPY_VERSION"
if [ ! -f "$SRC/tests/test_commands.py" ]; then
  python3 -m pip download "redis==$REDISPY_VERSION" --no-binary :all: --no-deps -d "$WORK" -q
  tar -xzf "$WORK/redis-$REDISPY_VERSION.tar.gz" -C "$WORK"
fi
if [ ! -x "$WORK/venv/bin/python" ]; then
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install -q pytest pytest-asyncio pytest-timeout packaging
fi

cargo build -q -p conclave
data=$(mktemp -d)
"$TARGET_DIR/debug/conclave" --port "$PORT" --cluster-port "$CLUSTER_PORT" --metrics-port 0 \
  --data-dir "$data/node" >"$data/node.log" 2>&1 &
node_pid=$!
trap 'kill "$node_pid" 2>/dev/null; wait "$node_pid" 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" 2>/dev/null && break
  sleep 0.1
done

status=0
for proto in $PROTOCOLS; do
  echo "== RESP$proto: redis-py $REDISPY_VERSION against conclave on 127.0.0.1:$PORT"
  args=(tests/test_commands.py tests/test_lock.py
    "--redis-url=redis://127.0.0.1:$PORT" "--protocol=$proto"
    -m 'not onlycluster and not redismod' -p no:cacheprovider -p conclave_exclusions
    -q -rfE --tb=short -W ignore::pytest.PytestConfigWarning)
  [ -n "$K" ] && args+=(-k "$K")
  (cd "$SRC" && COLUMNS=250 PYTHONPATH="$REPO/scripts/redis-py-suite" \
    "$WORK/venv/bin/python" -m pytest "${args[@]}") >"$WORK/resp$proto.log" 2>&1 || status=1
  grep -E '^(FAILED|ERROR) ' "$WORK/resp$proto.log" || true
  awk '/^=+ conclave =+$/ {on=1; next} /^=+ / {on=0} on' "$WORK/resp$proto.log"
  echo "(full log: $WORK/resp$proto.log)"
done
exit $status
