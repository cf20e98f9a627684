"""Extraction throughput: the full pipeline (read, decode, resize, forward) vs forward alone.

If the pipeline's images/s is far below forward-only images/s for the same model and batch size,
data loading is the bottleneck (raise --workers); if they are close, the model is.

    .venv/bin/python benchmarks/extract_throughput.py --extractor inception --images 512
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

from workbench.cache import extract
from workbench.extractors import create_extractor
from workbench.images.datasets import load_fashion_mnist


def write_pngs(folder: Path, n: int) -> None:
    images, labels = load_fashion_mnist("test")
    for i in range(n):
        sub = folder / str(int(labels[i]))
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(sub / f"{i:06d}.png")


def run(
    extractor: str = "inception",
    n_images: int = 512,
    batch_size: int = 64,
    workers: int | None = None,
    options: dict | None = None,
) -> dict[str, float]:
    ext = create_extractor(extractor, weights="none", device="cpu", **(options or {}))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "images"
        write_pngs(src, n_images)
        # forward only: the same model and batch size on already prepared inputs
        prepared = np.stack(
            [
                ext.preprocessor(np.repeat(np.asarray(Image.open(p))[:, :, None], 3, axis=2))
                for p in sorted(src.rglob("*.png"))[:batch_size]
            ]
        )
        batch = torch.from_numpy(prepared)
        ext(batch)  # warm-up
        reps = max(1, n_images // batch_size)
        t0 = time.perf_counter()
        for _ in range(reps):
            ext(batch)
        forward_ips = reps * batch_size / (time.perf_counter() - t0)

        t0 = time.perf_counter()
        extract(src, ext, out=Path(tmp) / "ws", batch_size=batch_size, num_workers=workers, progress=False)
        pipeline_ips = n_images / (time.perf_counter() - t0)
    return {"forward_ips": forward_ips, "pipeline_ips": pipeline_ips}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--extractor", default="inception")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    res = run(args.extractor, args.images, args.batch_size, args.workers)
    print(
        f"extractor {args.extractor} (random weights; same compute as pretrained), batch {args.batch_size}, "
        f"{args.images} Fashion-MNIST PNGs, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"
    )
    print(f"{'forward only':>22s}: {res['forward_ips']:8.1f} images/s")
    print(f"{'full pipeline':>22s}: {res['pipeline_ips']:8.1f} images/s")
    print(f"{'pipeline / forward':>22s}: {res['pipeline_ips'] / res['forward_ips']:8.2f}")


if __name__ == "__main__":
    main()
