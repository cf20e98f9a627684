"""Fréchet distance, streaming statistics and FD-infinity, checked against peers and closed forms.

Peers: pytorch-fid ``calculate_frechet_distance`` and clean-fid ``frechet_distance`` (both
``scipy.linalg.sqrtm`` of ``S1 S2``), torch-fidelity ``fid_statistics_to_metric`` and torchmetrics
``_compute_fid`` (both ``sqrt(eigvals(S1 S2))``). On full-rank statistics all agree with ours to
~1e-15 relative (asserted at 1e-9). On singular / rank-deficient inputs the peers take the square
root of rounding-level eigenvalues and are off by 1e-9..3e-8 relative from the exact value
(measured: shared null space d=64 -> 3e-8; n < d data -> 1e-8), and pytorch-fid / clean-fid raise
"Imaginary component" on products with condition number ~1e24; there we check against exact
constructions instead (Hadamard-rotated diagonal covariances, SVD of the centred data).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from cleanfid.fid import frechet_distance as cleanfid_fd
from pytorch_fid.fid_score import calculate_frechet_distance as pytorch_fid_fd
from sklearn.linear_model import LinearRegression
from threadpoolctl import threadpool_limits
from torch_fidelity.metric_fid import fid_statistics_to_metric
from torchmetrics.image.fid import _compute_fid as torchmetrics_fd

from workbench.metrics.fd_infinity import FDInfinityResult, fd_infinity, fd_infinity_sizes
from workbench.metrics.frechet import (
    FeatureStats,
    GaussianStats,
    fd,
    fd_from_stats,
    feature_statistics,
    trace_sqrt_product,
)
from workbench.metrics.validation import SampleSizeWarning

D = 64


def _torch_fidelity(mu1, s1, mu2, s2):
    out = fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, False)
    return out["frechet_inception_distance"]


def _torchmetrics(mu1, s1, mu2, s2):
    return float(torchmetrics_fd(*(torch.from_numpy(np.asarray(v)) for v in (mu1, s1, mu2, s2))))


PEERS = {
    "pytorch-fid": pytorch_fid_fd,
    "clean-fid": cleanfid_fd,
    "torch-fidelity": _torch_fidelity,
    "torchmetrics": _torchmetrics,
}


def _feature_pair(kind: str, n: int = 600, d: int = D) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([n, d, sum(map(ord, kind))])
    if kind == "gaussian":
        real = rng.standard_normal((n, d))
        fake = rng.standard_normal((n, d)) @ rng.normal(0, 0.2, (d, d)) + 0.3
    elif kind == "clustered":
        centres = rng.normal(0, 3, (5, d))
        real = centres[rng.integers(0, 5, n)] + rng.standard_normal((n, d))
        fake = centres[rng.integers(0, 3, n)] * 1.2 + 0.5 * rng.standard_normal((n, d))
    elif kind == "low_rank":  # rank 8 plus tiny isotropic noise: condition number ~1e7
        real = rng.standard_normal((n, 8)) @ rng.standard_normal((8, d)) + 1e-3 * rng.standard_normal((n, d))
        fake = rng.standard_normal((n, 8)) @ rng.standard_normal((8, d)) + 1e-3 * rng.standard_normal((n, d))
    elif kind == "duplicates":  # each row three times
        base = rng.standard_normal((n // 3, d))
        real = np.repeat(base, 3, axis=0)
        fake = np.repeat(rng.standard_normal((n // 3, d)) * 0.8 + 0.1, 3, axis=0)
    elif kind == "relu":  # non-negative, Inception-pool-like
        w = rng.standard_normal((d, d))
        real = np.maximum(rng.standard_normal((n, d)) @ w, 0)
        fake = np.maximum(rng.standard_normal((n, d)) @ w + 0.2, 0)
    else:
        raise AssertionError(kind)
    return real, fake


def _np_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _hadamard_pair(d: int, a: np.ndarray, b: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Commuting covariances H diag(a) H^T / d represented EXACTLY in float64.

    H is a (row-permuted, column-signed) Sylvester-Hadamard matrix with +-1 entries and d a power
    of two, so for integer a every entry is a sum of integers divided by a power of two: no
    rounding. Then Tr (S1 S2)^{1/2} = sum sqrt(a * b) exactly.
    """
    rng = np.random.default_rng(seed)
    h = scipy.linalg.hadamard(d).astype(np.float64)[rng.permutation(d)] * rng.choice([-1.0, 1.0], d)
    s1 = (h * a) @ h.T / d
    s2 = (h * b) @ h.T / d
    assert np.array_equal(s1, s1.T) and np.array_equal(s2, s2.T)
    return s1, s2


