"""Class histograms, class-conditional metrics and zero-shot labels on real Fashion-MNIST images.

Caches are built from Fashion-MNIST test images with the ``pixels`` extractor (8x8, D = 192) and
with a test extractor that adds a fitted linear classifier's logits (LDA on pixels). References
are independent: np.argmax / np.argsort + np.bincount histograms, scipy's Jensen-Shannon distance
and entropy, direct calls of the metric on the class subsets.
"""

from __future__ import annotations

import doctest
import functools

import numpy as np
import pytest
import scipy.spatial.distance
import scipy.special
import scipy.stats

import workbench.analysis.classes as classes_module
import workbench.analysis.per_class as per_class_module
import workbench.analysis.zero_shot as zero_shot_module
from workbench.analysis.classes import class_histogram, histogram_divergences, top_classes
from workbench.analysis.per_class import per_class_metric
from workbench.analysis.result import AnalysisResult
from workbench.analysis.zero_shot import zero_shot_labels, zero_shot_logits
from workbench.cache import extract
from workbench.images.arrays import ArraySource
from workbench.images.datasets import FASHION_MNIST_CLASSES
from workbench.metrics.frechet import fd
from workbench.metrics.results import MetricValue
from workbench.metrics.validation import SampleSizeWarning

from linear_head import lda_head


@pytest.fixture(scope="module")
def caches(fmnist_test, tmp_path_factory):
    """(train pixels cache, real cache with logits, fake cache with logits); fake is class-skewed."""
    images, labels = fmnist_test
    out = tmp_path_factory.mktemp("classes")
    opts = dict(out=out, progress=False, thumbnails=0, num_workers=0)
    train = extract(
        ArraySource(images[:1500], labels[:1500], FASHION_MNIST_CLASSES, name="train"),
        "pixels",
        extractor_options={"size": 8},
        **opts,
    )
    head = lda_head(train.features, labels[:1500])
    rng = np.random.default_rng(0)
    pool = np.arange(3000, 10000)
    skew = np.array([6, 1, 1, 3, 1, 4, 1, 1, 1, 1.0])[labels[pool]]
    fake_idx = np.sort(rng.choice(pool, 2000, replace=False, p=skew / skew.sum()))
    real = extract(ArraySource(images[1500:3000], labels[1500:3000], FASHION_MNIST_CLASSES, name="real"), head, **opts)
    fake = extract(ArraySource(images[fake_idx], labels[fake_idx], FASHION_MNIST_CLASSES, name="fake"), head, **opts)
    return train, real, fake


# --- class histograms -----------------------------------------------------------------------------


def test_top1_histogram_equals_bincount_of_argmax(caches) -> None:
    _, real, fake = caches
    h = class_histogram(real, fake)
    assert isinstance(h, AnalysisResult)
    r1, f1 = np.asarray(real.logits).argmax(1), np.asarray(fake.logits).argmax(1)
    want_r, want_f = np.bincount(r1, minlength=10), np.bincount(f1, minlength=10)
    np.testing.assert_array_equal(h.real, want_r / want_r.sum())
    np.testing.assert_array_equal(h.fake, want_f / want_f.sum())
    frame = h.to_frame().set_index("class")
    np.testing.assert_array_equal(frame.loc[np.arange(10), "real_count"], want_r)
    np.testing.assert_array_equal(frame.loc[np.arange(10), "fake_count"], want_f)
    np.testing.assert_allclose(frame["difference"], frame["fake_share"] - frame["real_share"])
    # class names (from the cache manifest), sorted by real share
    assert frame.loc[0, "class_name"] == "T-shirt/top"
    assert h.to_frame()["real_share"].is_monotonic_decreasing
    assert h.to_frame()["class_name"].iloc[0] == FASHION_MNIST_CLASSES[int(np.argmax(want_r))]
    assert "Top-1" in h._repr_html_() and "T-shirt/top" in repr(h)


