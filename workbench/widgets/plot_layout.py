"""Top-of-figure layout shared by the views' plotly figures: the modebar never covers the title.

Plotly draws its modebar (the toolbar: download, zoom, pan, lasso, ...) over the top-right corner
of the figure, about 26 px high (``.modebar { top: 2px }``, 22 px buttons), whatever the margins.
A title left in the default place (in the top margin, vertically centred) or a legend along the
top edge runs under it. :func:`top_layout` gives the layout values that keep them apart:

* the top :data:`MODEBAR_PX` pixels of the figure are left to the modebar;
* the title is anchored by its top edge just below that band (``yref="container"``,
  ``y = 1 - MODEBAR_PX / height``, ``yanchor="top"``), left-aligned, with an optional subtitle
  below it (plotly >= 6);
* the top margin holds the modebar band, the title block and ``legend_rows`` rows of a
  horizontal legend placed just above the plot area (``y=1, yanchor="bottom"``;
  :func:`legend_rows` counts them); a vertical legend beside the plot starts at the plot's top
  edge, which is below all of that.

:func:`title_top_px` and :func:`title_bottom_px` read the numbers back (tests check them).
"""

from __future__ import annotations

from typing import Any

#: Height of the band at the top of a figure left to plotly's modebar (26 px and 6 px of air).
MODEBAR_PX = 32
#: Heights of the title line (13 px font) and of the subtitle below it (11 px font, and the gap
#: plotly leaves between the two), measured in Chromium.
TITLE_PX = 20
SUBTITLE_PX = 24
#: Height of one row of a horizontal legend (11 px font).
LEGEND_ROW_PX = 20
#: Generous width of one character of legend text (11 px sans-serif) and of an entry's symbol
#: and gaps, to count the rows a horizontal legend wraps into.
LEGEND_CHAR_PX = 6.5
LEGEND_ITEM_PX = 46


def legend_rows(names: list[str], width: int) -> int:
    """Rows a horizontal legend of entries ``names`` takes in ``width`` pixels.

    As plotly.js lays it out: one row when every entry fits side by side, else a grid of
    columns as wide as the widest entry (the estimate of a text's width errs on the high side).
    """
    if not names:
        return 0
    items = [LEGEND_ITEM_PX + LEGEND_CHAR_PX * len(name) for name in names]
    if sum(items) <= width:
        return 1
    columns = max(1, int(width // max(items)))
    return -(-len(items) // columns)


def title_block_px(*, subtitle: bool) -> int:
    """Height of the title (and subtitle) block below the modebar band."""
    return TITLE_PX + (SUBTITLE_PX if subtitle else 0)


def top_margin(*, subtitle: bool = False, legend_rows: int = 0) -> int:
    """Top margin holding the modebar band, the title block and ``legend_rows`` legend rows."""
    return MODEBAR_PX + title_block_px(subtitle=subtitle) + LEGEND_ROW_PX * int(legend_rows) + 6


def top_layout(
    height: int,
    title: str,
    *,
    subtitle: str | None = None,
    legend_rows: int = 0,
    margin: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Layout values (for ``update_layout``) of a figure ``height`` px high whose title sits
    below the modebar (see the module docstring).

    Args:
        height: the figure's height in pixels (also set in the result).
        title: the title text. subtitle: a second, smaller line below it (None: none).
        legend_rows: rows of a horizontal legend above the plot area (0: the legend is
            vertical, beside the plot, or there is none); the legend is placed there.
        margin: left, right and bottom margins (the top one is computed).
    """
    if height <= top_margin(subtitle=subtitle is not None, legend_rows=legend_rows) + 40:
        raise ValueError(f"a figure {height} px high has no room for its plot below the title")
    title_layout: dict[str, Any] = {
        "text": title,
        "font": {"size": 13},
        "x": 0.0,
        "xref": "container",
        "xanchor": "left",
        "pad": {"l": 10},
        "y": 1.0 - MODEBAR_PX / height,
        "yref": "container",
        "yanchor": "top",
    }
    if subtitle is not None:
        title_layout["subtitle"] = {"text": subtitle, "font": {"size": 11, "color": "#555"}}
    out: dict[str, Any] = {
        "height": height,
        "title": title_layout,
        "margin": {
            **{"l": 50, "r": 10, "b": 40},
            **(margin or {}),
            "t": top_margin(subtitle=subtitle is not None, legend_rows=legend_rows),
        },
        "modebar": {"orientation": "h"},
    }
    if legend_rows:
        out["legend"] = {
            "orientation": "h",
            "x": 0.0,
            "xanchor": "left",
            "y": 1.0,
            "yanchor": "bottom",
            "yref": "paper",
            "font": {"size": 11},
        }
    return out


def title_top_px(layout: Any) -> float:
    """Pixels from the figure's top edge to the top of its title (for a ``top_layout`` title)."""
    return round((1.0 - float(layout.title.y)) * float(layout.height), 6)


def title_bottom_px(layout: Any) -> float:
    """Pixels from the figure's top edge to the bottom of its title block (with the subtitle)."""
    has_subtitle = bool(getattr(getattr(layout.title, "subtitle", None), "text", None))
    return title_top_px(layout) + title_block_px(subtitle=has_subtitle)


def add_correlation_heatmap(fig: Any, matrix: Any, hovertemplate: str) -> None:
    """Add ``matrix`` (a DataFrame of correlations in [-1, 1]) to ``fig`` as a red-blue heatmap
    with its values written in the cells; non-finite values are left blank."""
    from .json_values import finite_or_none

    fig.add_heatmap(
        z=finite_or_none(matrix.to_numpy(dtype=float)),
        x=list(matrix.columns),
        y=list(matrix.index),
        zmin=-1,
        zmax=1,
        colorscale="RdBu",
        texttemplate="%{z:.2f}",
        hovertemplate=hovertemplate,
    )
