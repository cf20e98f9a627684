"""Every metric by name, evaluated for many generated sets at once: :func:`evaluate`.

Each metric of this package is a pure function on arrays; this module knows which inputs each
needs (reference, generated, training, held-out test features, classifier logits), which way is
better, and how to put the numbers of several generated sets in one table with optional
bootstrap confidence intervals. ``workbench metrics`` (the CLI) and the widgets use it.

Nothing computed is thrown away: every metric of every generated set is computed on its own, and
one that fails (bad input, a bug) leaves an error message in its cell of the report
(:attr:`MetricReport.errors`) while every other cell stands. Only mistakes in the call itself
(unknown metric names, missing inputs, no generated set, sets of different feature dimensions)
raise; ``missing="skip"`` skips a named metric whose inputs are missing instead, saying why.

``"default"`` and ``"all"`` say what they leave out: :func:`select_metrics` gives every metric
left out for a missing input with its reason, :func:`evaluate` records them in
``report.info["skipped"]`` and in one warning line; :func:`metric_menu_text` lists every metric
for ``--help``. Warnings are collected once per cause: identical messages of several metrics and
generated sets become one line naming them, and the singular-covariance warnings of the Fréchet
family (``fd``, ``fd_inf``, ``mifid``) one line naming every set's size.
"""

from __future__ import annotations

import html
import math
import time
import traceback
import warnings
from collections.abc import Callable, Collection, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.stats

from workbench.threads import uses_free_threads

from ..progress import Progress, ProgressReporter
from ..protocols import PROTOCOLS, Protocol, resolve_protocol
from .authenticity import authenticity
from .bootstrap import bootstrap as bootstrap_metric
from .cmmd import cmmd
from .copy_rate import (
    DEFAULT_QUANTILE,
    UncalibratedCopyRateWarning,
    copy_rate,
    criterion_description,
    likely_copiers,
)
from .ct_score import ct_score
from .fd_infinity import fd_infinity
from .fld import fld
from .frechet import SingularCovarianceWarning, fd, singular_covariance_message
from .inception_score import inception_score
from .kernel_distance import kd
from .mifid import mifid
from .prdc import prdc
from .precision_recall import precision_recall
from .protocols import (
    dgm_eval_draws,
    foreign_metrics_warning,
    protocol_metrics,
    protocol_request,
    unseeded_warning,
)
from .sliced_wasserstein import sliced_wasserstein
from .validation import ExcludedRowsWarning, SampleSizeWarning, nonzero_rows
from .vendi import vendi


@dataclass(frozen=True)
class FeatureSet:
    """Features of one image set: ``features`` ``N x D``; optional ``logits`` ``N x K`` and labels.

    ``sample`` is how a protocol that draws samples reduced the set (a cache manifest's
    ``protocol.sample``: ``{"from": N, "size": n, "seed": s, "drawn": bool}``), or None; the
    ``dgm-eval`` protocol replays its random stream from it (:mod:`workbench.metrics.protocols`).
    """

    features: Any
    logits: Any = None
    labels: np.ndarray | None = None
    sample: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class MetricSpec:
    """How to compute one metric from a :class:`FeatureSet` bundle.

    ``needs`` lists the inputs beyond the generated set: ``"ref"``, ``"train"``, ``"test"``,
    ``"logits"``; ``uses`` the optional inputs that change how it is computed when present
    (``copy_rate`` is calibrated on ``"test"``). ``fields`` maps each output column to True when
    higher is better, False when lower is better, None when neither (e.g. C_T, where 0 is ideal).
    ``pairwise`` metrics are functions of (reference, generated) and can be bootstrapped.
    ``cosine`` metrics are undefined on all-zero rows (e.g. a black image with the ``pixels``
    extractor): such rows of the generated set are left out of them, with a warning naming the rows.
    """

    name: str
    description: str
    needs: frozenset[str]
    fields: Mapping[str, bool | None]
    compute: Callable[..., dict[str, float]]
    default: bool = True
    pairwise: bool = True
    cosine: bool = False
    uses: frozenset[str] = frozenset()


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


