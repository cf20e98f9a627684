"""``HeatmapComparison``: the same images under two extractors' sensitivity heatmaps, side by side.

For the selected model (the shared selection's ``model``; its explicitly selected samples when
there are any, else its first ``count`` rows), each row of the view shows one image, the image
under its FD (or KD) heatmap by extractor *A* and by extractor *B*
(:class:`~workbench.workspace.heatmaps.HeatmapStore`, Kynkäänniemi et al. 2023: where each
extractor sees what moves the metric; each map scaled by its own maximum, dark = 0, pale yellow =
the maximum) and, under each overlay, the image's ``delta``: the metric with the image minus
without it (exact leave-one-out). Above the rows: each metric's value on the whole set and the
Spearman rank correlation of the two extractors' deltas over the images shown (do they agree on
which images hurt?).

Default pair: a classifier extractor (one with logits, e.g. Inception or ``demo-classifier``)
against another (e.g. DINOv2 or ``demo-ssl``). A workspace with fewer than two extractors that
have a network layer to explain, or a model without thumbnails, gets a note saying what to add.

State, as traits: ``model``, ``samples`` (linked to the selection), ``left``, ``right``,
``metric``, ``count``, ``opacity``; read-only ``rows`` (the rows shown), ``deltas``
(``{extractor: [delta per row]}``) and ``values`` (``{extractor: metric of the set}``).
:meth:`compute` fills the view (the dashboard calls it when its tab is opened), :meth:`wait`
waits for it, :meth:`static_html` is the report's section.
"""

from __future__ import annotations

import html
import shlex
from typing import Any

import ipywidgets as W
import numpy as np
import scipy.stats
import traitlets

from ..workspace import Samples, Workspace, as_workspace
from ..workspace.heatmaps import HEATMAP_METRICS, HeatmapMaps, HeatmapStore
from .linking import SelectionLink, TraitValueError, link_control, refuse
from .selection import Selection
from .tasks import BackgroundTask, status_widget
from .thumbnails import data_uri, encode_png

CELL_PX = 84  # on-screen size of each image


def candidate_extractors(ws: Workspace) -> list[str]:
    """The workspace's extractors that may have a network layer to explain (not ``pixels``),
    classifiers (reference cache with logits) first; :meth:`HeatmapStore.supports` decides."""
    found = []
    for ext in ws.extractors:
        if not ws.has(ws.reference, ext):
            continue
        name = str((ws.cache(ws.reference, ext).manifest.get("extractor") or {}).get("name") or ext)
        if name != "pixels":
            found.append(ext)
    classifiers = [e for e in found if ws.cache(ws.reference, e).logits is not None]
    return classifiers + [e for e in found if e not in classifiers]


