"""Interactive views of a workspace's caches for JupyterLab (ipywidgets 8 + plotly FigureWidget).

Each view works alone and inside the linked :class:`Workbench` dashboard, where all views share
one :class:`Selection` (model, extractor, class, samples)::

    from workbench.widgets import Workbench
    bench = Workbench.open("workspace/demo")
    bench                               # the dashboard (tabs + linked sample grid)
    bench.report("report.html")         # the same views as a static, offline HTML file

Views: :class:`MetricTable`, :class:`EmbeddingMap`, :class:`SampleGrid`, :class:`ClassHistogram`,
:class:`MemorizationBrowser`, :class:`ExtractorComparison`, :class:`HumanAgreement`.
Data: :class:`Workspace` (caches by set and extractor, with roles), :class:`ScoreStore`
(per-sample scores to sort by). Every view exposes its state as Python attributes (e.g.
``browser.threshold.value = 0.5; browser.copy_count``) and carries ``wb-*`` CSS classes for
browser tests.

Imports are lazy: ``import workbench.widgets`` does not import plotly or ipywidgets until a view
is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "Workbench": "workbench.widgets.dashboard",
    "MetricTable": "workbench.widgets.metric_table",
    "EmbeddingMap": "workbench.widgets.embedding_map",
    "SampleGrid": "workbench.widgets.sample_grid",
    "ClassHistogram": "workbench.widgets.class_histogram",
    "MemorizationBrowser": "workbench.widgets.memorization",
    "ExtractorComparison": "workbench.widgets.extractor_comparison",
    "HumanAgreement": "workbench.widgets.human_agreement",
    "Selection": "workbench.widgets.selection",
    "Samples": "workbench.widgets.selection",
    "Workspace": "workbench.widgets.workspace",
    "ScoreStore": "workbench.widgets.scores",
    "workspace_reports": "workbench.widgets.workspace_metrics",
    "write_report": "workbench.widgets.report",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'workbench.widgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
