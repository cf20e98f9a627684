"""Opening a cache: :func:`open_cache` and the :class:`EmbeddingCache` it returns.

Opening is cheap whatever the size: features, logits and thumbnails are memory-mapped
(``np.load(mmap_mode="r")``) and only their headers and sizes are checked; ``verify()`` re-hashes
every file against the SHA-256 recorded in the manifest.
"""

from __future__ import annotations

import html
import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..npy_header import read_npy_header
from .fingerprint import file_sha256
from .manifest import (
    FEATURES,
    LOGITS,
    MANIFEST,
    META,
    SHARDS_DIR,
    THUMBNAILS,
    CacheError,
    not_pretrained_warning,
    read_manifest,
)
from .rows import RowsArray
from .sharded import ShardedArray

if TYPE_CHECKING:  # pandas costs ~1 s to import; only meta needs it
    import pandas as pd


def _open_npy(path: Path, expected_shape: tuple[int, ...] | None, expected_dtype: str) -> np.memmap:
    """Memory-map an ``.npy`` file after checking its header against the manifest and its size."""
    if not path.is_file():
        raise CacheError(f"{path} is missing; the cache is incomplete — re-run the extraction")
    try:
        with open(path, "rb") as fh:
            shape, _fortran, dtype, header = read_npy_header(fh)
    except ValueError as exc:
        raise CacheError(f"{path} is not a valid .npy file ({exc})") from exc
    if dtype.hasobject:
        raise CacheError(f"{path} holds Python objects; workbench caches never do (no pickle)")
    if expected_shape is not None and tuple(shape) != tuple(expected_shape):
        raise CacheError(
            f"{path} has shape {shape} but the manifest says {tuple(expected_shape)}; the cache was modified"
        )
    if str(dtype) != expected_dtype:
        raise CacheError(f"{path} has dtype {dtype}, expected {expected_dtype}")
    needed = header + int(np.prod(shape)) * dtype.itemsize
    actual = os.path.getsize(path)
    if actual != needed:
        raise CacheError(f"{path} is truncated or padded ({actual} bytes, expected {needed}); re-run the extraction")
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _present(array: np.ndarray | None) -> np.ndarray:
    """``array``, which the manifests of all shards promise (checked when the shards were opened)."""
    if array is None:
        raise CacheError("the shards of this cache disagree on which arrays they store; re-run the odd shard")
    return array


