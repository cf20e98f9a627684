"""2-D layouts of embeddings for the embedding map: PCA at once, UMAP on request, both cached.

Points are given as :class:`~workbench.workspace.samples.Samples` (rows of several sets of a
workspace, all embedded by the same extractor).

- PCA (:func:`pca_layout`): the top principal axes of the points, fitted on at most
  ``fit_rows`` points drawn uniformly (seeded) with a randomized SVD (Halko, Martinsson & Tropp
  2011; ``sklearn.utils.extmath.randomized_svd``), then every point projected in row blocks:
  ``y = (x - mean) V_k``. Signs are fixed so that each axis' largest-magnitude loading is
  positive (SVD signs are arbitrary). Saved as ``pca-<key>.npy`` like UMAP layouts, with
  ``pca-<key>.json`` holding each axis' share of the variance (:func:`pca_layout_info`):
  ``s_k^2 / ||X_fit - mean||_F^2``, the squared singular value of the axis over the total sum of
  squares of the centred fitted points (the ``explained_variance_ratio_`` of scikit-learn's PCA
  on those points). Axis labels read ``PC 1 (23.4% of variance)``.
- UMAP (:func:`umap_layout`; McInnes, Healy & Melville 2018, ``umap-learn``): first the points
  are reduced to ``pca_dims`` (50) PCA dimensions (which roughly halves UMAP's time and changes
  the layout little), then ``umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=seed)``. The
  first fit in a process compiles numba code (70-90 s here), later fits of 50,000 points take
  about a minute. The layout is saved as ``umap-<key>.npy`` + ``umap-<key>.json`` in the
  workspace's state folder, the key a digest of the cache keys, the point rows and the settings,
  so it is computed once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .samples import Samples
from .sets import Workspace

BLOCK_ROWS = 8192
UMAP_DEFAULTS = {"n_neighbors": 15, "min_dist": 0.1, "pca_dims": 50}


def subsample(ws: Workspace, sets: list[str], max_points: int, seed: int = 0) -> Samples:
    """At most ``max_points`` rows of each set (seeded uniform draw, kept in row order)."""
    parts = {}
    for i, s in enumerate(sets):
        n = ws.size(s)
        if n <= max_points:
            parts[s] = np.arange(n)
        else:
            rng = np.random.default_rng([seed, i, n])
            parts[s] = np.sort(rng.choice(n, size=max_points, replace=False))
    return Samples.from_mapping(parts)


@dataclass(frozen=True)
class PCALayout:
    """A 2-D PCA layout and what its axes mean.

    Attributes:
        coords: ``(n, 2)`` float32 coordinates of the points.
        explained_variance_ratio: each axis' share of the total variance of the fitted points
            (``(0.234, 0.118)``), or None when unknown (a layout saved before it was recorded).
    """

    coords: np.ndarray
    explained_variance_ratio: tuple[float, ...] | None

    def axis_titles(self) -> tuple[str, str]:
        """``("PC 1 (23.4% of variance)", "PC 2 (11.8% of variance)")``, or ``("PC 1", "PC 2")``
        when the shares are unknown."""
        return pca_axis_titles(self.explained_variance_ratio)


def pca_axis_titles(ratio: tuple[float, ...] | list[float] | None) -> tuple[str, str]:
    """Axis titles of a 2-D PCA layout from the axes' variance shares (None: ``PC 1``, ``PC 2``)."""
    titles = []
    for k in range(2):
        share = ratio[k] if ratio is not None and k < len(ratio) else None
        if share is not None and np.isfinite(share):
            titles.append(f"PC {k + 1} ({100 * float(share):.1f}% of variance)")
        else:
            titles.append(f"PC {k + 1}")
    return titles[0], titles[1]


def _blocks(ws: Workspace, extractor: str, points: Samples) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(positions, features float32)`` of the points, set by set, in row blocks."""
    for code, set_name in enumerate(points.sets):
        pos = np.flatnonzero(points.codes == code)
        feats = ws.cache(set_name, extractor).features
        for start in range(0, pos.size, BLOCK_ROWS):
            p = pos[start : start + BLOCK_ROWS]
            yield p, np.asarray(feats[points.index[p]], dtype=np.float32)


def pca_basis(
    ws: Workspace, extractor: str, points: Samples, dims: int = 2, *, fit_rows: int = 5000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(mean (D,), components (D, dims))`` of the points' features (see the module docstring)."""
    mean, comps, _ = pca_fit(ws, extractor, points, dims, fit_rows=fit_rows, seed=seed)
    return mean, comps


