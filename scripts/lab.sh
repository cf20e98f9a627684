#!/usr/bin/env bash
# Set everything up, then run the main job: build the demo workspace and explore it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
WB=.venv/bin/workbench
$WB --help
echo
echo "Extracting embeddings of 2,000 Fashion-MNIST test images into workspace/caches ..."
.venv/bin/python - <<'PY'
import numpy as np
import workbench as wb
from workbench.images.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist

images, labels = load_fashion_mnist("test")
for name in ("pixels", "inception"):
    cache = wb.extract(images[:2000], name, weights="none" if name == "inception" else "default",
                       labels=labels[:2000], name="fashion-mnist-test", out="workspace/caches")
    print(cache.summary(), end="\n\n")
PY
