"""Kernel distance (KID) and CMMD, checked against peers and naive closed forms.

KD peers: torch-fidelity ``kid_features_to_metric`` (same subsets through
``sampling="randomstate"``), clean-fid ``kernel_distance`` (global ``np.random``; with the
arguments swapped it draws in our order), torchmetrics ``poly_mmd`` on identical index lists. With
float64 inputs every peer agrees to ~1e-15 (asserted at 1e-10). With float32 inputs the peers
compute in float32 and differ by ~1e-6 relative (asserted at 1e-4 and documented).
CMMD has no installed peer (the reference is JAX); it is checked against a naive full-matrix
numpy transcription of ``google-research/cmmd/distance.py``.
Peer comparisons are marked ``peers`` and skip when the peer is missing.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from workbench.metrics.cmmd import cmmd
from workbench.metrics.kernel_distance import kd, kd_subset_indices
from workbench.metrics.results import MetricValue
from workbench.metrics.validation import SampleSizeWarning


def _features(kind: str, seed: int = 0, d: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, d, sum(map(ord, kind))])
    if kind == "gaussian":
        return rng.standard_normal((300, d)), rng.standard_normal((260, d)) * 1.1 + 0.1
    if kind == "clustered":
        centres = rng.normal(0, 2, (4, d))
        real = centres[rng.integers(0, 4, 300)] + rng.standard_normal((300, d))
        fake = centres[rng.integers(0, 2, 260)] + 0.7 * rng.standard_normal((260, d))
        return real, fake
    if kind == "duplicates":
        base = rng.standard_normal((100, d))
        return np.repeat(base, 3, axis=0), np.repeat(rng.standard_normal((90, d)) + 0.2, 3, axis=0)
    raise AssertionError(kind)


def _naive_unbiased_poly_mmd2(x, y, degree=3, gamma=None, coef=1.0) -> float:
    """Binkowski et al. (2018) estimator written out term by term."""
    m, d = x.shape
    gamma = 1.0 / d if gamma is None else gamma

    def k(a, b):
        return (gamma * np.einsum("id,jd->ij", a, b) + coef) ** degree

    off = ~np.eye(m, dtype=bool)
    return k(x, x)[off].mean() + k(y, y)[off].mean() - 2 * k(x, y).mean()


def _naive_cmmd(x, y, sigma=10.0, scale=1000.0) -> float:
    """Full-matrix transcription of google-research cmmd/distance.py ``mmd`` in float64."""
    gamma = 1 / (2 * sigma**2)
    x_sq = np.diag(x @ x.T)
    y_sq = np.diag(y @ y.T)
    k_xx = np.mean(np.exp(-gamma * (-2 * x @ x.T + x_sq[:, None] + x_sq[None, :])))
    k_xy = np.mean(np.exp(-gamma * (-2 * x @ y.T + x_sq[:, None] + y_sq[None, :])))
    k_yy = np.mean(np.exp(-gamma * (-2 * y @ y.T + y_sq[:, None] + y_sq[None, :])))
    return scale * (k_xx + k_yy - 2 * k_xy)


# ----------------------------------------------------------------------------- KD


@pytest.mark.peers
@pytest.mark.parametrize("kind", ["gaussian", "clustered", "duplicates"])
def test_kd_matches_torch_fidelity_with_identical_subsets(kind: str) -> None:
    kid_features_to_metric = pytest.importorskip("torch_fidelity.metric_kid").kid_features_to_metric
    real, fake = _features(kind)
    ours = kd(real, fake, subsets=15, subset_size=100, seed=2020, sampling="randomstate")
    peer = kid_features_to_metric(
        torch.from_numpy(real),
        torch.from_numpy(fake),
        kid_subsets=15,
        kid_subset_size=100,
        rng_seed=2020,
        verbose=False,
    )
    np.testing.assert_allclose(ours.value, peer["kernel_inception_distance_mean"], rtol=1e-10)
    np.testing.assert_allclose(ours.std, peer["kernel_inception_distance_std"], rtol=1e-10)


@pytest.mark.peers
def test_kd_float32_features_match_torch_fidelity_to_float32_precision() -> None:
    kid_features_to_metric = pytest.importorskip("torch_fidelity.metric_kid").kid_features_to_metric
    real, fake = (a.astype(np.float32) for a in _features("gaussian", d=256))
    ours = kd(real, fake, subsets=10, subset_size=200, seed=3, sampling="randomstate")
    peer = kid_features_to_metric(
        torch.from_numpy(real),
        torch.from_numpy(fake),
        kid_subsets=10,
        kid_subset_size=200,
        rng_seed=3,
        verbose=False,
    )
    # torch-fidelity multiplies and sums in float32 (measured ~1e-6 relative); ours is float64.
    np.testing.assert_allclose(ours.value, peer["kernel_inception_distance_mean"], rtol=1e-4)
    ours32 = kd(real, fake, subsets=10, subset_size=200, seed=3, sampling="randomstate", dtype="float32")
    # Same float32 arithmetic; only the order of rows in each subset (sorted here) differs.
    np.testing.assert_allclose(ours32.value, peer["kernel_inception_distance_mean"], rtol=1e-5)
    np.testing.assert_allclose(ours32.value, ours.value, rtol=1e-4)


@pytest.mark.peers
def test_kd_matches_clean_fid_with_identical_subsets() -> None:
    cleanfid_kid = pytest.importorskip("cleanfid.fid").kernel_distance
    real, fake = _features("clustered")
    ours = kd(real, fake, subsets=12, subset_size=80, seed=5, sampling="randomstate")
    np.random.seed(5)  # clean-fid draws from the global RandomState, second argument first
    peer = cleanfid_kid(fake, real, num_subsets=12, max_subset_size=80)
    np.testing.assert_allclose(ours.value, peer, rtol=1e-10)


def test_kd_per_subset_values_match_naive_formula() -> None:
    real, fake = _features("gaussian")
    res = kd(real, fake, subsets=5, subset_size=50, seed=9)
    pairs = kd_subset_indices(len(real), len(fake), 5, 50, seed=9)
    values = np.array(res.extra["values"])
    naive = [_naive_unbiased_poly_mmd2(real[r], fake[f]) for r, f in pairs]
    np.testing.assert_allclose(values, naive, rtol=1e-12)
    np.testing.assert_allclose(res.value, np.mean(naive), rtol=1e-12)
    np.testing.assert_allclose(res.std, np.std(naive), rtol=1e-10)  # ddof=0 like the peers


@pytest.mark.peers
def test_kd_per_subset_values_match_torchmetrics() -> None:
    poly_mmd = pytest.importorskip("torchmetrics.image.kid").poly_mmd
    real, fake = _features("gaussian")
    res = kd(real, fake, subsets=5, subset_size=50, seed=9)
    pairs = kd_subset_indices(len(real), len(fake), 5, 50, seed=9)
    tm = [float(poly_mmd(torch.from_numpy(real[r]), torch.from_numpy(fake[f]))) for r, f in pairs]
    np.testing.assert_allclose(np.array(res.extra["values"]), tm, rtol=1e-10)


@pytest.mark.parametrize(("degree", "gamma", "coef"), [(1, None, 0.0), (2, 0.5, 0.3), (4, 0.01, 2.0)])
def test_kd_kernel_parameters_match_naive_formula(degree: int, gamma, coef: float) -> None:
    real, fake = _features("clustered", d=8)
    res = kd(real, fake, subsets=3, subset_size=40, degree=degree, gamma=gamma, coef=coef, seed=1)
    pairs = kd_subset_indices(len(real), len(fake), 3, 40, seed=1)
    naive = [_naive_unbiased_poly_mmd2(real[r], fake[f], degree, gamma, coef) for r, f in pairs]
    np.testing.assert_allclose(res.extra["values"], naive, rtol=1e-11, atol=1e-14)


def test_kd_seed_reproducibility_and_sampling_modes() -> None:
    real, fake = _features("gaussian")
    a = kd(real, fake, subsets=4, subset_size=30, seed=1)
    b = kd(real, fake, subsets=4, subset_size=30, seed=np.random.default_rng(1))
    c = kd(real, fake, subsets=4, subset_size=30, seed=2)
    assert a.value == b.value and a.value != c.value
    rs = np.random.RandomState(4)
    first = kd_subset_indices(300, 260, 2, 30, seed=4, sampling="randomstate")[0]
    assert np.array_equal(first[0], rs.choice(300, 30, replace=False))
    assert np.array_equal(first[1], rs.choice(260, 30, replace=False))


def test_kd_warns_and_shrinks_subsets_larger_than_the_data() -> None:
    real, fake = _features("gaussian")
    with pytest.warns(SampleSizeWarning, match="using subsets of 260 rows"):
        res = kd(real, fake, subsets=3, subset_size=1000)
    assert res.extra["subset_size"] == 260 and res.n_real == 300 and res.n_fake == 260


def test_kd_bad_inputs_give_clear_errors() -> None:
    real, fake = _features("gaussian")
    with pytest.raises(ValueError, match="different feature dimensions"):
        kd(real, fake[:, :5])
    with pytest.raises(ValueError, match="subset_size must be an integer >= 2"):
        kd(real, fake, subset_size=1)
    with pytest.raises(ValueError, match="subsets must be a positive integer"):
        kd(real, fake, subsets=0)
    with pytest.raises(ValueError, match="degree"):
        kd(real, fake, degree=0)
    with pytest.raises(ValueError, match="gamma"):
        kd(real, fake, gamma=-1.0)
    with pytest.raises(ValueError, match="sampling"):
        kd(real, fake, sampling="torch")
    with pytest.raises(ValueError, match="dtype"):
        kd(real, fake, dtype="float16")
    bad = real.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="real contains NaN or infinite"):
        kd(bad, fake)


# ----------------------------------------------------------------------------- CMMD


@pytest.mark.parametrize("block_rows", [1, 7, 64, 1000])
def test_cmmd_blocked_equals_full_matrix_reference(block_rows: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((130, 24)) * 3
    y = rng.standard_normal((97, 24)) * 3 + 0.5
    np.testing.assert_allclose(cmmd(x, y, block_rows=block_rows), _naive_cmmd(x, y), rtol=1e-11)


def test_cmmd_on_unit_norm_embeddings_with_custom_sigma_and_scale() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, 64)).astype(np.float32)
    y = (rng.standard_normal((150, 64)) + 0.3).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # CLIP embeddings are L2-normalised
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    ref = _naive_cmmd(x.astype(np.float64), y.astype(np.float64))
    np.testing.assert_allclose(cmmd(x, y, block_rows=64), ref, rtol=1e-9)
    ref2 = _naive_cmmd(x.astype(np.float64), y.astype(np.float64), sigma=0.5, scale=1.0)
    np.testing.assert_allclose(cmmd(x, y, sigma=0.5, scale=1.0), ref2, rtol=1e-11)


def test_cmmd_is_zero_on_identical_sets_and_symmetric() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((80, 16))
    y = rng.standard_normal((60, 16)) + 1
    assert abs(cmmd(x, x, block_rows=16)) < 1e-9
    np.testing.assert_allclose(cmmd(x, y), cmmd(y, x), rtol=1e-12)
    assert cmmd(x, y) > 0


def test_cmmd_bad_inputs_give_clear_errors() -> None:
    x = np.ones((5, 3))
    with pytest.raises(ValueError, match="sigma must be a positive number"):
        cmmd(x, x, sigma=0)
    with pytest.raises(ValueError, match="different feature dimensions"):
        cmmd(x, np.ones((5, 4)))
    with pytest.raises(ValueError, match="block_rows"):
        cmmd(x, x, block_rows=0)
    with pytest.raises(ValueError, match=r"fake must have shape \(N, D\)"):
        cmmd(x, np.ones(5))


# ----------------------------------------------------------------------------- result type


def test_metric_value_is_immutable_and_converts_to_float() -> None:
    v = MetricValue(value=np.float32(0.5), std=0.1, n_real=3, n_fake=4, extra={"k": 1})
    assert float(v) == 0.5 and isinstance(v.value, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.value = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        v.extra["k"] = 2  # type: ignore[index]
