"""Which feature extractor to trust: the same metrics under several extractors, and how much the
rankings of models change between them.

:func:`compare_extractors` takes ``{extractor: {model: (real, fake)}}`` (features or caches),
evaluates every metric for every model under every extractor with
:func:`workbench.metrics.suite.evaluate`, ranks the models per extractor and metric (rank 1 =
best, by :func:`workbench.metrics.suite.higher_is_better`), and measures the rank agreement of
every pair of extractors with Kendall's tau-b and Spearman's rho, with bootstrap intervals.
It also takes a long table ``extractor, model, metric, value`` of numbers computed elsewhere,
e.g. the published ones (:func:`published_extractor_table`).

Bootstrap: what is resampled
----------------------------
Each replicate draws, for every model, its *generated* samples with replacement (as many as it
has), recomputes every metric of that model under every extractor, re-ranks the models and
recomputes each correlation. The real (reference) set is held fixed: it is common to all
models, and the question is how much the ranking depends on which images each model happened
to generate. With ``paired=True`` (default) the same row indices are drawn for a model under
every extractor, i.e. the same generated images (the rows of a model's caches must then be the
same images in the same order, which is checked where caches carry content hashes). The
interval is the percentile interval of the replicates. FD is resampled without copying
features: a replicate's mean and covariance are weighted sums with the row multiplicities
(:func:`fd_resampled`), or, with ``fd_bootstrap="linear"``, the first-order change
``sum_i (c_i - 1) phi_i`` of FD (:meth:`~workbench.analysis.attribution.FrechetDecomposition.influence`),
which costs ``O(n)`` per replicate. Other metrics are recomputed on the resampled rows;
duplicated rows shrink k-NN radii and bias kernel estimates (see
:func:`workbench.metrics.bootstrap.bootstrap`), which moves all models alike, so ranks suffer
less than values.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from workbench.analysis.agreement import kendall_rows, metric_orientation, spearman_rows
from workbench.analysis.attribution import FrechetDecomposition, frechet_decomposition, real_factor_of
from workbench.analysis.human_data import canonical_dataset, load_published_metrics
from workbench.analysis.result import AnalysisResult
from workbench.cache.reader import EmbeddingCache
from workbench.metrics.frechet import DEFAULT_BLOCK_ROWS, feature_statistics
from workbench.metrics.suite import METRICS, evaluate
from workbench.metrics.suite import higher_is_better as suite_orientation
from workbench.metrics.validation import SampleSizeWarning, as_features, check_same_dim, check_seed

METHODS: tuple[str, ...] = ("kendall", "spearman")
FD_BOOTSTRAP: tuple[str, ...] = ("exact", "linear")
DEFAULT_METRICS: tuple[str, ...] = ("fd", "prdc")
MIN_MODELS = 3
LONG_COLUMNS: tuple[str, ...] = ("extractor", "model", "metric", "value")

_CORRELATIONS = {"kendall": kendall_rows, "spearman": spearman_rows}
_SCATTER_BUDGET_BYTES = 256 * 2**20  # r x r scatter matrices held at once by fd_resampled


class ExtractorComparison(AnalysisResult):
    """Result of :func:`compare_extractors`.

    Tables (``to_frame()`` returns ``scores``; a ``dataset`` column leads every table when the
    input had one, and models are only ranked within a dataset):

    - ``scores``: one row per (extractor, model, metric): ``value``, ``higher_is_better``
      (True/False/None), ``rank`` (1 = best within the extractor and metric; ties share the
      mean rank; NaN when the orientation is unknown or the value missing), ``rank_low``,
      ``rank_high`` (bootstrap percentile interval of the rank; NaN without bootstrap).
    - ``agreement``: one row per (metric, extractor pair, method): ``extractor_a,
      extractor_b, method`` ("kendall" = tau-b, "spearman" = rho), ``n_models`` (models with a
      finite value under both; NaN correlation below 3), ``correlation``, ``ci_low``,
      ``ci_high``, ``n_boot`` (finite replicates behind the interval).

    - ``replicates``: the bootstrap values, one row per (extractor, model, metric, replicate)
      with ``value`` (empty without bootstrap); replicate ``b`` of every model and extractor
      belongs to the same draw.

    ``values`` and ``ranks`` are views of ``scores``; :meth:`bump_data` feeds a bump chart;
    :meth:`extractor_order` and :meth:`consensus` help read many extractors (ten and more).
    Attributes: ``extractors``, ``models``, ``metrics`` (in input order), ``warnings``
    (sample-size warnings of the metrics), ``resampling`` (what the bootstrap resampled).
    """

    def __init__(
        self,
        tables: dict[str, pd.DataFrame],
        *,
        extractors: list[str],
        models: list[str],
        metrics: list[str],
        warnings_: list[str],
        resampling: str,
        title: str,
        summary: str,
    ) -> None:
        super().__init__(tables, title=title, summary=summary, main="scores")
        self.extractors = extractors
        self.models = models
        self.metrics = metrics
        self.warnings = warnings_
        self.resampling = resampling

    @property
    def _keys(self) -> list[str]:
        return ["dataset"] if "dataset" in self.tables["scores"].columns else []

    @property
    def values(self) -> pd.DataFrame:
        """Tidy values: ``[dataset,] extractor, model, metric, value, higher_is_better``."""
        return self.tables["scores"][[*self._keys, "extractor", "model", "metric", "value", "higher_is_better"]]

    @property
    def ranks(self) -> pd.DataFrame:
        """Tidy ranks: ``[dataset,] extractor, metric, model, rank, rank_low, rank_high``."""
        return self.tables["scores"][[*self._keys, "extractor", "metric", "model", "rank", "rank_low", "rank_high"]]

    @property
    def agreement(self) -> pd.DataFrame:
        return self.tables["agreement"]

    @property
    def replicates(self) -> pd.DataFrame:
        return self.tables["replicates"]

    def bump_data(self, metric: str | None = None, dataset: str | None = None) -> pd.DataFrame:
        """Tidy frame for a bump chart: ``extractor, model, rank`` (x, line, y), plus ``metric``,
        ``rank_low``, ``rank_high`` and ``dataset`` when present; rows with a rank only.

        Args:
            metric: keep one metric (a ``metric`` value of ``scores``); default all.
            dataset: keep one dataset (tables with a ``dataset`` column only).
        """
        frame = self._select(self.tables["scores"], metric, dataset)
        frame = frame[frame["rank"].notna()]
        cols = [*self._keys, "metric", "extractor", "model", "rank", "rank_low", "rank_high"]
        return frame[cols].reset_index(drop=True)

    def rank_matrix(self, metric: str, dataset: str | None = None) -> pd.DataFrame:
        """Model x extractor ranks of one metric (models ordered by their first extractor's rank)."""
        frame = self._select(self.tables["scores"], metric, dataset)
        matrix = frame.pivot(index="model", columns="extractor", values="rank")
        matrix = matrix.reindex(columns=[e for e in self.extractors if e in matrix.columns])
        return matrix.sort_values(list(matrix.columns), kind="stable")

    def agreement_matrix(
        self, metric: str, method: str = "kendall", dataset: str | None = None, value: str = "correlation"
    ) -> pd.DataFrame:
        """Symmetric extractor x extractor matrix of ``value`` ("correlation", "ci_low",
        "ci_high") for one metric and method; 1 on the diagonal for the correlation."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}; got {method!r}")
        if value not in ("correlation", "ci_low", "ci_high", "n_models"):
            raise ValueError(f"value must be 'correlation', 'ci_low', 'ci_high' or 'n_models'; got {value!r}")
        frame = self._select(self.tables["agreement"], metric, dataset)
        frame = frame[frame["method"] == method]
        names = [e for e in self.extractors if e in set(frame["extractor_a"]) | set(frame["extractor_b"])]
        out = pd.DataFrame(np.nan, index=names, columns=names)
        for row in frame.itertuples(index=False):
            out.at[row.extractor_a, row.extractor_b] = out.at[row.extractor_b, row.extractor_a] = getattr(row, value)
        if value == "correlation":
            for e in names:
                out.at[e, e] = 1.0
        return out

    def extractor_order(self, metric: str, method: str = "kendall", dataset: str | None = None) -> list[str]:
        """The extractors ordered so that those that rank the models alike are neighbours.

        Average-linkage hierarchical clustering of the distance ``1 - correlation`` (a missing
        correlation counts as 0, i.e. distance 1), leaves in the optimal order of
        :func:`scipy.cluster.hierarchy.optimal_leaf_ordering` (deterministic). With fewer than
        three extractors, or no finite correlation, the input order. Used to lay out the
        agreement matrix and the bump chart of many extractors (blocks of agreeing extractors,
        fewer crossing lines).
        """
        matrix = self.agreement_matrix(metric, method, dataset)
        names = list(matrix.index)
        values = matrix.to_numpy(dtype=np.float64)
        off = ~np.eye(len(names), dtype=bool)
        if len(names) < 3 or not np.isfinite(values[off]).any():
            return names
        from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
        from scipy.spatial.distance import squareform

        dist = 1.0 - np.where(np.isfinite(values), values, 0.0)
        dist = np.clip(0.5 * (dist + dist.T), 0.0, 2.0)
        np.fill_diagonal(dist, 0.0)
        condensed = squareform(dist, checks=False)
        tree = optimal_leaf_ordering(linkage(condensed, method="average"), condensed)
        return [names[i] for i in leaves_list(tree)]

    def consensus(self, metric: str, method: str = "kendall", dataset: str | None = None) -> pd.Series:
        """Mean rank agreement of each extractor with all the others (NaN pairs left out), highest first.

        An extractor far below the others ranks the models unlike the rest: with ten extractors
        this finds the odd one out faster than the matrix does. Index: extractor; name
        ``"mean_<method>"``.
        """
        matrix = self.agreement_matrix(metric, method, dataset)
        values = matrix.to_numpy(dtype=np.float64).copy()
        np.fill_diagonal(values, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an extractor without any finite pair: NaN
            mean = np.nanmean(values, axis=1) if values.size else np.zeros(0)
        out = pd.Series(mean, index=matrix.index, name=f"mean_{method}")
        return out.sort_values(ascending=False, kind="stable")

    def _select(self, frame: pd.DataFrame, metric: str | None, dataset: str | None) -> pd.DataFrame:
        if metric is not None:
            if metric not in self.metrics:
                raise ValueError(f"metric {metric!r} is not in this comparison; choose from {self.metrics}")
            frame = frame[frame["metric"] == metric]
        if dataset is not None:
            if "dataset" not in frame.columns:
                raise ValueError("this comparison has no dataset column; leave dataset=None")
            known = list(pd.unique(self.tables["scores"]["dataset"]))
            name = dataset if dataset in known else canonical_dataset(dataset, strict=False)
            if name not in known:
                raise ValueError(f"dataset {dataset!r} is not in this comparison; choose from {known}")
            frame = frame[frame["dataset"] == name]
        return frame

    def display_frame(self) -> pd.DataFrame:
        """Agreement as text per metric and extractor pair: "0.73 [0.40, 1.00]" per method (the
        scores table when there is no pair of extractors)."""
        frame = self.tables["agreement"]
        if frame.empty:
            return self.tables["scores"]
        keys = [*self._keys, "metric", "extractor_a", "extractor_b"]

        def cell(row: pd.Series) -> str:
            if not np.isfinite(row["correlation"]):
                return ""
            ci = f" [{row['ci_low']:.2f}, {row['ci_high']:.2f}]" if np.isfinite(row["ci_low"]) else ""
            return f"{row['correlation']:.2f}{ci}"

        text = frame.assign(cell=frame.apply(cell, axis=1))
        out = text.pivot_table(index=keys, columns="method", values="cell", aggfunc="first", sort=False)
        return out.reindex(columns=[m for m in METHODS if m in out.columns])


# --------------------------------------------------------------------------- FD replicates


def fd_resampled(real: Any, fake: Any, counts: Any, *, block_rows: int = DEFAULT_BLOCK_ROWS) -> np.ndarray:
    """FD of ``real`` against ``fake`` with row multiplicities ``counts``, for many replicates.

    Replicate ``b`` equals ``fd(real, fake[np.repeat(np.arange(n), counts[b])])`` without
    building that array: its mean and ``ddof=1`` covariance are ``mu_b = sum_i c_i x_i / n`` and
    ``S_b = (sum_i c_i (x_i - mu)(x_i - mu)^T - n (mu_b - mu)(mu_b - mu)^T) / (n - 1)`` with
    ``sum_i c_i = n``, and the trace-sqrt term is ``sum sqrt(eig(F^T S_b F))`` with
    ``S_real = F F^T`` (see :mod:`workbench.analysis.attribution`). Cost per replicate:
    ``O(n r^2 + r^3)`` (``r`` = rank of the real covariance), features streamed in blocks.

    Args:
        real: ``N1 x D`` real features or cache, or a :class:`FrechetDecomposition` of
            ``(real, fake)`` to reuse.
        fake: ``n x D`` generated features or cache.
        counts: ``B x n`` non-negative integers, every row summing to ``n`` (bootstrap counts,
            e.g. ``np.bincount(indices, minlength=n)`` per replicate).

    Returns:
        ``(B,)`` float64 FD values.
    """
    fake_arr = as_features(_features(fake), "fake", min_samples=3)
    dec = (
        real if isinstance(real, FrechetDecomposition) else frechet_decomposition(real, fake_arr, block_rows=block_rows)
    )
    c = np.asarray(counts)
    n = fake_arr.shape[0]
    if c.ndim != 2 or c.shape[1] != n:
        raise ValueError(f"counts must have shape (B, {n}) (one row of multiplicities per replicate); got {c.shape}")
    if not np.issubdtype(c.dtype, np.integer) or (c < 0).any() or (c.sum(axis=1) != n).any():
        raise ValueError(f"every row of counts must hold non-negative integers summing to n = {n}")
    return _fd_replicates(dec, fake_arr, c, block_rows)


def _fd_replicates(dec: FrechetDecomposition, fake_arr: np.ndarray, counts: np.ndarray, block_rows: int) -> np.ndarray:
    n, dim = fake_arr.shape
    f = dec.factor
    r = f.shape[1]
    mu, e = dec.fake.mean, dec.offset
    trace_real = float(np.trace(dec.real.cov))
    out = np.empty(counts.shape[0])
    group = max(1, min(counts.shape[0], _SCATTER_BUDGET_BYTES // max(8 * r * r, 1)))
    for g0 in range(0, counts.shape[0], group):
        c = counts[g0 : g0 + group].astype(np.float64)
        g = c.shape[0]
        sum_d, sum_y, sum_dd = np.zeros((g, dim)), np.zeros((g, r)), np.zeros(g)
        scatter = np.zeros((g, r, r))
        for start in range(0, n, block_rows):
            d = np.asarray(fake_arr[start : start + block_rows], dtype=np.float64) - mu
            y = d @ f
            cb = c[:, start : start + d.shape[0]]
            sum_d += cb @ d
            sum_y += cb @ y
            sum_dd += cb @ np.einsum("ij,ij->i", d, d)
            for j in range(g):
                scatter[j] += (y * cb[j][:, None]).T @ y
        for j in range(g):
            shift = sum_d[j] / n
            ybar = sum_y[j] / n
            trace_fake = (sum_dd[j] - n * shift @ shift) / (n - 1)
            a = (scatter[j] - n * np.outer(ybar, ybar)) / (n - 1)
            lam = np.linalg.eigvalsh(0.5 * (a + a.T)) if r else np.zeros(0)
            diff = e + shift
            out[g0 + j] = diff @ diff + trace_real + trace_fake - 2.0 * np.sqrt(np.clip(lam, 0.0, None)).sum()
    return out


# --------------------------------------------------------------------------- input handling


def _features(x: Any) -> Any:
    return x.features if isinstance(x, EmbeddingCache) else x


def _check_table(table: Any) -> dict[str, dict[str, tuple[Any, Any]]]:
    if not isinstance(table, Mapping) or not table:
        raise ValueError(
            "table must be a non-empty mapping {extractor: {model: (real, fake)}} or a long "
            f"DataFrame with columns {list(LONG_COLUMNS)}; got {type(table).__name__}"
        )
    out: dict[str, dict[str, tuple[Any, Any]]] = {}
    for ext, models in table.items():
        if not isinstance(models, Mapping) or not models:
            raise ValueError(
                f"table[{ext!r}] must be a non-empty mapping {{model: (real, fake)}}; got {type(models).__name__}"
            )
        out[str(ext)] = {}
        for model, pair in models.items():
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(
                    f"table[{ext!r}][{model!r}] must be a (real, fake) pair of features or caches; "
                    f"got {type(pair).__name__}"
                )
            real, fake = pair
            if isinstance(real, EmbeddingCache) and isinstance(fake, EmbeddingCache) and not real.compatible_with(fake):
                raise ValueError(
                    f"table[{ext!r}][{model!r}]: the real and fake caches were made by different "
                    "extractors or weights; their features cannot be compared"
                )
            out[str(ext)][str(model)] = (real, fake)
    return out


def _check_metrics(metrics: str | Sequence[str] | None) -> list[str]:
    names = (
        list(DEFAULT_METRICS)
        if metrics is None
        else ([m.strip() for m in metrics.split(",") if m.strip()] if isinstance(metrics, str) else list(metrics))
    )
    if not names:
        raise ValueError("metrics must name at least one metric")
    usable = [n for n, s in METRICS.items() if s.pairwise and s.needs <= {"ref"}]
    for name in names:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; choose from {usable}")
        if name not in usable:
            raise ValueError(
                f"metric {name!r} needs training/test data or logits, but compare_extractors takes "
                f"(real, fake) pairs only; choose from {usable}"
            )
    return list(dict.fromkeys(names))


def _check_n_boot(n_boot: Any) -> int:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0 or n_boot == 1:
        raise ValueError(f"n_boot must be 0 (no intervals) or an integer >= 2; got {n_boot!r}")
    return int(n_boot)


def _row_keys(x: Any, n: int) -> np.ndarray | None:
    """Content hashes (or ids) of a cache's rows, to check that paired sets hold the same images."""
    if isinstance(x, EmbeddingCache):
        meta = x.meta
        for col in ("content_hash", "id"):
            if col in meta.columns and meta[col].notna().all():
                return meta[col].astype(str).to_numpy()[:n]
    return None


# --------------------------------------------------------------------------- main entry


def compare_extractors(
    table: Mapping[str, Mapping[str, tuple[Any, Any]]] | pd.DataFrame,
    metrics: str | Sequence[str] | None = None,
    *,
    n_boot: int = 200,
    seed: int | np.random.Generator | None = 0,
    ci: float = 0.95,
    paired: bool = True,
    fd_bootstrap: str = "exact",
    higher_is_better: Mapping[str, bool | None] | None = None,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    progress: Callable[[str], None] | None = None,
) -> ExtractorComparison:
    """Every metric of every model under every extractor, the rankings, and their agreement.

    For each extractor, ``evaluate(real, {model: fake}, metrics=metrics, seed=seed)`` gives the
    values (models sharing the same ``real`` object are evaluated together). Per extractor and
    metric column the models are ranked, rank 1 = best (lowest value when lower is better).
    For every pair of extractors and every metric column, over the models with a finite value
    under both (at least 3): Kendall's tau-b and Spearman's rho between the two extractors'
    values (equal to the correlation of the ranks), as ``scipy.stats.kendalltau`` /
    ``spearmanr``, via :func:`workbench.analysis.agreement.kendall_rows` /
    :func:`~workbench.analysis.agreement.spearman_rows`.

    Intervals: ``n_boot`` bootstrap replicates; in each, the generated samples of every model
    are resampled with replacement (the real set fixed; the same rows under every extractor
    when ``paired``), every metric and correlation is recomputed, and the ``(1-ci)/2``,
    ``(1+ci)/2`` percentiles of the replicates form the interval (module docstring). Ranks get
    the same percentile interval. A long-format DataFrame input has no samples, so no intervals.

    Args:
        table: ``{extractor: {model: (real, fake)}}`` with ``N x D`` feature arrays/memmaps or
            :class:`~workbench.cache.EmbeddingCache` objects (features of one extractor share ``D``);
            or a long DataFrame with columns ``extractor, model, metric, value`` and optionally
            ``dataset`` (models are ranked within each dataset), e.g.
            :func:`published_extractor_table`.
        metrics: names of :data:`workbench.metrics.suite.METRICS` that need only (real, fake)
            (``fd, fd_inf, kd, cmmd, prdc, pr, swd, vendi``), list or comma string; default
            ``("fd", "prdc")``. For a DataFrame: the ``metric`` values to keep (default all).
        n_boot: bootstrap replicates (0 = no intervals; else >= 2). Default 200. Cost: each
            replicate recomputes every non-FD metric of every model under every extractor.
        seed: seed of the resampling and of the metrics' own randomness.
        ci: confidence level in (0, 1).
        paired: draw the same rows for a model under every extractor (requires equal row counts
            and, for caches with content hashes, the same images in the same order).
        fd_bootstrap: ``"exact"`` (recompute FD from weighted statistics, ``O(n D^2 + D^3)``
            per replicate) or ``"linear"`` (first-order FD change, ``O(n)`` per replicate after
            one ``O(n D^2 + D^3)`` pass; for large ``D``; ignores FD's second-order bootstrap bias).
        higher_is_better: ``{metric: True/False/None}`` overriding the orientation (DataFrame
            inputs; known names default to the suite's, others to
            :func:`workbench.analysis.agreement.metric_orientation`).
        block_rows: rows per streamed block for the FD bootstrap.
        progress: called with a short message per extractor and metric (e.g. ``print``).

    Returns:
        :class:`ExtractorComparison`.

    Raises:
        ValueError: empty or malformed table, unknown / non-pairwise metric, mismatched
            feature dimensions, unpaired row counts with ``paired=True``, bad ``n_boot``/``ci``.

    Example:
        >>> import numpy as np
        >>> from workbench.analysis.extractor_ranking import compare_extractors
        >>> rng = np.random.default_rng(0)
        >>> real = rng.normal(size=(400, 6))
        >>> gen = {f"m{s}": real[:300] * 0.5 + rng.normal(scale=0.1 + s, size=(300, 6)) for s in range(4)}
        >>> proj = rng.normal(size=(6, 6))                  # a second "extractor": a linear map
        >>> table = {"raw": {m: (real, g) for m, g in gen.items()},
        ...          "mapped": {m: (real @ proj, g @ proj) for m, g in gen.items()}}
        >>> res = compare_extractors(table, metrics="fd", n_boot=20)
        >>> res.rank_matrix("fd")["raw"].tolist()
        [1.0, 2.0, 3.0, 4.0]
        >>> float(res.agreement_matrix("fd", "kendall").loc["raw", "mapped"])
        1.0
    """
    if not 0.0 < float(ci) < 1.0:
        raise ValueError(f"ci must be a confidence level in (0, 1), e.g. 0.95; got {ci!r}")
    n_boot = _check_n_boot(n_boot)
    if fd_bootstrap not in FD_BOOTSTRAP:
        raise ValueError(f"fd_bootstrap must be one of {list(FD_BOOTSTRAP)}; got {fd_bootstrap!r}")
    if isinstance(table, pd.DataFrame):
        return _compare_long(table, metrics, higher_is_better, ci)
    if higher_is_better is not None:
        raise ValueError("higher_is_better applies to DataFrame inputs; the suite's metrics have known orientations")
    say = progress or (lambda msg: None)
    rng = check_seed(seed)
    metric_seed = int(rng.integers(2**31)) if isinstance(seed, np.random.Generator) else int(seed or 0)
    entries = _check_table(table)
    names = _check_metrics(metrics)
    extractors = list(entries)
    models = list(dict.fromkeys(m for e in extractors for m in entries[e]))

    # ---- point values through the suite
    rows: list[dict[str, Any]] = []
    collected: list[str] = []
    columns: list[str] = []
    for ext in extractors:
        groups: dict[int, list[str]] = {}
        for model, (real, _) in entries[ext].items():
            groups.setdefault(id(real), []).append(model)
        for members in groups.values():
            real = entries[ext][members[0]][0]
            say(f"{ext}: {', '.join(names)} for {len(members)} model(s)")
            try:
                report = evaluate(
                    _features(real),
                    {m: _features(entries[ext][m][1]) for m in members},
                    metrics=names,
                    seed=metric_seed,
                )
            except ValueError as exc:
                raise ValueError(f"extractor {ext!r}: {exc}") from exc
            if report.errors:  # a ranking with a hole would mislead: fail, naming every failed cell
                raise ValueError(f"extractor {ext!r}: " + "; ".join(report.format_errors()))
            collected += [f"{ext}: {w}" for w in report.warnings if f"{ext}: {w}" not in collected]
            columns = list(report.values.columns)
            for model in members:
                for col in columns:
                    rows.append(
                        {"extractor": ext, "model": model, "metric": col, "value": float(report.values.at[model, col])}
                    )
    values = pd.DataFrame(rows)
    orientation = {c: suite_orientation(c) for c in columns}

    # ---- bootstrap replicates: {(extractor, model, column): (B,)}
    reps: dict[tuple[str, str, str], np.ndarray] = {}
    resampling = "none"
    if n_boot:
        resampling = (
            f"generated samples of each model resampled with replacement ({n_boot} replicates, "
            f"{'same rows under every extractor' if paired else 'independently per extractor'}); "
            f"real sets fixed; FD replicates {'exact' if fd_bootstrap == 'exact' else 'linearised'}"
        )
        reps = _bootstrap(entries, names, n_boot, rng, metric_seed, paired, fd_bootstrap, block_rows, say, collected)

    scores = _scores(values, orientation, reps, ci, keys=[])
    # columns without a better direction (e.g. kd_std, the spread of KD over subsets) rank nothing
    oriented = values[values["metric"].map(orientation).notna()]
    agreement = _agreement(oriented, extractors, reps, ci, keys=[])
    replicates = _replicate_frame(reps, n_boot)
    summary = (
        f"{len(models)} model(s) under {len(extractors)} extractor(s) ({', '.join(extractors)}); metrics "
        f"{', '.join(columns)}. Rank 1 = best. Agreement: Kendall tau-b and Spearman rho between extractors' "
        + (
            f"values with {ci:.0%} bootstrap intervals ({resampling})."
            if n_boot
            else "values (no intervals: n_boot=0)."
        )
    )
    return ExtractorComparison(
        {"scores": scores, "agreement": agreement, "replicates": replicates},
        extractors=extractors,
        models=models,
        metrics=columns,
        warnings_=collected,
        resampling=resampling,
        title="Rank agreement between feature extractors",
        summary=summary,
    )


def _bootstrap(entries, names, n_boot, rng, metric_seed, paired, fd_bootstrap, block_rows, say, collected):
    """Replicate values ``{(extractor, model, column): (n_boot,)}`` (module docstring)."""
    extractors = list(entries)
    models = list(dict.fromkeys(m for e in extractors for m in entries[e]))
    model_seeds = {m: int(rng.integers(2**63)) for m in models}
    pair_seeds = {(e, m): int(rng.integers(2**63)) for e in extractors for m in models}
    if paired:
        for model in models:
            present = [e for e in extractors if model in entries[e]]
            sizes = {e: len(_features(entries[e][model][1])) for e in present}
            if len(set(sizes.values())) > 1:
                raise ValueError(
                    f"paired=True needs the same generated samples of model {model!r} under every "
                    f"extractor, but the row counts differ: {sizes}; pass paired=False"
                )
            keys = [(e, _row_keys(entries[e][model][1], sizes[e])) for e in present]
            found = [(e, k) for e, k in keys if k is not None]
            for e, k in found[1:]:
                if not np.array_equal(k, found[0][1]):
                    raise ValueError(
                        f"paired=True: the caches of model {model!r} under {found[0][0]!r} and {e!r} "
                        "hold different images (or another order); pass paired=False"
                    )
    reps: dict[tuple[str, str, str], np.ndarray] = {}
    real_cache: dict[int, tuple[Any, Any]] = {}
    for ext in extractors:
        for model, (real, fake) in entries[ext].items():
            say(f"bootstrap {ext} / {model}")
            fake_arr = as_features(_features(fake), "fake", min_samples=3)
            real_arr = as_features(_features(real), "real", min_samples=2)
            check_same_dim(real_arr, fake_arr, "real", "fake")
            n = fake_arr.shape[0]
            gen = np.random.default_rng(model_seeds[model] if paired else pair_seeds[(ext, model)])
            idx = gen.integers(0, n, size=(n_boot, n))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", SampleSizeWarning)
                for name in names:
                    spec = METRICS[name]
                    if name == "fd":
                        if id(real) not in real_cache:
                            stats = feature_statistics(real_arr, block_rows=block_rows)
                            real_cache[id(real)] = (stats, real_factor_of(stats.cov))
                        stats, factor = real_cache[id(real)]
                        dec = frechet_decomposition(
                            None, fake_arr, block_rows=block_rows, real_stats=stats, real_factor=factor
                        )
                        counts = np.stack([np.bincount(row, minlength=n) for row in idx])
                        if fd_bootstrap == "exact":
                            values = _fd_replicates(dec, fake_arr, counts, block_rows)
                        else:
                            phi = np.concatenate(
                                [
                                    dec.influence(np.asarray(fake_arr[s : s + block_rows]))
                                    for s in range(0, n, block_rows)
                                ]
                            )
                            values = dec.fd + (counts - 1.0) @ phi
                        reps[(ext, model, "fd")] = values
                        continue
                    out = {col: np.full(n_boot, np.nan) for col in spec.fields}
                    for b in range(n_boot):
                        try:
                            result = spec.compute(real_arr, fake_arr[np.sort(idx[b])], metric_seed)
                        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
                            continue
                        for col, v in result.items():
                            out[col][b] = float(v)
                    for col in spec.fields:
                        reps[(ext, model, col)] = out[col]
            for w in caught:
                text = f"{ext} (bootstrap): {w.message}"
                if text not in collected:
                    collected.append(text)
    return reps


# --------------------------------------------------------------------------- tables


def _replicate_frame(reps: Mapping[tuple[str, str, str], np.ndarray], n_boot: int) -> pd.DataFrame:
    columns = ["extractor", "model", "metric", "replicate", "value"]
    if not reps:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "value" else object) for c in columns})
    parts = [
        pd.DataFrame({"extractor": e, "model": m, "metric": c, "replicate": np.arange(n_boot), "value": v})
        for (e, m, c), v in reps.items()
    ]
    return pd.concat(parts, ignore_index=True)[columns]


