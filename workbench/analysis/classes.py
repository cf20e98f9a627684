"""Class histograms of real vs generated images: which classes a classifier sees, and how often.

Kynkäänniemi et al., "The Role of ImageNet Classes in Fréchet Inception Distance" (ICLR 2023)
show that FID is very sensitive to the histogram of Inception's Top-N ImageNet classifications:
a generated set whose class histogram matches the real one gets a much better FID without any
change in image quality. :func:`class_histogram` shows those histograms side by side.

Top-N histogram (the convention used everywhere in this package). Each sample votes for each of
its ``N`` highest-scoring classes with weight ``1/N``, so the histogram of ``M`` samples is::

    h_c = 1 / (N M) * sum_i sum_{j <= N} [top_j(i) = c],        sum_c h_c = 1.

It is the mean of the paper's binarised Top-N vectors (1 for each of the N best classes, 0
elsewhere; ``binarize_features`` in the authors' code) divided by N, so matching it is matching
the paper's Top-N class statistics; for N = 1 it is the ordinary Top-1 histogram. The ``count``
columns hold the un-normalised votes: the number of samples having the class among their Top N.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.analysis.result import AnalysisResult
from workbench.cache.reader import EmbeddingCache

BLOCK_ROWS = 8192
#: Default additive smoothing (pseudo-count per class) of the KL divergences: Jeffreys' prior.
DEFAULT_SMOOTHING = 0.5


@dataclass(frozen=True)
class ClassAssignment:
    """The Top-N classes of one sample set.

    Attributes:
        top: ``M x N`` int64 class indices, best first.
        num_classes: ``K``, the number of classes of the classifier (None for labels alone).
        class_names: names of the ``K`` classes when the input carried them.
        kind: ``"scores"`` (logits / probabilities) or ``"labels"``.
    """

    top: np.ndarray
    num_classes: int | None
    class_names: list[str] | None
    kind: str

    @property
    def n(self) -> int:
        return int(self.top.shape[1])


def top_classes(scores: Any, n: int = 1, *, name: str = "scores", block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """Indices of the ``n`` highest scores of each row, best first.

    Args:
        scores: ``M x K`` logits or probabilities (array, memmap or sharded cache array); read
            in blocks of ``block_rows`` rows. Softmax is monotone, so logits and probabilities
            give the same classes.
        n: how many classes per row, ``1 <= n <= K``.
        name: argument name used in error messages.

    Returns:
        ``M x n`` int64. For ``n = 1`` ties go to the lowest index (as ``np.argmax``).

    Raises:
        ValueError: not 2-D, ``n`` out of range, or NaN / inf scores.
    """
    shape = getattr(scores, "shape", None)
    if shape is None:
        scores = np.asarray(scores)
        shape = scores.shape
    if len(shape) != 2:
        raise ValueError(f"{name} must be class scores of shape (N, K); got shape {tuple(shape)}")
    m, k = int(shape[0]), int(shape[1])
    n = _check_top(n, k, name)
    out = np.empty((m, n), dtype=np.int64)
    for start in range(0, m, block_rows):
        block = np.asarray(scores[start : start + block_rows])
        if not np.issubdtype(block.dtype, np.number) or block.dtype == bool:
            raise TypeError(f"{name} must hold numeric class scores; got dtype {block.dtype}")
        if not np.isfinite(block).all():
            bad = start + int(np.argwhere(~np.isfinite(block))[0, 0])
            raise ValueError(f"{name} contains NaN or infinite scores (first at row {bad})")
        if n == 1:
            out[start : start + len(block), 0] = block.argmax(axis=1)
            continue
        part = np.argpartition(-block, n - 1, axis=1)[:, :n]
        order = np.argsort(-np.take_along_axis(block, part, axis=1), axis=1, kind="stable")
        out[start : start + len(block)] = np.take_along_axis(part, order, axis=1)
    return out


def topn_histogram(top: np.ndarray, num_classes: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Normalised Top-N histogram ``h`` (length ``K``, sums to 1) of ``top`` (``M x N`` indices).

    Each sample adds ``w_i / N`` to each of its N classes; ``h = votes / sum(w)`` with ``w = 1``
    by default. ``weights`` (``M``, non-negative, not all zero) gives the weighted histogram.
    """
    top = np.asarray(top)
    m, n = top.shape
    if weights is None:
        votes = np.bincount(top.ravel(), minlength=num_classes).astype(np.float64)
        return votes / (m * n)
    w = np.asarray(weights, dtype=np.float64)
    weighted = np.bincount(top.ravel(), weights=np.repeat(w, n), minlength=num_classes)
    return weighted / (w.sum() * n)


