"""Every metric by name, evaluated for many generated sets at once: :func:`evaluate`.

Each metric of this package is a pure function on arrays; this module knows which inputs each
needs (reference, generated, training, held-out test features, classifier logits), which way is
better, and how to put the numbers of several generated sets in one table with optional
bootstrap confidence intervals. ``workbench metrics`` (the CLI) and the widgets use it.
"""

from __future__ import annotations

import html
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from .authenticity import authenticity
from .bootstrap import bootstrap as bootstrap_metric
from .cmmd import cmmd
from .ct_score import ct_score
from .fd_infinity import fd_infinity
from .fld import fld
from .frechet import fd
from .inception_score import inception_score
from .kernel_distance import kd
from .mifid import mifid
from .prdc import prdc
from .precision_recall import precision_recall
from .sliced_wasserstein import sliced_wasserstein
from .validation import SampleSizeWarning
from .vendi import vendi


@dataclass(frozen=True)
class FeatureSet:
    """Features of one image set: ``features`` ``N x D``; optional ``logits`` ``N x K`` and labels."""

    features: Any
    logits: Any = None
    labels: np.ndarray | None = None


@dataclass(frozen=True)
class MetricSpec:
    """How to compute one metric from a :class:`FeatureSet` bundle.

    ``needs`` lists the inputs beyond the generated set: ``"ref"``, ``"train"``, ``"test"``,
    ``"logits"``. ``fields`` maps each output column to True when higher is better, False when
    lower is better, None when neither (e.g. C_T, where 0 is ideal). ``pairwise`` metrics are
    functions of (reference, generated) and can be bootstrapped.
    """

    name: str
    description: str
    needs: frozenset[str]
    fields: Mapping[str, bool | None]
    compute: Callable[..., dict[str, float]]
    default: bool = True
    pairwise: bool = True


def _two_sample(fn: Callable[..., dict[str, float]]) -> Callable[..., dict[str, float]]:
    """Adapt ``fn(ref, gen, seed)`` to the (real, fake) signature used by the bootstrap."""

    def wrapped(real: Any, fake: Any, seed: int = 0) -> dict[str, float]:
        return fn(real, fake, seed)

    wrapped.__name__ = fn.__name__
    return wrapped


def _fd(ref: Any, gen: Any, seed: int) -> dict[str, float]:
    return {"fd": fd(ref, gen)}


def _fd_inf(ref: Any, gen: Any, seed: int) -> dict[str, float]:
    return {"fd_inf": fd_infinity(ref, gen, seed=seed).value}


def _kd(ref: Any, gen: Any, seed: int) -> dict[str, float]:
    n = min(len(ref), len(gen))
    r = kd(ref, gen, subset_size=min(1000, n), seed=seed)
    return {"kd": r.value, "kd_std": r.std if r.std is not None else math.nan}


def _cmmd(ref: Any, gen: Any, seed: int) -> dict[str, float]:
    return {"cmmd": cmmd(ref, gen)}


def _prdc(ref: Any, gen: Any, seed: int) -> dict[str, float]:
    r = prdc(ref, gen, k=5)
    return {"precision": r.precision, "recall": r.recall, "density": r.density, "coverage": r.coverage}


def _ipr(ref: Any, gen: Any, seed: int) -> dict[str, float]:
    r = precision_recall(ref, gen, k=3)
    return {"ipr_precision": r.precision, "ipr_recall": r.recall}


def _swd(ref: Any, gen: Any, seed: int) -> dict[str, float]:
    return {"swd": sliced_wasserstein(ref, gen, seed=seed)}


