"""Where the workbench finds its shipped reference data and keeps downloaded weights."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """The project's ``data/`` directory (human-study CSVs, published metrics, class names).

    ``$WORKBENCH_DATA_DIR`` overrides it; otherwise the ``data/`` folder of the source checkout.
    """
    env = os.environ.get("WORKBENCH_DATA_DIR")
    path = Path(env) if env else Path(__file__).resolve().parent.parent / "data"
    if not path.is_dir():
        raise FileNotFoundError(
            f"workbench data directory not found at {path}; set WORKBENCH_DATA_DIR to the "
            "repository's data/ folder (install with `pip install -e .` from a checkout)"
        )
    return path


def weights_dir() -> Path:
    """Directory searched for local weight files: ``$WORKBENCH_WEIGHTS_DIR`` or ``~/.cache/workbench/weights``."""
    env = os.environ.get("WORKBENCH_WEIGHTS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "workbench" / "weights"
