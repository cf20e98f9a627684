"""The demo workspace: real extractors trained on Fashion-MNIST, a zoo of flawed sets, all caches.

``import workbench.demo`` registers the ``demo-classifier`` and ``demo-ssl`` extractors;
:func:`build_demo` (``workbench demo``) builds the workspace, :func:`load_workspace` reads it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from . import extractors  # noqa: F401  (registers demo-classifier and demo-ssl)

_LAZY = {
    "build_demo": "workbench.demo.build",
    "DemoConfig": "workbench.demo.build",
    "DemoWorkspace": "workbench.demo.build",
    "load_workspace": "workbench.demo.workspace",
    "workspace_cache": "workbench.demo.workspace",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'workbench.demo' has no attribute {name!r}")