def _vendi(ref: Any, gen: Any, seed: int) -> dict[str, float]:
    return {"vendi": float(vendi(gen))}


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in [
        MetricSpec("fd", "Frechet distance (FID on Inception pool3)", frozenset({"ref"}), {"fd": False}, _fd),
        MetricSpec("fd_inf", "FD extrapolated to infinite samples (Chong & Forsyth 2020)", frozenset({"ref"}),
                   {"fd_inf": False}, _fd_inf, default=False),
        MetricSpec("kd", "kernel distance / KID, mean and std over subsets", frozenset({"ref"}),
                   {"kd": False, "kd_std": None}, _kd),
        MetricSpec("cmmd", "CMMD: Gaussian-RBF MMD (Jayasumana et al. 2024)", frozenset({"ref"}), {"cmmd": False},
                   _cmmd, default=False),
        MetricSpec("prdc", "precision, recall, density, coverage (Naeem et al. 2020), k=5", frozenset({"ref"}),
                   {"precision": True, "recall": True, "density": True, "coverage": True}, _prdc),
        MetricSpec("pr", "improved precision and recall (Kynkaanniemi et al. 2019), k=3", frozenset({"ref"}),
                   {"ipr_precision": True, "ipr_recall": True}, _ipr, default=False),
        MetricSpec("swd", "sliced Wasserstein distance", frozenset({"ref"}), {"swd": False}, _swd, default=False),
        MetricSpec("vendi", "Vendi score of the generated set (cosine, q=1)", frozenset(), {"vendi": True}, _vendi),
        MetricSpec("is", "Inception Score from classifier logits (10 splits)", frozenset({"logits"}),
                   {"is": True, "is_std": None},
                   lambda s, seed: dict(zip(("is", "is_std"), inception_score(s["gen"].logits))), pairwise=False),
        MetricSpec("authpct", "AuthPct: % of generated samples judged authentic (Alaa et al. 2022)",
                   frozenset({"train"}), {"authpct": True},
                   lambda s, seed: {"authpct": authenticity(s["train"].features, s["gen"].features).auth_pct},
                   pairwise=False),
        MetricSpec("ct", "data-copying test C_T (Meehan et al. 2020); < 0 means copying", frozenset({"train", "test"}),
                   {"ct": None},
                   lambda s, seed: {"ct": ct_score(s["train"].features, s["test"].features, s["gen"].features,
                                                   seed=seed).c_t}, pairwise=False),
        MetricSpec("mifid", "memorization-informed FID (Bai et al. 2021)", frozenset({"train"}), {"mifid": False},
                   lambda s, seed: {"mifid": mifid(s["train"].features, s["gen"].features).mifid},
                   default=False, pairwise=False),
        MetricSpec("fld", "feature likelihood divergence (Jiralerspong et al. 2023)", frozenset({"train", "test"}),
                   {"fld": False},
                   lambda s, seed: {"fld": fld(s["train"].features, s["test"].features, s["gen"].features,
                                               seed=seed).fld}, default=False, pairwise=False),
    ]
}

_PAIRWISE_FNS: dict[str, Callable[..., dict[str, float]]] = {
    "fd": _fd, "fd_inf": _fd_inf, "kd": _kd, "cmmd": _cmmd, "prdc": _prdc, "pr": _ipr, "swd": _swd, "vendi": _vendi,
}


# Ranges of bounded values; intervals are clipped to them.
_BOUNDS = {
    **dict.fromkeys(("precision", "recall", "coverage", "ipr_precision", "ipr_recall"), (0.0, 1.0)),
    **dict.fromkeys(("fd", "cmmd", "swd", "density"), (0.0, math.inf)),
    "vendi": (1.0, math.inf),
}


def higher_is_better(column: str) -> bool | None:
    """Orientation of a result column: True, False, or None (no better direction)."""
    for spec in METRICS.values():
        if column in spec.fields:
            return spec.fields[column]
    return None


def resolve_metrics(names: str | Sequence[str], available: set[str]) -> list[str]:
    """Metric names from ``"default"``, ``"all"`` or a list/comma string; checks they exist.

    ``available`` holds the optional inputs present (``"ref"``, ``"train"``, ``"test"``,
    ``"logits"``); "default" and "all" keep only the metrics whose inputs are present, an
    explicit name whose inputs are missing is an error.
    """
    if isinstance(names, str):
        if names in ("default", "all"):
            chosen = [n for n, s in METRICS.items() if (names == "all" or s.default) and s.needs <= available]
            return chosen
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}, 'default' or 'all'")
    for n in names:
        missing = METRICS[n].needs - available
        if missing:
            what = {"train": "--train (training set features)", "test": "--test (held-out real features)",
                    "logits": "classifier logits (an extractor with logits, e.g. inception)", "ref": "--ref"}
            raise ValueError(f"metric {n!r} needs " + " and ".join(what[m] for m in sorted(missing)))
    return list(names)


