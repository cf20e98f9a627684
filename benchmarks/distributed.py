"""The Ray engine against the local one on this machine: extraction and exact k-NN search.

1. Extraction of ``--images`` Fashion-MNIST PNGs (class folders, 28 x 28 grey) with ``pixels``
   and ``demo-classifier`` (random weights: the same compute as trained ones), local engine vs
   ``engine="ray"`` on a Ray instance started here (its start-up is timed apart: a cluster is
   started once, not per extraction). Both caches are compared (ids, features).
2. Exact search of ``--queries`` random queries against ``--rows`` x ``--dim`` rows stored as
   a memory-mapped ``.npy`` (k = 5, l2), local vs ``engine="ray"`` with ``--workers`` parts;
   the results are compared.

On one machine Ray can only add overhead (process start-up, serialisation, scheduling); the
engine is for clusters. The overhead is what this measures.

    .venv/bin/python benchmarks/distributed.py                       # 20,000 images; 10,000 x 200,000 x 256
    .venv/bin/python benchmarks/distributed.py --images 2000 --rows 20000 --queries 1000   # quick
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from workbench.analysis.neighbors import nearest_neighbors
from workbench.cache import extract
from workbench.images.datasets import load_fashion_mnist
from workbench.ray_cluster import connect


def write_pngs(folder: Path, n: int) -> None:
    """The first ``n`` Fashion-MNIST training images as PNGs in class folders."""
    images, labels = load_fashion_mnist("train")
    for i in range(n):
        sub = folder / str(int(labels[i]))
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(sub / f"{i:06d}.png")


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def bench_extraction(tmp: Path, n_images: int, extractors: list[str], batch_size: int, chunk: int) -> None:
    src = tmp / "images"
    _, t_write = timed(lambda: write_pngs(src, n_images))
    print(f"wrote {n_images} PNGs in {t_write:.1f} s")
    _, t_start = timed(lambda: connect(None))
    print(f"Ray instance started in {t_start:.1f} s (once per cluster; not in the times below)")
    print(f"{'extractor':>16s} {'local s':>9s} {'ray s':>9s} {'local img/s':>12s} {'ray img/s':>10s} {'overhead':>9s}")
    for name in extractors:
        local, t_local = timed(
            lambda name=name: extract(
                src, name, weights="none", out=tmp / "local", batch_size=batch_size, progress=False
            )
        )
        dist, t_ray = timed(
            lambda name=name: extract(
                src,
                name,
                weights="none",
                out=tmp / "ray",
                engine="ray",
                batch_size=batch_size,
                chunk_size=chunk,
                progress=False,
            )
        )
        same_ids = dist.meta["id"].tolist() == local.meta["id"].tolist()
        err = float(np.max(np.abs(np.asarray(dist.features) - np.asarray(local.features))))
        print(
            f"{name:>16s} {t_local:9.1f} {t_ray:9.1f} {n_images / t_local:12.0f} {n_images / t_ray:10.0f} "
            f"{100 * (t_ray / t_local - 1):8.0f}%   (same ids: {same_ids}, max |feature diff| {err:.1e}, "
            f"{dist.manifest['shards']} shards)"
        )


def bench_search(tmp: Path, n_rows: int, dim: int, n_queries: int, workers: int, k: int) -> None:
    rng = np.random.default_rng(0)
    path = tmp / "train.npy"
    train = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_rows, dim))
    for s in range(0, n_rows, 50_000):
        e = min(s + 50_000, n_rows)
        train[s:e] = rng.normal(size=(e - s, dim))
    train.flush()
    del train
    index = np.load(path, mmap_mode="r")
    query = rng.normal(size=(n_queries, dim)).astype(np.float32)
    local, t_local = timed(lambda: nearest_neighbors(query, index, k=k, progress=False))
    dist, t_ray = timed(lambda: nearest_neighbors(query, index, k=k, engine="ray", workers=workers, progress=False))
    same = np.array_equal(local.indices, dist.indices) and np.array_equal(local.distances, dist.distances)
    print(
        f"search {n_queries} x {n_rows} x {dim}, k={k}: local {t_local:.1f} s (torch threads "
        f"{torch.get_num_threads()}), ray {workers} workers {t_ray:.1f} s (task start-up included), "
        f"ratio {t_ray / t_local:.2f}; results identical: {same}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--extractors", default="pixels,demo-classifier")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--chunk-size", type=int, default=2048)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--skip-extraction", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start, torch {torch.__version__}")
    with tempfile.TemporaryDirectory(prefix="wb-distributed-") as tmp:
        if not args.skip_extraction:
            bench_extraction(Path(tmp), args.images, args.extractors.split(","), args.batch_size, args.chunk_size)
        if not args.skip_search:
            connect(None)
            bench_search(Path(tmp), args.rows, args.dim, args.queries, args.workers, args.k)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
