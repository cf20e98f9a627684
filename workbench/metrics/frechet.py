"""Fréchet distance (FD, "FID" with Inception features) between Gaussian fits of two feature sets.

FD = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})   (Dowson & Landau 1982; Heusel et al. 2017).

The trace of the matrix square root is computed exactly from a *symmetric* eigenproblem, never with
``scipy.linalg.sqrtm``: for any factors ``S1 = F1 F1^T``, ``S2 = F2 F2^T`` the eigenvalues of
``S1 S2`` are those of the PSD Gram matrix ``F1^T S2 F1`` (the squared singular values of the
cross factor ``F2^T F1``), hence ``Tr (S1 S2)^{1/2} = sum_i sqrt(lambda_i(F1^T S2 F1))``. The
factors are rank-revealing pivoted Cholesky factors, so null directions of a singular covariance
(fewer samples than dimensions, dead feature channels) are not in them and contribute exactly 0,
where the peers take the ``sqrt`` of rounding-level eigenvalues and lose 1e-8..1e-5 relative
accuracy. One route serves well-conditioned, ill-conditioned and singular statistics alike
(:func:`trace_sqrt_product`): two ``pstrf``, one ``sygst`` and one symmetric tridiagonal
eigensolver, about a second at d = 2048 on one core, where ``sqrtm`` of the non-symmetric product
takes 15-20 s and ``eigvals`` 3-4 s (``benchmarks/metrics_frechet.py``).

Statistics are accumulated in float64 in one streaming pass over row blocks (see
:class:`FeatureStats`), so a memory-mapped ``50,000 x 2048`` float32 array is never copied whole.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.linalg import blas as _blas
from scipy.linalg import lapack as _lapack

from workbench.metrics.validation import SampleSizeWarning, as_features, check_same_dim
from workbench.threads import uses_free_threads

DEFAULT_BLOCK_ROWS = 2048

_SYMMETRY_RTOL = 1e-6


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
            raise ValueError(f"x has {arr.shape[1]} feature columns but earlier updates had {self._mean.shape[0]}")
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
            raise ValueError(f"the covariance needs at least 2 rows; got {self._n}. Add more samples.")
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
        self._m2_upper = _blas.dsyrk(1.0, centred.T, beta=1.0, c=self._m2_upper, trans=0, lower=0, overwrite_c=1)
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

    For any factors ``sigma_k = F_k F_k^T`` the eigenvalues of ``sigma1 sigma2`` are the squared
    singular values of the cross factor ``C = F_2^T F_1``, i.e. the eigenvalues of the symmetric
    PSD Gram matrix ``C^T C = F_1^T sigma2 F_1``; the trace is their square roots' sum.

    1. Each matrix is reduced to its numerical range by a pivoted Cholesky factorization (LAPACK
       ``pstrf``, :func:`_range_factor`): ``P^T sigma P = L L^T``, stopped when the largest
       remaining pivot is below ``4 max(D, 1024) eps max(diag(sigma))`` (``9e-13 * max(diag)`` up
       to D = 1024; :func:`_rank_tolerance`), above the measured rounding noise of null
       directions of float64 covariances (``<= 16 eps * max(diag)``) and of float32 features with
       an exact linear dependency (``<= 2.5 D eps * max(diag)``). The dropped directions (fewer
       samples than dimensions, dead channels, features that sum to 1) contribute exactly 0, never
       ``sqrt(rounding noise)``. ``F_k = P L[:, :r_k]`` is ``D x r_k``.
    2. If either matrix has full rank, the Gram matrix on the range of the other,
       ``G = F_a^T sigma_b F_a`` (``r_a x r_a``), is positive definite: it has no structurally zero
       eigenvalues, however ill-conditioned the product is, and the answer is
       ``sum sqrt(eigvalsh(G))``. ``G`` is formed by LAPACK ``sygst`` (type 2, ``L^T A L`` in
       ``D^3`` flops) and its eigenvalues by ``syev`` (tridiagonal reduction + ``sterf``): the cost
       of the classic ``sygvx`` route, for well- and ill-conditioned products alike. There is no
       threshold on the conditioning of ``G``: Cholesky factors keep the small eigenvalues of
       these graded matrices accurate (measured against 40..60-digit mpmath at d = 32..48, over
       ``z @ A`` covariances and randomly rotated spectra with condition numbers up to 1e12 each
       and product eigenvalue ratios down to 1e-24: at most 1e-13 relative; integer data with
       exact float64 statistics at d = 2048, eigenvalue ratios 1e-18 and 1e-26: 6e-16 and 7e-15).
    3. If both are rank-deficient, ``G = C^T C`` can still have structural zeros (directions in
       ``range(sigma1)`` and ``null(sigma2)``). A pivoted Cholesky of ``G`` with the same tolerance
       tells: if it has full rank, ``sum sqrt(eigvalsh(G))``; otherwise the sum of the singular
       values of the ``r_2 x r_1`` cross factor ``C`` (LAPACK ``gesdd``), whose structural zeros
       come out at ``eps * sigma_max``, not ``sqrt(eps)``.

    Limit: when each covariance is itself ill-conditioned and the small directions of one are the
    large directions of the other, the value depends on the last bits of the inputs, and no
    float64 method is much more accurate than that (measured against mpmath: 5e-12 at condition
    number 1e7 each; 2e-7 at 1e12, the SVD of the Cholesky cross factor 2e-8, while a
    one-ulp change of the entries moves the exact value by 1e-8).

    Inputs are not validated here (see :func:`fd_from_stats`).
    """
    f1 = _range_factor(sigma1)
    f2 = _range_factor(sigma2)
    dim = sigma1.shape[0]
    if f1.rank == 0 or f2.rank == 0:
        return 0.0
    if f2.rank == dim:
        gram = _gram_on_range(f1, sigma2)
    elif f1.rank == dim:
        gram = _gram_on_range(f2, sigma1)
    else:
        cross = f2.factor().T @ f1.factor()  # r2 x r1
        if cross.shape[0] < cross.shape[1]:
            cross = cross.T
        gram = _blas.dsyrk(1.0, cross, trans=1, lower=1)  # lower triangle of C^T C, r x r
        if _lapack.dpstrf(gram, tol=_rank_tolerance(gram), lower=1)[2] < gram.shape[0]:
            return float(scipy.linalg.svd(cross, compute_uv=False, check_finite=False, lapack_driver="gesdd").sum())
    eig = scipy.linalg.eigh(gram, eigvals_only=True, lower=True, overwrite_a=True, check_finite=False, driver="ev")
    return float(np.sqrt(np.maximum(eig, 0.0)).sum())


