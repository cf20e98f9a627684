"""``ClassHistogram``: real vs generated Top-1 classes, side-by-side samples, Top-N matching.

Bars: the share of each class among the reference samples (grey) and the selected model's
samples (blue) (:func:`workbench.analysis.classes.class_histogram`), classes sorted by real
frequency, and below them the difference ``generated - real`` (green where the model has more of a
class, red where it has fewer); after Top-N matching, the matched resample (orange). Every colour
is a legend entry; the selected class's bars get a black outline, which the subtitle names.

Classes come from :meth:`~workbench.workspace.Workspace.classes`: the sets' own labels (class
folders, an ``.npz``'s ``arr_1``) or the Top-1 class of a trained classifier extractor. The
subtitle and the info line say which (:func:`class_source_text`). A randomly initialised
classifier's classes (weights ``random-init``, ``--weights none``) are never shown: they are
noise. When a set has no classes, the view says why and exactly what to add
(:func:`missing_classes_text`).

Clicking a bar (or choosing in the class menu) selects that class in the shared selection and
shows that class's real and generated samples side by side.

Top-N matching (Kynkäänniemi et al., ICLR 2023): "Match histograms" runs
:func:`workbench.analysis.topn_matching.match_topn_histogram` on the classes shown (the
classifier's logits when they are its Top-1 classes, then any N; the labels otherwise, N = 1) of
the reference and the selected model, resamples the model's samples so that its Top-N class
histogram matches the reference's, and reports FD before (uniform resample) and after (matched
resample) under every extractor of the workspace; the matched histogram is drawn as a third bar.

State, as traits (``view.observe(callback, names="class_name")``, ``traitlets.link``): ``model``,
``class_name``, ``top_n``. Also :attr:`frame` (the histogram table), :meth:`click_class`,
:meth:`run_matching`, :attr:`matching` (the last
:class:`~workbench.analysis.topn_matching.TopNMatching`), :attr:`real_grid`, :attr:`fake_grid`.
"""

from __future__ import annotations

import html
from pathlib import PurePath
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import traitlets
from plotly.subplots import make_subplots

from ..analysis.classes import class_histogram
from ..cache import EmbeddingCache
from ..workspace import Samples, ScoreStore, Workspace, as_workspace
from ..workspace.sets import SetClasses
from .linking import SelectionLink, TraitValueError, choice_or_default, link_control, replace_options
from .plot_layout import legend_rows, top_layout
from .sample_grid import SampleGrid
from .selection import Selection
from .tasks import BackgroundTask, status_widget

ALL_CLASSES = "(all classes)"
MAX_BARS = 60
HEIGHT = 480
#: Colours of the bars; each is one legend entry (see :data:`LEGEND`).
REAL_COLOUR, FAKE_COLOUR, MORE_COLOUR, FEWER_COLOUR, MATCHED_COLOUR = (
    "#555555",
    "#1f77b4",
    "#2ca02c",
    "#d62728",
    "#ff7f0e",
)
#: Legend names of the difference bars and of the matched resample.
MORE_NAME = "more than real"
FEWER_NAME = "fewer than real"
WIDTH = 820
#: Width (in class slots) of a class's group of upper bars and of a difference bar.
GROUP_WIDTH = 0.8
DIFF_WIDTH = 0.5
#: What to do when a set has no classes (the two ways to get them).
HOW_TO_GET_CLASSES = (
    "extract it with class folders (--labels folders, the default for a folder of class folders: "
    "one sub-folder per class, e.g. real/Bag/0001.png) or add a trained classifier extractor, "
    "e.g. -e inception with its published weights (--weights default, not --weights none)"
)


def _named(set_name: str, role: str) -> str:
    """``"model_a (generated)"``; just the name when it is the role's name."""
    return set_name if set_name == role else f"{set_name} ({role})"


def _random_init(cache: EmbeddingCache) -> bool:
    """True when the cache's extractor ran with randomly initialised weights (``--weights none``)."""
    weights = cache.manifest.get("extractor", {}).get("weights", {}) or {}
    return str(weights.get("identity", "")).startswith("random-init")


def _classifier_of(classes: SetClasses) -> str | None:
    """The extractor whose Top-1 classes these are (``"top-1 of NAME"``), else None."""
    prefix = "top-1 of "
    return classes.source[len(prefix) :] if classes.source.startswith(prefix) else None


