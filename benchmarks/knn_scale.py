"""Nearest-neighbour search at memorization scale: 50,000 generated vs 1,000,000 training embeddings.

Data: ``n_index x dim`` float32 training embeddings written as a memory-mapped ``.npy`` in a
temporary directory (deleted afterwards) and ``n_query`` generated embeddings from the same
distribution, of which ``n_planted`` are near-duplicates of random training rows
(``x + 0.05 N(0, I)``). The distribution (``--model``, see :func:`make_data`) is by default a
mixture of ``n_index / 1000`` clusters in a 32-dimensional latent space mapped into ``dim``
dimensions plus small isotropic noise (clustered, of low intrinsic dimension like real
embeddings); ``--model isotropic`` puts the clusters in the full space with unit isotropic noise,
where the nearest neighbour is decided by 1024-d noise, the worst case for approximate search.
The metric is cosine (the default of ``nearest_neighbors``), ``k=5``. Recall depends on the
data: measure it on your embeddings with :func:`~workbench.analysis.neighbors.neighbor_recall`
on a sample of queries.

Phases (each timed, with peak memory sampled by a psutil thread every 50 ms):

* ``ivf``: the ``backend="faiss-ivf"`` search of ``nearest_neighbors`` on all queries (k-means
  training and cell assignment of the memmapped index = ``build_seconds``, then the cell-major
  BLAS scan and exact re-ranking). ``--nprobe-sweep 4,8`` searches the same index again with
  other ``nprobe`` values (``seconds`` = build + that search).
* ``exact``: the exact blocked engine on the first ``--exact-queries`` queries (default all).
  When that is a fraction of the queries, the full-size time is extrapolated linearly (the
  exact cost is ``n_query x n_index`` tiles of equal cost) and labelled ``extrapolated``.
* ``hnsw`` (``--hnsw``; on by default with ``--quick``): faiss HNSW, build + search.

Recall@1 of each approximate result is measured against the exact result on the queries the
exact phase searched (tie-aware: an equidistant row counts as found). ``planted_found`` counts
the planted near-duplicates (among those queries) whose nearest neighbour is their source row.

Memory columns: ``peak_rss_gb`` is the process's peak resident set, which includes the pages of
the memory-mapped index the kernel has cached (up to the whole file); ``peak_anon_gb`` is the
peak of ``rss - shared`` (resident memory not backed by files), i.e. the memory used *beyond*
the memmapped index; ``anon_over_start_gb`` is that peak minus its value when the phase started.

Usage::

    python benchmarks/knn_scale.py --quick
    python benchmarks/knn_scale.py                         # the full target (long)
    python benchmarks/knn_scale.py --exact-queries 4096    # exact on a fraction, extrapolated
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from workbench.analysis.neighbors import build_searcher, nearest_neighbors, neighbor_recall
from workbench.threads import limit_threads

FULL = {"n_index": 1_000_000, "n_query": 50_000, "dim": 1024, "n_planted": 100}
QUICK = {"n_index": 20_000, "n_query": 2_000, "dim": 128, "n_planted": 20}
_GEN_BLOCK = 65_536


class PeakMemory:
    """Samples ``rss`` and ``rss - shared`` of this process in a background thread."""

    def __init__(self, interval: float = 0.05) -> None:
        self.proc = psutil.Process()
        self.interval = interval
        self.peak_rss = self.peak_anon = self.start_anon = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        m = self.proc.memory_info()
        self.peak_rss = max(self.peak_rss, m.rss)
        self.peak_anon = max(self.peak_anon, m.rss - m.shared)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        m = self.proc.memory_info()
        self.start_anon = m.rss - m.shared
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def fields(self) -> dict[str, float]:
        gb = 1024.0**3
        return {
            "peak_rss_gb": round(self.peak_rss / gb, 3),
            "peak_anon_gb": round(self.peak_anon / gb, 3),
            "anon_over_start_gb": round((self.peak_anon - self.start_anon) / gb, 3),
        }


def make_data(
    folder: Path,
    n_index: int,
    n_query: int,
    dim: int,
    n_planted: int,
    *,
    model: str = "latent",
    latent_dim: int = 32,
    spread: float | None = None,
    noise: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """Write the memmapped index; return it (read-only memmap), the queries and the planted pairs.

    ``model="latent"``: ``x = z W + noise * e`` with ``z`` from a mixture of ``n_index / 1000``
    unit Gaussians in ``latent_dim`` dimensions (centres ``~ N(0, spread^2 I)``, spread 4), ``W``
    a fixed random orthonormal ``latent_dim x dim`` map and ``e ~ N(0, I_dim)``: clustered data of
    low intrinsic dimension, like real embeddings. ``model="isotropic"``: ``x = c + e`` with
    centres ``c ~ N(0, spread^2 I_dim)`` (spread 0.3), i.e. the neighbours are decided by
    1024-dimensional noise -- the worst case for every approximate index.
    """
    if model not in ("latent", "isotropic"):
        raise ValueError(f"model must be 'latent' or 'isotropic'; got {model!r}")
    rng = np.random.default_rng(seed)
    n_centres = max(10, n_index // 1000)
    if model == "latent":
        spread = 4.0 if spread is None else spread
        centres = (spread * rng.standard_normal((n_centres, latent_dim))).astype(np.float32)
        basis = np.linalg.qr(rng.standard_normal((dim, latent_dim)))[0].T.astype(np.float32)
    else:
        spread = 0.3 if spread is None else spread
        centres = (spread * rng.standard_normal((n_centres, dim))).astype(np.float32)

    def draw(r: np.random.Generator, n: int) -> np.ndarray:
        if model == "latent":
            z = r.standard_normal((n, latent_dim), dtype=np.float32) + centres[r.integers(0, n_centres, n)]
            return z @ basis + noise * r.standard_normal((n, dim), dtype=np.float32)
        return r.standard_normal((n, dim), dtype=np.float32) + centres[r.integers(0, n_centres, n)]

    path = folder / "train.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_index, dim))
    for b, start in enumerate(range(0, n_index, _GEN_BLOCK)):
        stop = min(start + _GEN_BLOCK, n_index)
        out[start:stop] = draw(np.random.default_rng([seed, b]), stop - start)
    out.flush()
    del out
    index = np.load(path, mmap_mode="r")
    query = draw(rng, n_query)
    planted_rows = np.sort(rng.choice(n_query, size=n_planted, replace=False))
    sources = np.sort(rng.choice(n_index, size=n_planted, replace=False))
    query[planted_rows] = index[sources] + 0.05 * rng.standard_normal((n_planted, dim), dtype=np.float32)
    return {"index": index, "query": query, "planted_rows": planted_rows, "sources": sources}


def _planted_found(indices: np.ndarray, rows_searched: int, planted_rows: np.ndarray, sources: np.ndarray) -> str:
    sel = planted_rows < rows_searched
    found = int(np.sum(indices[planted_rows[sel], 0] == sources[sel]))
    return f"{found}/{int(sel.sum())}"


def run(
    quick: bool = False,
    *,
    n_index: int | None = None,
    n_query: int | None = None,
    dim: int | None = None,
    exact_queries: int | None = None,
    hnsw: bool | None = None,
    k: int = 5,
    metric: str = "cosine",
    nlist: int | None = None,
    nprobe: int | None = None,
    nprobe_sweep: list[int] | None = None,
    threads: int | None = None,
    model: str = "latent",
    spread: float | None = None,
    tmpdir: str | None = None,
    seed: int = 0,
    verbose: bool = True,
) -> list[dict[str, Any]]:
    """Run the benchmark; returns one dict per phase (see the module docstring for the columns)."""
    size = dict(QUICK if quick else FULL)
    for key, val in (("n_index", n_index), ("n_query", n_query), ("dim", dim)):
        if val is not None:
            size[key] = int(val)
    size["n_planted"] = min(size["n_planted"], size["n_query"], size["n_index"])
    n_exact = size["n_query"] if exact_queries is None else min(int(exact_queries), size["n_query"])
    hnsw = quick if hnsw is None else hnsw
    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if verbose else (lambda msg: None)
    rows: list[dict[str, Any]] = []
    base = {**{key: size[key] for key in ("n_index", "dim")}, "k": k, "metric": metric, "model": model}

    with tempfile.TemporaryDirectory(dir=tmpdir, prefix="knn_scale_") as folder, limit_threads(threads):
        t0 = time.perf_counter()
        with PeakMemory() as mem:
            data = make_data(
                Path(folder),
                size["n_index"],
                size["n_query"],
                size["dim"],
                size["n_planted"],
                model=model,
                spread=spread,
                seed=seed,
            )
        rows.append(
            {
                "phase": "generate",
                **base,
                "n_query": size["n_query"],
                "seconds": round(time.perf_counter() - t0, 1),
                **mem.fields(),
            }
        )
        say(f"data: {size['n_index']} x {size['dim']} memmap, {size['n_query']} queries ({rows[-1]['seconds']} s)")
        index, query = data["index"], data["query"]

        approx: dict[str, Any] = {}
        t0 = time.perf_counter()
        with PeakMemory() as mem:
            ivf = build_searcher(
                index, metric=metric, backend="faiss-ivf", nlist=nlist, nprobe=nprobe, seed=seed, progress=verbose
            )
            t_build = time.perf_counter() - t0
            approx["faiss-ivf"] = ivf.search(query, k, progress=verbose)
        rows.append(
            {
                "phase": "ivf",
                "backend": "faiss-ivf",
                **base,
                "n_query": size["n_query"],
                "seconds": round(time.perf_counter() - t0, 1),
                "build_seconds": round(t_build, 1),
                **mem.fields(),
                "params": dict(ivf.params),
            }
        )
        say(f"ivf: {rows[-1]}")
        for probes in nprobe_sweep or ():
            ivf.nprobe = min(int(probes), ivf.nlist)
            name = f"faiss-ivf-nprobe{ivf.nprobe}"
            t0 = time.perf_counter()
            with PeakMemory() as mem:
                approx[name] = ivf.search(query, k, progress=verbose)
            search_s = time.perf_counter() - t0
            rows.append(
                {
                    "phase": "ivf-sweep",
                    "backend": name,
                    **base,
                    "n_query": size["n_query"],
                    "seconds": round(t_build + search_s, 1),
                    "build_seconds": round(t_build, 1),
                    "search_seconds": round(search_s, 1),
                    **mem.fields(),
                    "params": {**ivf.params, "nprobe": ivf.nprobe},
                }
            )
            say(f"ivf sweep: {rows[-1]}")

        if hnsw:
            t0 = time.perf_counter()
            with PeakMemory() as mem:
                searcher = build_searcher(index, metric=metric, backend="faiss-hnsw", progress=verbose)
                t_build = time.perf_counter() - t0
                dist, idx = searcher.search(query, k, progress=verbose)
            approx["faiss-hnsw"] = (dist, idx)
            rows.append(
                {
                    "phase": "hnsw",
                    "backend": "faiss-hnsw",
                    **base,
                    "n_query": size["n_query"],
                    "seconds": round(time.perf_counter() - t0, 1),
                    "build_seconds": round(t_build, 1),
                    **mem.fields(),
                    "params": searcher.params,
                }
            )
            say(f"hnsw: {rows[-1]}")

        t0 = time.perf_counter()
        with PeakMemory() as mem:
            exact = nearest_neighbors(query[:n_exact], index, k, metric=metric, backend="exact", progress=verbose)
        seconds = time.perf_counter() - t0
        row = {
            "phase": "exact",
            "backend": "exact",
            **base,
            "n_query": n_exact,
            "seconds": round(seconds, 1),
            **mem.fields(),
            "planted_found": _planted_found(exact.indices, n_exact, data["planted_rows"], data["sources"]),
        }
        if n_exact < size["n_query"]:
            row["extrapolated_seconds_full_queries"] = round(seconds * size["n_query"] / n_exact, 1)
        rows.append(row)
        say(f"exact: {row}")

        for r in rows:
            name = r.get("backend")
            if name in approx:
                res = approx[name]
                dist, idx = (res.distances, res.indices) if hasattr(res, "distances") else res
                r["recall_at_1"] = round(neighbor_recall(dist[:n_exact, :1], exact.distances[:, :1]), 5)
                r["recall_at_k"] = round(neighbor_recall(dist[:n_exact], exact.distances), 5)
                r["recall_queries"] = n_exact
                r["planted_found"] = _planted_found(idx, size["n_query"], data["planted_rows"], data["sources"])
        del data, index, exact, approx
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (20k x 128, 2k queries) for a smoke run")
    parser.add_argument("--n-index", type=int, help="training embeddings (default 1,000,000)")
    parser.add_argument("--n-query", type=int, help="generated embeddings (default 50,000)")
    parser.add_argument("--dim", type=int, help="embedding dimension (default 1024)")
    parser.add_argument(
        "--exact-queries",
        type=int,
        help="queries searched exactly (default all); fewer extrapolates the full exact time",
    )
    parser.add_argument(
        "--hnsw",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also run faiss HNSW (default: only with --quick; slow to build at 1M x 1024)",
    )
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--metric", default="cosine", choices=("cosine", "l2"))
    parser.add_argument("--nlist", type=int)
    parser.add_argument("--nprobe", type=int)
    parser.add_argument(
        "--model",
        default="latent",
        choices=("latent", "isotropic"),
        help="data model (see make_data): low intrinsic dimension (default) or isotropic noise",
    )
    parser.add_argument("--spread", type=float, help="scale of the cluster centres (latent 4.0, isotropic 0.3)")
    parser.add_argument(
        "--nprobe-sweep",
        type=lambda v: [int(x) for x in v.split(",")],
        help="comma-separated extra nprobe values searched on the same IVF index (e.g. 4,8)",
    )
    parser.add_argument("--threads", type=int, help="torch/faiss threads (default: all cores)")
    parser.add_argument("--tmpdir", help="where the temporary memmap is written (needs n_index*dim*4 bytes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    print(f"cpu cores: {os.cpu_count()}, load average: {os.getloadavg()}", file=sys.stderr)
    rows = run(
        args.quick,
        n_index=args.n_index,
        n_query=args.n_query,
        dim=args.dim,
        exact_queries=args.exact_queries,
        hnsw=args.hnsw,
        k=args.k,
        metric=args.metric,
        nlist=args.nlist,
        nprobe=args.nprobe,
        nprobe_sweep=args.nprobe_sweep,
        threads=args.threads,
        model=args.model,
        spread=args.spread,
        tmpdir=args.tmpdir,
        seed=args.seed,
    )
    for r in rows:
        print(json.dumps(r, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str))
    return rows


if __name__ == "__main__":
    main()