class CacheShard:
    """One complete cache directory (a whole cache, or one shard of a sharded cache)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.manifest = read_manifest(path)
        m = self.manifest
        n, dim = int(m["n"]), int(m["dim"])
        self.features = _open_npy(path / FEATURES, (n, dim), m.get("dtype", "float32"))
        self.logits = _open_npy(path / LOGITS, (n, int(m["logits_dim"])), "float32") if m.get("logits_dim") else None
        px = m.get("thumbnails") or 0
        self.thumbnails = _open_npy(path / THUMBNAILS, (n, px, px, 3), "uint8") if px else None
        for name, info in m["files"].items():  # cheap: sizes only; verify() re-hashes
            size = os.path.getsize(path / name) if (path / name).is_file() else None
            if size != info.get("bytes"):
                state = "is missing" if size is None else f"has {size} bytes, the manifest says {info.get('bytes')}"
                raise CacheError(f"{path / name} {state}; the cache is damaged — re-run the extraction to rebuild it")

    def read_meta(self) -> pd.DataFrame:
        import pandas as pd

        path = self.path / META
        try:
            meta = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise CacheError(f"{path} cannot be read ({type(exc).__name__}: {exc}); re-run the extraction") from exc
        if len(meta) != int(self.manifest["n"]):
            raise CacheError(f"{path} has {len(meta)} rows but the manifest says {self.manifest['n']}")
        return meta

    def verify(self) -> None:
        for name, info in self.manifest["files"].items():
            path = self.path / name
            if not path.is_file():
                raise CacheError(f"{path} is missing")
            if os.path.getsize(path) != info["bytes"]:
                raise CacheError(f"{path} has {os.path.getsize(path)} bytes, the manifest says {info['bytes']}")
            if file_sha256(path) != info["sha256"]:
                raise CacheError(f"{path} does not match the SHA-256 in the manifest: it was modified")


class EmbeddingCache:
    """Embeddings of one image source by one extractor, as stored on disk.

    Attributes:
        path: the cache directory.
        manifest: the parsed ``manifest.json`` (of the first shard, for sharded caches, with
            ``n`` and ``shards`` describing the whole).
        features: ``N x D`` float32, memory-mapped (a :class:`ShardedArray` for sharded caches).
        logits: ``N x K`` float32 or None.
        thumbnails: ``N x px x px x 3`` uint8 or None.
        meta: one row per sample: ``index, id, label, class_name, content_hash`` (loaded on first use).
        subset_of: for a cache seen through :meth:`take`, the whole cache it takes rows from
            (its arrays are then :class:`~workbench.cache.rows.RowsArray`); else None.
    """

    subset_of: EmbeddingCache | None = None

    def __init__(self, path: Path, shards: list[CacheShard]) -> None:
        self.path = path
        self._shards = shards
        first = shards[0]
        if len(shards) == 1:
            self.manifest = first.manifest
            self.features: np.ndarray | ShardedArray | RowsArray = first.features
            self.logits: np.ndarray | ShardedArray | RowsArray | None = first.logits
            self.thumbnails: np.ndarray | ShardedArray | RowsArray | None = first.thumbnails
        else:
            self.manifest = dict(first.manifest)
            self.manifest["n"] = sum(int(s.manifest["n"]) for s in shards)
            self.manifest["skipped"] = [x for s in shards for x in s.manifest.get("skipped", [])]
            # duplicates are found within each shard's range
            self.manifest["duplicates"] = [g for s in shards for g in s.manifest.get("duplicates", [])]
            self.manifest["shards"] = len(shards)
            self.features = ShardedArray([s.features for s in shards])
            self.logits = ShardedArray([_present(s.logits) for s in shards]) if first.logits is not None else None
            self.thumbnails = (
                ShardedArray([_present(s.thumbnails) for s in shards]) if first.thumbnails is not None else None
            )

    def __len__(self) -> int:
        return int(self.manifest["n"])

    @cached_property
    def meta(self) -> pd.DataFrame:
        import pandas as pd

        frames = [s.read_meta() for s in self._shards]
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)

    def take(self, rows: np.ndarray | list[int], *, reason: str = "") -> EmbeddingCache:
        """The same cache seen through rows ``rows`` (in that order), read on demand.

        Features, logits and thumbnails become :class:`~workbench.cache.rows.RowsArray` views;
        ``meta`` holds those rows with ``index`` renumbered ``0..m-1`` and the original row in
        ``cache_row``; the manifest's ``n`` is ``m`` and its ``key`` gains a digest of ``rows`` (so
        results computed on the subset are never mistaken for results on the whole cache), and
        ``manifest["subset"]`` records ``{"of": N, "rows": m, "reason": reason}``. Nothing on disk
        changes; ``verify()`` checks the whole cache.

        Args:
            rows: ``(m,)`` row indices into this cache.
            reason: why only these rows are used (shown by :meth:`summary`).

        Raises:
            ValueError: an index outside ``[0, len(self))``.
        """
        import hashlib

        base = self.subset_of or self
        idx = np.asarray(rows, dtype=np.int64)
        if self.subset_of is not None:  # rows of a subset: map back to the whole cache
            idx = np.asarray(self.meta["cache_row"].to_numpy(dtype=np.int64)[idx])
        out = object.__new__(EmbeddingCache)
        out.path = base.path
        out._shards = base._shards
        out.subset_of = base
        out.features = RowsArray(base.features, idx)
        out.logits = RowsArray(base.logits, idx) if base.logits is not None else None
        out.thumbnails = RowsArray(base.thumbnails, idx) if base.thumbnails is not None else None
        digest = hashlib.sha256(idx.tobytes()).hexdigest()[:12]
        out.manifest = {
            **base.manifest,
            "n": int(idx.size),
            "key": f"{base.manifest['key']}+rows-{digest}",
            "subset": {"of": len(base), "rows": int(idx.size), "reason": reason},
        }
        meta = base.meta.iloc[idx].reset_index(drop=True)
        meta.insert(1, "cache_row", idx)
        meta["index"] = np.arange(idx.size, dtype=np.int64)
        out.__dict__["meta"] = meta  # the cached_property's slot
        return out

    @property
    def extractor(self) -> dict[str, Any]:
        """The extractor description (name, variant, weights, preprocessing) from the manifest."""
        return self.manifest["extractor"]

    @property
    def pretrained(self) -> bool:
        return bool(self.manifest["extractor"]["weights"]["pretrained"])

    @property
    def labels(self) -> np.ndarray | None:
        """``int64`` labels (-1 unknown) or None when the source had none."""
        col = self.meta["label"]
        if col.isna().all():
            return None
        return col.fillna(-1).astype(np.int64).to_numpy()

    @property
    def class_names(self) -> list[str] | None:
        return self.manifest["source"].get("class_names")

    @property
    def skipped(self) -> list[dict[str, str]]:
        return list(self.manifest.get("skipped", []))

    def verify(self) -> EmbeddingCache:
        """Re-hash every file against the manifest; raises :class:`CacheError` on any mismatch."""
        for shard in self._shards:
            shard.verify()
        return self

    def compatible_with(self, other: EmbeddingCache) -> bool:
        """True when both caches were made by the same extractor, weights and preprocessing."""
        return self.extractor == other.extractor

    def summary(self) -> str:
        m = self.manifest
        ext = m["extractor"]
        w = ext["weights"]
        lines = [
            f"cache      {self.path}",
            f"source     {m['source'].get('path') or m['source'].get('name')} ({m['source']['kind']})",
            f"extractor  {ext['name']} [{ext['variant']}], {ext['feature_layer']}",
            f"weights    {w['identity']}"
            + ("" if not_pretrained_warning(w["pretrained"], w["identity"]) is None else "   ** NOT PRETRAINED **"),
            f"features   {len(self)} x {m['dim']} {m.get('dtype', 'float32')}"
            + (f", logits {m['logits_dim']}" if m.get("logits_dim") else "")
            + (f", thumbnails {m['thumbnails']}px" if m.get("thumbnails") else ""),
            f"skipped    {len(self.skipped)} unreadable image(s)",
        ]
        dups = m.get("duplicates") or []
        if dups:
            extra = sum(len(g) - 1 for g in dups)
            shown = "; ".join(" = ".join(g[:4]) + (" ..." if len(g) > 4 else "") for g in dups[:3])
            lines.append(
                f"duplicates {extra} exact duplicate image(s) in {len(dups)} group(s): {shown}"
                + (" ..." if len(dups) > 3 else "")
            )
        lines += [f"note       {note}" for note in (m["source"].get("notes") or [])]
        if m.get("options"):
            lines.append("options    " + ", ".join(f"{k}={v}" for k, v in m["options"].items()))
        lines += [
            f"created    {m.get('created', '?')}" + (f", {m['shards']} shards" if m.get("shards") else ""),
        ]
        pre = ext.get("preprocessing", {})
        if pre:
            lines.append("preprocess " + ", ".join(f"{k}={v}" for k, v in pre.items()))
        warning = m.get("warning") and not_pretrained_warning(w["pretrained"], w["identity"])
        if warning:  # caches written before pixels was exempt carry the warning too
            lines.append(f"WARNING    {m['warning']}")
        if m.get("subset"):
            sub = m["subset"]
            lines.append(
                f"subset     {sub['rows']} of its {sub['of']} rows are used"
                + (f": {sub['reason']}" if sub["reason"] else "")
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        ext = self.manifest["extractor"]
        w = ext["weights"]
        flag = "" if not_pretrained_warning(w["pretrained"], w["identity"]) is None else " NOT-PRETRAINED"
        return f"<EmbeddingCache {self.path.name}: {len(self)} x {self.manifest['dim']} {ext['name']}{flag}>"

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(self.summary()) + "</pre>"


def open_cache(path: str | os.PathLike) -> EmbeddingCache:
    """Open a complete cache directory (single or sharded) without reading the features.

    Raises:
        CacheError: the directory is not a complete cache, a shard is missing, or a file is
            truncated / inconsistent with the manifest.
    """
    root = Path(path).expanduser().resolve()
    if not root.exists():
        raise CacheError(f"cache not found: {root}")
    if (root / MANIFEST).is_file():
        return EmbeddingCache(root, [CacheShard(root)])
    shards_dir = root / SHARDS_DIR
    if shards_dir.is_dir():
        return _open_sharded(root, shards_dir)
    return EmbeddingCache(root, [CacheShard(root)])  # raises the "not a complete cache" error


def _open_sharded(root: Path, shards_dir: Path) -> EmbeddingCache:
    names = sorted(p.name for p in shards_dir.iterdir() if p.is_dir())
    if not names:
        raise CacheError(f"{shards_dir} holds no shards yet; run `workbench extract --shard I/N`")
    counts = {name.split("-of-")[-1] for name in names}
    if len(counts) != 1:
        raise CacheError(f"{shards_dir} mixes shard counts {sorted(counts)}; remove the stale shards")
    total = int(counts.pop())
    expected = [f"{i:05d}-of-{total:05d}" for i in range(total)]
    missing = [n for n in expected if not (shards_dir / n / MANIFEST).is_file()]
    if missing:
        raise CacheError(
            f"sharded cache {root} is incomplete: {len(missing)} of {total} shards missing or unfinished "
            f"({', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}); run those shards"
        )
    shards = [CacheShard(shards_dir / n) for n in expected]
    ref = shards[0].manifest
    for s in shards[1:]:
        m = s.manifest
        if (
            m["extractor"] != ref["extractor"]
            or m["source"]["listing_fingerprint"] != ref["source"]["listing_fingerprint"]
        ):
            raise CacheError(
                f"shard {s.path.name} of {root} was made from a different source listing or extractor; re-run it"
            )
    starts = [s.manifest["shard"]["start"] for s in shards]
    if starts != sorted(starts):
        raise CacheError(f"shards of {root} are out of order")
    return EmbeddingCache(root, shards)
