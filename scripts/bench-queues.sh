#!/usr/bin/env bash
# Queue-service figures (issue 10): a 3-node Conclave cluster on loopback (3 replicas, fsync
# on) side by side, in the same run, with redis-server doing the same load on Redis Streams
# (XADD / XREADGROUP / XACK) twice: `appendonly yes appendfsync always` (the same durability
# on one node, without replication) and no persistence at all.
# Prints markdown (also written to bench-out/queues.md).
#
#   scripts/bench-queues.sh                 # DURATION=10 TRIALS=5
#
# Scenarios (conclave-bench queue): 1 KB messages from 50 producers (push only); 100-byte
# messages, 50 producers pipelining 16 each; end-to-end push → read → ack with 10 producers
# and 10 consumers (1 KB); one producer (push latency). Then the failover of one shard:
# SIGKILL of its leader → first successful push to a topic on it (conclave-bench failover
# --queue-topic), TRIALS trials, median.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
TRIALS=${TRIALS:-5}
BASE=${BASE:-7501}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
THREADS=${THREADS:-$(( $(nproc) / 3 > 0 ? $(nproc) / 3 : 1 ))}
command -v redis-server >/dev/null || { echo "bench-queues.sh needs redis-server: apt-get install redis-server" >&2; exit 1; }
cargo build --release -q -p conclave -p conclave-benches
BIN="$TARGET_DIR/release/conclave"
BENCH="$TARGET_DIR/release/conclave-bench"
mkdir -p bench-out

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

peers="1@127.0.0.1:$((BASE + 10000)),2@127.0.0.1:$((BASE + 10001)),3@127.0.0.1:$((BASE + 10002))"
for i in 1 2 3; do
  "$BIN" --id "$i" --port $((BASE + i - 1)) --cluster-port $((BASE + 10000 + i - 1)) \
    --metrics-port 0 --data-dir "$work/n$i" --peers "$peers" --threads "$THREADS" >"$work/n$i.log" 2>&1 &
  pids+=($!)
done
RA=$((BASE + 20)); RN=$((BASE + 21))
redis-server --port "$RA" --dir "$work" --appendonly yes --appendfsync always --save '' \
  --appendfilename ra.aof --dbfilename ra.rdb >"$work/ra.log" 2>&1 &
pids+=($!)
redis-server --port "$RN" --dir "$work" --appendonly no --save '' >"$work/rn.log" 2>&1 &
pids+=($!)
all="$BASE,$((BASE + 1)),$((BASE + 2))"
# Ready: every shard has a leader (a push to a topic of each shard succeeds).
for _ in $(seq 1 200); do
  ok=1
  for t in $(seq 0 31); do redis-cli -p "$BASE" Q.PUSH "warm-$t" x 2>/dev/null | grep -q -- '-' || { ok=0; break; }; done
  [ $ok = 1 ] && break
  sleep 0.2
done
for p in "$RA" "$RN"; do until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.1; done; done

run() { # name, then conclave-bench queue flags
  local name=$1; shift
  local prefix; prefix="$name-$(date +%s%N)"
  echo; echo "### $name"; echo; echo '```'
  echo "# conclave, 3 nodes, 3 replicas, fsync on"
  "$BENCH" -q queue --ports "$all" --prefix "c-$prefix" -d "$DURATION" "$@"
  echo "# redis-server XADD, appendonly yes appendfsync always"
  "$BENCH" -q queue --ports "$RA" --target redis --prefix "a-$prefix" -d "$DURATION" "$@"
  echo "# redis-server XADD, no persistence"
  "$BENCH" -q queue --ports "$RN" --target redis --prefix "n-$prefix" -d "$DURATION" "$@"
  echo '```'
}

{
  echo "## Queues — $(date -u +%F), $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  run "1 KB, 50 producers" -p 50 -s 1024
  run "100 B, 50 producers pipelining 16" -p 50 -s 100 -P 16
  run "end-to-end, 10 producers + 10 consumers, 1 KB" -p 10 -c 10 -s 1024
  run "one producer, 1 KB" -p 1 -s 1024
  echo; echo "### failover of one shard (SIGKILL of its leader → first push)"; echo; echo '```'
  "$BENCH" failover --binary "$BIN" --trials "$TRIALS" --base-port $((BASE + 40)) \
    --queue-topic failover-topic -- --threads "$THREADS"
  echo '```'
} | tee bench-out/queues.md
