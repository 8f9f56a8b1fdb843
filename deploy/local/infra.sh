#!/usr/bin/env bash
# Local infrastructure without Docker: Apache Kafka (KRaft, single node) and Apicurio Registry from Maven Central jars,
# plus the machine's PostgreSQL. Idempotent: `up` starts only what is not answering; `down` stops only what `up` started.
#
# Kafka's client listener is SASL_PLAINTEXT with SCRAM-SHA-512 only: anonymous clients are refused. The one user is the
# dev user of deploy/local/kafka-dev.env (created when the storage is formatted, or, for storage formatted before, through
# the controller), the same file localInfraEnv() in @postsale/runtime reads for every local client. The controller
# listener stays PLAINTEXT on loopback: it is the broker's own, internal.
#
# A second stack beside the usual one (e.g. to try a broker change while others use the shared one): set
# POSTSALE_KAFKA_PORT, POSTSALE_KAFKA_CONTROLLER_PORT, POSTSALE_REGISTRY_PORT and POSTSALE_DATA_DIR (data, pid files and
# logs). localInfraEnv() follows POSTSALE_KAFKA_PORT and POSTSALE_REGISTRY_PORT, so tests run with the same variables
# target that stack. The registry keeps its schemas in its own H2 file, not in Kafka: a second broker can share it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL="$ROOT/.local"
INFRA="$LOCAL/infra"
if [[ -n "${POSTSALE_DATA_DIR:-}" ]]; then
  mkdir -p "$POSTSALE_DATA_DIR"
  DATA="$(cd "$POSTSALE_DATA_DIR" && pwd)"
  RUN="$DATA/run"
  LOGS="$DATA/logs"
else
  DATA="$LOCAL/data"
  RUN="$LOCAL/run"
  LOGS="$LOCAL/logs"
fi
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/deploy/local/pom.xml")"
APICURIO_VERSION="$(sed -n 's:.*<apicurio.version>\(.*\)</apicurio.version>.*:\1:p' "$ROOT/deploy/local/pom.xml")"
KAFKA_PORT="${POSTSALE_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${POSTSALE_KAFKA_CONTROLLER_PORT:-9093}"
REGISTRY_PORT="${POSTSALE_REGISTRY_PORT:-8081}"
# Test namespaces (testEnv `t-…`, e2e `e2e-…`, bench `bench-…` and `rss…`): their topics are throw-away. Above this many
# partition directories left by earlier runs, `up` deletes those topics (each partition costs the broker open files).
STALE_TEST_PARTITIONS="${POSTSALE_KAFKA_STALE_TEST_PARTITIONS:-2000}"
TEST_TOPICS_REGEX='(t-|e2e-|bench-|rss)[A-Za-z0-9]+[.].*'
PGHOST="${PGHOST:-127.0.0.1}"
PGPORT="${PGPORT:-5432}"
export PGHOST PGPORT

# KAFKA_SASL_MECHANISM / KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD of the local stack (read, not inherited from the caller)
declare -A DEV
while IFS='=' read -r key value; do
  if [[ $key =~ ^KAFKA_SASL_[A-Z]+$ ]]; then DEV[$key]="$value"; fi
done <"$ROOT/deploy/local/kafka-dev.env"
[[ ${DEV[KAFKA_SASL_MECHANISM]:-} == scram-sha-512 && ${DEV[KAFKA_SASL_USERNAME]:-} =~ ^[A-Za-z0-9_.-]+$ && ${DEV[KAFKA_SASL_PASSWORD]:-} =~ ^[A-Za-z0-9_.-]+$ ]] || {
  echo "deploy/local/kafka-dev.env: needs KAFKA_SASL_MECHANISM=scram-sha-512 and a username and password of letters, digits, _ . -" >&2
  exit 2
}
KAFKA_USER="${DEV[KAFKA_SASL_USERNAME]}"
KAFKA_PASSWORD="${DEV[KAFKA_SASL_PASSWORD]}"
SCRAM_JAAS="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$KAFKA_USER\" password=\"$KAFKA_PASSWORD\";"

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

kafka_tools() { # class args…: a Kafka command-line tool from the release jars
  java -cp "$INFRA/kafka-$KAFKA_VERSION/libs/*" "$@"
}

write_client_properties() { # what a Java tool needs to log in to the client listener
  cat >"$RUN/kafka-client.properties" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=$SCRAM_JAAS
PROPS
  chmod 600 "$RUN/kafka-client.properties"
}

kafka_ready() { # a real, authenticated metadata round trip, not just an open port
  kafka_tools org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    --command-config "$RUN/kafka-client.properties" --list >/dev/null 2>&1
}

# SCRAM users live in the cluster metadata. Storage formatted here gets the dev user at format time (--add-scram).
# Storage formatted before (a PLAINTEXT broker's) gets it once, from a broker started briefly with a PLAINTEXT listener on
# a random loopback port only this script knows (KRaft 3.9's controller listener does not take AlterUserScramCredentials).
# The marker remembers which credentials the metadata holds.
scram_marker() { echo "$DATA/kafka/postsale-scram-user"; }
scram_wanted() { printf '%s:%s' "$KAFKA_USER" "$KAFKA_PASSWORD" | sha256sum | cut -d' ' -f1; }

