"""The domain layer under the views: image sets with roles x extractors, and what is computed on them.

A workspace is a folder whose ``workspace.json`` lists embedding caches by ``(set, extractor)``,
each set playing one role (one ``reference``, optional ``train`` and ``test``, ``generated``
sets, ``pool`` sets)::

    from workbench.workspace import Workspace, workspace_reports
    ws = Workspace.open("workspace/demo")          # or a folder of caches without an index (scanned)
    reports = workspace_reports(ws)                # {extractor: MetricReport}, saved and reused

Modules, one concern each: :mod:`~workbench.workspace.roles` (roles), :mod:`~.index` (the one
reader and writer of ``workspace.json``), :mod:`~.scan` (caches of a folder without an index),
:mod:`~.editing` (``workbench workspace init/add``: checked additions), :mod:`~.evaluate`
(``workbench evaluate``: folders of images to a workspace with metrics and report), :mod:`~.overview`
(``workbench workspace show``: sets x extractors with warnings), :mod:`~.sets` (:class:`Workspace`),
:mod:`~.samples` (:class:`Samples`, references to samples), :mod:`~.reports` (metric reports per
extractor), :mod:`~.scores` (per-sample scores), :mod:`~.heatmaps` (per-sample sensitivity heatmaps),
:mod:`~.projections` (PCA/UMAP layouts).

This layer imports images, cache, metrics and analysis (the metrics and analyses that load torch
only when something is computed), numpy, pandas and pyarrow; never torch, ipywidgets, plotly or
traitlets at import. The views (:mod:`workbench.widgets`) and the CLI build on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.lazy_exports import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "ROLES": "roles",
        "guess_role": "roles",
        "WORKSPACE_FILE": "index",
        "INDEX_FORMAT": "index",
        "CacheEntry": "index",
        "WorkspaceIndex": "index",
        "read_index": "index",
        "write_index": "index",
        "new_index": "index",
        "cache_details": "index",
        "scan_caches": "scan",
        "init_workspace": "editing",
        "add_caches": "editing",
        "AddResult": "editing",
        "replace_sets": "editing",
        "ReplaceResult": "editing",
        "evaluate_folders": "evaluate",
        "EvaluationResult": "evaluate",
        "FolderSet": "evaluate",
        "workspace_overview": "overview",
        "WorkspaceOverview": "overview",
        "Workspace": "sets",
        "SetClasses": "sets",
        "as_workspace": "sets",
        "STATE_DIR": "sets",
        "Samples": "samples",
        "workspace_report": "reports",
        "workspace_reports": "reports",
        "long_metric_frame": "reports",
        "report_to_json": "reports",
        "report_from_json": "reports",
        "ScoreStore": "scores",
        "ScoreInfo": "scores",
        "BUILTIN_SCORES": "scores",
        "HeatmapStore": "heatmaps",
        "HeatmapMaps": "heatmaps",
        "subsample": "projections",
        "pca_layout": "projections",
        "umap_layout": "projections",
        "cached_umap": "projections",
        "umap_available": "projections",
    },
)

if TYPE_CHECKING:
    from .editing import AddResult, ReplaceResult, add_caches, init_workspace, replace_sets
    from .evaluate import EvaluationResult, FolderSet, evaluate_folders
    from .heatmaps import HeatmapMaps, HeatmapStore
    from .index import (
        INDEX_FORMAT,
        WORKSPACE_FILE,
        CacheEntry,
        WorkspaceIndex,
        cache_details,
        new_index,
        read_index,
        write_index,
    )
    from .overview import WorkspaceOverview, workspace_overview
    from .projections import cached_umap, pca_layout, subsample, umap_available, umap_layout
    from .reports import long_metric_frame, report_from_json, report_to_json, workspace_report, workspace_reports
    from .roles import ROLES, guess_role
    from .samples import Samples
    from .scan import scan_caches
    from .scores import BUILTIN_SCORES, ScoreInfo, ScoreStore
    from .sets import STATE_DIR, SetClasses, Workspace, as_workspace
