#!/usr/bin/env bash
# Cluster fault test on the docker compose cluster (issue 4): real containers, real networks.
#
#   tests/compose_fault.sh
#
# Builds the image, starts the three nodes of docker-compose.yml under its own project name and
# ports (the first three free ones from 27101, so a cluster of scripts/compose-up.sh is left alone),
# then:
#   0. checks GET /health (200) on the three published HTTP ports;
#   1. takes and inspects locks through the published ports;
#   2. `docker kill`s the leader: a survivor grants a lock (prints "failover(kill): N ms") and the
#      locks taken before are intact; the node is started again and catches up;
#   3. `docker network disconnect`s a follower from the cluster network: the other two keep
#      serving, the isolated one answers -CLUSTERDOWN after its no-leader wait; reconnected, it
#      catches up (RAFT.STATUS applied_index equal on all three);
#   4. `docker pause`s the leader: a survivor grants a lock (prints "failover(pause): N ms");
#      after `unpause` no exclusive lock has two holders on any node.
# Always ends with `compose down -v` (trap). Time-bounded: the binary is built first (at most
# CONCLAVE_FAULT_BUILD_BUDGET s, default 1800; a no-op after `cargo test`, as it uses the dev
# profile unless CONCLAVE_PROFILE says otherwise), then everything else is killed after
# CONCLAVE_FAULT_BUDGET seconds (default 570). Exits 0 with "SKIP" when no Docker engine answers.
#
# Environment: CONCLAVE_BIN (prebuilt binary: skips the cargo build), CONCLAVE_PROFILE (cargo
# profile, default dev), CONCLAVE_FAULT_PORT (first published port to try, default 27101),
# CONCLAVE_FAULT_BUDGET, CONCLAVE_FAULT_KEEP=1 (leave the cluster up on failure, for a look).
set -euo pipefail

export CONCLAVE_LOG_TAG=compose_fault
# shellcheck source-path=SCRIPTDIR/.. source=docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../docker/lib.sh"

log() { printf '[compose_fault %s] %s\n' "$(date +%T)" "$*"; }

if [[ -z "${CONCLAVE_FAULT_INNER:-}" ]]; then
    # Skip when there is nothing to run on.
    if ! command -v docker >/dev/null 2>&1 || ! timeout 20 docker info >/dev/null 2>&1; then
        echo "SKIP compose_fault: no Docker engine answers"
        exit 0
    fi
    if ! conclave_compose_cmd; then
        echo "SKIP compose_fault: neither 'docker compose' nor 'docker-compose' is installed"
        exit 0
    fi
    if ! command -v redis-cli >/dev/null 2>&1; then
        if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
            log "installing redis-tools (redis-cli)"
            timeout 300 apt-get install -y -qq redis-tools >/dev/null 2>&1 ||
                { timeout 300 apt-get update -qq && timeout 300 apt-get install -y -qq redis-tools >/dev/null; }
        fi
        command -v redis-cli >/dev/null 2>&1 || cdie "redis-cli is needed (apt-get install redis-tools)"
    fi
    # The binary is built before the clock starts (a cold release build alone can take minutes).
    export CONCLAVE_PROFILE="${CONCLAVE_PROFILE:-dev}"
    # shellcheck disable=SC2016 # $1 is expanded by the inner bash
    timeout "${CONCLAVE_FAULT_BUILD_BUDGET:-1800}" bash -c 'source "$1"; conclave_stage_binary' _ \
        "$CONCLAVE_ROOT/docker/lib.sh" || cdie "building the binary failed"
    # Re-run under timeout(1); the inner run cleans up on the TERM it sends.
    export CONCLAVE_FAULT_INNER=1
    exec timeout -k 150 "${CONCLAVE_FAULT_BUDGET:-570}" "$0" "$@"
fi

