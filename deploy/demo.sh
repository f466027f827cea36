#!/usr/bin/env bash
# One command on a fresh machine: install, start a local Kafka broker, provision topics, start a
# worker and simulated channels, and print where to look.
#
#   bash deploy/demo.sh          start, in the foreground (Ctrl-C stops the worker and channels)
#   bash deploy/demo.sh status   what runs: PIDs, URLs, health (exit 0 running, 3 not, 1 broken)
#   bash deploy/demo.sh stop     stop what the demo started: its worker, endpoints, connectors
#                                and simulator, and the broker if the demo started it
#
# A second start while a demo runs starts nothing and touches none of its files: it says so,
# shows the status and exits 0 (1 if that demo is broken, saying what to do). Each start keeps
# the previous runs' logs: <data>/logs is this run's, logs.1 the run before, up to
# logs.$DEMO_KEEP_LOGS.
#
# Settings (environment): STOCKSYNC_KAFKA_PORT (9092), STOCKSYNC_BOOTSTRAP_SERVERS
# (127.0.0.1:<kafka port>; a broker that already answers there is used, not started),
# STOCKSYNC_HTTP_PORT (8080: the worker), STOCKSYNC_DATA_DIR (.state/demo: the worker's state,
# the logs, the PID files), DEMO_RATE (20 events/s), DEMO_ENDPOINT_PORTS ("8181 8182 8183":
# the simulated web shop, marketplace and POS APIs), DEMO_CONNECTOR_PORTS ("8191 8192 8193":
# their connectors' status APIs), DEMO_KEEP_LOGS (5). Other STOCKSYNC_* settings reach every
# process.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

export STOCKSYNC_KAFKA_PORT=${STOCKSYNC_KAFKA_PORT:-9092}
export STOCKSYNC_BOOTSTRAP_SERVERS=${STOCKSYNC_BOOTSTRAP_SERVERS:-127.0.0.1:$STOCKSYNC_KAFKA_PORT}
export STOCKSYNC_HTTP_PORT=${STOCKSYNC_HTTP_PORT:-8080}
export STOCKSYNC_DATA_DIR=${STOCKSYNC_DATA_DIR:-$repo/.state/demo}
rate=${DEMO_RATE:-20}
read -ra endpoint_ports <<<"${DEMO_ENDPOINT_PORTS:-8181 8182 8183}"
read -ra status_ports <<<"${DEMO_CONNECTOR_PORTS:-8191 8192 8193}"
keep_logs=${DEMO_KEEP_LOGS:-5}
channels=(web amazon pos-store-1)
kinds=(webshop marketplace pos)  # sim/endpoints.py: what each channel's simulated API does
# each connector's budget, within what its simulated API allows (the marketplace: 5 req/s)
connector_rates=(50 4 20)
connector_bursts=(20 4 10)
ready_timeout_s=120

data=$STOCKSYNC_DATA_DIR
run=$data/run  # what a running demo started: <name>.pid ("pid start-time"), demo.env
logs=$data/logs

