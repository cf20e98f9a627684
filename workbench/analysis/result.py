"""The base of every analysis result: named tables that know how to show themselves.

An analysis returns an :class:`AnalysisResult` (or a subclass). It holds one or more pandas
tables under names, one of which is the *main* table, plus a title and a one-line summary:

- ``result.to_frame()`` -> a copy of the main table (``to_frame("name")`` for another one);
- ``result.tables`` -> ``{name: DataFrame}``, every table the analysis produced;
- in a notebook the result renders as the title, the summary and :meth:`display_frame`
  (``_repr_html_``); in a terminal ``repr(result)`` prints the same as text.

Subclasses add properties and methods for their own tables and may override
:meth:`display_frame` to show a compact view instead of the full main table.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import pandas as pd

_TEXT_MAX_ROWS = 40


class AnalysisResult:
    """Named tables with a title and a summary line.

    Args:
        tables: ``{name: DataFrame}``; at least one. The frames are stored as given (not copied);
            :meth:`to_frame` hands out copies.
        title: short heading, e.g. ``"Human agreement"``.
        summary: one line that says what the numbers are (sizes, settings).
        main: name of the main table; defaults to the first key of ``tables``.

    Raises:
        ValueError: ``tables`` is empty or ``main`` is not one of its keys.
        TypeError: a value of ``tables`` is not a pandas DataFrame.
    """

    def __init__(
        self,
        tables: Mapping[str, pd.DataFrame],
        *,
        title: str,
        summary: str = "",
        main: str | None = None,
    ) -> None:
        if not tables:
            raise ValueError("tables must hold at least one DataFrame")
        for name, frame in tables.items():
            if not isinstance(frame, pd.DataFrame):
                raise TypeError(f"tables[{name!r}] must be a pandas DataFrame; got {type(frame).__name__}")
        main = next(iter(tables)) if main is None else main
        if main not in tables:
            raise ValueError(f"main={main!r} is not one of the tables {list(tables)}")
        self.tables: dict[str, pd.DataFrame] = dict(tables)
        self.title = title
        self.summary = summary
        self.main = main

    def to_frame(self, table: str | None = None) -> pd.DataFrame:
        """A copy of the main table, or of the table named ``table``."""
        name = self.main if table is None else table
        if name not in self.tables:
            raise KeyError(f"no table named {name!r}; this result has {list(self.tables)}")
        return self.tables[name].copy()

    def display_frame(self) -> pd.DataFrame:
        """The frame shown by ``_repr_html_`` and ``repr``: the main table unless overridden."""
        return self.tables[self.main]

    def _repr_html_(self) -> str:
        parts = [f"<h4>{html.escape(self.title)}</h4>"]
        if self.summary:
            parts.append(f"<p>{html.escape(self.summary)}</p>")
        parts.append(self.display_frame().to_html(float_format=lambda v: f"{v:.4g}", na_rep=""))
        return "\n".join(parts)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}: {self.title}"]
        if self.summary:
            lines.append(self.summary)
        lines.append(self.display_frame().to_string(max_rows=_TEXT_MAX_ROWS, float_format=lambda v: f"{v:.4g}"))
        lines.append(f"tables: {', '.join(f'{k} ({len(v)} rows)' for k, v in self.tables.items())}")
        return "\n".join(lines)
