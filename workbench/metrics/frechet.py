"""Fréchet distance (FD, "FID" with Inception features) between Gaussian fits of two feature sets.

FD = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})   (Dowson & Landau 1982; Heusel et al. 2017).

The trace of the matrix square root is computed exactly from a *symmetric* eigenproblem, never with
``scipy.linalg.sqrtm``: the eigenvalues of ``S1 S2`` equal those of ``L^T S2 L`` where ``S1 = L L^T``
(both PSD, so the eigenvalues are real and non-negative), hence
``Tr (S1 S2)^{1/2} = sum_i sqrt(lambda_i(L^T S2 L))``. LAPACK's generalized symmetric solver
(``sygvx``, problem type 2: ``S2 S1 v = lambda v``) does exactly this Cholesky + congruence +
tridiagonal reduction in one call; at d = 2048 it takes well under a second where ``sqrtm`` of the
non-symmetric product takes tens of seconds. Singular statistics (fewer samples than dimensions,
dead feature channels) take an exact range-factor route instead (:func:`trace_sqrt_product`), where
the peers' ``sqrt`` of rounding-level eigenvalues costs them 1e-8..1e-5 relative accuracy.

Statistics are accumulated in float64 in one streaming pass over row blocks (see
:class:`FeatureStats`), so a memory-mapped ``50,000 x 2048`` float32 array is never copied whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.linalg import blas as _blas
from scipy.linalg import lapack as _lapack

from workbench.metrics.validation import as_features, check_same_dim, warn_sample_size

DEFAULT_BLOCK_ROWS = 2048

_SYMMETRY_RTOL = 1e-6
# Smallest eigenvalue of L^T S2 L, relative to the largest, for which sqrt(eigenvalues) is safe.
_FAST_PATH_MIN_EIG_RATIO = 1e-10


@dataclass(frozen=True)
class GaussianStats:
    """Mean and covariance of a feature set (the Gaussian fit FD compares).

    Attributes:
        mean: ``(D,)`` float64 sample mean.
        cov: ``(D, D)`` float64 sample covariance with ``ddof=1`` (as ``np.cov``, pytorch-fid,
            clean-fid, torch-fidelity, torchmetrics).
        n: number of rows it was computed from.
    """

    mean: np.ndarray
    cov: np.ndarray
    n: int

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])


class FeatureStats:
    """Streaming float64 mean and covariance of feature rows, one pass, bounded memory.

    Each block of rows is centred on its *own* mean (two passes over the block while it is hot
    in memory), and blocks are combined with the pairwise merge of Chan, Golub & LeVeque (1979)::

        n = na + nb,  delta = mean_b - mean_a
        mean = mean_a + delta * nb / n
        M2   = M2_a + Xc_b^T Xc_b + delta delta^T * na * nb / n

    so no large shared offset is ever subtracted after the fact (no catastrophic cancellation,
    unlike accumulating raw sums of x and x x^T as torchmetrics does). Both M2 updates are BLAS
    calls on one triangle of a single ``D x D`` float64 accumulator (``dsyrk`` then ``dsyr``), so
    the extra memory is that accumulator plus one ``block_rows x D`` float64 buffer, whatever N.

    Example::

        acc = FeatureStats()
        for batch in batches:          # any (B, D) arrays, e.g. straight from an extractor
            acc.update(batch)
        stats = acc.finalize()         # GaussianStats(mean, cov, n)
    """

    def __init__(self) -> None:
        self._n = 0
        self._mean: np.ndarray | None = None
        self._m2_upper: np.ndarray | None = None  # Fortran order; only the upper triangle is valid
        self._buffer: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of rows accumulated so far."""
        return self._n

    def update(self, x: object, *, block_rows: int = DEFAULT_BLOCK_ROWS) -> FeatureStats:
        """Add the rows of ``x`` (``N x D``, any float dtype, memmap welcome); returns ``self``."""
        arr = as_features(x, "x")
        if self._mean is not None and arr.shape[1] != self._mean.shape[0]:
            raise ValueError(
                f"x has {arr.shape[1]} feature columns but earlier updates had {self._mean.shape[0]}"
            )
        return self._update_validated(arr, _check_block_rows(block_rows))

    def _update_validated(self, arr: np.ndarray, block_rows: int) -> FeatureStats:
        """:meth:`update` for an array already checked by ``as_features`` (no second pass)."""
        for start in range(0, arr.shape[0], block_rows):
            self._add_block(arr[start : start + block_rows])
        return self

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Add another accumulator's rows (exact pairwise merge); returns ``self``."""
        if not isinstance(other, FeatureStats):
            raise TypeError(f"other must be a FeatureStats; got {type(other).__name__}")
        if other._n == 0:
            return self
        other_mean, other_m2 = other._moments()
        if self._n == 0:
            self._n = other._n
            self._mean = other_mean.copy()
            self._m2_upper = other_m2.copy(order="F")
            return self
        mean, m2 = self._moments()
        if other_mean.shape != mean.shape:
            raise ValueError(f"cannot merge statistics of dimension {other_mean.shape[0]} into {mean.shape[0]}")
        m2 += other_m2
        self._shift_mean(other._n, other_mean)
        return self

    def _moments(self) -> tuple[np.ndarray, np.ndarray]:
        """The running mean and upper-triangle scatter; only valid once a row was added."""
        if self._mean is None or self._m2_upper is None:
            raise ValueError("no rows were added to these statistics yet")
        return self._mean, self._m2_upper

    def finalize(self) -> GaussianStats:
        """The mean and ``ddof=1`` covariance of everything added so far (copies)."""
        if self._n < 2:
            raise ValueError(
                f"the covariance needs at least 2 rows; got {self._n}. Add more samples."
            )
        self._buffer = None  # release the block buffer; update() re-creates it if needed
        mean, m2 = self._moments()
        cov = _symmetric_from_upper(m2)
        cov /= self._n - 1
        return GaussianStats(mean=mean.copy(), cov=cov, n=self._n)

    def _add_block(self, block: np.ndarray) -> None:
        rows, dim = block.shape
        if self._buffer is None or self._buffer.shape[0] < rows or self._buffer.shape[1] != dim:
            self._buffer = np.empty((rows, dim), dtype=np.float64)
        centred = self._buffer[:rows]
        block_mean = block.mean(axis=0, dtype=np.float64)
        np.subtract(block, block_mean, out=centred)
        if self._m2_upper is None:
            self._m2_upper = np.zeros((dim, dim), dtype=np.float64, order="F")
        # centred.T is Fortran-contiguous (D x rows): no copy; M2 += centred^T centred, upper part.
        self._m2_upper = _blas.dsyrk(
            1.0, centred.T, beta=1.0, c=self._m2_upper, trans=0, lower=0, overwrite_c=1
        )
        if self._n == 0:
            self._n, self._mean = rows, block_mean
        else:
            self._shift_mean(rows, block_mean)

    def _shift_mean(self, n_b: int, mean_b: np.ndarray) -> None:
        """Chan et al. correction for merging ``n_b`` rows with mean ``mean_b`` (M2_b already added)."""
        n_a = self._n
        n = n_a + n_b
        delta = mean_b - self._mean
        self._mean += delta * (n_b / n)
        self._m2_upper = _blas.dsyr(n_a * n_b / n, delta, lower=0, a=self._m2_upper, overwrite_a=1)
        self._n = n


