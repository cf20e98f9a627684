"""Class-conditional metrics: any metric evaluated on each class's real and generated samples.

A model can have a good overall FD while being poor on some classes (or the reverse, the paper of
Kynkäänniemi et al., ICLR 2023, shows overall FD is dominated by the class histogram).
:func:`per_class_metric` evaluates ``metric(real[real_labels == c], fake[fake_labels == c])``
for every class ``c``, with the sample counts, so per-class quality can be read apart from the
class proportions. Labels can be dataset labels, a conditional model's requested classes, or
classifier predictions (e.g. ``top_classes(cache.logits)[:, 0]`` or zero-shot labels).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.analysis.result import AnalysisResult
from workbench.cache.reader import EmbeddingCache
from workbench.metrics.results import MetricValue

DEFAULT_MIN_SAMPLES = 10


class PerClassMetric(AnalysisResult):
    """Result of :func:`per_class_metric`.

    Main table ``"classes"``: ``class, class_name, n_real, n_fake``, the metric's column(s)
    (``value`` for a scalar metric; ``value, std, ci_low, ci_high`` for a
    :class:`~workbench.metrics.results.MetricValue`; one column per key for a mapping) and
    ``note`` (why a class was skipped, or warnings the metric raised). With ``overall=True`` the
    last row (``class = -1``, ``class_name = "all classes"``) is the metric on all samples.

    Attributes:
        metric_name: the metric's name.
        values: ``{class: value}`` of the evaluated classes (the ``value`` column, or the first
            column of a mapping).
        skipped: ``{class: reason}``.
    """

    def __init__(
        self,
        tables: dict[str, pd.DataFrame],
        *,
        metric_name: str,
        values: dict[int, Any],
        skipped: dict[int, str],
        title: str,
        summary: str,
    ) -> None:
        super().__init__(tables, title=title, summary=summary, main="classes")
        self.metric_name = metric_name
        self.values = values
        self.skipped = skipped


def per_class_metric(
    metric: Callable[[Any, Any], Any],
    real: Any,
    fake: Any,
    real_labels: Any = None,
    fake_labels: Any = None,
    *,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    class_names: Sequence[str] | None = None,
    name: str | None = None,
    overall: bool = True,
    errors: str = "raise",
) -> PerClassMetric:
    """Evaluate ``metric(real_c, fake_c)`` on the samples of each class ``c``.

    Args:
        metric: any function ``(real_features, fake_features) -> result``, e.g.
            :func:`workbench.metrics.frechet.fd`; extra options via ``functools.partial``. The
            result may be a float, a :class:`~workbench.metrics.results.MetricValue`, or a
            mapping ``{name: float}`` (e.g. precision/recall/density/coverage).
        real, fake: ``N x D`` features (arrays / memmaps) or caches (their ``features``).
        real_labels, fake_labels: ``N`` integer labels; default the caches' labels. Samples
            labelled ``-1`` (unknown) are left out.
        min_samples: a class is skipped (value NaN, with a note) when it has fewer real or
            fewer generated samples than this. Default 10; a metric needs far more to be
            reliable (FD: more samples than dimensions), which it warns about itself.
        class_names: names of the label values (default: the real cache's class names, else
            ``"class <c>"``).
        name: the metric's name in titles (default: the function's ``__name__``).
        overall: add a row with the metric on all (labelled) samples.
        errors: ``"raise"`` (default) re-raises an error of the metric; ``"note"`` records it
            in the ``note`` column and goes on with the next class.

    Returns:
        :class:`PerClassMetric`; ``to_frame()`` has one row per class present on either side.

    Example::

        >>> import numpy as np
        >>> from workbench.metrics.frechet import fd
        >>> rng = np.random.default_rng(0)
        >>> real, fake = rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + [1.0, 0.0]
        >>> labels = np.repeat([0, 1, 2], 100)
        >>> res = per_class_metric(fd, real, fake, labels, labels, class_names=["a", "b", "c"])
        >>> res.to_frame()[["class_name", "n_real", "n_fake"]].values.tolist()
        [['a', 100, 100], ['b', 100, 100], ['c', 100, 100], ['all classes', 300, 300]]
        >>> bool(abs(res.values[0] - fd(real[:100], fake[:100])) < 1e-12)
        True
    """
    if not callable(metric):
        raise TypeError(f"metric must be a function (real, fake) -> value; got {type(metric).__name__}")
    if errors not in ("raise", "note"):
        raise ValueError(f"errors must be 'raise' or 'note'; got {errors!r}")
    if isinstance(min_samples, bool) or not isinstance(min_samples, (int, np.integer)) or min_samples < 1:
        raise ValueError(f"min_samples must be a positive integer; got {min_samples!r}")
    metric_name = str(
        name or getattr(metric, "__name__", None) or getattr(getattr(metric, "func", None), "__name__", "metric")
    )
    real_x, real_y = _features_and_labels(real, real_labels, "real")
    fake_x, fake_y = _features_and_labels(fake, fake_labels, "fake")
    if class_names is None:
        for src in (real, fake):
            if isinstance(src, EmbeddingCache) and src.class_names:
                class_names = src.class_names
                break
    classes = np.union1d(real_y[real_y >= 0], fake_y[fake_y >= 0]).astype(np.int64)
    if class_names is not None and classes.size and classes.max() >= len(class_names):
        raise ValueError(f"label {int(classes.max())} has no name: class_names has {len(class_names)} names")

    rows: list[dict[str, Any]] = []
    values: dict[int, Any] = {}
    skipped: dict[int, str] = {}
    jobs = [(int(c), real_y == c, fake_y == c) for c in classes]
    if overall:
        jobs.append((-1, real_y >= 0, fake_y >= 0))
    for c, rmask, fmask in jobs:
        n_r, n_f = int(rmask.sum()), int(fmask.sum())
        label = "all classes" if c == -1 else (str(class_names[c]) if class_names is not None else f"class {c}")
        row: dict[str, Any] = {"class": c, "class_name": label, "n_real": n_r, "n_fake": n_f}
        if min(n_r, n_f) < min_samples:
            side = "real" if n_r < min_samples else "generated"
            reason = f"skipped: {min(n_r, n_f)} {side} samples < min_samples={min_samples}"
            skipped[c] = reason
            rows.append({**row, "note": reason})
            continue
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = metric(_rows(real_x, rmask), _rows(fake_x, fmask))
        except Exception as exc:
            if errors == "raise":
                raise
            rows.append({**row, "note": f"failed: {type(exc).__name__}: {exc}"})
            continue
        for w in caught:
            warnings.warn_explicit(f"{label}: {w.message}", w.category, w.filename, w.lineno)
        columns = _result_columns(result)
        values[c] = next(iter(columns.values()))
        note = "; ".join(dict.fromkeys(f"warning: {w.message}" for w in caught))
        rows.append({**row, **columns, "note": note})

    frame = pd.DataFrame(rows)
    metric_cols = [col for col in frame.columns if col not in ("class", "class_name", "n_real", "n_fake", "note")]
    frame = frame[["class", "class_name", "n_real", "n_fake", *metric_cols, "note"]]
    frame["note"] = frame["note"].fillna("")
    n_eval = sum(1 for c in values if c != -1)
    n_classes = len(classes)
    summary = (
        f"{metric_name} per class: {n_eval} of {n_classes} classes evaluated, "
        f"{sum(1 for c in skipped if c != -1)} skipped (< {min_samples} samples on a side); "
        f"{len(real_y)} real, {len(fake_y)} generated samples"
        + (
            f" ({int((real_y < 0).sum())} real, {int((fake_y < 0).sum())} generated unlabelled, left out)"
            if (real_y < 0).any() or (fake_y < 0).any()
            else ""
        )
    )
    return PerClassMetric(
        {"classes": frame},
        metric_name=metric_name,
        values=values,
        skipped=skipped,
        title=f"{metric_name} per class",
        summary=summary,
    )


def _features_and_labels(x: Any, labels: Any, name: str) -> tuple[Any, np.ndarray]:
    if isinstance(x, EmbeddingCache):
        feats = x.features
        if labels is None:
            labels = x.labels
            if labels is None:
                raise ValueError(
                    f"{name}: the cache {x.path.name} has no labels; pass {name}_labels "
                    "(e.g. classifier predictions or zero-shot labels)"
                )
    else:
        if hasattr(x, "detach") and hasattr(x, "cpu"):
            x = x.detach().cpu().numpy()
        feats = x if hasattr(x, "shape") else np.asarray(x)
        if labels is None:
            raise ValueError(f"{name}_labels is required when {name} is an array (one integer label per row)")
    if len(feats.shape) != 2:
        raise ValueError(f"{name} must be features of shape (N, D); got shape {tuple(feats.shape)}")
    lab = np.asarray(labels.detach().cpu().numpy() if hasattr(labels, "detach") else labels)
    if lab.ndim != 1 or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"{name}_labels must be a 1-D integer array; got shape {lab.shape}, dtype {lab.dtype}")
    if lab.shape[0] != feats.shape[0]:
        raise ValueError(f"{name}_labels has {lab.shape[0]} labels but {name} has {feats.shape[0]} rows")
    return feats, lab.astype(np.int64)


def _rows(x: Any, mask: np.ndarray) -> np.ndarray:
    return np.asarray(x[np.flatnonzero(mask)])


def _result_columns(result: Any) -> dict[str, float]:
    if isinstance(result, Mapping):
        return {str(k): _as_float(v, k) for k, v in result.items()}
    if isinstance(result, MetricValue):
        cols = {"value": float(result.value)}
        std = getattr(result, "std", None)
        if std is not None:
            cols["std"] = float(std)
        if result.ci is not None:
            cols["ci_low"], cols["ci_high"] = (float(v) for v in result.ci)
        return cols
    return {"value": _as_float(result, "value")}


def _as_float(v: Any, key: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"the metric returned {type(v).__name__} for {key!r}; it must return a number, a MetricValue, "
            "or a mapping of names to numbers"
        ) from exc
