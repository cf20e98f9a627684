"""All metric benchmarks in one run: ours vs the peers on the same features, value differences,
time ratios and peak memory.

    .venv/bin/python benchmarks/metrics_vs_peers.py            # full sizes (tens of minutes on 2 cores)
    .venv/bin/python benchmarks/metrics_vs_peers.py --quick    # small sizes, a minute or two

Sections (each also runs alone): metrics_frechet (FD distance step at d=2048 vs pytorch-fid,
clean-fid, torchmetrics, torch-fidelity; streaming statistics of a 50,000 x 2048 memmap),
metrics_kernel (KID vs torch-fidelity / torchmetrics / clean-fid, CMMD), metrics_prdc (PRDC vs
prdc at 10,000 and ours at 50,000), metrics_misc (Vendi, IS, SWD, C_T, FLD, bootstrap at 50,000 x 1024).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import metrics_frechet
import metrics_kernel
import metrics_misc
import metrics_prdc

SECTIONS = {
    "frechet": lambda quick: metrics_frechet.run(quick),
    "kernel": lambda quick: metrics_kernel.run(quick),
    "prdc": lambda quick: metrics_prdc.run(quick),
    "misc": lambda quick: metrics_misc.run(quick),
}


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--only", nargs="*", choices=list(SECTIONS), help="run only these sections")
    parser.add_argument("--json", default=None, help="write every row as JSON here")
    args = parser.parse_args()
    results: dict[str, list[dict]] = {}
    for name in args.only or SECTIONS:
        t0 = time.perf_counter()
        print(f"\n=== {name} ===", flush=True)
        rows = SECTIONS[name](args.quick)
        results[name] = rows
        for row in rows:
            print("  " + ", ".join(f"{k}={_fmt(v)}" for k, v in row.items()), flush=True)
        print(f"  ({time.perf_counter() - t0:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
