"""Moved to :mod:`workbench.workspace.projections`; kept so that
``from workbench.widgets.projections import umap_layout`` keeps working."""

from __future__ import annotations

from ..workspace.projections import (
    BLOCK_ROWS,
    UMAP_DEFAULTS,
    PCALayout,
    cached_umap,
    layout_key,
    pca_axis_titles,
    pca_basis,
    pca_fit,
    pca_layout,
    pca_layout_info,
    project,
    subsample,
    umap_available,
    umap_layout,
)

__all__ = [
    "BLOCK_ROWS",
    "UMAP_DEFAULTS",
    "PCALayout",
    "cached_umap",
    "layout_key",
    "pca_axis_titles",
    "pca_basis",
    "pca_fit",
    "pca_layout",
    "pca_layout_info",
    "project",
    "subsample",
    "umap_available",
    "umap_layout",
]