def resolve_classes(x: Any, name: str, top: int = 1) -> ClassAssignment:
    """Top-``top`` classes of a cache (its logits), an ``M x K`` score array, or ``M`` labels.

    Raises:
        ValueError: a cache without logits, labels with ``top > 1``, negative labels, or an
            array that is neither 1-D integer labels nor 2-D scores.
    """
    if isinstance(x, EmbeddingCache):
        if x.logits is None:
            ext = x.manifest["extractor"]["name"]
            raise ValueError(
                f"{name}: the cache {x.path.name} has no logits (extractor {ext!r} is not a classifier). "
                "Use a cache made by a classifier extractor (e.g. 'inception'), or pass labels "
                f"(e.g. {name}.labels) or an N x K score array instead."
            )
        names = x.manifest.get("extractor_class_names")
        return ClassAssignment(
            top_classes(x.logits, top, name=f"{name}.logits"),
            int(x.logits.shape[1]),
            list(names) if names else None,
            "scores",
        )
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    arr = x if hasattr(x, "shape") and hasattr(x, "dtype") else np.asarray(x)
    if arr.ndim == 2:
        return ClassAssignment(top_classes(arr, top, name=name), int(arr.shape[1]), None, "scores")
    if arr.ndim == 1:
        arr = np.asarray(arr)
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(
                f"{name}: a 1-D array is read as class labels and must hold integers; got dtype {arr.dtype}. "
                "Pass class scores as an (N, K) array."
            )
        if top != 1:
            raise ValueError(f"{name}: labels give one class per sample; top={top} needs (N, K) class scores")
        if arr.size == 0:
            raise ValueError(f"{name} holds no samples")
        if arr.min() < 0:
            raise ValueError(
                f"{name} contains negative labels ({int((arr < 0).sum())} of them; -1 means unknown): "
                "drop those samples first"
            )
        return ClassAssignment(arr.astype(np.int64)[:, None], None, None, "labels")
    raise ValueError(
        f"{name} must be a cache with logits, an (N, K) array of class scores, or N integer labels; "
        f"got an array of shape {arr.shape}"
    )


def common_classes(
    real: ClassAssignment, fake: ClassAssignment, class_names: Sequence[str] | None
) -> tuple[int, list[str]]:
    """The shared number of classes ``K`` and their names; checks both sides agree.

    Names: ``class_names`` if given, else the classifier's names stored in a cache's manifest,
    else ``"class <i>"``.

    Raises:
        ValueError: the score arrays have different ``K``, a label is ``>= K``, or
            ``class_names`` has the wrong length.
    """
    ks = {side: a.num_classes for side, a in (("real", real), ("fake", fake)) if a.num_classes is not None}
    if len(set(ks.values())) > 1:
        raise ValueError(
            f"real has {ks['real']} classes (score columns) but fake has {ks['fake']}; "
            "class scores must come from the same classifier"
        )
    k = next(iter(ks.values()), None)
    if k is None:
        k = len(class_names) if class_names is not None else int(max(real.top.max(), fake.top.max())) + 1
    if class_names is not None and len(class_names) != k:
        raise ValueError(f"class_names has {len(class_names)} names but there are {k} classes")
    for side, a in (("real", real), ("fake", fake)):
        if a.top.size and int(a.top.max()) >= k:
            raise ValueError(f"{side} has label {int(a.top.max())} but there are only {k} classes (0..{k - 1})")
    if class_names is None:
        class_names = real.class_names or fake.class_names
    names = [str(c) for c in class_names] if class_names is not None else [f"class {i}" for i in range(k)]
    return k, names


