"""FD-infinity: the Fréchet distance extrapolated to infinitely many generated samples.

Chong & Forsyth, "Effectively Unbiased FID and Inception Score and where to find them" (CVPR 2020).
FD computed from N samples is biased upward by a term that is, to first order, linear in 1/N.
Evaluating FD_N at several N and fitting ``FD_N = FD_inf + slope / N`` by ordinary least squares
gives the intercept ``FD_inf``, an estimate of the distance at N -> infinity.

Protocol (reference code ``mchong6/FID_IS_infinity``, ``calculate_FID_infinity``): statistics of
the full real set are computed once; for each N in ``np.linspace(5000, n_fake, 15).astype(int)``
the generated features are shuffled and the first N taken (a fresh subset without replacement per
point); FD_N is computed against the real statistics; a linear regression of FD_N on 1/N is
evaluated at 1/N = 0. Differences here, all deliberate:

* the smallest size is ``min(5000, n_fake // 10)`` (or ``min_size``) rather than a fixed 5000, so
  small sets work (with a warning when it is not above the feature dimension);
* subsets come from a seeded ``np.random.Generator`` (``rng.permutation(n_fake)[:N]`` per point),
  not the global ``np.random.shuffle`` that also reorders the caller's array in place;
* FD_N uses the exact symmetric-eigenvalue formula of :mod:`workbench.metrics.frechet` instead of
  ``scipy.linalg.sqrtm``; statistics are streamed in float64 (no subset copy is ever made);
* ``nested=True`` (opt-in) uses prefixes of ONE permutation so all points cost a single pass over
  the generated features; the FD_N are then correlated, which leaves the expected intercept
  unchanged but changes its variance.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from workbench.metrics.frechet import (
    DEFAULT_BLOCK_ROWS,
    FeatureStats,
    GaussianStats,
    _check_block_rows,
    fd_from_stats,
    warn_if_singular_sets,
)
from workbench.metrics.validation import as_features, check_same_dim, check_seed

_REFERENCE_MIN_SIZE = 5000


@dataclass(frozen=True)
class FDInfinityResult:
    """FD-infinity and the points it was fitted to.

    Attributes:
        value: the intercept FD_inf of the least-squares line ``FD_N = value + slope / N``.
        slope: the fitted coefficient of ``1/N``.
        sizes: the subset sizes N (increasing; the last is ``n_fake``).
        fds: FD_N at each size (full real set vs a random subset of N generated samples).
        n_real: number of real samples (all used at every point).
        n_fake: number of generated samples available.
    """

    value: float
    slope: float
    sizes: tuple[int, ...]
    fds: tuple[float, ...]
    n_real: int
    n_fake: int

    def __float__(self) -> float:
        return self.value


def fd_infinity_sizes(n_fake: int, points: int = 15, min_size: int | None = None) -> np.ndarray:
    """Subset sizes ``np.linspace(min_size, n_fake, points)`` truncated to int (as the reference).

    ``min_size`` defaults to ``min(5000, n_fake // 10)``. Raises ValueError when the sizes are not
    strictly increasing or the smallest is below 2.
    """
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 2:
        raise ValueError(f"points must be an integer >= 2 (a line needs two points); got {points!r}")
    start = min(_REFERENCE_MIN_SIZE, n_fake // 10) if min_size is None else min_size
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 2 <= start < n_fake:
        raise ValueError(
            f"min_size must be an integer with 2 <= min_size < n_fake={n_fake}; got {start!r}"
            + (" (n_fake is too small for the default min(5000, n_fake // 10))" if min_size is None else "")
        )
    sizes = np.linspace(start, n_fake, points).astype(np.int64)
    if np.any(np.diff(sizes) <= 0):
        raise ValueError(
            f"{points} points between {start} and {n_fake} give repeated subset sizes; "
            "use fewer points or a smaller min_size"
        )
    return sizes


def fd_infinity(
    real: object,
    fake: object,
    points: int = 15,
    seed: int | np.random.Generator | None = 0,
    min_size: int | None = None,
    *,
    nested: bool = False,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> FDInfinityResult:
    """FD_inf of Chong & Forsyth (2020): least-squares intercept of FD_N against 1/N.

    Args:
        real: ``N1 x D`` real features (all of them are used at every point).
        fake: ``N2 x D`` generated features, subsampled without replacement.
        points: number of subset sizes (reference: 15).
        seed: seed or ``np.random.Generator`` for the subsets.
        min_size: smallest subset; default ``min(5000, N2 // 10)`` (reference: 5000).
        nested: use prefixes of one permutation (one pass, correlated points) instead of an
            independent subset per point (the reference protocol).
        block_rows: rows per block of the streaming statistics (memory knob only).

    Returns:
        :class:`FDInfinityResult` with the intercept, slope and the fitted points.

    Warns:
        SingularCovarianceWarning (a SampleSizeWarning): when the real set or the smallest subset
        has no more rows than D (singular covariance; the 1/N law is only asymptotic); one warning
        names both sizes.
    """
    real_arr = as_features(real, "real", min_samples=2)
    fake_arr = as_features(fake, "fake", min_samples=2)
    check_same_dim(real_arr, fake_arr, "real", "fake")
    n_fake, dim = fake_arr.shape
    sizes = fd_infinity_sizes(n_fake, points, min_size)
    warn_if_singular_sets({"real": real_arr.shape[0], "the smallest fake subset": int(sizes[0])}, dim)
    rng = check_seed(seed)

    block_rows = _check_block_rows(block_rows)
    real_stats = FeatureStats()._update_validated(real_arr, block_rows).finalize()
    if nested:
        subset_stats = _prefix_statistics(fake_arr, rng.permutation(n_fake), sizes, block_rows)
    else:
        subset_stats = (_subset_statistics(fake_arr, rng.permutation(n_fake)[:size], block_rows) for size in sizes)
    # Generators: one D x D subset covariance alive at a time.
    fds = np.array([fd_from_stats(real_stats.mean, real_stats.cov, s.mean, s.cov) for s in subset_stats])
    design = np.column_stack([np.ones(len(sizes)), 1.0 / sizes])
    (intercept, slope), *_ = np.linalg.lstsq(design, fds, rcond=None)
    return FDInfinityResult(
        value=float(intercept),
        slope=float(slope),
        sizes=tuple(int(s) for s in sizes),
        fds=tuple(float(v) for v in fds),
        n_real=int(real_arr.shape[0]),
        n_fake=int(n_fake),
    )


def _subset_statistics(x: np.ndarray, rows: np.ndarray, block_rows: int) -> GaussianStats:
    return _accumulate_rows(FeatureStats(), x, rows, block_rows).finalize()


def _prefix_statistics(x: np.ndarray, order: np.ndarray, sizes: np.ndarray, block_rows: int) -> Iterator[GaussianStats]:
    acc = FeatureStats()
    done = 0
    for size in sizes:
        _accumulate_rows(acc, x, order[done:size], block_rows)
        done = int(size)
        yield acc.finalize()


def _accumulate_rows(acc: FeatureStats, x: np.ndarray, rows: np.ndarray, block_rows: int) -> FeatureStats:
    # Statistics do not depend on row order; sorted gathers read a memmap sequentially and
    # only one block of rows is ever copied. Rows were validated once by the caller.
    rows = np.sort(rows)
    for start in range(0, rows.shape[0], block_rows):
        acc._update_validated(x[rows[start : start + block_rows]], block_rows)
    return acc
