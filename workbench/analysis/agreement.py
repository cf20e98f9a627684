"""How well does each metric rank models the way humans do?

:func:`human_agreement` compares per-model metric values with per-model human realism judgments
(by default the dgm-eval study of Stein et al., "Exposing flaws of generative model evaluation
metrics and their unfair treatment of diffusion models", NeurIPS 2023) by rank correlation, with
bootstrap confidence intervals over participants.

Human side. In the shipped study every participant judged 100 real and 100 generated images of
one model; their *error rate* ``err_rt`` is the share of wrong answers. A model whose images are
harder to tell from real ones gets a **higher** error rate, so *higher human error rate = more
realistic model*. A user study (:func:`workbench.analysis.human_data.load_user_study`) gives a
``score`` with the same orientation (higher = judged more realistic); it takes the place of the
error rate everywhere below.

Orientation and agreement. A distance (FD, FD-infinity, KD, ...) is *lower* for better models, so
a distance that agrees with humans has a *negative* correlation with the human error rate; a
score (precision, density, FLS, ...) that agrees has a *positive* one. The ``agreement`` columns
are the correlation multiplied by +1 (higher is better) or -1 (lower is better):
``agreement = +1`` means the metric orders the models exactly as humans do, ``-1`` exactly
reversed, ``0`` unrelated. Orientation comes from ``higher_is_better`` or, by default, from the
metric's name (:func:`metric_orientation`). Memorization diagnostics (AuthPct, C_T, C_T modified,
FLS-POG) and unknown names have no orientation: their ``agreement`` is NaN and only the raw
correlation is reported. The published ``inception_fd_rank`` is used as a metric in its own
right: rank 1 = highest Inception-FD = worst model, so a higher rank is better.

On the shipped data (``human_agreement(load_published_metrics())``, Spearman agreement):
DINOv2-FD 0.97 / 0.84 / 0.98 / 0.38 and Inception-FD rank 0.96 / -0.15 / -0.17 / 0.47 on
CIFAR10 / ImageNet / LSUN / FFHQ: DINOv2-FD follows humans far better on ImageNet and LSUN (the
paper's finding), equally on CIFAR10, and not better on FFHQ.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from workbench.analysis.human_data import canonical_dataset, load_human_study
from workbench.analysis.result import AnalysisResult
from workbench.metrics.validation import check_seed

#: Columns of a metric table that are never treated as metrics.
NON_METRIC_COLUMNS: tuple[str, ...] = ("dataset", "model", "label", "human_error_rate", "human_error_sem")
METHODS: tuple[str, ...] = ("spearman", "kendall")
POOLED = "pooled"
MIN_MODELS = 3

_LOWER_IS_BETTER = frozenset(
    {
        "fd",
        "fid",
        "fd_inf",
        "fid_inf",
        "fd_infinity",
        "sfid",
        "kd",
        "kid",
        "mmd",
        "cmmd",
        "sw",
        "asw",
        "swd",
        "energy",
        "fd_dinov2",
        "fid_dinov2",
    }
)
_HIGHER_IS_BETTER = frozenset(
    {
        "precision",
        "recall",
        "density",
        "coverage",
        "fls",
        "is",
        "inception_score",
        "vendi",
        "vendi_score",
        "realism",
        "inception_fd_rank",
    }
)
# Memorization diagnostics: they measure copying of training data, not realism.
_NO_ORIENTATION = frozenset({"authpct", "ct", "ct_mod", "fls_pog"})


def metric_orientation(name: str) -> bool | None:
    """Default orientation of a metric from its column name: True (higher is better), False
    (lower is better) or None (unknown / not a quality measure).

    The lower-cased name is looked up as is, then with trailing ``_part`` segments removed
    (``fd_inf_dinov2`` -> ``fd_inf``), then with leading segments removed (``clip_precision`` ->
    ``precision``). Names containing a ``rank`` segment other than ``inception_fd_rank`` are
    unknown, because a rank's direction is a convention of whoever made it.
    """
    parts = name.strip().lower().split("_")
    whole = "_".join(parts)
    if "rank" in parts and whole not in _HIGHER_IS_BETTER:
        return None
    candidates = ["_".join(parts[:k]) for k in range(len(parts), 0, -1)]
    candidates += ["_".join(parts[k:]) for k in range(1, len(parts))]
    for candidate in candidates:
        if candidate in _NO_ORIENTATION:
            return None
        if candidate in _LOWER_IS_BETTER:
            return False
        if candidate in _HIGHER_IS_BETTER:
            return True
    return None


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho between ``x`` (shape ``(n,)``) and every row of ``y`` (shape ``(B, n)``).

    rho = Pearson correlation of the average ranks (ties share the mean rank), as
    ``scipy.stats.spearmanr``. Rows where either side is constant give NaN. Returns shape ``(B,)``.
    """
    rx = rankdata(x)
    ry = rankdata(y, axis=1)
    rx = rx - rx.mean()
    ry = ry - ry.mean(axis=1, keepdims=True)
    den = np.sqrt((rx**2).sum() * (ry**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ry @ rx) / den
    return np.where(den > 0, np.clip(rho, -1.0, 1.0), np.nan)


def kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b between ``x`` (shape ``(n,)``) and every row of ``y`` (shape ``(B, n)``).

    tau_b = sum_{i<j} s_x(i,j) s_y(i,j) / sqrt(#pairs untied in x * #pairs untied in y) with
    s(i,j) = sign(v_i - v_j) (Kendall 1945), the default of ``scipy.stats.kendalltau``. Rows
    where either side is constant give NaN. Returns shape ``(B,)``.
    """
    i, j = np.triu_indices(len(x), k=1)
    sx = np.sign(x[i] - x[j])
    sy = np.sign(y[:, i] - y[:, j])
    den = np.sqrt(np.abs(sx).sum() * np.abs(sy).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = (sy @ sx) / den
    return np.where(den > 0, np.clip(tau, -1.0, 1.0), np.nan)


_CORRELATIONS = {"spearman": spearman_rows, "kendall": kendall_rows}


class HumanAgreementResult(AnalysisResult):
    """Result of :func:`human_agreement`.

    Tables (``result.tables``; ``to_frame()`` returns ``correlations``):

    - ``correlations``: one row per (metric, dataset, method) with ``dataset = "pooled"`` rows
      for the mean over datasets. Columns: ``metric, dataset, method`` ("spearman"/"kendall"),
      ``n_models, n_datasets, correlation, ci_low, ci_high`` (correlation with the human error
      rate and its bootstrap percentile interval), ``higher_is_better`` (True/False/None),
      ``agreement, agreement_low, agreement_high`` (sign-corrected; NaN when orientation unknown).
    - ``human``: one row per model of the human data: ``dataset, model, n_participants,
      human_error_rate`` (mean over participants), ``human_error_se`` (sample std / sqrt(n)).
    - ``models``: the models found in both tables: the ``human`` columns joined with the metrics.
    - ``unmatched``: metric-table rows with no human data (``dataset, model``), ignored.
    """

    @property
    def correlations(self) -> pd.DataFrame:
        return self.tables["correlations"]

    @property
    def human(self) -> pd.DataFrame:
        return self.tables["human"]

    @property
    def models(self) -> pd.DataFrame:
        return self.tables["models"]

    @property
    def unmatched(self) -> pd.DataFrame:
        return self.tables["unmatched"]

    def agreement_matrix(self, method: str = "spearman", value: str = "agreement") -> pd.DataFrame:
        """Metric x dataset matrix of one column of ``correlations`` (``value``: "agreement",
        "correlation", "ci_low", ...) for one ``method``; datasets in analysis order, pooled last."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}; got {method!r}")
        table = self.correlations[self.correlations["method"] == method]
        if value not in table.columns:
            raise ValueError(f"value must be a column of correlations {list(table.columns)}; got {value!r}")
        matrix = table.pivot(index="metric", columns="dataset", values=value)
        return matrix.reindex(index=pd.unique(table["metric"]), columns=pd.unique(table["dataset"]))

    def display_frame(self) -> pd.DataFrame:
        """Spearman agreement with its CI per metric and dataset, as text ("0.84 [0.71, 0.93]");
        metrics of unknown orientation show their raw correlation, marked ``*``."""
        table = self.correlations[self.correlations["method"] == "spearman"]

        def cell(row: pd.Series) -> str:
            known = row["higher_is_better"] is not None
            v, lo, hi = (
                row[c]
                for c in (
                    ("agreement", "agreement_low", "agreement_high") if known else ("correlation", "ci_low", "ci_high")
                )
            )
            if not np.isfinite(v):
                return ""
            ci = f" [{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) else ""
            return f"{v:.2f}{ci}" + ("" if known else " *")

        text = table.assign(cell=table.apply(cell, axis=1))
        matrix = text.pivot(index="metric", columns="dataset", values="cell")
        return matrix.reindex(index=pd.unique(table["metric"]), columns=pd.unique(table["dataset"]))


def human_agreement(
    metric_table: pd.DataFrame,
    human_table: pd.DataFrame | None = None,
    *,
    dataset: str | Iterable[str] | None = None,
    n_boot: int = 1000,
    seed: int | np.random.Generator | None = 0,
    higher_is_better: Mapping[str, bool | None] | None = None,
    metrics: Iterable[str] | None = None,
    ci: float = 0.95,
) -> HumanAgreementResult:
    """Rank correlation between every metric and the human error rate, per dataset and pooled.

    For each dataset and metric, over the ``n`` models that have both a finite metric value and
    human data (at least 3, else NaN):

    - point estimate: Spearman's rho and Kendall's tau-b between the metric values and the
      per-model mean human error rate (means rounded to 12 decimals so that equal means tie);
    - confidence interval: ``n_boot`` bootstrap replicates; in each, the participants of every
      model are resampled with replacement (within the model), the per-model mean error is
      recomputed and so is the correlation; the interval is the ``(1-ci)/2`` and ``(1+ci)/2``
      percentiles of the replicates. Metric values are held fixed (they carry no participant
      noise). The same replicates serve every metric, so metrics can be compared pairwise.
      Resampled means are noisier than the full-sample means, which pulls a replicate's
      correlation toward 0: for a strong correlation the interval lies mostly on the weak side
      of the point estimate (it contains it, often near one end). Read it as the uncertainty
      due to the finite participant sample, not as a bias-corrected interval.
    - pooled (rows with ``dataset = "pooled"``, when there are at least 2 datasets): the
      unweighted mean of the per-dataset correlations over the datasets where the metric has
      one; its CI uses the same replicates (mean per replicate). Models are never ranked across
      datasets, since metric values are not comparable between datasets.

    ``agreement = correlation`` when higher is better, ``-correlation`` when lower is better
    (see the module docstring); ``agreement_low/high`` are the CI with the same sign.

    Args:
        metric_table: one row per model with columns ``dataset, model`` and one numeric column per
            metric (any other column except ``label``, ``human_error_rate``, ``human_error_sem``
            is a metric). ``dataset`` may be omitted when the analysis has one dataset.
            :func:`workbench.analysis.human_data.load_published_metrics` gives such a table.
        human_table: one row per participant with ``model`` and ``err_rt`` (the shipped study's
            error rate) or ``score`` (a user study, higher = more realistic), optional
            ``dataset`` and ``participant`` (rows of one participant are averaged first; without
            the column every row is one participant). Default: the shipped study
            (:func:`workbench.analysis.human_data.load_human_study`).
        dataset: restrict to one dataset or a list (aliases such as "imagenet" accepted).
        n_boot: number of bootstrap replicates (>= 0; 0 skips the CIs). Default 1000.
        seed: seed of the bootstrap (int, numpy Generator or None = 0).
        higher_is_better: ``{metric: True | False | None}`` overriding :func:`metric_orientation`.
        metrics: the metric columns to use, in this order (default: all metric columns).
        ci: confidence level of the intervals, in (0, 1). Default 0.95.

    Returns:
        :class:`HumanAgreementResult`.

    Raises:
        TypeError: a table is not a DataFrame.
        ValueError: missing columns, non-numeric metric column, duplicated (dataset, model),
            non-finite human values, no model in common, bad ``n_boot``/``ci``/keys.

    Example:
        >>> from workbench.analysis.human_data import load_published_metrics
        >>> from workbench.analysis.agreement import human_agreement
        >>> res = human_agreement(load_published_metrics(), n_boot=200)
        >>> m = res.agreement_matrix("spearman")
        >>> print(f'{m.loc["fd_dinov2", "imagenet256"]:.3f} {m.loc["inception_fd_rank", "imagenet256"]:.3f}')
        0.836 -0.145
    """
    if not isinstance(metric_table, pd.DataFrame):
        raise TypeError(f"metric_table must be a pandas DataFrame; got {type(metric_table).__name__}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"n_boot must be an integer >= 0 (number of bootstrap replicates); got {n_boot!r}")
    if not 0.0 < float(ci) < 1.0:
        raise ValueError(f"ci must be a confidence level in (0, 1), e.g. 0.95; got {ci!r}")
    rng = check_seed(seed)
    wanted = None if dataset is None else ([dataset] if isinstance(dataset, str) else list(dataset))
    if wanted is not None:
        wanted = list(dict.fromkeys(canonical_dataset(d, strict=False) for d in wanted))

    metric = _prepare_metric_table(metric_table, metrics)
    metric_cols = [c for c in metric.columns if c not in NON_METRIC_COLUMNS]
    orientation = _orientations(metric_cols, higher_is_better)

    if human_table is None:
        human_table = load_human_study(wanted)
    units = _participant_scores(human_table)
    metric, units = _align_datasets(metric, units, wanted)
    if wanted is not None:
        metric = metric[metric["dataset"].isin(wanted)]
        units = units[units["dataset"].isin(wanted)]
    if units.empty:
        raise ValueError(f"human_table has no rows for dataset(s) {wanted}")

    human, boot = _human_means(units, n_boot, rng)
    key_metric = list(zip(metric["dataset"], metric["model"]))
    known = set(zip(human["dataset"], human["model"]))
    matched_mask = np.array([k in known for k in key_metric], dtype=bool)
    unmatched = metric.loc[~matched_mask, ["dataset", "model"]].reset_index(drop=True)
    if not matched_mask.any():
        raise ValueError(
            "no (dataset, model) pair of metric_table has human data; check the model names "
            f"(metric_table: {sorted(set(metric['model']))[:8]}, human: {sorted(set(human['model']))[:8]}) "
            "and the dataset names"
        )
    models = human.merge(metric[matched_mask], on=["dataset", "model"], how="inner", validate="one_to_one")
    datasets = list(pd.unique(models["dataset"]))

    rows = []
    for name in metric_cols:
        per_ds_point: dict[str, dict[str, float]] = {m: {} for m in METHODS}
        per_ds_boot: dict[str, dict[str, np.ndarray]] = {m: {} for m in METHODS}
        n_total = 0
        for ds in datasets:
            part = models[(models["dataset"] == ds) & np.isfinite(models[name].to_numpy(dtype=float))]
            n = len(part)
            for method, corr in _CORRELATIONS.items():
                point, reps = np.nan, np.full(n_boot, np.nan)
                if n >= MIN_MODELS:
                    x = part[name].to_numpy(dtype=np.float64)
                    point = float(corr(x, part["human_error_rate"].to_numpy()[None, :])[0])
                    if n_boot:
                        reps = corr(x, np.stack([boot[(ds, m)] for m in part["model"]], axis=1))
                    if np.isfinite(point):
                        per_ds_point[method][ds] = point
                        per_ds_boot[method][ds] = reps
                rows.append(_row(name, ds, method, n, 1, point, reps, orientation[name], ci))
            n_total += n if n >= MIN_MODELS else 0
        if len(datasets) >= 2:
            for method in METHODS:
                used = list(per_ds_point[method])
                point = float(np.mean([per_ds_point[method][d] for d in used])) if used else np.nan
                reps = np.full(n_boot, np.nan)
                if used and n_boot:
                    stacked = np.stack([per_ds_boot[method][d] for d in used])
                    with warnings.catch_warnings():  # all-NaN replicates stay NaN
                        warnings.simplefilter("ignore", RuntimeWarning)
                        reps = np.nanmean(stacked, axis=0)
                rows.append(_row(name, POOLED, method, n_total, len(used), point, reps, orientation[name], ci))

    correlations = pd.DataFrame(rows)
    summary = (
        f"Rank correlation of {len(metric_cols)} metric(s) with the human error rate of {len(models)} models "
        f"({int(models['n_participants'].sum())} participants) on {', '.join(datasets)}; "
        f"{ci:.0%} CIs from {n_boot} participant bootstraps (seed {seed if not isinstance(seed, np.random.Generator) else 'Generator'}). "
        "Shown: Spearman agreement (+1 = same order as humans, -1 = reversed); * = orientation unknown, raw correlation."
        + (f" {len(unmatched)} metric row(s) without human data ignored." if len(unmatched) else "")
    )
    return HumanAgreementResult(
        {"correlations": correlations, "human": human, "models": models, "unmatched": unmatched},
        title="Agreement of metrics with human realism judgments",
        summary=summary,
        main="correlations",
    )


def _row(
    metric: str,
    dataset: str,
    method: str,
    n: int,
    n_datasets: int,
    point: float,
    reps: np.ndarray,
    orientation: bool | None,
    ci: float,
) -> dict:
    lo = hi = np.nan
    finite = reps[np.isfinite(reps)]
    if len(finite) and np.isfinite(point):
        alpha = (1.0 - ci) / 2.0
        lo, hi = (float(v) for v in np.percentile(finite, [100 * alpha, 100 * (1 - alpha)]))
    sign = {True: 1.0, False: -1.0, None: np.nan}[orientation]
    a_lo, a_hi = sorted((sign * lo, sign * hi)) if orientation is not None else (np.nan, np.nan)
    return {
        "metric": metric,
        "dataset": dataset,
        "method": method,
        "n_models": n,
        "n_datasets": n_datasets,
        "correlation": point,
        "ci_low": lo,
        "ci_high": hi,
        "higher_is_better": orientation,
        "agreement": sign * point,
        "agreement_low": a_lo,
        "agreement_high": a_hi,
    }


def _prepare_metric_table(table: pd.DataFrame, metrics: Iterable[str] | None) -> pd.DataFrame:
    if "model" not in table.columns:
        raise ValueError(f"metric_table needs a 'model' column (and 'dataset'); found {list(table.columns)}")
    candidates = [c for c in table.columns if c not in NON_METRIC_COLUMNS]
    if metrics is not None:
        metrics = list(metrics)
        missing = [m for m in metrics if m not in table.columns]
        if missing:
            raise ValueError(f"metrics {missing} are not columns of metric_table {list(table.columns)}")
        reserved = [m for m in metrics if m in NON_METRIC_COLUMNS]
        if reserved:
            raise ValueError(f"metrics {reserved} are reserved columns and cannot be metrics")
        candidates = metrics
    if not candidates:
        raise ValueError("metric_table has no metric columns besides 'dataset', 'model', 'label'")
    for c in candidates:
        if not pd.api.types.is_numeric_dtype(table[c]) or pd.api.types.is_bool_dtype(table[c]):
            raise ValueError(
                f"metric_table column {c!r} must be numeric (got dtype {table[c].dtype}); convert it with "
                "pd.to_numeric or leave it out with metrics=[...]"
            )
    keep = ["model"] + (["dataset"] if "dataset" in table.columns else []) + candidates
    out = table[keep].copy()
    out["model"] = out["model"].astype(str)
    if "dataset" in out.columns:
        out["dataset"] = out["dataset"].map(lambda d: canonical_dataset(d, strict=False))
        dup = out.duplicated(["dataset", "model"], keep=False)
    else:
        dup = out.duplicated(["model"], keep=False)
    if dup.any():
        raise ValueError(
            f"metric_table has several rows for the same (dataset, model): "
            f"{out.loc[dup, [c for c in ('dataset', 'model') if c in out.columns]].values.tolist()[:6]}"
        )
    return out


def _orientations(metric_cols: list[str], overrides: Mapping[str, bool | None] | None) -> dict[str, bool | None]:
    result = {c: metric_orientation(c) for c in metric_cols}
    if overrides:
        unknown = [k for k in overrides if k not in result]
        if unknown:
            raise ValueError(f"higher_is_better names {unknown}, which are not metric columns {metric_cols}")
        for k, v in overrides.items():
            if v is not None and not isinstance(v, (bool, np.bool_)):
                raise ValueError(f"higher_is_better[{k!r}] must be True, False or None; got {v!r}")
            result[k] = None if v is None else bool(v)
    return result


def _participant_scores(table: pd.DataFrame) -> pd.DataFrame:
    """One row per participant: columns dataset (if given), model, value."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"human_table must be a pandas DataFrame; got {type(table).__name__}")
    value = "err_rt" if "err_rt" in table.columns else "score" if "score" in table.columns else None
    if value is None or "model" not in table.columns:
        raise ValueError(
            "human_table needs a 'model' column and an 'err_rt' (error rate) or 'score' column, one row per "
            f"participant; found {list(table.columns)}. Use load_human_study() or load_user_study(path)."
        )
    values = pd.to_numeric(table[value], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise ValueError(
            f"human_table column {value!r} has a missing or non-numeric value at row {bad[0]} "
            f"({table[value].iloc[bad[0]]!r})"
        )
    out = pd.DataFrame({"model": table["model"].astype(str).to_numpy(), "value": values})
    if "dataset" in table.columns:
        out.insert(0, "dataset", table["dataset"].map(lambda d: canonical_dataset(d, strict=False)).to_numpy())
    if "participant" in table.columns:
        out["participant"] = table["participant"].astype(str).to_numpy()
        keys = [c for c in ("dataset", "model", "participant") if c in out.columns]
        out = out.groupby(keys, sort=False, as_index=False)["value"].mean()
    return out


def _align_datasets(metric: pd.DataFrame, units: pd.DataFrame, wanted: list[str] | None):
    """Give both tables a dataset column when one (or both) lacks it."""

    def single(frame_name: str, other: pd.DataFrame | None) -> str:
        if wanted is not None and len(wanted) == 1:
            return wanted[0]
        if other is not None and "dataset" in other.columns and other["dataset"].nunique() == 1:
            return str(other["dataset"].iloc[0])
        if other is None:
            return "study"
        raise ValueError(
            f"{frame_name} has no 'dataset' column but the analysis spans several datasets; add a 'dataset' "
            "column or pass dataset='<name>'"
        )

    m_has, h_has = "dataset" in metric.columns, "dataset" in units.columns
    if not m_has and not h_has:
        name = single("metric_table", None)
        return metric.assign(dataset=name), units.assign(dataset=name)
    if not m_has:
        return metric.assign(dataset=single("metric_table", units)), units
    if not h_has:
        return metric, units.assign(dataset=single("human_table", metric))
    return metric, units


def _human_means(units: pd.DataFrame, n_boot: int, rng: np.random.Generator):
    """Per-model mean, SE and bootstrap means (participants resampled within each model)."""
    rows, boot = [], {}
    for (ds, model), group in units.groupby(["dataset", "model"], sort=True):
        v = group["value"].to_numpy(dtype=np.float64)
        n = len(v)
        se = float(v.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
        rows.append(
            {
                "dataset": ds,
                "model": model,
                "n_participants": n,
                "human_error_rate": float(np.round(v.mean(), 12)),
                "human_error_se": se,
            }
        )
        if n_boot:
            boot[(ds, model)] = np.round(v[rng.integers(0, n, size=(n_boot, n))].mean(axis=1), 12)
    human = pd.DataFrame(rows)
    ds_order = list(pd.unique(units["dataset"]))
    human = human.assign(_o=human["dataset"].map(ds_order.index)).sort_values(["_o", "model"], kind="stable")
    return human.drop(columns="_o").reset_index(drop=True), boot
