"""Exact nearest-neighbour search split across a Ray cluster (``engine="ray"``).

The index rows (the training set) are split into ``workers`` consecutive parts. Every search
runs one Ray task per part (:func:`search_part`): an exact blocked search
(:func:`workbench.metrics.neighbors.knn`) of all the queries against that part; the driver
merges the parts' ``k`` best into the overall ``k`` best (by distance, ties by row number).
Tasks run in Ray's pooled worker processes (started once, imports warm) and a task whose process
dies is retried by Ray. The distances are the same float64 numbers as a local exact search (each is
recomputed from the two rows alone), so the merged result equals the local one, ties apart.

Where the rows come from: an index that is a cache's memory-mapped features file (or the
files of a sharded cache) is opened by each task from disk, reading only its part (every node
must see the cache at the same path: a shared file system); any other array is put once in
Ray's object store and read from there (zero-copy on the node).

Costs: every task receives all queries (``N_q x D x 4`` bytes, once in the object store) and
returns ``N_q x k`` distances and rows; the search itself is ``2 N_q N_x D / workers`` flops per
task.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from workbench.cache.sharded import ShardedArray
from workbench.progress import Progress, ProgressReporter
from workbench.ray_cluster import cluster_resources, connect

# (path, byte offset of the rows, dtype, shape) of one memory-mapped .npy piece of the index
Piece = tuple[str, int, str, tuple[int, ...]]


def _whole_file_memmap(x: Any) -> Piece | None:
    """``x`` as a piece when it is a C-ordered memmap of a whole ``.npy``'s data, else None."""
    if not isinstance(x, np.memmap) or not x.filename or not x.flags.c_contiguous:
        return None
    path = str(x.filename)
    try:
        size = os.path.getsize(path)
    except OSError:
        return None
    if int(x.offset) + int(x.nbytes) != size:  # a slice of a memmap keeps its parent's offset
        return None
    return path, int(x.offset), x.dtype.str, tuple(int(s) for s in x.shape)


def memmap_pieces(x: Any) -> list[Piece] | None:
    """The files an index is read from: one piece per memory-mapped file, in row order.

    Returns None when ``x`` is not (a concatenation of) whole memory-mapped ``.npy`` files; the
    search then ships the rows through the object store.
    """
    parts = x.parts if isinstance(x, ShardedArray) else [x]
    pieces = [_whole_file_memmap(p) for p in parts]
    if any(p is None for p in pieces):
        return None
    return [p for p in pieces if p is not None]


def _open_rows(pieces: list[Piece], start: int, stop: int) -> np.ndarray:
    """Rows ``[start, stop)`` of the concatenation of ``pieces`` (a memmap view when in one piece)."""
    out, offset = [], 0
    for path, byte_offset, dtype, shape in pieces:
        n = shape[0]
        lo, hi = max(start, offset), min(stop, offset + n)
        if lo < hi:
            if not os.path.isfile(path):
                import socket

                raise FileNotFoundError(
                    f"{path} is not visible on node {socket.gethostname()}: engine='ray' reads the cache on "
                    "every node, so it must lie on a file system all nodes share"
                )
            mm = np.memmap(path, dtype=np.dtype(dtype), mode="r", offset=byte_offset, shape=shape)
            out.append(mm[lo - offset : hi - offset])
        offset += n
    return out[0] if len(out) == 1 else np.concatenate(out)


