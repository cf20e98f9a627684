"""Time and peak memory of Vendi, Inception Score, sliced Wasserstein, C_T, FLD and bootstrap.

Full size: 50,000 x 1024 features (IS: 50,000 x 1008 logits; C_T: 50,000 train, 10,000 test, 50,000
fake; FLD: 50,000 train, 10,000 test, 10,000 fake, its protocol). Peers are timed on the same inputs:
``vendi_score.vendi.score_dual`` and torch-fidelity's ``isc_features_to_metric`` (ratio = peer / ours).
Every measurement runs in a fresh process; ``peak_rss_mb`` is that process's peak resident memory
during the call (imports and inputs included) and ``delta_rss_mb`` the peak minus the resident memory
just before the call (the metric's own working memory).

    .venv/bin/python benchmarks/metrics_misc.py            # full size (several minutes, ~5 GB for FLD)
    .venv/bin/python benchmarks/metrics_misc.py --quick    # 2,000 x 64, seconds
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import queue as queue_module
import resource
import time
import warnings
from typing import Any

import numpy as np


def _features(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Clustered float32 features (20 Gaussian clusters), like embeddings of a 20-class dataset."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(1234).standard_normal((20, d)).astype(np.float32) * 2.0
    x = rng.standard_normal((n, d), dtype=np.float32)
    x += centres[rng.integers(0, 20, n)] + np.float32(shift)
    return x


def _logits(n: int, c: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c), dtype=np.float32) * 2.0
    x[np.arange(n), rng.integers(0, c, n)] += 8.0
    return x


def _inputs(case: str, n: int, d: int) -> tuple:
    if case in ("vendi", "vendi_score"):
        return (_features(n, d, 0),)
    if case in ("inception_score", "torch_fidelity_isc"):
        return (_logits(n, 1008, 0),)
    if case in ("sliced_wasserstein", "bootstrap_sliced_wasserstein"):
        return _features(n, d, 0), _features(n, d, 1, shift=0.1)
    if case == "ct_score":
        return _features(n, d, 0), _features(n // 5, d, 1), _features(n, d, 2)
    if case == "fld":
        return _features(n, d, 0), _features(n // 5, d, 1), _features(n // 5, d, 2)
    raise ValueError(case)


def _call(case: str, args: tuple) -> Any:
    if case == "vendi":
        from workbench.metrics.vendi import vendi

        return vendi(*args)
    if case == "vendi_score":
        from vendi_score import vendi as peer

        return peer.score_dual(*args)
    if case == "inception_score":
        from workbench.metrics.inception_score import inception_score

        return inception_score(*args)
    if case == "torch_fidelity_isc":
        import torch
        from torch_fidelity.metric_isc import isc_features_to_metric

        return isc_features_to_metric(torch.from_numpy(args[0]), splits=10, shuffle=False)
    if case == "sliced_wasserstein":
        from workbench.metrics.sliced_wasserstein import sliced_wasserstein

        return sliced_wasserstein(*args, projections=1000)
    if case == "bootstrap_sliced_wasserstein":
        from workbench.metrics.bootstrap import bootstrap
        from workbench.metrics.sliced_wasserstein import sliced_wasserstein

        return bootstrap(sliced_wasserstein, *args, n=20, projections=100).point
    if case == "ct_score":
        from workbench.metrics.ct_score import ct_score

        return ct_score(*args).c_t
    if case == "fld":
        from workbench.metrics.fld import fld

        return fld(*args).fld
    raise ValueError(case)


def _status_mb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak_rss_mb() -> float:
    """Reset the kernel's peak-RSS counter (Linux ``clear_refs`` 5) and return the current RSS in MB;
    where that is not possible, the peak so far (then ``delta_rss_mb`` understates the metric's use)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        current = _status_mb("VmRSS")
        if current is not None:
            return current
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_rss_mb() -> float:
    hwm = _status_mb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(case: str, n: int, d: int, queue: Any) -> None:
    warnings.simplefilter("ignore")
    import sklearn.cluster  # noqa: F401  imported before the baseline so imports are not counted
    import torch  # noqa: F401

    import workbench.metrics.bootstrap
    import workbench.metrics.ct_score
    import workbench.metrics.fld  # noqa: F401

    args = _inputs(case, n, d)
    try:  # warm-up on a slice: first-call costs (lazy imports, thread pools) are not the metric's
        _call(case, tuple(a[:300] for a in args))
    except ValueError:
        pass
    base = _reset_peak_rss_mb()
    t0 = time.perf_counter()
    value = _call(case, args)
    seconds = time.perf_counter() - t0
    peak = _peak_rss_mb()
    if isinstance(value, dict):
        value = value["inception_score_mean"]
    elif isinstance(value, tuple):
        value = value[0]
    queue.put({"seconds": seconds, "peak_rss_mb": peak, "delta_rss_mb": peak - base, "value": float(value)})


CASES = [
    ("vendi", "vendi_score"),
    ("inception_score", "torch_fidelity_isc"),
    ("sliced_wasserstein", None),
    ("bootstrap_sliced_wasserstein", None),
    ("ct_score", None),
    ("fld", None),
]


def _shape(case: str, n: int, d: int) -> str:
    return {
        "inception_score": f"{n}x1008 logits",
        "torch_fidelity_isc": f"{n}x1008 logits",
        "ct_score": f"train {n}, test {n // 5}, fake {n} x {d}",
        "fld": f"train {n}, test {n // 5}, fake {n // 5} x {d}",
        "sliced_wasserstein": f"{n} vs {n} x {d}, 1000 directions",
        "bootstrap_sliced_wasserstein": f"{n} vs {n} x {d}, 20 replicates x 100 directions",
    }.get(case, f"{n}x{d}")


def _run_case(case: str, n: int, d: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(case, n, d, queue))
    proc.start()
    while True:
        try:
            out = queue.get(timeout=5)
            break
        except queue_module.Empty:
            if not proc.is_alive():
                raise RuntimeError(f"benchmark case {case!r} failed (exit code {proc.exitcode})") from None
    proc.join()
    return {"metric": case, "input": _shape(case, n, d), **out}


def run(quick: bool = False, only: list[str] | None = None) -> list[dict[str, Any]]:
    """Measure every case; rows hold metric, input, seconds, peak_rss_mb, delta_rss_mb, value and, for a
    peer, ``ratio_peer_over_ours`` (peer seconds / our seconds)."""
    n, d = (2000, 64) if quick else (50_000, 1024)
    rows: list[dict[str, Any]] = []
    for ours, peer in CASES:
        if only and ours not in only:
            continue
        row = _run_case(ours, n, d)
        rows.append(row)
        if peer is not None:
            peer_row = _run_case(peer, n, d)
            peer_row["ratio_peer_over_ours"] = peer_row["seconds"] / row["seconds"]
            rows.append(peer_row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 x 64 instead of 50,000 x 1024")
    parser.add_argument("--only", nargs="*", help="subset of: " + ", ".join(c for c, _ in CASES))
    args = parser.parse_args()
    header = f"{'metric':30s} {'input':48s} {'seconds':>9s} {'peak MB':>9s} {'+MB':>8s} {'value':>12s}"
    print(header + "  peer/ours")
    for row in run(args.quick, args.only):
        ratio = f"{row['ratio_peer_over_ours']:.2f}x" if "ratio_peer_over_ours" in row else ""
        print(
            f"{row['metric']:30s} {row['input']:48s} {row['seconds']:9.2f} {row['peak_rss_mb']:9.0f} "
            f"{row['delta_rss_mb']:8.0f} {row['value']:12.5g}  {ratio}",
            flush=True,
        )


if __name__ == "__main__":
    main()
