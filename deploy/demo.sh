#!/usr/bin/env bash
# One command on a fresh machine: install, start a local Kafka broker, provision topics, start a
# worker and simulated channels, and print where to look. Ctrl-C stops the worker and the
# channels; `bash deploy/demo.sh stop` also stops the broker.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

export STOCKSYNC_KAFKA_PORT=${STOCKSYNC_KAFKA_PORT:-9092}
export STOCKSYNC_BOOTSTRAP_SERVERS=${STOCKSYNC_BOOTSTRAP_SERVERS:-127.0.0.1:$STOCKSYNC_KAFKA_PORT}
export STOCKSYNC_HTTP_PORT=${STOCKSYNC_HTTP_PORT:-8080}
export STOCKSYNC_DATA_DIR=${STOCKSYNC_DATA_DIR:-$repo/.state/demo}
rate=${DEMO_RATE:-20}

if [[ ${1:-} == stop ]]; then
  bash deploy/kafka/kafka.sh stop
  exit 0
fi

started=$(date +%s)
bash deploy/setup.sh
bash deploy/kafka/kafka.sh start >/dev/null
mkdir -p "$STOCKSYNC_DATA_DIR"
.venv/bin/stocksync topics create

log=$STOCKSYNC_DATA_DIR/worker.log
.venv/bin/stocksync worker >"$log" 2>&1 &
worker=$!
sim=""
channels=()
cleanup() {
  trap - EXIT INT TERM
  [[ -n $sim ]] && kill "$sim" 2>/dev/null || true
  for pid in "${channels[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  kill -TERM "$worker" 2>/dev/null || true
  for pid in "${channels[@]}" "$worker"; do
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  echo "demo: worker and channels stopped; the broker keeps running (bash deploy/demo.sh stop)"
}
trap cleanup EXIT INT TERM

api=http://127.0.0.1:$STOCKSYNC_HTTP_PORT
for _ in $(seq 1 240); do
  curl -sf "$api/readyz" >/dev/null 2>&1 && break
  kill -0 "$worker" 2>/dev/null || { echo "demo: worker exited, see $log"; tail -20 "$log"; exit 1; }
  sleep 0.5
done
curl -sf "$api/readyz" >/dev/null || { echo "demo: worker not ready after 120s, see $log"; exit 1; }

# Simulated channel APIs (web shop :8181, marketplace :8182 that answers 429 above 5 req/s,
# POS :8183) and one connector per channel pushing the projections to them.
.venv/bin/stocksync endpoints run >"$STOCKSYNC_DATA_DIR/endpoints.log" 2>&1 &
channels+=($!)
connect() {  # channel endpoint-port status-port rate burst
  .venv/bin/stocksync connector run --channel "$1" --endpoint "http://127.0.0.1:$2" \
    --http-port "$3" --rate "$4" --burst "$5" --resync-interval 600 \
    >"$STOCKSYNC_DATA_DIR/connector-$1.log" 2>&1 &
  channels+=($!)
}
connect web 8181 8191 50 20
connect amazon 8182 8192 4 4
connect pos-store-1 8183 8193 20 10

.venv/bin/stocksync simulate --rate "$rate" &
sim=$!
sleep 2
cat <<INFO

stocksync demo is running (up in $(( $(date +%s) - started ))s): broker $STOCKSYNC_BOOTSTRAP_SERVERS, worker $api
simulated channels: wms (receipts), web + app (orders), pos (store sales), marketplace, at ${rate} events/s

  curl -s $api/v1/atp/SKU-0001 | python3 -m json.tool          # every location and channel
  curl -s '$api/v1/atp/SKU-0001?channel=amazon'                 # one channel
  curl -s -XPOST $api/v1/atp/batch -d '{"skus":["SKU-0001","SKU-0002"],"channel":"web"}'
  curl -s $api/readyz                                           # readiness and counters
  .venv/bin/stocksync projections tail                          # what each channel is told
  .venv/bin/stocksync dead-letter inspect                       # rejected input, with reasons
  $api/dashboard?sku=SKU-0001                  # live dashboard (open in a browser)
  curl -s $api/metrics | grep stocksync_                        # Prometheus metrics
  curl -s localhost:8182/v1/inventory/SKU-0001                  # what the marketplace displays
  curl -s localhost:8192/v1/status | python3 -m json.tool       # its connector: budget, backlog, exposure
worker log: $log        Ctrl-C to stop

INFO
wait "$sim"
