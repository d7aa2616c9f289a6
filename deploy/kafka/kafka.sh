#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, no ZooKeeper, no Docker) for development and tests.
#
#   deploy/kafka/kafka.sh fetch    download the pinned broker jars (Maven) into .cache/kafka/
#   deploy/kafka/kafka.sh start    format storage once, start the broker on 127.0.0.1:9092, wait until ready
#   deploy/kafka/kafka.sh stop     stop the broker started by this script (SIGTERM, then SIGKILL after 30 s)
#   deploy/kafka/kafka.sh status   print whether the broker is running
#   deploy/kafka/kafka.sh reset    stop and delete .data/kafka (topics, offsets); keeps the jar cache
#
# The Kafka version lives in deploy/kafka/pom.xml (<kafka.version>) only.
# Environment:
#   KAFKA_BOOTSTRAP_SERVERS  if set to anything but 127.0.0.1:9092/localhost:9092, `start` does nothing.
#   KAFKA_START_TIMEOUT      seconds to wait for the broker to become ready (default 90).
#   KAFKA_HEAP_OPTS          JVM heap flags (default "-Xmx1g -Xms256m").
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
POM="$SCRIPT_DIR/pom.xml"

HOST=127.0.0.1
PORT=9092
CONTROLLER_PORT=9093

DATA_DIR="$REPO_ROOT/.data/kafka"
LOG_DIR="$DATA_DIR/logs"
STORAGE_DIR="$DATA_DIR/data"
PID_FILE="$DATA_DIR/kafka.pid"
SERVER_PROPERTIES="$DATA_DIR/server.properties"
LOG4J_CONFIG="$DATA_DIR/log4j2.properties"
SERVER_LOG="$LOG_DIR/server.log"
STDOUT_LOG="$LOG_DIR/stdout.log"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"

log() { echo "kafka: $*"; }
die() { echo "kafka: ERROR: $*" >&2; exit 1; }

kafka_version() {
    [[ -f "$POM" ]] || die "missing $POM"
    local v
    v="$(sed -n 's:.*<kafka.version>[[:space:]]*\([^<[:space:]]*\)[[:space:]]*</kafka.version>.*:\1:p' "$POM" | head -n1)"
    [[ -n "$v" ]] || die "could not read <kafka.version> from $POM"
    echo "$v"
}

KAFKA_VERSION="$(kafka_version)"
JARS_DIR="$REPO_ROOT/.cache/kafka/jars-$KAFKA_VERSION"
JARS_MARKER="$JARS_DIR/.complete"

require_java() {
    command -v java >/dev/null 2>&1 \
        || die "java not found on PATH. Kafka $KAFKA_VERSION needs Java 17+ (Debian: apt-get install -y openjdk-17-jre-headless)."
    local major
    major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
    if [[ -n "$major" && "$major" -lt 17 ]]; then
        die "java $major found; Kafka $KAFKA_VERSION needs Java 17+."
    fi
}

port_open() { # host port
    timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" >/dev/null 2>&1
}

our_pid() { # prints the pid if our broker process is alive
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against pid reuse: it must be a JVM running kafka.Kafka.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
    echo "$pid"
}

