"""Matching Top-N class histograms: improve FD without changing a single image.

Kynkäänniemi, Karras, Aittala, Aila & Lehtinen, "The Role of ImageNet Classes in Fréchet
Inception Distance" (ICLR 2023), Sec. 3: generate a pool of images, give each generated image a
weight so that the *weighted* Top-N class statistics of the pool match those of the real images,
then draw the evaluated set from the pool with probabilities proportional to the weights. The
images are the same ones; only which of them are shown changes. FID drops substantially, while a
feature space that does not care about ImageNet classes (their FD in CLIP space) barely moves.
:func:`match_topn_histogram` reproduces this on cached classifier scores and reports FD before
and after for every feature set passed; :func:`resample_to_histogram` returns just the indices
(e.g. to build a "histogram-matched", i.e. gamed, generated set).

Weights ``w_i >= 0`` of the ``M`` generated samples (normalised to mean 1) are found with one
of two objectives:

``objective="histogram"`` (default). The weighted Top-N histogram (each sample votes ``w_i / N``
for each of its N best classes; see :mod:`workbench.analysis.classes`) must equal the real one.

- Top-1 (exact, closed form): ``w_i = p_real(c_i) / p_fake(c_i)`` for the class ``c_i`` of
  sample i.
- Top-N, N > 1: among all weightings that match, the one closest to uniform (maximum entropy,
  i.e. minimal ``KL(w / M || uniform)``), which has the form ``log w_i = 1/N sum_j l[top_j(i)]``.
  The class potentials ``l`` are found by generalised iterative scaling (Darroch & Ratcliff
  1972; iterative proportional fitting of the votes): ``l_c += log(target_c / current_c)``,
  exact here because every sample's votes sum to 1. Each iteration is O(M N); it stops when the
  total variation to the target is below ``tol`` or after ``max_iter`` iterations (the result
  reports whether it converged: some Top-N histograms cannot be matched exactly by any
  weighting).

Exact matching forces two things, both reported: a generated sample with any Top-N class that
no real sample has gets weight 0, and real classes that no (remaining) generated sample has are
unmatchable, so the target is the real histogram renormalised over the matchable classes.

``objective="fd"`` (what the authors' code does for ``feature_mode="top_n"``, ``resampling/
resample.py``): minimise the Fréchet distance between the Gaussian fits of the binarised Top-N
vectors (1 for each of the N best classes) of the real set and of the weighted generated set,
over log-weights with Adam (the authors use SGD, lr 10, for 10^5 iterations on a GPU). As in
their code only the classes present on both sides are used. This matches class co-occurrences
(the covariance) as well as the histogram (the mean), approximately.

Drawing (``sampling``): ``"multinomial"`` draws ``size`` indices i.i.d. with probabilities
``w / sum(w)`` (as the authors' ``sample_indices_with_weights``); ``"stratified"`` (Top-1 only,
the default there) gives class c exactly ``size * target_c`` samples (largest-remainder
rounding) drawn uniformly among its generated samples, so the matched set's Top-1 histogram
equals the target to within ``1 / size`` per class instead of within multinomial noise.
``"prefix"`` (Top-1 only) gives each class the same counts but takes the class's *first*
generated samples in pool order (with ``replace=True``, a class with too few samples gets
the rest drawn with replacement among its own). On an i.i.d. pool this is a draw without
replacement, and it is coupled to the pool's first ``size`` samples, which are then the uniform
control: the two sets share every sample the matching did not swap, so their FD difference
carries little draw noise.

FD before/after. ``fd_original`` uses all generated samples; ``fd_uniform`` a uniform draw of the
same size and the same replacement as the matched set (seeded), which controls for the draw
itself (duplicates lower the effective sample size and raise FD a little); ``fd_matched`` the
matched set. ``change = fd_matched - fd_uniform`` is the effect of the weights on one draw.
``fd_weighted`` is the FD of the whole pool under the matching weights (frequency weights
scaled to sum to the pool size), the draw's expectation without its sampling noise:
``weighted_relative_change = fd_weighted / fd_original - 1`` compares two statistics of the same
pool, so it measures the effect of the weights alone, to within the pool's own finite-sample
noise. On a pool a few times the size of the draw, one draw's FD scatters by a few percent
(measured on the demo: about 3% for 5,000 of 20,000), which can hide an effect of that size.
The resampled sets' statistics are computed from per-sample multiplicities, never by copying rows.
:func:`bootstrap_topn_matching` gives percentile intervals of ``fd_original``, ``fd_weighted`` and
their relative change (real and generated rows resampled, the weights recomputed per replicate).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.analysis.classes import (
    DEFAULT_SMOOTHING,
    common_classes,
    histogram_divergences,
    resolve_classes,
    topn_histogram,
)
from workbench.analysis.result import AnalysisResult
from workbench.cache.reader import EmbeddingCache
from workbench.metrics.frechet import GaussianStats, fd_from_stats, feature_statistics, warn_if_singular
from workbench.metrics.validation import as_features, check_seed

OBJECTIVES = ("histogram", "fd")
FD_COLUMNS = (
    "extractor",
    "dim",
    "fd_original",
    "fd_weighted",
    "weighted_relative_change",
    "fd_uniform",
    "fd_matched",
    "change",
    "relative_change",
)
SAMPLINGS = ("auto", "multinomial", "stratified", "prefix")
_BLOCK_ROWS = 4096


@dataclass(frozen=True)
class MatchingWeights:
    """Per-sample weights that match the generated Top-N statistics to the real ones.

    Attributes:
        weights: ``M`` non-negative float64 weights of the generated samples, mean 1.
        target: ``K`` histogram the weights aim at (the real Top-N histogram, renormalised over
            the matchable classes).
        objective: ``"histogram"`` or ``"fd"``.
        iterations: iterations run (0 for the Top-1 closed form).
        converged: True when the stopping tolerance was reached (always for Top-1).
        residual_tv: total variation between the weighted generated histogram and ``target``.
        unmatchable_share: real share on classes that no usable generated sample has.
        n_zero: generated samples with weight 0.
        loss: final objective value (FD of the binarised vectors for ``"fd"``, TV otherwise).
    """

    weights: np.ndarray
    target: np.ndarray
    objective: str
    iterations: int
    converged: bool
    residual_tv: float
    unmatchable_share: float
    n_zero: int
    loss: float


def topn_matching_weights(
    real_top: np.ndarray,
    fake_top: np.ndarray,
    num_classes: int,
    *,
    objective: str = "histogram",
    max_iter: int = 2000,
    tol: float = 1e-6,
    steps: int = 500,
    lr: float = 0.05,
) -> MatchingWeights:
    """Weights for the generated samples from Top-N class indices (see the module docstring).

    Args:
        real_top: ``M_real x N`` class indices (from :func:`workbench.analysis.classes.top_classes`).
        fake_top: ``M x N`` class indices of the generated samples (same N).
        num_classes: ``K``.
        objective: ``"histogram"`` (closed form for N = 1, iterative scaling for N > 1) or
            ``"fd"`` (Adam on the FD of binarised Top-N vectors, as the authors' code).
        max_iter, tol: iterative scaling limits (``"histogram"``, N > 1); ``tol`` is the total
            variation at which it stops.
        steps, lr: Adam steps and learning rate on the log-weights (``"fd"``).

    Raises:
        ValueError: unknown objective, mismatched N, or no generated sample can be used.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}; got {objective!r}")
    if real_top.shape[1] != fake_top.shape[1]:
        raise ValueError(f"real and fake Top-N indices have different N ({real_top.shape[1]} vs {fake_top.shape[1]})")
    if objective == "fd":
        return _fd_weights(real_top, fake_top, num_classes, steps=steps, lr=lr)
    return _histogram_weights(real_top, fake_top, num_classes, max_iter=max_iter, tol=tol)


