#!/usr/bin/env bash
# Lint, format and type checks (ruff and mypy, configured in pyproject.toml). Run after
# scripts/setup.sh; .ci/run runs it before the tests. `--fix` applies ruff's fixes and formatting.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fix" ]; then
  .venv/bin/ruff check --fix .
  .venv/bin/ruff format .
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
echo "lint: ruff and mypy clean"
