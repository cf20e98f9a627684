"""Generative Evaluation Workbench: embeddings, exact metrics and interactive views for generative models.

The small top-level API::

    import workbench as wb
    real = wb.extract("data/real", "dinov2")      # -> EmbeddingCache (memory-mapped)
    fake = wb.extract("samples.npz", "dinov2")
    wb.open_cache(real.path).features              # N x D float32
    wb.evaluate_caches(real, {"model": fake}, bootstrap=100)   # metrics table with intervals
    wb.Workbench.open("workspace/demo")           # the interactive dashboard (in Jupyter)
    wb.evaluate_folders("real/", {"model": "samples/"}, train="train/", out="workspace/own")  # all at once
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.lazy_exports import attach

__version__ = "0.1.0"

# Imported on first use so that `import workbench` (and the CLI) start fast without torch.
__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "extract": "cache",
        "open_cache": "cache",
        "EmbeddingCache": "cache",
        "CacheError": "cache",
        "open_source": "images",
        "create_extractor": "extractors",
        "register_extractor": "extractors",
        "list_extractors": "extractors",
        "evaluate": "metrics",
        "evaluate_caches": "metrics",
        "Workbench": "widgets",
        "evaluate_folders": "workspace",
    },
)
__all__ += ["__version__"]

if TYPE_CHECKING:
    from .cache import CacheError, EmbeddingCache, extract, open_cache
    from .extractors import create_extractor, list_extractors, register_extractor
    from .images import open_source
    from .metrics import evaluate, evaluate_caches
    from .widgets import Workbench
    from .workspace import evaluate_folders
