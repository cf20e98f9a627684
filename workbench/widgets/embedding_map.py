"""``EmbeddingMap``: real, training and generated embeddings in 2-D, linked to the sample grid.

A plotly ``FigureWidget`` with one WebGL scatter (``Scattergl``) per set, so 100,000 points
stay fluid. The PCA layout shows at once; "Compute UMAP" runs UMAP in a background thread with a
running status line (the first fit compiles numba: a minute or two) and swaps the layout in when
it is done; layouts are saved next to the caches (:mod:`workbench.widgets.projections`) so the
next session has them at once. Hovering a point shows its thumbnail and metadata beside the
plot; a lasso or box selection becomes the shared selection's ``samples`` (the dashboard's
sample grid pages through them); selecting a model fades the other generated sets (the subtitle
says so). A sample of a set without stored thumbnails shows the empty-state tile and the reason.

Axes are titled ``PC 1 (23.4% of variance)`` / ``PC 2 (...)`` (the share of the variance of the
fitted points, :func:`~workbench.workspace.projections.pca_layout_info`) or ``UMAP 1`` /
``UMAP 2``; the title sits below the plotly modebar (:mod:`workbench.widgets.plot_layout`).

State, as traits (``emap.observe(callback, names="samples")``, ``traitlets.link((emap, "samples"),
(grid, "samples"))``): ``extractor``, ``projection`` ("PCA" / "UMAP"), ``samples`` and
``samples_origin`` (the lasso), ``model``, read-only ``hovered``. Also :attr:`points` (the plotted
samples, trace by trace), :attr:`coords` (``n x 2``), :meth:`compute_umap`, :meth:`select_points`,
:meth:`hover`.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import traitlets

from ..workspace import Samples, Workspace, as_workspace
from ..workspace.projections import (
    cached_umap,
    pca_axis_titles,
    pca_layout_info,
    subsample,
    umap_available,
    umap_layout,
)
from .linking import SelectionLink, TraitValueError, check_samples, link_control, refuse, select_samples
from .plot_layout import top_layout
from .sample_grid import gather_thumbnails, has_thumbnails
from .selection import Selection
from .tasks import BackgroundTask, set_status, status_widget
from .thumbnails import blank_tile, encode_png, no_thumbnail_reason

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]
ROLE_COLOURS = {"reference": "#222222", "train": "#9ecae1", "test": "#636363"}
HOVER_PX = 128
UMAP_AXES = ("UMAP 1", "UMAP 2")


class EmbeddingMap(W.VBox):
    """2-D map of the embeddings (see the module docstring).

    Traits (observe them, link them, set them):

    * ``extractor``: the features mapped (the dropdown; linked to the shared selection, whose
      "" or unknown extractor leaves the map as it is).
    * ``projection``: ``"PCA"`` or ``"UMAP"`` (UMAP only once computed for the extractor:
      :meth:`compute_umap`; choosing it in the toggle starts the computation).
    * ``samples`` / ``samples_origin``: the lassoed or box-selected points (linked to the
      selection; :meth:`select_points` sets them as a lasso does).
    * ``model``: the selected generated set (the others are faded).
    * ``hovered`` (read-only): set, row, id and class of the point last hovered.

    Args:
        workspace: workspace, folder or caches.
        selection: the shared selection (new when omitted).
        extractor: the features to map (default: the selection's, else the first); given, it
            becomes the selection's extractor too.
        sets: the sets to plot (default: reference, train, test and every generated set).
        max_points: at most this many points per set (seeded uniform subsample).
        seed: seed of the subsample, PCA and UMAP.
        background: run UMAP in a thread (False: synchronously, for tests and reports).
        umap_reducer: replaces umap-learn (see :func:`~workbench.widgets.projections.umap_layout`).
        height: plot height in pixels.
    """

    selection = traitlets.Instance(Selection, read_only=True, help="the shared selection")
    extractor = traitlets.Unicode("", help="the features mapped")
    projection = traitlets.Unicode("PCA", help="'PCA' or 'UMAP'")
    model = traitlets.Unicode("", help="the selected generated set ('' = none: no set faded)")
    samples = traitlets.Instance(Samples, allow_none=True, default_value=None, help="lassoed samples")
    samples_origin = traitlets.Unicode("", help="how the samples were selected")
    hovered = traitlets.Dict(allow_none=True, default_value=None, read_only=True, help="the point last hovered")

    def __init__(
        self,
        workspace: Workspace | Any,
        *,
        selection: Selection | None = None,
        extractor: str | None = None,
        sets: Sequence[str] | None = None,
        max_points: int = 50_000,
        seed: int = 0,
        background: bool = True,
        umap_reducer: Callable[..., np.ndarray] | None = None,
        height: int = 520,
    ) -> None:
        self.ws = as_workspace(workspace)
        selection = selection if selection is not None else Selection()
        if max_points < 1:
            raise ValueError(f"max_points must be >= 1; got {max_points}")
        wanted = list(sets) if sets is not None else [s for s in self.ws.sets if self.ws.role(s) != "pool"]
        unknown = [s for s in wanted if s not in self.ws.sets]
        if unknown:
            raise ValueError(f"sets {unknown} are not in the workspace; sets: {self.ws.sets}")
        self.max_points = int(max_points)
        self.seed = seed
        self.background = background
        self.umap_reducer = umap_reducer
        self._task: BackgroundTask | None = None
        self._umap: dict[str, np.ndarray] = {}
        self._pca: dict[str, np.ndarray] = {}
        self._pca_ratio: dict[str, tuple[float, ...] | None] = {}
        self._sets_wanted = wanted
        ext = extractor or selection.extractor or self.ws.extractors[0]
        if ext not in self.ws.extractors:
            raise ValueError(f"extractor {ext!r} is not in the workspace; choose from {self.ws.extractors}")

        self.extractor_menu = W.Dropdown(
            options=self.ws.extractors, value=ext, description="features", layout=W.Layout(width="240px")
        )
        self.extractor_menu.add_class("wb-map-extractor")
        self.projection_menu = W.ToggleButtons(
            options=["PCA", "UMAP"], value="PCA", style=W.ToggleButtonsStyle(button_width="70px")
        )
        self.projection_menu.add_class("wb-projection")
        self.umap_button = W.Button(
            description="Compute UMAP",
            icon="cogs",
            tooltip="UMAP in the background; the first run compiles numba (1-2 min)",
        )
        self.umap_button.add_class("wb-umap-button")
        self.status = status_widget("wb-umap-status")
        self.hover_image = W.Image(
            value=encode_png(blank_tile(HOVER_PX // 4), scale=4),
            format="png",
            layout=W.Layout(width=f"{HOVER_PX}px", height=f"{HOVER_PX}px"),
        )
        self.hover_image.add_class("wb-hover-image")
        self.hover_info = W.HTML("<i>hover a point</i>")
        self.hover_info.add_class("wb-hover-info")
        self.figure = go.FigureWidget()
        self.figure.add_class("wb-embedding-plot")
        self._height = height
        side = W.VBox(
            [W.HTML("<b>hovered</b>"), self.hover_image, self.hover_info], layout=W.Layout(width=f"{HOVER_PX + 60}px")
        )
        controls = W.HBox([self.extractor_menu, self.projection_menu, self.umap_button, self.status])
        help_text = W.HTML(
            "<span style='color:#666'>lasso or box-select points to show them in the sample grid; "
            "double-click to clear</span>"
        )
        super().__init__([controls, help_text, W.HBox([self.figure, side])])
        self.add_class("wb-embedding-map")
        self.set_trait("selection", selection)

        self.extractor = ext
        self._selection_link = SelectionLink(
            selection,
            self,
            ["model", "extractor", "samples_origin", "samples"],
            resolve={"extractor": lambda name: name if name in self.ws.extractors else self.extractor},
        )
        if extractor:
            self.extractor = extractor  # asked for: the selection follows
        link_control(self, "extractor", self.extractor_menu)
        # the toggle asks for a projection; UMAP is shown once computed (the toggle starts it)
        traitlets.dlink((self, "projection"), (self.projection_menu, "value"))
        self.projection_menu.observe(self._on_projection_menu, names="value")
        self.observe(lambda c: self._build(c["new"]), names="extractor")
        self.observe(lambda _: self._apply_coords(), names="projection")
        self.observe(lambda _: self._restyle(), names="model")
        self.umap_button.on_click(lambda _: self.compute_umap())
        self._build(self.extractor)

    # ------------------------------------------------------------------ state

    @traitlets.validate("extractor")
    def _valid_extractor(self, proposal: Any) -> str:
        if proposal["value"] == "" and self.extractor:  # no extractor chosen: the map keeps its own
            return self.extractor
        if proposal["value"] not in self.ws.extractors:
            refuse("extractor", proposal["value"], self.ws.extractors)
        return proposal["value"]

    @traitlets.validate("projection")
    def _valid_projection(self, proposal: Any) -> str:
        name = proposal["value"]
        if name not in ("PCA", "UMAP"):
            refuse("projection", name, ["PCA", "UMAP"])
        if name == "UMAP" and self.extractor not in self._umap:
            raise TraitValueError("UMAP is not computed yet for this extractor; call compute_umap() first")
        return name

    @traitlets.validate("samples")
    def _valid_samples(self, proposal: Any) -> Samples | None:
        return check_samples(proposal["value"], self.ws)

    @property
    def axis_titles(self) -> tuple[str, str]:
        """Titles of the x and y axes in the current projection (``PC 1 (23.4% of variance)``,
        ``UMAP 1``)."""
        if self.projection == "UMAP":
            return UMAP_AXES
        return pca_axis_titles(self._pca_ratio.get(self.extractor))

    def _title(self, suffix: str = "") -> str:
        return f"{self.extractor} features — {self.projection}{suffix}"

    def _subtitle(self, max_points: int | None = None) -> str:
        """What a point and a colour mean, and which sets are faded (``max_points``: the static
        figure's cap per set)."""
        sizes = np.bincount(self.points.codes, minlength=len(self.points.sets))
        if max_points is not None and int(sizes.max(initial=0)) > max_points:
            text = f"one point per sample (at most {max_points:,} per set)"
        else:
            full = all(self.ws.size(s) == int(n) for s, n in zip(self.points.sets, sizes))
            text = f"one point per sample ({len(self.points):,}" + (
                ")" if full else f", at most {self.max_points:,} per set)"
            )
        text += "; colour: set (legend)"
        if self.model and self.model in self.points.sets:
            text += f"; generated sets other than {self.model} are faded"
        return text

    def _layout(self, height: int, title: str, subtitle: str) -> dict[str, Any]:
        """Title below the modebar, axis titles, legend beside the plot (below the modebar)."""
        x_title, y_title = self.axis_titles
        return {
            **top_layout(height, title, subtitle=subtitle, margin={"l": 60, "r": 10, "b": 50}),
            "xaxis": {"title": {"text": x_title}},
            "yaxis": {"title": {"text": y_title}},
        }

    @property
    def coords(self) -> np.ndarray:
        """``(n, 2)`` coordinates of :attr:`points` in the current projection."""
        store = self._umap if self.projection == "UMAP" else self._pca
        return store[self.extractor]

    # ------------------------------------------------------------------ building

    def _points_for(self, ext: str) -> Samples:
        sets = [s for s in self._sets_wanted if self.ws.has(s, ext)]
        if not sets:
            raise ValueError(f"no set to plot has a cache by {ext!r}")
        return subsample(self.ws, sets, self.max_points, self.seed)

    def _colour(self, set_name: str) -> str:
        role = self.ws.role(set_name)
        if role in ROLE_COLOURS:
            return ROLE_COLOURS[role]
        gens = self.ws.generated
        return PALETTE[gens.index(set_name) % len(PALETTE)] if set_name in gens else "#999999"

    def _build(self, ext: str) -> None:
        self.points = self._points_for(ext)
        if ext not in self._pca:
            layout = pca_layout_info(self.ws, ext, self.points, seed=self.seed)
            self._pca[ext] = layout.coords
            self._pca_ratio[ext] = layout.explained_variance_ratio
        found = cached_umap(self.ws, ext, self.points, seed=self.seed)
        if found is not None:
            self._umap[ext] = found
        self._offsets = {}
        traces = []
        coords = self._pca[ext]
        for code, set_name in enumerate(self.points.sets):
            pos = np.flatnonzero(self.points.codes == code)
            self._offsets[code] = pos
            role = self.ws.role(set_name)
            traces.append(
                go.Scattergl(
                    x=coords[pos, 0],
                    y=coords[pos, 1],
                    mode="markers",
                    name=self._trace_name(set_name),
                    customdata=self.points.index[pos],
                    hovertemplate=f"{html.escape(set_name)} #%{{customdata}}<extra></extra>",
                    marker={
                        "size": 4 if role == "generated" else 3,
                        "color": self._colour(set_name),
                        "opacity": 0.7 if role == "generated" else 0.45,
                    },
                )
            )
        with self.figure.batch_update():
            self.figure.data = []
            self.figure.add_traces(traces)
            self.figure.update_layout(
                width=760,
                dragmode="lasso",
                legend={"itemsizing": "constant"},
                uirevision="wb",
                **self._layout(self._height, self._title(), self._subtitle()),
            )
        for trace in self.figure.data:
            trace.on_hover(self._on_hover)
            trace.on_selection(self._on_selection)
            trace.on_deselect(self._on_deselect)
        self._pending: dict[int, np.ndarray] = {}
        has_umap = ext in self._umap
        self.umap_button.disabled = not umap_available() and self.umap_reducer is None
        if self.umap_button.disabled:
            set_status(self.status, "UMAP needs the umap-learn package (pip install umap-learn)", kind="info")
        self.umap_button.description = "UMAP ready" if has_umap else "Compute UMAP"
        if self.projection == "UMAP" and not has_umap:
            self.projection = "PCA"  # its observer places the points
        else:
            self._apply_coords()
        self._restyle()

    def _apply_coords(self) -> None:
        coords = self.coords
        with self.figure.batch_update():
            for code, trace in enumerate(self.figure.data):
                pos = self._offsets[code]
                trace.x, trace.y = coords[pos, 0], coords[pos, 1]
            self.figure.layout.title.text = self._title()
            x_title, y_title = self.axis_titles
            self.figure.layout.xaxis.title.text = x_title
            self.figure.layout.yaxis.title.text = y_title

    def _opacity(self, set_name: str) -> float:
        """Markers of the selected model and of the real sets stand out; other models fade."""
        if self.ws.role(set_name) != "generated":
            return 0.45
        return 0.8 if not self.model or self.model == set_name else 0.12

    def _trace_name(self, set_name: str) -> str:
        role = self.ws.role(set_name)
        return set_name if set_name == role else f"{set_name} ({role})"

    def _restyle(self) -> None:
        with self.figure.batch_update():
            for code, trace in enumerate(self.figure.data):
                trace.marker.opacity = self._opacity(self.points.sets[code])
            self.figure.layout.title.subtitle.text = self._subtitle()

    def _on_projection_menu(self, change: dict[str, Any]) -> None:
        name = change["new"]
        if name == self.projection:
            return
        if name == "UMAP" and self.extractor not in self._umap:
            self.projection_menu.value = self.projection  # shown once computed
            self.compute_umap()
        else:
            self.projection = name

    # ------------------------------------------------------------------ UMAP

    def compute_umap(self) -> BackgroundTask | None:
        """Start UMAP of the current points (background unless ``background=False``); when done the
        map switches to it. Returns the task (None when the layout was already there)."""
        ext = self.extractor
        if ext in self._umap:
            self.projection = "UMAP"
            return None
        if self._task is not None and self._task.running:
            return self._task
        points = self.points

        def run() -> np.ndarray:
            return umap_layout(self.ws, ext, points, seed=self.seed, reducer=self.umap_reducer)

        def done(coords: np.ndarray) -> None:
            self._umap[ext] = coords
            self.umap_button.disabled = False
            self.umap_button.description = "UMAP ready"
            if self.extractor == ext:
                self.projection = "UMAP"

        def failed(exc: BaseException) -> None:
            self.umap_button.disabled = False

        self.umap_button.disabled = True
        hint = "" if self.umap_reducer else "(the first UMAP in a session compiles numba: 1-2 min)"
        self._task = BackgroundTask(
            run,
            label=f"UMAP of {len(points):,} points ({ext})",
            status=self.status,
            on_done=done,
            on_error=failed,
            hint=hint,
            background=self.background,
        ).start()
        return self._task

    def wait(self, timeout: float | None = 600) -> None:
        """Wait for a running UMAP (scripts, tests)."""
        if self._task is not None:
            self._task.wait(timeout)

    # ------------------------------------------------------------------ events

    def _sample_at(self, trace_index: int, point_index: int) -> tuple[str, int]:
        pos = self._offsets[trace_index][point_index]
        return self.points.sets[trace_index], int(self.points.index[pos])

    def hover(self, set_name: str, index: int) -> dict[str, Any]:
        """Show one sample in the hover panel (as hovering its point does; sets ``hovered``); returns its info."""
        thumbs = gather_thumbnails(self.ws, Samples.of(set_name, [index]))
        self.hover_image.value = encode_png(thumbs[0], scale=max(1, HOVER_PX // thumbs.shape[1]))
        meta = self.ws.meta(set_name).iloc[int(index)]
        info = {"set": set_name, "row": int(index), "id": str(meta.get("id", ""))}
        if not has_thumbnails(self.ws, set_name):
            info["thumbnail"] = no_thumbnail_reason(set_name)
        classes = self.ws.classes(set_name)
        if classes is not None and classes.codes[index] >= 0:
            info["class"] = classes.names[int(classes.codes[index])]
        self.hover_info.value = "<br>".join(
            f"<span style='color:#666'>{k}</span> {html.escape(str(v))}" for k, v in info.items()
        )
        self.set_trait("hovered", info)
        return info

    def _on_hover(self, trace: Any, points: Any, state: Any) -> None:
        if not points.point_inds:
            return
        set_name, index = self._sample_at(points.trace_index, points.point_inds[0])
        self.hover(set_name, index)

    def select_points(self, picks: dict[str, Sequence[int]] | Samples, origin: str = "embedding map") -> Samples:
        """Select samples as a lasso does (``samples`` and ``samples_origin``): ``{set: rows}`` or :class:`Samples`."""
        samples = (
            picks
            if isinstance(picks, Samples)
            else Samples.from_mapping({s: np.asarray(v, dtype=np.int64) for s, v in picks.items() if len(v)})
        )
        select_samples(self, samples, origin)
        return samples

    def _on_selection(self, trace: Any, points: Any, selector: Any) -> None:
        # plotly dispatches one call per trace, in trace order: collect, commit after the last.
        idx = points.trace_index
        if idx == 0:
            self._pending = {}
        if points.point_inds:
            pos = self._offsets[idx][np.asarray(points.point_inds, dtype=np.int64)]
            self._pending[idx] = self.points.index[pos]
        if idx == len(self.figure.data) - 1:
            picks = {self.points.sets[i]: rows for i, rows in sorted(self._pending.items())}
            kind = getattr(selector, "type", "") or "selection"
            self.select_points(picks, origin=f"embedding map {kind}")
            self._pending = {}

    def _on_deselect(self, trace: Any, points: Any) -> None:
        if points.trace_index == len(self.figure.data) - 1:
            select_samples(self, None)

    # ------------------------------------------------------------------ static report

    def static_figure(self, max_points: int = 3000) -> go.Figure:
        """A plain (SVG) plotly figure of the current layout with at most ``max_points`` per set."""
        fig = go.Figure()
        coords = self.coords
        rng = np.random.default_rng(self.seed)
        for code, set_name in enumerate(self.points.sets):
            pos = self._offsets[code]
            if pos.size > max_points:
                pos = np.sort(rng.choice(pos, size=max_points, replace=False))
            fig.add_trace(
                go.Scatter(
                    x=coords[pos, 0].astype(float).round(4),
                    y=coords[pos, 1].astype(float).round(4),
                    mode="markers",
                    name=self._trace_name(set_name),
                    marker={"size": 4, "color": self._colour(set_name), "opacity": self._opacity(set_name)},
                    customdata=self.points.index[pos],
                    hovertemplate=f"{set_name} #%{{customdata}}<extra></extra>",
                )
            )
        fig.update_layout(
            width=760,
            legend={"itemsizing": "constant"},
            **self._layout(520, self._title(), self._subtitle(max_points)),
        )
        return fig