def _rank(values: np.ndarray, orientation: bool | None) -> np.ndarray:
    """Ranks along the last axis, 1 = best; NaN values stay NaN (and take no rank)."""
    out = np.full(values.shape, np.nan)
    if orientation is None:
        return out
    signed = -values if orientation else values
    flat = signed.reshape(-1, signed.shape[-1])
    res = out.reshape(-1, signed.shape[-1])
    for i, row in enumerate(flat):
        ok = np.isfinite(row)
        if ok.any():
            res[i, ok] = rankdata(row[ok])
    return res.reshape(values.shape)


def _percentiles(reps: np.ndarray, ci: float) -> tuple[float, float]:
    finite = reps[np.isfinite(reps)]
    if finite.size < 2:
        return math.nan, math.nan
    alpha = (1.0 - ci) / 2.0
    lo, hi = np.percentile(finite, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


def _scores(values: pd.DataFrame, orientation: Mapping[str, bool | None], reps, ci: float, keys: list[str]):
    frames = []
    for _group_key, part in values.groupby([*keys, "extractor", "metric"], sort=False):
        metric = part["metric"].iloc[0]
        part = part.copy()
        part["higher_is_better"] = orientation.get(metric)
        part["rank"] = _rank(part["value"].to_numpy(dtype=np.float64), orientation.get(metric))
        part["rank_low"] = part["rank_high"] = np.nan
        ext = part["extractor"].iloc[0]
        rep_keys = [(ext, m, metric) for m in part["model"]]
        if reps and all(k in reps for k in rep_keys):
            boot_ranks = _rank(np.stack([reps[k] for k in rep_keys], axis=1), orientation.get(metric))
            bounds = [_percentiles(boot_ranks[:, j], ci) for j in range(len(rep_keys))]
            part["rank_low"] = [b[0] for b in bounds]
            part["rank_high"] = [b[1] for b in bounds]
        frames.append(part)
    scores = pd.concat(frames, ignore_index=True)
    scores["higher_is_better"] = scores["higher_is_better"].astype(object)
    order = [*keys, "extractor", "model", "metric", "value", "higher_is_better", "rank", "rank_low", "rank_high"]
    return scores[order]


def _agreement(values: pd.DataFrame, extractors: list[str], reps, ci: float, keys: list[str]) -> pd.DataFrame:
    rows = []
    groups = values.groupby(keys, sort=False) if keys else [((), values)]
    for group_key, part in groups:
        key_values = dict(zip(keys, group_key if isinstance(group_key, tuple) else (group_key,)))
        wide = part.pivot_table(
            index="model", columns=["metric", "extractor"], values="value", aggfunc="first", sort=False, dropna=False
        )
        for metric in pd.unique(part["metric"]):
            having = set(part.loc[part["metric"] == metric, "extractor"])
            present = [e for e in extractors if e in having]
            for a, b in itertools.combinations(present, 2):
                xa, xb = (wide[(metric, a)].to_numpy(dtype=np.float64), wide[(metric, b)].to_numpy(dtype=np.float64))
                ok = np.isfinite(xa) & np.isfinite(xb)
                shared = list(wide.index[ok])
                n = int(ok.sum())
                boot_a = boot_b = None
                if reps and n >= MIN_MODELS and all((e, m, metric) in reps for e in (a, b) for m in shared):
                    boot_a = np.stack([reps[(a, m, metric)] for m in shared], axis=1)
                    boot_b = np.stack([reps[(b, m, metric)] for m in shared], axis=1)
                for method in METHODS:
                    corr = _CORRELATIONS[method]
                    point, lo, hi, used = math.nan, math.nan, math.nan, 0
                    if n >= MIN_MODELS:
                        point = float(corr(xa[ok], xb[ok][None, :])[0])
                        if boot_a is not None and boot_b is not None:
                            series = np.array(
                                [
                                    corr(ra, rb[None, :])[0]
                                    if np.isfinite(ra).all() and np.isfinite(rb).all()
                                    else np.nan
                                    for ra, rb in zip(boot_a, boot_b)
                                ]
                            )
                            used = int(np.isfinite(series).sum())
                            lo, hi = _percentiles(series, ci)
                    rows.append(
                        {
                            **key_values,
                            "metric": metric,
                            "extractor_a": a,
                            "extractor_b": b,
                            "method": method,
                            "n_models": n,
                            "correlation": point,
                            "ci_low": lo,
                            "ci_high": hi,
                            "n_boot": used,
                        }
                    )
    columns = [
        *keys,
        "metric",
        "extractor_a",
        "extractor_b",
        "method",
        "n_models",
        "correlation",
        "ci_low",
        "ci_high",
        "n_boot",
    ]
    return pd.DataFrame(rows, columns=columns)


def _compare_long(table: pd.DataFrame, metrics, overrides, ci: float) -> ExtractorComparison:
    missing = [c for c in LONG_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(
            f"a DataFrame table needs the columns {list(LONG_COLUMNS)} (and optionally 'dataset'); missing {missing}"
        )
    keys = ["dataset"] if "dataset" in table.columns else []
    frame = table[[*keys, *LONG_COLUMNS]].copy()
    for col in [*keys, "extractor", "model", "metric"]:
        frame[col] = frame[col].astype(str)
    if keys:
        frame["dataset"] = frame["dataset"].map(lambda d: canonical_dataset(d, strict=False))
    value = pd.to_numeric(frame["value"], errors="coerce")
    bad = frame["value"].notna() & value.isna()
    if bad.any():
        raise ValueError(
            f"column 'value' must be numeric; row {int(np.flatnonzero(bad)[0])} holds {frame['value'][bad].iloc[0]!r}"
        )
    frame["value"] = value.astype(np.float64)
    if metrics is not None:
        wanted = [m.strip() for m in metrics.split(",")] if isinstance(metrics, str) else [str(m) for m in metrics]
        unknown = [m for m in wanted if m not in set(frame["metric"])]
        if unknown:
            raise ValueError(
                f"metrics {unknown} do not occur in the table's 'metric' column {sorted(set(frame['metric']))}"
            )
        frame = frame[frame["metric"].isin(wanted)]
    key_cols = [*keys, "extractor", "model", "metric"]
    dup = frame.duplicated(key_cols, keep=False)
    if dup.any():
        raise ValueError(
            f"the table has several values for the same ({', '.join(key_cols)}): "
            f"{frame.loc[dup, key_cols].values.tolist()[:4]}"
        )
    if frame.empty:
        raise ValueError("the table has no rows")
    names = list(pd.unique(frame["metric"]))
    orientation = {}
    for name in names:
        known = suite_orientation(name)
        orientation[name] = known if known is not None else metric_orientation(name)
    if overrides:
        unknown = [k for k in overrides if k not in orientation]
        if unknown:
            raise ValueError(f"higher_is_better names {unknown}, which are not metrics of the table {names}")
        for k, v in overrides.items():
            if v is not None and not isinstance(v, (bool, np.bool_)):
                raise ValueError(f"higher_is_better[{k!r}] must be True, False or None; got {v!r}")
            orientation[k] = None if v is None else bool(v)
    extractors = list(pd.unique(frame["extractor"]))
    scores = _scores(frame, orientation, {}, ci, keys)
    agreement = _agreement(frame, extractors, {}, ci, keys)
    datasets = f" on {', '.join(pd.unique(frame['dataset']))}" if keys else ""
    summary = (
        f"{frame['model'].nunique()} model(s) under {len(extractors)} extractor(s) ({', '.join(extractors)})"
        f"{datasets}; metrics {', '.join(names)}. Rank 1 = best. Agreement: Kendall tau-b and Spearman rho "
        "between extractors' values (precomputed values: no bootstrap intervals)."
    )
    return ExtractorComparison(
        {"scores": scores, "agreement": agreement, "replicates": _replicate_frame({}, 0)},
        extractors=extractors,
        models=list(pd.unique(frame["model"])),
        metrics=names,
        warnings_=[],
        resampling="none (precomputed values)",
        title="Rank agreement between feature extractors",
        summary=summary,
    )


def published_extractor_table(dataset: str | Sequence[str] | None = None) -> pd.DataFrame:
    """The published numbers of Stein et al. (NeurIPS 2023) as a long table for :func:`compare_extractors`.

    Rows ``dataset, extractor, model, metric, value``: ``extractor = "dinov2"`` with the
    leaderboard's ``fd, fd_inf, kd, precision, recall, density, coverage`` (DINOv2-ViT-L/14
    features), and ``extractor = "inception"`` with ``metric = "fd"`` whose ``value`` is the
    model's **position by Inception-FD** (1 = lowest Inception-FD within its dataset): the paper
    publishes only that order, not the values (see
    :func:`workbench.analysis.human_data.load_published_metrics`, whose ``inception_fd_rank`` is
    the reverse order). Rank agreement uses only the order, so ``compare_extractors`` of this
    table gives the Kendall/Spearman agreement of Inception-FD and DINOv2-FD rankings per dataset.

    Example:
        >>> from workbench.analysis.extractor_ranking import compare_extractors, published_extractor_table
        >>> res = compare_extractors(published_extractor_table("imagenet"))
        >>> round(float(res.agreement_matrix("fd", "spearman", dataset="imagenet256").loc["dinov2", "inception"]), 3)
        0.164
    """
    published = load_published_metrics(dataset)
    rows = []
    for metric in ("fd", "fd_inf", "kd", "precision", "recall", "density", "coverage"):
        part = published[["dataset", "model", f"{metric}_dinov2"]].rename(columns={f"{metric}_dinov2": "value"})
        rows.append(part.assign(extractor="dinov2", metric=metric))
    order = published[["dataset", "model", "inception_fd_rank"]].dropna()
    n_models = order.groupby("dataset")["model"].transform("count")
    rows.append(
        order.assign(extractor="inception", metric="fd", value=n_models + 1 - order["inception_fd_rank"])[
            ["dataset", "model", "value", "extractor", "metric"]
        ]
    )
    out = pd.concat(rows, ignore_index=True)
    return out[["dataset", "extractor", "model", "metric", "value"]]
