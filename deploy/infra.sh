#!/usr/bin/env bash
# Bring the whole local infrastructure up/down (no Docker):
#   PostgreSQL 127.0.0.1:5432, Kafka 127.0.0.1:9092, SMTP sink 127.0.0.1:1025 (viewer http://127.0.0.1:8025)
#
#   deploy/infra.sh up       postgres install+start+create-databases, kafka start, smtp start
#   deploy/infra.sh down     smtp stop, kafka stop, postgres stop
#   deploy/infra.sh status   status of all three
#
# Each component honours its own "external" switch: RECALL_ALERTS_EXTERNAL_POSTGRES=1,
# KAFKA_BOOTSTRAP_SERVERS=<other host:port>, SMTP_HOST=<other host>.
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PG="$DEPLOY_DIR/postgres/postgres.sh"
KAFKA="$DEPLOY_DIR/kafka/kafka.sh"
SMTP="$DEPLOY_DIR/smtp/smtp.sh"

summary() {
    cat <<'TXT'
infra:
  Kafka        127.0.0.1:9092   (deploy/kafka/kafka.sh, logs .data/kafka/logs/)
  PostgreSQL   127.0.0.1:5432   (roles/databases: recall_intake purchase_matcher notifier refund_logistics customer_api,
                                 password = name; admin recall_alerts/recall_alerts)
  SMTP         127.0.0.1:1025   (sink; Maildir .data/mail/)
  Mail viewer  http://127.0.0.1:8025
TXT
}

case "${1:-}" in
    up)
        echo "==> PostgreSQL"
        "$PG" install
        "$PG" start
        "$PG" create-databases
        echo "==> Kafka"
        "$KAFKA" start
        echo "==> SMTP sink"
        "$SMTP" start
        summary
        ;;
    down)
        rc=0
        "$SMTP" stop || rc=1
        "$KAFKA" stop || rc=1
        "$PG" stop || rc=1
        exit "$rc"
        ;;
    status)
        rc=0
        "$PG" status || rc=1
        "$KAFKA" status || rc=1
        "$SMTP" status || rc=1
        exit "$rc"
        ;;
    *)
        echo "usage: $0 {up|down|status}" >&2
        exit 2
        ;;
esac
