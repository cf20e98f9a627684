"""The Top-N matching experiment on the demo's domain over several build seeds (issue: FID's class
effect with a classifier whose classes are foreign to the images).

For each seed it builds a demo workspace (the small one by default, ``--full`` for the full one)
into a fresh temporary folder (or ``--keep DIR/seed-S``), then on the domain workspace
(``<demo>/domain``: trousers, sandals, sneakers, bags, ankle boots, which ``demo-foreign`` never
saw) matches the VAE pool's Top-N histogram under ``demo-foreign`` to the reference's and prints,
per N and extractor, the FD of the whole pool with uniform weights and with the matching weights
and the relative change, with percentile bootstrap intervals
(:func:`workbench.analysis.topn_matching.bootstrap_topn_matching`). A closing table gives the
mean change over the seeds and the ratio |change demo-ssl| / |change demo-foreign| (the issue's
aim: a drop of at least 10% under demo-foreign with less than a third of that change under
demo-ssl).

    .venv/bin/python benchmarks/demo_foreign.py                    # small demo, seeds 0-3
    .venv/bin/python benchmarks/demo_foreign.py --full --seeds 0   # the full demo
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def run_seed(out: Path, seed: int, full: bool, n_boot: int) -> pd.DataFrame:
    from workbench.analysis.topn_matching import bootstrap_topn_matching
    from workbench.demo import DemoConfig, build_demo
    from workbench.demo.domain import DOMAIN_DIR
    from workbench.metrics.validation import SampleSizeWarning
    from workbench.workspace import Workspace

    t0 = time.perf_counter()
    build_demo(out, seed=seed, config=DemoConfig() if full else DemoConfig.small(), progress=False, log=lambda m: None)
    built = time.perf_counter() - t0
    ws = Workspace.open(out / DOMAIN_DIR)
    rows = []
    t1 = time.perf_counter()
    for n in (1, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SampleSizeWarning)
            table = bootstrap_topn_matching(
                ws.cache("reference", "demo-foreign"),
                ws.cache("vae-pool", "demo-foreign"),
                {
                    e: (ws.cache("reference", e), ws.cache("vae-pool", e))
                    for e in ("demo-foreign", "demo-ssl", "pixels")
                },
                n=n,
                n_boot=n_boot,
                seed=seed,
            )
        rows.append(table.assign(seed=seed, top_n=n))
    print(f"seed {seed}: build {built:.1f} s, bootstrap {time.perf_counter() - t1:.1f} s", flush=True)
    return pd.concat(rows, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="the full demo instead of the small one")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3], help="build seeds (default: 0 1 2 3)")
    parser.add_argument("--n-boot", type=int, default=100, help="bootstrap replicates (default: 100)")
    parser.add_argument("--keep", default=None, help="build into KEEP/seed-S and keep it (default: a temporary folder)")
    args = parser.parse_args()
    print(f"demo domain Top-N matching ({'full' if args.full else 'small'}); load={os.getloadavg()[0]:.1f}", flush=True)
    pd.set_option("display.width", 200)
    tables = []
    for seed in args.seeds:
        if args.keep:
            tables.append(run_seed(Path(args.keep) / f"seed-{seed}", seed, args.full, args.n_boot))
        else:
            with tempfile.TemporaryDirectory(prefix="wb-demo-foreign-") as tmp:
                tables.append(run_seed(Path(tmp), seed, args.full, args.n_boot))
        t = tables[-1]
        for _, r in t.iterrows():
            print(
                f"  Top-{r['top_n']} {r['extractor']:<13s} FD {r['fd_original']:9.3f} -> {r['fd_weighted']:9.3f}"
                f"  change {r['weighted_relative_change']:+7.1%}  [{r['change_low']:+.1%}, {r['change_high']:+.1%}]",
                flush=True,
            )
    allt = pd.concat(tables, ignore_index=True)
    summary = allt.pivot_table(index=["top_n", "seed"], columns="extractor", values="weighted_relative_change")
    summary["|ssl| / |foreign|"] = summary["demo-ssl"].abs() / summary["demo-foreign"].abs()
    print(summary.round(4).to_string())
    mean = allt.groupby(["top_n", "extractor"])["weighted_relative_change"].agg(["mean", "min", "max"])
    print(mean.round(4).to_string())
    for n, part in summary.groupby(level="top_n"):
        ok = (part["demo-foreign"] <= -0.10) & (part["|ssl| / |foreign|"] < 1 / 3)
        print(f"Top-{n}: aim (foreign <= -10% and |ssl| < |foreign| / 3) met in {int(ok.sum())} of {len(part)} seeds")
    print("mean changes:", np.round(summary.groupby(level="top_n").mean().to_numpy(), 4).tolist())


if __name__ == "__main__":
    main()
