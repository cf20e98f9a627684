"""``HumanAgreement``: does a metric order the models the way human judges do?

A scatter of one metric's value (x) against the human error rate (y, with its standard error)
for every model of one dataset, with Spearman's rho and Kendall's tau-b and their bootstrap
intervals (over participants) from :func:`workbench.analysis.agreement.human_agreement`,
and a metric x dataset matrix of the sign-corrected Spearman agreement (+1 = same order as
humans). By default the shipped study and published metrics of Stein et al. (NeurIPS 2023);
pass your own metric table (e.g. :func:`metric_table_from_reports` of the workspace's reports)
and human table (:func:`workbench.analysis.human_data.load_user_study`).

Metric columns are named ``<metric>_<extractor>`` (``fd_dinov2``); the metric and extractor
menus choose the column (``inception_fd_rank`` is metric ``fd_rank`` of extractor
``inception``).

Given the workspace's generated set names (``workspace_models``, as the dashboard passes them),
the view says at the top when none of them is in the human table: the shipped study is the
published one of Stein et al. (their models, not yours), kept below as a reference (it shows
which metrics and extractors follow people), with how to load your own ratings
(:func:`~workbench.analysis.human_data.load_user_study`, ``human_table=``).

State, as traits (``view.observe(callback, names="column")``, ``traitlets.link``): ``dataset``,
``metric``, ``extractor``, read-only ``column``, ``model``, read-only ``own_models`` (the
workspace's models that have human data). Also :attr:`result`, :meth:`points` (the plotted
table), :attr:`stats` (the correlation rows shown), :attr:`notice`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import traitlets

from ..analysis.agreement import NON_METRIC_COLUMNS, human_agreement
from ..metrics.suite import MetricReport
from .json_values import finite_or_none
from .linking import TraitValueError, link_control, refuse, replace_options
from .plot_layout import add_correlation_heatmap
from .selection import Selection

SPECIAL_COLUMNS = {"inception_fd_rank": ("fd_rank", "inception")}


def split_column(column: str, suffixes: set[str]) -> tuple[str, str]:
    """``(metric, extractor)`` of a metric column (``fd_dinov2`` -> ``("fd", "dinov2")``)."""
    if column in SPECIAL_COLUMNS:
        return SPECIAL_COLUMNS[column]
    if "_" in column:
        head, tail = column.rsplit("_", 1)
        if tail in suffixes:
            return head, tail
    return column, "—"


def not_your_models_notice(result: Any, workspace_models: Sequence[str], *, shipped: bool) -> str:
    """HTML shown above the view when none of ``workspace_models`` has human data in ``result``:
    whose study this is, and how to load your own ratings."""
    models = result.models
    datasets = ", ".join(pd.unique(models["dataset"]))
    people = int(models["n_participants"].sum())
    yours = ", ".join(html.escape(m) for m in workspace_models) or "none"
    whose = (
        "the <b>published study of Stein et al.</b> (NeurIPS 2023, dgm-eval): "
        f"{len(models)} published models on {html.escape(datasets)}, judged by {people} people, with the "
        "paper's metrics"
        if shipped
        else f"a study of {len(models)} models on {html.escape(datasets)} ({people} participants)"
    )
    return (
        "<div class='wb-human-notice' style='margin:4px 0 8px;padding:8px 10px;border-left:4px solid #d9a400;"
        "background:#fff8e1;font-size:13px;max-width:980px'>"
        f"<b>These are not your models.</b> This is {whose}; none of your generated sets ({yours}) is in it. "
        "To compare your models with people, load your ratings with "
        '<code>workbench.analysis.human_data.load_user_study("ratings.csv")</code> (columns <code>model</code> = '
        "your set names, <code>score</code> = human error rate or realism, optional <code>participant</code>) and "
        "pass <code>human_table=...</code> (<code>Workbench.open(ws, human_table=...)</code>). "
        + (
            "Below, for reference: which metrics and extractors agree with people on the published models."
            if shipped
            else "Below: that study, for reference."
        )
        + "</div>"
    )


def metric_table_from_reports(reports: Mapping[str, MetricReport], dataset: str | None = None) -> pd.DataFrame:
    """One row per model, columns ``model[, dataset]`` and ``<metric>_<extractor>``, from metric reports."""
    frames = []
    for ext, rep in reports.items():
        frames.append(rep.values.rename(columns=lambda c, ext=ext: f"{c}_{ext}"))
    table = pd.concat(frames, axis=1)
    table.index.name = "model"
    table = table.reset_index()
    if dataset is not None:
        table.insert(0, "dataset", dataset)
    return table


class HumanAgreement(W.VBox):
    """Metric vs human judgments (see the module docstring).

    Traits (observe them, link them, set them):

    * ``dataset``: the dataset whose models are plotted (the dropdown).
    * ``metric``: the metric (the dropdown); choosing one keeps ``extractor`` when that metric
      has it, else picks the first extractor it has.
    * ``extractor``: the extractor of the metric column (one the metric has; not the
      workspace's extractors: these are the columns of the metric table).
    * ``column`` (read-only): the metric-table column shown, e.g. ``fd_dinov2``.
    * ``model``: the selected model (linked to the shared selection; its point is enlarged).

    Args:
        metric_table: one row per model (``dataset, model`` and metric columns); default the
            published DINOv2 leaderboard (:func:`~workbench.analysis.human_data.load_published_metrics`).
        human_table: per-participant human data; default the shipped study.
        selection: the shared selection (a model name of the table highlights its point).
        n_boot, seed: bootstrap replicates and seed of the intervals.
        dataset, metric, extractor: initial choices.
        workspace_models: the workspace's generated set names; when none has human data, a notice
            at the top says whose study is shown and how to load your own ratings.
    """

    selection = traitlets.Instance(Selection, read_only=True, help="the shared selection")
    dataset = traitlets.Unicode(help="the dataset plotted")
    metric = traitlets.Unicode(help="the metric plotted")
    extractor = traitlets.Unicode(help="the extractor of the metric column")
    column = traitlets.Unicode(read_only=True, help="the metric-table column plotted")
    model = traitlets.Unicode("", help="the selected model (its point is enlarged)")
    own_models = traitlets.List(
        traitlets.Unicode(), read_only=True, help="the workspace's generated sets that have human data"
    )

    def __init__(
        self,
        metric_table: pd.DataFrame | None = None,
        human_table: pd.DataFrame | None = None,
        *,
        selection: Selection | None = None,
        n_boot: int = 1000,
        seed: int = 0,
        dataset: str | None = None,
        metric: str | None = None,
        extractor: str | None = None,
        workspace_models: Sequence[str] | None = None,
    ) -> None:
        shipped = metric_table is None and human_table is None
        if metric_table is None:
            from ..analysis.human_data import load_published_metrics

            metric_table = load_published_metrics()
        selection = selection if selection is not None else Selection()
        self.result = human_agreement(metric_table, human_table, n_boot=n_boot, seed=seed)
        judged = set(self.result.human["model"])
        own = [m for m in (workspace_models or []) if m in judged]
        self.notice = W.HTML(
            not_your_models_notice(self.result, list(workspace_models), shipped=shipped)
            if workspace_models is not None and not own
            else ""
        )
        self.notice.add_class("wb-human-notice-box")
        models = self.result.models
        self._columns = [
            c for c in models.columns if c not in NON_METRIC_COLUMNS and c not in ("n_participants", "human_error_se")
        ]
        tails = [c.rsplit("_", 1)[1] for c in self._columns if "_" in c]
        suffixes = {t for t in tails if tails.count(t) >= 2}
        self._split = {c: split_column(c, suffixes) for c in self._columns}
        datasets = list(pd.unique(models["dataset"]))
        metrics = list(dict.fromkeys(m for m, _ in self._split.values()))
        self._wanted_extractor = extractor

        self.dataset_menu = W.Dropdown(
            options=datasets,
            value=dataset if dataset in datasets else datasets[0],
            description="dataset",
            layout=W.Layout(width="240px"),
        )
        self.dataset_menu.add_class("wb-human-dataset")
        default_metric = metric if metric in metrics else ("fd" if "fd" in metrics else metrics[0])
        self.metric_menu = W.Dropdown(
            options=metrics, value=default_metric, description="metric", layout=W.Layout(width="220px")
        )
        self.metric_menu.add_class("wb-human-metric")
        extractors = self._extractors_of(default_metric)
        self.extractor_menu = W.Dropdown(
            options=extractors,
            value=self._choose_extractor(extractors, None),
            description="features",
            layout=W.Layout(width="220px"),
        )
        self.extractor_menu.add_class("wb-human-extractor")
        self.scatter = go.FigureWidget()
        self.scatter.add_class("wb-human-scatter")
        self.stats_html = W.HTML("")
        self.stats_html.add_class("wb-human-stats")
        self.matrix = go.FigureWidget()
        self.matrix.add_class("wb-human-matrix")
        summary = W.HTML(
            f"<div style='font-size:11px;color:#666;max-width:900px'>{html.escape(self.result.summary)}</div>"
        )
        super().__init__(
            [
                self.notice,
                W.HTML(
                    "<b>Agreement with human judgments</b> <span style='color:#666'>— higher human error rate = "
                    "judges found the model's images harder to tell from real ones</span>"
                ),
                W.HBox([self.dataset_menu, self.metric_menu, self.extractor_menu]),
                W.HBox([self.scatter, W.VBox([self.stats_html], layout=W.Layout(width="300px"))]),
                self.matrix,
                summary,
            ]
        )
        self.add_class("wb-human-agreement")
        self.set_trait("selection", selection)
        self.set_trait("own_models", own)

        self.dataset = self.dataset_menu.value
        self.metric = default_metric
        self.extractor = self.extractor_menu.value
        self._update_column()
        link_control(self, "dataset", self.dataset_menu)
        link_control(self, "metric", self.metric_menu)
        link_control(self, "extractor", self.extractor_menu)
        traitlets.link((selection, "model"), (self, "model"))
        self.observe(self._on_metric, names="metric")
        self.observe(lambda _: self._update_column(), names="extractor")
        self.observe(lambda _: self._draw(), names=["dataset", "column"])
        self.observe(self._on_model, names="model")
        self._draw()
        self._draw_matrix()

    # ------------------------------------------------------------------ state

    def _extractors_of(self, metric: str) -> list[str]:
        """The extractors that ``metric`` has a column for."""
        return [e for m, e in self._split.values() if m == metric]

    def _choose_extractor(self, options: list[str], current: str | None) -> str:
        """The extractor asked for at construction when ``options`` has it, else ``current``, else the first."""
        for name in (self._wanted_extractor, current):
            if name in options:
                return name
        return options[0]

    @traitlets.validate("dataset")
    def _valid_dataset(self, proposal: Any) -> str:
        if proposal["value"] not in self.dataset_menu.options:
            refuse("dataset", proposal["value"], self.dataset_menu.options)
        return proposal["value"]

    @traitlets.validate("metric")
    def _valid_metric(self, proposal: Any) -> str:
        if proposal["value"] not in self.metric_menu.options:
            refuse("metric", proposal["value"], self.metric_menu.options)
        return proposal["value"]

    @traitlets.validate("extractor")
    def _valid_extractor(self, proposal: Any) -> str:
        options = self._extractors_of(self.metric)
        if proposal["value"] not in options:
            raise TraitValueError(
                f"metric {self.metric!r} has no column for extractor {proposal['value']!r}; its extractors: {options}"
            )
        return proposal["value"]

    def _on_metric(self, change: dict[str, Any]) -> None:
        options = self._extractors_of(change["new"])
        replace_options(self.extractor_menu, options, self._choose_extractor(options, self.extractor))
        self._update_column()

    def _update_column(self) -> None:
        for c, (m, e) in self._split.items():
            if m == self.metric and e == self.extractor:
                self.set_trait("column", c)
                return

    def points(self) -> pd.DataFrame:
        """``model, value, human_error_rate, human_error_se`` of the chosen dataset and column."""
        models = self.result.models
        part = models[models["dataset"] == self.dataset]
        out = part[["model", self.column, "human_error_rate", "human_error_se"]].rename(columns={self.column: "value"})
        return out[np.isfinite(out["value"].to_numpy(dtype=float))].reset_index(drop=True)

    @property
    def stats(self) -> pd.DataFrame:
        """The correlation rows (both methods) of the chosen column and dataset."""
        corr = self.result.correlations
        return corr[(corr["metric"] == self.column) & (corr["dataset"] == self.dataset)].reset_index(drop=True)

    # ------------------------------------------------------------------ drawing

    def _on_model(self, change: dict[str, Any]) -> None:
        if not self.scatter.data:
            return
        shown = list(self.scatter.data[0].text)
        if change["new"] in shown or change["old"] in shown:  # only then does a marker change
            self.scatter.data[0].marker.size = [14 if m == change["new"] else 9 for m in shown]

    def _draw(self) -> None:
        if not self.column:
            return
        pts = self.points()
        selected = self.model
        sizes = [14 if m == selected else 9 for m in pts["model"]]
        with self.scatter.batch_update():
            self.scatter.data = []
            self.scatter.add_scatter(
                x=pts["value"],
                y=pts["human_error_rate"],
                mode="markers+text",
                text=pts["model"],
                textposition="top center",
                textfont={"size": 9},
                error_y={"type": "data", "array": finite_or_none(pts["human_error_se"]), "width": 2},
                marker={"size": sizes, "color": "#1f77b4"},
                hovertemplate="%{text}: %{x:.4g}, human error %{y:.3f}<extra></extra>",
            )
            self.scatter.update_layout(
                height=420,
                width=620,
                margin={"l": 60, "r": 10, "t": 40, "b": 50},
                title={"text": f"{self.column} vs human error rate — {self.dataset}", "font": {"size": 13}},
                xaxis_title=self.column,
                yaxis_title="human error rate",
                showlegend=False,
            )
        rows = []
        for r in self.stats.itertuples():
            ci = f" [{r.ci_low:.2f}, {r.ci_high:.2f}]" if np.isfinite(r.ci_low) else ""
            agree = (
                ""
                if not np.isfinite(r.agreement)
                else f"<br><span style='color:#666'>agreement {r.agreement:+.2f}</span>"
            )
            name = "Spearman ρ" if r.method == "spearman" else "Kendall τ<sub>b</sub>"
            value = f"{r.correlation:+.2f}{ci}" if np.isfinite(r.correlation) else "n/a (fewer than 3 models)"
            rows.append(f"<div style='margin:6px 0'><b>{name}</b> {value}{agree}</div>")
        n = int(self.stats["n_models"].iloc[0]) if len(self.stats) else 0
        hib = self.stats["higher_is_better"].iloc[0] if len(self.stats) else None
        orient = {True: "higher is better", False: "lower is better", None: "no orientation"}.get(hib, "")
        self.stats_html.value = (
            f"<div style='font-size:13px'>{''.join(rows)}<div style='color:#666'>{n} models; "
            f"{html.escape(orient)}; 95% CI over participants</div></div>"
        )

    def _draw_matrix(self) -> None:
        m = self.result.agreement_matrix("spearman", "agreement")
        m = m.dropna(how="all")
        with self.matrix.batch_update():
            self.matrix.data = []
            if not m.empty:
                add_correlation_heatmap(self.matrix, m, "%{y} on %{x}: %{z:.2f}<extra></extra>")
            self.matrix.update_layout(
                height=60 + 24 * max(len(m), 1),
                width=760,
                margin={"l": 140, "r": 10, "t": 40, "b": 40},
                title={"text": "Spearman agreement with humans (+1 = same order)", "font": {"size": 13}},
                yaxis={"autorange": "reversed"},
            )

    # ------------------------------------------------------------------ static report

    def static_figures(self) -> list[go.Figure]:
        """The scatter and the agreement matrix as plain plotly figures."""
        return [go.Figure(self.scatter.to_dict()), go.Figure(self.matrix.to_dict())]

    def static_html(self) -> str:
        """The correlations shown beside the scatter."""
        return self.stats_html.value