derive_addresses() {
  api=http://127.0.0.1:$STOCKSYNC_HTTP_PORT
  local first=${STOCKSYNC_BOOTSTRAP_SERVERS%%,*}
  broker_host=${first%:*}
  broker_port=${first##*:}
}
derive_addresses
components=(worker endpoints connector-web connector-amazon connector-pos-store-1 simulator)

say() { printf 'demo: %s\n' "$*"; }
fail() { printf 'demo: %s\n' "$*" >&2; }

if ((${#endpoint_ports[@]} != 3 || ${#status_ports[@]} != 3)); then
  fail "DEMO_ENDPOINT_PORTS and DEMO_CONNECTOR_PORTS take three ports each (web, amazon, pos-store-1)"
  exit 2
fi
if ! [[ $keep_logs =~ ^[1-9][0-9]*$ ]]; then
  fail "DEMO_KEEP_LOGS=$keep_logs: give how many earlier runs' logs to keep, 1 or more"
  exit 2
fi

# --- processes ---------------------------------------------------------------------------------

# The start time of a running process (clock ticks since boot), so that a PID file is never
# taken for a new process that got the same PID. Fails for a process gone or a zombie.
proc_start() {
  if [[ -d /proc/self ]]; then
    local stat fields
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    # after "pid (command) ": state is field 3 and starttime field 22
    read -ra fields <<<"${stat##*) }"
    [[ ${fields[0]} != Z ]] || return 1
    echo "${fields[19]}"
  else  # no /proc (macOS): whether it runs, without the reuse check
    kill -0 "$1" 2>/dev/null && echo "-"
  fi
}

record() {  # name pid
  echo "$2 $(proc_start "$2" || echo gone)" >"$run/$1.pid"
}

# The PID in <run>/<name>.pid when that very process still runs.
alive() {
  local file=$run/$1.pid pid start now
  [[ -f $file ]] || return 1
  read -r pid start <"$file" || return 1
  now=$(proc_start "$pid") || return 1
  [[ $now == "$start" ]] || return 1
  echo "$pid"
}

gone_within() {  # pid seconds
  local _
  for _ in $(seq 1 $(($2 * 4))); do proc_start "$1" >/dev/null || return 0; sleep 0.25; done
  return 1
}

# TERM, then KILL after a bound; the PID file goes either way. Says what it stopped unless
# told not to (the caller says it).
stop_component() {  # name [quiet]
  local pid
  if pid=$(alive "$1"); then
    kill -TERM "$pid" 2>/dev/null || true
    if ! gone_within "$pid" 20; then
      say "$1 (pid $pid) still runs 20s after SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    [[ -n ${2:-} ]] || say "stopped $1 (pid $pid)"
  fi
  rm -f "$run/$1.pid"
}

port_answers() {  # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

http_code() {  # url: the HTTP status, 000 when nothing answers
  curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true
}

# --- what runs ---------------------------------------------------------------------------------

# Settings of the demo that runs (it may have been started with other ports or rate than this
# shell has): read back for status and stop.
load_running_settings() {
  # shellcheck disable=SC1091
  [[ -f $run/demo.env ]] && source "$run/demo.env"
  derive_addresses
}

save_running_settings() {
  echo "# started $(date '+%Y-%m-%d %H:%M:%S')"
  printf '%s=%q\n' STOCKSYNC_BOOTSTRAP_SERVERS "$STOCKSYNC_BOOTSTRAP_SERVERS" \
    STOCKSYNC_KAFKA_PORT "$STOCKSYNC_KAFKA_PORT" STOCKSYNC_HTTP_PORT "$STOCKSYNC_HTTP_PORT" \
    rate "$rate"
  echo "endpoint_ports=(${endpoint_ports[*]})"
  echo "status_ports=(${status_ports[*]})"
}

kafka_sh_pid() {  # the PID of the broker deploy/kafka/kafka.sh runs on STOCKSYNC_KAFKA_PORT
  bash deploy/kafka/kafka.sh status 2>/dev/null | sed -n 's/^running pid=\([0-9]*\).*/\1/p' || true
}

url_of() {  # component
  case $1 in
    worker) echo "$api (dashboard $api/dashboard)" ;;
    endpoints) printf 'http://127.0.0.1:%s ' "${endpoint_ports[@]}" ;;
    connector-*)
      local i
      for i in "${!channels[@]}"; do
        [[ connector-${channels[$i]} == "$1" ]] && echo "http://127.0.0.1:${status_ports[$i]}/v1/status"
      done ;;
    simulator) echo "$rate events/s to $STOCKSYNC_BOOTSTRAP_SERVERS" ;;
  esac
}

health_of() {  # component
  local code port i
  case $1 in
    worker)
      code=$(http_code "$api/readyz")
      case $code in
        200) echo "ready" ;;
        503) echo "not ready yet (joining, recovering or stalled: curl $api/readyz)" ;;
        *) echo "not answering on $api" ;;
      esac ;;
    endpoints)
      for port in "${endpoint_ports[@]}"; do
        [[ $(http_code "http://127.0.0.1:$port/") != 000 ]] || { echo "port $port not answering"; return; }
      done
      echo "answering" ;;
    connector-*)
      for i in "${!channels[@]}"; do
        [[ connector-${channels[$i]} == "$1" ]] || continue
        code=$(http_code "http://127.0.0.1:${status_ports[$i]}/v1/status")
        if [[ $code == 200 ]]; then echo "answering"; else echo "status API answers $code"; fi
      done ;;
    simulator) echo "producing" ;;
  esac
}

