#!/usr/bin/env bash
# Local SMTP sink (deploy/smtp/smtp_sink.py) for development and tests.
#
#   deploy/smtp/smtp.sh start    run the sink in the background: SMTP 127.0.0.1:1025, viewer http://127.0.0.1:8025
#   deploy/smtp/smtp.sh stop     stop it (SIGTERM, SIGKILL after 10 s)
#   deploy/smtp/smtp.sh status   print whether it is running
#
# Mail is stored in the Maildir .data/mail/ (one file per message, envelope in X-Sink-* headers).
# Environment:
#   PYTHON     interpreter with aiosmtpd installed (default: <repo>/.venv/bin/python)
#   SMTP_HOST  if set to anything but 127.0.0.1/localhost, `start` does nothing (external SMTP server).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

HOST=127.0.0.1
PORT=1025
HTTP_PORT=8025
DATA_DIR="$REPO_ROOT/.data/smtp"
MAILDIR="$REPO_ROOT/.data/mail"
PID_FILE="$DATA_DIR/sink.pid"
LOG_FILE="$DATA_DIR/sink.log"
SINK="$SCRIPT_DIR/smtp_sink.py"
PY="${PYTHON:-$REPO_ROOT/.venv/bin/python}"

log() { echo "smtp: $*"; }
die() { echo "smtp: ERROR: $*" >&2; exit 1; }

port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" >/dev/null 2>&1; }

our_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'smtp_sink\.py' || return 1
    echo "$pid"
}

cmd_start() {
    local h="${SMTP_HOST:-}"
    if [[ -n "$h" && "$h" != "127.0.0.1" && "$h" != "localhost" ]]; then
        log "SMTP_HOST=$h: using that server, not starting the local sink"
        return 0
    fi
    local pid
    if pid="$(our_pid)" && port_open "$HOST" "$PORT"; then
        log "already running (pid $pid) on $HOST:$PORT, viewer http://$HOST:$HTTP_PORT"
        return 0
    fi
    if [[ -z "${pid:-}" ]] && port_open "$HOST" "$PORT"; then
        log "something is already listening on $HOST:$PORT; not starting another sink"
        return 0
    fi
    if [[ -z "${pid:-}" ]]; then
        [[ -x "$PY" ]] || die "python interpreter not found: $PY (create the project venv first, or set PYTHON=/path/to/python with aiosmtpd installed)"
        "$PY" -c 'import aiosmtpd' 2>/dev/null \
            || die "aiosmtpd is not installed for $PY (install the project dev dependencies, or: $PY -m pip install aiosmtpd)"
        mkdir -p "$DATA_DIR" "$MAILDIR"
        echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) starting smtp sink ===" >>"$LOG_FILE"
        nohup setsid "$PY" -u "$SINK" --host "$HOST" --port "$PORT" --http-port "$HTTP_PORT" --maildir "$MAILDIR" \
            >>"$LOG_FILE" 2>&1 </dev/null &
        pid=$!
        echo "$pid" >"$PID_FILE"
    fi
    local start=$SECONDS
    while (( SECONDS - start < 20 )); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            echo "smtp: ERROR: sink exited during startup; last log lines:" >&2
            tail -n 20 "$LOG_FILE" >&2
            exit 1
        fi
        if port_open "$HOST" "$PORT"; then
            log "ready on $HOST:$PORT (pid $pid), viewer http://$HOST:$HTTP_PORT, maildir ${MAILDIR#"$REPO_ROOT"/}"
            return 0
        fi
        sleep 0.2
    done
    tail -n 20 "$LOG_FILE" >&2
    die "sink (pid $pid) not accepting on $HOST:$PORT after 20s"
}

cmd_stop() {
    local pid
    if ! pid="$(our_pid)"; then
        rm -f "$PID_FILE"
        log "not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local start=$SECONDS
    while kill -0 "$pid" 2>/dev/null && (( SECONDS - start < 10 )); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "still running after 10s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
    log "stopped (pid $pid)"
}

cmd_status() {
    local pid
    if pid="$(our_pid)"; then
        log "running (pid $pid) on $HOST:$PORT, viewer http://$HOST:$HTTP_PORT"
    elif port_open "$HOST" "$PORT"; then
        log "something (not started by this script) listens on $HOST:$PORT"
    else
        log "not running"
        return 3
    fi
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 {start|stop|status}" >&2; exit 2 ;;
esac
