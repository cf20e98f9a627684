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

The fixed bandwidth makes CMMD depend on the scale of the features (it is not scale-invariant);
it is computed exactly at any magnitude. Each tile's exponents ``-||x - y||^2 / (2 sigma^2)``
come from one matrix product of rows centred on the mean of the sets involved (a shift leaves
distances unchanged and shrinks the cancellation of ``||x||^2 + ||y||^2 - 2 x.y``); wherever
the rounding bound of that expansion could still move a non-negligible kernel value by more
than ``1e-8`` relative (features of large magnitude, e.g. multiplied by ``1e8``), the exponent
is recomputed in float64 from the difference ``x - y``. Features whose squared norms overflow
float64 are rejected with a ValueError.
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
        even for two samples of one distribution, by O(1/N)). Exact to about ``1e-8`` relative
        per kernel value at any feature magnitude (see the module docstring).

    Raises:
        ValueError: bad shapes or parameters, NaN/inf features, or features so large that their
            squared norms overflow float64 (about ``1e154``).
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
    c_real = _row_mean(real_arr, block_rows)
    c_fake = _row_mean(fake_arr, block_rows)
    c_both = (n_real * c_real + n_fake * c_fake) / (n_real + n_fake)
    k_xx = rbf_kernel_sum(real_arr, None, gamma, block_rows=block_rows, centre=c_real) / (n_real * n_real)
    k_yy = rbf_kernel_sum(fake_arr, None, gamma, block_rows=block_rows, centre=c_fake) / (n_fake * n_fake)
    k_xy = rbf_kernel_sum(real_arr, fake_arr, gamma, block_rows=block_rows, centre=c_both) / (n_real * n_fake)
    value = scale * (k_xx + k_yy - 2.0 * k_xy)
    if not np.isfinite(value):
        raise ValueError(f"CMMD is not finite (scale={scale!r} times kernel means {k_xx}, {k_yy}, {k_xy})")
    return value


# A kernel value exp(t) is trusted from the matrix-product expansion when the rounding bound of t
# is at most this (relative error of the kernel value); else t is recomputed from x - y.
_EXPONENT_TOLERANCE = 1e-8
# Exponents certainly below this give kernel values below 1e-304: negligible, never recomputed.
_NEGLIGIBLE_EXPONENT = -700.0
_PAIR_ELEMENTS = 1 << 22  # float64 values per exact re-computation chunk (32 MiB)


def rbf_kernel_sum(
    a: np.ndarray,
    b: np.ndarray | None,
    gamma: float,
    *,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    centre: np.ndarray | None = None,
) -> float:
    """``sum_{i,j} exp(-gamma ||a_i - b_j||^2)`` over all pairs, tile by tile (``b=None``: b = a).

    Rows are first centred on ``centre`` (default: the mean of the rows of ``a`` and ``b``),
    which leaves distances unchanged. Each tile is one matrix product of augmented rows,
    ``[a_i, -gamma|a_i|^2, 1] . [2 gamma b_j, 1, -gamma|b_j|^2] = -gamma ||a_i - b_j||^2``, then an
    in-place ``exp`` and a sum. The product's rounding error is at most
    ``4 (D + 4) u gamma (|a_i|^2 + |b_j|^2)`` (``u = 2^-53``, Higham's bound for a dot product
    plus the norms); entries where that exceeds ``1e-8`` and the kernel value is not negligible
    are recomputed as ``-gamma sum((a_i - b_j)^2)`` in float64. Exponents are clamped to ``<= 0``
    (a squared distance is never negative). Inputs are validated by the caller.

    Raises:
        ValueError: the squared norms or the sum overflow float64.
    """
    symmetric = b is None
    other = a if b is None else b
    if centre is None:
        n_a, n_b = a.shape[0], (0 if b is None else b.shape[0])
        centre = _row_mean(a, block_rows) * (n_a / (n_a + n_b))
        if b is not None:
            centre = centre + _row_mean(b, block_rows) * (n_b / (n_a + n_b))
    coeff = 4.0 * (a.shape[1] + 4) * 2.0**-53 * gamma
    total = 0.0
    for j in range(0, other.shape[0], block_rows):
        right_rows = np.asarray(other[j : j + block_rows], dtype=np.float64)
        right, sq_right = _augment(right_rows, centre, gamma, left=False)
        # Within one set, tile (i, j) equals tile (j, i) transposed: visit i <= j only.
        stop = j + 1 if symmetric else a.shape[0]
        for i in range(0, stop, block_rows):
            left_rows = right_rows if symmetric and i == j else np.asarray(a[i : i + block_rows], dtype=np.float64)
            left, sq_left = _augment(left_rows, centre, gamma, left=True)
            tile = left @ right.T
            _recompute_uncertain(tile, left_rows, right_rows, sq_left, sq_right, gamma, coeff)
            np.minimum(tile, 0.0, out=tile)
            np.exp(tile, out=tile)
            total += (2.0 if symmetric and i != j else 1.0) * float(tile.sum())
            del tile  # otherwise the next product is allocated while this tile is still alive
    if not np.isfinite(total):
        raise ValueError("the RBF kernel sum is not finite; are sigma and the features of sensible magnitude?")
    return total