class HeatmapComparison(W.VBox):
    """Two extractors' heatmaps of the same images, with each image's delta (module docstring).

    Args:
        workspace: a workspace, a folder, or caches.
        selection: the shared selection (a new one when omitted).
        heatmaps: the heatmap store (shared with the sample grid; a new one when omitted).
        count: images shown when no samples are selected. metric: ``"fd"`` or ``"kd"``.
        background: compute in a thread (False: at once, blocking).
    """

    selection = traitlets.Instance(Selection, read_only=True, help="the shared selection")
    model = traitlets.Unicode("", help="the generated set shown ('' = the first)")
    samples = traitlets.Instance(Samples, allow_none=True, default_value=None, help="explicitly selected samples")
    left = traitlets.Unicode("", help="extractor A")
    right = traitlets.Unicode("", help="extractor B")
    metric = traitlets.Unicode("fd", help="the metric explained: 'fd' or 'kd'")
    count = traitlets.Int(16, help="images shown when no samples of the model are selected")
    opacity = traitlets.Float(0.5, help="opacity of the heatmap overlay, 0 to 1")
    rows = traitlets.List(traitlets.Int(), read_only=True, help="rows of the model shown")
    deltas = traitlets.Dict(read_only=True, help="{extractor: delta of each row shown}")
    values = traitlets.Dict(read_only=True, help="{extractor: the metric of the whole set}")

    def __init__(
        self,
        workspace: Workspace | Any,
        *,
        selection: Selection | None = None,
        heatmaps: HeatmapStore | None = None,
        count: int = 16,
        metric: str = "fd",
        background: bool = True,
    ) -> None:
        self.ws = as_workspace(workspace)
        self.heatmaps = heatmaps if heatmaps is not None else HeatmapStore(self.ws)
        self.background = background
        self.candidates = candidate_extractors(self.ws)
        self._task: BackgroundTask | None = None
        self._result: dict[str, HeatmapMaps] = {}
        self._computed: tuple[Any, ...] | None = None
        self._wanted = False

        self.heading = W.HTML("")
        self.heading.add_class("wb-heatmap-heading")
        options = self.candidates or [""]
        self.left_menu = W.Dropdown(options=options, description="A", layout=W.Layout(width="240px"))
        self.left_menu.add_class("wb-heatmap-left")
        self.right_menu = W.Dropdown(options=options, description="B", layout=W.Layout(width="240px"))
        self.right_menu.add_class("wb-heatmap-right")
        self.metric_menu = W.Dropdown(
            options=list(HEATMAP_METRICS), description="metric", layout=W.Layout(width="160px")
        )
        self.opacity_slider = W.FloatSlider(
            value=0.5, min=0.0, max=1.0, step=0.05, description="opacity", layout=W.Layout(width="240px")
        )
        self.opacity_slider.add_class("wb-heatmap-opacity")
        self.status = status_widget()
        self.body = W.HTML("")
        self.body.add_class("wb-heatmap-rows")
        controls = W.HBox([self.left_menu, self.right_menu, self.metric_menu, self.opacity_slider])
        super().__init__([self.heading, controls, self.status, self.body])
        self.add_class("wb-heatmap-comparison")
        self.set_trait("selection", selection if selection is not None else Selection())
        self.set_trait("rows", [])
        self.set_trait("deltas", {})
        self.set_trait("values", {})

        with self.hold_trait_notifications():
            self.count = int(count)
            self.metric = metric
            if self.candidates:
                self.left = self.candidates[0]
                self.right = self.candidates[1] if len(self.candidates) > 1 else self.candidates[0]
        link_control(self, "left", self.left_menu)
        link_control(self, "right", self.right_menu)
        link_control(self, "metric", self.metric_menu)
        link_control(self, "opacity", self.opacity_slider)
        self._selection_link = SelectionLink(self.selection, self, {"model": "model", "samples": "samples"})
        self.observe(self._on_change, names=["model", "samples", "left", "right", "metric", "count"])
        self.observe(lambda _: self._render(), names="opacity")
        self._render()

    # ------------------------------------------------------------------ validation

    @traitlets.validate("left", "right")
    def _valid_extractor(self, proposal: Any) -> str:
        value = proposal["value"]
        if value and value not in self.candidates:
            refuse(proposal["trait"].name, value, self.candidates)
        return value

    @traitlets.validate("metric")
    def _valid_metric(self, proposal: Any) -> str:
        if proposal["value"] not in HEATMAP_METRICS:
            refuse("metric", proposal["value"], HEATMAP_METRICS)
        return proposal["value"]

    @traitlets.validate("count")
    def _valid_count(self, proposal: Any) -> int:
        value = int(proposal["value"])
        if not 3 <= value <= 256:
            raise TraitValueError(f"count must be in [3, 256]; got {value}")
        return value

    @traitlets.validate("opacity")
    def _valid_opacity(self, proposal: Any) -> float:
        value = float(proposal["value"])
        if not 0.0 <= value <= 1.0:
            raise TraitValueError(f"opacity must be in [0, 1]; got {value}")
        return value

    # ------------------------------------------------------------------ what is shown

    def model_set(self) -> str | None:
        """The generated set shown (None when the workspace has none)."""
        if self.model in self.ws.generated:
            return self.model
        return self.ws.generated[0] if self.ws.generated else None

    def shown_rows(self) -> np.ndarray:
        """Rows of the model shown: its selected samples (at most 256), else its first ``count``."""
        model = self.model_set()
        if model is None:
            return np.zeros(0, dtype=np.int64)
        if self.samples is not None:
            picked = self.samples.by_set().get(model)
            if picked is not None and len(picked):
                return np.asarray(picked[:256], dtype=np.int64)
        return np.arange(min(self.count, self.ws.size(model)), dtype=np.int64)

    def missing(self, *, make: bool = True) -> str | None:
        """HTML: what the workspace lacks for this view, or None. ``make=False`` does not make the
        extractors (which loads their networks) and so only sees what the manifests say."""
        root = shlex.quote(str(self.ws.root)) if self.ws.root is not None else "WS"
        usable = [e for e in self.candidates if not make or self.heatmaps.supports(e) is None]
        if len(usable) < 2:
            reasons = "".join(
                f"<li>{html.escape(e)}: {html.escape(self.heatmaps.supports(e) or '')}</li>"
                for e in self.ws.extractors
                if e not in usable and make
            )
            have = ", ".join(html.escape(e) for e in usable) or "none"
            return (
                "<div class='wb-empty-view' style='font-size:13px;max-width:980px'><i>Heatmaps compare where two "
                f"extractors look</i>, and this workspace has {len(usable)} extractor(s) with a network layer to "
                f"explain ({have}). Add the sets under a second one, e.g. <code>workbench evaluate ... --extractor "
                f"inception,dinov2</code>, or <code>workbench extract DIR -e dinov2</code> for each set and "
                f"<code>workbench workspace add {html.escape(root)} CACHE --set NAME</code>."
                + (f"<ul>{reasons}</ul>" if reasons else "")
                + "</div>"
            )
        model = self.model_set()
        if model is None:
            return (
                "<div class='wb-empty-view' style='font-size:13px'><i>No generated set in this workspace</i>: "
                f"add one with <code>workbench workspace add {html.escape(root)} CACHE --set NAME --role "
                "generated</code>.</div>"
            )
        lacking = [e for e in dict.fromkeys([self.left, self.right]) if e and not self.ws.has(model, e)]
        if lacking:
            return (
                f"<div class='wb-empty-view' style='font-size:13px'><i>“{html.escape(model)}” has no cache by "
                f"{html.escape(', '.join(lacking))}</i>: extract it under that extractor and add it "
                f"(<code>workbench workspace add {html.escape(root)} CACHE --set {html.escape(shlex.quote(model))}"
                "</code>), or choose another pair.</div>"
            )
        if self.ws.thumbnail_px(model) == 0:
            return (
                f"<div class='wb-empty-view' style='font-size:13px'><i>No thumbnails of “{html.escape(model)}”</i>: "
                "its caches were extracted with <code>--thumbnails 0</code>, so there are no images to explain. "
                "Re-extract it with <code>--thumbnails 64</code>.</div>"
            )
        return None

    # ------------------------------------------------------------------ computation

    def _key(self) -> tuple[Any, ...]:
        return (self.model_set(), tuple(self.shown_rows().tolist()), self.left, self.right, self.metric)

    def _on_change(self, change: dict[str, Any]) -> None:
        if self._wanted:
            self.compute()
        else:
            self._render()

    def compute(self) -> None:
        """Compute the heatmaps shown (kept in the workspace; in the background unless
        ``background=False``) and draw them; from now on every change of what is shown recomputes."""
        self._wanted = True
        note = self.missing()
        if note is not None:
            self._render()
            return
        key = self._key()
        if key == self._computed:
            self._render()
            return
        if self._task is not None and self._task.running:
            return  # it computes again when done if what is shown changed
        model, rows = self.model_set(), self.shown_rows()
        exts = list(dict.fromkeys([self.left, self.right]))
        metric = self.metric

        def work() -> dict[str, HeatmapMaps]:
            return {e: self.heatmaps.get(model, e, rows, metric) for e in exts}

        def done(result: dict[str, HeatmapMaps]) -> None:
            self._result = result
            self._computed = key
            self.set_trait("rows", [int(r) for r in rows])
            self.set_trait("deltas", {e: [float(d) for d in m.delta] for e, m in result.items()})
            self.set_trait("values", {e: float(m.value) for e, m in result.items()})
            if self._key() != key:
                self.compute()
            else:
                self._render()

        self._task = BackgroundTask(
            work,
            label=f"{metric.upper()} heatmaps of {len(rows)} image(s) of {model} under {' and '.join(exts)}",
            status=self.status,
            on_done=done,
            background=self.background,
        ).start()

    def wait(self, timeout: float | None = 600) -> HeatmapComparison:
        """Wait for a running computation (tests, scripts)."""
        while self._task is not None:
            task = self._task
            task.wait(timeout)
            if task is self._task:
                break
        return self

    # ------------------------------------------------------------------ drawing

    def agreement(self) -> float | None:
        """Spearman rank correlation of the two extractors' deltas over the rows shown (None when
        they are not computed, the same extractor twice, or fewer than 3 rows)."""
        if self.left == self.right or self.left not in self.deltas or self.right not in self.deltas:
            return None
        a, b = np.asarray(self.deltas[self.left]), np.asarray(self.deltas[self.right])
        if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
            return None
        return float(scipy.stats.spearmanr(a, b).statistic)

    def _render(self) -> None:
        model = self.model_set()
        metric = self.metric.upper()
        self.heading.value = (
            f"<b>Where the metric looks</b> — {metric} sensitivity heatmaps of "
            f"“{html.escape(model or '-')}” under {html.escape(self.left or '-')} (A) and "
            f"{html.escape(self.right or '-')} (B)"
        )
        note = self.missing(make=self._wanted)  # the networks are loaded when the tab is opened
        if note is not None:
            self.body.value = note
            return
        if self._computed != self._key() or not self._result:
            hint = "" if self._wanted else " (opening this tab computes them)"
            self.body.value = f"<div class='wb-note'><i>heatmaps not computed yet{hint}</i></div>"
            return
        self.body.value = self.table_html()

    def table_html(self, px: int = CELL_PX) -> str:
        """The rows (image, overlay A, overlay B, deltas) as HTML with inline PNGs."""
        if not self._result:
            return ""
        exts = [self.left, self.right]
        model = self.model_set() or ""
        metric = self.metric.upper()
        first = self._result[exts[0]]
        rho = self.agreement()
        summary = "; ".join(
            f"{html.escape(e)}: {metric} {self._result[e].value:.4g} (layer {html.escape(self._result[e].layer)})"
            for e in dict.fromkeys(exts)
        )
        if rho is not None:
            summary += f"; Spearman ρ of the two deltas over these {len(first.rows)} images: {rho:.2f}"
        parts = [
            f"<p class='wb-note wb-heatmap-summary' style='font-size:12px'>{summary}. delta = {metric} with the "
            f"image minus without it (positive: the image raises {metric}). Dark = 0, pale yellow = the map's "
            "maximum (each map scaled by its own).</p>",
            "<table class='wb-heatmap-table' style='border-collapse:collapse;font-size:11px'><thead><tr>"
            f"<th>sample</th><th>image</th><th>A: {html.escape(exts[0])}</th><th>B: {html.escape(exts[1])}</th>"
            "</tr></thead><tbody>",
        ]
        scale = max(1, px // max(1, first.images.shape[1]))
        for j, row in enumerate(first.rows.tolist()):
            cells = [f"<td>{html.escape(model)} #{row}</td>", self._img(first.images[j], scale, px, "")]
            for e in exts:
                m = self._result[e]
                cells.append(self._img(m.overlay(j, self.opacity), scale, px, f"delta {m.delta[j]:.3g}"))
            parts.append(f"<tr class='wb-heatmap-row' data-row='{row}'>{''.join(cells)}</tr>")
        parts.append("</tbody></table>")
        return "".join(parts)

    @staticmethod
    def _img(image: np.ndarray, scale: int, px: int, caption: str) -> str:
        uri = data_uri(encode_png(image, scale=scale))
        cap = f"<div class='wb-heatmap-delta'>{html.escape(caption)}</div>" if caption else ""
        return (
            f"<td style='text-align:center;padding:2px 6px'><img src='{uri}' width='{px}' "
            f"style='image-rendering:pixelated'>{cap}</td>"
        )

    def static_html(self) -> str:
        """The report's section: the heading and the rows (computed now when they are not yet)."""
        note = self.missing()
        if note is not None:
            return note
        self.wait()
        if self._computed != self._key():
            background, self.background = self.background, False
            try:
                self.compute()
            finally:
                self.background = background
        return f"<div class='wb-heatmap-comparison'><p>{self.heading.value}</p>{self.table_html()}</div>"
