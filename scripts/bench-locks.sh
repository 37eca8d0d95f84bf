#!/usr/bin/env bash
# Lock-service figures for a 3-node Conclave cluster on loopback (fsync on), with etcd's
# `etcdctl check perf` on a 3-member etcd cluster on the same machine for reference.
# Prints markdown (also written to bench-out/locks.md).
#
#   scripts/bench-locks.sh              # DURATION=15 TRIALS=5 ETCD=1
#   scripts/bench-locks.sh sweep        # throughput and latency against clients, as CSV
#   scripts/bench-locks.sh timeline     # ops/s per 100 ms around a leader SIGKILL, as CSV
#
# sweep: one `conclave-bench locks` run per client count of SWEEP (1 2 5 10 20 50 100 200),
# SWEEP_DURATION (5) seconds each, clients spread over all three nodes, 100,000 resources;
# bench-out/locks-sweep.csv (replaced). timeline: `conclave-bench failover --timeline` with
# TRIALS (3) trials of 8 clients on the two followers, 2 s before and 4 s after the kill;
# bench-out/failover-timeline.csv (replaced). `conclave-plots` draws both (docs/bench/).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-report}
case "$MODE" in
  report | sweep | timeline) ;;
  *) echo "usage: $0 [report|sweep|timeline]" >&2; exit 2 ;;
esac
DURATION=${DURATION:-15}
TRIALS=${TRIALS:-5}
ETCD=${ETCD:-1}
BASE=${BASE:-7401}
SWEEP=${SWEEP:-1 2 5 10 20 50 100 200}
SWEEP_DURATION=${SWEEP_DURATION:-5}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
# Worker threads per node: the three nodes share this machine's cores.
THREADS=${THREADS:-$(( $(nproc) / 3 > 0 ? $(nproc) / 3 : 1 ))}
command -v redis-cli >/dev/null || { echo "bench-locks.sh needs redis-cli: apt-get install redis-tools" >&2; exit 1; }
cargo build --release -q -p conclave -p conclave-benches
BIN="$TARGET_DIR/release/conclave"
BENCH="$TARGET_DIR/release/conclave-bench"
mkdir -p bench-out

if [ "$MODE" = timeline ]; then
  "$BENCH" failover --binary "$BIN" --trials "${TRIALS_TIMELINE:-3}" --base-port $((BASE + 100)) \
    --timeline bench-out/failover-timeline.csv
  exit 0
fi

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

peers="1@127.0.0.1:$((BASE + 10000)),2@127.0.0.1:$((BASE + 10001)),3@127.0.0.1:$((BASE + 10002))"
for i in 1 2 3; do
  "$BIN" --id "$i" --port $((BASE + i - 1)) --cluster-port $((BASE + 10000 + i - 1)) \
    --data-dir "$work/n$i" --peers "$peers" --threads "$THREADS" >"$work/n$i.log" 2>&1 &
  pids+=($!)
done
leader=""
for _ in $(seq 1 100); do
  for i in 1 2 3; do
    role=$(redis-cli -p $((BASE + i - 1)) info raft 2>/dev/null | tr -d '\r' | awk -F: '$1=="raft_role"{print $2}' || true)
    [ "$role" = leader ] && leader=$((BASE + i - 1))
  done
  [ -n "$leader" ] && break
  sleep 0.1
done
[ -n "$leader" ] || { echo "no leader" >&2; exit 1; }
follower=$BASE; [ "$follower" = "$leader" ] && follower=$((BASE + 1))
all="$BASE,$((BASE + 1)),$((BASE + 2))"

if [ "$MODE" = sweep ]; then
  rm -f bench-out/locks-sweep.csv
  for c in $SWEEP; do
    echo "== $c client(s), $SWEEP_DURATION s" >&2
    "$BENCH" locks --ports "$all" -c "$c" -r 100000 -d "$SWEEP_DURATION" --csv bench-out/locks-sweep.csv
  done
  echo "wrote bench-out/locks-sweep.csv" >&2
  exit 0
fi

out=$(mktemp)
# The report (stdout) goes to the markdown; the live progress lines (stderr) only to the terminal.
section() { echo; echo "### $1"; echo; echo '```'; shift; "$@" | tee -a /dev/stderr; echo '```'; }
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
cp "$out" bench-out/locks.md
cat "$out"
