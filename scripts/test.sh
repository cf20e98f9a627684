#!/usr/bin/env bash
# Set everything up, then run the full test suite: every lane (fast, slow, peers, browser).
# Plain `pytest` runs only the fast lane (pyproject.toml); `-m ''` here lifts that default.
# Extra arguments go to pytest after it, so `bash scripts/test.sh -m slow` runs one lane (the
# last -m wins). The exit status and the closing line are pytest's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q -m '' "$@"