def _copy_rate(sets: Mapping[str, FeatureSet | None], seed: int) -> dict[str, float]:
    train, gen, test = sets["train"], sets["gen"], sets["test"]
    if train is None or gen is None:  # not reached through evaluate: "train" is in the spec's needs
        raise ValueError("copy_rate needs the training set (train=) and a generated set")
    result = copy_rate(train.features, gen.features, None if test is None else test.features)
    return {"copy_rate": result.rate}


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in [
        MetricSpec("fd", "Frechet distance (FID on Inception pool3)", frozenset({"ref"}), {"fd": False}, _fd),
        MetricSpec(
            "fd_inf",
            "FD extrapolated to infinite samples (Chong & Forsyth 2020)",
            frozenset({"ref"}),
            {"fd_inf": False},
            _fd_inf,
            default=False,
        ),
        MetricSpec(
            "kd",
            "kernel distance / KID, mean and std over subsets",
            frozenset({"ref"}),
            {"kd": False, "kd_std": None},
            _kd,
        ),
        MetricSpec(
            "cmmd",
            "CMMD: Gaussian-RBF MMD (Jayasumana et al. 2024)",
            frozenset({"ref"}),
            {"cmmd": False},
            _cmmd,
            default=False,
        ),
        MetricSpec(
            "prdc",
            "precision, recall, density, coverage (Naeem et al. 2020), k=5",
            frozenset({"ref"}),
            {"precision": True, "recall": True, "density": True, "coverage": True},
            _prdc,
        ),
        MetricSpec(
            "pr",
            "improved precision and recall (Kynkaanniemi et al. 2019), k=3",
            frozenset({"ref"}),
            {"ipr_precision": True, "ipr_recall": True},
            _ipr,
            default=False,
        ),
        MetricSpec("swd", "sliced Wasserstein distance", frozenset({"ref"}), {"swd": False}, _swd, default=False),
        MetricSpec(
            "vendi", "Vendi score of the generated set (cosine, q=1)", frozenset(), {"vendi": True}, _vendi, cosine=True
        ),
        MetricSpec(
            "is",
            "Inception Score from classifier logits (10 splits)",
            frozenset({"logits"}),
            {"is": True, "is_std": None},
            lambda s, seed: dict(zip(("is", "is_std"), inception_score(s["gen"].logits))),
            pairwise=False,
        ),
        MetricSpec(
            "authpct",
            "AuthPct: % of generated samples judged authentic (Alaa et al. 2022)",
            frozenset({"train"}),
            {"authpct": True},
            lambda s, seed: {"authpct": authenticity(s["train"].features, s["gen"].features).auth_pct},
            pairwise=False,
        ),
        MetricSpec(
            "copy_rate",
            "share of generated samples that are likely copies of training samples",
            frozenset({"train"}),
            {"copy_rate": False},
            _copy_rate,
            pairwise=False,
            uses=frozenset({"test"}),
        ),
        MetricSpec(
            "ct",
            "data-copying test C_T (Meehan et al. 2020); < 0 means copying",
            frozenset({"train", "test"}),
            {"ct": None},
            lambda s, seed: {"ct": ct_score(s["train"].features, s["test"].features, s["gen"].features, seed=seed).c_t},
            pairwise=False,
        ),
        MetricSpec(
            "mifid",
            "memorization-informed FID (Bai et al. 2021)",
            frozenset({"train"}),
            {"mifid": False},
            lambda s, seed: {"mifid": mifid(s["train"].features, s["gen"].features).mifid},
            default=False,
            pairwise=False,
        ),
        MetricSpec(
            "fld",
            "feature likelihood divergence (Jiralerspong et al. 2023)",
            frozenset({"train", "test"}),
            {"fld": False},
            lambda s, seed: {"fld": fld(s["train"].features, s["test"].features, s["gen"].features, seed=seed).fld},
            default=False,
            pairwise=False,
        ),
    ]
}

_PAIRWISE_FNS: dict[str, Callable[..., dict[str, float]]] = {
    "fd": _fd,
    "fd_inf": _fd_inf,
    "kd": _kd,
    "cmmd": _cmmd,
    "prdc": _prdc,
    "pr": _ipr,
    "swd": _swd,
    "vendi": _vendi,
}


# Ranges of bounded values; intervals are clipped to them.
_BOUNDS = {
    **dict.fromkeys(("precision", "recall", "coverage", "ipr_precision", "ipr_recall", "copy_rate"), (0.0, 1.0)),
    **dict.fromkeys(("fd", "cmmd", "swd", "density"), (0.0, math.inf)),
    "vendi": (1.0, math.inf),
}


def metric_of_column(column: str) -> str:
    """The metric (a key of :data:`METRICS`) that produces result column ``column``
    (e.g. ``"density"`` -> ``"prdc"``); ``column`` itself when no metric does."""
    for spec in METRICS.values():
        if column in spec.fields:
            return spec.name
    return column


def higher_is_better(column: str) -> bool | None:
    """Orientation of a result column: True, False, or None (no better direction)."""
    for spec in METRICS.values():
        if column in spec.fields:
            return spec.fields[column]
    return None


# Other names of the metric keys: the functions' names and the usual acronyms, so that
# ``-m sliced_wasserstein`` or ``-m fid,kid`` mean what a user expects.
METRIC_ALIASES: dict[str, str] = {
    "fid": "fd",
    "frechet": "fd",
    "fd_infinity": "fd_inf",
    "kid": "kd",
    "kernel_distance": "kd",
    "precision_recall": "pr",
    "ipr": "pr",
    "sliced_wasserstein": "swd",
    "inception_score": "is",
    "authenticity": "authpct",
    "ct_score": "ct",
}


# What a missing input is called in an error (an explicit metric name) and in a skip reason.
_NEEDS_ERROR = {
    "train": "--train (training set features)",
    "test": "--test (held-out real features)",
    "logits": "classifier logits (an extractor with logits, e.g. inception)",
    "ref": "--ref",
}
_NEEDS_SKIP = {
    "train": "a training set (--train)",
    "test": "a held-out test set (--test)",
    "logits": "classifier logits (an extractor with logits, e.g. inception)",
    "ref": "a reference set (--ref)",
}
_INPUT_ORDER = ("ref", "logits", "train", "test")


