"""Per-sample scores that sample grids sort by, computed once per (set, extractor) and kept.

Built-in scores (features of the selected extractor; "reference" is the workspace's real set):

=================== =========================================================================
``index``           row order of the cache; for an explicit selection, its own order
``class``           the sample's class index (classifier Top-1, else dataset label; -1 unknown)
``nn_distance``     Euclidean distance to the nearest reference sample (itself excluded for the
                    reference set): large = far from every real image
``realism``         realism score (Kynkaanniemi et al. 2019, Eq. 3, k=3) against the reference,
                    :func:`workbench.analysis.attribution.metric_contributions`; NaN for the
                    reference set itself
``fd_contribution`` ``FD - FD without the sample`` (first order,
                    :func:`workbench.analysis.attribution.fd_contributions`); NaN for the
                    reference set
``train_distance``  distance to the nearest *training* sample (itself excluded for the training
                    set): small = possible copy; only when the workspace has a training set
=================== =========================================================================

Other scores come from :meth:`ScoreStore.put` (e.g. a memorization report's distances, a human
study's per-image soft labels) or from numeric columns of a cache's ``meta`` table.

Scores are kept in memory and, when the workspace has a state folder, in
``scores-<name>-<key>.npy`` (key: digest of the cache keys involved), so a reopened dashboard
sorts at once.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

import numpy as np

from .sets import Workspace


@dataclass(frozen=True)
class ScoreInfo:
    """What a score means and which way is "most interesting first"."""

    name: str
    label: str
    descending: bool
    meaning: str
    cheap: bool = False


BUILTIN_SCORES: dict[str, ScoreInfo] = {
    s.name: s
    for s in [
        ScoreInfo("index", "row", False, "row order in the cache (for a selection: its own order)", cheap=True),
        ScoreInfo("class", "class", False, "class index (classifier Top-1 or dataset label)", cheap=True),
        ScoreInfo("nn_distance", "NN distance", True, "distance to the nearest reference sample"),
        ScoreInfo("realism", "realism", False, "realism score vs the reference (k=3); low = unrealistic"),
        ScoreInfo("fd_contribution", "FD contribution", True, "FD - FD without the sample (first order)"),
        ScoreInfo(
            "train_distance", "train distance", False, "distance to the nearest training sample; small = possible copy"
        ),
    ]
}


class ScoreStore:
    """Per-sample scores of a workspace's sets (see the module docstring).

    Args:
        ws: the workspace.
    """

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._values: dict[tuple[str, str, str], np.ndarray] = {}
        self._custom: dict[str, ScoreInfo] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ catalogue

    def names(self, set_name: str | None = None) -> list[str]:
        """Score names that make sense for ``set_name`` (all sets when None)."""
        out = ["index", "class", "nn_distance", "realism", "fd_contribution"]
        if self.ws.train is not None:
            out.append("train_distance")
        out += [n for n in self._custom if n not in out]
        if set_name is not None:
            meta = self.ws.meta(set_name)
            out += [
                c for c in meta.columns if c not in ("index", "label") and c not in out and meta[c].dtype.kind in "fiu"
            ]
        return out

    def info(self, name: str) -> ScoreInfo:
        if name in BUILTIN_SCORES:
            return BUILTIN_SCORES[name]
        if name in self._custom:
            return self._custom[name]
        return ScoreInfo(name, name, True, f"column {name!r} of the cache metadata", cheap=True)

    def is_ready(self, set_name: str, extractor: str, name: str) -> bool:
        """True when the score needs no (long) computation."""
        if self.info(name).cheap:
            return True
        key = (set_name, self._ext_key(name, extractor), name)
        if key in self._values:
            return True
        path = self._disk_path(set_name, extractor, name)
        return path is not None and path.is_file()

    # ------------------------------------------------------------------ values

    def put(
        self,
        set_name: str,
        name: str,
        values: np.ndarray,
        *,
        extractor: str = "",
        label: str | None = None,
        descending: bool = True,
        meaning: str = "",
    ) -> None:
        """Add a score (``(n,)`` values for every sample of ``set_name``), e.g. a human soft label.

        ``extractor`` "" means it does not depend on the extractor.
        """
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
        n = self.ws.size(set_name)
        if arr.shape[0] != n:
            raise ValueError(f"values must hold one score per sample of {set_name!r} ({n}); got {arr.shape[0]}")
        if name not in BUILTIN_SCORES and name not in self._custom:
            self._custom[name] = ScoreInfo(name, label or name, descending, meaning or name)
        with self._lock:
            self._values[(set_name, extractor, name)] = arr

    def get(self, set_name: str, extractor: str, name: str) -> np.ndarray:
        """``(n,)`` float64 scores of every sample of ``set_name`` (computed on first use)."""
        ext_key = self._ext_key(name, extractor)
        key = (set_name, ext_key, name)
        with self._lock:
            if key in self._values:
                return self._values[key]
        if name in self._custom:
            found = self._values.get((set_name, "", name))
            if found is None:
                return np.full(self.ws.size(set_name), np.nan)
            return found
        path = self._disk_path(set_name, extractor, name)
        if path is not None and path.is_file():
            values = np.load(path, allow_pickle=False)
        else:
            values = self._compute(set_name, extractor, name)
            if path is not None and not self.info(name).cheap:
                tmp = path.with_name(path.name + ".tmp.npy")
                np.save(tmp, values, allow_pickle=False)
                tmp.replace(path)
        with self._lock:
            self._values[key] = values
        return values

    def _ext_key(self, name: str, extractor: str) -> str:
        return "" if name in ("index", "class") or name in self._custom else extractor

    def _disk_path(self, set_name: str, extractor: str, name: str):
        if self.info(name).cheap or name in self._custom or not extractor or not self._has_inputs(set_name, extractor):
            return None
        ws = self.ws
        parts = [name, set_name, ws.cache_key(set_name, extractor), ws.cache_key(ws.reference, extractor)]
        if name == "train_distance" and ws.train is not None:
            parts.append(ws.cache_key(ws.train, extractor))
        digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]
        return ws.state_path(f"scores-{name}-{digest}.npy")

    def _has_inputs(self, set_name: str, extractor: str) -> bool:
        ws = self.ws
        return (
            ws.has(set_name, extractor)
            and ws.has(ws.reference, extractor)
            and (ws.train is None or ws.has(ws.train, extractor))
        )

    def _compute(self, set_name: str, extractor: str, name: str) -> np.ndarray:
        ws = self.ws
        n = ws.size(set_name)
        if name in BUILTIN_SCORES and not BUILTIN_SCORES[name].cheap and not self._has_inputs(set_name, extractor):
            return np.full(n, np.nan)  # no cache of this set (or the reference) by this extractor
        if name == "index":
            return np.arange(n, dtype=np.float64)
        if name == "class":
            classes = ws.classes(set_name)
            return classes.codes.astype(np.float64) if classes is not None else np.full(n, np.nan)
        if name in BUILTIN_SCORES:
            from ..metrics.neighbors import knn

            feats = ws.cache(set_name, extractor).features
            ref = ws.reference
            if name == "nn_distance":
                if set_name == ref:
                    d, _ = knn(feats, feats, 1, exclude_self=True)
                else:
                    d, _ = knn(feats, ws.cache(ref, extractor).features, 1)
                return d[:, 0]
            if name == "train_distance":
                if ws.train is None:
                    return np.full(n, np.nan)
                if set_name == ws.train:
                    d, _ = knn(feats, feats, 1, exclude_self=True)
                else:
                    d, _ = knn(feats, ws.cache(ws.train, extractor).features, 1)
                return d[:, 0]
            if set_name == ref:
                return np.full(n, np.nan)
            from ..analysis.attribution import fd_contributions, metric_contributions

            ref_feats = ws.cache(ref, extractor).features
            if name == "realism":
                return metric_contributions(ref_feats, feats, "realism").scores
            if name == "fd_contribution":
                return fd_contributions(ref_feats, feats).scores
        meta = ws.meta(set_name)
        if name in meta.columns:
            return meta[name].to_numpy(dtype=np.float64)
        raise KeyError(f"unknown score {name!r}; known: {self.names(set_name)}")
