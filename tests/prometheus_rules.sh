#!/usr/bin/env bash
# Checks the Prometheus setup of the compose `monitoring` profile (docker/prometheus/) with
# promtool: the configuration (`check config`, which also loads the rule file), the alerting
# rules (`check rules`) and their unit tests (`test rules rules/conclave.rules.test.yml`).
#
#   tests/prometheus_rules.sh
#
# promtool comes from PATH, else from Debian's `prometheus` package unpacked into a temporary
# folder (`apt-get download` + `dpkg-deb -x`: nothing is installed, no daemon started). Exits 0
# with "SKIP" when neither is possible. The Prometheus image build runs the same checks.
set -euo pipefail
cd "$(dirname "$0")/../docker/prometheus"

tmp=""
cleanup() { [[ -z "$tmp" ]] || rm -rf "$tmp"; }
trap cleanup EXIT

promtool=$(command -v promtool || true)
if [[ -z "$promtool" ]] && command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
    tmp=$(mktemp -d)
    echo "== promtool not on PATH: unpacking Debian's prometheus package" >&2
    if ! (cd "$tmp" && timeout 300 apt-get download -qq prometheus >/dev/null 2>&1); then
        if [[ "$(id -u)" == 0 ]]; then
            timeout 300 apt-get update -qq >/dev/null 2>&1 || true
            (cd "$tmp" && timeout 300 apt-get download -qq prometheus >/dev/null 2>&1) || true
        fi
    fi
    deb=$(find "$tmp" -maxdepth 1 -name 'prometheus_*.deb' | head -n 1)
    if [[ -n "$deb" ]]; then
        dpkg-deb -x "$deb" "$tmp/root"
        [[ -x "$tmp/root/usr/bin/promtool" ]] && promtool="$tmp/root/usr/bin/promtool"
    fi
fi
if [[ -z "$promtool" ]]; then
    echo "SKIP prometheus_rules: no promtool (not on PATH, and Debian's package could not be fetched)"
    exit 0
fi

echo "== $("$promtool" --version 2>&1 | head -n 1)"
"$promtool" check config prometheus.yml
"$promtool" check rules rules/conclave.rules.yml
(cd rules && "$promtool" test rules conclave.rules.test.yml)
echo "prometheus_rules: ok"
