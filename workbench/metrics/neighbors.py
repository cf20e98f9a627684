"""Exact blocked nearest-neighbour search: k-NN, k-th neighbour radii, counts within radii.

Every neighbour-based metric (PRDC, precision/recall, realism, AuthPct, MiFID) and the
memorization search of the analysis layer run on the primitives here:

* :func:`knn` -- the ``k`` nearest index rows of every query row (Euclidean or cosine).
* :func:`kth_neighbor_radii` -- distance from every row to its ``k``-th nearest *other* row.
* :func:`count_within_radii` -- for every pair, is ``d(q, x)`` below a per-index-row radius
  and/or a per-query-row radius; counts per query row and per index row.
* :func:`max_radius_ratio` -- ``max_j r_j / sqrt(d(q, x_j)^2 + eps)`` per query row.

How it works
------------
No ``n x m`` distance matrix is ever materialised. The query rows are held in memory as
mean-centred float32 or bfloat16 (``N_q x D x 4`` or ``x 2`` bytes); the index is streamed in
row blocks (numpy arrays and ``np.memmap`` alike, each block read once). For a query block
``Q`` and an index block ``X`` the squared distances come from one multi-threaded matrix
product, ``d^2 = ||q||^2 + ||x||^2 - 2 q.x`` (rows centred on the mean of the queries, which
leaves distances unchanged and shrinks the cancellation error; float32 rows are centred in
float32 on that mean rounded to float32, one rounding like any other). What follows a product
is one pass over the tile by a native kernel (:mod:`~workbench.metrics.tile_kernels`, C built at
install; numpy where it is not built, same results): a k-NN search keeps the tile entries below
each row's current ``m``-th candidate in a small max-heap per row (a self-search reads each
off-diagonal tile once for both of its orientations), a radius count counts the entries below
per-row and per-column thresholds and lists the few inside the error band. On 2 AVX2 cores the
products are about 7/8 of PRDC's time. A tile is ``block_size x block_size`` float32 (64 MiB at
the default 4096); the tile and its masks live in buffers reused from tile to tile (about 4 tile
sizes), so peak extra memory is about
``N_q x D x 4 + 16 x block_size^2 + block_size x D x 12`` bytes (about 0.5 GiB for 50,000
queries of dimension 1024 at the default block size).

The *search dtype* (``search_dtype=``, :func:`resolve_search_dtype`) is bfloat16 on CPUs that
multiply bf16 matrices fast (AVX512-BF16, AMX: about 4x float32's rate) and float32 elsewhere.
It only decides how candidates are found; results are identical either way.

Exactness
---------
The search dtype is only used to *find* candidates; every returned number and every decision
is exact to float64 rounding for the given inputs:

* The tile error satisfies ``|fl(d^2) - d^2| <= tau (||q - c||^2 + ||x - c||^2)`` with
  ``tau = (D + 16) 2^-24`` for float32 (Higham's ``gamma_D`` bound for a length-``D`` dot
  product plus the roundings of the norms, the centring and the two additions) and about
  ``0.008`` for bfloat16 (operand and output rounding; see :func:`_error_coefficient`).
* :func:`knn` keeps ``m = k + 8`` (bf16: ``k + 16``) candidates per query, recomputes in
  float64 as ``sum((q - x)^2)`` those that can still be among the ``k`` nearest, and re-sorts
  them (:func:`kth_neighbor_radii` needs only the ``k``-th distance: candidates surely nearer
  than it are not recomputed). A query is *certified* when its float64 ``k``-th distance is not
  above the ``m``-th candidate minus the error bound (then no non-candidate can be closer);
  uncertified queries (near-ties) are searched again with the next finer dtype (bf16 -> float32
  -> float64). Ties are broken arbitrarily (any tied row is a correct neighbour).
* :func:`count_within_radii` decides every pair whose tile ``d^2`` lies farther than the
  error bound from the threshold directly, and recomputes the few pairs inside that band in
  float64, so its counts equal those of a float64 brute-force comparison.
* Features of any magnitude: when the largest ``|value|`` of the inputs lies outside
  ``[2^-40, 2^40]`` (e.g. features multiplied by ``1e19``, whose squared distances overflow
  float32), every row is multiplied by a common power of two as it is read
  (:func:`~workbench.metrics.validation.power_of_two_scale`). That is exact, so the same
  neighbours and counts come out as for the unscaled data and distances are divided back
  exactly; well-scaled inputs are not touched.
* :func:`max_radius_ratio` always searches in float32: it selects the best index row and
  recomputes its ratio in float64 (the selection can differ from a float64 arg-max only
  between candidates whose ratios agree to within the float32 distance error).
"""

from __future__ import annotations

import contextvars
import functools
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import torch

from workbench.metrics import tile_kernels
from workbench.metrics.validation import (
    as_features,
    check_same_dim,
    max_abs,
    power_of_two_scale,
    scale_for_magnitude,
)
from workbench.progress import Progress, ProgressReporter

SearchDtype = Literal["auto", "float32", "bfloat16"]

DEFAULT_BLOCK_SIZE = 4096
# Rows of the smallest sub-blocks a diagonal tile of a self-search is halved into (only pairs
# above the diagonal are computed): large enough for an efficient matrix product, small enough to
# skip most mirror pairs.
_DIAGONAL_LEAF = 512
# Extra candidates kept per query beyond k: the certificate needs a gap between the k-th true
# neighbour and the last candidate larger than twice the search's error bound (wider for bf16).
_CANDIDATE_MARGIN = {torch.bfloat16: 16, torch.float32: 8, torch.float64: 8}
SEARCH_DTYPES = ("auto", "float32", "bfloat16")
SEARCH_DTYPE_ENV = "WORKBENCH_SEARCH_DTYPE"
_PAIR_CHUNK = 1024  # pairs per exact re-computation chunk (cache-sized)
_METRICS = ("l2", "cosine")


# --------------------------------------------------------------------------- row access


