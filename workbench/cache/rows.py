"""Some rows of a cache's array, read on demand: :class:`RowsArray`.

A workspace whose caches of one set hold different images (one extracted with ``--limit``)
compares them on the images all of them hold (:meth:`~workbench.cache.EmbeddingCache.take`):
each array of such a cache is seen through a :class:`RowsArray`, which reads the chosen rows of
the memory-mapped (or sharded) array only when they are indexed or converted, so thumbnails of
a 50,000-image set are never loaded whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from .sharded import ShardedArray


class RowsArray:
    """Rows ``rows`` (in that order) of ``base``: shape ``(len(rows), *base.shape[1:])``.

    Args:
        base: an ``N x ...`` array, memory map or :class:`~workbench.cache.ShardedArray`.
        rows: ``(m,)`` row indices into ``base``, each in ``[0, N)``.

    Raises:
        ValueError: ``rows`` is not one-dimensional or holds an index outside ``base``.
    """

    def __init__(self, base: np.ndarray | ShardedArray | RowsArray, rows: npt.ArrayLike) -> None:
        idx = np.asarray(rows, dtype=np.int64)
        if idx.ndim != 1:
            raise ValueError(f"rows must be one-dimensional; got shape {idx.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= base.shape[0]):
            raise ValueError(f"rows must lie in [0, {base.shape[0]}); got {idx.min()}..{idx.max()}")
        self.base = base
        self.rows = idx

    @property
    def shape(self) -> tuple[int, ...]:
        return (int(self.rows.size), *self.base.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return int(self.rows.size)

    def _read(self, rows: np.ndarray) -> np.ndarray:
        """``base[rows]`` read in ascending order (sequential on disk), returned in the order asked."""
        if rows.size == 0:
            return np.empty((0, *self.base.shape[1:]), dtype=self.dtype)
        order = np.argsort(rows, kind="stable")
        got = np.asarray(self.base[rows[order]])
        out = np.empty_like(got)
        out[order] = got
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        rows_key, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(rows_key, (int, np.integer)):
            i = int(rows_key)
            if not -len(self) <= i < len(self):
                raise IndexError(f"row {i} out of range for {len(self)} rows")
            row = np.asarray(self.base[int(self.rows[i])])
            return row[rest] if rest else row
        sel = np.asarray(rows_key)
        if isinstance(rows_key, slice):
            picked = self.rows[rows_key]
        elif sel.dtype == bool:
            picked = self.rows[sel]
        else:
            picked = self.rows[sel.astype(np.int64)]  # numpy raises IndexError out of range
        out = self._read(picked)
        return out[(slice(None), *rest)] if rest else out

    def iter_blocks(self, rows: int = 65536) -> Iterator[np.ndarray]:
        """Yield consecutive row blocks (copies)."""
        for start in range(0, len(self), rows):
            yield self[start : start + rows]

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        out = self._read(self.rows)
        return out.astype(dtype) if dtype is not None else out

    def __repr__(self) -> str:
        return f"<RowsArray {len(self)} of {self.base.shape[0]} rows, shape={self.shape} dtype={self.dtype}>"
