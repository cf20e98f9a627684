"""Vendi score: the effective number of distinct samples under cosine similarity.

References:
    Friedman & Dieng, "The Vendi Score: A Diversity Evaluation Metric for Machine Learning", TMLR 2023.
    Pasarkar & Dieng, "Cousins of the Vendi Score: A Family of Similarity-Based Diversity Metrics
    for Science and Machine Learning", AISTATS 2024 (orders q other than 1).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import overload

import numpy as np

from workbench.metrics.validation import as_features, nonzero_rows

_GRAM_BLOCK_ROWS = 8192


@dataclass(frozen=True)
class VendiResult:
    """Vendi score of all samples and of each class (``per_class``: label -> score)."""

    score: float
    per_class: dict[Hashable, float] = field(default_factory=dict)


def _parse_order(q: float | str) -> float:
    if isinstance(q, str):
        if q.strip().lower() in ("inf", "infinity"):
            return float("inf")
        raise ValueError(f"q must be a number >= 0 or 'inf'; got {q!r}")
    q = float(q)
    if np.isnan(q) or q < 0:
        raise ValueError(f"q must be a number >= 0 or inf (Renyi entropy order); got {q}")
    return q


def _normalised_gram_eigenvalues(x: np.ndarray, name: str) -> np.ndarray:
    """Eigenvalues of ``K / n`` with ``K = X X^T`` for row-normalised X, via the smaller Gram matrix.

    ``X^T X / n`` (D x D) and ``X X^T / n`` (N x N) share their non-zero eigenvalues, so the
    cost is ``O(N D min(N, D))`` and the memory ``min(N, D)^2`` float64 values.
    """
    n, d = x.shape
    small = min(n, d)
    gram = np.zeros((small, small), dtype=np.float64)
    rows = []
    for start in range(0, n, _GRAM_BLOCK_ROWS):
        block = np.asarray(x[start : start + _GRAM_BLOCK_ROWS], dtype=np.float64)
        norms = np.linalg.norm(block, axis=1)
        zero = np.flatnonzero(norms == 0)
        if zero.size:
            raise ValueError(
                f"{name} has an all-zero row (row {start + int(zero[0])}); cosine similarity is undefined "
                "for it. Drop such rows first."
            )
        block = block / norms[:, None]
        if d <= n:
            gram += block.T @ block  # numpy uses a symmetric rank-k update for a.T @ a
        else:
            rows.append(block)
    if d > n:
        xn = np.concatenate(rows, axis=0)
        gram = xn @ xn.T
    eig = np.linalg.eigvalsh(gram / n)
    return np.clip(eig, 0.0, None)


def _vendi_from_eigenvalues(eig: np.ndarray, q: float, size: int) -> float:
    if eig.size == 0 or eig.max() <= 0:
        return 0.0
    # Eigenvalues below the rank tolerance are rounding noise; treating them as exact zeros matters for
    # q < 1, where (1e-17)^q is not negligible (the same tolerance as numpy.linalg.matrix_rank).
    tol = eig.max() * size * np.finfo(np.float64).eps
    p = eig[eig > tol]
    if q == 0:
        return float(p.size)
    if q == 1:
        return float(np.exp(-np.sum(p * np.log(p))))
    if np.isinf(q):
        return float(1.0 / p.max())
    return float(np.exp(np.log(np.sum(p**q)) / (1.0 - q)))


def _vendi_of(x: np.ndarray, q: float, name: str) -> float:
    eig = _normalised_gram_eigenvalues(x, name)
    return _vendi_from_eigenvalues(eig, q, max(x.shape))


@overload
def vendi(x: np.ndarray, q: float | str = 1.0, labels: None = None, *, zero_rows: str = "raise") -> float: ...


@overload
def vendi(x: np.ndarray, q: float | str, labels: np.ndarray, *, zero_rows: str = "raise") -> VendiResult: ...


@overload
def vendi(x: np.ndarray, q: float | str = 1.0, *, labels: np.ndarray, zero_rows: str = "raise") -> VendiResult: ...


def vendi(
    x: np.ndarray,
    q: float | str = 1.0,
    labels: np.ndarray | None = None,
    *,
    zero_rows: str = "raise",
) -> float | VendiResult:
    """Vendi score of order ``q`` with the cosine-similarity kernel.

    With ``k(x_i, x_j) = <x_i, x_j> / (|x_i| |x_j|)``, ``K`` the ``n x n`` similarity matrix and
    ``lambda_1..lambda_n`` the eigenvalues of ``K / n`` (they sum to 1)::

        VS_q = exp(H_q(lambda)),   H_q = log(sum_i lambda_i^q) / (1 - q)
        q = 1:   VS = exp(-sum_i lambda_i log lambda_i)        (Friedman & Dieng 2023)
        q = inf: VS = 1 / max_i lambda_i
        q = 0:   VS = number of non-zero eigenvalues = rank of the normalised features

    The score ranges from 1 (all samples identical up to scale) to ``min(n, D)`` here (the cosine
    kernel has rank at most ``D``). It is computed through the dual ``X^T X / n`` (``D x D``) for
    row-normalised ``X``, which has the same non-zero eigenvalues as ``K / n``: 50,000 x 1024 costs one
    1024 x 1024 Gram matrix and eigendecomposition, in float64.

    Eigenvalues below ``max(lambda) * max(n, D) * eps`` are treated as zero for every ``q`` (they are
    rounding noise; for ``q < 1`` they would otherwise inflate the score). The peer ``vendi_score``
    does not do this, so for ``q < 1`` on rank-deficient data the two differ; for ``q >= 1`` they agree.
    Note ``vendi_score.vendi.score_X`` ignores its ``q`` argument (always q = 1); ``score_dual`` honours it.

    Args:
        x: ``N x D`` features (any scale; rows are normalised to unit length). No all-zero rows.
        q: order of the Renyi entropy, a number ``>= 0`` or ``float('inf')`` / ``'inf'``. Default 1.
        labels: optional length-``N`` class labels; when given, the score of every class subset is
            also computed (Pasarkar & Dieng report per-class Vendi for conditional models).
        zero_rows: what to do with all-zero rows, for which cosine similarity is undefined (e.g. a
            black image with the ``pixels`` extractor): ``"raise"`` (default) a ValueError naming
            the first, or ``"drop"`` them with an
            :class:`~workbench.metrics.validation.ExcludedRowsWarning` naming how many and which
            (the score is then that of the other rows; a ValueError if none is left).

    Returns:
        The score (a float) when ``labels`` is None, else a :class:`VendiResult` with ``score`` for all
        samples and ``per_class`` mapping each label (sorted) to the score of its samples.
    """
    order = _parse_order(q)
    if zero_rows not in ("raise", "drop"):
        raise ValueError(f'zero_rows must be "raise" or "drop"; got {zero_rows!r}')
    x = as_features(x, "x")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != x.shape[0]:
            raise ValueError(
                f"labels must be a 1-D array with one label per row of x ({x.shape[0]}); got shape {labels.shape}"
            )
    if zero_rows == "drop":
        keep = nonzero_rows(x, "x", "the Vendi score")
        if keep.size < x.shape[0]:
            x = x[keep]
            labels = None if labels is None else labels[keep]
    score = _vendi_of(x, order, "x")
    if labels is None:
        return score
    per_class: dict[Hashable, float] = {}
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        key = label.item() if hasattr(label, "item") else label
        per_class[key] = _vendi_of(x[idx], order, f"x[labels == {key!r}]")
    return VendiResult(score=score, per_class=per_class)
