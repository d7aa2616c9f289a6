#!/usr/bin/env bash
# Local PostgreSQL (Debian packages, no Docker) for development and tests.
#
#   deploy/postgres/postgres.sh install           apt-get install postgresql if missing (needs root)
#   deploy/postgres/postgres.sh start             create/start the Debian cluster on 127.0.0.1:5432, wait until ready
#   deploy/postgres/postgres.sh create-databases  idempotently create roles + databases (see below) and verify logins
#   deploy/postgres/postgres.sh stop              stop the Debian cluster
#   deploy/postgres/postgres.sh status            print whether PostgreSQL answers on 127.0.0.1:5432
#
# Roles/databases (DEV/TEST ONLY credentials):
#   recall_alerts / recall_alerts   LOGIN SUPERUSER (tests use it to create throwaway databases)
#   <service> / <service>           LOGIN, owns database <service>, for each service in SERVICES below
#
# Environment:
#   RECALL_ALERTS_EXTERNAL_POSTGRES=1  install/start/create-databases/stop do nothing (use your own server).
#   PG_START_TIMEOUT                   seconds to wait for the server (default 60).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

HOST=127.0.0.1
PORT=5432
CLUSTER=main
ADMIN_ROLE=recall_alerts
SERVICES=(recall_intake purchase_matcher notifier refund_logistics customer_api)
MAX_CONNECTIONS=200
START_TIMEOUT="${PG_START_TIMEOUT:-60}"

log() { echo "postgres: $*"; }
die() { echo "postgres: ERROR: $*" >&2; exit 1; }

external() {
    if [[ "${RECALL_ALERTS_EXTERNAL_POSTGRES:-}" == "1" ]]; then
        log "RECALL_ALERTS_EXTERNAL_POSTGRES=1: skipping '$1' (using an externally managed PostgreSQL)"
        return 0
    fi
    return 1
}

