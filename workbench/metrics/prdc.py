"""Precision, recall, density and coverage (PRDC) of k-NN manifolds.

Reference:
    Naeem, Oh, Uh, Choi & Yoo, "Reliable Fidelity and Diversity Metrics for Generative Models",
    ICML 2020 (definitions of the ``prdc`` package, ``prdc.compute_prdc``).

With ``r_k(x)`` the distance from ``x`` to its k-th nearest *other* sample of its own set,
real samples ``X_1..X_N``, fake samples ``Y_1..Y_M`` and ``B(x, r)`` the open ball:

* precision = (1/M) sum_j 1[ Y_j in some B(X_i, r_k(X_i)) ]
* recall    = (1/N) sum_i 1[ X_i in some B(Y_j, r_k(Y_j)) ]
* density   = (1/(kM)) sum_j sum_i 1[ Y_j in B(X_i, r_k(X_i)) ]
* coverage  = (1/N) sum_i 1[ the nearest fake to X_i lies in B(X_i, r_k(X_i)) ]

All comparisons are strict (``d < r``), as in ``prdc``. Distances are Euclidean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.metrics.neighbors import (
    Progress,
    check_neighbourhood_size,
    manifold_counts,
)
from workbench.metrics.validation import as_features, check_same_dim
from workbench.threads import uses_free_threads


@dataclass(frozen=True)
class PRDCResult:
    """PRDC values and the per-sample quantities they average.

    Attributes:
        precision, recall, density, coverage: the four metrics (density may exceed 1).
        k: the neighbourhood size used.
        real_radii: ``(N,)`` k-NN radius of every real sample.
        fake_radii: ``(M,)`` k-NN radius of every fake sample.
        fake_real_ball_counts: ``(M,)`` number of real balls containing each fake (density
            numerator; ``> 0`` means the fake is inside the real manifold, i.e. precision).
        fake_in_real_manifold: ``(M,)`` bool, ``fake_real_ball_counts > 0``.
        real_in_fake_manifold: ``(N,)`` bool, the real sample lies in some fake ball (recall).
        real_covered: ``(N,)`` bool, some fake lies in the real sample's ball (coverage).
    """

    precision: float
    recall: float
    density: float
    coverage: float
    k: int
    real_radii: np.ndarray
    fake_radii: np.ndarray
    fake_real_ball_counts: np.ndarray
    fake_in_real_manifold: np.ndarray
    real_in_fake_manifold: np.ndarray
    real_covered: np.ndarray

    def as_dict(self) -> dict[str, float]:
        """The four values as ``{"precision", "recall", "density", "coverage"}`` (as ``prdc``)."""
        return {
            "precision": self.precision,
            "recall": self.recall,
            "density": self.density,
            "coverage": self.coverage,
        }


@uses_free_threads
def prdc(
    real: np.ndarray,
    fake: np.ndarray,
    k: int = 5,
    *,
    block_size: int | None = None,
    progress: Progress | bool | None = None,
) -> PRDCResult:
    """Precision, recall, density and coverage of Naeem et al. 2020 (module docstring).

    Matches ``prdc.compute_prdc(real, fake, nearest_k=k)`` exactly, except where a distance and
    a radius agree to within float32 rounding: ``prdc`` compares float32-rounded distances,
    this compares float64 ones (the exact value for the given inputs).

    Args:
        real: ``N x D`` real features (``N > k``); arrays or memmaps.
        fake: ``M x D`` generated features (``M > k``).
        k: neighbourhood size (the paper recommends 5 with 10,000 samples per set).
        block_size, progress: see :func:`workbench.metrics.neighbors.knn`.

    Returns:
        :class:`PRDCResult` with the four metrics and per-sample flags and counts.

    Cost: three blocked passes (real-real, fake-fake, real-fake) of float32 matrix products;
    memory stays O(block_size^2 + (N + M) D), never N x M.

    Scale: the four values are invariant under a common scale of ``real`` and ``fake``, at any
    magnitude (features of extreme magnitude are searched rescaled by an exact power of two, see
    :mod:`workbench.metrics.neighbors`); the radii are in the units of the inputs.
    """
    real_arr = as_features(real, "real", min_samples=2)
    fake_arr = as_features(fake, "fake", min_samples=2)
    check_same_dim(real_arr, fake_arr, "real", "fake")
    check_neighbourhood_size(k, real_arr.shape[0], "real")
    check_neighbourhood_size(k, fake_arr.shape[0], "fake")
    real_radii, fake_radii, counts = manifold_counts(
        real_arr, fake_arr, k, inclusive=False, block_size=block_size, progress=progress
    )
    ball_counts = counts.counts("query_in_index_balls")
    fake_in_real = ball_counts > 0
    real_in_fake = counts.counts("index_in_query_balls") > 0
    real_covered = counts.counts("index_ball_hits") > 0
    return PRDCResult(
        precision=float(fake_in_real.mean()),
        recall=float(real_in_fake.mean()),
        density=float(ball_counts.mean() / k),
        coverage=float(real_covered.mean()),
        k=int(k),
        real_radii=real_radii,
        fake_radii=fake_radii,
        fake_real_ball_counts=ball_counts,
        fake_in_real_manifold=fake_in_real,
        real_in_fake_manifold=real_in_fake,
        real_covered=real_covered,
    )