def histogram_divergences(
    real_votes: np.ndarray, fake_votes: np.ndarray, *, smoothing: float = DEFAULT_SMOOTHING
) -> dict[str, float]:
    """Divergences between two class histograms given as vote counts (length ``K``).

    With ``p`` and ``q`` the normalised real and generated histograms:

    - ``tv``: total variation ``1/2 sum |p - q|`` in [0, 1] (no smoothing);
    - ``js``: Jensen-Shannon divergence ``1/2 KL(p||m) + 1/2 KL(q||m)``, ``m = (p + q) / 2``, in
      nats, in [0, ln 2] (no smoothing needed). ``scipy.spatial.distance.jensenshannon`` returns
      its square root;
    - ``kl_real_fake`` = ``KL(p~||q~)`` and ``kl_fake_real`` = ``KL(q~||p~)`` in nats, on
      additively smoothed histograms ``p~_c = (votes_c + a) / (sum votes + a K)`` with
      ``a = smoothing`` pseudo-votes per class (default 0.5, Jeffreys' prior), so classes missing
      on one side give a finite value. ``smoothing=0`` gives the raw KL (``inf`` when a class of
      the first argument is missing from the second).
    """
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0 pseudo-counts per class; got {smoothing}")
    a = np.asarray(real_votes, dtype=np.float64)
    b = np.asarray(fake_votes, dtype=np.float64)
    p, q = a / a.sum(), b / b.sum()
    m = 0.5 * (p + q)
    ps = (a + smoothing) / (a.sum() + smoothing * a.size)
    qs = (b + smoothing) / (b.sum() + smoothing * b.size)
    return {
        "tv": 0.5 * float(np.abs(p - q).sum()),
        "js": max(0.5 * _kl(p, m) + 0.5 * _kl(q, m), 0.0),  # max: rounding can give -1e-17
        "kl_real_fake": max(_kl(ps, qs), 0.0),
        "kl_fake_real": max(_kl(qs, ps), 0.0),
    }


_DIVERGENCE_TEXT = {
    "tv": "total variation 1/2 sum|p-q|, in [0, 1]",
    "js": "Jensen-Shannon divergence (nats), in [0, ln 2]",
    "kl_real_fake": "KL(real || fake) (nats), smoothed",
    "kl_fake_real": "KL(fake || real) (nats), smoothed",
}


class ClassHistogram(AnalysisResult):
    """Top-N class histograms of real and generated samples (see :func:`class_histogram`).

    Tables: ``"classes"`` (main; one row per class seen on either side, sorted by real share,
    then generated share) and ``"divergence"`` (TV, JS, smoothed KLs).

    Attributes:
        real, fake: length-``K`` normalised histograms (sum to 1), indexed by class.
        class_names: the ``K`` class names.
        top: ``N``.
        divergences: ``{"tv", "js", "kl_real_fake", "kl_fake_real"}`` -> float.
    """

    def __init__(
        self,
        tables: dict[str, pd.DataFrame],
        *,
        real: np.ndarray,
        fake: np.ndarray,
        class_names: list[str],
        top: int,
        divergences: dict[str, float],
        title: str,
        summary: str,
    ) -> None:
        super().__init__(tables, title=title, summary=summary, main="classes")
        self.real = real
        self.fake = fake
        self.class_names = class_names
        self.top = top
        self.divergences = divergences

    def display_frame(self) -> pd.DataFrame:
        return self.tables["classes"].head(40)


