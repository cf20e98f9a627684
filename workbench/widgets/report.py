"""The static report: one self-contained HTML file of a dashboard's views that opens offline.

It needs no widget manager and no network: plotly.js (the offline bundle shipped inside the
``plotly`` package, ``plotly.offline.get_plotlyjs()``) is inlined once in the page, every figure
is inlined as its JSON and drawn by ``Plotly.newPlot``, and thumbnails are inlined as
``data:image/png;base64`` URIs. Nothing is fetched from ``http(s)://``; the file is about
5 MB (the plotly bundle) plus the figures and thumbnails.

Sections: the workspace (sets, roles, sizes), the metric table, the embedding map (the current
projection, at most ``max_points`` points per set, drawn as SVG so it needs no WebGL), the
sample grid's first page(s), a strip of samples of every set (drawn across the whole set with a
seeded choice, across its classes when it has some: :func:`strip_rows`; each strip's caption
names the set and how it was drawn), the class histogram (with the Top-N matching result when it
was run), memorization (every generated set, the highest copy rate first, with its copy rate and
its most suspicious samples beside their nearest training images; the sets the dashboard has not
analysed yet are analysed for the report), the extractor comparison, the sensitivity heatmaps
(the selected model's images under two extractors' FD heatmaps with each image's delta, as the
dashboard's *Heatmaps* tab shows them when it was opened, else its first ``heatmaps`` images,
computed for the report and kept in the workspace; ``heatmaps=0`` leaves them out: with
CPU Inception they cost a few seconds per image) and
the agreement with human judgments. A view the dashboard could not make is named with its error.
"""

from __future__ import annotations

import html
import json
import os
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from ..workspace import Samples
from .html_table import TABLE_CSS
from .sample_grid import gather_thumbnails
from .thumbnails import data_uri, encode_png

if TYPE_CHECKING:
    from .dashboard import Workbench

_CSS = (
    TABLE_CSS
    + """
body { font: 13px/1.45 -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 18px 28px; color: #222; }
h1 { font-size: 20px; margin-bottom: 2px; } h2 { font-size: 16px; border-bottom: 1px solid #ddd; padding-bottom: 3px;
  margin-top: 28px; }
.wb-note { color: #666; font-size: 12px; }
.wb-grid-cells { display: grid; gap: 4px; }
.wb-grid-cell { font: 10px sans-serif; text-align: center; }
.wb-strip { margin: 6px 0; } .wb-strip img { image-rendering: pixelated; margin: 1px; }
.wb-strip-caption { font-size: 12px; margin-bottom: 2px; }
.wb-plot { display: inline-block; vertical-align: top; }
.wb-memo-row { display: flex; gap: 4px; align-items: flex-end; margin: 4px 0; }
.wb-memo-row figure { margin: 0; text-align: center; font-size: 10px; }
.wb-memo-row img { image-rendering: pixelated; }
.wb-copy img { outline: 2px solid #d62728; }
"""
)


class _Page:
    """Accumulates sections and figures of the report."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.figures: list[tuple[str, str]] = []

    def add(self, text: str) -> None:
        self.parts.append(text)

    def figure(self, fig: go.Figure) -> None:
        div_id = f"wb-plot-{len(self.figures)}"
        payload = pio.to_json(fig, validate=False, remove_uids=True)
        self.figures.append((div_id, payload))
        self.parts.append(f"<div class='wb-plot js-plotly-plot-host' id='{div_id}'></div>")


def _set_classes(ws: Any, set_name: str) -> Any:
    """The set's classes (:meth:`Workspace.classes`), or None when it has none or they cannot be read."""
    try:
        return ws.classes(set_name)
    except Exception:  # a strip without classes is still a strip
        return None


def strip_rows(ws: Any, set_name: str, n: int, seed: int = 0) -> tuple[np.ndarray, str]:
    """Rows of ``set_name`` for its strip in the report, and how they were drawn.

    Not the first ``n`` rows (a set read from class folders is sorted by class, so those are all
    one class): with classes (:meth:`~workbench.workspace.Workspace.classes`), the classes take
    turns, each giving a row drawn at random from its own rows, until ``n`` rows are drawn; without,
    one row drawn at random from each of ``n`` equal stretches of the set. Seeded (``seed`` and the
    set name), so a report is reproducible; rows are returned by class, then row.
    """
    size = int(ws.size(set_name))
    n = max(0, min(int(n), size))
    rng = np.random.default_rng([int(seed) % 2**32, zlib.crc32(set_name.encode("utf-8"))])
    classes = _set_classes(ws, set_name)
    if classes is not None and len(classes.codes) == size and n:
        codes = np.asarray(classes.codes, dtype=np.int64)
        groups = [rng.permutation(np.flatnonzero(codes == c)) for c in np.unique(codes)]
        picked: list[int] = []
        depth = 0
        while len(picked) < n:
            for g in rng.permutation(len(groups)):
                if depth < len(groups[g]) and len(picked) < n:
                    picked.append(int(groups[g][depth]))
            depth += 1
        rows = np.asarray(picked, dtype=np.int64)
        rows = rows[np.lexsort((rows, codes[rows]))]
        shown = len(np.unique(codes[rows]))
        how = f"drawn across its classes ({shown} of {len(groups)} shown; {classes.source}), seed {seed}"
        return rows, how
    edges = np.linspace(0, size, n + 1)
    rows = np.floor(edges[:-1] + rng.random(n) * np.diff(edges)).astype(np.int64)
    return np.minimum(rows, size - 1), f"spread evenly over the set, seed {seed}"