download_progress() { # Maven's batch output on stdin -> "kafka: downloaded N files, X MB" as it goes
    local tty=0
    [[ -t 1 ]] && tty=1
    awk -v tty="$tty" '
        function report(final) {
            line = sprintf("kafka: downloaded %d files, %.1f MB", n, bytes / 1048576)
            if (tty) { printf "\r%s%s", line, (final ? "\n" : ""); fflush() }
            else if (final || n % 50 == 0) { print line; fflush() }
        }
        /^(\[INFO\] )?Downloaded from / {
            n++
            if (match($0, /\(([0-9.]+) (B|kB|MB|GB)/)) {
                split(substr($0, RSTART + 1, RLENGTH - 1), part, " ")
                unit = part[2]
                bytes += part[1] * (unit == "GB" ? 1073741824 : unit == "MB" ? 1048576 : unit == "kB" ? 1024 : 1)
            }
            report(0)
        }
        END { if (n) report(1) }
    '
}

cmd_fetch() {
    if [[ -f "$JARS_MARKER" ]]; then
        log "jars for Kafka $KAFKA_VERSION already in ${JARS_DIR#"$REPO_ROOT"/}"
        return 0
    fi
    command -v mvn >/dev/null 2>&1 \
        || die "mvn not found on PATH; it is needed once to download Kafka $KAFKA_VERSION from Maven Central (Debian: apt-get install -y maven)."
    log "downloading Kafka $KAFKA_VERSION jars from Maven Central into ${JARS_DIR#"$REPO_ROOT"/} ..."
    rm -rf "$JARS_DIR"
    mkdir -p "$JARS_DIR"
    local mvn_log="$REPO_ROOT/.cache/kafka/mvn-$KAFKA_VERSION.log"
    # Maven's full output goes to the log; the terminal gets a running count of the files fetched (a cold
    # local Maven repository means a few hundred files, plugins included, before the broker's own jars).
    if ! mvn -B -Dstyle.color=never -f "$POM" \
        org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
        -DoutputDirectory="$JARS_DIR" -DincludeScope=runtime 2>&1 | tee "$mvn_log" | download_progress; then
        rm -rf "$JARS_DIR"
        tail -n 40 "$mvn_log" >&2
        die "maven could not download the Kafka jars (is Maven Central reachable? full output: ${mvn_log#"$REPO_ROOT"/})"
    fi
    local j
    for j in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-server-$KAFKA_VERSION.jar" "kafka-storage-$KAFKA_VERSION.jar"; do
        [[ -f "$JARS_DIR/$j" ]] || { rm -rf "$JARS_DIR"; die "download incomplete: $j missing"; }
    done
    ls "$JARS_DIR"/log4j-core-*.jar "$JARS_DIR"/log4j-slf4j-impl-*.jar >/dev/null 2>&1 \
        || { rm -rf "$JARS_DIR"; die "download incomplete: log4j jars missing"; }
    date -u +%Y-%m-%dT%H:%M:%SZ >"$JARS_MARKER"
    log "fetched $(ls "$JARS_DIR"/*.jar | wc -l) jars"
}

write_config() {
    mkdir -p "$DATA_DIR" "$LOG_DIR" "$STORAGE_DIR"
    cat >"$SERVER_PROPERTIES" <<EOF
# Generated by deploy/kafka/kafka.sh -- rewritten on every start; edit the script instead.
# Single-node KRaft broker+controller for local development and tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$STORAGE_DIR

# Topics are created explicitly by the services / tests.
auto.create.topics.enable=false
num.partitions=3
default.replication.factor=1
min.insync.replicas=1

# Single node: internal topics cannot be replicated.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Faster tests: no delay before the first consumer-group rebalance.
group.initial.rebalance.delay.ms=0

# After a restart the new broker incarnation is refused (DUPLICATE_BROKER_REGISTRATION) until the
# previous session expires; the 9 s default made every restart take ~12 s.
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=1000
EOF

    cat >"$LOG4J_CONFIG" <<EOF
# Generated by deploy/kafka/kafka.sh -- rewritten on every start.
status = warn
name = recall-alerts-kafka

appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
appender.console.filter.threshold.type = ThresholdFilter
appender.console.filter.threshold.level = warn

appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = $SERVER_LOG
appender.file.filePattern = $SERVER_LOG.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3

rootLogger.level = info
rootLogger.appenderRef.console.ref = STDOUT
rootLogger.appenderRef.file.ref = FILE

# Noisy per-partition / per-request chatter.
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.statechange.name = state.change.logger
logger.statechange.level = warn
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = warn
logger.unifiedlog.name = kafka.log
logger.unifiedlog.level = warn
logger.storage.name = org.apache.kafka.storage
logger.storage.level = warn
logger.replica.name = kafka.server.ReplicaFetcherManager
logger.replica.level = warn
logger.partition.name = kafka.cluster.Partition
logger.partition.level = warn
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = warn
logger.appinfo.name = org.apache.kafka.common.utils.AppInfoParser
logger.appinfo.level = warn
EOF
}

format_storage() {
    if [[ -f "$STORAGE_DIR/meta.properties" ]]; then
        return 0
    fi
    local cp="$JARS_DIR/*" uuid
    uuid="$(java -cp "$cp" -Dlog4j2.configurationFile="$LOG4J_CONFIG" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
    [[ -n "$uuid" ]] || die "kafka.tools.StorageTool random-uuid produced no cluster id"
    log "formatting storage in ${STORAGE_DIR#"$REPO_ROOT"/} (cluster id $uuid)"
    java -cp "$cp" -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
        kafka.tools.StorageTool format -t "$uuid" -c "$SERVER_PROPERTIES" >>"$STDOUT_LOG" 2>&1 \
        || { tail -n 20 "$STDOUT_LOG" >&2; die "formatting Kafka storage failed (see ${STDOUT_LOG#"$REPO_ROOT"/})"; }
}

cmd_start() {
    local bs="${KAFKA_BOOTSTRAP_SERVERS:-}"
    if [[ -n "$bs" && "$bs" != "127.0.0.1:$PORT" && "$bs" != "localhost:$PORT" ]]; then
        log "using existing Kafka at $bs (KAFKA_BOOTSTRAP_SERVERS); not starting a local broker"
        return 0
    fi
    local pid
    if pid="$(our_pid)"; then
        if port_open "$HOST" "$PORT"; then
            log "already running (pid $pid) at $HOST:$PORT"
            return 0
        fi
        log "process $pid exists but $HOST:$PORT is not accepting yet; waiting"
    elif port_open "$HOST" "$PORT"; then
        log "something is already listening on $HOST:$PORT; assuming it is a Kafka broker, not starting another"
        return 0
    else
        require_java
        cmd_fetch
        write_config
        format_storage
        local heap="${KAFKA_HEAP_OPTS:--Xmx1g -Xms256m}"
        # The broker's log lines carry local times like this one; a "started" line from before now is an old run's.
        # (Not a byte offset into server.log: log4j rolls the file over, often at start-up, and a smaller new file
        # would never reach the old offset.)
        local since
        since="$(date '+%Y-%m-%d %H:%M:%S')"
        echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) starting Kafka $KAFKA_VERSION ===" >>"$STDOUT_LOG"
        # shellcheck disable=SC2086  # heap flags are intentionally word-split
        nohup setsid java $heap -XX:+UseG1GC -Djava.awt.headless=true \
            -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.logs.dir="$LOG_DIR" \
            -cp "$JARS_DIR/*" kafka.Kafka "$SERVER_PROPERTIES" \
            >>"$STDOUT_LOG" 2>&1 </dev/null &
        pid=$!
        echo "$pid" >"$PID_FILE"
        log "starting Kafka $KAFKA_VERSION (pid $pid), waiting up to ${START_TIMEOUT}s ..."
        wait_ready "$pid" "$since"
        return 0
    fi
    wait_ready "$pid" ""
}

