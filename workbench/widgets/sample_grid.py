"""``SampleGrid``: paged thumbnails of the selected samples, sorted by any per-sample score.

What it shows (``follow_selection=True``, the dashboard's grid):

1. the explicitly selected samples of the shared :class:`~workbench.widgets.selection.Selection`
   (a lasso in the embedding map, a memorization row, ...) when there are any, else
2. every sample of the selected model (the first generated set when none is selected),

in both cases only those of the selected class when one is selected. A grid made with
``follow_selection=False`` shows what :meth:`SampleGrid.show` gives it (the class view's
side-by-side grids, the extractor view's "samples that move the metric").

Each page (``page_size`` thumbnails, default 64) is one PNG sprite sent as binary bytes
(:class:`~workbench.widgets.sprite_canvas.SpriteCanvas`); captions show the sort score. Sorting
uses :class:`~workbench.widgets.scores.ScoreStore` scores; a score that needs a k-NN search or
FD attribution is computed in a background task the first time (the status line says so) and
the grid re-sorts when it is ready. Clicking a thumbnail shows it enlarged with its metadata and
sets ``selection.focus``.

Python state: :attr:`items` (all samples shown, in display order), :attr:`page`,
:attr:`page_count`, :attr:`page_items`, :attr:`page_png`, :attr:`captions`,
:attr:`sort_by`, :attr:`descending`, :meth:`click`, :attr:`detail`.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W
import numpy as np
from PIL import Image

from .scores import ScoreStore
from .selection import Samples, Selection
from .sprite_canvas import SpriteCanvas
from .tasks import BackgroundTask, set_status, status_widget
from .thumbnails import encode_png, placeholder
from .workspace import Workspace, as_workspace

DETAIL_PX = 224  # default size of the enlarged thumbnail


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

    ``px`` defaults to the largest thumbnail size among the sets involved; sets without stored
    thumbnails get a grey placeholder.
    """
    by_set = {s: ws.thumbnail_px(s) for s in samples.set_names()}
    px = px or max([p for p in by_set.values() if p] or [28])
    out = np.empty((len(samples), px, px, 3), dtype=np.uint8)
    for code, set_name in enumerate(samples.sets):
        pos = np.flatnonzero(samples.codes == code)
        if pos.size == 0:
            continue
        thumbs = ws.thumbnails(set_name, samples.index[pos])
        out[pos] = resize_to(thumbs, px) if thumbs is not None else placeholder(px)
    return out