@pytest.mark.parametrize("n", [2, 5])
def test_topn_histogram_gives_each_of_the_n_classes_a_vote_of_1_over_n(caches, n) -> None:
    _, real, fake = caches
    h = class_histogram(real.logits, fake.logits, top=n)
    ref_r = np.argsort(-np.asarray(real.logits), axis=1)[:, :n]
    ref_f = np.argsort(-np.asarray(fake.logits), axis=1)[:, :n]
    np.testing.assert_allclose(h.real, np.bincount(ref_r.ravel(), minlength=10) / (n * len(ref_r)), rtol=1e-12)
    np.testing.assert_allclose(h.fake, np.bincount(ref_f.ravel(), minlength=10) / (n * len(ref_f)), rtol=1e-12)
    assert h.real.sum() == pytest.approx(1.0)
    # top_classes returns the same sets, ordered best first
    top = top_classes(real.logits, n, block_rows=333)
    np.testing.assert_array_equal(top, ref_r)


def test_labels_and_logits_mix_and_names(caches) -> None:
    _, real, fake = caches
    h = class_histogram(real.labels, fake, class_names=[c.upper() for c in FASHION_MNIST_CLASSES])
    np.testing.assert_array_equal(h.real, np.bincount(real.labels, minlength=10) / len(real))
    assert "TROUSER" in set(h.to_frame()["class_name"])
    # plain label arrays without names: K from the largest label, generic names
    h2 = class_histogram(np.array([0, 0, 3]), np.array([1, 3, 3, 3]))
    assert h2.to_frame()["class_name"].tolist() == ["class 0", "class 3", "class 1"]
    with_empty = class_histogram(np.array([0, 0, 3]), np.array([1, 3]), include_empty=True)
    assert len(with_empty.to_frame()) == 4 and with_empty.to_frame()["real_count"].sum() == 3


def test_divergences_against_scipy(caches) -> None:
    _, real, fake = caches
    h = class_histogram(real, fake, smoothing=0.5)
    r = h.to_frame().set_index("class").sort_index()
    p, q = h.real, h.fake
    assert h.divergences["tv"] == pytest.approx(0.5 * np.abs(p - q).sum(), rel=1e-12)
    # scipy returns the JS *distance* (square root of the divergence)
    assert h.divergences["js"] == pytest.approx(scipy.spatial.distance.jensenshannon(p, q) ** 2, rel=1e-9)
    rc = r["real_count"].reindex(range(10), fill_value=0).to_numpy() + 0.5
    fc = r["fake_count"].reindex(range(10), fill_value=0).to_numpy() + 0.5
    assert h.divergences["kl_real_fake"] == pytest.approx(scipy.stats.entropy(rc, fc), rel=1e-9)
    assert h.divergences["kl_fake_real"] == pytest.approx(scipy.stats.entropy(fc, rc), rel=1e-9)
    assert h.divergences["tv"] > 0.1  # the generated set is skewed
    same = class_histogram(real, real)
    assert same.divergences == {"tv": 0.0, "js": 0.0, "kl_real_fake": 0.0, "kl_fake_real": 0.0}
    # a class missing on one side: unsmoothed KL is infinite, smoothed is finite
    raw = histogram_divergences(np.array([5, 5, 0]), np.array([5, 0, 5]), smoothing=0)
    assert raw["kl_real_fake"] == np.inf and raw["js"] == pytest.approx(0.5 * np.log(2))


def test_histogram_bad_inputs(caches) -> None:
    train, real, fake = caches
    with pytest.raises(ValueError, match="has no logits"):
        class_histogram(train, fake)
    with pytest.raises(ValueError, match="same classifier"):
        class_histogram(real.logits, np.asarray(fake.logits)[:, :9])
    with pytest.raises(ValueError, match="top=3 needs"):
        class_histogram(real.labels, fake.labels, top=3)
    with pytest.raises(ValueError, match="negative labels"):
        class_histogram(np.array([0, -1]), np.array([0, 1]))
    with pytest.raises(ValueError, match="class_names has 3 names"):
        class_histogram(real, fake, class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="label 12 but there are only 10"):
        class_histogram(np.array([0, 12]), fake)
    with pytest.raises(TypeError, match="must hold integers"):
        class_histogram(np.array([0.0, 1.0]), fake)
    with pytest.raises(ValueError, match="NaN"):
        class_histogram(np.array([[0.0, np.nan]]), np.array([[1.0, 0.0]]))
    with pytest.raises(ValueError, match="smoothing"):
        class_histogram(real, fake, smoothing=-1)