def _split_names(names: str | Sequence[str]) -> list[str]:
    if isinstance(names, str):
        return [n.strip() for n in names.split(",") if n.strip()]
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"metric names must be strings; got {list(names)!r}")
    return [n.strip() for n in names if n.strip()]


@dataclass(frozen=True)
class MetricSelection:
    """The metrics a request resolves to, and those it leaves out (see :func:`select_metrics`).

    Attributes:
        request: the request as given, comma-joined (e.g. ``"all"``, ``"default,is"``).
        names: metric keys of :data:`METRICS` to compute, in order, each once.
        skipped: ``{metric: reason}`` of every metric left out for a missing input, e.g.
            ``{"is": "needs classifier logits (this extractor has none)"}``: those of ``"all"``,
            the default ones of ``"default"`` and, with ``missing="skip"``, explicit names. Metrics
            that are simply not default are not listed.
        quiet: the skipped metrics that only ``"default"`` asked for: ``"default"`` adapts to the
            inputs given (no logits, no training set), so they are recorded, not warned about.
    """

    request: str
    names: list[str]
    skipped: dict[str, str]
    quiet: frozenset[str] = frozenset()

    @property
    def warning(self) -> str | None:
        """One line naming every skipped metric and why, metrics of one reason together, e.g.
        ``"all: skipped is: needs classifier logits (this extractor has none); ct, fld: need a
        held-out test set (--test)"``; None when nothing was skipped."""
        said = {m: r for m, r in self.skipped.items() if m not in self.quiet}
        if not said:
            return None
        groups: dict[str, list[str]] = {}
        for metric, reason in said.items():
            groups.setdefault(reason.removeprefix("needs "), []).append(metric)
        parts = [
            f"{', '.join(ms)}: {'needs' if len(ms) == 1 else 'need'} {requirement}"
            for requirement, ms in groups.items()
        ]
        return f"{self.request}: skipped " + "; ".join(parts)


def select_metrics(
    names: str | Sequence[str],
    available: Collection[str],
    *,
    missing: Literal["raise", "skip"] = "raise",
    inputs: Mapping[str, str] | None = None,
) -> MetricSelection:
    """Resolve ``"default"``, ``"all"`` or names to metric keys, and say what is left out and why.

    ``available`` holds the optional inputs present (``"ref"``, ``"train"``, ``"test"``,
    ``"logits"``). ``"default"`` holds the metrics marked default in :data:`METRICS`, ``"all"``
    every metric; both keep those whose inputs are present and list the others in
    :attr:`MetricSelection.skipped` with the missing inputs (``"default"`` does not list metrics
    that are not default anyway). An explicit name whose inputs are missing raises with
    ``missing="raise"`` (the default) and is skipped with its reason with ``missing="skip"``.
    "default" and "all" may be combined with names (``"default,cmmd"``); repeated names are merged,
    keeping the first position. The names of :data:`METRIC_ALIASES` stand for their keys.

    Args:
        names: a comma string or a sequence of names.
        available: the inputs present.
        missing: ``"raise"`` or ``"skip"``, for explicit names whose inputs are missing.
        inputs: better words for a missing input in skip reasons, e.g. ``{"logits": "classifier
            logits (this extractor has none)"}`` (the default words name the option to give).

    Raises:
        ValueError: no name, an unknown name, a bad ``missing``, or (``missing="raise"``) an
            explicit metric whose inputs are missing.
        TypeError: ``names`` is neither a string nor a sequence of strings.
    """
    if missing not in ("raise", "skip"):
        raise ValueError(f"missing must be 'raise' or 'skip'; got {missing!r}")
    raw = _split_names(names)
    items = [METRIC_ALIASES.get(n.lower(), n) for n in raw]
    if not items:
        raise ValueError(f"no metric named; choose from {', '.join(METRICS)}, 'default' or 'all'")
    unknown = [n for n in items if n not in METRICS and n not in ("default", "all")]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}, 'default' or 'all'")
    words = {**_NEEDS_SKIP, **(inputs or {})}
    have = set(available)

    def reason(metric: str) -> str:
        lacking = [k for k in _INPUT_ORDER if k in METRICS[metric].needs - have]
        return "needs " + " and ".join(words[k] for k in lacking)

    chosen: list[str] = []
    skipped: dict[str, str] = {}
    announced: set[str] = set()  # skipped metrics that "all" or an explicit name asked for
    for n in items:
        if n in ("default", "all"):
            for m, spec in METRICS.items():
                if n == "all" or spec.default:
                    if spec.needs <= have:
                        chosen.append(m)
                    else:
                        skipped.setdefault(m, reason(m))
                        if n == "all":
                            announced.add(m)
            continue
        lacking = METRICS[n].needs - have
        if not lacking:
            chosen.append(n)
        elif missing == "raise":
            raise ValueError(f"metric {n!r} needs " + " and ".join(_NEEDS_ERROR[m] for m in sorted(lacking)))
        else:
            skipped.setdefault(n, reason(n))
            announced.add(n)
    order = list(METRICS)
    return MetricSelection(
        request=",".join(raw),
        names=list(dict.fromkeys(chosen)),
        skipped=dict(sorted(skipped.items(), key=lambda kv: order.index(kv[0]))),
        quiet=frozenset(skipped) - announced,
    )


