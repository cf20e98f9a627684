"""The ``workbench`` command line: a thin shell over the Python API."""

from __future__ import annotations

import argparse
import json
import os
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
        protocol=args.protocol,
        **({"engine": "ray", "ray_address": args.ray or None} if args.ray is not None else {}),
    )
    print(cache.path)
    return 0


_PROTOCOL_HELP = (
    "reproduce a reference tool: dgm-eval, clean-fid, pytorch-fid or torch-fidelity (its resize, normalisation, "
    "image selection, subsets and random generators); default: workbench (every image, exact metrics)"
)


def _protocol_line(manifest: dict[str, Any]) -> str:
    """``protocol   NAME: description`` of a cache manifest, for ``workbench info``."""
    from .protocols import manifest_protocol, resolve_protocol

    name = manifest_protocol(manifest)
    try:
        text = resolve_protocol(name).describe()
    except ValueError:
        text = f"{name} (unknown to this workbench)"
    sample = (manifest.get("protocol") or {}).get("sample")
    if sample:
        how = (
            f"{sample['size']} of {sample['from']} images drawn with seed {sample['seed']}"
            if sample.get("drawn")
            else f"all {sample['from']} images (at most {sample['size']})"
        )
        text += f"; sample: {how}"
    return f"protocol   {text}"


def _cmd_info(args: argparse.Namespace) -> int:
    if args.workspace is not None:
        return _info_of_workspace_set(args)
    if args.extractor:
        raise ValueError("--extractor chooses among a set's caches; use it with --workspace DIR SET")
    if args.cache is None:
        raise ValueError("give a cache folder (workbench info CACHE), or a workspace and a set (--workspace DIR SET)")
    from .cache import open_cache

    cache = open_cache(args.cache)
    if args.verify:
        cache.verify()
    if args.json:
        print(json.dumps(cache.manifest, indent=2))
    else:
        print(cache.summary())
        print(_protocol_line(cache.manifest))
        if args.verify:
            print("verified   every file matches the SHA-256 in the manifest")
    return 0


def _info_of_workspace_set(args: argparse.Namespace) -> int:
    """``workbench info --workspace DIR [SET] [--extractor NAME]``: the caches of one set (all its
    extractors, or those named), or without SET the workspace's sets x extractors."""
    from .workspace import Workspace, workspace_overview

    ws = Workspace.open(args.workspace)
    if args.cache is None:
        if args.extractor:
            raise ValueError("--extractor needs a set: workbench info --workspace DIR SET --extractor NAME")
        print(
            json.dumps(workspace_overview(args.workspace).to_json(), indent=2)
            if args.json
            else workspace_overview(args.workspace).format()
        )
        return 0
    name = args.cache
    if name not in ws.sets:
        hint = " (a cache folder is given without --workspace)" if any(c in name for c in "/\\") else ""
        raise ValueError(f"no set named {name!r} in {ws.root}{hint}; sets: {', '.join(ws.sets)}")
    exts = [e.extractor for e in ws.entries if e.set == name]
    wanted = list(dict.fromkeys(args.extractor)) or exts
    missing = [e for e in wanted if e not in exts]
    if missing:
        raise ValueError(f"set {name!r} has no cache by extractor(s) {missing}; its extractors: {', '.join(exts)}")
    caches = {e: ws.cache(name, e) for e in wanted}
    if args.verify:
        for cache in caches.values():
            cache.verify()
    if args.json:
        data = {
            "workspace": str(ws.root),
            "set": name,
            "role": ws.role(name),
            "caches": {e: c.manifest for e, c in caches.items()},
        }
        print(json.dumps(data, indent=2))
        return 0
    print(f"set        {name} ({ws.role(name)}) in {ws.root}: {ws.size(name)} images, {len(exts)} extractor(s)")
    for e, cache in caches.items():
        print(f"\n== {name} x {e} ==")
        print(cache.summary())
        print(_protocol_line(cache.manifest))
        if args.verify:
            print("verified   every file matches the SHA-256 in the manifest")
    return 0


