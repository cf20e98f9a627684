"""Analyses on cached embeddings: memorization, classes, extractor comparison, agreement with humans.

Every analysis returns a result object (:class:`AnalysisResult`) holding pandas tables
(``.to_frame()``) that renders itself in a notebook.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "AnalysisResult": "result",
    "nearest_neighbors": "neighbors",
    "NeighborsResult": "neighbors",
    "memorization_report": "memorization",
    "MemorizationReport": "memorization",
    "class_histogram": "classes",
    "ClassHistogram": "classes",
    "match_topn_histogram": "topn_matching",
    "resample_to_histogram": "topn_matching",
    "TopNMatching": "topn_matching",
    "per_class_metric": "per_class",
    "PerClassMetric": "per_class",
    "zero_shot_labels": "zero_shot",
    "compare_extractors": "compare_extractors",
    "published_extractor_table": "compare_extractors",
    "ExtractorComparison": "compare_extractors",
    "fd_contributions": "attribution",
    "metric_contributions": "attribution",
    "AttributionResult": "attribution",
    "human_agreement": "human_agreement",
    "HumanAgreementResult": "human_agreement",
    "load_human_study": "human_data",
    "load_published_metrics": "human_data",
    "load_user_study": "human_data",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
