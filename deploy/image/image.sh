#!/usr/bin/env bash
# Build the service image (Containerfile at the repository root) with podman.
#
#   deploy/image/image.sh build    build localhost/recall-alerts:latest (the base first, if it is missing)
#   deploy/image/image.sh base     make the Debian base image with debootstrap, unless it exists (cached)
#   deploy/image/image.sh podman ARGS...   podman with this machine's settings (containers.conf beside
#                                  this script: runc runtime, no default ulimits)
#
# Environment:
#   BASE_IMAGE   the Containerfile's base. Default: a Debian bookworm image made here with debootstrap
#                (localhost/debian:bookworm-minbase), for machines that reach no container registry.
#                Elsewhere: BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm (the Containerfile's
#                own default) needs no debootstrap.
#   IMAGE        the tag to build (default localhost/recall-alerts:latest)
#   BUILD_CA     a CA bundle the build's TLS connections must trust (a TLS-intercepting proxy); default:
#                the host's bundle if there is one. Mounted for the build steps only, never in the image.
#
# The debootstrap root filesystem is kept as .cache/image/debian-bookworm-minbase.tar: the base is made
# once per machine (about 35 s to 3 min), and imported again from the tarball if podman's storage is
# wiped.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
LOCAL_BASE="localhost/debian:bookworm-minbase"
BASE_IMAGE="${BASE_IMAGE:-$LOCAL_BASE}"
IMAGE="${IMAGE:-localhost/recall-alerts:latest}"
CACHE_DIR="$REPO_ROOT/.cache/image"
BASE_TAR="$CACHE_DIR/debian-bookworm-minbase.tar"
BUILD_CA="${BUILD_CA:-/etc/ssl/certs/ca-certificates.crt}"

export CONTAINERS_CONF="${CONTAINERS_CONF:-$SCRIPT_DIR/containers.conf}"

log() { echo "image: $*"; }
die() { echo "image: ERROR: $*" >&2; exit 1; }

require() { # command debian-package
    command -v "$1" >/dev/null 2>&1 || die "$1 not found (Debian: apt-get install -y $2; or make deps-image)"
}

cmd_base() {
    [[ "$BASE_IMAGE" == "$LOCAL_BASE" ]] || return 0
    require podman podman
    if podman image exists "$LOCAL_BASE"; then
        log "base $LOCAL_BASE present"
        return 0
    fi
    mkdir -p "$CACHE_DIR"
    if [[ ! -f "$BASE_TAR" ]]; then
        require debootstrap debootstrap
        [[ "$(id -u)" -eq 0 ]] || die "debootstrap needs root (once per machine: sudo $0 base)"
        local rootfs="$CACHE_DIR/rootfs"
        rm -rf "$rootfs"
        log "making $LOCAL_BASE with debootstrap (Debian bookworm, minbase; once per machine) ..."
        local start=$SECONDS
        debootstrap --variant=minbase bookworm "$rootfs" >"$CACHE_DIR/debootstrap.log" 2>&1 \
            || { tail -n 20 "$CACHE_DIR/debootstrap.log" >&2; die "debootstrap failed (full log: ${CACHE_DIR#"$REPO_ROOT"/}/debootstrap.log)"; }
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" -cf "$BASE_TAR.part" .
        mv "$BASE_TAR.part" "$BASE_TAR"
        rm -rf "$rootfs"
        log "debootstrap took $((SECONDS - start))s"
    fi
    podman import --quiet "$BASE_TAR" "$LOCAL_BASE" >/dev/null
    log "imported $LOCAL_BASE from ${BASE_TAR#"$REPO_ROOT"/}"
}

cmd_build() {
    require podman podman
    cmd_base
    local ca=()
    [[ -f "$BUILD_CA" ]] && ca=(--volume "$BUILD_CA:/run/build-ca.crt:ro")
    local start=$SECONDS
    log "building $IMAGE from $BASE_IMAGE ..."
    podman build --network host "${ca[@]}" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
        --tag "$IMAGE" --file "$REPO_ROOT/Containerfile" "$REPO_ROOT"
    log "built $IMAGE in $((SECONDS - start))s"
}

case "${1:-}" in
    base) cmd_base ;;
    build) cmd_build ;;
    podman) shift; exec podman "$@" ;;
    *)
        echo "usage: $0 {build|base|podman ARGS...}" >&2
        exit 2
        ;;
esac
