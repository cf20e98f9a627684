"""Benchmark: Fréchet distance from statistics, and streaming statistics of a memmap.

Part 1 (d = 2048, Inception pool3 size): time of the distance step from (mu, sigma) for ours
(``fd_from_stats``) vs pytorch-fid and clean-fid (``scipy.linalg.sqrtm``), torchmetrics
(``torch.linalg.eigvals``) and torch-fidelity (``np.linalg.eigvals``); value differences and
speed ratios. Statistics come from synthetic ReLU features with a decaying spectrum (full rank,
n = 10 d) and, separately, from n < d rows (the singular path).

Part 2: streaming statistics of an ``N x D`` float32 memmap (50,000 x 2048): ours
(``feature_statistics``) vs ``np.mean`` + ``np.cov`` (what pytorch-fid and torch-fidelity do) and
torchmetrics' float64 raw-moment accumulation (``sum x``, ``sum x x^T`` per batch, re-implemented
here with torch since the metric class needs images). Peak memory is reported beyond the memmap:
``traced`` is tracemalloc's peak of numpy/Python allocations, ``rss`` the sampled peak of
anonymous resident memory (file-backed memmap pages excluded; includes torch).

Run: ``python benchmarks/metrics_frechet.py [--quick] [--ours-only] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from workbench.metrics.frechet import fd_from_stats, feature_statistics
from workbench.threads import limit_threads

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import measure, print_table  # noqa: E402

# ----------------------------------------------------------------------------- measurement


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[Any, float]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def synthetic_features(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """ReLU of Gaussian data through a mixing matrix with power-law singular values (float32)."""
    z = np.random.default_rng(seed).standard_normal((n, d)) + shift
    return np.maximum(z @ _mixing(d).T, 0.0).astype(np.float32)


@functools.lru_cache(maxsize=2)
def _mixing(d: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(12345).standard_normal((d, d)))
    return q * (np.arange(1, d + 1) ** -0.75)[None, :]


# ----------------------------------------------------------------------------- peers


def _peer_functions() -> dict[str, Callable[..., float]]:
    import torch
    from cleanfid.fid import frechet_distance as cleanfid_fd
    from pytorch_fid.fid_score import calculate_frechet_distance as pytorch_fid_fd
    from torch_fidelity.metric_fid import fid_statistics_to_metric
    from torchmetrics.image.fid import _compute_fid

    def torchmetrics_fd(mu1, s1, mu2, s2):
        return float(_compute_fid(*(torch.from_numpy(v) for v in (mu1, s1, mu2, s2))))

    def torch_fidelity_fd(mu1, s1, mu2, s2):
        stats = fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, False)
        return stats["frechet_inception_distance"]

    return {
        "pytorch-fid": pytorch_fid_fd,
        "clean-fid": cleanfid_fd,
        "torchmetrics": torchmetrics_fd,
        "torch-fidelity": torch_fidelity_fd,
    }


def distance_rows(d: int, n: int, case: str, ours_only: bool, repeats: int) -> list[dict]:
    real = synthetic_features(n, d, seed=1)
    fake = synthetic_features(n, d, seed=2, shift=0.1)
    s1, s2 = feature_statistics(real), feature_statistics(fake)
    args = (s1.mean, s1.cov, s2.mean, s2.cov)
    ours, t_ours = best_time(lambda: fd_from_stats(*args), repeats)
    exact = _exact_fd_from_data(real, fake) if n <= d else None
    rows = [{"part": "distance", "case": case, "d": d, "n": n, "method": "ours", "seconds": t_ours,
             "value": ours, "rel_diff": 0.0, "peer/ours": 1.0, "rel_err_exact": _rel(ours, exact)}]
    if ours_only:
        return rows
    for name, fn in _peer_functions().items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                value, seconds = best_time(lambda fn=fn: fn(*args), 1)
            except ValueError as exc:  # pytorch-fid / clean-fid: "Imaginary component"
                rows.append({"part": "distance", "case": case, "d": d, "n": n, "method": name,
                             "value": None, "note": f"failed: {exc}"})
                continue
        rows.append({"part": "distance", "case": case, "d": d, "n": n, "method": name,
                     "seconds": seconds, "value": float(value),
                     "rel_diff": (float(value) - ours) / abs(ours), "peer/ours": seconds / t_ours,
                     "rel_err_exact": _rel(float(value), exact)})
    return rows


def _exact_fd_from_data(real: np.ndarray, fake: np.ndarray) -> float:
    """FD for n <= d from the data: Tr (S1 S2)^{1/2} = sum of singular values of Rc Fc^T / (n-1)."""
    r = real.astype(np.float64)
    f = fake.astype(np.float64)
    rc, fc = r - r.mean(0), f - f.mean(0)
    n1, n2 = len(r), len(f)
    tr_sqrt = np.linalg.svd(rc @ fc.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    diff = r.mean(0) - f.mean(0)
    return float(diff @ diff + (rc**2).sum() / (n1 - 1) + (fc**2).sum() / (n2 - 1) - 2 * tr_sqrt)


def _rel(value: float, exact: float | None) -> float | None:
    return None if exact is None else (value - exact) / abs(exact)


# ----------------------------------------------------------------------------- streaming


def _np_cov_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.mean(x, axis=0), np.cov(x, rowvar=False)


def _raw_moment_stats(x: np.ndarray, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """torchmetrics FID accumulation: float64 sum x and sum x^T x per batch, cov from raw moments."""
    import torch

    d = x.shape[1]
    total = torch.zeros(d, dtype=torch.float64)
    outer = torch.zeros(d, d, dtype=torch.float64)
    for start in range(0, x.shape[0], batch):
        f = torch.from_numpy(np.array(x[start : start + batch])).double()
        total += f.sum(dim=0)
        outer += f.t().mm(f)
    n = x.shape[0]
    mean = (total / n).unsqueeze(0)
    cov = (outer - n * mean.t().mm(mean)) / (n - 1)
    return mean.squeeze(0).numpy(), cov.numpy()


def streaming_rows(n: int, d: int, ours_only: bool) -> list[dict]:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        path = Path(tmp) / "features.f32"
        mm = np.memmap(path, dtype=np.float32, mode="w+", shape=(n, d))
        for start in range(0, n, 5000):
            stop = min(n, start + 5000)
            mm[start:stop] = synthetic_features(stop - start, d, seed=100 + start)
        mm.flush()
        del mm
        x = np.memmap(path, dtype=np.float32, mode="r", shape=(n, d))
        ours, seconds, traced, rss = measure(lambda: feature_statistics(x))
        base = {"part": "streaming", "n": n, "d": d}
        rows.append({**base, "method": "ours (Chan merge, float64)", "seconds": seconds,
                     "traced_MiB": traced, "rss_MiB": rss})
        if not ours_only:
            (mu_np, cov_np), seconds, traced, rss = measure(lambda: _np_cov_stats(x))
            rows.append({**base, "method": "np.mean+np.cov (pytorch-fid, torch-fidelity)",
                         "seconds": seconds, "traced_MiB": traced, "rss_MiB": rss,
                         "max_rel_cov_diff": float(np.abs(cov_np - ours.cov).max() / np.abs(cov_np).max())})
            (mu_tm, cov_tm), seconds, traced, rss = measure(lambda: _raw_moment_stats(x))
            rows.append({**base, "method": "raw moments float64 (torchmetrics)",
                         "seconds": seconds, "traced_MiB": traced, "rss_MiB": rss,
                         "max_rel_cov_diff": float(np.abs(cov_tm - ours.cov).max() / np.abs(cov_np).max())})
            rows[0]["max_rel_cov_diff"] = 0.0
        rows[0]["seconds/ours"] = 1.0
        for row in rows[1:]:
            row["seconds/ours"] = row["seconds"] / rows[0]["seconds"]
        del x
    return rows


# ----------------------------------------------------------------------------- driver


def run(quick: bool, ours_only: bool = False) -> list[dict]:
    """Run the benchmark; ``quick`` uses d = 256 and a 5,000 x 256 memmap."""
    d = 256 if quick else 2048
    rows = distance_rows(d, 10 * d, "full rank (n = 10 d)", ours_only, repeats=3)
    rows += distance_rows(d, d // 2, "singular (n = d / 2)", ours_only, repeats=3)
    rows += streaming_rows(5000 if quick else 50_000, d, ours_only)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (d = 256)")
    parser.add_argument("--ours-only", action="store_true", help="skip the (slow) peers")
    parser.add_argument("--threads", type=int, default=None,
                        help="cap BLAS/OpenMP and torch threads (1 = fair timings on a busy shared machine)")
    args = parser.parse_args()
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}  cpus={os.cpu_count()}  "
          f"threads={args.threads or 'default'}  load={os.getloadavg()[0]:.1f}")
    with limit_threads(args.threads):
        rows = run(args.quick, args.ours_only)
    print("\nDistance step from statistics (ours: best of 3; peers: one run)")
    print_table([r for r in rows if r["part"] == "distance"],
                ["case", "d", "method", "seconds", "peer/ours", "value", "rel_diff", "rel_err_exact", "note"])
    print("\nStreaming statistics of a float32 memmap (memory beyond the memmap)")
    print_table([r for r in rows if r["part"] == "streaming"],
                ["n", "d", "method", "seconds", "seconds/ours", "traced_MiB", "rss_MiB", "max_rel_cov_diff"])


if __name__ == "__main__":
    main()
