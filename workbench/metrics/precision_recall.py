"""Improved precision and recall, and the per-sample realism score.

Reference:
    Kynkaanniemi, Karras, Laine, Lehtinen & Aila, "Improved Precision and Recall Metric for
    Assessing Generative Models", NeurIPS 2019 (official code:
    ``kynkaat/improved-precision-and-recall-metric``, ``precision_recall.py`` / ``experiments.py``).

With ``r_k(x)`` the distance from ``x`` to its k-th nearest other sample of its own set and
``f(y, S) = 1`` when ``||y - x|| <= r_k(x)`` for some ``x`` in ``S`` (closed balls):

* precision = mean over fakes ``y`` of ``f(y, real)``
* recall    = mean over reals ``x`` of ``f(x, fake)``

Conventions follow torch-fidelity's ``prc`` metric (``torch_fidelity/metric_prc.py``) and the
official code: ``k = 3``, radius = ``kthvalue(k + 1)`` of the distances with the point itself
included (= k-th other neighbour), inclusive ``<=`` comparison (PRDC's precision/recall use
strict ``<`` and k = 5; see :mod:`workbench.metrics.prdc`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.metrics.neighbors import (
    Progress,
    check_neighbourhood_size,
    kth_neighbor_radii,
    manifold_counts,
    max_radius_ratio,
)
from workbench.metrics.validation import as_features, check_same_dim
from workbench.threads import uses_free_threads

REALISM_EPS = 1e-5


@dataclass(frozen=True)
class PrecisionRecallResult:
    """Improved precision/recall and the per-sample membership flags.

    Attributes:
        precision: share of fakes inside the real manifold.
        recall: share of reals inside the fake manifold.
        f_score: ``2 P R / (P + R)`` (0 when both are 0).
        k: neighbourhood size.
        real_radii, fake_radii: ``(N,)`` and ``(M,)`` k-NN radii.
        fake_in_real_manifold: ``(M,)`` bool. real_in_fake_manifold: ``(N,)`` bool.
    """

    precision: float
    recall: float
    f_score: float
    k: int
    real_radii: np.ndarray
    fake_radii: np.ndarray
    fake_in_real_manifold: np.ndarray
    real_in_fake_manifold: np.ndarray


@dataclass(frozen=True)
class RealismResult:
    """Per-fake realism scores.

    Attributes:
        scores: ``(M,)`` realism of every fake (``>= 1`` means inside some kept real ball).
        nearest_real: ``(M,)`` row of the real sample attaining the maximum.
        k: neighbourhood size. prune_percentile: radii above this percentile were dropped.
        real_radii: ``(N,)`` k-NN radii of the real samples (before pruning).
        kept_real: ``(N,)`` bool, the real samples whose balls took part.
    """

    scores: np.ndarray
    nearest_real: np.ndarray
    k: int
    prune_percentile: float | None
    real_radii: np.ndarray
    kept_real: np.ndarray


@uses_free_threads
def precision_recall(
    real: np.ndarray,
    fake: np.ndarray,
    k: int = 3,
    *,
    block_size: int | None = None,
    progress: Progress | bool | None = None,
) -> PrecisionRecallResult:
    """Improved precision and recall of Kynkaenniemi et al. 2019 (see the module docstring).

    Matches ``torch_fidelity.metric_prc`` (``features_1`` = fake, ``features_2`` = real,
    ``prc_neighborhood = k``) up to float32 rounding of its ``torch.cdist`` distances: here
    every comparison ``d <= r`` is decided in float64.

    Args:
        real: ``N x D`` real features (``N > k``). fake: ``M x D`` generated features (``M > k``).
        k: neighbourhood size (paper and torch-fidelity default: 3).
        block_size, progress: see :func:`workbench.metrics.neighbors.knn`.

    Returns:
        :class:`PrecisionRecallResult`. ``f_score`` is ``2PR/(P+R)``; torch-fidelity divides
        by ``max(1e-5, P+R)``, which only differs when ``0 < P+R < 1e-5``.

    Invariant under a common scale of ``real`` and ``fake``, at any magnitude (see
    :mod:`workbench.metrics.neighbors`).
    """
    real_arr, fake_arr = _validated(real, fake, k)
    real_radii, fake_radii, counts = manifold_counts(
        real_arr, fake_arr, k, inclusive=True, block_size=block_size, progress=progress
    )
    fake_in_real = counts.counts("query_in_index_balls") > 0
    real_in_fake = counts.counts("index_in_query_balls") > 0
    p, r = float(fake_in_real.mean()), float(real_in_fake.mean())
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return PrecisionRecallResult(p, r, f, int(k), real_radii, fake_radii, fake_in_real, real_in_fake)


@uses_free_threads
def realism_score(
    real: np.ndarray,
    fake: np.ndarray,
    k: int = 3,
    *,
    prune_percentile: float | None = 50.0,
    eps: float = REALISM_EPS,
    block_size: int | None = None,
    progress: Progress | bool | None = None,
) -> RealismResult:
    """Realism score of every fake (Kynkaenniemi et al. 2019, Eq. 3).

    ``R(y) = max over kept reals x of r_k(x) / sqrt(||y - x||^2 + eps)``.

    Conventions (official ``experiments.py``: ``ManifoldEstimator(..., clamp_to_percentile=50)``):
    the real balls whose radius exceeds the 50th percentile of the radii (``np.percentile``,
    linear interpolation) are dropped, because large balls in sparse regions would give
    high realism to outliers. ``eps = 1e-5`` is added to the squared distance.

    Disagreement with the official code, documented rather than copied: it computes the
    ratio on *squared* distances, ``r_k(x)^2 / (||y - x||^2 + eps)``, i.e. it returns the square
    of this score. This function follows the paper's formula (a ratio of distances); the
    ranking of samples and the ``>= 1`` threshold (inside a kept ball) are the same for both.

    Args:
        real: ``N x D`` real features (``N > k``). fake: ``M x D`` generated features.
        k: neighbourhood size (default 3).
        prune_percentile: drop real balls with radius above this percentile (0-100), or None
            to keep all.
        eps: positive constant added to squared distances.
        block_size, progress: see :func:`workbench.metrics.neighbors.knn`.

    Returns:
        :class:`RealismResult` (sort fakes by ``scores`` to browse least/most realistic).
    """
    real_arr = as_features(real, "real", min_samples=2)
    fake_arr = as_features(fake, "fake", min_samples=1)
    check_same_dim(real_arr, fake_arr, "real", "fake")
    check_neighbourhood_size(k, real_arr.shape[0], "real")
    if prune_percentile is not None and not (0 <= float(prune_percentile) <= 100):
        raise ValueError(f"prune_percentile must be in [0, 100] or None; got {prune_percentile!r}")
    radii = kth_neighbor_radii(real_arr, k, block_size=block_size, progress=progress)
    if prune_percentile is None:
        kept = np.ones(radii.shape[0], dtype=bool)
    else:
        kept = radii <= np.percentile(radii, float(prune_percentile))
    kept_rows = np.flatnonzero(kept)
    scores, arg = max_radius_ratio(
        fake_arr, real_arr[kept_rows], radii[kept_rows], eps=eps, block_size=block_size, progress=progress
    )
    return RealismResult(
        scores=scores,
        nearest_real=kept_rows[arg],
        k=int(k),
        prune_percentile=None if prune_percentile is None else float(prune_percentile),
        real_radii=radii,
        kept_real=kept,
    )


def _validated(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    real_arr = as_features(real, "real", min_samples=2)
    fake_arr = as_features(fake, "fake", min_samples=2)
    check_same_dim(real_arr, fake_arr, "real", "fake")
    check_neighbourhood_size(k, real_arr.shape[0], "real")
    check_neighbourhood_size(k, fake_arr.shape[0], "fake")
    return real_arr, fake_arr
