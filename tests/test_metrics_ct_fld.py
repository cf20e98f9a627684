"""C_T data-copying test and Feature Likelihood Divergence against references written here."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import mannwhitneyu, multivariate_normal
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from workbench.metrics.ct_score import ct_score, mann_whitney_z
from workbench.metrics.fld import fit_log_sigmas, fld, mog_nlls
from workbench.metrics.validation import SampleSizeWarning

CENTRES = np.array([[0.0, 0, 0, 0], [12.0, 0, 0, 0], [0.0, 12.0, 0, 0]])


def _clustered(sizes, seed, scale=1.0, dim=4):
    rng = np.random.default_rng(seed)
    centres = np.zeros((3, dim))
    centres[:, :4] = CENTRES
    return np.concatenate([centres[i] + scale * rng.standard_normal((s, dim)) for i, s in enumerate(sizes)])


# ----------------------------------------------------------------------------------------------- C_T


def _reference_ct(train, test, fake, n_cells=3, pca_dim=None):
    """dgm-eval's compute_CTscore written out with sklearn/scipy (PCA, KMeans, 1-NN, mannwhitneyu)."""
    if pca_dim is not None and train.shape[1] > pca_dim:
        pca = PCA(n_components=pca_dim, svd_solver="full").fit(train)
        train, test, fake = pca.transform(train), pca.transform(test), pca.transform(fake)
    km = KMeans(n_clusters=n_cells, n_init=10, random_state=0).fit(train)
    t_c, p_c, q_c = km.predict(train), km.predict(test), km.predict(fake)
    m, n = len(fake), len(test)
    tau = 20 / m
    z = np.zeros(n_cells)
    for i in range(n_cells):
        nn = NearestNeighbors(n_neighbors=1).fit(train[t_c == i])
        if (q_c == i).sum() == 0:
            continue
        lq = nn.kneighbors(fake[q_c == i])[0][:, 0]
        lp = nn.kneighbors(test[p_c == i])[0][:, 0]
        u = mannwhitneyu(lq, lp, alternative="less").statistic
        mi, ni = len(lq), len(lp)
        z[i] = (u - (ni * mi / 2 - 0.5)) / np.sqrt(ni * mi * (ni + mi + 1) / 12)
    q_frac = np.bincount(q_c, minlength=n_cells) / m
    p_frac = np.bincount(p_c, minlength=n_cells) / n
    keep = q_frac > tau
    c_t = p_frac[keep] @ z[keep] / p_frac[keep].sum()
    return c_t, z, np.bincount(t_c, minlength=n_cells), keep


def _by_train_count(result, ref_counts):
    """Index permutation mapping the reference's cells onto ours (train counts are all different)."""
    return [int(np.flatnonzero(result.train_count == c)[0]) for c in ref_counts]


