"""Input validation shared by every metric: clear errors that name the argument."""

from __future__ import annotations

import warnings

import numpy as np

_FINITE_CHECK_ELEMENTS = 1 << 22  # ~4M values (16 MiB of float32 temporaries) per block


class SampleSizeWarning(UserWarning):
    """An estimate is known to be biased or unreliable at this sample size."""


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
