#!/usr/bin/env bash
# Set up everything the workbench needs on a fresh Debian machine with Python 3.11:
# system packages (as root), a virtualenv in .venv, PyTorch from the local wheel cache, the
# package with its extras, and the demo data. Safe to re-run: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# --- system packages: Fashion-MNIST (real images), Chromium (browser tests of the notebooks) ----
APT_PACKAGES=(dataset-fashion-mnist chromium chromium-driver)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else SUDO=none; fi
  if [ "$SUDO" = none ]; then
    log "cannot install ${missing[*]} (not root, no sudo); Fashion-MNIST will be downloaded instead"
  else
    log "installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

# --- virtualenv and Python packages -------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  log "creating virtualenv .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
VPY="$ROOT/.venv/bin/python"
stamp=.venv/.workbench-setup
# the native tile kernels (setup.py, workbench/metrics/_tiles.c) are rebuilt when their source changes
want=$(cat pyproject.toml setup.py scripts/setup.sh workbench/metrics/_tiles.c | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing Python packages (PyTorch from the local wheel cache, then the workbench)"
  "$VPY" -m pip install -q --upgrade pip
  # torch/torchvision first, pinned to the releases served from local disk here, so that no
  # other requirement pulls a multi-GB build from the network.
  "$VPY" -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
  "$VPY" -m pip install -q -e ".[models,ann,lab,test,distributed]"
  echo "$want" > "$stamp"
else
  log "Python packages up to date"
fi
log "ready: $("$VPY" -c 'import torch, workbench; from workbench.metrics import tile_kernels as t; print(f"workbench {workbench.__version__}, torch {torch.__version__}, native tile kernels: {t.describe()}")')"