@pytest.mark.parametrize("pca_dim,dim", [(None, 4), (3, 10)])
def test_ct_matches_reference(pca_dim, dim):
    train = _clustered((300, 200, 120), seed=0, dim=dim)
    test = _clustered((90, 60, 40), seed=1, dim=dim)
    # the third cell has 15 fake samples (< 20): excluded from C_T, as tau = 20 / M requires
    fake = _clustered((100, 60, 15), seed=2, scale=0.9, dim=dim)
    res = ct_score(train, test, fake, pca_dim=pca_dim)
    c_t, z, counts, keep = _reference_ct(train, test, fake, pca_dim=pca_dim)
    order = _by_train_count(res, counts)
    # same partition, same distances (exact for the neighbour), same U: agreement to rounding
    np.testing.assert_allclose(res.z[order], z, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(res.included[order], keep)
    assert not keep.all()
    assert res.c_t == pytest.approx(c_t, rel=1e-10)


def test_mann_whitney_z_matches_scipy_with_ties():
    rng = np.random.default_rng(3)
    fake = rng.integers(0, 6, 40).astype(float)  # many ties
    test = rng.integers(0, 8, 55).astype(float)
    u = mannwhitneyu(fake, test, alternative="less").statistic
    expected = (u - (40 * 55 / 2 - 0.5)) / math.sqrt(40 * 55 * (40 + 55 + 1) / 12)
    assert mann_whitney_z(fake, test) == pytest.approx(expected, rel=1e-12)


@pytest.mark.slow
def test_ct_detects_copies_and_accepts_fresh_samples():
    train = _clustered((300, 250, 200), seed=10)
    test = _clustered((150, 120, 100), seed=11)
    copies = train[np.random.default_rng(0).choice(len(train), 300, replace=False)]
    fresh = _clustered((120, 100, 80), seed=12)
    blurry = _clustered((120, 100, 80), seed=13, scale=1.6)  # spread out: farther from train than test
    copied = ct_score(train, test, copies)
    assert copied.c_t < -8  # every copy is at distance 0: U = 0 in each cell
    assert np.all(copied.z < -5)
    assert abs(ct_score(train, test, fresh).c_t) < 2.5  # ~N(0, 1) under the null
    assert ct_score(train, test, blurry).c_t > 3


def test_ct_variants_are_role_changes():
    train = _clustered((200, 150, 100), seed=20)
    test = _clustered((101, 80, 60), seed=21)
    test = test[np.random.default_rng(0).permutation(len(test))]  # both halves must cover every cell
    fake = _clustered((120, 90, 70), seed=22)
    modified = ct_score(train, test, fake, variant="modified")
    assert modified.c_t == ct_score(fake, test, train).c_t
    half = (len(test) + 1) // 2
    mode = ct_score(np.zeros((1, 4)), test, fake, variant="mode")
    assert mode.c_t == ct_score(test[:half], test[half:], fake).c_t
    # memorising fakes (copies) make the modified statistic strongly negative too
    assert ct_score(train, test, train[::2], variant="modified").c_t < -5


def test_ct_cell_without_fakes_and_errors():
    train = _clustered((200, 150, 100), seed=30)
    test = _clustered((80, 60, 40), seed=31)
    fake = _clustered((100, 80, 0), seed=32)
    res = ct_score(train, test, fake)
    assert np.isnan(res.z).sum() == 1 and res.included.sum() == 2 and np.isfinite(res.c_t)
    with pytest.raises(ValueError, match="no test"):
        ct_score(train, _clustered((80, 60, 0), seed=33), fake)
    with pytest.raises(ValueError, match="variant"):
        ct_score(train, test, fake, variant="other")
    with pytest.raises(ValueError, match="different feature dimensions"):
        ct_score(train, test[:, :3], fake)
    with pytest.warns(SampleSizeWarning, match="undefined"):
        assert np.isnan(ct_score(train, test, _clustered((15, 15, 10), seed=34)).c_t)


# ----------------------------------------------------------------------------------------------- FLD


def _reference_fit(x, mus, perm):
    """marcojira/fld MoG.fit written with autograd and torch.optim.Adam (float32, as the reference)."""
    x = x[torch.as_tensor(perm)]
    dim, m = x.shape[1], mus.shape[0]
    mean_x = x.mean(0, keepdim=True)
    dists = (torch.cdist(x.double(), mus.double()) ** 2).float()
    log_sigmas = torch.log((dists.min(0).values + 1e-3) / dim).clone().requires_grad_(True)
    origin = torch.tensor(0.0, requires_grad=True)
    optim = torch.optim.Adam([log_sigmas, origin], lr=0.5)

    def lls(d, s):
        return -0.5 * d / torch.exp(s) - dim / 2 * s - dim / 2 * np.log(2 * np.pi)

    losses = []
    for epoch in range(50):
        epoch_losses = []
        for i, batch in enumerate(x.split(10_000)):
            optim.zero_grad()
            pairwise = lls(dists[i * 10_000 : (i + 1) * 10_000], log_sigmas) - np.log(m)
            origin_lls = lls(0.81 * (torch.cdist(batch.double(), mean_x.double()) ** 2).float(), origin)
            loss = -torch.logsumexp(torch.cat([pairwise, origin_lls], 1), 1).mean() / dim
            loss.backward()
            optim.step()
            with torch.no_grad():
                log_sigmas.data = log_sigmas.clamp(-40, 40).data
            epoch_losses.append(loss.item())
        losses.append(sum(epoch_losses) / len(epoch_losses))
        if epoch > 5 and max(abs(losses[-1] - losses[-j]) for j in range(1, 6)) < 5e-4:
            break
    return log_sigmas.detach(), losses


def _reference_nll(x, mus, log_sigmas):
    """Mean of -log(1/M sum_j N(x | mu_j, exp(log_sigma_j) I)) / D with scipy densities (float64)."""
    x, mus, var = (np.asarray(t, dtype=np.float64) for t in (x, mus, torch.exp(log_sigmas.double())))
    comp = np.stack([multivariate_normal(mean=mu, cov=v).logpdf(x) for mu, v in zip(mus, var)], axis=1)
    return float(np.mean(-(logsumexp(comp, axis=1) - np.log(len(mus))) / x.shape[1]))


def test_mog_nlls_match_scipy_densities():
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((50, 5)), dtype=torch.float32)
    mus = torch.tensor(rng.standard_normal((12, 5)), dtype=torch.float32)
    log_sigmas = torch.tensor(rng.uniform(-1.5, 1.0, 12), dtype=torch.float32)
    # float32 computation vs float64 scipy: 1e-5 relative
    assert float(mog_nlls(x, mus, log_sigmas).double().mean()) == pytest.approx(
        _reference_nll(x, mus, log_sigmas), rel=1e-5
    )