# Prints what runs; returns 0 when the demo runs whole, 3 when nothing of it runs, 1 otherwise.
report() {
  load_running_settings
  local demo_pid="" pid name running=0 missing=() started=""
  demo_pid=$(alive demo) || demo_pid=""
  [[ -f $run/demo.env ]] && started=$(sed -n 's/^# started //p' "$run/demo.env")
  if [[ -n $demo_pid ]]; then
    say "a demo runs from $data: deploy/demo.sh pid $demo_pid, started $started$(
      [[ -f $run/starting ]] && echo ", still starting")"
  else
    for name in "${components[@]}"; do alive "$name" >/dev/null && running=$((running + 1)); done
    ((running)) || say "no demo runs from $data"
    running=0  # counted again below
  fi
  for name in "${components[@]}"; do
    if pid=$(alive "$name"); then
      running=$((running + 1))
      printf '  %-22s pid %-8s %-50s %s\n' "$name" "$pid" "$(url_of "$name")" "$(health_of "$name")"
    else
      missing+=("$name")
      if [[ -f $run/starting && -n $demo_pid ]]; then
        printf '  %-22s %-12s %s\n' "$name" "not yet" "$(url_of "$name")"
      elif [[ -n $demo_pid || -f $run/$name.pid ]]; then
        printf '  %-22s %-12s %s\n' "$name" "not running" "$(url_of "$name")"
      fi
    fi
  done
  if pid=$(alive broker); then
    printf '  %-22s pid %-8s %-50s %s\n' broker "$pid" "$STOCKSYNC_BOOTSTRAP_SERVERS" \
      "started by the demo (stop stops it)"
  elif port_answers "$broker_host" "$broker_port"; then
    printf '  %-22s %-12s %-50s %s\n' broker "" "$STOCKSYNC_BOOTSTRAP_SERVERS" \
      "answers; not started by the demo (stop leaves it)"
  else
    printf '  %-22s %-12s %-50s %s\n' broker "" "$STOCKSYNC_BOOTSTRAP_SERVERS" "not answering"
  fi
  if [[ -n $demo_pid && ( -f $run/starting || ${#missing[@]} -eq 0 ) ]]; then
    echo "  logs: $logs/*.log"
    return 0
  fi
  ((running)) || [[ -n $demo_pid ]] || return 3
  if [[ -n $demo_pid ]]; then
    fail "the demo (pid $demo_pid) runs without ${missing[*]}: see $logs/*.log; then" \
      "\`bash deploy/demo.sh stop\` and start it again"
  else
    fail "$running process(es) of a demo run without their deploy/demo.sh (killed?):" \
      "\`bash deploy/demo.sh stop\` stops them"
  fi
  return 1
}

# --- stop --------------------------------------------------------------------------------------

stop() {
  load_running_settings
  local pid did=0
  if pid=$(alive demo); then
    say "stopping the demo (deploy/demo.sh pid $pid); it stops its worker and channels"
    kill -TERM "$pid" 2>/dev/null || true
    gone_within "$pid" 120 || say "deploy/demo.sh (pid $pid) still runs after 120s: stopping its processes here"
    did=1
  fi
  rm -f "$run/demo.pid" "$run/starting"
  # whatever the demo.sh left running (it was killed, or did not finish in time)
  for name in simulator connector-web connector-amazon connector-pos-store-1 endpoints worker; do
    if alive "$name" >/dev/null; then did=1; fi
    stop_component "$name"
  done
  if pid=$(alive broker); then
    if [[ $(kafka_sh_pid) == "$pid" ]]; then
      bash deploy/kafka/kafka.sh stop
      rm -f "$run/broker.pid"
    else
      stop_component broker
    fi
    did=1
  elif port_answers "$broker_host" "$broker_port"; then
    rm -f "$run/broker.pid"
    say "the broker at $STOCKSYNC_BOOTSTRAP_SERVERS was not started by the demo: left running"
  fi
  ((did)) || say "no demo runs from $data: nothing to stop"
  return 0
}

# --- start -------------------------------------------------------------------------------------

rotate_logs() {
  [[ -d $logs ]] || return 0
  local i
  if [[ -d $logs.$keep_logs ]]; then
    rm -rf "$logs.$keep_logs"
    say "removed the logs of the run $keep_logs starts ago ($logs.$keep_logs; DEMO_KEEP_LOGS=$keep_logs)"
  fi
  for ((i = keep_logs - 1; i >= 1; i--)); do
    [[ -d $logs.$i ]] && mv "$logs.$i" "$logs.$((i + 1))"
  done
  mv "$logs" "$logs.1"
  say "the previous run's logs are in $logs.1"
}

launch() {  # name command...: in the background, output to logs/<name>.log, PID recorded
  local name=$1
  shift
  # 9>&-: the lock stays with deploy/demo.sh alone (a child holding it would keep it after
  # deploy/demo.sh ends)
  "$@" >"$logs/$name.log" 2>&1 9>&- &
  record "$name" $!
}

cleanup() {
  trap - EXIT INT TERM HUP
  local name pid stopped=()
  # all at once (the worker takes a few seconds to leave its group), then each waited for
  for name in simulator connector-web connector-amazon connector-pos-store-1 endpoints worker; do
    if pid=$(alive "$name"); then
      kill -TERM "$pid" 2>/dev/null || true
      stopped+=("$name ($pid)")
    fi
  done
  for name in connector-web connector-amazon connector-pos-store-1 endpoints worker simulator; do
    stop_component "$name" quiet
  done
  rm -f "$run/demo.pid" "$run/starting"
  ((${#stopped[@]} == 0)) || say "stopped ${stopped[*]}"
  if alive broker >/dev/null; then
    say "the broker the demo started keeps running: \`bash deploy/demo.sh stop\` stops it"
  else
    say "the broker at $STOCKSYNC_BOOTSTRAP_SERVERS keeps running (the demo did not start it)"
  fi
}

wait_answering() {  # name url: until it answers, or the process exits (then exit 1)
  local _
  for _ in $(seq 1 $((ready_timeout_s * 2))); do
    [[ $(http_code "$2") != 000 ]] && return 0
    if ! alive "$1" >/dev/null; then
      fail "$1 exited; the end of $logs/$1.log:"
      tail -20 "$logs/$1.log" >&2
      exit 1
    fi
    sleep 0.5
  done
  fail "$1 does not answer on $2 after ${ready_timeout_s}s; see $logs/$1.log"
  exit 1
}

start() {
  mkdir -p "$run"
  # One demo per data folder. The running deploy/demo.sh holds this lock for as long as it
  # runs (its children close it), so a second start cannot slip in between check and start.
  exec 9>>"$run/demo.lock"
  if { command -v flock >/dev/null && ! flock -n 9; } || alive demo >/dev/null; then
    say "already running: nothing started, its logs untouched"
    report && exit 0
    exit 1
  fi
  local name pid leftover=0
  for name in "${components[@]}"; do
    if pid=$(alive "$name"); then
      fail "$name (pid $pid) of an earlier demo still runs without its deploy/demo.sh"
      leftover=1
    fi
  done
  if ((leftover)); then
    fail "nothing started: \`bash deploy/demo.sh stop\` stops them, then start again"
    exit 1
  fi
  local port busy=()
  for port in "$STOCKSYNC_HTTP_PORT" "${endpoint_ports[@]}" "${status_ports[@]}"; do
    port_answers 127.0.0.1 "$port" && busy+=("$port")
  done
  if ((${#busy[@]})); then
    fail "port(s) ${busy[*]} taken by processes that are not this demo's (another demo with" \
      "another STOCKSYNC_DATA_DIR? \`bash deploy/demo.sh status\` with its settings shows it);" \
      "nothing started. Stop them, or choose STOCKSYNC_HTTP_PORT, DEMO_ENDPOINT_PORTS and" \
      "DEMO_CONNECTOR_PORTS"
    exit 1
  fi
  for name in demo "${components[@]}"; do
    [[ -f $run/$name.pid ]] && say "removed the PID file of $name, which no longer runs" &&
      rm -f "$run/$name.pid"
  done

  local started
  started=$(date +%s)
  record demo $$
  : >"$run/starting"
  trap cleanup EXIT
  trap 'cleanup; exit 0' INT TERM HUP
  save_running_settings >"$run/demo.env"
  rotate_logs
  mkdir -p "$logs"

  bash deploy/setup.sh 9>&-
  if port_answers "$broker_host" "$broker_port"; then
    alive broker >/dev/null || rm -f "$run/broker.pid"
    say "using the broker that answers at $STOCKSYNC_BOOTSTRAP_SERVERS"
  elif [[ $broker_host =~ ^(127\.0\.0\.1|localhost)$ && $broker_port == "$STOCKSYNC_KAFKA_PORT" ]]; then
    bash deploy/kafka/kafka.sh start >/dev/null 9>&-
    pid=$(kafka_sh_pid)
    [[ -n $pid ]] || { fail "deploy/kafka/kafka.sh start did not leave a broker running"; exit 1; }
    record broker "$pid"
  else
    fail "no broker answers at $STOCKSYNC_BOOTSTRAP_SERVERS, and the demo starts one only on" \
      "127.0.0.1:\$STOCKSYNC_KAFKA_PORT ($STOCKSYNC_KAFKA_PORT): start that broker, or unset" \
      "STOCKSYNC_BOOTSTRAP_SERVERS"
    exit 1
  fi
  .venv/bin/stocksync topics create >"$logs/topics.log" 2>&1 ||
    { fail "stocksync topics create failed:"; cat "$logs/topics.log" >&2; exit 1; }

  launch worker .venv/bin/stocksync worker
  for _ in $(seq 1 $((ready_timeout_s * 2))); do
    [[ $(http_code "$api/readyz") == 200 ]] && break
    alive worker >/dev/null ||
      { fail "worker exited, see $logs/worker.log"; tail -20 "$logs/worker.log" >&2; exit 1; }
    sleep 0.5
  done
  [[ $(http_code "$api/readyz") == 200 ]] ||
    { fail "worker not ready after ${ready_timeout_s}s, see $logs/worker.log"; exit 1; }

  # Simulated channel APIs (web shop, a marketplace that answers 429 above 5 req/s, POS) and
  # one connector per channel pushing the projections to them.
  local i
  {
    for i in "${!channels[@]}"; do
      printf -- "- {channel: %s, kind: %s, port: %s, report_url: 'http://127.0.0.1:%s/v1/reports'%s}\n" \
        "${channels[$i]}" "${kinds[$i]}" "${endpoint_ports[$i]}" "${status_ports[$i]}" \
        "$([[ ${kinds[$i]} == marketplace ]] && echo ', rate_per_s: 5.0, burst: 5')"
    done
  } >"$run/endpoints.yaml"
  launch endpoints .venv/bin/stocksync endpoints run --config "$run/endpoints.yaml"
  for i in "${!channels[@]}"; do
    launch "connector-${channels[$i]}" .venv/bin/stocksync connector run \
      --channel "${channels[$i]}" --endpoint "http://127.0.0.1:${endpoint_ports[$i]}" \
      --http-port "${status_ports[$i]}" --rate "${connector_rates[$i]}" \
      --burst "${connector_bursts[$i]}" --resync-interval 600
  done
  for i in "${!channels[@]}"; do
    wait_answering endpoints "http://127.0.0.1:${endpoint_ports[$i]}/"
    wait_answering "connector-${channels[$i]}" "http://127.0.0.1:${status_ports[$i]}/v1/status"
  done

  # the simulator's progress shows here and is kept in its log
  # (tee -i: Ctrl-C stops the simulator, which then still writes its last line through tee)
  .venv/bin/stocksync simulate --rate "$rate" > >(tee -i "$logs/simulator.log" 9>&-) 2>&1 9>&- &
  local sim=$!
  record simulator "$sim"
  rm -f "$run/starting"
  local amazon=http://127.0.0.1:${endpoint_ports[1]} amazon_status=http://127.0.0.1:${status_ports[1]}
  cat <<INFO

stocksync demo is running (up in $(($(date +%s) - started))s): broker $STOCKSYNC_BOOTSTRAP_SERVERS, worker $api
simulated channels: wms (receipts), web + app (orders), pos (store sales), marketplace, at ${rate} events/s

  curl -s $api/v1/atp/SKU-0001 | python3 -m json.tool          # every location and channel
  curl -s '$api/v1/atp/SKU-0001?channel=amazon'                 # one channel
  curl -s -XPOST $api/v1/atp/batch -d '{"skus":["SKU-0001","SKU-0002"],"channel":"web"}'
  curl -s $api/readyz                                           # readiness and counters
  .venv/bin/stocksync projections tail                          # what each channel is told
  .venv/bin/stocksync dead-letter inspect                       # rejected input, with reasons
  $api/dashboard?sku=SKU-0001                  # live dashboard (open in a browser)
  curl -s $api/metrics | grep stocksync_                        # Prometheus metrics
  curl -s $amazon/v1/inventory/SKU-0001                  # what the marketplace displays
  curl -s $amazon_status/v1/status | python3 -m json.tool       # its connector: budget, backlog, exposure
  bash deploy/demo.sh status                                    # what runs: PIDs, URLs, health
logs: $logs/*.log (earlier runs: $logs.1 ...)        Ctrl-C to stop

INFO
  wait "$sim"
}

case ${1:-start} in
  start) start ;;
  status)
    if report; then exit 0; else exit $?; fi ;;
  stop) stop ;;
  *) sed -n '2,22p' "$0"; exit 2 ;;
esac
