"""CMMD: Gaussian-RBF maximum mean discrepancy, the estimator of "Rethinking FID".

Jayasumana et al., "Rethinking FID: Towards a Better Evaluation Metric for Image Generation"
(CVPR 2024); reference code ``google-research/google-research/cmmd/distance.py`` (``mmd``). It is
the minimum-variance *biased* V-statistic (Gretton et al. 2012, Eq. 5), diagonals included::

    CMMD = scale * ( mean_{i,j} k(x_i, x_j) + mean_{i,j} k(y_i, y_j) - 2 mean_{i,j} k(x_i, y_j) )
    k(x, y) = exp(-||x - y||^2 / (2 sigma^2)),   sigma = 10, scale = 1000

The reference evaluates this on L2-normalised CLIP ViT-L/14@336 embeddings (the extractor's
job, not this function's) in JAX, float32 by default. Here it is float64 and computed over
``block_rows x block_rows`` tiles, so memory is O(block_rows * (block_rows + D)) whatever N is;
within-set sums visit each tile pair once and count off-diagonal tiles twice.
"""

from __future__ import annotations

import numpy as np

from workbench.metrics.validation import as_features, check_same_dim

DEFAULT_BLOCK_ROWS = 2048


def cmmd(
    real: object,
    fake: object,
    sigma: float = 10.0,
    scale: float = 1000.0,
    *,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> float:
    """CMMD between two embedding sets (biased RBF-kernel MMD^2 times ``scale``).

    Args:
        real: ``N1 x D`` reference embeddings (array or memmap; N1 >= 1).
        fake: ``N2 x D`` generated embeddings (N1 and N2 may differ).
        sigma: RBF bandwidth, in embedding units (reference: 10).
        scale: multiplier for readability (reference: 1000).
        block_rows: tile height; peak extra memory is about ``block_rows^2 + 2 block_rows D``
            float64 numbers (~65 MB at the default and D = 1024).

    Returns:
        The CMMD value (0 for identical sets up to rounding; it is a V-statistic, so positive
        even for two samples of one distribution, by O(1/N)).
    """
    real_arr = as_features(real, "real")
    fake_arr = as_features(fake, "fake")
    check_same_dim(real_arr, fake_arr, "real", "fake")
    sigma = float(sigma)
    scale = float(scale)
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"sigma must be a positive number; got {sigma!r}")
    if not np.isfinite(scale):
        raise ValueError(f"scale must be finite; got {scale!r}")
    if isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer)) or block_rows < 1:
        raise ValueError(f"block_rows must be a positive integer; got {block_rows!r}")
    gamma = 1.0 / (2.0 * sigma * sigma)
    n_real, n_fake = real_arr.shape[0], fake_arr.shape[0]
    k_xx = rbf_kernel_sum(real_arr, None, gamma, block_rows=block_rows) / (n_real * n_real)
    k_yy = rbf_kernel_sum(fake_arr, None, gamma, block_rows=block_rows) / (n_fake * n_fake)
    k_xy = rbf_kernel_sum(real_arr, fake_arr, gamma, block_rows=block_rows) / (n_real * n_fake)
    return scale * (k_xx + k_yy - 2.0 * k_xy)


def rbf_kernel_sum(
    a: np.ndarray, b: np.ndarray | None, gamma: float, *, block_rows: int = DEFAULT_BLOCK_ROWS
) -> float:
    """``sum_{i,j} exp(-gamma ||a_i - b_j||^2)`` over all pairs, tile by tile (``b=None``: b = a).

    Each tile is one matrix product of augmented rows, ``[a_i, -gamma|a_i|^2, 1] .
    [2 gamma b_j, 1, -gamma|b_j|^2] = -gamma ||a_i - b_j||^2``, then an in-place ``exp`` and a
    sum, so no broadcast passes over the tile are needed. Inputs are validated by the caller.
    """
    symmetric = b is None
    other = a if symmetric else b
    total = 0.0
    for j in range(0, other.shape[0], block_rows):
        right = _augment(other[j : j + block_rows], gamma, left=False)
        # Within one set, tile (i, j) equals tile (j, i) transposed: visit i <= j only.
        stop = j + 1 if symmetric else a.shape[0]
        for i in range(0, stop, block_rows):
            tile = _augment(a[i : i + block_rows], gamma, left=True) @ right.T
            np.exp(tile, out=tile)
            total += (2.0 if symmetric and i != j else 1.0) * float(tile.sum())
            del tile  # otherwise the next product is allocated while this tile is still alive
    return total


def _augment(block: np.ndarray, gamma: float, *, left: bool) -> np.ndarray:
    rows, dim = block.shape
    out = np.empty((rows, dim + 2), dtype=np.float64)
    out[:, :dim] = block
    sq = np.einsum("ij,ij->i", out[:, :dim], out[:, :dim])
    if left:
        out[:, dim] = -gamma * sq
        out[:, dim + 1] = 1.0
    else:
        out[:, :dim] *= 2.0 * gamma
        out[:, dim] = 1.0
        out[:, dim + 1] = -gamma * sq
    return out
