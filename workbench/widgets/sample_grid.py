"""``SampleGrid``: paged thumbnails of the selected samples, sorted by any per-sample score.

What it shows (``follow_selection=True``, the dashboard's grid):

1. the explicitly selected samples of the shared :class:`~workbench.widgets.selection.Selection`
   (a lasso in the embedding map, a memorization row, ...) when there are any, else
2. every sample of the selected model (the first generated set when none is selected),

in both cases only those of the selected class when one is selected. A grid made with
``follow_selection=False`` shows what :meth:`SampleGrid.show` gives it (the class view's
side-by-side grids, the extractor view's "samples that move the metric").

Each page (``page_size`` thumbnails, default 64) is one PNG sprite sent as binary bytes
(:class:`~workbench.widgets.sprite_canvas.SpriteCanvas`); each caption names the sample's set and
row (``"model_a\n#12"``) and, sorted by a score, the score (``"model_a\n#12 · 0.314"``), also when the
page mixes sets. A set without stored thumbnails (extracted with ``--thumbnails 0``) shows the
empty-state tile (:func:`~workbench.widgets.thumbnails.empty_tile`, "NO THUMBNAIL"), its cell says
why in its tooltip, and the enlarged view says so too. Sorting
uses :class:`~workbench.widgets.scores.ScoreStore` scores; a score that needs a k-NN search or
FD attribution is computed in a background task the first time (the status line says so) and
the grid re-sorts when it is ready. Clicking a thumbnail shows it enlarged with its metadata and
sets ``selection.focus``.

**Heatmap overlay.** The *heatmap* toggle draws each thumbnail of the page under its FD (or KD:
the menu beside it, ``heatmap_metric``) sensitivity heatmap under the selected extractor
(:class:`~workbench.workspace.heatmaps.HeatmapStore`, Kynkäänniemi et al. 2023: where the
extractor sees what moves the metric; each map scaled by its own maximum, dark = 0, pale yellow =
the maximum), blended at the *opacity* slider's value. Maps are computed for the page's samples
(in the background; the status line says so), kept in the workspace's state folder and reused;
the reference set's samples (whose maps would be zero) and extractors without a network layer to
explain (``pixels``) are shown plain, and the status line says why.

State, as traits (``grid.observe(callback, names="items")``, ``traitlets.link((emap, "samples"),
(grid, "samples"))``): ``model``, ``class_name``, ``samples``, ``samples_origin``, ``extractor``,
``focused``, ``sort_by``, ``descending``, ``page``, ``heatmap``, ``heatmap_opacity``, ``heatmap_metric``,
and read-only ``items`` (all samples shown, in display order), ``page_count``, ``page_items``,
``page_png``, ``captions``, ``detail``, ``heatmap_shown``. Also
:attr:`SampleGrid.values` (the sort scores of ``items``), :meth:`click`, :meth:`show`, :meth:`go`.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W
import numpy as np
import traitlets
from PIL import Image

from ..workspace import Samples, ScoreStore, Workspace, as_workspace
from ..workspace.heatmaps import HEATMAP_METRICS, HeatmapStore
from .linking import (
    SelectionLink,
    TraitValueError,
    check_samples,
    choice_or_default,
    link_control,
    refuse,
    replace_options,
    same,
)
from .selection import Selection
from .sprite_canvas import SpriteCanvas
from .tasks import BackgroundTask, set_status, status_widget
from .thumbnails import blank_tile, empty_state_html, empty_tile, encode_png, no_thumbnail_reason

DETAIL_PX = 224  # default size of the enlarged thumbnail
#: Side of the tiles when none of the sets shown has thumbnails (large enough for legible words).
EMPTY_PX = 64


def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return "–"
    if float(v).is_integer() and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.3g}" if abs(v) >= 1e-3 else f"{v:.2e}"


def resize_to(images: np.ndarray, px: int) -> np.ndarray:
    """``m x s x s x 3`` thumbnails resized to ``px`` (nearest-neighbour; no-op when equal)."""
    if images.shape[1] == px:
        return images
    if px % images.shape[1] == 0:
        f = px // images.shape[1]
        return np.repeat(np.repeat(images, f, axis=1), f, axis=2)
    return np.stack([np.asarray(Image.fromarray(im).resize((px, px), Image.Resampling.NEAREST)) for im in images])


def gather_thumbnails(ws: Workspace, samples: Samples, px: int | None = None) -> np.ndarray:
    """Thumbnails of ``samples`` (any mix of sets) as one ``m x px x px x 3`` array.

    ``px`` defaults to the largest thumbnail size among the sets involved (:data:`EMPTY_PX` when
    none has any); samples of sets without stored thumbnails get the empty-state tile
    (:func:`~workbench.widgets.thumbnails.empty_tile`: "NO THUMBNAIL" on a neutral tile; see
    :func:`has_thumbnails`).
    """
    by_set = {s: ws.thumbnail_px(s) for s in samples.set_names()}
    px = px or max([p for p in by_set.values() if p] or [EMPTY_PX])
    out = np.empty((len(samples), px, px, 3), dtype=np.uint8)
    for code, set_name in enumerate(samples.sets):
        pos = np.flatnonzero(samples.codes == code)
        if pos.size == 0:
            continue
        thumbs = ws.thumbnails(set_name, samples.index[pos])
        out[pos] = resize_to(thumbs, px) if thumbs is not None else empty_tile(px)
    return out


def has_thumbnails(ws: Workspace, set_name: str) -> bool:
    """True when some cache of ``set_name`` stores thumbnails (else it shows the empty state)."""
    return ws.thumbnail_px(set_name) > 0


def sample_caption(set_name: str, index: int, value: str | None = None) -> str:
    """The caption of one sample: its set and row on the first line, ``value`` (a score or a
    class) after the row on the second: ``"model_a\n#12 · 0.314"``."""
    second = f"#{int(index)}" + (f" · {value}" if value else "")
    return f"{set_name}\n{second}"


_EMPTY = Samples((), np.zeros(0, np.int64), np.zeros(0, np.int64))


class SampleGrid(W.VBox):
    """Paged, sortable thumbnails linked to the shared selection (see the module docstring).

    Traits (observe them, link them, set them):

    * what is shown: ``model``, ``class_name``, ``samples`` (explicitly selected samples, None
      for every sample of ``model``) and ``samples_origin`` (what they are; the heading). A grid
      that follows the selection has them linked to it; otherwise :meth:`show` sets ``samples``
      and ``samples_origin`` and ``model`` / ``class_name`` are not used.
    * ``extractor``: the features the scores are computed on (linked to the selection; "" there
      means the workspace's first extractor).
    * ``focused``: ``(set, index)`` of the enlarged sample (a click sets it; linked to the
      selection's ``focus`` when following it, else only written to it).
    * ``sort_by`` (a score name, see :meth:`ScoreStore.names`; choosing one sets ``descending``
      to that score's natural order), ``descending``, ``page``.
    * read-only: ``items`` (every sample shown, display order), ``page_count``, ``page_items``,
      ``page_png``, ``captions``, ``detail`` (the enlarged sample's metadata).

    Args:
        workspace: a :class:`~workbench.widgets.workspace.Workspace`, a folder, or caches.
        selection: the shared selection (a new one when omitted).
        scores: the score store (shared by the dashboard's views; a new one when omitted).
        follow_selection: show what the selection says (True) or only what :meth:`show` gives.
        page_size: thumbnails per page. columns: per row. display_px: cell size on screen.
        sort_by: initial score name. background: compute slow scores in a thread.
        title: heading. detail_px: size of the enlarged thumbnail (0: no detail pane).
        heatmaps: the heatmap store (shared by the dashboard's views; a new one when omitted).
    """

    selection = traitlets.Instance(Selection, read_only=True, help="the shared selection")
    model = traitlets.Unicode("", help="the set shown when no samples are selected ('' = the first generated)")
    class_name = traitlets.Unicode("", help="only samples of this class ('' = all)")
    samples = traitlets.Instance(Samples, allow_none=True, default_value=None, help="explicitly selected samples")
    samples_origin = traitlets.Unicode("", help="what the samples are (shown in the heading)")
    extractor = traitlets.Unicode("", help="features the scores are computed on")
    focused = traitlets.Tuple(allow_none=True, default_value=None, help="(set, index) of the enlarged sample")
    sort_by = traitlets.Unicode("index", help="score the samples are sorted by")
    descending = traitlets.Bool(False, help="sort direction")
    page = traitlets.Int(0, help="page shown (from 0)")
    page_count = traitlets.Int(1, read_only=True, help="number of pages")
    items = traitlets.Instance(Samples, read_only=True, help="every sample shown, in display order")
    page_items = traitlets.Instance(Samples, read_only=True, help="the samples of the page shown")
    page_png = traitlets.Bytes(b"", read_only=True, help="the page's thumbnails as one PNG sprite")
    captions = traitlets.List(traitlets.Unicode(), read_only=True, help="the page's captions")
    detail = traitlets.Dict(
        allow_none=True, default_value=None, read_only=True, help="metadata and scores of the enlarged sample"
    )
    heatmap = traitlets.Bool(False, help="draw each thumbnail under its metric sensitivity heatmap")
    heatmap_opacity = traitlets.Float(0.5, help="opacity of the heatmap overlay, 0 to 1")
    heatmap_metric = traitlets.Unicode("fd", help="the metric the heatmaps explain: 'fd' or 'kd'")
    heatmap_shown = traitlets.Int(0, read_only=True, help="thumbnails of the page drawn under their heatmap")

    def __init__(
        self,
        workspace: Workspace | Any,
        *,
        selection: Selection | None = None,
        scores: ScoreStore | None = None,
        follow_selection: bool = True,
        page_size: int = 64,
        columns: int = 8,
        display_px: int = 64,
        sort_by: str = "index",
        background: bool = True,
        title: str = "Samples",
        detail_px: int = DETAIL_PX,
        heatmaps: HeatmapStore | None = None,
    ) -> None:
        if page_size < 1 or columns < 1 or display_px < 8:
            raise ValueError(
                f"page_size and columns must be >= 1 and display_px >= 8; got {page_size}, {columns}, {display_px}"
            )
        self.ws = as_workspace(workspace)
        self.scores = scores if scores is not None else ScoreStore(self.ws)
        self.follow_selection = follow_selection
        self.page_size = int(page_size)
        self.columns = int(columns)
        self.display_px = int(display_px)
        self.background = background
        self._title = title
        self._unsorted = _EMPTY  # what the grid pages through, before sorting
        self._values = np.zeros(0)
        self._task: BackgroundTask | None = None
        self.heatmaps = heatmaps if heatmaps is not None else HeatmapStore(self.ws)
        self._heatmap_task: BackgroundTask | None = None

        self.heading = W.HTML("")
        self.heading.add_class("wb-grid-title")
        initial = sort_by if sort_by in self.scores.names() else "index"
        self.sort = W.Dropdown(
            options=self.scores.names(), value=initial, description="sort by", layout=W.Layout(width="230px")
        )
        self.sort.add_class("wb-sort")
        self.order = W.ToggleButton(
            value=self.scores.info(initial).descending,
            description="descending",
            icon="sort-amount-desc",
            layout=W.Layout(width="120px"),
        )
        self.order.add_class("wb-sort-order")
        self.prev_button = W.Button(description="◀", layout=W.Layout(width="40px"), tooltip="previous page")
        self.prev_button.add_class("wb-prev")
        self.next_button = W.Button(description="▶", layout=W.Layout(width="40px"), tooltip="next page")
        self.next_button.add_class("wb-next")
        self.page_label = W.HTML("")
        self.page_label.add_class("wb-page-label")
        self.status = status_widget()
        self.canvas = SpriteCanvas()
        self.canvas.add_class("wb-grid-canvas")
        self.detail_px = int(detail_px)
        side = max(self.detail_px, 8)
        self.detail_image = W.Image(
            value=encode_png(blank_tile(side // 4), scale=4),
            format="png",
            layout=W.Layout(width=f"{side}px", height=f"{side}px"),
        )
        self.detail_image.add_class("wb-detail-image")
        self.detail_info = W.HTML("<i>click a thumbnail to enlarge it</i>")
        self.detail_info.add_class("wb-detail-info")
        detail = W.VBox([self.detail_image, self.detail_info], layout=W.Layout(width=f"{side + 40}px"))
        detail.add_class("wb-detail")
        if self.detail_px == 0:
            detail.layout.display = "none"
        self.heatmap_toggle = W.ToggleButton(
            value=False,
            description="heatmap",
            icon="fire",
            tooltip="draw each thumbnail under its sensitivity heatmap (selected extractor and metric)",
            layout=W.Layout(width="100px"),
        )
        self.heatmap_toggle.add_class("wb-heatmap-toggle")
        self.metric_choice = W.Dropdown(
            options=list(HEATMAP_METRICS),
            value=self.heatmap_metric,
            tooltip="the metric the heatmaps explain",
            disabled=True,
            layout=W.Layout(width="70px"),
        )
        self.metric_choice.add_class("wb-heatmap-metric")
        self.opacity_slider = W.FloatSlider(
            value=0.5,
            min=0.0,
            max=1.0,
            step=0.05,
            description="opacity",
            readout_format=".2f",
            disabled=True,
            layout=W.Layout(width="220px"),
        )
        self.opacity_slider.add_class("wb-heatmap-opacity")
        controls = W.HBox(
            [
                self.sort,
                self.order,
                self.prev_button,
                self.page_label,
                self.next_button,
                self.heatmap_toggle,
                self.metric_choice,
                self.opacity_slider,
            ]
        )
        super().__init__([self.heading, controls, self.status, W.HBox([self.canvas, detail])])
        self.add_class("wb-sample-grid")
        self.set_trait("items", _EMPTY)
        self.set_trait("page_items", _EMPTY)
        self.set_trait("selection", selection if selection is not None else Selection())

        # The scores always follow the selected extractor; what is shown follows the selection only
        # when asked to (else show() sets it), and a click is passed on to the selection either way.
        linked = {"extractor": "extractor"}
        if follow_selection:
            linked.update(
                model="model",
                class_name="class_name",
                samples_origin="samples_origin",
                samples="samples",
                focused="focus",
            )
        else:
            self.observe(self._pass_focus_on, names="focused")
        self._selection_link = SelectionLink(self.selection, self, linked, resolve={"extractor": self._known_extractor})
        self.sort_by = initial
        self.descending = self.order.value
        # _on_sort_by runs before the dropdown link: it makes sure the dropdown offers the score
        self.observe(self._on_sort_by, names="sort_by")
        link_control(self, "sort_by", self.sort)
        link_control(self, "descending", self.order)
        self.observe(self._on_descending, names="descending")
        self.observe(self._on_content, names=["model", "class_name", "samples", "extractor"])
        self.observe(lambda _: self._render_heading(), names="samples_origin")
        self.observe(lambda _: self._render_page(), names="page")
        self.observe(self._on_focused, names="focused")
        link_control(self, "heatmap", self.heatmap_toggle)
        link_control(self, "heatmap_opacity", self.opacity_slider)
        link_control(self, "heatmap_metric", self.metric_choice)
        self.observe(self._on_heatmap, names=["heatmap", "heatmap_opacity", "heatmap_metric", "extractor"])
        self._order_label()
        self.prev_button.on_click(lambda _: self.go(self.page - 1))
        self.next_button.on_click(lambda _: self.go(self.page + 1))
        self.canvas.observe(self._on_click, names="clicked")
        self.refresh()

    # ------------------------------------------------------------------ validation

    def _known_extractor(self, name: str) -> str:
        """The selection's extractor as this grid uses it: "" (or one the workspace lacks) is the first."""
        return name if name in self.ws.extractors else self.ws.extractors[0]

    @traitlets.validate("extractor")
    def _valid_extractor(self, proposal: Any) -> str:
        return choice_or_default("extractor", proposal["value"], self.ws.extractors)  # "": the first

    @traitlets.validate("samples")
    def _valid_samples(self, proposal: Any) -> Samples | None:
        return check_samples(proposal["value"], self.ws)

    @traitlets.validate("focused")
    def _valid_focused(self, proposal: Any) -> tuple[str, int] | None:
        value = proposal["value"]
        if value is None:
            return None
        if len(value) != 2 or value[0] not in self.ws.sets or not 0 <= int(value[1]) < self.ws.size(value[0]):
            raise TraitValueError(f"focused must be (set, row) of a sample of the workspace; got {value!r}")
        return str(value[0]), int(value[1])

    @traitlets.validate("sort_by")
    def _valid_sort_by(self, proposal: Any) -> str:
        names = self._sort_names(self.samples)
        if proposal["value"] not in names:
            refuse("sort_by", proposal["value"], names)
        return proposal["value"]

    @traitlets.validate("heatmap_opacity")
    def _valid_opacity(self, proposal: Any) -> float:
        value = float(proposal["value"])
        if not 0.0 <= value <= 1.0:
            raise TraitValueError(f"heatmap_opacity must be in [0, 1]; got {value}")
        return value

    @traitlets.validate("heatmap_metric")
    def _valid_heatmap_metric(self, proposal: Any) -> str:
        if proposal["value"] not in HEATMAP_METRICS:
            refuse("heatmap_metric", proposal["value"], HEATMAP_METRICS)
        return proposal["value"]

    @traitlets.validate("page")
    def _valid_page(self, proposal: Any) -> int:
        page = int(proposal["value"])
        if not 0 <= page < self.page_count:
            raise TraitValueError(f"page must be in [0, {self.page_count}); got {page}")
        return page

    # ------------------------------------------------------------------ public state

    @property
    def values(self) -> np.ndarray:
        """The sort score of every item (display order)."""
        return self._values

    def show(
        self, samples: Samples | None, title: str = "", *, sort_by: str | None = None, descending: bool | None = None
    ) -> None:
        """Show these samples, described by ``title`` (the grid's ``samples`` and ``samples_origin``;
        for a grid that does not follow the selection); None clears. ``sort_by`` / ``descending``
        choose the order in the same step (the samples are sorted once, by that score)."""
        samples = check_samples(samples, self.ws)  # refused before anything changes
        if sort_by is not None:
            names = self._sort_names(samples)
            if sort_by not in names:
                refuse("sort_by", sort_by, names)
        before = (self.samples, self.samples_origin, self.sort_by, self.descending)
        with self.hold_trait_notifications():  # observers see the new samples and the new order at once
            self.samples_origin = title
            self.samples = samples
            self._update_sort_options()
            if sort_by is not None:
                self.sort_by = sort_by
        if descending is not None:
            self.descending = bool(descending)
        if all(same(a, b) for a, b in zip(before, (self.samples, self.samples_origin, self.sort_by, self.descending))):
            self.refresh()  # the same samples again: their scores may be new

    def put_score(
        self, name: str, set_name: str, values: np.ndarray, *, descending: bool = True, label: str | None = None
    ) -> None:
        """Add a per-sample score (e.g. an FD contribution or a human soft label) and sort by it."""
        self.scores.put(set_name, name, values, label=label, descending=descending)
        self._update_sort_options()
        before = (self.sort_by, self.descending)
        self.sort_by = name
        self.descending = bool(descending)
        if (self.sort_by, self.descending) == before:
            self._resort()  # same order, new values

    def go(self, page: int) -> None:
        """Show page ``page`` (clipped to the valid range)."""
        self.page = int(min(max(page, 0), self.page_count - 1))

    def click(self, position: int) -> dict[str, Any]:
        """Enlarge the thumbnail at ``position`` of the current page (as a click does): sets ``focused``."""
        if not 0 <= position < len(self.page_items):
            raise IndexError(f"position must be in [0, {len(self.page_items)}) on this page; got {position}")
        sample = self.page_items[position]
        self.focused = sample
        if self.detail is None or (self.detail["set"], self.detail["row"]) != sample:
            self._show_detail(*sample)  # focused already named it (e.g. from the selection)
        self.canvas.selected = position
        return dict(self.detail or {})

    def sample_info(self, set_name: str, index: int) -> dict[str, Any]:
        """Metadata and computed scores of one sample."""
        meta = self.ws.meta(set_name)
        row = meta.iloc[int(index)]
        info: dict[str, Any] = {
            "set": set_name,
            "role": self.ws.role(set_name),
            "row": int(index),
            "id": str(row.get("id", "")),
        }
        if not has_thumbnails(self.ws, set_name):
            info["thumbnail"] = no_thumbnail_reason(set_name)
        if "class_name" in meta.columns and isinstance(row.get("class_name"), str):
            info["label"] = row["class_name"]
        classes = self.ws.classes(set_name)
        if classes is not None and classes.codes[index] >= 0:
            info["class"] = f"{classes.names[int(classes.codes[index])]} ({classes.source})"
        for name in self.scores.names(set_name):
            if name in ("index", "class") or not self.scores.is_ready(set_name, self.extractor, name):
                continue
            v = float(self.scores.get(set_name, self.extractor, name)[index])
            if np.isfinite(v):
                info[self.scores.info(name).label] = _fmt(v)
        ext, metric = self.extractor or self.ws.extractors[0], self.heatmap_metric
        if self.heatmap and set_name != self.ws.reference and self.heatmaps.has(set_name, ext, [index], metric):
            delta = float(self.heatmaps.get(set_name, ext, [index], metric).delta[0])
            info[f"{metric.upper()} delta ({ext})"] = _fmt(delta)
        return info

    # ------------------------------------------------------------------ item selection and order

    def _model_set(self) -> str:
        return self.model if self.model in self.ws.sets else (self.ws.generated or [self.ws.reference])[0]

    def _sort_names(self, samples: Samples | None) -> list[str]:
        """The scores that can sort ``samples`` (or, following the selection without samples, the model's)."""
        if samples is not None and len(samples):
            sets = samples.set_names()
        else:
            sets = [self._model_set()] if self.follow_selection else []
        return self.scores.names(sets[0] if len(sets) == 1 else None)

    def _current_samples(self) -> Samples:
        if not self.follow_selection:
            return self.samples if self.samples is not None else _EMPTY
        if self.samples is not None:
            samples = self.samples
        else:
            set_name = self._model_set()
            samples = Samples.of(set_name, np.arange(self.ws.size(set_name)))
        if self.class_name:
            keep = np.zeros(len(samples), dtype=bool)
            for code, set_name in enumerate(samples.sets):
                pos = np.flatnonzero(samples.codes == code)
                classes = self.ws.classes(set_name)
                if classes is None or pos.size == 0:
                    continue
                c = classes.code_of(self.class_name)
                keep[pos] = classes.codes[samples.index[pos]] == c
            samples = samples.take(np.flatnonzero(keep))
        return samples

    def _describe(self) -> str:
        """What the grid shows, for its heading."""
        if not self.follow_selection:
            return self.samples_origin
        if self.samples is not None:
            what = f"{len(self.samples)} selected sample(s)" + (
                f" ({self.samples_origin})" if self.samples_origin else ""
            )
        else:
            what = self._model_set()
        return what + (f", class “{self.class_name}”" if self.class_name else "")

    def refresh(self) -> None:
        """Recompute what is shown (from the selection or :meth:`show`), sort, show page 0."""
        self._unsorted = self._current_samples()
        self._update_sort_options()
        self._resort(page=0)

    def _update_sort_options(self) -> None:
        names = self._sort_names(self.samples)
        if list(self.sort.options) != names:
            replace_options(self.sort, names, self.sort_by if self.sort_by in names else "index")

    def _order_label(self) -> None:
        self.order.description = "descending" if self.descending else "ascending"
        self.order.icon = "sort-amount-desc" if self.descending else "sort-amount-asc"

    def _on_sort_by(self, change: dict[str, Any]) -> None:
        self._update_sort_options()
        natural = self.scores.info(change["new"]).descending
        if self.descending != natural:
            self.descending = natural  # its observer re-sorts
        else:
            self._resort()

    def _on_descending(self, change: dict[str, Any]) -> None:
        self._order_label()
        self._resort()

    def _on_content(self, change: dict[str, Any]) -> None:
        if change["name"] == "extractor" and self._ext_independent():
            return  # nothing shown depends on the extractor
        if not self.follow_selection and change["name"] in ("model", "class_name"):
            return  # shows what show() gave it
        self.refresh()

    def _resort(self, page: int | None = None) -> None:
        """Sort what is shown by ``sort_by``, then show ``page`` (default: the current one, clipped)."""
        samples = self._unsorted
        name, ext = self.sort_by, self.extractor
        missing = [s for s in samples.set_names() if not self.scores.is_ready(s, ext, name)]
        if missing and self.background:
            items, values = samples, np.full(len(samples), np.nan)
            self._start_score_task(missing, ext, name)
        else:
            if missing:
                set_status(
                    self.status, f"computing {self.scores.info(name).label} of {', '.join(missing)}…", kind="busy"
                )
            items, values = self._sorted(samples, name, ext)
            if missing:
                set_status(self.status, "")
        self._values = values
        self.set_trait("items", items)
        self.set_trait("page_count", max(1, -(-len(items) // self.page_size)))
        target = min(self.page if page is None else page, self.page_count - 1)
        if target != self.page:
            self.page = target  # its observer renders the page
        else:
            self._render_page()

    def _sorted(self, samples: Samples, name: str, ext: str) -> tuple[Samples, np.ndarray]:
        if name == "index":  # the order given (row order of a set; a selection's own order)
            order = np.arange(len(samples))[::-1] if self.descending else np.arange(len(samples))
            return samples.take(order), samples.index[order].astype(np.float64)
        values = np.full(len(samples), np.nan)
        for code, set_name in enumerate(samples.sets):
            pos = np.flatnonzero(samples.codes == code)
            if pos.size:
                values[pos] = self.scores.get(set_name, ext, name)[samples.index[pos]]
        key = -values if self.descending else values
        key = np.where(np.isnan(key), np.inf, key)  # NaN last either way
        order = np.argsort(key, kind="stable")
        return samples.take(order), values[order]

    def _start_score_task(self, sets: list[str], ext: str, name: str) -> None:
        if self._task is not None and self._task.running:
            return  # the running task re-sorts when done

        def compute() -> None:
            for s in sets:
                self.scores.get(s, ext, name)

        label = f"{self.scores.info(name).label} of {', '.join(sets)} ({ext})"
        self._task = BackgroundTask(
            compute, label=label, status=self.status, on_done=lambda _: self._resort(), background=True
        ).start()

    def wait(self, timeout: float | None = 120) -> None:
        """Wait for a running score computation (tests, scripts)."""
        if self._task is not None:
            self._task.wait(timeout)

    # ------------------------------------------------------------------ rendering

    def _render_heading(self) -> None:
        label = self.scores.info(self.sort_by).label
        order = "↓" if self.descending else "↑"
        self.heading.value = (
            f"<b>{html.escape(self._title)}</b> — {html.escape(self._describe())}"
            f" <span style='color:#666'>sorted by {html.escape(label)} {order}</span>"
        )

    def _render_page(self) -> None:
        start = self.page * self.page_size
        page = self.items.take(np.arange(start, min(start + self.page_size, len(self.items))))
        vals = self._values[start : start + len(page)]
        self.set_trait("page_items", page)
        thumbs = gather_thumbnails(self.ws, page) if len(page) else np.zeros((0, 28, 28, 3), np.uint8)
        thumbs, shown = self._with_heatmaps(page, thumbs, compute=True)
        self.set_trait("heatmap_shown", shown)
        if shown:
            self.add_class("wb-heatmap-shown")
        else:
            self.remove_class("wb-heatmap-shown")
        label = self.scores.info(self.sort_by).label
        empty = {s: not has_thumbnails(self.ws, s) for s in page.set_names()}
        cells, captions = [], []
        for (set_name, index), v in zip(page, vals):
            text = self._caption(set_name, index, float(v))
            captions.append(text)
            title = f"{set_name} #{index} ({self._sample_id(set_name, index)})"
            if self.sort_by != "index":
                title += f" — {label} {_fmt(float(v))}"
            cell: dict[str, Any] = {"caption": text, "title": title}
            if empty[set_name]:
                cell["cls"] = "wb-no-thumb"
                cell["title"] = f"{title}\n{no_thumbnail_reason(set_name)}"
            cells.append(cell)
        self.canvas.show(thumbs, cells, columns=self.columns, display_px=self.display_px)
        self.set_trait("page_png", self.canvas.sprite)
        self.set_trait("captions", captions)
        n = len(self.items)
        self.page_label.value = (
            f"<span style='padding:0 6px'>page {self.page + 1} / {self.page_count} · {n} sample(s)</span>"
        )
        self._render_heading()
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.page_count - 1

    # ------------------------------------------------------------------ heatmap overlay

    def _on_heatmap(self, change: dict[str, Any]) -> None:
        self.opacity_slider.disabled = self.metric_choice.disabled = not self.heatmap
        if change["name"] == "extractor" and not self.heatmap:
            return
        if not self.heatmap:
            set_status(self.status, "")
        self._render_page()
        if self.detail is not None and change["name"] in ("heatmap", "heatmap_metric"):
            self._show_detail(self.detail["set"], self.detail["row"])  # its delta line follows the maps

    def _heatmap_sets(self, page: Samples) -> tuple[dict[str, np.ndarray], list[str]]:
        """``{set: rows}`` of the page whose heatmaps can be drawn, and why the others cannot."""
        ext = self.extractor or self.ws.extractors[0]
        why = self.heatmaps.supports(ext)
        if why is not None:
            return {}, [f"no heatmaps under {ext}: {why}"]
        wanted, notes = {}, []
        for set_name, rows in page.by_set().items():
            if set_name == self.ws.reference:
                notes.append(f"{set_name} is the reference (its maps would be zero)")
            elif not self.ws.has(set_name, ext):
                notes.append(f"{set_name} has no cache by {ext}")
            elif not has_thumbnails(self.ws, set_name):
                notes.append(f"{set_name} has no thumbnails")
            else:
                wanted[set_name] = rows
        return wanted, notes

    def _with_heatmaps(self, page: Samples, thumbs: np.ndarray, *, compute: bool) -> tuple[np.ndarray, int]:
        """The page's thumbnails with the heatmaps drawn on those whose maps are at hand, and how
        many; with ``compute``, the missing maps are computed (in the background: the page is
        drawn again when they are ready)."""
        if not self.heatmap or not len(page):
            return thumbs, 0
        wanted, notes = self._heatmap_sets(page)
        ext, metric = self.extractor or self.ws.extractors[0], self.heatmap_metric
        missing = {s: r for s, r in wanted.items() if not self.heatmaps.has(s, ext, r, metric)}
        if missing and compute:
            if self.background:
                self._start_heatmap_task(missing, ext, metric)
            else:
                for set_name, rows in missing.items():
                    self.heatmaps.get(set_name, ext, rows, metric)
                missing = {}
        out = np.array(thumbs, copy=True)
        shown = 0
        for set_name, rows in wanted.items():
            if set_name in missing:
                continue
            maps = self.heatmaps.get(set_name, ext, rows, metric)
            pos = np.flatnonzero(page.codes == page.sets.index(set_name))
            for j, p in enumerate(pos):
                out[p] = resize_to(maps.overlay(j, self.heatmap_opacity)[None], out.shape[1])[0]
            shown += len(pos)
        if compute and not missing:
            text = f"{metric.upper()} heatmaps under {ext}: {shown} of {len(page)} thumbnails"
            set_status(self.status, text + (f" ({'; '.join(notes)})" if notes else ""), kind="ok" if shown else "info")
        return out, shown

    def _start_heatmap_task(self, missing: dict[str, np.ndarray], ext: str, metric: str) -> None:
        if self._heatmap_task is not None and self._heatmap_task.running:
            return  # it draws the page again when done, and that computes what is still missing

        def compute() -> None:
            for set_name, rows in missing.items():
                self.heatmaps.get(set_name, ext, rows, metric)

        count = sum(len(r) for r in missing.values())
        self._heatmap_task = BackgroundTask(
            compute,
            label=f"{metric.upper()} heatmaps of {count} thumbnail(s) ({ext})",
            status=self.status,
            on_done=lambda _: self._render_page(),
            background=True,
        ).start()

    def wait_heatmaps(self, timeout: float | None = 300) -> None:
        """Wait for a running heatmap computation (tests, scripts)."""
        if self._heatmap_task is not None:
            self._heatmap_task.wait(timeout)

    def _caption(self, set_name: str, index: int, value: float) -> str:
        """Caption of one cell: set, row and (unless sorted by row) the sort value."""
        if self.sort_by == "index":
            return sample_caption(set_name, index)
        if self.sort_by == "class":
            classes = self.ws.classes(set_name)
            ok = classes is not None and np.isfinite(value) and value >= 0
            return sample_caption(set_name, index, classes.names[int(value)] if ok and classes else "?")
        return sample_caption(set_name, index, _fmt(value))

    def _sample_id(self, set_name: str, index: int) -> str:
        """The sample's id (its file path inside the source) for tooltips."""
        meta = self.ws.meta(set_name)
        return str(meta["id"].iloc[int(index)]) if "id" in meta.columns else f"row {index}"

    def _show_detail(self, set_name: str, index: int) -> None:
        thumbs = gather_thumbnails(self.ws, Samples.of(set_name, [index]))
        scale = max(1, max(self.detail_px, 64) // thumbs.shape[1])
        self.detail_image.value = encode_png(thumbs[0], scale=scale)
        info = self.sample_info(set_name, index)
        self.set_trait("detail", info)
        rows = "".join(
            f"<tr><td style='color:#666;padding-right:6px'>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
            for k, v in info.items()
        )
        self.detail_info.value = f"<table style='font-size:11px'>{rows}</table>"

    def _on_focused(self, change: dict[str, Any]) -> None:
        if change["new"] is None:
            return
        set_name, index = change["new"]
        self._show_detail(set_name, index)
        on_page = [i for i, s in enumerate(self.page_items) if s == (set_name, index)]
        self.canvas.selected = on_page[0] if on_page else -1

    def _pass_focus_on(self, change: dict[str, Any]) -> None:
        if change["new"] is not None:
            self.selection.focus = change["new"]

    def _on_click(self, change: dict[str, Any]) -> None:
        pos = change["new"]
        if pos is None or pos < 0:
            return
        try:
            if pos < len(self.page_items):
                self.click(pos)
        finally:
            self.canvas.clicked = -1

    def _ext_independent(self) -> bool:
        name = self.sort_by
        return name in ("index", "class") or name in self.scores._custom

    # ------------------------------------------------------------------ static report

    def static_html(self, pages: int = 1) -> str:
        """The first ``pages`` page(s) as inline PNG thumbnails with captions, for the report."""
        from .thumbnails import data_uri

        parts = [f"<div class='wb-static-grid'><div class='wb-grid-title'>{self.heading.value}</div>"]
        for p in range(min(pages, self.page_count)):
            start = p * self.page_size
            page = self.items.take(np.arange(start, min(start + self.page_size, len(self.items))))
            vals = self._values[start : start + len(page)]
            thumbs = gather_thumbnails(self.ws, page) if len(page) else None
            if thumbs is not None:
                thumbs = self._with_heatmaps(page, thumbs, compute=False)[0]
            empty = {s: not has_thumbnails(self.ws, s) for s in page.set_names()}
            parts.append(
                f"<div class='wb-grid-cells' style='grid-template-columns:repeat({self.columns}, "
                f"{self.display_px + 6}px)'>"
            )
            for j, ((set_name, index), v) in enumerate(zip(page, vals)):
                cap = "<br>".join(html.escape(line) for line in self._caption(set_name, index, float(v)).split("\n"))
                if empty[set_name]:
                    tile = empty_state_html(set_name, self.display_px)
                else:
                    assert thumbs is not None  # the page is not empty
                    tile = (
                        f"<img src='{data_uri(encode_png(thumbs[j]))}' width='{self.display_px}' "
                        f"height='{self.display_px}' style='image-rendering:pixelated'>"
                    )
                parts.append(
                    f"<div class='wb-grid-cell' title='{html.escape(set_name)} #{index}'>{tile}"
                    f"<div class='wb-grid-caption' style='max-width:{self.display_px + 6}px;overflow:hidden;"
                    f"text-overflow:ellipsis;white-space:nowrap'>{cap}</div></div>"
                )
            parts.append("</div>")
        parts.append("</div>")
        return "".join(parts)
