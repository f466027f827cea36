#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft) from Maven Central jars, for development and tests.
#
#   deploy/kafka/kafka.sh fetch    resolve the broker jars with Maven (cached in .kafka/lib)
#   deploy/kafka/kafka.sh start    fetch if needed, format storage on first start, start, wait until it answers
#   deploy/kafka/kafka.sh stop     stop it (SIGTERM, then SIGKILL after a bound)
#   deploy/kafka/kafka.sh status   print whether it runs and where
#   deploy/kafka/kafka.sh reset    stop and delete the data folder
#
# Settings (environment): STOCKSYNC_KAFKA_PORT (default 9092), STOCKSYNC_KAFKA_CONTROLLER_PORT
# (default port+1), STOCKSYNC_KAFKA_HOME (default <repo>/.kafka), KAFKA_HEAP (default 1g).
# STOCKSYNC_KAFKA_SCRAM_USERS="admin:secret,channel-web:pw,...": the client listener is then
# SASL_PLAINTEXT with SCRAM-SHA-512 for these users (created when the storage is formatted) and
# ACLs are enforced; the first user is a super user. For testing security settings and ACLs.
# STOCKSYNC_KAFKA_TLS_DIR=<dir with broker.pem (PKCS#8 key + certificate chain) and ca.pem>:
# the client listener is then SSL (TLS) with that certificate.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
port=${STOCKSYNC_KAFKA_PORT:-9092}
cport=${STOCKSYNC_KAFKA_CONTROLLER_PORT:-$((port + 1))}
home=${STOCKSYNC_KAFKA_HOME:-$repo/.kafka}
lib=$home/lib
data=$home/data-$port
logs=$home/logs-$port
pidfile=$home/broker-$port.pid
props=$home/server-$port.properties
heap=${KAFKA_HEAP:-1g}
scram_users=${STOCKSYNC_KAFKA_SCRAM_USERS:-}
tls_dir=${STOCKSYNC_KAFKA_TLS_DIR:-}
start_timeout=${STOCKSYNC_KAFKA_START_TIMEOUT:-90}

say() { printf 'kafka.sh: %s\n' "$*" >&2; }

running_pid() {
  [[ -f $pidfile ]] || return 1
  local pid
  pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null && { echo "$pid"; return 0; }
  return 1
}

fetch() {
  if [[ -f $lib/.complete ]]; then return 0; fi
  command -v mvn >/dev/null || { say "Maven (mvn) is required to fetch the Kafka jars"; exit 2; }
  command -v java >/dev/null || { say "Java 17+ is required to run Kafka"; exit 2; }
  say "fetching Apache Kafka jars from Maven Central into $lib (first run only)"
  mkdir -p "$lib"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$lib" -DincludeScope=runtime
  touch "$lib/.complete"
}

write_props() {
  mkdir -p "$data" "$logs"
  local client=PLAINTEXT
  [[ -n $scram_users ]] && client=SASL_PLAINTEXT
  [[ -n $tls_dir ]] && client=SSL
  [[ -n $tls_dir && -n $scram_users ]] && client=SASL_SSL
  cat >"$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$client://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=$client://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=$client
listener.security.protocol.map=CONTROLLER:PLAINTEXT,$client:$client
log.dirs=$data
num.partitions=1
# Topics are provisioned explicitly (stocksync topics create); an auto-created topic with the
# wrong partition count breaks co-partitioning with table changelogs.
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=-1
log.segment.bytes=67108864
log.cleaner.dedupe.buffer.size=33554432
PROPS
  if [[ -n $tls_dir ]]; then
    cat >>"$props" <<PROPS
ssl.keystore.type=PEM
ssl.keystore.location=$tls_dir/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$tls_dir/ca.pem
ssl.endpoint.identification.algorithm=https
PROPS
  fi
  if [[ -n $scram_users ]]; then
    local admin=${scram_users%%,*}
    cat >>"$props" <<PROPS
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.${client,,}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="${admin%%:*}" password="${admin#*:}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
# the controller listener is local and plaintext: its principal is ANONYMOUS
super.users=User:${admin%%:*};User:ANONYMOUS
allow.everyone.if.no.acl.found=false
PROPS
  fi
}

scram_args() {
  local user
  IFS=',' read -ra users <<<"$scram_users"
  for user in "${users[@]}"; do
    printf -- '--add-scram\nSCRAM-SHA-512=[name=%s,password=%s]\n' "${user%%:*}" "${user#*:}"
  done
}

java_cmd() {
  java "-Xms256m" "-Xmx$heap" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dkafka.logs.dir="$logs" -Dlog4j2.configurationFile="$here/log4j2.properties" \
    -cp "$lib/*" "$@"
}

answers() {
  # The broker logs this line once its listeners accept requests.
  grep -q "Kafka Server started" "$logs/server.log" 2>/dev/null &&
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

start() {
  if pid=$(running_pid); then say "already running (pid $pid) on 127.0.0.1:$port"; return 0; fi
  fetch
  write_props
  if [[ ! -f $data/meta.properties ]]; then
    local cluster_id
    cluster_id=$(java_cmd kafka.tools.StorageTool random-uuid | tail -n 1)
    local extra=()
    [[ -n $scram_users ]] && mapfile -t extra < <(scram_args)
    java_cmd kafka.tools.StorageTool format -t "$cluster_id" -c "$props" "${extra[@]}" \
      >"$logs/format.log" 2>&1 ||
      { say "formatting storage failed:"; cat "$logs/format.log" >&2; exit 1; }
  fi
  : >"$logs/server.log"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || (exec 3<>"/dev/tcp/127.0.0.1/$cport") 2>/dev/null; then
    say "port $port or $cport is already taken by another process; choose STOCKSYNC_KAFKA_PORT"
    exit 1
  fi
  rm -f "$pidfile"
  # setsid: the broker outlives the shell that started it and ignores its terminal's Ctrl-C.
  # setsid may fork, so the broker's shell writes its own pid before exec'ing java.
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" \
    java "-Xms256m" "-Xmx$heap" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dkafka.logs.dir="$logs" -Dlog4j2.configurationFile="$here/log4j2.properties" \
    -cp "$lib/*" kafka.Kafka "$props" >"$logs/stdout.log" 2>&1 </dev/null &
  for _ in $(seq 1 50); do [[ -s $pidfile ]] && break; sleep 0.1; done
  local waited=0
  until answers; do
    if ! running_pid >/dev/null; then
      say "broker exited during start; last lines of $logs:"
      tail -n 30 "$logs/stdout.log" "$logs/server.log" >&2 || true
      exit 1
    fi
    if ((waited >= start_timeout * 2)); then
      say "broker did not answer within ${start_timeout}s; see $logs/server.log"
      exit 1
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
  say "running on 127.0.0.1:$port (pid $(cat "$pidfile"), data $data)"
  echo "127.0.0.1:$port"
}

stop() {
  local pid
  if ! pid=$(running_pid); then say "not running"; rm -f "$pidfile"; return 0; fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; say "stopped"; return 0; }
    sleep 0.5
  done
  say "broker ignored SIGTERM for 30s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status)
    if pid=$(running_pid); then echo "running pid=$pid bootstrap=127.0.0.1:$port"; else echo "stopped"; exit 3; fi ;;
  reset) stop; rm -rf "$data" "$logs" "$props"; say "data removed" ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
