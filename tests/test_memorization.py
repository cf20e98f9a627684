"""Memorization analysis: nearest-neighbour backends and the memorization report.

References and tolerances:

* k-NN vs scikit-learn's brute-force ``NearestNeighbors`` (float64): same neighbour rows (random
  data, no ties), distances ``rtol=1e-6`` (scikit-learn's Euclidean uses the ``|a|^2 + |b|^2 -
  2ab`` expansion, ours re-computes ``sum((a - b)^2)`` in float64).
* faiss backends vs exact: IVF with ``nprobe = nlist`` searches every cell, so it must return
  the exact neighbours (distances ``rtol=1e-12``: both recompute in float64); the BLAS cell scan
  and faiss's own ``IndexIVFFlat`` scan must agree; default-parameter recall on clustered data is
  asserted above the value measured here minus a margin.
* Report vs a naive float64 ``scipy.spatial.distance.cdist`` reference written here (the
  Alaa et al. / dgm-eval AuthPct formula) and vs :func:`workbench.metrics.authenticity`:
  flags exactly equal, distances ``rtol=1e-10``.
* Planted copies in real Fashion-MNIST images (pixels extractor through
  :func:`workbench.cache.extract`): recall and false-positive rate thresholds are the values
  measured when this test was written, with a margin (stated next to each assertion).
"""

from __future__ import annotations

import doctest
import sys

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.distance import cdist
from sklearn.neighbors import NearestNeighbors

import workbench.analysis.memorization as memorization_module
import workbench.analysis.neighbors as neighbors_module
from workbench.analysis.memorization import memorization_report
from workbench.analysis.neighbors import nearest_neighbors, neighbor_recall
from workbench.cache import extract
from workbench.images.arrays import ArraySource
from workbench.images.datasets import load_fashion_mnist
from workbench.metrics.authenticity import authenticity

# ----------------------------------------------------------------------------- helpers


