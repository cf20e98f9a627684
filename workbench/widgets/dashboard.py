"""``Workbench``: every view of a workspace in one linked dashboard, and its static report.

::

    from workbench.widgets import Workbench
    bench = Workbench.open("workspace/demo")      # finds every cache, shows the tabs
    bench                                         # (last line of a notebook cell: displays it)
    bench.report("report.html")                   # self-contained HTML, opens offline

Layout: a header (model, extractor and class of the shared selection), tabs (Metrics,
Embeddings, Classes, Memorization, Extractors, Human agreement, Heatmaps) and, below them, the one sample
grid every view feeds: select a table row, lasso points, click a class bar or a memorization
row and the grid shows those samples. The views share one
:class:`~workbench.widgets.selection.Selection`, one
:class:`~workbench.widgets.scores.ScoreStore` and one
:class:`~workbench.workspace.heatmaps.HeatmapStore` (the grid's heatmap overlay and the
*Heatmaps* tab, which shows the selected model's images under two extractors' FD heatmaps side
by side with each image's delta, computed when the tab is first opened).

Metric reports are computed (in the background unless ``background=False``) with
:func:`~workbench.widgets.workspace_metrics.workspace_reports` and saved in the workspace's
``.workbench`` folder, so the second opening shows the table at once. A metric that fails for a
set shows ``error`` in its cell (message as tooltip and under the table, and in the static
report); if the computation fails altogether, the metric table says why. Memorization analyses
and UMAP layouts are computed on request (or, for memorization, in the background after the
metrics) and saved likewise.

No tab raises on a workspace that opened: a view that cannot be made for it (or fails when the
metric tables arrive) is replaced by an error message in its tab (:attr:`Workbench.view_errors`),
and a view that does not apply says what to add (no training set, one extractor, a human study
of other models).
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd
import traitlets

from ..metrics.suite import MetricReport
from ..workspace import Samples, ScoreStore, Workspace, as_workspace, workspace_reports
from ..workspace.heatmaps import HeatmapStore
from .class_histogram import ClassHistogram
from .embedding_map import EmbeddingMap
from .extractor_comparison import ExtractorComparison
from .heatmaps import HeatmapComparison
from .human_agreement import HumanAgreement, metric_table_from_reports
from .linking import SelectionLink, link_control, select_samples
from .memorization import MemorizationBrowser
from .metric_table import MetricTable
from .sample_grid import SampleGrid
from .selection import Selection
from .tasks import BackgroundTask, status_widget

TABS = ("Metrics", "Embeddings", "Classes", "Memorization", "Extractors", "Human agreement", "Heatmaps")


class Workbench(traitlets.HasTraits):
    """The linked dashboard of a workspace (see the module docstring).

    Not a widget itself (``Widget.open`` is taken): :attr:`widget` is the ``VBox`` shown, and a
    ``Workbench`` displays as it. It is a :class:`traitlets.HasTraits` whose traits are what is
    selected in it, linked to the shared :attr:`selection` (and so to every view):
    ``bench.observe(callback, names="samples")``, ``bench.model = "noisy"``.

    Traits: ``model``, ``extractor`` (the header's dropdowns), ``class_name``, ``samples``,
    ``samples_origin`` (shown in the header), ``focused`` (the selection's ``focus``).

    Args:
        workspace: a :class:`~workbench.widgets.workspace.Workspace`, a folder, or caches.
        reports: precomputed ``{extractor: MetricReport}`` (else computed, saved, reused).
        metrics: metric names for the reports (``"default"``; see :func:`workbench.metrics.suite.evaluate`).
        bootstrap: bootstrap replicates for confidence intervals of the metric table (0 = none).
        seed: seed of every random choice (subsamples, PCA/UMAP, bootstrap, matching).
        max_points: points per set in the embedding map.
        background: compute metrics, UMAP, scores and memorization in threads (False: at once,
            blocking; for scripts, tests and reports).
        memorization: run the memorization analysis right after the metrics (True) or only when
            its tab asks (False).
        human_table: your own human study (:func:`workbench.analysis.human_data.load_user_study`);
            its ``model`` names must be generated set names (else the tab says so). Default: the
            shipped study with the published metrics, under a notice that it is not about your
            models when none of the generated sets is in it.
        umap_reducer: replaces umap-learn (tests).
    """

    selection = traitlets.Instance(Selection, read_only=True, help="the selection every view shares")
    model = traitlets.Unicode("", help="the selected generated set")
    extractor = traitlets.Unicode("", help="the selected extractor")
    class_name = traitlets.Unicode("", help="the selected class ('' = all)")
    samples = traitlets.Instance(Samples, allow_none=True, default_value=None, help="explicitly selected samples")
    samples_origin = traitlets.Unicode("", help="which view selected the samples")
    focused = traitlets.Tuple(allow_none=True, default_value=None, help="(set, index) of the sample looked at")

    def __init__(
        self,
        workspace: Workspace | Any,
        *,
        reports: Mapping[str, MetricReport] | None = None,
        metrics: str | Sequence[str] = "default",
        bootstrap: int = 0,
        seed: int = 0,
        max_points: int = 50_000,
        background: bool = True,
        memorization: bool = True,
        human_table: pd.DataFrame | None = None,
        human_n_boot: int = 1000,
        umap_reducer: Callable[..., np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        t0 = time.perf_counter()
        self.ws = as_workspace(workspace)
        ws = self.ws
        self.background = background
        self.metric_names = metrics
        self.bootstrap = bootstrap
        self.seed = seed
        self.timings: dict[str, float] = {}
        self.set_trait("selection", Selection(model=(ws.generated or [ws.reference])[0], extractor=ws.extractors[0]))
        self.scores = ScoreStore(ws)
        self.heatmaps = HeatmapStore(ws)
        self.reports: dict[str, MetricReport] | None = dict(reports) if reports is not None else None
        self._human_table = human_table
        self.human_n_boot = human_n_boot
        self._task: BackgroundTask | None = None
        #: ``{view: "ExceptionType: message"}`` of the views that could not be made (their tab says why)
        self.view_errors: dict[str, str] = {}

        def timed(name: str, fn: Callable[[], Any]) -> Any:
            t = time.perf_counter()
            try:
                return fn()
            except Exception as exc:  # the tab shows the error instead of the view
                self.view_errors[name] = f"{type(exc).__name__}: {exc}"
                return None
            finally:
                self.timings[name] = time.perf_counter() - t

        sel, scores = self.selection, self.scores
        self.metric_table = timed("metric_table", lambda: MetricTable(self.reports, selection=sel))
        self.grid = timed(
            "sample_grid",
            lambda: SampleGrid(
                ws, selection=sel, scores=scores, background=background, title="Samples", heatmaps=self.heatmaps
            ),
        )
        self.embedding_map = timed(
            "embedding_map",
            lambda: EmbeddingMap(
                ws, selection=sel, max_points=max_points, seed=seed, background=background, umap_reducer=umap_reducer
            ),
        )
        self.class_view = timed(
            "class_histogram",
            lambda: ClassHistogram(ws, selection=sel, scores=scores, background=background, seed=seed),
        )
        self.memorization = timed(
            "memorization",
            lambda: (
                MemorizationBrowser(ws, selection=sel, scores=scores, background=background, compute=False)
                if ws.train
                else None
            ),
        )
        self.comparison = timed(
            "extractor_comparison",
            lambda: ExtractorComparison(ws, reports=self.reports, selection=sel, scores=scores, background=background),
        )
        self.human = timed("human_agreement", self._make_human_view)
        self.heatmap_view = timed(
            "heatmaps",
            lambda: HeatmapComparison(ws, selection=sel, heatmaps=self.heatmaps, background=background),
        )

        root = str(ws.root) if ws.root is not None else "WS"
        memo_empty = (
            "<div class='wb-empty-view' style='font-size:13px'><i>No training set in this workspace</i>: the "
            "memorization browser needs the images the models were trained on. Add them with "
            f"<code>workbench evaluate ... --train DIR</code>, or <code>workbench workspace add {html.escape(root)} "
            "CACHE --set train --role train</code>.</div>"
        )
        human_empty = (
            "<i>waiting for the metric tables (your human study is compared with them)…</i>"
            if self._human_table is not None
            else ""
        )
        self.tabs = W.Tab(
            children=[
                self._tab("metric_table", self.metric_table),
                self._tab("embedding_map", self.embedding_map),
                self._tab("class_histogram", self.class_view),
                self._tab("memorization", self.memorization, memo_empty),
                self._tab("extractor_comparison", self.comparison),
                self._tab("human_agreement", self.human, human_empty),
                self._tab("heatmaps", self.heatmap_view),
            ]
        )
        for i, name in enumerate(TABS):
            self.tabs.set_title(i, name)
        self.tabs.add_class("wb-tabs")
        self.tabs.observe(self._on_tab, names="selected_index")

        self.model_menu = W.Dropdown(
            options=ws.generated,
            value=sel.model if sel.model in ws.generated else None,
            description="model",
            layout=W.Layout(width="260px"),
        )
        self.model_menu.add_class("wb-model-select")
        self.extractor_menu = W.Dropdown(
            options=ws.extractors, value=sel.extractor, description="extractor", layout=W.Layout(width="260px")
        )
        self.extractor_menu.add_class("wb-extractor-select")
        self.class_label = W.HTML("")
        self.class_label.add_class("wb-selection-label")
        self.clear_button = W.Button(
            description="clear selection", icon="times", tooltip="forget the selected class and samples"
        )
        self.clear_button.add_class("wb-clear-selection")
        self.status = status_widget()
        title = W.HTML(
            f"<h3 style='margin:4px 0'>Generative evaluation workbench</h3>"
            f"<div style='color:#666;font-size:12px'>{html.escape(str(ws.root or 'caches'))} — "
            f"{len(ws.generated)} generated set(s), reference “{html.escape(ws.reference)}”"
            + (f", training set “{html.escape(ws.train)}”" if ws.train else "")
            + f"; extractors {html.escape(', '.join(ws.extractors))}</div>"
            + "".join(
                f"<div class='wb-workspace-note' style='color:#8a6d00;font-size:12px'>⚠ {html.escape(n)}</div>"
                for n in ws.notes
            )
        )
        header = W.HBox([self.model_menu, self.extractor_menu, self.class_label, self.clear_button, self.status])
        self.widget = W.VBox(
            [title, header, self.tabs, W.HTML("<hr style='margin:6px 0'>"), self._tab("sample_grid", self.grid)]
        )
        self.widget.add_class("wb-workbench")

        # Every view above is linked to the shared selection (its traits follow it and set it); the
        # dashboard's own traits are linked to it the same way, and the header's menus to them.
        self._selection_link = SelectionLink(
            sel,
            self,
            {
                "model": "model",
                "extractor": "extractor",
                "class_name": "class_name",
                "samples_origin": "samples_origin",
                "samples": "samples",
                "focused": "focus",
            },
        )
        link_control(self, "model", self.model_menu)
        link_control(self, "extractor", self.extractor_menu)
        self.observe(lambda _: self._show_selection(), names=["class_name", "samples", "samples_origin"])
        self.clear_button.on_click(lambda _: self.clear_selection())
        self._show_selection()

        self._memorization_after_metrics = memorization
        if self.reports is None:
            self._task = BackgroundTask(
                self._compute_reports,
                label="metric tables",
                status=self.status,
                on_done=self._reports_ready,
                on_error=self._reports_failed,
                background=background,
            ).start()
        elif memorization and self.memorization is not None:
            self.memorization.compute()
        self.timings["total"] = time.perf_counter() - t0

    # ------------------------------------------------------------------ construction

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """Displayed as its widget (``bench`` on the last line of a cell shows the dashboard)."""
        return self.widget._repr_mimebundle_(**kwargs)

    @classmethod
    def open(
        cls,
        workspace_dir: str | os.PathLike,
        roles: Mapping[str, str] | None = None,
        *,
        state_dir: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> Workbench:
        """The dashboard of the workspace folder ``workspace_dir`` (``workspace.json`` when present,
        else every cache found in it; ``roles`` names the role of sets and ``state_dir`` where
        computed results are kept, see :meth:`~workbench.widgets.workspace.Workspace.open`).
        Other arguments as the constructor."""
        return cls(Workspace.open(workspace_dir, roles=roles, state_dir=state_dir), **kwargs)

    @classmethod
    def from_folders(
        cls,
        real: Any,
        generated: Mapping[str, str | os.PathLike] | Sequence[tuple[str, str | os.PathLike]],
        *,
        train: Any = None,
        test: Any = None,
        extractors: str | Sequence[str] = ("inception", "dinov2"),
        out: str | os.PathLike = "workspace/own",
        report: bool = True,
        progress: Any = True,
        **options: Any,
    ) -> Workbench:
        """The dashboard of your own folders of images, end to end (``workbench evaluate`` in Python).

        Runs :func:`workbench.workspace.evaluate.evaluate_folders` (extracts every folder under every
        extractor into ``out/caches``, reusing finished caches; writes ``out/workspace.json`` with the
        set names and roles; computes and saves one metric report per extractor), then opens the
        dashboard on that workspace with those reports and, with ``report=True``, writes its static
        report to ``out/report.html``.

        Args:
            real: the real images (reference): a folder, or ``(name, folder)`` (default name ``real``).
            generated: ``{name: folder}``, one set per model.
            train, test: the training images and held-out real images, as ``real`` (optional).
            extractors: extractor names (default ``inception`` and ``dinov2``).
            out: the workspace folder.
            report: write ``out/report.html``.
            progress: the :mod:`workbench.progress` contract for the extraction and metrics.
            **options: the other arguments of ``evaluate_folders`` (``weights``, ``limit``,
                ``batch_size``, ``device``, ``thumbnails``, ``extractor_options``, ``force``, ...) and
                of the constructor (``max_points``, ``background``, ``memorization``, ...);
                ``metrics``, ``bootstrap`` and ``seed`` go to both.

        Raises:
            TypeError: an option neither function takes.
            ValueError: a bad folder, set name or option, before anything is extracted.
        """
        import inspect

        from ..workspace.evaluate import REPORT_FILE, evaluate_folders

        shared = {k: options[k] for k in ("metrics", "bootstrap", "seed") if k in options}
        takes = set(inspect.signature(evaluate_folders).parameters)
        mine = set(inspect.signature(cls.__init__).parameters) - {"self", "workspace", "reports"}
        unknown = sorted(k for k in options if k not in takes and k not in mine)
        if unknown:
            raise TypeError(
                f"Workbench.from_folders() got unknown option(s) {unknown}; it takes the options of "
                "evaluate_folders and of the Workbench constructor"
            )
        result = evaluate_folders(
            real,
            generated,
            train=train,
            test=test,
            extractors=extractors,
            out=out,
            report=False,
            progress=progress,
            **{k: v for k, v in options.items() if k in takes and k not in mine},
            **shared,
        )
        bench = cls(
            result.workspace,
            reports=result.reports,
            **{k: v for k, v in options.items() if k in mine and k not in shared},
            **shared,
        )
        if report:
            bench.report(result.root / REPORT_FILE)
        return bench

    def _tab(self, name: str, view: W.Widget | None, empty: str = "") -> W.Widget:
        """What a tab shows: the view, else why it is missing (its error) or ``empty``."""
        if view is not None:
            return view
        error = self.view_errors.get(name)
        if error is None:
            return W.HTML(empty)
        box = W.HTML(
            "<div class='wb-view-error' style='color:#b00020;font-size:13px;max-width:980px'>"
            f"<b>This view cannot be shown for this workspace</b> ({html.escape(name.replace('_', ' '))}): "
            f"{html.escape(error)}</div>"
        )
        box.add_class("wb-view-error")
        return box

    def _make_human_view(self) -> HumanAgreement | None:
        if self._human_table is None:
            return HumanAgreement(
                selection=self.selection, seed=self.seed, n_boot=self.human_n_boot, workspace_models=self.ws.generated
            )
        if self.reports is None:
            return None  # made when the reports are ready
        table = metric_table_from_reports(self.reports)
        try:
            return HumanAgreement(
                table,
                self._human_table,
                selection=self.selection,
                seed=self.seed,
                n_boot=self.human_n_boot,
                workspace_models=self.ws.generated,
            )
        except ValueError as exc:
            raise ValueError(
                f"{exc}. The human table's model names must be the workspace's generated sets "
                f"({', '.join(self.ws.generated)}); see workbench.analysis.human_data.load_user_study"
            ) from exc

    def _compute_reports(self) -> dict[str, MetricReport]:
        return workspace_reports(self.ws, metrics=self.metric_names, bootstrap=self.bootstrap, seed=self.seed)

    def _reports_failed(self, exc: BaseException) -> None:
        if self.metric_table is not None:
            self.metric_table.show_error(exc)

    def _reports_ready(self, reports: dict[str, MetricReport]) -> None:
        self.reports = reports
        if self.metric_table is not None:
            self.metric_table.set_reports(reports)
        for name, update in (
            ("extractor_comparison", self._comparison_after_reports),
            ("human_agreement", self._human_after_reports),
        ):
            try:
                update()
            except Exception as exc:  # that tab shows the error; the others stand
                self.view_errors[name] = f"{type(exc).__name__}: {exc}"
                self._replace_tab(name, None)
        if self._memorization_after_metrics and self.memorization is not None:
            self.memorization.compute()

    def _comparison_after_reports(self) -> None:
        if self.comparison is not None and self.reports is not None:
            self.comparison.set_reports(self.reports)

    def _human_after_reports(self) -> None:
        if self._human_table is not None and self.human is None:
            self.human = self._make_human_view()
            self._replace_tab("human_agreement", self.human)

    def _replace_tab(self, name: str, view: W.Widget | None) -> None:
        """Show ``view`` (or, for None, the view's error) in the tab of view ``name``."""
        position = {"extractor_comparison": 4, "human_agreement": 5}[name]
        if view is None:
            setattr(self, {"extractor_comparison": "comparison", "human_agreement": "human"}[name], None)
        children = list(self.tabs.children)
        children[position] = self._tab(name, view)
        self.tabs.children = children

    def wait(self, timeout: float | None = 900) -> Workbench:
        """Wait for the background work started at opening (metric reports, memorization, heatmaps).

        Every task is waited for, then the first error, if any, is raised (each view also shows its
        own error in its status line), so that nothing is still running when this returns or raises.
        ``timeout`` (seconds) applies to each task; a task still running after it raises TimeoutError.
        """
        first: Exception | None = None
        for task in (self._task, self.memorization, self.heatmap_view):
            if task is None:
                continue
            try:
                task.wait(timeout)
            except TimeoutError:
                raise
            except Exception as exc:  # raised below, once every task has ended
                first = first or exc
        if first is not None:
            raise first
        return self

    # ------------------------------------------------------------------ selection

    def clear_selection(self) -> None:
        """Forget the selected class and samples (the model stays)."""
        with self.hold_trait_notifications():  # one change of the selection
            self.class_name = ""
            select_samples(self, None)

    def _show_selection(self) -> None:
        parts = []
        if self.class_name:
            parts.append(f"class <b>{html.escape(self.class_name)}</b>")
        if self.samples is not None:
            parts.append(f"<b>{len(self.samples)}</b> samples ({html.escape(self.samples_origin)})")
        self.class_label.value = ("<span style='padding:0 8px'>" + " · ".join(parts) + "</span>") if parts else ""

    def _on_tab(self, change: dict[str, Any]) -> None:
        if TABS[change["new"]] == "Memorization" and self.memorization is not None:
            self.memorization.compute()
        if TABS[change["new"]] == "Heatmaps" and self.heatmap_view is not None:
            self.heatmap_view.compute()

    # ------------------------------------------------------------------ report

    def report(self, path: str | os.PathLike, **kwargs: Any) -> Path:
        """Write a self-contained static HTML report of the views to ``path`` (opens offline).

        Waits for running background work first; a failed metric computation does not stop the
        report (its metric section says why). Options: see :func:`workbench.widgets.report.write_report`.
        """
        from .report import write_report

        if self._task is not None and not self._task.join(900):  # an error is shown by the metric table
            raise TimeoutError("metric tables still running after 900 s")
        if self.memorization is not None:
            self.memorization.join(900)  # a failed analysis is shown in the report, not raised
        return write_report(self, path, **kwargs)