def _cmd_metrics(args: argparse.Namespace) -> int:
    """Print the metric table (failed cells marked, their errors listed beneath) and write the JSON.

    Exit status 0 when at least one value was computed, 2 when nothing could be computed (every
    cell failed; the table and JSON are still written).
    """
    if args.workspace is not None:
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
        protocol=args.protocol,
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


def _workspace_with_roles(args: argparse.Namespace) -> Any:
    """The workspace of ``args.workspace`` with ``--ref/--gen/--train/--test`` SET names applied.

    ``--ref S`` / ``--train S`` / ``--test S`` give set S that role (the set that had it before is
    listed, not compared: role ``pool``); ``--gen S ...`` shows only those generated sets (others
    become ``pool``; a set of another role named there is compared as a generated set).
    """
    from .workspace import Workspace

    ws = Workspace.open(args.workspace)
    given = [("--ref", args.ref), *(("--gen", g) for g in args.gen), ("--train", args.train), ("--test", args.test)]
    given = [(flag, value) for flag, value in given if value]
    if not given:
        return ws
    paths = [f for f, v in given if v not in ws.sets and (any(c in v for c in "/\\=") or os.path.exists(v))]
    if paths:
        flags = "/".join(dict.fromkeys(paths))
        raise ValueError(
            f"--workspace and {flags} are mutually exclusive when they give cache folders: with --workspace, "
            f"--ref/--gen/--train/--test name sets of the workspace (sets: {', '.join(ws.sets)}); give either "
            "--workspace DIR [--gen SET ...] or --ref/--gen caches"
        )
    for flag, value in given:
        if value not in ws.sets:
            raise ValueError(f"{flag} {value}: no set named {value!r} in {ws.root}; sets: {', '.join(ws.sets)}")
    chosen: dict[str, str] = {}  # set -> the flag that names it
    for flag, value in given:
        if value in chosen:
            if chosen[value] == flag == "--gen":
                raise ValueError(f"--gen {value} is given twice; name each generated set once")
            raise ValueError(f"set {value!r} is named by {chosen[value]} and {flag}; a set plays one role")
        chosen[value] = flag
    roles: dict[str, str] = {}
    for flag, role, current in (
        ("--ref", "reference", [ws.reference]),
        ("--train", "train", ws.sets_with_role("train")),
        ("--test", "test", ws.sets_with_role("test")),
        ("--gen", "generated", ws.generated),
    ):
        named = [v for v, f in chosen.items() if f == flag]
        if not named:
            continue
        for old in current:  # the set(s) that had the role are listed, not compared
            if old not in chosen:
                roles[old] = "pool"
        roles.update(dict.fromkeys(named, role))
    return Workspace.open(args.workspace, roles=roles)


def _reports_json(ws: Any, reports: dict[str, Any]) -> dict[str, Any]:
    """The JSON of ``metrics --workspace`` and ``evaluate --json``: roles and every extractor's report."""
    return {
        "workspace": str(ws.root),
        "reference": ws.reference,
        "train": ws.train,
        "test": ws.test,
        "generated": ws.generated,
        "extractors": {e: r.to_json() for e, r in reports.items()},
    }


def _nothing_computed(reports: dict[str, Any]) -> int:
    """Exit status 2 with an error line when no value of any report was computed, else 0."""
    if any(r.computed for r in reports.values()):
        return 0
    failed = [(e, m) for e, r in reports.items() for m in r.errors.values()]
    first = f"{failed[0][0]}: {failed[0][1]}" if failed else "no report"
    print(
        f"workbench: error: no metric could be computed under any extractor ({len(failed)} failed; first: {first})",
        file=sys.stderr,
    )
    return 2


def _metrics_of_workspace(args: argparse.Namespace) -> int:
    """``workbench metrics --workspace DIR``: one table per extractor, every generated set against
    the reference (with train/test where the workspace has them); the JSON holds every report.
    ``--ref/--gen/--train/--test`` name sets of the workspace (see :func:`_workspace_with_roles`)."""
    from .workspace import workspace_reports
    from .workspace.evaluate import comparable_extractors, format_reports

    if getattr(args, "protocol", None):
        raise ValueError(
            "--protocol goes with --ref/--gen caches; a workspace's tables follow the protocol its caches were "
            "extracted under (`workbench info --workspace DIR SET` shows it)"
        )
    ws = _workspace_with_roles(args)
    names = list(dict.fromkeys(args.extractor)) if args.extractor else None
    if names is None:
        names, notes = comparable_extractors(ws)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
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
    print(format_reports(ws, reports))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(_reports_json(ws, reports), fh, indent=2)
        print(f"wrote {args.json}", file=sys.stderr)
    return _nothing_computed(reports)


