#!/usr/bin/env bash
# The cluster-wide cache (contract 2.1, issue 11) against redis-server, same machine, same
# run (release build). Starts redis-server and a 3-node Conclave cluster on 127.0.0.1, then:
#
#  1. GET and SET on node 1 for keys node 1 already holds (a SET pass first makes it the
#     M holder of all KEYS1 keys), redis-benchmark -c 50 at pipeline 1 and 16, against the
#     same on redis-server; best of REPS, alternating;
#  2. the read-mostly workload: conclave-bench cache, 95% GET / 5% SET, Zipf 0.99 over
#     KEYS2 keys (prefilled), clients spread over the 3 nodes, DURATION s; the same clients
#     against the one redis-server;
#  3. the latency of a SET to a key all three nodes share (conclave-bench shared-write).
#
#   scripts/bench-cache-cluster.sh
#   N1=100000 N16=1000000 REPS=1 KEYS2=100000 DURATION=10 scripts/bench-cache-cluster.sh
#   PARTS=1 PIPELINES=16 scripts/bench-cache-cluster.sh   # part 1 at pipeline 16 only
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${N1:-200000}
N16=${N16:-2000000}
REPS=${REPS:-2}
KEYS1=${KEYS1:-10000}
KEYS2=${KEYS2:-1000000}
DURATION=${DURATION:-20}
CLIENTS=${CLIENTS:-50}
THREADS=${THREADS:-1}
PARTS=${PARTS:-1 2 3}
PIPELINES=${PIPELINES:-1 16}
REDIS_PORT=${REDIS_PORT:-6411}
BASE=${BASE:-6421}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

cargo build --release -q -p conclave -p conclave-benches --bin conclave --bin conclave-bench
BIN="$TARGET_DIR/release/conclave"
LOAD="$TARGET_DIR/release/conclave-bench"

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --save '' --appendonly no --bind 127.0.0.1 --dir "$work" >/dev/null &
pids+=($!)
P1=$BASE P2=$((BASE + 1)) P3=$((BASE + 2))
peers="1@127.0.0.1:$((P1 + 10000)),2@127.0.0.1:$((P2 + 10000)),3@127.0.0.1:$((P3 + 10000))"
for id in 1 2 3; do
  port=$((BASE + id - 1))
  "$BIN" --id "$id" --port "$port" --cluster-port $((port + 10000)) --metrics-port 0 \
    --threads "$THREADS" --peers "$peers" --data-dir "$work/n$id" >"$work/n$id.log" 2>&1 &
  pids+=($!)
done
for port in "$REDIS_PORT" "$P1" "$P2" "$P3"; do
  for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
# The homes grant nothing for a lease after start (they may have been homes before).
for _ in $(seq 1 100); do redis-cli -p "$P1" set warm 1 2>/dev/null | grep -q OK && break; sleep 0.2; done

part() { [[ " $PARTS " == *" $1 "* ]]; }

if part 1; then
echo "## 1. GET/SET on node 1 for keys it holds ($KEYS1 keys), vs redis-server"
# Node 1 takes every key M.
redis-benchmark -p "$P1" -c "$CLIENTS" -n $((KEYS1 * 20)) -t set -r "$KEYS1" -q >/dev/null 2>&1
run() {
  redis-benchmark -p "$1" -c "$CLIENTS" -n "$3" -P "$2" -t set,get -r "$KEYS1" --csv 2>/dev/null |
    tail -n +2 | tr -d '"' | awk -F, '{print $1, $2, $5, $7}'
}
declare -A best p50 p99
for P in $PIPELINES; do
  N=$N1; [ "$P" = 16 ] && N=$N16
  for rep in $(seq 1 "$REPS"); do
    for who in redis conclave; do
      port=$REDIS_PORT; [ "$who" = conclave ] && port=$P1
      while read -r test rps l50 l99; do
        k="$who|$P|$test"
        if [ -z "${best[$k]:-}" ] || awk "BEGIN{exit !($rps > ${best[$k]})}"; then
          best[$k]=$rps; p50[$k]=$l50; p99[$k]=$l99
        fi
      done < <(run "$port" "$P" "$N")
    done
  done
done
echo "| test | pipeline | Redis ops/s | Conclave node 1 ops/s | ratio | Redis p50/p99 ms | Conclave p50/p99 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for P in $PIPELINES; do
  for test in SET GET; do
    r="redis|$P|$test" c="conclave|$P|$test"
    ratio=$(awk "BEGIN{printf \"%.2f\", ${best[$c]} / ${best[$r]}}")
    echo "| $test | $P | ${best[$r]} | ${best[$c]} | $ratio | ${p50[$r]} / ${p99[$r]} | ${p50[$c]} / ${p99[$c]} |"
  done
done
echo
echo "node 1 CACHE.STATS after part 1:"
redis-cli -p "$P1" cache.stats | paste - - | tr '\t' ' ' | tr '\n' ';'
echo
fi

if part 2; then
echo "## 2. 95% GET / 5% SET, Zipf 0.99 over $KEYS2 keys, $DURATION s"
common=(--threads 4 --clients 12 --read-percent 95 --zipf 0.99 --key-maximum "$KEYS2" --duration "$DURATION" --prefill -q)
echo "### Conclave, 3 nodes, clients spread over them"
"$LOAD" cache --ports "$P1,$P2,$P3" "${common[@]}"
echo "### redis-server, the same clients"
"$LOAD" cache --port "$REDIS_PORT" "${common[@]}"

fi

if part 3; then
echo "## 3. SET to a key shared by all three nodes"
"$LOAD" shared-write --ports "$P1,$P2,$P3" --rounds 2000
fi
