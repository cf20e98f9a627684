"""Copy rate: the share of generated samples flagged as likely copies of the training set.

For a generated (fake) sample ``y`` let ``x*`` be its nearest training sample and
``d1 = ||y - x*||_2`` (Euclidean, exact float64 distances from
:func:`workbench.metrics.neighbors.knn`). A fake is flagged as a *likely copy* by one of two
criteria, the same as :func:`workbench.analysis.memorization.memorization_report` by default:

``"distance"`` (calibrated; needs held-out real images, the ``test`` set)
    ``threshold = Q_q(d_test)``, the empirical ``q``-quantile (``numpy.quantile``, linear
    interpolation; default ``q = 0.01``) of the test images' nearest-training distances. The fake
    is flagged when ``d1 <= threshold``: it is closer to a training image than all but a share
    ``q`` of genuinely new real images are. By construction about ``q`` of unseen real images
    would be flagged, so the rate of a model that never copies is about ``q``.

``"ratio"`` (uncalibrated; used without a test set)
    with ``d2 = ||x* - x'||`` the distance from ``x*`` to its own nearest *other* training sample,
    the fake is flagged when ``d1 / d2 <= 1`` (not authentic in the sense of Alaa et al. 2022; a
    tie counts as a copy; ratio ``inf`` when ``d2 = 0 < d1`` and 0 when both are 0). Its
    false-positive rate on real unseen images is far from 0: in dense regions of the training
    set many new samples are nearer ``x*`` than ``x*``'s own neighbour, so it flags many
    non-copies. A :class:`UncalibratedCopyRateWarning` says so; give a test set instead.

    copy_rate = (number of flagged fakes) / M            (a share in [0, 1])

References:
    Alaa, van Breugel, Saveliev & van der Schaar, "How Faithful is your Synthetic Data?"
    (ICML 2022), the authenticity ratio; the calibration on held-out data follows the data-copying
    view of Meehan, Chaudhuri & Dasgupta, "A Non-Parametric Test to Detect Data-Copying in
    Generative Models" (AISTATS 2020): a generated sample is suspicious when it is closer to the
    training set than unseen real data is.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from workbench.metrics.authenticity import authenticity_ratio
from workbench.metrics.neighbors import Progress, knn
from workbench.metrics.validation import as_features, check_same_dim

DEFAULT_QUANTILE = 0.01

#: A generated set whose *calibrated* copy rate exceeds this share is a likely copier: held-out
#: real images are flagged at about ``q`` = 1% by construction, so 5% means five times more of its
#: samples sit closer to a training image than new real images do. The uncalibrated ratio
#: criterion flags 20-45% of sets that do not copy (measured on Fashion-MNIST), so it flags no one.
COPIER_RATE = 0.05


def likely_copiers(rates: Mapping[str, float], criterion: str) -> dict[str, float]:
    """``{set: rate}`` of the sets whose copy rate (``rates``, shares in [0, 1]) is above
    :data:`COPIER_RATE`, when ``criterion`` (:func:`criterion_description`) is the calibrated
    ``distance`` one; empty for the uncalibrated ``ratio`` criterion."""
    if not str(criterion).startswith("distance"):
        return {}
    return {str(k): float(v) for k, v in rates.items() if np.isfinite(v) and v > COPIER_RATE}


UNCALIBRATED_MESSAGE = (
    "without a test set the copy rate uses the ratio criterion (d1/d2 <= 1), which is uncalibrated: it "
    "flags many non-copies in dense regions of the training set. Fix: give held-out real images "
    "(--test DIR, or a set with role test)"
)


class UncalibratedCopyRateWarning(UserWarning):
    """A copy rate was computed with the uncalibrated ratio criterion (no held-out test set)."""


@dataclass(frozen=True)
class CopyRateResult:
    """The copy rate of one generated set and how it was decided.

    Attributes:
        rate: share (0-1) of generated samples flagged as likely copies.
        criterion: ``"distance"`` (calibrated on the test set) or ``"ratio"`` (uncalibrated).
        threshold: the distance threshold (feature units) for ``"distance"``, the ratio
            threshold (1.0) for ``"ratio"``.
        n_flagged: number of flagged generated samples.
        n_fake: number of generated samples ``M``.
        n_test: number of test images the threshold was calibrated on (0 for ``"ratio"``).
        quantile: the test quantile ``q`` of the threshold (None for ``"ratio"``).
        flagged: ``(M,)`` bool, the flag of each generated sample.
        score: ``(M,)`` float64, what was compared with the threshold: ``d1`` (``"distance"``)
            or ``d1 / d2`` (``"ratio"``).
    """

    rate: float
    criterion: Literal["distance", "ratio"]
    threshold: float
    n_flagged: int
    n_fake: int
    n_test: int
    quantile: float | None
    flagged: np.ndarray
    score: np.ndarray

    @property
    def description(self) -> str:
        """The criterion in words, e.g. ``"distance (calibrated on 300 test images, q=0.01)"``."""
        return criterion_description(self.n_test if self.criterion == "distance" else None, self.quantile)


def criterion_description(n_test: int | None, quantile: float | None = DEFAULT_QUANTILE) -> str:
    """The copy-rate criterion in words: ``"distance (calibrated on N test images, q=0.01)"`` with
    ``n_test`` test images, ``"ratio (uncalibrated: no test set)"`` when ``n_test`` is None."""
    if n_test is None:
        return "ratio (uncalibrated: no test set)"
    q = DEFAULT_QUANTILE if quantile is None else quantile
    return f"distance (calibrated on {n_test} test images, q={q:g})"


def check_quantile(q: Any) -> float:
    """``q`` as a float when it is a number in [0, 1], else a ValueError saying so."""
    if isinstance(q, bool) or not isinstance(q, (int, float, np.integer, np.floating)) or not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be a number in [0, 1] (e.g. 0.01 for 1%); got {q!r}")
    return float(q)


def second_distance(d: np.ndarray, idx: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Distance from each training row to its nearest *other* row, from a 2-NN search of the rows
    themselves: ``d``, ``idx`` ``(n, 2)`` distances and rows found for the rows ``rows`` ``(n,)``.

    The row itself is normally the first hit (distance 0); when a duplicate came first, or an
    approximate search missed the row (``idx`` -1), the first hit that is not the row is used.
    """
    not_self = (idx != rows[:, None]) & (idx >= 0)
    first = np.argmax(not_self, axis=1)
    return d[np.arange(d.shape[0]), first]