@dataclass
class MetricReport:
    """Metric values for several generated sets: one row per set, one column per value.

    Attributes:
        values: DataFrame indexed by generated-set name.
        low, high: bootstrap percentile interval bounds (same shape; NaN where not bootstrapped).
        std: bootstrap standard deviations (NaN where not bootstrapped).
        warnings: sample-size and provenance warnings collected while computing.
        info: provenance (extractor description, pretrained flag, sizes, settings).
        seconds: compute time per metric name.
    """

    values: pd.DataFrame
    low: pd.DataFrame
    high: pd.DataFrame
    std: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_frame(self, with_ci: bool = True) -> pd.DataFrame:
        """Values, plus ``<col>_low`` / ``<col>_high`` columns where intervals exist."""
        out = self.values.copy()
        if with_ci:
            for col in self.values.columns:
                if self.low[col].notna().any():
                    out[f"{col}_low"] = self.low[col]
                    out[f"{col}_high"] = self.high[col]
        return out

    def to_json(self) -> dict[str, Any]:
        rows = []
        for name in self.values.index:
            row: dict[str, Any] = {"model": name}
            for col in self.values.columns:
                entry = {"value": _num(self.values.at[name, col])}
                if not math.isnan(self.low.at[name, col]):
                    entry.update(low=_num(self.low.at[name, col]), high=_num(self.high.at[name, col]),
                                 std=_num(self.std.at[name, col]))
                row[col] = entry
            rows.append(row)
        return {"info": self.info, "warnings": self.warnings, "rows": rows,
                "higher_is_better": {c: higher_is_better(c) for c in self.values.columns}}

    def format_table(self, digits: int = 4) -> str:
        """A plain-text table; intervals shown as ``value [low, high]``."""
        cells = {col: [] for col in self.values.columns}
        for name in self.values.index:
            for col in self.values.columns:
                v = self.values.at[name, col]
                text = _fmt(v, digits)
                if not math.isnan(self.low.at[name, col]):
                    text += f" [{_fmt(self.low.at[name, col], digits)}, {_fmt(self.high.at[name, col], digits)}]"
                cells[col].append(text)
        headers = ["model", *self.values.columns]
        columns = [[str(n) for n in self.values.index], *cells.values()]
        widths = [max(len(h), *(len(c) for c in col)) for h, col in zip(headers, columns)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
        lines.append("  ".join("-" * w for w in widths))
        for i in range(len(self.values.index)):
            lines.append("  ".join(col[i].ljust(w) for col, w in zip(columns, widths)))
        return "\n".join(lines)

    def __str__(self) -> str:
        notes = [f"warning: {w}" for w in self.warnings]
        return "\n".join([self.format_table(), *notes])

    def _repr_html_(self) -> str:
        parts = [self.to_frame().to_html(float_format=lambda v: f"{v:.4g}", na_rep="")]
        parts += [f"<p><b>warning:</b> {html.escape(w)}</p>" for w in self.warnings]
        return "\n".join(parts)


def _num(v: Any) -> float | None:
    v = float(v)
    return None if math.isnan(v) else v


def _fmt(v: float, digits: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}g}"


def _as_set(x: Any) -> FeatureSet:
    return x if isinstance(x, FeatureSet) else FeatureSet(features=x)