class _RangeFactor:
    """Pivoted Cholesky factor of a PSD matrix on its numerical range (see :func:`_range_factor`).

    ``lower`` is LAPACK ``pstrf``'s output (Fortran order): its lower triangle holds ``L`` with
    ``P^T sigma P = L L^T`` on the first ``rank`` columns (the rest is not part of the factor);
    ``perm`` is the 0-based pivot order (``sigma[perm][:, perm] = L L^T``).
    """

    __slots__ = ("lower", "perm", "rank")

    def __init__(self, lower: np.ndarray, perm: np.ndarray, rank: int) -> None:
        self.lower, self.perm, self.rank = lower, perm, rank

    def factor(self) -> np.ndarray:
        """``F`` (``D x rank``) with ``sigma = F F^T`` up to rounding, rows in the original order."""
        out = np.empty((self.lower.shape[0], self.rank), dtype=np.float64)
        out[self.perm] = np.tril(self.lower[:, : self.rank])
        return out


def _range_factor(sigma: np.ndarray) -> _RangeFactor:
    """Rank-revealing pivoted Cholesky (LAPACK ``pstrf``) of the PSD ``sigma``.

    Stops once the largest remaining pivot is below :func:`_rank_tolerance`; the rank is the
    number of pivots taken.
    """
    # sigma is symmetric: its C-ordered buffer read in Fortran order is the same matrix.
    lower, piv, rank, info = _lapack.dpstrf(np.asfortranarray(sigma.T), tol=_rank_tolerance(sigma), lower=1)
    if info < 0:  # pragma: no cover - only on an illegal argument
        raise RuntimeError(f"LAPACK dpstrf failed (info={info})")
    return _RangeFactor(lower, piv - 1, int(rank))


def _rank_tolerance(sigma: np.ndarray) -> float:
    """Pivots below ``4 * max(D, 1024) * eps * max(diag(sigma))`` are rounding noise.

    Measured pivots of structurally null directions, in units of ``eps * max(diag)``: float64
    covariances (``np.cov``, :class:`FeatureStats`) of data with an exact linear dependency, up to
    10^6 rows: at most 16; the same data rounded to float32 first (as the caches store features):
    30..120 at D = 10, 650..1860 at D = 300..2048, i.e. up to ~2.5 D. LAPACK's default ``D * eps``
    misses the float32 case, and at small D even the float64 one. The genuine smallest pivots of
    feature covariances are many orders of magnitude above (1e13..1e15 here).
    """
    dim = sigma.shape[0]
    return 4.0 * max(dim, 1024) * float(np.finfo(np.float64).eps) * max(float(np.diagonal(sigma).max()), 0.0)


