#!/usr/bin/env bash
# Set everything up, build the demo workspace (reused when already built), then open JupyterLab
# on the notebooks. Extra arguments go to `jupyter lab` (e.g. --no-browser --port 8890).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export WORKBENCH_DEMO_DIR="$PWD/workspace/demo"
.venv/bin/workbench demo --out "$WORKBENCH_DEMO_DIR"
echo
echo "Opening JupyterLab on notebooks/ (demo workspace: $WORKBENCH_DEMO_DIR)"
ROOT_FLAG=()
[ "$(id -u)" = 0 ] && ROOT_FLAG=(--allow-root)  # containers and CI machines often run as root
exec .venv/bin/jupyter lab "${ROOT_FLAG[@]}" --ip=127.0.0.1 --ServerApp.root_dir="$PWD/notebooks" "$@" "$PWD/notebooks/01_quickstart.ipynb"