def _cmd_report(args: argparse.Namespace) -> int:
    """``workbench report WS [--out FILE]``: the dashboard's static HTML report of a workspace."""
    from .workspace import workspace_reports
    from .workspace.evaluate import REPORT_FILE, comparable_extractors, write_static_report

    ws = _workspace_with_roles(args)
    names, notes = comparable_extractors(ws)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    say = None if args.quiet else (lambda msg: print(f"  computing {msg}", file=sys.stderr, flush=True))
    reports = (
        workspace_reports(
            ws, extractors=names, metrics=args.metrics, bootstrap=args.bootstrap, seed=args.seed, progress=say
        )
        if names
        else {}
    )
    out = args.out if args.out is not None else ws.root / REPORT_FILE
    path, why = write_static_report(ws, out, reports, args.metrics, args.bootstrap, args.seed, heatmaps=args.heatmaps)
    if path is None:
        raise RuntimeError(why)
    print(path)
    return 0


def _named_folders(values: Sequence[str], flag: str) -> list[tuple[str, str]]:
    from .workspace.evaluate import parse_named_folder

    return [parse_named_folder(v, flag, None) for v in values]


def _one_folder(value: str | None, flag: str, default: str) -> Any:
    """``--real/--train/--test [NAME=]DIR`` as evaluate_folders takes it: the folder, or (name, folder)."""
    from .workspace.evaluate import parse_named_folder

    if value is None:
        return None
    name, folder = parse_named_folder(value, flag, default)
    return folder if name == default else (name, folder)


def _weights_arg(values: Sequence[str], names: Sequence[str]) -> str | dict[str, str]:
    """``--weights SPEC`` (every extractor) and ``--weights EXTRACTOR=SPEC`` -> evaluate_folders' ``weights``."""
    every: str | None = None
    per: dict[str, str] = {}
    for value in values:
        key, sep, spec = value.partition("=")
        if sep and key not in names and not os.path.exists(value) and not any(c in key for c in "/\\."):
            raise ValueError(
                f"--weights {value!r} names extractor {key!r}, which is not evaluated (extractors: {', '.join(names)})"
            )
        if sep and key in names:
            if key in per:
                raise ValueError(f"--weights {key}=... is given twice; give each extractor's weights once")
            per[key] = spec
        elif every is not None:
            raise ValueError(
                f"--weights {every!r} and {value!r} both apply to every extractor; name the extractor of one of them "
                f"(--weights EXTRACTOR=SPEC, extractors: {', '.join(names)})"
            )
        else:
            every = value
    if not per:
        return every or "default"
    rest = [n for n in names if n not in per]
    if every is not None and every not in ("default", "none") and len(rest) > 1:
        raise ValueError(
            f"--weights {every!r} is given for all of {', '.join(rest)}; a weights file fits one extractor: "
            f"say which, e.g. --weights {rest[0]}={every}"
        )
    return {n: per.get(n, every or "default") for n in names}


