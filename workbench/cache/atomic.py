"""Crash-safe file writes: write to a temporary name in the same folder, fsync, then rename.

A reader therefore sees either the old complete file or the new complete file, never a torn one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np


def _fsync_and_rename(tmp: Path, final: Path) -> None:
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    _fsync_and_rename(tmp, path)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez`` to ``path`` atomically (arrays only; nothing that needs pickle)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    _fsync_and_rename(tmp, path)


def commit_file(tmp: Path, final: Path) -> None:
    """Make a fully written temporary file visible under its final name."""
    _fsync_and_rename(tmp, final)