def _symmetric_from_upper(upper: np.ndarray, step: int = 256) -> np.ndarray:
    """A C-ordered symmetric copy of a matrix whose upper triangle is valid (no D x D temporaries)."""
    out = np.array(upper, dtype=np.float64, order="C")
    for j0 in range(0, out.shape[0], step):
        j1 = min(out.shape[0], j0 + step)
        out[j0:j1, :j0] = out[:j0, j0:j1].T
        diag = out[j0:j1, j0:j1]
        lower = np.tril_indices(j1 - j0, -1)
        diag[lower] = diag.T[lower]
    return out


def feature_statistics(x: object, *, block_rows: int = DEFAULT_BLOCK_ROWS) -> GaussianStats:
    """Float64 mean and ``ddof=1`` covariance of ``x`` in one streaming pass over row blocks.

    Args:
        x: ``N x D`` features (float32/float64 array or ``np.memmap``; N >= 2).
        block_rows: rows per block; extra memory is ``block_rows x D`` + ``D x D`` float64 (the
            result's covariance), e.g. 64 MiB at the default 2048 rows and D = 2048.

    Returns:
        :class:`GaussianStats` equal to ``(x.mean(0), np.cov(x, rowvar=False))`` up to rounding.
    """
    arr = as_features(x, "x", min_samples=2)
    return FeatureStats()._update_validated(arr, _check_block_rows(block_rows)).finalize()


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``Tr (sigma1 sigma2)^{1/2}`` for two ``D x D`` PSD matrices, without a matrix square root.

    Fast path: with ``sigma1 = L L^T`` (Cholesky) the eigenvalues of ``sigma1 sigma2`` are those
    of the symmetric PSD matrix ``L^T sigma2 L`` (LAPACK ``sygvx``, type 2), and the trace is
    ``sum sqrt(lambda)``. It is taken when every eigenvalue exceeds ``1e-10`` times the largest,
    so ``sqrt`` cannot amplify rounding (an eigenvalue error of ``eps * lambda_max`` becomes a
    ``sqrt(eps)`` ~ 1e-8 relative error at an eigenvalue near zero: peers that take
    ``sqrt(eigvals(S1 S2))`` or ``sqrtm`` show exactly that on singular inputs).

    Singular path (rank-deficient or extremely ill-conditioned products, e.g. fewer samples
    than dimensions): factor each matrix on its numerical range, ``sigma_k = F_k F_k^T`` with a
    rank-revealing pivoted Cholesky (``D x r_k``, pivots below ``D * eps * max diag`` dropped),
    and sum the singular values of ``F_2^T F_1`` (their squares are the eigenvalues of
    ``sigma1 sigma2``), so zero eigenvalues come out as zero instead of ``sqrt(rounding)``.
    Inputs are not validated here (see :func:`fd_from_stats`).
    """
    for a, b in ((sigma2, sigma1), (sigma1, sigma2)):
        try:
            # type=2 solves a @ b @ v = w v with b = L L^T positive definite, via L^T a L.
            eig = scipy.linalg.eigh(
                a, b, type=2, eigvals_only=True, check_finite=False, driver="gvx"
            )
        except np.linalg.LinAlgError:
            continue
        if eig[0] > eig[-1] * _FAST_PATH_MIN_EIG_RATIO:
            return float(np.sqrt(eig).sum())
        break
    f1 = _range_factor(sigma1)
    f2 = _range_factor(sigma2)
    if f1.shape[1] == 0 or f2.shape[1] == 0:
        return 0.0
    return float(np.linalg.svd(f2.T @ f1, compute_uv=False).sum())


def _range_factor(sigma: np.ndarray) -> np.ndarray:
    """``F`` (``D x r``) with ``sigma = F F^T`` up to rounding, ``r`` the numerical rank.

    Pivoted Cholesky (LAPACK ``pstrf``: ``P^T sigma P = L L^T``), stopped once the largest
    remaining pivot is below ``D * eps * max(diag(sigma))``; ``F = P L[:, :r]``.
    """
    c, piv, rank, info = _lapack.dpstrf(sigma, lower=1)
    if info < 0:  # pragma: no cover - only on an illegal argument
        raise RuntimeError(f"LAPACK dpstrf failed (info={info})")
    factor = np.empty((sigma.shape[0], rank), dtype=np.float64)
    factor[piv - 1] = np.tril(c[:, :rank])
    return factor


def fd_from_stats(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``FD = ||mu1 - mu2||^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr (sigma1 sigma2)^{1/2}``
    (Dowson & Landau 1982; FID of Heusel et al. 2017 when the features are Inception pool3).

    Args:
        mu1, mu2: ``(D,)`` means.
        sigma1, sigma2: ``(D, D)`` symmetric PSD covariances (any float dtype; computed in float64).

    Returns:
        The distance in squared feature units. Symmetric in its arguments up to rounding; may be
        a rounding-level negative number (about ``-1e-12 * Tr sigma``) for identical inputs.

    Raises:
        ValueError: wrong shapes, mismatched D, NaN/inf, or a non-symmetric covariance.
    """
    m1, s1 = _as_gaussian(mu1, sigma1, "mu1", "sigma1")
    m2, s2 = _as_gaussian(mu2, sigma2, "mu2", "sigma2")
    if m1.shape != m2.shape:
        raise ValueError(
            f"mu1 and mu2 have different dimensions ({m1.shape[0]} vs {m2.shape[0]}); "
            "were the statistics made by the same extractor?"
        )
    diff = m1 - m2
    return float(
        diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2)
    )