def pca_fit(
    ws: Workspace, extractor: str, points: Samples, dims: int = 2, *, fit_rows: int = 5000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean (D,), components (D, dims), variance share (dims,))`` of the points' features.

    The share of axis ``k`` is ``s_k^2 / sum((x - mean)^2)`` over the fitted points (0 for the
    zero axes that pad a fit of fewer points or dimensions than ``dims``; all 0 when the
    points do not vary).
    """
    from sklearn.utils.extmath import randomized_svd

    n = len(points)
    if n < 2:
        raise ValueError(f"PCA needs at least 2 points; got {n}")
    rng = np.random.default_rng(seed)
    fit = np.sort(rng.choice(n, size=min(n, fit_rows), replace=False))
    sub = points.take(fit)
    x = np.empty((len(sub), ws.cache(sub.sets[0], extractor).features.shape[1]), dtype=np.float32)
    for pos, block in _blocks(ws, extractor, sub):
        x[pos] = block
    mean = x.mean(axis=0, dtype=np.float64)
    xc = (x - mean).astype(np.float32)
    k = int(min(dims, min(xc.shape)))
    _, sv, vt = randomized_svd(xc, n_components=k, n_iter=4, random_state=seed)
    comps = vt.T.astype(np.float64)
    flip = np.sign(comps[np.abs(comps).argmax(axis=0), np.arange(k)])
    comps *= np.where(flip == 0, 1.0, flip)
    total = float(np.square(xc, dtype=np.float64).sum())
    share = np.square(sv.astype(np.float64)) / total if total > 0 else np.zeros(k)
    if k < dims:  # fewer points/dimensions than asked: pad with zero axes
        comps = np.hstack([comps, np.zeros((comps.shape[0], dims - k))])
        share = np.concatenate([share, np.zeros(dims - k)])
    return mean, comps, share


def project(ws: Workspace, extractor: str, points: Samples, mean: np.ndarray, comps: np.ndarray) -> np.ndarray:
    """``(len(points), k)`` float32 coordinates ``(x - mean) @ comps``."""
    out = np.empty((len(points), comps.shape[1]), dtype=np.float32)
    for pos, block in _blocks(ws, extractor, points):
        out[pos] = (block - mean) @ comps
    return out


def pca_layout(
    ws: Workspace, extractor: str, points: Samples, *, fit_rows: int = 5000, seed: int = 0, reuse: bool = True
) -> np.ndarray:
    """2-D PCA coordinates ``(n, 2)`` float32 of the points (saved as ``pca-<key>.npy`` in the
    workspace's state folder and reused: reading 100,000 feature rows takes seconds)."""
    return pca_layout_info(ws, extractor, points, fit_rows=fit_rows, seed=seed, reuse=reuse).coords


def pca_layout_info(
    ws: Workspace, extractor: str, points: Samples, *, fit_rows: int = 5000, seed: int = 0, reuse: bool = True
) -> PCALayout:
    """The 2-D PCA layout of the points with each axis' share of the variance (:class:`PCALayout`).

    The coordinates are saved as ``pca-<key>.npy`` and the shares as ``pca-<key>.json`` in the
    workspace's state folder and reused; a saved layout without its ``.json`` (written by an
    older version) gets its shares recomputed.
    """
    key = layout_key(ws, extractor, points, {"method": "pca", "fit_rows": int(fit_rows), "seed": seed})
    path = ws.state_path(f"pca-{key}.npy")
    if reuse and path is not None and path.is_file():
        coords = np.load(path, allow_pickle=False)
        ratio = _read_ratio(path.with_suffix(".json"))
        if coords.shape == (len(points), 2) and ratio is not None:
            return PCALayout(coords, ratio)
    mean, comps, share = pca_fit(ws, extractor, points, 2, fit_rows=fit_rows, seed=seed)
    coords = project(ws, extractor, points, mean, comps)
    ratio = tuple(float(v) for v in share[:2])
    if path is not None:
        tmp = path.with_name(path.name + ".tmp.npy")
        np.save(tmp, coords, allow_pickle=False)
        tmp.replace(path)
        info = path.with_suffix(".json")
        tmp_info = info.with_name(info.name + ".tmp")
        tmp_info.write_text(
            json.dumps({"key": key, "extractor": extractor, "points": len(points), "explained_variance_ratio": ratio})
        )
        tmp_info.replace(info)
    return PCALayout(coords, ratio)


def _read_ratio(path: Path) -> tuple[float, ...] | None:
    """The ``explained_variance_ratio`` saved next to a PCA layout, or None (missing, unreadable)."""
    try:
        values = json.loads(path.read_text())["explained_variance_ratio"]
        return tuple(float(v) for v in values)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def layout_key(ws: Workspace, extractor: str, points: Samples, params: dict[str, Any]) -> str:
    """Digest of the cache keys, point rows and settings a layout depends on."""
    h = hashlib.sha256()
    for code, s in enumerate(points.sets):
        h.update(f"{s}|{ws.cache_key(s, extractor)}|".encode())
        h.update(np.ascontiguousarray(points.index[points.codes == code]).tobytes())
    h.update(json.dumps({"extractor": extractor, **params}, sort_keys=True).encode())
    return h.hexdigest()[:20]


def umap_available() -> bool:
    """True when ``umap-learn`` is installed (checked without importing it: numba is slow to import)."""
    import importlib.util

    return importlib.util.find_spec("umap") is not None


def _umap_reduce(x: np.ndarray, *, n_neighbors: int, min_dist: float, seed: int) -> np.ndarray:
    import umap

    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, random_state=seed)
    return reducer.fit_transform(x)