# Highest installed server major version, e.g. "15"; empty if none.
pg_version() {
    local bin v best=""
    for bin in /usr/lib/postgresql/*/bin/postgres; do
        [[ -x "$bin" ]] || continue
        v="$(basename "$(dirname "$(dirname "$bin")")")"
        if [[ -z "$best" ]] || (( v > best )); then best="$v"; fi
    done
    echo "$best"
}

require_installed() {
    PG_VER="$(pg_version)"
    [[ -n "$PG_VER" ]] || die "PostgreSQL server is not installed. Run: $0 install   (or as root: apt-get install -y postgresql)"
    command -v pg_ctlcluster >/dev/null 2>&1 \
        || die "pg_ctlcluster not found; install Debian's postgresql-common (apt-get install -y postgresql)"
}

ready() {
    pg_isready -q -h "$HOST" -p "$PORT" >/dev/null 2>&1
}

# Run a command as the postgres OS user.
as_postgres() {
    if [[ "$(id -un)" == "postgres" ]]; then
        "$@"
    elif [[ "$(id -u)" -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        die "need root (or the postgres OS user) for this step. Run: sudo $0 ${CMD}"
    fi
}

cluster_exists() {
    pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VER" -v c="$CLUSTER" '$1 == v && $2 == c {found=1} END {exit !found}'
}

wait_ready() {
    local start=$SECONDS
    while (( SECONDS - start < START_TIMEOUT )); do
        if ready; then return 0; fi
        sleep 0.5
    done
    local logf="/var/log/postgresql/postgresql-$PG_VER-$CLUSTER.log"
    echo "postgres: ERROR: server not ready on $HOST:$PORT after ${START_TIMEOUT}s" >&2
    [[ -r "$logf" ]] && { echo "----- $logf (last 40 lines) -----" >&2; tail -n 40 "$logf" >&2; }
    exit 1
}

cmd_install() {
    external install && return 0
    if [[ -n "$(pg_version)" ]] && command -v pg_ctlcluster >/dev/null 2>&1; then
        log "PostgreSQL $(pg_version) already installed"
        return 0
    fi
    if [[ "$(id -u)" -ne 0 ]]; then
        die "PostgreSQL is not installed and this needs root. Run: sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql"
    fi
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install PostgreSQL yourself or set RECALL_ALERTS_EXTERNAL_POSTGRES=1"
    log "installing PostgreSQL via apt-get ..."
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
    log "installed PostgreSQL $(pg_version)"
}

cmd_start() {
    external start && return 0
    if ready; then
        log "already accepting connections on $HOST:$PORT"
        return 0
    fi
    require_installed
    if ! cluster_exists; then
        log "creating cluster $PG_VER/$CLUSTER (port $PORT)"
        [[ "$(id -u)" -eq 0 ]] || die "creating a cluster needs root. Run: sudo pg_createcluster $PG_VER $CLUSTER -p $PORT"
        pg_createcluster "$PG_VER" "$CLUSTER" -p "$PORT" >/dev/null
    fi
    local cport
    cport="$(pg_lsclusters -h | awk -v v="$PG_VER" -v c="$CLUSTER" '$1 == v && $2 == c {print $3}')"
    [[ "$cport" == "$PORT" ]] || die "cluster $PG_VER/$CLUSTER is configured for port $cport, not $PORT (see /etc/postgresql/$PG_VER/$CLUSTER/postgresql.conf)"
    log "starting cluster $PG_VER/$CLUSTER ..."
    # pg_ctlcluster works without systemd (it is not running in containers/CI); as root it drops to the owner.
    pg_ctlcluster "$PG_VER" "$CLUSTER" start \
        || die "pg_ctlcluster $PG_VER $CLUSTER start failed (see /var/log/postgresql/postgresql-$PG_VER-$CLUSTER.log)"
    wait_ready
    log "ready on $HOST:$PORT"
}

psql_admin() { # extra psql args...; runs as the postgres OS user over the Unix socket (peer auth)
    as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres "$@"
}

cmd_create_databases() {
    external create-databases && return 0
    ready || die "PostgreSQL is not running on $HOST:$PORT. Run: $0 start"
    command -v psql >/dev/null 2>&1 || die "psql not found (apt-get install -y postgresql-client)"

    local sql="" svc
    # Roles: create if missing, (re)set password every time so the dev credentials are always valid.
    sql+="SELECT format('CREATE ROLE %I', '$ADMIN_ROLE') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$ADMIN_ROLE')"$'\n'"\\gexec"$'\n'
    sql+="ALTER ROLE $ADMIN_ROLE WITH LOGIN SUPERUSER CREATEDB CREATEROLE PASSWORD '$ADMIN_ROLE';"$'\n'
    for svc in "${SERVICES[@]}"; do
        sql+="SELECT format('CREATE ROLE %I', '$svc') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$svc')"$'\n'"\\gexec"$'\n'
        sql+="ALTER ROLE $svc WITH LOGIN NOSUPERUSER PASSWORD '$svc';"$'\n'
        sql+="SELECT format('CREATE DATABASE %I OWNER %I', '$svc', '$svc') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$svc')"$'\n'"\\gexec"$'\n'
        sql+="ALTER DATABASE $svc OWNER TO $svc;"$'\n'
    done
    psql_admin <<<"$sql" || die "creating roles/databases failed"
    log "roles and databases present: $ADMIN_ROLE (superuser), ${SERVICES[*]}"

    # Test-friendly tuning: enough connections for 5 services + parallel tests. Needs a restart.
    local maxc
    maxc="$(psql_admin -tA -c 'SHOW max_connections')"
    if (( maxc < MAX_CONNECTIONS )); then
        psql_admin -c "ALTER SYSTEM SET max_connections = $MAX_CONNECTIONS"
        require_installed
        if cluster_exists; then
            log "max_connections $maxc -> $MAX_CONNECTIONS; restarting cluster $PG_VER/$CLUSTER"
            pg_ctlcluster "$PG_VER" "$CLUSTER" restart
            wait_ready
        else
            log "set max_connections=$MAX_CONNECTIONS via ALTER SYSTEM; restart the server yourself to apply it"
        fi
    fi

    # Verify password auth over TCP for every role (Debian's pg_hba.conf: scram-sha-256 for 127.0.0.1/32).
    local failed=0
    for svc in "$ADMIN_ROLE" "${SERVICES[@]}"; do
        local db="$svc"
        [[ "$svc" == "$ADMIN_ROLE" ]] && db=postgres
        if ! PGPASSWORD="$svc" PGCONNECT_TIMEOUT=5 psql -X -q -w -h "$HOST" -p "$PORT" -U "$svc" -d "$db" -tAc 'select 1' >/dev/null; then
            echo "postgres: ERROR: password login failed: psql -h $HOST -p $PORT -U $svc -d $db" >&2
            failed=1
        fi
    done
    (( failed == 0 )) || die "password authentication over TCP does not work; check pg_hba.conf has 'host all all 127.0.0.1/32 scram-sha-256'"
    log "verified password logins over TCP $HOST:$PORT (max_connections=$(psql_admin -tA -c 'SHOW max_connections'))"
}

cmd_stop() {
    external stop && return 0
    PG_VER="$(pg_version)"
    if [[ -z "$PG_VER" ]] || ! command -v pg_lsclusters >/dev/null 2>&1 || ! cluster_exists; then
        log "no local cluster; nothing to stop"
        return 0
    fi
    local status
    status="$(pg_lsclusters -h | awk -v v="$PG_VER" -v c="$CLUSTER" '$1 == v && $2 == c {print $4}')"
    if [[ "$status" != online* ]]; then
        log "cluster $PG_VER/$CLUSTER not running"
        return 0
    fi
    log "stopping cluster $PG_VER/$CLUSTER ..."
    pg_ctlcluster -m fast "$PG_VER" "$CLUSTER" stop
    log "stopped"
}

cmd_status() {
    if ready; then
        log "running on $HOST:$PORT"
    else
        log "not running on $HOST:$PORT"
        return 3
    fi
}

CMD="${1:-}"
case "$CMD" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    create-databases) cmd_create_databases ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 {install|start|stop|create-databases|status}" >&2
        exit 2
        ;;
esac