def _strip(ws: Any, set_name: str, n: int, px: int = 48, seed: int = 0) -> str:
    rows, how = strip_rows(ws, set_name, n, seed)
    thumbs = gather_thumbnails(ws, Samples.of(set_name, rows))
    classes = _set_classes(ws, set_name)
    name = html.escape(set_name)

    def label(i: int) -> str:
        if classes is None or classes.codes[i] < 0:
            return f"{name} #{i}"
        return f"{name} #{i} · {html.escape(classes.names[int(classes.codes[i])])}"

    imgs = "".join(
        f"<img src='{data_uri(encode_png(t))}' width='{px}' height='{px}' title='{label(int(i))}'>"
        for i, t in zip(rows, thumbs)
    )
    caption = (
        f"<figcaption class='wb-strip-caption'><b>{name}</b> ({ws.role(set_name)}): {len(rows)} of "
        f"{ws.size(set_name)} samples, {html.escape(how)}</figcaption>"
    )
    return f"<figure class='wb-strip' data-set='{name}'>{caption}{imgs}</figure>"


def _missing(bench: Workbench, name: str, what: str) -> str:
    """The note for a view the dashboard could not make."""
    error = bench.view_errors.get(name, "not available")
    return f"<p class='wb-note wb-view-error'>{html.escape(what)} cannot be shown: {html.escape(error)}</p>"


def _heatmap_section(bench: Workbench, count: int) -> str:
    """The heatmap comparison as the dashboard shows it (when its tab computed it), else of the
    selected model's first ``count`` images; a note when left out or not possible."""
    view = getattr(bench, "heatmap_view", None)
    if view is None:
        return _missing(bench, "heatmaps", "The heatmap comparison")
    if count <= 0:
        return "<p class='wb-note'>heatmaps left out of this report (heatmaps=0)</p>"
    try:
        if view._computed is not None and view._computed == view._key():
            return view.static_html()
        from .heatmaps import HeatmapComparison
        from .selection import Selection

        own = HeatmapComparison(
            bench.ws,
            selection=Selection(model=view.model_set() or "", extractor=bench.selection.extractor),
            heatmaps=bench.heatmaps,
            count=max(3, min(int(count), 256)),
            metric=view.metric,
            background=False,
        )
        if view.left and view.right:
            own.left, own.right = view.left, view.right
        return own.static_html()
    except Exception as exc:  # the rest of the report stands
        return (
            f"<p class='wb-note wb-view-error'>heatmaps cannot be shown: {html.escape(type(exc).__name__)}: "
            f"{html.escape(str(exc))}</p>"
        )


