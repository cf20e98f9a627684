"""Your own models, end to end: folders of images in, a workspace with metric tables and a report out.

:func:`evaluate_folders` (``workbench evaluate``, :meth:`Workbench.from_folders
<workbench.widgets.dashboard.Workbench.from_folders>`) takes the folders a user has (the real
images, the samples of each model, optionally the training set and a held-out test set) and:

1. checks every argument before anything is extracted (folders exist, set names are given once,
   each folder plays one set, the extractor names, options, weights and metric names are known);
2. extracts every folder under every extractor into ``OUT/caches`` with
   :func:`workbench.cache.extract` (progress shown; complete caches are reused, interrupted ones
   resume, exactly as ``workbench extract``);
3. writes ``OUT/workspace.json`` with explicit set names and roles
   (:func:`~workbench.workspace.editing.replace_sets`: entries of the same ``(set, extractor)``
   are replaced on a re-run, entries of other sets are kept);
4. computes one metric report per extractor (:func:`~workbench.workspace.reports.workspace_reports`,
   saved in ``OUT/.workbench`` and reused while the caches are unchanged);
5. writes ``OUT/report.html``, the static report of the dashboard (needs the ``lab`` extras:
   ipywidgets and plotly; without them a note says so and everything else stands).

Roles: ``real`` is the ``reference`` set (named ``real`` unless a name is given), each entry of
``generated`` a ``generated`` set (one row of every table), ``train`` the ``train`` set
(memorization: AuthPct, the memorization views) and ``test`` the ``test`` set (held-out real
images: C_T and the calibration of the copy flag). Training and test sets keep thumbnails even
with ``thumbnails=0``: the memorization views show the training images next to the samples.

The module loads neither torch nor the view libraries when imported; extraction (torch), the
metrics and the report (ipywidgets, plotly) are imported when :func:`evaluate_folders` runs.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cache import EmbeddingCache
from ..cache.manifest import MANIFEST
from .editing import ReplaceResult, replace_sets
from .index import WORKSPACE_FILE, read_index
from .sets import Workspace

if TYPE_CHECKING:
    from ..extractors import Extractor
    from ..metrics.suite import MetricReport
    from ..progress import Progress

DEFAULT_EXTRACTORS: tuple[str, ...] = ("inception", "dinov2")
DEFAULT_OUT = "workspace/own"
CACHES_DIR = "caches"
REPORT_FILE = "report.html"
SOURCE_SUFFIXES: tuple[str, ...] = (".zip", ".npz")
# Thumbnail side (pixels) kept for the training and test sets when thumbnails=0 is asked for the
# others: the memorization views show training images beside the samples.
KEPT_THUMBNAILS = 64

PathArg = str | os.PathLike[str]
# A set given as its folder (the default name) or as (name, folder).
FolderArg = PathArg | tuple[str, PathArg]


@dataclass(frozen=True)
class FolderSet:
    """One image set of an evaluation.

    Attributes:
        name: the set's name in the workspace (the row of the metric tables for a generated set).
        role: ``reference``, ``generated``, ``train`` or ``test``.
        source: the folder (or ``.zip`` / ``.npz``) of its images, absolute.
        flag: how it was given, for messages (``"--gen model_a=DIR"``).
    """

    name: str
    role: str
    source: Path
    flag: str


@dataclass
class EvaluationResult:
    """What :func:`evaluate_folders` made.

    Attributes:
        workspace: the workspace, opened from ``root/workspace.json``.
        reports: ``{extractor: MetricReport}``, one per extractor with caches of the reference and
            a generated set (every generated set of the workspace against the reference).
        sets: the sets of this run, in the order reference, generated, train, test.
        caches: ``{(set, extractor): cache}`` of this run.
        reused: ``{(set, extractor): True}`` when the cache was already complete (nothing extracted).
        index: what was written into ``workspace.json`` (added, replaced, dropped entries).
        report_path: ``root/report.html``, or None when no report was written.
        notes: things the user should know (entries dropped, extractors left out, no report).
        seconds: wall time in seconds of ``extract``, ``metrics``, ``report`` and ``total``.
    """

    workspace: Workspace
    reports: dict[str, MetricReport]
    sets: list[FolderSet]
    caches: dict[tuple[str, str], EmbeddingCache]
    reused: dict[tuple[str, str], bool]
    index: ReplaceResult
    report_path: Path | None = None
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        """The workspace folder (absolute)."""
        assert self.workspace.root is not None  # opened from a folder
        return self.workspace.root

    @property
    def computed(self) -> bool:
        """True when at least one metric value was computed under some extractor."""
        return any(r.computed for r in self.reports.values())

    def format_tables(self) -> str:
        """One table per extractor, headed ``== extractor (reference: ..., train: ..., test: ...) ==``."""
        return format_reports(self.workspace, self.reports)

    def summary(self) -> str:
        """What was extracted or reused and written, in a few lines."""
        n_reused = sum(self.reused.values())
        n_new = len(self.reused) - n_reused
        exts = list(dict.fromkeys(e for _, e in self.caches))
        lines = [
            f"workspace  {self.root}",
            "sets       " + ", ".join(f"{s.name} ({s.role}, {self.workspace.size(s.name)} images)" for s in self.sets),
            f"extractors {', '.join(exts)}",
            f"caches     {n_new} extracted, {n_reused} reused (in {self.root / CACHES_DIR})",
            f"index      {self.root / WORKSPACE_FILE}",
        ]
        if self.report_path is not None:
            lines.append(f"report     {self.report_path}")
        secs = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        lines.append(f"time       {secs}")
        lines += [f"note       {n}" for n in self.notes]
        return "\n".join(lines)

    def next_steps(self) -> str:
        """What to do next: open the dashboard, and the commands that take this workspace's set names."""
        root = str(self.root)
        gens = [s.name for s in self.sets if s.role == "generated"]
        first = gens[0] if gens else self.workspace.reference
        pick = " ".join(f"--gen {g}" for g in gens[:2])
        lines = [
            "next:",
            "  the dashboard, in Jupyter:",
            f"      import workbench as wb; wb.Workbench.open({root!r})",
            f"  the static report:           open {self.report_path or Path(root) / REPORT_FILE}"
            + ("" if self.report_path else f" (write it: workbench report {root})"),
            f"  the tables again, some sets: workbench metrics --workspace {root} {pick} [--metrics all]",
            f"  one set's caches:            workbench info --workspace {root} {first}",
            f"  sets, roles and warnings:    workbench workspace show {root}",
            f"  another model, later:        workbench evaluate --out {root} --real ... --gen NEW=DIR [...]",
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format_tables()


# --------------------------------------------------------------------------- arguments


def parse_named_folder(text: str, flag: str, default_name: str | None) -> tuple[str, str]:
    """``"NAME=DIR"`` -> ``(NAME, DIR)``; ``"DIR"`` -> ``(default_name, DIR)`` (a command-line value).

    A value that is an existing path is a folder even when it holds ``=``. Without a default name
    (``--gen``) ``NAME=`` is required.

    Raises:
        ValueError: naming ``flag``, when the name is missing or empty.
    """
    name, sep, folder = text.partition("=")
    if sep and not Path(text).expanduser().exists():
        if not name.strip():
            raise ValueError(f"{flag} {text!r}: the name before '=' is empty; write {flag} NAME=DIR")
        return name.strip(), folder
    if default_name is None:
        raise ValueError(
            f"{flag} {text!r} needs a name: {flag} NAME=DIR (e.g. {flag} mymodel={text}); the name is the "
            "set's row in every metric table and what later commands call it"
        )
    return default_name, text


def plan_sets(
    real: FolderArg,
    generated: Mapping[str, PathArg] | Sequence[tuple[str, PathArg]],
    *,
    train: FolderArg | None = None,
    test: FolderArg | None = None,
) -> list[FolderSet]:
    """The sets of an evaluation, checked; nothing is read but the file system's listing.

    Args:
        real: the real images: a folder (set ``real``) or ``(name, folder)``.
        generated: ``{name: folder}`` or ``[(name, folder), ...]``: one set per model.
        train: the training images: a folder (set ``train``) or ``(name, folder)``.
        test: held-out real images: a folder (set ``test``) or ``(name, folder)``.

    Returns:
        The sets in the order reference, generated, train, test.

    Raises:
        ValueError: every problem found, in one message: no generated set, an empty or padded
            name, a name used twice, a folder that does not exist (or a file that is not a
            ``.zip``/``.npz``), one folder given for two sets.
    """
    items: list[tuple[str, str, Any, str]] = []  # (name, role, folder, flag)

    def one(value: FolderArg, role: str, flag: str, default: str) -> None:
        if isinstance(value, tuple):
            if len(value) != 2:
                raise ValueError(f"{flag}: give a folder or a (name, folder) pair; got {value!r}")
            items.append((str(value[0]), role, value[1], flag))
        else:
            items.append((default, role, value, flag))

    one(real, "reference", "--real", "real")
    pairs = list(generated.items()) if isinstance(generated, Mapping) else list(generated)
    if not pairs:
        raise ValueError("give at least one generated set: --gen NAME=DIR (generated={'name': folder} in Python)")
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ValueError(f"generated sets are (name, folder) pairs or a {{name: folder}} mapping; got {pair!r}")
        items.append((str(pair[0]), "generated", pair[1], "--gen"))
    if train is not None:
        one(train, "train", "--train", "train")
    if test is not None:
        one(test, "test", "--test", "test")

    problems: list[str] = []
    named: dict[str, str] = {}
    folders: dict[Path, str] = {}
    out: list[FolderSet] = []
    for name, role, folder, flag in items:
        shown = f"{flag} {name}={folder}"
        if not name.strip() or name != name.strip() or any(c in name for c in "\n\r\t/\\"):
            problems.append(f"{shown}: a set name must be non-empty, without surrounding spaces, tabs or slashes")
            continue
        if name in named:
            problems.append(
                f"set name {name!r} is used twice ({named[name]} and {flag}); give each set its own name "
                f"({flag} OTHER={folder})"
            )
            continue
        named[name] = flag
        if not isinstance(folder, (str, os.PathLike)) or not str(folder).strip():
            problems.append(f"{shown}: give the folder of the images as a path; got {folder!r}")
            continue
        path = Path(folder).expanduser()
        if not path.exists():
            problems.append(f"{shown}: {path} does not exist")
            continue
        if path.is_file() and path.suffix.lower() not in SOURCE_SUFFIXES:
            problems.append(f"{shown}: {path} is a file; give a folder of images (or a .zip / .npz of images)")
            continue
        full = path.resolve()
        if full in folders:
            problems.append(
                f"{full} is given for two sets ({folders[full]} and {name!r}); each set needs its own images "
                "(a test set must not be the reference)"
            )
            continue
        folders[full] = repr(name)
        out.append(FolderSet(name, role, full, shown))
    if problems:
        raise ValueError("; ".join(problems))
    return out


def extractor_names(extractors: str | Sequence[str]) -> list[str]:
    """``"a,b"`` or ``["a", "b"]`` -> ``["a", "b"]``, checked (non-empty, no repeats)."""
    raw = extractors.split(",") if isinstance(extractors, str) else list(extractors)
    if not all(isinstance(e, str) for e in raw):
        raise TypeError(f"extractors must be names (strings); got {raw!r}")
    names = [e.strip() for e in raw if e.strip()]
    if not names:
        raise ValueError("give at least one extractor (--extractor inception,dinov2; see `workbench extractors`)")
    twice = sorted({e for e in names if names.count(e) > 1})
    if twice:
        raise ValueError(f"extractor(s) {twice} are given twice in --extractor; name each once")
    return names


def _weights_for(weights: str | Mapping[str, str], names: list[str]) -> dict[str, str]:
    """``{extractor: weights spec}`` from one spec for all or a mapping (missing ones: ``"default"``)."""
    if isinstance(weights, str):
        if len(names) > 1 and weights not in ("default", "none"):
            raise ValueError(
                f"--weights {weights!r} is given for all of {', '.join(names)}; a weights file fits one extractor: "
                f"say which, e.g. --weights {names[0]}={weights}"
            )
        return dict.fromkeys(names, weights)
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise ValueError(f"--weights names extractor(s) {unknown} that are not evaluated (extractors: {names})")
    return {n: str(weights.get(n, "default")) for n in names}


# --------------------------------------------------------------------------- the run


class _Say:
    """Messages of the run under the progress contract: stderr lines (``True``), events (a callable), or nothing."""

    def __init__(self, progress: Progress) -> None:
        from ..progress import ProgressReporter

        self.stderr = progress is True
        self.reporter = ProgressReporter(progress if callable(progress) else None, "evaluate")

    def __call__(self, message: str) -> None:
        if self.stderr:
            print(message, file=sys.stderr, flush=True)
        else:
            self.reporter.say(message)

    def metrics(self, extractor: str) -> Callable[[Any], None] | None:
        """The ``progress=`` of one extractor's metric report: ``"  EXT: computing fd · model"`` lines."""
        if not self.stderr and not self.reporter.active:
            return None
        return lambda event: self(f"  {extractor}: computing {event}")


def comparable_extractors(ws: Workspace) -> tuple[list[str], list[str]]:
    """The extractors of ``ws`` with caches of the reference set and of at least one generated set,
    and the notes to show: the workspace's own (:attr:`Workspace.notes`, e.g. caches of one set
    holding different images) and one per extractor left out (``"extractor 'x' is left out: ..."``)."""
    names: list[str] = []
    notes: list[str] = list(ws.notes)
    for e in ws.extractors:
        if not ws.has(ws.reference, e):
            notes.append(f"extractor {e!r} is left out: the reference set {ws.reference!r} has no cache by it")
        elif not any(ws.has(g, e) for g in ws.generated):
            notes.append(f"extractor {e!r} is left out: no generated set has a cache by it")
        else:
            names.append(e)
    return names, notes


def format_reports(ws: Workspace, reports: Mapping[str, MetricReport]) -> str:
    """The tables of ``reports``, each headed ``== extractor (reference: ..., train: ..., test: ...) ==``."""
    roles = ", ".join(
        f"{r}: {s}" for r, s in (("reference", ws.reference), ("train", ws.train), ("test", ws.test)) if s
    )
    return "\n\n".join(f"== {ext} ({roles}) ==\n{report}" for ext, report in reports.items())


def _manifest_times(folder: Path) -> dict[Path, int]:
    """``{cache folder: mtime in ns of its manifest.json}`` of the finished caches in ``folder``."""
    found: dict[Path, int] = {}
    if folder.is_dir():
        for manifest in folder.glob(f"*/{MANIFEST}"):
            with contextlib.suppress(OSError):
                found[manifest.parent.resolve()] = manifest.stat().st_mtime_ns
    return found


def evaluate_folders(
    real: FolderArg,
    generated: Mapping[str, PathArg] | Sequence[tuple[str, PathArg]],
    *,
    train: FolderArg | None = None,
    test: FolderArg | None = None,
    extractors: str | Sequence[str] = DEFAULT_EXTRACTORS,
    out: PathArg = DEFAULT_OUT,
    weights: str | Mapping[str, str] = "default",
    extractor_options: Mapping[str, Mapping[str, Any]] | None = None,
    device: str | None = None,
    batch_size: int = 64,
    num_workers: int | None = None,
    limit: int | None = None,
    protocol: str | None = None,
    thumbnails: int = 64,
    metrics: str | Sequence[str] = "default",
    bootstrap: int = 0,
    seed: int = 0,
    report: bool = True,
    report_heatmaps: int = 8,
    force: bool = False,
    progress: Progress = True,
) -> EvaluationResult:
    """Extract folders of images, write a workspace, compute its metric tables and its report.

    See the module docstring for the steps. Every argument is checked before anything is
    extracted; a re-run with the same arguments extracts nothing and reads the saved reports.

    Args:
        real: the real images (the reference every metric compares to): a folder, ``.zip`` or
            ``.npz`` (set ``real``), or ``(name, folder)``. Class subfolders give labels.
        generated: one set per model: ``{name: folder}`` or ``[(name, folder), ...]``.
        train: the model's training images (memorization analyses), as ``real``; set ``train``.
        test: held-out real images never trained on (C_T; calibrates the copy flag), as ``real``;
            set ``test``.
        extractors: names (``"inception,dinov2"`` or a list; see ``workbench extractors``).
        out: the workspace folder; caches go to ``out/caches``.
        weights: one spec for every extractor (``"default"`` published, ``"none"`` random init for
            tests) or ``{extractor: spec}`` (a weights file fits one extractor).
        extractor_options: ``{extractor: {option: value}}`` (e.g. ``{"dinov2": {"model": "vits14"}}``).
        device: ``"cuda"`` / ``"cpu"`` (default: CUDA when available).
        batch_size: images per forward pass.
        num_workers: data-loading worker processes (default: cores - 1, at most 4).
        limit: only the first ``limit`` images of each folder, in path order (a quick look; with
            class folders the first classes only, so not a fair sample); under a protocol that
            draws a sample (dgm-eval), the sample size.
        protocol: reproduce a reference tool (``"dgm-eval"``, ``"clean-fid"``, ``"pytorch-fid"``,
            ``"torch-fidelity"``; default ``"workbench"``): every extractor is set up with the
            tool's preprocessing (an extractor the tool does not have is refused before any
            extraction), the caches record the protocol and the tables follow it (see
            :mod:`workbench.protocols`).
        thumbnails: side in pixels of the thumbnails stored with the caches (0: none; the
            training and test sets keep 64-pixel thumbnails then).
        metrics, bootstrap, seed: as :func:`workbench.metrics.from_caches.evaluate_caches`.
        report: write ``out/report.html`` (needs ipywidgets and plotly, the ``lab`` extras).
        report_heatmaps: images in the report's sensitivity-heatmap section (computed under the
            first two extractors that support heatmaps; 0 leaves the section out). On a CPU each
            Inception heatmap costs about 4 s (README, "Sensitivity heatmaps").
        force: replace finished caches made from other images at the same paths (as
            ``workbench extract --force``).
        progress: the :mod:`workbench.progress` contract; ``True`` shows extraction bars and a
            line per step on stderr.

    Returns:
        :class:`EvaluationResult` (the workspace, the reports, what was extracted and written).

    Raises:
        ValueError: a bad argument (the message names it), before any extraction.
        CacheError: a cache cannot be written (full or read-only disk), or a finished cache of
            other images is in the way (without ``force``).
    """
    from ..progress import check_progress

    check_progress(progress)
    t_start = time.perf_counter()
    sets = plan_sets(real, generated, train=train, test=test)
    names = extractor_names(extractors)
    specs = _weights_for(weights, names)
    options = {k: dict(v) for k, v in (extractor_options or {}).items()}
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ValueError(f"extractor options name extractor(s) {unknown} that are not evaluated (extractors: {names})")
    for arg, value, low in (("batch_size", batch_size, 1), ("thumbnails", thumbnails, 0), ("bootstrap", bootstrap, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{arg} must be an integer >= {low}; got {value!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive number of images; got {limit!r}")
    root = Path(out).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise ValueError(f"--out {root} is a file; give a folder for the workspace")
    if (root / WORKSPACE_FILE).is_file():
        read_index(root)  # an invalid workspace.json: say so now, not after the extraction

    from ..metrics.suite import resolve_metrics

    resolve_metrics(metrics, {"ref", "logits"} | {s.role for s in sets if s.role in ("train", "test")})
    from ..protocols import resolve_protocol

    proto = resolve_protocol(protocol)
    options = {name: proto.extractor_options(name, options.get(name)) for name in names}
    say = _Say(progress)

    # Build every extractor first: unknown names, options, weights and devices fail before any work.
    from ..cache.extraction import extract
    from ..extractors import create_extractor

    built: dict[str, Extractor] = {}
    for name in names:
        built[name] = create_extractor(name, weights=specs[name], device=device, **options.get(name, {}))
    by_name: dict[str, str] = {}
    for spec, ext in built.items():
        if ext.name in by_name:
            raise ValueError(f"extractors {by_name[ext.name]!r} and {spec!r} are both named {ext.name!r}; keep one")
        by_name[ext.name] = spec

    caches: dict[tuple[str, str], EmbeddingCache] = {}
    reused: dict[tuple[str, str], bool] = {}
    todo = [(spec, s) for spec in names for s in sets]
    before = _manifest_times(root / CACHES_DIR)
    t0 = time.perf_counter()
    for i, (spec, s) in enumerate(todo, 1):
        ext = built[spec]
        thumbs = KEPT_THUMBNAILS if (thumbnails == 0 and s.role in ("train", "test")) else thumbnails
        say(f"[{i}/{len(todo)}] {s.name} ({s.role}) x {ext.name}: {s.source}")
        cache = extract(
            str(s.source),
            ext,
            out=root / CACHES_DIR,
            batch_size=batch_size,
            num_workers=num_workers,
            limit=limit,
            thumbnails=thumbs,
            name=s.name,
            progress=progress,
            force=force,
            protocol=proto,
        )
        key = (s.name, ext.name)
        caches[key] = cache
        with contextlib.suppress(OSError):  # the same manifest as before: extract said "reusing cache ..."
            reused[key] = before.get(cache.path.resolve()) == (cache.path / MANIFEST).stat().st_mtime_ns
        reused.setdefault(key, False)
    built.clear()  # free the networks before the metrics
    seconds = {"extract": time.perf_counter() - t0}

    roles = {s.name: s.role for s in sets}
    written = replace_sets(root, caches, roles)
    notes = [f"dropped {e.set} x {e.extractor} from {WORKSPACE_FILE}: {why}" for e, why in written.dropped]
    kept_sets = sorted({e.set for e in written.kept if e.set not in roles})
    if kept_sets:
        notes.append(f"kept set(s) {', '.join(kept_sets)} of an earlier run in {WORKSPACE_FILE}")
    for n in notes:
        say(f"note: {n}")

    ws = Workspace.open(root)
    t0 = time.perf_counter()
    compared, left_out = comparable_extractors(ws)
    for n in left_out:  # e.g. caches of one set holding different rows, extractors left out
        notes.append(str(n))
        say(f"note: {n}")
    from .reports import workspace_reports

    reports: dict[str, MetricReport] = {}
    for ext_name in compared:
        reports.update(
            workspace_reports(
                ws,
                extractors=[ext_name],
                metrics=metrics,
                bootstrap=bootstrap,
                seed=seed,
                progress=say.metrics(ext_name),
            )
        )
    seconds["metrics"] = time.perf_counter() - t0

    report_path = None
    if report:
        t0 = time.perf_counter()
        say(f"writing the static report {root / REPORT_FILE}")
        report_path, why = write_static_report(
            ws, root / REPORT_FILE, reports, metrics, bootstrap, seed, heatmaps=report_heatmaps
        )
        if why:
            notes.append(why)
            say(f"note: {why}")
        seconds["report"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - t_start
    return EvaluationResult(
        workspace=ws,
        reports=reports,
        sets=sets,
        caches=caches,
        reused=reused,
        index=written,
        report_path=report_path,
        notes=notes,
        seconds=seconds,
    )


def write_static_report(
    ws: Workspace,
    path: PathArg,
    reports: Mapping[str, MetricReport] | None = None,
    metrics: str | Sequence[str] = "default",
    bootstrap: int = 0,
    seed: int = 0,
    *,
    heatmaps: int = 8,
) -> tuple[Path | None, str | None]:
    """Write the dashboard's static HTML report of ``ws`` to ``path``: ``(path, None)``, or
    ``(None, why)`` when the view libraries (ipywidgets, plotly: the ``lab`` extras) are missing.

    This is the one place the workspace layer reaches the views, imported here when called.
    ``reports`` (``{extractor: MetricReport}``) are shown as given; else computed (and saved).
    ``heatmaps``: images in the heatmap section (0: left out).
    """
    try:
        from ..widgets.dashboard import Workbench
    except ImportError as exc:
        return None, (
            f"{REPORT_FILE} not written: the report needs the view libraries ({exc}); install the lab extras "
            "(pip install 'workbench[lab]') and run `workbench report`"
        )
    bench = Workbench(
        ws,
        reports=dict(reports) if reports is not None else None,
        metrics=metrics,
        bootstrap=bootstrap,
        seed=seed,
        background=False,
    )
    return bench.report(path, heatmaps=heatmaps), None
