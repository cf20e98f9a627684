"""Is a generative model memorizing its training set, and which generated samples are copies?

:func:`memorization_report` searches, for every generated (fake) sample, its ``k`` nearest
training samples and computes two per-sample quantities:

``distance`` ``d1 = d(y, x*)``
    from the fake ``y`` to its nearest training sample ``x*`` (metric ``"l2"``: Euclidean;
    ``"cosine"``: ``1 - cos``).

``ratio`` ``d1 / d2``
    with ``d2 = d(x*, x')`` the distance from ``x*`` to its own nearest *other* training
    sample: the authenticity criterion of Alaa, van Breugel, Saveliev & van der Schaar, "How
    Faithful is your Synthetic Data?" (ICML 2022), as computed by dgm-eval (Stein et al. 2023)
    and :func:`workbench.metrics.authenticity.authenticity`. The fake is *authentic* when
    ``d2 < d1`` (ratio ``> 1``); a tie counts as not authentic. ``AuthPct`` = 100 x share of
    authentic fakes. Ratio conventions: ``inf`` when ``d2 = 0 < d1``, 0 when both are 0.

Likely copies
-------------
A fake is flagged ``likely_copy`` by one of two criteria (the report's ``criterion``):

* ``"distance"`` -- calibrated on real unseen images. With a held-out ``test`` set (real images
  the model never saw, from the training distribution), ``threshold = Q_q(d_test)``: the
  empirical ``q``-quantile (``quantile``, default 0.01; ``numpy.quantile``'s linear
  interpolation) of the test images' nearest-training-sample distances. A fake is flagged when
  ``d1 <= threshold``: it is closer to a training image than all but a share ``q`` of genuinely
  new real images are. The share of test images with ``d_test <= threshold`` is reported as
  ``test_flag_rate``, the false-positive-rate estimate (about ``q`` by construction for the
  calibrated threshold; an in-sample estimate). An explicit ``threshold=`` (a distance) also
  selects this criterion.
* ``"ratio"`` -- without a test set (and no explicit threshold): flagged when
  ``ratio <= 1``, i.e. not authentic in the sense of Alaa et al. Its false-positive rate on
  real unseen images is typically far from 0 (``test_auth_pct`` shows it when a test set is
  given): the ratio criterion flags many samples in dense regions of the training set and is
  a weak copy detector; prefer a test set.

:meth:`MemorizationReport.with_threshold` recomputes the flags (and rates) for another
threshold or criterion from the stored distances, without searching neighbours again: it
costs ``O(M + T)`` (about 20 ms for 50,000 fakes and 10,000 test images).

Cost: the generated set (and the test set) are searched against the training set, then the
distinct nearest training rows (at most ``M + T``) are searched against it once more (2-NN)
for ``d2``: up to two passes over the training set. ``backend="faiss-ivf"`` builds one
approximate index and reuses it for all three searches (see
:mod:`workbench.analysis.neighbors`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from workbench.analysis.neighbors import (
    METRICS,
    FeatureSource,
    build_searcher,
    check_compatible_sources,
    feature_source,
)
from workbench.analysis.result import AnalysisResult
from workbench.metrics.authenticity import authenticity_ratio
from workbench.metrics.copy_rate import DEFAULT_QUANTILE, check_quantile, second_distance
from workbench.metrics.neighbors import Progress
from workbench.metrics.validation import as_features, check_same_dim
from workbench.threads import limit_threads

CRITERIA = ("distance", "ratio")


def _check_threshold(t: Any) -> float:
    if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)) or not np.isfinite(t) or t < 0:
        raise ValueError(f"threshold must be a finite number >= 0 (a distance, or a ratio); got {t!r}")
    return float(t)


def _thumb_rows(src: FeatureSource, rows: np.ndarray) -> pd.arrays.IntegerArray:
    if src.has_thumbnails:
        return pd.array(rows, dtype="Int64")
    return pd.array([pd.NA] * len(rows), dtype="Int64")


class MemorizationReport(AnalysisResult):
    """Nearest training samples of every generated sample, authenticity ratios and copy flags.

    Attributes (arrays; ``M`` fakes, ``T`` test samples, ``k`` neighbours):
        train_rows: ``M x k`` int64 rows of the nearest training samples (ascending distance).
        distances: ``M x k`` float64 distances to them (``distances[:, 0]`` is ``d1``).
        train_nn_distance: ``(M,)`` ``d2``, nearest-other-training-sample distance of ``x*``.
        ratio: ``(M,)`` ``d1 / d2``; authentic: ``(M,)`` ``ratio > 1``.
        likely_copy: ``(M,)`` bool flags of the current criterion and threshold.
        test_distance, test_train_rows, test_ratio: ``(T,)`` the same for the test set (None without).
        criterion: ``"distance"`` or ``"ratio"``; threshold: its threshold; quantile: the test
            quantile the threshold came from (None when given explicitly or for ``"ratio"``).
        metric, k, backend, params: the search settings.
        train, fake, test: the :class:`~workbench.analysis.neighbors.FeatureSource` inputs (ids,
            caches for thumbnails).

    Tables: ``"samples"`` (main; one row per fake), ``"neighbors"`` (one row per fake and rank),
    ``"test"`` (one row per test sample, when given), ``"summary"`` (one row).
    """

    def __init__(
        self,
        *,
        arrays: dict[str, Any],
        sources: dict[str, FeatureSource | None],
        criterion: str,
        threshold: float,
        quantile: float | None,
        settings: dict[str, Any],
        neighbors_table: pd.DataFrame | None = None,
    ) -> None:
        self._arrays = arrays
        self.train_rows: np.ndarray = arrays["train_rows"]
        self.distances: np.ndarray = arrays["distances"]
        self.train_nn_distance: np.ndarray = arrays["train_nn_distance"]
        self.ratio: np.ndarray = arrays["ratio"]
        self.authentic: np.ndarray = self.ratio > 1
        self.test_distance: np.ndarray | None = arrays.get("test_distance")
        self.test_train_rows: np.ndarray | None = arrays.get("test_train_rows")
        self.test_ratio: np.ndarray | None = arrays.get("test_ratio")
        self.train, self.fake, self.test = sources["train"], sources["fake"], sources.get("test")
        self.criterion, self.threshold, self.quantile = criterion, threshold, quantile
        self.settings = settings
        self.metric, self.k = settings["metric"], settings["k"]
        self.backend, self.params = settings["backend"], settings["params"]

        d1 = self.distances[:, 0]
        self.likely_copy = self._flags(d1, self.ratio)
        self.test_flagged = None if self.test_distance is None else self._flags(self.test_distance, self.test_ratio)

        if neighbors_table is None:
            neighbors_table = self._neighbors_table()
        tables = {"samples": self._samples_table(), "neighbors": neighbors_table}
        if self.test_distance is not None:
            tables["test"] = self._test_table()
        tables["summary"] = pd.DataFrame([self.summary_dict()])
        super().__init__(
            tables,
            title="Memorization: nearest training samples of generated samples",
            summary=self._summary_line(),
            main="samples",
        )

    # ------------------------------------------------------------------ flags and rates

    def _flags(self, distance: np.ndarray, ratio: np.ndarray) -> np.ndarray:
        return (distance if self.criterion == "distance" else ratio) <= self.threshold

    @property
    def n_flagged(self) -> int:
        """Number of generated samples flagged ``likely_copy``."""
        return int(self.likely_copy.sum())

    @property
    def copy_rate(self) -> float:
        """Share (0-1) of generated samples flagged ``likely_copy``."""
        return float(self.likely_copy.mean())

    @property
    def auth_pct(self) -> float:
        """AuthPct (0-100): share of authentic fakes (``ratio > 1``), Alaa et al. 2022."""
        return float(100.0 * self.authentic.mean())

    @property
    def test_flag_rate(self) -> float | None:
        """Share (0-1) of test images the current criterion flags: the false-positive-rate estimate."""
        return None if self.test_flagged is None else float(self.test_flagged.mean())

    @property
    def test_auth_pct(self) -> float | None:
        """AuthPct of the real test images (what unseen real data scores; None without a test set)."""
        return None if self.test_ratio is None else float(100.0 * np.mean(self.test_ratio > 1))

    def summary_dict(self) -> dict[str, Any]:
        """The summary row: sizes, settings, threshold, rates."""
        return {
            "n_train": int(self.settings["n_train"]),
            "n_fake": int(self.distances.shape[0]),
            "n_test": 0 if self.test_distance is None else int(self.test_distance.shape[0]),
            "metric": self.metric,
            "k": int(self.k),
            "backend": self.backend,
            "criterion": self.criterion,
            "threshold": self.threshold,
            "quantile": self.quantile,
            "n_flagged": self.n_flagged,
            "copy_rate": self.copy_rate,
            "test_flag_rate": self.test_flag_rate,
            "auth_pct": self.auth_pct,
            "test_auth_pct": self.test_auth_pct,
            "median_distance": float(np.median(self.distances[:, 0])),
            "median_test_distance": None if self.test_distance is None else float(np.median(self.test_distance)),
        }

    def _summary_line(self) -> str:
        s = self.summary_dict()
        if self.criterion == "distance":
            rule = f"{self.metric} distance to nearest training sample <= {self.threshold:.4g}"
            if self.quantile is not None:
                rule += f" (the {100 * self.quantile:g}% quantile of the test set's)"
        else:
            rule = f"authenticity ratio d1/d2 <= {self.threshold:.4g}"
        line = (
            f"{s['n_flagged']} of {s['n_fake']} generated samples ({100 * s['copy_rate']:.2f}%) flagged as likely "
            f"copies [{rule}]; AuthPct {s['auth_pct']:.2f}"
        )
        if self.test_distance is not None:
            line += (
                f"; test images flagged {100 * s['test_flag_rate']:.2f}% (false-positive estimate), "
                f"test AuthPct {s['test_auth_pct']:.2f}"
            )
        return line + f"; {s['n_train']} training samples, k={self.k}, {self.backend}"

    # ------------------------------------------------------------------ tables

    def _samples_table(self) -> pd.DataFrame:
        m = self.distances.shape[0]
        rows = np.arange(m)
        nn = self.train_rows[:, 0]
        score = self.distances[:, 0] if self.criterion == "distance" else self.ratio
        return pd.DataFrame(
            {
                "fake_row": rows,
                "fake_id": self.fake.ids,
                "train_row": nn,
                "train_id": self.train.ids[nn],
                "distance": self.distances[:, 0],
                "train_nn_distance": self.train_nn_distance,
                "ratio": self.ratio,
                "authentic": self.authentic,
                "likely_copy": self.likely_copy,
                "score": score,
                "fake_thumbnail": _thumb_rows(self.fake, rows),
                "train_thumbnail": _thumb_rows(self.train, nn),
            }
        )

    def _neighbors_table(self) -> pd.DataFrame:
        m, k = self.train_rows.shape
        flat = self.train_rows.ravel()
        return pd.DataFrame(
            {
                "fake_row": np.repeat(np.arange(m), k),
                "fake_id": np.repeat(self.fake.ids, k),
                "rank": np.tile(np.arange(1, k + 1), m),
                "train_row": flat,
                "train_id": self.train.ids[flat],
                "distance": self.distances.ravel(),
                "train_thumbnail": _thumb_rows(self.train, flat),
            }
        )

    def _test_table(self) -> pd.DataFrame:
        t = self.test_distance.shape[0]
        return pd.DataFrame(
            {
                "test_row": np.arange(t),
                "test_id": self.test.ids,
                "train_row": self.test_train_rows,
                "train_id": self.train.ids[self.test_train_rows],
                "distance": self.test_distance,
                "ratio": self.test_ratio,
                "flagged": self.test_flagged,
            }
        )

    # ------------------------------------------------------------------ views

    def most_suspicious(self, n: int = 20) -> pd.DataFrame:
        """The ``n`` generated samples most likely to be copies, most suspicious first.

        Sorted by the criterion's score ascending (``distance`` for ``"distance"``, ``ratio``
        for ``"ratio"``), ties by distance. Columns: ``fake_row, fake_id, train_row, train_id,
        distance, train_nn_distance, ratio, likely_copy, fake_thumbnail, train_thumbnail``
        (the thumbnail columns are rows of the caches' ``.thumbnails``, ``<NA>`` when the input
        had none).

        Example:
            >>> import numpy as np
            >>> rng = np.random.default_rng(0)
            >>> train = rng.normal(size=(200, 8))
            >>> fake = np.vstack([train[:2] + 1e-4, rng.normal(size=(50, 8))])
            >>> rep = memorization_report(train, fake, k=1, progress=False)
            >>> sorted(rep.most_suspicious(2)["train_row"].tolist())
            [0, 1]
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative integer; got {n!r}")
        frame = self.tables["samples"]
        order = np.lexsort((frame["distance"].to_numpy(), frame["score"].to_numpy()))[: int(n)]
        cols = [
            "fake_row",
            "fake_id",
            "train_row",
            "train_id",
            "distance",
            "train_nn_distance",
            "ratio",
            "likely_copy",
            "fake_thumbnail",
            "train_thumbnail",
        ]
        return frame.iloc[order][cols].reset_index(drop=True)

    def display_frame(self) -> pd.DataFrame:
        return self.most_suspicious(10)

    def calibrated_threshold(self, quantile: float = DEFAULT_QUANTILE, criterion: str = "distance") -> float:
        """The ``quantile`` of the test set's distances (or ratios, ``criterion="ratio"``); needs a test set.

        Example:
            >>> import numpy as np
            >>> rng = np.random.default_rng(0)
            >>> train, fake, test = rng.normal(size=(300, 4)), rng.normal(size=(20, 4)), rng.normal(size=(100, 4))
            >>> rep = memorization_report(train, fake, test, k=1, progress=False)
            >>> rep.calibrated_threshold(0.01) == rep.threshold
            True
        """
        if criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {CRITERIA}; got {criterion!r}")
        if self.test_distance is None:
            raise ValueError("calibrated_threshold needs a test set: pass test= to memorization_report")
        values = self.test_distance if criterion == "distance" else self.test_ratio
        return float(np.quantile(values, check_quantile(quantile)))

    def with_threshold(self, threshold: float, criterion: str | None = None) -> MemorizationReport:
        """A report with flags for another threshold (and criterion), without searching again.

        ``threshold`` is a distance for ``criterion="distance"`` and a ratio for ``"ratio"``;
        ``criterion`` defaults to the report's. Flags are ``score <= threshold``, so raising
        the threshold never unflags a sample. Cost ``O(M + T)`` (no neighbour search).

        Example:
            >>> import numpy as np
            >>> rng = np.random.default_rng(0)
            >>> rep = memorization_report(rng.normal(size=(300, 4)), rng.normal(size=(40, 4)), k=1, progress=False)
            >>> rep.with_threshold(0.0).n_flagged <= rep.n_flagged <= rep.with_threshold(10.0).n_flagged
            True
        """
        criterion = self.criterion if criterion is None else criterion
        if criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {CRITERIA}; got {criterion!r}")
        return MemorizationReport(
            arrays=self._arrays,
            sources={"train": self.train, "fake": self.fake, "test": self.test},
            criterion=criterion,
            threshold=_check_threshold(threshold),
            quantile=None,
            settings=self.settings,
            neighbors_table=self.tables["neighbors"],
        )

    def thumbnail(self, which: Literal["fake", "train", "test"], row: int) -> np.ndarray | None:
        """The stored thumbnail (``px x px x 3`` uint8) of a row of a cache input, or None."""
        src = {"fake": self.fake, "train": self.train, "test": self.test}.get(which)
        if which not in ("fake", "train", "test"):
            raise ValueError(f"which must be 'fake', 'train' or 'test'; got {which!r}")
        if src is None or not src.has_thumbnails:
            return None
        return np.asarray(src.cache.thumbnails[int(row)])


