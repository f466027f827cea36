#!/usr/bin/env bash
# Local Apache Kafka (KRaft) from Maven Central jars, for development and tests: one node, or a
# cluster of three.
#
#   deploy/kafka/kafka.sh fetch    resolve the broker jars with Maven (cached in .kafka/lib)
#   deploy/kafka/kafka.sh start    fetch if needed, format storage on first start, start, wait until it answers
#   deploy/kafka/kafka.sh stop     stop it (SIGTERM, then SIGKILL after a bound)
#   deploy/kafka/kafka.sh status   print whether it runs and where
#   deploy/kafka/kafka.sh reset    stop and delete the data folder
#   deploy/kafka/kafka.sh cluster start|stop|status|reset   three broker+controller nodes
#   deploy/kafka/kafka.sh cluster kill N|restart N          SIGKILL node N (1-3) / start it again
#
# Settings (environment): STOCKSYNC_KAFKA_PORT (default 9092), STOCKSYNC_KAFKA_CONTROLLER_PORT
# (default port+1), STOCKSYNC_KAFKA_HOME (default <repo>/.kafka), KAFKA_HEAP (default 1g).
# STOCKSYNC_KAFKA_SCRAM_USERS="admin:secret,channel-web:pw,...": the client listener is then
# SASL_PLAINTEXT with SCRAM-SHA-512 for these users (created when the storage is formatted) and
# ACLs are enforced; the first user is a super user. For testing security settings and ACLs.
# STOCKSYNC_KAFKA_TLS_DIR=<dir with broker.pem (PKCS#8 key + certificate chain) and ca.pem>:
# the client listener is then SSL (TLS) with that certificate.
# Cluster: STOCKSYNC_KAFKA_CLUSTER_PORT (default 19192): node N's broker listens on port+N-1,
# its controller on STOCKSYNC_KAFKA_CLUSTER_CONTROLLER_PORT+N-1 (default port+3), data in
# <home>/cluster-<port>/node-N. One cluster id, all three controllers vote, topics default to 3
# replicas and min.insync.replicas=2 (internal topics too). `status` exits 0 when every node
# answers, 3 when none runs, 4 otherwise. Plaintext only (no SCRAM/TLS settings).
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
# What the properties say about this node and its quorum. The single node is voter 1 of a quorum
# of one and can keep no more than one replica; `cluster` points these at node N of three.
node_id=1
voters="1@127.0.0.1:$cport"
replicas=1
min_isr=1
port_setting=STOCKSYNC_KAFKA_PORT
cluster_id=""

say() { printf 'kafka.sh: %s\n' "$*" >&2; }

running_pid() {
  [[ -f $pidfile ]] || return 1
  local pid state
  pid=$(cat "$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1 # empty: the broker's shell has not written it yet
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r /proc/$pid/stat ]]; then
    # A SIGKILLed broker stays a zombie until something reaps it, and kill -0 still finds one.
    state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ $state != Z ]] || return 1
    # A pid outlives its process in the pidfile and can be reused: only ours names our props
    # (the broker's shell before exec and java after both do), so no stranger is signalled.
    names_props "$pid" || return 1
  fi
  echo "$pid"
}

