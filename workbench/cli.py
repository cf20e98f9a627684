"""The ``workbench`` command line: a thin shell over the Python API."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence


def _parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``["model=ViT-B-16", "size=32"]`` -> ``{"model": "ViT-B-16", "size": 32}`` (JSON values allowed)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--option expects KEY=VALUE (e.g. --option model=ViT-B-16), got {pair!r}")
        if key in out:
            raise ValueError(f"--option {key} is given twice; give each option once")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _int_at_least(low: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low``; argparse turns a bad value into a usage error (exit 2)."""

    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise ValueError(text)
        return value

    parse.__name__ = what  # argparse names the type in its message: "invalid positive integer value"
    return parse


_positive_int = _int_at_least(1, "positive integer")
_non_negative_int = _int_at_least(0, "non-negative integer")


def _cmd_extract(args: argparse.Namespace) -> int:
    from .cache import extract

    cache = extract(
        args.source,
        args.extractor,
        out=args.out,
        weights=args.weights,
        device=args.device,
        batch_size=args.batch_size,
        num_workers=args.workers,
        limit=args.limit,
        thumbnails=args.thumbnails,
        shard=args.shard,
        chunk_size=args.chunk_size,
        labels=args.labels,
        name=args.name,
        progress=not args.quiet,
        extractor_options=_parse_options(args.option),
        max_pixels=args.max_pixels,
        force=args.force,
        wait=not args.no_wait,
    )
    print(cache.path)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .cache import open_cache

    cache = open_cache(args.cache)
    if args.verify:
        cache.verify()
    if args.json:
        print(json.dumps(cache.manifest, indent=2))
    else:
        print(cache.summary())
        if args.verify:
            print("verified   every file matches the SHA-256 in the manifest")
    return 0


def _cmd_metrics(args: argparse.Namespace) -> int:
    """Print the metric table (failed cells marked, their errors listed beneath) and write the JSON.

    Exit status 0 when at least one value was computed, 2 when nothing could be computed (every
    cell failed; the table and JSON are still written).
    """
    from .metrics.from_caches import evaluate_caches

    gens: dict[str, str] = {}
    for item in args.gen:
        name, sep, path = item.partition("=")
        if not sep:
            name, path = "", item
        name = name or f"gen{len(gens)}"
        if name in gens:
            raise ValueError(
                f"duplicate --gen name {name!r} (for {gens[name]} and {path}); give each generated set its own "
                "name, e.g. --gen A=... --gen B=..."
            )
        gens[name] = path
    unnamed = all(not item.partition("=")[1] for item in args.gen)
    say = None if args.quiet else (lambda msg: print(f"  computing {msg}", file=sys.stderr, flush=True))
    report = evaluate_caches(
        args.ref,
        list(gens.values()) if unnamed else gens,
        train=args.train,
        test=args.test,
        metrics=args.metrics,
        bootstrap=args.bootstrap,
        seed=args.seed,
        progress=say,
    )
    print(report)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report.to_json(), fh, indent=2)
        print(f"wrote {args.json}", file=sys.stderr)
    if report.errors and not report.computed:
        first = next(iter(report.errors.values()))
        print(f"workbench: error: no metric could be computed ({len(report.errors)} failed; first: {first})",
              file=sys.stderr)
        return 2
    return 0


