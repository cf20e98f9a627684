"""Top-N class histogram matching (Kynkäänniemi et al., ICLR 2023) on real Fashion-MNIST images.

Setup (module fixture): a linear discriminant classifier is fitted on the pixel features (8x8 box
downsample, D = 192) of 2,000 test images; a cache extractor combines those pixels (features) with
the classifier's logits. "Real" = 2,000 other test images; "generated" = 3,000 images drawn from the
remaining 6,000 with a skewed class distribution and degraded by Gaussian pixel noise (sigma = 60
grey levels): a quality defect that has nothing to do with classes. References are independent:
np.argsort / np.bincount histograms, scipy.linalg.sqrtm FD, explicit row copies.
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import scipy.linalg

import workbench.analysis.topn_matching as topn_module
from workbench.analysis.topn_matching import (
    bootstrap_topn_matching,
    count_weighted_statistics,
    match_topn_histogram,
    resample_to_histogram,
    topn_matching_weights,
)
from workbench.cache import extract
from workbench.images.arrays import ArraySource
from workbench.images.datasets import FASHION_MNIST_CLASSES
from workbench.metrics.frechet import fd, fd_from_stats
from workbench.metrics.validation import SampleSizeWarning

from linear_head import lda_head

pytestmark = pytest.mark.filterwarnings("ignore::workbench.metrics.validation.SampleSizeWarning")

SKEW = np.array([8, 1, 1, 4, 1, 6, 1, 1, 1, 1.0])


@pytest.fixture(scope="module")
def data(fmnist_test, tmp_path_factory):
    images, labels = fmnist_test
    rng = np.random.default_rng(0)
    out = tmp_path_factory.mktemp("topn")
    opts = dict(out=out, progress=False, thumbnails=0, num_workers=0)
    train = extract(
        ArraySource(images[:2000], labels[:2000], name="train"), "pixels", extractor_options={"size": 8}, **opts
    )
    head = lda_head(train.features, labels[:2000])
    pool = np.arange(4000, 10000)
    p = SKEW[labels[pool]] / SKEW[labels[pool]].sum()
    fake_idx = rng.choice(pool, 3000, replace=False, p=p)
    noisy = np.clip(images[fake_idx] + rng.normal(0, 60, (3000, 28, 28)), 0, 255).astype(np.uint8)
    real = extract(ArraySource(images[2000:4000], labels[2000:4000], FASHION_MNIST_CLASSES, name="real"), head, **opts)
    fake = extract(ArraySource(noisy, labels[fake_idx], FASHION_MNIST_CLASSES, name="fake"), head, **opts)
    return real, fake


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ref_top(logits: np.ndarray, n: int) -> np.ndarray:
    return np.argsort(-np.asarray(logits), axis=1, kind="stable")[:, :n]


def ref_hist(top: np.ndarray, w: np.ndarray | None = None, k: int = 10) -> np.ndarray:
    w = np.ones(len(top)) if w is None else w
    votes = np.bincount(top.ravel(), weights=np.repeat(w, top.shape[1]), minlength=k)
    return votes / votes.sum()


def test_top1_matching_reproduces_the_real_histogram_and_closed_form_weights(data) -> None:
    real, fake = data
    res = match_topn_histogram(real, fake)  # caches: features default to their own pixels
    r1, f1 = np.asarray(real.logits).argmax(1), np.asarray(fake.logits).argmax(1)
    p_real, p_fake = np.bincount(r1, minlength=10) / len(r1), np.bincount(f1, minlength=10) / len(f1)
    assert (p_fake > 0).all() and (p_real > 0).all()
    # closed form w_i = p_real(c_i) / p_fake(c_i); its mean is exactly 1
    np.testing.assert_allclose(res.weights, p_real[f1] / p_fake[f1], rtol=1e-12)
    # stratified draw of size = len(real): the matched Top-1 counts equal the real counts exactly
    assert res.indices.shape == (len(real),)
    np.testing.assert_array_equal(np.bincount(f1[res.indices], minlength=10), np.bincount(r1, minlength=10))
    div = res.to_frame("divergence").set_index("set")
    assert div.loc["generated (original)", "tv"] > 0.15  # the skew is real
    assert div.loc["matched resample", "tv"] == pytest.approx(0.0, abs=1e-12)
    assert res.to_frame()["extractor"].tolist() == ["pixels-lda"]
    names = res.to_frame("classes")["class_name"].tolist()
    assert set(names) == set(FASHION_MNIST_CLASSES)


def test_multinomial_top1_draw_is_within_sampling_noise(data) -> None:
    real, fake = data
    size = 20000
    idx = resample_to_histogram(real, fake, size=size, sampling="multinomial", seed=3)
    f1, r1 = np.asarray(fake.logits).argmax(1), np.asarray(real.logits).argmax(1)
    got = np.bincount(f1[idx], minlength=10) / size
    want = np.bincount(r1, minlength=10) / len(r1)
    # i.i.d. draws: each share is within 4 binomial standard deviations
    assert np.all(np.abs(got - want) <= 4 * np.sqrt(want * (1 - want) / size))


def test_fd_moves_on_class_features_much_more_than_on_quality_dominated_features(data) -> None:
    real, fake = data
    rl, fl = np.asarray(real.logits), np.asarray(fake.logits)
    rp, fp = softmax(rl), softmax(fl)
    res = match_topn_histogram(rl, fl, features={"probs": (rp, fp), "pixels": (real, fake)}, seed=0)
    table = res.to_frame().set_index("extractor")
    # FD of the resampled sets agrees with FD of explicit row copies (independent path)
    assert table.loc["probs", "fd_matched"] == pytest.approx(fd(rp, fp[res.indices]), rel=1e-8)
    assert table.loc["probs", "fd_uniform"] == pytest.approx(fd(rp, fp[res.uniform_indices]), rel=1e-8)
    assert table.loc["pixels", "fd_original"] == pytest.approx(fd(real.features, fake.features), rel=1e-8)
    # measured: probs -98.1 %, pixels -7.5 % (the noise dominates pixel FD); asserted with margins
    assert table.loc["probs", "relative_change"] < -0.9
    assert abs(table.loc["pixels", "relative_change"]) < 0.2
    assert table.loc["probs", "change"] == pytest.approx(
        table.loc["probs", "fd_matched"] - table.loc["probs", "fd_uniform"], rel=1e-12
    )


@pytest.mark.parametrize("n", [2, 3])
def test_topn_iterative_scaling_matches_the_weighted_histogram(data, n) -> None:
    real, fake = data
    rl, fl = np.asarray(real.logits), np.asarray(fake.logits)
    res = match_topn_histogram(rl, fl, n=n, tol=1e-7)
    m = res.matching
    assert m.converged and m.n_zero == 0 and m.unmatchable_share == 0
    rt, ft = ref_top(rl, n), ref_top(fl, n)
    before = 0.5 * np.abs(ref_hist(ft) - ref_hist(rt)).sum()
    after = 0.5 * np.abs(ref_hist(ft, res.weights) - ref_hist(rt)).sum()
    assert before > 0.05 and after <= 1e-7
    assert res.weights.mean() == pytest.approx(1.0, rel=1e-12)
    # maximum-entropy form: samples with the same set of Top-N classes get the same weight
    keys = [tuple(sorted(row)) for row in ft]
    groups: dict[tuple, list[float]] = {}
    for key, w in zip(keys, res.weights):
        groups.setdefault(key, []).append(w)
    assert all(np.ptp(v) <= 1e-12 * max(v) for v in groups.values())
    # the multinomial draw's Top-N histogram is close (sampling noise, 2,000 draws)
    drawn = 0.5 * np.abs(ref_hist(ft[res.indices]) - ref_hist(rt)).sum()
    assert drawn < before / 2


def test_fd_objective_minimises_fd_of_binarised_topn_vectors(data) -> None:
    real, fake = data
    rl, fl = np.asarray(real.logits), np.asarray(fake.logits)
    n = 2
    m = topn_matching_weights(ref_top(rl, n), ref_top(fl, n), 10, objective="fd", steps=200, lr=0.05)

    def binarise(top):
        b = np.zeros((len(top), 10))
        np.put_along_axis(b, top, 1.0, axis=1)
        return b

    br, bf = binarise(ref_top(rl, n)), binarise(ref_top(fl, n))

    def ref_fd(w):  # population covariances, as the optimised loss; scipy sqrtm, independent of ours
        mu1, mu2 = br.mean(0), np.average(bf, axis=0, weights=w)
        s1, s2 = np.cov(br, rowvar=False, bias=True), np.cov(bf, rowvar=False, aweights=w, bias=True)
        covmean = scipy.linalg.sqrtm(s1 @ s2).real
        return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))

    start = ref_fd(np.ones(len(fl)))
    assert m.loss == pytest.approx(ref_fd(m.weights), abs=1e-6)
    assert m.loss < 0.01 * start  # measured: start 0.052, end 2.8e-5
    tv_start = 0.5 * np.abs(ref_hist(ref_top(fl, n)) - ref_hist(ref_top(rl, n))).sum()
    assert m.residual_tv < 0.1 * tv_start


def test_zero_weights_and_unmatchable_classes(data) -> None:
    real, fake = data
    rl, fl = np.asarray(real.logits), np.asarray(fake.logits)
    r1, f1 = rl.argmax(1), fl.argmax(1)
    rl_no9 = rl[r1 != 9]  # no real "Ankle boot": generated ankle boots must get weight 0
    fl_no8 = fl[f1 != 8]  # no generated "Bag": the real bags cannot be matched
    res = match_topn_histogram(rl_no9, fl_no8, size=5000)
    f1k = f1[f1 != 8]
    r1k = r1[r1 != 9]
    assert res.matching.n_zero == int((f1k == 9).sum()) > 0
    assert np.all(res.weights[f1k == 9] == 0)
    assert res.matching.unmatchable_share == pytest.approx(np.mean(r1k == 8), rel=1e-12)
    want = np.bincount(r1k, minlength=10).astype(float)
    want[8] = 0
    want /= want.sum()
    assert res.indices.shape == (5000,)
    got = np.bincount(f1k[res.indices], minlength=10) / 5000
    assert np.abs(got - want).max() <= 1 / 5000  # largest-remainder rounding
    assert "unmatchable" in res.summary


def test_seeds_make_draws_deterministic(data) -> None:
    real, fake = data
    a = match_topn_histogram(real.logits, fake.logits, n=2, seed=7)
    b = match_topn_histogram(real.logits, fake.logits, n=2, seed=7)
    c = match_topn_histogram(real.logits, fake.logits, n=2, seed=8)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.weights, c.weights)
    assert not np.array_equal(a.indices, c.indices)
    idx = resample_to_histogram(real.logits, fake.logits, n=2, seed=7)
    np.testing.assert_array_equal(idx, a.indices)


def test_without_replacement_gives_unique_indices(data) -> None:
    real, fake = data
    idx = resample_to_histogram(real, fake, size=1000, replace=False, seed=0)
    assert len(np.unique(idx)) == 1000
    with pytest.raises(ValueError, match="replace=True or a smaller size"):
        resample_to_histogram(real, fake, size=2900, replace=False)


def test_prefix_draw_takes_each_class_first_samples_and_pairs_with_the_pool_prefix(data) -> None:
    real, fake = data
    f1, r1 = np.asarray(fake.logits).argmax(1), np.asarray(real.logits).argmax(1)
    size = 1000
    res = match_topn_histogram(real, fake, size=size, sampling="prefix", seed=0)
    # same counts as the stratified draw: size * p_real(c), largest remainders (total = size)
    want = np.bincount(r1, minlength=10) * size / len(r1)
    got = np.bincount(f1[res.indices], minlength=10)
    assert got.sum() == size and np.all(np.abs(got - want) < 1)
    # ... and they are each class's first generated samples, sorted, without repeats
    expected = np.sort(np.concatenate([np.flatnonzero(f1 == c)[: got[c]] for c in range(10)]))
    np.testing.assert_array_equal(res.indices, expected)
    # the uniform control is the pool's first `size` samples, so both sets share the unswapped ones
    np.testing.assert_array_equal(res.uniform_indices, np.arange(size))
    shared = np.intersect1d(res.indices, np.arange(size)).size
    assert shared == sum(min(got[c], int((f1[:size] == c).sum())) for c in range(10))
    # a class the pool has too few of: its samples, then repeats of its own (replace=True) or an error
    scarce = int(np.argmin(np.bincount(f1, minlength=10) / np.maximum(np.bincount(r1, minlength=10), 1)))
    big = 2900
    idx = resample_to_histogram(real, fake, size=big, sampling="prefix", seed=0)
    rows = idx[f1[idx] == scarce]
    assert np.bincount(f1[idx], minlength=10).sum() == big
    assert len(rows) > (f1 == scarce).sum()  # the skew makes it short
    assert set(rows) == set(np.flatnonzero(f1 == scarce))
    with pytest.raises(ValueError, match="replace=True or a smaller size"):
        resample_to_histogram(real, fake, size=big, sampling="prefix", replace=False)
    with pytest.raises(ValueError, match="needs Top-1"):
        resample_to_histogram(real, fake, n=2, sampling="prefix")


def test_count_weighted_statistics_equal_statistics_of_the_copy(data) -> None:
    _, fake = data
    x = np.asarray(fake.features)
    counts = np.random.default_rng(1).poisson(0.7, len(x))
    stats = count_weighted_statistics(fake.features, counts, block_rows=257)
    copy = np.repeat(x, counts, axis=0).astype(np.float64)
    np.testing.assert_allclose(stats.mean, copy.mean(0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stats.cov, np.cov(copy, rowvar=False), rtol=1e-8, atol=1e-12)


def test_count_weighted_statistics_take_frequency_weights(data) -> None:
    # non-integer counts: numpy's reliability-weighted covariance with ddof=0 is scatter / C,
    # so scatter / (C - 1) is it times C / (C - 1) (rtol 1e-9: float64 rounding of two routes)
    _, fake = data
    x = np.asarray(fake.features, dtype=np.float64)
    w = np.random.default_rng(2).gamma(2.0, 0.5, len(x))
    stats = count_weighted_statistics(fake.features, w, block_rows=333)
    total = w.sum()
    np.testing.assert_allclose(stats.mean, np.average(x, axis=0, weights=w), rtol=1e-10, atol=1e-12)
    expected = np.cov(x, rowvar=False, aweights=w, ddof=0) * total / (total - 1)
    np.testing.assert_allclose(stats.cov, expected, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="finite non-negative"):
        count_weighted_statistics(fake.features, np.where(np.arange(len(x)) == 3, np.nan, w))
    with pytest.raises(ValueError, match="summing to more than 1"):
        count_weighted_statistics(fake.features, np.full(len(x), 0.5 / len(x)))


@pytest.mark.slow
def test_fd_weighted_is_the_fd_of_the_pool_under_the_weights(data) -> None:
    real, fake = data
    res = match_topn_histogram(real, fake, seed=0)
    row = res.to_frame("fd").iloc[0]
    x = np.asarray(fake.features, dtype=np.float64)
    r = np.asarray(real.features, dtype=np.float64)
    w = res.weights * (len(x) / res.weights.sum())  # frequency weights summing to the pool size
    cov = np.cov(x, rowvar=False, aweights=w, ddof=0) * len(x) / (len(x) - 1)
    expected = fd_from_stats(r.mean(0), np.cov(r, rowvar=False), np.average(x, axis=0, weights=w), cov)
    assert row["fd_weighted"] == pytest.approx(expected, rel=1e-8)
    assert row["weighted_relative_change"] == pytest.approx(row["fd_weighted"] / row["fd_original"] - 1, rel=1e-12)
    assert row["fd_weighted"] != pytest.approx(row["fd_original"], rel=1e-6)  # the weights are not uniform
    # a pool whose histogram already matches gets weights 1: the weighted FD is the original FD
    same = match_topn_histogram(fake, fake, seed=0).to_frame("fd").iloc[0]
    assert np.allclose(match_topn_histogram(fake, fake, seed=0).weights, 1.0)
    assert same["fd_weighted"] == pytest.approx(same["fd_original"], rel=1e-9, abs=1e-9)


def test_bad_inputs_give_clear_errors(data, tmp_path, digits) -> None:
    real, fake = data
    rl, fl = np.asarray(real.logits), np.asarray(fake.logits)
    with pytest.raises(ValueError, match="same classifier"):
        match_topn_histogram(rl, fl[:, :8])
    pixels = extract(digits[0][:50], "pixels", out=tmp_path, name="d", progress=False, thumbnails=0)
    with pytest.raises(ValueError, match="has no logits"):
        match_topn_histogram(pixels, fake)
    with pytest.raises(ValueError, match="aligned row by row"):
        match_topn_histogram(rl, fl, features={"x": (rl, fl[:-1])})
    with pytest.raises(ValueError, match="different dimensions"):
        match_topn_histogram(rl, fl, features={"x": (rl, fl[:, :5])})
    with pytest.raises(ValueError, match="between 1 and the number of classes"):
        match_topn_histogram(rl, fl, n=11)
    with pytest.raises(ValueError, match="needs Top-1"):
        resample_to_histogram(rl, fl, n=2, sampling="stratified")
    with pytest.raises(ValueError, match="objective must be one of"):
        match_topn_histogram(rl, fl, objective="magic")
    with pytest.raises(ValueError, match="needs .* class scores"):
        match_topn_histogram(rl.argmax(1), fl, n=2)
    with pytest.raises(ValueError, match="size must be"):
        resample_to_histogram(rl, fl, size=1)


def test_singular_features_warn(data) -> None:
    real, fake = data
    rl, fl = np.asarray(real.logits)[:60], np.asarray(fake.logits)[:60]
    small = (np.asarray(real.features)[:60, :80], np.asarray(fake.features)[:60, :80])
    with pytest.warns(SampleSizeWarning, match="singular"):
        match_topn_histogram(rl, fl, features={"pixels": small})


def test_docstring_examples_run() -> None:
    assert doctest.testmod(topn_module).failed == 0


def test_bootstrap_point_estimates_are_the_matchings_weighted_fds(data) -> None:
    real, fake = data
    feats = {"pixels": (real, fake)}
    table = bootstrap_topn_matching(real, fake, feats, n=1, n_boot=5, seed=3).set_index("extractor")
    ref = match_topn_histogram(real, fake, features=feats, n=1, seed=0).to_frame("fd").set_index("extractor")
    for col in ("fd_original", "fd_weighted", "weighted_relative_change"):
        assert table.at["pixels", col] == pytest.approx(ref.at["pixels", col], rel=1e-9), col
    again = bootstrap_topn_matching(real, fake, feats, n=1, n_boot=5, seed=3)
    other = bootstrap_topn_matching(real, fake, feats, n=1, n_boot=5, seed=4)
    assert again.equals(table.reset_index()) and not other.equals(table.reset_index())
    row = table.loc["pixels"]
    assert row["fd_original_low"] <= row["fd_original_high"] and row["change_low"] <= row["change_high"]
    assert row["change_std"] > 0 and row["n_boot"] == 5


def test_bootstrap_replicates_recomputed_with_row_copies(data) -> None:
    """Two replicates by hand: the same seeded row draws, closed-form Top-1 weights of the resampled
    sets, explicit copies of the rows (np.repeat), np.cov with frequency weights and scipy's sqrtm."""
    real, fake = data
    rf, ff = np.asarray(real.features, np.float64), np.asarray(fake.features, np.float64)
    r1, f1 = np.asarray(real.logits).argmax(1), np.asarray(fake.logits).argmax(1)
    table = bootstrap_topn_matching(real, fake, {"pixels": (real, fake)}, n=1, n_boot=2, ci=0.5, seed=7)

    def sqrtm_fd(a_mean, a_cov, b_mean, b_cov) -> float:
        return float(
            ((a_mean - b_mean) ** 2).sum() + np.trace(a_cov + b_cov - 2 * scipy.linalg.sqrtm(a_cov @ b_cov).real)
        )

    rng = np.random.default_rng(7)
    changes = []
    for _ in range(2):
        ri = rng.integers(0, len(rf), len(rf))
        fi = rng.integers(0, len(ff), len(ff))
        p_real = np.bincount(r1[ri], minlength=10) / len(ri)
        p_fake = np.bincount(f1[fi], minlength=10) / len(fi)
        w = p_real[f1[fi]] / p_fake[f1[fi]]
        w *= len(w) / w.sum()
        real_rows, fake_rows = rf[ri], ff[fi]  # explicit copies
        r_mean, r_cov = real_rows.mean(0), np.cov(real_rows, rowvar=False)
        fd_u = sqrtm_fd(r_mean, r_cov, fake_rows.mean(0), np.cov(fake_rows, rowvar=False))
        w_cov = np.cov(fake_rows, rowvar=False, aweights=w, ddof=0) * w.sum() / (w.sum() - 1)
        fd_w = sqrtm_fd(r_mean, r_cov, np.average(fake_rows, axis=0, weights=w), w_cov)
        changes.append(fd_w / fd_u - 1)
    low, high = np.quantile(changes, [0.25, 0.75])
    assert table.at[0, "change_low"] == pytest.approx(low, rel=1e-5)
    assert table.at[0, "change_high"] == pytest.approx(high, rel=1e-5)


def test_bootstrap_rejects_bad_arguments(data) -> None:
    real, fake = data
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_topn_matching(real, fake, {"p": (real, fake)}, n_boot=1)
    with pytest.raises(ValueError, match="ci"):
        bootstrap_topn_matching(real, fake, {"p": (real, fake)}, ci=1.5)
    with pytest.raises(ValueError, match="features is empty"):
        bootstrap_topn_matching(real, fake, {})
    with pytest.raises(ValueError, match="real rows"):
        bootstrap_topn_matching(real, fake, {"p": (np.zeros((5, 3)), np.zeros((len(fake), 3)))})
