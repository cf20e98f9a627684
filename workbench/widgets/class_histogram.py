"""``ClassHistogram``: real vs generated Top-1 classes, side-by-side samples, Top-N matching.

Bars: the share of each class among the reference samples and the selected model's samples
(:func:`workbench.analysis.classes.class_histogram`), classes sorted by real frequency, and
below them the difference ``generated - real``. Classes are the Top-1 classes of the
workspace's classifier (an extractor with logits, e.g. Inception), else the dataset labels
(:meth:`~workbench.widgets.workspace.Workspace.classes`). Clicking a bar (or choosing in the
class menu) selects that class in the shared selection and shows that class's real and
generated samples side by side.

Top-N matching (Kynkäänniemi et al., ICLR 2023): "Match histograms" runs
:func:`workbench.analysis.topn_matching.match_topn_histogram` on the classifier's logits of the
reference and the selected model, resamples the model's samples so that its Top-N class
histogram matches the reference's, and reports FD before (uniform resample) and after (matched
resample) under every extractor of the workspace; the matched histogram is drawn as a third bar.

State, as traits (``view.observe(callback, names="class_name")``, ``traitlets.link``): ``model``,
``class_name``, ``top_n``. Also :attr:`frame` (the histogram table), :meth:`click_class`,
:meth:`run_matching`, :attr:`matching` (the last
:class:`~workbench.analysis.topn_matching.TopNMatching`), :attr:`real_grid`, :attr:`fake_grid`.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import traitlets
from plotly.subplots import make_subplots

from ..analysis.classes import class_histogram
from ..workspace import Samples, ScoreStore, Workspace, as_workspace
from .linking import SelectionLink, TraitValueError, choice_or_default, link_control, replace_options
from .sample_grid import SampleGrid
from .selection import Selection
from .tasks import BackgroundTask, status_widget

ALL_CLASSES = "(all classes)"
MAX_BARS = 60


class ClassHistogram(W.VBox):
    """Class histogram view (see the module docstring).

    Traits (observe them, link them, set them):

    * ``model``: the generated set compared with the reference (linked to the shared
      selection, whose "" or non-generated model means the first generated set).
    * ``class_name``: the selected class ("" = all; linked to the selection, the class menu and
      the bars). A class the histogram does not list shows as no choice in the menu.
    * ``top_n``: N of the Top-N matching (1-5, the slider).

    Args:
        workspace: workspace, folder or caches.
        selection: the shared selection (new when omitted).
        scores: shared score store (for the side-by-side grids).
        background: run Top-N matching in a thread.
        seed: seed of the matching draws.
    """

    selection = traitlets.Instance(Selection, read_only=True, help="the shared selection")
    model = traitlets.Unicode("", help="the generated set compared with the reference")
    class_name = traitlets.Unicode("", help="the selected class ('' = all)")
    top_n = traitlets.Int(1, help="N of Top-N histogram matching (1-5)")

    def __init__(
        self,
        workspace: Workspace | Any,
        *,
        selection: Selection | None = None,
        scores: ScoreStore | None = None,
        background: bool = True,
        seed: int = 0,
    ) -> None:
        self.ws = as_workspace(workspace)
        selection = selection if selection is not None else Selection()
        self.scores = scores if scores is not None else ScoreStore(self.ws)
        self.background = background
        self.seed = seed
        self.matching = None
        self._task: BackgroundTask | None = None
        self.frame = pd.DataFrame()

        self.figure = go.FigureWidget(
            make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32], vertical_spacing=0.04)
        )
        self.figure.add_class("wb-class-bar")
        self.class_menu = W.Dropdown(
            options=[ALL_CLASSES], value=ALL_CLASSES, description="class", layout=W.Layout(width="280px")
        )
        self.class_menu.add_class("wb-class-select")
        self.info = W.HTML("")
        self.info.add_class("wb-class-info")
        self.topn = W.IntSlider(
            value=1, min=1, max=5, description="Top-N", continuous_update=False, layout=W.Layout(width="260px")
        )
        self.topn.add_class("wb-topn")
        self.match_button = W.Button(
            description="Match histograms",
            icon="balance-scale",
            layout=W.Layout(width="auto"),
            tooltip="resample the model to the real Top-N class histogram and compare FD",
        )
        self.match_button.add_class("wb-match-button")
        self.match_table = W.HTML("")
        self.match_table.add_class("wb-match-table")
        self.status = status_widget()
        self.real_grid = SampleGrid(
            self.ws,
            selection=selection,
            scores=self.scores,
            follow_selection=False,
            page_size=16,
            columns=4,
            display_px=56,
            title="real",
            background=background,
            detail_px=112,
        )
        self.fake_grid = SampleGrid(
            self.ws,
            selection=selection,
            scores=self.scores,
            follow_selection=False,
            page_size=16,
            columns=4,
            display_px=56,
            title="generated",
            background=background,
            detail_px=112,
        )
        self.side_by_side = W.HBox([self.real_grid, self.fake_grid])
        self.side_by_side.add_class("wb-class-samples")
        matching = W.VBox(
            [
                W.HTML(
                    "<b>Top-N histogram matching</b> (Kynkäänniemi et al. 2023): does FD move when "
                    "only the class proportions change?"
                ),
                W.HBox([self.topn, self.match_button, self.status]),
                self.match_table,
            ]
        )
        super().__init__([W.HBox([self.class_menu, self.info]), self.figure, self.side_by_side, matching])
        self.add_class("wb-class-histogram")
        self.set_trait("selection", selection)

        self._selection_link = SelectionLink(
            selection, self, ["model", "class_name"], resolve={"model": self._known_model}
        )
        link_control(
            self,
            "class_name",
            self.class_menu,
            to_control=lambda name: name or ALL_CLASSES,
            from_control=lambda value: "" if value == ALL_CLASSES else value,
        )
        link_control(self, "top_n", self.topn)
        self.observe(lambda _: self._rebuild(), names="model")
        self.observe(self._on_class, names="class_name")
        self.match_button.on_click(lambda _: self.run_matching())
        self._rebuild()

    # ------------------------------------------------------------------ state

    def _known_model(self, name: str) -> str:
        """The selection's model as this view uses it: a generated set, else the first one."""
        return name if name in self.ws.generated else (self.ws.generated or [self.ws.reference])[0]

    @traitlets.validate("model")
    def _valid_model(self, proposal: Any) -> str:
        allowed = self.ws.generated or [self.ws.reference]
        return choice_or_default("model", proposal["value"], allowed)  # "": the first generated set

    @traitlets.validate("top_n")
    def _valid_top_n(self, proposal: Any) -> int:
        n = proposal["value"]
        if not self.topn.min <= n <= self.topn.max:
            raise TraitValueError(f"top_n must be in [{self.topn.min}, {self.topn.max}]; got {n}")
        return n

    def click_class(self, name: str) -> None:
        """Select class ``name`` as clicking its bar does ("" clears)."""
        if name and name not in set(self.frame.get("class_name", [])):
            raise ValueError(f"class {name!r} is not in the histogram; classes: {list(self.frame['class_name'])}")
        self.class_name = name

    # ------------------------------------------------------------------ building

    def _rebuild(self) -> None:
        real_c = self.ws.classes(self.ws.reference)
        model = self.model
        fake_c = self.ws.classes(model)
        if real_c is None or fake_c is None:
            missing = self.ws.reference if real_c is None else model
            self.info.value = (
                f"<i>no class information for {html.escape(missing)}: add a classifier extractor "
                "(with logits) or labels</i>"
            )
            self.frame = pd.DataFrame()
            with self.figure.batch_update():
                self.figure.data = []
            return
        names = real_c.names if len(real_c.names) >= len(fake_c.names) else fake_c.names
        real = real_c.codes[real_c.codes >= 0]
        fake = fake_c.codes[fake_c.codes >= 0]
        hist = class_histogram(real, fake, class_names=names)
        self.histogram = hist
        frame = hist.to_frame()
        self.frame = frame
        shown = frame.head(MAX_BARS)
        title = f"Top-1 classes ({real_c.source}): {self.ws.reference} vs {model}"
        if len(self.figure.data) >= 3:
            self._update_bars(shown, model, title)
        else:
            self._new_bars(shown, model, title)
        d = hist.divergences
        self.info.value = (
            f"<span style='font-size:12px'>TV {d['tv']:.3f} · JS {d['js']:.3f} nats · "
            f"{len(frame)} classes · {len(real)} real, {len(fake)} generated</span>"
        )
        options = [ALL_CLASSES, *frame["class_name"].tolist()]
        wanted = self.class_name or ALL_CLASSES
        replace_options(self.class_menu, options, wanted if wanted in options else None)
        self.matching = None
        self.match_table.value = ""
        self._show_class_samples()

    def _new_bars(self, shown: pd.DataFrame, model: str, title: str) -> None:
        x = shown["class_name"].tolist()
        diff = shown["difference"].to_numpy()
        with self.figure.batch_update():
            self.figure.data = []
            self.figure.add_bar(
                x=x,
                y=shown["real_share"],
                name=f"real ({self.ws.reference})",
                marker_color="#555",
                row=1,
                col=1,
                customdata=shown["real_count"],
                hovertemplate="%{x}: %{y:.2%} (%{customdata})<extra>real</extra>",
            )
            self.figure.add_bar(
                x=x,
                y=shown["fake_share"],
                name=f"generated ({model})",
                marker_color="#1f77b4",
                row=1,
                col=1,
                customdata=shown["fake_count"],
                hovertemplate="%{x}: %{y:.2%} (%{customdata})<extra>generated</extra>",
            )
            self.figure.add_bar(
                x=x,
                y=diff,
                name="generated − real",
                row=2,
                col=1,
                marker_color=np.where(diff >= 0, "#2ca02c", "#d62728").tolist(),
                hovertemplate="%{x}: %{y:+.2%}<extra>difference</extra>",
            )
            self.figure.update_layout(
                barmode="group",
                height=430,
                width=820,
                margin={"l": 50, "r": 10, "t": 70, "b": 80},
                title={"text": title, "font": {"size": 13}},
                legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0},
            )
            self.figure.update_yaxes(tickformat=".0%", row=1, col=1)
            self.figure.update_yaxes(tickformat="+.0%", row=2, col=1)
        for trace in self.figure.data:
            trace.on_click(self._on_bar_click)

    def _update_bars(self, shown: pd.DataFrame, model: str, title: str) -> None:
        """Same three bar traces, new numbers: cheaper than rebuilding the figure."""
        x = shown["class_name"].tolist()
        diff = shown["difference"].to_numpy()
        with self.figure.batch_update():
            if len(self.figure.data) > 3:  # drop the previous model's matched bars
                self.figure.data = self.figure.data[:3]
            real, fake, delta = self.figure.data[:3]
            real.x, real.y, real.customdata = x, shown["real_share"].to_numpy(), shown["real_count"].to_numpy()
            fake.x, fake.y, fake.customdata = x, shown["fake_share"].to_numpy(), shown["fake_count"].to_numpy()
            fake.name = f"generated ({model})"
            delta.x, delta.y = x, diff
            delta.marker.color = np.where(diff >= 0, "#2ca02c", "#d62728").tolist()
            self.figure.layout.title.text = title

    def _show_class_samples(self) -> None:
        name = self.class_name
        if not name or self.frame.empty:
            self.real_grid.show(None, "pick a class")
            self.fake_grid.show(None, "pick a class")
            return
        for grid, set_name in ((self.real_grid, self.ws.reference), (self.fake_grid, self.model)):
            classes = self.ws.classes(set_name)
            code = classes.code_of(name) if classes is not None else -1
            rows = np.flatnonzero(classes.codes == code) if code >= 0 else np.zeros(0, np.int64)
            grid.show(Samples.of(set_name, rows), f"{set_name}: “{name}” ({rows.size})")
        with self.figure.batch_update():
            for trace in self.figure.data[:2]:
                trace.marker.line = {"width": [2.5 if c == name else 0 for c in trace.x], "color": "#000"}

    def _on_class(self, change: dict[str, Any]) -> None:
        if not change["new"]:
            with self.figure.batch_update():
                for trace in self.figure.data[:2]:
                    trace.marker.line = {"width": 0}
        self._show_class_samples()

    def _on_bar_click(self, trace: Any, points: Any, state: Any) -> None:
        if not points.point_inds:
            return
        name = trace.x[points.point_inds[0]]
        self.class_name = "" if name == self.class_name else str(name)

    # ------------------------------------------------------------------ Top-N matching

    def run_matching(self, n: int | None = None) -> BackgroundTask:
        """Run Top-N histogram matching of the selected model (background unless disabled)."""
        from ..analysis.topn_matching import match_topn_histogram

        n = self.top_n if n is None else int(n)
        model, ref = self.model, self.ws.reference
        clf = self.ws.classifier()
        if clf is not None and self.ws.has(model, clf):
            real_scores, fake_scores = self.ws.cache(ref, clf), self.ws.cache(model, clf)
        else:
            if n != 1:
                raise ValueError(
                    "Top-N with N > 1 needs classifier logits (an extractor with logits, e.g. inception); "
                    "with dataset labels only Top-1 matching is possible"
                )
            real_c, fake_c = self.ws.classes(ref), self.ws.classes(model)
            if real_c is None or fake_c is None:
                raise ValueError("histogram matching needs classes for the reference and the model")
            real_scores, fake_scores = real_c.codes, fake_c.codes
        features = {
            e: (self.ws.cache(ref, e).features, self.ws.cache(model, e).features)
            for e in self.ws.extractors
            if self.ws.has(ref, e) and self.ws.has(model, e)
        }

        def run():
            return match_topn_histogram(real_scores, fake_scores, features=features, n=n, seed=self.seed)

        self.match_button.disabled = True
        self._task = BackgroundTask(
            run,
            label=f"Top-{n} matching of {model}",
            status=self.status,
            on_done=self._show_matching,
            on_error=lambda e: self._enable(),
            background=self.background,
        ).start()
        return self._task

    def _enable(self) -> None:
        self.match_button.disabled = False

    def _show_matching(self, result: Any) -> None:
        self.matching = result
        self._enable()
        table = result.to_frame("fd")
        rows = "".join(
            f"<tr><td>{html.escape(r.extractor)}</td><td>{r.fd_original:.4g}</td><td>{r.fd_weighted:.4g}</td>"
            f"<td>{100 * r.weighted_relative_change:+.1f}%</td><td>{r.fd_uniform:.4g}</td>"
            f"<td>{r.fd_matched:.4g}</td><td>{100 * r.relative_change:+.1f}%</td></tr>"
            for r in table.itertuples()
        )
        div = result.to_frame("divergence")
        tv0, tv1 = float(div["tv"].iloc[0]), float(div["tv"].iloc[3])
        self.match_table.value = (
            "<table class='wb-table'><thead><tr><th>extractor</th><th>FD original</th><th>FD weighted</th>"
            "<th>change</th><th>FD uniform resample</th><th>FD matched</th><th>change</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
            f"<div style='font-size:11px;color:#666'>Top-{result.n}: class-histogram TV {tv0:.3f} → {tv1:.3f}; "
            "'weighted' is the whole set under the matching weights (no draw noise); 'uniform resample' draws "
            "the same number with replacement without matching (the fair baseline for 'matched')</div>"
        )
        classes = result.to_frame("classes").set_index("class_name")
        if len(self.figure.data) >= 2:
            x = list(self.figure.data[0].x)
            matched = [float(classes["matched_share"].get(c, 0.0)) for c in x]
            with self.figure.batch_update():
                self.figure.add_bar(
                    x=x,
                    y=matched,
                    name="matched resample",
                    marker_color="#ff7f0e",
                    row=1,
                    col=1,
                    hovertemplate="%{x}: %{y:.2%}<extra>matched</extra>",
                )

    def wait(self, timeout: float | None = 300) -> None:
        if self._task is not None:
            self._task.wait(timeout)

    # ------------------------------------------------------------------ static report

    def static_figure(self) -> go.Figure:
        """The bar chart as a plain plotly figure."""
        return go.Figure(self.figure.to_dict())
