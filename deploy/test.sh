#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: Python venv and packages, the Kafka jars (Maven),
# a local broker on STOCKSYNC_TEST_KAFKA_PORT (default 19092), unit + integration tests, then
# stop the broker. Extra arguments go to pytest.
#
# Some tests need a tool setup.sh does not install (Chromium, openssl, kubectl or kustomize).
# Each one missing is said at the start, one line with its install command, and the summary at
# the end says again, one line per reason, which tests were skipped for it (a test skipped for a
# missing tool says "<tool> is not installed (<how to install it>)").
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

bash deploy/setup.sh

# what | commands, any of which will do | what happens without it | how to install it
prerequisites=(
  "Chromium|chromium chromium-browser google-chrome google-chrome-stable|the dashboard tests (tests/integration/test_dashboard.py) $(
    [[ -n ${STOCKSYNC_REQUIRE_CHROMIUM:-} ]] && echo "fail (STOCKSYNC_REQUIRE_CHROMIUM is set)" || echo skip)|apt-get install -y chromium"
  "openssl|openssl|the TLS test (tests/integration/test_kafka_tls.py) fails: it makes its certificates with openssl|apt-get install -y openssl"
  "kubectl or kustomize|kubectl kustomize|the manifest rendering tests (tests/unit/test_deploy_manifests.py) skip|https://kubernetes.io/docs/tasks/tools/"
)
missing=()
for entry in "${prerequisites[@]}"; do
  IFS='|' read -r what commands without install <<<"$entry"
  found=""
  for command in $commands; do
    if command -v "$command" >/dev/null 2>&1; then found=$command; break; fi
  done
  [[ -n $found ]] || missing+=("test.sh: MISSING PREREQUISITE $what: $without; install: $install")
done
for line in "${missing[@]}"; do echo "$line" >&2; done

port=${STOCKSYNC_TEST_KAFKA_PORT:-19092}
started_broker=""
report=$(mktemp "${TMPDIR:-/tmp}/stocksync-tests.XXXXXX.xml")
finish() {
  rm -f "$report"
  if [[ -n $started_broker ]]; then STOCKSYNC_KAFKA_PORT=$port bash deploy/kafka/kafka.sh stop; fi
}
trap finish EXIT
if [[ -z ${STOCKSYNC_TEST_BOOTSTRAP:-} ]]; then
  export STOCKSYNC_KAFKA_PORT=$port
  started_broker=1
  bash deploy/kafka/kafka.sh start >/dev/null
  export STOCKSYNC_TEST_BOOTSTRAP=127.0.0.1:$port
fi
echo "test.sh: broker $STOCKSYNC_TEST_BOOTSTRAP" >&2

# pytest's JUnit report says which tests were skipped and why, for the summary below
status=0
.venv/bin/python -m pytest --junitxml="$report" "$@" || status=$?

{
  echo "test.sh: summary: pytest exited $status"
  for line in "${missing[@]}"; do echo "$line"; done
  if [[ -s $report ]]; then
    .venv/bin/python - "$report" <<'PY'
import collections
import sys
import xml.etree.ElementTree as ET

reasons = collections.Counter()
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    for skipped in case.iter("skipped"):
        if skipped.get("type") != "pytest.xfail":
            reasons[skipped.get("message", "(no reason given)")] += 1
# missing prerequisites first; then any other reason pytest skipped tests for
for reason, count in sorted(reasons.items(), key=lambda r: ("not installed" not in r[0], r[0])):
    why = " for a missing prerequisite" if "not installed" in reason else ""
    print(f"test.sh: SKIPPED {count} test(s){why}: {reason}")
PY
  else
    echo "test.sh: pytest wrote no JUnit report ($report): which tests were skipped is unknown"
  fi
} >&2
exit "$status"