def resolve_metrics(names: str | Sequence[str], available: set[str]) -> list[str]:
    """Metric names from ``"default"``, ``"all"`` or a list/comma string; checks they exist.

    ``available`` holds the optional inputs present (``"ref"``, ``"train"``, ``"test"``,
    ``"logits"``); "default" and "all" keep only the metrics whose inputs are present, an
    explicit name whose inputs are missing is an error. "default" and "all" may be combined with
    names (``"default,cmmd"``); repeated names are merged, keeping the first position, so every
    metric is computed once (``"fd,fd"`` gives one ``fd`` column). The names of
    :data:`METRIC_ALIASES` (``"sliced_wasserstein"``, ``"fid"``, ``"kid"``, ...) stand for their keys.
    What is left out and why: :func:`select_metrics`.

    Raises:
        ValueError: no name, an unknown name, or an explicit metric whose inputs are missing.
        TypeError: ``names`` is neither a string nor a sequence of strings.
    """
    return select_metrics(names, available).names


_MENU_NEEDS = {"ref": "--ref", "train": "--train", "test": "--test", "logits": "classifier logits"}


def _needs_text(spec: MetricSpec) -> str:
    needs = [_MENU_NEEDS[k] for k in _INPUT_ORDER if k in spec.needs and k != "ref"]
    text = f"needs {' and '.join(needs)}" if needs else ""
    uses = [_MENU_NEEDS[k] for k in _INPUT_ORDER if k in spec.uses]
    if uses:
        text += f"; uses {' and '.join(uses)} when given"
    return text


def metric_menu_text() -> str:
    """A short text for ``--help``: every metric name (``*`` marks those in ``default``), what it
    needs beyond ``--ref`` and ``--gen``, and what ``all`` adds.

    Example:
        >>> print(metric_menu_text().splitlines()[1])
          fd         *  Frechet distance (FID on Inception pool3)
    """
    width = max(len(n) for n in METRICS)
    lines = ["metrics (-m, a comma list; 'default' and 'all' combine with names, e.g. default,cmmd):"]
    for name, spec in METRICS.items():
        needs = _needs_text(spec)
        lines.append(
            f"  {name:<{width}}  {'*' if spec.default else ' '}  {spec.description}" + (f" [{needs}]" if needs else "")
        )
    extra = [
        name + (f" ({_needs_text(spec)})" if _needs_text(spec) else "")
        for name, spec in METRICS.items()
        if not spec.default
    ]
    aliases = ", ".join(f"{a} = {k}" for a, k in METRIC_ALIASES.items() if a in ("fid", "kid", "ipr"))
    lines += [
        "* = in 'default'; 'all' adds " + ", ".join(extra) + ".",
        "A metric whose inputs are missing is left out of 'default' and 'all' (the JSON's info.skipped says why; "
        "with 'all' or a named metric, a warning line too).",
        f"Other names: {aliases}, and each function's name (e.g. sliced_wasserstein).",
    ]
    return "\n".join(lines)


