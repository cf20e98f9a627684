"""The demo workspace: real extractors trained on Fashion-MNIST, a zoo of flawed sets, all caches.

``import workbench.demo`` registers the ``demo-classifier`` and ``demo-ssl`` extractors;
:func:`build_demo` (``workbench demo``) builds the workspace, :func:`load_workspace` reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.lazy_exports import attach

from . import extractors  # noqa: F401  (registers demo-classifier and demo-ssl)

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "build_demo": "build",
        "DemoConfig": "build",
        "DemoWorkspace": "build",
        "load_workspace": "workspace",
        "workspace_cache": "workspace",
    },
)

if TYPE_CHECKING:
    from .build import DemoConfig, DemoWorkspace, build_demo
    from .workspace import load_workspace, workspace_cache
