"""Input validation shared by every metric: clear errors that name the argument."""

from __future__ import annotations

import warnings

import numpy as np

_FINITE_CHECK_ELEMENTS = 1 << 22  # ~4M values (16 MiB of float32 temporaries) per block


# Largest absolute feature value left as it is by :func:`power_of_two_scale` (and the reciprocal
# of the smallest): inside this range float32 squared distances neither overflow nor underflow.
SAFE_MAGNITUDE = 2.0**40


class SampleSizeWarning(UserWarning):
    """An estimate is known to be biased or unreliable at this sample size."""


class ExcludedRowsWarning(UserWarning):
    """Some input rows were left out of a metric because it is undefined for them."""


def as_features(x: object, name: str, *, min_samples: int = 1) -> np.ndarray:
    """Validate a feature matrix ``N x D`` and return it as a floating numpy array.

    Memory-mapped arrays stay memory-mapped (no copy) when already float32/float64; the
    finiteness check runs in blocks of about 4M values, so a 50,000 x 2048 memmap is never
    loaded whole.

    Raises:
        TypeError: ``x`` is not array-like numeric data.
        ValueError: wrong number of dimensions, too few rows, zero columns, NaN or inf values.
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor without importing torch
        x = x.detach().cpu().numpy()
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a numeric array of shape (N, D); got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must have shape (N, D) (one row per sample); got shape {arr.shape}. "
            "Flatten or stack your features first."
        )
    n, d = arr.shape
    if d == 0:
        raise ValueError(f"{name} has zero feature columns")
    if n < min_samples:
        raise ValueError(f"{name} needs at least {min_samples} samples; got {n}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    rows = max(1, _FINITE_CHECK_ELEMENTS // d)
    for start in range(0, n, rows):
        block = arr[start : start + rows]
        if not np.isfinite(block).all():
            bad = start + int(np.argwhere(~np.isfinite(block))[0, 0])
            raise ValueError(f"{name} contains NaN or infinite values (first at row {bad})")
    return arr


def max_abs(arr: np.ndarray) -> float:
    """Largest absolute value of a validated ``N x D`` array (blocked, so memmaps stay on disk).

    Returns 0.0 for an all-zero array. The input must be finite (see :func:`as_features`).
    """
    n, d = arr.shape
    rows = max(1, _FINITE_CHECK_ELEMENTS // max(d, 1))
    best = 0.0
    for start in range(0, n, rows):
        block = arr[start : start + rows]
        if block.size:
            best = max(best, float(np.max(block)), -float(np.min(block)))
    return best


def power_of_two_scale(*arrays: np.ndarray, safe: float = SAFE_MAGNITUDE) -> float:
    """A common factor ``2**-e`` that brings the largest ``|value|`` of ``arrays`` near 1.

    Returns exactly ``1.0`` when that value lies in ``[1 / safe, safe]`` (or all values are 0),
    so well-scaled inputs are untouched. Otherwise the factor maps the largest value into
    ``[0.5, 1)``. Multiplying by a power of two is exact in binary floating point (as long as
    nothing overflows or becomes subnormal), so every sum, product, square root and comparison
    of the scaled data is the scaled result of the same operation on the original data: metrics
    that are invariant under a common scale (k-NN counts, ratios of distances, ranks) give
    identical results, and distances are recovered exactly by dividing by the factor.
    """
    return scale_for_magnitude(max((max_abs(a) for a in arrays), default=0.0), safe)


def scale_for_magnitude(m: float, safe: float = SAFE_MAGNITUDE) -> float:
    """:func:`power_of_two_scale` of arrays whose largest ``|value|`` is ``m`` (from :func:`max_abs`)."""
    if m == 0.0 or 1.0 / safe <= m <= safe:
        return 1.0
    _, exponent = np.frexp(m)  # m = f * 2**exponent, 0.5 <= f < 1
    return float(np.ldexp(1.0, -int(exponent)))


def nonzero_rows(x: np.ndarray, name: str, metric: str, *, block_rows: int = 65536) -> np.ndarray:
    """Indices of the rows of ``x`` that are not all zero; warns when some are left out.

    For metrics undefined on all-zero rows (cosine similarity, e.g. a black image with the
    ``pixels`` extractor). The :class:`ExcludedRowsWarning` names how many rows and the first
    few indices.

    Raises:
        ValueError: every row is all zero.
    """
    keep = []
    for start in range(0, x.shape[0], block_rows):
        block = np.asarray(x[start : start + block_rows])
        keep.append(start + np.flatnonzero(np.any(block != 0, axis=1)))
    rows = np.concatenate(keep) if keep else np.zeros(0, dtype=np.int64)
    if rows.size == 0:
        raise ValueError(f"{name} has only all-zero rows ({x.shape[0]}); {metric} is undefined for them")
    dropped = x.shape[0] - rows.size
    if dropped:
        zero = np.setdiff1d(np.arange(x.shape[0]), rows, assume_unique=True)
        shown = ", ".join(str(int(i)) for i in zero[:5]) + (", ..." if zero.size > 5 else "")
        warnings.warn(
            f"{name}: {dropped} all-zero row(s) left out of {metric} (cosine similarity is undefined "
            f"for them): row(s) {shown}",
            ExcludedRowsWarning,
            stacklevel=3,
        )
    return rows


def check_same_dim(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise ValueError unless ``a`` and ``b`` have the same feature dimension."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{name_a} and {name_b} have different feature dimensions ({a.shape[1]} vs {b.shape[1]}); "
            "were they made by the same extractor?"
        )


def warn_sample_size(message: str, stacklevel: int = 3) -> None:
    """Emit a :class:`SampleSizeWarning`."""
    warnings.warn(message, SampleSizeWarning, stacklevel=stacklevel)


def check_seed(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A numpy Generator from a seed (int), an existing Generator, or None (seed 0, reproducible)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        seed = 0
    return np.random.default_rng(int(seed))
