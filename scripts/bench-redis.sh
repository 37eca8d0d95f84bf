#!/usr/bin/env bash
# Conclave vs redis-server, same machine, same run: redis-benchmark (50 clients) for
# SET, GET, INCR, PING at pipeline 1 and 16, then used_memory after loading 1,000,000
# keys with 32-byte values. Prints a markdown table (also written to bench-out/redis.md) and
# writes the figures as CSV to bench-out/redis.csv (columns: conclave_benches::rows::RedisRow),
# which `conclave-plots` turns into docs/bench/redis-ratio.svg.
#
#   scripts/bench-redis.sh            # defaults: 200k requests at -P 1, 2M at -P 16
#   N1=100000 N16=1000000 REPS=1 scripts/bench-redis.sh
#   KEYS=0 scripts/bench-redis.sh     # without the memory comparison
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${N1:-200000}
N16=${N16:-2000000}
REPS=${REPS:-2}
CLIENTS=${CLIENTS:-50}
KEYS=${KEYS:-1000000}
REDIS_PORT=${REDIS_PORT:-6391}
CONCLAVE_PORT=${CONCLAVE_PORT:-6392}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

command -v redis-benchmark >/dev/null && command -v redis-server >/dev/null || {
  echo "installing redis-tools and redis-server" >&2
  apt-get install -y redis-tools redis-server >/dev/null
}
cargo build --release -q -p conclave -p conclave-benches
BIN="$TARGET_DIR/release/conclave"
LOAD="$TARGET_DIR/release/conclave-bench"

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --save '' --appendonly no --bind 127.0.0.1 --dir "$work" >/dev/null &
pids+=($!)
"$BIN" --port "$CONCLAVE_PORT" --data-dir "$work/conclave" >/dev/null 2>&1 &
pids+=($!)
for port in "$REDIS_PORT" "$CONCLAVE_PORT"; do
  for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

# run PORT PIPELINE N -> "test rps p50 p99" lines
run() {
  redis-benchmark -p "$1" -c "$CLIENTS" -n "$3" -P "$2" -t set,get,incr,ping -r 100000 --csv 2>/dev/null |
    tail -n +2 | tr -d '"' | awk -F, '{print $1, $2, $5, $7}'
}

declare -A best p50 p99
for P in 1 16; do
  N=$N1; [ "$P" = 16 ] && N=$N16
  for rep in $(seq 1 "$REPS"); do
    for who in redis conclave; do
      port=$REDIS_PORT; [ "$who" = conclave ] && port=$CONCLAVE_PORT
      while read -r test rps l50 l99; do
        k="$who|$P|$test"
        if [ -z "${best[$k]:-}" ] || awk "BEGIN{exit !($rps > ${best[$k]})}"; then
          best[$k]=$rps; p50[$k]=$l50; p99[$k]=$l99
        fi
      done < <(run "$port" "$P" "$N")
    done
  done
done

mem() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: '$1=="used_memory"{print $2}'; }
if [ "$KEYS" -gt 0 ]; then
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  redis-cli -p "$CONCLAVE_PORT" flushall >/dev/null
  echo "loading $KEYS keys into each server" >&2
  "$LOAD" load --port "$REDIS_PORT" --keys "$KEYS" --value-size 32 >/dev/null
  "$LOAD" load --port "$CONCLAVE_PORT" --keys "$KEYS" --value-size 32 >/dev/null
  rmem=$(mem "$REDIS_PORT"); cmem=$(mem "$CONCLAVE_PORT")
  rkeys=$(redis-cli -p "$REDIS_PORT" dbsize); ckeys=$(redis-cli -p "$CONCLAVE_PORT" dbsize)
fi

mkdir -p bench-out
{
  echo "test,pipeline,redis_ops_per_sec,conclave_ops_per_sec,ratio,redis_p50_ms,redis_p99_ms,conclave_p50_ms,conclave_p99_ms"
  for P in 1 16; do
    for test in SET GET INCR PING_INLINE PING_MBULK; do
      r=${best["redis|$P|$test"]:-0}; c=${best["conclave|$P|$test"]:-0}
      awk "BEGIN{exit !($r > 0 && $c > 0)}" || continue
      printf '%s,%s,%.0f,%.0f,%s,%s,%s,%s,%s\n' "$test" "$P" "$r" "$c" "$(awk "BEGIN{printf \"%.4f\", $c/$r}")" \
        "${p50["redis|$P|$test"]}" "${p99["redis|$P|$test"]}" "${p50["conclave|$P|$test"]}" "${p99["conclave|$P|$test"]}"
    done
  done
} >bench-out/redis.csv
{
  echo "| test | pipeline | Redis ops/s | Conclave ops/s | ratio | Redis p50/p99 ms | Conclave p50/p99 ms |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for P in 1 16; do
    for test in SET GET INCR PING_INLINE PING_MBULK; do
      r=${best["redis|$P|$test"]:-0}; c=${best["conclave|$P|$test"]:-0}
      ratio=$(awk "BEGIN{ if ($r>0) printf \"%.2f\", $c/$r; else print \"n/a\" }")
      printf '| %s | %s | %.0f | %.0f | %s | %s / %s | %s / %s |\n' "$test" "$P" "$r" "$c" "$ratio" \
        "${p50["redis|$P|$test"]:-?}" "${p99["redis|$P|$test"]:-?}" "${p50["conclave|$P|$test"]:-?}" "${p99["conclave|$P|$test"]:-?}"
    done
  done
  echo
  if [ "$KEYS" -gt 0 ]; then
    echo "| memory after $KEYS keys x 32 B | Redis | Conclave | ratio |"
    echo "|---|---:|---:|---:|"
    printf '| used_memory (bytes) | %s | %s | %s |\n' "$rmem" "$cmem" "$(awk "BEGIN{printf \"%.2f\", $cmem/$rmem}")"
    printf '| keys (DBSIZE) | %s | %s | |\n' "$rkeys" "$ckeys"
    echo
  fi
  echo "redis-benchmark -c $CLIENTS -t set,get,incr,ping -r 100000 -n $N1 (-P 1) / -n $N16 (-P 16), best of $REPS runs each, $(nproc) cores, $(redis-server --version | awk '{print $3}')"
} | tee bench-out/redis.md
