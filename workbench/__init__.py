"""Generative Evaluation Workbench: embeddings, exact metrics and interactive views for generative models.

The small top-level API::

    import workbench as wb
    real = wb.extract("data/real", "dinov2")      # -> EmbeddingCache (memory-mapped)
    fake = wb.extract("samples.npz", "dinov2")
    wb.open_cache(real.path).features              # N x D float32
    wb.evaluate_caches(real, {"model": fake}, bootstrap=100)   # metrics table with intervals
    wb.Workbench.open("workspace/demo")           # the interactive dashboard (in Jupyter)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# Imported on first use so that `import workbench` (and the CLI) start fast without torch.
_LAZY = {
    "extract": "workbench.cache",
    "open_cache": "workbench.cache",
    "EmbeddingCache": "workbench.cache",
    "CacheError": "workbench.cache",
    "open_source": "workbench.images",
    "create_extractor": "workbench.extractors",
    "register_extractor": "workbench.extractors",
    "list_extractors": "workbench.extractors",
    "evaluate": "workbench.metrics",
    "evaluate_caches": "workbench.metrics",
    "Workbench": "workbench.widgets",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
