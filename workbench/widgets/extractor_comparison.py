"""``ExtractorComparison``: how the ranking of models changes with the feature extractor.

Top: a bump chart (x = extractor, y = rank of each model under the chosen metric, 1 = best at
the top, one line per model) and the extractor x extractor rank-agreement matrix (Kendall's
tau-b or Spearman's rho between the extractors' values over the models), both from
:func:`workbench.analysis.extractor_ranking.compare_extractors`. From :data:`MANY_EXTRACTORS`
extractors on (dgm-eval's eight encoders, SigLIP, pixels ...) both charts order the extractors by
agreement (clusters of extractors that rank alike sit together), grow with their number (fixed
pixels per column / cell, tilted labels) and the summary gives the spread, the extremes and each
extractor's mean agreement with the others instead of one line per pair. Given metric reports (as the
dashboard does) the comparison uses their values directly (no resampling, so no intervals);
pass a precomputed comparison for bootstrap intervals.

With a single extractor there is nothing to agree with: the matrix is replaced by what to add (a
second extractor, :func:`second_extractor_hint`); with fewer than 3 models with values, by how
many more generated sets agreement needs.

Bottom: clicking a model's line selects it everywhere and shows the samples that move a metric
most under the chosen extractor
(:func:`workbench.analysis.attribution.metric_contributions`): the largest FD contributions, the
least realistic samples, the generated samples outside the real manifold (precision/density),
or, for recall/coverage, the real samples the model misses. The controls (model, "moves",
features) always describe what the grid shows: once samples are shown, changing any of them
(or the shared selection's model or extractor) recomputes the grid for the new choice, showing
"computing…" meanwhile; :meth:`run_contributions` with arguments sets the controls first.

State, as traits (``view.observe(callback, names="model")``, ``traitlets.link``): ``metric``,
``method``, ``model``, ``contribution_metric``, ``extractor`` (the attribution's features),
read-only ``shown`` (``(model, metric, extractor)`` of the grid's samples). Also
:attr:`comparison`, :meth:`bump_frame`, :meth:`click_model`, :meth:`run_contributions`,
:attr:`contributions` (the result the grid shows), :attr:`grid`, :attr:`matrix_note`.
"""

from __future__ import annotations

import html
import shlex
from collections.abc import Mapping
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import traitlets

from ..analysis.extractor_ranking import ExtractorComparison as ComparisonResult
from ..analysis.extractor_ranking import compare_extractors
from ..metrics.suite import MetricReport
from ..workspace import Samples, ScoreStore, Workspace, as_workspace, long_metric_frame
from .embedding_map import PALETTE
from .json_values import finite_or_none
from .linking import choice_or_default, link_control, refuse, replace_options
from .plot_layout import add_correlation_heatmap
from .sample_grid import SampleGrid
from .selection import Selection
from .tasks import BackgroundTask, status_widget

#: extractors suggested as the second one, in this order
SECOND_EXTRACTORS = ("dinov2", "inception", "clip")
#: from this many extractors on, the charts cluster them by agreement and tilt their labels
MANY_EXTRACTORS = 6
#: pixels per extractor column of the bump chart, and per cell of the agreement matrix
BUMP_COLUMN_PX = 64
MATRIX_CELL_PX = 44
#: more extractor pairs than this are summarised in one sentence instead of one line each
MAX_PAIR_LINES = 6


def _root(ws: Workspace | None) -> str:
    """The workspace folder for a command line (``WS`` when unknown)."""
    return shlex.quote(str(ws.root)) if ws is not None and ws.root is not None else "WS"


def second_extractor_hint(ws: Workspace | None, extractors: list[str]) -> str:
    """HTML: the agreement between extractors needs a second extractor, and how to add one.

    Names the commands with the workspace's extractor and a suggested second one, e.g.
    ``workbench evaluate ... --extractor inception,dinov2`` or ``workbench extract SOURCE -e dinov2``
    followed by ``workbench workspace add WS CACHE --set NAME`` for every set.
    """
    have = extractors[0] if extractors else "inception"
    other = next((e for e in SECOND_EXTRACTORS if e not in extractors), "dinov2")
    root = _root(ws)
    sets = ", ".join(ws.sets) if ws is not None else "every set"
    code = "<code>{}</code>".format
    index = (
        f"{code(html.escape(f'workbench workspace init {root} --scan'))} once, then "
        if ws is not None and ws.root is not None and not (ws.root / "workspace.json").is_file()
        else ""
    )
    return (
        "<div class='wb-agreement-note' style='margin:4px 0;padding:6px 8px;border-left:4px solid #1f5fa8;"
        "background:#eef3fa;font-size:12px;max-width:420px'>"
        f"<b>One extractor ({html.escape(have)})</b>: there is no second ranking to agree with, so there is no "
        "agreement matrix. Add a second extractor to see whether the ranking of your models depends on the "
        f"features: {code(html.escape(f'workbench evaluate ... --extractor {have},{other}'))}, or for each set "
        f"({html.escape(sets)}) {code(html.escape(f'workbench extract SOURCE -e {other}'))} + "
        f"{index}{code(html.escape(f'workbench workspace add {root} CACHE --set NAME'))}.</div>"
    )