def search_part(
    where: list[Piece] | np.ndarray,
    start: int,
    stop: int,
    query: np.ndarray,
    k: int,
    exclude_self: bool,
    metric: str,
    block_size: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest of index rows ``[start, stop)`` for every query (a Ray task).

    Returns ``N_q x k`` distances and global row numbers. With ``exclude_self`` query ``i`` is
    global row ``i`` and is left out of its own neighbours (``k + 1`` are searched, the query's
    own row dropped). Fewer than ``k`` rows in the part: the missing columns are ``inf`` / ``-1``.
    """
    from workbench.metrics.neighbors import knn

    rows = _open_rows(where, start, stop) if isinstance(where, list) else where[start:stop]
    n_q, n_part = query.shape[0], stop - start
    want = min(k + (1 if exclude_self else 0), n_part)
    dist, idx = knn(query, rows, want, metric=metric, block_size=block_size)
    idx = idx + start
    if exclude_self:
        own = idx == np.arange(n_q)[:, None]
        dist, idx = np.where(own, np.inf, dist), np.where(own, -1, idx)
    if dist.shape[1] < k:
        pad = k - dist.shape[1]
        dist = np.hstack([dist, np.full((n_q, pad), np.inf)])
        idx = np.hstack([idx, np.full((n_q, pad), -1, dtype=np.int64)])
    return dist, idx


def merge_topk(parts: list[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of several ``(distances, rows)`` results per query: by distance, ties by row.

    Missing entries (``inf`` / ``-1``) sort last.
    """
    dist = np.hstack([d for d, _ in parts])
    idx = np.hstack([i for _, i in parts])
    key_rows = np.where(idx < 0, np.iinfo(np.int64).max, idx)
    order = np.lexsort((key_rows, dist), axis=1)[:, :k]
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(idx, order, axis=1)


class RaySearcher:
    """An exact search whose index rows are split across Ray tasks (see the module docstring).

    Same interface as the local searchers of :mod:`workbench.analysis.neighbors`:
    ``search(query, k, self_rows=None, progress=None)`` and ``params``; :meth:`close` (or the
    end of a ``with`` block) releases the index rows put in the object store.

    Args:
        index: validated ``N x D`` features.
        metric: ``"l2"`` or ``"cosine"``.
        block_size: tile size of each task's blocked search (None: the default).
        origin: where ``index`` came from (a cache's memmap or :class:`ShardedArray`); when it is
            made of whole memory-mapped files each task reads its part from them.
        ray_address: see :mod:`workbench.ray_cluster`.
        workers: number of parts, searched in parallel (default: the cluster's CPUs, at most ``N``).
    """

    backend = "exact"

    def __init__(
        self,
        index: Any,
        metric: str,
        block_size: int | None,
        *,
        origin: Any = None,
        ray_address: str | None = None,
        workers: int | None = None,
    ) -> None:
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer))):
            raise ValueError(f"workers must be a positive integer; got {workers!r}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be a positive integer; got {workers!r}")
        ray = connect(ray_address)
        self.ray = ray
        self.index, self.metric = index, metric
        self.n, self.dim = index.shape
        parts = int(workers) if workers is not None else max(1, int(cluster_resources()["CPU"]))
        parts = max(1, min(parts, self.n))
        pieces = None
        for candidate in (origin, index):
            if candidate is not None and tuple(candidate.shape) == (self.n, self.dim):
                pieces = memmap_pieces(candidate)
                if pieces is not None:
                    break
        if pieces is not None:
            where: Any = pieces
            self.source = "memory-mapped files"
        else:
            where = ray.put(np.ascontiguousarray(np.asarray(index)))
            self.source = "object store"
        self.where, self.metric, self.block_size = where, metric, block_size
        self.bounds = [(p * self.n // parts, (p + 1) * self.n // parts) for p in range(parts)]
        # one CPU per part, or a share of the cluster's CPUs when there are more parts than CPUs (so
        # that all parts run at once); a task whose process dies is retried
        cpus = min(1.0, max(cluster_resources()["CPU"], 0.01) / parts)
        self.remote = ray.remote(num_cpus=cpus, max_retries=3)(search_part)
        self.params = {"block_size": block_size, "engine": "ray", "workers": parts}

    def search(
        self, query: Any, k: int, *, self_rows: np.ndarray | None = None, progress: Progress | bool | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        exclude_self = self_rows is not None
        if self_rows is not None and (query is not self.index or not np.array_equal(self_rows, np.arange(self.n))):
            raise ValueError("exclude_self=True needs the query to be the index set itself")
        q = np.ascontiguousarray(np.asarray(query))
        q_ref = self.ray.put(q)
        futures = [
            self.remote.remote(self.where, a, b, q_ref, int(k), exclude_self, self.metric, self.block_size)
            for a, b in self.bounds
        ]
        position = {f: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        bar = ProgressReporter(progress, "k-NN search (ray)", len(futures), unit="part")
        try:
            pending = list(futures)
            while pending:
                ready, pending = self.ray.wait(pending, num_returns=1)
                for ref in ready:
                    results[position[ref]] = self.ray.get(ref)
                    bar.advance(1)
        finally:
            bar.close()
        return merge_topk(results, int(k))

    def close(self) -> None:
        """Drop the reference to the index rows put in the object store (if any)."""
        self.where = None

    def __enter__(self) -> RaySearcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
