#!/usr/bin/env bash
# Idempotent setup: .venv with stocksync and its dev tools, and the Kafka broker jars.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "setup.sh: creating .venv" >&2
  "$python" -m venv .venv
fi
stamp=.venv/.stocksync-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  echo "setup.sh: installing Python packages (pip)" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch "$stamp"
fi
bash deploy/kafka/kafka.sh fetch