def _hadamard_case(case: str, d: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if case == "ill_conditioned":  # spectra spread over 2^0..2^40 in both: product cond ~1e24
        return np.floor(2.0 ** rng.uniform(0, 40, d)), np.floor(2.0 ** rng.uniform(0, 40, d))
    a = rng.integers(1, 1000, d).astype(np.float64)
    b = rng.integers(1, 1000, d).astype(np.float64)
    if case == "shared_null_space":  # e.g. dead feature channels in both sets
        a[d // 2 :] = 0
        b[d // 2 :] = 0
    elif case == "different_null_spaces":
        a[d // 2 :] = 0
        b[: d // 4] = 0
    elif case == "one_singular":  # full-rank real, collapsed fake
        b[d // 8 :] = 0
    return a, b


# ----------------------------------------------------------------------------- FD vs peers


@pytest.mark.parametrize("kind", ["gaussian", "clustered", "low_rank", "duplicates", "relu"])
@pytest.mark.parametrize("peer", list(PEERS))
def test_fd_matches_peers_on_full_rank_statistics(kind: str, peer: str) -> None:
    real, fake = _feature_pair(kind)
    mu1, s1 = _np_stats(real)
    mu2, s2 = _np_stats(fake)
    ours = fd_from_stats(mu1, s1, mu2, s2)
    # Peers are accurate here; agreement is ~1e-15, asserted at 1e-9 (task asks 1e-6).
    np.testing.assert_allclose(ours, PEERS[peer](mu1, s1, mu2, s2), rtol=1e-9)
    np.testing.assert_allclose(fd(real, fake), ours, rtol=1e-12)


def test_fd_is_symmetric_and_zero_on_identical_sets() -> None:
    real, fake = _feature_pair("clustered")
    np.testing.assert_allclose(fd(real, fake), fd(fake, real), rtol=1e-12)
    s = feature_statistics(real)
    assert abs(fd_from_stats(s.mean, s.cov, s.mean, s.cov)) < 1e-10 * np.trace(s.cov)


def test_fd_of_gaussians_with_commuting_covariances_has_closed_form() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0.5, 4.0, D), rng.uniform(0.5, 4.0, D)
    mu1, mu2 = rng.standard_normal(D), rng.standard_normal(D)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    np.testing.assert_allclose(fd_from_stats(mu1, np.diag(a), mu2, np.diag(b)), expected, rtol=1e-13)


@pytest.mark.parametrize("d", [64, 256])
@pytest.mark.parametrize(
    "case", ["ill_conditioned", "shared_null_space", "different_null_spaces", "one_singular"]
)
def test_fd_exact_on_singular_and_ill_conditioned_covariances(d: int, case: str) -> None:
    rng = np.random.default_rng(d + len(case))
    a, b = _hadamard_case(case, d, rng)
    s1, s2 = _hadamard_pair(d, a, b, seed=d)
    mu1 = rng.integers(-5, 5, d).astype(np.float64)
    mu2 = rng.integers(-5, 5, d).astype(np.float64)
    exact = ((mu1 - mu2) ** 2).sum() + a.sum() + b.sum() - 2 * np.sqrt(a * b).sum()
    np.testing.assert_allclose(fd_from_stats(mu1, s1, mu2, s2), exact, rtol=1e-11)
    np.testing.assert_allclose(fd_from_stats(mu2, s2, mu1, s1), exact, rtol=1e-11)
    # The eigvals-based peers lose ~sqrt(eps) here (measured up to 4e-8 relative; pytorch-fid and
    # clean-fid raise "Imaginary component" on the ill-conditioned case): within 1e-6, not 1e-11.
    for peer in ("torch-fidelity", "torchmetrics"):
        np.testing.assert_allclose(PEERS[peer](mu1, s1, mu2, s2), exact, rtol=1e-6)


def test_trace_sqrt_product_at_inception_dimension() -> None:
    d = 2048
    rng = np.random.default_rng(0)
    a = rng.integers(1, 10_000, d).astype(np.float64)
    b = rng.integers(1, 10_000, d).astype(np.float64)
    # One BLAS thread: multi-threaded OpenBLAS slows down ~10x when the shared CPUs are busy.
    with threadpool_limits(limits=1, user_api="blas"):
        s1, s2 = _hadamard_pair(d, a, b, seed=1)
        np.testing.assert_allclose(trace_sqrt_product(s1, s2), np.sqrt(a * b).sum(), rtol=1e-11)


def test_fd_with_fewer_samples_than_dimensions_matches_exact_svd_reference() -> None:
    rng = np.random.default_rng(5)
    n = 40
    real = rng.standard_normal((n, D))
    fake = rng.standard_normal((n, D)) @ rng.standard_normal((D, D)) * 0.3 + 0.2
    # Independent exact reference: with S_k = Xc_k^T Xc_k / (n-1), the eigenvalues of S1 S2 are
    # the squared singular values of Xc_1 Xc_2^T / (n-1) (an n x n matrix of full rank).
    rc, fc = real - real.mean(0), fake - fake.mean(0)
    tr_sqrt = np.linalg.svd(rc @ fc.T / (n - 1), compute_uv=False).sum()
    exact = ((real.mean(0) - fake.mean(0)) ** 2).sum() + np.trace(np.cov(real.T)) + np.trace(np.cov(fake.T)) - 2 * tr_sqrt
    with pytest.warns(SampleSizeWarning, match="singular"):
        ours = fd(real, fake)
    np.testing.assert_allclose(ours, exact, rtol=1e-12)
    mu1, s1 = _np_stats(real)
    mu2, s2 = _np_stats(fake)
    for peer in PEERS.values():  # peers: ~1e-8 relative off (sqrt of rounding-level eigenvalues)
        np.testing.assert_allclose(peer(mu1, s1, mu2, s2), exact, rtol=1e-6)


def test_fd_warns_only_when_covariance_is_singular() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((D, D))
    with pytest.warns(SampleSizeWarning, match="64 samples for 64 feature dimensions"):
        fd(x, x + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fd(rng.standard_normal((D + 1, D)), rng.standard_normal((D + 1, D)))


# ----------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("block_rows", [1, 7, 128, 5000])
def test_streaming_statistics_of_memmap_equal_numpy(tmp_path, block_rows: int) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "features.f32"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=(1000, 48))
    mm[:] = rng.standard_normal((1000, 48)) * rng.uniform(0.1, 10, 48) + rng.uniform(-5, 5, 48)
    mm.flush()
    x = np.memmap(path, dtype=np.float32, mode="r", shape=(1000, 48))
    stats = feature_statistics(x, block_rows=block_rows)
    x64 = np.asarray(x, dtype=np.float64)
    assert isinstance(stats, GaussianStats) and stats.n == 1000 and stats.dim == 48
    assert stats.mean.dtype == np.float64 and stats.cov.dtype == np.float64
    np.testing.assert_allclose(stats.mean, x64.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.cov, np.cov(x64, rowvar=False), rtol=1e-11, atol=1e-12)
    assert np.array_equal(stats.cov, stats.cov.T)


def test_streaming_statistics_are_stable_under_a_large_offset() -> None:
    rng = np.random.default_rng(2)
    noise = rng.standard_normal((3000, 16))
    x = 1e7 + noise  # raw sums of x x^T would lose every digit of the unit variance
    stats = feature_statistics(x, block_rows=256)
    np.testing.assert_allclose(stats.cov, np.cov(noise, rowvar=False), rtol=1e-6, atol=1e-7)


def test_feature_stats_chunked_updates_and_merge_equal_one_pass() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((500, 12)) + 3
    acc = FeatureStats()
    for chunk in np.array_split(x, [1, 2, 50, 51, 300]):
        acc.update(chunk, block_rows=33)
    other = FeatureStats().update(x[:200])
    merged = other.merge(FeatureStats().update(x[200:]))
    for result in (acc.finalize(), merged.finalize()):
        assert result.n == 500
        np.testing.assert_allclose(result.mean, x.mean(0), rtol=1e-13)
        np.testing.assert_allclose(result.cov, np.cov(x, rowvar=False), rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- bad inputs


def test_bad_inputs_give_clear_errors() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 4))
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="fake contains NaN"):
        fd(x, bad)
    with pytest.raises(ValueError, match=r"real must have shape \(N, D\)"):
        fd(x[:, 0], x)
    with pytest.raises(ValueError, match="different feature dimensions"):
        fd(x, x[:, :3])
    with pytest.raises(ValueError, match="at least 2 samples"):
        fd(x[:1], x)
    with pytest.raises(ValueError, match="at least 2 rows"):
        FeatureStats().update(x[:1]).finalize()
    with pytest.raises(ValueError, match="block_rows"):
        feature_statistics(x, block_rows=0)
    with pytest.raises(ValueError, match="columns but earlier updates"):
        FeatureStats().update(x).update(x[:, :2])
    s = np.cov(x, rowvar=False)
    mu = x.mean(0)
    with pytest.raises(ValueError, match="sigma2 must be a \\(4, 4\\)"):
        fd_from_stats(mu, s, mu, s[:3, :3])
    with pytest.raises(ValueError, match="mu1 and mu2 have different dimensions"):
        fd_from_stats(mu, s, mu[:3], s[:3, :3])
    with pytest.raises(ValueError, match="mu1 must be a non-empty 1-D"):
        fd_from_stats(s, s, mu, s)
    nonsym = s.copy()
    nonsym[0, 1] += 1.0
    with pytest.raises(ValueError, match="sigma1 is not symmetric"):
        fd_from_stats(mu, nonsym, mu, s)
    with pytest.raises(ValueError, match="sigma2 contains NaN"):
        fd_from_stats(mu, s, mu, np.full_like(s, np.nan))


# ----------------------------------------------------------------------------- FD infinity


def test_fd_infinity_sizes_follow_the_reference_protocol() -> None:
    ref = np.linspace(5000, 50_000, 15).astype("int32")  # mchong6/FID_IS_infinity
    assert np.array_equal(fd_infinity_sizes(50_000), ref)
    assert fd_infinity_sizes(2000).tolist()[0] == 200 and fd_infinity_sizes(2000)[-1] == 2000
    assert fd_infinity_sizes(1000, points=3, min_size=500).tolist() == [500, 750, 1000]
    with pytest.raises(ValueError, match="repeated subset sizes"):
        fd_infinity_sizes(30, points=15, min_size=20)
    with pytest.raises(ValueError, match="min_size"):
        fd_infinity_sizes(15)
    with pytest.raises(ValueError, match="points"):
        fd_infinity_sizes(1000, points=1)


def test_fd_infinity_reproduces_its_documented_protocol_and_sklearn_fit(tmp_path) -> None:
    rng = np.random.default_rng(0)
    d = 8
    real = rng.standard_normal((4000, d))
    path = tmp_path / "fake.f32"
    fake = np.memmap(path, dtype=np.float32, mode="w+", shape=(2000, d))
    fake[:] = rng.standard_normal((2000, d)) * 1.2 + 0.1
    res = fd_infinity(real, fake, points=6, seed=11, block_rows=64)
    assert isinstance(res, FDInfinityResult) and res.n_real == 4000 and res.n_fake == 2000
    sizes = fd_infinity_sizes(2000, points=6)
    assert res.sizes == tuple(sizes.tolist())
    # Documented protocol: an independent rng.permutation(n_fake)[:N] per point, real stats once.
    g = np.random.default_rng(11)
    expected = [fd(real, np.asarray(fake)[g.permutation(2000)[:n]]) for n in sizes]
    np.testing.assert_allclose(res.fds, expected, rtol=1e-10)
    # The reference fits sklearn's LinearRegression on 1/N and predicts at 0.
    reg = LinearRegression().fit(1.0 / sizes.reshape(-1, 1), np.array(expected).reshape(-1, 1))
    np.testing.assert_allclose(res.value, reg.predict(np.zeros((1, 1)))[0, 0], rtol=1e-10)
    np.testing.assert_allclose(res.slope, reg.coef_[0, 0], rtol=1e-10)
    # With this seed the extrapolation lands nearer the population FD than FD at N = 2000.
    truth = d * (1.2 - 1.0) ** 2 + d * 0.1**2
    assert abs(res.value - truth) < abs(res.fds[-1] - truth)


def test_fd_infinity_nested_uses_prefixes_of_one_permutation() -> None:
    rng = np.random.default_rng(4)
    real = rng.standard_normal((500, 6))
    fake = rng.standard_normal((400, 6)) + 0.2
    res = fd_infinity(real, fake, points=4, seed=2, nested=True, block_rows=50)
    order = np.random.default_rng(2).permutation(400)
    expected = [fd(real, fake[order[:n]]) for n in res.sizes]
    np.testing.assert_allclose(res.fds, expected, rtol=1e-10)
    assert float(res) == res.value


def test_fd_infinity_warns_when_smallest_subset_is_singular() -> None:
    rng = np.random.default_rng(0)
    real = rng.standard_normal((300, 16))
    fake = rng.standard_normal((120, 16))
    with pytest.warns(SampleSizeWarning, match="smallest fake subset"):
        fd_infinity(real, fake, points=3)  # min size 12 <= D
    with pytest.raises(ValueError, match="different feature dimensions"):
        fd_infinity(real, fake[:, :3])