#: metric -> (sort descending?, what the top of the grid shows)
CONTRIBUTIONS: dict[str, tuple[bool, str]] = {
    "fd": (True, "largest FD contributions (removing them lowers FD most)"),
    "realism": (False, "least realistic generated samples"),
    "density": (False, "generated samples in the fewest real k-NN balls"),
    "precision": (False, "generated samples outside the real manifold"),
    "recall": (False, "real samples outside the generated manifold (missed)"),
    "coverage": (False, "real samples whose neighbourhood holds no generated sample"),
}


class ExtractorComparison(W.VBox):
    """Bump chart, agreement matrix and per-sample attribution (see the module docstring).

    Traits (observe them, link them, set them):

    * ``metric``: the metric ranked (the dropdown; one of the comparison's metrics).
    * ``method``: ``"kendall"`` or ``"spearman"`` agreement.
    * ``model``: the selected model (linked to the shared selection; a line click sets it).
    * ``contribution_metric``: which per-sample attribution "Show samples" computes (one of
      :data:`CONTRIBUTIONS`).
    * ``extractor``: the features of that attribution (follows the selection's extractor; the
      "features" dropdown changes it here only).

    Args:
        workspace: workspace (for the attribution grid); may be None to show only the charts.
        reports: ``{extractor: MetricReport}`` to compare (the dashboard's metric reports).
        comparison: a precomputed :class:`~workbench.analysis.extractor_ranking.ExtractorComparison`
            (e.g. with bootstrap intervals); takes precedence over ``reports``.
        selection, scores: shared with the other views.
        metric: initial metric (default ``fd`` when present).
        background: compute attributions in a thread.
    """

    selection = traitlets.Instance(Selection, read_only=True, help="the shared selection")
    metric = traitlets.Unicode("", help="the metric ranked ('' before a comparison is shown)")
    method = traitlets.Unicode("kendall", help="'kendall' or 'spearman' rank agreement")
    model = traitlets.Unicode("", help="the selected model")
    contribution_metric = traitlets.Unicode("fd", help="the per-sample attribution 'Show samples' computes")
    extractor = traitlets.Unicode("", help="the features of the attribution")
    shown = traitlets.Tuple(
        allow_none=True,
        default_value=None,
        read_only=True,
        help="(model, metric, extractor) of the samples the grid shows; None before 'Show samples'",
    )

    def __init__(
        self,
        workspace: Workspace | Any | None = None,
        *,
        reports: Mapping[str, MetricReport] | None = None,
        comparison: ComparisonResult | None = None,
        selection: Selection | None = None,
        scores: ScoreStore | None = None,
        metric: str | None = None,
        background: bool = True,
    ) -> None:
        self.ws = as_workspace(workspace) if workspace is not None else None
        selection = selection if selection is not None else Selection()
        self.scores = scores if scores is not None else (ScoreStore(self.ws) if self.ws is not None else None)
        self.background = background
        self.comparison: ComparisonResult | None = None
        self.contributions = None
        self._task: BackgroundTask | None = None
        self._wanted_metric = metric
        self._requested: tuple[str, str, str] | None = None  # the attribution asked for last
        self._results: dict[tuple[str, str, str], Any] = {}

        self.metric_menu = W.Dropdown(options=[], description="metric", layout=W.Layout(width="220px"))
        self.metric_menu.add_class("wb-comparison-metric")
        self.method_menu = W.ToggleButtons(
            options=["kendall", "spearman"], value="kendall", style=W.ToggleButtonsStyle(button_width="90px")
        )
        self.method_menu.add_class("wb-comparison-method")
        self.bump = go.FigureWidget()
        self.bump.add_class("wb-bump-chart")
        self.matrix = go.FigureWidget()
        self.matrix.add_class("wb-agreement-matrix")
        self.matrix_box = W.Box([self.matrix])  # hidden when there is no matrix to show
        self.matrix_note = W.HTML("")
        self.matrix_note.add_class("wb-agreement-note")
        self.summary = W.HTML("")
        self.model_menu = W.Dropdown(options=[], description="model", layout=W.Layout(width="240px"))
        self.model_menu.add_class("wb-comparison-model")
        self.contribution_menu = W.Dropdown(
            options=list(CONTRIBUTIONS), value="fd", description="moves", layout=W.Layout(width="200px")
        )
        self.contribution_menu.add_class("wb-contribution-metric")
        extractors = self.ws.extractors if self.ws is not None else []
        self.contribution_extractor = W.Dropdown(
            options=extractors,
            value=extractors[0] if extractors else None,
            description="features",
            layout=W.Layout(width="240px"),
        )
        self.contribution_extractor.add_class("wb-contribution-extractor")
        self.contribution_button = W.Button(description="Show samples", icon="search", layout=W.Layout(width="auto"))
        self.contribution_button.add_class("wb-contribution-button")
        self.status = status_widget()
        children: list[W.Widget] = [
            W.HTML(
                "<b>Extractor comparison</b> <span style='color:#666'>— rank of each model per extractor "
                "(1 = best); click a line to select the model</span>"
            ),
            W.HBox([self.metric_menu, self.method_menu]),
            # wraps: with many extractors the two charts are wider than a notebook column together
            W.HBox([self.bump, W.VBox([self.matrix_box, self.matrix_note])], layout=W.Layout(flex_flow="row wrap")),
            self.summary,
        ]
        if self.ws is not None:
            self.grid = SampleGrid(
                self.ws,
                selection=selection,
                scores=self.scores,
                follow_selection=False,
                page_size=32,
                columns=8,
                title="samples that move the metric",
                background=background,
                detail_px=160,
            )
            self.grid.show(None, "choose a model and a metric, then “Show samples”")
            children += [
                W.HTML("<b>Which samples move the metric most?</b>"),
                W.HBox(
                    [self.model_menu, self.contribution_menu, self.contribution_extractor, self.contribution_button]
                ),
                self.status,
                self.grid,
            ]
        else:
            self.grid = None
        super().__init__(children)
        self.add_class("wb-extractor-comparison")
        self.set_trait("selection", selection)

        if extractors:
            self.extractor = extractors[0]
        traitlets.link((selection, "model"), (self, "model"))
        # the attribution's features follow the selection; the dropdown changes them here only
        traitlets.dlink(
            (selection, "extractor"),
            (self, "extractor"),
            transform=lambda name: name if name in extractors else self.extractor,
        )
        link_control(self, "metric", self.metric_menu)
        link_control(self, "method", self.method_menu)
        link_control(self, "model", self.model_menu)
        link_control(self, "contribution_metric", self.contribution_menu)
        link_control(self, "extractor", self.contribution_extractor)
        self.observe(lambda _: self._draw(), names=["metric", "method"])
        self.observe(self._on_model, names="model")
        self.observe(lambda _: self._follow_controls(), names=["model", "contribution_metric", "extractor"])
        self.contribution_button.on_click(lambda _: self.run_contributions())
        if comparison is not None:
            self.set_comparison(comparison)
        elif reports is not None:
            self.set_reports(reports)
        else:
            self.summary.value = "<i>metrics are being computed…</i>"

    # ------------------------------------------------------------------ validation

    @traitlets.validate("metric")
    def _valid_metric(self, proposal: Any) -> str:
        name = proposal["value"]
        if name not in self.metric_menu.options and not (name == "" and self.comparison is None):
            refuse("metric", name, self.metric_menu.options)
        return name

    @traitlets.validate("method")
    def _valid_method(self, proposal: Any) -> str:
        if proposal["value"] not in self.method_menu.options:
            refuse("method", proposal["value"], self.method_menu.options)
        return proposal["value"]

    @traitlets.validate("contribution_metric")
    def _valid_contribution_metric(self, proposal: Any) -> str:
        if proposal["value"] not in CONTRIBUTIONS:
            refuse("contribution_metric", proposal["value"], CONTRIBUTIONS)
        return proposal["value"]

    @traitlets.validate("extractor")
    def _valid_extractor(self, proposal: Any) -> str:
        allowed = self.ws.extractors if self.ws is not None else [""]
        # "" (no extractor chosen): the attribution keeps its own
        return choice_or_default("extractor", proposal["value"], allowed, self.extractor)

    # ------------------------------------------------------------------ data

    def set_reports(self, reports: Mapping[str, MetricReport]) -> None:
        """Compare the extractors of these metric reports (values only, no intervals)."""
        long = long_metric_frame(dict(reports))[["extractor", "model", "metric", "value"]]
        long = long[np.isfinite(long["value"].to_numpy(dtype=float))]
        self.set_comparison(compare_extractors(long))

    def set_comparison(self, comparison: ComparisonResult) -> None:
        """Show a comparison result."""
        self.comparison = comparison
        ranks = comparison.ranks
        ranked = [m for m in comparison.metrics if ranks.loc[ranks["metric"] == m, "rank"].notna().any()]
        options = ranked or list(comparison.metrics)
        wanted = self._wanted_metric if self._wanted_metric in options else ("fd" if "fd" in options else options[0])
        models = list(comparison.models)
        replace_options(self.model_menu, models, self.model if self.model in models else None)
        before = self.metric
        replace_options(self.metric_menu, options, wanted)
        if self.metric == before:
            self._draw()  # a new metric was drawn by its observer

    def bump_frame(self) -> pd.DataFrame:
        """``extractor, model, rank`` rows of the chosen metric (what the bump chart draws)."""
        if self.comparison is None:
            return pd.DataFrame(columns=["extractor", "model", "rank"])
        return self.comparison.bump_data(self.metric)

    def click_model(self, model: str) -> BackgroundTask | None:
        """Select ``model`` as clicking its line does, and show the samples that move the chosen
        metric most (returns that computation's task; None without a workspace)."""
        if self.comparison is None or model not in self.comparison.models:
            raise ValueError(f"model {model!r} is not in the comparison")
        self.model = model
        if self.ws is None or model not in self.ws.generated:
            return None
        return self.run_contributions(model)

    # ------------------------------------------------------------------ drawing

    def _draw(self) -> None:
        if self.comparison is None or not self.metric:
            return
        comp, metric = self.comparison, self.metric
        bump = self.bump_frame()
        order = self.extractor_order()
        extractors = [e for e in order if e in set(bump["extractor"])]
        reordered = len(extractors) >= MANY_EXTRACTORS and order != list(comp.extractors)
        selected = self.model
        with self.bump.batch_update():
            self.bump.data = []
            for i, model in enumerate(comp.models):
                part = bump[bump["model"] == model].set_index("extractor").reindex(extractors)
                width = 4 if model == selected else 2
                err = None
                if part["rank_low"].notna().any():
                    err = {
                        "type": "data",
                        "symmetric": False,
                        "array": finite_or_none(part["rank_high"] - part["rank"]),
                        "arrayminus": finite_or_none(part["rank"] - part["rank_low"]),
                        "width": 3,
                    }
                self.bump.add_scatter(
                    x=extractors,
                    y=finite_or_none(part["rank"]),
                    mode="lines+markers+text",
                    name=model,
                    text=[model if j == len(extractors) - 1 else "" for j in range(len(extractors))],
                    textposition="middle right",
                    error_y=err,
                    line={"width": width, "color": PALETTE[i % len(PALETTE)]},
                    marker={"size": 9},
                    cliponaxis=False,
                    hovertemplate=f"{html.escape(model)}: rank %{{y}} under %{{x}}<extra></extra>",
                )
            n = len(comp.models)
            tilt = len(extractors) >= MANY_EXTRACTORS
            self.bump.update_layout(
                height=max(360, 120 + 28 * n),
                width=max(560, 190 + BUMP_COLUMN_PX * len(extractors)),
                margin={"l": 50, "r": 130, "t": 40, "b": 80 if tilt else 40},
                title={
                    "text": f"rank by {metric} (1 = best)"
                    + (" — extractors ordered by agreement" if reordered else ""),
                    "font": {"size": 13},
                },
                xaxis={"tickangle": -35 if tilt else 0, "categoryorder": "array", "categoryarray": extractors},
                yaxis={"autorange": False, "range": [n + 0.5, 0.5], "dtick": 1, "title": "rank"},
                showlegend=False,
            )
        for trace in self.bump.data:
            trace.on_click(self._on_line_click)
        matrix = comp.agreement_matrix(metric, self.method) if len(comp.extractors) > 1 else pd.DataFrame()
        if not matrix.empty:
            keep = [e for e in order if e in matrix.index]
            matrix = matrix.loc[keep, keep]
        values = matrix.to_numpy(dtype=float)
        off_diagonal = values[~np.eye(len(values), dtype=bool)] if values.size else values
        n_models = len(comp.models)
        if len(comp.extractors) < 2:
            self.matrix_note.value = second_extractor_hint(self.ws, list(comp.extractors))
        elif not np.isfinite(off_diagonal).any():
            self.matrix_note.value = (
                "<div class='wb-agreement-note' style='margin:4px 0;padding:6px 8px;border-left:4px solid "
                "#1f5fa8;background:#eef3fa;font-size:12px;max-width:420px'>No agreement matrix: rank agreement "
                f"needs at least 3 models with a {html.escape(metric)} value under two extractors; this comparison "
                f"has {n_models} ({html.escape(', '.join(comp.models))}). Add generated sets to the workspace "
                f"(<code>workbench workspace add {html.escape(_root(self.ws))} CACHE --set NAME --role generated"
                "</code>).</div>"
            )
        else:
            self.matrix_note.value = ""
        self.matrix_box.layout.display = "none" if self.matrix_note.value else None
        with self.matrix.batch_update():
            self.matrix.data = []
            if not matrix.empty and not self.matrix_note.value:
                add_correlation_heatmap(self.matrix, matrix, "%{y} vs %{x}: %{z:.3f}<extra></extra>")
                self.matrix.update_traces(textfont={"size": 12 if len(matrix) < MANY_EXTRACTORS else 10})
            k = len(matrix)
            many = k >= MANY_EXTRACTORS
            self.matrix.update_layout(
                # cells of MATRIX_CELL_PX at least, so that the "0.73" in each stays legible at 10+ extractors
                height=max(360, 110 + MATRIX_CELL_PX * k),
                width=max(420, 190 + MATRIX_CELL_PX * k),
                margin={"l": 90, "r": 10, "t": 40, "b": 90 if many else 60},
                title={
                    "text": f"{self.method} agreement of {metric} ranks" + (" (clustered)" if reordered else ""),
                    "font": {"size": 13},
                },
                xaxis={"tickangle": -45 if many else 0},
                yaxis={"autorange": "reversed"},
            )
        agree = comp.agreement
        part = agree[(agree["metric"] == metric) & (agree["method"] == self.method)]
        lines = [
            f"{html.escape(r.extractor_a)} vs {html.escape(r.extractor_b)}: {r.correlation:.2f}"
            + (f" [{r.ci_low:.2f}, {r.ci_high:.2f}]" if np.isfinite(r.ci_low) else "")
            + f" over {r.n_models} models"
            for r in part.itertuples()
            if np.isfinite(r.correlation)
        ]
        if len(lines) > MAX_PAIR_LINES:
            lines = [self._many_pairs_summary(part)]
        note = "" if n_models >= 3 else " (agreement needs at least 3 models)"
        if len(comp.extractors) < 2:
            note = " (one extractor: nothing to compare it with)"
        boot = (
            "no bootstrap intervals (values from the metric tables)"
            if comp.resampling.startswith("none")
            else f"intervals: {comp.resampling}"
        )
        self.summary.value = (
            f"<div style='font-size:12px'>{'; '.join(lines) or 'no pairwise agreement'}{note}; "
            f"{html.escape(boot)}.</div>"
        )

    def extractor_order(self) -> list[str]:
        """The extractors in the order the charts show them: the comparison's order, or, from
        :data:`MANY_EXTRACTORS` on, clustered by rank agreement
        (:meth:`~workbench.analysis.extractor_ranking.ExtractorComparison.extractor_order`)."""
        comp = self.comparison
        if comp is None:
            return []
        if len(comp.extractors) < MANY_EXTRACTORS or not self.metric:
            return list(comp.extractors)
        clustered = comp.extractor_order(self.metric, self.method)
        return clustered + [e for e in comp.extractors if e not in clustered]

    def _many_pairs_summary(self, part: pd.DataFrame) -> str:
        """One sentence for many extractor pairs: the spread, the extremes, and who agrees least with the rest."""
        finite = part[np.isfinite(part["correlation"])]
        lo, hi = finite.loc[finite["correlation"].idxmin()], finite.loc[finite["correlation"].idxmax()]
        consensus = self.comparison.consensus(self.metric, self.method).dropna()

        def pair(r: pd.Series) -> str:
            return f"{html.escape(r['extractor_a'])} vs {html.escape(r['extractor_b'])} {r['correlation']:.2f}"

        text = (
            f"{len(finite)} pairs of extractors: median {finite['correlation'].median():.2f}; lowest {pair(lo)}; "
            f"highest {pair(hi)}"
        )
        if len(consensus):
            text += "; mean agreement with the others: " + ", ".join(
                f"{html.escape(str(e))} {v:.2f}" for e, v in consensus.items()
            )
        return text

    def _on_line_click(self, trace: Any, points: Any, state: Any) -> None:
        if points.point_inds:
            self.click_model(trace.name)

    def _on_model(self, change: dict[str, Any]) -> None:
        with self.bump.batch_update():
            for trace in self.bump.data:
                trace.line.width = 4 if trace.name == change["new"] else 2

    # ------------------------------------------------------------------ attribution

    def _current_request(self) -> tuple[str, str, str]:
        """``(model, metric, extractor)`` the controls describe now."""
        return (self.model, self.contribution_metric, self.extractor)

    def _follow_controls(self) -> None:
        """Once samples are shown, a change of the controls recomputes the grid for them."""
        if self.shown is None or self.ws is None or self.grid is None:
            return
        if self.model not in self.ws.generated:  # e.g. the selection moved to a set that is not a model
            self._requested = None
            self.set_trait("shown", None)
            self.grid.show(None, "choose a generated model, then “Show samples”")
            return
        if self._current_request() != self._requested:
            self.run_contributions()

    def run_contributions(
        self, model: str | None = None, metric: str | None = None, extractor: str | None = None
    ) -> BackgroundTask:
        """Show the samples that move ``metric`` most for ``model`` under ``extractor`` (each
        defaults to its control; given ones are set on the controls first, so the controls always
        describe what the grid shows). Computed in the background unless disabled; a result
        computed before is shown at once."""
        if self.ws is None or self.grid is None:
            raise ValueError("per-sample attribution needs a workspace (caches)")
        from ..analysis.attribution import metric_contributions

        ws = self.ws
        model = model or (self.model if self.model in ws.generated else ws.generated[0])
        metric = metric or self.contribution_metric
        ext = extractor or self.extractor
        if model not in ws.generated:
            raise ValueError(f"model must be a generated set, one of {ws.generated}; got {model!r}")
        if metric not in CONTRIBUTIONS:
            raise ValueError(f"metric must be one of {list(CONTRIBUTIONS)}; got {metric!r}")
        key = (model, metric, ext)
        self._requested = key
        with self.hold_trait_notifications():  # the controls show the request (one change each)
            self.model = model
            self.contribution_metric = metric
            self.extractor = ext
        ref = ws.reference

        def run() -> Any:
            if key in self._results:
                return self._results[key]
            return metric_contributions(ws.cache(ref, ext), ws.cache(model, ext), metric)

        def done(result: Any) -> None:
            self._results[key] = result
            if self._requested != key:
                return  # the controls moved on while this ran: their own request shows its result
            self.contributions = result
            descending, what = CONTRIBUTIONS[metric]
            set_name = model if result.sample_set == "fake" else ref
            name = f"{metric} [{ext}, {model}]" if result.sample_set == "real" else f"{metric} [{ext}]"
            self.scores.put(
                set_name, name, result.scores, label=f"{metric} score", descending=descending, meaning=result.meaning
            )
            samples = Samples.of(set_name, np.arange(len(result.scores)))
            self.grid.show(samples, f"{model} · {metric} [{ext}]: {what}", sort_by=name, descending=descending)
            self.set_trait("shown", key)

        def failed(exc: BaseException) -> None:
            if self._requested == key:
                self.grid.show(None, f"{model} · {metric} [{ext}]: failed ({type(exc).__name__}: {exc})")
                self.set_trait("shown", key)

        if key not in self._results:
            self.grid.show(None, f"{model} · {metric} [{ext}]: computing…")
        self._task = BackgroundTask(
            run,
            label=f"{metric} per sample of {model} ({ext})",
            status=self.status,
            on_done=done,
            on_error=failed,
            background=self.background and key not in self._results,
        ).start()
        return self._task

    def wait(self, timeout: float | None = 300) -> None:
        if self._task is not None:
            self._task.wait(timeout)

    # ------------------------------------------------------------------ static report

    def static_figures(self) -> list[go.Figure]:
        """The bump chart and the agreement matrix (when there is one) as plain plotly figures."""
        figures = [go.Figure(self.bump.to_dict())]
        if not self.matrix_note.value:
            figures.append(go.Figure(self.matrix.to_dict()))
        return figures

    def static_html(self) -> str:
        """What the report shows under the figures: why there is no matrix (if so) and the summary."""
        return self.matrix_note.value + self.summary.value