# --- per-class metrics ------------------------------------------------------------------------------


def test_per_class_fd_equals_fd_on_the_class_subsets(caches) -> None:
    _, real, fake = caches
    # first 40 pixel dimensions: every class has more samples than dimensions (fast, non-singular)
    rx, fx = np.asarray(real.features)[:, :40], np.asarray(fake.features)[:, :40]
    res = per_class_metric(fd, rx, fx, real.labels, fake.labels, min_samples=120, class_names=FASHION_MNIST_CLASSES)
    frame = res.to_frame().set_index("class")
    for c in range(10):
        n_r, n_f = int((real.labels == c).sum()), int((fake.labels == c).sum())
        assert (frame.loc[c, "n_real"], frame.loc[c, "n_fake"]) == (n_r, n_f)
        assert frame.loc[c, "class_name"] == FASHION_MNIST_CLASSES[c]
        if min(n_r, n_f) < 120:
            assert np.isnan(frame.loc[c, "value"]) and "min_samples=120" in frame.loc[c, "note"]
            assert c in res.skipped
        else:
            want = fd(rx[real.labels == c], fx[fake.labels == c])
            assert frame.loc[c, "value"] == pytest.approx(want, rel=1e-12)
            assert res.values[c] == frame.loc[c, "value"]
    assert sorted(res.skipped) == [2, 4, 8]  # generated counts 103, 107, 115 (class-skewed draw)
    assert frame.loc[-1, "value"] == pytest.approx(fd(rx, fx), rel=1e-12)
    assert frame.loc[-1, "class_name"] == "all classes"


def test_per_class_reads_caches_and_reports_metric_warnings(caches) -> None:
    _, real, fake = caches

    def gap(a, b):
        return float(np.abs(a.mean(0) - b.mean(0)).sum())

    res = per_class_metric(gap, real, fake)  # labels and class names from the caches
    frame = res.to_frame().set_index("class")
    rx, fx = np.asarray(real.features), np.asarray(fake.features)
    assert frame.loc[5, "class_name"] == "Sandal"
    assert frame.loc[5, "value"] == pytest.approx(gap(rx[real.labels == 5], fx[fake.labels == 5]), rel=1e-12)
    # FD with fewer samples than dimensions: the metric's warning is re-raised and noted
    small = (rx[:300, :60], fx[:300, :60], real.labels[:300], fake.labels[:300])
    with pytest.warns(SampleSizeWarning, match="singular"):
        noted = per_class_metric(fd, *small, overall=False).to_frame()
    assert noted["note"].str.contains("warning: .* singular").any()


def test_per_class_with_arrays_mappings_metric_values_and_unknown_labels(caches) -> None:
    _, real, fake = caches
    rx, fx = np.asarray(real.features), np.asarray(fake.features)
    rl, fl = real.labels.copy(), fake.labels.copy()
    rl[:10] = -1  # unknown labels are left out

    def stats(a, b):
        return {"mean_gap": float(np.abs(a.mean() - b.mean())), "n": float(len(a) + len(b))}

    res = per_class_metric(stats, rx, fx, rl, fl, min_samples=1, overall=False)
    frame = res.to_frame().set_index("class")
    assert list(frame.columns[:5]) == ["class_name", "n_real", "n_fake", "mean_gap", "n"]
    c = 3
    assert frame.loc[c, "n"] == float((rl == c).sum() + (fl == c).sum())
    assert frame.loc[c, "mean_gap"] == pytest.approx(abs(rx[rl == c].mean() - fx[fl == c].mean()), rel=1e-12)
    assert -1 not in frame.index and "unlabelled" in res.summary

    def kid_like(a, b):
        return MetricValue(value=1.5, n_real=len(a), n_fake=len(b), std=0.25, ci=(1.0, 2.0))

    mv = per_class_metric(kid_like, rx, fx, real.labels, fake.labels, name="toy").to_frame()
    assert {"value", "std", "ci_low", "ci_high"} <= set(mv.columns)
    assert mv["std"].iloc[0] == 0.25

    def fails(a, b):
        raise ValueError("boom")

    noted = per_class_metric(fails, rx, fx, real.labels, fake.labels, errors="note").to_frame()
    assert noted["note"].str.contains("failed: ValueError: boom").all()
    with pytest.raises(ValueError, match="boom"):
        per_class_metric(fails, rx, fx, real.labels, fake.labels)
    partial = per_class_metric(functools.partial(fd, block_rows=64), rx[:, :4], fx[:, :4], real.labels, fake.labels)
    assert partial.metric_name == "fd"


