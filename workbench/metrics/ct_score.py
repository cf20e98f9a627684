"""The C_T data-copying test of Meehan, Chaudhuri & Dasgupta (AISTATS 2020), dgm-eval conventions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans

from workbench.metrics.neighbors import knn
from workbench.metrics.validation import (
    as_features,
    check_same_dim,
    check_seed,
    power_of_two_scale,
    warn_sample_size,
)

VARIANTS = ("standard", "modified", "mode")


@dataclass(frozen=True)
class CTResult:
    """C_T statistic and its per-cell parts (arrays of length ``n_cells``, cell order of the KMeans fit).

    ``z``: Mann-Whitney U z-score of each cell (NaN for a cell without fake samples).
    ``test_fraction``: ``P_n(pi)``, share of test samples in the cell (the weights of C_T).
    ``fake_fraction``: ``Q_m(pi)``, share of fake samples in the cell.
    ``train_count``: training samples in the cell.
    ``included``: cells in ``Pi_tau`` (more than ``tau * M`` fake samples), the ones C_T averages.
    ``variant``: which roles were used (see :func:`ct_score`).
    """

    c_t: float
    z: np.ndarray
    test_fraction: np.ndarray
    fake_fraction: np.ndarray
    train_count: np.ndarray
    included: np.ndarray
    variant: str


def _pca_fit_transform(train: np.ndarray, others: list[np.ndarray], dim: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Exact PCA (eigenvectors of the float64 covariance of ``train``) applied to all sets."""
    mean = np.asarray(train, dtype=np.float64).mean(axis=0)
    centred = np.asarray(train, dtype=np.float64) - mean
    cov = centred.T @ centred / max(train.shape[0] - 1, 1)
    _, vecs = np.linalg.eigh(cov)
    basis = vecs[:, ::-1][:, :dim]
    return centred @ basis, [(np.asarray(o, dtype=np.float64) - mean) @ basis for o in others]


