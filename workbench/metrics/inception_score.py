"""Inception Score (Salimans et al. 2016) from classifier logits, with the original split protocol."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from workbench.metrics.validation import as_features, check_seed, warn_sample_size


class InceptionScoreResult(NamedTuple):
    """Mean and (population) standard deviation of the per-split Inception Scores."""

    mean: float
    std: float


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def inception_score(
    logits: np.ndarray,
    splits: int = 10,
    shuffle: bool = False,
    seed: int | np.random.Generator | None = None,
) -> InceptionScoreResult:
    """Inception Score ``exp(E_x KL(p(y|x) || p(y)))`` averaged over ``splits`` chunks.

    Protocol of the original code (Salimans et al., "Improved Techniques for Training GANs",
    NeurIPS 2016, ``improved-gan/inception_score``)::

        p(y|x_i) = softmax(logits_i)                          over all C classes
        chunk k  = rows [k N // splits, (k+1) N // splits)    (in input order)
        p_k(y)   = mean of p(y|x_i) over chunk k
        IS_k     = exp(mean_i sum_y p(y|x_i) (log p(y|x_i) - log p_k(y)))
        result   = (mean_k IS_k, std_k IS_k)                  (std with ddof=0, as np.std)

    The original TensorFlow code took the softmax of ``pool_3 @ W`` over all **1008** outputs of the
    2015 Inception graph, i.e. without the fc bias and including the 8 outputs that correspond to no
    ImageNet class (index 0 "background" and 1001-1007). To reproduce published numbers pass exactly
    those 1008 bias-free logits (torch-fidelity's ``logits_unbiased`` of its ``inception-v3-compat``
    extractor); softmax over 1000 or biased logits gives a different (not comparable) number. This
    function is computed in float64 (the original in float32: differences ~1e-6 relative).

    Conventions of peers: torch-fidelity's ``isc_features_to_metric`` computes the same formula but by
    default shuffles rows first (``np.random.RandomState(2020).permutation``); dgm-eval also shuffles and
    uses chunks of ``N // splits`` rows, dropping the remainder. Here rows are used in input order unless
    ``shuffle=True`` (then permuted with ``numpy.random.default_rng(seed)``; to reproduce torch-fidelity's
    default, permute the rows yourself with ``RandomState(2020).permutation(N)``).

    Args:
        logits: ``N x C`` unnormalised log-probabilities (e.g. 50,000 x 1008).
        splits: number of chunks (10 in the paper, for 50,000 samples). Each chunk needs >= 1 row.
        shuffle: permute rows before splitting (default False, the original protocol).
        seed: seed for the permutation when ``shuffle`` is True (None means 0).

    Returns:
        :class:`InceptionScoreResult` ``(mean, std)``; the score is in ``[1, C]``.
    """
    logits = as_features(logits, "logits")
    n = logits.shape[0]
    if isinstance(splits, bool) or int(splits) != splits or splits < 1:
        raise ValueError(f"splits must be a positive integer; got {splits!r}")
    splits = int(splits)
    if n < splits:
        raise ValueError(f"logits has {n} rows, fewer than splits={splits}; use fewer splits or more samples")
    if n // splits < 1000:
        warn_sample_size(
            f"Inception Score with {n // splits} samples per split is biased low (the marginal p(y) is "
            "estimated from few samples); the standard protocol uses 50,000 samples in 10 splits"
        )
    order = check_seed(seed).permutation(n) if shuffle else None

    scores = []
    for k in range(splits):
        lo, hi = k * n // splits, (k + 1) * n // splits
        rows = order[lo:hi] if order is not None else slice(lo, hi)
        log_p = _log_softmax(np.asarray(logits[rows], dtype=np.float64))
        p = np.exp(log_p)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_py = np.log(p.mean(axis=0))
            # a class whose probability underflows to 0 in every row contributes 0 (0 * log 0 = 0)
            kl = np.sum(np.where(p > 0, p * (log_p - log_py), 0.0), axis=1)
        scores.append(float(np.exp(kl.mean())))
    return InceptionScoreResult(mean=float(np.mean(scores)), std=float(np.std(scores)))