class SampleGrid(W.VBox):
    """Paged, sortable thumbnails linked to the shared selection (see the module docstring).

    Args:
        workspace: a :class:`~workbench.widgets.workspace.Workspace`, a folder, or caches.
        selection: the shared selection (a new one when omitted).
        scores: the score store (shared by the dashboard's views; a new one when omitted).
        follow_selection: show what the selection says (True) or only what :meth:`show` gives.
        page_size: thumbnails per page. columns: per row. display_px: cell size on screen.
        sort_by: initial score name. background: compute slow scores in a thread.
        title: heading. detail_px: size of the enlarged thumbnail (0: no detail pane).
    """

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
    ) -> None:
        if page_size < 1 or columns < 1 or display_px < 8:
            raise ValueError(f"page_size and columns must be >= 1 and display_px >= 8; got {page_size}, "
                             f"{columns}, {display_px}")
        self.ws = as_workspace(workspace)
        self.selection = selection if selection is not None else Selection()
        self.scores = scores if scores is not None else ScoreStore(self.ws)
        self.follow_selection = follow_selection
        self.page_size = int(page_size)
        self.columns = int(columns)
        self.display_px = int(display_px)
        self.background = background
        self._title = title
        self._explicit: Samples | None = None
        self._explicit_title = ""
        self._items = Samples((), np.zeros(0), np.zeros(0))
        self._values = np.zeros(0)
        self._page_items = self._items
        self.page_png = b""
        self.captions: list[str] = []
        self.detail: dict[str, Any] | None = None
        self._task: BackgroundTask | None = None

        self.heading = W.HTML("")
        self.heading.add_class("wb-grid-title")
        self.sort = W.Dropdown(options=self.scores.names(), value=sort_by if sort_by in self.scores.names() else "index",
                               description="sort by", layout=W.Layout(width="230px"))
        self.sort.add_class("wb-sort")
        self.order = W.ToggleButton(value=self.scores.info(self.sort.value).descending, description="descending",
                                    icon="sort-amount-desc", layout=W.Layout(width="120px"))
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
        self.detail_image = W.Image(value=encode_png(placeholder(side // 4), scale=4), format="png",
                                    layout=W.Layout(width=f"{side}px", height=f"{side}px"))
        self.detail_image.add_class("wb-detail-image")
        self.detail_info = W.HTML("<i>click a thumbnail to enlarge it</i>")
        self.detail_info.add_class("wb-detail-info")
        detail = W.VBox([self.detail_image, self.detail_info], layout=W.Layout(width=f"{side + 40}px"))
        detail.add_class("wb-detail")
        if self.detail_px == 0:
            detail.layout.display = "none"
        controls = W.HBox([self.sort, self.order, self.prev_button, self.page_label, self.next_button])
        super().__init__([self.heading, controls, self.status, W.HBox([self.canvas, detail])])
        self.add_class("wb-sample-grid")
        self._page = 0

        self.sort.observe(self._on_sort, names="value")
        self.order.observe(lambda _: self._resort(), names="value")
        self.order.observe(self._order_label, names="value")
        self._order_label({"new": self.order.value})
        self.prev_button.on_click(lambda _: self.go(self._page - 1))
        self.next_button.on_click(lambda _: self.go(self._page + 1))
        self.canvas.observe(self._on_click, names="clicked")
        if follow_selection:
            self.selection.observe(self._on_selection, names=["model", "class_name", "samples", "extractor"])
        self.refresh()

    # ------------------------------------------------------------------ public state

    @property
    def items(self) -> Samples:
        """Every sample the grid pages through, in display order."""
        return self._items

    @property
    def values(self) -> np.ndarray:
        """The sort score of every item (display order)."""
        return self._values

    @property
    def page(self) -> int:
        return self._page

    @property
    def page_count(self) -> int:
        return max(1, -(-len(self._items) // self.page_size))

    @property
    def page_items(self) -> Samples:
        """The samples of the current page."""
        return self._page_items

    @property
    def sort_by(self) -> str:
        return self.sort.value

    @sort_by.setter
    def sort_by(self, name: str) -> None:
        if name not in self.sort.options:
            raise ValueError(f"sort_by must be one of {list(self.sort.options)}; got {name!r}")
        self.sort.value = name

    @property
    def descending(self) -> bool:
        return self.order.value

    @descending.setter
    def descending(self, value: bool) -> None:
        self.order.value = bool(value)

    @property
    def extractor(self) -> str:
        return self.selection.extractor or self.ws.extractors[0]

    def show(self, samples: Samples | None, title: str = "", *, sort_by: str | None = None,
             descending: bool | None = None) -> None:
        """Show these samples (a grid with ``follow_selection=False``); None clears."""
        self._explicit = samples
        self._explicit_title = title
        with self.hold_trait_notifications():
            if sort_by is not None:
                self._set_sort_silently(sort_by, descending)
        self.refresh()

    def put_score(self, name: str, set_name: str, values: np.ndarray, *, descending: bool = True,
                  label: str | None = None) -> None:
        """Add a per-sample score (e.g. an FD contribution or a human soft label) and sort by it."""
        self.scores.put(set_name, name, values, label=label, descending=descending)
        self._update_sort_options()
        self._set_sort_silently(name, descending)
        self._resort()

    def go(self, page: int) -> None:
        """Show page ``page`` (clipped to the valid range)."""
        self._page = int(min(max(page, 0), self.page_count - 1))
        self._render_page()

    def click(self, position: int) -> dict[str, Any]:
        """Enlarge the thumbnail at ``position`` of the current page (as a click does)."""
        if not 0 <= position < len(self._page_items):
            raise IndexError(f"position must be in [0, {len(self._page_items)}) on this page; got {position}")
        set_name, index = self._page_items[position]
        self.canvas.selected = position
        thumbs = gather_thumbnails(self.ws, Samples.of(set_name, [index]))
        scale = max(1, max(self.detail_px, 64) // thumbs.shape[1])
        self.detail_image.value = encode_png(thumbs[0], scale=scale)
        info = self.sample_info(set_name, index)
        self.detail = info
        rows = "".join(f"<tr><td style='color:#666;padding-right:6px'>{html.escape(k)}</td>"
                       f"<td>{html.escape(str(v))}</td></tr>" for k, v in info.items())
        self.detail_info.value = f"<table style='font-size:11px'>{rows}</table>"
        if self.selection.focus != (set_name, index):
            self.selection.focus = (set_name, index)
        return info

    def sample_info(self, set_name: str, index: int) -> dict[str, Any]:
        """Metadata and computed scores of one sample."""
        meta = self.ws.meta(set_name)
        row = meta.iloc[int(index)]
        info: dict[str, Any] = {"set": set_name, "role": self.ws.role(set_name), "row": int(index),
                                "id": str(row.get("id", ""))}
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
        return info

    # ------------------------------------------------------------------ item selection and order

    def _current_samples(self) -> tuple[Samples, str]:
        sel = self.selection
        if not self.follow_selection:
            samples = self._explicit if self._explicit is not None else Samples((), np.zeros(0), np.zeros(0))
            return samples, self._explicit_title
        if sel.samples is not None and len(sel.samples):
            samples, what = sel.samples, f"{len(sel.samples)} selected sample(s)" + (
                f" ({sel.samples_origin})" if sel.samples_origin else "")
        else:
            set_name = sel.model if sel.model in self.ws.sets else (self.ws.generated or [self.ws.reference])[0]
            samples, what = Samples.of(set_name, np.arange(self.ws.size(set_name))), set_name
        if sel.class_name:
            keep = np.zeros(len(samples), dtype=bool)
            for code, set_name in enumerate(samples.sets):
                pos = np.flatnonzero(samples.codes == code)
                classes = self.ws.classes(set_name)
                if classes is None or pos.size == 0:
                    continue
                c = classes.code_of(sel.class_name)
                keep[pos] = classes.codes[samples.index[pos]] == c
            samples = samples.take(np.flatnonzero(keep))
            what += f", class “{sel.class_name}”"
        return samples, what

    def refresh(self) -> None:
        """Recompute what is shown (from the selection or :meth:`show`), sort, show page 0."""
        samples, what = self._current_samples()
        self._unsorted = samples
        self._what = what
        self._update_sort_options()
        self._page = 0
        self._resort()

    def _update_sort_options(self) -> None:
        sets = self._unsorted.set_names() if hasattr(self, "_unsorted") else []
        names = self.scores.names(sets[0] if len(sets) == 1 else None)
        if list(self.sort.options) != names:
            current = self.sort.value
            with self.sort.hold_trait_notifications():
                self.sort.options = names
                self.sort.value = current if current in names else "index"

    def _set_sort_silently(self, name: str, descending: bool | None) -> None:
        self._update_sort_options()
        if name not in self.sort.options:
            raise ValueError(f"sort_by must be one of {list(self.sort.options)}; got {name!r}")
        self._suspend = True
        try:
            self.sort.value = name
            self.order.value = self.scores.info(name).descending if descending is None else bool(descending)
        finally:
            self._suspend = False

    def _order_label(self, change: dict[str, Any]) -> None:
        self.order.description = "descending" if change["new"] else "ascending"
        self.order.icon = "sort-amount-desc" if change["new"] else "sort-amount-asc"

    def _on_sort(self, change: dict[str, Any]) -> None:
        if getattr(self, "_suspend", False):
            return
        self._suspend = True
        try:
            self.order.value = self.scores.info(change["new"]).descending
        finally:
            self._suspend = False
        self._resort()

    def _resort(self) -> None:
        if getattr(self, "_suspend", False):
            return
        samples = self._unsorted
        name, ext = self.sort.value, self.extractor
        missing = [s for s in samples.set_names() if not self.scores.is_ready(s, ext, name)]
        if missing and self.background:
            self._items, self._values = samples, np.full(len(samples), np.nan)
            self._start_score_task(missing, ext, name)
        else:
            if missing:
                set_status(self.status, f"computing {self.scores.info(name).label} of {', '.join(missing)}…",
                           kind="busy")
            self._items, self._values = self._sorted(samples, name, ext)
            if missing:
                set_status(self.status, "")
        self._page = min(self._page, self.page_count - 1)
        self._render_page()

    def _sorted(self, samples: Samples, name: str, ext: str) -> tuple[Samples, np.ndarray]:
        if name == "index":  # the order given (row order of a set; a selection's own order)
            order = np.arange(len(samples))[::-1] if self.order.value else np.arange(len(samples))
            return samples.take(order), samples.index[order].astype(np.float64)
        values = np.full(len(samples), np.nan)
        for code, set_name in enumerate(samples.sets):
            pos = np.flatnonzero(samples.codes == code)
            if pos.size:
                values[pos] = self.scores.get(set_name, ext, name)[samples.index[pos]]
        key = -values if self.order.value else values
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
        self._task = BackgroundTask(compute, label=label, status=self.status, on_done=lambda _: self._resort(),
                                    background=True).start()

    def wait(self, timeout: float | None = 120) -> None:
        """Wait for a running score computation (tests, scripts)."""
        if self._task is not None:
            self._task.wait(timeout)

    # ------------------------------------------------------------------ rendering

    def _render_page(self) -> None:
        start = self._page * self.page_size
        page = self._items.take(np.arange(start, min(start + self.page_size, len(self._items))))
        vals = self._values[start:start + len(page)]
        self._page_items = page
        thumbs = gather_thumbnails(self.ws, page) if len(page) else np.zeros((0, 28, 28, 3), np.uint8)
        multi = len(page.set_names()) > 1
        label = self.scores.info(self.sort.value).label
        cells, captions = [], []
        for (set_name, index), v in zip(page, vals):
            text = f"#{index}" if self.sort.value == "index" else _fmt(float(v))
            if self.sort.value == "class":
                classes = self.ws.classes(set_name)
                text = classes.names[int(v)] if classes is not None and np.isfinite(v) and v >= 0 else "?"
            if multi:
                text = f"{set_name[:8]} {text}"
            captions.append(text)
            cells.append({"caption": text, "title": f"{set_name} #{index} — {label} {_fmt(float(v))}"})
        self.canvas.show(thumbs, cells, columns=self.columns, display_px=self.display_px)
        self.page_png = self.canvas.sprite
        self.captions = captions
        n = len(self._items)
        self.page_label.value = (f"<span style='padding:0 6px'>page {self._page + 1} / {self.page_count} "
                                 f"· {n} sample(s)</span>")
        order = "↓" if self.order.value else "↑"
        self.heading.value = (f"<b>{html.escape(self._title)}</b> — {html.escape(self._what)}"
                              f" <span style='color:#666'>sorted by {html.escape(label)} {order}</span>")
        self.prev_button.disabled = self._page == 0
        self.next_button.disabled = self._page >= self.page_count - 1

    def _on_click(self, change: dict[str, Any]) -> None:
        pos = change["new"]
        if pos is None or pos < 0:
            return
        try:
            if pos < len(self._page_items):
                self.click(pos)
        finally:
            self.canvas.clicked = -1

    def _on_selection(self, change: dict[str, Any]) -> None:
        if change["name"] == "extractor" and self._ext_independent():
            return  # nothing shown depends on the extractor
        self.refresh()

    def _ext_independent(self) -> bool:
        name = self.sort.value
        return name in ("index", "class") or name in self.scores._custom

    # ------------------------------------------------------------------ static report

    def static_html(self, pages: int = 1) -> str:
        """The first ``pages`` page(s) as inline PNG thumbnails with captions, for the report."""
        from .thumbnails import data_uri

        parts = [f"<div class='wb-static-grid'><div class='wb-grid-title'>{self.heading.value}</div>"]
        for p in range(min(pages, self.page_count)):
            start = p * self.page_size
            page = self._items.take(np.arange(start, min(start + self.page_size, len(self._items))))
            vals = self._values[start:start + len(page)]
            thumbs = gather_thumbnails(self.ws, page) if len(page) else None
            parts.append(f"<div class='wb-grid-cells' style='grid-template-columns:repeat({self.columns}, "
                         f"{self.display_px + 6}px)'>")
            for j, ((set_name, index), v) in enumerate(zip(page, vals)):
                uri = data_uri(encode_png(thumbs[j]))
                cap = f"#{index}" if self.sort.value == "index" else _fmt(float(v))
                parts.append(f"<div class='wb-grid-cell' title='{html.escape(set_name)} #{index}'>"
                             f"<img src='{uri}' width='{self.display_px}' height='{self.display_px}' "
                             f"style='image-rendering:pixelated'><div class='wb-grid-caption'>{html.escape(cap)}"
                             "</div></div>")
            parts.append("</div>")
        parts.append("</div>")
        return "".join(parts)
