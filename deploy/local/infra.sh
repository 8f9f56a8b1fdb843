#!/usr/bin/env bash
# Local infrastructure without Docker: Apache Kafka (KRaft, single node) and Apicurio Registry from Maven Central jars,
# plus the machine's PostgreSQL. Idempotent: `up` starts only what is not answering; `down` stops only what `up` started.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL="$ROOT/.local"
INFRA="$LOCAL/infra"
RUN="$LOCAL/run"
LOGS="$LOCAL/logs"
DATA="$LOCAL/data"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/deploy/local/pom.xml")"
APICURIO_VERSION="$(sed -n 's:.*<apicurio.version>\(.*\)</apicurio.version>.*:\1:p' "$ROOT/deploy/local/pom.xml")"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
REGISTRY_PORT="${REGISTRY_PORT:-8081}"
PGHOST="${PGHOST:-127.0.0.1}"
PGPORT="${PGPORT:-5432}"
export PGHOST PGPORT

mkdir -p "$RUN" "$LOGS" "$DATA"

log() { printf '[infra] %s\n' "$*"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_until() { # description timeout-seconds command...
  local what="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS >= deadline )); then log "timed out after ${timeout}s waiting for $what"; return 1; fi
    sleep 0.5
  done
}

pid_alive() { [[ -f "$RUN/$1.pid" ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

fetch_artifacts() {
  if [[ -d "$INFRA/kafka-$KAFKA_VERSION/libs" && -f "$INFRA/apicurio-$APICURIO_VERSION/apicurio-registry-app-$APICURIO_VERSION-runner.jar" ]]; then
    return
  fi
  log "fetching Kafka $KAFKA_VERSION and Apicurio Registry $APICURIO_VERSION from Maven Central (first run only)"
  # shellcheck disable=SC2086
  mvn -q -B ${MAVEN_ARGS:-} -f "$ROOT/deploy/local/pom.xml" process-resources
}

kafka_registry_ready() { # the registry's ccompat API answers
  curl -fsS "http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7/subjects" >/dev/null
}

kafka_ready() { # a real metadata round trip, not just an open port
  java -cp "$INFRA/kafka-$KAFKA_VERSION/libs/*" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list >/dev/null 2>&1
}

start_kafka() {
  if port_open "$KAFKA_PORT"; then log "kafka already answering on 127.0.0.1:$KAFKA_PORT"; return; fi
  local dir="$DATA/kafka" conf="$RUN/kafka-server.properties"
  mkdir -p "$dir"
  cat > "$conf" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir
auto.create.topics.enable=false
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
delete.topic.enable=true
PROPS
  local cp="$INFRA/kafka-$KAFKA_VERSION/libs/*"
  if [[ ! -f "$dir/meta.properties" ]]; then
    log "formatting Kafka storage in $dir"
    java -cp "$cp" kafka.tools.StorageTool format -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null)" \
      -c "$conf" >"$LOGS/kafka-format.log" 2>&1
  fi
  log "starting Kafka $KAFKA_VERSION (KRaft) on 127.0.0.1:$KAFKA_PORT"
  KAFKA_HEAP="${KAFKA_HEAP:--Xms256m -Xmx1g}"
  # shellcheck disable=SC2086
  nohup java $KAFKA_HEAP -XX:+UseG1GC -Dlog4j.configuration="file:$ROOT/deploy/local/log4j.properties" \
    -Dkafka.logs.dir="$LOGS" -cp "$cp" kafka.Kafka "$conf" >"$LOGS/kafka.out" 2>&1 &
  echo $! >"$RUN/kafka.pid"
}

start_registry() {
  if port_open "$REGISTRY_PORT"; then log "registry already answering on 127.0.0.1:$REGISTRY_PORT"; return; fi
  log "starting Apicurio Registry $APICURIO_VERSION on 127.0.0.1:$REGISTRY_PORT (storage: H2 file under .local/data)"
  mkdir -p "$DATA/registry"
  REGISTRY_DATASOURCE_URL="jdbc:h2:file:$DATA/registry/db" \
  nohup java -Xms128m -Xmx512m -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dquarkus.datasource.jdbc.min-size=2 -Dquarkus.datasource.jdbc.initial-size=2 \
    -Dquarkus.log.level=WARN \
    -jar "$INFRA/apicurio-$APICURIO_VERSION/apicurio-registry-app-$APICURIO_VERSION-runner.jar" \
    >"$LOGS/registry.out" 2>&1 &
  echo $! >"$RUN/registry.pid"
}

ensure_postgres() {
  if pg_isready -q -h "$PGHOST" -p "$PGPORT"; then return; fi
  if [[ -n "${DATABASE_URL:-}" ]]; then log "DATABASE_URL is set but PostgreSQL does not answer"; return 1; fi
  log "PostgreSQL is not answering on $PGHOST:$PGPORT; starting the machine's cluster"
  local version; version="$(ls /etc/postgresql | sort -V | tail -n1)"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_until "postgres" 30 pg_isready -q -h "$PGHOST" -p "$PGPORT"
}

stop_one() {
  local name="$1"
  if pid_alive "$name"; then
    local pid; pid="$(cat "$RUN/$name.pid")"
    log "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$name.pid"
}

status() {
  local ok=0
  if port_open "$KAFKA_PORT"; then echo "kafka     up    127.0.0.1:$KAFKA_PORT$(pid_alive kafka && echo ' (started by infra:up)')"; else echo "kafka     down"; ok=1; fi
  if kafka_registry_ready; then echo "registry  up    http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7$(pid_alive registry && echo ' (started by infra:up)')"; else echo "registry  down"; ok=1; fi
  if pg_isready -q -h "$PGHOST" -p "$PGPORT"; then echo "postgres  up    $PGHOST:$PGPORT database ${PGDATABASE:-postsale}"; else echo "postgres  down"; ok=1; fi
  return $ok
}

case "${1:-}" in
  up)
    started=$SECONDS
    fetch_artifacts
    ensure_postgres
    start_kafka
    start_registry
    wait_until "kafka on 127.0.0.1:$KAFKA_PORT" 90 kafka_ready || { tail -n 30 "$LOGS/kafka.out" || true; exit 1; }
    wait_until "registry on 127.0.0.1:$REGISTRY_PORT" 90 kafka_registry_ready || { tail -n 30 "$LOGS/registry.out" || true; exit 1; }
    bash "$ROOT/deploy/local/db-setup.sh"
    log "ready in $((SECONDS - started))s"
    status
    ;;
  down)
    stop_one registry
    stop_one kafka
    ;;
  status)
    status
    ;;
  *)
    echo "usage: infra.sh up|down|status" >&2
    exit 2
    ;;
esac
