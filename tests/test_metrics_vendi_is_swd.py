"""Vendi score, Inception Score and sliced Wasserstein against peers, naive references and closed forms.

The peer comparisons (vendi-score, torch-fidelity) are marked ``peers`` and skip when the peer is missing.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.stats import wasserstein_distance

from workbench.metrics.inception_score import inception_score
from workbench.metrics.sliced_wasserstein import random_directions, sliced_wasserstein
from workbench.metrics.validation import SampleSizeWarning
from workbench.metrics.vendi import VendiResult, vendi


@pytest.fixture(scope="module")
def vendi_peer():
    return pytest.importorskip("vendi_score.vendi")


@pytest.fixture(scope="module")
def isc_peer():
    return pytest.importorskip("torch_fidelity.metric_isc")


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------------------------- Vendi


@pytest.mark.peers
@pytest.mark.parametrize("q", [0.5, 1, 2, 3.5, "inf"])
def test_vendi_matches_vendi_score_dual(q, vendi_peer):
    # full-rank data (N > D, Gaussian): no rounding-noise eigenvalues, so both agree for every q
    x = _rng(1).standard_normal((400, 24)) + 0.3
    ours = vendi(x, q=q)
    peer = vendi_peer.score_dual(x, q=q)
    assert ours == pytest.approx(peer, rel=1e-9)


@pytest.mark.peers
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # vendi_score uses scipy.sparse.csr
@pytest.mark.parametrize("q", [1, 2, "inf"])
def test_vendi_n_smaller_than_d_matches_kernel_form(q, vendi_peer):
    # N < D goes through the N x N Gram matrix; compared with vendi_score.score_K on the explicit kernel.
    # (vendi_score.score_X would not do here: it ignores q and always returns the q = 1 score.)
    x = _rng(2).standard_normal((30, 80))
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert vendi(x, q=q) == pytest.approx(vendi_peer.score_K(xn @ xn.T, q=q), rel=1e-9)


def test_vendi_order_zero_is_numerical_rank():
    # rank 5 features in 12 dims: q = 0 counts non-zero eigenvalues. vendi_score counts positive rounding
    # noise too (its score_dual gives 10 here), which is why eigenvalues below the rank tolerance are dropped.
    x = _rng(3).standard_normal((200, 5)) @ _rng(4).standard_normal((5, 12))
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert vendi(x, q=0) == np.linalg.matrix_rank(xn) == 5


def test_vendi_closed_forms():
    eye = np.eye(7)
    for q in (0, 0.5, 1, 2, np.inf):
        assert vendi(eye, q=q) == pytest.approx(7.0, rel=1e-12)  # orthogonal samples: 7 distinct
        assert vendi(np.tile([[1.0, 2.0, 3.0]], (9, 1)), q=q) == pytest.approx(1.0, rel=1e-12)
    # two groups of duplicates, sizes 3 and 1: eigenvalues 3/4 and 1/4
    x = np.array([[1.0, 0], [2.0, 0], [5.0, 0], [0, 1.0]])
    p = np.array([0.75, 0.25])
    assert vendi(x, q=1) == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-12)
    assert vendi(x, q=2) == pytest.approx(1.0 / (p**2).sum(), rel=1e-12)
    assert vendi(x, q=float("inf")) == pytest.approx(1 / 0.75, rel=1e-12)


def test_vendi_is_scale_invariant_per_row():
    x = _rng(5).standard_normal((100, 10))
    scales = _rng(6).uniform(0.1, 10.0, size=(100, 1))
    assert vendi(x * scales) == pytest.approx(vendi(x), rel=1e-10)


def test_vendi_per_class_scores():
    x = _rng(7).standard_normal((150, 16))
    labels = np.repeat(np.array(["cat", "dog", "eel"]), 50)
    out = vendi(x, q=2, labels=labels)
    assert isinstance(out, VendiResult)
    assert out.score == pytest.approx(vendi(x, q=2), rel=1e-12)
    assert sorted(out.per_class) == ["cat", "dog", "eel"]
    for name, start in (("cat", 0), ("dog", 50), ("eel", 100)):
        assert out.per_class[name] == pytest.approx(vendi(x[start : start + 50], q=2), rel=1e-12)


@pytest.mark.peers
def test_vendi_per_class_scores_match_vendi_score(vendi_peer):
    x = _rng(7).standard_normal((150, 16))
    labels = np.repeat(np.array(["cat", "dog", "eel"]), 50)
    out = vendi(x, q=2, labels=labels)
    for name, start in (("cat", 0), ("dog", 50), ("eel", 100)):
        peer = vendi_peer.score_dual(x[start : start + 50], q=2)
        assert out.per_class[name] == pytest.approx(peer, rel=1e-9)


def test_vendi_input_errors():
    x = _rng(8).standard_normal((10, 4))
    with pytest.raises(ValueError, match="all-zero row"):
        vendi(np.vstack([x, np.zeros((1, 4))]))
    with pytest.raises(ValueError, match="q must be"):
        vendi(x, q=-1)
    with pytest.raises(ValueError, match="q must be"):
        vendi(x, q="two")
    with pytest.raises(ValueError, match="labels"):
        vendi(x, labels=np.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        vendi(np.ones(5))


# -------------------------------------------------------------------------------------- Inception Score


def _logits(n: int, c: int = 1008, seed: int = 0) -> np.ndarray:
    rng = _rng(seed)
    # peaked, class-dependent logits like a classifier's, in float32 as extractors produce them
    return (rng.standard_normal((n, c)) * 2.0 + 8.0 * np.eye(c)[rng.integers(0, c, n)]).astype(np.float32)


@pytest.mark.peers
@pytest.mark.parametrize("n,splits", [(2000, 10), (1003, 7), (500, 1)])
def test_inception_score_matches_torch_fidelity_same_order(n, splits, isc_peer):
    logits = _logits(n, seed=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SampleSizeWarning)
        ours = inception_score(logits, splits=splits)
    peer = isc_peer.isc_features_to_metric(torch.from_numpy(logits), splits=splits, shuffle=False)
    # both compute in float64 from the same float32 logits: agreement to rounding
    assert ours.mean == pytest.approx(peer["inception_score_mean"], rel=1e-10)
    assert ours.std == pytest.approx(peer["inception_score_std"], rel=1e-8, abs=1e-12)


@pytest.mark.peers
def test_inception_score_matches_torch_fidelity_default_shuffle(isc_peer):
    # torch-fidelity shuffles by default with RandomState(2020); permuting our input the same way matches it
    logits = _logits(1500, seed=11)
    perm = np.random.RandomState(2020).permutation(len(logits))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SampleSizeWarning)
        ours = inception_score(logits[perm], splits=10)
    peer = isc_peer.isc_features_to_metric(torch.from_numpy(logits), splits=10)
    assert ours.mean == pytest.approx(peer["inception_score_mean"], rel=1e-10)
    assert ours.std == pytest.approx(peer["inception_score_std"], rel=1e-8)


def test_inception_score_closed_forms():
    c = 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SampleSizeWarning)
        # identical predictions: p(y|x) = p(y), KL = 0, IS = 1
        assert inception_score(np.ones((40, c)), splits=4).mean == pytest.approx(1.0, abs=1e-12)
        # confident and balanced over c classes: IS = c (exp of the entropy of the marginal)
        confident = 60.0 * np.tile(np.eye(c), (3, 1))
        res = inception_score(confident, splits=1)
        assert res.mean == pytest.approx(c, rel=1e-12) and res.std == 0.0


def test_inception_score_shuffle_is_seeded():
    logits = _logits(600, c=20, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SampleSizeWarning)
        a = inception_score(logits, splits=5, shuffle=True, seed=1)
        b = inception_score(logits, splits=5, shuffle=True, seed=1)
        c = inception_score(logits, splits=5, shuffle=True, seed=2)
        d = inception_score(logits, splits=1)
    assert a == b
    assert a.std != c.std
    # with one split the order does not matter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SampleSizeWarning)
        assert inception_score(logits, splits=1, shuffle=True).mean == pytest.approx(d.mean, rel=1e-12)


def test_inception_score_input_errors():
    with pytest.raises(ValueError, match="splits"):
        inception_score(np.zeros((10, 5)), splits=0)
    with pytest.raises(ValueError, match="fewer than splits"):
        inception_score(np.zeros((3, 5)), splits=10)
    with pytest.raises(ValueError, match="NaN"):
        inception_score(np.full((10, 5), np.nan), splits=1)
    with pytest.warns(SampleSizeWarning, match="per split"):
        inception_score(np.zeros((100, 5)), splits=10)


# ---------------------------------------------------------------------------- sliced Wasserstein


def _naive_wp(a: np.ndarray, b: np.ndarray, p: float) -> float:
    """Exact 1-D W_p between empirical measures by expanding both to lcm(N, M) equal-weight atoms."""
    k = np.lcm(len(a), len(b))
    qa = np.repeat(np.sort(a), k // len(a))
    qb = np.repeat(np.sort(b), k // len(b))
    return float(np.mean(np.abs(qa - qb) ** p) ** (1 / p))


@pytest.mark.parametrize("n,m", [(120, 120), (150, 96), (37, 53)])
def test_sliced_w1_matches_scipy_per_direction(n, m):
    real = _rng(1).standard_normal((n, 6))
    fake = _rng(2).standard_normal((m, 6)) * 1.3 + 0.4
    dirs = random_directions(6, 40, seed=9)
    expected = np.mean([wasserstein_distance(real @ t, fake @ t) for t in dirs])
    assert sliced_wasserstein(real, fake, projections=dirs, p=1) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("p", [2, 3])
def test_sliced_wp_matches_naive_lcm_expansion(p):
    real = _rng(3).standard_normal((45, 4))
    fake = _rng(4).exponential(size=(60, 4))
    dirs = random_directions(4, 25, seed=2)
    expected = np.mean([_naive_wp(real @ t, fake @ t, p) ** p for t in dirs]) ** (1 / p)
    assert sliced_wasserstein(real, fake, projections=dirs, p=p) == pytest.approx(expected, rel=1e-10)


def test_sliced_w2_closed_form_1d_gaussians():
    # D = 1: every direction is +-1 and SW_2 = W_2(N(mu1, s1^2), N(mu2, s2^2)) = sqrt(dmu^2 + ds^2)
    n = 40_000
    real = _rng(5).normal(1.0, 2.0, size=(n, 1))
    fake = _rng(6).normal(-0.5, 0.5, size=(n, 1))
    expected = np.sqrt(1.5**2 + 1.5**2)
    # sampling error of the empirical W2 at n = 40,000 is ~0.01; tolerance 0.02 (1%)
    assert sliced_wasserstein(real, fake, projections=3) == pytest.approx(expected, abs=0.02)


def test_sliced_w2_closed_form_isotropic_gaussians():
    # N(mu1, s1^2 I) vs N(mu2, s2^2 I) in D dims: SW_2^2 = |mu1 - mu2|^2 / D + (s1 - s2)^2
    d, n = 8, 10_000
    mu = np.linspace(-1, 1, d)
    real = _rng(7).standard_normal((n, d)) * 1.5 + mu
    fake = _rng(8).standard_normal((n, d)) * 0.7
    expected = np.sqrt(mu @ mu / d + 0.8**2)
    # Monte Carlo over 1000 directions plus sampling error (seeds 0-3 measured within 1.3%): within 3%
    assert sliced_wasserstein(real, fake, projections=1000, seed=1) == pytest.approx(expected, rel=0.03)


def test_sliced_wasserstein_properties():
    x = _rng(9).standard_normal((80, 5))
    y = _rng(10).standard_normal((70, 5)) + 1.0
    assert sliced_wasserstein(x, x.copy()) == 0.0
    assert sliced_wasserstein(x, y, seed=3) == sliced_wasserstein(x, y, seed=3)
    assert sliced_wasserstein(x, y, seed=3) != sliced_wasserstein(x, y, seed=4)
    # symmetric with the same directions, translation of both sets changes nothing
    assert sliced_wasserstein(x, y) == pytest.approx(sliced_wasserstein(y, x), rel=1e-12)
    assert sliced_wasserstein(x + 7.0, y + 7.0) == pytest.approx(sliced_wasserstein(x, y), rel=1e-9)
    # non-unit explicit directions are normalised
    dirs = random_directions(5, 10, seed=0)
    assert sliced_wasserstein(x, y, projections=dirs * 3.0) == pytest.approx(
        sliced_wasserstein(x, y, projections=dirs), rel=1e-12
    )


def test_sliced_wasserstein_input_errors():
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="different feature dimensions"):
        sliced_wasserstein(x, np.zeros((5, 4)))
    with pytest.raises(ValueError, match="p must be"):
        sliced_wasserstein(x, x, p=0.5)
    with pytest.raises(ValueError, match="projections"):
        sliced_wasserstein(x, x, projections=0)
    with pytest.raises(ValueError, match="shape"):
        sliced_wasserstein(x, x, projections=np.ones((4, 2)))
    with pytest.raises(ValueError, match="zero"):
        sliced_wasserstein(x, x, projections=np.zeros((2, 3)))
