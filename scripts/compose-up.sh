#!/usr/bin/env bash
# Starts the three-node Conclave cluster of docker-compose.yml and waits until it is healthy.
#
#   scripts/compose-up.sh                # then: redis-cli -p 7001 LOCK.ACQUIRE r me
#   scripts/compose-up.sh --monitoring   # ... and Prometheus on http://127.0.0.1:9090
#
# Steps: build the release binary on the host, build the base image from the Debian mirror if it
# is missing (no registry needed: docker/build-base-image.sh), build the node image, start the
# nodes, wait for their health checks. Run it again after a code change to roll the new binary.
#
# Environment: CONCLAVE_CLUSTER_SECRET (set your own), CONCLAVE_PORT_1..3,
# CONCLAVE_HTTP_PORT_1..3, CONCLAVE_PROMETHEUS_PORT, CONCLAVE_PUBLISH_HOST (see
# docker-compose.yml), CONCLAVE_BIN (a prebuilt binary), CONCLAVE_WAIT (seconds, 120).
set -euo pipefail
export CONCLAVE_LOG_TAG=compose-up
# shellcheck source-path=SCRIPTDIR/.. source=docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../docker/lib.sh"

monitoring=0
case "${1:-}" in
    "") ;;
    --monitoring) monitoring=1 ;;
    *) cdie "usage: $0 [--monitoring]" ;;
esac
if [[ $monitoring == 1 ]]; then
    # Both compose tools read the active profiles from here (build, up and the health wait).
    export COMPOSE_PROFILES=monitoring
fi

command -v docker >/dev/null 2>&1 || cdie "docker is not installed"
docker info >/dev/null 2>&1 || cdie "no Docker engine answers (is the daemon running, may you use it?)"
conclave_compose_cmd || cdie "install Docker Compose: the 'docker compose' plugin or 'docker-compose'"

conclave_stage_binary
conclave_image
clog "starting the cluster ($CONCLAVE_COMPOSE_CMD up -d)"
compose up -d
services=("${CONCLAVE_SERVICES[@]}")
[[ $monitoring == 1 ]] && services+=(prometheus)
if ! conclave_wait_healthy "${CONCLAVE_WAIT:-120}" "${services[@]}"; then
    compose ps >&2 || true
    compose logs --no-color --tail 30 >&2 || true
    cdie "the cluster did not become healthy"
fi

host="${CONCLAVE_PUBLISH_HOST:-127.0.0.1}"
[[ "$host" == 0.0.0.0 ]] && host=127.0.0.1
cat <<MSG

Conclave is up: three nodes, one Raft group. Connect with any Redis client:
  redis-cli -h $host -p ${CONCLAVE_PORT_1:-7001}     # node1
  redis-cli -h $host -p ${CONCLAVE_PORT_2:-7002}     # node2
  redis-cli -h $host -p ${CONCLAVE_PORT_3:-7003}     # node3
Try:
  redis-cli -p ${CONCLAVE_PORT_1:-7001} LOCK.ACQUIRE r me
  redis-cli -p ${CONCLAVE_PORT_2:-7002} LOCK.INFO r
  redis-cli -p ${CONCLAVE_PORT_3:-7003} RAFT.STATUS
HTTP (health, metrics): http://$host:${CONCLAVE_HTTP_PORT_1:-8001}/health  (node2: ${CONCLAVE_HTTP_PORT_2:-8002}, node3: ${CONCLAVE_HTTP_PORT_3:-8003})
Logs: $CONCLAVE_COMPOSE_CMD logs -f      Stop: scripts/compose-down.sh  (add -v to delete the data)
MSG
if [[ $monitoring == 1 ]]; then
    echo "Prometheus: http://$host:${CONCLAVE_PROMETHEUS_PORT:-9090}  (targets: /targets, alerts: /alerts)"
fi
