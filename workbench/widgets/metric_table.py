"""``MetricTable``: every metric of every generated set under every extractor, sortable and linked.

One row per (model, extractor), one column per metric value of
:class:`~workbench.metrics.suite.MetricReport`, shown as ``value [low, high] #rank`` when
bootstrap intervals exist. Ranks and highlights are per extractor and column, oriented by
:func:`workbench.metrics.suite.higher_is_better`: rank 1 is the best value (lowest for
distances, highest for scores; ties share the smallest rank), its cell is marked ``wb-best``
and the last one ``wb-worst``; columns without an orientation (``kd_std``, ``ct``) get no rank.
Clicking a header sorts by it (best first; again to reverse); clicking a row selects that model
and extractor in the shared :class:`~workbench.widgets.selection.Selection`.

A metric that failed for a model (:attr:`MetricReport.errors <workbench.metrics.suite.MetricReport>`)
shows ``error`` in its cells (``td.wb-error``), with the message as the cell's tooltip and listed
under the table; a value whose bootstrap failed is shown with a ``⚠`` and the message likewise.
When the reports could not be computed at all (:meth:`MetricTable.show_error`), the caption and the
static report say why instead of showing an empty table.

State, as traits (``table.observe(callback, names="model")``, ``traitlets.link``): ``model`` and
``extractor`` (the selected row, linked to the shared selection), ``sort_by``, ``ascending``,
``extractor_filter``, ``metrics``. Derived: :attr:`MetricTable.table` (the displayed frame, in
display order, with ``rank_*`` columns), :attr:`errors`; :meth:`select` selects a row.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd
import traitlets
from scipy.stats import rankdata

from ..metrics.suite import MetricReport, higher_is_better, metric_of_column
from .html_table import ClickableTable, table_html
from .linking import SelectionLink, TraitValueError, link_control, refuse, replace_options
from .selection import Selection
from .tasks import status_widget

ALL = "all extractors"


def copy_flags(report: MetricReport) -> tuple[dict[str, float], bool]:
    """``({model: copy_rate}, calibrated)``: the likely copiers of ``report``
    (:meth:`MetricReport.copiers <workbench.metrics.suite.MetricReport.copiers>`: a calibrated copy
    rate above :data:`~workbench.metrics.copy_rate.COPIER_RATE`) and whether its copy rate is
    calibrated at all (a test set was given)."""
    calibrated = "copy_rate" in report.values.columns and str(report.info.get("copy_rate_criterion", "")).startswith(
        "distance"
    )
    return (report.copiers() if calibrated else {}), calibrated


def _fmt(v: float) -> str:
    if v is None or not np.isfinite(v):
        return "–"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.3e}"
    return f"{v:.4g}"


def _report_error(report: MetricReport, model: str, column: str) -> str | None:
    """The error of ``column`` for ``model`` in ``report`` (reports read from older JSON lack errors)."""
    errors = getattr(report, "errors", None) or {}
    return errors.get((model, metric_of_column(column))) or errors.get((model, "*"))


def row_key(model: str, extractor: str) -> str:
    """The row key of a (model, extractor) pair: ``"model|extractor"``."""
    return f"{model}|{extractor}"


class MetricTable(W.VBox):
    """Sortable metric table with intervals, ranks and best/worst highlights (module docstring).

    Traits (observe them, link them, set them):

    * ``model``, ``extractor``: the selected row ("" = none; ``extractor`` "" = the first
      report's); linked to the shared selection. A row click sets both at once.
    * ``sort_by``: the column sorted by (``model``, ``extractor`` or a metric column); choosing
      one sets ``ascending`` to its natural order (best first). Linked to the header clicks.
    * ``ascending``: the sort direction.
    * ``extractor_filter``: ``"all extractors"`` or one extractor (the dropdown).
    * ``metrics`` (read-only): the metric columns shown.

    Args:
        reports: ``{extractor: MetricReport}``, one report, or None to fill later with
            :meth:`set_reports` (e.g. when a dashboard computes them in the background).
        selection: the shared selection (a new one when omitted).
        columns: the metric columns to show (default: every column of the reports).
        extractor: initial extractor filter (``"all extractors"`` or a name).
    """

    selection = traitlets.Instance(Selection, read_only=True, help="the shared selection")
    model = traitlets.Unicode("", help="model of the selected row ('' = none)")
    extractor = traitlets.Unicode("", help="extractor of the selected row ('' = the first report's)")
    sort_by = traitlets.Unicode("", help="column sorted by: 'model', 'extractor' or a metric column")
    ascending = traitlets.Bool(True, help="sort direction (a new sort_by sets its natural one: best first)")
    extractor_filter = traitlets.Unicode(ALL, help="'all extractors' or the one extractor shown")
    metrics = traitlets.List(traitlets.Unicode(), read_only=True, help="the metric columns shown")

    def __init__(
        self,
        reports: Mapping[str, MetricReport] | MetricReport | None = None,
        *,
        selection: Selection | None = None,
        columns: Sequence[str] | None = None,
        extractor: str = ALL,
    ) -> None:
        self._columns_wanted = list(columns) if columns is not None else None
        self.reports: dict[str, MetricReport] = {}
        self._frame = pd.DataFrame()
        self._errors: dict[tuple[str, str, str], str] = {}  # (model, extractor, column) -> message
        self._failure = ""
        self.grid = ClickableTable()
        self.grid.add_class("wb-metric-grid")
        self.filter = W.Dropdown(options=[ALL], value=ALL, description="extractor", layout=W.Layout(width="260px"))
        self.filter.add_class("wb-extractor-filter")
        self.status = status_widget()
        self.notes = W.HTML("")
        self.notes.add_class("wb-metric-notes")
        title = W.HTML(
            "<b>Metrics</b> <span style='color:#666'>— click a header to sort, a row to select "
            "that model everywhere; green = best, red = worst per extractor</span>"
        )
        super().__init__([title, W.HBox([self.filter, self.status]), self.grid, self.notes])
        self.add_class("wb-metric-table")
        self.set_trait("selection", selection if selection is not None else Selection())
        self._initial_filter = extractor

        # the header clicks set the grid's sort_by / ascending, the dropdown the filter
        traitlets.link((self, "sort_by"), (self.grid, "sort_by"))
        traitlets.link((self, "ascending"), (self.grid, "ascending"))
        link_control(self, "extractor_filter", self.filter)
        self.selection_link = SelectionLink(self.selection, self, ["model", "extractor"])
        self.observe(self._on_sort_by, names="sort_by")
        self.observe(lambda _: self._render(), names=["ascending", "extractor_filter"])
        self.observe(self._on_selected, names=["model", "extractor"])
        self.grid.observe(self._on_row_click, names="selected")
        if reports is not None:
            self.set_reports(reports)
        else:
            self.grid.caption = "metrics are being computed…"

    # ------------------------------------------------------------------ validation

    @traitlets.validate("sort_by")
    def _valid_sort_by(self, proposal: Any) -> str:
        column = proposal["value"]
        allowed = ["model", "extractor", *self.metrics]
        if column not in allowed and not (column == "" and self._frame.empty):
            refuse("sort_by", column, allowed)
        return column

    @traitlets.validate("extractor_filter")
    def _valid_filter(self, proposal: Any) -> str:
        value = proposal["value"]
        if value not in self.filter.options:
            raise TraitValueError(f"extractor filter must be one of {list(self.filter.options)}; got {value!r}")
        return value

    # ------------------------------------------------------------------ data

    def set_reports(self, reports: Mapping[str, MetricReport] | MetricReport) -> None:
        """Show these reports (``{extractor: report}``; a single report is named by its extractor
        info or ``"features"``)."""
        if isinstance(reports, MetricReport):
            name = str((reports.info.get("extractor") or {}).get("name", "features"))
            reports = {name: reports}
        if not reports:
            raise ValueError("reports must hold at least one MetricReport")
        self.reports = dict(reports)
        self._failure = ""
        rows = []
        metrics: list[str] = []
        errors: dict[tuple[str, str, str], str] = {}
        for ext, rep in self.reports.items():
            cols = [c for c in rep.values.columns if self._columns_wanted is None or c in self._columns_wanted]
            metrics += [c for c in cols if c not in metrics]
            for model in rep.values.index:
                row: dict[str, Any] = {"model": str(model), "extractor": ext}
                for c in cols:
                    row[c] = float(rep.values.at[model, c])
                    row[f"{c}_low"] = float(rep.low.at[model, c])
                    row[f"{c}_high"] = float(rep.high.at[model, c])
                rows.append(row)
        for ext, rep in self.reports.items():  # after the loop: a failed report may have no columns
            for model in rep.values.index:
                for c in metrics:
                    message = _report_error(rep, str(model), c)
                    if message:
                        errors[(str(model), ext, c)] = message
        self._errors = errors
        self._copiers: dict[tuple[str, str], float] = {}
        self._uncalibrated: set[str] = set()
        copy_notes = []
        for ext, rep in self.reports.items():
            flagged, calibrated = copy_flags(rep)
            if "copy_rate" in rep.values.columns and not calibrated:
                self._uncalibrated.add(ext)
            for model, rate in flagged.items():
                self._copiers[(model, ext)] = rate
                copy_notes.append(
                    f"{model} ({ext}): {100 * rate:.1f}% of its samples are closer to a training image than 99% of "
                    "held-out real images are: likely copies of the training set, whatever its other ranks say "
                    "(see the Memorization tab)"
                )
        if self._uncalibrated:
            copy_notes.append(
                f"copy_rate under {', '.join(sorted(self._uncalibrated))} is uncalibrated (no test set: ratio "
                "criterion, which flags many non-copies); add held-out real images: `workbench evaluate ... "
                "--test DIR` or `workbench workspace add WS CACHE --set test --role test`"
            )
        frame = pd.DataFrame(rows)
        for c in metrics:
            frame[f"rank_{c}"] = np.nan
            hib = higher_is_better(c)
            if hib is None:
                continue
            for _ext, part in frame.groupby("extractor", sort=False):
                vals = part[c].to_numpy(dtype=float)
                ok = np.isfinite(vals)
                if ok.any():
                    r = np.full(vals.shape, np.nan)
                    r[ok] = rankdata(-vals[ok] if hib else vals[ok], method="min")
                    frame.loc[part.index, f"rank_{c}"] = r
        self._frame = frame
        self.set_trait("metrics", metrics)
        options = [ALL, *self.reports]
        replace_options(self.filter, options, self._initial_filter if self._initial_filter in options else ALL)
        notes = [w for rep in self.reports.values() for w in rep.warnings]
        failed = [
            f"{ext} · {model} · {metric}: {message}"
            for ext, rep in self.reports.items()
            for (model, metric), message in rep.errors.items()
        ]
        self.notes.value = "".join(
            [
                f"<div class='wb-metric-error' style='color:#b00020;font-size:11px'>✖ {html.escape(n)}</div>"
                for n in dict.fromkeys(failed)
            ]
            + [
                f"<div class='wb-copier-note' style='color:#b00020;font-size:11px'>⚠ {html.escape(n)}</div>"
                for n in copy_notes
            ]
            + [f"<div style='color:#8a6d00;font-size:11px'>⚠ {html.escape(n)}</div>" for n in dict.fromkeys(notes)]
        )
        if self.sort_by not in ("model", "extractor", *metrics):
            self.sort_by = "model"
        self._render()

    @property
    def errors(self) -> pd.DataFrame:
        """The failed cells: one row per ``model, extractor, column`` with its ``error`` message."""
        return pd.DataFrame(
            [{"model": m, "extractor": e, "column": c, "error": msg} for (m, e, c), msg in self._errors.items()],
            columns=["model", "extractor", "column", "error"],
        )

    def show_error(self, error: BaseException | str) -> None:
        """Say that the reports could not be computed at all (e.g. the background task failed)."""
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self._failure = message
        self.grid.caption = f"metrics could not be computed: {message}"
        self.notes.value = (
            f"<div class='wb-metric-error' style='color:#b00020;font-size:11px'>✖ {html.escape(message)}</div>"
        )

    @property
    def table(self) -> pd.DataFrame:
        """The displayed rows in display order: ``model, extractor``, each metric with ``_low``,
        ``_high`` and ``rank_`` columns."""
        frame = self._frame
        if frame.empty:
            return frame.copy()
        if self.extractor_filter != ALL:
            frame = frame[frame["extractor"] == self.extractor_filter]
        key = self.sort_by or "model"
        ext_pos = frame["extractor"].map({e: i for i, e in enumerate(self.reports)})
        if key in ("model", "extractor"):
            order = frame.assign(_e=ext_pos).sort_values(
                [key, "_e" if key == "model" else "model"], ascending=[self.ascending, True], kind="stable"
            )
        else:
            # Values of different extractors are on different scales: sort within each extractor.
            vals = frame[key].to_numpy(dtype=float)
            signed = np.where(np.isfinite(vals), vals if self.ascending else -vals, np.inf)
            order = frame.assign(_e=ext_pos.to_numpy(), _v=signed).sort_values(["_e", "_v"], kind="stable")
        return order.drop(columns=[c for c in ("_e", "_v") if c in order.columns]).reset_index(drop=True)

    def select(self, model: str, extractor: str | None = None) -> None:
        """Select ``model`` (and ``extractor``) as a row click does: both traits in one batch."""
        known = set(self._frame["model"]) if not self._frame.empty else set()
        if model not in known:
            raise ValueError(f"model {model!r} is not in the table; models: {sorted(known)}")
        with self.hold_trait_notifications():
            if extractor is not None:
                self.extractor = extractor
            self.model = model

    # ------------------------------------------------------------------ rendering

    def _cells(self, frame: pd.DataFrame) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        columns = [
            {"key": "model", "label": "model", "title": "generated set"},
            {"key": "extractor", "label": "extractor", "title": "feature extractor"},
        ]
        for c in self.metrics:
            hib = higher_is_better(c)
            arrow = "↑" if hib else "↓" if hib is False else ""
            columns.append(
                {
                    "key": c,
                    "label": f"{c} {arrow}".strip(),
                    "default_ascending": not hib if hib is not None else True,
                    "title": {True: "higher is better", False: "lower is better", None: "no better direction"}[hib],
                }
            )
        rows = []
        n_per_ext = frame.groupby("extractor")["model"].count().to_dict() if len(frame) else {}
        for rec in frame.to_dict("records"):
            cells, classes, titles = [rec["model"], rec["extractor"]], ["", ""], ["", ""]
            rate = self._copiers.get((rec["model"], rec["extractor"]))
            if rate is not None:
                cells[0] = f"{rec['model']} ⚠ copies"
                classes[0] = "wb-copier"
                titles[0] = (
                    f"{100 * rate:.1f}% of its samples are likely copies of training images "
                    f"(held-out real images: about 1%)"
                )
            for c in self.metrics:
                v, lo, hi, rank = (
                    rec.get(c, math.nan),
                    rec.get(f"{c}_low", math.nan),
                    rec.get(f"{c}_high", math.nan),
                    rec.get(f"rank_{c}", math.nan),
                )
                error = self._errors.get((rec["model"], rec["extractor"], c))
                text = _fmt(v)
                if error and not np.isfinite(v):
                    text = "error"
                if np.isfinite(lo):
                    text += f" [{_fmt(lo)}, {_fmt(hi)}]"
                if np.isfinite(rank):
                    text += f"  #{int(rank)}"
                if error and np.isfinite(v):
                    text += " ⚠"
                cells.append(text)
                cls = ""
                n_models = n_per_ext.get(rec["extractor"], 0)
                col_ranks = self._frame.loc[self._frame["extractor"] == rec["extractor"], f"rank_{c}"]
                if np.isfinite(rank) and n_models >= 2:
                    if rank == 1:
                        cls = "wb-best"
                    elif rank == np.nanmax(col_ranks.to_numpy(dtype=float)):
                        cls = "wb-worst"
                if error:
                    cls = (cls + " wb-error").strip()
                classes.append(cls)
                title = f"{c} = {v!r}" + (f", {100 * 0.95:.0f}% CI [{lo!r}, {hi!r}]" if np.isfinite(lo) else "")
                if c == "copy_rate" and rec["extractor"] in self._uncalibrated:
                    title += "; uncalibrated (no test set): add held-out real images to trust it"
                    cls = (cls + " wb-uncalibrated").strip()
                    classes[-1] = cls
                titles.append(
                    f"{c}: {error}" if error and not np.isfinite(v) else f"{title}; {error}" if error else title
                )
            rows.append(
                {"key": row_key(rec["model"], rec["extractor"]), "cells": cells, "classes": classes, "titles": titles}
            )
        return columns, rows

    def _selected_key(self) -> str:
        return row_key(self.model, self.extractor or next(iter(self.reports)))

    def _render(self) -> None:
        if self._frame.empty:
            return
        columns, rows = self._cells(self.table)
        sel = self._selected_key()
        with self.grid.hold_sync():
            self.grid.columns = columns
            self.grid.rows = rows
            self.grid.selected = sel if any(r["key"] == sel for r in rows) else ""
            n_models = self._frame["model"].nunique()
            self.grid.caption = (
                f"{n_models} generated set(s) × {len(self.reports)} extractor(s); ranks per extractor (#1 = best)"
            )

    def _on_sort_by(self, change: dict[str, Any]) -> None:
        hib = higher_is_better(change["new"])
        natural = True if hib is None else not hib
        if self.ascending != natural:
            self.ascending = natural  # its observer renders
        else:
            self._render()

    def _on_row_click(self, change: dict[str, Any]) -> None:
        key = change["new"]
        if not key or "|" not in key:
            return
        model, ext = key.rsplit("|", 1)
        if (model, ext) != (self.model, self.extractor):
            self.select(model, ext)

    def _on_selected(self, change: dict[str, Any]) -> None:
        if self._frame.empty:
            return
        sel = self._selected_key()
        if self.grid.selected != sel:
            self.grid.selected = sel if any(r["key"] == sel for r in self.grid.rows) else ""

    # ------------------------------------------------------------------ static report

    def static_html(self) -> str:
        """The table as static HTML (current filter and order) for the offline report."""
        if self._frame.empty:
            if self._failure:
                return f"<p class='wb-metric-error'>metrics could not be computed: {html.escape(self._failure)}</p>"
            return "<p>no metrics computed</p>"
        columns, rows = self._cells(self.table)
        return table_html(columns, rows, caption=self.grid.caption)
