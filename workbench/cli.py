"""The ``workbench`` command line: a thin shell over the Python API."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any


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
    if args.workspace is not None:
        given = [
            flag
            for flag, value in (
                ("--ref", args.ref),
                ("--gen", args.gen),
                ("--train", args.train),
                ("--test", args.test),
            )
            if value
        ]
        if given:
            raise ValueError(
                f"--workspace and {'/'.join(given)} are mutually exclusive: the workspace says which cache is the "
                "reference, the generated sets, train and test; give either --workspace DIR or --ref/--gen caches"
            )
        return _metrics_of_workspace(args)
    if args.extractor or args.recompute:
        raise ValueError(
            "--extractor and --recompute choose among a workspace's saved reports; use them with --workspace DIR"
        )
    if not args.ref or not args.gen:
        raise ValueError(
            "give the reference cache and the generated ones (--ref CACHE --gen [NAME=]CACHE ...), "
            "or a workspace (--workspace DIR)"
        )
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
        print(
            f"workbench: error: no metric could be computed ({len(report.errors)} failed; first: {first})",
            file=sys.stderr,
        )
        return 2
    return 0


def _metrics_of_workspace(args: argparse.Namespace) -> int:
    """``workbench metrics --workspace DIR``: one table per extractor, every generated set against
    the reference (with train/test where the workspace has them); the JSON holds every report."""
    from .workspace import Workspace, workspace_reports

    ws = Workspace.open(args.workspace)
    names = list(dict.fromkeys(args.extractor)) if args.extractor else None
    if names is None:
        names = []
        for e in ws.extractors:
            if not ws.has(ws.reference, e):
                print(
                    f"note: extractor {e!r} is left out: the reference set {ws.reference!r} has no cache by it",
                    file=sys.stderr,
                )
            elif not any(ws.has(g, e) for g in ws.generated):
                print(f"note: extractor {e!r} is left out: no generated set has a cache by it", file=sys.stderr)
            else:
                names.append(e)
        if not names:
            raise ValueError(
                f"no extractor of {ws.root} has caches of both the reference set {ws.reference!r} and a "
                f"generated set (generated sets: {ws.generated or 'none'}); see `workbench workspace "
                f"show {ws.root}`"
            )
    reports = {}
    for ext in names:
        say = (
            None
            if args.quiet
            else (lambda msg, ext=ext: print(f"  {ext}: computing {msg}", file=sys.stderr, flush=True))
        )
        reports.update(
            workspace_reports(
                ws,
                extractors=[ext],
                metrics=args.metrics,
                bootstrap=args.bootstrap,
                seed=args.seed,
                progress=say,
                reuse=not args.recompute,
            )
        )
    roles = ", ".join(
        f"{r}: {s}" for r, s in (("reference", ws.reference), ("train", ws.train), ("test", ws.test)) if s
    )
    for i, (ext, report) in enumerate(reports.items()):
        print(("\n" if i else "") + f"== {ext} ({roles}) ==")
        print(report)
    if args.json:
        data = {
            "workspace": str(ws.root),
            "reference": ws.reference,
            "train": ws.train,
            "test": ws.test,
            "generated": ws.generated,
            "extractors": {e: r.to_json() for e, r in reports.items()},
        }
        with open(args.json, "w") as fh:
            json.dump(data, fh, indent=2)
        print(f"wrote {args.json}", file=sys.stderr)
    if not any(r.computed for r in reports.values()):
        failed = [(e, m) for e, r in reports.items() for m in r.errors.values()]
        first = f"{failed[0][0]}: {failed[0][1]}" if failed else "no report"
        print(
            f"workbench: error: no metric could be computed under any extractor ({len(failed)} failed; first: {first})",
            file=sys.stderr,
        )
        return 2
    return 0


def _cmd_workspace_init(args: argparse.Namespace) -> int:
    from .workspace import init_workspace, workspace_overview

    index = init_workspace(args.dir, scan=args.scan)
    print(
        f"created {index.path}"
        + (f" listing {len(index.entries)} cache(s) found under {index.root}" if args.scan else "")
    )
    if index.entries:
        print(workspace_overview(index.root).format())
    return 0


def _cmd_workspace_add(args: argparse.Namespace) -> int:
    from .workspace import add_caches
    from .workspace.index import stored_path

    result = add_caches(args.dir, args.caches, set_name=args.set, role=args.role, extractor=args.extractor)
    root = result.index.root
    for e in result.added:
        print(f"added    {e.set} ({e.role}) x {e.extractor}: {stored_path(e.path, root)}")
    for e in result.already_listed:
        print(f"listed   {e.set} ({e.role}) x {e.extractor}: {stored_path(e.path, root)} (already in the workspace)")
    return 0


def _cmd_workspace_show(args: argparse.Namespace) -> int:
    from .workspace import workspace_overview

    overview = workspace_overview(args.dir)
    print(json.dumps(overview.to_json(), indent=2) if args.json else overview.format())
    return 0


def _add_workspace_command(sub: Any) -> None:
    """``workbench workspace init|add|show``: build a workspace from caches and look at it."""
    from .workspace.roles import ROLES

    w = sub.add_parser(
        "workspace",
        help="create a workspace of caches (sets with roles x extractors), add caches, show it",
        description="A workspace is a folder whose workspace.json lists embedding caches by (set, extractor), "
        "each set with one role: one reference (the real images), optional train and test, the generated sets, "
        "pool sets (listed, not compared). `workbench metrics --workspace DIR` and the dashboard read it.",
    )
    wsub = w.add_subparsers(dest="workspace_command", metavar="ACTION")
    w.set_defaults(func=lambda args: (w.print_help(), 0)[1])

    p = wsub.add_parser(
        "init",
        help="create DIR/workspace.json (empty, or listing the caches under DIR)",
        description="Create DIR (if needed) and an empty DIR/workspace.json; an existing one is kept.",
    )
    p.add_argument("dir", metavar="DIR", help="the workspace folder")
    p.add_argument(
        "--scan",
        action="store_true",
        help="list the complete caches already under DIR (named by their source; roles guessed from the "
        "set names: reference/real/ref, train, test/heldout, else generated)",
    )
    p.set_defaults(func=_cmd_workspace_init)

    p = wsub.add_parser(
        "add",
        help="add caches to DIR/workspace.json (checked)",
        description="Add one or more caches. Checked before anything is written: each cache opens, the role is "
        "known and a set keeps one role, one cache per (set, extractor), at most one reference set, and caches "
        "listed under one extractor name were made with the same settings. Paths inside DIR are stored relative "
        "to it. Without --set each cache joins the set named by its source (workbench extract --name).",
    )
    p.add_argument("dir", metavar="DIR", help="the workspace folder (see `workbench workspace init`)")
    p.add_argument("caches", metavar="CACHE", nargs="+", help="cache folder(s) made by `workbench extract`")
    p.add_argument(
        "--set", default=None, metavar="NAME", help="the set the caches belong to (default: each cache's source name)"
    )
    p.add_argument(
        "--role",
        default=None,
        metavar="ROLE",
        help=f"the set's role: {', '.join(ROLES)} (default: its role in the workspace, else guessed from its name)",
    )
    p.add_argument(
        "--extractor",
        default=None,
        metavar="NAME",
        help="list the caches under this extractor name (default: the cache's extractor name); needed "
        "for a second configuration of one extractor",
    )
    p.set_defaults(func=_cmd_workspace_add)

    p = wsub.add_parser(
        "show",
        help="sets x extractors with roles, sizes, pretrained flags and warnings",
        description="Show what DIR holds (its workspace.json, else the caches found by scanning) "
        "without computing anything, and what would make its metrics fail or mislead.",
    )
    p.add_argument("dir", metavar="DIR", help="the workspace folder")
    p.add_argument("--json", action="store_true", help="print the overview as JSON")
    p.set_defaults(func=_cmd_workspace_show)


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
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an error (accepted anywhere on the command line)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "extract",
        help="extract embeddings of an image source into a cache (resumable)",
        description="Extract embeddings of SOURCE (folder, class folders, .zip, .npz) into a cache "
        "directory inside --out. Re-running reuses a complete cache and resumes an interrupted one.",
    )
    p.add_argument("source", help="image folder, folder of class folders, .zip of images, or .npz (arr_0)")
    p.add_argument(
        "--extractor",
        "-e",
        default="inception",
        help="extractor name (see `workbench extractors`) or module:factory (default: inception)",
    )
    p.add_argument(
        "--weights",
        "-w",
        default="default",
        help="'default' (published weights), a local weights file, or 'none' (random init, tests only)",
    )
    p.add_argument(
        "--out", "-o", default="workspace/caches", help="workspace folder for caches (default: workspace/caches)"
    )
    p.add_argument("--batch-size", "-b", type=_positive_int, default=64, help="images per forward pass (default: 64)")
    p.add_argument("--device", "-d", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument(
        "--workers",
        type=_non_negative_int,
        default=None,
        help="data-loading worker processes (default: cores - 1, max 4)",
    )
    p.add_argument("--limit", "-n", type=_positive_int, default=None, help="only the first N images")
    p.add_argument(
        "--thumbnails", type=_non_negative_int, default=64, help="thumbnail side in pixels, 0 for none (default: 64)"
    )
    p.add_argument("--shard", default=None, help="I/N: fill only shard I (0-based) of N, for N parallel workers")
    p.add_argument("--chunk-size", type=_positive_int, default=2048, help="images per resumable chunk (default: 2048)")
    p.add_argument(
        "--labels",
        choices=["auto", "folders", "none"],
        default="auto",
        help="class labels from first-level folders (default: auto)",
    )
    p.add_argument("--name", default=None, help="name of the source in the cache directory name")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extractor option, e.g. model=ViT-B-16 (repeatable)",
    )
    p.add_argument(
        "--max-pixels",
        type=_positive_int,
        default=None,
        metavar="N",
        help="skip (and list) images larger than N pixels, width x height (default: 8192 x 8192)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace a finished cache in the same folder that was made from other images or settings",
    )
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="stop at once instead of waiting when another process is writing the same cache",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars or messages; print only the cache path")
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser("info", help="summarise a cache", description="Summarise an embedding cache.")
    p.add_argument("cache", help="cache directory")
    p.add_argument("--verify", action="store_true", help="re-hash every file against the manifest")
    p.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "metrics",
        help="compute metrics of generated caches against a reference cache, or of a whole workspace",
        description="One row per generated set. All caches must come from the same extractor, weights and "
        "preprocessing. Metrics: fd, fd_inf, kd, cmmd, prdc, pr, swd, vendi, is, authpct, ct, mifid, fld. "
        "A metric that fails for one set shows ERROR(n) in its cell, with the message under the table and "
        "in the JSON; the other cells stand. Exit status 0 when at least one value was computed, 2 when "
        "none could be. With --workspace DIR: one table per extractor of the workspace, every generated set "
        "against its reference (and train/test set), saved in DIR/.workbench and reused while the caches "
        "are unchanged.",
    )
    p.add_argument("--ref", default=None, help="reference (real) cache")
    p.add_argument("--gen", default=[], action="append", metavar="[NAME=]CACHE", help="generated cache (repeatable)")
    p.add_argument(
        "--workspace",
        default=None,
        metavar="DIR",
        help="every generated set of the workspace DIR under every extractor (instead of --ref/--gen)",
    )
    p.add_argument(
        "--extractor",
        action="append",
        default=[],
        metavar="NAME",
        help="with --workspace: only this extractor (repeatable; default: every extractor)",
    )
    p.add_argument(
        "--recompute", action="store_true", help="with --workspace: compute again instead of reading saved reports"
    )
    p.add_argument("--train", default=None, help="training-set cache (memorization metrics)")
    p.add_argument("--test", default=None, help="held-out real cache (ct, fld)")
    p.add_argument(
        "--metrics",
        "-m",
        default="default",
        help="comma list of names, 'default' and/or 'all' (e.g. default,cmmd; repeats count once) (default: default)",
    )
    p.add_argument("--bootstrap", type=int, default=0, help="bootstrap replicates for 95%% intervals (default: 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of subsets, projections and bootstrap (default: 0)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the numbers as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress messages")
    p.set_defaults(func=_cmd_metrics)

    p = sub.add_parser("extractors", help="list registered feature extractors")
    p.set_defaults(func=_cmd_extractors)

    _add_workspace_command(sub)

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
