"""Extractor comparison on real Fashion-MNIST images degraded in several ways.

Real set: 800 test images. Five "models": other test images untouched (two disjoint draws),
Gaussian blur, additive noise, and a model that never draws three of the ten classes. Three
"extractors" from the same images: the ``pixels`` extractor through real caches (8x8 RGB,
D = 192), PCA-24 of the 28x28 pixels, and PCA-16 of the Sobel gradient magnitude. References:
direct :func:`workbench.metrics.frechet.fd` calls ranked by hand, ``scipy.stats.kendalltau`` /
``spearmanr``, brute-force FD of resampled arrays.
"""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
import scipy.ndimage
import scipy.stats
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

import workbench.analysis.extractor_ranking as module
from workbench.analysis.extractor_ranking import (
    ExtractorComparison,
    compare_extractors,
    fd_resampled,
    published_extractor_table,
)
from workbench.analysis.human_data import load_published_metrics
from workbench.analysis.result import AnalysisResult
from workbench.cache import extract
from workbench.images.arrays import ArraySource
from workbench.images.datasets import FASHION_MNIST_CLASSES
from workbench.metrics.frechet import fd

N_FAKE = 500


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    # The matrices here are small (D <= 192): multi-threaded LAPACK only adds overhead, and on a
    # loaded 2-core machine a threaded 192 x 192 eigh was measured 40x slower than a single thread.
    with threadpool_limits(1):
        yield