class _Rows:
    """Float64 view of a validated ``N x D`` matrix (array or memmap), optionally unit-normalised.

    ``scale`` (a power of two, see :func:`~workbench.metrics.validation.power_of_two_scale`)
    multiplies every row as it is read, so features of any magnitude (``1e19``, ``1e-30``) are
    searched in the float32 range; the multiplication is exact, so every decision is the one
    the unscaled data would give and distances are recovered by dividing by ``scale``.
    """

    def __init__(self, arr: np.ndarray, name: str, normalize: bool, scale: float = 1.0) -> None:
        self.arr = arr
        self.name = name
        self.normalize = normalize
        self.scale = float(scale)
        self.n, self.dim = arr.shape

    @property
    def raw(self) -> bool:
        """Rows are used as stored (no normalisation, no scaling)."""
        return not self.normalize and self.scale == 1.0

    def block(self, start: int, stop: int) -> np.ndarray:
        return self._prepare(self.arr[start:stop], start)

    def search_block(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` for the candidate search: float32 rows as stored (no float64 copy;
        :func:`_operand` centres them in float32), any other rows as :meth:`block`."""
        if self.raw and self.arr.dtype == np.float32:
            return np.asarray(self.arr[start:stop])
        return self.block(start, stop)

    def take(self, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx``: float64 when normalised, else in the input dtype (exact pair distances
        convert while subtracting, which skips a float64 copy of every gathered row)."""
        rows = self.arr[np.asarray(idx, dtype=np.int64)]
        return rows if self.raw else self._prepare(rows, None)

    def _prepare(self, x: np.ndarray, start: int | None) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.scale != 1.0:
            x = x * self.scale  # exact: a power of two
        if self.normalize:
            norms = np.sqrt(np.einsum("ij,ij->i", x, x))
            zero = np.flatnonzero(norms == 0)
            if zero.size:
                where = f" (row {start + int(zero[0])})" if start is not None else ""
                raise ValueError(
                    f"{self.name} has an all-zero row{where}; cosine distance is undefined for it. "
                    "Drop such rows first."
                )
            x = x / norms[:, None]
        return x


def _tile_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype of distance tiles and squared norms: float32 for the bf16 and float32 searches."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _np_dtype(dtype: torch.dtype) -> type:
    return np.float64 if dtype == torch.float64 else np.float32


def _error_coefficient(dim: int, dtype: torch.dtype, rho: float = 2.0**-8 + 2.0**-23) -> float:
    """``tau`` with ``|fl(d^2) - d^2| <= tau (||q - c||^2 + ||x - c||^2)`` for one tile entry.

    float32 / float64: Higham's ``gamma_D`` for the dot product plus the roundings of the norms,
    the centring and the two additions, ``(D + 16) u``.

    bfloat16 (8-bit significand; operands rounded to bf16, products accumulated in float32, the
    product tile rounded to bf16, then ``||q||^2 + ||x||^2 - 2 q.x`` in float32): with ``rho``
    the largest relative rounding ``||e|| / ||v||`` of an operand row (measured, see
    :func:`_bf16_rounding`; at most ``2^-8`` for round-to-nearest, plus the float64 -> float32
    step), ``q.x - q'.x' = e_q.x + q'.e_x`` is at most
    ``(2 rho + rho^2) ||q|| ||x||``; the float32 accumulation adds ``gamma_D (1 + rho)^2 ||q|| ||x||``
    and the bf16 output at most ``2^-8`` of the sum (round-to-nearest-even, as oneDNN's and
    PyTorch's float32 -> bf16 conversions do; a test checks it on this machine).
    The factor 2 of ``-2 q.x`` meets ``2 ||q|| ||x|| <= ||q||^2 + ||x||^2``; ``8 u`` covers the
    float32 norms and additions. ``tau`` is about 0.008 on typical embeddings, 0.012 at worst.
    """
    if dtype == torch.bfloat16:
        u = 2.0**-24
        gamma = dim * u / (1 - dim * u)
        out = 2.0**-8
        return 2 * rho + rho**2 + (gamma + out * (1 + gamma)) * (1 + rho) ** 2 + 8 * u
    unit_roundoff = 2.0**-24 if dtype == torch.float32 else 2.0**-53
    return (dim + 16) * unit_roundoff


_FAST_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.lru_cache(maxsize=1)
def _bfloat16_is_fast() -> bool:
    """True when the CPU multiplies bf16 matrices in hardware (x86 AVX512-BF16 or AMX-BF16).

    There, bf16 products run about 4x faster than float32 (measured: 775 vs 189 GFLOP/s on 2
    AMD EPYC cores); elsewhere bf16 is emulated and slower. Read from ``/proc/cpuinfo``; where
    that is missing (macOS, Windows) the answer is False and searches stay float32. (A timing
    probe was tried first and misjudged a loaded machine now and then.)
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return bool(_FAST_BF16_FLAGS & set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return False


def resolve_search_dtype(search_dtype: str = "auto") -> torch.dtype:
    """The dtype of the candidate search: ``"float32"``, ``"bfloat16"`` or ``"auto"``.

    ``"auto"`` reads ``$WORKBENCH_SEARCH_DTYPE`` when set, else picks bfloat16 where this CPU
    has bf16 matrix instructions (AVX512-BF16 or AMX), else float32. The choice never
    changes a result (every search is certified and re-ranked in float64), only the speed.
    """
    if search_dtype == "auto":
        search_dtype = os.environ.get(SEARCH_DTYPE_ENV, "").strip().lower() or "auto"
        if search_dtype not in SEARCH_DTYPES:
            raise ValueError(f"${SEARCH_DTYPE_ENV} must be one of {SEARCH_DTYPES}; got {search_dtype!r}")
    if search_dtype not in SEARCH_DTYPES:
        raise ValueError(f"search_dtype must be one of {SEARCH_DTYPES}; got {search_dtype!r}")
    if search_dtype == "auto":
        return torch.bfloat16 if _bfloat16_is_fast() else torch.float32
    return torch.bfloat16 if search_dtype == "bfloat16" else torch.float32


def _centre(rows: _Rows, block_size: int) -> np.ndarray:
    total = np.zeros(rows.dim, dtype=np.float64)
    for start in range(0, rows.n, block_size):
        stop = min(start + block_size, rows.n)
        # any centre serves (it only shrinks rounding); summing in float64 skips a float64 copy
        block = rows.arr[start:stop] if rows.raw else rows.block(start, stop)
        total += block.sum(axis=0, dtype=np.float64)
    return total / rows.n


@dataclass
class _Operand:
    """Centred rows in the compute dtype plus their squared norms (torch and float64 numpy)."""

    x: torch.Tensor
    sq: torch.Tensor
    sq64: np.ndarray
    rho: float = 0.0  # bf16 only: max over rows of ||v - bf16(v)|| / ||v|| (see _error_coefficient)


def _bf16_rounding(x32: torch.Tensor, xb: torch.Tensor) -> float:
    """Largest relative rounding ``||v - bf16(v)|| / ||v||`` over the rows (float64 -> float32 included).

    ``v - bf16(v)`` is exact in float32 (the low bits of ``v``); the norms are float32 sums,
    inflated by ``1e-4`` against their own rounding. At most ``2^-8``; about ``2^-9`` on
    typical embeddings, which halves the operand part of the error bound.
    """
    res = x32 - xb.to(torch.float32)
    ratio = (res.square().sum(dim=1) / x32.square().sum(dim=1).clamp_min(1e-30)).sqrt()
    return min(float(ratio.max()) * (1 + 1e-4), 2.0**-8) + 2.0**-23


def _operand(rows: np.ndarray, centre: np.ndarray, dtype: torch.dtype, out: np.ndarray | None = None) -> _Operand:
    """Centred ``rows`` (float32 or float64, from :meth:`_Rows.search_block`) in the search dtype.

    Float32 rows of a float32 or bf16 search are centred in float32 on the centre rounded to
    float32: the difference of two float32 numbers is rounded once, like the float64 difference
    rounded to float32 of the other path, and any centre leaves distances unchanged. Their squared
    norms are then summed in float64 from those float32 values (the operand the products see).
    ``out``: where a float32 search puts the centred rows (default: a new array).
    """
    np_dtype = _np_dtype(dtype)
    if rows.dtype == np.float32 and np_dtype == np.float32:
        xc = np.empty(rows.shape, dtype=np.float32) if out is None else out
        if tile_kernels.available():
            sq64 = np.empty(rows.shape[0], dtype=np.float64)
            tile_kernels.centre_rows(np.ascontiguousarray(rows), centre.astype(np.float32), xc, sq64)
        else:
            np.subtract(rows, centre.astype(np.float32), out=xc)
            sq64 = np.einsum("ij,ij->i", xc, xc, dtype=np.float64)
    else:
        xc = np.asarray(rows, dtype=np.float64) - centre
        sq64 = np.einsum("ij,ij->i", xc, xc)
        if out is not None and np_dtype == np.float32:
            out[...] = xc
            xc = out
    x = torch.from_numpy(xc.astype(np_dtype, copy=False))
    sq = torch.from_numpy(sq64.astype(np_dtype))
    if dtype != torch.bfloat16:
        return _Operand(x, sq, sq64)
    xb = x.to(torch.bfloat16)
    return _Operand(xb, sq, sq64, _bf16_rounding(x, xb))


def _query_operand(rows: _Rows, centre: np.ndarray, dtype: torch.dtype, block_size: int) -> _Operand:
    x = torch.empty((rows.n, rows.dim), dtype=dtype)
    sq64 = np.empty(rows.n, dtype=np.float64)
    rho = 0.0
    for start in range(0, rows.n, block_size):
        stop = min(start + block_size, rows.n)
        # a float32 search centres straight into the query matrix (no block-sized copy)
        out = x[start:stop].numpy() if dtype == torch.float32 else None
        op = _operand(rows.search_block(start, stop), centre, dtype, out)
        if out is None:
            x[start:stop] = op.x
        sq64[start:stop] = op.sq64
        rho = max(rho, op.rho)
    return _Operand(x, torch.from_numpy(sq64.astype(_np_dtype(dtype))), sq64, rho)


def _index_operand(block: np.ndarray, centre: np.ndarray, dtype: torch.dtype, ws: _Workspace) -> _Operand:
    """:func:`_operand` of an index block; a float32 search centres it into a workspace buffer
    reused from block to block (a fresh 16 MiB array per block costs its page faults)."""
    out = ws.get("index", block.shape[0], block.shape[1], torch.float32).numpy() if dtype == torch.float32 else None
    return _operand(block, centre, dtype, out)


class _SharedPasses:
    """Work that the passes of one :func:`manifold_counts` call share (set in a context variable).

    * Its two feature sets are validated once, and their largest magnitudes (for
      :func:`~workbench.metrics.validation.power_of_two_scale`) read once, instead of in
      every pass.
    * The k-NN search of the fakes and the counts with the fakes as queries centre the same rows
      on the same mean: the second pass takes the first's query operand (a copy and a float64
      pass over every row saved). Only the operand of ``keep`` is kept.
    """

    def __init__(self, arrays: tuple[np.ndarray, ...], keep: np.ndarray) -> None:
        self.arrays = arrays
        self.magnitudes = [max_abs(a) for a in arrays]
        self.keep = keep
        self.key: tuple[object, ...] | None = None
        self.value: tuple[np.ndarray, _Operand] | None = None

    def known(self, x: object) -> int | None:
        return next((i for i, a in enumerate(self.arrays) if x is a), None)


_SHARED: contextvars.ContextVar[_SharedPasses | None] = contextvars.ContextVar("workbench_shared", default=None)


def _features(x: npt.ArrayLike, name: str) -> np.ndarray:
    """:func:`~workbench.metrics.validation.as_features`, skipped for the arrays an enclosing
    :func:`manifold_counts` has validated."""
    shared = _SHARED.get()
    if shared is not None and (i := shared.known(x)) is not None:
        return shared.arrays[i]
    return as_features(x, name)


def _scale(*arrays: np.ndarray) -> float:
    """:func:`~workbench.metrics.validation.power_of_two_scale`, with the magnitudes an enclosing
    :func:`manifold_counts` has read."""
    shared = _SHARED.get()

    def magnitude(a: np.ndarray) -> float:
        i = None if shared is None else shared.known(a)
        return max_abs(a) if shared is None or i is None else shared.magnitudes[i]

    return scale_for_magnitude(max(magnitude(a) for a in arrays))


def _query_side(rows: _Rows, dtype: torch.dtype, block_size: int) -> tuple[np.ndarray, _Operand]:
    """Centre (the mean of ``rows``) and the centred query operand, reused from an enclosing
    :func:`manifold_counts` when it holds those of the same rows (:class:`_SharedPasses`)."""
    shared = _SHARED.get()
    key = (id(rows.arr), rows.arr.shape, rows.scale, rows.normalize, dtype, block_size)
    if shared is not None and shared.key == key and shared.value is not None:
        return shared.value
    centre = _centre(rows, block_size)
    op = _query_operand(rows, centre, dtype, block_size)
    if shared is not None and rows.arr is shared.keep:
        shared.key, shared.value = key, (centre, op)
    return centre, op


def _row_chunks(start: int, stop: int, block_size: int) -> list[tuple[int, int]]:
    """Row ranges ``[r0, r1)`` of at most ``block_size`` rows covering ``[start, stop)``."""
    return [(r0, min(r0 + block_size, stop)) for r0 in range(start, stop, block_size)]


def _index_blocks(rows: _Rows, block_size: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(start, stop, rows)`` blocks of :meth:`_Rows.search_block` (float32 as stored, else float64)."""
    for start in range(0, rows.n, block_size):
        stop = min(start + block_size, rows.n)
        yield start, stop, rows.search_block(start, stop)


class _Workspace:
    """Tile-sized buffers reused from tile to tile.

    A fresh 64 MiB tensor per tile costs more in page faults than the comparisons that fill it,
    so every tile-sized result is written into one of these (``out=``) instead.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, name: str, rows: int, cols: int, dtype: torch.dtype) -> torch.Tensor:
        buf = self._buffers.get(name)
        if buf is None or buf.numel() < rows * cols or buf.dtype != dtype:
            buf = torch.empty(rows * cols, dtype=dtype)
            self._buffers[name] = buf
        return buf[: rows * cols].view(rows, cols)


def _sq_dist_tile(
    q: torch.Tensor,
    q_sq: torch.Tensor,
    x: torch.Tensor,
    x_sq: torch.Tensor,
    ws: _Workspace,
    add_rows: bool = True,
) -> torch.Tensor:
    """``||q||^2 + ||x||^2 - 2 q.x`` for a block pair (not clamped; may be slightly negative).

    bf16 operands: the product tile is bf16 (the CPU kernel accumulates in float32 and rounds
    the result once) and the distances are formed in float32 from it. ``add_rows=False`` leaves
    ``||q||^2`` out, for a native kernel that adds it as it reads the tile (one pass fewer).
    """
    out = ws.get("tile", q.shape[0], x.shape[0], x_sq.dtype)
    if q.dtype == torch.bfloat16:
        dot = torch.mm(q, x.T, out=ws.get("dot", q.shape[0], x.shape[0], torch.bfloat16))
        # copy + in-place ops: a mixed-dtype torch.add(..., out=) is about 5x slower here
        out.copy_(dot).mul_(-2.0).add_(x_sq.unsqueeze(0))
    else:
        torch.addmm(x_sq.unsqueeze(0), q, x.T, beta=1.0, alpha=-2.0, out=out)
    return out.add_(q_sq.unsqueeze(1)) if add_rows else out


_KERNEL_ROWS = (np.dtype(np.float32), np.dtype(np.float64))  # rows the exact-distance kernel reads


def _exact_pair_sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise float64 ``||a_i - b_i||^2``.

    Every exact distance in this module goes through here or :func:`_exact_sq_indexed` (the
    same arithmetic for the same pair of rows), so a distance that equals a radius computed from
    the same two rows is an exact tie. With the native kernels built, every pair goes to
    :func:`tile_kernels.pair_sq_dists` (the same operations for float32 and float64 rows, so
    power-of-two scaled rows give exactly scaled distances), else to numpy.
    """
    if tile_kernels.available() and a.dtype in _KERNEL_ROWS and b.dtype in _KERNEL_ROWS:
        return tile_kernels.pair_sq_dists(np.ascontiguousarray(a), np.ascontiguousarray(b))
    diff = np.subtract(a, b, dtype=np.float64)  # exact for float32 inputs of similar magnitude
    return np.einsum("ij,ij->i", diff, diff)


def _in_place(arr: np.ndarray) -> np.ndarray | None:
    """``arr`` when the native kernel can read exact distances from it in place, else None."""
    if arr.dtype in _KERNEL_ROWS and arr.flags.c_contiguous and tile_kernels.available():
        return arr
    return None


def _exact_sq_indexed(a_rows: _Rows, a_ids: np.ndarray, b: np.ndarray | _Rows, b_ids: np.ndarray) -> np.ndarray:
    """Float64 ``||a[a_ids[p]] - b[b_ids[p]]||^2`` (rows of ``a_rows`` and of ``b``: a ``_Rows`` or
    an index block from :func:`_index_blocks`), as :func:`_exact_pair_sq_dists` computes it.

    Rows used as stored are read in place by the native kernel; otherwise (scaled or normalised
    rows, no kernels) the pairs are gathered in chunks of ``_PAIR_CHUNK`` rows.
    """
    a_ids = np.ascontiguousarray(a_ids, dtype=np.int64)
    b_ids = np.ascontiguousarray(b_ids, dtype=np.int64)
    a_arr = _in_place(a_rows.arr) if a_rows.raw else None
    b_arr = b if isinstance(b, np.ndarray) else (b.arr if b.raw else None)
    b_arr = None if b_arr is None else _in_place(b_arr)
    if a_arr is not None and b_arr is not None:
        return tile_kernels.pair_sq_dists(a_arr, b_arr, a_ids, b_ids)
    out = np.empty(a_ids.size, dtype=np.float64)
    for s0 in range(0, a_ids.size, _PAIR_CHUNK):
        s1 = min(s0 + _PAIR_CHUNK, a_ids.size)
        b_part = b[b_ids[s0:s1]] if isinstance(b, np.ndarray) else b.take(b_ids[s0:s1])
        out[s0:s1] = _exact_pair_sq_dists(a_rows.take(a_ids[s0:s1]), b_part)
    return out


# --------------------------------------------------------------------------- validation


def _check_metric(metric: str) -> None:
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}; got {metric!r}")


def _check_block_size(block_size: int | None) -> int:
    if block_size is None:
        return DEFAULT_BLOCK_SIZE
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"block_size must be a positive integer (rows per block); got {block_size!r}")
    return int(block_size)


def _check_k(k: int, available: int, what: str) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    if k > available:
        raise ValueError(f"k={k} but {what} has only {available} candidate neighbours; lower k or add samples")
    return int(k)


def check_neighbourhood_size(k: int, n: int, name: str) -> int:
    """Validate a k-NN ball size ``k`` for a set of ``n`` samples (needs ``1 <= k < n``)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    if k >= n:
        raise ValueError(f"k={k} needs more than k samples in {name}; got {n}. Lower k or add samples")
    return int(k)


def _scaled_radii(r: np.ndarray, scale: float, name: str) -> np.ndarray:
    """Radii in the units of rows multiplied by ``scale`` (a power of two: exact)."""
    with np.errstate(over="ignore"):
        out = r * scale
    if not np.isfinite(out).all():  # radii near the float64 limit
        raise ValueError(f"{name} overflow float64 once scaled with the features; rescale the features")
    return out


def _check_radii(radii: object, n: int, name: str) -> np.ndarray:
    r = np.asarray(radii, dtype=np.float64)
    if r.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) (one radius per row); got {r.shape}")
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError(f"{name} must be finite and >= 0")
    return r


# --------------------------------------------------------------------------- k-NN


class _TopK:
    """Running ``m`` smallest values (and their column ids) per row."""

    def __init__(self, n: int, m: int, dtype: torch.dtype, ws: _Workspace) -> None:
        self.m = m
        self.vals = torch.full((n, m), math.inf, dtype=dtype)
        self.idx = torch.full((n, m), -1, dtype=torch.int64)
        self.worst = torch.full((n,), math.inf, dtype=dtype)  # current m-th value per row
        self.ws = ws
        self.native = dtype == torch.float32 and tile_kernels.available()

    def _push_native(
        self,
        tile: torch.Tensor,
        rows_to: tuple[int, int],
        cols_to: tuple[int, int] | None,
        row_add: torch.Tensor,
    ) -> None:
        tile_kernels.push_topk(
            tile.numpy(),
            self.vals.numpy(),
            self.idx.numpy(),
            self.worst.numpy(),
            rows_to=rows_to,
            cols_to=cols_to,
            row_add=row_add.numpy(),
        )

    def push_pair(self, r0: int, r1: int, c0: int, tile: torch.Tensor, row_add: torch.Tensor) -> None:
        """:meth:`push` and :meth:`push_transposed` of an off-diagonal tile of a self-search (rows
        ``r0:r1`` against rows from ``c0``): one native pass reads the tile once for both.
        ``row_add``: see :meth:`push`."""
        if self.native:
            self._push_native(tile, (r0, c0), (c0, r0), row_add)
            return
        self.push(r0, r1, tile, c0, row_add)
        self.push_transposed(c0, c0 + tile.shape[1], tile, r0)

    def push(self, r0: int, r1: int, tile: torch.Tensor, col_offset: int, row_add: torch.Tensor) -> None:
        """Merge a tile (rows ``r0:r1``, columns from ``col_offset``) into the running top-m.
        ``row_add``: added to every entry of a tile row first, in the tile's dtype (the rows'
        squared norms, which a tile from ``_sq_dist_tile(..., add_rows=False)`` lacks): the native
        merge adds them as it reads the tile, numpy adds them to the tile in place."""
        if self.native:
            self._push_native(tile, (r0, col_offset), None, row_add)
            return
        tile.add_(row_add.unsqueeze(1))
        worst = self.worst[r0:r1]
        if not torch.isinf(worst).any():
            # Once every row holds m values, only tile entries below a row's m-th value matter;
            # they are few, so a mask and a sparse merge replace a top-k over the whole tile.
            flat = self._flat_below(tile, worst.numpy()[:, None])
            if flat.size == 0:
                return
            rows, cols = np.divmod(flat, tile.shape[1])
            vals = tile.numpy().ravel()[flat]
            if self._merge_few(r0, r1, rows, cols, vals, col_offset):
                return
        self._push_dense(r0, r1, tile, col_offset)

    def push_transposed(self, r0: int, r1: int, tile: torch.Tensor, col_offset: int) -> None:
        """:meth:`push` of ``tile.T``: tile *columns* are rows ``r0:r1``, tile rows the columns
        from ``col_offset``. The mask is taken in the tile's own memory order (a strided pass over
        a transposed 64 MiB tile costs several times a contiguous one). The numpy merge of
        :meth:`push_pair` (the native one reads both orientations in one pass)."""
        worst = self.worst[r0:r1]
        if not torch.isinf(worst).any():
            flat = self._flat_below(tile, worst.numpy()[None, :])
            if flat.size == 0:
                return
            flat = flat[np.argsort(flat % tile.shape[1], kind="stable")]  # row by row of tile.T
            t_rows, t_cols = np.divmod(flat, tile.shape[1])
            if self._merge_few(r0, r1, t_cols, t_rows, tile.numpy().ravel()[flat], col_offset):
                return
        # a transposed tile: copying first makes top-k ~2x faster
        dense = self.ws.get("dense", tile.shape[1], tile.shape[0], tile.dtype).copy_(tile.T)
        self._push_dense(r0, r1, dense, col_offset)

    def _flat_below(self, tile: torch.Tensor, threshold: np.ndarray) -> np.ndarray:
        """Flat (row-major) positions of the tile entries below ``threshold`` (broadcast per row or
        column). numpy's compare and ``flatnonzero`` take about half the time of torch's here."""
        below = self.ws.get("below", tile.shape[0], tile.shape[1], torch.bool).numpy()
        np.less(tile.numpy(), threshold, out=below)
        return np.flatnonzero(below)

    def _merge_few(
        self, r0: int, r1: int, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, col_offset: int
    ) -> bool:
        """Sparse merge of entries listed row by row, when they are few (a few per row: the mask,
        a gather and a top-k over ``m`` + a few columns beat a top-k over the whole tile); False
        if a dense top-k is cheaper."""
        if rows.size > 4 * self.m * (r1 - r0):
            return False
        return self._merge_sparse(
            r0, torch.from_numpy(rows), torch.from_numpy(cols), torch.from_numpy(vals), col_offset
        )

    def _push_dense(self, r0: int, r1: int, tile: torch.Tensor, col_offset: int) -> None:
        kk = min(self.m, tile.shape[1])
        v, i = torch.topk(tile, kk, dim=1, largest=False, sorted=False)
        self._merge_dense(slice(r0, r1), v, i + col_offset)

    def _merge_dense(self, rows: torch.Tensor | slice, v: torch.Tensor, i: torch.Tensor) -> None:
        all_v = torch.cat([self.vals[rows], v], dim=1)
        all_i = torch.cat([self.idx[rows], i], dim=1)
        best_v, sel = torch.topk(all_v, self.m, dim=1, largest=False, sorted=False)
        self.vals[rows] = best_v
        self.idx[rows] = torch.gather(all_i, 1, sel)
        self.worst[rows] = best_v.amax(dim=1)

    def _merge_sparse(
        self, r0: int, rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, col_offset: int
    ) -> bool:
        """Merge entries listed row by row (as ``nonzero`` gives them); False if padding is too big."""
        touched, counts = torch.unique_consecutive(rows, return_counts=True)
        width = int(counts.max())
        if touched.numel() * width > 8 * rows.numel() + 65536:
            return False
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.arange(rows.numel()) - torch.repeat_interleave(starts, counts)
        which = torch.repeat_interleave(torch.arange(touched.numel()), counts)
        v = torch.full((touched.numel(), width), math.inf, dtype=vals.dtype)
        i = torch.full((touched.numel(), width), -1, dtype=torch.int64)
        v[which, slot] = vals
        i[which, slot] = cols + col_offset
        self._merge_dense(touched + r0, v, i)
        return True


def _mask_self(tile: torch.Tensor, self_ids: np.ndarray | None, c0: int, c1: int) -> None:
    if self_ids is None:
        return
    rows = np.flatnonzero((self_ids >= c0) & (self_ids < c1))
    if rows.size:
        tile[torch.from_numpy(rows), torch.from_numpy(self_ids[rows] - c0)] = math.inf


def _candidates_streamed(
    q_rows: _Rows,
    x_rows: _Rows,
    m: int,
    self_ids: np.ndarray | None,
    dtype: torch.dtype,
    block_size: int,
    reporter: ProgressReporter,
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, float, float]:
    """``m``-NN candidates of every query row; the index is read once, block by block.

    Returns the candidates' tile values and ids, the query rows' centred squared norms, the
    largest index row's, and the search's error coefficient ``tau``.
    """
    centre, q = _query_side(q_rows, dtype, block_size)
    ws = _Workspace()
    top = _TopK(q_rows.n, m, _tile_dtype(dtype), ws)
    max_x_sq, rho = 0.0, q.rho
    for c0, c1, x_block in _index_blocks(x_rows, block_size):
        xo = _index_operand(x_block, centre, dtype, ws)
        max_x_sq, rho = max(max_x_sq, float(xo.sq64.max())), max(rho, xo.rho)
        for r0, r1 in _row_chunks(0, q_rows.n, block_size):
            # the merge adds the query norms (inf stays inf)
            tile = _sq_dist_tile(q.x[r0:r1], q.sq[r0:r1], xo.x, xo.sq, ws, add_rows=False)
            _mask_self(tile, None if self_ids is None else self_ids[r0:r1], c0, c1)
            top.push(r0, r1, tile, c0, q.sq[r0:r1])
            reporter.advance()
    return top.vals, top.idx, q.sq64, max_x_sq, _error_coefficient(q_rows.dim, dtype, rho)


def _diagonal_plan(r0: int, r1: int, leaf: int) -> tuple[list[tuple[int, int]], list[tuple[int, int, int, int]]]:
    """Rows ``r0:r1`` of a self-search's diagonal tile as leaves (computed whole, diagonal masked)
    and pairs of halves (computed once, used both ways), halving until ``leaf`` rows.

    At 4096 rows and 512-row leaves that is 9.4M of the tile's 16.8M entries (8.4M are above
    the diagonal; 1024-row sub-blocks paired all against all took 10.5M).
    """
    if r1 - r0 <= leaf:
        return [(r0, r1)], []
    mid = r0 + (r1 - r0 + 1) // 2
    left, left_pairs = _diagonal_plan(r0, mid, leaf)
    right, right_pairs = _diagonal_plan(mid, r1, leaf)
    return left + right, left_pairs + right_pairs + [(r0, mid, mid, r1)]


def _candidates_symmetric(
    rows: _Rows, m: int, dtype: torch.dtype, block_size: int, reporter: ProgressReporter
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, float, float]:
    """Self-search (self excluded) computing each off-diagonal tile once and using it both ways."""
    centre, op = _query_side(rows, dtype, block_size)
    ws = _Workspace()
    top = _TopK(rows.n, m, _tile_dtype(dtype), ws)
    starts = list(range(0, rows.n, block_size))

    def pair(r0: int, r1: int, c0: int, c1: int) -> None:
        # the merge adds the row norms (inf stays inf)
        tile = _sq_dist_tile(op.x[r0:r1], op.sq[r0:r1], op.x[c0:c1], op.sq[c0:c1], ws, add_rows=False)
        if c0 == r0:
            tile.fill_diagonal_(math.inf)
            top.push(r0, r1, tile, c0, op.sq[r0:r1])
        else:
            top.push_pair(r0, r1, c0, tile, op.sq[r0:r1])

    # Diagonal blocks first (each halved down to leaves, the leaves first): every row then holds
    # m candidates before any off-diagonal tile arrives, so those merge few entries.
    for r0 in starts:
        leaves, halves = _diagonal_plan(r0, min(r0 + block_size, rows.n), _DIAGONAL_LEAF)
        for a0, a1 in leaves:
            pair(a0, a1, a0, a1)
        for a0, a1, b0, b1 in halves:
            pair(a0, a1, b0, b1)
        reporter.advance()
    for bi, r0 in enumerate(starts):
        r1 = min(r0 + block_size, rows.n)
        for c0 in starts[bi + 1 :]:
            pair(r0, r1, c0, min(c0 + block_size, rows.n))
            reporter.advance()
    return top.vals, top.idx, op.sq64, float(op.sq64.max()), _error_coefficient(rows.dim, dtype, op.rho)


def _exact_candidate_sq_dists(
    q_rows: _Rows,
    x_rows: _Rows,
    cand: np.ndarray,
    approx: np.ndarray,
    k: int,
    slack: np.ndarray,
    kth_only: bool = False,
) -> np.ndarray:
    """Float64 ``d^2`` of every query row to those of its candidates that can be among its k nearest.

    A candidate whose approximate ``d^2`` exceeds the row's k-th smallest approximate value by
    more than ``slack`` (twice the search's error bound) is farther than k other candidates and
    gets ``inf`` instead of a float64 recomputation. With ``kth_only`` (only the k-th distance
    is wanted, e.g. k-NN radii), a candidate *below* that value by more than ``slack`` is surely
    nearer than the k-th neighbour and gets ``-inf``: the k-th smallest entry of the row is then
    still its exact k-th distance, and only the candidates near it are recomputed.
    """
    n, m = cand.shape
    out = np.full((n, m), np.inf)
    kth = np.partition(approx, k - 1, axis=1)[:, k - 1]
    near = approx <= (kth + slack)[:, None]
    if kth_only:
        surely_nearer = approx < (kth - slack)[:, None]
        out[surely_nearer] = -np.inf
        near &= ~surely_nearer
    rows, cols = np.nonzero(near)
    out[rows, cols] = _exact_sq_indexed(q_rows, rows, x_rows, cand[rows, cols])
    return out


def _knn_sq(
    q_rows: _Rows,
    x_rows: _Rows,
    k: int,
    exclude_self: bool,
    symmetric: bool,
    block_size: int,
    progress: Progress | bool | None,
    dtype: torch.dtype,
    kth_only: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact squared distances (float64) and indices of the k nearest index rows.

    ``kth_only``: only the last column of distances is exact (the others may be ``-inf``); the
    indices are still the k nearest rows (see :func:`_exact_candidate_sq_dists`)."""
    m = _candidate_count(k, x_rows, exclude_self, dtype)
    n_q_blocks = len(_row_chunks(0, q_rows.n, block_size))
    n_x_blocks = len(_row_chunks(0, x_rows.n, block_size))
    total = n_q_blocks * (n_q_blocks + 1) // 2 if symmetric else n_q_blocks * n_x_blocks
    reporter = ProgressReporter(progress, "k-NN search", total, unit="tile")
    try:
        if symmetric:
            found = _candidates_symmetric(q_rows, m, dtype, block_size, reporter)
        else:
            self_ids = np.arange(q_rows.n) if exclude_self else None
            found = _candidates_streamed(q_rows, x_rows, m, self_ids, dtype, block_size, reporter)
    finally:
        reporter.close()
    return _rerank_and_certify(
        q_rows, np.arange(q_rows.n), x_rows, k, exclude_self, block_size, dtype, *found, kth_only=kth_only
    )


def _available(x_rows: _Rows, exclude_self: bool) -> int:
    """Index rows a query can have as neighbours."""
    return x_rows.n - (1 if exclude_self else 0)


def _candidate_count(k: int, x_rows: _Rows, exclude_self: bool, dtype: torch.dtype) -> int:
    """Candidates kept per query by a search of ``dtype``: ``k`` plus its margin, at most all rows."""
    return min(k + _CANDIDATE_MARGIN[dtype], _available(x_rows, exclude_self))


def _rerank_and_certify(
    q_rows: _Rows,
    q_ids: np.ndarray,
    x_rows: _Rows,
    k: int,
    exclude_self: bool,
    block_size: int,
    dtype: torch.dtype,
    vals: torch.Tensor,
    idx: torch.Tensor,
    q_sq: np.ndarray,
    max_x_sq: float,
    tau: float,
    *,
    kth_only: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank the candidates in float64; queries whose certificate fails are searched again.

    ``q_rows`` row ``i`` is query ``q_ids[i]`` (its own index row under ``exclude_self``). The
    repeat search uses the next finer dtype (bf16 -> float32 -> float64) on those queries only.
    When the candidates are every available row, nothing was left out and no certificate is needed.
    """
    cand = idx.numpy()
    pruned = cand.shape[1] < _available(x_rows, exclude_self)
    approx = vals.numpy().astype(np.float64)
    exact = _exact_candidate_sq_dists(q_rows, x_rows, cand, approx, k, 2 * tau * (q_sq + max_x_sq), kth_only)
    order = np.argsort(exact, axis=1, kind="stable")[:, :k]
    best_sq = np.take_along_axis(exact, order, axis=1)
    best_idx = np.take_along_axis(cand, order, axis=1)
    if pruned and dtype != torch.float64:
        worst_candidate = approx.max(axis=1)
        lower_bound = np.maximum(worst_candidate - tau * (q_sq + max_x_sq), 0.0)
        uncertified = np.flatnonzero(best_sq[:, -1] > lower_bound)
        if uncertified.size:
            finer = torch.float32 if dtype == torch.bfloat16 else torch.float64
            sub_sq, sub_idx = _knn_sq_subset(
                q_rows, uncertified, q_ids[uncertified], x_rows, k, exclude_self, block_size, finer, kth_only
            )
            best_sq[uncertified] = sub_sq
            best_idx[uncertified] = sub_idx
    return best_sq, best_idx


def _knn_sq_subset(
    q_rows: _Rows,
    rows: np.ndarray,
    q_ids: np.ndarray,
    x_rows: _Rows,
    k: int,
    exclude_self: bool,
    block_size: int,
    dtype: torch.dtype,
    kth_only: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """A streamed search of ``dtype`` for rows ``rows`` of ``q_rows`` (query ids ``q_ids``)."""
    sub = _Rows(q_rows.take(rows), q_rows.name, normalize=False)
    m = _candidate_count(k, x_rows, exclude_self, dtype)
    reporter = ProgressReporter(None, "")
    found = _candidates_streamed(sub, x_rows, m, q_ids if exclude_self else None, dtype, block_size, reporter)
    return _rerank_and_certify(sub, q_ids, x_rows, k, exclude_self, block_size, dtype, *found, kth_only=kth_only)


def knn(
    query: npt.ArrayLike,
    index: npt.ArrayLike,
    k: int,
    *,
    metric: str = "l2",
    exclude_self: bool = False,
    block_size: int | None = None,
    progress: Progress | bool | None = None,
    search_dtype: SearchDtype = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of every query row among the index rows.

    Distances: ``metric="l2"`` gives the Euclidean distance ``||q - x||_2`` (not squared);
    ``metric="cosine"`` gives ``1 - q.x / (||q|| ||x||)`` (all-zero rows are rejected).

    Args:
        query: ``N_q x D`` features, held in memory as float32 during the search.
        index: ``N_x x D`` features; may be a ``np.memmap``, it is streamed in row blocks and
            read once (plus the few candidate rows re-read for the float64 check).
        k: number of neighbours, ``1 <= k <= N_x`` (``N_x - 1`` with ``exclude_self``).
        metric: ``"l2"`` (default) or ``"cosine"``.
        exclude_self: query row ``i`` is index row ``i`` (same set, ``N_q == N_x``) and is not
            its own neighbour. When ``index is query`` each tile is computed once for both halves.
        block_size: rows per block for queries and index (default 4096; peak memory grows as
            ``16 block_size^2`` bytes, see the module docstring).
        progress: True for a bar over tiles, a callable receiving
            :class:`~workbench.progress.ProgressEvent` after every tile, or None (see
            :mod:`workbench.progress`).
        search_dtype: dtype of the candidate search, ``"float32"``, ``"bfloat16"`` or
            ``"auto"`` (see :func:`resolve_search_dtype`); the result is the same, only the speed
            differs (bf16 products are about 4x faster on CPUs with AVX512-BF16 or AMX).

    Returns:
        ``(distances, indices)``: ``N_q x k`` float64 distances sorted ascending and
        ``N_q x k`` int64 row numbers into ``index``. Distances are exact to float64 rounding;
        tied neighbours may come in any order (see the module docstring for the float32 search
        with float64 re-ranking and certification).

    Raises:
        ValueError: bad shapes, NaN/inf, mismatched dimensions, bad ``k``/``metric``/``block_size``.
    """
    return _knn(query, index, k, metric, exclude_self, block_size, progress, search_dtype)


def _knn(
    query: npt.ArrayLike,
    index: npt.ArrayLike,
    k: int,
    metric: str,
    exclude_self: bool,
    block_size: int | None,
    progress: Progress | bool | None,
    search_dtype: str,
    kth_only: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`knn`; with ``kth_only`` only the last column of distances is exact (the others may be
    ``-inf``), which spares the float64 re-computation of the nearer candidates."""
    _check_metric(metric)
    dtype = resolve_search_dtype(search_dtype)
    symmetric = exclude_self and index is query
    q = _features(query, "query")
    x = q if symmetric else _features(index, "index")
    check_same_dim(q, x, "query", "index")
    if exclude_self and q.shape[0] != x.shape[0]:
        raise ValueError(
            f"exclude_self=True needs query and index to be the same rows; got {q.shape[0]} query rows "
            f"and {x.shape[0]} index rows"
        )
    k = _check_k(k, x.shape[0] - (1 if exclude_self else 0), "index")
    bs = _check_block_size(block_size)
    normalize = metric == "cosine"
    scale = _scale(q) if symmetric else _scale(q, x)
    q_rows = _Rows(q, "query", normalize, scale)
    x_rows = q_rows if symmetric else _Rows(x, "index", normalize, scale)
    sq, idx = _knn_sq(q_rows, x_rows, k, exclude_self, symmetric, bs, progress, dtype, kth_only)
    if kth_only:
        sq[:, :-1] = 0.0  # not computed (-inf); keeps the conversion below finite
    dist = sq / 2.0 if normalize else _unscaled_distance(sq, scale)
    return dist, idx


def _unscaled_distance(sq: np.ndarray, scale: float) -> np.ndarray:
    """``sqrt(sq) / scale``: Euclidean distances in the units of the inputs (exact division).

    Raises:
        ValueError: a distance overflows float64 (features near the float64 limit).
    """
    dist = np.sqrt(sq)
    if scale != 1.0:
        with np.errstate(over="ignore"):
            dist = dist / scale
        if not np.isfinite(dist).all():
            raise ValueError(
                "distances between these features exceed the float64 range (features of magnitude "
                f"~{1 / scale:.3g}); rescale the features"
            )
    return dist


def kth_neighbor_radii(
    x: np.ndarray,
    k: int,
    *,
    metric: str = "l2",
    block_size: int | None = None,
    progress: Progress | bool | None = None,
    search_dtype: SearchDtype = "auto",
) -> np.ndarray:
    """Distance from every row to its ``k``-th nearest *other* row (the k-NN ball radius).

    This is the radius of Naeem et al. 2020 (``prdc``) and Kynkaenniemi et al. 2019, whose code
    takes the ``(k+1)``-th smallest distance with the point itself counted as its 0-th
    neighbour; the two agree (the self distance is 0), duplicates included.

    Args:
        x: ``N x D`` features, ``N > k``.
        k: neighbour rank, ``>= 1``.
        metric, block_size, progress, search_dtype: as for :func:`knn`.

    Returns:
        ``(N,)`` float64 radii (Euclidean distance for ``"l2"``).
    """
    dist, _ = _knn(x, x, k, metric, True, block_size, progress, search_dtype, kth_only=True)
    return dist[:, -1]


# --------------------------------------------------------------------------- radius counts


@dataclass(frozen=True)
class RadiusCounts:
    """Pair counts of :func:`count_within_radii` (None where the radii were not given).

    Attributes:
        query_in_index_balls: ``(N_q,)`` int64, ``#{j : d(q_i, x_j) < index_radii[j]}``.
        index_ball_hits: ``(N_x,)`` int64, ``#{i : d(q_i, x_j) < index_radii[j]}``.
        index_in_query_balls: ``(N_x,)`` int64, ``#{i : d(q_i, x_j) < query_radii[i]}``.
        query_ball_hits: ``(N_q,)`` int64, ``#{j : d(q_i, x_j) < query_radii[i]}``.
        inclusive: True when ``<=`` was used instead of ``<``.
    """

    query_in_index_balls: np.ndarray | None
    index_ball_hits: np.ndarray | None
    index_in_query_balls: np.ndarray | None
    query_ball_hits: np.ndarray | None
    inclusive: bool

    def counts(self, name: str) -> np.ndarray:
        """The count array ``name`` (one of the attributes above); an error if its radii were not given."""
        value = getattr(self, name)
        if value is None:
            which = "index_radii" if name in ("query_in_index_balls", "index_ball_hits") else "query_radii"
            raise ValueError(f"{name} was not counted: pass {which} to count_within_radii")
        return value


def _band_limits(radius: np.ndarray, band: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float32 ``(lo, hi)``: tile ``d^2`` below ``lo`` is surely inside the ball of ``radius``,
    above ``hi`` surely outside; in between it is decided in float64."""
    threshold_sq = radius**2
    return (threshold_sq - band).astype(np.float32), (threshold_sq + band).astype(np.float32)


_Found = tuple[np.ndarray, np.ndarray]  # (per-row counts, per-column counts) of a tile


def _tile_counts(
    tile: torch.Tensor,
    radius: np.ndarray,
    band: np.ndarray,
    per_row: bool,
    pairs: tuple[_Rows, int, np.ndarray],
    inclusive: bool,
    ws: _Workspace,
) -> _Found:
    """Per-row and per-column counts of the tile's pairs with ``d < radius`` (``<=`` if inclusive),
    in numpy (the fallback of :func:`_native_tile_counts`).

    ``radius`` and ``band`` belong to the tile's rows (``per_row``) or columns. Pairs with
    ``d^2 < radius^2 - band`` are surely inside; pairs within the band are decided by a float64
    recomputation comparing distances (not squares), so a pair at exactly the distance that
    defined a radius is a tie.
    """
    lo, hi = _band_limits(radius, band)
    t = tile.numpy()
    line_min = tile.amin(dim=1).numpy() if per_row else t.min(axis=0)
    n_rows, n_cols = t.shape
    lines = np.flatnonzero(line_min <= hi)  # rows (columns) with a pair within reach
    if lines.size * 8 <= line_min.size:
        # Few lines reach a ball (small balls, the usual case): compare those lines only.
        sub = t[lines] if per_row else t[:, lines]
        r, c = np.nonzero(sub <= (hi[lines, None] if per_row else hi[None, lines]))
        rows_t, cols_t = (lines[r], c) if per_row else (r, lines[c])
    else:
        reach_t = ws.get("band", n_rows, n_cols, torch.bool)
        reach = reach_t.numpy()
        np.less_equal(t, hi[:, None] if per_row else hi[None, :], out=reach)
        flat = np.flatnonzero(reach)
        if flat.size > t.size // 16:
            return _dense_tile_counts(tile, reach_t, lo, per_row, radius, pairs, inclusive, ws)
        rows_t, cols_t = np.divmod(flat, n_cols)
    # Classify the pairs within reach one by one.
    sure = t[rows_t, cols_t] < (lo[rows_t] if per_row else lo[cols_t])
    row_counts = np.bincount(rows_t[sure], minlength=n_rows).astype(np.int64)
    col_counts = np.bincount(cols_t[sure], minlength=n_cols).astype(np.int64)
    _add_band_pairs(rows_t[~sure], cols_t[~sure], radius, per_row, pairs, inclusive, row_counts, col_counts)
    return row_counts, col_counts


def _dense_tile_counts(
    tile: torch.Tensor,
    reach: torch.Tensor,
    lo: np.ndarray,
    per_row: bool,
    radius: np.ndarray,
    pairs: tuple[_Rows, int, np.ndarray],
    inclusive: bool,
    ws: _Workspace,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_tile_counts` when many pairs are within reach (large balls): the sure pairs are
    counted with two matrix-vector products instead of one by one."""
    n_rows, n_cols = tile.shape
    lo_t = torch.from_numpy(lo).reshape((-1, 1) if per_row else (1, -1))
    sure = torch.lt(tile, lo_t, out=ws.get("sure", n_rows, n_cols, torch.bool))
    sure_f = ws.get("sure_f", n_rows, n_cols, torch.float32).copy_(sure)  # sums exact below 2^24
    row_counts = torch.mv(sure_f, torch.ones(n_cols)).numpy().astype(np.int64)
    col_counts = torch.mv(sure_f.T, torch.ones(n_rows)).numpy().astype(np.int64)
    in_band = torch.logical_xor(reach, sure, out=reach)
    rows, cols = (t.numpy() for t in torch.nonzero(in_band, as_tuple=True))
    _add_band_pairs(rows, cols, radius, per_row, pairs, inclusive, row_counts, col_counts)
    return row_counts, col_counts


def _add_band_pairs(
    rows: np.ndarray,
    cols: np.ndarray,
    radius: np.ndarray,
    per_row: bool,
    pairs: tuple[_Rows, int, np.ndarray],
    inclusive: bool,
    row_counts: np.ndarray,
    col_counts: np.ndarray,
) -> None:
    """Decide the tile pairs ``(rows, cols)`` near a radius in float64 and add those inside."""
    if not rows.size:
        return
    q_rows, r0, x_block = pairs
    dist = np.sqrt(_exact_sq_indexed(q_rows, r0 + rows, x_block, cols))
    r = radius[rows] if per_row else radius[cols]
    inside = dist <= r if inclusive else dist < r
    row_counts += np.bincount(rows[inside], minlength=row_counts.size)
    col_counts += np.bincount(cols[inside], minlength=col_counts.size)


def _native_tile_counts(
    tile: torch.Tensor,
    by_col: tuple[np.ndarray, np.ndarray] | None,
    by_row: tuple[np.ndarray, np.ndarray] | None,
    pairs: tuple[_Rows, int, np.ndarray],
    inclusive: bool,
    row_add: np.ndarray,
) -> tuple[_Found | None, _Found | None]:
    """Both ball tests of a float32 tile in one native pass (:func:`tile_kernels.count_tile`);
    ``by_col`` / ``by_row`` are ``(radius, band)`` per tile column / row, or None; ``row_add``
    the query rows' squared norms, added to the tile's rows as they are read."""
    criteria = [
        None if spec is None else tile_kernels.Criterion(*_band_limits(*spec), by_row=per_row)
        for spec, per_row in ((by_col, False), (by_row, True))
    ]
    results = tile_kernels.count_tile(tile.numpy(), criteria, row_add)
    found: list[_Found | None] = []
    for spec, per_row, res in zip((by_col, by_row), (False, True), results, strict=True):
        if spec is None or res is None:
            found.append(None)
            continue
        row_counts, col_counts = res.row_counts, res.col_counts
        _add_band_pairs(res.band_rows, res.band_cols, spec[0], per_row, pairs, inclusive, row_counts, col_counts)
        found.append((row_counts, col_counts))
    return found[0], found[1]


def count_within_radii(
    query: np.ndarray,
    index: np.ndarray,
    *,
    index_radii: np.ndarray | None = None,
    query_radii: np.ndarray | None = None,
    inclusive: bool = False,
    block_size: int | None = None,
    progress: Progress | bool | None = None,
    search_dtype: SearchDtype = "auto",
) -> RadiusCounts:
    """Count, in one blocked pass, the pairs with Euclidean ``d(q_i, x_j)`` inside a ball.

    With ``index_radii`` ``r``: pair ``(i, j)`` counts when ``d(q_i, x_j) < r_j`` (``<=`` with
    ``inclusive``), summed per query row (how many index balls contain ``q_i``: PRDC density,
    precision) and per index row (how many queries fall in ``x_j``'s ball: PRDC coverage).
    With ``query_radii`` ``s``: ``d(q_i, x_j) < s_i``, summed per index row (recall) and per
    query row. Counts equal a float64 brute-force comparison (see the module docstring).

    Args:
        query: ``N_q x D`` features (held in memory as float32).
        index: ``N_x x D`` features (streamed in row blocks; may be a memmap).
        index_radii: ``(N_x,)`` radii of balls around index rows, or None.
        query_radii: ``(N_q,)`` radii of balls around query rows, or None.
        inclusive: use ``<=`` (Kynkaenniemi et al. 2019) instead of ``<`` (Naeem et al. 2020).
        block_size, progress, search_dtype: as for :func:`knn` (pairs within the search's error
            bound of a radius are decided in float64 whatever the dtype).

    Returns:
        :class:`RadiusCounts`.
    """
    q = _features(query, "query")
    x = _features(index, "index")
    check_same_dim(q, x, "query", "index")
    if index_radii is None and query_radii is None:
        raise ValueError("give index_radii and/or query_radii")
    r_x = None if index_radii is None else _check_radii(index_radii, x.shape[0], "index_radii")
    r_q = None if query_radii is None else _check_radii(query_radii, q.shape[0], "query_radii")
    bs = _check_block_size(block_size)
    scale = _scale(q, x)
    if scale != 1.0:  # exact: radii and distances are compared in the same scaled units
        r_x = None if r_x is None else _scaled_radii(r_x, scale, "index_radii")
        r_q = None if r_q is None else _scaled_radii(r_q, scale, "query_radii")
    q_rows, x_rows = _Rows(q, "query", False, scale), _Rows(x, "index", False, scale)
    dtype = resolve_search_dtype(search_dtype)
    rounding = 4 * 2.0**-24  # relative rounding of a float64 threshold stored as float32

    centre, qo = _query_side(q_rows, dtype, bs)
    ws = _Workspace()
    n_q, n_x = q_rows.n, x_rows.n
    q_in_x = np.zeros(n_q, dtype=np.int64) if r_x is not None else None
    x_hits = np.zeros(n_x, dtype=np.int64) if r_x is not None else None
    x_in_q = np.zeros(n_x, dtype=np.int64) if r_q is not None else None
    q_hits = np.zeros(n_q, dtype=np.int64) if r_q is not None else None

    tiles = len(_row_chunks(0, n_q, bs)) * -(-n_x // bs)
    reporter = ProgressReporter(progress, "radius counts", tiles, unit="tile")
    native = dtype != torch.float64 and tile_kernels.available()
    try:
        for c0, c1, x_block in _index_blocks(x_rows, bs):
            xo = _index_operand(x_block, centre, dtype, ws)
            x_max = float(xo.sq64.max())
            tau = _error_coefficient(q_rows.dim, dtype, max(qo.rho, xo.rho))
            for r0, r1 in _row_chunks(0, n_q, bs):
                # the counting pass adds the query norms (the native one as it reads the tile)
                tile = _sq_dist_tile(qo.x[r0:r1], qo.sq[r0:r1], xo.x, xo.sq, ws, add_rows=False)
                pairs = (q_rows, r0, x_block)
                # index balls: thresholds per tile column; query balls: per tile row
                by_col = None
                if r_x is not None:
                    rx = r_x[c0:c1]
                    by_col = (rx, tau * (float(qo.sq64[r0:r1].max()) + xo.sq64) + rounding * rx**2)
                by_row = None
                if r_q is not None:
                    rq = r_q[r0:r1]
                    by_row = (rq, tau * (qo.sq64[r0:r1] + x_max) + rounding * rq**2)
                if native:
                    found = _native_tile_counts(tile, by_col, by_row, pairs, inclusive, qo.sq[r0:r1].numpy())
                else:
                    tile.add_(qo.sq[r0:r1].unsqueeze(1))
                    found = (
                        None if by_col is None else _tile_counts(tile, *by_col, False, pairs, inclusive, ws),
                        None if by_row is None else _tile_counts(tile, *by_row, True, pairs, inclusive, ws),
                    )
                if found[0] is not None and q_in_x is not None and x_hits is not None:
                    q_in_x[r0:r1] += found[0][0]
                    x_hits[c0:c1] += found[0][1]
                if found[1] is not None and q_hits is not None and x_in_q is not None:
                    q_hits[r0:r1] += found[1][0]
                    x_in_q[c0:c1] += found[1][1]
                reporter.advance()
    finally:
        reporter.close()
    return RadiusCounts(q_in_x, x_hits, x_in_q, q_hits, bool(inclusive))


def manifold_counts(
    real: np.ndarray,
    fake: np.ndarray,
    k: int,
    *,
    inclusive: bool,
    block_size: int | None = None,
    progress: Progress | bool | None = None,
) -> tuple[np.ndarray, np.ndarray, RadiusCounts]:
    """The k-NN manifolds of a real and a fake feature set and the pairs between them.

    The three passes of PRDC (Naeem et al. 2020, ``inclusive=False``) and of improved precision
    and recall (Kynkaenniemi et al. 2019, ``inclusive=True``): the ``k``-th neighbour radius of
    every real and every fake row, then :func:`count_within_radii` with the fakes as queries,
    the real radii as index radii and the fake radii as query radii.

    Returns:
        ``(real_radii, fake_radii, counts)``: ``(N,)`` and ``(M,)`` float64 radii and the
        :class:`RadiusCounts` of the fake-real pairs.
    """
    real = as_features(real, "real")
    fake = as_features(fake, "fake")
    token = _SHARED.set(_SharedPasses((real, fake), keep=fake))
    try:
        real_radii = kth_neighbor_radii(real, k, block_size=block_size, progress=progress)
        fake_radii = kth_neighbor_radii(fake, k, block_size=block_size, progress=progress)
        counts = count_within_radii(
            fake,
            real,
            index_radii=real_radii,
            query_radii=fake_radii,
            inclusive=inclusive,
            block_size=block_size,
            progress=progress,
        )
    finally:
        _SHARED.reset(token)
    return real_radii, fake_radii, counts


# --------------------------------------------------------------------------- ratio to radii


def max_radius_ratio(
    query: np.ndarray,
    index: np.ndarray,
    radii: np.ndarray,
    *,
    eps: float = 1e-5,
    block_size: int | None = None,
    progress: Progress | bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``max_j r_j / sqrt(||q_i - x_j||^2 + eps)`` per query row, and the arg-max ``j``.

    This is the realism score of Kynkaenniemi et al. 2019 (Eq. 3) with ``r_j`` the index rows'
    k-NN radii; ``eps`` (added to the *squared* distance, as in the reference code) keeps the
    ratio finite for a query that coincides with an index row.

    Args:
        query: ``N_q x D`` features. index: ``N_x x D`` features (streamed; may be a memmap).
        radii: ``(N_x,)`` non-negative radii. eps: ``> 0``. block_size, progress: as for :func:`knn`.

    Returns:
        ``(ratios, argmax)``: ``(N_q,)`` float64 and ``(N_q,)`` int64 row numbers into ``index``.
        The arg-max is chosen in float32 and its ratio recomputed in float64.
    """
    q = as_features(query, "query")
    x = as_features(index, "index")
    check_same_dim(q, x, "query", "index")
    r = _check_radii(radii, x.shape[0], "radii")
    if not (isinstance(eps, (int, float)) and eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a positive finite number; got {eps!r}")
    bs = _check_block_size(block_size)
    scale = power_of_two_scale(q, x)
    if scale != 1.0:  # r / sqrt(d^2 + eps) is unchanged when r, d scale by s and eps by s^2
        r = _scaled_radii(r, scale, "radii")
        eps = eps * scale * scale
    q_rows, x_rows = _Rows(q, "query", False, scale), _Rows(x, "index", False, scale)
    dtype = torch.float32
    centre, qo = _query_side(q_rows, dtype, bs)
    ws = _Workspace()
    best = torch.full((q_rows.n,), -math.inf, dtype=dtype)
    arg = torch.zeros(q_rows.n, dtype=torch.int64)
    tiles = len(_row_chunks(0, q_rows.n, bs)) * -(-x_rows.n // bs)
    reporter = ProgressReporter(progress, "realism", tiles, unit="tile")
    try:
        for c0, c1, x_block in _index_blocks(x_rows, bs):
            xo = _index_operand(x_block, centre, dtype, ws)
            r2 = torch.from_numpy((r[c0:c1] ** 2).astype(np.float32)).unsqueeze(0)
            for r0, r1 in _row_chunks(0, q_rows.n, bs):
                tile = _sq_dist_tile(qo.x[r0:r1], qo.sq[r0:r1], xo.x, xo.sq, ws)
                ratio = tile.clamp_(min=0.0).add_(eps).reciprocal_().mul_(r2)
                val, j = ratio.max(dim=1)
                better = val > best[r0:r1]
                best[r0:r1] = torch.where(better, val, best[r0:r1])
                arg[r0:r1] = torch.where(better, j + c0, arg[r0:r1])
                reporter.advance()
    finally:
        reporter.close()
    arg_np = arg.numpy()
    sq = _exact_sq_indexed(q_rows, np.arange(q_rows.n), x_rows, arg_np)
    return r[arg_np] / np.sqrt(sq + eps), arg_np