def nearest_distances(queries: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Euclidean distance from each query row to its nearest ``reference`` row (float64, exact:
    the blocked engine of :func:`workbench.metrics.neighbors.knn` re-checks candidates in float64,
    so a copied row gives exactly 0)."""
    if queries.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    distances, _ = knn(queries, reference, 1, metric="l2")
    return distances[:, 0]


def mann_whitney_z(fake_dist: np.ndarray, test_dist: np.ndarray) -> float:
    """Z-scored Mann-Whitney U of ``fake_dist`` against ``test_dist`` (Meehan et al.'s ``Z_U``).

    ``U`` = number of pairs with ``fake > test`` plus half the ties (scipy's U of the first sample);
    ``Z = (U - (n m / 2 - 0.5)) / sqrt(n m (n + m + 1) / 12)``. The ``- 0.5`` and the missing tie
    correction of the variance follow the reference code (casey-meehan/data-copying, copied by dgm-eval).
    Negative Z: fake samples are closer to the training set than test samples are (data copying).
    """
    from scipy.stats import rankdata

    m, n = fake_dist.shape[0], test_dist.shape[0]
    ranks = rankdata(np.concatenate([fake_dist, test_dist]))
    u = ranks[:m].sum() - m * (m + 1) / 2.0
    mean = n * m / 2.0 - 0.5
    std = np.sqrt(n * m * (n + m + 1) / 12.0)
    return float((u - mean) / std)


def ct_score(
    train: np.ndarray,
    test: np.ndarray,
    fake: np.ndarray,
    n_cells: int = 3,
    pca_dim: int | None = 64,
    seed: int | np.random.Generator | None = 0,
    tau: float | None = None,
    variant: str = "standard",
) -> CTResult:
    """Data-copying test statistic ``C_T`` (Meehan, Chaudhuri & Dasgupta, "A Non-Parametric Test to
    Detect Data-Copying in Generative Models", AISTATS 2020), as computed by dgm-eval (Stein et al.,
    NeurIPS 2023, ``dgm_eval/metrics/ct.py``).

    Procedure (dgm-eval conventions):

    1. If ``D > pca_dim``, project all sets on the top ``pca_dim`` (64) principal components of the
       training set (exact PCA here; dgm-eval's sklearn PCA picks a randomized solver at this size).
    2. Partition the space into ``n_cells`` (3) cells with KMeans (``n_init=10``) fitted on the
       training set; assign test and fake samples to the nearest centroid.
    3. In each cell ``pi``: ``L(x)`` = distance from ``x`` to its nearest training sample *of that cell*;
       ``Z_U(pi)`` = z-scored Mann-Whitney U of ``L(fake)`` vs ``L(test)`` (:func:`mann_whitney_z`).
    4. ``C_T = sum_{pi in Pi_tau} P_n(pi) Z_U(pi) / sum_{pi in Pi_tau} P_n(pi)`` where ``P_n(pi)`` is
       the fraction of **test** samples in the cell (the paper's and dgm-eval's weights) and
       ``Pi_tau`` holds the cells with fake fraction ``Q_m(pi) > tau``, ``tau = 20 / M`` by default
       (i.e. more than 20 fake samples).

    ``C_T << 0`` signals data copying (fakes closer to train than held-out data is), ``>> 0``
    underfitting, ``~ 0`` neither. Units: standard normal z-scores. Invariant under a common
    scale of the features, at any magnitude (extreme ones are rescaled by an exact power of two).

    Variants (dgm-eval's metric names):

    * ``"standard"`` (``ct``): as above.
    * ``"modified"`` (``ct_modified``, "memorization only", the leaderboard's C_T modified): the roles
      of training and fake sets are swapped, i.e. ``ct_score(fake, test, train)``: cells, PCA and
      nearest neighbours come from the fake set, and the training samples are tested for being closer
      to fakes than test samples are.
    * ``"mode"`` (``ct_test``, "mode collapse only"): ``train`` is ignored; the test set is split in two
      halves (``np.array_split``), the first half plays the training set.

    Args:
        train: ``L x D`` training-set features (the model's training data).
        test: ``N x D`` held-out real features, never seen by the model.
        fake: ``M x D`` generated features.
        n_cells: number of KMeans cells (dgm-eval: 3). Every cell needs test and training samples.
        pca_dim: PCA dimension applied when ``D > pca_dim`` (dgm-eval: 64); None disables it.
        seed: seed of KMeans (dgm-eval leaves it unseeded).
        tau: minimum fake fraction for a cell to count (strictly greater); None means ``20 / M``.
        variant: ``"standard"``, ``"modified"`` or ``"mode"``.

    Returns:
        :class:`CTResult` with ``c_t`` and per-cell ``z`` and fractions.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}; got {variant!r}")
    test = as_features(test, "test", min_samples=2 if variant == "mode" else 1)
    fake = as_features(fake, "fake")
    if variant == "mode":
        check_same_dim(test, fake, "test", "fake")
        half = (test.shape[0] + 1) // 2  # np.array_split puts the extra row in the first half
        train, test = test[:half], test[half:]
    else:
        train = as_features(train, "train")
        check_same_dim(train, test, "train", "test")
        check_same_dim(train, fake, "train", "fake")
        if variant == "modified":
            train, fake = fake, train
    if isinstance(n_cells, bool) or int(n_cells) != n_cells or n_cells < 1:
        raise ValueError(f"n_cells must be a positive integer; got {n_cells!r}")
    n_cells = int(n_cells)
    if train.shape[0] < n_cells:
        raise ValueError(f"the training role set has {train.shape[0]} rows, fewer than n_cells={n_cells}")
    m = fake.shape[0]
    if tau is None:
        tau = 20.0 / m
    if pca_dim is not None and pca_dim < 1:
        raise ValueError(f"pca_dim must be a positive integer or None; got {pca_dim}")
    # C_T is invariant under a common scale of the three sets; features of extreme magnitude
    # (whose covariance or squared distances would overflow) are brought near 1 by an exact
    # power of two, which changes no PCA direction, KMeans cell or distance rank.
    factor = power_of_two_scale(train, test, fake)
    if factor != 1.0:
        train, test, fake = (np.asarray(a, dtype=np.float64) * factor for a in (train, test, fake))

    if pca_dim is not None and train.shape[1] > pca_dim:
        train_p, (test_p, fake_p) = _pca_fit_transform(train, [test, fake], int(pca_dim))
    else:
        train_p, test_p, fake_p = (np.asarray(a, dtype=np.float64) for a in (train, test, fake))

    rng = check_seed(seed)
    km = KMeans(n_clusters=n_cells, n_init=10, random_state=int(rng.integers(2**31 - 1))).fit(train_p)
    train_cells = km.labels_
    test_cells = km.predict(test_p)
    fake_cells = km.predict(fake_p)

    train_count = np.bincount(train_cells, minlength=n_cells)
    test_fraction = np.bincount(test_cells, minlength=n_cells) / test_p.shape[0]
    fake_fraction = np.bincount(fake_cells, minlength=n_cells) / m
    z = np.full(n_cells, np.nan)
    for cell in range(n_cells):
        if test_fraction[cell] == 0 or train_count[cell] == 0:
            raise ValueError(
                f"cell {cell} of {n_cells} has no test and/or no training samples; reduce n_cells "
                "or provide more test samples"
            )
        if fake_fraction[cell] == 0:
            continue
        ref = train_p[train_cells == cell]
        z[cell] = mann_whitney_z(
            nearest_distances(fake_p[fake_cells == cell], ref),
            nearest_distances(test_p[test_cells == cell], ref),
        )
    included = fake_fraction > tau
    if not included.any():
        warn_sample_size(
            f"C_T is undefined: no cell holds more than tau * M = {tau * m:g} fake samples; "
            "provide more fake samples or lower tau"
        )
        c_t = float("nan")
    else:
        w = test_fraction[included]
        c_t = float(np.dot(w, z[included]) / w.sum())
    return CTResult(
        c_t=c_t,
        z=z,
        test_fraction=test_fraction,
        fake_fraction=fake_fraction,
        train_count=train_count,
        included=included,
        variant=variant,
    )
