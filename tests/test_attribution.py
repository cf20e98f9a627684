"""Per-sample attribution on features of real Fashion-MNIST images.

Features: PCA of the 28x28 pixels (fit on held-out images) and, for the cache path, the
``pixels`` extractor. References: brute-force recomputation of :func:`workbench.metrics.frechet.fd`
without each sample, central finite differences of ``fd`` for the gradients, and the metric
functions' own per-sample outputs (``prdc``, ``precision_recall``, ``realism_score``).
"""

from __future__ import annotations

import doctest
import warnings

import numpy as np
import pytest
import scipy.ndimage
import scipy.stats
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

import workbench.analysis.attribution as module
from workbench.analysis.attribution import (
    AttributionResult,
    fd_contributions,
    fd_sample_gradients,
    metric_contributions,
)
from workbench.analysis.result import AnalysisResult
from workbench.cache import extract
from workbench.images.arrays import ArraySource
from workbench.metrics.frechet import fd
from workbench.metrics.prdc import prdc
from workbench.metrics.precision_recall import precision_recall, realism_score
from workbench.metrics.validation import SampleSizeWarning


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    # Small matrices: multi-threaded LAPACK only adds overhead on the shared 2-core machine.
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def feats(fmnist_test):
    """PCA-16 features of real images, and of 'generated' images: 540 clean ones and 60 shifted
    6 pixels to the right (a misaligned model). Additive pixel noise (sigma 60) was tried too:
    PCA-16 of pixels hardly sees it (FD 20.5k with it, 20.7k without), so it makes no test."""
    images, _ = fmnist_test
    pixels = images.reshape(len(images), -1).astype(np.float64)
    pca = PCA(16, random_state=0).fit(pixels[8000:10000])
    real = pca.transform(pixels[:1000])
    clean = pixels[1000:1540]
    shifted = np.roll(images[1540:1600], 6, axis=2).reshape(60, -1).astype(np.float64)
    return {
        "real": real,
        "fake": pca.transform(np.concatenate([clean, shifted])),  # rows 540..599 are shifted
        "images": images,
    }


def _brute_force(real: np.ndarray, fake: np.ndarray) -> np.ndarray:
    full = fd(real, fake)
    return np.array([full - fd(real, np.delete(fake, i, axis=0)) for i in range(len(fake))])


def test_leave_one_out_equals_brute_force(feats) -> None:
    real, fake = feats["real"], feats["fake"][::4]  # 150 fakes, 16 dims
    res = fd_contributions(real, fake, method="leave_one_out")
    want = _brute_force(real, fake)
    full = fd(real, fake)
    assert res.value == pytest.approx(full, rel=1e-10)
    # measured max error 4e-9 on scores up to 1e4 (FD 1.1e5), i.e. 4e-14 of FD: the rounding of
    # the brute force itself (a difference of two FDs)
    np.testing.assert_allclose(res.scores, want, rtol=0, atol=1e-12 * full)
    np.testing.assert_allclose(res.to_frame()["fd_without"], full - want, rtol=1e-11)


def test_leave_one_out_with_singular_covariances(feats) -> None:
    """Fewer fakes than dimensions (every row has leverage 1) and a rank-deficient real set."""
    real, fake = feats["real"], feats["fake"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SampleSizeWarning)
        few = fake[::50]  # 12 fakes in 16 dims
        got = fd_contributions(real, few, method="leave_one_out").scores
        want = _brute_force(real, few)
        # measured: 1.1e-8 of the largest score (sqrt of near-zero eigenvalues limits both sides)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * np.abs(want).max())
        flat = np.concatenate([real[:10], real[:10] @ np.diag([1.0] * 8 + [0.0] * 8)])  # rank <= 10
        got = fd_contributions(flat, fake[:100], method="leave_one_out").scores
        want = _brute_force(flat, fake[:100])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * np.abs(want).max())  # measured 1.6e-13


def test_first_order_tracks_leave_one_out(feats) -> None:
    real, fake = feats["real"], feats["fake"]
    exact = fd_contributions(real, fake, method="leave_one_out").scores
    first = fd_contributions(real, fake, method="gradient").scores
    pearson = np.corrcoef(first, exact)[0, 1]
    spearman = scipy.stats.spearmanr(first, exact).statistic
    # measured on these 600 x 16 features: Pearson 0.9994, Spearman 0.9994
    assert pearson > 0.995 and spearman > 0.995
    # what the first-order estimate misses (higher orders in d_i / n): measured at most 6.8% of
    # the largest score
    assert np.abs(first - exact).max() < 0.15 * np.abs(exact).max()