conclave_compose_cmd || cdie "no compose tool"
export COMPOSE_PROJECT_NAME="${CONCLAVE_FAULT_PROJECT:-conclavefault}"
# port_busy <port>: something listens on 127.0.0.1:<port>.
port_busy() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
# Three consecutive free client ports from CONCLAVE_FAULT_PORT (default 27101) on, and the three
# HTTP ports 1000 above them, so that neither a cluster of scripts/compose-up.sh (7001-7003,
# 8001-8003) nor other test clusters are in the way.
BASE_PORT="${CONCLAVE_FAULT_PORT:-27101}"
block_busy() {
    local p
    for p in "$1" $(($1 + 1)) $(($1 + 2)) $(($1 + 1000)) $(($1 + 1001)) $(($1 + 1002)); do
        port_busy "$p" && return 0
    done
    return 1
}
while block_busy "$BASE_PORT"; do
    BASE_PORT=$((BASE_PORT + 10))
    ((BASE_PORT < 64000)) || cdie "no three free ports found"
done
export CONCLAVE_PORT_1=$BASE_PORT CONCLAVE_PORT_2=$((BASE_PORT + 1)) CONCLAVE_PORT_3=$((BASE_PORT + 2))
export CONCLAVE_HTTP_PORT_1=$((BASE_PORT + 1000)) CONCLAVE_HTTP_PORT_2=$((BASE_PORT + 1001)) \
    CONCLAVE_HTTP_PORT_3=$((BASE_PORT + 1002))
export CONCLAVE_PUBLISH_HOST=127.0.0.1
export CONCLAVE_CLUSTER_SECRET="fault-test-$$-$RANDOM"
TTL=600000 # leases outlive the whole test

