"""Interactive views of a workspace's caches for JupyterLab (ipywidgets 8 + plotly FigureWidget).

Each view works alone and inside the linked :class:`Workbench` dashboard, where all views share
one :class:`Selection` (model, extractor, class, samples)::

    from workbench.widgets import Workbench
    bench = Workbench.open("workspace/demo")
    bench                               # the dashboard (tabs + linked sample grid)
    bench.report("report.html")         # the same views as a static, offline HTML file

Views: :class:`MetricTable`, :class:`EmbeddingMap`, :class:`SampleGrid`, :class:`ClassHistogram`,
:class:`MemorizationBrowser`, :class:`ExtractorComparison`, :class:`HumanAgreement`,
:class:`HeatmapComparison`.
The data they show lives in :mod:`workbench.workspace` (the domain layer, no view library):
:class:`Workspace` (caches by set and extractor, with roles), :class:`ScoreStore` (per-sample
scores to sort by), :class:`Samples`, the metric reports; they are re-exported here so that older
imports keep working. Every view keeps its state in traitlets traits, linked to the shared
selection and to its controls (:mod:`workbench.widgets.linking`), so it can be observed, linked
and set like any widget (``grid.observe(callback, names="samples")``,
``traitlets.link((emap, "samples"), (grid, "samples"))``, ``browser.copy_threshold = 0.5`` or
``browser.threshold.value = 0.5``; ``browser.copy_count``), and carries ``wb-*`` CSS classes for
browser tests.

Imports are lazy: ``import workbench.widgets`` does not import plotly or ipywidgets until a view
is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.lazy_exports import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "Workbench": "dashboard",
        "MetricTable": "metric_table",
        "EmbeddingMap": "embedding_map",
        "SampleGrid": "sample_grid",
        "ClassHistogram": "class_histogram",
        "MemorizationBrowser": "memorization",
        "ExtractorComparison": "extractor_comparison",
        "HumanAgreement": "human_agreement",
        "HeatmapComparison": "heatmaps",
        "Selection": "selection",
        "Samples": "selection",
        "Workspace": "workspace",
        "ScoreStore": "scores",
        "workspace_reports": "workspace_metrics",
        "write_report": "report",
    },
)

if TYPE_CHECKING:
    from .class_histogram import ClassHistogram
    from .dashboard import Workbench
    from .embedding_map import EmbeddingMap
    from .extractor_comparison import ExtractorComparison
    from .heatmaps import HeatmapComparison
    from .human_agreement import HumanAgreement
    from .memorization import MemorizationBrowser
    from .metric_table import MetricTable
    from .report import write_report
    from .sample_grid import SampleGrid
    from .scores import ScoreStore
    from .selection import Samples, Selection
    from .workspace import Workspace
    from .workspace_metrics import workspace_reports