def memorization_report(
    train: Any,
    fake: Any,
    test: Any = None,
    *,
    k: int = 5,
    metric: Literal["l2", "cosine"] = "l2",
    threshold: float | None = None,
    quantile: float = DEFAULT_QUANTILE,
    backend: Literal["exact", "faiss-ivf", "faiss-hnsw"] = "exact",
    backend_options: dict[str, Any] | None = None,
    block_size: int | None = None,
    threads: int | None = None,
    seed: int | np.random.Generator | None = 0,
    progress: Progress | bool | None = True,
    engine: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
    workers: int | None = None,
) -> MemorizationReport:
    """Which generated samples copy training samples (see the module docstring for the definitions).

    Args:
        train: the model's training set: :class:`~workbench.cache.EmbeddingCache`, cache path or
            ``N x D`` array (``N >= 2``; a memmap is streamed).
        fake: ``M x D`` generated samples (same kinds).
        test: optional ``T x D`` real images the model never saw; calibrates the copy threshold
            and estimates its false-positive rate.
        k: training neighbours listed per fake (default 5; only the first enters the flags).
        metric: ``"l2"`` (default; then ``auth_pct`` equals
            :func:`workbench.metrics.authenticity.authenticity` and dgm-eval's AuthPct) or ``"cosine"``.
        threshold: explicit distance threshold (criterion ``"distance"``); None: the
            ``quantile`` of the test distances when ``test`` is given, else the ratio criterion
            with threshold 1.
        quantile: test-distance quantile used as the threshold (default 0.01 = 1%).
        backend: ``"exact"`` (default), ``"faiss-ivf"`` or ``"faiss-hnsw"``.
        backend_options: the approximate backend's parameters (``nlist``, ``nprobe``,
            ``train_size``, ``niter``, ``ivf_scan``, ``M``, ``ef_construction``, ``ef_search``,
            ``block_rows``), see :func:`~workbench.analysis.neighbors.nearest_neighbors`.
        block_size: exact backend tile size (default 4096).
        threads: torch / faiss threads for this call (default all cores).
        seed: seeds the IVF training sample and k-means.
        progress: True for progress bars, a callable receiving ProgressEvent objects, or False/None
            (see :mod:`workbench.progress`).
        engine: ``"local"`` or ``"ray"`` (exact backend; the ``distributed`` extra): the training
            rows are split across ``workers`` Ray tasks, each reading its part from the cache's
            memory-mapped or sharded files, for all three searches; the report equals the local
            one (see :mod:`workbench.analysis.ray_search`).
        ray_address: with ``engine="ray"``: None starts a local Ray instance, ``"auto"`` or
            ``"HOST:PORT"`` a running cluster.
        workers: with ``engine="ray"``: number of parts of the training set (default: the
            cluster's CPUs).

    Returns:
        :class:`MemorizationReport`: ``.most_suspicious(n)``, ``.with_threshold(t)``,
        ``.copy_rate``, ``.auth_pct``, ``.test_flag_rate``, ``.to_frame()`` (per-fake table).

    Raises:
        ValueError: bad shapes / NaN / mismatched dimensions, ``k`` too large, bad threshold,
            quantile, metric or backend; an approximate search that found no neighbour.
        IncompatibleCachesError: caches made by different extractors.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> train = rng.normal(size=(1000, 16))
        >>> fake = np.vstack([train[:5] + 0.01 * rng.normal(size=(5, 16)), rng.normal(size=(95, 16))])
        >>> test = rng.normal(size=(500, 16))
        >>> rep = memorization_report(train, fake, test, k=3, progress=False)
        >>> rep.n_flagged >= 5, sorted(rep.most_suspicious(5)["fake_row"].tolist())
        (True, [0, 1, 2, 3, 4])
        >>> round(rep.test_flag_rate, 2)
        0.01
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}; got {metric!r}")
    quantile = check_quantile(quantile)
    if threshold is not None:
        threshold = _check_threshold(threshold)
    if backend_options is not None and not isinstance(backend_options, dict):
        raise TypeError(f"backend_options must be a dict of backend parameters; got {type(backend_options).__name__}")
    sources: dict[str, FeatureSource | None] = {
        "train": feature_source(train, "train"),
        "fake": feature_source(fake, "fake"),
        "test": None if test is None else feature_source(test, "test"),
    }
    check_compatible_sources({name: s for name, s in sources.items() if s is not None})
    x_train = as_features(sources["train"].features, "train", min_samples=2)
    x_fake = as_features(sources["fake"].features, "fake")
    check_same_dim(x_train, x_fake, "train", "fake")
    x_test = None
    if test is not None:
        x_test = as_features(sources["test"].features, "test")
        check_same_dim(x_train, x_test, "train", "test")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    if k > x_train.shape[0]:
        raise ValueError(f"k={k} but train has only {x_train.shape[0]} samples; lower k")

    with limit_threads(threads):
        searcher = build_searcher(
            x_train,
            metric=metric,
            backend=backend,
            block_size=block_size,
            seed=seed,
            progress=progress,
            engine=engine,
            ray_address=ray_address,
            workers=workers,
            origin=sources["train"].features,
            **(backend_options or {}),
        )
        try:
            dist, rows = searcher.search(x_fake, int(k), progress=progress)
            if x_test is not None:
                t_dist, t_rows = searcher.search(x_test, 1, progress=progress)
                t_dist, t_rows = t_dist[:, 0], t_rows[:, 0]
            nearest = rows[:, 0] if x_test is None else np.concatenate([rows[:, 0], t_rows])
            if np.any(nearest < 0):
                raise ValueError(
                    f"the {backend} search found no training neighbour for some samples; raise nprobe / ef_search "
                    "in backend_options or use backend='exact'"
                )
            matched, inverse = np.unique(nearest, return_inverse=True)
            m_dist, m_rows = searcher.search(np.asarray(x_train[matched]), 2, progress=progress)
        finally:
            searcher.close()
    d2_all = second_distance(m_dist, m_rows, matched)[inverse]

    m = x_fake.shape[0]
    arrays: dict[str, Any] = {
        "train_rows": rows,
        "distances": dist,
        "train_nn_distance": d2_all[:m],
        "ratio": authenticity_ratio(dist[:, 0], d2_all[:m]),
    }
    if x_test is not None:
        arrays.update(test_distance=t_dist, test_train_rows=t_rows, test_ratio=authenticity_ratio(t_dist, d2_all[m:]))

    if threshold is not None:
        criterion, used_quantile = "distance", None
    elif x_test is not None:
        criterion, used_quantile = "distance", quantile
        threshold = float(np.quantile(t_dist, quantile))
    else:
        criterion, used_quantile, threshold = "ratio", None, 1.0
    settings = {
        "metric": metric,
        "k": int(k),
        "backend": backend,
        "params": dict(searcher.params),
        "n_train": int(x_train.shape[0]),
    }
    return MemorizationReport(
        arrays=arrays,
        sources=sources,
        criterion=criterion,
        threshold=threshold,
        quantile=used_quantile,
        settings=settings,
    )


__all__ = ["CRITERIA", "DEFAULT_QUANTILE", "MemorizationReport", "memorization_report"]