def _options_arg(values: Sequence[str], names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--option EXTRACTOR:KEY=VALUE`` (the prefix may be left out with one extractor) -> per extractor."""
    pairs: dict[str, list[str]] = {}
    for value in values:
        lhs, sep, rhs = value.partition("=")
        ext, colon, key = lhs.rpartition(":")
        if not colon:
            if len(names) != 1:
                raise ValueError(f"--option {value!r}: say which extractor it is for, e.g. --option {names[0]}:{value}")
            ext = names[0]
        if ext not in names:
            raise ValueError(f"--option {value!r} names extractor {ext!r}, which is not evaluated ({', '.join(names)})")
        pairs.setdefault(ext, []).append(f"{key}{sep}{rhs}")
    return {ext: _parse_options(items) for ext, items in pairs.items()}


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """``workbench evaluate``: folders -> caches -> workspace.json -> tables -> report.html, then what next."""
    from .workspace.evaluate import DEFAULT_EXTRACTORS, evaluate_folders, extractor_names

    names = extractor_names(",".join(args.extractor) if args.extractor else list(DEFAULT_EXTRACTORS))
    result = evaluate_folders(
        _one_folder(args.real, "--real", "real"),
        _named_folders(args.gen, "--gen"),
        train=_one_folder(args.train, "--train", "train"),
        test=_one_folder(args.test, "--test", "test"),
        extractors=names,
        out=args.out,
        weights=_weights_arg(args.weights, names),
        extractor_options=_options_arg(args.option, names),
        device=args.device,
        batch_size=args.batch_size,
        num_workers=args.workers,
        limit=args.limit,
        protocol=args.protocol,
        thumbnails=args.thumbnails,
        metrics=args.metrics,
        bootstrap=args.bootstrap,
        seed=args.seed,
        report=not args.no_report,
        report_heatmaps=args.heatmaps,
        force=args.force,
        progress=not args.quiet,
    )
    print(result.format_tables())
    print()
    print(result.summary())
    print()
    print(result.next_steps())
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(_reports_json(result.workspace, result.reports), fh, indent=2)
        print(f"wrote {args.json}", file=sys.stderr)
    return _nothing_computed(result.reports)


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


def _add_running_options(p: argparse.ArgumentParser) -> None:
    """How a model runs, for ``extract`` and ``evaluate``: ``--batch-size``, ``--device``, ``--workers``."""
    p.add_argument("--batch-size", "-b", type=_positive_int, default=64, help="images per forward pass (default: 64)")
    p.add_argument("--device", "-d", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument(
        "--workers",
        type=_non_negative_int,
        default=None,
        help="data-loading worker processes (default: cores - 1, max 4); with --ray the most model actors "
        "(default: one per GPU of the cluster, else half its CPUs)",
    )


class _KeepLinesFormatter(argparse.HelpFormatter):
    """Wraps one-line texts (descriptions) as usual and keeps texts of several lines (the metric
    list) as they are written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _add_metrics_option(p: argparse.ArgumentParser, menu: bool) -> None:
    """The ``--metrics/-m`` option of ``metrics``, ``evaluate`` and ``report``; with ``menu`` (their
    ``--help`` was asked for) the help ends with every metric name, what ``default`` holds and what
    ``all`` adds (importing the metrics, hence torch, only then)."""
    p.add_argument(
        "--metrics",
        "-m",
        default="default",
        help="comma list of metric names, 'default' and/or 'all' (e.g. default,cmmd; repeats count once); "
        "the list, and what 'default' holds, is at the end of this help (default: default)",
    )
    if menu:
        from .metrics.suite import metric_menu_text

        p.formatter_class = _KeepLinesFormatter
        p.epilog = metric_menu_text()


def _add_report_heatmaps_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--heatmaps",
        type=_non_negative_int,
        default=8,
        metavar="N",
        help="images in the report's sensitivity-heatmap section (default: 8; 0 leaves it out; "
        "about 4 s per image for Inception on a CPU)",
    )


