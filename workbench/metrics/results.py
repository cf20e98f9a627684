"""A small immutable container for a metric value with its uncertainty and sample sizes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, kw_only=True)
class MetricValue:
    """One metric result, e.g. KID as mean and standard deviation over subsets.

    Attributes:
        value: the point estimate (``float(result)`` gives it too).
        n_real: number of real samples the estimate used.
        n_fake: number of generated samples the estimate used.
        std: spread of the estimate when the metric defines one (e.g. KID: the population
            standard deviation, ``ddof=0``, of the per-subset values), else None.
        ci: a confidence interval ``(low, high)`` when the metric computes one, else None.
        extra: metric-specific details (read-only mapping), e.g. ``{"subset_size": 1000}``.
    """

    value: float
    n_real: int
    n_fake: int
    std: float | None = None
    ci: tuple[float, float] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", float(self.value))
        if self.std is not None:
            object.__setattr__(self, "std", float(self.std))
        if self.ci is not None:
            low, high = self.ci
            object.__setattr__(self, "ci", (float(low), float(high)))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    def __float__(self) -> float:
        return self.value