def evaluate(
    ref: FeatureSet | Any,
    generated: Mapping[str, FeatureSet | Any],
    *,
    train: FeatureSet | Any | None = None,
    test: FeatureSet | Any | None = None,
    metrics: str | Sequence[str] = "default",
    bootstrap: int = 0,
    seed: int = 0,
    ci: float = 0.95,
    progress: Callable[[str], None] | None = None,
) -> MetricReport:
    """Compute ``metrics`` for every generated set against the reference (and train/test) features.

    Args:
        ref: reference (real) features ``N x D`` or a :class:`FeatureSet`.
        generated: ``{name: features or FeatureSet}`` — one row of the report each.
        train: training-set features, for memorization metrics (``authpct``, ``ct``, ``mifid``, ``fld``).
        test: held-out real features (not used in training), for ``ct`` and ``fld``.
        metrics: ``"default"``, ``"all"``, or names from :data:`METRICS` (list or comma string).
        bootstrap: number of bootstrap replicates for confidence intervals of pairwise metrics
            (0 = none). Metrics that need the training set are not bootstrapped. The interval is
            ``value +- z * std_boot`` (normal bootstrap interval centred on the full-data value):
            resampling with replacement duplicates rows, which shifts FD upwards and shrinks k-NN
            radii, so a percentile interval can exclude the value itself.
        seed: seed of every random choice (subsets, projections, bootstrap).
        ci: confidence level of the intervals.
        progress: called with a short message before each metric (e.g. ``print``).

    Returns:
        :class:`MetricReport`.
    """
    if not generated:
        raise ValueError("generated must name at least one generated feature set")
    ref_set = _as_set(ref)
    gens = {str(k): _as_set(v) for k, v in generated.items()}
    train_set = _as_set(train) if train is not None else None
    test_set = _as_set(test) if test is not None else None
    available = {"ref"}
    if train_set is not None:
        available.add("train")
    if test_set is not None:
        available.add("test")
    if all(g.logits is not None for g in gens.values()):
        available.add("logits")
    names = resolve_metrics(metrics, available)
    if bootstrap and bootstrap < 2:
        raise ValueError(f"bootstrap must be 0 (off) or at least 2 replicates; got {bootstrap}")

    z = float(scipy.stats.norm.ppf(0.5 + ci / 2))
    columns = [c for n in names for c in METRICS[n].fields]
    shape = dict(index=list(gens), columns=columns, dtype=float)
    values, low, high, std = (pd.DataFrame(math.nan, **shape) for _ in range(4))
    # one line per (metric, message), naming every generated set it applies to
    collected: dict[tuple[str, str], list[str]] = {}
    seconds: dict[str, float] = {}
    for metric_name in names:
        spec = METRICS[metric_name]
        t0 = time.perf_counter()
        for gen_name, gen in gens.items():
            if progress:
                progress(f"{metric_name} · {gen_name}")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", SampleSizeWarning)
                if spec.pairwise:
                    fn = _two_sample(_PAIRWISE_FNS[metric_name])
                    result = fn(ref_set.features, gen.features, seed=seed)
                    if bootstrap:
                        boot = bootstrap_metric(fn, ref_set.features, gen.features, n=bootstrap, seed=seed, ci=ci)
                        for col in spec.fields:
                            # Normal interval centred on the full-data value: resampling with
                            # replacement shifts FD and k-NN metrics (duplicate rows), so the
                            # percentile interval can miss the point estimate; the spread is usable.
                            half = z * boot[col].std
                            lo_bound, hi_bound = _BOUNDS.get(col, (-math.inf, math.inf))
                            low.at[gen_name, col] = max(result[col] - half, lo_bound)
                            high.at[gen_name, col] = min(result[col] + half, hi_bound)
                            std.at[gen_name, col] = boot[col].std
                else:
                    bundle = {"ref": ref_set, "gen": gen, "train": train_set, "test": test_set}
                    result = spec.compute(bundle, seed)
            for w in caught:
                names = collected.setdefault((metric_name, str(w.message)), [])
                if gen_name not in names:
                    names.append(gen_name)
            for col, v in result.items():
                values.at[gen_name, col] = float(v)
        seconds[metric_name] = time.perf_counter() - t0
    info = {
        "metrics": names,
        "n_ref": int(len(ref_set.features)),
        "n_generated": {k: int(len(g.features)) for k, g in gens.items()},
        "n_train": int(len(train_set.features)) if train_set is not None else None,
        "n_test": int(len(test_set.features)) if test_set is not None else None,
        "bootstrap": bootstrap,
        "ci": ci if bootstrap else None,
        "seed": seed,
    }
    notes = [f"{metric} ({', '.join(names)}): {message}" for (metric, message), names in collected.items()]
    return MetricReport(values=values, low=low, high=high, std=std, warnings=notes, info=info, seconds=seconds)