class TopNMatching(AnalysisResult):
    """Result of :func:`match_topn_histogram`.

    Tables: ``"fd"`` (one row per feature set: ``extractor, dim, fd_original, fd_uniform,
    fd_matched, change, relative_change``; main table when features were given),
    ``"divergence"`` (histogram divergences to the real set of the original, uniformly
    resampled, weighted and matched generated sets; main otherwise), ``"classes"`` (per-class
    shares).

    Attributes:
        weights: ``M`` weights of the generated samples (mean 1).
        indices: the drawn indices into the generated set (the matched set).
        uniform_indices: the uniform control draw.
        matching: the :class:`MatchingWeights` with convergence details.
        n: ``N`` of Top-N.
    """

    def __init__(
        self,
        tables: dict[str, pd.DataFrame],
        *,
        main: str,
        matching: MatchingWeights,
        indices: np.ndarray,
        uniform_indices: np.ndarray,
        n: int,
        title: str,
        summary: str,
    ) -> None:
        super().__init__(tables, title=title, summary=summary, main=main)
        self.matching = matching
        self.weights = matching.weights
        self.indices = indices
        self.uniform_indices = uniform_indices
        self.n = n

    def display_frame(self) -> pd.DataFrame:
        return self.tables[self.main].head(40)


def match_topn_histogram(
    real_logits: Any,
    fake_logits: Any,
    features: Mapping[str, tuple[Any, Any]] | None = None,
    n: int = 1,
    *,
    size: int | None = None,
    objective: str = "histogram",
    sampling: str = "auto",
    replace: bool = True,
    class_names: list[str] | None = None,
    max_iter: int = 2000,
    tol: float = 1e-6,
    steps: int = 500,
    lr: float = 0.05,
    smoothing: float = DEFAULT_SMOOTHING,
    seed: int | np.random.Generator | None = 0,
) -> TopNMatching:
    """Reweight and resample the generated set so its Top-N class histogram matches the real one,
    and measure how much FD moves (Kynkäänniemi et al., ICLR 2023, Sec. 3).

    Args:
        real_logits: real class scores: an :class:`~workbench.cache.EmbeddingCache` with logits,
            an ``M_real x K`` array of logits/probabilities, or ``M_real`` labels (N = 1 only).
        fake_logits: generated class scores (cache or ``M x K`` array, same ``K``), the pool.
        features: ``{name: (real_features, fake_features)}`` (arrays, memmaps or caches; the fake
            rows aligned with ``fake_logits``), each compared by FD before and after. Default:
            when both logits arguments are caches, their own features under the extractor's
            name; else none.
        n: ``N`` of Top-N.
        size: size of the matched set (default: the number of real samples, as the paper draws
            50k from a pool of 250k generated images to compare with 50k reals). Use a pool
            several times larger than ``size``: drawing 50k with replacement from a 50k pool
            repeats many images, which raises FD by itself (hence the ``fd_uniform`` control).
        objective: ``"histogram"`` or ``"fd"`` (see the module docstring).
        sampling: ``"multinomial"``, ``"stratified"`` (N = 1 only), ``"prefix"`` (N = 1 only; the
            uniform control is then the first ``size`` generated samples) or ``"auto"``
            (stratified for N = 1, multinomial otherwise).
        replace: draw with replacement (default, as the paper). Without replacement the pool
            must hold enough usable samples: ``size`` at most the number of non-zero weights
            (multinomial) or, per class, the class's generated samples (stratified).
        class_names: names of the ``K`` classes (default: the cache's classifier names).
        max_iter, tol, steps, lr: optimiser settings (:func:`topn_matching_weights`).
        smoothing: pseudo-votes per class for the smoothed KL divergences.
        seed: seeds the draws (matched and uniform control); the weights are deterministic.

    Returns:
        :class:`TopNMatching` with the weights, the drawn indices and the tables.

    Example::

        >>> rng = np.random.default_rng(0)
        >>> real = np.eye(3)[np.repeat([0, 1, 2], [300, 200, 100])]       # one-hot class scores
        >>> fake = np.eye(3)[np.repeat([0, 1, 2], [100, 300, 500])]
        >>> real_f = real + rng.normal(0, 0.1, real.shape)               # class-driven features
        >>> fake_f = fake + rng.normal(0, 0.1, fake.shape)
        >>> res = match_topn_histogram(real, fake, features={"toy": (real_f, fake_f)})
        >>> sorted(set(res.weights.round(2).tolist()))                   # p_real(c) / p_fake(c)
        [0.3, 1.0, 4.5]
        >>> np.bincount(fake[res.indices].argmax(1)).tolist()            # the real histogram
        [300, 200, 100]
        >>> bool(res.to_frame()["fd_matched"][0] < 0.1 * res.to_frame()["fd_uniform"][0])
        True
    """
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}; got {sampling!r}")
    ra = resolve_classes(real_logits, "real_logits", n)
    fa = resolve_classes(fake_logits, "fake_logits", n)
    k, names = common_classes(ra, fa, class_names)
    n_real, n_fake = len(ra.top), len(fa.top)
    if features is None and isinstance(real_logits, EmbeddingCache) and isinstance(fake_logits, EmbeddingCache):
        features = {real_logits.extractor["name"]: (real_logits, fake_logits)}
    feature_sets = _check_features(features or {}, n_fake)
    size = _check_size(size, n_real)

    matching = topn_matching_weights(
        ra.top, fa.top, k, objective=objective, max_iter=max_iter, tol=tol, steps=steps, lr=lr
    )
    rng = check_seed(seed)
    draw_rng, uniform_rng = rng.spawn(2)
    indices = _draw(matching, fa.top, size, sampling, replace, draw_rng)
    if size > n_fake and (sampling == "prefix" or not replace):
        raise ValueError(f"size={size} exceeds the {n_fake} generated samples; use replace=True or a smaller size")
    if sampling == "prefix":
        uniform = np.arange(size, dtype=np.int64)
    else:
        uniform = uniform_rng.choice(n_fake, size=size, replace=replace)

    real_votes = np.bincount(ra.top.ravel(), minlength=k).astype(np.float64)
    hists = {
        "generated (original)": topn_histogram(fa.top, k),
        "uniform resample": topn_histogram(fa.top[uniform], k),
        "weighted (expected)": topn_histogram(fa.top, k, matching.weights),
        "matched resample": topn_histogram(fa.top[indices], k),
    }
    counts = {
        "generated (original)": n_fake,
        "uniform resample": size,
        "weighted (expected)": n_fake,
        "matched resample": size,
    }
    divergence = pd.DataFrame(
        [
            {"set": key, **histogram_divergences(real_votes, h * counts[key] * n, smoothing=smoothing)}
            for key, h in hists.items()
        ]
    )
    real_share = real_votes / real_votes.sum()
    classes = pd.DataFrame(
        {
            "class": np.arange(k),
            "class_name": names,
            "real_share": real_share,
            "fake_share": hists["generated (original)"],
            "weighted_share": hists["weighted (expected)"],
            "matched_share": hists["matched resample"],
            "target_share": matching.target,
        }
    )
    classes = classes[(classes["real_share"] > 0) | (classes["fake_share"] > 0)]
    classes = classes.sort_values(["real_share", "fake_share", "class"], ascending=[False, False, True], kind="stable")
    classes = classes.reset_index(drop=True)

    fd_rows = [
        _fd_row(name, real_f, fake_f, uniform, indices, matching.weights)
        for name, (real_f, fake_f) in feature_sets.items()
    ]
    fd_table = pd.DataFrame(fd_rows, columns=list(FD_COLUMNS))
    tables = (
        {"fd": fd_table, "divergence": divergence, "classes": classes}
        if fd_rows
        else {"divergence": divergence, "classes": classes, "fd": fd_table}
    )
    label = f"Top-{n}"
    tv0 = float(divergence["tv"].iloc[0])
    tv1 = float(divergence["tv"].iloc[3])
    fd_text = "; ".join(
        f"FD[{r['extractor']}] {r['fd_uniform']:.4g} -> {r['fd_matched']:.4g} ({100 * r['relative_change']:+.1f}%)"
        for r in fd_rows
    )
    summary = (
        f"{label} histogram matching ({matching.objective}) of {n_fake} generated to {n_real} real samples; "
        f"drew {size} {'with' if replace else 'without'} replacement"
        + ("; " if isinstance(seed, np.random.Generator) else f" (seed {0 if seed is None else seed}); ")
        + f"TV {tv0:.4f} -> {tv1:.4f}; {matching.n_zero} zero weights"
        + (
            f"; {matching.unmatchable_share:.2%} of the real histogram unmatchable"
            if matching.unmatchable_share > 0
            else ""
        )
        + ("" if matching.converged else f"; NOT converged (residual TV {matching.residual_tv:.2e})")
        + (f"; {fd_text}" if fd_text else "")
    )
    return TopNMatching(
        tables,
        main=next(iter(tables)),
        matching=matching,
        indices=indices,
        uniform_indices=uniform,
        n=n,
        title=f"{label} class histogram matching",
        summary=summary,
    )


