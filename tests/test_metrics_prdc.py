"""PRDC, improved precision/recall and realism vs ``prdc``, torch-fidelity and naive references.

Tolerances:
* vs a float64 full-matrix reference written here: exact equality of every value and per-sample
  flag (the engine decides every comparison in float64).
* vs ``prdc`` / torch-fidelity (float32 distances): exact equality (1e-12 for density's sum,
  1e-6 for torch-fidelity's float32 mean). A pair whose distance and radius differ but agree to
  float32 resolution (relative 1e-6 here) could be decided either way by the peers and may move
  a metric by one sample; the data sets are checked to contain none for ``prdc`` and at most one
  for torch-fidelity (whose tolerance widens by one sample per such pair). Exact ties (a copied
  sample at exactly a radius, integer lattice distances) are decided identically by the peers:
  ``d < r`` is false for all.
The peer comparisons are marked ``peers`` and skip when the peer is missing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from workbench.metrics.prdc import prdc
from workbench.metrics.precision_recall import precision_recall, realism_score

AMBIGUOUS_RTOL = 1e-6


def _random(seed):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(400, 64)).astype(np.float32)
    fake = (1.2 * rng.normal(size=(350, 64)) + 0.3).astype(np.float32)
    return real, fake


def _clustered(seed):
    rng = np.random.default_rng(seed)
    centres = 4 * rng.normal(size=(8, 32))
    real = centres[rng.integers(0, 8, 420)] + rng.normal(size=(420, 32))
    # fakes miss two modes and are tighter
    fake = centres[rng.integers(0, 6, 380)] + 0.7 * rng.normal(size=(380, 32))
    return real.astype(np.float32), fake.astype(np.float32)


def _copies(seed):
    # memorising generator: half the fakes copy real samples; the real set has duplicates too
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(300, 16)).astype(np.float32)
    real[250:] = real[:50]
    fake = rng.normal(size=(300, 16)).astype(np.float32)
    fake[:150] = real[rng.integers(0, 300, 150)]
    return real, fake


def _lattice(seed):
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 3, size=(300, 6)).astype(np.float32),
        rng.integers(0, 3, size=(280, 6)).astype(np.float32) + (rng.random((280, 6)) < 0.1),
    )


DATASETS = {"random": _random, "clustered": _clustered, "copies": _copies, "lattice": _lattice}


def _naive(real, fake, k, inclusive):
    real, fake = real.astype(np.float64), fake.astype(np.float64)
    r_real = np.sort(cdist(real, real), axis=1)[:, k]
    r_fake = np.sort(cdist(fake, fake), axis=1)[:, k]
    d = cdist(real, fake)  # real x fake
    in_real_ball = d <= r_real[:, None] if inclusive else d < r_real[:, None]
    in_fake_ball = d <= r_fake[None, :] if inclusive else d < r_fake[None, :]
    gap_real, gap_fake = np.abs(d - r_real[:, None]), np.abs(d - r_fake[None, :])
    n_amb = np.sum((gap_real > 0) & (gap_real <= AMBIGUOUS_RTOL * r_real[:, None])) + np.sum(
        (gap_fake > 0) & (gap_fake <= AMBIGUOUS_RTOL * r_fake[None, :])
    )
    return dict(
        r_real=r_real,
        r_fake=r_fake,
        counts=in_real_ball.sum(0),
        fake_in_real=in_real_ball.any(0),
        real_in_fake=in_fake_ball.any(1),
        real_covered=in_real_ball.any(1),
        n_ambiguous=int(n_amb),
    )


@pytest.mark.parametrize("name", sorted(DATASETS))
@pytest.mark.parametrize("k", [3, 5])
def test_prdc_matches_naive(name, k):
    real, fake = DATASETS[name](k)
    got = prdc(real, fake, k, block_size=128)
    ref = _naive(real, fake, k, inclusive=False)

    np.testing.assert_allclose(got.real_radii, ref["r_real"], rtol=1e-12)
    np.testing.assert_allclose(got.fake_radii, ref["r_fake"], rtol=1e-12)
    np.testing.assert_array_equal(got.fake_real_ball_counts, ref["counts"])
    np.testing.assert_array_equal(got.fake_in_real_manifold, ref["fake_in_real"])
    np.testing.assert_array_equal(got.real_in_fake_manifold, ref["real_in_fake"])
    np.testing.assert_array_equal(got.real_covered, ref["real_covered"])


@pytest.mark.peers
@pytest.mark.parametrize("name", sorted(DATASETS))
@pytest.mark.parametrize("k", [3, 5])
def test_prdc_matches_prdc_package(name, k):
    compute_prdc = pytest.importorskip("prdc").compute_prdc
    real, fake = DATASETS[name](k)
    got = prdc(real, fake, k, block_size=128)
    ref = _naive(real, fake, k, inclusive=False)
    peer = compute_prdc(real, fake, nearest_k=k)
    assert ref["n_ambiguous"] == 0
    assert got.precision == peer["precision"]
    assert got.recall == peer["recall"]
    assert got.density == pytest.approx(peer["density"], abs=1e-12)
    assert got.coverage == peer["coverage"]
    assert got.as_dict().keys() == peer.keys()


def test_prdc_copies_are_counted_exactly():
    real, fake = _copies(0)
    got = prdc(real, fake, 5)
    # a fake that copies a real sample lies inside that sample's ball (radius > 0 here)
    assert np.all(got.fake_in_real_manifold[:150])
    assert got.precision > 0.5


@pytest.mark.parametrize("name", sorted(DATASETS))
@pytest.mark.parametrize("k", [3, 5])
def test_precision_recall_matches_naive(name, k):
    real, fake = DATASETS[name](k + 10)
    got = precision_recall(real, fake, k, block_size=100)
    ref = _naive(real, fake, k, inclusive=True)
    np.testing.assert_array_equal(got.fake_in_real_manifold, ref["fake_in_real"])
    np.testing.assert_array_equal(got.real_in_fake_manifold, ref["real_in_fake"])
    assert got.precision == pytest.approx(ref["fake_in_real"].mean(), rel=1e-12)
    assert got.recall == pytest.approx(ref["real_in_fake"].mean(), rel=1e-12)
    expected_f = 2 * got.precision * got.recall / (got.precision + got.recall)
    assert got.f_score == pytest.approx(expected_f, rel=1e-12)


@pytest.mark.peers
@pytest.mark.parametrize("name", sorted(DATASETS))
@pytest.mark.parametrize("k", [3, 5])
def test_precision_recall_matches_torch_fidelity(name, k):
    metric_prc = pytest.importorskip("torch_fidelity.metric_prc")
    real, fake = DATASETS[name](k + 10)
    got = precision_recall(real, fake, k, block_size=100)
    ref = _naive(real, fake, k, inclusive=True)

    # torch-fidelity convention: features_1 = generated, features_2 = real
    f1, f2 = torch.from_numpy(fake), torch.from_numpy(real)
    p_full, r_full = metric_prc.calculate_precision_recall_full(f1, f2, neighborhood=k, batch_size=10000)
    p_part, r_part = metric_prc.calculate_precision_recall_part(f1, f2, neighborhood=k, batch_size=128)
    n_amb = ref["n_ambiguous"]
    assert n_amb <= 1  # (one near-tie in "clustered", k=5; each can move one sample)
    for p, r in ((p_full, r_full), (p_part, r_part)):
        assert got.precision == pytest.approx(p, abs=n_amb / fake.shape[0] + 1e-6)  # float32 mean
        assert got.recall == pytest.approx(r, abs=n_amb / real.shape[0] + 1e-6)


def _official_realism(real, fake, k, percentile=50.0, eps=1e-5):
    """kynkaat/improved-precision-and-recall-metric, written out on full matrices: squared
    distances, radii above the percentile set to 0, max of r^2 / (d^2 + eps)."""
    d2_rr = cdist(real, real, "sqeuclidean")
    radii_sq = np.sort(d2_rr, axis=1)[:, k]
    radii_sq = np.where(radii_sq > np.percentile(radii_sq, percentile), 0.0, radii_sq)
    ratio = radii_sq[None, :] / (cdist(fake, real, "sqeuclidean") + eps)
    return ratio.max(axis=1), ratio.argmax(axis=1)


@pytest.mark.parametrize("k", [3, 5])
def test_realism_score_vs_paper_formula_and_official_code(k):
    real, fake = _clustered(3)
    got = realism_score(real, fake, k, block_size=100)
    real64, fake64 = real.astype(np.float64), fake.astype(np.float64)
    radii = np.sort(cdist(real64, real64), axis=1)[:, k]
    kept = radii <= np.median(radii)
    ratio = radii[None, kept] / np.sqrt(cdist(fake64, real64[kept]) ** 2 + 1e-5)
    np.testing.assert_array_equal(got.kept_real, kept)
    np.testing.assert_allclose(got.scores, ratio.max(axis=1), rtol=1e-10)
    np.testing.assert_array_equal(got.nearest_real, np.flatnonzero(kept)[ratio.argmax(axis=1)])
    # the official code returns the square of the paper's ratio (it works on squared distances)
    official, official_arg = _official_realism(real64, fake64, k)
    np.testing.assert_allclose(got.scores**2, official, rtol=1e-10)
    np.testing.assert_array_equal(got.nearest_real, official_arg)


def test_realism_without_pruning_and_copies():
    real, fake = _copies(1)
    got = realism_score(real, fake, 3, prune_percentile=None)
    assert got.kept_real.all()
    copy_rows = np.flatnonzero(np.all(fake[:150, None, :] == real[None, :, :], axis=2).any(axis=1))
    # a copy of a real sample with a positive radius sits at distance 0: ratio r / sqrt(eps)
    assert np.all(got.scores[copy_rows] >= got.real_radii[got.nearest_real[copy_rows]] / np.sqrt(1e-5) - 1e-9)
    assert np.median(got.scores[copy_rows]) > 100 * np.median(got.scores[150:])


def test_bad_inputs_raise_clear_errors():
    real, fake = _random(0)
    with pytest.raises(ValueError, match="k=400 needs more than k samples in real"):
        prdc(real, fake, 400)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        precision_recall(real, fake, 0)
    with pytest.raises(ValueError, match="different feature dimensions"):
        prdc(real, fake[:, :10])
    with pytest.raises(ValueError, match="shape \\(N, D\\)"):
        prdc(real[0], fake)
    with pytest.raises(ValueError, match="prune_percentile"):
        realism_score(real, fake, prune_percentile=150)
