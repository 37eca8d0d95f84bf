#!/usr/bin/env bash
# Builds the base image `conclave-base:bookworm` (a minimal Debian 12 root file system) without
# a container registry: `debootstrap --variant=minbase` from the Debian package mirror this
# machine's apt already uses, then `docker import`.
#
# Idempotent: returns at once when the image exists (set CONCLAVE_BASE_REBUILD=1 to rebuild).
# Says what it is doing; during debootstrap (minutes) a line every 10 s tells its current step.
#
# Environment:
#   CONCLAVE_BASE_IMAGE     image name to create      (default conclave-base:bookworm)
#   CONCLAVE_DEBIAN_MIRROR  Debian mirror URL          (default: from apt's sources, else
#                                                       http://deb.debian.org/debian)
#   CONCLAVE_BASE_REBUILD=1 rebuild even if the image exists
#   CONCLAVE_BASE_PULL=1    with a registry at hand: `docker pull debian:bookworm-slim` and tag it
#                           instead of running debootstrap
set -euo pipefail

IMAGE="${CONCLAVE_BASE_IMAGE:-conclave-base:bookworm}"
SUITE=bookworm
DEFAULT_MIRROR="http://deb.debian.org/debian"

log() { printf '[build-base-image] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v docker >/dev/null 2>&1 || die "docker is not installed"
docker info >/dev/null 2>&1 || die "no Docker engine answers (is the daemon running?)"

if [[ "${CONCLAVE_BASE_REBUILD:-0}" != 1 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "$IMAGE already exists"
    exit 0
fi

if [[ "${CONCLAVE_BASE_PULL:-0}" == 1 ]]; then
    docker pull debian:bookworm-slim
    docker tag debian:bookworm-slim "$IMAGE"
    log "tagged debian:bookworm-slim as $IMAGE"
    exit 0
fi

# Prints the mirror of the first apt source serving the plain `bookworm` suite (one-line
# sources.list format and deb822 *.sources), or nothing.
apt_mirror() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r "$f" ]] || continue
        # deb [options] URI suite components...
        awk -v suite="$SUITE" '
            $1 == "deb" {
                i = 2
                if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == suite) { print $i; exit }
            }' "$f"
    done | head -n 1
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r "$f" ]] || continue
        # deb822 paragraphs: Types / URIs / Suites fields, blank-line separated.
        awk -v suite="$SUITE" '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uris != "") {
                    split(uris, u, " "); print u[1]; found = 1; exit
                }
                types = ""; uris = ""; suites = ""
            }
            /^[[:space:]]*$/ { flush(); next }
            /^Types:/  { sub(/^Types:[[:space:]]*/, "");  types = $0 }
            /^URIs:/   { sub(/^URIs:[[:space:]]*/, "");   uris = $0 }
            /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0 }
            END { if (!found) flush() }' "$f"
    done | head -n 1
}

MIRROR="${CONCLAVE_DEBIAN_MIRROR:-}"
if [[ -z "$MIRROR" ]]; then
    MIRROR="$(apt_mirror | head -n 1)"
fi
MIRROR="${MIRROR:-$DEFAULT_MIRROR}"

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "debootstrap needs root (run as root or install sudo)"
    SUDO=(sudo)
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap (apt-get)"
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

ROOT="$(mktemp -d "${TMPDIR:-/var/tmp}/conclave-base.XXXXXX")"
BOOTSTRAP_PID=""
cleanup() {
    if [[ -n "$BOOTSTRAP_PID" ]] && [[ -e "/proc/$BOOTSTRAP_PID" ]]; then
        "${SUDO[@]}" kill "$BOOTSTRAP_PID" 2>/dev/null || true
        wait "$BOOTSTRAP_PID" 2>/dev/null || true
    fi
    # debootstrap may leave proc/sys mounted inside the target when it fails.
    local m
    while read -r m; do
        "${SUDO[@]}" umount -l "$m" 2>/dev/null || true
    done < <(awk -v root="$ROOT" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r)
    "${SUDO[@]}" rm -rf "$ROOT"
}
trap cleanup EXIT

log "debootstrap --variant=minbase $SUITE from $MIRROR (a few minutes)"
keyring=()
if [[ -r /usr/share/keyrings/debian-archive-keyring.gpg ]]; then
    keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)
fi
"${SUDO[@]}" debootstrap --variant=minbase "${keyring[@]}" "$SUITE" "$ROOT" "$MIRROR" \
    >"$ROOT.log" 2>&1 &
BOOTSTRAP_PID=$!
started=$SECONDS
# /proc rather than `kill -0`: the process may be root's (sudo) and we may not signal it.
while [[ -e "/proc/$BOOTSTRAP_PID" ]]; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        [[ -e "/proc/$BOOTSTRAP_PID" ]] || break
        sleep 1
    done
    [[ -e "/proc/$BOOTSTRAP_PID" ]] || break
    # debootstrap's progress lines: "I: Retrieving libc6 2.36-9", "I: Unpacking ...", ...
    step="$(grep '^I: ' "$ROOT.log" 2>/dev/null | tail -n 1 | cut -c4-)"
    log "debootstrap still running ($((SECONDS - started)) s): ${step:-starting}"
done
if ! wait "$BOOTSTRAP_PID"; then
    BOOTSTRAP_PID=""
    tail -n 30 "$ROOT.log" >&2
    rm -f "$ROOT.log"
    die "debootstrap failed"
fi
BOOTSTRAP_PID=""
log "debootstrap done in $((SECONDS - started)) s"
rm -f "$ROOT.log"

log "trimming"
"${SUDO[@]}" chroot "$ROOT" apt-get clean
"${SUDO[@]}" sh -c "
    set -e
    cd '$ROOT'
    rm -rf var/lib/apt/lists/* var/cache/apt/*.bin var/cache/apt/archives/*.deb \
           var/cache/debconf/*-old var/lib/dpkg/*-old var/log/* \
           usr/share/doc/* usr/share/man/* usr/share/info/* usr/share/lintian/* \
           usr/share/locale/* tmp/* root/.bash_history
    echo 'deb $MIRROR $SUITE main' > etc/apt/sources.list
    rm -f etc/apt/sources.list.d/*
    : > etc/hostname
    : > etc/machine-id
"

log "importing as $IMAGE ($("${SUDO[@]}" du -sh "$ROOT" 2>/dev/null | cut -f1) to copy into Docker)"
"${SUDO[@]}" tar --numeric-owner --xattrs -C "$ROOT" \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' --exclude='./run/*' \
    -c . |
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        --message "debootstrap --variant=minbase $SUITE $MIRROR" \
        - "$IMAGE" >/dev/null

log "built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
