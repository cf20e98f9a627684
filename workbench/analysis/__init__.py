"""Analyses on cached embeddings: memorization, classes, extractor comparison, agreement with humans,
and sensitivity heatmaps of FD / KD on images.

Every analysis returns a result object (:class:`AnalysisResult`) holding pandas tables
(``.to_frame()``) that renders itself in a notebook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.lazy_exports import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "AnalysisResult": "result",
        "nearest_neighbors": "neighbors",
        "NeighborsResult": "neighbors",
        "memorization_report": "memorization",
        "MemorizationReport": "memorization",
        "class_histogram": "classes",
        "ClassHistogram": "classes",
        "match_topn_histogram": "topn_matching",
        "bootstrap_topn_matching": "topn_matching",
        "resample_to_histogram": "topn_matching",
        "TopNMatching": "topn_matching",
        "per_class_metric": "per_class",
        "PerClassMetric": "per_class",
        "zero_shot_labels": "zero_shot",
        "compare_extractors": "extractor_ranking",
        "published_extractor_table": "extractor_ranking",
        "ExtractorComparison": "extractor_ranking",
        "fd_contributions": "attribution",
        "metric_contributions": "attribution",
        "AttributionResult": "attribution",
        "metric_heatmaps": "heatmaps",
        "HeatmapResult": "heatmaps",
        "human_agreement": "agreement",
        "HumanAgreementResult": "agreement",
        "load_human_study": "human_data",
        "load_published_metrics": "human_data",
        "load_user_study": "human_data",
    },
)

if TYPE_CHECKING:
    from .agreement import HumanAgreementResult, human_agreement
    from .attribution import AttributionResult, fd_contributions, metric_contributions
    from .classes import ClassHistogram, class_histogram
    from .extractor_ranking import ExtractorComparison, compare_extractors, published_extractor_table
    from .heatmaps import HeatmapResult, metric_heatmaps
    from .human_data import load_human_study, load_published_metrics, load_user_study
    from .memorization import MemorizationReport, memorization_report
    from .neighbors import NeighborsResult, nearest_neighbors
    from .per_class import PerClassMetric, per_class_metric
    from .result import AnalysisResult
    from .topn_matching import TopNMatching, bootstrap_topn_matching, match_topn_histogram, resample_to_histogram
    from .zero_shot import zero_shot_labels
