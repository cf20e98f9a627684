"""``SpriteCanvas``: a page of thumbnails sent as one binary PNG sprite, with captions and clicks.

The page's thumbnails travel as a single PNG (:mod:`workbench.widgets.thumbnails`) in a binary
widget message; the browser (a small anywidget ES module) lays out one ``div.wb-grid-cell`` per
cell, each showing its part of the sprite as a CSS background, scaled with nearest-neighbour
rendering, plus a caption. Clicking a cell sets :attr:`SpriteCanvas.clicked` to the cell's
position, which the Python side observes (and resets to -1).

A caption of several lines (``"model_a\n#12 · 0.31"``) shows one ``.wb-grid-caption-line`` per
line, each cut with an ellipsis when too wide (the cell's tooltip has it whole). A cell whose
``cls`` is ``"wb-no-thumb"`` shows the empty-state tile of a set without thumbnails
(:func:`~workbench.widgets.thumbnails.empty_tile`) with a muted caption.

DOM hooks: ``.wb-sprite-canvas`` (the root), ``.wb-grid-cell[data-index]``, ``.wb-grid-thumb``,
``.wb-grid-caption`` (with one ``.wb-grid-caption-line`` per line), ``.wb-selected`` on the
highlighted cell, ``.wb-no-thumb`` on empty-state cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anywidget
import numpy as np
import traitlets

from .thumbnails import encode_sprite, sprite_offsets

_ESM = r"""
function render({ model, el }) {
  el.classList.add("wb-sprite-canvas");
  let url = null;
  function draw() {
    const bytes = model.get("sprite");
    const cells = model.get("cells") || [];
    const cols = Math.max(1, model.get("columns"));
    const scale = model.get("scale");
    const px = model.get("px");
    const size = Math.round(px * scale);
    const sw = model.get("sprite_width") * scale, sh = model.get("sprite_height") * scale;
    if (url) { URL.revokeObjectURL(url); url = null; }
    if (bytes && bytes.byteLength) {
      url = URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
    }
    el.innerHTML = "";
    const grid = document.createElement("div");
    grid.className = "wb-grid-cells";
    grid.style.gridTemplateColumns = `repeat(${cols}, ${size + 6}px)`;
    const selected = model.get("selected");
    cells.forEach((c, i) => {
      const cell = document.createElement("div");
      cell.className = "wb-grid-cell" + (c.cls ? " " + c.cls : "") + (i === selected ? " wb-selected" : "");
      cell.dataset.index = String(i);
      if (c.title) cell.title = c.title;
      const thumb = document.createElement("div");
      thumb.className = "wb-grid-thumb";
      thumb.style.width = size + "px";
      thumb.style.height = size + "px";
      if (url) {
        thumb.style.backgroundImage = `url(${url})`;
        thumb.style.backgroundSize = `${sw}px ${sh}px`;
        thumb.style.backgroundPosition = `-${c.x * scale}px -${c.y * scale}px`;
      }
      const cap = document.createElement("div");
      cap.className = "wb-grid-caption";
      // one line per "\n" of the caption (set on the first, row and score on the second)
      (c.caption || "").split("\n").forEach((text) => {
        const line = document.createElement("div");
        line.className = "wb-grid-caption-line";
        line.textContent = text;
        cap.appendChild(line);
      });
      cell.appendChild(thumb);
      cell.appendChild(cap);
      cell.addEventListener("click", () => {
        model.set("clicked", i);
        model.save_changes();
      });
      grid.appendChild(cell);
    });
    el.appendChild(grid);
  }
  for (const name of ["sprite", "cells", "columns", "scale", "selected"]) {
    model.on("change:" + name, draw);
  }
  draw();
  return () => { if (url) URL.revokeObjectURL(url); };
}
export default { render };
"""

_CSS = """
.wb-sprite-canvas .wb-grid-cells { display: grid; gap: 4px; }
.wb-sprite-canvas .wb-grid-cell { cursor: pointer; border: 2px solid transparent; padding: 1px;
  font: 10px/1.2 sans-serif; text-align: center; overflow: hidden; }
.wb-sprite-canvas .wb-grid-cell:hover { border-color: #9bb8d8; }
.wb-sprite-canvas .wb-grid-cell.wb-selected { border-color: #1f5fa8; }
.wb-sprite-canvas .wb-grid-cell.wb-copy { border-color: #d62728; }
.wb-sprite-canvas .wb-grid-cell.wb-query { background: #eef3fa; }
.wb-sprite-canvas .wb-grid-thumb { image-rendering: pixelated; background-repeat: no-repeat;
  background-color: #eee; }
.wb-sprite-canvas .wb-grid-caption-line { white-space: nowrap; text-overflow: ellipsis; overflow: hidden; }
.wb-sprite-canvas .wb-grid-cell.wb-no-thumb .wb-grid-caption { color: #777; }
"""


class SpriteCanvas(anywidget.AnyWidget):
    """The browser side of a thumbnail page (see the module docstring).

    Traits: ``sprite`` (PNG bytes), ``sprite_width``/``sprite_height`` and ``px`` (native pixels),
    ``scale`` (display size / native size), ``columns``, ``cells`` (``[{caption, title, x, y,
    cls}]``; ``caption`` may hold several ``\n``-separated lines), ``clicked`` (cell clicked, -1 when handled), ``selected`` (cell highlighted).
    """

    _esm = traitlets.Unicode(_ESM).tag(sync=True)
    _css = traitlets.Unicode(_CSS).tag(sync=True)
    sprite = traitlets.Bytes(b"").tag(sync=True)
    sprite_width = traitlets.Int(0).tag(sync=True)
    sprite_height = traitlets.Int(0).tag(sync=True)
    px = traitlets.Int(0).tag(sync=True)
    scale = traitlets.Float(1.0).tag(sync=True)
    columns = traitlets.Int(8).tag(sync=True)
    cells = traitlets.List(traitlets.Dict()).tag(sync=True)
    clicked = traitlets.Int(-1).tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)

    def show(self, images: np.ndarray, cells: Sequence[dict[str, Any]], *, columns: int, display_px: int) -> None:
        """Send one page: ``images`` (``m x px x px x 3`` uint8) and one cell dict per image
        (``caption``, ``title``, optional ``cls``); positions are filled in here."""
        m = int(images.shape[0])
        if len(cells) != m:
            raise ValueError(f"got {m} images but {len(cells)} cells")
        px = int(images.shape[1]) if m else max(self.px, 1)
        offsets = sprite_offsets(m, columns, px)
        laid = [{**c, "x": x, "y": y} for c, (x, y) in zip(cells, offsets)]
        png = encode_sprite(images, columns) if m else b""
        rows = max(1, -(-m // columns))
        with self.hold_sync():
            self.px = px
            self.columns = int(columns)
            self.scale = float(display_px) / px
            self.sprite_width = min(max(m, 1), columns) * px
            self.sprite_height = rows * px
            self.sprite = png
            self.selected = -1
            self.cells = laid
