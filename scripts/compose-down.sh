#!/usr/bin/env bash
# Stops the Conclave cluster started by scripts/compose-up.sh.
#
#   scripts/compose-down.sh      # stop and remove the containers, keep the data volumes
#   scripts/compose-down.sh -v   # ... and delete the data volumes too
set -euo pipefail
export CONCLAVE_LOG_TAG=compose-down
# shellcheck source-path=SCRIPTDIR/.. source=docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../docker/lib.sh"

# With every profile's services (Prometheus of the monitoring profile included).
export COMPOSE_PROFILES="${COMPOSE_PROFILES:-monitoring}"
args=(down --remove-orphans)
case "${1:-}" in
    "") ;;
    -v | --volumes) args+=(--volumes) ;;
    *) cdie "usage: $0 [-v|--volumes]" ;;
esac
compose "${args[@]}"