names_props() {
  # Whether process $1 has our properties file among its arguments, however it was spelled
  # when started (a relative STOCKSYNC_KAFKA_HOME is relative to that process's directory).
  local arg want
  want=$(realpath -m -- "$props")
  while IFS= read -r -d '' arg; do
    [[ $arg == *.properties ]] || continue
    [[ $arg == /* ]] || arg=/proc/$1/cwd/$arg
    [[ $(realpath -m -- "$arg" 2>/dev/null) == "$want" ]] && return 0
  done 2>/dev/null <"/proc/$1/cmdline"
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
node.id=$node_id
controller.quorum.voters=$voters
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
# A topic created without a replication factor gets a copy on every node, and an acks=all
# write needs min.insync.replicas copies: of three nodes, one can fail and writes go on.
default.replication.factor=$replicas
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$replicas
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$replicas
share.coordinator.state.topic.min.isr=$min_isr
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

format_storage() {
  # First start only: a formatted log dir keeps its cluster id and node id for good. The nodes
  # of a cluster share the id `cluster` chose; a single node makes up its own.
  [[ -f $data/meta.properties ]] && return 0
  local id=$cluster_id
  [[ -n $id ]] || id=$(java_cmd kafka.tools.StorageTool random-uuid | tail -n 1)
  local extra=()
  [[ -n $scram_users ]] && mapfile -t extra < <(scram_args)
  java_cmd kafka.tools.StorageTool format -t "$id" -c "$props" "${extra[@]}" \
    >"$logs/format.log" 2>&1 ||
    { say "formatting storage failed:"; cat "$logs/format.log" >&2; exit 1; }
}

launch() {
  # Start the broker the variables describe and return once it has written its pid; whether
  # it comes up is for the caller to wait on.
  : >"$logs/server.log"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || (exec 3<>"/dev/tcp/127.0.0.1/$cport") 2>/dev/null; then
    say "port $port or $cport is already taken by another process; choose $port_setting"
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
}

start() {
  if pid=$(running_pid); then say "already running (pid $pid) on 127.0.0.1:$port"; return 0; fi
  fetch
  write_props
  format_storage
  launch
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
    running_pid >/dev/null || { rm -f "$pidfile"; say "stopped"; return 0; }
    sleep 0.5
  done
  say "broker ignored SIGTERM for 30s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

# -- a three-node cluster -------------------------------------------------------------------

cluster_nodes=(1 2 3)
cluster_port=${STOCKSYNC_KAFKA_CLUSTER_PORT:-19192}
cluster_cport=${STOCKSYNC_KAFKA_CLUSTER_CONTROLLER_PORT:-}

cluster_settings() {
  local name value
  for name in STOCKSYNC_KAFKA_CLUSTER_PORT STOCKSYNC_KAFKA_CLUSTER_CONTROLLER_PORT; do
    value=${!name:-}
    if [[ -n $value && ! $value =~ ^[1-9][0-9]*$ ]]; then
      say "$name=$value is not a port number; set it to the first of the cluster's ports (or unset it)"
      exit 2
    fi
  done
  [[ -n $cluster_cport ]] || cluster_cport=$((cluster_port + ${#cluster_nodes[@]}))
  if ((cluster_cport + ${#cluster_nodes[@]} - 1 > 65535)); then
    say "STOCKSYNC_KAFKA_CLUSTER_PORT=$cluster_port: the cluster needs $((2 * ${#cluster_nodes[@]})) ports from it; choose a lower one"
    exit 2
  fi
  if ((cluster_cport < cluster_port + ${#cluster_nodes[@]} && cluster_port < cluster_cport + ${#cluster_nodes[@]})); then
    say "STOCKSYNC_KAFKA_CLUSTER_CONTROLLER_PORT=$cluster_cport overlaps the brokers' ports $cluster_port-$((cluster_port + ${#cluster_nodes[@]} - 1)); unset it or move it"
    exit 2
  fi
  # The nodes talk to each other over the client listener: SCRAM or TLS there needs broker
  # credentials and certificates per node, which this launcher does not make.
  if [[ -n $scram_users || -n $tls_dir ]]; then
    say "the cluster runs plaintext only: unset STOCKSYNC_KAFKA_SCRAM_USERS and STOCKSYNC_KAFKA_TLS_DIR (the single node supports them)"
    exit 2
  fi
  # Outgoing connections (the nodes' own, to each other) take local ports from the ephemeral
  # range: a node's port taken that way before it listens makes the node fail to bind.
  local range low high
  if range=$(cat /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null); then
    read -r low high <<<"$range"
    if ((cluster_port <= high && cluster_cport + ${#cluster_nodes[@]} - 1 >= low)); then
      say "warning: the cluster's ports $cluster_port.. and $cluster_cport.. reach into the ephemeral range $low-$high, where outgoing connections can take them first; choose STOCKSYNC_KAFKA_CLUSTER_PORT below $low"
    fi
  fi
  cluster_home=$home/cluster-$cluster_port
  local n
  voters=""
  for n in "${cluster_nodes[@]}"; do voters+="${voters:+,}$n@127.0.0.1:$((cluster_cport + n - 1))"; done
  replicas=${#cluster_nodes[@]}
  min_isr=2
  port_setting=STOCKSYNC_KAFKA_CLUSTER_PORT
}

use_node() {
  # Point the single node's variables at node $1, so fetch/write_props/launch/answers serve it.
  node_id=$1
  port=$((cluster_port + $1 - 1))
  cport=$((cluster_cport + $1 - 1))
  data=$cluster_home/node-$1/data
  logs=$cluster_home/node-$1/logs
  pidfile=$cluster_home/node-$1/kafka.pid
  props=$cluster_home/node-$1/server.properties
}

node_arg() {
  local n=${1:-}
  if [[ ! $n =~ ^[1-9][0-9]*$ ]] || ((n > ${#cluster_nodes[@]})); then
    say "name a node: 1 to ${#cluster_nodes[@]} (got '${n}')"
    exit 2
  fi
  echo "$n"
}

cluster_bootstrap() {
  local n out=""
  for n in "${cluster_nodes[@]}"; do out+="${out:+,}127.0.0.1:$((cluster_port + n - 1))"; done
  echo "$out"
}

cluster_await() {
  # Wait for the given nodes together: none answers before a majority of controllers runs.
  local pending=("$@") still n waited=0
  while true; do
    still=()
    for n in "${pending[@]}"; do
      use_node "$n"
      answers && continue
      if ! running_pid >/dev/null; then
        say "node $n exited during start; last lines of $logs:"
        tail -n 30 "$logs/stdout.log" "$logs/server.log" >&2 || true
        say "nodes already running keep running: \`kafka.sh cluster stop\` stops them"
        exit 1
      fi
      still+=("$n")
    done
    ((${#still[@]})) || return 0
    pending=("${still[@]}")
    if ((waited >= start_timeout * 2)); then
      say "node(s) ${pending[*]} did not answer within ${start_timeout}s; see $cluster_home/node-N/logs/server.log"
      exit 1
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
}

cluster_start() {
  local n pid taken=() down=()
  for n in "${cluster_nodes[@]}"; do
    use_node "$n"
    if pid=$(running_pid); then say "node $n already running (pid $pid)"; continue; fi
    down+=("$n")
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && taken+=("$port")
    (exec 3<>"/dev/tcp/127.0.0.1/$cport") 2>/dev/null && taken+=("$cport")
  done
  # Checked for all nodes before any starts, rather than leaving a cluster half started.
  if ((${#taken[@]})); then
    say "port(s) ${taken[*]} already taken by another process; choose STOCKSYNC_KAFKA_CLUSTER_PORT (it uses $cluster_port-$((cluster_port + ${#cluster_nodes[@]} - 1)) and $cluster_cport-$((cluster_cport + ${#cluster_nodes[@]} - 1)))"
    exit 1
  fi
  fetch
  use_node 1
  mkdir -p "$logs"
  # One id for every node's storage: nodes formatted with different ids refuse each other.
  [[ -s $cluster_home/cluster.id ]] ||
    java_cmd kafka.tools.StorageTool random-uuid | tail -n 1 >"$cluster_home/cluster.id"
  cluster_id=$(cat "$cluster_home/cluster.id")
  for n in "${down[@]}"; do
    use_node "$n"
    write_props
    format_storage
    launch
  done
  cluster_await "${cluster_nodes[@]}"
  say "cluster running: brokers $(cluster_bootstrap), controllers 127.0.0.1:$cluster_cport-$((cluster_cport + ${#cluster_nodes[@]} - 1)), data $cluster_home"
  cluster_bootstrap
}

cluster_stop() {
  # SIGTERM to every node at once: a node stopped last, alone, has no controller majority to
  # approve its controlled shutdown and would wait out the SIGKILL bound.
  local n pid stopping=()
  for n in "$@"; do
    use_node "$n"
    if pid=$(running_pid); then
      kill -TERM "$pid" 2>/dev/null || true
      stopping+=("$n")
    else
      rm -f "$pidfile"
    fi
  done
  ((${#stopping[@]})) || { say "node(s) $* not running"; return 0; }
  local still
  for _ in $(seq 1 60); do
    still=()
    for n in "${stopping[@]}"; do
      use_node "$n"
      if running_pid >/dev/null; then still+=("$n"); else rm -f "$pidfile"; fi
    done
    ((${#still[@]})) || { say "stopped node(s) ${stopping[*]}"; return 0; }
    sleep 0.5
  done
  say "node(s) ${still[*]} ignored SIGTERM for 30s; sending SIGKILL"
  for n in "${still[@]}"; do
    use_node "$n"
    pid=$(running_pid) && kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

cluster_kill() {
  local n pid
  n=$(node_arg "${1:-}")
  use_node "$n"
  if ! pid=$(running_pid); then say "node $n is not running; nothing to kill"; exit 1; fi
  kill -KILL "$pid"
  for _ in $(seq 1 100); do running_pid >/dev/null || break; sleep 0.1; done
  if running_pid >/dev/null; then say "node $n (pid $pid) still runs 10s after SIGKILL"; exit 1; fi
  rm -f "$pidfile"
  say "node $n killed (SIGKILL, pid $pid); its data stays: \`kafka.sh cluster restart $n\` starts it again"
}

cluster_restart() {
  local n
  n=$(node_arg "${1:-}")
  if [[ ! -s $cluster_home/cluster.id ]]; then
    say "no cluster in $cluster_home: \`kafka.sh cluster start\` first (STOCKSYNC_KAFKA_CLUSTER_PORT=$cluster_port)"
    exit 1
  fi
  cluster_id=$(cat "$cluster_home/cluster.id")
  use_node "$n"
  running_pid >/dev/null && cluster_stop "$n"
  fetch
  use_node "$n"
  write_props
  format_storage
  launch
  cluster_await "$n"
  say "node $n running on 127.0.0.1:$port (pid $(cat "$pidfile"))"
  cluster_bootstrap
}

cluster_status() {
  local n pid state up=0 running=0
  for n in "${cluster_nodes[@]}"; do
    use_node "$n"
    if pid=$(running_pid); then
      running=$((running + 1))
      if answers; then state=up; up=$((up + 1)); else state=starting; fi
    else
      state=down pid=-
    fi
    printf 'node %s %-8s pid=%-8s broker=127.0.0.1:%s controller=127.0.0.1:%s\n' \
      "$n" "$state" "$pid" "$port" "$cport"
  done
  echo "bootstrap=$(cluster_bootstrap)"
  ((up == ${#cluster_nodes[@]})) && return 0
  ((running == 0)) && return 3
  return 4
}

cluster() {
  cluster_settings
  case "${1:-}" in
    start) cluster_start ;;
    stop) cluster_stop "${cluster_nodes[@]}" ;;
    status) cluster_status ;;
    kill) cluster_kill "${2:-}" ;;
    restart) cluster_restart "${2:-}" ;;
    reset) cluster_stop "${cluster_nodes[@]}"; rm -rf "$cluster_home"; say "cluster data removed" ;;
    *) say "cluster: start|stop|status|reset|kill N|restart N"; exit 2 ;;
  esac
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status)
    if pid=$(running_pid); then echo "running pid=$pid bootstrap=127.0.0.1:$port"; else echo "stopped"; exit 3; fi ;;
  reset) stop; rm -rf "$data" "$logs" "$props"; say "data removed" ;;
  cluster) shift; cluster "$@" ;;
  *) sed -n '2,24p' "$0"; exit 2 ;;
esac
