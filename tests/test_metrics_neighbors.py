"""Blocked exact nearest-neighbour engine vs sklearn brute force and float64 naive references.

Tolerances: distances are float64 from ``sum((q - x)^2)``; sklearn's brute force (float64
input) computes them with the norm expansion, so they agree to ``rtol=1e-10`` (observed ~1e-14).
Indices must equal sklearn's except between tied neighbours (ties are checked via distances).
Counts must equal a float64 full-matrix reference exactly.

Every test runs four times: the candidate search in float32 and in bfloat16 (the fixture sets
``$WORKBENCH_SEARCH_DTYPE``), each with the native tile kernels and with their numpy fallback
(``$WORKBENCH_NATIVE_TILES=0``): all four must give the same answers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from sklearn.neighbors import NearestNeighbors

from workbench.metrics import neighbors, tile_kernels
from workbench.metrics.neighbors import count_within_radii, knn, kth_neighbor_radii, max_radius_ratio

RTOL = 1e-10


@pytest.fixture(autouse=True, params=["native", "numpy"])
def tile_passes(request, monkeypatch):
    if request.param == "numpy":
        monkeypatch.setenv(tile_kernels.NATIVE_ENV, "0")
    return request.param


@pytest.fixture(autouse=True, params=["float32", "bfloat16"])
def search_dtype(request, monkeypatch):
    monkeypatch.setenv(neighbors.SEARCH_DTYPE_ENV, request.param)
    return request.param


def _data(seed: int, n: int, d: int, offset: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)) + offset).astype(np.float32)


def _assert_knn_matches(dist, idx, ref_dist, ref_idx, query, index, metric="euclidean"):
    np.testing.assert_allclose(dist, ref_dist, rtol=RTOL, atol=1e-12)
    # every returned index is at the returned distance (so ties are valid answers) ...
    own = cdist(query.astype(np.float64), index.astype(np.float64), metric=metric)
    np.testing.assert_allclose(np.take_along_axis(own, idx, axis=1), dist, rtol=RTOL, atol=1e-12)
    # ... and indices differ from sklearn's only where distances tie
    differ = idx != ref_idx
    assert np.all(np.isclose(dist[differ], ref_dist[differ], rtol=1e-9))
    assert (idx == ref_idx).mean() > 0.99 or np.any(np.diff(ref_dist, axis=1) == 0)


@pytest.mark.parametrize("k", [1, 5])
@pytest.mark.parametrize("block_size", [64, None])
def test_knn_l2_matches_sklearn(k, block_size):
    q, x = _data(0, 300, 48), _data(1, 500, 48)
    dist, idx = knn(q, x, k, block_size=block_size)
    ref = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(x.astype(np.float64))
    ref_dist, ref_idx = ref.kneighbors(q.astype(np.float64))
    assert dist.shape == (300, k) and idx.shape == (300, k) and idx.dtype == np.int64
    _assert_knn_matches(dist, idx, ref_dist, ref_idx, q, x)
    assert np.all(np.diff(dist, axis=1) >= 0)


def test_knn_cosine_matches_sklearn():
    q, x = _data(2, 200, 32, offset=0.5), _data(3, 400, 32, offset=0.5)
    dist, idx = knn(q, x, 4, metric="cosine", block_size=100)
    ref = NearestNeighbors(n_neighbors=4, algorithm="brute", metric="cosine").fit(x.astype(np.float64))
    ref_dist, ref_idx = ref.kneighbors(q.astype(np.float64))
    _assert_knn_matches(dist, idx, ref_dist, ref_idx, q, x, metric="cosine")


@pytest.mark.parametrize("same_object", [True, False])
def test_knn_exclude_self_matches_sklearn(same_object):
    x = _data(4, 450, 40)
    index = x if same_object else x.copy()  # symmetric tile path vs streamed path with a self mask
    dist, idx = knn(x, index, 3, exclude_self=True, block_size=128)
    ref = NearestNeighbors(n_neighbors=4, algorithm="brute").fit(x.astype(np.float64))
    ref_dist, ref_idx = ref.kneighbors(x.astype(np.float64))
    assert not np.any(idx == np.arange(450)[:, None])
    _assert_knn_matches(dist, idx, ref_dist[:, 1:], ref_idx[:, 1:], x, x)


def test_knn_streams_a_memmap_index(tmp_path):
    q, x = _data(5, 100, 16), _data(6, 1000, 16)
    mm = np.lib.format.open_memmap(tmp_path / "index.npy", mode="w+", dtype=np.float32, shape=x.shape)
    mm[:] = x
    mm.flush()
    index = np.load(tmp_path / "index.npy", mmap_mode="r")
    calls = []
    dist, idx = knn(q, index, 2, block_size=256, progress=lambda e: calls.append((e.done, e.total)))
    ref_dist, ref_idx = knn(q, x, 2)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(dist, ref_dist)
    assert calls[-1] == (4, 4) and len(calls) == 4  # 1 query block x 4 index blocks


def test_knn_duplicates_and_ties():
    # Integer lattice points: all distances are exact in float64, many exact ties and duplicates.
    rng = np.random.default_rng(7)
    x = rng.integers(0, 3, size=(300, 6)).astype(np.float32)
    dist, idx = knn(x, x, 5, exclude_self=True, block_size=64)
    full = cdist(x.astype(np.float64), x.astype(np.float64))
    np.fill_diagonal(full, np.inf)
    np.testing.assert_array_equal(dist, np.sort(full, axis=1)[:, :5])
    np.testing.assert_array_equal(np.take_along_axis(full, idx, axis=1), dist)
    assert np.any(dist[:, 0] == 0)  # 300 points on 3^6 = 729 lattice sites: duplicates exist...
    assert not np.any(idx == np.arange(300)[:, None])  # ...yet never the point itself


def test_knn_float64_fallback_separates_what_float32_cannot():
    # Index points on a unit sphere whose radii differ by ~1e-9: float32 sees all of them at the
    # same distance from the origin, so the certificate fails and the float64 search must decide.
    rng = np.random.default_rng(8)
    directions = rng.normal(size=(200, 8))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    radii = 1.0 + 1e-9 * rng.permutation(200)
    index = directions * radii[:, None]
    query = np.zeros((3, 8))
    query[1:] = 1e-12
    dist, idx = knn(query, index, 3, block_size=64)
    full = cdist(query, index)
    np.testing.assert_array_equal(idx, np.argsort(full, axis=1, kind="stable")[:, :3])
    np.testing.assert_allclose(dist, np.sort(full, axis=1)[:, :3], rtol=1e-15)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_kth_neighbor_radii_vs_naive(k):
    x = _data(9, 400, 24)
    radii = kth_neighbor_radii(x, k, block_size=100)
    naive = np.sort(cdist(x.astype(np.float64), x.astype(np.float64)), axis=1)[:, k]
    np.testing.assert_allclose(radii, naive, rtol=RTOL)


@pytest.mark.parametrize("k", [1, 4, 9])
def test_kth_neighbor_radii_exact_with_ties_and_duplicates(k):
    # Integer lattice points (exact distances, many ties and duplicates) in many tiles: only the
    # candidates near the k-th are recomputed in float64; the radius must still equal the exact
    # (k+1)-th smallest distance with the point itself counted.
    rng = np.random.default_rng(31)
    x = rng.integers(0, 4, size=(700, 7)).astype(np.float32)
    full = cdist(x.astype(np.float64), x.astype(np.float64))
    want = np.sort(full, axis=1)[:, k]
    for block_size in (64, 300, 4096):
        np.testing.assert_array_equal(kth_neighbor_radii(x, k, block_size=block_size), want)


@pytest.mark.peers
@pytest.mark.parametrize("k", [1, 3, 5])
def test_kth_neighbor_radii_vs_prdc(k):
    compute_nearest_neighbour_distances = pytest.importorskip("prdc.prdc").compute_nearest_neighbour_distances
    x = _data(9, 400, 24)
    radii = kth_neighbor_radii(x, k, block_size=100)
    # prdc: (k+1)-th smallest distance with the point itself included, float32 output
    np.testing.assert_allclose(radii, compute_nearest_neighbour_distances(x, k), rtol=1e-6)


def _naive_counts(q, x, rx, rq, inclusive):
    d = cdist(q.astype(np.float64), x.astype(np.float64))
    inside_x = d <= rx[None, :] if inclusive else d < rx[None, :]
    inside_q = d <= rq[:, None] if inclusive else d < rq[:, None]
    return inside_x.sum(1), inside_x.sum(0), inside_q.sum(0), inside_q.sum(1)


def _check_counts(q, x, rx, rq, inclusive, block_size):
    got = count_within_radii(q, x, index_radii=rx, query_radii=rq, inclusive=inclusive, block_size=block_size)
    want = _naive_counts(q, x, rx, rq, inclusive)
    np.testing.assert_array_equal(got.query_in_index_balls, want[0])
    np.testing.assert_array_equal(got.index_ball_hits, want[1])
    np.testing.assert_array_equal(got.index_in_query_balls, want[2])
    np.testing.assert_array_equal(got.query_ball_hits, want[3])
    assert got.inclusive is inclusive


@pytest.mark.parametrize("inclusive", [False, True])
@pytest.mark.parametrize("quantile", [0.02, 0.5])  # small balls (pair-by-pair) and large (dense counting)
def test_count_within_radii_exact_vs_naive(inclusive, quantile):
    q, x = _data(10, 300, 32), _data(11, 350, 32)
    rng = np.random.default_rng(12)
    d = cdist(q.astype(np.float64), x.astype(np.float64))
    rx = np.quantile(d, quantile, axis=0) * rng.uniform(0.9, 1.1, size=350)
    rq = np.quantile(d, quantile + 0.01, axis=1) * rng.uniform(0.9, 1.1, size=300)
    # radii 1e-9 (relative) above or below a pair distance: float32 cannot tell, float64 must
    side = np.where(rng.random(40) < 0.5, -1e-9, 1e-9)
    rx[:40] = d[np.arange(40), np.arange(40)] * (1 + side)
    rq[:40] = d[np.arange(40), np.arange(40) + 100] * (1 - side)
    _check_counts(q, x, rx, rq, inclusive, block_size=128)


@pytest.mark.parametrize("inclusive", [False, True])
def test_count_within_radii_exact_ties(inclusive):
    # Integer lattice: distances are exact, so radii equal to pair distances are exact ties where
    # < and <= disagree.
    rng = np.random.default_rng(22)
    q = rng.integers(0, 4, size=(200, 5)).astype(np.float32)
    x = rng.integers(0, 4, size=(250, 5)).astype(np.float32)
    d = cdist(q.astype(np.float64), x.astype(np.float64))
    rx = d[rng.integers(0, 200, size=250), np.arange(250)]
    rq = d[np.arange(200), rng.integers(0, 250, size=200)]
    _check_counts(q, x, rx, rq, inclusive, block_size=64)
    strict = _naive_counts(q, x, rx, rq, False)[0]
    assert np.any(_naive_counts(q, x, rx, rq, True)[0] != strict)  # the ties matter


@pytest.mark.parametrize("inclusive", [False, True])
def test_count_within_radii_when_few_rows_and_columns_reach(inclusive):
    # Most balls are empty (radius below every distance) and a few reach: only those rows and
    # columns of a tile are compared; some radii sit exactly on a pair distance (lattice data).
    rng = np.random.default_rng(32)
    q = rng.integers(0, 5, size=(500, 6)).astype(np.float32)
    x = rng.integers(0, 5, size=(450, 6)).astype(np.float32) + 0.5
    d = cdist(q.astype(np.float64), x.astype(np.float64))
    rx = np.full(450, 0.1)
    rq = np.full(500, 0.1)
    few_x, few_q = rng.choice(450, 12, replace=False), rng.choice(500, 12, replace=False)
    rx[few_x] = d[rng.integers(0, 500, size=12), few_x]  # exactly a pair distance: ties
    rq[few_q] = np.quantile(d[few_q], 0.05, axis=1)
    _check_counts(q, x, rx, rq, inclusive, block_size=128)
    assert (_naive_counts(q, x, rx, rq, inclusive)[1] > 0).sum() <= 12  # the case is the sparse one


def test_count_within_radii_only_one_side():
    q, x = _data(13, 50, 8), _data(14, 60, 8)
    got = count_within_radii(q, x, index_radii=np.full(60, 3.0))
    assert got.index_in_query_balls is None and got.query_ball_hits is None
    want = _naive_counts(q, x, np.full(60, 3.0), np.zeros(50), False)
    np.testing.assert_array_equal(got.query_in_index_balls, want[0])


def test_max_radius_ratio_vs_naive():
    q, x = _data(15, 200, 16), _data(16, 300, 16)
    radii = np.random.default_rng(17).uniform(1.0, 4.0, size=300)
    ratio, arg = max_radius_ratio(q, x, radii, eps=1e-5, block_size=64)
    full = radii[None, :] / np.sqrt(cdist(q.astype(np.float64), x.astype(np.float64)) ** 2 + 1e-5)
    np.testing.assert_allclose(ratio, full.max(axis=1), rtol=1e-12)
    np.testing.assert_array_equal(arg, full.argmax(axis=1))


def test_max_radius_ratio_exact_copy_is_finite():
    x = _data(18, 50, 8)
    ratio, arg = max_radius_ratio(x[:5], x, np.ones(50), eps=1e-5)
    np.testing.assert_array_equal(arg, np.arange(5))
    np.testing.assert_allclose(ratio, 1 / np.sqrt(1e-5), rtol=1e-12)


def test_bad_inputs_raise_clear_errors():
    q, x = _data(19, 20, 4), _data(20, 30, 4)
    with pytest.raises(ValueError, match="different feature dimensions"):
        knn(q, _data(21, 30, 5), 1)
    with pytest.raises(ValueError, match="k=31"):
        knn(q, x, 31)
    with pytest.raises(ValueError, match="k=30"):
        knn(x, x, 30, exclude_self=True)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        knn(q, x, 0)
    with pytest.raises(ValueError, match="metric"):
        knn(q, x, 1, metric="manhattan")
    with pytest.raises(ValueError, match="exclude_self"):
        knn(q, x, 1, exclude_self=True)
    with pytest.raises(ValueError, match="block_size"):
        knn(q, x, 1, block_size=0)
    bad = q.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="query contains NaN"):
        knn(bad, x, 1)
    zero = x.copy()
    zero[7] = 0
    with pytest.raises(ValueError, match="all-zero row"):
        knn(q, zero, 1, metric="cosine")
    with pytest.raises(ValueError, match="index_radii must have shape"):
        count_within_radii(q, x, index_radii=np.ones(5))
    with pytest.raises(ValueError, match="finite and >= 0"):
        count_within_radii(q, x, query_radii=-np.ones(20))
    with pytest.raises(ValueError, match="index_radii and/or query_radii"):
        count_within_radii(q, x)
    with pytest.raises(ValueError, match="eps"):
        max_radius_ratio(q, x, np.ones(30), eps=0.0)
    with pytest.raises(TypeError, match="progress"):
        knn(q, x, 1, progress="yes")


def test_knn_falls_back_from_bfloat16_to_float32(monkeypatch, search_dtype):
    # Index points at distances 1 + i * 1e-4 from the query: bf16 (~3 significant digits) cannot
    # order them and its certificate fails; float32 can, so the chain stops there.
    rng = np.random.default_rng(30)
    directions = rng.normal(size=(400, 16))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    index = directions * (1.0 + 1e-4 * rng.permutation(400))[:, None]
    query = np.zeros((4, 16))
    seen = []
    original = neighbors._knn_sq_subset

    def spy(*args):
        seen.append(args[7])  # the search dtype
        return original(*args)

    monkeypatch.setattr(neighbors, "_knn_sq_subset", spy)
    dist, idx = knn(query, index, 5, block_size=128)
    full = cdist(query, index)
    np.testing.assert_array_equal(idx, np.argsort(full, axis=1, kind="stable")[:, :5])
    np.testing.assert_allclose(dist, np.sort(full, axis=1)[:, :5], rtol=1e-14)
    assert seen == ([torch.float32] if search_dtype == "bfloat16" else [])


@pytest.mark.parametrize("dim", [7, 256, 2048])
def test_bfloat16_tile_error_within_the_stated_bound(dim, search_dtype):
    # Heavy-tailed, offset, mixed-scale features: the worst case the bound has to cover.
    rng = np.random.default_rng(dim)
    scale = np.exp(rng.normal(0, 2, size=dim))
    q = rng.standard_t(2, size=(300, dim)) * scale + 5 * scale
    x = rng.standard_t(2, size=(400, dim)) * scale + 5 * scale
    centre = q.mean(axis=0)
    qo = neighbors._operand(q, centre, torch.bfloat16)
    xo = neighbors._operand(x, centre, torch.bfloat16)
    tile = neighbors._sq_dist_tile(qo.x, qo.sq, xo.x, xo.sq, neighbors._Workspace()).numpy().astype(np.float64)
    exact = cdist(q, x, "sqeuclidean")
    rho = max(qo.rho, xo.rho)
    assert 2.0**-10 < rho <= 2.0**-8 + 2.0**-23  # measured operand rounding, never above the worst case
    bound = neighbors._error_coefficient(dim, torch.bfloat16, rho) * (qo.sq64[:, None] + xo.sq64[None, :])
    ratio = np.abs(tile - exact) / bound
    assert ratio.max() <= 1.0
    assert ratio.max() > 0.01  # the bound is not vacuous: real errors reach a visible share of it


def test_bfloat16_product_is_rounded_to_nearest_even(search_dtype):
    # The bf16 error bound assumes the float32 sum is rounded to nearest (2^-8), not truncated
    # (2^-7). Small integers make every float32 sum exact, so the product must equal RNE(sum).
    rng = np.random.default_rng(40)
    a = torch.from_numpy(rng.integers(-200, 200, size=(512, 64)).astype(np.float32)).to(torch.bfloat16)
    b = torch.from_numpy(rng.integers(-200, 200, size=(512, 64)).astype(np.float32)).to(torch.bfloat16)
    exact = a.double() @ b.double().T
    assert torch.equal(exact.float().double(), exact)
    product = torch.mm(a, b.T)
    assert torch.equal(product, exact.float().to(torch.bfloat16))
    truncated = (exact.float().view(torch.int32) & ~0xFFFF).view(torch.float32).to(torch.bfloat16)
    assert not torch.equal(product, truncated)  # the check can tell the two apart


def test_search_dtype_is_validated(monkeypatch):
    q, x = _data(31, 20, 4), _data(32, 30, 4)
    with pytest.raises(ValueError, match="search_dtype must be one of"):
        knn(q, x, 1, search_dtype="float16")
    monkeypatch.setenv(neighbors.SEARCH_DTYPE_ENV, "half")
    with pytest.raises(ValueError, match="WORKBENCH_SEARCH_DTYPE must be one of"):
        knn(q, x, 1)
    monkeypatch.delenv(neighbors.SEARCH_DTYPE_ENV)
    assert neighbors.resolve_search_dtype("auto") in (torch.float32, torch.bfloat16)
    assert neighbors.resolve_search_dtype("float32") == torch.float32
