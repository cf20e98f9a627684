"""The ``workbench demo`` sub-command (hooked into :mod:`workbench.cli` by :func:`add_demo_command`)."""

from __future__ import annotations

import argparse
from typing import Any


def _cmd_demo(args: argparse.Namespace) -> int:
    from .build import build_demo, summary_text

    ws = build_demo(args.out, seed=args.seed, force=args.force, small=args.small, progress=not args.quiet)
    print(summary_text(ws))
    return 0


def add_demo_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``demo`` to the ``workbench`` sub-command parsers; returns its parser."""
    p = subparsers.add_parser(
        "demo",
        help="build the demo workspace (trained extractors, zoo of flawed generated sets, caches)",
        description="Build a demo workspace offline from Fashion-MNIST: train a small classifier "
        "(demo-classifier) and a label-free autoencoder (demo-ssl), generate a zoo of sets with known "
        "flaws (ideal, memorizer, mode-dropper, blurry, vae, hist-matched), and cache every set under "
        "pixels, demo-classifier and demo-ssl. Also a domain workspace (OUT/domain): a classifier trained on "
        "five tops only (demo-foreign) judges the five other classes, with a VAE pool and its Top-1/Top-2 "
        "histogram-matched resamples cached under all four extractors. A second run reuses everything that "
        "is unchanged; an "
        "interrupted run continues where it stopped.",
    )
    p.add_argument(
        "--out", "-o", default=None, help="workspace folder (default: workspace/demo or $WORKBENCH_DEMO_DIR)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the splits, training and generated sets (default: 0)")
    p.add_argument("--force", action="store_true", help="rebuild everything instead of reusing")
    p.add_argument(
        "--small", action="store_true", help="a reduced demo (20,000 training images, 500 per set) in about 2 minutes"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no extraction progress bars")
    p.set_defaults(func=_cmd_demo)
    return p
