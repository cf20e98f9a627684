"""Native passes over float32 distance tiles, with the checks that keep them memory-safe.

The exact k-NN search and the radius counts of :mod:`workbench.metrics.neighbors` spend what is
not matrix products in passes over each 64 MiB distance tile. The C extension
``workbench.metrics._tiles`` (``workbench/metrics/_tiles.c``, built by ``pip install``; on
x86-64 also as ``_tiles_avx2``, loaded where the CPU has AVX2) does each in one pass, split over
threads, with the interpreter lock released:

* :func:`push_topk` -- merge a tile into a running max-heap of the ``m`` smallest values per row
  (and per column: both orientations in one read of the tile).
* :func:`count_tile` -- per-row and per-column counts of the entries below per-line thresholds,
  plus the few entries inside an error band around them.
* :func:`centre_rows` -- float32 rows minus a centre, and their squared norms in float64.
* :func:`pair_sq_dists` -- exact float64 squared distances of float32 row pairs, read in place.

They compare the same float32 values with the same ``<`` / ``<=`` as the numpy code they
replace, which :mod:`~workbench.metrics.neighbors` keeps as the fallback (its tests run both
ways). Where the extension was not built (no C compiler at install time) or
``$WORKBENCH_NATIVE_TILES`` is ``0``, :func:`available` is False and numpy is used: the same
counts, neighbours and radii (float64 sums may differ in the last bit), slower. Measured here
(PRDC 10,000 x 10,000 x 1024, 2 AVX2 cores): the work after the products is about 0.8 s of
3.4 s in numpy and about 0.3 s of 2.9 s with the kernels.

Threads: the calling thread's torch thread count (:func:`torch.get_num_threads`), which
:func:`~workbench.threads.auto_threads` lowers on a busy machine; from the OpenMP pool PyTorch's
products use where the build has OpenMP (see ``setup.py``), else POSIX threads.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch

NATIVE_ENV = "WORKBENCH_NATIVE_TILES"
_BAND_CAPACITY = 1 << 14  # band pairs per thread before a tile is counted again with more room


@functools.lru_cache(maxsize=1)
def _module() -> ModuleType | None:
    """The AVX2 build where this CPU runs it, else the baseline build, else None (not built)."""
    try:
        from workbench.metrics import _tiles
    except ImportError:
        return None
    if _tiles.cpu_has_avx2():
        try:
            from workbench.metrics import _tiles_avx2
        except ImportError:
            return _tiles
        return _tiles_avx2
    return _tiles


def available() -> bool:
    """True when the native kernels are built and not switched off by ``$WORKBENCH_NATIVE_TILES=0``."""
    if os.environ.get(NATIVE_ENV, "").strip() == "0":
        return False
    return _module() is not None


def describe() -> str:
    """Which kernels searches use, e.g. ``"AVX2, OpenMP"``, ``"baseline, POSIX threads"``,
    ``"not built (numpy)"``."""
    mod = _module()
    if mod is None:
        return "not built (numpy)"
    if not available():
        return f"switched off by ${NATIVE_ENV}=0 (numpy)"
    isa = "AVX2" if mod.__name__.endswith("_avx2") else "baseline"
    return f"{isa}, {'OpenMP' if mod.openmp() else 'POSIX threads'}"


_MAX_THREADS = 64  # MAX_THREADS of _tiles.c: a call's work is split into at most this many parts


def _threads() -> int:
    return max(1, min(torch.get_num_threads(), _MAX_THREADS))


def _check(arr: np.ndarray, name: str, dtype: type, shape: tuple[int, ...]) -> None:
    if arr.dtype != dtype or arr.shape != shape or not arr.flags.c_contiguous:
        raise ValueError(
            f"{name}: expected a C-contiguous {np.dtype(dtype).name} array of shape {shape}; "
            f"got {arr.dtype} {arr.shape} (contiguous: {arr.flags.c_contiguous})"
        )


def _native() -> ModuleType:
    mod = _module()
    if mod is None:
        raise RuntimeError("the native tile kernels are not built; reinstall workbench with a C compiler")
    return mod


def push_topk(
    tile: np.ndarray,
    vals: np.ndarray,
    ids: np.ndarray,
    worst: np.ndarray,
    *,
    rows_to: tuple[int, int] | None = None,
    cols_to: tuple[int, int] | None = None,
    row_add: np.ndarray | None = None,
) -> None:
    """Merge ``tile`` into the running ``m`` smallest values of heap rows, in place.

    Args:
        tile: ``R x C`` float32 distances.
        vals: ``N x m`` float32 kept values; each row a binary max-heap (``vals[:, 0]`` is the
            largest; rows start all ``inf``). ids: ``N x m`` int64, their ids (``-1`` while empty).
            worst: ``(N,)`` float32, equal to ``vals[:, 0]``.
        rows_to: ``(heap, id0)``: tile row ``i`` is heap row ``heap + i``, its entry ``j`` the
            candidate ``id0 + j``; None to leave the rows out.
        cols_to: ``(heap, id0)``: tile column ``j`` is heap row ``heap + j``, its entry ``i`` the
            candidate ``id0 + i`` (the tile's transpose, without transposing it); None to leave
            the columns out. With both, the tile is read once (their heap rows must not overlap).
        row_add: ``(R,)`` float32 added to every entry of a tile row first (in float32, as
            ``tile + row_add[:, None]`` would be; the query rows' squared norms), or None.

    An entry ``v`` replaces its heap row's largest kept value when ``v < worst``.
    """
    if rows_to is None and cols_to is None:
        raise ValueError("give rows_to and/or cols_to")
    rows, cols = tile.shape
    n, m = vals.shape
    for spec, lines, what in ((rows_to, rows, "rows"), (cols_to, cols, "columns")):
        if spec is not None and (spec[0] < 0 or spec[0] + lines > n):
            raise ValueError(f"heap rows {spec[0]}:{spec[0] + lines} of the tile {what} outside the {n} rows kept")
    if rows_to is not None and cols_to is not None:
        if rows_to[0] < cols_to[0] + cols and cols_to[0] < rows_to[0] + rows:
            raise ValueError("the heap rows of the tile rows and columns overlap; push them one after the other")
    _check(tile, "tile", np.float32, (rows, cols))
    _check(vals, "vals", np.float32, (n, m))
    _check(ids, "ids", np.int64, (n, m))
    _check(worst, "worst", np.float32, (n,))
    if row_add is not None:
        _check(row_add, "row_add", np.float32, (rows,))
    row_heap, row_id0 = rows_to if rows_to is not None else (-1, 0)
    col_heap, col_id0 = cols_to if cols_to is not None else (-1, 0)
    _native().push_topk(
        tile, rows, cols, vals, ids, worst, m, row_heap, row_id0, col_heap, col_id0, row_add, _threads()
    )


@dataclass(frozen=True)
class Criterion:
    """One ball test of :func:`count_tile`: entry ``(i, j)`` is surely inside when ``t < lo``
    and undecided (in the band, to be decided in float64) when ``lo <= t <= hi``; ``lo`` and
    ``hi`` are float32 per tile row (``by_row``) or per tile column."""

    lo: np.ndarray
    hi: np.ndarray
    by_row: bool


@dataclass(frozen=True)
class TileCounts:
    """Result of one :class:`Criterion` on a tile: sure pairs per row ``(R,)`` and per column
    ``(C,)`` (int64), and the band pairs ``(rows, cols)`` (int64 tile positions, row by row
    within each thread's share of the rows)."""

    row_counts: np.ndarray
    col_counts: np.ndarray
    band_rows: np.ndarray
    band_cols: np.ndarray


def count_tile(
    tile: np.ndarray, criteria: list[Criterion | None], row_add: np.ndarray | None = None
) -> list[TileCounts | None]:
    """Count the entries of an ``R x C`` float32 tile inside up to two balls, in one pass.

    ``row_add``: ``(R,)`` float32 added to every entry of a tile row first (as in
    :func:`push_topk`), or None. Returns one :class:`TileCounts` per criterion (None for a None
    criterion).
    """
    if not 1 <= len(criteria) <= 2:
        raise ValueError("count_tile takes one or two criteria")
    rows, cols = tile.shape
    if rows > np.iinfo(np.int32).max or cols > np.iinfo(np.int32).max:
        raise ValueError(f"tile of {rows} x {cols} entries is too large for int32 positions")
    _check(tile, "tile", np.float32, (rows, cols))
    if row_add is not None:
        _check(row_add, "row_add", np.float32, (rows,))
    threads = max(1, min(_threads(), rows))
    crits = list(criteria) + [None] * (2 - len(criteria))
    for c in crits:
        if c is not None:
            lines = rows if c.by_row else cols
            _check(c.lo, "lo", np.float32, (lines,))
            _check(c.hi, "hi", np.float32, (lines,))
    capacity = _BAND_CAPACITY
    while True:
        args: list[object] = [tile, rows, cols, row_add, threads]
        buffers = []
        for c in crits:
            if c is None:  # off: the kernel ignores its buffers
                none = np.empty(0, dtype=np.int32)
                buffers.append((none, none, none, none))
                args += [-1, np.empty(0, dtype=np.float32), np.empty(0, dtype=np.float32), none, none, none, none, 0]
                continue
            rc = np.empty(rows, dtype=np.int32)
            cc = np.empty((threads, cols), dtype=np.int32)
            br = np.empty((threads, capacity), dtype=np.int32)
            bc = np.empty((threads, capacity), dtype=np.int32)
            buffers.append((rc, cc, br, bc))
            args += [int(c.by_row), c.lo, c.hi, rc, cc, br, bc, capacity]
        found = _native().count_tile(*args)
        most = max(max(f) for f in found)
        if most <= capacity:
            break
        capacity = int(most)  # rare: a tile with many pairs near a radius; count it again
    out: list[TileCounts | None] = []
    for c, (rc, cc, br, bc), f in zip(crits, buffers, found, strict=True):
        if c is None:
            out.append(None)
            continue
        band_rows = np.concatenate([br[p, : f[p]] for p in range(threads)]).astype(np.int64)
        band_cols = np.concatenate([bc[p, : f[p]] for p in range(threads)]).astype(np.int64)
        out.append(TileCounts(rc.astype(np.int64), cc.sum(axis=0, dtype=np.int64), band_rows, band_cols))
    return out[: len(criteria)]


def centre_rows(x: np.ndarray, centre: np.ndarray, out: np.ndarray, sq: np.ndarray) -> None:
    """``out = x - centre`` in float32 and ``sq = ||out||^2`` per row, summed in float64.

    Args:
        x: ``N x D`` float32 rows. centre: ``(D,)`` float32. out: ``N x D`` float32 (may be a
            view into a larger buffer, C-contiguous). sq: ``(N,)`` float64.
    """
    n, dim = x.shape
    _check(x, "x", np.float32, (n, dim))
    _check(centre, "centre", np.float32, (dim,))
    _check(out, "out", np.float32, (n, dim))
    _check(sq, "sq", np.float64, (n,))
    _native().centre_rows(x, n, dim, centre, out, sq, _threads())


def pair_sq_dists(
    a: np.ndarray, b: np.ndarray, ia: np.ndarray | None = None, ib: np.ndarray | None = None
) -> np.ndarray:
    """Float64 ``||a[ia[p]] - b[ib[p]]||^2`` (``ia`` / ``ib`` None: row ``p``).

    Each difference is taken in float64 (exact for float32 rows); the squares are summed in four
    float64 running sums (elements ``d mod 4``), added pairwise at the end: the same operations
    for float32 and float64 rows, so rows multiplied by a power of two give exactly the scaled
    result. Rows are read where they lie (no gathered copies).

    Args:
        a: ``N_a x D`` float32 or float64. b: ``N_b x D`` float32 or float64 (C-contiguous, e.g.
            a memmap).
        ia, ib: ``(P,)`` int64 row numbers, or None (then ``P`` rows are paired in order).

    Returns:
        ``(P,)`` float64.

    Raises:
        IndexError: a row number outside its array.
    """
    na, dim = a.shape
    nb = b.shape[0]
    for arr, name, n_rows in ((a, "a", na), (b, "b", nb)):
        _check(arr, name, np.float64 if arr.dtype == np.float64 else np.float32, (n_rows, dim))
    lengths = {x.shape[0] for x in (ia, ib) if x is not None}
    n = lengths.pop() if lengths else min(na, nb)
    if lengths or (ia is None and na != n) or (ib is None and nb != n):
        raise ValueError("pair_sq_dists: ia, ib and the rows paired in order must have one length")
    for idx, name in ((ia, "ia"), (ib, "ib")):
        if idx is not None:
            _check(idx, name, np.int64, (n,))
    out = np.empty(n, dtype=np.float64)
    a64, b64 = a.dtype == np.float64, b.dtype == np.float64
    _native().pair_sq_dists(a, a64, na, b, b64, nb, dim, ia, ib, n, out, _threads())
    return out