PASSED=0
FAILED=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ $rc != 0 && $FAILED == 0 ]]; then
        FAILED=1
        log "FAIL: aborted (exit status $rc)"
    fi
    if [[ $rc != 0 || $FAILED != 0 ]] && [[ "${CONCLAVE_FAULT_KEEP:-0}" == 1 ]]; then
        log "leaving project $COMPOSE_PROJECT_NAME up (CONCLAVE_FAULT_KEEP=1)"
        exit "$rc"
    fi
    if [[ $rc != 0 || $FAILED != 0 ]]; then
        log "last logs:"
        timeout 30 docker ps -a --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" || true
        compose_t 30 logs --no-color --tail 25 2>&1 | tail -n 120 || true
    fi
    log "cleaning up (compose down -v)"
    # A paused container cannot be stopped: unpause whatever is paused first.
    local id
    for id in $(docker ps -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" --filter status=paused 2>/dev/null); do
        timeout 20 docker unpause "$id" >/dev/null 2>&1 || true
    done
    compose_t 120 down -v --remove-orphans -t 5 >/dev/null 2>&1 ||
        log "warning: compose down failed"
    echo "compose_fault: $PASSED passed, $FAILED failed"
    if [[ $rc == 0 && $FAILED != 0 ]]; then rc=1; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted (time budget or signal)"; exit 124' INT TERM

pass() { PASSED=$((PASSED + 1)); log "ok: $*"; }
fail() { FAILED=$((FAILED + 1)); log "FAIL: $*"; exit 1; }
check() { # check <description> <command...>
    local what="$1"
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

now_ms() { date +%s%3N; }
port_of() { echo $((BASE_PORT + $1 - 1)); }
# http_status <node> <path>: the status code of a GET on the node's published HTTP port.
http_status() {
    # shellcheck disable=SC2016 # $1 and $2 are expanded by the inner bash
    timeout 10 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "GET %s HTTP/1.0\r\n\r\n" "$2" >&3 && head -n 1 <&3' \
        _ "$(($(port_of "$1") + 1000))" "$2" 2>/dev/null | awk '{ print $2 }'
}
container_of() { conclave_container "node$1"; }

# rc <node> <args...>: one command through node's published port, typed replies:
# "(integer) 5", "(nil)", "(error) CLUSTERDOWN ...", "OK".
rc() {
    local node=$1
    shift
    timeout 10 redis-cli -h 127.0.0.1 -p "$(port_of "$node")" --no-raw "$@" 2>&1 || echo "(timeout or connection error)"
}
# raw <node> <args...>: the same, one element a line (RESP2 maps are flat arrays).
raw() {
    local node=$1
    shift
    timeout 10 redis-cli -h 127.0.0.1 -p "$(port_of "$node")" --raw "$@" 2>/dev/null || true
}
# status_field <node> <field>: a top-level field of RAFT.STATUS ("" when unknown or null).
status_field() {
    raw "$1" RAFT.STATUS | awk -v f="$2" 'found { print; exit } $0 == f { found = 1 }'
}
# leader_id: the leader as seen by the given nodes (default all); fails unless they all agree
# on one that calls itself leader.
leader_id() {
    local nodes=("$@") n l="" x
    [[ ${#nodes[@]} -gt 0 ]] || nodes=(1 2 3)
    for n in "${nodes[@]}"; do
        x="$(status_field "$n" leader_id)"
        [[ "$x" =~ ^[0-9]+$ ]] || return 1
        if [[ -z "$l" ]]; then l=$x; elif [[ "$l" != "$x" ]]; then return 1; fi
    done
    [[ "$(status_field "$l" role)" == leader ]] || return 1
    echo "$l"
}
# wait_leader <seconds> [nodes...]: prints the agreed leader.
wait_leader() {
    local limit=$1
    shift
    local deadline=$((SECONDS + limit)) l
    while ((SECONDS < deadline)); do
        if l="$(leader_id "$@")"; then
            echo "$l"
            return 0
        fi
        sleep 0.5
    done
    return 1
}
# token_of <reply>: the integer of "(integer) N", or fails.
token_of() {
    [[ "$1" =~ ^\(integer\)\ ([0-9]+)$ ]] || return 1
    echo "${BASH_REMATCH[1]}"
}
# acquire_until <seconds> <resource> <owner> <nodes...>: retries an exclusive acquire through
# the nodes in turn until one grants it; prints the token.
acquire_until() {
    local limit=$1 res=$2 owner=$3
    shift 3
    local deadline=$((SECONDS + limit)) reply n
    while ((SECONDS < deadline)); do
        for n in "$@"; do
            reply="$(rc "$n" LOCK.ACQUIRE "$res" "$owner" TTL "$TTL")"
            if token_of "$reply"; then return 0; fi
            log "  node$n: $reply" >&2
        done
        sleep 0.2
    done
    return 1
}
# holders <node> <resource>: "owner token" lines of LOCK.INFO's holders (fails if unanswered).
holders() {
    local out
    out="$(raw "$1" LOCK.INFO "$2")"
    grep -qx holders <<<"$out" || return 1
    awk '
        $0 == "holders" { inh = 1; next }
        $0 == "waiters" { inh = 0 }
        inh && want == "owner" { owner = $0; want = ""; next }
        inh && want == "token" { print owner, $0; want = ""; next }
        inh && $0 == "owner" { want = "owner" }
        inh && $0 == "token" { want = "token" }
    ' <<<"$out"
}
# applied <node>: RAFT.STATUS applied_index of a node ("" when unanswered).
applied() { status_field "$1" applied_index; }
# wait_caught_up <seconds>: waits until applied_index is equal on all three nodes. Should the
# log keep moving (background entries), it settles for every node having applied at least what
# the most advanced one had applied when the wait began.
wait_caught_up() {
    local start=$SECONDS deadline=$((SECONDS + $1)) target=0 a b c x
    for x in "$(applied 1)" "$(applied 2)" "$(applied 3)"; do
        [[ "$x" =~ ^[0-9]+$ ]] && ((x > target)) && target=$x
    done
    while ((SECONDS < deadline)); do
        a="$(applied 1)" b="$(applied 2)" c="$(applied 3)"
        log "  applied_index: node1=$a node2=$b node3=$c (target $target)"
        if [[ "$a" =~ ^[0-9]+$ && "$b" =~ ^[0-9]+$ && "$c" =~ ^[0-9]+$ ]]; then
            if [[ "$a" == "$b" && "$b" == "$c" ]]; then return 0; fi
            if ((SECONDS - start >= 10 && a >= target && b >= target && c >= target)); then
                log "  (the log keeps moving: all nodes are past $target)"
                return 0
            fi
        fi
        sleep 1
    done
    return 1
}
# no_holders <node> <resource>: LOCK.INFO answered and lists no holder.
no_holders() {
    local h
    h="$(holders "$1" "$2")" || return 1
    [[ -z "$h" ]]
}
others() { # others <node...>: the nodes of 1..3 not named
    local n
    for n in 1 2 3; do
        [[ " $* " == *" $n "* ]] || echo "$n"
    done
}

# --- 0. image and cluster ---------------------------------------------------------------------
log "compose: $CONCLAVE_COMPOSE_CMD, project $COMPOSE_PROJECT_NAME, ports $CONCLAVE_PORT_1-$CONCLAVE_PORT_3"
compose_t 60 down -v --remove-orphans -t 2 >/dev/null 2>&1 || true
timeout 300 "$CONCLAVE_ROOT/docker/build-base-image.sh"
compose_t 300 build || fail "compose build"
pass "image built"
compose_t 120 up -d || fail "compose up"
check "three nodes healthy" conclave_wait_healthy 90
LEADER="$(wait_leader 30)" || fail "no agreed leader within 30 s"
pass "leader elected: node$LEADER"
for n in 1 2 3; do
    check "GET /health on node$n's published HTTP port answers 200" test "$(http_status "$n" /health)" == 200
done

# --- 1. locks through the published ports ------------------------------------------------------
T1="$(token_of "$(rc 1 LOCK.ACQUIRE r1 alice TTL "$TTL")")" || fail "LOCK.ACQUIRE r1 alice via node1"
T2="$(token_of "$(rc 2 LOCK.ACQUIRE r2 bob SHARED TTL "$TTL")")" || fail "LOCK.ACQUIRE r2 bob SHARED via node2"
check "fencing tokens increase ($T1 < $T2)" test "$T1" -lt "$T2"
check "r1 is busy for another owner (via node3)" test "$(rc 3 LOCK.ACQUIRE r1 carol)" == "(nil)"
for n in 1 2 3; do
    check "LOCK.INFO r1 on node$n shows alice/$T1" test "$(holders "$n" r1)" == "alice $T1"
done
check "LOCK.CHECK r1 $T1 is 1" test "$(rc 2 LOCK.CHECK r1 "$T1")" == "(integer) 1"

# --- 2. kill the leader ------------------------------------------------------------------------
mapfile -t SURV < <(others "$LEADER")
log "docker kill node$LEADER (leader); survivors: node${SURV[0]} node${SURV[1]}"
KILLED=$LEADER
t0=$(now_ms)
docker kill "$(container_of "$KILLED")" >/dev/null
T3="$(acquire_until 60 k1 dave "${SURV[@]}")" || fail "no survivor granted a lock within 60 s after the kill"
t1=$(now_ms)
echo "failover(kill): $((t1 - t0)) ms"
pass "a survivor grants locks after the leader was killed (token $T3)"
check "token after failover is greater ($T3 > $T2)" test "$T3" -gt "$T2"
NEW="$(wait_leader 30 "${SURV[@]}")" || fail "survivors agree on no leader"
check "new leader node$NEW is a survivor" test "$NEW" != "$KILLED"
for n in "${SURV[@]}"; do
    check "r1 intact on node$n" test "$(holders "$n" r1)" == "alice $T1"
    check "r2 intact on node$n" test "$(holders "$n" r2)" == "bob $T2"
done
check "LOCK.CHECK r1 $T1 still 1" test "$(rc "${SURV[0]}" LOCK.CHECK r1 "$T1")" == "(integer) 1"

log "starting node$KILLED again"
timeout 60 docker start "$(container_of "$KILLED")" >/dev/null || true # may be restarted already
check "node$KILLED healthy again" conclave_wait_healthy 60 "node$KILLED"
check "node$KILLED caught up" wait_caught_up 30
check "r1 intact on the restarted node$KILLED" test "$(holders "$KILLED" r1)" == "alice $T1"

# --- 3. isolate a follower ---------------------------------------------------------------------
LEADER="$(wait_leader 30)" || fail "no agreed leader before the partition"
mapfile -t FOLLOWERS < <(others "$LEADER")
ISO=${FOLLOWERS[0]}
ISO_CTR="$(container_of "$ISO")"
NET="$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{"\n"}}{{end}}' "$ISO_CTR" | grep '_cluster$' | head -n 1)"
[[ -n "$NET" ]] || fail "cannot find node$ISO's cluster network"
mapfile -t CONNECTED < <(others "$ISO")
log "docker network disconnect $NET node$ISO (follower); leader node$LEADER"
docker network disconnect "$NET" "$ISO_CTR"
T4="$(acquire_until 30 p1 erin "${CONNECTED[@]}")" || fail "the connected majority stopped serving"
pass "the two connected nodes keep serving (token $T4)"
# The isolated node must never grant; it answers -CLUSTERDOWN once it has waited for a leader.
deadline=$((SECONDS + 30))
verdict=""
while ((SECONDS < deadline)); do
    a0=$(now_ms)
    reply="$(rc "$ISO" LOCK.ACQUIRE p2 frank TTL "$TTL")"
    a1=$(now_ms)
    log "  isolated node$ISO: $reply ($((a1 - a0)) ms)"
    if token_of "$reply" >/dev/null; then verdict="granted"; break; fi
    if [[ "$reply" == "(error) CLUSTERDOWN"* ]]; then verdict="clusterdown $((a1 - a0))"; break; fi
    sleep 0.5
done
check "the isolated node grants nothing" test "$verdict" != granted
check "the isolated node answers -CLUSTERDOWN ($verdict)" test "${verdict%% *}" == clusterdown
ms=${verdict#* }
check "-CLUSTERDOWN came after the no-leader wait (${ms} ms >= 1500)" test "$ms" -ge 1500
log "docker network connect node$ISO"
docker network connect --alias "cluster-node$ISO" --alias "node$ISO" "$NET" "$ISO_CTR"
T5="$(acquire_until 30 p3 gina "$ISO")" || fail "node$ISO does not serve after reconnecting"
pass "node$ISO serves again after reconnecting (token $T5)"
check "node$ISO caught up after the partition" wait_caught_up 30
check "p1 (granted during the partition) known to node$ISO" test "$(holders "$ISO" p1)" == "erin $T4"
check "p2 was never granted" no_holders "${CONNECTED[0]}" p2

# --- 4. pause the leader ---------------------------------------------------------------------
LEADER="$(wait_leader 30)" || fail "no agreed leader before the pause"
mapfile -t SURV < <(others "$LEADER")
PAUSED=$LEADER
log "docker pause node$PAUSED (leader)"
t0=$(now_ms)
docker pause "$(container_of "$PAUSED")" >/dev/null
T6="$(acquire_until 60 x1 ivan "${SURV[@]}")" || fail "no survivor granted a lock within 60 s after the pause"
t1=$(now_ms)
echo "failover(pause): $((t1 - t0)) ms"
pass "a survivor grants locks while the leader is paused (token $T6)"
# The paused old leader has not heard of x1: it must not grant it to anyone else on waking.
docker unpause "$(container_of "$PAUSED")" >/dev/null
reply="$(rc "$PAUSED" LOCK.ACQUIRE x1 judy TTL "$TTL")"
log "  old leader node$PAUSED right after unpause: LOCK.ACQUIRE x1 judy -> $reply"
check "the woken old leader does not grant x1 again" test "$(token_of "$reply" || echo none)" == none
wait_leader 30 >/dev/null || fail "no agreed leader after the unpause"
check "all caught up after the unpause" wait_caught_up 30
for res in r1 k1 p1 p3 x1; do
    for n in 1 2 3; do
        h="$(holders "$n" "$res")" || fail "LOCK.INFO $res on node$n unanswered"
        check "$res has exactly one holder on node$n ($h)" test "$(grep -c . <<<"$h")" == 1
    done
done
check "x1 held by ivan/$T6 everywhere" test "$(holders 1 x1)/$(holders 2 x1)/$(holders 3 x1)" == "ivan $T6/ivan $T6/ivan $T6"

log "all checks passed"