def fd(real: object, fake: object, *, block_rows: int = DEFAULT_BLOCK_ROWS) -> float:
    """Fréchet distance between the Gaussian fits of two feature sets.

    Args:
        real: ``N1 x D`` features of real images (array or memmap; N1 >= 2).
        fake: ``N2 x D`` features of generated images (N2 >= 2).
        block_rows: rows per block for the streaming statistics (memory knob only).

    Returns:
        ``fd_from_stats(mean(real), cov(real), mean(fake), cov(fake))`` with ``ddof=1``.

    Warns:
        SampleSizeWarning: when N <= D for either set, the sample covariance is singular and FD
        is strongly biased upward (the bias decays like 1/N; see :func:`fd_infinity`).

    Raises:
        ValueError: bad shapes, NaN/inf features, or features so large that the covariance or the
            distance overflows float64. FD is in squared feature units: features multiplied by
            ``s`` give ``s^2`` times the distance (float32 features, at most ``3.4e38``, never
            overflow).
    """
    real_arr = as_features(real, "real", min_samples=2)
    fake_arr = as_features(fake, "fake", min_samples=2)
    check_same_dim(real_arr, fake_arr, "real", "fake")
    for name, arr in (("real", real_arr), ("fake", fake_arr)):
        warn_if_singular(arr.shape[0], arr.shape[1], name)
    block_rows = _check_block_rows(block_rows)
    with np.errstate(over="ignore", invalid="ignore"):
        s_real = FeatureStats()._update_validated(real_arr, block_rows).finalize()
        s_fake = FeatureStats()._update_validated(fake_arr, block_rows).finalize()
    for name, stats in (("real", s_real), ("fake", s_fake)):
        if not (np.isfinite(stats.mean).all() and np.isfinite(stats.cov).all()):
            raise ValueError(
                f"the covariance of {name} overflows float64: its features are too large (the Fréchet "
                "distance is in squared feature units); rescale the features"
            )
    with np.errstate(over="ignore", invalid="ignore"):
        value = fd_from_stats(s_real.mean, s_real.cov, s_fake.mean, s_fake.cov)
    if not np.isfinite(value):
        raise ValueError("the Fréchet distance overflows float64 for these features; rescale the features")
    return value


