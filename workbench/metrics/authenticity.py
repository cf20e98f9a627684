"""Authenticity (AuthPct): the share of generated samples that are not copies of training samples.

Reference:
    Alaa, van Breugel, Saveliev & van der Schaar, "How Faithful is your Synthetic Data?
    Sample-level Metrics for Evaluating and Auditing Generative Models", ICML 2022; AuthPct as
    computed by Stein et al. 2023, "Exposing flaws of generative model evaluation metrics and
    their unfair treatment of diffusion models" (``layer6ai-labs/dgm-eval``,
    ``dgm_eval/metrics/authpct.py``).

For a fake ``y`` let ``x*`` be its nearest training sample and ``d1 = ||y - x*||``; let
``d2 = ||x* - x'||`` with ``x'`` the nearest *other* training sample of ``x*``. The fake is
authentic when ``d2 < d1`` (it is farther from ``x*`` than ``x*``'s own neighbour), and

    AuthPct = 100 * (number of authentic fakes) / M.

A tie ``d1 == d2`` (e.g. a copy of a training sample that is itself duplicated) counts as not
authentic, as in dgm-eval. Distances are Euclidean and exact (float64 re-ranking), where
dgm-eval uses float32 ``torch.cdist``; the two can differ only when ``d1`` and ``d2`` agree to
float32 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.metrics.neighbors import Progress, knn
from workbench.metrics.validation import as_features, check_same_dim


@dataclass(frozen=True)
class AuthenticityResult:
    """AuthPct and its per-fake quantities.

    Attributes:
        auth_pct: percentage (0-100) of authentic fakes.
        authentic: ``(M,)`` bool, ``train_nn_distance < fake_distance``.
        ratio: ``(M,)`` ``d1 / d2`` (authentic iff ``> 1``; ``inf`` when ``d2 = 0 < d1``,
            0 when both are 0). Small values flag likely copies.
        nearest_train: ``(M,)`` row of the nearest training sample ``x*``.
        fake_distance: ``(M,)`` ``d1 = ||y - x*||``.
        train_nn_distance: ``(M,)`` ``d2``, the distance from ``x*`` to its nearest other
            training sample.
    """

    auth_pct: float
    authentic: np.ndarray
    ratio: np.ndarray
    nearest_train: np.ndarray
    fake_distance: np.ndarray
    train_nn_distance: np.ndarray


def authenticity_ratio(d1: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """``d1 / d2`` elementwise (float64 arrays of distances), with ``inf`` for ``d2 = 0 < d1`` and
    0 for ``d1 = d2 = 0``: the authenticity ratio of Alaa et al. 2022 (authentic when ``> 1``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d2 > 0, d1 / np.where(d2 > 0, d2, 1.0), np.where(d1 > 0, np.inf, 0.0))


def authenticity(
    train: np.ndarray,
    fake: np.ndarray,
    *,
    block_size: int | None = None,
    progress: Progress | bool | None = None,
) -> AuthenticityResult:
    """AuthPct of Alaa et al. 2022 as computed in dgm-eval (see the module docstring).

    Args:
        train: ``N x D`` features of the generator's *training* set (``N >= 2``; may be a
            memmap, streamed in blocks; only the rows matched to fakes are loaded whole).
        fake: ``M x D`` generated features.
        block_size, progress: see :func:`workbench.metrics.neighbors.knn`.

    Returns:
        :class:`AuthenticityResult` (distances in the units of the inputs). AuthPct is invariant
        under a common scale of ``train`` and ``fake``, at any magnitude (see
        :mod:`workbench.metrics.neighbors`).
    """
    train_arr = as_features(train, "train", min_samples=2)
    fake_arr = as_features(fake, "fake")
    check_same_dim(train_arr, fake_arr, "train", "fake")
    d1, nearest = knn(fake_arr, train_arr, 1, block_size=block_size, progress=progress)
    d1, nearest = d1[:, 0], nearest[:, 0]
    # Only the matched training rows need their own neighbour distance. With the row itself among
    # the candidates (distance 0), the 2nd smallest distance is the nearest *other* row, duplicates
    # included, so a 2-NN search of those rows replaces an N x N self-search.
    matched, inverse = np.unique(nearest, return_inverse=True)
    matched_nn, _ = knn(train_arr[matched], train_arr, 2, block_size=block_size, progress=progress)
    d2 = matched_nn[inverse, 1]
    authentic = d2 < d1
    ratio = authenticity_ratio(d1, d2)
    return AuthenticityResult(
        auth_pct=float(100.0 * authentic.mean()),
        authentic=authentic,
        ratio=ratio,
        nearest_train=nearest,
        fake_distance=d1,
        train_nn_distance=d2,
    )