def cached_umap(ws: Workspace, extractor: str, points: Samples, *, seed: int = 0, **params: Any) -> np.ndarray | None:
    """The saved UMAP layout of these points and settings, or None."""
    settings = {**UMAP_DEFAULTS, **params, "seed": seed}
    path = ws.state_path(f"umap-{layout_key(ws, extractor, points, settings)}.npy")
    if path is None or not path.is_file():
        return None
    coords = np.load(path, allow_pickle=False)
    return coords if coords.shape == (len(points), 2) else None


def umap_layout(
    ws: Workspace,
    extractor: str,
    points: Samples,
    *,
    seed: int = 0,
    reducer: Callable[..., np.ndarray] | None = None,
    reuse: bool = True,
    **params: Any,
) -> np.ndarray:
    """2-D UMAP coordinates ``(n, 2)`` float32 of the points (saved and reused; module docstring).

    Args:
        ws, extractor, points: what to lay out.
        seed: UMAP's ``random_state`` and the PCA seed.
        reducer: ``f(x (n x pca_dims), n_neighbors=, min_dist=, seed=) -> (n, 2)`` replacing
            umap-learn (tests use a fast stand-in).
        reuse: load a saved layout with the same key instead of computing.
        params: ``n_neighbors`` (15), ``min_dist`` (0.1), ``pca_dims`` (50).
    """
    settings = {**UMAP_DEFAULTS, **params, "seed": seed}
    unknown = set(settings) - {*UMAP_DEFAULTS, "seed"}
    if unknown:
        raise ValueError(f"unknown UMAP settings {sorted(unknown)}; use n_neighbors, min_dist, pca_dims")
    if reuse:
        found = cached_umap(ws, extractor, points, seed=seed, **params)
        if found is not None:
            return found
    t0 = time.perf_counter()
    dims = int(settings["pca_dims"])
    dim = ws.cache(points.sets[0], extractor).features.shape[1]
    if dim > dims:
        mean, comps = pca_basis(ws, extractor, points, dims, fit_rows=max(5000, 2 * dims), seed=seed)
        x = project(ws, extractor, points, mean, comps)
    else:
        x = np.empty((len(points), dim), dtype=np.float32)
        for pos, block in _blocks(ws, extractor, points):
            x[pos] = block
    fn = reducer or _umap_reduce
    coords = np.asarray(
        fn(x, n_neighbors=int(settings["n_neighbors"]), min_dist=float(settings["min_dist"]), seed=seed),
        dtype=np.float32,
    )
    if coords.shape != (len(points), 2):
        raise ValueError(f"the reducer returned shape {coords.shape}; expected ({len(points)}, 2)")
    key = layout_key(ws, extractor, points, settings)
    path = ws.state_path(f"umap-{key}.npy")
    if path is not None:
        tmp = path.with_name(path.name + ".tmp.npy")
        np.save(tmp, coords, allow_pickle=False)
        tmp.replace(path)
        path.with_suffix(".json").write_text(
            json.dumps(
                {
                    "key": key,
                    "extractor": extractor,
                    "settings": settings,
                    "points": len(points),
                    "sets": {s: int((points.codes == i).sum()) for i, s in enumerate(points.sets)},
                    "cache_keys": {s: ws.cache_key(s, extractor) for s in points.sets},
                    "seconds": round(time.perf_counter() - t0, 2),
                },
                indent=1,
            )
        )
    return coords