def warn_if_singular(n: int, dim: int, name: str, stacklevel: int = 4) -> None:
    """Warn (SampleSizeWarning) when ``n`` rows cannot give a full-rank ``dim x dim`` covariance."""
    if n <= dim:
        warn_sample_size(
            f"{name} has {n} samples for {dim} feature dimensions: its covariance is singular "
            f"(rank <= {n - 1}) and the Fréchet distance is strongly biased upward. "
            "Use more samples than dimensions (FID convention: 50,000).",
            stacklevel=stacklevel,
        )


def _check_block_rows(block_rows: int) -> int:
    if isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer)) or block_rows < 1:
        raise ValueError(f"block_rows must be a positive integer; got {block_rows!r}")
    return int(block_rows)


def _as_gaussian(mu: object, sigma: object, mu_name: str, sigma_name: str) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(mu, dtype=np.float64)
    s = np.asarray(sigma, dtype=np.float64)
    if m.ndim != 1 or m.shape[0] == 0:
        raise ValueError(f"{mu_name} must be a non-empty 1-D mean vector (D,); got shape {m.shape}")
    d = m.shape[0]
    if s.shape != (d, d):
        raise ValueError(
            f"{sigma_name} must be a ({d}, {d}) covariance matching {mu_name}; got shape {s.shape}"
        )
    if not np.isfinite(m).all():
        raise ValueError(f"{mu_name} contains NaN or infinite values")
    if not np.isfinite(s).all():
        raise ValueError(f"{sigma_name} contains NaN or infinite values")
    scale = float(np.abs(s).max())
    if float(np.abs(s - s.T).max()) > _SYMMETRY_RTOL * scale:
        raise ValueError(f"{sigma_name} is not symmetric; pass a covariance matrix (e.g. np.cov)")
    if (np.diagonal(s) < 0).any():
        raise ValueError(f"{sigma_name} has negative variances on its diagonal; it is not a covariance")
    return m, s