@pytest.mark.parametrize("n", [700, 12_500])  # one batch; two batches of 10,000 (Adam steps per epoch)
def test_fit_log_sigmas_matches_autograd_reference(n):
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.standard_normal((n, 6)), dtype=torch.float32)
    mus = torch.tensor(rng.standard_normal((80, 6)), dtype=torch.float32)
    ours, our_losses = fit_log_sigmas(x, mus, np.random.default_rng(5))
    ref, ref_losses = _reference_fit(x, mus, np.random.default_rng(5).permutation(n))
    assert len(our_losses) == len(ref_losses)  # same early-stopping epoch
    # analytic float32 gradients vs autograd float32: log-variances agree to 1e-4
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-4)
    np.testing.assert_allclose(our_losses, ref_losses, rtol=1e-5)


def _reference_fld(train, test, fake, seed):
    """marcojira/fld FLD(eval_feat="test") with the same seeded shuffles as workbench.metrics.fld."""
    rng = np.random.default_rng(seed)
    mean, std = test.mean(0), test.std(0, ddof=1)
    tr, te, fk = (torch.tensor((a - mean) / std, dtype=torch.float32) for a in (train, test, fake))
    sig, _ = _reference_fit(tr, fk, rng.permutation(len(tr)))
    nll = _reference_nll(te, fk, sig)
    shuffled = tr[torch.as_tensor(rng.permutation(len(tr)))]
    split = min(len(fk), len(tr) // 2)
    base_sig, _ = _reference_fit(shuffled[split:], shuffled[:split], rng.permutation(len(tr) - split))
    base = _reference_nll(te, shuffled[:split], base_sig)
    return 100 * (nll - base), nll, base


@pytest.mark.slow
def test_fld_matches_reference_procedure():
    rng = np.random.default_rng(2)
    train = rng.standard_normal((400, 5)) * [1, 2, 1, 0.5, 1]
    test = rng.standard_normal((120, 5)) * [1, 2, 1, 0.5, 1]
    fake = rng.standard_normal((90, 5)) * 1.2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SampleSizeWarning)
        ours = fld(train, test, fake, seed=3)
    value, nll, base = _reference_fld(train, test, fake, seed=3)
    assert ours.nll == pytest.approx(nll, rel=1e-4)
    assert ours.baseline_nll == pytest.approx(base, rel=1e-4)
    assert ours.fld == pytest.approx(value, abs=0.02)  # 100 x a difference of NLLs known to ~1e-4


@pytest.mark.slow
def test_fld_orders_copies_worse_than_fresh_samples():
    rng = np.random.default_rng(4)
    train, test = rng.standard_normal((1200, 8)), rng.standard_normal((300, 8))
    fresh = rng.standard_normal((300, 8))
    near_copies = train[:300] + 0.2 * rng.standard_normal((300, 8))
    one_sided = rng.standard_normal((300, 8))
    one_sided[:, :2] = np.abs(one_sided[:, :2])  # drops 3/4 of the distribution (mode dropping)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f_fresh = fld(train, test, fresh).fld
        f_copy = fld(train, test, near_copies).fld
        f_half = fld(train, test, one_sided).fld
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SampleSizeWarning)
        with pytest.warns(UserWarning, match="memorised"):
            exact = fld(train, test, train[:300]).fld
    assert abs(f_fresh) < 10  # a fresh sample of the same size is close to the baseline
    assert f_copy > f_fresh + 20
    assert f_half > f_fresh + 4  # measured: -1.9 vs 7.0 (adaptive bandwidths soften mode dropping)
    assert exact > f_copy


@pytest.mark.slow
def test_fld_seed_and_inputs():
    rng = np.random.default_rng(5)
    train, test = rng.standard_normal((300, 4)), rng.standard_normal((80, 4))
    fake = rng.standard_normal((70, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SampleSizeWarning)
        a = fld(train, test, fake, seed=1)
        assert fld(train, test, fake, seed=1) == a
        given = fld(train, test, fake, seed=1, baseline_nll=a.baseline_nll)
        assert given.fld == pytest.approx(a.fld, abs=1e-9)
        sub = fld(train, test, np.vstack([fake, fake]), gen_size=70)  # subsampled to 70 Gaussians
        assert np.isfinite(sub.fld)
    with pytest.warns(SampleSizeWarning, match="generated samples"):
        fld(train, test, fake)
    with pytest.raises(ValueError, match="different feature dimensions"):
        fld(train, test[:, :3], fake)
    with pytest.raises(ValueError, match="gen_size"):
        fld(train, test, fake, gen_size=0)