def class_histogram(
    real: Any,
    fake: Any,
    top: int = 1,
    class_names: Sequence[str] | None = None,
    *,
    smoothing: float = DEFAULT_SMOOTHING,
    include_empty: bool = False,
) -> ClassHistogram:
    """Top-``top`` class histograms of real vs generated samples, with divergences.

    Each sample votes ``1/top`` for each of its ``top`` highest-scoring classes (see the module
    docstring); shares are the normalised votes. For Top-1 this is the class histogram the paper
    plots (Kynkäänniemi et al., ICLR 2023, Fig. 4/5).

    Args:
        real, fake: each an :class:`~workbench.cache.EmbeddingCache` with logits (e.g. an
            ``inception`` cache: 1008 FID-Inception classes), an ``N x K`` array of logits or
            probabilities, or ``N`` integer labels (``top`` must then be 1). Both sides must
            have the same ``K`` when both give scores.
        top: ``N`` of Top-N, ``1 <= N <= K``.
        class_names: names of the ``K`` classes (default: the cache's classifier names, else
            ``"class <i>"``).
        smoothing: pseudo-votes per class for the KL divergences (see
            :func:`histogram_divergences`); TV and JS are unsmoothed.
        include_empty: also list classes with no votes on either side.

    Returns:
        :class:`ClassHistogram`; ``to_frame()`` has columns ``class, class_name, real_count,
        fake_count, real_share, fake_share, difference (fake - real), ratio (fake / real)``.

    Example::

        >>> import numpy as np
        >>> real = np.array([0, 0, 1, 2])
        >>> fake = np.array([0, 1, 1, 1])
        >>> h = class_histogram(real, fake, class_names=["cat", "dog", "fox"])
        >>> h.to_frame()[["class_name", "real_share", "fake_share"]].values.tolist()
        [['cat', 0.5, 0.25], ['dog', 0.25, 0.75], ['fox', 0.25, 0.0]]
        >>> round(h.divergences["tv"], 3)
        0.5
    """
    ra = resolve_classes(real, "real", top)
    fa = resolve_classes(fake, "fake", top)
    k, names = common_classes(ra, fa, class_names)
    real_votes = np.bincount(ra.top.ravel(), minlength=k)
    fake_votes = np.bincount(fa.top.ravel(), minlength=k)
    p = real_votes / real_votes.sum()
    q = fake_votes / fake_votes.sum()
    div = histogram_divergences(real_votes, fake_votes, smoothing=smoothing)
    frame = pd.DataFrame(
        {
            "class": np.arange(k),
            "class_name": names,
            "real_count": real_votes,
            "fake_count": fake_votes,
            "real_share": p,
            "fake_share": q,
            "difference": q - p,
            "ratio": np.divide(q, p, out=np.full(k, np.nan), where=p > 0),
        }
    )
    if not include_empty:
        frame = frame[(real_votes > 0) | (fake_votes > 0)]
    frame = frame.sort_values(["real_share", "fake_share", "class"], ascending=[False, False, True], kind="stable")
    frame = frame.reset_index(drop=True)
    divergence = pd.DataFrame(
        {
            "divergence": list(div),
            "value": list(div.values()),
            "description": [_DIVERGENCE_TEXT[key] for key in div],
        }
    )
    missing = int(((real_votes > 0) & (fake_votes == 0)).sum())
    extra = int(((fake_votes > 0) & (real_votes == 0)).sum())
    label = "Top-1" if top == 1 else f"Top-{top}"
    summary = (
        f"{label} classes of {len(ra.top)} real vs {len(fa.top)} generated samples over {k} classes; "
        f"TV {div['tv']:.4f}, JS {div['js']:.4f} nats; {missing} real class(es) absent from the generated "
        f"set, {extra} generated-only; KL smoothed with {smoothing:g} pseudo-votes per class"
        + ("" if top == 1 else f"; each sample votes 1/{top} for each of its {top} best classes")
    )
    return ClassHistogram(
        {"classes": frame, "divergence": divergence},
        real=p,
        fake=q,
        class_names=names,
        top=top,
        divergences=div,
        title=f"{label} class histogram",
        summary=summary,
    )


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    mask = p > 0
    with np.errstate(divide="ignore"):
        return float(np.sum(p[mask] * (np.log(p[mask]) - np.log(q[mask]))))


def _check_top(n: Any, k: int, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= int(n) <= k:
        raise ValueError(f"top/n must be an integer between 1 and the number of classes of {name} ({k}); got {n!r}")
    return int(n)
