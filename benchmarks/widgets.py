"""Responsiveness of the interactive views on a 50,000-sample workspace (kernel side).

Builds (once; reused on later runs) a workspace of Fashion-MNIST caches made with the ``pixels``
extractor (16 px -> D = 768, 28 px thumbnails):

- ``reference``: the 10,000 test-split images;
- ``train``: ``n`` training-split images (the generators' training set);
- ``memorizer``: the same ``n`` training images with 3 grey levels of noise (a copying model);
- ``noisy``: ``n // 5`` test images with heavy noise.

then times (wall clock, median of repeats, milliseconds unless stated):

- opening the dashboard (widgets ready; metrics computed in the background) and how long the
  background metric tables and the memorization analysis take, then a second opening that reuses
  the saved metric tables;
- rendering one 64-thumbnail page of the sample grid (random pages of the ``n``-sample set);
- linked updates: a metric-table row click until the grid shows the other model, a class
  selection, a sort change to a computed score, a lasso of 5,000 points, a hover, and a
  memorization threshold change until the copy count and the page are updated.

Widget messages are not sent anywhere here (no frontend): the numbers are the kernel-side work
of each update, the part this package controls. Targets: a page or a linked update under 300 ms.

Usage::

    python benchmarks/widgets.py            # n = 50,000 (first run builds the caches: minutes)
    python benchmarks/widgets.py --quick    # n = 5,000
    python benchmarks/widgets.py --umap     # also time a real UMAP fit (slow: numba compile + fit)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np


def build_workspace(out: Path, n: int, seed: int = 0) -> Path:
    """Extract the benchmark caches into ``out`` (reused when present)."""
    from workbench.cache import extract
    from workbench.images import ArraySource
    from workbench.images.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist

    tx, ty = load_fashion_mnist("train")
    sx, sy = load_fashion_mnist("test")
    rng = np.random.default_rng(seed)
    n = min(n, len(tx))
    copies = np.clip(tx[:n].astype(np.int16) + rng.integers(-3, 4, tx[:n].shape), 0, 255).astype(np.uint8)
    m = max(n // 5, 100)
    rows = rng.choice(len(sx), size=m, replace=m > len(sx))
    noisy = np.clip(sx[rows].astype(np.float32) + rng.normal(0, 50, (m, 28, 28)), 0, 255).astype(np.uint8)
    sets = {
        "reference": (sx, sy),
        "train": (tx[:n], ty[:n]),
        "memorizer": (copies, ty[:n]),
        "noisy": (noisy, sy[rows]),
    }
    for name, (x, y) in sets.items():
        t0 = time.perf_counter()
        cache = extract(
            ArraySource(x, y, FASHION_MNIST_CLASSES, name=name),
            "pixels",
            out=out,
            thumbnails=28,
            progress=False,
            batch_size=512,
        )
        print(
            f"  cache {name:<10s} {len(cache):>6d} x {cache.manifest['dim']}  ({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
    return out


def median_ms(fn, repeats: int) -> float:
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(i)
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5,000 samples instead of 50,000")
    parser.add_argument("--n", type=int, default=None, help="samples of the training / memorizer sets")
    parser.add_argument("--out", default=None, help="workspace folder (default workspace/bench-widgets-<n>)")
    parser.add_argument("--repeats", type=int, default=15, help="repeats per timed update")
    parser.add_argument("--umap", action="store_true", help="also time a real UMAP fit of the map's points")
    args = parser.parse_args()
    n = args.n or (5_000 if args.quick else 50_000)
    out = Path(args.out or f"workspace/bench-widgets-{n}")
    print(f"workspace {out} (n = {n:,}; {os.cpu_count()} CPU cores)", flush=True)
    build_workspace(out, n)

    from workbench.widgets import Samples, Workbench, Workspace

    ws = Workspace.open(out)
    state = ws.state_dir
    for pattern in ("metrics-*.json", "pca-*.npy"):
        for old in state.glob(pattern) if state and state.is_dir() else []:
            old.unlink()  # time the first opening honestly

    t0 = time.perf_counter()
    bench = Workbench(ws, background=True, memorization=False, human_n_boot=200)
    t_open = time.perf_counter() - t0
    print(f"\nopen dashboard (widgets ready, metrics in background): {t_open:.2f} s")
    print("  per view (s): " + ", ".join(f"{k} {v:.2f}" for k, v in bench.timings.items() if k != "total"))
    t0 = time.perf_counter()
    bench._task.wait(3600)
    print(
        f"background metric tables ({', '.join(bench.reports)}; "
        f"{', '.join(bench.reports[ws.extractors[0]].values.columns)}): {time.perf_counter() - t0:.1f} s"
    )
    t0 = time.perf_counter()
    bench.tabs.selected_index = 3  # the memorization tab starts the analysis
    bench.memorization.wait(3600)
    print(f"memorization analysis (memorizer vs train, {n:,} x {n:,}, k=5): {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    again = Workbench(Workspace.open(out), background=True, memorization=False, human_n_boot=200)
    again._task.wait(600)
    print(f"second opening (saved metric tables and PCA layout reused): {time.perf_counter() - t0:.2f} s")

    sel, grid = bench.selection, bench.grid
    rng = np.random.default_rng(0)
    results: dict[str, float] = {}
    sel.model = "memorizer"
    pages = rng.integers(0, grid.page_count, size=args.repeats)
    results["page of 64 thumbnails (random page of the memorizer set)"] = median_ms(
        lambda i: grid.go(int(pages[i])), args.repeats
    )
    assert len(grid.page_items) == 64

    keys = ["memorizer|pixels", "noisy|pixels"]
    results["metric-table row click -> grid shows the other model"] = median_ms(
        lambda i: setattr(bench.metric_table.grid, "selected", keys[i % 2]), args.repeats
    )
    classes = ws.classes("memorizer").names
    results["class selected -> grid filtered (all views)"] = median_ms(
        lambda i: setattr(sel, "class_name", classes[i % len(classes)]), args.repeats
    )
    sel.class_name = ""
    sel.model = "memorizer"
    grid.sort_by = "train_distance"  # computed by the memorization analysis
    results["sort change (computed score) -> page 1"] = median_ms(
        lambda i: setattr(grid, "descending", bool(i % 2)), args.repeats
    )
    lasso = [
        Samples.of("memorizer", np.sort(rng.choice(n, size=min(5000, n // 2), replace=False)))
        for _ in range(args.repeats)
    ]
    results[f"lasso of {min(5000, n // 2):,} points -> grid"] = median_ms(
        lambda i: bench.embedding_map.select_points(lasso[i]), args.repeats
    )
    sel.clear_samples()
    results["hover -> thumbnail and metadata"] = median_ms(
        lambda i: bench.embedding_map.hover("memorizer", int(rng.integers(n))), args.repeats
    )
    browser = bench.memorization
    top = browser.threshold.max
    values = np.linspace(0.05 * top, top, args.repeats)
    counts = []

    def move(i: int) -> None:
        browser.threshold.value = float(values[i])
        counts.append(browser.copy_count)

    results["threshold change -> copy count + page"] = median_ms(move, args.repeats)
    assert counts == sorted(counts)
    print(f"\nlinked updates, median of {args.repeats} (target < 300 ms), n = {n:,}:")
    for name, ms in results.items():
        flag = "" if ms < 300 else "   ** over target **"
        print(f"  {name:<58s} {ms:8.1f} ms{flag}")

    bench.memorization.wait(3600)  # analyses started by the model switches above
    if args.umap:
        emap = bench.embedding_map
        t0 = time.perf_counter()
        task = emap.compute_umap()
        if task is not None:
            task.wait(3600)
        print(
            f"\nUMAP of {len(emap.points):,} points (pixels, via 50 PCA dims; includes numba compilation): "
            f"{time.perf_counter() - t0:.1f} s"
        )
        t0 = time.perf_counter()
        from workbench.widgets import EmbeddingMap

        EmbeddingMap(ws, selection=sel).projection = "UMAP"
        print(f"reopening the map with the saved UMAP layout: {time.perf_counter() - t0:.2f} s")
    for view in (bench, again):
        if view.memorization is not None:
            view.memorization.wait(3600)


if __name__ == "__main__":
    main()