@dataclass
class MetricReport:
    """Metric values for several generated sets: one row per set, one column per value.

    Attributes:
        values: DataFrame indexed by generated-set name (NaN where a metric failed).
        low, high: bootstrap percentile interval bounds (same shape; NaN where not bootstrapped).
        std: bootstrap standard deviations (NaN where not bootstrapped).
        warnings: sample-size and provenance warnings collected while computing.
        info: provenance (extractor description, pretrained flag, sizes, settings).
        seconds: compute time per metric name.
        errors: ``{(generated set, metric name): message}`` for every metric that failed for a set
            (``"ValueError: ..."``; the metric's columns are NaN there), or whose bootstrap failed
            (``"bootstrap failed: ..."``; the value stands, without interval). Metric names are keys
            of :data:`METRICS` (``"prdc"`` covers precision, recall, density and coverage); use
            :meth:`error_for` to look one up by column.
    """

    values: pd.DataFrame
    low: pd.DataFrame
    high: pd.DataFrame
    std: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    errors: dict[tuple[str, str], str] = field(default_factory=dict)

    def error_for(self, model: str, column: str) -> str | None:
        """The error message of ``column`` (a result column or a metric name) for ``model``, or None.

        The metric name ``"*"`` stands for every metric of that set (a report that could not be
        computed at all, see :func:`failed_report`)."""
        return self.errors.get((str(model), metric_of_column(column))) or self.errors.get((str(model), "*"))

    @property
    def computed(self) -> bool:
        """True when at least one value of the table was computed (is not NaN)."""
        return bool(self.values.notna().to_numpy().any())

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
        """``{"info", "warnings", "errors", "rows", "higher_is_better"}``; each row maps every column
        to ``{"value"}`` (None where not computed), plus ``low``/``high``/``std`` with intervals and
        ``error`` (the message) where that metric failed for that set. ``errors`` lists
        ``{"model", "metric", "error"}``."""
        rows = []
        for name in self.values.index:
            row: dict[str, Any] = {"model": name}
            for col in self.values.columns:
                entry: dict[str, Any] = {"value": _num(self.values.at[name, col])}
                if not math.isnan(self.low.at[name, col]):
                    entry.update(
                        low=_num(self.low.at[name, col]),
                        high=_num(self.high.at[name, col]),
                        std=_num(self.std.at[name, col]),
                    )
                err = self.error_for(name, col)
                if err is not None:
                    entry["error"] = err
                row[col] = entry
            rows.append(row)
        errors = [{"model": m, "metric": k, "error": e} for (m, k), e in self.errors.items()]
        return {
            "info": self.info,
            "warnings": self.warnings,
            "errors": errors,
            "rows": rows,
            "higher_is_better": {c: higher_is_better(c) for c in self.values.columns},
        }

    def _error_numbers(self) -> dict[tuple[str, str], int]:
        return {key: i for i, key in enumerate(self.errors, start=1)}

    def _error_key(self, name: str, col: str) -> tuple[str, str]:
        key = (str(name), metric_of_column(col))
        return key if key in self.errors or (str(name), "*") not in self.errors else (str(name), "*")

    def _cell_text(self, name: str, col: str, digits: int, numbers: dict[tuple[str, str], int]) -> str:
        v = self.values.at[name, col]
        key = self._error_key(name, col)
        if key in numbers and math.isnan(v):
            return f"ERROR({numbers[key]})"
        text = _fmt(v, digits)
        if not math.isnan(self.low.at[name, col]):
            text += f" [{_fmt(self.low.at[name, col], digits)}, {_fmt(self.high.at[name, col], digits)}]"
        if key in numbers:
            text += f" (!{numbers[key]})"
        return text

    def format_table(self, digits: int = 4) -> str:
        """A plain-text table; intervals shown as ``value [low, high]``; a failed metric as
        ``ERROR(n)`` and a value whose bootstrap failed as ``value (!n)``, ``n`` numbering the
        messages of :meth:`format_errors`."""
        numbers = self._error_numbers()
        cells = {
            col: [self._cell_text(name, col, digits, numbers) for name in self.values.index]
            for col in self.values.columns
        }
        headers = ["model", *self.values.columns]
        columns = [[str(n) for n in self.values.index], *cells.values()]
        widths = [max(len(h), *(len(c) for c in col)) for h, col in zip(headers, columns)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
        lines.append("  ".join("-" * w for w in widths))
        for i in range(len(self.values.index)):
            lines.append("  ".join(col[i].ljust(w) for col, w in zip(columns, widths)).rstrip())
        return "\n".join(lines)

    def format_errors(self) -> list[str]:
        """One line per failed (set, metric): ``error (n) in <metric> for <set>: <message>``."""
        return [
            f"error ({i}) in {'every metric' if metric == '*' else metric} for {model}: {message}"
            for i, ((model, metric), message) in enumerate(self.errors.items(), start=1)
        ]

    def copiers(self) -> dict[str, float]:
        """``{set: copy_rate}`` of the generated sets flagged as likely copiers of the training set
        (a calibrated copy rate above :data:`~workbench.metrics.copy_rate.COPIER_RATE`; see
        :func:`~workbench.metrics.copy_rate.likely_copiers`). Empty without a ``copy_rate`` column."""
        if "copy_rate" not in self.values.columns:
            return {}
        return likely_copiers(self.values["copy_rate"].to_dict(), str(self.info.get("copy_rate_criterion", "")))

    def format_copiers(self) -> list[str]:
        """One line per likely copier: whatever its other ranks, most of what sets it apart is copying."""
        return [
            f"likely copier: {name}: {100 * rate:.1f}% of its samples are closer to a training image than 99% of held-out "
            "real images are (likely copies of the training set; see the memorization views)"
            for name, rate in self.copiers().items()
        ]

    def __str__(self) -> str:
        notes = [f"warning: {w}" for w in self.warnings]
        name = self.info.get("protocol")
        if name and name != "workbench":  # the workbench's own protocol goes without saying
            tool = PROTOCOLS[name].tool if name in PROTOCOLS else str(name)
            notes.insert(0, f"protocol: {name} ({tool}'s subsets, seeds and reductions)")
        return "\n".join([self.format_table(), *self.format_copiers(), *self.format_errors(), *notes])

    def _repr_html_(self) -> str:
        numbers = self._error_numbers()
        frame = self.to_frame()
        shown = pd.DataFrame("", index=frame.index, columns=frame.columns, dtype=object)
        for name in frame.index:
            for col in frame.columns:
                v = frame.at[name, col]
                key = self._error_key(name, col)
                if col not in self.values.columns:  # an interval bound
                    shown.at[name, col] = "" if math.isnan(v) else f"{v:.4g}"
                elif math.isnan(v):
                    shown.at[name, col] = f"ERROR({numbers[key]})" if key in numbers else ""
                else:
                    shown.at[name, col] = f"{v:.4g}" + (f" (!{numbers[key]})" if key in numbers else "")
        parts = [shown.to_html()]
        parts += [f"<p style='color:#b00020'><b>error:</b> {html.escape(line)}</p>" for line in self.format_errors()]
        parts += [f"<p><b>warning:</b> {html.escape(w)}</p>" for w in self.warnings]
        return "\n".join(parts)


def failed_report(
    models: Sequence[str], error: BaseException | str, info: Mapping[str, Any] | None = None
) -> MetricReport:
    """A report of ``models`` whose metrics could not be computed at all (e.g. incompatible caches):
    no columns, the message under ``errors[(model, "*")]`` for every model and in ``warnings``."""
    message = error if isinstance(error, str) else describe_error(error)
    index = [str(m) for m in models]
    values, low, high, std = (pd.DataFrame(index=index, columns=[], dtype=float) for _ in range(4))
    return MetricReport(
        values=values,
        low=low,
        high=high,
        std=std,
        warnings=[f"no metric could be computed: {message}"],
        info=dict(info or {}),
        errors={(m, "*"): message for m in index},
    )


def _num(v: Any) -> float | None:
    v = float(v)
    return None if math.isnan(v) else v


def _fmt(v: float, digits: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}g}"


