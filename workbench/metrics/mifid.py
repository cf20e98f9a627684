"""MiFID: memorization-informed Fréchet distance.

Reference:
    Bai, Lin, Raffel & Kan, "On Training Sample Memorization: Lessons from Benchmarking
    Generative Modeling with a Large-scale Competition", KDD 2021; the scoring code of the
    Kaggle "Generative Dog Images" competition (public demo kernel: ``cosine_distance``,
    ``distance_thresholding``, ``model_params['Inception']['cosine_distance_eps'] = 0.1``,
    ``fid_epsilon = 10e-15``), also followed by ``torchmetrics.image.mifid``.

With generated features ``g_i`` and training features ``t_j``:

    d_ij   = 1 - |cos(g_i, t_j)|
    d      = mean_i min_j d_ij                       (memorization distance)
    d_thr  = d if d < tau else 1                     (tau = 0.1)
    MiFID  = FD(train, fake) / (d_thr + eps)         (eps = 1e-14)

So MiFID equals FD unless the generated samples are, on average, closer than ``tau`` in cosine
distance to some training sample, in which case FD is divided by that small distance.

Conventions checked against the Kaggle code: the absolute value of the cosine (an anti-parallel
feature counts as a copy; irrelevant for non-negative Inception pool3 features), ``tau = 0.1``
(not 0.15), and ``eps`` written ``10e-15`` there, i.e. ``1e-14``. Rows that are all zero
(cosine undefined) are left out of ``d``, as the Kaggle code does for rows summing to 0; FD
uses all rows.

Disagreement with ``torchmetrics`` (documented, not copied): its
``MemorizationInformedFrechetInceptionDistance`` passes the *real* features first to its
cosine-distance helper, so it averages over real samples the distance to the nearest generated
one, the reverse of the Kaggle code (average over generated samples), and it returns 0 when
FD <= 1e-8. Its helper called in the Kaggle order gives the same value as :func:`mifid`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from workbench.metrics.neighbors import Progress, knn
from workbench.metrics.validation import as_features, check_same_dim

KAGGLE_TAU = 0.1
KAGGLE_EPS = 1e-14


@dataclass(frozen=True)
class MiFIDResult:
    """MiFID and its parts.

    Attributes:
        mifid: ``fd / (thresholded_distance + eps)``.
        fd: Fréchet distance between train and fake features (given or computed).
        memorization_distance: ``d``, the mean over fakes of the minimum cosine distance.
        thresholded_distance: ``d`` if ``d < tau`` else 1.
        tau, eps: the constants used.
        fake_distance: ``(M,)`` per-fake minimum cosine distance (NaN for all-zero rows);
            small values flag likely memorized samples.
        nearest_train: ``(M,)`` row of the training sample attaining it (-1 for all-zero rows).
    """

    mifid: float
    fd: float
    memorization_distance: float
    thresholded_distance: float
    tau: float
    eps: float
    fake_distance: np.ndarray
    nearest_train: np.ndarray


def memorization_distances(
    train: np.ndarray,
    fake: np.ndarray,
    *,
    absolute: bool = True,
    block_size: int | None = None,
    progress: Progress | bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-fake ``min_j (1 - |cos(fake_i, train_j)|)`` and the arg-min ``j`` (exact, blocked).

    Args:
        train: ``N x D`` training features without all-zero rows (streamed; may be a memmap).
        fake: ``M x D`` generated features without all-zero rows.
        absolute: use ``1 - |cos|`` (Kaggle) instead of ``1 - cos``.
        block_size, progress: see :func:`workbench.metrics.neighbors.knn`.

    Returns:
        ``((M,) float64 distances in [0, 1] (``[0, 2]`` without ``absolute``), (M,) int64 rows)``.
    """
    fake_arr = as_features(fake, "fake")
    m = fake_arr.shape[0]
    # 1 - |cos(g, t)| = min(1 - cos(g, t), 1 - cos(-g, t)): one cosine 1-NN search of [g; -g].
    query = np.concatenate([fake_arr, -np.asarray(fake_arr)]) if absolute else fake_arr
    dist, idx = knn(query, train, 1, metric="cosine", block_size=block_size, progress=progress)
    dist, idx = dist[:, 0], idx[:, 0]
    if not absolute:
        return dist, idx
    use_neg = dist[m:] < dist[:m]
    return np.where(use_neg, dist[m:], dist[:m]), np.where(use_neg, idx[m:], idx[:m])


