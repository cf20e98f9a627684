"""The native tile kernels (``workbench/metrics/_tiles.c``) against numpy references.

Every kernel compares float32 values as numpy does, so top-m values, counts, band pairs and
centred rows must be *equal* to the references; only the float64 sums (squared norms, pair
distances) may differ in their last bits from numpy's summation order (``rtol=1e-15``).
The engine tests (test_metrics_neighbors.py) run every search with and without the kernels.
"""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.metrics import neighbors, tile_kernels

needs_kernels = pytest.mark.skipif(not tile_kernels.available(), reason="native tile kernels not built")


def test_kernels_are_built_where_a_compiler_is():
    # `pip install` builds them when a C compiler is there; a silently failed build would leave
    # every search on the slower numpy passes.
    if shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) is None:
        pytest.skip("no C compiler on this machine")
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        pytest.skip("no Python headers on this machine (python3-dev)")
    assert tile_kernels._module() is not None, "reinstall the package: pip install -e ."


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv(tile_kernels.NATIVE_ENV, "0")
    assert not tile_kernels.available()
    monkeypatch.setattr(neighbors.tile_kernels, "available", lambda: False)
    x = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    assert neighbors.kth_neighbor_radii(x, 2, block_size=16).shape == (40,)


def _heaps(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.full((n, m), np.inf, np.float32), np.full((n, m), -1, np.int64), np.full(n, np.inf, np.float32)


def _assert_top(vals, ids, worst, lines: np.ndarray, id_of, m: int) -> None:
    """``vals`` rows hold the m smallest of ``lines`` rows, ``ids`` point at them, ``worst`` is
    their largest, and each row is a max-heap."""
    mm = min(m, lines.shape[1])
    np.testing.assert_array_equal(np.sort(vals, axis=1)[:, :mm], np.sort(lines, axis=1)[:, :mm])
    filled = ids >= 0
    got = np.take_along_axis(lines, np.where(filled, id_of(ids), 0), axis=1)
    np.testing.assert_array_equal(np.where(filled, got, np.inf), vals)
    np.testing.assert_array_equal(worst, vals.max(axis=1))
    for child in range(1, m):
        assert np.all(vals[:, (child - 1) // 2] >= vals[:, child])


@needs_kernels
@pytest.mark.parametrize("shape", [(300, 500), (64, 2048), (7, 3), (1, 1), (900, 40)])
@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("threads", [1, 3])
def test_push_topk_keeps_the_m_smallest(shape, fused, threads, monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    rng = np.random.default_rng(sum(shape))
    rows, cols = shape
    m = 13
    first = rng.normal(size=shape).astype(np.float32) + 0.5
    second = rng.normal(size=shape).astype(np.float32)
    second[rng.random(shape) < 0.3] = 0.25  # many ties
    second[0, :] = np.inf  # a masked line
    vals, ids, worst = _heaps(rows + cols, m)
    # rows 0..rows-1 take tile rows (ids from 1000), rows rows.. take tile columns (ids from 5000)
    for tile, base in ((first, 0), (second, 100_000)):
        if fused:
            tile_kernels.push_topk(tile, vals, ids, worst, rows_to=(0, 1000 + base), cols_to=(rows, 5000 + base))
        else:
            tile_kernels.push_topk(tile, vals, ids, worst, rows_to=(0, 1000 + base))
            tile_kernels.push_topk(tile, vals, ids, worst, cols_to=(rows, 5000 + base))
    both_rows = np.concatenate([first, second], axis=1)
    both_cols = np.concatenate([first.T, second.T], axis=1)

    def row_ids(i):  # ids -> column of both_rows
        return np.where(i >= 100_000 + 1000, i - 100_000 - 1000 + cols, i - 1000)

    def col_ids(i):
        return np.where(i >= 100_000 + 5000, i - 100_000 - 5000 + rows, i - 5000)

    _assert_top(vals[:rows], ids[:rows], worst[:rows], both_rows, row_ids, m)
    _assert_top(vals[rows:], ids[rows:], worst[rows:], both_cols, col_ids, m)


@needs_kernels
def test_push_topk_fresh_rows_longer_than_the_admission_groups():
    # A first tile into empty heaps starts each row's scan at a bound from group minima; rows
    # with their m smallest bunched in one group, sorted rows and constant rows must still come
    # out exact.
    rng = np.random.default_rng(3)
    m, cols = 13, 1024
    tile = rng.normal(size=(6, cols)).astype(np.float32)
    tile[1, 100:113] = -5.0  # the m smallest in one group
    tile[2] = np.sort(tile[2])  # ascending
    tile[3] = np.sort(tile[3])[::-1]  # descending
    tile[4] = 1.5  # all tied
    tile[5, -13:] = -7.0  # in the tail
    vals, ids, worst = _heaps(6, m)
    tile_kernels.push_topk(tile, vals, ids, worst, rows_to=(0, 0))
    _assert_top(vals, ids, worst, tile, lambda i: i, m)


@needs_kernels
def test_push_topk_refuses_bad_arguments():
    vals, ids, worst = _heaps(10, 4)
    tile = np.zeros((4, 6), np.float32)
    with pytest.raises(ValueError, match="overlap"):
        tile_kernels.push_topk(tile, vals, ids, worst, rows_to=(0, 0), cols_to=(2, 0))
    with pytest.raises(ValueError, match="outside the 10 rows"):
        tile_kernels.push_topk(tile, vals, ids, worst, cols_to=(5, 0))
    with pytest.raises(ValueError, match="float32"):
        tile_kernels.push_topk(tile.astype(np.float64), vals, ids, worst, rows_to=(0, 0))
    with pytest.raises(ValueError, match="C-contiguous"):
        tile_kernels.push_topk(np.zeros((6, 4), np.float32).T, vals, ids, worst, rows_to=(0, 0))
    with pytest.raises(ValueError, match="rows_to and/or cols_to"):
        tile_kernels.push_topk(tile, vals, ids, worst)


def _reference_counts(tile, crit):
    lo = crit.lo[:, None] if crit.by_row else crit.lo[None, :]
    hi = crit.hi[:, None] if crit.by_row else crit.hi[None, :]
    sure = tile < lo
    band = (tile <= hi) & ~sure
    return sure.sum(axis=1), sure.sum(axis=0), set(zip(*np.nonzero(band), strict=True))


@needs_kernels
@pytest.mark.parametrize("shape", [(257, 300), (40, 4096), (3, 5)])
@pytest.mark.parametrize("threads", [1, 2, 5, 200])  # 200: more than the kernels split a call into
def test_count_tile_matches_numpy(shape, threads, monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    rng = np.random.default_rng(shape[0])
    tile = rng.integers(0, 40, size=shape).astype(np.float32)  # ties with the thresholds
    by_col = tile_kernels.Criterion(
        lo=rng.integers(0, 20, shape[1]).astype(np.float32),
        hi=rng.integers(20, 23, shape[1]).astype(np.float32),
        by_row=False,
    )
    by_row = tile_kernels.Criterion(
        lo=rng.integers(0, 10, shape[0]).astype(np.float32),
        hi=rng.integers(10, 12, shape[0]).astype(np.float32),
        by_row=True,
    )
    for criteria in ([by_col, by_row], [None, by_row], [by_col]):
        got = tile_kernels.count_tile(tile, criteria)
        assert len(got) == len(criteria)
        for crit, res in zip(criteria, got, strict=True):
            if crit is None:
                assert res is None
                continue
            rows, cols, band = _reference_counts(tile, crit)
            np.testing.assert_array_equal(res.row_counts, rows)
            np.testing.assert_array_equal(res.col_counts, cols)
            assert set(zip(res.band_rows.tolist(), res.band_cols.tolist(), strict=True)) == band
            assert res.band_rows.size == len(band)  # each pair once


@needs_kernels
def test_count_tile_counts_again_when_the_band_overflows(monkeypatch):
    monkeypatch.setattr(tile_kernels, "_BAND_CAPACITY", 8)
    tile = np.full((50, 60), 5.0, np.float32)
    crit = tile_kernels.Criterion(lo=np.full(50, 4.0, np.float32), hi=np.full(50, 6.0, np.float32), by_row=True)
    (res,) = tile_kernels.count_tile(tile, [crit])
    assert res is not None and res.band_rows.size == 3000  # every entry is in the band
    assert set(zip(res.band_rows.tolist(), res.band_cols.tolist(), strict=True)) == {
        (i, j) for i in range(50) for j in range(60)
    }
    assert not res.row_counts.any() and not res.col_counts.any()


@needs_kernels
def test_centre_rows_matches_numpy():
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(301, 77)) * 1e3).astype(np.float32)
    centre = x.mean(axis=0).astype(np.float32)
    out = np.empty_like(x)
    sq = np.empty(301)
    tile_kernels.centre_rows(x, centre, out, sq)
    want = x - centre
    np.testing.assert_array_equal(out, want)
    np.testing.assert_allclose(sq, np.einsum("ij,ij->i", want, want, dtype=np.float64), rtol=1e-15)


@needs_kernels
def test_pair_sq_dists_matches_float64_and_checks_indices():
    rng = np.random.default_rng(6)
    a = rng.normal(size=(120, 33)).astype(np.float32)
    b = rng.normal(size=(80, 33)).astype(np.float32)
    ia, ib = rng.integers(0, 120, 500), rng.integers(0, 80, 500)
    want = ((a[ia].astype(np.float64) - b[ib]) ** 2).sum(axis=1)
    np.testing.assert_allclose(tile_kernels.pair_sq_dists(a, b, ia, ib), want, rtol=1e-15)
    np.testing.assert_allclose(
        tile_kernels.pair_sq_dists(a[:80], b), ((a[:80].astype(np.float64) - b) ** 2).sum(axis=1), rtol=1e-15
    )
    with pytest.raises(IndexError, match="out of range"):
        tile_kernels.pair_sq_dists(a, b, ia, ib + 80)
    with pytest.raises(ValueError, match="one length"):
        tile_kernels.pair_sq_dists(a, b, ia, ib[:10])


def test_manifold_counts_shares_the_fake_operand(monkeypatch):
    # The fakes' k-NN pass and the counts (fakes as queries) centre the same rows: one centring.
    rng = np.random.default_rng(7)
    real = rng.normal(size=(260, 20)).astype(np.float32)
    fake = (rng.normal(size=(240, 20)) * 1.1).astype(np.float32)
    centred = []
    original = neighbors._centre
    monkeypatch.setattr(neighbors, "_centre", lambda rows, bs: centred.append(rows.arr) or original(rows, bs))
    real_radii, fake_radii, counts = neighbors.manifold_counts(real, fake, 4, inclusive=False, block_size=64)
    assert len(centred) == 2 and centred[0] is real and centred[1] is fake
    # the same numbers as the three passes run on their own
    np.testing.assert_array_equal(real_radii, neighbors.kth_neighbor_radii(real, 4, block_size=64))
    np.testing.assert_array_equal(fake_radii, neighbors.kth_neighbor_radii(fake, 4, block_size=64))
    alone = neighbors.count_within_radii(fake, real, index_radii=real_radii, query_radii=fake_radii, block_size=64)
    for name in ("query_in_index_balls", "index_ball_hits", "index_in_query_balls", "query_ball_hits"):
        np.testing.assert_array_equal(getattr(counts, name), getattr(alone, name))
    assert len(centred) == 5  # outside manifold_counts nothing is shared


@needs_kernels
def test_pair_sq_dists_float64_rows_do_the_same_operations():
    # float64 rows go through the same sums: float32 rows widened give the same bits, and rows
    # multiplied by a power of two give exactly the scaled distances (what exact rescaling of
    # huge or tiny features relies on).
    rng = np.random.default_rng(8)
    a = rng.normal(size=(50, 29)).astype(np.float32)
    b = rng.normal(size=(70, 29)).astype(np.float32)
    ia, ib = rng.integers(0, 50, 300), rng.integers(0, 70, 300)
    base = tile_kernels.pair_sq_dists(a, b, ia, ib)
    wide_a, wide_b = a.astype(np.float64), b.astype(np.float64)
    np.testing.assert_array_equal(tile_kernels.pair_sq_dists(wide_a, b, ia, ib), base)
    np.testing.assert_array_equal(tile_kernels.pair_sq_dists(a, wide_b, ia, ib), base)
    for s in (2.0**70, 2.0**-70):
        np.testing.assert_array_equal(tile_kernels.pair_sq_dists(wide_a * s, wide_b * s, ia, ib), base * s * s)


@needs_kernels
@pytest.mark.parametrize("fresh", [True, False])
def test_row_add_is_the_float32_sum_the_tile_would_hold(fresh):
    # The kernels add a per-row value (the query norms) as they read the tile: the kept values,
    # ids, counts and band pairs must be those of the tile with the value added in float32.
    rng = np.random.default_rng(9)
    rows, cols, m = 90, 1100, 13
    tile = (rng.normal(size=(rows, cols)) * 50).astype(np.float32)
    add = (rng.random(rows) * 1e4).astype(np.float32)
    summed = tile + add[:, None]
    warm = rng.normal(size=(rows, cols)).astype(np.float32) + 1e4
    results = []
    for t, ra in ((tile, add), (summed, None)):
        vals, ids, worst = _heaps(rows + cols, m)
        if not fresh:
            tile_kernels.push_topk(warm, vals, ids, worst, rows_to=(0, 10**6), cols_to=(rows, 10**6))
        tile_kernels.push_topk(t, vals, ids, worst, rows_to=(0, 0), cols_to=(rows, 0), row_add=ra)
        results.append((vals, ids, worst))
    (vals, ids, worst), (vals_ref, ids_ref, worst_ref) = results
    np.testing.assert_array_equal(np.sort(vals, axis=1), np.sort(vals_ref, axis=1))
    np.testing.assert_array_equal(np.sort(ids, axis=1), np.sort(ids_ref, axis=1))
    np.testing.assert_array_equal(worst, worst_ref)
    crit = [
        tile_kernels.Criterion(np.full(cols, 9e3, np.float32), np.full(cols, 9.1e3, np.float32), by_row=False),
        tile_kernels.Criterion(np.full(rows, 5e3, np.float32), np.full(rows, 5.2e3, np.float32), by_row=True),
    ]
    got = tile_kernels.count_tile(tile, crit, row_add=add)
    want = tile_kernels.count_tile(summed, crit)
    for g, w in zip(got, want, strict=True):
        assert g is not None and w is not None
        np.testing.assert_array_equal(g.row_counts, w.row_counts)
        np.testing.assert_array_equal(g.col_counts, w.col_counts)
        assert set(zip(g.band_rows.tolist(), g.band_cols.tolist(), strict=True)) == set(
            zip(w.band_rows.tolist(), w.band_cols.tolist(), strict=True)
        )
        assert w.band_rows.size > 0 and w.row_counts.any()  # the case is not empty
