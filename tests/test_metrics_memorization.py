"""AuthPct and MiFID vs naive full-matrix references written here and the torchmetrics MiFID.

Tolerances: AuthPct and its per-sample flags must match the float64 reference exactly; distances
``rtol=1e-10``. MiFID: memorization distance ``rtol=1e-10`` vs float64, ``rtol=1e-5`` vs the
float32-free torchmetrics formula run in float64 (its FD uses ``eigvals`` of a non-symmetric
product), FD via ``pytorch_fid`` ``rtol=1e-6``. The peer comparisons are marked ``peers`` and skip
when the peer is missing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from workbench.metrics.authenticity import authenticity
from workbench.metrics.frechet import fd
from workbench.metrics.mifid import mifid

# ----------------------------------------------------------------------------- AuthPct


def _naive_authpct(train, fake):
    """dgm-eval ``compute_authpct`` written out in float64."""
    train, fake = train.astype(np.float64), fake.astype(np.float64)
    real_dists = cdist(train, train)
    np.fill_diagonal(real_dists, np.inf)
    real_min = real_dists.min(axis=0)
    gen = cdist(train, fake)
    nearest = gen.argmin(axis=0)
    gen_min = gen.min(axis=0)
    authentic = real_min[nearest] < gen_min
    return 100 * authentic.mean(), authentic, nearest, gen_min, real_min[nearest]


def _train_fake(seed, n_copies=0, n_train_dups=0):
    rng = np.random.default_rng(seed)
    train = rng.normal(size=(400, 24)).astype(np.float32)
    if n_train_dups:
        train[-n_train_dups:] = train[:n_train_dups]
    fake = (rng.normal(size=(300, 24)) * 1.05).astype(np.float32)
    if n_copies:
        fake[:n_copies] = train[rng.integers(0, 400, n_copies)]
    return train, fake


@pytest.mark.parametrize(("n_copies", "n_train_dups"), [(0, 0), (60, 0), (60, 30)])
def test_authpct_matches_dgm_eval_formula(n_copies, n_train_dups):
    train, fake = _train_fake(1, n_copies, n_train_dups)
    got = authenticity(train, fake, block_size=128)
    pct, authentic, nearest, d1, d2 = _naive_authpct(train, fake)
    assert got.auth_pct == pct
    np.testing.assert_array_equal(got.authentic, authentic)
    np.testing.assert_allclose(got.fake_distance, d1, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.train_nn_distance, d2, rtol=1e-10, atol=1e-12)
    # the nearest training row may differ only between equidistant rows
    own = cdist(fake.astype(np.float64), train.astype(np.float64))[np.arange(300), got.nearest_train]
    np.testing.assert_allclose(own, d1, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(got.ratio > 1, got.authentic)
    if n_copies:
        assert not got.authentic[:n_copies].any()  # exact copies are never authentic
        assert got.auth_pct <= 100 * (1 - n_copies / 300)


def test_authpct_ratio_conventions_for_duplicates():
    train, fake = _train_fake(2, n_copies=0, n_train_dups=20)
    fake[:5] = train[:5]  # copies of duplicated training rows: d1 = d2 = 0
    got = authenticity(train, fake)
    np.testing.assert_array_equal(got.fake_distance[:5], 0.0)
    np.testing.assert_array_equal(got.train_nn_distance[:5], 0.0)
    np.testing.assert_array_equal(got.ratio[:5], 0.0)
    assert not got.authentic[:5].any()


def test_authpct_streams_a_memmap_train(tmp_path):
    train, fake = _train_fake(3, n_copies=10)
    path = tmp_path / "train.npy"
    np.save(path, train)
    got = authenticity(np.load(path, mmap_mode="r"), fake, block_size=64)
    assert got.auth_pct == _naive_authpct(train, fake)[0]


# ----------------------------------------------------------------------------- MiFID


def _naive_mifid(train, fake, fd_value, tau=0.1, eps=1e-14, absolute=True):
    """The Kaggle "Generative Dog Images" scoring written out on full matrices."""
    t = train / np.linalg.norm(train, axis=1, keepdims=True)
    f = fake / np.linalg.norm(fake, axis=1, keepdims=True)
    cos = f @ t.T
    d = 1.0 - (np.abs(cos) if absolute else cos)
    mem = d.min(axis=1).mean()
    d_thr = mem if mem < tau else 1.0
    return fd_value / (d_thr + eps), mem, d.min(axis=1), d.argmin(axis=1)


def _pytorch_fid(train, fake):
    calculate_frechet_distance = pytest.importorskip("pytorch_fid.fid_score").calculate_frechet_distance
    mu1, s1 = train.mean(0), np.cov(train, rowvar=False)
    mu2, s2 = fake.mean(0), np.cov(fake, rowvar=False)
    return float(calculate_frechet_distance(mu1, s1, mu2, s2))


def _nonneg_features(seed, n_copies):
    # Inception-pool3-like: non-negative; copies make the mean cosine distance small
    rng = np.random.default_rng(seed)
    train = np.abs(rng.normal(size=(500, 32))).astype(np.float64)
    fake = np.abs(rng.normal(size=(400, 32)) * 1.1)
    if n_copies:
        fake[:n_copies] = train[rng.integers(0, 500, n_copies)] * rng.uniform(0.9, 1.1, (n_copies, 1))
    return train, fake


@pytest.mark.parametrize("n_copies", [0, 390])
def test_mifid_matches_kaggle_formula(n_copies):
    train, fake = _nonneg_features(4, n_copies)
    got = mifid(train, fake, block_size=128)
    assert got.fd == pytest.approx(fd(train, fake), rel=1e-10)
    want, mem, per_fake, nearest = _naive_mifid(train, fake, got.fd)
    assert got.memorization_distance == pytest.approx(mem, rel=1e-10)
    assert got.mifid == pytest.approx(want, rel=1e-10)
    np.testing.assert_allclose(got.fake_distance, per_fake, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(got.nearest_train, nearest)
    if n_copies:
        assert got.memorization_distance < 0.1 and got.thresholded_distance == got.memorization_distance
        assert got.mifid > 10 * got.fd
    else:
        assert got.memorization_distance > 0.1 and got.thresholded_distance == 1.0
        assert got.mifid == pytest.approx(got.fd / (1 + 1e-14), rel=1e-12)


@pytest.mark.peers
@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")  # pytorch_fid + SciPy
@pytest.mark.parametrize("n_copies", [0, 390])
def test_mifid_matches_pytorch_fid_and_torchmetrics(n_copies):
    _mifid_compute = pytest.importorskip("torchmetrics.image.mifid")._mifid_compute
    train, fake = _nonneg_features(4, n_copies)
    got = mifid(train, fake, block_size=128)
    assert got.fd == pytest.approx(_pytorch_fid(train, fake), rel=1e-6)

    # torchmetrics' formula, called with the Kaggle orientation (features1 = generated):
    # its metric class passes the real features first, i.e. averages over *real* samples
    # (a disagreement with the Kaggle code, documented in workbench.metrics.mifid).
    tf, tt = torch.from_numpy(fake), torch.from_numpy(train)
    tm_value = _mifid_compute(tf.mean(0), torch.cov(tf.T), tf, tt.mean(0), torch.cov(tt.T), tt, cosine_distance_eps=0.1)
    assert got.mifid == pytest.approx(float(tm_value), rel=1e-5)


def test_mifid_signed_cosine_and_given_fd():
    rng = np.random.default_rng(5)
    train, fake = rng.normal(size=(300, 16)), rng.normal(size=(200, 16))
    fake[:190] = -train[:190]  # anti-parallel: a copy for |cos| (Kaggle), far for 1 - cos
    absolute = mifid(train, fake, fd_value=12.5)
    signed = mifid(train, fake, fd_value=12.5, absolute_cosine=False)
    want_abs = _naive_mifid(train, fake, 12.5)
    want_signed = _naive_mifid(train, fake, 12.5, absolute=False)
    assert absolute.mifid == pytest.approx(want_abs[0], rel=1e-9)
    assert signed.mifid == pytest.approx(want_signed[0], rel=1e-9)
    assert absolute.memorization_distance < 0.1 < signed.memorization_distance
    assert absolute.fd == signed.fd == 12.5


def test_mifid_tau_and_eps_are_applied():
    train, fake = _nonneg_features(6, 390)
    got = mifid(train, fake, fd_value=3.0, tau=1e-6, eps=1e-3)
    assert got.thresholded_distance == 1.0 and got.mifid == pytest.approx(3.0 / (1 + 1e-3))


def test_mifid_leaves_out_all_zero_rows_with_a_warning():
    train, fake = _nonneg_features(7, 0)
    fake[3] = 0
    train[10] = 0
    with pytest.warns(UserWarning, match="all-zero rows"):
        got = mifid(train, fake, fd_value=1.0)
    keep_f, keep_t = np.ones(400, bool), np.ones(500, bool)
    keep_f[3], keep_t[10] = False, False
    _, mem, _, _ = _naive_mifid(train[keep_t], fake[keep_f], 1.0)
    assert got.memorization_distance == pytest.approx(mem, rel=1e-10)
    assert np.isnan(got.fake_distance[3]) and got.nearest_train[3] == -1
    assert not np.any(got.nearest_train == 10)


def test_bad_inputs_raise_clear_errors():
    train, fake = _nonneg_features(8, 0)
    with pytest.raises(ValueError, match="tau"):
        mifid(train, fake, fd_value=1.0, tau=0.0)
    with pytest.raises(ValueError, match="eps"):
        mifid(train, fake, fd_value=1.0, eps=-1.0)
    with pytest.raises(ValueError, match="fd_value"):
        mifid(train, fake, fd_value=float("nan"))
    with pytest.raises(ValueError, match="different feature dimensions"):
        authenticity(train, fake[:, :5])
    with pytest.raises(ValueError, match="train needs at least 2 samples"):
        authenticity(train[:1], fake)
    with pytest.raises(ValueError, match="only all-zero rows"):
        mifid(train, np.zeros_like(fake), fd_value=1.0)