def classifier_classes(ws: Workspace, set_name: str, classifier: str) -> SetClasses | None:
    """The Top-1 class of ``classifier`` for every sample of ``set_name``, named with the classifier's
    own class names (e.g. ``demo-foreign``'s five tops on the demo domain's trousers and shoes);
    None when the set has no cache by it or its weights are a random initialisation."""
    if not ws.has(set_name, classifier):
        return None
    cache = ws.cache(set_name, classifier)
    if cache.logits is None or _random_init(cache):
        return None
    from ..analysis.classes import top_classes

    logits = cache.logits
    codes = top_classes(logits, 1, name=f"{set_name} logits")[:, 0]
    k = int(logits.shape[1])
    names = cache.manifest.get("extractor_class_names") or [f"class {i}" for i in range(k)]
    return SetClasses(codes, [str(n) for n in names], f"top-1 of {classifier}")


def shown_classes(ws: Workspace, set_name: str, classifier: str | None = None) -> SetClasses | None:
    """The set's classes as the view shows them: :meth:`Workspace.classes` (or, when ``classifier``
    is given, that classifier's Top-1 classes, :func:`classifier_classes`), except the Top-1
    classes of a randomly initialised classifier, which mean nothing (None then)."""
    if classifier is not None:
        return classifier_classes(ws, set_name, classifier)
    classes = ws.classes(set_name)
    if classes is None:
        return None
    clf = _classifier_of(classes)
    if clf is not None and ws.has(set_name, clf) and _random_init(ws.cache(set_name, clf)):
        return None
    return classes


def class_source_text(ws: Workspace, set_name: str, classes: SetClasses) -> str:
    """Where the classes of ``set_name`` come from, in words (``SetClasses.source`` explained)."""
    clf = _classifier_of(classes)
    if clf is not None:
        weights = ws.cache(set_name, clf).manifest.get("extractor", {}).get("weights", {}) or {}
        spec = str(weights.get("spec", ""))
        if weights.get("pretrained"):
            which = "its published weights"
        elif spec not in ("", "default", "none"):
            which = f"weights {PurePath(spec).name}"
        else:
            which = f"weights {weights.get('identity', 'of its own')}"
        return f"top-1 class predicted by the {clf} classifier ({which})"
    if classes.source == "labels":
        for cache in ws.caches_of(set_name).values():
            if cache.labels is None:
                continue
            kind = str(cache.manifest.get("source", {}).get("kind", ""))
            if kind in ("folder", "zip"):
                return "labels from the class folders of the images"
            if kind == "npz":
                return "labels from the .npz (arr_1)"
            return "labels given with the images"
        return "labels"
    return classes.source


