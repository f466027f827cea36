#!/usr/bin/env bash
# Lint and type-check every package (src, streams, sim, tests, bench): ruff's rules and format,
# then mypy strict (settings in pyproject.toml). Exits non-zero on the first kind that fails.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

bash deploy/setup.sh
packages=(src streams sim tests bench)
echo "lint.sh: ruff check" >&2
.venv/bin/ruff check "${packages[@]}"
echo "lint.sh: ruff format --check" >&2
.venv/bin/ruff format --check "${packages[@]}"
echo "lint.sh: mypy (strict)" >&2
.venv/bin/mypy "${packages[@]}"
