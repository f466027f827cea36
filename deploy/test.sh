#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: Python venv and packages, the Kafka jars (Maven),
# a local broker on STOCKSYNC_TEST_KAFKA_PORT (default 19092), unit + integration tests, then
# stop the broker. Extra arguments go to pytest.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

bash deploy/setup.sh

port=${STOCKSYNC_TEST_KAFKA_PORT:-19092}
if [[ -z ${STOCKSYNC_TEST_BOOTSTRAP:-} ]]; then
  export STOCKSYNC_KAFKA_PORT=$port
  trap 'STOCKSYNC_KAFKA_PORT=$port bash deploy/kafka/kafka.sh stop' EXIT
  bash deploy/kafka/kafka.sh start >/dev/null
  export STOCKSYNC_TEST_BOOTSTRAP=127.0.0.1:$port
fi
echo "test.sh: broker $STOCKSYNC_TEST_BOOTSTRAP" >&2
.venv/bin/python -m pytest "$@"