def missing_classes_text(ws: Workspace, set_name: str) -> str:
    """Why ``set_name`` has no classes the view can show, and exactly what to add."""
    caches = ws.caches_of(set_name)
    reasons = []
    if not any(c.labels is not None for c in caches.values()):
        kinds = {str(c.manifest.get("source", {}).get("kind", "")) for c in caches.values()}
        if kinds & {"folder", "zip"}:
            reasons.append("its images have no labels (they were not in class folders, or --labels none was used)")
        elif "npz" in kinds:
            reasons.append("its .npz has no labels array (arr_1)")
        else:
            reasons.append("its images came without labels")
    untrained = sorted(e for e, c in caches.items() if c.logits is not None and _random_init(c))
    if untrained:
        reasons.append(
            f"{' and '.join(untrained)} {'has' if len(untrained) == 1 else 'have'} logits but randomly "
            "initialised weights (--weights none): their top-1 classes are noise and are not used"
        )
    plain = sorted(e for e, c in caches.items() if c.logits is None)
    if plain:
        reasons.append(f"{', '.join(plain)} {'is' if len(plain) == 1 else 'are'} not a classifier (no logits)")
    clf = ws.classifier()
    if clf is not None and _random_init(ws.cache(ws.reference, clf)):
        clf = None  # (a workspace that still offers a random classifier)
    if clf is not None and clf not in caches:
        reasons.append(f"it has no cache by the classifier {clf}")
    trained = any(c.logits is not None and not _random_init(c) for s in ws.sets for c in ws.caches_of(s).values())
    if not trained:
        reasons.append(f"the workspace has no trained classifier (extractors: {', '.join(ws.extractors)})")
    fix = HOW_TO_GET_CLASSES
    if clf is not None and clf not in caches:
        fix = f"extract it with -e {clf} (the workspace's trained classifier), or " + HOW_TO_GET_CLASSES
    return f"No classes for {set_name}: {'; '.join(reasons)}. To see its class histogram, {fix}."


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
        classifier: show this classifier extractor's Top-1 classes (with its own class names)
            instead of :meth:`Workspace.classes`, e.g. ``"demo-foreign"`` on the demo's domain,
            whose images belong to none of its classes. Default: the workspace's classes.

    Raises:
        ValueError: ``classifier`` is not an extractor of the workspace with trained logits for the
            reference.
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
        classifier: str | None = None,
    ) -> None:
        self.ws = as_workspace(workspace)
        if classifier is not None and classifier_classes(self.ws, self.ws.reference, classifier) is None:
            with_logits = [
                e
                for e in self.ws.extractors
                if self.ws.has(self.ws.reference, e) and self.ws.cache(self.ws.reference, e).logits is not None
            ]
            raise ValueError(
                f"classifier={classifier!r}: the reference {self.ws.reference!r} has no trained logits by it; "
                f"extractors with logits: {with_logits or 'none'}"
            )
        self.classifier = classifier
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
        self.real_classes: SetClasses | None = None
        self.fake_classes: SetClasses | None = None
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

        def side_grid(title: str) -> SampleGrid:
            return SampleGrid(
                self.ws,
                selection=selection,
                scores=self.scores,
                follow_selection=False,
                page_size=16,
                columns=4,
                display_px=56,
                title=title,
                background=background,
                detail_px=112,
            )

        self.real_grid, self.fake_grid = side_grid("real"), side_grid("generated")
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
        super().__init__([self.class_menu, self.info, self.figure, self.side_by_side, matching])
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

    def _source_subtitle(self) -> str:
        """Where the classes come from, and what the black outline means when one is drawn."""
        text = self._source_text()
        if text and self.class_name and not self.frame.empty:
            text += f" · black outline: the selected class “{self.class_name}”"
        return text

    def _source_text(self) -> str:
        """Where the classes of the reference and of the model come from (``SetClasses.source``)."""
        real_c, fake_c = self.real_classes, self.fake_classes
        if real_c is None or fake_c is None:
            return ""
        ref, model = self.ws.reference, self.model
        real_text = class_source_text(self.ws, ref, real_c)
        fake_text = class_source_text(self.ws, model, fake_c)
        if real_text == fake_text:
            text = f"classes: {real_text}"
        elif real_c.source == fake_c.source == "labels":  # stored differently
            text = f"classes: labels ({ref}: {real_text.removeprefix('labels ')}; {model}: {fake_text.removeprefix('labels ')})"
        else:
            text = f"classes of {ref}: {real_text}; of {model}: {fake_text} (not the same kind: compare with care)"
        return text

    def _rebuild(self) -> None:
        ref, model = self.ws.reference, self.model
        self.real_classes = real_c = shown_classes(self.ws, ref, self.classifier)
        self.fake_classes = fake_c = shown_classes(self.ws, model, self.classifier)
        if real_c is None or fake_c is None:
            missing = [s for s, c in ((ref, real_c), (model, fake_c)) if c is None]
            self.info.value = "<br>".join(
                f"<span class='wb-no-classes'>{html.escape(missing_classes_text(self.ws, s))}</span>"
                for s in dict.fromkeys(missing)
            )
            self.frame = pd.DataFrame()
            with self.figure.batch_update():
                self.figure.data = []
                self.figure.update_layout(
                    **top_layout(
                        HEIGHT,
                        f"No class histogram: {' and '.join(dict.fromkeys(missing))} "
                        f"{'has' if len(set(missing)) == 1 else 'have'} no classes",
                        subtitle="what to add is written above the chart",
                    )
                )
            replace_options(self.class_menu, [ALL_CLASSES], ALL_CLASSES)
            self._show_class_samples()
            return
        names = real_c.names if len(real_c.names) >= len(fake_c.names) else fake_c.names
        real = real_c.codes[real_c.codes >= 0]
        fake = fake_c.codes[fake_c.codes >= 0]
        hist = class_histogram(real, fake, class_names=names)
        self.histogram = hist
        frame = hist.to_frame()
        self.frame = frame
        shown = frame.head(MAX_BARS)
        title = f"Classes of {_named(ref, 'reference')} vs {_named(model, 'generated')}"
        if len(self.figure.data) >= 4:
            self._update_bars(shown, model, title)
        else:
            self._new_bars(shown, model, title)
        d = hist.divergences
        source = html.escape(self._source_text())
        self.info.value = (
            f"<span style='font-size:12px'>TV {d['tv']:.3f} · JS {d['js']:.3f} nats · "
            f"{len(frame)} classes · {len(real)} real, {len(fake)} generated · {source}</span>"
        )
        options = [ALL_CLASSES, *frame["class_name"].tolist()]
        wanted = self.class_name or ALL_CLASSES
        replace_options(self.class_menu, options, wanted if wanted in options else None)
        self.matching = None
        self.match_table.value = ""
        self._show_class_samples()

    def _real_name(self) -> str:
        ref = self.ws.reference
        return "reference" if ref == "reference" else f"reference ({ref})"

    @staticmethod
    def _fake_name(model: str) -> str:
        return f"generated ({model})"

    @staticmethod
    def _matched_name(n: int) -> str:
        return f"matched resample (Top-{n})"

    def _top(self, title: str) -> dict[str, Any]:
        """Title, subtitle and legend clear of the modebar, with room for every legend entry
        (the matched resample's included, before it is drawn)."""
        names = [
            self._real_name(),
            self._fake_name(self.model),
            MORE_NAME,
            FEWER_NAME,
            self._matched_name(5),
        ]
        return top_layout(
            HEIGHT,
            title,
            subtitle=self._source_subtitle(),
            legend_rows=legend_rows(names, WIDTH - 70),
            margin={"l": 60, "r": 10, "b": 80},
        )

    def _place_bars(self) -> None:
        """Side by side in each class's slot: reference, generated (and the matched resample) in
        the upper panel; the difference, one bar per class, in the lower one. Positions are set
        on each trace (``offset``, ``width``; ``barmode="overlay"``) because plotly groups the
        bars of both panels together (their x axes are shared)."""
        upper = [t for i, t in enumerate(self.figure.data) if i in (0, 1) or i >= 4]
        width = GROUP_WIDTH / max(len(upper), 1)
        for i, trace in enumerate(upper):
            trace.width = width
            trace.offset = -GROUP_WIDTH / 2 + i * width

    @staticmethod
    def _split(diff: np.ndarray) -> tuple[list[float | None], list[float | None]]:
        """The differences as two bar series: positive (more generated) and negative (fewer)."""
        more = [float(v) if v > 0 else None for v in diff]
        fewer = [float(v) if v < 0 else None for v in diff]
        return more, fewer

    def _new_bars(self, shown: pd.DataFrame, model: str, title: str) -> None:
        x = shown["class_name"].tolist()
        more, fewer = self._split(shown["difference"].to_numpy())
        with self.figure.batch_update():
            self.figure.data = []
            self.figure.add_bar(
                x=x,
                y=shown["real_share"],
                name=self._real_name(),
                marker_color=REAL_COLOUR,
                row=1,
                col=1,
                customdata=shown["real_count"],
                hovertemplate="%{x}: %{y:.2%} (%{customdata})<extra>real</extra>",
            )
            self.figure.add_bar(
                x=x,
                y=shown["fake_share"],
                name=self._fake_name(model),
                marker_color=FAKE_COLOUR,
                row=1,
                col=1,
                customdata=shown["fake_count"],
                hovertemplate="%{x}: %{y:.2%} (%{customdata})<extra>generated</extra>",
            )
            for y, name, colour in ((more, MORE_NAME, MORE_COLOUR), (fewer, FEWER_NAME, FEWER_COLOUR)):
                self.figure.add_bar(
                    x=x,
                    y=y,
                    name=name,
                    row=2,
                    col=1,
                    width=DIFF_WIDTH,  # one bar per class: the two never share a class
                    offset=-DIFF_WIDTH / 2,
                    marker_color=colour,
                    hovertemplate="%{x}: %{y:+.2%}<extra>generated − real</extra>",
                )
            self.figure.update_layout(barmode="overlay", width=WIDTH, **self._top(title))
            self._place_bars()
            self.figure.update_yaxes(tickformat=".0%", title_text="share of samples", row=1, col=1)
            self.figure.update_yaxes(tickformat="+.0%", title_text="generated − real", row=2, col=1)
        for trace in self.figure.data:
            trace.on_click(self._on_bar_click)

    def _update_bars(self, shown: pd.DataFrame, model: str, title: str) -> None:
        """Same four bar traces, new numbers: cheaper than rebuilding the figure."""
        x = shown["class_name"].tolist()
        more, fewer = self._split(shown["difference"].to_numpy())
        with self.figure.batch_update():
            if len(self.figure.data) > 4:  # drop the previous model's matched bars
                self.figure.data = self.figure.data[:4]
                self._place_bars()
            real, fake, up, down = self.figure.data[:4]
            real.x, real.y, real.customdata = x, shown["real_share"].to_numpy(), shown["real_count"].to_numpy()
            fake.x, fake.y, fake.customdata = x, shown["fake_share"].to_numpy(), shown["fake_count"].to_numpy()
            real.name = self._real_name()
            fake.name = self._fake_name(model)
            self.figure.update_layout(self._top(title))
            up.x, up.y = x, more
            down.x, down.y = x, fewer

    def _show_class_samples(self) -> None:
        name = self.class_name
        if not name or self.frame.empty:
            self.real_grid.show(None, "pick a class")
            self.fake_grid.show(None, "pick a class")
            return
        for grid, set_name in ((self.real_grid, self.ws.reference), (self.fake_grid, self.model)):
            classes = self.real_classes if set_name == self.ws.reference else self.fake_classes
            code = classes.code_of(name) if classes is not None else -1
            rows = np.flatnonzero(classes.codes == code) if code >= 0 else np.zeros(0, np.int64)
            grid.show(Samples.of(set_name, rows), f"{set_name}: “{name}” ({rows.size})")
        with self.figure.batch_update():
            for trace in self.figure.data[:2]:
                trace.marker.line = {"width": [2.5 if c == name else 0 for c in trace.x], "color": "#000"}
            self.figure.layout.title.subtitle.text = self._source_subtitle()

    def _on_class(self, change: dict[str, Any]) -> None:
        if not change["new"]:
            with self.figure.batch_update():
                for trace in self.figure.data[:2]:
                    trace.marker.line = {"width": 0}
                if not self.frame.empty:
                    self.figure.layout.title.subtitle.text = self._source_subtitle()
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
        real_c, fake_c = self.real_classes, self.fake_classes
        if real_c is None or fake_c is None:
            missing = ref if real_c is None else model
            raise ValueError("histogram matching needs classes: " + missing_classes_text(self.ws, missing))
        clf = _classifier_of(real_c)
        real_scores: Any
        fake_scores: Any
        names: list[str] | None = None  # the classifier's own names, from its caches
        if clf is not None and clf == _classifier_of(fake_c):
            # the classes shown are the classifier's Top-1: match on its logits (any N)
            real_scores, fake_scores = self.ws.cache(ref, clf), self.ws.cache(model, clf)
        else:
            if n != 1:
                raise ValueError(
                    f"Top-{n} matching needs the logits of a trained classifier, and the classes shown come from "
                    f"{class_source_text(self.ws, ref, real_c)}: only Top-1 matching is possible"
                )
            real_scores, fake_scores = real_c.codes, fake_c.codes
            names = real_c.names if len(real_c.names) >= len(fake_c.names) else fake_c.names
        features = {
            e: (self.ws.cache(ref, e).features, self.ws.cache(model, e).features)
            for e in self.ws.extractors
            if self.ws.has(ref, e) and self.ws.has(model, e)
        }

        def run():
            return match_topn_histogram(
                real_scores, fake_scores, features=features, n=n, seed=self.seed, class_names=names
            )

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
        if len(self.figure.data) >= 4:
            x = list(self.figure.data[0].x)
            matched = [float(classes["matched_share"].get(c, 0.0)) for c in x]
            with self.figure.batch_update():
                if len(self.figure.data) > 4:  # an earlier matching's bars
                    self.figure.data = self.figure.data[:4]
                self.figure.add_bar(
                    x=x,
                    y=matched,
                    name=self._matched_name(result.n),
                    marker_color=MATCHED_COLOUR,
                    row=1,
                    col=1,
                    hovertemplate=f"%{{x}}: %{{y:.2%}}<extra>matched resample of {html.escape(self.model)}</extra>",
                )
                self._place_bars()

    def wait(self, timeout: float | None = 300) -> None:
        if self._task is not None:
            self._task.wait(timeout)

    # ------------------------------------------------------------------ static report

    def static_figure(self) -> go.Figure:
        """The bar chart as a plain plotly figure."""
        return go.Figure(self.figure.to_dict())