def _add_evaluate_command(sub: Any, menu: bool = False) -> None:
    """``workbench evaluate``: folders of images -> a workspace with caches, metric tables and report."""
    p = sub.add_parser(
        "evaluate",
        help="extract folders of real, generated, training and test images into a workspace, print the "
        "metric tables, write the report",
        description="Your own models, end to end. Extracts every folder under every extractor into "
        "WORKSPACE/caches (progress shown; complete caches are reused, interrupted ones resume, as in "
        "`workbench extract`), writes WORKSPACE/workspace.json with the set names and roles (entries of the "
        "same set and extractor are replaced on a re-run, other sets are kept), prints one metric table per "
        "extractor (saved in WORKSPACE/.workbench and reused), writes WORKSPACE/report.html (the dashboard's "
        "static report) and says what to do next. Every argument is checked before anything is extracted.",
    )
    p.add_argument(
        "--real",
        required=True,
        metavar="[NAME=]DIR",
        help="the real images every metric compares to (the reference set; named 'real' unless NAME= is "
        "given); class subfolders give labels. A folder, .zip or .npz",
    )
    p.add_argument(
        "--gen",
        action="append",
        required=True,
        metavar="NAME=DIR",
        help="one model's samples (repeatable); NAME is its row in every table",
    )
    p.add_argument(
        "--train",
        default=None,
        metavar="[NAME=]DIR",
        help="the training images (memorization: AuthPct, copy detection, the memorization views; set 'train')",
    )
    p.add_argument(
        "--test",
        default=None,
        metavar="[NAME=]DIR",
        help="held-out real images never trained on (C_T; calibrates the copy flag; set 'test')",
    )
    p.add_argument(
        "--extractor",
        "-e",
        action="append",
        default=[],
        metavar="A,B",
        help="extractors, comma-separated or repeated (default: inception,dinov2; see `workbench extractors`)",
    )
    p.add_argument(
        "--weights",
        "-w",
        action="append",
        default=[],
        metavar="[EXTRACTOR=]SPEC",
        help="'default' (published), 'none' (random init, tests only) or a weights file; SPEC for every "
        "extractor or EXTRACTOR=SPEC for one (repeatable)",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="[EXTRACTOR:]KEY=VALUE",
        help="extractor option, e.g. dinov2:model=vits14 (repeatable; the prefix may be left out with one extractor)",
    )
    p.add_argument(
        "--out",
        "-o",
        default="workspace/own",
        metavar="WORKSPACE",
        help="the workspace folder (default: workspace/own); caches go to WORKSPACE/caches",
    )
    p.add_argument(
        "--limit",
        "-n",
        type=_positive_int,
        default=None,
        help="only the first N images of each folder, in path order (a quick look; not a fair sample of class folders)",
    )
    p.add_argument("--protocol", default=None, metavar="NAME", help=_PROTOCOL_HELP)
    _add_running_options(p)
    p.add_argument(
        "--thumbnails",
        type=_non_negative_int,
        default=64,
        help="thumbnail side in pixels, 0 for none (default: 64; training and test sets keep 64 px thumbnails)",
    )
    _add_metrics_option(p, menu)
    p.add_argument("--bootstrap", type=_non_negative_int, default=0, help="bootstrap replicates for 95%% intervals")
    p.add_argument("--seed", type=int, default=0, help="seed of subsets, projections and bootstrap (default: 0)")
    p.add_argument("--no-report", action="store_true", help="do not write WORKSPACE/report.html")
    _add_report_heatmaps_option(p)
    p.add_argument(
        "--force",
        action="store_true",
        help="replace finished caches in WORKSPACE/caches that were made from other images at the same paths",
    )
    p.add_argument("--json", default=None, metavar="OUT", help="also write every extractor's numbers as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars or messages")
    p.set_defaults(func=_cmd_evaluate)


def _add_report_command(sub: Any, menu: bool = False) -> None:
    """``workbench report WS [--out FILE]``: the static HTML report of a workspace."""
    p = sub.add_parser(
        "report",
        help="write the static HTML report of a workspace (opens offline)",
        description="Write the dashboard's static report of the workspace WS (metric tables, embedding map, "
        "samples, classes, memorization, extractor comparison) as one self-contained HTML file. Metric reports "
        "are read from WS/.workbench when saved, else computed and saved. --ref/--gen/--train/--test name "
        "sets of WS, as in `workbench metrics --workspace`.",
    )
    p.add_argument("workspace", metavar="WS", help="the workspace folder")
    p.add_argument("--out", "-o", default=None, metavar="FILE", help="the HTML file (default: WS/report.html)")
    _add_report_heatmaps_option(p)
    p.add_argument("--ref", default=None, metavar="SET", help="the reference set (default: the workspace's)")
    p.add_argument("--gen", default=[], action="append", metavar="SET", help="only these generated sets (repeatable)")
    p.add_argument("--train", default=None, metavar="SET", help="the training set (default: the workspace's)")
    p.add_argument("--test", default=None, metavar="SET", help="the test set (default: the workspace's)")
    _add_metrics_option(p, menu)
    p.add_argument("--bootstrap", type=_non_negative_int, default=0, help="bootstrap replicates for 95%% intervals")
    p.add_argument("--seed", type=int, default=0, help="seed of subsets, projections and bootstrap (default: 0)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress messages")
    p.set_defaults(func=_cmd_report)


