"""Wall time of the demo build on a quiet machine and with other processes spinning (issue target:
with one competing process, at most 2x the quiet time).

The build (training the demo's four networks, generating the sets of the main workspace and of
its domain, extracting every cache and the metric tables) runs in a fresh process each time, into
a fresh folder, first quietly, then with ``--busy N`` other processes each spinning on a core
(``benchmarks/measure.py``). It prints wall and CPU seconds of each build and the ratio loaded /
quiet. The demo uses one torch/BLAS thread
(``DemoConfig.threads``), so a competing process takes a core it does not use; oversubscribed
threads were what made it crawl (344.8 s wall for 42.8 s CPU before the thread policy).

    .venv/bin/python benchmarks/demo_build.py            # the small demo (about 1-2 minutes each)
    .venv/bin/python benchmarks/demo_build.py --full     # the full demo (several minutes each)
    .venv/bin/python benchmarks/demo_build.py --full --busy 0   # the full demo, quiet run only
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from measure import busy_cores


def _build(out: str, full: bool, queue: Any) -> None:
    from workbench.demo import DemoConfig, build_demo

    config = DemoConfig() if full else DemoConfig.small()
    t0 = time.perf_counter()
    build_demo(Path(out), config=config, progress=False, log=lambda _msg: None)
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime
    queue.put({"wall": wall, "cpu": cpu})


def _run(full: bool) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    with tempfile.TemporaryDirectory(prefix="wb-demo-bench-") as out:
        proc = ctx.Process(target=_build, args=(out, full, queue))
        proc.start()
        result = queue.get()
        proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="the full demo instead of the small one")
    parser.add_argument(
        "--busy", type=int, default=1, help="competing processes of the loaded run (default: 1; 0: quiet run only)"
    )
    args = parser.parse_args()
    kind = "full" if args.full else "small"
    print(f"demo build ({kind}); load={os.getloadavg()[0]:.1f}", flush=True)
    quiet = _run(args.full)
    print(f"quiet:           {quiet['wall']:7.1f} s wall, {quiet['cpu']:7.1f} s CPU", flush=True)
    if args.busy == 0:
        return
    with busy_cores(args.busy):
        loaded = _run(args.full)
    print(f"{args.busy} spinning:      {loaded['wall']:7.1f} s wall, {loaded['cpu']:7.1f} s CPU", flush=True)
    print(f"ratio loaded/quiet: {loaded['wall'] / quiet['wall']:.2f}x (target <= 2x)", flush=True)


if __name__ == "__main__":
    main()
