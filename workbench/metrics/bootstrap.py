"""Nonparametric bootstrap of any two-sample metric: point estimate, std and percentile interval."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.metrics.validation import as_features, check_seed, warn_sample_size

RESAMPLE_MODES = ("both", "fake")

# Metrics whose plug-in estimate is known to be biased under resampling with replacement: the bootstrap
# sample holds duplicated rows (on average only 63.2% of the rows are distinct).
_FRECHET_NOTE = (
    "bootstrapping a Frechet distance resamples rows with replacement; the duplicates shrink the "
    "effective sample size and bias FD upwards (FD's finite-sample bias grows as the sample shrinks), so "
    "the bootstrap distribution sits above the point estimate and its percentile interval is shifted; "
    "prefer repeated disjoint subsets or an unbiased estimator (FD_inf) for intervals"
)
_NEIGHBOUR_NOTE = (
    "bootstrapping a nearest-neighbour metric resamples rows with replacement; duplicated rows are at "
    "distance 0 from their copies, which shrinks k-NN radii and biases the metric (precision/recall/"
    "density/coverage, C_T, authenticity, FLD); use resample='fake' with care or subsample without "
    "replacement instead"
)
_KERNEL_NOTE = (
    "bootstrapping a kernel MMD (KID/KD, CMMD) resamples rows with replacement; duplicated rows enter the "
    "within-set averages as distinct pairs with k(x, x), which biases the unbiased estimator upwards"
)
# matched against the "_"-separated words of the metric's function name
_KNOWN_BIASED: dict[str, str] = {
    **dict.fromkeys(("frechet", "fid", "fd", "mifid"), _FRECHET_NOTE),
    **dict.fromkeys(("kd", "kid", "mmd", "cmmd"), _KERNEL_NOTE),
    **dict.fromkeys(
        ("precision", "recall", "density", "coverage", "prdc", "realism", "ct", "authpct", "authenticity", "fld"),
        _NEIGHBOUR_NOTE,
    ),
}


@dataclass(frozen=True)
class BootstrapEstimate:
    """One scalar's bootstrap summary: ``point`` on the full data, ``std`` (ddof=1) of the replicates and
    the percentile interval ``[low, high]`` at confidence ``ci``."""

    point: float
    std: float
    low: float
    high: float
    ci: float
    n: int


@dataclass(frozen=True)
class BootstrapResult:
    """Per-field bootstrap estimates. A metric returning a float has the single field ``"value"``;
    then ``point``/``std``/``low``/``high`` read that field directly. ``replicates`` holds the raw
    bootstrap values of each field (NaN where a replicate raised)."""

    estimates: dict[str, BootstrapEstimate]
    replicates: dict[str, np.ndarray]

    def __getitem__(self, name: str) -> BootstrapEstimate:
        return self.estimates[name]

    def _single(self) -> BootstrapEstimate:
        if len(self.estimates) != 1:
            raise AttributeError(
                f"this metric has several fields {sorted(self.estimates)}; index the result by field name"
            )
        return next(iter(self.estimates.values()))

    @property
    def point(self) -> float:
        return self._single().point

    @property
    def std(self) -> float:
        return self._single().std

    @property
    def low(self) -> float:
        return self._single().low

    @property
    def high(self) -> float:
        return self._single().high


def _is_scalar(value: Any, allow_int: bool = True) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (float, np.floating)) or (allow_int and isinstance(value, (int, np.integer))):
        return True
    if not (isinstance(value, np.ndarray) and value.ndim == 0):
        return False
    return np.issubdtype(value.dtype, np.floating) or (allow_int and np.issubdtype(value.dtype, np.integer))


def scalar_fields(result: Any) -> dict[str, float]:
    """The named float fields of a metric result: a plain number -> ``{"value": x}``; a mapping, a
    dataclass or a NamedTuple -> its float entries (integers such as sample counts, arrays, strings, None
    and bools are skipped; e.g. :class:`~workbench.metrics.results.MetricValue` gives ``value`` and, when
    set, ``std``)."""
    if _is_scalar(result):
        return {"value": float(result)}
    items: Iterable[tuple[Any, Any]]
    if isinstance(result, Mapping):
        items = result.items()
    elif dataclasses.is_dataclass(result) and not isinstance(result, type):
        items = ((f.name, getattr(result, f.name)) for f in dataclasses.fields(result))
    elif isinstance(result, tuple) and hasattr(result, "_asdict"):
        items = result._asdict().items()
    else:
        raise TypeError(
            "metric must return a number, a mapping, a dataclass or a NamedTuple of numbers; "
            f"got {type(result).__name__}"
        )
    fields = {str(k): float(v) for k, v in items if _is_scalar(v, allow_int=False)}
    if not fields:
        raise TypeError(f"metric result {type(result).__name__} has no scalar numeric field to bootstrap")
    return fields


def _metric_name(metric: Callable[..., Any]) -> str:
    while isinstance(metric, functools.partial):
        metric = metric.func
    return str(getattr(metric, "__name__", "")).lower()


def _bias_note(metric: Callable[..., Any]) -> str | None:
    note = getattr(metric, "bootstrap_bias", None)
    if isinstance(note, str):
        return note
    for word in _metric_name(metric).split("_"):
        if word in _KNOWN_BIASED:
            return _KNOWN_BIASED[word]
    return None


def bootstrap(
    metric: Callable[..., Any],
    real: np.ndarray,
    fake: np.ndarray,
    n: int = 100,
    seed: int | np.random.Generator | None = 0,
    ci: float = 0.95,
    resample: str = "both",
    **kwargs: Any,
) -> BootstrapResult:
    """Bootstrap a two-sample metric ``metric(real, fake, **kwargs)`` (Efron & Tibshirani 1993).

    ``B = n`` replicates: each draws ``N`` rows of ``real`` and ``M`` rows of ``fake`` uniformly with
    replacement (``resample="both"``; real and fake independently) or only the fake rows
    (``resample="fake"``, the reference set fixed), and evaluates the metric. For each scalar field::

        point = metric(real, fake)                       (full data, not the bootstrap mean)
        std   = std(replicates, ddof=1)
        [low, high] = quantiles (1 - ci) / 2 and (1 + ci) / 2 of the replicates   (percentile CI)

    The metric may return a float or a result with named float fields (mapping, dataclass, NamedTuple);
    every scalar field gets its own estimate, non-scalar fields (per-cell arrays...) are ignored.
    Replicates where the metric raises are recorded as NaN and excluded (with a warning).

    Known biases are reported with a :class:`~workbench.metrics.validation.SampleSizeWarning`: a metric
    may declare ``metric.bootstrap_bias = "why"``; otherwise the words of its function name are looked
    up: Frechet distances (``fd``, ``fid``, ``frechet``, ``mifid``), kernel MMDs (``kd``, ``kid``,
    ``cmmd``) and nearest-neighbour metrics (precision/recall/density/coverage/realism, C_T,
    authenticity, FLD) are known: duplicated rows bias them (FD and MMD upwards; k-NN radii shrink).
    For FD, a sample with fewer rows than feature dimensions (``N < D``) also gets a
    singular-covariance warning. ``seed`` makes the resampling reproducible; randomness inside the
    metric is controlled by its own ``seed=`` in ``kwargs``.

    Args:
        metric: callable ``(real, fake, **kwargs) -> float | named fields``.
        real: ``N x D`` reference features.
        fake: ``M x D`` generated features.
        n: number of bootstrap replicates (>= 2). The default 100 suits ``std``; a 95% percentile
            interval rests on the ~2.5 most extreme replicates per tail then, so use ``n >= 1000`` for it.
        seed: seed of the resampling.
        ci: confidence level of the percentile interval, in (0, 1).
        resample: ``"both"`` or ``"fake"``.
        **kwargs: passed to ``metric`` unchanged.

    Returns:
        :class:`BootstrapResult` (``result.point/std/low/high`` for a float metric, ``result["field"]``
        per field otherwise).
    """
    if not callable(metric):
        raise TypeError(f"metric must be callable (real, fake, **kwargs) -> float; got {type(metric).__name__}")
    if resample not in RESAMPLE_MODES:
        raise ValueError(f"resample must be one of {RESAMPLE_MODES}; got {resample!r}")
    if isinstance(n, bool) or int(n) != n or n < 2:
        raise ValueError(f"n (number of bootstrap replicates) must be an integer >= 2; got {n!r}")
    n = int(n)
    if not 0 < ci < 1:
        raise ValueError(f"ci must be a confidence level in (0, 1), e.g. 0.95; got {ci}")
    real = as_features(real, "real")
    fake = as_features(fake, "fake")
    rng = check_seed(seed)

    note = _bias_note(metric)
    if note is not None:
        warn_sample_size(note)
    if note is _FRECHET_NOTE:
        small = [
            f"{name} ({a.shape[0]} < {a.shape[1]})"
            for name, a in (("real", real), ("fake", fake))
            if a.shape[0] < a.shape[1]
        ]
        if small:
            warn_sample_size(
                "Frechet distance with fewer samples than feature dimensions: "
                + ", ".join(small)
                + "; the sample covariance is singular and FD is strongly biased"
            )
    point = scalar_fields(metric(real, fake, **kwargs))
    values = {name: np.full(n, np.nan) for name in point}
    failures: list[str] = []
    for b in range(n):
        fake_b = fake[rng.integers(0, fake.shape[0], fake.shape[0])]
        real_b = real[rng.integers(0, real.shape[0], real.shape[0])] if resample == "both" else real
        try:
            fields = scalar_fields(metric(real_b, fake_b, **kwargs))
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            continue
        for name in values:
            values[name][b] = fields.get(name, np.nan)
    if failures:
        warn_sample_size(f"{len(failures)} of {n} bootstrap replicates raised and were dropped (first: {failures[0]})")

    lo_q, hi_q = (1.0 - ci) / 2.0, (1.0 + ci) / 2.0
    estimates = {}
    for name, reps in values.items():
        ok = reps[np.isfinite(reps)]
        if ok.size >= 2:
            std = float(np.std(ok, ddof=1))
            low, high = float(np.quantile(ok, lo_q)), float(np.quantile(ok, hi_q))
        else:
            std = low = high = math.nan
        estimates[name] = BootstrapEstimate(point=point[name], std=std, low=low, high=high, ci=ci, n=int(ok.size))
    return BootstrapResult(estimates=estimates, replicates=values)
