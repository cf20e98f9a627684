"""``ClickableTable``: an HTML table whose header clicks sort and whose row clicks select.

Python owns the data and the order: it sends ``columns`` and already sorted ``rows`` (text and a
CSS class per cell); the browser (a small anywidget ES module) draws ``table.wb-table`` and
reports clicks by setting ``sort_by`` / ``ascending`` (header) or ``selected`` (row key). Python
observes those traits, re-sorts, and updates the other views. :func:`table_html` renders the
same table statically for the offline report.

DOM hooks: ``table.wb-table``, ``th.wb-sortable[data-key]`` (``.wb-sorted-asc`` /
``.wb-sorted-desc`` on the sort column), ``tr.wb-row[data-key]`` (``.wb-selected`` on the
selected row), ``td.wb-best`` / ``td.wb-worst``, ``td.wb-error`` (a value that could not be computed;
the cell's ``title`` holds the message, in the widget and in the static HTML alike).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import anywidget
import traitlets

_ESM = r"""
function render({ model, el }) {
  el.classList.add("wb-clickable-table");
  function draw() {
    const columns = model.get("columns") || [];
    const rows = model.get("rows") || [];
    const sortBy = model.get("sort_by"), asc = model.get("ascending"), sel = model.get("selected");
    el.innerHTML = "";
    const table = document.createElement("table");
    table.className = "wb-table";
    const head = table.createTHead().insertRow();
    columns.forEach((c) => {
      const th = document.createElement("th");
      th.textContent = c.label;
      if (c.title) th.title = c.title;
      th.dataset.key = c.key;
      if (c.sortable !== false) {
        th.classList.add("wb-sortable");
        if (c.key === sortBy) th.classList.add(asc ? "wb-sorted-asc" : "wb-sorted-desc");
        th.addEventListener("click", () => {
          if (model.get("sort_by") === c.key) {
            model.set("ascending", !model.get("ascending"));
          } else {
            model.set("ascending", c.default_ascending !== false);
            model.set("sort_by", c.key);
          }
          model.save_changes();
        });
      }
      head.appendChild(th);
    });
    const body = table.createTBody();
    rows.forEach((r) => {
      const tr = body.insertRow();
      tr.className = "wb-row" + (r.key === sel ? " wb-selected" : "");
      tr.dataset.key = r.key;
      if (r.title) tr.title = r.title;
      r.cells.forEach((text, j) => {
        const td = tr.insertCell();
        td.textContent = text;
        const cls = r.classes ? r.classes[j] : "";
        if (cls) td.className = cls;
        if (r.titles && r.titles[j]) td.title = r.titles[j];
      });
      tr.addEventListener("click", () => { model.set("selected", r.key); model.save_changes(); });
    });
    el.appendChild(table);
    const cap = model.get("caption");
    if (cap) {
      const p = document.createElement("div");
      p.className = "wb-table-caption";
      p.textContent = cap;
      el.appendChild(p);
    }
  }
  for (const name of ["columns", "rows", "sort_by", "ascending", "selected", "caption"]) {
    model.on("change:" + name, draw);
  }
  draw();
}
export default { render };
"""

TABLE_CSS = """
.wb-table { border-collapse: collapse; font: 12px/1.4 sans-serif; }
.wb-table th, .wb-table td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: right;
  white-space: nowrap; }
.wb-table th { background: #f4f4f4; position: sticky; top: 0; }
.wb-table th.wb-sortable { cursor: pointer; user-select: none; }
.wb-table th.wb-sorted-asc::after { content: " ▲"; }
.wb-table th.wb-sorted-desc::after { content: " ▼"; }
.wb-table td:first-child, .wb-table td:nth-child(2) { text-align: left; }
.wb-table tr.wb-row { cursor: pointer; }
.wb-table tr.wb-row:hover { background: #f0f6ff; }
.wb-table tr.wb-selected { background: #dbe9fb; outline: 2px solid #1f5fa8; }
.wb-table td.wb-best { background: #d8f0d8; font-weight: bold; }
.wb-table td.wb-worst { background: #f8dada; }
.wb-table td.wb-error { color: #b00020; font-style: italic; }
.wb-table td.wb-copier { color: #b00020; font-weight: bold; }
.wb-table td.wb-uncalibrated { color: #8a6d00; font-style: italic; }
.wb-table-caption { font: 11px sans-serif; color: #666; margin-top: 4px; }
"""


class ClickableTable(anywidget.AnyWidget):
    """The browser side of a sortable, selectable table (see the module docstring).

    Traits: ``columns`` (``[{key, label, title, sortable, default_ascending}]``), ``rows``
    (``[{key, cells: [text], classes: [css], titles: [text]}]``, drawn in this order),
    ``sort_by``, ``ascending``, ``selected`` (a row key, "" = none), ``caption``.
    """

    _esm = traitlets.Unicode(_ESM).tag(sync=True)
    _css = traitlets.Unicode(TABLE_CSS).tag(sync=True)
    columns = traitlets.List(traitlets.Dict()).tag(sync=True)
    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    sort_by = traitlets.Unicode("").tag(sync=True)
    ascending = traitlets.Bool(True).tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)
    caption = traitlets.Unicode("").tag(sync=True)


def table_html(
    columns: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    *,
    selected: str = "",
    caption: str = "",
    css_class: str = "wb-table",
) -> str:
    """Static HTML of the same table (for the report): header, rows with their cell classes and
    cell titles (tooltips, e.g. the error message of a failed metric)."""
    out = [f'<table class="{css_class}"><thead><tr>']
    out += [f'<th title="{html.escape(c.get("title", ""))}">{html.escape(c["label"])}</th>' for c in columns]
    out.append("</tr></thead><tbody>")
    for r in rows:
        cls = "wb-row wb-selected" if r["key"] == selected else "wb-row"
        out.append(f'<tr class="{cls}" data-key="{html.escape(r["key"])}">')
        classes = r.get("classes") or [""] * len(r["cells"])
        titles = r.get("titles") or [""] * len(r["cells"])
        for text, c, title in zip(r["cells"], classes, titles):
            attrs = (f' class="{html.escape(c)}"' if c else "") + (f' title="{html.escape(title)}"' if title else "")
            out.append(f"<td{attrs}>{html.escape(str(text))}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    if caption:
        out.append(f'<div class="wb-table-caption">{html.escape(caption)}</div>')
    return "".join(out)
