# shellcheck shell=bash
# Helpers shared by scripts/compose-*.sh and tests/compose_fault.sh (source it, do not run it).
#
#   CONCLAVE_ROOT          the repository root (set by this file)
#   compose ARGS...        `docker compose` or Debian's `docker-compose`, whichever works
#   compose_t SECS ARGS... the same under timeout(1)
#   conclave_stage_binary  cargo build --release -p conclave, copy the binary to target/docker/
#   conclave_image         base image if missing + compose build
#   conclave_wait_healthy  wait until node1..3 report healthy
#
# Environment:
#   CONCLAVE_BIN      use this prebuilt binary instead of building one
#   CONCLAVE_PROFILE  cargo profile for the binary (default release)

CONCLAVE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONCLAVE_SERVICES=(node1 node2 node3)

clog() { printf '[%s] %s\n' "${CONCLAVE_LOG_TAG:-conclave}" "$*" >&2; }
cdie() { clog "error: $*"; exit 1; }

# Picks the Compose tool once: the `docker compose` plugin (v2) or `docker-compose` (v1).
conclave_compose_cmd() {
    if [[ -n "${CONCLAVE_COMPOSE_CMD:-}" ]]; then
        return 0
    fi
    if docker compose version >/dev/null 2>&1; then
        CONCLAVE_COMPOSE_CMD="docker compose"
    elif command -v docker-compose >/dev/null 2>&1; then
        CONCLAVE_COMPOSE_CMD="docker-compose"
    else
        return 1
    fi
}

# Runs the Compose tool on the repository's docker-compose.yml.
compose() {
    conclave_compose_cmd || cdie "neither 'docker compose' nor 'docker-compose' is installed"
    # shellcheck disable=SC2086 # the command is one or two words on purpose
    $CONCLAVE_COMPOSE_CMD -f "$CONCLAVE_ROOT/docker-compose.yml" "$@"
}

# compose_t <seconds> ARGS...: compose, killed if it takes longer than that.
compose_t() {
    local limit="$1"
    shift
    conclave_compose_cmd || cdie "neither 'docker compose' nor 'docker-compose' is installed"
    # shellcheck disable=SC2086 # the command is one or two words on purpose
    timeout "$limit" $CONCLAVE_COMPOSE_CMD -f "$CONCLAVE_ROOT/docker-compose.yml" "$@"
}

# Builds the node binary on the host (the image only copies it: no toolchain is fetched
# inside a container) and stages it as target/docker/conclave, the only file in the
# Docker build context (.dockerignore).
conclave_stage_binary() {
    local bin="${CONCLAVE_BIN:-}" profile="${CONCLAVE_PROFILE:-release}"
    if [[ -z "$bin" ]]; then
        command -v cargo >/dev/null 2>&1 || cdie "cargo is not installed (or set CONCLAVE_BIN)"
        clog "building the conclave binary (cargo build --profile $profile -p conclave)"
        bin="$(cd "$CONCLAVE_ROOT" && cargo build --profile "$profile" -p conclave \
            --message-format=json-render-diagnostics |
            sed -n 's/.*"executable":"\([^"]*\/conclave\)".*/\1/p' | tail -n 1)"
        [[ -n "$bin" && -x "$bin" ]] || cdie "cargo build did not produce the conclave binary"
    fi
    [[ -x "$bin" ]] || cdie "$bin is not an executable"
    mkdir -p "$CONCLAVE_ROOT/target/docker"
    local staged="$CONCLAVE_ROOT/target/docker/conclave"
    # Debug info only bloats the image; keep the symbols for readable backtraces.
    if command -v objcopy >/dev/null 2>&1; then
        objcopy --strip-debug "$bin" "$staged.tmp"
    else
        cp "$bin" "$staged.tmp"
    fi
    chmod 0755 "$staged.tmp"
    mv -f "$staged.tmp" "$staged"
    clog "staged $staged ($(du -h "$staged" | cut -f1))"
}

# Builds the base image when missing, then the node image (conclave:local).
conclave_image() {
    "$CONCLAVE_ROOT/docker/build-base-image.sh"
    clog "building image conclave:local"
    compose build
}

# Prints the container id of a service, running or not (v2's `ps` lists running ones only
# unless -a; v1 accepts -a too).
conclave_container() {
    compose ps -a -q "$1" 2>/dev/null | head -n 1
}

# Prints a container's health: healthy, unhealthy, starting, or its state when not running.
conclave_health() {
    local id
    id="$(conclave_container "$1")"
    [[ -n "$id" ]] || { echo missing; return 0; }
    docker inspect -f '{{if .State.Running}}{{if .State.Health}}{{.State.Health.Status}}{{else}}running{{end}}{{else}}{{.State.Status}}{{end}}' \
        "$id" 2>/dev/null || echo missing
}

# Waits until every given service (default: all three) is healthy, at most $1 seconds; says
# what it is waiting for whenever a state changes.
conclave_wait_healthy() {
    local limit="$1"
    shift
    local services=("$@")
    [[ ${#services[@]} -gt 0 ]] || services=("${CONCLAVE_SERVICES[@]}")
    local deadline=$((SECONDS + limit)) s states last=""
    while :; do
        states=""
        local all=1
        for s in "${services[@]}"; do
            local h
            h="$(conclave_health "$s")"
            states+="$s=$h "
            [[ "$h" == healthy ]] || all=0
        done
        if [[ $all == 1 ]]; then
            clog "healthy: $states"
            return 0
        fi
        if ((SECONDS >= deadline)); then
            clog "not healthy after ${limit}s: $states"
            return 1
        fi
        if [[ "$states" != "$last" ]]; then
            clog "waiting for health checks (up to ${limit}s): $states"
            last=$states
        fi
        sleep 1
    done
}