def test_gradients_equal_finite_differences(feats) -> None:
    real, fake = feats["real"][:300], feats["fake"][:80]
    rows = [0, 7, 79]
    grads = fd_sample_gradients(real, fake, rows=rows)
    assert grads.shape == (3, 16)
    h = 1e-3 * np.abs(fake).mean()
    for r, i in enumerate(rows):
        numeric = np.empty(16)
        for j in range(16):
            up, down = fake.copy(), fake.copy()
            up[i, j] += h
            down[i, j] -= h
            numeric[j] = (fd(real, up) - fd(real, down)) / (2 * h)
        # central differences: O(h^2) truncation plus FD rounding / h; measured 3e-7 relative
        np.testing.assert_allclose(grads[r], numeric, rtol=0, atol=1e-5 * np.abs(numeric).max())
    np.testing.assert_allclose(fd_sample_gradients(real, fake)[rows], grads, rtol=1e-12)


def test_removing_top_samples_lowers_fd_most(feats) -> None:
    real, fake = feats["real"], feats["fake"]
    res = fd_contributions(real, fake)
    top = res.top(60)["index"].to_numpy()
    # the shifted images (rows 540..599, 10% of the set) are over-represented among the top 60:
    # measured 31 of 60 (the other 29 are clean images that happen to pull the fit away)
    assert np.isin(top, np.arange(540, 600)).mean() >= 0.4
    full = fd(real, fake)
    after_top = fd(real, np.delete(fake, top, axis=0))
    rng = np.random.default_rng(0)
    after_random = [fd(real, np.delete(fake, rng.choice(len(fake), 60, replace=False), axis=0)) for _ in range(20)]
    # measured: FD 54.8k -> 15.1k without the top 60; 48.5k to 67.5k without 60 random samples
    assert after_top < 0.5 * full
    assert after_top < min(after_random) - 0.25 * full
    # scores are single-sample effects and do not add exactly: the top-60 scores sum to 1.76 x the
    # drop here (with noise-contaminated fakes that FD barely sees, removing the top 60 even raised
    # FD: joint removal overshoots the mean)
    assert 0.3 < res.top(60)["score"].sum() / (full - after_top) < 3.0


def test_fd_contributions_from_caches(feats, tmp_path) -> None:
    images = feats["images"]
    opts = dict(out=tmp_path, progress=False, thumbnails=0, num_workers=0, extractor_options={"size": 4})
    real = extract(ArraySource(images[:600], name="real"), "pixels", **opts)
    blurred = scipy.ndimage.gaussian_filter(images[600:900].astype(np.float64), sigma=(0, 1.0, 1.0))
    mixed = np.concatenate([images[900:1100], np.clip(blurred, 0, 255).astype(np.uint8)])
    fake = extract(ArraySource(mixed, name="fake"), "pixels", **opts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SampleSizeWarning)  # RGB copies of gray: rank 16 of 48
        res = fd_contributions(real, fake)
        full = fd(np.asarray(real.features), np.asarray(fake.features))
    frame = res.to_frame()
    assert frame.columns.tolist() == ["index", "id", "score", "fd_without"]
    assert frame["id"].tolist() == fake.meta["id"].astype(str).tolist()
    assert res.value == pytest.approx(full, rel=1e-9)
    assert res.top(3)["id"].tolist() == frame.sort_values("score", ascending=False)["id"].head(3).tolist()


