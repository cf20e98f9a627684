"""Values for widget messages: JSON has no NaN or infinity, so they travel as ``null``."""

from __future__ import annotations

from typing import Any

import numpy as np


def finite_or_none(values: Any) -> Any:
    """``values`` (scalar, sequence or nested sequence of numbers) as floats / lists of floats
    with NaN and +-inf replaced by None (plotly draws a gap there)."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        return float(arr) if np.isfinite(arr) else None
    if arr.ndim == 1:
        return [float(v) if np.isfinite(v) else None for v in arr.tolist()]
    return [finite_or_none(row) for row in arr]
