#!/usr/bin/env bash
# Install what Recall Alerts needs on a Debian 12 machine, and nothing already there (`make deps`; both
# `make run` and `make test` call it first). Safe to run again: a second run only checks.
#
#   Debian packages  postgresql, openjdk-17-jre-headless + maven (the Kafka broker and its one-time jar
#                    download), chromium (the browser tests), make, python3 + python3-venv, ca-certificates,
#                    prometheus (its promtool checks deploy/observability/ and the services' /metrics),
#                    and with RECALL_ALERTS_DEPS_CONTAINERS=1 (`make test`, `make image`: the tests
#                    build the service image and run it, also with `podman kube play`) podman + runc +
#                    debootstrap
#   uv               the one on PATH if there is one; otherwise uv from PyPI in a private virtualenv,
#                    .cache/uv-venv/ (never pip into the system Python: Debian refuses that, PEP 668)
#   (not here)       Go: deploy/helm.py builds helm with the go on PATH if it is new enough, else with
#                    a Go toolchain it fetches from the Go module proxy into .cache/tools (deploy/go_toolchain.py)
#
# Environment:
#   RECALL_ALERTS_EXTERNAL_POSTGRES=1    no local PostgreSQL is needed, so none is installed
#   KAFKA_BOOTSTRAP_SERVERS=<other>      no local broker is needed, so no Java or Maven
#   UV_VERSION                           the uv installed into .cache/uv-venv (default below)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UV_VERSION="${UV_VERSION:-0.13.9}"  # the uv that wrote uv.lock (lock revision 5)
UV_VENV="$REPO_ROOT/.cache/uv-venv"

log() { echo "deps: $*"; }
die() { echo "deps: ERROR: $*" >&2; exit 1; }

installed() { # debian-package: is it installed?
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

local_kafka() {
    local bs="${KAFKA_BOOTSTRAP_SERVERS:-}"
    [[ -z "$bs" || "$bs" == "127.0.0.1:9092" || "$bs" == "localhost:9092" ]]
}

wanted_packages() {
    echo make python3 python3-venv ca-certificates chromium prometheus
    # Only for the targets that build or run the service image (make test, make image): podman runs it
    # with runc (deploy/image/containers.conf); debootstrap makes its base where no registry is reachable.
    if [[ "${RECALL_ALERTS_DEPS_CONTAINERS:-}" == "1" ]]; then
        echo podman runc debootstrap
    fi
    [[ "${RECALL_ALERTS_EXTERNAL_POSTGRES:-}" == "1" ]] || echo postgresql
    if local_kafka; then
        # Any Java 17+ will do; only install one if there is none.
        command -v java >/dev/null 2>&1 || echo openjdk-17-jre-headless
        echo maven
    fi
}

debian_packages() {
    command -v dpkg-query >/dev/null 2>&1 \
        || die "this script installs Debian packages; on another system install by hand: $(wanted_packages | tr '\n' ' ')"
    local missing=() pkg
    for pkg in $(wanted_packages); do
        installed "$pkg" || missing+=("$pkg")
    done
    if (( ${#missing[@]} == 0 )); then
        log "Debian packages present"
        return 0
    fi
    local sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 \
            || die "missing Debian packages: ${missing[*]}. As root, run: apt-get update && apt-get install -y ${missing[*]}"
        sudo=(sudo)
    fi
    log "installing Debian packages: ${missing[*]}"
    "${sudo[@]}" apt-get update -qq \
        || die "apt-get update failed (network, or /etc/apt/sources.list?)"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" \
        || die "apt-get install ${missing[*]} failed (see the lines above)"
}

uv_tool() {
    if command -v uv >/dev/null 2>&1; then
        log "uv present: $(command -v uv) ($(uv --version))"
        return 0
    fi
    if [[ -x "$UV_VENV/bin/uv" ]]; then
        log "uv present: ${UV_VENV#"$REPO_ROOT"/}/bin/uv ($("$UV_VENV/bin/uv" --version))"
        return 0
    fi
    log "installing uv $UV_VERSION from PyPI into ${UV_VENV#"$REPO_ROOT"/} (a private virtualenv)"
    rm -rf "$UV_VENV"
    python3 -m venv "$UV_VENV" \
        || die "python3 -m venv failed; on Debian it needs the python3-venv package (apt-get install -y python3-venv)"
    "$UV_VENV/bin/pip" install --disable-pip-version-check --quiet "uv==$UV_VERSION" \
        || { rm -rf "$UV_VENV"; die "pip could not install uv==$UV_VERSION from PyPI (is https://pypi.org reachable?)"; }
    log "uv ready: ${UV_VENV#"$REPO_ROOT"/}/bin/uv ($("$UV_VENV/bin/uv" --version))"
}

debian_packages
uv_tool
