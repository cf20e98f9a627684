"""Shared measuring helpers of the benchmark scripts: time, tracemalloc peak and sampled RSS peak."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any


def _rss_anon_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(fn: Callable[[], Any]) -> tuple[Any, float, float, float]:
    """Run ``fn`` once: (result, seconds, tracemalloc peak MiB, sampled anonymous-RSS peak MiB)."""
    gc.collect()
    base = _rss_anon_bytes()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_anon_bytes())
            stop.wait(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        out = fn()
    finally:
        seconds = time.perf_counter() - t0
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        stop.set()
        sampler.join()
    peak[0] = max(peak[0], _rss_anon_bytes())
    return out, seconds, traced / 2**20, (peak[0] - base) / 2**20


def print_table(rows: list[dict], columns: list[str], digits: int = 4) -> None:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.{digits}g}"
        return "" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


# ----------------------------------------------------------------------------- data


def _spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def busy_cores(n: int) -> Iterator[None]:
    """Keep ``n`` other processes spinning on the CPU for the block (a busy shared machine)."""
    procs = [multiprocessing.get_context("spawn").Process(target=_spin, daemon=True) for _ in range(n)]
    for p in procs:
        p.start()
    time.sleep(0.5 if procs else 0)
    try:
        yield
    finally:
        for p in procs:
            p.terminate()
            p.join()


def product_rate(seconds: float = 3.0, size: int = 2048, depth: int = 1024) -> tuple[float, float]:
    """Float32 matrix-product rate of this process now, in GFLOP/s: ``(median, best)`` of
    ``size x depth`` times ``depth x size`` products run for about ``seconds``.

    Printed before and after a race: on a shared machine the products (most of a k-NN metric's
    time) run slower when other jobs load the memory system, and this says how much a run was
    disturbed (ratios of one run stay comparable; times across runs do not).
    """
    import torch

    a, b = torch.randn(size, depth), torch.randn(depth, size)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)
    rates = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(rates) < 3:
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        rates.append(2.0 * size * size * depth / (time.perf_counter() - t0) / 1e9)
    rates.sort()
    return rates[len(rates) // 2], rates[-1]