def _degrade(images: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    x = images.astype(np.float64)
    if kind == "blur":
        x = scipy.ndimage.gaussian_filter(x, sigma=(0, 1.2, 1.2))
    elif kind == "noise":
        x = x + rng.normal(scale=40.0, size=x.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def data(fmnist_test, tmp_path_factory):
    """{extractor: {model: (real, fake)}} plus the raw pieces."""
    images, labels = fmnist_test
    rng = np.random.default_rng(0)
    real_imgs = images[:800]
    pool = np.arange(1000, 9000)
    kept_classes = pool[labels[pool] < 7]
    picks = {
        "clean_a": pool[:N_FAKE],
        "clean_b": pool[N_FAKE : 2 * N_FAKE],
        "blur": pool[2 * N_FAKE : 3 * N_FAKE],
        "noise": pool[3 * N_FAKE : 4 * N_FAKE],
        "drop3": kept_classes[-N_FAKE:],
    }
    fakes = {
        m: _degrade(images[idx], {"blur": "blur", "noise": "noise"}.get(m, "none"), rng) for m, idx in picks.items()
    }
    out = tmp_path_factory.mktemp("compare")
    opts = dict(out=out, progress=False, thumbnails=0, num_workers=0, extractor_options={"size": 8})
    real_src = ArraySource(real_imgs, labels[:800], FASHION_MNIST_CLASSES, name="real")
    caches = {"real": extract(real_src, "pixels", **opts)}
    for m, imgs in fakes.items():
        caches[m] = extract(ArraySource(imgs, name=m), "pixels", **opts)

    fit = images[9000:10000].reshape(1000, -1).astype(np.float64)
    pca = PCA(24, random_state=0).fit(fit)

    def edges(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64)
        return np.hypot(scipy.ndimage.sobel(x, axis=1), scipy.ndimage.sobel(x, axis=2)).reshape(len(x), -1)

    edge_pca = PCA(16, random_state=0).fit(edges(images[9000:10000]))
    feats = {
        "pca24": lambda x: pca.transform(x.reshape(len(x), -1).astype(np.float64)),
        "edges16": lambda x: edge_pca.transform(edges(x)),
    }
    table = {"pixels": {m: (caches["real"], caches[m]) for m in fakes}}
    for name, fn in feats.items():
        real_f = fn(real_imgs)
        table[name] = {m: (real_f, fn(fakes[m])) for m in fakes}
    return {"table": table, "models": list(fakes)}


def _arrays(table, ext, model):
    real, fake = table[ext][model]
    return (np.asarray(getattr(real, "features", real)), np.asarray(getattr(fake, "features", fake)))


def _manual_ranks(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    order = np.argsort(-values if higher_is_better else values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    return ranks


def test_values_and_ranks_equal_direct_fd_calls(data) -> None:
    table, models = data["table"], data["models"]
    res = compare_extractors(table, metrics="fd", n_boot=0)
    assert isinstance(res, ExtractorComparison) and isinstance(res, AnalysisResult)
    scores = res.to_frame()
    assert len(scores) == 3 * len(models)
    for ext in table:
        manual = np.array([fd(*_arrays(table, ext, m)) for m in models])
        got = scores[scores["extractor"] == ext].set_index("model").loc[models]
        np.testing.assert_allclose(got["value"], manual, rtol=1e-12)
        np.testing.assert_array_equal(got["rank"], _manual_ranks(manual, higher_is_better=False))
        np.testing.assert_array_equal(res.rank_matrix("fd")[ext].loc[models], got["rank"])
    # the degradations are what FD sees: the clean draws beat blur and noise under every extractor
    ranks = res.rank_matrix("fd")
    assert (ranks.loc[["clean_a", "clean_b"]].max() < ranks.loc[["blur", "noise"]].min()).all()
    assert res.values.columns.tolist() == ["extractor", "model", "metric", "value", "higher_is_better"]
    assert res.ranks["rank_low"].isna().all()  # no bootstrap
    bump = res.bump_data("fd")
    assert bump.columns.tolist()[:4] == ["metric", "extractor", "model", "rank"] and len(bump) == 15


def test_agreement_equals_scipy(data) -> None:
    table, models = data["table"], data["models"]
    res = compare_extractors(table, metrics="fd", n_boot=0)
    values = {ext: np.array([fd(*_arrays(table, ext, m)) for m in models]) for ext in table}
    agreement = res.agreement
    assert len(agreement) == 3 * 2  # three pairs, two methods
    for row in agreement.itertuples():
        a, b = values[row.extractor_a], values[row.extractor_b]
        want = (
            scipy.stats.kendalltau(a, b).statistic if row.method == "kendall" else scipy.stats.spearmanr(a, b).statistic
        )
        assert row.correlation == pytest.approx(want, abs=1e-12)
        assert row.n_models == 5 and np.isnan(row.ci_low)
    matrix = res.agreement_matrix("fd", "spearman")
    assert matrix.loc["pixels", "pixels"] == 1.0
    assert matrix.loc["pca24", "edges16"] == matrix.loc["edges16", "pca24"]


@pytest.mark.slow
def test_prdc_ranks_use_orientation(data) -> None:
    table, _models = data["table"], data["models"]
    sub = {ext: table[ext] for ext in ("pca24", "edges16")}
    res = compare_extractors(sub, metrics=["prdc", "kd"], n_boot=0)
    scores = res.to_frame()
    assert set(scores["metric"]) == {"precision", "recall", "density", "coverage", "kd", "kd_std"}
    oriented = scores[scores["metric"] != "kd_std"]
    for (_ext, metric), part in oriented.groupby(["extractor", "metric"]):
        sign = 1 if metric == "kd" else -1  # KD: lower is better; PRDC: higher is better
        assert part["higher_is_better"].eq(metric != "kd").all()
        np.testing.assert_array_equal(part["rank"], scipy.stats.rankdata(sign * part["value"].to_numpy()))
    # kd_std (the spread over subsets) has no better direction: no rank and no agreement row
    assert scores.loc[scores["metric"] == "kd_std", "rank"].isna().all()
    assert set(res.agreement["metric"]) == {"precision", "recall", "density", "coverage", "kd"}


def test_bootstrap_deterministic_and_contains_point(data) -> None:
    table = data["table"]
    first = compare_extractors(table, metrics="fd", n_boot=40, seed=3)
    again = compare_extractors(table, metrics="fd", n_boot=40, seed=3)
    other = compare_extractors(table, metrics="fd", n_boot=40, seed=4)
    pd.testing.assert_frame_equal(first.agreement, again.agreement)
    pd.testing.assert_frame_equal(first.to_frame(), again.to_frame())
    a = first.agreement
    assert (a["n_boot"] == 40).all()
    # measured: every interval contains its point estimate on these data
    assert (a["ci_low"] <= a["correlation"]).all() and (a["correlation"] <= a["ci_high"]).all()
    assert not first.to_frame()[["rank_low", "rank_high"]].equals(other.to_frame()[["rank_low", "rank_high"]])
    ranks = first.ranks
    assert (ranks["rank_low"] <= ranks["rank_high"]).all()
    assert ranks["rank_low"].min() >= 1 and ranks["rank_high"].max() <= 5
    assert "resampled" in first.summary and "real sets fixed" in first.resampling


def test_fd_resampled_equals_brute_force(data) -> None:
    rng = np.random.default_rng(1)
    for ext in ("pixels", "pca24"):  # pixels: rank-64 covariances in 192 dims (RGB copies of gray)
        real, fake = _arrays(data["table"], ext, "blur")
        idx = rng.integers(0, len(fake), size=(4, len(fake)))
        counts = np.stack([np.bincount(i, minlength=len(fake)) for i in idx])
        got = fd_resampled(real, fake, counts)
        want = np.array([fd(real, fake[i]) for i in idx])
        np.testing.assert_allclose(got, want, rtol=1e-9)
        np.testing.assert_allclose(
            fd_resampled(real, fake, np.ones((1, len(fake)), dtype=int)), fd(real, fake), rtol=1e-10
        )


def test_linear_fd_bootstrap_tracks_exact(data) -> None:
    table = {ext: data["table"][ext] for ext in ("pca24", "edges16")}
    exact = compare_extractors(table, metrics="fd", n_boot=60, seed=0)
    linear = compare_extractors(table, metrics="fd", n_boot=60, seed=0, fd_bootstrap="linear")
    width = lambda r: (r.agreement["ci_high"] - r.agreement["ci_low"]).to_numpy()  # noqa: E731
    # measured: the same agreement intervals on these data
    np.testing.assert_allclose(width(linear), width(exact), atol=0.25)
    pd.testing.assert_series_equal(exact.agreement["correlation"], linear.agreement["correlation"])
    # the replicates themselves: first-order FD change vs exact recomputation, same counts
    corr, ratio = [], []
    draws = np.random.default_rng(0).integers(0, N_FAKE, size=(50, N_FAKE))
    counts = np.stack([np.bincount(i, minlength=N_FAKE) for i in draws])
    for ext in table:
        for model in data["models"]:
            real, fake = _arrays(data["table"], ext, model)
            dec = module.frechet_decomposition(real, fake)
            lin = dec.fd + (counts - 1.0) @ dec.influence(fake)
            ex = fd_resampled(real, fake, counts)
            corr.append(np.corrcoef(lin, ex)[0, 1])
            ratio.append(lin.std() / ex.std())
            # the exact replicates sit far above FD (duplicated rows), the linear ones do not
            assert ex.mean() > dec.fd and abs(lin.mean() - dec.fd) < 0.5 * (ex.mean() - dec.fd)
    # measured: correlation 0.75 (clean models, where FD is small next to its second-order
    # bootstrap term) to 0.996, median 0.97; spread ratio 0.80 to 0.99
    assert min(corr) > 0.7 and np.median(corr) > 0.93
    assert 0.75 < min(ratio) and max(ratio) < 1.05


@pytest.mark.slow
def test_pairing_shares_rows_across_extractors(data) -> None:
    """A copy of an extractor scaled by 2: FD scales by 4 and k-NN metrics do not change, so paired
    replicates must agree exactly and rank every replicate identically."""
    base = data["table"]["pca24"]
    table = {"pca24": base, "pca24x2": {m: (2 * r, 2 * f) for m, (r, f) in base.items()}}
    paired = compare_extractors(table, metrics=["fd", "prdc"], n_boot=12, seed=0)
    reps = paired.replicates.pivot_table(index=["model", "metric", "replicate"], columns="extractor", values="value")
    assert len(reps) == 5 * 5 * 12
    fd_rows = reps.xs("fd", level="metric")
    np.testing.assert_allclose(fd_rows["pca24x2"], 4 * fd_rows["pca24"], rtol=1e-9)
    knn = reps.drop(index="fd", level="metric")
    np.testing.assert_array_equal(knn["pca24x2"], knn["pca24"])
    # replicates are genuine resamples: they vary, and FD replicates sit above the point (duplicates)
    point = paired.to_frame().set_index(["extractor", "model", "metric"])["value"]
    for model in data["models"]:
        assert fd_rows.loc[model, "pca24"].std() > 0
        assert fd_rows.loc[model, "pca24"].mean() > point[("pca24", model, "fd")]
    for row in paired.agreement.itertuples():
        assert row.correlation == 1.0 and row.ci_low == 1.0 and row.ci_high == 1.0, row
    unpaired = compare_extractors(table, metrics="fd", n_boot=40, seed=0, paired=False)
    # independent draws swap close models in some replicates (measured Kendall ci_low 0.6)
    assert unpaired.agreement.iloc[0].ci_low < 1.0


def test_knn_replicates_are_means_over_resampled_fakes(data) -> None:
    """Precision and density are means over the fakes of per-fake quantities that depend on the
    (fixed) real set only, so each replicate is a multiset of the full-data per-fake values."""
    from workbench.metrics.prdc import prdc

    real, fake = _arrays(data["table"], "edges16", "noise")
    res = compare_extractors({"e": {"noise": (real, fake)}}, metrics="prdc", n_boot=10, seed=5)
    full = prdc(real, fake, k=5)
    reps = res.replicates.pivot_table(index="replicate", columns="metric", values="value")
    # precision_b = (number of in-manifold fakes drawn) / n and density_b = (sum of drawn counts) / (k n)
    np.testing.assert_allclose(reps["precision"] * N_FAKE, np.round(reps["precision"] * N_FAKE), atol=1e-9)
    assert reps["precision"].std() > 0 and reps["density"].std() > 0
    assert abs(reps["precision"].mean() - full.precision) < 4 * reps["precision"].std()
    assert abs(reps["density"].mean() - full.density) < 4 * reps["density"].std()


def test_published_long_table(data) -> None:
    long = published_extractor_table()
    res = compare_extractors(long)
    published = load_published_metrics()
    agreement = res.agreement[(res.agreement["metric"] == "fd")]
    assert set(agreement["dataset"]) == {"cifar10", "imagenet256", "lsun256", "ffhq256"}
    assert (agreement["n_boot"] == 0).all() and agreement["ci_low"].isna().all()
    for row in agreement.itertuples():
        part = published[published["dataset"] == row.dataset]
        # inception_fd_rank: 1 = highest Inception-FD, so -rank orders models as FD does
        a, b = part["fd_dinov2"].to_numpy(), -part["inception_fd_rank"].to_numpy()
        want = (
            scipy.stats.kendalltau(a, b).statistic if row.method == "kendall" else scipy.stats.spearmanr(a, b).statistic
        )
        assert row.correlation == pytest.approx(want, abs=1e-12)
    # rank 1 = lowest FD under both extractors
    ranks = res.rank_matrix("fd", dataset="cifar10")
    part = published[published["dataset"] == "cifar10"].set_index("model")
    assert ranks["dinov2"].idxmin() == part["fd_dinov2"].idxmin()
    assert ranks["inception"].idxmin() == part["inception_fd_rank"].idxmax()
    # metrics of one extractor only get no agreement rows
    assert set(res.agreement["metric"]) == {"fd"}
    assert len(res.bump_data("fd", dataset="imagenet")) == 22
    assert "0.16" in repr(res)  # ImageNet Spearman, shown in the compact view


def test_long_table_orientation_and_override() -> None:
    long = pd.DataFrame(
        {
            "extractor": ["a"] * 3 + ["b"] * 3,
            "model": ["x", "y", "z"] * 2,
            "metric": "my_score",
            "value": [1.0, 2.0, 3.0, 30.0, 10.0, 20.0],
        }
    )
    res = compare_extractors(long)
    assert res.to_frame()["rank"].isna().all()  # unknown orientation: no ranks, correlation still defined
    assert res.agreement.set_index("method").at["spearman", "correlation"] == pytest.approx(-0.5)
    res = compare_extractors(long, higher_is_better={"my_score": True})
    assert res.rank_matrix("my_score").loc[["x", "y", "z"], "a"].tolist() == [3.0, 2.0, 1.0]
    assert res.rank_matrix("my_score").loc[["x", "y", "z"], "b"].tolist() == [1.0, 3.0, 2.0]


def test_bad_inputs(data) -> None:
    table = data["table"]
    real, fake = _arrays(table, "pca24", "blur")
    with pytest.raises(ValueError, match="non-empty mapping"):
        compare_extractors({})
    with pytest.raises(ValueError, match=r"\(real, fake\) pair"):
        compare_extractors({"e": {"m": real}})
    with pytest.raises(ValueError, match="unknown metric"):
        compare_extractors({"e": {"m": (real, fake)}}, metrics="nope")
    with pytest.raises(ValueError, match="needs training"):
        compare_extractors({"e": {"m": (real, fake)}}, metrics="authpct")
    with pytest.raises(ValueError, match="n_boot"):
        compare_extractors({"e": {"m": (real, fake)}}, metrics="fd", n_boot=1)
    with pytest.raises(ValueError, match="ci must be"):
        compare_extractors({"e": {"m": (real, fake)}}, metrics="fd", ci=1.5)
    with pytest.raises(ValueError, match="fd_bootstrap"):
        compare_extractors({"e": {"m": (real, fake)}}, metrics="fd", fd_bootstrap="quadratic")
    with pytest.raises(ValueError, match="extractor 'e'.*different feature dimensions"):
        compare_extractors({"e": {"m": (real, fake[:, :10])}}, metrics="fd", n_boot=0)
    with pytest.raises(ValueError, match="row counts differ"):
        compare_extractors({"e": {"m": (real, fake)}, "f": {"m": (real, fake[:-1])}}, metrics="fd", n_boot=2)
    with pytest.raises(ValueError, match="different images"):  # same count, other images (content hashes)
        compare_extractors(
            {"e": {"m": table["pixels"]["blur"]}, "f": {"m": table["pixels"]["noise"]}}, metrics="fd", n_boot=2
        )
    with pytest.raises(ValueError, match="DataFrame inputs"):
        compare_extractors({"e": {"m": (real, fake)}}, metrics="fd", higher_is_better={"fd": False})
    with pytest.raises(ValueError, match="missing"):
        compare_extractors(pd.DataFrame({"extractor": ["a"], "model": ["m"], "value": [1.0]}))
    dup = pd.DataFrame({"extractor": ["a", "a"], "model": ["m", "m"], "metric": ["fd", "fd"], "value": [1.0, 2.0]})
    with pytest.raises(ValueError, match="several values"):
        compare_extractors(dup)
    with pytest.raises(ValueError, match="numeric"):
        compare_extractors(dup.assign(value=["1.0", "oops"], model=["m", "n"]))
    with pytest.raises(ValueError, match="do not occur"):
        compare_extractors(dup.assign(model=["m", "n"]), metrics=["kd"])
    with pytest.raises(ValueError, match=r"counts must have shape"):
        fd_resampled(real, fake, np.ones((2, 3), dtype=int))
    with pytest.raises(ValueError, match="summing to n"):
        fd_resampled(real, fake, np.full((1, len(fake)), 2))
    res = compare_extractors({"e": {"m": (real, fake)}}, metrics="fd", n_boot=0)
    with pytest.raises(ValueError, match="not in this comparison"):
        res.bump_data("kd")
    with pytest.raises(ValueError, match="no dataset column"):
        res.rank_matrix("fd", dataset="cifar10")


def test_docstring_examples() -> None:
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried >= 10 and failures == 0


# ------------------------------------------------------------------------- ten extractors


@pytest.fixture(scope="module")
def ten_extractors():
    """Ten synthetic extractors x six models: under extractors e0-e4 the models' FD grows with their
    index, under e5-e9 it shrinks (two blocks that agree inside and disagree across); features are
    Gaussian (D = 6, 120 real and 100 generated rows), each model shifted by a different amount."""
    rng = np.random.default_rng(7)
    names = [f"e{i}" for i in range(10)]
    models = [f"m{j}" for j in range(6)]
    table = {}
    for i, ext in enumerate(names):
        real = rng.normal(size=(120, 6))
        table[ext] = {}
        for j, model in enumerate(models):
            shift = 0.4 * (j if i < 5 else 5 - j) + 0.1
            table[ext][model] = (real, rng.normal(size=(100, 6)) + shift)
    # shuffle the input order so that grouping the blocks is the ordering's work
    order = ["e3", "e7", "e0", "e9", "e5", "e1", "e8", "e2", "e6", "e4"]
    return compare_extractors({e: table[e] for e in order}, metrics="fd", n_boot=0)


def test_ten_extractors_agreement_order_and_consensus(ten_extractors) -> None:
    comp = ten_extractors
    assert len(comp.extractors) == 10
    agree = comp.agreement
    assert len(agree) == 45 * 2 and (agree["n_models"] == 6).all()
    group = {f"e{i}": i < 5 for i in range(10)}
    kendall = agree[agree["method"] == "kendall"]
    same = kendall["extractor_a"].map(group) == kendall["extractor_b"].map(group)
    assert (kendall.loc[same, "correlation"] == 1.0).all() and (kendall.loc[~same, "correlation"] == -1.0).all()

    order = comp.extractor_order("fd")
    assert sorted(order) == sorted(comp.extractors)
    first, second = {group[e] for e in order[:5]}, {group[e] for e in order[5:]}
    assert len(first) == 1 and len(second) == 1 and first != second  # the two blocks are contiguous
    assert order == comp.extractor_order("fd")  # deterministic

    consensus = comp.consensus("fd")
    matrix = comp.agreement_matrix("fd").to_numpy()
    manual = (matrix.sum(axis=1) - 1.0) / 9.0  # mean over the 9 others
    np.testing.assert_allclose(consensus.reindex(comp.agreement_matrix("fd").index).to_numpy(), manual, atol=1e-12)
    np.testing.assert_allclose(consensus.to_numpy(), -1.0 / 9.0, atol=1e-12)  # 4 x (+1) + 5 x (-1)
    # fewer than three extractors: the input order
    two = compare_extractors({"b": {"x": (np.eye(3), np.eye(3))}, "a": {"x": (np.eye(3), np.eye(3))}}, "fd", n_boot=0)
    assert two.extractor_order("fd") == ["b", "a"]


def test_ten_extractors_view_is_readable(ten_extractors) -> None:
    pytest.importorskip("ipywidgets")
    from workbench.widgets.extractor_comparison import (
        BUMP_COLUMN_PX,
        MATRIX_CELL_PX,
        MAX_PAIR_LINES,
    )
    from workbench.widgets.extractor_comparison import (
        ExtractorComparison as View,
    )

    view = View(comparison=ten_extractors, background=False)
    order = ten_extractors.extractor_order("fd")
    assert view.extractor_order() == order
    bump = view.bump.layout
    assert list(bump.xaxis.categoryarray) == order and bump.xaxis.tickangle == -35
    assert bump.width >= 190 + BUMP_COLUMN_PX * 10 and "ordered by agreement" in bump.title.text
    assert [list(t.x) for t in view.bump.data] == [order] * 6  # every model's line over all ten
    heat = view.matrix.data[0]
    assert list(heat.x) == order == list(heat.y)
    layout = view.matrix.layout
    plot_w = layout.width - layout.margin.l - layout.margin.r - 80  # the colour bar takes ~80 px
    plot_h = layout.height - layout.margin.t - layout.margin.b
    assert plot_w / 10 >= MATRIX_CELL_PX * 0.75 and plot_h / 10 >= MATRIX_CELL_PX * 0.75
    assert heat.texttemplate == "%{z:.2f}" and heat.textfont.size == 10
    summary = view.summary.value
    assert "45 pairs of extractors" in summary and summary.count(" vs ") == 2 < MAX_PAIR_LINES
    assert "mean agreement with the others" in summary and "e0 -0.11" in summary
    # a few extractors keep the input order and one line per pair
    small = compare_extractors(
        {e: {m: ten_extractors_pair(e, m) for m in ("m0", "m1", "m2")} for e in ("x", "y", "z")}, "fd", n_boot=0
    )
    few = View(comparison=small, background=False)
    assert few.extractor_order() == ["x", "y", "z"] and few.summary.value.count(" vs ") == 3
    assert few.bump.layout.width == 560 and few.matrix.layout.width == 420


def ten_extractors_pair(ext: str, model: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([ord(c) for c in ext + model])  # deterministic across processes
    return rng.normal(size=(40, 3)), rng.normal(size=(40, 3)) + 0.3 * int(model[1:])
