"""The static report: one self-contained HTML file of a dashboard's views that opens offline.

It needs no widget manager and no network: plotly.js (the offline bundle shipped inside the
``plotly`` package, ``plotly.offline.get_plotlyjs()``) is inlined once in the page, every figure
is inlined as its JSON and drawn by ``Plotly.newPlot``, and thumbnails are inlined as
``data:image/png;base64`` URIs. Nothing is fetched from ``http(s)://``; the file is about
5 MB (the plotly bundle) plus the figures and thumbnails.

Sections: the workspace (sets, roles, sizes), the metric table, the embedding map (the current
projection, at most ``max_points`` points per set, drawn as SVG so it needs no WebGL), the
sample grid's first page(s), a strip of samples of every set, the class histogram (with the
Top-N matching result when it was run), the memorization browser's most suspicious samples and
their nearest training images, the extractor comparison and the agreement with human judgments.
"""

from __future__ import annotations

import html
import json
import os
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
.wb-strip img { image-rendering: pixelated; margin: 1px; }
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


def _strip(ws: Any, set_name: str, n: int, px: int = 48) -> str:
    rows = np.arange(min(n, ws.size(set_name)))
    thumbs = gather_thumbnails(ws, Samples.of(set_name, rows))
    imgs = "".join(
        f"<img src='{data_uri(encode_png(t))}' width='{px}' height='{px}' title='{html.escape(set_name)} #{i}'>"
        for i, t in zip(rows, thumbs)
    )
    return f"<div class='wb-strip'><b>{html.escape(set_name)}</b> ({ws.role(set_name)})<br>{imgs}</div>"


def report_html(
    bench: Workbench,
    *,
    max_points: int = 3000,
    grid_pages: int = 1,
    strip: int = 24,
    memorization_rows: int = 12,
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
    )

    page.add("<h2>Metrics</h2>" + bench.metric_table.static_html())
    page.add(bench.metric_table.notes.value)

    page.add("<h2>Embeddings</h2>")
    page.figure(bench.embedding_map.static_figure(max_points=max_points))

    page.add("<h2>Samples</h2>" + bench.grid.static_html(pages=grid_pages))
    page.add("<h3>Every set</h3>" + "".join(_strip(ws, s, strip) for s in ws.sets if ws.role(s) != "pool"))

    page.add("<h2>Classes</h2>")
    if not bench.class_view.frame.empty:
        page.figure(bench.class_view.static_figure())
        page.add(bench.class_view.info.value + bench.class_view.match_table.value)
        if bench.selection.class_name:
            page.add(bench.class_view.real_grid.static_html() + bench.class_view.fake_grid.static_html())
    else:
        page.add(f"<p class='wb-note'>{bench.class_view.info.value}</p>")

    page.add("<h2>Memorization</h2>")
    if bench.memorization is not None:
        page.add(bench.memorization.static_html(rows=memorization_rows))
    else:
        page.add("<p class='wb-note'>no training set in this workspace</p>")

    page.add("<h2>Extractor comparison</h2>")
    if bench.comparison.comparison is not None:
        for fig in bench.comparison.static_figures():
            page.figure(fig)
        page.add(bench.comparison.summary.value)

    page.add("<h2>Agreement with human judgments</h2>")
    if bench.human is not None:
        figs = bench.human.static_figures()
        page.figure(figs[0])
        page.add(bench.human.static_html())
        page.figure(figs[1])

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