def test_knn_contributions_equal_metric_outputs(feats) -> None:
    real, fake = feats["real"], feats["fake"]
    full = prdc(real, fake, k=5)
    ipr = precision_recall(real, fake, k=3)
    precision = metric_contributions(real, fake, "precision")
    assert precision.sample_set == "fake" and precision.value == full.precision
    np.testing.assert_array_equal(precision.scores, full.fake_in_real_manifold.astype(float))
    assert precision.scores.mean() == pytest.approx(full.precision)
    density = metric_contributions(real, fake, "density")
    np.testing.assert_array_equal(density.to_frame()["real_ball_count"], full.fake_real_ball_counts)
    assert density.scores.mean() == pytest.approx(full.density, rel=1e-12)
    prdc_view = metric_contributions(real, fake, "prdc").to_frame()
    np.testing.assert_array_equal(prdc_view["in_real_manifold"], full.fake_in_real_manifold)
    recall = metric_contributions(real, fake, "recall")
    assert recall.sample_set == "real" and len(recall.scores) == len(real)
    assert recall.scores.mean() == pytest.approx(full.recall)
    coverage = metric_contributions(real, fake, "coverage")
    np.testing.assert_array_equal(coverage.scores, full.real_covered.astype(float))
    np.testing.assert_array_equal(
        metric_contributions(real, fake, "ipr_precision").scores, ipr.fake_in_real_manifold.astype(float)
    )
    np.testing.assert_array_equal(
        metric_contributions(real, fake, "ipr_recall").scores, ipr.real_in_fake_manifold.astype(float)
    )
    realism = metric_contributions(real, fake, "realism")
    want = realism_score(real, fake, k=3)
    np.testing.assert_array_equal(realism.scores, want.scores)
    np.testing.assert_array_equal(realism.to_frame()["nearest_real"], want.nearest_real)
    # the shifted images are over-represented among the least realistic: measured 28 of the 60 lowest
    assert np.isin(realism.bottom(60)["index"], np.arange(540, 600)).mean() >= 0.35
    k7 = metric_contributions(real, fake, "density", k=7)
    assert k7.scores.mean() == pytest.approx(prdc(real, fake, k=7).density, rel=1e-12) and "k=7" in k7.meaning
    fd_view = metric_contributions(real, fake, "fd", method="leave_one_out")
    np.testing.assert_allclose(fd_view.scores, fd_contributions(real, fake, "leave_one_out").scores, rtol=1e-12)


def test_result_api(feats) -> None:
    res = fd_contributions(feats["real"], feats["fake"])
    assert isinstance(res, AttributionResult) and isinstance(res, AnalysisResult)
    frame = res.to_frame()
    assert frame.columns.tolist() == ["index", "score", "fd_without"] and len(frame) == 600
    top = res.top(10)
    assert top["score"].is_monotonic_decreasing and top["score"].iloc[0] == res.scores.max()
    assert res.bottom(5)["score"].is_monotonic_increasing and len(res.top(0)) == 0
    frame.loc[0, "score"] = 1e9
    assert res.scores[0] != 1e9  # to_frame hands out a copy
    assert "FD contribution" in repr(res) and "<h4>" in res._repr_html_()
    with pytest.raises(ValueError, match="non-negative integer"):
        res.top(-1)


def test_bad_inputs(feats) -> None:
    real, fake = feats["real"], feats["fake"]
    with pytest.raises(ValueError, match="method must be one of"):
        fd_contributions(real, fake, method="hessian")
    with pytest.raises(ValueError, match="metric must be one of"):
        metric_contributions(real, fake, "fid")
    with pytest.raises(ValueError, match="fake needs at least 3 samples"):
        fd_contributions(real, fake[:2])
    with pytest.raises(ValueError, match="different feature dimensions"):
        fd_contributions(real, fake[:, :8])
    with pytest.raises(ValueError, match="different feature dimensions"):
        metric_contributions(real, fake[:, :8], "realism")
    bad = fake.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="fake contains NaN"):
        fd_contributions(real, bad)
    with pytest.raises(ValueError, match="block_rows"):
        fd_contributions(real, fake, block_rows=0)
    with pytest.raises(ValueError, match=r"rows must lie in \[0, 600\)"):
        fd_sample_gradients(real, fake, rows=[600])
    with pytest.raises(ValueError, match="integer row numbers"):
        fd_sample_gradients(real, fake, rows=[0.5])


def test_block_size_does_not_change_scores(feats) -> None:
    real, fake = feats["real"], feats["fake"]
    for method in ("gradient", "leave_one_out"):
        whole = fd_contributions(real, fake, method).scores
        np.testing.assert_allclose(
            fd_contributions(real, fake, method, block_rows=37).scores,
            whole,
            rtol=1e-9,
            atol=1e-12 * np.abs(whole).max(),
        )


def test_docstring_examples() -> None:
    failures, tried = doctest.testmod(module)
    assert tried >= 8 and failures == 0
