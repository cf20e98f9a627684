"""A read-only row-concatenated view over several memory-mapped arrays (one per shard).

No concatenated copy is made when the view is created; rows are gathered on indexing.
``np.asarray(view)`` materialises the whole array (a copy) for functions that need one.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt


class ShardedArray:
    """Rows of ``parts[0]``, then ``parts[1]``, ...; all parts share trailing shape and dtype."""

    def __init__(self, parts: list[np.ndarray]) -> None:
        if not parts:
            raise ValueError("ShardedArray needs at least one part")
        tail = parts[0].shape[1:]
        for p in parts:
            if p.shape[1:] != tail or p.dtype != parts[0].dtype:
                raise ValueError("all shards must have the same row shape and dtype")
        self.parts = parts
        self._offsets = np.cumsum([0] + [p.shape[0] for p in parts])

    @property
    def shape(self) -> tuple[int, ...]:
        return (int(self._offsets[-1]), *self.parts[0].shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.parts[0].dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _rows(self, rows: np.ndarray) -> np.ndarray:
        n = len(self)
        rows = np.where(rows < 0, rows + n, rows)
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            raise IndexError(f"row index out of range for {n} rows")
        out = np.empty((rows.shape[0], *self.shape[1:]), dtype=self.dtype)
        part_of = np.searchsorted(self._offsets, rows, side="right") - 1
        for p in np.unique(part_of):
            sel = part_of == p
            out[sel] = self.parts[p][rows[sel] - self._offsets[p]]
        return out

    def __getitem__(self, key: object) -> np.ndarray:
        rows_key, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(rows_key, (int, np.integer)):
            idx = int(rows_key) + (len(self) if rows_key < 0 else 0)
            row = self._rows(np.array([idx]))[0]
            return row[rest] if rest else row
        if isinstance(rows_key, slice):
            out = self._rows(np.arange(len(self))[rows_key])
        else:
            arr = np.asarray(rows_key)
            out = self._rows(np.flatnonzero(arr) if arr.dtype == bool else arr.astype(np.int64))
        return out[(slice(None), *rest)] if rest else out

    def iter_blocks(self, rows: int = 65536) -> Iterator[np.ndarray]:
        """Yield consecutive row blocks (views into the memmaps where possible)."""
        for part in self.parts:
            for start in range(0, part.shape[0], rows):
                yield part[start : start + rows]

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        out = np.concatenate([np.asarray(p) for p in self.parts], axis=0)
        return out.astype(dtype) if dtype is not None else out

    def __repr__(self) -> str:
        return f"<ShardedArray shape={self.shape} dtype={self.dtype} shards={len(self.parts)}>"