def _gram_on_range(f: _RangeFactor, sigma: np.ndarray) -> np.ndarray:
    """``F^T sigma F`` (``r x r``, lower triangle valid) for the range factor ``F`` of another matrix.

    For ``r >= D / 2`` LAPACK ``sygst`` (type 2: ``L^T A L``, ``D^3`` flops) on ``sigma`` permuted
    like the factor, with the factor's unused trailing columns set to unit vectors so that it is a
    square non-singular triangle (the leading ``r x r`` block of the result is then exactly
    ``F^T sigma F``); below, two matrix products (``2 D^2 r + 2 D r^2`` flops).
    """
    dim, r = sigma.shape[0], f.rank
    if 2 * r < dim:
        factor = f.factor()
        return factor.T @ (sigma @ factor)
    tri = f.lower
    if r < dim:
        tri[r:, r:] = np.eye(dim - r)
    permuted = np.take(np.take(sigma, f.perm, axis=0), f.perm, axis=1)
    # permuted is symmetric: its transpose is a Fortran-ordered view of the same matrix, which
    # sygst may overwrite (no copy).
    gram, info = _lapack.dsygst(permuted.T, tri, itype=2, lower=1, overwrite_a=1)
    if info != 0:  # pragma: no cover - only on an illegal argument
        raise RuntimeError(f"LAPACK dsygst failed (info={info})")
    return gram[:r, :r]


@uses_free_threads
def fd_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
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
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2))


@uses_free_threads
def fd(real: object, fake: object, *, block_rows: int = DEFAULT_BLOCK_ROWS) -> float:
    """Fréchet distance between the Gaussian fits of two feature sets.

    Args:
        real: ``N1 x D`` features of real images (array or memmap; N1 >= 2).
        fake: ``N2 x D`` features of generated images (N2 >= 2).
        block_rows: rows per block for the streaming statistics (memory knob only).

    Returns:
        ``fd_from_stats(mean(real), cov(real), mean(fake), cov(fake))`` with ``ddof=1``.

    Warns:
        SingularCovarianceWarning (a SampleSizeWarning): when N <= D for either set, the sample
        covariance is singular and FD is strongly biased upward (the bias decays like 1/N; see
        :func:`fd_infinity`). One warning names both sets' sizes.

    Raises:
        ValueError: bad shapes, NaN/inf features, or features so large that the covariance or the
            distance overflows float64. FD is in squared feature units: features multiplied by
            ``s`` give ``s^2`` times the distance (float32 features, at most ``3.4e38``, never
            overflow).
    """
    real_arr = as_features(real, "real", min_samples=2)
    fake_arr = as_features(fake, "fake", min_samples=2)
    check_same_dim(real_arr, fake_arr, "real", "fake")
    warn_if_singular_sets({"real": real_arr.shape[0], "fake": fake_arr.shape[0]}, real_arr.shape[1])
    return fd_of_validated(real_arr, fake_arr, block_rows=block_rows)


@uses_free_threads
def fd_of_validated(
    real: np.ndarray,
    fake: np.ndarray,
    *,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    names: tuple[str, str] = ("real", "fake"),
) -> float:
    """:func:`fd` of arrays already validated (``as_features``, same ``D``), without its sample-size
    warning: for metrics built on FD that warn about their own inputs under their own names
    (e.g. MiFID's ``train`` and ``fake``). ``names`` name the two sets in error messages."""
    block_rows = _check_block_rows(block_rows)
    with np.errstate(over="ignore", invalid="ignore"):
        s_real = FeatureStats()._update_validated(real, block_rows).finalize()
        s_fake = FeatureStats()._update_validated(fake, block_rows).finalize()
    for name, stats in zip(names, (s_real, s_fake)):
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


