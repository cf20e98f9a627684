"""Nearest neighbours between embedding sets at scale: exact (blocked torch) or approximate (faiss).

:func:`nearest_neighbors` finds, for every query row, its ``k`` nearest rows of an index set,
with one of three backends:

``backend="exact"`` (default)
    :func:`workbench.metrics.neighbors.knn`: float32 matrix products on ``block_size x
    block_size`` tiles (multi-threaded BLAS), the index streamed in row blocks (a memmap is read
    once), float64 re-ranking and certification. Never an ``N_q x N_x`` matrix in memory; cost
    ``2 N_q N_x D`` flops.

``backend="faiss-ivf"`` (IVF-Flat, Jegou et al. 2011; Johnson, Douze & Jegou 2019 for faiss)
    The index space is split into ``nlist`` Voronoi cells by k-means (``faiss.Kmeans``, ``niter``
    iterations on a seeded random sample of ``train_size`` index rows); every index row is put
    in the cell of its nearest centroid (faiss flat quantizer, in blocks of ``block_rows``
    rows). A query is compared, exactly, with every row of the ``nprobe`` cells whose centroids
    are nearest to it; the neighbours it can miss are those in other cells. Two scan engines
    give the same candidates (ties apart):

    * ``ivf_scan="blas"`` (default): the cells hold only row numbers into the (possibly
      memory-mapped) index; the scan goes cell by cell, comparing all queries that probe a cell
      with that cell's rows in float32 matrix products (at most 16,384 rows of a cell at a
      time). Memory: the queries (``N_q x D x 4`` bytes, twice), ``N_x`` cell numbers and one
      tile -- the index is never copied. ``benchmarks/knn_scale.py`` measured 50,000 queries
      against 1,000,000 x 1024 in 193 s on 2 shared CPU cores (recall@1 1.0, about 1.2 GB of
      memory beyond the memmapped index).
    * ``ivf_scan="faiss"``: faiss's own ``IndexIVFFlat`` (rows added in blocks, per-query list
      scanning). It holds a float32 copy of the index in RAM (``N_x x D x 4`` bytes) and was
      1.6 times slower in our measurement (100,000 x 1024, 5,000 queries); a reference.

    ``params["imbalance"]`` is faiss's imbalance factor ``nlist sum_c n_c^2 / N_x^2`` (1 =
    equal cells); the scan costs about ``imbalance x nprobe / nlist`` of an exact search.
    Recall depends on the data: on embeddings of low intrinsic dimension (real ones) the
    defaults give recall@1 near 1; on data whose neighbours are decided by isotropic
    high-dimensional noise no partition works well (we measured recall@1 0.83 at
    ``nprobe=16, nlist=1000`` on 1M such 1024-d rows, with an imbalance of 8.7). Check with
    :func:`neighbor_recall` on a sample of queries and raise ``nprobe`` if needed.

``backend="faiss-hnsw"`` (Malkov & Yashunin 2018)
    ``faiss.IndexHNSWFlat`` with ``M`` links per node, ``ef_construction`` at build time and
    ``ef_search`` at query time (raised to the number of candidates when lower). Holds a float32
    copy of the index plus the graph; building is slow for millions of rows of high dimension
    (use IVF there).

For every backend the returned distances are exact (recomputed in float64 from the input rows
for the returned neighbours, then re-sorted): an approximate backend can return the wrong
neighbour, never a wrong distance. The approximate backends fetch ``k + 4`` candidates to
re-rank. ``metric="cosine"`` is ``1 - cos(q, x)``; the faiss backends search unit-normalised
rows with the Euclidean distance, which orders neighbours identically
(``||q/|q| - x/|x|||^2 = 2 (1 - cos)``). Use :func:`neighbor_recall` to measure an approximate
result against an exact one on a sample of queries.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from workbench.analysis.result import AnalysisResult
from workbench.cache.reader import EmbeddingCache, open_cache
from workbench.metrics.neighbors import knn
from workbench.metrics.validation import as_features, check_same_dim, check_seed
from workbench.progress import Progress, ProgressReporter
from workbench.threads import limit_threads

BACKENDS = ("exact", "faiss-ivf", "faiss-hnsw")
ENGINES = ("local", "ray")
METRICS = ("cosine", "l2")
IVF_SCANS = ("blas", "faiss")
DEFAULT_BLOCK_ROWS = 65536
_APPROX_MARGIN = 4
_QUERY_CHUNK = 4096
_CELL_ROWS = 16384  # index rows of one cell compared per tile (tile: 4096 x 16384 float32 = 256 MiB)
_RERANK_CHUNK = 1 << 21  # float64 values per exact re-ranking chunk (16 MiB)


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class FeatureSource:
    """Features of one input set with where they came from.

    Attributes:
        features: ``N x D`` array-like (a memmap for caches; not loaded).
        ids: ``(N,)`` sample ids (the cache's ``meta["id"]``, or row numbers for arrays).
        cache: the :class:`~workbench.cache.EmbeddingCache` or None for arrays.
    """

    features: Any
    ids: np.ndarray
    cache: EmbeddingCache | None

    @property
    def has_thumbnails(self) -> bool:
        return self.cache is not None and self.cache.thumbnails is not None


def feature_source(x: Any, name: str) -> FeatureSource:
    """Resolve an :class:`~workbench.cache.EmbeddingCache`, a cache path or an ``N x D`` array.

    Example:
        >>> import numpy as np
        >>> src = feature_source(np.zeros((3, 2)), "train")
        >>> src.ids.tolist(), src.cache is None
        ([0, 1, 2], True)
    """
    if isinstance(x, (str, os.PathLike)):
        x = open_cache(x)
    if isinstance(x, EmbeddingCache):
        return FeatureSource(x.features, x.meta["id"].to_numpy(), x)
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    if not hasattr(x, "shape"):
        x = np.asarray(x)
    if len(x.shape) != 2:
        raise ValueError(
            f"{name} must be an EmbeddingCache, a cache path or features of shape (N, D); got shape {tuple(x.shape)}"
        )
    return FeatureSource(x, np.arange(x.shape[0]), None)


def check_compatible_sources(sources: dict[str, FeatureSource]) -> None:
    """Refuse to compare caches made by different extractors (arrays are not checked).

    Raises :class:`~workbench.metrics.from_caches.IncompatibleCachesError` naming the difference.

    Example:
        >>> import numpy as np
        >>> check_compatible_sources({"a": feature_source(np.zeros((2, 3)), "a")})  # arrays: nothing to check
    """
    caches = {name: s.cache for name, s in sources.items() if s.cache is not None}
    if len(caches) > 1:
        from workbench.metrics.from_caches import check_compatible

        check_compatible(caches)


def _check_choice(value: str, choices: tuple[str, ...], name: str) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")
    return value


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _import_faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:
        raise ImportError(
            "the faiss backends need the faiss package: `pip install faiss-cpu` (or faiss-gpu), or use backend='exact'"
        ) from exc
    return faiss


# --------------------------------------------------------------------------- row preparation


def _rows32(x: Any, normalize: bool, name: str) -> np.ndarray:
    """Rows as contiguous float32, unit-normalised for cosine."""
    out = np.ascontiguousarray(np.asarray(x), dtype=np.float32)
    if normalize:
        norms = np.linalg.norm(out, axis=1)
        if np.any(norms == 0):
            raise ValueError(f"{name} has an all-zero row; cosine distance is undefined for it. Drop such rows first.")
        out = out / norms[:, None]
    return out


def _rows64(x: Any, normalize: bool) -> np.ndarray:
    out = np.asarray(x, dtype=np.float64)
    if normalize:
        out = out / np.linalg.norm(out, axis=1, keepdims=True)
    return out


def _exact_rerank(query: Any, index: Any, cand: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Float64 distances of candidate rows (``-1`` = none), sorted; the best ``k`` per query."""
    n, m = cand.shape
    normalize = metric == "cosine"
    sq = np.full((n, m), np.inf)
    step = max(1, _RERANK_CHUNK // max(1, m * query.shape[1]))
    for r0 in range(0, n, step):
        r1 = min(r0 + step, n)
        c = cand[r0:r1]
        valid = c >= 0
        rows = np.unique(c[valid])
        if rows.size == 0:
            continue
        x = _rows64(index[rows], normalize)
        pos = np.searchsorted(rows, np.where(valid, c, rows[0]))
        q = _rows64(query[r0:r1], normalize)
        diff = q[:, None, :] - x[pos]
        d = np.einsum("ijk,ijk->ij", diff, diff)
        sq[r0:r1] = np.where(valid, d, np.inf)
    order = np.argsort(sq, axis=1, kind="stable")[:, :k]
    best_sq = np.take_along_axis(sq, order, axis=1)
    best_idx = np.take_along_axis(cand, order, axis=1)
    best_idx[~np.isfinite(best_sq)] = -1
    dist = best_sq / 2.0 if normalize else np.sqrt(best_sq)
    return dist, best_idx


def _drop_self(cand: np.ndarray, vals: np.ndarray, self_rows: np.ndarray) -> None:
    """Mark each query's own row among its candidates as missing (in place)."""
    hit = cand == self_rows[:, None]
    cand[hit] = -1
    vals[hit] = np.inf


# --------------------------------------------------------------------------- searchers


class _Searcher:
    """An index set prepared once and searched by one or more query sets."""

    backend: str
    params: dict[str, Any]

    def __init__(self, index: Any, metric: str) -> None:
        self.index = index
        self.metric = metric
        self.n, self.dim = index.shape

    def search(
        self, query: Any, k: int, *, self_rows: np.ndarray | None = None, progress: Progress | bool | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the searcher holds beyond memory (the Ray engine's rows in the object store); nothing here."""


class _ExactSearcher(_Searcher):
    backend = "exact"

    def __init__(self, index: Any, metric: str, block_size: int | None) -> None:
        super().__init__(index, metric)
        self.block_size = block_size
        self.params = {"block_size": block_size}

    def search(self, query, k, *, self_rows=None, progress=None):
        if self_rows is not None:
            if query is not self.index or not np.array_equal(self_rows, np.arange(self.n)):
                raise ValueError("exclude_self=True needs the query to be the index set itself")
            return knn(
                query,
                self.index,
                k,
                metric=self.metric,
                exclude_self=True,
                block_size=self.block_size,
                progress=progress,
            )
        return knn(query, self.index, k, metric=self.metric, block_size=self.block_size, progress=progress)


class _ApproxSearcher(_Searcher):
    """Common part of the faiss backends: candidates from faiss, exact float64 re-ranking."""

    def __init__(self, index: Any, metric: str, block_rows: int) -> None:
        super().__init__(index, metric)
        self.block_rows = block_rows
        self.normalize = metric == "cosine"

    def _blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, self.n, self.block_rows):
            yield start, _rows32(self.index[start : start + self.block_rows], self.normalize, "index")

    def _candidates(self, q: np.ndarray, m: int, progress) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def search(self, query, k, *, self_rows=None, progress=None):
        extra = 1 if self_rows is not None else 0
        m = min(k + _APPROX_MARGIN + extra, self.n)
        q = _rows32(query, self.normalize, "query")
        vals, cand = self._candidates(q, m, progress)
        if self_rows is not None:
            _drop_self(cand, vals, self_rows)
        dist, idx = _exact_rerank(query, self.index, cand, k, self.metric)
        missing = int((idx < 0).sum())
        if missing:
            warnings.warn(
                f"{self.backend}: {missing} of {idx.size} neighbours not found (index -1, distance inf); "
                "raise nprobe (IVF) or ef_search (HNSW)",
                RuntimeWarning,
                stacklevel=3,
            )
        return dist, idx


class _IVFSearcher(_ApproxSearcher):
    backend = "faiss-ivf"

    def __init__(
        self,
        index: Any,
        metric: str,
        *,
        nlist: int | None,
        nprobe: int | None,
        train_size: int | None,
        niter: int,
        ivf_scan: str,
        block_rows: int,
        seed: int | np.random.Generator | None,
        progress: Progress | bool | None,
    ) -> None:
        super().__init__(index, metric, block_rows)
        faiss = _import_faiss()
        self.faiss = faiss
        n = self.n
        nlist = max(1, min(n, int(round(math.sqrt(n))))) if nlist is None else _check_positive_int(nlist, "nlist")
        if nlist > n:
            raise ValueError(f"nlist={nlist} cells but the index has only {n} rows; lower nlist")
        train_size = min(n, 50 * nlist) if train_size is None else _check_positive_int(train_size, "train_size")
        if not nlist <= train_size <= n:
            raise ValueError(f"train_size must be between nlist={nlist} and the index size {n}; got {train_size}")
        nprobe = min(nlist, max(8, math.ceil(nlist / 64))) if nprobe is None else _check_positive_int(nprobe, "nprobe")
        self.nlist, self.nprobe = nlist, min(nprobe, nlist)
        self.ivf_scan = ivf_scan
        rng = check_seed(seed)

        sample_rows = np.sort(rng.choice(n, size=train_size, replace=False))
        sample = _rows32(self.index[sample_rows], self.normalize, "index")
        kmeans = faiss.Kmeans(
            self.dim,
            nlist,
            niter=int(niter),
            seed=int(rng.integers(2**31 - 1)),
            verbose=False,
            min_points_per_centroid=1,
            max_points_per_centroid=max(1, train_size),
        )
        kmeans.train(sample)
        self.centroids = kmeans.centroids
        self.quantizer = faiss.IndexFlatL2(self.dim)
        self.quantizer.add(self.centroids)
        del sample

        steps = ProgressReporter(progress, f"IVF build ({ivf_scan})", -(-n // block_rows), leave=False)
        try:
            if ivf_scan == "faiss":
                self.ivf = faiss.IndexIVFFlat(self.quantizer, self.dim, nlist, faiss.METRIC_L2)
                self.ivf.is_trained = True
                for _, block in self._blocks():
                    self.ivf.add(block)
                    steps.advance()
                self.ivf.nprobe = self.nprobe
                sizes = np.array([self.ivf.invlists.list_size(c) for c in range(nlist)], dtype=np.float64)
            else:
                cell = np.empty(n, dtype=np.int64)
                for start, block in self._blocks():
                    _, assigned = self.quantizer.search(block, 1)
                    cell[start : start + block.shape[0]] = assigned[:, 0]
                    steps.advance()
                self.order = np.argsort(cell, kind="stable")
                sizes = np.bincount(cell, minlength=nlist).astype(np.float64)
                self.offsets = np.concatenate([[0], np.cumsum(sizes.astype(np.int64))])
        finally:
            steps.close()
        self.params = {
            "nlist": nlist,
            "nprobe": self.nprobe,
            "train_size": train_size,
            "niter": int(niter),
            "ivf_scan": ivf_scan,
            "block_rows": block_rows,
            "imbalance": round(float(nlist * np.sum(sizes**2) / n**2), 3),
        }

    def _candidates(self, q, m, progress):
        if self.ivf_scan == "faiss":
            return self._faiss_scan(q, m, progress)
        return self._blas_scan(q, m, progress)

    def _faiss_scan(self, q, m, progress):
        vals = np.empty((q.shape[0], m), dtype=np.float32)
        cand = np.empty((q.shape[0], m), dtype=np.int64)
        steps = ProgressReporter(progress, "IVF search (faiss)", -(-q.shape[0] // _QUERY_CHUNK), leave=False)
        try:
            for s in range(0, q.shape[0], _QUERY_CHUNK):
                vals[s : s + _QUERY_CHUNK], cand[s : s + _QUERY_CHUNK] = self.ivf.search(q[s : s + _QUERY_CHUNK], m)
                steps.advance()
        finally:
            steps.close()
        return vals, cand

    def _blas_scan(self, q, m, progress):
        n_q, nprobe = q.shape[0], self.nprobe
        _, probes = self.quantizer.search(q, nprobe)
        # Centring on the query mean shrinks the float32 cancellation error of |q|^2 + |x|^2 - 2 q.x.
        centre = q.mean(axis=0, dtype=np.float64).astype(np.float32)
        qc = torch.from_numpy(q - centre)
        q_sq = (qc * qc).sum(dim=1)
        vals = torch.full((n_q, nprobe, m), math.inf)
        cand = torch.full((n_q, nprobe, m), -1, dtype=torch.int64)
        pair_cell = probes.ravel()
        pair_order = np.argsort(pair_cell, kind="stable")
        pair_query = torch.from_numpy(pair_order // nprobe)
        pair_slot = torch.from_numpy(pair_order % nprobe)
        bounds = np.searchsorted(pair_cell[pair_order], np.arange(self.nlist + 1))
        cells = [c for c in range(self.nlist) if bounds[c + 1] > bounds[c] and self.offsets[c + 1] > self.offsets[c]]
        steps = ProgressReporter(progress, "IVF search (blas)", len(cells), leave=False)
        try:
            for c in cells:
                cell_rows = self.order[self.offsets[c] : self.offsets[c + 1]]
                # A large cell is read in row chunks so a tile never exceeds _QUERY_CHUNK x _CELL_ROWS.
                for r0 in range(0, cell_rows.size, _CELL_ROWS):
                    rows = cell_rows[r0 : r0 + _CELL_ROWS]
                    x = torch.from_numpy(_rows32(self.index[rows], self.normalize, "index") - centre)
                    x_sq = torch.einsum("ij,ij->i", x, x)
                    rows_t = torch.from_numpy(rows)
                    mm = min(m, rows.size)
                    for p0 in range(bounds[c], bounds[c + 1], _QUERY_CHUNK):
                        p1 = min(p0 + _QUERY_CHUNK, bounds[c + 1])
                        qi, si = pair_query[p0:p1], pair_slot[p0:p1]
                        tile = torch.addmm(x_sq.unsqueeze(0), qc[qi], x.T, beta=1.0, alpha=-2.0)
                        tile.add_(q_sq[qi].unsqueeze(1))
                        v, j = torch.topk(tile, mm, dim=1, largest=False, sorted=False)
                        i = rows_t[j]
                        if r0 > 0:  # merge with the cell's earlier chunks (which filled all m slots)
                            v, sel = torch.topk(
                                torch.cat([vals[qi, si], v], dim=1), m, dim=1, largest=False, sorted=False
                            )
                            i = torch.gather(torch.cat([cand[qi, si], i], dim=1), 1, sel)
                        vals[qi, si, : v.shape[1]] = v
                        cand[qi, si, : v.shape[1]] = i
                steps.advance()
        finally:
            steps.close()
        flat_v = vals.reshape(n_q, -1)
        mm = min(m, flat_v.shape[1])
        best_v, sel = torch.topk(flat_v, mm, dim=1, largest=False, sorted=False)
        best_i = torch.gather(cand.reshape(n_q, -1), 1, sel)
        return best_v.numpy(), best_i.numpy()


class _HNSWSearcher(_ApproxSearcher):
    backend = "faiss-hnsw"

    def __init__(
        self,
        index: Any,
        metric: str,
        *,
        M: int,
        ef_construction: int,
        ef_search: int,
        block_rows: int,
        progress: Progress | bool | None,
    ) -> None:
        super().__init__(index, metric, block_rows)
        faiss = _import_faiss()
        M = _check_positive_int(M, "M")
        self.ef_search = _check_positive_int(ef_search, "ef_search")
        self.hnsw = faiss.IndexHNSWFlat(self.dim, M)
        self.hnsw.hnsw.efConstruction = _check_positive_int(ef_construction, "ef_construction")
        steps = ProgressReporter(progress, "HNSW build", -(-self.n // block_rows), leave=False)
        try:
            for _, block in self._blocks():
                self.hnsw.add(block)
                steps.advance()
        finally:
            steps.close()
        self.params = {
            "M": M,
            "ef_construction": ef_construction,
            "ef_search": self.ef_search,
            "block_rows": block_rows,
        }

    def _candidates(self, q, m, progress):
        self.hnsw.hnsw.efSearch = max(self.ef_search, m)
        vals = np.empty((q.shape[0], m), dtype=np.float32)
        cand = np.empty((q.shape[0], m), dtype=np.int64)
        steps = ProgressReporter(progress, "HNSW search", -(-q.shape[0] // _QUERY_CHUNK), leave=False)
        try:
            for s in range(0, q.shape[0], _QUERY_CHUNK):
                vals[s : s + _QUERY_CHUNK], cand[s : s + _QUERY_CHUNK] = self.hnsw.search(q[s : s + _QUERY_CHUNK], m)
                steps.advance()
        finally:
            steps.close()
        return vals, cand


def build_searcher(
    index: Any,
    *,
    metric: str = "cosine",
    backend: str = "exact",
    block_size: int | None = None,
    nlist: int | None = None,
    nprobe: int | None = None,
    train_size: int | None = None,
    niter: int = 10,
    ivf_scan: str = "blas",
    M: int = 32,
    ef_construction: int = 80,
    ef_search: int = 128,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    seed: int | np.random.Generator | None = 0,
    progress: Progress | bool | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    workers: int | None = None,
    origin: Any = None,
) -> Any:
    """Prepare ``index`` (validated ``N x D`` features) once for several searches.

    Arguments as for :func:`nearest_neighbors` (``origin``: the un-validated features ``index``
    came from, e.g. a cache's :class:`~workbench.cache.ShardedArray`, which the Ray engine's
    workers read their rows from). The returned object has
    ``search(query, k, self_rows=None, progress=None) -> (distances, indices)`` (validated
    ``N_q x D`` queries; ``self_rows[i]`` = the index row query ``i`` must not return) and
    ``params`` and ``close()`` (releases what the Ray engine put in its object store); it is how
    :func:`~workbench.analysis.memorization.memorization_report` reuses one faiss index (or one
    Ray searcher) for the generated, test and training queries.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(400, 8)).astype(np.float32)
        >>> s = build_searcher(x, metric="l2", backend="faiss-ivf", nlist=10, nprobe=10)
        >>> d, i = s.search(x[:2], 1)
        >>> i[:, 0].tolist(), d[:, 0].tolist()
        ([0, 1], [0.0, 0.0])
    """
    _check_choice(metric, METRICS, "metric")
    _check_choice(backend, BACKENDS, "backend")
    _check_choice(ivf_scan, IVF_SCANS, "ivf_scan")
    block_rows = _check_positive_int(block_rows, "block_rows")
    _check_choice(engine, ENGINES, "engine")
    if engine != "ray" and (ray_address is not None or workers is not None):
        raise ValueError("ray_address and workers are only used with engine='ray'")
    if engine == "ray":
        if backend != "exact":
            raise ValueError(f"engine='ray' runs the exact search only; got backend={backend!r}")
        from workbench.analysis.ray_search import RaySearcher

        return RaySearcher(index, metric, block_size, origin=origin, ray_address=ray_address, workers=workers)
    if backend == "exact":
        return _ExactSearcher(index, metric, block_size)
    if backend == "faiss-ivf":
        _check_positive_int(niter, "niter")
        return _IVFSearcher(
            index,
            metric,
            nlist=nlist,
            nprobe=nprobe,
            train_size=train_size,
            niter=niter,
            ivf_scan=ivf_scan,
            block_rows=block_rows,
            seed=seed,
            progress=progress,
        )
    return _HNSWSearcher(
        index,
        metric,
        M=M,
        ef_construction=ef_construction,
        ef_search=ef_search,
        block_rows=block_rows,
        progress=progress,
    )


# --------------------------------------------------------------------------- result


class NeighborsResult(AnalysisResult):
    """k nearest index rows of every query row.

    Attributes:
        distances: ``N_q x k`` float64, ascending per row (exact for the returned rows;
            ``inf`` where an approximate backend found fewer than ``k``).
        indices: ``N_q x k`` int64 row numbers into the index set (``-1`` = not found).
        query_ids, index_ids: sample ids (cache ids, or row numbers for arrays).
        metric, backend: as passed. params: the backend's effective parameters.

    The main table ``"neighbors"`` has one row per (query, rank): ``query``, ``query_id``,
    ``rank`` (1 = nearest), ``index``, ``index_id``, ``distance``.
    """

    def __init__(
        self,
        distances: np.ndarray,
        indices: np.ndarray,
        *,
        query_ids: np.ndarray,
        index_ids: np.ndarray,
        metric: str,
        backend: str,
        params: dict[str, Any],
    ) -> None:
        self.distances, self.indices = distances, indices
        self.query_ids, self.index_ids = query_ids, index_ids
        self.metric, self.backend, self.params = metric, backend, params
        n_q, k = indices.shape
        flat = indices.ravel()
        found = flat >= 0
        index_id = pd.Series(index_ids[np.where(found, flat, 0)])
        if not found.all():
            index_id = index_id.astype(object).where(found, None)
        frame = pd.DataFrame(
            {
                "query": np.repeat(np.arange(n_q), k),
                "query_id": np.repeat(query_ids, k),
                "rank": np.tile(np.arange(1, k + 1), n_q),
                "index": flat,
                "index_id": index_id,
                "distance": distances.ravel(),
            }
        )
        opts = ", ".join(f"{key}={val}" for key, val in params.items() if val is not None)
        super().__init__(
            {"neighbors": frame},
            title=f"{k} nearest neighbours ({metric}, {backend})",
            summary=f"{n_q} queries, k={k}, metric={metric}, backend={backend}" + (f" ({opts})" if opts else ""),
        )

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])


def nearest_neighbors(
    query: Any,
    index: Any,
    k: int = 1,
    *,
    metric: Literal["cosine", "l2"] = "l2",
    backend: Literal["exact", "faiss-ivf", "faiss-hnsw"] = "exact",
    exclude_self: bool = False,
    block_size: int | None = None,
    nlist: int | None = None,
    nprobe: int | None = None,
    train_size: int | None = None,
    niter: int = 10,
    ivf_scan: Literal["blas", "faiss"] = "blas",
    M: int = 32,
    ef_construction: int = 80,
    ef_search: int = 128,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    threads: int | None = None,
    seed: int | np.random.Generator | None = 0,
    progress: Progress | bool | None = True,
    engine: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
    workers: int | None = None,
) -> NeighborsResult:
    """The ``k`` nearest index rows of every query row (see the module docstring for the backends).

    Distances: ``metric="cosine"`` (default) ``1 - q.x / (|q| |x|)`` in ``[0, 2]``;
    ``metric="l2"`` the Euclidean distance ``|q - x|`` (not squared).

    Args:
        query: ``N_q x D`` features: an :class:`~workbench.cache.EmbeddingCache`, a cache
            path, or an array (held in memory as float32 during the search).
        index: ``N_x x D`` features, same kinds; a memmap (caches' features) is read in row
            blocks and never copied whole (except by ``ivf_scan="faiss"`` and HNSW, which hold
            a float32 copy).
        k: neighbours per query, ``1 <= k <= N_x`` (``N_x - 1`` with ``exclude_self``).
        metric: ``"l2"`` (default, as :func:`~workbench.metrics.neighbors.knn` and
            :func:`~workbench.analysis.memorization.memorization_report`) or ``"cosine"``.
        backend: ``"exact"``, ``"faiss-ivf"`` or ``"faiss-hnsw"`` (the last two need faiss).
        exclude_self: query and index are the same set; a row is not its own neighbour.
        block_size: exact backend: rows per tile side (default 4096; extra memory about
            ``N_q D 4 + 16 block_size^2`` bytes).
        nlist: IVF cells (default ``round(sqrt(N_x))``).
        nprobe: IVF cells searched per query (default ``min(nlist, max(8, ceil(nlist / 64)))``).
            Recall grows and speed falls with ``nprobe / nlist``.
        train_size: index rows sampled (seeded) to train the k-means (default ``min(N_x, 50 nlist)``).
        niter: k-means iterations (default 10; faiss's default is 25, the cells barely change).
        ivf_scan: ``"blas"`` (default; cell-major matrix products on the un-copied index) or
            ``"faiss"`` (faiss ``IndexIVFFlat``; a float32 copy of the index).
        M, ef_construction, ef_search: HNSW links per node (32), build beam (80), search beam
            (128, raised to ``k + 4`` when lower).
        block_rows: approximate backends: index rows read per block while building (65,536).
        threads: torch / faiss threads for this call (default: as configured, i.e. all cores).
        seed: seeds the IVF training sample and k-means.
        progress: True for progress bars, a callable receiving ProgressEvent objects, or False/None
            (see :mod:`workbench.progress`).
        engine: ``"local"`` (this process) or ``"ray"`` (exact backend only; needs the
            ``distributed`` extra): the index rows are split into ``workers`` parts, each searched
            exactly by a Ray task that reads its rows from the cache's memory-mapped (or
            sharded) files, and the parts' top ``k`` are merged; the result equals the local
            exact search (see :mod:`workbench.analysis.ray_search`).
        ray_address: with ``engine="ray"``: None starts a local Ray instance, ``"auto"`` or
            ``"HOST:PORT"`` uses a running cluster (:mod:`workbench.ray_cluster`).
        workers: with ``engine="ray"``: number of parts (default: the cluster's CPUs).

    Returns:
        :class:`NeighborsResult` with ``distances`` and ``indices`` (``N_q x k``) and
        ``.to_frame()`` (one row per query and rank).

    Raises:
        ValueError: bad shapes, NaN/inf, dimension mismatch, bad ``k``/``metric``/``backend``/parameters.
        ImportError: a faiss backend without faiss installed.

    Example:
        >>> import numpy as np
        >>> train = np.random.default_rng(0).normal(size=(500, 16))
        >>> res = nearest_neighbors(train[:3] + 1e-3, train, k=2, metric="l2", progress=False)
        >>> res.indices[:, 0].tolist()
        [0, 1, 2]
        >>> res.to_frame().columns.tolist()
        ['query', 'query_id', 'rank', 'index', 'index_id', 'distance']
    """
    _check_choice(metric, METRICS, "metric")
    _check_choice(backend, BACKENDS, "backend")
    q_src = feature_source(query, "query")
    x_src = q_src if index is query else feature_source(index, "index")
    check_compatible_sources({"query": q_src, "index": x_src})
    q = as_features(q_src.features, "query")
    x = q if x_src is q_src else as_features(x_src.features, "index")
    check_same_dim(q, x, "query", "index")
    if exclude_self:
        if x_src is not q_src and q.shape[0] != x.shape[0]:
            raise ValueError(
                f"exclude_self=True needs query and index to be the same rows; got {q.shape[0]} query rows "
                f"and {x.shape[0]} index rows"
            )
        x = q
    available = x.shape[0] - (1 if exclude_self else 0)
    k = _check_positive_int(k, "k")
    if k > available:
        raise ValueError(f"k={k} but the index has only {available} candidate neighbours; lower k or add samples")
    with limit_threads(threads):
        searcher = build_searcher(
            x,
            metric=metric,
            backend=backend,
            block_size=block_size,
            nlist=nlist,
            nprobe=nprobe,
            train_size=train_size,
            niter=niter,
            ivf_scan=ivf_scan,
            M=M,
            ef_construction=ef_construction,
            ef_search=ef_search,
            block_rows=block_rows,
            seed=seed,
            progress=progress,
            engine=engine,
            ray_address=ray_address,
            workers=workers,
            origin=x_src.features,
        )
        self_rows = np.arange(q.shape[0]) if exclude_self else None
        try:
            dist, idx = searcher.search(q, k, self_rows=self_rows, progress=progress)
        finally:
            searcher.close()
    return NeighborsResult(
        dist,
        idx,
        query_ids=q_src.ids,
        index_ids=x_src.ids,
        metric=metric,
        backend=backend,
        params=dict(searcher.params),
    )


def neighbor_recall(
    approx: NeighborsResult | np.ndarray, exact: NeighborsResult | np.ndarray, *, rtol: float = 1e-9
) -> float:
    """Recall@k of an approximate result against the exact one, tie-aware.

    ``recall@k = mean_i #{j <= k : d_approx[i, j] <= d_exact[i, k] (1 + rtol)} / k`` with ``k``
    the approximate result's ``k`` (the exact one needs at least as many columns). Counting by
    distance rather than by row number makes an equidistant row (a duplicate) a correct answer.

    Args:
        approx, exact: :class:`NeighborsResult` or their ``distances`` arrays (same query rows).
        rtol: relative tolerance on distances (both are exact float64 recomputations).

    Returns:
        recall in ``[0, 1]``.

    Example:
        >>> import numpy as np
        >>> neighbor_recall(np.array([[0.1], [0.5]]), np.array([[0.1], [0.2]]))
        0.5
    """
    a = approx.distances if isinstance(approx, NeighborsResult) else np.asarray(approx, dtype=np.float64)
    e = exact.distances if isinstance(exact, NeighborsResult) else np.asarray(exact, dtype=np.float64)
    if a.ndim != 2 or e.ndim != 2 or a.shape[0] != e.shape[0] or a.shape[1] > e.shape[1]:
        raise ValueError(
            f"approx and exact must be (N, k) and (N, k') distances with k <= k'; got {a.shape} and {e.shape}"
        )
    k = a.shape[1]
    bar = e[:, k - 1 : k] * (1.0 + rtol)
    return float(np.mean(np.sum(a <= bar, axis=1) / k))


__all__ = [
    "BACKENDS",
    "FeatureSource",
    "NeighborsResult",
    "build_searcher",
    "feature_source",
    "nearest_neighbors",
    "neighbor_recall",
]