def report_html(
    bench: Workbench,
    *,
    max_points: int = 3000,
    grid_pages: int = 1,
    strip: int = 24,
    memorization_rows: int = 12,
    heatmaps: int = 8,
    title: str | None = None,
) -> str:
    """The report of ``bench`` as one HTML string (see the module docstring)."""
    from plotly.offline import get_plotlyjs

    ws = bench.ws
    page = _Page()
    heading = title or f"Generative evaluation report — {ws.root.name if ws.root else 'workspace'}"
    page.add(
        f"<h1>{html.escape(heading)}</h1><div class='wb-note'>written "
        f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} from "
        f"{html.escape(str(ws.root or 'caches'))}</div>"
    )
    rows = "".join(
        f"<tr><td>{html.escape(s)}</td><td>{ws.role(s)}</td><td>{ws.size(s)}</td>"
        f"<td>{html.escape(', '.join(e.extractor for e in ws.entries if e.set == s))}</td></tr>"
        for s in ws.sets
    )
    page.add(
        "<h2>Workspace</h2><table class='wb-table'><thead><tr><th>set</th><th>role</th><th>samples</th>"
        f"<th>extractors</th></tr></thead><tbody>{rows}</tbody></table>"
        + "".join(f"<p class='wb-note wb-workspace-note'>⚠ {html.escape(n)}</p>" for n in ws.notes)
    )

    page.add("<h2>Metrics</h2>")
    if bench.metric_table is not None:
        page.add(bench.metric_table.static_html())
        page.add(bench.metric_table.notes.value)
    else:
        page.add(_missing(bench, "metric_table", "The metric table"))

    page.add("<h2>Embeddings</h2>")
    if bench.embedding_map is not None:
        page.figure(bench.embedding_map.static_figure(max_points=max_points))
    else:
        page.add(_missing(bench, "embedding_map", "The embedding map"))

    page.add("<h2>Samples</h2>")
    if bench.grid is not None:
        shown = bench.grid.items.set_names() if len(bench.grid.items) else []
        if shown:
            page.add(
                "<p class='wb-note wb-grid-sets'>samples of "
                + ", ".join(f"<b>{html.escape(s)}</b> ({ws.role(s)})" for s in shown)
                + "</p>"
            )
        page.add(bench.grid.static_html(pages=grid_pages))
    else:
        page.add(_missing(bench, "sample_grid", "The sample grid"))
    page.add(
        "<h3>Every set</h3>" + "".join(_strip(ws, s, strip, seed=bench.seed) for s in ws.sets if ws.role(s) != "pool")
    )

    page.add("<h2>Classes</h2>")
    if bench.class_view is None:
        page.add(_missing(bench, "class_histogram", "The class histogram"))
    elif not bench.class_view.frame.empty:
        page.figure(bench.class_view.static_figure())
        page.add(bench.class_view.info.value + bench.class_view.match_table.value)
        if bench.selection.class_name:
            page.add(bench.class_view.real_grid.static_html() + bench.class_view.fake_grid.static_html())
    else:
        page.add(f"<p class='wb-note'>{bench.class_view.info.value}</p>")

    page.add("<h2>Memorization</h2>")
    if bench.memorization is not None:
        try:
            page.add(bench.memorization.static_html(rows=memorization_rows))
        except Exception as exc:  # the rest of the report stands
            page.add(
                f"<p class='wb-note wb-view-error'>memorization cannot be shown: {html.escape(type(exc).__name__)}: "
                f"{html.escape(str(exc))}</p>"
            )
    elif "memorization" in bench.view_errors:
        page.add(_missing(bench, "memorization", "The memorization browser"))
    else:
        root = html.escape(str(ws.root) if ws.root is not None else "WS")
        page.add(
            "<p class='wb-note'>no training set in this workspace: add the images the models were trained on "
            f"with <code>workbench evaluate ... --train DIR</code>, or <code>workbench workspace add {root} CACHE "
            "--set train --role train</code></p>"
        )

    page.add("<h2>Extractor comparison</h2>")
    if bench.comparison is None:
        page.add(_missing(bench, "extractor_comparison", "The extractor comparison"))
    elif bench.comparison.comparison is not None:
        for fig in bench.comparison.static_figures():
            page.figure(fig)
        page.add(bench.comparison.static_html())

    page.add("<h2>Where the metric looks: sensitivity heatmaps</h2>")
    page.add(_heatmap_section(bench, heatmaps))

    page.add("<h2>Agreement with human judgments</h2>")
    if bench.human is not None:
        figs = bench.human.static_figures()
        page.add(bench.human.notice.value)
        page.figure(figs[0])
        page.add(bench.human.static_html())
        page.figure(figs[1])
    elif "human_agreement" in bench.view_errors:
        page.add(_missing(bench, "human_agreement", "The agreement with human judgments"))

    data = "\n".join(
        f"<script type='application/json' id='{div_id}-data'>{payload.replace('</', '<' + chr(92) + '/')}</script>"
        for div_id, payload in page.figures
    )
    draw = (
        "<script>(function(){var ids=" + json.dumps([d for d, _ in page.figures]) + ";"
        "ids.forEach(function(id){var f=JSON.parse(document.getElementById(id+'-data').textContent);"
        "Plotly.newPlot(id,f.data,f.layout||{},{displaylogo:false,responsive:false});});})();</script>"
    )
    plotly_js = get_plotlyjs().replace("</script", "<\\/script")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(heading)}</title><style>{_CSS}</style>"
        f"<script type='text/javascript'>{plotly_js}</script></head><body>"
        + "\n".join(page.parts)
        + data
        + draw
        + "</body></html>"
    )


def write_report(bench: Workbench, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Write :func:`report_html` to ``path`` (parent folders created); returns the path."""
    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(report_html(bench, **kwargs), encoding="utf-8")
    tmp.replace(out)
    return out
