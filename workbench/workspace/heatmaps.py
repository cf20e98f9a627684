"""Sensitivity heatmaps of a workspace's samples, computed once per sample and kept.

:class:`HeatmapStore` gives the FD or KD heatmaps (:func:`workbench.analysis.heatmaps.metric_heatmaps`)
of rows of a set under one extractor, the set's stored thumbnails being the images explained and
the set itself the generated set ``G`` (the rows' freshly extracted features replace their cached
ones, so each image is in ``G`` once), against the workspace's reference set::

    store = HeatmapStore(ws)
    maps = store.get("vae", "demo-classifier", rows=range(64))   # HeatmapMaps: .maps, .delta, ...
    store.supports("pixels")                                      # why not, or None

The extractor is made again from the reference cache's manifest (registry name and weights spec;
a weights file that moved with the workspace is looked for in ``<workspace>/models``) and checked
against it (variant, dimension, weights identity), or given ready-made: ``HeatmapStore(ws,
extractors={"inception": ext})``.

Maps are kept per sample, in memory and, when the workspace has a state folder, in
``heatmaps-<metric>-<digest>.npz`` (no pickle: ``rows`` int64, ``maps`` float32 ``m x H x W``,
``delta`` float64, ``value``, ``layer``), the digest over everything the maps depend
on: the metric, the extractor (name, weights identity, explained layer), the set's and the
reference's cache keys and the thumbnail size. New rows are merged into the file, so a reopened
dashboard shows the maps it computed before at once. Rows of different calls are consistent when
the thumbnails are the images the cache was extracted from (as in the demo); with smaller
thumbnails each call's ``G`` holds the thumbnails' features of that call's rows, so values can
differ slightly between rows computed in different calls.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .sets import Workspace

#: Metrics the heatmaps explain.
HEATMAP_METRICS: tuple[str, ...] = ("fd", "kd")


@dataclass(frozen=True)
class HeatmapMaps:
    """Heatmaps of some rows of one set (result of :meth:`HeatmapStore.get`).

    Attributes:
        set: the set. extractor: the workspace's extractor name. metric: ``"fd"`` or ``"kd"``.
        rows: ``(m,)`` int64 rows of the set, in the order asked.
        maps: ``m x H x W`` float32, non-negative, at the thumbnails' resolution.
        delta: ``(m,)`` float64, the metric with the sample minus without it.
        images: ``m x H x W x 3`` uint8 thumbnails the maps explain.
        value: the metric of the whole set against the reference. layer: the explained layer.
    """

    set: str
    extractor: str
    metric: str
    rows: np.ndarray
    maps: np.ndarray
    delta: np.ndarray
    images: np.ndarray
    value: float
    layer: str

    def overlay(self, i: int, alpha: float = 0.5) -> np.ndarray:
        """Image ``i`` under its map, ``H x W x 3`` uint8 (as :meth:`HeatmapResult.overlay`)."""
        from ..analysis.heatmaps import blend

        return blend(self.images[i], self.maps[i], alpha)


class HeatmapStore:
    """Heatmaps of a workspace's samples, computed on demand and kept (see the module docstring).

    Args:
        ws: the workspace.
        extractors: ready-made extractors by workspace extractor name (else made from the
            reference cache's manifest).
        batch_size: images per forward/backward pass.
    """

    def __init__(self, ws: Workspace, *, extractors: Mapping[str, Any] | None = None, batch_size: int = 64) -> None:
        self.ws = ws
        self.batch_size = int(batch_size)
        self._extractors: dict[str, Any] = dict(extractors or {})
        self._unsupported: dict[str, str] = {}
        # (set, extractor, metric) -> {row: (map, delta)}, plus value and layer
        self._maps: dict[tuple[str, str, str], dict[int, tuple[np.ndarray, float]]] = {}
        self._info: dict[tuple[str, str, str], tuple[float, str]] = {}
        self._loaded: set[tuple[str, str, str]] = set()
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ extractors

    def extractor(self, name: str) -> Any:
        """The extractor behind the workspace's extractor ``name`` (made once, then kept).

        Raises:
            ValueError: no reference cache by it; it cannot be made again (unknown name, missing
                weights: the message says what to pass); it is not the one the caches were made
                with; it has no ``heatmap_layer``.
        """
        with self._lock:
            if name in self._extractors:
                return self._extractors[name]
            if name in self._unsupported:
                raise ValueError(self._unsupported[name])
            try:
                ext = self._make_extractor(name)
            except Exception as exc:
                reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
                self._unsupported[name] = reason
                raise ValueError(reason) from exc
            self._extractors[name] = ext
            return ext

    def supports(self, name: str) -> str | None:
        """None when heatmaps can be computed under extractor ``name``, else why not (one line)."""
        try:
            self.extractor(name)
        except ValueError as exc:
            return str(exc)
        return None

    def heatmap_extractors(self) -> list[str]:
        """The workspace's extractors that support heatmaps, in index order."""
        return [e for e in self.ws.extractors if self.supports(e) is None]

    def _make_extractor(self, name: str) -> Any:
        ws = self.ws
        if not ws.has(ws.reference, name):
            raise ValueError(f"extractor {name!r}: the reference set {ws.reference!r} has no cache by it")
        info = ws.cache(ws.reference, name).manifest.get("extractor") or {}
        registry_name = str(info.get("name") or name)
        weights_info = info.get("weights") or {}
        spec = str(weights_info.get("spec") or "default")
        if registry_name == "pixels":
            raise ValueError(
                f"extractor {name!r} (pixels) has no network, so there is no layer whose heatmap could be shown; "
                "use a neural extractor (e.g. inception, dinov2, clip, demo-classifier, demo-ssl)"
            )
        spec = self._find_weights(spec)
        from ..analysis.heatmaps import heatmap_module
        from ..extractors import create_extractor

        try:
            ext = create_extractor(registry_name, weights=spec)
        except Exception as exc:
            raise ValueError(
                f"extractor {name!r} ({registry_name}, weights {spec}) cannot be made again for heatmaps: "
                f"{' '.join(str(exc).split())}; pass it ready-made: HeatmapStore(ws, extractors={{{name!r}: ext}})"
            ) from exc
        made = ext.describe()
        for key in ("variant", "dim"):
            if info.get(key) is not None and made.get(key) != info.get(key):
                raise ValueError(
                    f"extractor {name!r}: made again with its default options it has {key} {made.get(key)!r}, "
                    f"but the caches were made with {info.get(key)!r}; pass the extractor ready-made: "
                    f"HeatmapStore(ws, extractors={{{name!r}: ext}})"
                )
        identity = weights_info.get("identity")
        if identity and made["weights"].get("identity") != identity:
            raise ValueError(
                f"extractor {name!r}: the weights {spec} have identity {made['weights'].get('identity')}, but the "
                f"caches were made with {identity}; pass the extractor ready-made"
            )
        heatmap_module(ext)  # raises when it has no heatmap layer
        return ext

    def _find_weights(self, spec: str) -> str:
        """``spec``, or the same file name under ``<workspace>/models`` when it moved with the workspace."""
        if spec in ("default", "none") or Path(spec).is_file() or self.ws.root is None:
            return spec
        moved = self.ws.root / "models" / Path(spec).name
        return str(moved) if moved.is_file() else spec

    # ------------------------------------------------------------------ maps

    def has(self, set_name: str, extractor: str, rows: Iterable[int], metric: str = "fd") -> bool:
        """True when every row's map is at hand (in memory or on disk): :meth:`get` computes nothing."""
        key = (set_name, extractor, metric)
        with self._lock:
            self._load(key)
            done = self._maps.get(key, {})
            return all(int(r) in done for r in rows)

    def get(
        self,
        set_name: str,
        extractor: str,
        rows: Iterable[int] | np.ndarray,
        metric: str = "fd",
        *,
        progress: Any = False,
    ) -> HeatmapMaps:
        """Heatmaps of rows ``rows`` of ``set_name`` under ``extractor`` (computed for the rows not
        kept yet, in one call of :func:`~workbench.analysis.heatmaps.metric_heatmaps`).

        Raises:
            ValueError: an unknown metric; the set is the reference (its own maps are zero by
                construction) or has no cache by the extractor, or no thumbnails; rows out of
                range; the extractor does not support heatmaps (:meth:`supports`).
        """
        if metric not in HEATMAP_METRICS:
            raise ValueError(f"metric must be one of {HEATMAP_METRICS}; got {metric!r}")
        ws = self.ws
        if set_name == ws.reference:
            raise ValueError(
                f"set {set_name!r} is the reference: every metric compares the other sets to it, so its heatmaps "
                "would be zero; choose a generated set"
            )
        if not ws.has(set_name, extractor):
            raise ValueError(f"set {set_name!r} has no cache by extractor {extractor!r}")
        if ws.thumbnail_px(set_name) == 0:
            raise ValueError(
                f"set {set_name!r} has no stored thumbnails (extracted with --thumbnails 0), so its images cannot "
                "be explained; re-extract it with --thumbnails 64"
            )
        wanted = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, dtype=np.int64).reshape(-1)
        n = ws.size(set_name)
        if wanted.size and (wanted.min() < 0 or wanted.max() >= n):
            raise ValueError(f"rows must lie in [0, {n}) for set {set_name!r}; got {wanted.min()} to {wanted.max()}")
        ext = self.extractor(extractor)
        key = (set_name, extractor, metric)
        with self._lock:
            self._load(key)
            done = self._maps.setdefault(key, {})
            missing = np.array(sorted({int(r) for r in wanted if int(r) not in done}), dtype=np.int64)
        if missing.size:
            self._compute(key, ext, missing, progress)
        with self._lock:
            done = self._maps[key]
            value, layer = self._info[key]
            thumbs = ws.thumbnails(set_name, wanted)
            assert thumbs is not None  # checked above
            px = thumbs.shape[1:3]
            maps = np.stack([done[int(r)][0] for r in wanted]) if wanted.size else np.zeros((0, *px), np.float32)
            delta = np.array([done[int(r)][1] for r in wanted], dtype=np.float64)
        return HeatmapMaps(set_name, extractor, metric, wanted, maps, delta, thumbs, value, layer)

    def _compute(self, key: tuple[str, str, str], ext: Any, rows: np.ndarray, progress: Any) -> None:
        from ..analysis.heatmaps import metric_heatmaps

        set_name, extractor, metric = key
        ws = self.ws
        images = ws.thumbnails(set_name, rows)
        assert images is not None  # get() checked that the set has thumbnails
        result = metric_heatmaps(
            images,
            ext,
            ws.cache(ws.reference, extractor),
            generated=ws.cache(set_name, extractor),
            indices=rows,
            metric=metric,
            batch_size=self.batch_size,
            progress=progress,
        )
        with self._lock:
            done = self._maps.setdefault(key, {})
            for j, r in enumerate(rows.tolist()):
                done[int(r)] = (result.maps[j], float(result.delta[j]))
            self._info[key] = (result.value, result.layer)
            self._save(key)

    # ------------------------------------------------------------------ disk

    def _path(self, key: tuple[str, str, str]) -> Path | None:
        set_name, extractor, metric = key
        ws = self.ws
        if ws.state_dir is None or not ws.has(set_name, extractor) or not ws.has(ws.reference, extractor):
            return None
        info = ws.cache(ws.reference, extractor).manifest.get("extractor") or {}
        ext = self._extractors.get(extractor)
        layer = str(getattr(ext, "heatmap_layer", "") or "")
        parts = [
            "heatmaps-v1",
            metric,
            extractor,
            str(info.get("name", "")),
            str((info.get("weights") or {}).get("identity", "")),
            layer,
            set_name,
            ws.cache_key(set_name, extractor),
            ws.cache_key(ws.reference, extractor),
            str(ws.thumbnail_px(set_name)),
        ]
        digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]
        return ws.state_path(f"heatmaps-{metric}-{digest}.npz")

    def _load(self, key: tuple[str, str, str]) -> None:
        """Read the kept maps of ``key`` from disk once (a damaged file is ignored and rewritten)."""
        if key in self._loaded:
            return
        if key[1] not in self._extractors:  # the layer is part of the file's key
            try:
                self.extractor(key[1])
            except ValueError:
                return
        self._loaded.add(key)
        path = self._path(key)
        if path is None or not path.is_file():
            return
        try:
            with np.load(path, allow_pickle=False) as data:
                rows, maps, delta = data["rows"], data["maps"], data["delta"]
                value, layer = float(data["value"]), str(data["layer"])
        except (OSError, ValueError, KeyError):
            return  # recomputed and rewritten
        done = self._maps.setdefault(key, {})
        for j, r in enumerate(rows.tolist()):
            done.setdefault(int(r), (maps[j], float(delta[j])))
        self._info.setdefault(key, (value, layer))

    def _save(self, key: tuple[str, str, str]) -> None:
        path = self._path(key)
        if path is None:
            return
        done = self._maps[key]
        rows = np.array(sorted(done), dtype=np.int64)
        value, layer = self._info[key]
        tmp = path.with_name(path.name + ".tmp.npz")
        try:
            np.savez(
                tmp,
                rows=rows,
                maps=np.stack([done[int(r)][0] for r in rows]).astype(np.float32, copy=False),
                delta=np.array([done[int(r)][1] for r in rows], dtype=np.float64),
                value=np.float64(value),
                layer=np.str_(layer),
            )
            tmp.replace(path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a read-only or full state folder: kept in memory only