def resample_to_histogram(
    real_logits: Any,
    fake_logits: Any,
    n: int = 1,
    *,
    size: int | None = None,
    objective: str = "histogram",
    sampling: str = "auto",
    replace: bool = True,
    max_iter: int = 2000,
    tol: float = 1e-6,
    steps: int = 500,
    lr: float = 0.05,
    seed: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """Indices into the generated set whose Top-N class histogram matches the real one.

    The same weights and draw as :func:`match_topn_histogram` (same arguments, same seed -> the
    same indices), without the FD evaluation. Use the indices to build a "histogram-matched"
    generated set, e.g. ``fake_images[idx]`` or ``fake_features[idx]``.

    Returns:
        ``size`` int64 indices (default size: the number of real samples).

    Example::

        >>> rng = np.random.default_rng(0)
        >>> real = np.repeat([0, 1, 2, 3], [400, 300, 200, 100])          # labels work for Top-1
        >>> fake = np.eye(4)[rng.choice(4, 2000)]                          # generated class scores
        >>> idx = resample_to_histogram(real, fake, size=1000, seed=1)
        >>> np.bincount(fake[idx].argmax(1)).tolist()
        [400, 300, 200, 100]
    """
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}; got {sampling!r}")
    ra = resolve_classes(real_logits, "real_logits", n)
    fa = resolve_classes(fake_logits, "fake_logits", n)
    k, _ = common_classes(ra, fa, None)
    size = _check_size(size, len(ra.top))
    matching = topn_matching_weights(
        ra.top, fa.top, k, objective=objective, max_iter=max_iter, tol=tol, steps=steps, lr=lr
    )
    draw_rng, _ = check_seed(seed).spawn(2)
    return _draw(matching, fa.top, size, sampling, replace, draw_rng)


