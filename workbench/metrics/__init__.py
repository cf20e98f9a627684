"""Every serious generative-evaluation metric, as pure functions on feature arrays (``N x D``).

Two-sample metrics take ``(real, fake)``; memorization metrics take the training set too.
:func:`evaluate` computes many metrics for many generated sets in one table;
:func:`evaluate_caches` does the same on embedding caches and refuses to mix extractors.
The copy rate is ``workbench.metrics.copy_rate.copy_rate`` (its result, :class:`CopyRateResult`,
is exported here; the function shares its module's name, so it is imported from the module).
"""

from .authenticity import AuthenticityResult, authenticity
from .bootstrap import BootstrapResult, bootstrap
from .cmmd import cmmd
from .copy_rate import CopyRateResult, UncalibratedCopyRateWarning
from .ct_score import CTResult, ct_score
from .fd_infinity import FDInfinityResult, fd_infinity
from .fld import FLDResult, fld
from .frechet import (
    FeatureStats,
    GaussianStats,
    SingularCovarianceWarning,
    fd,
    fd_from_stats,
    feature_statistics,
    trace_sqrt_product,
)
from .from_caches import IncompatibleCachesError, evaluate_caches
from .inception_score import InceptionScoreResult, inception_score
from .kernel_distance import kd
from .mifid import MiFIDResult, mifid
from .neighbors import knn, kth_neighbor_radii
from .prdc import PRDCResult, prdc
from .precision_recall import PrecisionRecallResult, RealismResult, precision_recall, realism_score
from .results import MetricValue
from .sliced_wasserstein import sliced_wasserstein
from .suite import (
    METRICS,
    FeatureSet,
    MetricReport,
    MetricSelection,
    evaluate,
    higher_is_better,
    metric_menu_text,
    select_metrics,
)
from .validation import ExcludedRowsWarning, SampleSizeWarning
from .vendi import VendiResult, vendi

__all__ = [
    "METRICS",
    "AuthenticityResult",
    "BootstrapResult",
    "CTResult",
    "CopyRateResult",
    "FDInfinityResult",
    "FLDResult",
    "FeatureSet",
    "FeatureStats",
    "GaussianStats",
    "IncompatibleCachesError",
    "InceptionScoreResult",
    "MetricReport",
    "MetricSelection",
    "MetricValue",
    "MiFIDResult",
    "PRDCResult",
    "PrecisionRecallResult",
    "RealismResult",
    "ExcludedRowsWarning",
    "SampleSizeWarning",
    "SingularCovarianceWarning",
    "UncalibratedCopyRateWarning",
    "VendiResult",
    "authenticity",
    "bootstrap",
    "cmmd",
    "ct_score",
    "evaluate",
    "evaluate_caches",
    "fd",
    "fd_from_stats",
    "fd_infinity",
    "feature_statistics",
    "fld",
    "higher_is_better",
    "inception_score",
    "kd",
    "kth_neighbor_radii",
    "knn",
    "metric_menu_text",
    "mifid",
    "prdc",
    "precision_recall",
    "realism_score",
    "select_metrics",
    "sliced_wasserstein",
    "trace_sqrt_product",
    "vendi",
]
