"""The demo workspace: real extractors trained on Fashion-MNIST, a zoo of flawed sets, all caches.

The ``demo-classifier``, ``demo-ssl`` and ``demo-foreign`` extractors are registered through the package's
``workbench.extractors`` entry points, on first use of the extractor registry (importing this
package loads no torch); :func:`build_demo` (``workbench demo``) builds the workspace,
:func:`load_workspace` reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.lazy_exports import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "build_demo": "build",
        "DemoConfig": "build",
        "DemoWorkspace": "build",
        "find_demo_workspace": "workspace",
        "find_demo_domain": "workspace",
        "load_workspace": "workspace",
        "workspace_cache": "workspace",
    },
)

if TYPE_CHECKING:
    from .build import DemoConfig, DemoWorkspace, build_demo
    from .workspace import find_demo_domain, find_demo_workspace, load_workspace, workspace_cache