def _clustered(seed: int, n: int, dim: int, n_centres: int = 20, spread: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = spread * rng.normal(size=(n_centres, dim))
    return (centres[rng.integers(0, n_centres, n)] + rng.normal(size=(n, dim))).astype(np.float32)


def _naive_report(train, fake, test=None, metric="l2"):
    """Float64 full-matrix reference: d1, nearest row, d2, ratio, test distances."""
    train, fake = train.astype(np.float64), fake.astype(np.float64)
    name = "euclidean" if metric == "l2" else "cosine"
    d_tf = cdist(fake, train, name)
    d_tt = cdist(train, train, name)
    np.fill_diagonal(d_tt, np.inf)
    nearest = d_tf.argmin(axis=1)
    d1 = d_tf.min(axis=1)
    d2 = d_tt.min(axis=1)[nearest]
    out = {"d1": d1, "d2": d2, "nearest": nearest, "sorted": np.sort(d_tf, axis=1)}
    if test is not None:
        d_test = cdist(test.astype(np.float64), train, name)
        out["d_test"] = d_test.min(axis=1)
        out["test_d2"] = d_tt.min(axis=1)[d_test.argmin(axis=1)]
    return out


# ----------------------------------------------------------------------------- nearest_neighbors


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_exact_knn_matches_sklearn_brute_force(metric):
    x = _clustered(0, 1500, 32)
    q = _clustered(1, 300, 32)
    res = nearest_neighbors(q, x, 4, metric=metric, block_size=256, progress=False)
    nn = NearestNeighbors(n_neighbors=4, algorithm="brute", metric="euclidean" if metric == "l2" else "cosine")
    d_ref, i_ref = nn.fit(x.astype(np.float64)).kneighbors(q.astype(np.float64))
    np.testing.assert_array_equal(res.indices, i_ref)
    np.testing.assert_allclose(res.distances, d_ref, rtol=1e-6, atol=1e-12)
    frame = res.to_frame()
    assert len(frame) == 300 * 4
    np.testing.assert_array_equal(frame["index"].to_numpy().reshape(300, 4), i_ref)
    assert frame["rank"].min() == 1 and frame["rank"].max() == 4


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.slow
def test_ivf_exhaustive_equals_exact_and_scans_agree(metric):
    x = _clustered(2, 3000, 24)
    q = _clustered(3, 400, 24)
    exact = nearest_neighbors(q, x, 5, metric=metric, progress=False)
    results = {}
    for scan in ("blas", "faiss"):
        # nprobe = nlist searches every cell: an exhaustive search, so the answer is exact.
        full = nearest_neighbors(
            q, x, 5, metric=metric, backend="faiss-ivf", nlist=20, nprobe=20, ivf_scan=scan, progress=False
        )
        np.testing.assert_array_equal(full.indices, exact.indices)
        np.testing.assert_allclose(full.distances, exact.distances, rtol=1e-12)
        results[scan] = nearest_neighbors(
            q, x, 5, metric=metric, backend="faiss-ivf", nlist=50, nprobe=2, ivf_scan=scan, progress=False
        )
    # same trained cells (same seed), same probed cells: same candidates, same neighbours
    np.testing.assert_array_equal(results["blas"].indices, results["faiss"].indices)
    np.testing.assert_allclose(results["blas"].distances, results["faiss"].distances, rtol=1e-12)
    assert results["blas"].params["nprobe"] == 2 and results["blas"].params["nlist"] == 50


def test_ivf_blas_scan_merges_large_cells_in_chunks(monkeypatch):
    x = _clustered(15, 2000, 16)
    q = _clustered(16, 300, 16)
    exact = nearest_neighbors(q, x, 6, metric="l2", progress=False)
    monkeypatch.setattr(neighbors_module, "_CELL_ROWS", 37)  # every cell split in chunks of 37 rows
    monkeypatch.setattr(neighbors_module, "_QUERY_CHUNK", 100)
    full = nearest_neighbors(q, x, 6, metric="l2", backend="faiss-ivf", nlist=10, nprobe=10, progress=False)
    np.testing.assert_array_equal(full.indices, exact.indices)
    np.testing.assert_allclose(full.distances, exact.distances, rtol=1e-12)


def test_approximate_backends_recall_on_clustered_data():
    x = _clustered(4, 5000, 48, n_centres=40, spread=2.0)
    q = _clustered(5, 500, 48, n_centres=40, spread=2.0)
    exact = nearest_neighbors(q, x, 3, metric="cosine", progress=False)
    ivf = nearest_neighbors(q, x, 3, backend="faiss-ivf", metric="cosine", progress=False)
    hnsw = nearest_neighbors(q, x, 3, backend="faiss-hnsw", metric="cosine", progress=False)
    # measured with the default parameters: IVF (nlist 71, nprobe 8) recall@1 0.972, recall@3 0.978;
    # HNSW (M 32, ef_search 128) recall@1 0.984, recall@3 0.981
    assert ivf.params["nlist"] == 71 and ivf.params["nprobe"] == 8
    assert neighbor_recall(ivf.distances[:, :1], exact.distances) >= 0.93
    assert neighbor_recall(ivf, exact) >= 0.93
    assert neighbor_recall(hnsw.distances[:, :1], exact.distances) >= 0.95
    assert neighbor_recall(hnsw, exact) >= 0.95
    # every returned distance is exact for the returned row, whatever the backend
    for res in (ivf, hnsw):
        ref = cdist(q.astype(np.float64), x.astype(np.float64), "cosine")
        np.testing.assert_allclose(np.take_along_axis(ref, res.indices, axis=1), res.distances, rtol=1e-9, atol=1e-12)
        assert np.all(np.diff(res.distances, axis=1) >= 0)


@pytest.mark.parametrize("backend", ["exact", "faiss-ivf"])
def test_exclude_self(backend):
    x = _clustered(6, 800, 16)
    x[10] = x[11]  # a duplicate pair: each is the other's neighbour at distance 0
    res = nearest_neighbors(x, x, 2, metric="l2", backend=backend, exclude_self=True, nprobe=None, progress=False)
    assert not np.any(res.indices == np.arange(800)[:, None])
    d = cdist(x.astype(np.float64), x.astype(np.float64))
    np.fill_diagonal(d, np.inf)
    ref = np.sort(d, axis=1)[:, :2]
    if backend == "exact":
        np.testing.assert_allclose(res.distances, ref, rtol=1e-10, atol=1e-12)
    else:
        assert neighbor_recall(res.distances[:, :1], ref) >= 0.95
    assert res.indices[10, 0] == 11 and res.distances[10, 0] == 0.0


def test_neighbor_recall_counts_ties_as_found():
    exact = np.array([[0.0, 1.0], [0.5, 0.6]])
    assert neighbor_recall(np.array([[0.0], [0.5]]), exact) == 1.0
    assert neighbor_recall(np.array([[0.0, 1.0], [0.5, 0.7]]), exact) == 0.75
    with pytest.raises(ValueError, match="k <= k'"):
        neighbor_recall(np.zeros((2, 3)), exact)


def test_nearest_neighbors_bad_inputs(monkeypatch):
    x = np.random.default_rng(0).normal(size=(50, 8))
    with pytest.raises(ValueError, match="metric"):
        nearest_neighbors(x, x, metric="manhattan", progress=False)
    with pytest.raises(ValueError, match="backend"):
        nearest_neighbors(x, x, backend="annoy", progress=False)
    with pytest.raises(ValueError, match="different feature dimensions"):
        nearest_neighbors(x[:, :4], x, progress=False)
    with pytest.raises(ValueError, match="k=51"):
        nearest_neighbors(x, x, 51, progress=False)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        nearest_neighbors(x, x, 0, progress=False)
    with pytest.raises(ValueError, match="NaN"):
        nearest_neighbors(np.full((2, 8), np.nan), x, progress=False)
    with pytest.raises(ValueError, match="shape"):
        nearest_neighbors(np.zeros(8), x, progress=False)
    with pytest.raises(ValueError, match="all-zero row"):
        nearest_neighbors(np.zeros((1, 8)), x, metric="cosine", backend="faiss-ivf", progress=False)
    with pytest.raises(ValueError, match="nlist"):
        nearest_neighbors(x, x, backend="faiss-ivf", nlist=60, progress=False)
    with pytest.raises(ValueError, match="nprobe"):
        nearest_neighbors(x, x, backend="faiss-ivf", nprobe=0, progress=False)
    with pytest.raises(ValueError, match="exclude_self"):
        nearest_neighbors(x[:10], x, exclude_self=True, progress=False)
    with pytest.raises(TypeError, match="progress"):
        nearest_neighbors(x, x, backend="faiss-ivf", progress="yes")
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` raise ImportError
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        nearest_neighbors(x, x, backend="faiss-ivf", progress=False)
    with pytest.raises(ImportError, match="backend='exact'"):
        nearest_neighbors(x, x, backend="faiss-hnsw", progress=False)
    assert nearest_neighbors(x, x, 1, threads=1, progress=False).indices.shape == (50, 1)


# ----------------------------------------------------------------------------- report vs references


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_report_matches_naive_reference(metric):
    rng = np.random.default_rng(7)
    train = _clustered(7, 600, 20)
    train[-20:] = train[:20]  # duplicated training rows: d2 = 0 for them
    fake = _clustered(8, 250, 20)
    fake[:30] = train[rng.integers(0, 600, 30)] + 1e-3 * rng.normal(size=(30, 20))
    fake[30:35] = train[:5]  # exact copies of duplicated rows: d1 = d2 = 0, ratio 0, not authentic
    test = _clustered(9, 400, 20)
    rep = memorization_report(train, fake, test, k=3, metric=metric, block_size=128, progress=False)
    ref = _naive_report(train, fake, test, metric)
    np.testing.assert_allclose(rep.distances, ref["sorted"][:, :3], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rep.train_nn_distance, ref["d2"], rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(rep.authentic, ref["d2"] < ref["d1"])
    assert np.all(rep.ratio[30:35] == 0) and not rep.authentic[30:35].any()
    np.testing.assert_allclose(rep.test_distance, ref["d_test"], rtol=1e-10, atol=1e-12)
    t = np.quantile(ref["d_test"], 0.01)
    assert rep.criterion == "distance" and rep.quantile == 0.01
    np.testing.assert_allclose(rep.threshold, t, rtol=1e-10)
    np.testing.assert_array_equal(rep.likely_copy, ref["d1"] <= rep.threshold)
    assert rep.test_flag_rate == np.mean(rep.test_distance <= rep.threshold)
    assert rep.test_auth_pct == pytest.approx(100 * np.mean(ref["test_d2"] < ref["d_test"]))
    assert rep.likely_copy[:35].all()
    if metric == "l2":  # AuthPct equals the metric module's (dgm-eval convention)
        auth = authenticity(train, fake)
        assert rep.auth_pct == auth.auth_pct
        np.testing.assert_array_equal(rep.authentic, auth.authentic)


def test_report_without_test_uses_ratio_and_with_threshold_is_monotone():
    train = _clustered(10, 700, 12)
    fake = _clustered(11, 300, 12)
    fake[:20] = train[:20] + 0.01
    rep = memorization_report(train, fake, k=2, progress=False)
    ref = _naive_report(train, fake)
    assert rep.criterion == "ratio" and rep.threshold == 1.0 and rep.test_flag_rate is None
    np.testing.assert_array_equal(rep.likely_copy, ~(ref["d2"] < ref["d1"]))
    assert rep.copy_rate == pytest.approx(1 - rep.auth_pct / 100)
    counts = [rep.with_threshold(t).n_flagged for t in (0.0, 0.1, 0.5, 1.0, 2.0, 1e9)]
    assert counts == sorted(counts) and counts[-1] == 300 and counts[3] == rep.n_flagged
    dist_counts = []
    for t in np.linspace(0, ref["d1"].max(), 7):
        r = rep.with_threshold(t, criterion="distance")
        assert r.n_flagged == int(np.sum(ref["d1"] <= t))
        dist_counts.append(r.n_flagged)
    assert dist_counts == sorted(dist_counts) and dist_counts[-1] == 300
    # the original is untouched and the neighbour table is shared, not rebuilt
    assert rep.criterion == "ratio"
    assert rep.with_threshold(0.5).tables["neighbors"] is rep.tables["neighbors"]
    with pytest.raises(ValueError, match="calibrated_threshold needs a test set"):
        rep.calibrated_threshold()


def test_report_faiss_backend_agrees_with_exact():
    train = _clustered(12, 3000, 32, n_centres=30, spread=3.0)
    fake = _clustered(13, 400, 32, n_centres=30, spread=3.0)
    fake[:40] = train[:40] + 0.01
    test = _clustered(14, 500, 32, n_centres=30, spread=3.0)
    exact = memorization_report(train, fake, test, k=2, progress=False)
    approx = memorization_report(
        train, fake, test, k=2, backend="faiss-ivf", backend_options={"nlist": 30, "nprobe": 6}, progress=False
    )
    assert approx.backend == "faiss-ivf" and approx.params["nprobe"] == 6
    # measured: recall@1 0.99, identical flags and threshold (the planted copies decide them)
    assert np.mean(approx.distances[:, 0] <= exact.distances[:, 0] * (1 + 1e-9)) >= 0.95
    assert np.mean(approx.likely_copy == exact.likely_copy) >= 0.98
    assert approx.threshold == pytest.approx(exact.threshold, rel=0.05)
    assert approx.likely_copy[:40].all()


def test_report_bad_inputs():
    x = np.random.default_rng(0).normal(size=(40, 6))
    with pytest.raises(ValueError, match="at least 2 samples"):
        memorization_report(x[:1], x, progress=False)
    with pytest.raises(ValueError, match="different feature dimensions"):
        memorization_report(x, x[:, :3], progress=False)
    with pytest.raises(ValueError, match="train and test"):
        memorization_report(x, x, x[:, :3], progress=False)
    with pytest.raises(ValueError, match="k=41"):
        memorization_report(x, x, k=41, progress=False)
    with pytest.raises(ValueError, match="quantile"):
        memorization_report(x, x, x, quantile=1.5, progress=False)
    with pytest.raises(ValueError, match="threshold"):
        memorization_report(x, x, threshold=-1.0, progress=False)
    with pytest.raises(ValueError, match="metric"):
        memorization_report(x, x, metric="hamming", progress=False)
    with pytest.raises(ValueError, match="backend"):
        memorization_report(x, x, backend="scann", progress=False)
    with pytest.raises(TypeError, match="backend_options"):
        memorization_report(x, x, backend_options=[("nlist", 4)], progress=False)
    with pytest.raises(ValueError, match="NaN"):
        memorization_report(x, np.full((3, 6), np.inf), progress=False)
    rep = memorization_report(x, x[:5] + 0.1, k=1, progress=False)
    with pytest.raises(ValueError, match="criterion"):
        rep.with_threshold(0.5, criterion="rank")
    with pytest.raises(ValueError, match="threshold"):
        rep.with_threshold(float("nan"))
    with pytest.raises(ValueError, match="non-negative"):
        rep.most_suspicious(-1)


def test_docstring_examples():
    for module in (neighbors_module, memorization_module):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0, module.__name__


# ----------------------------------------------------------------------------- planted copies in real images


def _shift(img, rng):
    """1 px translation along a random axis, the vacated row/column left black (background)."""
    out = np.zeros_like(img)
    dst, src = (slice(1, None), slice(None, -1)) if rng.integers(2) else (slice(None, -1), slice(1, None))
    if rng.integers(2):
        out[dst] = img[src]
    else:
        out[:, dst] = img[:, src]
    return out


def _crop(img, rng):
    """1 px cut off a random side, resized back to 28 x 28."""
    box = [0, 0, 28, 28]  # left, upper, right, lower
    side = int(rng.integers(4))
    box[side] += 1 if side < 2 else -1
    return np.asarray(Image.fromarray(img).crop(tuple(box)).resize((28, 28), Image.Resampling.BILINEAR))


def _noise(img, rng):
    return np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)


def _brightness(img, rng):
    return np.clip(img * rng.uniform(0.7, 0.9), 0, 255).astype(np.uint8)


def _flip(img, rng):
    return img[:, ::-1].copy()


TRANSFORMS = {"shift": _shift, "crop": _crop, "noise": _noise, "brightness": _brightness, "flip": _flip}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Fashion-MNIST: 4000 training images; 5 x 60 transformed training copies + 300 new (test split)
    images as the generated set; 1000 other test-split images as the held-out set. ``pixels`` features
    (16 px, D = 768) extracted into caches with :func:`workbench.cache.extract`."""
    rng = np.random.default_rng(0)
    train_img, _ = load_fashion_mnist("train")
    test_img, _ = load_fashion_mnist("test")
    train_img = train_img[rng.choice(len(train_img), 4000, replace=False)]
    order = rng.permutation(len(test_img))
    new_img, heldout_img = test_img[order[:300]], test_img[order[300:1300]]
    sources = rng.choice(4000, size=60 * len(TRANSFORMS), replace=False)
    copies, kinds = [], []
    for j, (name, fn) in enumerate(TRANSFORMS.items()):
        for s in sources[60 * j : 60 * (j + 1)]:
            copies.append(fn(train_img[s], rng))
            kinds.append(name)
    fake_img = np.concatenate([np.stack(copies), new_img])
    out = tmp_path_factory.mktemp("memo_caches")
    caches = {
        name: extract(
            ArraySource(imgs, name=name),
            "pixels",
            out=out,
            progress=False,
            num_workers=0,
            batch_size=512,
            thumbnails=16,
        )
        for name, imgs in (("train", train_img), ("fake", fake_img), ("heldout", heldout_img))
    }
    return {"caches": caches, "sources": sources, "kinds": np.array(kinds + ["new"] * 300), "n_copies": len(copies)}


def _per_kind(values, kinds):
    return {k: float(np.mean(values[: len(kinds)][kinds[: len(values)] == k])) for k in TRANSFORMS}


def test_planted_copies_in_fashion_mnist(planted):
    c, kinds, n_copies = planted["caches"], planted["kinds"], planted["n_copies"]
    is_copy = np.arange(len(kinds)) < n_copies
    # cosine: a brightness change (a scaling of the pixels) leaves the features' direction unchanged
    rep = memorization_report(c["train"], c["fake"], c["heldout"], k=3, metric="cosine", progress=False)
    recall = _per_kind(rep.likely_copy, kinds)
    source_found = _per_kind(rep.train_rows[:n_copies, 0] == planted["sources"], kinds[:n_copies])
    # Measured at the 1% test quantile: noise 0.917, brightness 1.0, crop 0.233, shift 0.0, flip 0.033;
    # new images flagged 0.010, test images 0.010. Raw pixels are not shift/flip invariant: most
    # 1 px shifted and cropped copies have their source as nearest neighbour (shift 0.483, crop
    # 0.883) but lie farther from it than 1% of genuinely new images lie from theirs.
    assert recall["noise"] >= 0.85 and recall["brightness"] >= 0.9
    assert source_found["shift"] >= 0.35 and source_found["crop"] >= 0.75
    assert recall["flip"] <= 0.15  # documents the extractor's blind spot
    assert rep.likely_copy[~is_copy].mean() <= 0.03
    assert rep.test_flag_rate == pytest.approx(0.01, abs=0.002)
    # flagged copies point at their true source (measured 0.992)
    flagged = np.flatnonzero(rep.likely_copy[:n_copies])
    assert np.mean(rep.train_rows[flagged, 0] == planted["sources"][flagged]) >= 0.98
    # most suspicious first: the top 100 are planted copies (measured: 100 of 100); ids and
    # thumbnails come from the caches
    top = rep.most_suspicious(100)
    assert is_copy[top["fake_row"].to_numpy()].mean() >= 0.97
    assert top["fake_id"].str.startswith("fake[").all() and top["train_id"].str.startswith("train[").all()
    np.testing.assert_array_equal(top["train_thumbnail"].to_numpy(dtype=np.int64), top["train_row"].to_numpy())
    assert rep.thumbnail("train", int(top["train_row"][0])).shape == (16, 16, 3)
    # The test set's flag rate estimates the false-positive rate on genuinely new images at every
    # threshold (measured differences <= 0.033 for 300 new images), and higher thresholds flag
    # more on both sets (measured crop recall 0.60 at the 20% quantile).
    n_flagged, test_rates = [], []
    for q in (0.0, 0.01, 0.05, 0.1, 0.2):
        r = rep.with_threshold(rep.calibrated_threshold(q))
        assert abs(r.likely_copy[~is_copy].mean() - r.test_flag_rate) <= 0.06
        n_flagged.append(r.n_flagged)
        test_rates.append(r.test_flag_rate)
    assert n_flagged == sorted(n_flagged) and test_rates == sorted(test_rates) and n_flagged[0] < n_flagged[-1]
    assert _per_kind(r.likely_copy, kinds)["crop"] >= 0.45
    # The ratio criterion (the fallback without a test set) catches more copies (measured crop 0.833,
    # shift 0.3) but flags about a quarter of genuinely new images (measured 0.257; test 0.25).
    ratio = rep.with_threshold(1.0, criterion="ratio")
    assert _per_kind(ratio.likely_copy, kinds)["crop"] >= 0.7
    assert ratio.likely_copy[~is_copy].mean() >= 0.15
    assert ratio.test_flag_rate == pytest.approx(1 - rep.test_auth_pct / 100)


def test_flip_invariant_features_find_flips(planted):
    """A fixed flip-invariant extractor defined here on the pixel features P: f(x) = P(x) + mirror(P(x))."""

    def flip_invariant(cache):
        p = np.asarray(cache.features).reshape(-1, 3, 16, 16)
        return (p + p[..., ::-1]).reshape(len(p), -1)

    c, kinds, n_copies = planted["caches"], planted["kinds"], planted["n_copies"]
    rep = memorization_report(
        flip_invariant(c["train"]),
        flip_invariant(c["fake"]),
        flip_invariant(c["heldout"]),
        k=1,
        metric="cosine",
        progress=False,
    )
    recall = _per_kind(rep.likely_copy, kinds)
    source_found = _per_kind(rep.train_rows[:n_copies, 0] == planted["sources"], kinds[:n_copies])
    # measured: flipped copies flagged 0.40 (0.033 with plain pixels), their source is the nearest
    # neighbour for 0.983 of them (0.233 with plain pixels); new images flagged 0.007
    assert recall["flip"] >= 0.25 and source_found["flip"] >= 0.85
    assert rep.likely_copy[n_copies:].mean() <= 0.03