def _cmd_extractors(args: argparse.Namespace) -> int:
    from .extractors import list_extractors

    for name, desc in list_extractors().items():
        print(f"{name:16s} {desc}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Generative Evaluation Workbench: cache embeddings of real and generated images, "
        "compute metrics, and explore them.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (accepted anywhere on the command line)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "extract",
        help="extract embeddings of an image source into a cache (resumable)",
        description="Extract embeddings of SOURCE (folder, class folders, .zip, .npz) into a cache "
        "directory inside --out. Re-running reuses a complete cache and resumes an interrupted one.",
    )
    p.add_argument("source", help="image folder, folder of class folders, .zip of images, or .npz (arr_0)")
    p.add_argument("--extractor", "-e", default="inception", help="extractor name (see `workbench extractors`) or module:factory (default: inception)")
    p.add_argument("--weights", "-w", default="default", help="'default' (published weights), a local weights file, or 'none' (random init, tests only)")
    p.add_argument("--out", "-o", default="workspace/caches", help="workspace folder for caches (default: workspace/caches)")
    p.add_argument("--batch-size", "-b", type=_positive_int, default=64, help="images per forward pass (default: 64)")
    p.add_argument("--device", "-d", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--workers", type=_non_negative_int, default=None, help="data-loading worker processes (default: cores - 1, max 4)")
    p.add_argument("--limit", "-n", type=_positive_int, default=None, help="only the first N images")
    p.add_argument("--thumbnails", type=_non_negative_int, default=64, help="thumbnail side in pixels, 0 for none (default: 64)")
    p.add_argument("--shard", default=None, help="I/N: fill only shard I (0-based) of N, for N parallel workers")
    p.add_argument("--chunk-size", type=_positive_int, default=2048, help="images per resumable chunk (default: 2048)")
    p.add_argument("--labels", choices=["auto", "folders", "none"], default="auto", help="class labels from first-level folders (default: auto)")
    p.add_argument("--name", default=None, help="name of the source in the cache directory name")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="extractor option, e.g. model=ViT-B-16 (repeatable)")
    p.add_argument("--max-pixels", type=_positive_int, default=None, metavar="N",
                   help="skip (and list) images larger than N pixels, width x height (default: 8192 x 8192)")
    p.add_argument("--force", action="store_true",
                   help="replace a finished cache in the same folder that was made from other images or settings")
    p.add_argument("--no-wait", action="store_true",
                   help="stop at once instead of waiting when another process is writing the same cache")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars or messages; print only the cache path")
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser("info", help="summarise a cache", description="Summarise an embedding cache.")
    p.add_argument("cache", help="cache directory")
    p.add_argument("--verify", action="store_true", help="re-hash every file against the manifest")
    p.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "metrics",
        help="compute metrics of generated caches against a reference cache",
        description="One row per generated set. All caches must come from the same extractor, weights and "
        "preprocessing. Metrics: fd, fd_inf, kd, cmmd, prdc, pr, swd, vendi, is, authpct, ct, mifid, fld. "
        "A metric that fails for one set shows ERROR(n) in its cell, with the message under the table and "
        "in the JSON; the other cells stand. Exit status 0 when at least one value was computed, 2 when "
        "none could be.",
    )
    p.add_argument("--ref", required=True, help="reference (real) cache")
    p.add_argument("--gen", required=True, action="append", metavar="[NAME=]CACHE", help="generated cache (repeatable)")
    p.add_argument("--train", default=None, help="training-set cache (memorization metrics)")
    p.add_argument("--test", default=None, help="held-out real cache (ct, fld)")
    p.add_argument("--metrics", "-m", default="default", help="comma list of names, 'default' and/or 'all' "
                   "(e.g. default,cmmd; repeats count once) (default: default)")
    p.add_argument("--bootstrap", type=int, default=0, help="bootstrap replicates for 95%% intervals (default: 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of subsets, projections and bootstrap (default: 0)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the numbers as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress messages")
    p.set_defaults(func=_cmd_metrics)

    p = sub.add_parser("extractors", help="list registered feature extractors")
    p.set_defaults(func=_cmd_extractors)

    from .demo.cli import add_demo_command

    add_demo_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    args = parser.parse_args([a for a in argv if a != "--debug"])
    args.debug = debug
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("\nworkbench: interrupted; finished chunks are kept — re-run the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"workbench: error: {error_line(exc)}", file=sys.stderr)
        return 2


def error_line(exc: BaseException) -> str:
    """One line for the user: the message of an expected error, the type too for an unexpected one."""
    from .cache import CacheError
    from .images import ImageDecodeError

    msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    msg = " ".join(str(msg).split())  # one line, whatever the library put in it
    if isinstance(exc, OSError) and not isinstance(exc, (CacheError, ImageDecodeError)):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or msg}"
    expected = (CacheError, ImageDecodeError, FileNotFoundError, KeyError, ValueError, TypeError, RuntimeError)
    if isinstance(exc, expected):
        return msg
    return f"{type(exc).__name__}: {msg} (this looks like a bug; re-run with --debug for the traceback)"


if __name__ == "__main__":
    sys.exit(main())
