"""Moved to :mod:`workbench.workspace.projections`; kept so that
``from workbench.widgets.projections import umap_layout`` keeps working."""

from __future__ import annotations

from ..workspace.projections import (
    BLOCK_ROWS,
    UMAP_DEFAULTS,
    cached_umap,
    layout_key,
    pca_basis,
    pca_layout,
    project,
    subsample,
    umap_available,
    umap_layout,
)

__all__ = [
    "BLOCK_ROWS",
    "UMAP_DEFAULTS",
    "cached_umap",
    "layout_key",
    "pca_basis",
    "pca_layout",
    "project",
    "subsample",
    "umap_available",
    "umap_layout",
]
