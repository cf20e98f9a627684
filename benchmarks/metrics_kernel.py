"""Benchmark: kernel distance (KID) and CMMD, ours vs peers, at 50,000 x 1024.

KD (100 subsets of 1000, cubic kernel): ours (float64, and ``dtype="float32"``) vs torch-fidelity ``kid_features_to_metric``
(same subsets via ``sampling="randomstate"``; numpy in the features' dtype, float32 here),
torchmetrics ``KernelInceptionDistance`` fed features through an identity "extractor" (torch,
float32, its own ``torch.randperm`` subsets) and clean-fid ``kernel_distance`` (float64 copies of
the features, global ``np.random`` subsets; same subsets as ours when called as
``(fake, real)`` after ``np.random.seed``).

CMMD (sigma = 10, scale = 1000, L2-normalised embeddings like CLIP): ours, tiled in float64, at the
full size; no installed package implements it, so the peer is a full-matrix numpy transcription of
the reference ``google-research/cmmd/distance.py`` (float32, like JAX's default), which needs three
N x N matrices and is only run at a size that fits (``--cmmd-peer-n``, default 8,000), where ours is
timed too.

Peak memory beyond the inputs: ``traced`` = tracemalloc peak (numpy/Python), ``rss`` = sampled peak
of anonymous resident memory (includes torch). Run:
``python benchmarks/metrics_kernel.py [--quick] [--skip-cmmd-full] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from workbench.metrics.cmmd import cmmd
from workbench.metrics.kernel_distance import kd
from workbench.threads import limit_threads

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import measure, print_table

# ----------------------------------------------------------------------------- measurement


def synthetic_features(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Non-negative correlated float32 features (Inception-pool-like)."""
    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(7).standard_normal((d, d)).astype(np.float32) / np.sqrt(d)
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 10_000):
        z = rng.standard_normal((min(10_000, n - start), d), dtype=np.float32) + shift
        out[start : start + len(z)] = np.maximum(z @ mixing, 0.0)
    return out


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ----------------------------------------------------------------------------- KD


def kd_rows(real: np.ndarray, fake: np.ndarray, subsets: int, subset_size: int, seed: int) -> list[dict]:
    import torch
    from cleanfid.fid import kernel_distance as cleanfid_kid
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torchmetrics.image.kid import KernelInceptionDistance

    base = {"part": "KD", "n": len(real), "d": real.shape[1]}
    rows = []
    res, seconds, traced, rss = measure(lambda: kd(real, fake, subsets, subset_size, seed=seed, sampling="randomstate"))
    ours = res.value
    rows.append(
        {
            **base,
            "method": "ours (float64)",
            "seconds": seconds,
            "traced_MiB": traced,
            "rss_MiB": rss,
            "mean": res.value,
            "std": res.std,
            "rel_diff": 0.0,
        }
    )
    res32, seconds, traced, rss = measure(
        lambda: kd(real, fake, subsets, subset_size, seed=seed, sampling="randomstate", dtype="float32")
    )
    rows.append(
        {
            **base,
            "method": "ours (dtype=float32)",
            "seconds": seconds,
            "traced_MiB": traced,
            "rss_MiB": rss,
            "mean": res32.value,
            "std": res32.std,
        }
    )

    def torch_fidelity() -> dict:
        return kid_features_to_metric(
            torch.from_numpy(real),
            torch.from_numpy(fake),
            kid_subsets=subsets,
            kid_subset_size=subset_size,
            rng_seed=seed,
            verbose=False,
        )

    out, seconds, traced, rss = measure(torch_fidelity)
    rows.append(
        {
            **base,
            "method": "torch-fidelity (float32, same subsets)",
            "seconds": seconds,
            "traced_MiB": traced,
            "rss_MiB": rss,
            "mean": out["kernel_inception_distance_mean"],
            "std": out["kernel_inception_distance_std"],
        }
    )

    def torchmetrics() -> tuple:
        torch.manual_seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            metric = KernelInceptionDistance(feature=torch.nn.Identity(), subsets=subsets, subset_size=subset_size)
        metric.update(torch.from_numpy(real), real=True)
        metric.update(torch.from_numpy(fake), real=False)
        return metric.compute()

    (mean, std), seconds, traced, rss = measure(torchmetrics)
    rows.append(
        {
            **base,
            "method": "torchmetrics (float32, own subsets)",
            "seconds": seconds,
            "traced_MiB": traced,
            "rss_MiB": rss,
            "mean": float(mean),
            "std": float(std),
        }
    )

    def clean_fid() -> float:
        np.random.seed(seed)
        return cleanfid_kid(fake.astype(np.float64), real.astype(np.float64), subsets, subset_size)

    value, seconds, traced, rss = measure(clean_fid)
    rows.append(
        {
            **base,
            "method": "clean-fid (float64 copies, same subsets)",
            "seconds": seconds,
            "traced_MiB": traced,
            "rss_MiB": rss,
            "mean": float(value),
        }
    )
    for row in rows:
        row["seconds/ours"] = row["seconds"] / rows[0]["seconds"]
        row["rel_diff"] = (row["mean"] - ours) / abs(ours)
    return rows