def test_per_class_bad_inputs(caches) -> None:
    _, real, fake = caches
    rx = np.asarray(real.features)
    with pytest.raises(ValueError, match="real_labels is required"):
        per_class_metric(fd, rx, fake)
    with pytest.raises(ValueError, match="has 5 labels"):
        per_class_metric(fd, rx, fake, real_labels=np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match="integer array"):
        per_class_metric(fd, rx, fake, real_labels=np.zeros(len(rx)))
    with pytest.raises(ValueError, match="min_samples"):
        per_class_metric(fd, real, fake, min_samples=0)
    with pytest.raises(TypeError, match="must be a function"):
        per_class_metric("fd", real, fake)
    with pytest.raises(TypeError, match="must return a number"):
        per_class_metric(lambda a, b: "x", real, fake)


# --- zero-shot labels -----------------------------------------------------------------------------


def test_zero_shot_labels_from_class_prototypes(caches) -> None:
    """Stand-in "text" embeddings: the mean pixel feature of each class in the training images."""
    train, real, _ = caches
    tx, ty = np.asarray(train.features, dtype=np.float64), train.labels
    text = np.stack([tx[ty == c].mean(0) for c in range(10)])
    res = zero_shot_labels(np.asarray(real.features), FASHION_MNIST_CLASSES, text * 3.0)  # scale-free
    x = np.asarray(real.features, dtype=np.float64)
    cos = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (text / np.linalg.norm(text, axis=1, keepdims=True)).T
    np.testing.assert_allclose(res.logits, 100.0 * cos, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(res.labels, cos.argmax(1))
    probs = res.probabilities
    np.testing.assert_allclose(probs, scipy.special.softmax(100.0 * cos, axis=1), atol=1e-5)
    accuracy = float(np.mean(res.labels == real.labels))
    assert accuracy > 0.5  # measured 0.66: nearest class direction is a weak but real classifier
    frame = res.to_frame()
    assert frame["count"].sum() == len(real) and frame["count"].is_monotonic_decreasing
    assert set(frame["class_name"]) <= set(FASHION_MNIST_CLASSES)
    # the labels feed the other analyses
    h = class_histogram(res.logits, res.logits, class_names=FASHION_MNIST_CLASSES)
    np.testing.assert_allclose(h.real, np.bincount(res.labels, minlength=10) / len(real))
    np.testing.assert_allclose(zero_shot_logits(real.features, text, logit_scale=50.0), 50.0 * cos, atol=1e-4)


def test_zero_shot_bad_inputs(caches) -> None:
    train, real, _ = caches
    text = np.random.default_rng(0).normal(size=(10, 192))
    with pytest.raises(ValueError, match="10 rows"):
        zero_shot_labels(real.features, ["a", "b"], text)
    with pytest.raises(ValueError, match="192 dimensions but text_features have 7"):
        zero_shot_labels(real.features, list("abcdefghij"), text[:, :7])
    with pytest.raises(ValueError, match="all zeros"):
        zero_shot_labels(real.features, list("abcdefghij"), np.zeros((10, 192)))
    with pytest.warns(UserWarning, match="not 'clip'"):
        zero_shot_labels(train, list("abcdefghij"), text)
    with pytest.raises(ValueError, match="logit_scale"):
        zero_shot_logits(real.features, text, logit_scale=0)


def test_docstring_examples_run() -> None:
    for module in (classes_module, per_class_module, zero_shot_module):
        assert doctest.testmod(module).failed == 0, module.__name__