def _row_mean(x: np.ndarray, block_rows: int) -> np.ndarray:
    total = np.zeros(x.shape[1], dtype=np.float64)
    for start in range(0, x.shape[0], block_rows):
        total += np.asarray(x[start : start + block_rows]).sum(axis=0, dtype=np.float64)
    return total / x.shape[0]


def _augment(rows: np.ndarray, centre: np.ndarray, gamma: float, *, left: bool) -> tuple[np.ndarray, np.ndarray]:
    """Augmented centred rows (see :func:`rbf_kernel_sum`) and their squared norms."""
    n, dim = rows.shape
    out = np.empty((n, dim + 2), dtype=np.float64)
    np.subtract(rows, centre, out=out[:, :dim])
    with np.errstate(over="ignore", invalid="ignore"):
        sq = np.einsum("ij,ij->i", out[:, :dim], out[:, :dim])
    if not np.isfinite(sq).all():
        raise ValueError(
            "feature vectors are too large for the RBF kernel in float64 (their squared norms overflow, "
            f"largest |value| {float(np.abs(out[:, :dim]).max()):.3g}); rescale the features"
        )
    if left:
        out[:, dim] = -gamma * sq
        out[:, dim + 1] = 1.0
    else:
        out[:, :dim] *= 2.0 * gamma
        out[:, dim] = 1.0
        out[:, dim + 1] = -gamma * sq
    return out, sq


def _recompute_uncertain(
    tile: np.ndarray,
    left_rows: np.ndarray,
    right_rows: np.ndarray,
    sq_left: np.ndarray,
    sq_right: np.ndarray,
    gamma: float,
    coeff: float,
) -> None:
    """Replace the tile's exponents whose rounding bound is too large by float64 ``-gamma ||a - b||^2``."""
    if coeff * (float(sq_left.max()) + float(sq_right.max())) <= _EXPONENT_TOLERANCE:
        return  # the usual case: well-scaled features, every entry is accurate
    bound = np.add.outer(sq_left, sq_right)
    bound *= coeff
    rows, cols = np.nonzero((bound > _EXPONENT_TOLERANCE) & (tile + bound > _NEGLIGIBLE_EXPONENT))
    step = max(1, _PAIR_ELEMENTS // left_rows.shape[1])
    for s0 in range(0, rows.size, step):
        r, c = rows[s0 : s0 + step], cols[s0 : s0 + step]
        diff = left_rows[r] - right_rows[c]
        tile[r, c] = -gamma * np.einsum("ij,ij->i", diff, diff)