# ----------------------------------------------------------------------------- CMMD


def reference_cmmd_full_matrix(x: np.ndarray, y: np.ndarray, sigma: float = 10.0, scale: float = 1000.0) -> float:
    """Line-by-line numpy port of google-research cmmd/distance.py ``mmd`` (float32 like JAX)."""
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)
    x_sq = np.diag(x @ x.T)
    y_sq = np.diag(y @ y.T)
    gamma = np.float32(1 / (2 * sigma**2))
    k_xx = np.mean(np.exp(-gamma * (-2 * (x @ x.T) + x_sq[:, None] + x_sq[None, :])))
    k_xy = np.mean(np.exp(-gamma * (-2 * (x @ y.T) + x_sq[:, None] + y_sq[None, :])))
    k_yy = np.mean(np.exp(-gamma * (-2 * (y @ y.T) + y_sq[:, None] + y_sq[None, :])))
    return float(scale * (k_xx + k_yy - 2 * k_xy))


def cmmd_rows(real: np.ndarray, fake: np.ndarray, peer_n: int, full: bool) -> list[dict]:
    rows = []
    d = real.shape[1]
    sub_r, sub_f = real[:peer_n], fake[:peer_n]
    value, seconds, traced, rss = measure(lambda: cmmd(sub_r, sub_f))
    rows.append(
        {
            "part": "CMMD",
            "n": peer_n,
            "d": d,
            "method": "ours (tiled, float64)",
            "seconds": seconds,
            "traced_MiB": traced,
            "rss_MiB": rss,
            "value": value,
            "rel_diff": 0.0,
            "seconds/ours": 1.0,
        }
    )
    ours_small = value
    ref64 = reference_cmmd_full_matrix
    value, seconds, traced, rss = measure(lambda: ref64(sub_r, sub_f))
    rows.append(
        {
            "part": "CMMD",
            "n": peer_n,
            "d": d,
            "method": "reference full-matrix (float32)",
            "seconds": seconds,
            "traced_MiB": traced,
            "rss_MiB": rss,
            "value": value,
            "rel_diff": (value - ours_small) / abs(ours_small),
            "seconds/ours": seconds / rows[0]["seconds"],
        }
    )
    if full:
        value, seconds, traced, rss = measure(lambda: cmmd(real, fake))
        rows.append(
            {
                "part": "CMMD",
                "n": len(real),
                "d": d,
                "method": "ours (tiled, float64)",
                "seconds": seconds,
                "traced_MiB": traced,
                "rss_MiB": rss,
                "value": value,
                "note": f"reference would need 3 x {len(real)}^2 float32 = {3 * len(real) ** 2 * 4 / 2**30:.0f} GiB",
            }
        )
    return rows


# ----------------------------------------------------------------------------- driver


def run(quick: bool, skip_cmmd_full: bool = False, cmmd_peer_n: int | None = None) -> list[dict]:
    """Run the benchmark; ``quick``: 5,000 x 256 features, 20 subsets of 500, CMMD peer at 2,000."""
    n, d = (5000, 256) if quick else (50_000, 1024)
    subsets, subset_size = (20, 500) if quick else (100, 1000)
    peer_n = cmmd_peer_n or (2000 if quick else 8000)
    real = synthetic_features(n, d, seed=1)
    fake = synthetic_features(n, d, seed=2, shift=0.05)
    rows = kd_rows(real, fake, subsets, subset_size, seed=2020)
    rows += cmmd_rows(unit_rows(real), unit_rows(fake), peer_n, full=not skip_cmmd_full)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--skip-cmmd-full", action="store_true", help="skip ours at the full CMMD size")
    parser.add_argument("--cmmd-peer-n", type=int, default=None, help="rows for the full-matrix CMMD peer")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="cap BLAS/OpenMP and torch threads (1 = fair timings on a busy shared machine)",
    )
    args = parser.parse_args()
    print(
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}  cpus={os.cpu_count()}  "
        f"threads={args.threads or 'default'}  load={os.getloadavg()[0]:.1f}"
    )
    with limit_threads(args.threads):
        rows = run(args.quick, args.skip_cmmd_full, args.cmmd_peer_n)
    print("\nKernel distance (KID): mean/std over subsets")
    print_table(
        [r for r in rows if r["part"] == "KD"],
        ["n", "d", "method", "seconds", "seconds/ours", "traced_MiB", "rss_MiB", "mean", "std", "rel_diff"],
        digits=5,
    )
    print("\nCMMD")
    print_table(
        [r for r in rows if r["part"] == "CMMD"],
        ["n", "d", "method", "seconds", "seconds/ours", "traced_MiB", "rss_MiB", "value", "rel_diff", "note"],
        digits=5,
    )


if __name__ == "__main__":
    main()