started_since() { # "YYYY-MM-DD HH:MM:SS" (or empty for any): has the broker logged its start since then?
    cat "$LOG_DIR"/server.log* 2>/dev/null | grep 'Kafka Server started' \
        | awk -v since="[$1" 'substr($0, 1, length(since)) >= since { found = 1 } END { exit !found }'
}

wait_ready() { # pid since
    local pid="$1" since="$2" start=$SECONDS
    while (( SECONDS - start < START_TIMEOUT )); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "kafka: ERROR: broker process $pid exited during startup. Last log lines:" >&2
            show_logs >&2
            rm -f "$PID_FILE"
            exit 1
        fi
        if port_open "$HOST" "$PORT" && started_since "$since"; then
            log "ready at $HOST:$PORT after $((SECONDS - start))s (pid $pid, logs in ${LOG_DIR#"$REPO_ROOT"/})"
            return 0
        fi
        sleep 0.5
    done
    echo "kafka: ERROR: broker not ready after ${START_TIMEOUT}s (pid $pid still running). Last log lines:" >&2
    show_logs >&2
    exit 1
}

show_logs() {
    local f
    for f in "$SERVER_LOG" "$STDOUT_LOG"; do
        [[ -f "$f" ]] || continue
        echo "----- ${f#"$REPO_ROOT"/} (last 40 lines) -----"
        tail -n 40 "$f"
    done
}

cmd_stop() {
    local pid
    if ! pid="$(our_pid)"; then
        rm -f "$PID_FILE"
        if port_open "$HOST" "$PORT"; then
            log "not started by this script, but something listens on $HOST:$PORT; leaving it alone"
        else
            log "not running"
        fi
        return 0
    fi
    log "stopping (pid $pid) ..."
    kill -TERM "$pid" 2>/dev/null || true
    local start=$SECONDS
    while kill -0 "$pid" 2>/dev/null && (( SECONDS - start < 30 )); do
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "still running after 30s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
    fi
    rm -f "$PID_FILE"
    log "stopped"
}

cmd_status() {
    local pid
    if pid="$(our_pid)"; then
        if port_open "$HOST" "$PORT"; then
            log "running (pid $pid) at $HOST:$PORT"
        else
            log "process running (pid $pid) but $HOST:$PORT not accepting connections"
        fi
    elif port_open "$HOST" "$PORT"; then
        log "running at $HOST:$PORT (not started by this script)"
    else
        log "not running"
        return 3
    fi
}

cmd_reset() {
    cmd_stop
    rm -rf "$DATA_DIR"
    log "deleted ${DATA_DIR#"$REPO_ROOT"/} (jar cache kept in ${JARS_DIR#"$REPO_ROOT"/})"
}

case "${1:-}" in
    fetch) cmd_fetch ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    reset) cmd_reset ;;
    logs) show_logs ;;
    *)
        echo "usage: $0 {fetch|start|stop|status|reset|logs}" >&2
        exit 2
        ;;
esac