class SingularCovarianceWarning(SampleSizeWarning):
    """Some feature sets of a Fréchet distance have no more rows than dimensions.

    One warning names every such set with its size (one cause, one sentence), so that reports can
    merge the warnings of several metrics and sets (:func:`workbench.metrics.suite.evaluate` does).

    Made with ``dim=`` and ``sizes=`` (the message is then written from them); a message alone
    gives a warning of this category without sizes.

    Attributes:
        dim: the feature dimension ``D`` (None when made from a message alone).
        sizes: ``{set label: (sizes, ...)}``, e.g. ``{"real": (300,), "fake": (300, 200)}``: the
            sample counts (rows) of the sets whose covariance is singular, largest first.
    """

    def __init__(
        self,
        message: str = "",
        *,
        dim: int | None = None,
        sizes: Mapping[str, int | Iterable[int]] | None = None,
    ) -> None:
        self.dim: int | None = None if dim is None else int(dim)
        self.sizes: dict[str, tuple[int, ...]] = {
            str(label): tuple(
                sorted({int(n)} if isinstance(n, (int, np.integer)) else {int(v) for v in n}, reverse=True)
            )
            for label, n in (sizes or {}).items()
        }
        if self.dim is not None and self.sizes:
            message = singular_covariance_message(self.dim, self.sizes)
        # Built from a message alone (as warnings.warn_explicit(text, category) does), it is a
        # plain SampleSizeWarning with that text and no sizes.
        super().__init__(message)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def singular_covariance_message(dim: int, sizes: Mapping[str, tuple[int, ...]]) -> str:
    """The one sentence of a :class:`SingularCovarianceWarning`: every set and size, the cause, the fix.

    ``sizes`` maps set labels to their sample counts (several when the label stands for several
    sets, e.g. the generated sets of a report). One set: ``"real has 300 samples for 768 feature
    dimensions: its covariance is singular (rank <= 299) ..."``; several sets of one size: ``"real
    and fake have 300 samples ..."``; otherwise ``"real has 300 samples and fake 200 or 100 ..."``.
    """
    labels = [k for k, v in sizes.items() if v]
    counts = sorted({n for k in labels for n in sizes[k]}, reverse=True)
    tail = "the Fréchet distance is strongly biased upward. Use more samples than dimensions (FID convention: 50,000)."
    if len(labels) == 1 and len(counts) == 1:
        n = counts[0]
        return (
            f"{labels[0]} has {n} samples for {dim} feature dimensions: its covariance is singular "
            f"(rank <= {n - 1}) and {tail}"
        )
    if len(counts) == 1:
        n = counts[0]
        return (
            f"{_and(labels)} have {n} samples for {dim} feature dimensions: their covariances are singular "
            f"(rank <= {n - 1}) and {tail}"
        )

    def sizes_of(label: str) -> str:
        return " or ".join(str(n) for n in sizes[label])

    parts = [f"{labels[0]} has {sizes_of(labels[0])} samples", *(f"{k} {sizes_of(k)}" for k in labels[1:])]
    return (
        f"{_and(parts)} for {dim} feature dimensions: their covariances are "
        f"singular (rank below the number of samples) and {tail}"
    )


def warn_if_singular_sets(sizes: Mapping[str, int], dim: int, stacklevel: int = 3) -> None:
    """One :class:`SingularCovarianceWarning` naming every set of ``sizes`` (``{label: rows}``) that
    has no more rows than ``dim`` (its ``dim x dim`` covariance is singular); nothing otherwise.

    ``stacklevel`` 3 points at the caller of the function that calls this one."""
    small = {label: int(n) for label, n in sizes.items() if int(n) <= dim}
    if small:
        warnings.warn(SingularCovarianceWarning(dim=dim, sizes=small), stacklevel=stacklevel)


def warn_if_singular(n: int, dim: int, name: str, stacklevel: int = 4) -> None:
    """Warn (:class:`SingularCovarianceWarning`, a SampleSizeWarning) when ``n`` rows cannot give a
    full-rank ``dim x dim`` covariance. Several sets of one distance: :func:`warn_if_singular_sets`."""
    warn_if_singular_sets({name: n}, dim, stacklevel=stacklevel)


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
        raise ValueError(f"{sigma_name} must be a ({d}, {d}) covariance matching {mu_name}; got shape {s.shape}")
    if not np.isfinite(m).all():
        raise ValueError(f"{mu_name} contains NaN or infinite values")
    if not np.isfinite(s).all():
        raise ValueError(f"{sigma_name} contains NaN or infinite values")
    if _max_asymmetry(s) > _SYMMETRY_RTOL * max(float(s.max()), -float(s.min())):
        raise ValueError(f"{sigma_name} is not symmetric; pass a covariance matrix (e.g. np.cov)")
    if (np.diagonal(s) < 0).any():
        raise ValueError(f"{sigma_name} has negative variances on its diagonal; it is not a covariance")
    return m, s


def _max_asymmetry(s: np.ndarray, step: int = 256) -> float:
    """``max |s - s^T|`` over pairs of square blocks (cache-sized, no ``D x D`` temporaries; a
    block and its mirror are both in cache, unlike a row stripe and a column stripe)."""
    worst = 0.0
    for i in range(0, s.shape[0], step):
        for j in range(i, s.shape[0], step):
            diff = s[i : i + step, j : j + step] - s[j : j + step, i : i + step].T
            worst = max(worst, float(diff.max()), -float(diff.min()))
    return worst
