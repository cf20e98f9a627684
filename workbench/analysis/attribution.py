"""Per-sample attribution: which samples a metric is looking at, for any extractor's features.

:func:`fd_contributions` scores every generated sample by how much it raises the Fréchet
distance; :func:`metric_contributions` gives the per-sample quantities that the k-NN metrics
average (realism score, inside-the-real-manifold flag, number of real balls containing a fake,
...), so a widget can show "what this metric is looking at" as a grid of samples sorted by score.

Fréchet distance, one sample at a time
--------------------------------------
Notation: fake rows ``x_1..x_n`` (``D`` dims) with mean ``mu`` and ``ddof=1`` covariance ``S``,
real mean/covariance ``mu_r, S_r``, ``e = mu - mu_r``, ``d_i = x_i - mu``, and

    FD = ||e||^2 + Tr S_r + Tr S - 2 Tr (S_r S)^{1/2}      (Dowson & Landau 1982; Heusel et al. 2017).

Factor ``S_r = F F^T`` (``D x r``: Cholesky, or ``F = V sqrt(w)`` on the numerical range when
``S_r`` is singular). The non-zero eigenvalues of ``S_r S`` are those of the ``r x r`` PSD matrix
``A = F^T S F = U diag(lam) U^T``, so ``Tr (S_r S)^{1/2} = sum_k sqrt(lam_k)``. Every per-sample
quantity below needs only the projections ``z_i = U^T F^T d_i`` (one ``n x D x r`` product,
streamed in row blocks).

Removing sample ``i`` is a rank-one downdate (Chan, Golub & LeVeque 1979)::

    mu_{-i} = mu - d_i / (n-1)
    S_{-i}  = ((n-1) S - n/(n-1) d_i d_i^T) / (n-2)
    F^T S_{-i} F = alpha diag(lam) - beta z_i z_i^T  (in the U basis),
        alpha = (n-1)/(n-2), beta = n / ((n-1)(n-2))

so the mean and trace terms of ``FD_{-i} - FD`` are closed forms, and the trace-sqrt term is the
change of ``Tr sqrt`` under a rank-one downdate of a diagonal matrix ``B = alpha diag(lam)``. With
``sqrt(x) = (2/pi) int_0^inf x / (x + u^2) du`` and Sherman-Morrison,

    Tr sqrt(B - c z z^T) - Tr sqrt(B) = -(2c/pi) int_0^inf u^2 g2(u^2) / (1 - c g1(u^2)) du,
    g1(t) = sum_k z_k^2 / (b_k + t),  g2(t) = sum_k z_k^2 / (b_k + t)^2,

which is evaluated for all samples at once by the trapezoidal rule in ``v = log u`` (the
integrand is analytic in a strip of half-width pi/2 and decays exponentially at both ends, so the
rule converges geometrically; 400 to 500 nodes give ~1e-13 relative accuracy). Cost: three
``n x r x (nodes)`` matrix products, no per-sample eigen-decomposition. This is
``method="leave_one_out"``: exact, ``FD(real, fake) - FD(real, fake without i)`` for every ``i``.

``method="gradient"`` is the first-order Taylor expansion of FD in ``(mu, S)`` at the full data,
evaluated at the downdate ``(mu_{-i} - mu, S_{-i} - S)``. With ``dFD/dmu = 2 e`` and
``dFD/dS = I - T``, ``T = F A^{-1/2} F^T`` (the optimal-transport map between the two Gaussians),

    FD_{-i} - FD ~= -2 e.d_i/(n-1) + [Tr S - Tr sqrt(A) - n/(n-1) (||d_i||^2 - sum_k z_ik^2/sqrt(lam_k))] / (n-2).

:func:`fd_sample_gradients` gives ``dFD/dx_i = (2/n) e + (2/(n-1)) (I - T) d_i`` (the same two
derivatives through the chain rule). Directions where ``A`` is zero to rounding
(``lam_k <= lam_max eps^2``, e.g. fewer fake samples than dimensions) are left out: the square
root is not differentiable there.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.analysis.result import AnalysisResult
from workbench.cache.reader import EmbeddingCache
from workbench.metrics.frechet import (
    DEFAULT_BLOCK_ROWS,
    GaussianStats,
    feature_statistics,
    trace_sqrt_product,
    warn_if_singular,
)
from workbench.metrics.prdc import prdc
from workbench.metrics.precision_recall import precision_recall, realism_score
from workbench.metrics.validation import as_features, check_same_dim

FD_METHODS: tuple[str, ...] = ("gradient", "leave_one_out")

#: Per-sample views of the k-NN metrics: name -> (which set the rows are, default k, meaning of score).
KNN_METRICS: dict[str, tuple[str, int, str]] = {
    "precision": ("fake", 5, "1 when the fake lies inside some real k-NN ball (PRDC precision, k=5)"),
    "density": ("fake", 5, "number of real k-NN balls containing the fake / k (PRDC density, k=5)"),
    "prdc": (
        "fake",
        5,
        "number of real k-NN balls containing the fake / k (PRDC density, k=5); "
        "column in_real_manifold is the precision flag",
    ),
    "recall": ("real", 5, "1 when the real sample lies inside some fake k-NN ball (PRDC recall, k=5)"),
    "coverage": ("real", 5, "1 when the real sample's k-NN ball contains some fake (PRDC coverage, k=5)"),
    "ipr_precision": ("fake", 3, "1 when the fake lies inside some real k-NN ball (improved precision, k=3)"),
    "ipr_recall": ("real", 3, "1 when the real sample lies inside some fake k-NN ball (improved recall, k=3)"),
    "realism": ("fake", 3, "realism score (Kynkaanniemi et al. 2019, Eq. 3); >= 1 inside a kept real ball"),
}
CONTRIBUTION_METRICS: tuple[str, ...] = ("fd", *KNN_METRICS)

# Trapezoidal rule in v = log u for the rank-one trace-sqrt change: node spacing and the margins
# (in units of v) beyond the smallest / largest sqrt(eigenvalue). The integrand decays like e^{-v}
# above and like e^{3v} below, or only like e^{v} for a row of leverage 1 (its removal makes the
# covariance singular, e.g. fewer samples than dimensions), so 38 units each side leave < 1e-16 out.
_QUAD_STEP = 0.2
_QUAD_BELOW = 38.0
_QUAD_ABOVE = 38.0


# --------------------------------------------------------------------------- Fréchet engine


@dataclass(frozen=True, eq=False)
class FrechetDecomposition:
    """The pieces of FD(real, fake) from which every per-sample quantity follows.

    Built by :func:`frechet_decomposition`. Attributes:
        real, fake: :class:`~workbench.metrics.frechet.GaussianStats` (float64, ``ddof=1``).
        factor: ``F`` (``D x r``), ``real.cov = F F^T`` (:func:`real_factor_of`).
        eigvals: ``lam`` (``r'``), the eigenvalues of ``A = F^T fake.cov F`` above
            ``lam_max eps^2`` (zero to rounding below); per-sample terms use these.
        basis: ``F U`` (``D x r'``) for those eigenvalues: ``z_i = basis^T (x_i - mu)``.
        root_sum: ``Tr (S_r S)^{1/2}`` from :func:`workbench.metrics.frechet.trace_sqrt_product`
            (eigenvalues only; LAPACK's eigenvalues-with-vectors driver was measured to lose 4e-9
            of this sum at condition number 1e10, the values-only one 1e-14).
        fd: the Fréchet distance ``||e||^2 + Tr S_r + Tr S - 2 root_sum``, as
            :func:`workbench.metrics.frechet.fd`.
    """

    real: GaussianStats
    fake: GaussianStats
    factor: np.ndarray
    eigvals: np.ndarray
    basis: np.ndarray
    root_sum: float
    fd: float

    @property
    def n(self) -> int:
        return int(self.fake.n)

    @property
    def offset(self) -> np.ndarray:
        """``e = mu_fake - mu_real``."""
        return self.fake.mean - self.real.mean

    def project(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(d, z)`` of the fake rows ``x`` (``m x D``): ``d = x - mu`` and ``z = d @ basis``."""
        d = np.asarray(x, dtype=np.float64) - self.fake.mean
        return d, d @ self.basis

    def removal_first_order(self, x: np.ndarray) -> np.ndarray:
        """First-order ``FD_{-i} - FD`` of the fake rows ``x`` (module docstring), shape ``(m,)``."""
        n = self.n
        d, z = self.project(x)
        quad = np.einsum("ij,ij->i", d, d) - (z * z) @ (1.0 / np.sqrt(self.eigvals))
        constant = float(np.trace(self.fake.cov)) - self.root_sum
        return -2.0 * (d @ self.offset) / (n - 1) + (constant - n / (n - 1) * quad) / (n - 2)

    def removal_exact(self, x: np.ndarray) -> np.ndarray:
        """Exact ``FD_{-i} - FD`` of the fake rows ``x`` (rank-one downdate), shape ``(m,)``."""
        n = self.n
        d, z = self.project(x)
        dd = np.einsum("ij,ij->i", d, d)
        mean_term = -2.0 * (d @ self.offset) / (n - 1) + dd / (n - 1) ** 2
        trace_term = (float(np.trace(self.fake.cov)) - n / (n - 1) * dd) / (n - 2)
        alpha, beta = (n - 1) / (n - 2), n / ((n - 1) * (n - 2))
        sqrt_term = (math.sqrt(alpha) - 1.0) * self.root_sum + _rank_one_sqrt_change(alpha * self.eigvals, beta, z)
        return mean_term + trace_term - 2.0 * sqrt_term

    def influence(self, x: np.ndarray) -> np.ndarray:
        """``phi_i`` with ``FD(counts c) ~= FD + sum_i (c_i - 1) phi_i`` to first order, ``(m,)``.

        ``phi_i = 2 e.d_i / n + (||d_i||^2 - sum_k z_ik^2 / sqrt(lam_k)) / (n-1)``: the change of
        FD per extra copy of row ``i`` (row multiplicities ``c``, ``sum c = n``), from the same
        derivatives as the first-order removal. Used for the linearised bootstrap.
        """
        n = self.n
        d, z = self.project(x)
        quad = np.einsum("ij,ij->i", d, d) - (z * z) @ (1.0 / np.sqrt(self.eigvals))
        return 2.0 * (d @ self.offset) / n + quad / (n - 1)

    def gradients(self, x: np.ndarray) -> np.ndarray:
        """``dFD/dx_i`` of the fake rows ``x`` (``m x D``): ``(2/n) e + (2/(n-1)) (I - T) d_i``."""
        n = self.n
        d, z = self.project(x)
        transported = (z / np.sqrt(self.eigvals)) @ self.basis.T
        return 2.0 / n * self.offset[None, :] + 2.0 / (n - 1) * (d - transported)


def _rank_one_sqrt_change(b: np.ndarray, c: float, z: np.ndarray) -> np.ndarray:
    """``Tr sqrt(diag(b) - c z_i z_i^T) - sum sqrt(b)`` for every row ``z_i`` of ``z`` (``m x r``).

    Trapezoidal rule of the integral in the module docstring, in ``v = log u``; ``b > 0``.
    """
    if b.size == 0:
        return np.zeros(z.shape[0])
    lo = 0.5 * math.log(float(b.min())) - _QUAD_BELOW
    hi = 0.5 * math.log(float(b.max())) + _QUAD_ABOVE
    v = np.arange(lo, hi + _QUAD_STEP, _QUAD_STEP)
    t = np.exp(2.0 * v)
    r1 = 1.0 / (b[:, None] + t[None, :])  # r x nodes
    z2 = z * z
    g2 = z2 @ (r1 * r1)
    # 1 - c g1(t) written as kappa0 + c t sum z^2 / (b (b + t)) with kappa0 = 1 - c sum z^2 / b, so
    # that the t-dependent part is a sum of positive terms. kappa0 is 0 for a row of leverage 1 (its
    # removal makes the covariance singular); rounding could make the plain difference <= 0 there.
    kappa0 = np.maximum(1.0 - c * (z2 @ (1.0 / b)), 0.0)
    denom = kappa0[:, None] + c * t[None, :] * (z2 @ (r1 / b[:, None]))
    integrand = np.exp(3.0 * v)[None, :] * g2 / denom
    return -(2.0 * c / math.pi) * _QUAD_STEP * integrand.sum(axis=1)


def frechet_decomposition(
    real: Any,
    fake: Any,
    *,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    real_stats: GaussianStats | None = None,
    real_factor: np.ndarray | None = None,
) -> FrechetDecomposition:
    """Statistics and eigen-decomposition of ``FD(real, fake)`` for per-sample attribution.

    Args:
        real: ``N1 x D`` real features, array/memmap or cache (N1 >= 2). Ignored when
            ``real_stats`` is given (then pass ``None``).
        fake: ``N2 x D`` generated features or cache (N2 >= 3).
        block_rows: rows per block of the streaming statistics.
        real_stats, real_factor: precomputed real statistics and their factor ``F`` (:func:`real_factor_of`)
            (from an earlier decomposition) to skip that work when many fake sets share a reference.

    Returns:
        :class:`FrechetDecomposition`. Cost: ``O((N1 + N2) D^2 + D^3)``.
    """
    fake_arr = as_features(_features(fake), "fake", min_samples=3)
    if real_stats is None:
        real_arr = as_features(_features(real), "real", min_samples=2)
        check_same_dim(real_arr, fake_arr, "real", "fake")
        warn_if_singular(real_arr.shape[0], real_arr.shape[1], "real")
        real_stats = feature_statistics(real_arr, block_rows=block_rows)
    elif real_stats.dim != fake_arr.shape[1]:
        raise ValueError(f"real statistics have dimension {real_stats.dim} but fake has {fake_arr.shape[1]}")
    warn_if_singular(fake_arr.shape[0], fake_arr.shape[1], "fake")
    fake_stats = feature_statistics(fake_arr, block_rows=block_rows)
    factor = real_factor_of(real_stats.cov) if real_factor is None else real_factor
    a = factor.T @ fake_stats.cov @ factor
    a = 0.5 * (a + a.T)
    lam, u = np.linalg.eigh(a)
    top = max(float(lam[-1]), 0.0) if lam.size else 0.0
    root_sum = trace_sqrt_product(real_stats.cov, fake_stats.cov)
    # Per-sample terms divide by sqrt(lam): keep every eigenvalue that is not zero to rounding
    # squared. Small but real eigenvalues matter (with the Cholesky factor they are accurate to high
    # relative precision); a threshold of lam_max r eps was measured to cost 5e-7 of the largest
    # leave-one-out score at condition number 1e10, against 5e-8 with this one.
    keep = lam > top * np.finfo(np.float64).eps ** 2
    lam, basis = lam[keep], factor @ u[:, keep]
    e = fake_stats.mean - real_stats.mean
    value = float(e @ e + np.trace(real_stats.cov) + np.trace(fake_stats.cov) - 2.0 * root_sum)
    return FrechetDecomposition(real_stats, fake_stats, factor, lam, basis, root_sum, value)


def real_factor_of(cov: np.ndarray) -> np.ndarray:
    """``F`` with ``cov = F F^T``: the Cholesky factor when ``cov`` is positive definite, else
    :func:`range_factor`.

    Cholesky keeps the small eigenvalues of an ill-conditioned covariance to high relative
    accuracy (measured: ``Tr (S_r S)^{1/2}`` to 1e-16 relative at condition number 2e10, against
    8e-8 through the eigenvectors), as in :func:`workbench.metrics.frechet.trace_sqrt_product`.
    """
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return range_factor(cov)


def range_factor(cov: np.ndarray) -> np.ndarray:
    """``F`` (``D x r``) with ``cov = F F^T`` on the numerical range of the PSD ``cov``
    (eigenvalues above ``max * D * eps``)."""
    w, v = np.linalg.eigh(cov)
    keep = w > max(float(w[-1]), 0.0) * cov.shape[0] * np.finfo(np.float64).eps
    return v[:, keep] * np.sqrt(w[keep])


def _blocks(arr: np.ndarray, block_rows: int) -> Iterator[tuple[int, np.ndarray]]:
    for start in range(0, arr.shape[0], block_rows):
        yield start, np.asarray(arr[start : start + block_rows], dtype=np.float64)


# --------------------------------------------------------------------------- result


class AttributionResult(AnalysisResult):
    """Per-sample scores of one metric (result of :func:`fd_contributions` / :func:`metric_contributions`).

    Main table ``"samples"``, one row per sample of ``sample_set`` in input order: ``index``
    (row of the input), ``id`` (the cache's sample id; only when a cache was given), ``score``,
    and metric-specific columns (``fd_without`` for FD, ``in_real_manifold``, ``real_ball_count``,
    ``nearest_real`` for the k-NN metrics).

    Attributes:
        metric: the metric name. method: how the score was computed.
        value: the metric on the full data (e.g. FD; the mean of ``score`` for the k-NN flags).
        sample_set: ``"fake"`` or ``"real"``, the set the rows belong to.
        meaning: what a high score means.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        metric: str,
        method: str,
        value: float,
        sample_set: str,
        meaning: str,
        title: str,
        summary: str,
    ) -> None:
        super().__init__({"samples": frame}, title=title, summary=summary, main="samples")
        self.metric = metric
        self.method = method
        self.value = float(value)
        self.sample_set = sample_set
        self.meaning = meaning

    @property
    def scores(self) -> np.ndarray:
        """``(n,)`` float64 scores in input order."""
        return self.tables["samples"]["score"].to_numpy(dtype=np.float64)

    def top(self, n: int = 16) -> pd.DataFrame:
        """The ``n`` rows with the highest score, highest first (ties: lower index first)."""
        return self._sorted(n, ascending=False)

    def bottom(self, n: int = 16) -> pd.DataFrame:
        """The ``n`` rows with the lowest score, lowest first (ties: lower index first)."""
        return self._sorted(n, ascending=True)

    def _sorted(self, n: int, ascending: bool) -> pd.DataFrame:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative integer number of rows; got {n!r}")
        frame = self.tables["samples"]
        order = np.lexsort((frame["index"].to_numpy(), frame["score"].to_numpy() * (1 if ascending else -1)))
        return frame.iloc[order[: int(n)]].reset_index(drop=True)

    def display_frame(self) -> pd.DataFrame:
        return self.top(20)


def _features(x: Any) -> Any:
    return x.features if isinstance(x, EmbeddingCache) else x


def _sample_frame(source: Any, n: int) -> pd.DataFrame:
    frame = pd.DataFrame({"index": np.arange(n, dtype=np.int64)})
    if isinstance(source, EmbeddingCache):
        frame["id"] = source.meta["id"].astype(str).to_numpy()[:n]
    return frame


# --------------------------------------------------------------------------- public API


def fd_contributions(
    real: Any,
    fake: Any,
    method: str = "gradient",
    *,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> AttributionResult:
    """How much each generated sample raises the Fréchet distance.

    ``score_i = FD(real, fake) - FD(real, fake without sample i)``: positive when removing the
    sample would lower FD (the sample pulls the fake Gaussian away from the real one), negative
    when it helps. Removing *any* sample raises FD a little (FD's finite-sample bias grows as the
    sample shrinks), so typical scores are slightly negative and the informative ones are the top.
    Scores are single-sample effects: removing many top samples at once is not additive (their
    joint pull on the mean can overshoot), so re-score after removing a batch when curating.

    Methods (formulas in the module docstring):

    - ``"gradient"`` (default): the first-order expansion of FD in the fake mean and covariance
      at the rank-one downdate ``(mu_{-i}, S_{-i})``, i.e. ``<dFD/d(mu, S), removal of i>``.
      Cost ``O(n D^2 + D^3)``: the two covariances, two eigen-decompositions and one projection
      of the fake rows; memory ``O(D^2 + block_rows D)``.
    - ``"leave_one_out"``: exact for every ``i`` (closed-form mean and trace terms; the
      trace-sqrt term of a rank-one downdate by quadrature, ~1e-13 relative), at the extra cost
      of three ``n x r x ~450`` products.

    Measured on the development machine (2 CPU cores shared with other jobs, BLAS limited to one
    thread, float32 inputs, ``D = 2048``, as many reals as fakes), against
    :func:`workbench.metrics.frechet.fd` on the same arrays:

    ============  ==========  ============  =================
    samples       ``fd()``    gradient      leave_one_out
    ============  ==========  ============  =================
    10,000        11.1 s      18.7 s        21.2 s
    50,000        27.6 s      48.4 s        50.4 s
    ============  ==========  ============  =================

    The extra cost over ``fd()`` is one ``D x D`` eigen-decomposition with vectors and the
    projection of the fake rows (``n x D x D``).

    Args:
        real: ``N1 x D`` real features (array, memmap, or :class:`~workbench.cache.EmbeddingCache`).
        fake: ``N2 x D`` generated features or cache (``N2 >= 3``).
        method: ``"gradient"`` or ``"leave_one_out"``.
        block_rows: rows per streamed block (memory knob only).

    Returns:
        :class:`AttributionResult` with ``score`` and ``fd_without`` (``FD - score``, the FD
        without the sample: exact, or its first-order estimate) per fake; ``value`` is FD
        (equal to :func:`workbench.metrics.frechet.fd` up to rounding).

    Example:
        >>> import numpy as np
        >>> from workbench.analysis.attribution import fd_contributions
        >>> rng = np.random.default_rng(0)
        >>> real = rng.normal(size=(500, 4))
        >>> fake = rng.normal(size=(300, 4)); fake[:5] += 6.0     # five far-away samples
        >>> res = fd_contributions(real, fake, method="leave_one_out")
        >>> sorted(res.top(5)["index"].tolist())
        [0, 1, 2, 3, 4]
        >>> approx = fd_contributions(real, fake).scores
        >>> bool(np.corrcoef(approx, res.scores)[0, 1] > 0.99)
        True
    """
    if method not in FD_METHODS:
        raise ValueError(f"method must be one of {list(FD_METHODS)}; got {method!r}")
    if isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer)) or block_rows < 1:
        raise ValueError(f"block_rows must be a positive integer; got {block_rows!r}")
    dec = frechet_decomposition(real, fake, block_rows=int(block_rows))
    fake_arr = as_features(_features(fake), "fake", min_samples=3)
    change = np.empty(fake_arr.shape[0])
    step = dec.removal_exact if method == "leave_one_out" else dec.removal_first_order
    for start, block in _blocks(fake_arr, int(block_rows)):
        change[start : start + block.shape[0]] = step(block)
    frame = _sample_frame(fake, fake_arr.shape[0])
    frame["score"] = -change
    frame["fd_without"] = dec.fd + change
    label = "exact leave-one-out" if method == "leave_one_out" else "first-order (gradient) leave-one-out"
    return AttributionResult(
        frame,
        metric="fd",
        method=method,
        value=dec.fd,
        sample_set="fake",
        meaning="how much the sample raises FD: FD - FD without it",
        title="FD contribution of each generated sample",
        summary=(
            f"FD = {dec.fd:.6g} over {dec.n} generated samples (D = {dec.fake.dim}); score = FD - FD without "
            f"the sample ({label}); positive = removing it lowers FD."
        ),
    )


def fd_sample_gradients(
    real: Any,
    fake: Any,
    rows: Any = None,
    *,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> np.ndarray:
    """``dFD/dx_i`` for fake rows ``rows`` (default all): shape ``(len(rows), D)`` float64.

    ``dFD/dx_i = (2/n) (mu - mu_r) + (2/(n-1)) (I - T)(x_i - mu)`` with
    ``T = S_r^{1/2} (S_r^{1/2} S S_r^{1/2})^{-1/2} S_r^{1/2}`` (module docstring); moving ``x_i``
    by ``-eta * gradient`` lowers FD fastest. Memory: ``len(rows) x D`` float64 for the output.

    Args:
        real, fake: as for :func:`fd_contributions`.
        rows: integer row numbers of ``fake`` (default: all rows).
    """
    dec = frechet_decomposition(real, fake, block_rows=block_rows)
    fake_arr = as_features(_features(fake), "fake", min_samples=3)
    idx = np.arange(fake_arr.shape[0]) if rows is None else np.asarray(rows)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(
            f"rows must be a 1-D array of integer row numbers; got {np.asarray(rows).dtype} shape {np.shape(rows)}"
        )
    if idx.size and (idx.min() < -fake_arr.shape[0] or idx.max() >= fake_arr.shape[0]):
        raise ValueError(f"rows must lie in [0, {fake_arr.shape[0]}); got values from {idx.min()} to {idx.max()}")
    out = np.empty((idx.size, fake_arr.shape[1]))
    for start in range(0, idx.size, block_rows):
        part = idx[start : start + block_rows]
        out[start : start + part.size] = dec.gradients(np.asarray(fake_arr[part], dtype=np.float64))
    return out


def metric_contributions(
    real: Any,
    fake: Any,
    metric: str = "realism",
    *,
    k: int | None = None,
    method: str = "gradient",
    block_size: int | None = None,
) -> AttributionResult:
    """Per-sample scores of a metric: the quantity the metric averages, for a sorted sample grid.

    =============== ===== =========================================================================
    metric          rows  score
    =============== ===== =========================================================================
    fd              fake  ``FD - FD without the sample`` (:func:`fd_contributions`, ``method``)
    realism         fake  realism score (Kynkaanniemi et al. 2019, Eq. 3, k=3, 50th-percentile
                          pruning); ``>= 1`` inside a kept real ball. Column ``nearest_real``.
    precision       fake  1.0 when inside some real k-NN ball (PRDC, Naeem et al. 2020, k=5)
    density         fake  number of real k-NN balls containing the fake, divided by k
    prdc            fake  as ``density``; column ``in_real_manifold`` is the precision flag
    recall          real  1.0 when the real sample is inside some fake k-NN ball (PRDC)
    coverage        real  1.0 when the real sample's k-NN ball contains some fake (PRDC)
    ipr_precision   fake  as ``precision`` with improved-PR conventions (k=3, closed balls)
    ipr_recall      real  as ``recall`` with improved-PR conventions
    =============== ===== =========================================================================

    The mean of ``score`` is the metric itself for the flag and count metrics (precision,
    density, recall, coverage, ipr_*); ``value`` holds the metric.

    Args:
        real: ``N x D`` real features or cache. fake: ``M x D`` generated features or cache.
        metric: one of :data:`CONTRIBUTION_METRICS`.
        k: neighbourhood size (default: 5 for PRDC metrics, 3 for ipr_* and realism).
        method: for ``metric="fd"`` only: ``"gradient"`` or ``"leave_one_out"``.
        block_size: tile size of the k-NN search (:func:`workbench.metrics.neighbors.knn`).

    Returns:
        :class:`AttributionResult`; rows are the ``sample_set`` samples (``id`` from the cache).

    Example:
        >>> import numpy as np
        >>> from workbench.analysis.attribution import metric_contributions
        >>> rng = np.random.default_rng(0)
        >>> real, fake = rng.normal(size=(400, 3)), rng.normal(size=(200, 3))
        >>> fake[:3] += 8.0                                   # three outliers
        >>> res = metric_contributions(real, fake, "realism")
        >>> sorted(res.bottom(3)["index"].tolist())           # least realistic first
        [0, 1, 2]
        >>> float(metric_contributions(real, fake, "precision").scores[:3].sum())
        0.0
    """
    if metric == "fd":
        return fd_contributions(real, fake, method=method)
    if metric not in KNN_METRICS:
        raise ValueError(f"metric must be one of {list(CONTRIBUTION_METRICS)}; got {metric!r}")
    side, default_k, meaning = KNN_METRICS[metric]
    kk = default_k if k is None else k
    real_arr = as_features(_features(real), "real", min_samples=2)
    fake_arr = as_features(_features(fake), "fake", min_samples=2)
    check_same_dim(real_arr, fake_arr, "real", "fake")
    frame = _sample_frame(fake if side == "fake" else real, (fake_arr if side == "fake" else real_arr).shape[0])
    if metric == "realism":
        res = realism_score(real_arr, fake_arr, kk, block_size=block_size)
        frame["score"] = res.scores
        frame["nearest_real"] = res.nearest_real
        value = float(np.median(res.scores))
        value_name = "median realism"
    elif metric.startswith("ipr_"):
        res = precision_recall(real_arr, fake_arr, kk, block_size=block_size)
        flags = res.fake_in_real_manifold if side == "fake" else res.real_in_fake_manifold
        frame["score"] = flags.astype(np.float64)
        value = res.precision if side == "fake" else res.recall
        value_name = metric
    else:
        res = prdc(real_arr, fake_arr, kk, block_size=block_size)
        if metric in ("density", "prdc"):
            frame["score"] = res.fake_real_ball_counts / kk
            frame["in_real_manifold"] = res.fake_in_real_manifold
            frame["real_ball_count"] = res.fake_real_ball_counts
            value, value_name = res.density, "density"
        elif metric == "precision":
            frame["score"] = res.fake_in_real_manifold.astype(np.float64)
            frame["real_ball_count"] = res.fake_real_ball_counts
            value, value_name = res.precision, "precision"
        elif metric == "recall":
            frame["score"] = res.real_in_fake_manifold.astype(np.float64)
            value, value_name = res.recall, "recall"
        else:
            frame["score"] = res.real_covered.astype(np.float64)
            value, value_name = res.coverage, "coverage"
    meaning = meaning.replace(f"k={default_k}", f"k={kk}")
    return AttributionResult(
        frame,
        metric=metric,
        method="k-NN",
        value=value,
        sample_set=side,
        meaning=meaning,
        title=f"Per-sample {metric} of the {side} samples",
        summary=f"{value_name} = {value:.6g}; score: {meaning}. {len(frame)} {side} samples.",
    )
