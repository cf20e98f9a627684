"""Crash-safe file writes: write to a temporary name in the same folder, fsync, then rename.

A reader therefore sees either the old complete file or the new complete file, never a torn one.
A write that fails (disk full, read-only folder, interrupt) removes its temporary file.

Files are written with ordinary ``write`` calls, never by growing a memory map: on a full disk a
memory-mapped write kills the process with ``SIGBUS`` instead of raising ``OSError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


def _fsync_and_rename(tmp: Path, final: Path) -> None:
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


@contextlib.contextmanager
def _temporary(path: Path) -> Iterator[Path]:
    """Yield ``path.tmp``; on success rename it to ``path``, on any failure delete it."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        _fsync_and_rename(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with _temporary(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez`` to ``path`` atomically (arrays only; nothing that needs pickle)."""
    with _temporary(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as the allow_pickle flag


def commit_file(tmp: Path, final: Path) -> None:
    """Make a fully written temporary file visible under its final name."""
    _fsync_and_rename(tmp, final)


class NpyStreamWriter:
    """Write an ``.npy`` file of known shape row block by row block, hashing as it goes.

    Usage::

        with NpyStreamWriter(path, (n, d), np.float32) as w:
            for block in blocks:
                w.write(block)
        w.sha256, w.nbytes  # of the whole file

    The file is written as ``path`` directly (the caller writes it under a temporary name and
    commits it); a failure or a row count different from ``shape[0]`` deletes it.
    """

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: Any) -> None:
        self.path = Path(path)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.rows = 0
        self.nbytes = 0
        self._hash = hashlib.sha256()
        self._fh: BinaryIO | None = None

    def __enter__(self) -> NpyStreamWriter:
        self._fh = open(self.path, "wb")
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}
        self._emit(_npy_header_bytes(header))
        return self

    def _emit(self, data: bytes | memoryview) -> None:
        assert self._fh is not None
        self._fh.write(data)
        self._hash.update(data)
        self.nbytes += len(data)

    def write(self, block: np.ndarray) -> None:
        """Append rows ``block`` (``k x shape[1:]``), cast to the file's dtype."""
        arr = np.ascontiguousarray(block, dtype=self.dtype)
        if arr.shape[1:] != self.shape[1:]:
            raise ValueError(f"{self.path}: rows of shape {arr.shape[1:]} do not fit an array of shape {self.shape}")
        self._emit(arr.reshape(-1).view(np.uint8).data)
        self.rows += arr.shape[0]

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self._fh is not None
        try:
            self._fh.close()
        finally:
            if exc_type is None and self.rows != self.shape[0]:
                self.path.unlink(missing_ok=True)
                raise RuntimeError(f"{self.path}: wrote {self.rows} rows, expected {self.shape[0]}")
            if exc_type is not None:
                self.path.unlink(missing_ok=True)


def _npy_header_bytes(header: dict[str, Any]) -> bytes:
    """The bytes of an ``.npy`` version 1.0 (or 2.0 for huge headers) header for ``header``."""
    import io

    buf = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(buf, header)
    except ValueError:  # header longer than 65535 bytes
        buf = io.BytesIO()
        np.lib.format.write_array_header_2_0(buf, header)
    return buf.getvalue()
