"""Moved to :mod:`workbench.workspace` (the domain layer under the views); kept so that
``from workbench.widgets.workspace import Workspace`` keeps working."""

from __future__ import annotations

from ..workspace.index import WORKSPACE_FILE, CacheEntry
from ..workspace.roles import ROLES, guess_role
from ..workspace.sets import STATE_DIR, SetClasses, Workspace, as_workspace

__all__ = [
    "ROLES",
    "STATE_DIR",
    "WORKSPACE_FILE",
    "CacheEntry",
    "SetClasses",
    "Workspace",
    "as_workspace",
    "guess_role",
]