BOOTSTRAP_COLUMNS = (
    "extractor",
    "dim",
    "fd_original",
    "fd_original_low",
    "fd_original_high",
    "fd_weighted",
    "fd_weighted_low",
    "fd_weighted_high",
    "weighted_relative_change",
    "change_low",
    "change_high",
    "change_std",
    "n_boot",
)


def bootstrap_topn_matching(
    real_logits: Any,
    fake_logits: Any,
    features: Mapping[str, tuple[Any, Any]],
    n: int = 1,
    *,
    n_boot: int = 100,
    ci: float = 0.95,
    objective: str = "histogram",
    max_iter: int = 2000,
    tol: float = 1e-6,
    steps: int = 500,
    lr: float = 0.05,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Bootstrap intervals of the weighted FD change of Top-N matching (``fd_weighted / fd_original - 1``).

    Each replicate resamples the real rows and the generated rows with replacement (the same rows
    under every feature set), recomputes the matching weights from the resampled class scores
    (:func:`topn_matching_weights`), and computes FD of the resampled generated set with uniform
    weights and with the matching weights, from per-row multiplicities
    (:func:`count_weighted_statistics`, no copies). The point estimates are those of
    :func:`match_topn_histogram` (``fd_original``, ``fd_weighted``, ``weighted_relative_change``);
    the intervals are percentile intervals at confidence ``ci``. Resampling with replacement biases
    each FD upwards (duplicates lower the effective sample size), so the FD intervals sit a little
    above the point estimates; the ratio of two FDs of the same replicate is much less affected.

    Args:
        real_logits, fake_logits: class scores as in :func:`match_topn_histogram` (caches, ``M x K``
            arrays, or labels for N = 1).
        features: ``{name: (real_features, fake_features)}``, fake rows aligned with ``fake_logits``.
        n: ``N`` of Top-N.
        n_boot: bootstrap replicates (>= 2).
        ci: confidence of the percentile intervals, in (0, 1).
        objective, max_iter, tol, steps, lr: as :func:`topn_matching_weights`.
        seed: seeds the resampling.

    Returns:
        One row per feature set: ``extractor, dim, fd_original (+ _low, _high), fd_weighted (+ _low,
        _high), weighted_relative_change, change_low, change_high, change_std, n_boot`` (FD in
        squared feature units; changes as fractions, -0.1 = 10% lower).

    Example::

        >>> rng = np.random.default_rng(0)
        >>> real = np.eye(3)[np.repeat([0, 1, 2], [300, 200, 100])]
        >>> fake = np.eye(3)[np.repeat([0, 1, 2], [100, 300, 500])]
        >>> feats = {"toy": (real + rng.normal(0, 0.1, real.shape), fake + rng.normal(0, 0.1, fake.shape))}
        >>> row = bootstrap_topn_matching(real, fake, feats, n_boot=20).iloc[0]
        >>> bool(row["change_high"] < 0 and row["change_low"] <= row["weighted_relative_change"] <= row["change_high"])
        True
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2; got {n_boot!r}")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1); got {ci!r}")
    ra = resolve_classes(real_logits, "real_logits", n)
    fa = resolve_classes(fake_logits, "fake_logits", n)
    k, _ = common_classes(ra, fa, None)
    n_real, n_fake = len(ra.top), len(fa.top)
    feature_sets = _check_features(features, n_fake)
    if not feature_sets:
        raise ValueError("features is empty: pass {name: (real_features, fake_features)} to bootstrap their FD")
    arrays = {}
    for name, (real_f, fake_f) in feature_sets.items():
        real_arr = np.asarray(as_features(real_f, f"features[{name!r}][0] (real)", min_samples=2))
        fake_arr = np.asarray(as_features(fake_f, f"features[{name!r}][1] (fake)", min_samples=2))
        if real_arr.shape[0] != n_real:
            raise ValueError(
                f"features[{name!r}] has {real_arr.shape[0]} real rows but real_logits has {n_real}; "
                "the real features must be aligned row by row with the real class scores"
            )
        if real_arr.shape[1] != fake_arr.shape[1]:
            raise ValueError(
                f"features[{name!r}]: real and fake have different dimensions ({real_arr.shape[1]} vs "
                f"{fake_arr.shape[1]})"
            )
        arrays[name] = (real_arr, fake_arr)
    options: dict[str, Any] = dict(objective=objective, max_iter=max_iter, tol=tol, steps=steps, lr=lr)

    def fds(real_counts: np.ndarray, fake_counts: np.ndarray, weights: np.ndarray) -> dict[str, tuple[float, float]]:
        out = {}
        for name, (real_arr, fake_arr) in arrays.items():
            r = count_weighted_statistics(real_arr, real_counts)
            u = count_weighted_statistics(fake_arr, fake_counts)
            w = count_weighted_statistics(fake_arr, weights * (fake_counts.sum() / weights.sum()))
            out[name] = (fd_from_stats(r.mean, r.cov, u.mean, u.cov), fd_from_stats(r.mean, r.cov, w.mean, w.cov))
        return out

    w0 = topn_matching_weights(ra.top, fa.top, k, **options).weights
    point = fds(np.ones(n_real), np.ones(n_fake), w0)
    rng = check_seed(seed)
    reps: dict[str, list[tuple[float, float]]] = {name: [] for name in arrays}
    for _ in range(int(n_boot)):
        ri = rng.integers(0, n_real, n_real)
        fi = rng.integers(0, n_fake, n_fake)
        w = topn_matching_weights(ra.top[ri], fa.top[fi], k, **options).weights
        real_counts = np.bincount(ri, minlength=n_real).astype(np.float64)
        fake_counts = np.bincount(fi, minlength=n_fake).astype(np.float64)
        weighted = np.bincount(fi, weights=w, minlength=n_fake)
        for name, pair in fds(real_counts, fake_counts, weighted).items():
            reps[name].append(pair)
    alpha = (1 - ci) / 2
    rows = []
    for name, (fd0, fdw) in point.items():
        r = np.asarray(reps[name])
        change = r[:, 1] / r[:, 0] - 1
        q = lambda x: np.quantile(x, [alpha, 1 - alpha])  # noqa: E731
        (o_lo, o_hi), (w_lo, w_hi), (c_lo, c_hi) = q(r[:, 0]), q(r[:, 1]), q(change)
        rows.append(
            {
                "extractor": name,
                "dim": arrays[name][0].shape[1],
                "fd_original": fd0,
                "fd_original_low": o_lo,
                "fd_original_high": o_hi,
                "fd_weighted": fdw,
                "fd_weighted_low": w_lo,
                "fd_weighted_high": w_hi,
                "weighted_relative_change": fdw / fd0 - 1 if fd0 != 0 else np.nan,
                "change_low": c_lo,
                "change_high": c_hi,
                "change_std": float(np.std(change, ddof=1)),
                "n_boot": int(n_boot),
            }
        )
    return pd.DataFrame(rows, columns=list(BOOTSTRAP_COLUMNS))