def mifid(
    train: np.ndarray,
    fake: np.ndarray,
    *,
    fd_value: float | None = None,
    tau: float = KAGGLE_TAU,
    eps: float = KAGGLE_EPS,
    absolute_cosine: bool = True,
    block_size: int | None = None,
    progress: Progress | bool | None = None,
) -> MiFIDResult:
    """Memorization-informed FD of the Kaggle "Generative Dog Images" competition (module docstring).

    Args:
        train: ``N x D`` features of the generator's training set (FID convention: Inception
            pool3, 2048-d). May be a memmap.
        fake: ``M x D`` generated features.
        fd_value: a precomputed ``FD(train, fake)``; computed with
            :func:`workbench.metrics.frechet.fd` when None.
        tau: memorization threshold on the mean cosine distance (Kaggle: 0.1), in (0, 1].
        eps: positive constant in the denominator (Kaggle: 1e-14).
        absolute_cosine: ``1 - |cos|`` as in the Kaggle code (True) or ``1 - cos``.
        block_size, progress: see :func:`workbench.metrics.neighbors.knn`.

    Returns:
        :class:`MiFIDResult`.

    Warns:
        SingularCovarianceWarning (a SampleSizeWarning): ``fd_value`` is None and ``train`` or
        ``fake`` has no more rows than D (one warning naming both sets' sizes).

    Raises:
        ValueError: bad inputs, ``tau`` outside (0, 1], ``eps <= 0``, or no non-zero rows.
    """
    train_arr = as_features(train, "train", min_samples=2)
    fake_arr = as_features(fake, "fake", min_samples=2)
    check_same_dim(train_arr, fake_arr, "train", "fake")
    if not (0 < float(tau) <= 1):
        raise ValueError(f"tau must be in (0, 1] (a cosine-distance threshold); got {tau!r}")
    if not (float(eps) > 0 and np.isfinite(eps)):
        raise ValueError(f"eps must be a positive finite number; got {eps!r}")
    if fd_value is None:
        from workbench.metrics.frechet import fd_of_validated, warn_if_singular_sets

        warn_if_singular_sets({"train": train_arr.shape[0], "fake": fake_arr.shape[0]}, train_arr.shape[1])
        fd_value = fd_of_validated(train_arr, fake_arr, names=("train", "fake"))
    elif not np.isfinite(fd_value):
        raise ValueError(f"fd_value must be finite; got {fd_value!r}")

    fake_keep = _nonzero_rows(fake_arr, "fake")
    train_keep = _nonzero_rows(train_arr, "train")
    train_used = train_arr if train_keep.size == train_arr.shape[0] else train_arr[train_keep]
    fake_used = fake_arr if fake_keep.size == fake_arr.shape[0] else fake_arr[fake_keep]
    dist, idx = memorization_distances(
        train_used, fake_used, absolute=absolute_cosine, block_size=block_size, progress=progress
    )
    fake_distance = np.full(fake_arr.shape[0], np.nan)
    nearest = np.full(fake_arr.shape[0], -1, dtype=np.int64)
    fake_distance[fake_keep] = dist
    nearest[fake_keep] = train_keep[idx]

    d = float(dist.mean())
    d_thr = d if d < tau else 1.0
    return MiFIDResult(
        mifid=float(fd_value) / (d_thr + float(eps)),
        fd=float(fd_value),
        memorization_distance=d,
        thresholded_distance=d_thr,
        tau=float(tau),
        eps=float(eps),
        fake_distance=fake_distance,
        nearest_train=nearest,
    )


def _nonzero_rows(x: np.ndarray, name: str, block_rows: int = 65536) -> np.ndarray:
    keep = []
    for start in range(0, x.shape[0], block_rows):
        block = np.asarray(x[start : start + block_rows])
        keep.append(start + np.flatnonzero(np.any(block != 0, axis=1)))
    rows = np.concatenate(keep)
    dropped = x.shape[0] - rows.size
    if rows.size == 0:
        raise ValueError(f"{name} has only all-zero rows; cosine distance is undefined")
    if dropped:
        warnings.warn(
            f"{name}: {dropped} all-zero rows left out of the memorization distance (cosine undefined)",
            UserWarning,
            stacklevel=3,
        )
    return rows
