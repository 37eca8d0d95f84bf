#!/usr/bin/env bash
# Profiles one node of a release 3-node cluster (--threads 1 each) under conclave-bench queue
# (50 producers, 1 KB, push only): perf record -g of node 1 for 6 s, then each node's fsync
# count and how many shards node 1 leads. Needs perf, redis-cli and a release build.
# Usage: scripts/profile-queues.sh [perf.data path]   (then: perf report -i <path> --no-children)
set -euo pipefail
mkdir -p "$(dirname "$0")/../bench-out"
cd "$(dirname "$0")/.."
BIN=target/release/conclave; BENCH=target/release/conclave-bench
BASE=7601
work=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
peers="1@127.0.0.1:$((BASE + 10000)),2@127.0.0.1:$((BASE + 10001)),3@127.0.0.1:$((BASE + 10002))"
for i in 1 2 3; do
  "$BIN" --id "$i" --threads 1 --port $((BASE + i - 1)) --cluster-port $((BASE + 10000 + i - 1)) --metrics-port 0 \
    --data-dir "$work/n$i" --peers "$peers" >"$work/n$i.log" 2>&1 &
  pids+=($!)
done
sleep 4
all="$BASE,$((BASE + 1)),$((BASE + 2))"
"$BENCH" -q queue --ports "$all" -p 50 -s 1024 -d 3 --prefix warm >/dev/null 2>&1 || true
perf record -F 499 -g -p "${pids[0]}" -o "${1:-bench-out/profile-queues.data}" -- sleep 6 >/dev/null 2>&1 &
pp=$!
"$BENCH" -q queue --ports "$all" -p 50 -s 1024 -d 8 --prefix run | grep push
wait $pp || true
for i in 1 2 3; do redis-cli -p $((BASE + i - 1)) info raft | grep -E "fsync|raft_log" | head -3; done
redis-cli -p $BASE info queues | grep -E "led|replicated"
