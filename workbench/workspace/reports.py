"""Metric reports of a whole workspace, one per extractor, computed once and kept on disk.

:func:`workspace_reports` runs :func:`workbench.metrics.from_caches.evaluate_caches` for every
extractor of a :class:`~workbench.workspace.sets.Workspace`: the reference set against every
generated set, with the training (and test) set when the workspace has one (so AuthPct, and C_T
with a test set, join the default metrics). Each report is saved in the workspace's state folder
as ``metrics-<key>.json``, the key being a digest of the cache keys, metric names and settings,
so reopening a dashboard shows the table at once and any change of a cache recomputes it.

Failures stay visible and local: a metric that fails for one set is an error in its cell
(:attr:`MetricReport.errors <workbench.metrics.suite.MetricReport>`, saved with the report), and an
extractor whose report cannot be computed at all (e.g. incompatible caches) gets a report that
says so (:func:`~workbench.metrics.suite.failed_report`) while the other extractors' reports stand.

The metrics package (which loads torch for its k-NN searches) is imported when a report is
computed or read back, not when this module is imported.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from .sets import Workspace

if TYPE_CHECKING:
    from ..metrics.suite import MetricReport
    from ..progress import Progress

REPORT_FORMAT = "workbench-metric-report/1"


def report_key(ws: Workspace, extractor: str, metrics: str | Sequence[str], bootstrap: int, seed: int) -> str:
    """Digest of everything a report depends on: cache keys per set and role, metrics, settings."""
    parts = {
        "extractor": extractor,
        "caches": {
            s: [ws.role(s), ws.cache_key(s, extractor)]
            for s in ws.sets
            if ws.has(s, extractor) and ws.role(s) != "pool"
        },
        "metrics": metrics if isinstance(metrics, str) else list(metrics),
        "bootstrap": int(bootstrap),
        "seed": int(seed),
        "format": REPORT_FORMAT,
        "missing": "skip",
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def report_to_json(report: MetricReport) -> dict[str, Any]:
    """A JSON-able dict holding every table of a report (NaN as null)."""

    def frame(df: pd.DataFrame) -> dict[str, Any]:
        return {
            "index": [str(i) for i in df.index],
            "columns": [str(c) for c in df.columns],
            "data": [
                [None if (isinstance(v, float) and math.isnan(v)) else float(v) for v in row]
                for row in df.to_numpy(dtype=float).tolist()
            ],
        }

    return {
        "format": REPORT_FORMAT,
        "values": frame(report.values),
        "low": frame(report.low),
        "high": frame(report.high),
        "std": frame(report.std),
        "warnings": list(report.warnings),
        "info": _jsonable(report.info),
        "seconds": dict(report.seconds),
        "errors": [[str(model), str(metric), str(message)] for (model, metric), message in report.errors.items()],
    }


def report_from_json(data: dict[str, Any]) -> MetricReport:
    """Inverse of :func:`report_to_json`."""
    from ..metrics.suite import MetricReport

    if data.get("format") != REPORT_FORMAT:
        raise ValueError(f"not a saved metric report (format {data.get('format')!r}, expected {REPORT_FORMAT!r})")

    def frame(d: dict[str, Any]) -> pd.DataFrame:
        return pd.DataFrame(
            [[math.nan if v is None else v for v in row] for row in d["data"]],
            index=d["index"],
            columns=d["columns"],
            dtype=float,
        )

    return MetricReport(
        values=frame(data["values"]),
        low=frame(data["low"]),
        high=frame(data["high"]),
        std=frame(data["std"]),
        warnings=list(data.get("warnings", [])),
        info=dict(data.get("info", {})),
        seconds=dict(data.get("seconds", {})),
        errors={(m, k): e for m, k, e in data.get("errors", [])},
    )


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))


def workspace_report(
    ws: Workspace,
    extractor: str,
    *,
    metrics: str | Sequence[str] = "default",
    bootstrap: int = 0,
    seed: int = 0,
    progress: Progress = None,
    reuse: bool = True,
) -> MetricReport:
    """The metric report of every generated set of ``ws`` under ``extractor`` (saved and reused).

    Args:
        ws: the workspace.
        extractor: one of ``ws.extractors``; sets without a cache by it are left out.
        metrics, bootstrap, seed, progress: as :func:`workbench.metrics.from_caches.evaluate_caches`
            (``progress``: the :mod:`workbench.progress` contract). A named metric whose inputs
            this extractor's caches lack (``is`` without logits) is skipped with its reason
            (``report.info["skipped"]``), not an error: other extractors of the workspace may have them.
        reuse: read a saved report with the same key instead of computing.
    """
    if extractor not in ws.extractors:
        raise ValueError(f"extractor {extractor!r} is not in the workspace; choose from {ws.extractors}")
    if not ws.has(ws.reference, extractor):
        raise ValueError(f"the reference set {ws.reference!r} has no cache by {extractor!r}")
    gens = {g: ws.cache(g, extractor) for g in ws.generated if ws.has(g, extractor)}
    if not gens:
        raise ValueError(f"no generated set has a cache by {extractor!r}")
    key = report_key(ws, extractor, metrics, bootstrap, seed)
    path = ws.state_path(f"metrics-{key}.json")
    if reuse and path is not None and path.is_file():
        try:
            return report_from_json(json.loads(path.read_text()))
        except (ValueError, KeyError, json.JSONDecodeError):
            pass  # unreadable: recompute and overwrite
    from ..metrics.from_caches import evaluate_caches

    train = ws.cache(ws.train, extractor) if ws.train and ws.has(ws.train, extractor) else None
    test = ws.cache(ws.test, extractor) if ws.test and ws.has(ws.test, extractor) else None
    report = evaluate_caches(
        ws.cache(ws.reference, extractor),
        gens,
        train=train,
        test=test,
        metrics=metrics,
        bootstrap=bootstrap,
        seed=seed,
        progress=progress,
        missing="skip",  # e.g. `default,is` with one extractor without logits: skipped there, with why
    )
    if path is not None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(report_to_json(report)))
        tmp.replace(path)
    return report


def workspace_reports(
    ws: Workspace,
    *,
    extractors: Sequence[str] | None = None,
    metrics: str | Sequence[str] = "default",
    bootstrap: int = 0,
    seed: int = 0,
    progress: Progress = None,
    reuse: bool = True,
) -> dict[str, MetricReport]:
    """``{extractor: report}`` for every extractor (or those given) with a reference cache.

    An extractor whose report cannot be computed at all (incompatible or unreadable caches, no
    generated set) gets a :func:`~workbench.metrics.suite.failed_report` naming the error, and the
    other extractors' reports are kept. Unknown metric names still raise (a mistake in the call).
    ``reuse``: read saved reports with the same key instead of computing (see :func:`workspace_report`).
    """
    from ..metrics.suite import failed_report, resolve_metrics

    resolve_metrics(metrics, {"ref", "train", "test", "logits"})  # unknown names: ValueError now
    names = list(extractors) if extractors is not None else [e for e in ws.extractors if ws.has(ws.reference, e)]
    unknown = [e for e in names if e not in ws.extractors]
    if unknown:
        raise ValueError(f"extractor(s) {unknown} are not in the workspace; choose from {ws.extractors}")
    out: dict[str, MetricReport] = {}
    for e in names:
        try:
            out[e] = workspace_report(
                ws, e, metrics=metrics, bootstrap=bootstrap, seed=seed, progress=progress, reuse=reuse
            )
        except Exception as exc:  # this extractor alone; KeyboardInterrupt is not an Exception
            models = [g for g in ws.generated if ws.has(g, e)] or list(ws.generated)
            out[e] = failed_report(models, exc, info={"extractor": {"name": e}})
    return out


def long_metric_frame(reports: dict[str, MetricReport]) -> pd.DataFrame:
    """Tidy ``extractor, model, metric, value, low, high, error`` rows of several reports
    (``error``: the message where that metric failed for that model, else None)."""
    rows = []
    for ext, rep in reports.items():
        for model in rep.values.index:
            for col in rep.values.columns:
                rows.append(
                    {
                        "extractor": ext,
                        "model": str(model),
                        "metric": str(col),
                        "value": float(rep.values.at[model, col]),
                        "low": float(rep.low.at[model, col]),
                        "high": float(rep.high.at[model, col]),
                        "error": rep.error_for(str(model), col),
                    }
                )
    return pd.DataFrame(rows, columns=["extractor", "model", "metric", "value", "low", "high", "error"])
