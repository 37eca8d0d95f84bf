#!/usr/bin/env bash
# Lock-service figures for a 3-node Conclave cluster on loopback (fsync on), with etcd's
# `etcdctl check perf` on a 3-member etcd cluster on the same machine for reference.
# Prints markdown (also written to bench-out/locks.md).
#
#   scripts/bench-locks.sh              # DURATION=15 TRIALS=5 ETCD=1
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-15}
TRIALS=${TRIALS:-5}
ETCD=${ETCD:-1}
BASE=${BASE:-7401}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
command -v redis-cli >/dev/null || { echo "bench-locks.sh needs redis-cli: apt-get install redis-tools" >&2; exit 1; }
cargo build --release -q -p conclave -p conclave-benches
BIN="$TARGET_DIR/release/conclave"
BENCH="$TARGET_DIR/release/conclave-bench"

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

peers="1@127.0.0.1:$((BASE + 10000)),2@127.0.0.1:$((BASE + 10001)),3@127.0.0.1:$((BASE + 10002))"
for i in 1 2 3; do
  "$BIN" --id "$i" --port $((BASE + i - 1)) --cluster-port $((BASE + 10000 + i - 1)) \
    --data-dir "$work/n$i" --peers "$peers" >"$work/n$i.log" 2>&1 &
  pids+=($!)
done
leader=""
for _ in $(seq 1 100); do
  for i in 1 2 3; do
    role=$(redis-cli -p $((BASE + i - 1)) info raft 2>/dev/null | tr -d '\r' | awk -F: '$1=="raft_role"{print $2}')
    [ "$role" = leader ] && leader=$((BASE + i - 1))
  done
  [ -n "$leader" ] && break
  sleep 0.1
done
[ -n "$leader" ] || { echo "no leader" >&2; exit 1; }
follower=$BASE; [ "$follower" = "$leader" ] && follower=$((BASE + 1))
all="$BASE,$((BASE + 1)),$((BASE + 2))"

out=$(mktemp)
section() { echo; echo "### $1"; echo; echo '```'; shift; "$@" 2>&1 | tee -a /dev/stderr; echo '```'; }
{
  echo "## Locks: 3-node Conclave on 127.0.0.1, fsync on ($(nproc) cores, $(date -u +%F))"
  section "Uncontended, 50 clients spread over all nodes (100,000 resources)" \
    "$BENCH" locks --ports "$all" -c 50 -r 100000 -d "$DURATION"
  section "Uncontended, 50 clients on the leader" \
    "$BENCH" locks --ports "$leader" -c 50 -r 100000 -d "$DURATION"
  section "Single client on the leader (latency)" \
    "$BENCH" locks --ports "$leader" -c 1 -r 100000 -d "$DURATION"
  section "Single client on a follower (forwarded)" \
    "$BENCH" locks --ports "$follower" -c 1 -r 100000 -d "$DURATION"
  section "Contended: 50 clients over all nodes, 10 resources" \
    "$BENCH" locks --ports "$all" -c 50 -r 10 -d "$DURATION"
} >"$out"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()
{
  section "Failover: SIGKILL the leader -> first successful LOCK.ACQUIRE via a survivor (default settings)" \
    "$BENCH" failover --binary "$BIN" --trials "$TRIALS" --base-port $((BASE + 100))
} >>"$out"

if [ "$ETCD" = 1 ]; then
  command -v etcd >/dev/null || apt-get install -y etcd-server etcd-client >/dev/null
  cluster="e1=http://127.0.0.1:2381,e2=http://127.0.0.1:2383,e3=http://127.0.0.1:2385"
  for i in 1 2 3; do
    peer=$((2379 + 2 * i)); client=$((2378 + 2 * i))
    etcd --name "e$i" --data-dir "$work/etcd$i" \
      --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
      --initial-cluster "$cluster" --initial-cluster-state new >"$work/etcd$i.log" 2>&1 &
    pids+=($!)
  done
  sleep 3
  etcd_perf() {
    ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:2380,127.0.0.1:2382,127.0.0.1:2384 \
      check perf --load="$1" --prefix="/perf-$1/" 2>&1 | tr '\r' '\n' | grep -E '^(PASS|FAIL)'
  }
  {
    section "Reference: etcd $(etcd --version | awk 'NR==1{print $3}'), 3 members on 127.0.0.1, etcdctl check perf --load=s (50 clients, 150 writes/s offered)" etcd_perf s
    section "Reference: etcd, etcdctl check perf --load=l (1000 clients, 8000 writes/s offered)" etcd_perf l
  } >>"$out"
fi
mkdir -p bench-out
cp "$out" bench-out/locks.md
cat "$out"
