"""Time of sensitivity heatmaps (``workbench.analysis.metric_heatmaps``) on the demo workspace.

Target (issue 16): **64 heatmaps of the demo classifier in under 10 s** on this machine. Times,
on the built demo workspace (``workbench demo``; ``$WORKBENCH_DEMO_DIR`` or ``workspace/demo``,
or ``--workspace``), the FD heatmaps of the first 64 images of a generated set (default ``vae``)
under ``demo-classifier`` (and ``demo-ssl``), against the reference set, the set itself being
the generated set (its 64 rows replaced by their fresh features):

- ``metric_heatmaps`` alone (extractor made beforehand), best and median of ``--repeats``;
- the same through the workspace's :class:`~workbench.workspace.heatmaps.HeatmapStore` with an
  empty state folder (making the extractor from the manifest included), then again reading the
  kept maps from disk in a new store.

Also, with ``--inception``, the per-image cost of random-weight Inception at 299 px (the README
states it): ``--inception-images`` images of 299 x 299 noise against 512 random 2048-d reference
features (the FD set-up in 2048 dimensions is timed apart).

Usage::

    python benchmarks/heatmaps.py                       # demo classifier and demo-ssl, 3 repeats
    python benchmarks/heatmaps.py --inception           # also random-weight Inception at 299 px
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_S = 10.0


def _time(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workspace", default=None, help="the demo workspace (default: find_demo_workspace())")
    parser.add_argument("--set", default="vae", help="the generated set explained (default: vae)")
    parser.add_argument("--images", type=int, default=64, help="images explained (default: 64)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--inception", action="store_true", help="also time random-weight Inception at 299 px")
    parser.add_argument("--inception-images", type=int, default=4)
    args = parser.parse_args()

    from workbench.analysis.heatmaps import metric_heatmaps
    from workbench.demo import find_demo_workspace
    from workbench.workspace import HeatmapStore, Workspace

    root = Path(args.workspace) if args.workspace else find_demo_workspace()
    ws = Workspace.open(root)
    rows = np.arange(args.images)
    print(f"workspace {root}; set {args.set!r}, {args.images} images, batch size {args.batch_size}")
    for name in ("demo-classifier", "demo-ssl"):
        with tempfile.TemporaryDirectory() as state:
            store = HeatmapStore(Workspace.open(root, state_dir=state), batch_size=args.batch_size)
            t = time.perf_counter()
            store.get(args.set, name, rows)
            first = time.perf_counter() - t
            t = time.perf_counter()
            again = HeatmapStore(Workspace.open(root, state_dir=state)).get(args.set, name, rows)
            reread = time.perf_counter() - t
        ext = store.extractor(name)
        images = ws.thumbnails(args.set, rows)
        ref, gen = ws.cache(ws.reference, name), ws.cache(args.set, name)
        times = _time(
            lambda images=images, ext=ext, ref=ref, gen=gen: metric_heatmaps(
                images, ext, ref, generated=gen, indices=rows, batch_size=args.batch_size, progress=False
            ),
            args.repeats,
        )
        best, med = min(times), statistics.median(times)
        verdict = "meets" if best < TARGET_S else "MISSES"
        print(
            f"{name:16s} metric_heatmaps: best {best:.2f} s, median {med:.2f} s of {args.repeats} "
            f"({best / args.images * 1000:.1f} ms/image; {verdict} the {TARGET_S:.0f} s target for "
            f"{args.images}); through the workspace store: {first:.2f} s first (extractor made from the "
            f"manifest), {reread:.2f} s read back from disk ({again.maps.shape[0]} maps)"
        )

    if args.inception:
        import torch

        from workbench.extractors import create_extractor

        torch.manual_seed(0)
        ext = create_extractor("inception", weights="none")
        rng = np.random.default_rng(0)
        n = args.inception_images
        images = rng.integers(0, 256, size=(n, 299, 299, 3), dtype=np.uint8)
        reference = rng.standard_normal((512, ext.dim)).astype(np.float32)
        generated = rng.standard_normal((512, ext.dim)).astype(np.float32)
        t = time.perf_counter()
        metric_heatmaps(images[:1], ext, reference, generated=generated, indices=[0], batch_size=1, progress=False)
        one = time.perf_counter() - t
        t = time.perf_counter()
        metric_heatmaps(images, ext, reference, generated=generated, indices=np.arange(n), batch_size=n, progress=False)
        many = time.perf_counter() - t
        per_image = (many - one) / max(n - 1, 1)
        print(
            f"inception (random weights, 299 px): {n} images in {many:.1f} s, 1 image in {one:.1f} s: "
            f"about {per_image:.1f} s per image plus {one - per_image:.1f} s per call (FD set-up in 2048-d)"
        )


if __name__ == "__main__":
    main()