add_scram_user_to_existing_storage() { # conf: the broker's properties; the broker is not running
  local conf="$1" port tmp="$RUN/kafka-add-scram.properties" pid status=0
  until port=$((20000 + RANDOM % 40000)) && ! port_open "$port"; do :; done
  log "adding the SCRAM-SHA-512 user $KAFKA_USER to storage formatted without it (one-off start on 127.0.0.1:$port)"
  sed -e "s|^listeners=.*|listeners=ADDSCRAM://127.0.0.1:$port,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT|" \
    -e "s|^advertised.listeners=.*|advertised.listeners=ADDSCRAM://127.0.0.1:$port|" \
    -e "s|^listener.security.protocol.map=.*|listener.security.protocol.map=ADDSCRAM:PLAINTEXT,CONTROLLER:PLAINTEXT|" \
    -e "s|^inter.broker.listener.name=.*|inter.broker.listener.name=ADDSCRAM|" \
    -e '/^sasl[.]/d' -e '/^listener[.]name[.]/d' "$conf" >"$tmp"
  # shellcheck disable=SC2086
  java ${KAFKA_HEAP:--Xms256m -Xmx1g} -Dlog4j.configuration="file:$ROOT/deploy/local/log4j.properties" -Dkafka.logs.dir="$LOGS" \
    -cp "$INFRA/kafka-$KAFKA_VERSION/libs/*" kafka.Kafka "$tmp" >"$LOGS/kafka-add-scram.out" 2>&1 &
  pid=$!
  wait_until "the one-off broker on 127.0.0.1:$port to take the user" 180 \
    kafka_tools kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$port" --alter --entity-type users \
    --entity-name "$KAFKA_USER" --add-config "SCRAM-SHA-512=[password=$KAFKA_PASSWORD]" || status=1
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$tmp"
  if (( status )); then tail -n 30 "$LOGS/kafka-add-scram.out"; return 1; fi
  scram_wanted >"$(scram_marker)"
}

# Leftovers of earlier test runs: only looked at while no broker runs, so no test can be using those topics.
count_test_partitions() {
  find "$DATA/kafka" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended -regex ".*/${TEST_TOPICS_REGEX}-[0-9]+" 2>/dev/null | wc -l
}

delete_test_topics() {
  log "deleting the topics of earlier test runs (namespaces t-, e2e-, bench-, rss…)"
  kafka_tools org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    --command-config "$RUN/kafka-client.properties" --delete --if-exists --topic "$TEST_TOPICS_REGEX" >"$LOGS/kafka-clean.log" 2>&1 \
    || log "could not delete them (see $LOGS/kafka-clean.log)"
}

STALE_TEST_TOPICS=0
start_kafka() {
  if port_open "$KAFKA_PORT"; then log "kafka already answering on 127.0.0.1:$KAFKA_PORT"; return; fi
  local dir="$DATA/kafka" conf="$RUN/kafka-server.properties"
  mkdir -p "$dir"
  local stale; stale="$(count_test_partitions)"
  if (( stale > STALE_TEST_PARTITIONS )); then
    log "WARNING: $stale partition directories of earlier test runs in $dir (open-file limit $(ulimit -n)); they are deleted once Kafka is up"
    STALE_TEST_TOPICS=1
  fi
  cat > "$conf" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=SASL_PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=$SCRAM_JAAS
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
  chmod 600 "$conf"
  local cp="$INFRA/kafka-$KAFKA_VERSION/libs/*"
  if [[ ! -f "$dir/meta.properties" ]]; then
    log "formatting Kafka storage in $dir (SCRAM-SHA-512 user $KAFKA_USER)"
    java -cp "$cp" kafka.tools.StorageTool format -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null)" \
      -c "$conf" --add-scram "SCRAM-SHA-512=[name=$KAFKA_USER,password=$KAFKA_PASSWORD]" >"$LOGS/kafka-format.log" 2>&1
    scram_wanted >"$(scram_marker)"
  elif [[ "$(cat "$(scram_marker)" 2>/dev/null)" != "$(scram_wanted)" ]]; then
    add_scram_user_to_existing_storage "$conf"
  fi
  log "starting Kafka $KAFKA_VERSION (KRaft, SASL/SCRAM-SHA-512) on 127.0.0.1:$KAFKA_PORT"
  KAFKA_HEAP="${KAFKA_HEAP:--Xms256m -Xmx1g}"
  # shellcheck disable=SC2086
  nohup java $KAFKA_HEAP -XX:+UseG1GC -Dlog4j.configuration="file:$ROOT/deploy/local/log4j.properties" \
    -Dkafka.logs.dir="$LOGS" -cp "$cp" kafka.Kafka "$conf" >"$LOGS/kafka.out" 2>&1 &
  echo $! >"$RUN/kafka.pid"
}

start_registry() {
  if port_open "$REGISTRY_PORT"; then log "registry already answering on 127.0.0.1:$REGISTRY_PORT"; return; fi
  log "starting Apicurio Registry $APICURIO_VERSION on 127.0.0.1:$REGISTRY_PORT (storage: H2 file under $DATA/registry)"
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
  if port_open "$KAFKA_PORT"; then echo "kafka     up    127.0.0.1:$KAFKA_PORT SASL/SCRAM-SHA-512 (user from deploy/local/kafka-dev.env)$(pid_alive kafka && echo ' (started by infra:up)')"; else echo "kafka     down"; ok=1; fi
  if kafka_registry_ready; then echo "registry  up    http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7$(pid_alive registry && echo ' (started by infra:up)')"; else echo "registry  down"; ok=1; fi
  if pg_isready -q -h "$PGHOST" -p "$PGPORT"; then echo "postgres  up    $PGHOST:$PGPORT database ${PGDATABASE:-postsale}"; else echo "postgres  down"; ok=1; fi
  return $ok
}

case "${1:-}" in
  up)
    started=$SECONDS
    fetch_artifacts
    ensure_postgres
    write_client_properties
    start_kafka
    start_registry
    wait_until "kafka on 127.0.0.1:$KAFKA_PORT" 90 kafka_ready || { tail -n 30 "$LOGS/kafka.out" || true; exit 1; }
    if (( STALE_TEST_TOPICS )); then delete_test_topics; fi
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
