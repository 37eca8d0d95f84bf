#!/usr/bin/env bash
# Raft log bytes per lock entry: a one-node Conclave, one client looping acquire/release
# (one request per log entry), then the size of the log segments over the entries written.
#
#   scripts/bench-log-bytes.sh [path/to/conclave [path/to/conclave-bench]]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-cli >/dev/null || { echo "needs redis-cli: apt-get install redis-tools" >&2; exit 1; }
BIN=${1:-target/release/conclave}
BENCH=${2:-target/release/conclave-bench}
[ $# -ge 1 ] || cargo build --release -q -p conclave -p conclave-benches
PORT=${PORT:-7601}
work=$(mktemp -d)
"$BIN" --port "$PORT" --data-dir "$work/d" >"$work/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
"$BENCH" locks --ports "$PORT" -c 1 -r 100000 -d "${DURATION:-5}" >/dev/null 2>&1
entries=$(redis-cli -p "$PORT" info raft | tr -d '\r' | awk -F: '$1=="raft_last_log_index"{print $2}')
bytes=$(cat "$work"/d/raft-log/*.seg | wc -c)
echo "entries $entries  segment bytes $bytes  bytes/entry $((bytes / entries))"
