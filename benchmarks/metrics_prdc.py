"""Time and peak memory of PRDC (k=5): ``workbench.metrics.prdc`` vs the ``prdc`` package.

Full size: 10,000 real x 10,000 fake x 1024 float32 for both (values compared; target: ours >= 5x
faster), then ours alone on 50,000 x 50,000 x 1024 (``prdc`` would need three 10 GB distance
matrices; target < 5 minutes and < 2 GB beyond the inputs). Two kinds of features (``--data``):
``clustered`` float32 with a low-rank component (like embeddings of a 50-class dataset; the fakes
miss some clusters), and ``isotropic`` Gaussian (real N(0, 1), fake 1.05 N(0, 1)): in 1024
dimensions every distance is about the same, the worst case for certifying the reduced-precision
candidates of the k-NN search, so many rows fall back to exact float64 distances.

Every measurement runs in a fresh process: ``delta_peak_mb`` is the peak resident memory (psutil,
sampled every 5 ms) minus the resident memory once the inputs exist; ``peak_rss_mb`` is the
process's peak (``getrusage``). ``cpu_seconds`` is the process's user + system CPU time (on a
shared machine wall time / CPU time shows how much of the machine the run got; ``prdc`` runs 8
threads, this workbench uses torch's threads). ``ratio`` = prdc seconds / our seconds. With
``--repeats R`` the comparison runs R times, interleaved, and the fastest run of each is kept
(on a shared machine the minimum is the least disturbed measurement).

    .venv/bin/python benchmarks/metrics_prdc.py              # full size (several minutes)
    .venv/bin/python benchmarks/metrics_prdc.py --repeats 3  # same, comparison 3x interleaved
    .venv/bin/python benchmarks/metrics_prdc.py --quick      # 2,000 x 2,000 x 256, seconds
    .venv/bin/python benchmarks/metrics_prdc.py --data both --busy 1   # both kinds, one core taken
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing as mp
import os
import resource
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from measure import busy_cores, product_rate

KEYS = ("precision", "recall", "density", "coverage")


DATA = ("clustered", "isotropic")


def _features(n: int, d: int, seed: int, fake: bool, data: str = "clustered") -> np.ndarray:
    if data == "isotropic":
        x = np.random.default_rng(seed).standard_normal((n, d), dtype=np.float32)
        return x * np.float32(1.05) if fake else x
    structure = np.random.default_rng(1234)
    centres = structure.standard_normal((50, d)).astype(np.float32) * 1.5
    basis = structure.standard_normal((16, d)).astype(np.float32) / 2.0
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 40 if fake else 50, n)  # fakes miss 10 of the 50 modes
    x = rng.standard_normal((n, d), dtype=np.float32)
    x += centres[labels]
    x += rng.standard_normal((n, 16), dtype=np.float32) @ basis
    if fake:
        x *= np.float32(0.9)
    return x


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_sampler(stop: threading.Event, out: list[int]) -> None:
    import psutil

    proc = psutil.Process()
    peak = proc.memory_info().rss
    while not stop.wait(0.005):
        peak = max(peak, proc.memory_info().rss)
    out.append(max(peak, proc.memory_info().rss))


def _measure(impl: str, n: int, d: int, k: int, data: str, queue: Any) -> None:
    import psutil
    import torch  # noqa: F401  imported before the baseline so imports are not counted
    from prdc import compute_prdc

    from workbench.metrics.prdc import prdc

    real, fake = _features(n, d, 0, fake=False, data=data), _features(n, d, 1, fake=True, data=data)
    base = psutil.Process().memory_info().rss
    stop, peaks = threading.Event(), []
    sampler = threading.Thread(target=_peak_sampler, args=(stop, peaks))
    sampler.start()
    cpu0 = _cpu_seconds()
    t0 = time.perf_counter()
    if impl == "workbench":
        values = prdc(real, fake, k).as_dict()
    else:
        with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the sample sizes
            values = {key: float(v) for key, v in compute_prdc(real, fake, nearest_k=k).items()}
    seconds = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0
    stop.set()
    sampler.join()
    queue.put(
        {
            "seconds": seconds,
            "cpu_seconds": cpu,
            "delta_peak_mb": (peaks[0] - base) / 2**20,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "inputs_mb": (real.nbytes + fake.nbytes) / 2**20,
            **values,
        }
    )


def _run_one(impl: str, n: int, d: int, k: int, data: str = "clustered") -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(impl, n, d, k, data, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return {"impl": impl, "data": data, "n_real": n, "n_fake": n, "dim": d, "k": k, **out}


def _fastest(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = min(runs, key=lambda row: row["seconds"])
    return {**best, "repeats": len(runs), "all_seconds": [row["seconds"] for row in runs]}


def _measurements(
    quick: bool, repeats: int = 1, data: tuple[str, ...] = ("clustered",), large: bool = True
) -> Iterator[dict[str, Any]]:
    n, d, k = (2000, 256, 5) if quick else (10_000, 1024, 5)
    for kind in data:
        ours_runs, peer_runs = [], []
        for _ in range(repeats):  # interleaved, so both see the same load on a shared machine
            ours_runs.append(_run_one("workbench", n, d, k, kind))
            peer_runs.append(_run_one("prdc", n, d, k, kind))
        ours, peer = _fastest(ours_runs), _fastest(peer_runs)
        ours["ratio"] = peer["seconds"] / ours["seconds"]
        ours["max_abs_diff_vs_prdc"] = max(abs(ours[key] - peer[key]) for key in KEYS)
        yield ours
        yield peer
    if not quick and large:
        yield _fastest([_run_one("workbench", 50_000, d, k, data[0])])


def run(quick: bool = False, repeats: int = 1) -> list[dict[str, Any]]:
    """Run the comparison (and, at full size, the 50,000 case); one dict per measurement.

    ``repeats`` > 1 runs the 10,000 (or quick) case that many times per implementation, each in
    a fresh process, and keeps the fastest: on a shared machine the minimum is the least
    disturbed measurement.
    """
    return list(_measurements(quick, repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 x 2,000 x 256 only (seconds)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of the comparison; fastest kept")
    parser.add_argument("--busy", type=int, default=0, help="other processes spinning on a core during the run")
    parser.add_argument(
        "--data", choices=[*DATA, "both"], default="clustered", help="feature kind (default: clustered)"
    )
    parser.add_argument("--no-large", action="store_true", help="skip the 50,000 x 50,000 run of ours")
    args = parser.parse_args()
    data = DATA if args.data == "both" else (args.data,)
    print(f"busy={args.busy} (other processes spinning); load={os.getloadavg()[0]:.1f}", flush=True)
    with busy_cores(args.busy):
        rate_before = product_rate()
        rows = list(_measurements(quick=args.quick, repeats=args.repeats, data=data, large=not args.no_large))
        rate_after = product_rate()
    print(
        "float32 product rate (2048^2 x 1024, median / best GFLOP/s): "
        f"before {rate_before[0]:.0f} / {rate_before[1]:.0f}, after {rate_after[0]:.0f} / {rate_after[1]:.0f} "
        "(a quiet run here: about 170-185; lower means other jobs slowed the products of both sides)",
        flush=True,
    )
    for row in rows:
        extra = ""
        if "ratio" in row:
            extra = f"  ratio(prdc/ours) {row['ratio']:.1f}x  max|diff| {row['max_abs_diff_vs_prdc']:.2g}"
        runs = ", ".join(f"{t:.1f}" for t in row["all_seconds"])
        print(
            f"{row['impl']:9s} {row['data']:9s} {row['n_real']}x{row['n_fake']}x{row['dim']} k={row['k']}: "
            f"{row['seconds']:8.2f} s (runs: {runs}; CPU {row['cpu_seconds']:.1f} s)  "
            f"peak +{row['delta_peak_mb']:5.0f} MB over inputs "
            f"({row['inputs_mb']:.0f} MB; process peak {row['peak_rss_mb']:.0f} MB)  "
            + "  ".join(f"{key[0].upper()}={row[key]:.4f}" for key in KEYS)
            + extra,
            flush=True,
        )


if __name__ == "__main__":
    main()
