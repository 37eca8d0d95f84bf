#!/usr/bin/env bash
# Conclave vs redis-server side by side in one run, medians of several runs (issue 9,
# "must show" item 4: transactions, scripts, MONITOR, tracking and pub/sub must cost
# nothing when unused). Starts redis-server and a one-node Conclave (release build) — and,
# with BASE=<path to another conclave binary>, that one too — then REPS times, for
# pipeline 1 and 16, runs
#   redis-benchmark -p <port> -c 50 -n <N> -P <P> -t set,get,incr,mset -r 100000 --csv
# against each server in turn (the order rotates every repetition), and prints, per test:
# each server's median ops/s, the ratio of the medians to Redis, and the median of the
# per-repetition ratios (each run against the Redis run next to it). The load average is
# printed before and after: other builds share the machine.
#
#   scripts/bench-redis-median.sh                      # REPS=5, N1=200000, N16=2000000
#   BASE=/tmp/conclave-main REPS=7 scripts/bench-redis-median.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
N1=${N1:-200000}
N16=${N16:-2000000}
TESTS=${TESTS:-set,get,incr,mset}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=${BIN:-$TARGET_DIR/release/conclave}
BASE=${BASE:-}
[ -x "$BIN" ] || cargo build --release -q -p conclave

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

declare -A port=([redis]=6391 [conclave]=6392 [base]=6393)
names=(redis conclave)
redis-server --port "${port[redis]}" --save '' --appendonly no --bind 127.0.0.1 --dir "$work" >/dev/null &
pids+=($!)
"$BIN" --port "${port[conclave]}" --cluster-port 16392 --metrics-port 0 --data-dir "$work/conclave" >/dev/null 2>&1 &
pids+=($!)
if [ -n "$BASE" ]; then
  "$BASE" --port "${port[base]}" --cluster-port 16393 --metrics-port 0 --data-dir "$work/base" >/dev/null 2>&1 &
  pids+=($!)
  names+=(base)
fi
for n in "${names[@]}"; do
  for _ in $(seq 1 100); do redis-cli -p "${port[$n]}" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
raw="$work/raw.txt" # who P test rep rps
for rep in $(seq 1 "$REPS"); do
  for P in 1 16; do
    N=$N1; [ "$P" = 16 ] && N=$N16
    # Rotate the order every repetition.
    k=$(( rep % ${#names[@]} ))
    order=("${names[@]:$k}" "${names[@]:0:$k}")
    for who in "${order[@]}"; do
      redis-benchmark -p "${port[$who]}" -c 50 -n "$N" -P "$P" -t "$TESTS" -r 100000 --csv 2>/dev/null |
        tail -n +2 | tr -d '"' | awk -F, -v w="$who" -v p="$P" -v r="$rep" '{split($1, t, " "); print w, p, t[1], r, $2}' >>"$raw"
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$raw" "${names[@]}" <<'PY'
import sys, statistics
from collections import defaultdict
raw, names = sys.argv[1], sys.argv[2:]
rps = defaultdict(dict)  # (who, P, test) -> {rep: rps}
for line in open(raw):
    who, p, test, rep, v = line.split()
    rps[(who, int(p), test)][int(rep)] = float(v)
tests = []
for (_, p, t) in rps:
    if (p, t) not in tests:
        tests.append((p, t))
tests.sort(key=lambda x: x[0])
cols = [n for n in names if n != "redis"]
head = "| test | pipeline | Redis median ops/s | " + " | ".join(f"{c} median ops/s | {c} ratio of medians | {c} median of ratios" for c in cols) + " |"
print(head)
print("|---|---:|" + "---:|" * (1 + 3 * len(cols)))
for p, t in tests:
    r = rps[("redis", p, t)]
    row = [t, str(p), f"{statistics.median(r.values()):.0f}"]
    for c in cols:
        o = rps[(c, p, t)]
        ratios = [o[k] / r[k] for k in o if k in r]
        row += [f"{statistics.median(o.values()):.0f}",
                f"{statistics.median(o.values()) / statistics.median(r.values()):.2f}",
                f"{statistics.median(ratios):.2f}"]
    print("| " + " | ".join(row) + " |")
PY