# --- weights -------------------------------------------------------------------------------------


def _usable(real_top: np.ndarray, fake_top: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Real histogram, usable generated samples, target over matchable classes, unmatchable share."""
    real_hist = topn_histogram(real_top, k)
    alive = (real_hist[fake_top] > 0).all(axis=1)
    if not alive.any():
        raise ValueError(
            "no generated sample has all of its Top-N classes among the real samples' Top-N classes, "
            "so no reweighting can match the histograms; use a smaller n or more samples"
        )
    available = np.bincount(fake_top[alive].ravel(), minlength=k) > 0
    unmatchable = float(real_hist[~available].sum())
    target = np.where(available, real_hist, 0.0) / (1.0 - unmatchable)
    return real_hist, alive, target, unmatchable


def _histogram_weights(
    real_top: np.ndarray, fake_top: np.ndarray, k: int, *, max_iter: int, tol: float
) -> MatchingWeights:
    _, alive, target, unmatchable = _usable(real_top, fake_top, k)
    top = fake_top[alive]
    n = top.shape[1]
    if n == 1:
        current = topn_histogram(top, k)
        w_alive = target[top[:, 0]] / current[top[:, 0]]
        iterations, converged = 0, True
    else:
        if max_iter < 1 or tol < 0:
            raise ValueError(f"max_iter must be >= 1 and tol >= 0; got {max_iter}, {tol}")
        matchable = target > 0
        log_target = np.log(target, where=matchable, out=np.zeros(k))
        potential = np.zeros(k)
        converged = False
        for iterations in range(1, max_iter + 1):  # noqa: B007  (reported after the loop)
            log_w = potential[top].mean(axis=1)
            w_alive = np.exp(log_w - log_w.max())
            current = topn_histogram(top, k, w_alive)
            if 0.5 * np.abs(current - target).sum() <= tol:
                converged = True
                break
            potential[matchable] += log_target[matchable] - np.log(current[matchable])
    weights = np.zeros(len(fake_top))
    weights[alive] = w_alive
    weights *= len(weights) / weights.sum()
    residual = 0.5 * float(np.abs(topn_histogram(fake_top, k, weights) - target).sum())
    return MatchingWeights(
        weights=weights,
        target=target,
        objective="histogram",
        iterations=iterations,
        converged=converged,
        residual_tv=residual,
        unmatchable_share=unmatchable,
        n_zero=int((weights == 0).sum()),
        loss=residual,
    )


def _fd_weights(real_top: np.ndarray, fake_top: np.ndarray, k: int, *, steps: int, lr: float) -> MatchingWeights:
    import torch

    if steps < 1 or lr <= 0:
        raise ValueError(f"steps must be >= 1 and lr > 0; got {steps}, {lr}")
    present = (np.bincount(real_top.ravel(), minlength=k) > 0) & (np.bincount(fake_top.ravel(), minlength=k) > 0)
    if not present.any():
        raise ValueError("the real and generated Top-N classes have no class in common; nothing to match")
    column = np.full(k, -1)
    column[present] = np.arange(int(present.sum()))
    d = int(present.sum())

    real_mean, real_second = _binary_moments(column[real_top], d)
    real_cov = real_second - np.outer(real_mean, real_mean)
    evals, evecs = np.linalg.eigh(real_cov)
    sqrt_real = (evecs * np.sqrt(np.clip(evals, 0, None))) @ evecs.T

    # Samples with the same set of Top-N classes have the same binarised vector, hence the same
    # gradient from the same start: one log-weight per distinct set is the same optimisation.
    groups, group_of, group_size = np.unique(
        np.sort(column[fake_top], axis=1), axis=0, return_inverse=True, return_counts=True
    )
    group_of = group_of.ravel()
    g = len(groups)
    cols = torch.from_numpy(groups)  # -1 marks a class left out of the comparison
    valid = cols >= 0
    pa = cols[:, :, None].expand(-1, -1, cols.shape[1])
    pb = cols[:, None, :].expand(-1, cols.shape[1], -1)
    pair_ok = (pa >= 0) & (pb >= 0)
    pair_rows = torch.arange(g)[:, None, None].expand_as(pa)[pair_ok]
    pair_bins = (pa * d + pb)[pair_ok]
    single_rows = torch.arange(g)[:, None].expand_as(cols)[valid]
    single_bins = cols[valid]
    log_size = torch.from_numpy(np.log(group_size.astype(np.float64)))

    mu_r = torch.from_numpy(real_mean)
    sqrt_r = torch.from_numpy(sqrt_real)
    log_w = torch.zeros(g, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([log_w], lr=lr)

    def moments(lw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = torch.softmax(lw + log_size, dim=0)  # probability mass of each group
        mean = torch.zeros(d, dtype=torch.float64).index_add(0, single_bins, p[single_rows])
        second = torch.zeros(d * d, dtype=torch.float64).index_add(0, pair_bins, p[pair_rows]).reshape(d, d)
        return mean, second - torch.outer(mean, mean)

    def loss_fn() -> torch.Tensor:
        mean, cov = moments(log_w)
        cross = torch.linalg.eigvalsh(sqrt_r @ cov @ sqrt_r)
        trace_sqrt = torch.sqrt(torch.clamp(cross, min=1e-12)).sum()
        return ((mean - mu_r) ** 2).sum() + torch.trace(cov) - 2 * trace_sqrt

    best, best_w = np.inf, log_w.detach().clone()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn()
        if float(loss.detach()) < best:
            best, best_w = float(loss.detach()), log_w.detach().clone()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        if float(loss_fn()) < best:
            best_w = log_w.detach().clone()
        mean, cov = (t.numpy() for t in moments(best_w))
    final_fd = fd_from_stats(real_mean, real_cov, mean, (cov + cov.T) / 2)
    per_sample = np.exp(best_w.numpy() - best_w.numpy().max())[group_of]
    weights = per_sample * (len(per_sample) / per_sample.sum())
    real_hist = topn_histogram(real_top, k)
    residual = 0.5 * float(np.abs(topn_histogram(fake_top, k, weights) - real_hist).sum())
    return MatchingWeights(
        weights=weights,
        target=real_hist,
        objective="fd",
        iterations=steps,
        converged=True,
        residual_tv=residual,
        unmatchable_share=float(real_hist[~present].sum()),
        n_zero=int((weights == 0).sum()),
        loss=final_fd,
    )


def _binary_moments(cols: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and mean outer product of binarised vectors given by column indices (-1 = dropped)."""
    m = len(cols)
    kept = cols[cols >= 0]
    mean = np.bincount(kept, minlength=d) / m
    a, b = cols[:, :, None], cols[:, None, :]
    ok = (a >= 0) & (b >= 0)
    pairs = (np.broadcast_to(a, ok.shape) * d + np.broadcast_to(b, ok.shape))[ok]
    second = np.bincount(pairs, minlength=d * d).reshape(d, d) / m
    return mean, second


# --- drawing -------------------------------------------------------------------------------------


def _draw(
    matching: MatchingWeights, fake_top: np.ndarray, size: int, sampling: str, replace: bool, rng: np.random.Generator
) -> np.ndarray:
    n = fake_top.shape[1]
    if sampling == "auto":
        sampling = "stratified" if n == 1 and matching.objective == "histogram" else "multinomial"
    if sampling in ("stratified", "prefix"):
        if n != 1:
            raise ValueError(f"sampling={sampling!r} needs Top-1 (n=1); got n={n}. Use sampling='multinomial'")
        return _draw_stratified(matching, fake_top[:, 0], size, replace, rng, prefix=sampling == "prefix")
    w = matching.weights
    nonzero = int((w > 0).sum())
    if not replace and size > nonzero:
        raise ValueError(
            f"size={size} exceeds the {nonzero} generated samples with non-zero weight; "
            "use replace=True or a smaller size"
        )
    return rng.choice(len(w), size=size, replace=replace, p=w / w.sum()).astype(np.int64)


def _draw_stratified(
    matching: MatchingWeights,
    fake_class: np.ndarray,
    size: int,
    replace: bool,
    rng: np.random.Generator,
    prefix: bool = False,
) -> np.ndarray:
    target = matching.target
    raw = size * target
    counts = np.floor(raw).astype(np.int64)
    short = size - int(counts.sum())
    if short:
        order = np.argsort(-(raw - counts), kind="stable")  # largest remainders first, then class index
        counts[order[:short]] += 1
    usable = matching.weights > 0
    parts = []
    for c in np.flatnonzero(counts):
        pool = np.flatnonzero((fake_class == c) & usable)
        if not replace and counts[c] > len(pool):
            raise ValueError(
                f"class {c} needs {counts[c]} samples but the generated set has {len(pool)}; "
                "use replace=True or a smaller size"
            )
        if prefix:  # the class's first samples, then (replace=True only) repeats of its own
            extra = int(counts[c]) - len(pool)
            parts.append(pool[: counts[c]])
            if extra > 0:
                parts.append(rng.choice(pool, size=extra, replace=True))
        else:
            parts.append(rng.choice(pool, size=int(counts[c]), replace=replace))
    drawn = np.concatenate(parts).astype(np.int64)
    return np.sort(drawn) if prefix else rng.permutation(drawn)


# --- FD of resampled sets ------------------------------------------------------------------------


def _fd_row(
    name: str, real_f: Any, fake_f: Any, uniform: np.ndarray, matched: np.ndarray, weights: np.ndarray
) -> dict[str, Any]:
    real_arr = as_features(real_f, f"features[{name!r}][0] (real)", min_samples=2)
    fake_arr = as_features(fake_f, f"features[{name!r}][1] (fake)", min_samples=2)
    if real_arr.shape[1] != fake_arr.shape[1]:
        raise ValueError(
            f"features[{name!r}]: real and fake have different dimensions ({real_arr.shape[1]} vs "
            f"{fake_arr.shape[1]}); were they made by the same extractor?"
        )
    dim = real_arr.shape[1]
    warn_if_singular(real_arr.shape[0], dim, f"features[{name!r}] real", stacklevel=5)
    warn_if_singular(len(np.unique(matched)), dim, f"features[{name!r}] matched set", stacklevel=5)
    real_stats = feature_statistics(real_arr)
    results = {}
    for key, counts in (
        ("fd_original", None),
        ("fd_weighted", weights * (len(weights) / weights.sum())),
        ("fd_uniform", np.bincount(uniform, minlength=len(fake_arr))),
        ("fd_matched", np.bincount(matched, minlength=len(fake_arr))),
    ):
        stats = feature_statistics(fake_arr) if counts is None else count_weighted_statistics(fake_arr, counts)
        results[key] = fd_from_stats(real_stats.mean, real_stats.cov, stats.mean, stats.cov)
    change = results["fd_matched"] - results["fd_uniform"]

    def relative(a: float, b: float) -> float:
        return a / b - 1 if b != 0 else np.nan

    return {
        "extractor": name,
        "dim": dim,
        **results,
        "weighted_relative_change": relative(results["fd_weighted"], results["fd_original"]),
        "change": change,
        "relative_change": relative(results["fd_matched"], results["fd_uniform"]),
    }


def count_weighted_statistics(x: Any, counts: np.ndarray, *, block_rows: int = _BLOCK_ROWS) -> GaussianStats:
    """Mean and ``ddof=1`` covariance of the multiset holding row i of ``x`` ``counts[i]`` times.

    Equal (up to rounding) to ``feature_statistics(x[np.repeat(arange(N), counts)])`` without
    building that copy: two passes over row blocks (weighted mean, then weighted scatter of the
    centred rows ``sqrt(c_i) (x_i - mean)``), float64. Non-integer counts are frequency weights
    (mean ``sum(c_i x_i) / C``, covariance ``scatter / (C - 1)`` with ``C = sum(c_i)``).
    """
    arr = as_features(x, "x")
    c = np.asarray(counts)
    if c.shape != (arr.shape[0],) or not np.all(np.isfinite(c)) or (c < 0).any():
        raise ValueError(f"counts must be {arr.shape[0]} finite non-negative numbers; got shape {c.shape}")
    total = float(c.sum())
    if total <= 1:
        raise ValueError(f"the covariance needs counts summing to more than 1; they sum to {total:g}")
    mean = np.zeros(arr.shape[1])
    for start in range(0, arr.shape[0], block_rows):
        cb = c[start : start + block_rows]
        rows = np.flatnonzero(cb)
        if rows.size:
            mean += cb[rows] @ np.asarray(arr[start + rows], dtype=np.float64)
    mean /= total
    scatter = np.zeros((arr.shape[1], arr.shape[1]))
    for start in range(0, arr.shape[0], block_rows):
        cb = c[start : start + block_rows]
        rows = np.flatnonzero(cb)
        if rows.size:
            centred = np.asarray(arr[start + rows], dtype=np.float64) - mean
            centred *= np.sqrt(cb[rows].astype(np.float64))[:, None]
            scatter += centred.T @ centred
    return GaussianStats(mean=mean, cov=scatter / (total - 1), n=int(round(total)))


def _check_features(features: Mapping[str, tuple[Any, Any]], n_fake: int) -> dict[str, tuple[Any, Any]]:
    out = {}
    for name, pair in features.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"features[{name!r}] must be a (real_features, fake_features) pair")
        real_f, fake_f = (p.features if isinstance(p, EmbeddingCache) else p for p in pair)
        rows = getattr(fake_f, "shape", (len(fake_f),))[0]
        if rows != n_fake:
            raise ValueError(
                f"features[{name!r}] has {rows} generated rows but fake_logits has {n_fake}; "
                "the generated features must be aligned row by row with the generated class scores"
            )
        out[str(name)] = (real_f, fake_f)
    return out


def _check_size(size: int | None, n_real: int) -> int:
    if size is None:
        return n_real
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 2:
        raise ValueError(f"size must be an integer >= 2 (samples in the matched set); got {size!r}")
    return int(size)