def copy_rate(
    train: Any,
    fake: Any,
    test: Any = None,
    *,
    quantile: float = DEFAULT_QUANTILE,
    block_size: int | None = None,
    progress: Progress | bool | None = None,
) -> CopyRateResult:
    """Share of ``fake`` flagged as likely copies of ``train`` (see the module docstring).

    Args:
        train: ``N x D`` features of the model's training set (``N >= 2``; may be a memmap,
            streamed in blocks).
        fake: ``M x D`` generated features.
        test: optional ``T x D`` features of real images the model never saw (same distribution
            as ``train``). Given: the calibrated ``"distance"`` criterion; None: the ``"ratio"``
            criterion, with an :class:`UncalibratedCopyRateWarning`.
        quantile: the test quantile ``q`` of the distance threshold (default 0.01 = 1%).
        block_size, progress: see :func:`workbench.metrics.neighbors.knn`.

    Returns:
        :class:`CopyRateResult`. Equal to ``memorization_report(train, fake, test).copy_rate``
        (:mod:`workbench.analysis.memorization`, default settings: exact search, ``"l2"``).

    Raises:
        ValueError: bad shapes, NaN/inf, mismatched dimensions, fewer than 2 training rows, an
            empty set, or ``quantile`` outside [0, 1].

    Example:
        >>> import numpy as np
        >>> train = np.array([[0.0], [10.0], [20.0], [30.0]])
        >>> test = np.array([[4.0], [13.0], [25.0]])  # nearest-training distances 4, 3, 5
        >>> fake = np.array([[0.5], [21.0], [15.0]])  # 0.5, 1, 5
        >>> r = copy_rate(train, fake, test, quantile=0.0)  # threshold: min(d_test) = 3
        >>> r.n_flagged, r.threshold, r.criterion
        (2, 3.0, 'distance')
    """
    q = check_quantile(quantile)
    train_arr = as_features(train, "train", min_samples=2)
    fake_arr = as_features(fake, "fake")
    check_same_dim(train_arr, fake_arr, "train", "fake")
    test_arr = None
    if test is not None:
        test_arr = as_features(test, "test")
        check_same_dim(train_arr, test_arr, "train", "test")

    d_fake, nearest = knn(fake_arr, train_arr, 1, block_size=block_size, progress=progress)
    d1 = d_fake[:, 0]
    if test_arr is not None:
        d_test, _ = knn(test_arr, train_arr, 1, block_size=block_size, progress=progress)
        threshold = float(np.quantile(d_test[:, 0], q))
        score = d1
        criterion: Literal["distance", "ratio"] = "distance"
        n_test, used_q = int(test_arr.shape[0]), q
    else:
        matched, inverse = np.unique(nearest[:, 0], return_inverse=True)
        m_dist, m_rows = knn(np.asarray(train_arr[matched]), train_arr, 2, block_size=block_size, progress=progress)
        d2 = second_distance(m_dist, m_rows, matched)[inverse]
        score = authenticity_ratio(d1, d2)
        threshold, criterion, n_test, used_q = 1.0, "ratio", 0, None
        warnings.warn(UNCALIBRATED_MESSAGE, UncalibratedCopyRateWarning, stacklevel=2)
    flagged = score <= threshold
    return CopyRateResult(
        rate=float(flagged.mean()),
        criterion=criterion,
        threshold=threshold,
        n_flagged=int(flagged.sum()),
        n_fake=int(fake_arr.shape[0]),
        n_test=n_test,
        quantile=used_q,
        flagged=flagged,
        score=score,
    )


__all__ = [
    "DEFAULT_QUANTILE",
    "UNCALIBRATED_MESSAGE",
    "CopyRateResult",
    "UncalibratedCopyRateWarning",
    "copy_rate",
    "criterion_description",
]
