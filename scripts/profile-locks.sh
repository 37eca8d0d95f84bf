#!/usr/bin/env bash
# Starts a 3-node release cluster, runs conclave-bench locks (50 clients over all nodes),
# perf-records the leader meanwhile. Usage: scripts/profile-locks.sh <label> [secs] (PERF=0: no
# profile). Needs perf, redis-cli and a release build; writes bench-out/profile-<label>.*
set -euo pipefail
mkdir -p "$(dirname "$0")/../bench-out"
cd "$(dirname "$0")/.."
label=$1; secs=${2:-10}
BIN=target/release/conclave; BENCH=target/release/conclave-bench
BASE=7501
work=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
peers="1@127.0.0.1:$((BASE + 10000)),2@127.0.0.1:$((BASE + 10001)),3@127.0.0.1:$((BASE + 10002))"
for i in 1 2 3; do
  "$BIN" --id "$i" ${THREADS:+--threads "$THREADS"} --port $((BASE + i - 1)) --cluster-port $((BASE + 10000 + i - 1)) --metrics-port 0 \
    --data-dir "$work/n$i" --peers "$peers" >"$work/n$i.log" 2>&1 &
  pids+=($!)
done
leader=""; lpid=""
for _ in $(seq 1 100); do
  for i in 1 2 3; do
    role=$(redis-cli -p $((BASE + i - 1)) info raft 2>/dev/null | tr -d '\r' | awk -F: '$1=="raft_role"{print $2}')
    if [ "$role" = leader ]; then leader=$((BASE + i - 1)); lpid=${pids[$((i-1))]}; fi
  done
  [ -n "$leader" ] && break
  sleep 0.1
done
all="$BASE,$((BASE + 1)),$((BASE + 2))"
"$BENCH" locks --ports "$all" -c 50 -r 100000 -d 3 >/dev/null 2>&1 || true
if [ "${PERF:-1}" = 1 ]; then
  perf record -F 999 -g -p "$lpid" -o bench-out/profile-$label.data -- sleep $((secs - 1)) >/dev/null 2>&1 &
  perfpid=$!
fi
"$BENCH" locks --ports "$all" -c 50 -r 100000 -d "$secs" 2>/dev/null | tee bench-out/profile-$label.bench
[ "${PERF:-1}" = 1 ] && wait $perfpid || true
"$BENCH" locks --ports "$leader" -c 1 -r 100000 -d 5 2>/dev/null | tee -a bench-out/profile-$label.bench