def describe_error(exc: BaseException) -> str:
    """``"Type: message"`` of an exception; for an unexpected type (not ValueError/TypeError, i.e.
    probably a bug) the innermost source line is appended, to help report it."""
    text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    if not isinstance(exc, (ValueError, TypeError)) and exc.__traceback__ is not None:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        text += f" (at {frame.filename.rsplit('/workbench/', 1)[-1]}:{frame.lineno})"
    return text


def _as_set(x: Any) -> FeatureSet:
    return x if isinstance(x, FeatureSet) else FeatureSet(features=x)


def _without_zero_rows(features: Any, gen_name: str, metric_name: str) -> Any:
    """``features`` without its all-zero rows (warning naming them), for a cosine metric."""
    rows = np.asarray(features) if not hasattr(features, "shape") else features
    if getattr(rows, "ndim", 0) != 2:
        return features  # the metric's own validation reports the shape
    keep = nonzero_rows(rows, f"generated set {gen_name!r}", metric_name)
    return features if keep.size == rows.shape[0] else np.asarray(rows[keep])


@uses_free_threads
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
    progress: Progress = None,
    missing: Literal["raise", "skip"] = "raise",
    protocol: str | Protocol | None = None,
) -> MetricReport:
    """Compute ``metrics`` for every generated set against the reference (and train/test) features.

    Every (metric, generated set) cell is computed on its own: when one raises (an input the
    metric cannot use, a bug), its message goes to :attr:`MetricReport.errors` (``"Type:
    message"``), its columns stay NaN and every other cell is still computed; a failed bootstrap
    likewise leaves the value without interval and an error. ``KeyboardInterrupt`` is not caught.
    All-zero rows of a generated set are left out of cosine metrics (``vendi``) with a warning
    naming them (the other metrics use every row).

    Args:
        ref: reference (real) features ``N x D`` or a :class:`FeatureSet`.
        generated: ``{name: features or FeatureSet}`` — one row of the report each.
        train: training-set features, for memorization metrics (``authpct``, ``copy_rate``, ``ct``,
            ``mifid``, ``fld``).
        test: held-out real features (not used in training), for ``ct`` and ``fld``, and to
            calibrate ``copy_rate`` (without it ``copy_rate`` uses the uncalibrated ratio
            criterion, with a warning).
        metrics: ``"default"``, ``"all"``, or names from :data:`METRICS` (list or comma string,
            may include "default"/"all"; repeats are merged, see :func:`select_metrics`). The
            metrics "default" and "all" leave out for missing inputs are listed with their
            reasons in ``info["skipped"]`` and in one warning line.
        bootstrap: number of bootstrap replicates for confidence intervals of pairwise metrics
            (0 = none). Metrics that need the training set are not bootstrapped. The interval is
            ``value +- z * std_boot`` (normal bootstrap interval centred on the full-data value):
            resampling with replacement duplicates rows, which shifts FD upwards and shrinks k-NN
            radii, so a percentile interval can exclude the value itself.
        seed: seed of every random choice (subsets, projections, bootstrap).
        ci: confidence level of the intervals.
        progress: the :mod:`workbench.progress` contract: True for a bar over the (metric, set)
            cells, or a callable receiving one :class:`~workbench.progress.ProgressEvent` as each
            cell begins (``done`` cells begun of ``total``; ``str(event)`` is ``"<metric> · <set>"``,
            so ``progress=print`` lists them).
        missing: what to do with an explicitly named metric whose inputs are missing (e.g.
            ``"default,is"`` without logits): ``"raise"`` (default) a ValueError, or ``"skip"`` it,
            with its reason in ``info["skipped"]`` and the warning line.
        protocol: ``"workbench"`` (default) or a reference tool's preset (``"pytorch-fid"``,
            ``"clean-fid"``, ``"torch-fidelity"``, ``"dgm-eval"``, see :mod:`workbench.protocols`):
            ``"default"`` then means the metrics that tool computes, and KD, PRDC, Vendi and IS
            use its subsets, random generators and reductions (:mod:`workbench.metrics.protocols`);
            other metrics are the workbench's, with a warning naming them. ``seed`` is then not
            used by those metrics (each tool has its own), and ``bootstrap`` must be 0.

    Returns:
        :class:`MetricReport`. ``info`` holds ``"metrics"`` (exactly the metric names computed),
        ``"skipped"`` (``{metric: reason}``, e.g. ``{"is": "needs classifier logits (this
        extractor has none)"}``), ``"copy_rate_criterion"`` when ``copy_rate`` is computed (e.g.
        ``"distance (calibrated on 300 test images, q=0.01)"`` or ``"ratio (uncalibrated: no test
        set)"``), the set sizes and the settings. Warnings come once per cause: one line per
        message naming every metric and set it applies to (the Fréchet family's singular
        covariances: one line naming every set's size).

    Raises:
        ValueError: no generated set, unknown metric names, a metric whose inputs are missing
            (``missing="raise"``), nothing left to compute (``missing="skip"``), a bad
            ``missing``, feature sets of different dimensions (different extractors), or a bad
            ``bootstrap`` count (mistakes in the call, not in the data).
    """
    if not generated:
        raise ValueError("generated must name at least one generated feature set")
    proto = resolve_protocol(protocol)
    if not proto.is_default:
        if bootstrap:
            raise ValueError(
                f"--protocol {proto.name} reproduces {proto.tool}, which reports no bootstrap intervals; "
                "use bootstrap=0 or --protocol workbench"
            )
        metrics = protocol_request(proto, metrics)
    ref_set = _as_set(ref)
    gens = {str(k): _as_set(v) for k, v in generated.items()}
    train_set = _as_set(train) if train is not None else None
    test_set = _as_set(test) if test is not None else None
    available = {"ref"}
    if train_set is not None:
        available.add("train")
    if test_set is not None:
        available.add("test")
    without_logits = [k for k, g in gens.items() if g.logits is None]
    inputs: dict[str, str] = {}
    if not without_logits:
        available.add("logits")
    elif len(without_logits) == len(gens):
        inputs["logits"] = "classifier logits (this extractor has none)"
    else:
        inputs["logits"] = f"classifier logits of every generated set ({', '.join(without_logits)} have none)"
    selection = select_metrics(metrics, available, missing=missing, inputs=inputs)
    names = selection.names
    if not names:
        raise ValueError(f"no metric left to compute ({selection.warning})")
    _check_dimensions(ref_set, gens, train_set, test_set)
    if bootstrap and bootstrap < 2:
        raise ValueError(f"bootstrap must be 0 (off) or at least 2 replicates; got {bootstrap}")
    draws = None
    if proto.kd_sampling == "dgm-eval" or proto.prdc_subset is not None:
        draws = dgm_eval_draws(
            int(_length(ref_set.features) or 0),
            {k: int(_length(g.features) or 0) for k, g in gens.items()},
            metrics=names,
            seed=int(proto.kd_seed if proto.kd_seed is not None else 0),
            kd_subsets=proto.kd_subsets,
            kd_subset_size=proto.kd_subset_size,
            prdc_subset=int(proto.prdc_subset or 10_000),
            samples={
                "ref": ref_set.sample,
                **({"test": test_set.sample} if test_set is not None else {}),
                **{k: g.sample for k, g in gens.items()},
            },
            n_test=_length(test_set.features) if test_set is not None else None,
            inception_pass=True,
        )
    own_way = protocol_metrics(proto, draws)

    z = float(scipy.stats.norm.ppf(0.5 + ci / 2))
    columns = [c for n in names for c in METRICS[n].fields]
    shape = dict(index=list(gens), columns=columns, dtype=float)
    values, low, high, std = (pd.DataFrame(math.nan, **shape) for _ in range(4))
    notes = _Notes()  # one line per cause, naming every metric and generated set it applies to
    errors: dict[tuple[str, str], str] = {}
    seconds: dict[str, float] = {}
    reporter = ProgressReporter(progress, "metrics", len(names) * len(gens), unit="cell")
    for metric_name in names:
        spec = METRICS[metric_name]
        t0 = time.perf_counter()
        for gen_name, gen in gens.items():
            reporter.advance(1, f"{metric_name} · {gen_name}")
            result: dict[str, float] | None = None
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", SampleSizeWarning)
                warnings.simplefilter("always", ExcludedRowsWarning)
                warnings.simplefilter("always", UncalibratedCopyRateWarning)
                try:
                    if metric_name in own_way:  # as the protocol's tool computes it
                        bundle = {"ref": ref_set, "gen": gen, "train": train_set, "test": test_set}
                        result = own_way[metric_name](bundle, gen_name)
                    else:
                        if spec.cosine:
                            gen = FeatureSet(
                                _without_zero_rows(gen.features, gen_name, metric_name), gen.logits, gen.labels
                            )
                        if spec.pairwise:
                            fn = _two_sample(_PAIRWISE_FNS[metric_name])
                            result = fn(ref_set.features, gen.features, seed=seed)
                        else:
                            bundle = {"ref": ref_set, "gen": gen, "train": train_set, "test": test_set}
                            result = spec.compute(bundle, seed)
                    result = {col: float(result[col]) for col in spec.fields}
                except Exception as exc:  # one cell fails alone; KeyboardInterrupt is not an Exception
                    errors[(gen_name, metric_name)] = describe_error(exc)
                    result = None
                if result is not None and bootstrap and spec.pairwise:
                    try:
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
                    except Exception as exc:
                        for frame in (low, high, std):
                            frame.loc[gen_name, list(spec.fields)] = math.nan
                        errors[(gen_name, metric_name)] = "bootstrap failed: " + describe_error(exc)
            for w in caught:
                notes.add(metric_name, gen_name, w.message)
            for col, v in (result or {}).items():
                values.at[gen_name, col] = v
        seconds[metric_name] = time.perf_counter() - t0
    reporter.close()
    info: dict[str, Any] = {
        "metrics": names,
        "skipped": dict(selection.skipped),
        "n_ref": _length(ref_set.features),
        "n_generated": {k: _length(g.features) for k, g in gens.items()},
        "n_train": _length(train_set.features) if train_set is not None else None,
        "n_test": _length(test_set.features) if test_set is not None else None,
        "bootstrap": bootstrap,
        "ci": ci if bootstrap else None,
        "seed": seed,
        "protocol": proto.name,
    }
    if draws:
        info["protocol_stream"] = {k: d.seeded_by for k, d in draws.items()}
    if "copy_rate" in names:
        info["copy_rate_criterion"] = criterion_description(
            _length(test_set.features) if test_set is not None else None, DEFAULT_QUANTILE
        )
    protocol_lines = [foreign_metrics_warning(proto, names), unseeded_warning(proto, draws, names) if draws else None]
    lines = ([selection.warning] if selection.warning else []) + [w for w in protocol_lines if w] + list(notes.lines())
    return MetricReport(
        values=values, low=low, high=high, std=std, warnings=lines, info=info, seconds=seconds, errors=errors
    )