def _cmd_heatmaps(args: argparse.Namespace) -> int:
    from pathlib import Path

    out = Path(args.out).expanduser()
    if out.suffix.lower() not in (".png", ".html", ".htm"):
        raise ValueError(f"--out {args.out}: the file must end in .png (an image grid) or .html (a page)")
    from .analysis.heatmaps import heatmaps_of_source
    from .cache import open_cache

    result, ids, how = heatmaps_of_source(
        args.images,
        open_cache(args.ref),
        open_cache(args.gen) if args.gen else None,
        extractor=args.extractor,
        weights=args.weights,
        metric=args.metric,
        limit=args.limit,
        layer=args.layer,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    path = result.save(out, ids=ids, alpha=args.alpha, columns=args.columns)
    if not args.quiet:
        print(f"{result.summary}; the images are {how}", file=sys.stderr)
    print(path)
    return 0


def _add_heatmaps_command(sub: Any) -> None:
    """``workbench heatmaps --ref CACHE --gen CACHE --images SOURCE --out FILE``: sensitivity heatmaps."""
    p = sub.add_parser(
        "heatmaps",
        help="where in each image the extractor sees what moves FD or KD (a PNG grid or an HTML page)",
        description="Sensitivity heatmaps (Kynkaenniemi et al. 2023, dgm-eval's --heatmaps): for each of the first "
        "--limit images of SOURCE, the map of where the extractor's heatmap layer sees what changes the metric "
        "between the reference cache and the generated cache, and the image's delta (the metric with the image "
        "minus without it). The images are rows of --gen when it was made from SOURCE, else added to it. --out "
        "FILE.png writes an image grid, FILE.html a self-contained page.",
    )
    p.add_argument("--ref", required=True, metavar="CACHE", help="the reference cache")
    p.add_argument("--gen", default=None, metavar="CACHE", help="the generated cache (default: the images alone)")
    p.add_argument("--images", required=True, metavar="SOURCE", help="the images: a folder, .zip or .npz")
    p.add_argument("--out", "-o", required=True, metavar="FILE", help="FILE.png (a grid) or FILE.html (a page)")
    p.add_argument(
        "--extractor", "-e", default=None, metavar="NAME", help="the extractor (default: the one of the caches)"
    )
    p.add_argument("--weights", "-w", default=None, metavar="SPEC", help="its weights (default: those of the caches)")
    p.add_argument("--metric", "-m", default="fd", choices=("fd", "kd"), help="the metric explained (default: fd)")
    p.add_argument("--limit", type=_positive_int, default=64, help="the first N images of SOURCE (default: 64)")
    p.add_argument("--layer", default=None, help="the layer explained (default: the extractor's heatmap_layer)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="images per pass (default: 32)")
    p.add_argument("--alpha", type=float, default=0.5, help="opacity of the maps over the images (default: 0.5)")
    p.add_argument("--columns", type=_positive_int, default=8, help="images per row of the PNG grid (default: 8)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress messages")
    p.set_defaults(func=_cmd_heatmaps)


def _cmd_extractors(args: argparse.Namespace) -> int:
    from .extractors import list_extractors

    if args.markdown:
        from .extractors.registry import registry_table

        print(registry_table(markers=True, builtin_only=True))
        return 0
    for name, desc in list_extractors().items():
        print(f"{name:16s} {desc}")
    return 0


def build_parser(metric_menu: bool = False) -> argparse.ArgumentParser:
    """The command line; ``metric_menu`` adds the list of metrics to the help of the commands with ``-m``."""
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
    _add_running_options(p)
    p.add_argument("--limit", "-n", type=_positive_int, default=None, help="only the first N images")
    p.add_argument(
        "--thumbnails", type=_non_negative_int, default=64, help="thumbnail side in pixels, 0 for none (default: 64)"
    )
    p.add_argument("--shard", default=None, help="I/N: fill only shard I (0-based) of N, for N parallel workers")
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="extract on a Ray cluster (the `distributed` extra): alone, a local Ray instance; 'auto' or "
        "HOST:PORT, a running cluster. Writes one shard per --chunk-size images; put it after SOURCE",
    )
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
    p.add_argument("--protocol", default=None, metavar="NAME", help=_PROTOCOL_HELP)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars or messages; print only the cache path")
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser(
        "info",
        help="summarise a cache, or the caches of a workspace's set",
        description="Summarise an embedding cache (workbench info CACHE), or the caches of one set of a "
        "workspace by every extractor (workbench info --workspace DIR SET [--extractor NAME]); "
        "--workspace DIR alone shows its sets x extractors.",
    )
    p.add_argument(
        "cache", nargs="?", default=None, metavar="CACHE|SET", help="cache directory, or with --workspace a set name"
    )
    p.add_argument("--workspace", default=None, metavar="DIR", help="the workspace whose set SET is summarised")
    p.add_argument(
        "--extractor",
        action="append",
        default=[],
        metavar="NAME",
        help="with --workspace: only the set's cache by this extractor (repeatable; default: all of them)",
    )
    p.add_argument("--verify", action="store_true", help="re-hash every file against the manifest")
    p.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "metrics",
        help="compute metrics of generated caches against a reference cache, or of a whole workspace",
        description="One row per generated set. All caches must come from the same extractor, weights and "
        "preprocessing (the metrics are listed at the end of this help). "
        "A metric that fails for one set shows ERROR(n) in its cell, with the message under the table and "
        "in the JSON; the other cells stand. Exit status 0 when at least one value was computed, 2 when "
        "none could be. With --workspace DIR: one table per extractor of the workspace, every generated set "
        "against its reference (and train/test set), saved in DIR/.workbench and reused while the caches "
        "are unchanged; there --ref/--gen/--train/--test take set names of the workspace: --gen SET (repeatable) "
        "shows only those sets (any set, e.g. the test set as an ideal model), --ref/--train/--test SET give a "
        "set that role (the set that had it is left out).",
    )
    p.add_argument("--ref", default=None, metavar="CACHE|SET", help="reference (real) cache; with --workspace a set")
    p.add_argument(
        "--gen",
        default=[],
        action="append",
        metavar="[NAME=]CACHE|SET",
        help="generated cache (repeatable); with --workspace a set name to show",
    )
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
    p.add_argument(
        "--train", default=None, metavar="CACHE|SET", help="training-set cache (memorization metrics); or a set"
    )
    p.add_argument("--test", default=None, metavar="CACHE|SET", help="held-out real cache (ct, fld); or a set")
    _add_metrics_option(p, metric_menu)
    p.add_argument("--bootstrap", type=int, default=0, help="bootstrap replicates for 95%% intervals (default: 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of subsets, projections and bootstrap (default: 0)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the numbers as JSON")
    p.add_argument(
        "--protocol",
        default=None,
        metavar="NAME",
        help="the protocol of the caches (default: the one they were extracted under; another is refused): "
        + _PROTOCOL_HELP,
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress messages")
    p.set_defaults(func=_cmd_metrics)

    p = sub.add_parser("extractors", help="list registered feature extractors")
    p.add_argument(
        "--markdown",
        action="store_true",
        help="print the README's table of the built-in extractors (default weights, D, feature layer, preprocessing)",
    )
    p.set_defaults(func=_cmd_extractors)

    _add_evaluate_command(sub, metric_menu)
    _add_report_command(sub, metric_menu)
    _add_heatmaps_command(sub)

    _add_workspace_command(sub)

    from .demo.cli import add_demo_command

    add_demo_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    asks_help = any(a in ("-h", "--help") for a in argv)
    parser = build_parser(metric_menu=asks_help and any(a in ("metrics", "evaluate", "report") for a in argv))
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