class _Notes:
    """Warnings of the cells of a report, merged by cause: identical messages become one line
    naming every metric and generated set, and every :class:`SingularCovarianceWarning` of one
    feature dimension one line naming every set's size (``fd``, ``fd_inf`` and ``mifid`` alike)."""

    def __init__(self) -> None:
        self._where: dict[Hashable, dict[str, list[str]]] = {}  # cause -> {metric: [sets]}
        self._text: dict[Hashable, str] = {}
        self._sizes: dict[Hashable, tuple[int, dict[str, set[int]]]] = {}

    def add(self, metric: str, gen_name: str, message: Warning | str) -> None:
        key: Hashable
        if isinstance(message, SingularCovarianceWarning) and message.dim is not None and message.sizes:
            key = ("singular covariance", message.dim)
            _, sizes = self._sizes.setdefault(key, (message.dim, {}))
            for label, counts in message.sizes.items():
                sizes.setdefault(label, set()).update(counts)
        else:
            key = ("message", str(message))
            self._text[key] = str(message)
        sets = self._where.setdefault(key, {}).setdefault(metric, [])
        if gen_name not in sets:
            sets.append(gen_name)

    def lines(self) -> Iterator[str]:
        for key, where in self._where.items():
            if key in self._sizes:
                dim, sizes = self._sizes[key]
                text = singular_covariance_message(dim, {k: tuple(sorted(v, reverse=True)) for k, v in sizes.items()})
            else:
                text = self._text[key]
            set_lists = list(where.values())
            if all(sets == set_lists[0] for sets in set_lists):
                head = f"{', '.join(where)} ({', '.join(set_lists[0])})"
            else:
                head = ", ".join(f"{metric} ({', '.join(sets)})" for metric, sets in where.items())
            yield f"{head}: {text}"


def _check_dimensions(
    ref: FeatureSet, gens: Mapping[str, FeatureSet], train: FeatureSet | None, test: FeatureSet | None
) -> None:
    """Raise when two 2-D feature sets have different widths: sets of different extractors mixed
    up in the call (no metric could compare them). Other input problems are left to each metric."""
    roles = [("ref", ref), *((f"generated set {k!r}", g) for k, g in gens.items()), ("train", train), ("test", test)]
    first: tuple[str, int] | None = None
    for role, fs in roles:
        if fs is None:
            continue
        shape = np.shape(fs.features) if not hasattr(fs.features, "shape") else tuple(fs.features.shape)
        if len(shape) != 2:
            continue  # reported by the metrics' own validation, cell by cell
        if first is None:
            first = (role, int(shape[1]))
        elif int(shape[1]) != first[1]:
            raise ValueError(
                f"{first[0]} and {role} have different feature dimensions ({first[1]} vs {int(shape[1])}); "
                "were they made by the same extractor?"
            )


def _length(x: Any) -> int | None:
    try:
        return int(len(x))
    except TypeError:
        return None
