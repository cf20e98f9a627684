"""Extracting embeddings of an image source into an on-disk cache, resumably.

Work is done in chunks of consecutive samples. Each finished chunk is written atomically under
``<cache>/_partial/``; an interrupted run (Ctrl-C, ``kill -9``) resumes from the finished chunks
with the same key, so nothing computed is lost and nothing is duplicated. When every chunk is done
the final files are assembled, hashed into the manifest, and ``manifest.json`` is written last: a
directory without it is never taken for a complete cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..extractors import Extractor, create_extractor
from ..images import ImageDecodeError, ImageSource, make_thumbnail, open_source
from ..images.arrays import SubsetSource
from .atomic import commit_file, save_npz_atomic, write_json_atomic
from .fingerprint import cache_key, content_hashes, digest, file_sha256, listing_fingerprint
from .manifest import (
    FEATURES,
    FORMAT_VERSION,
    LOGITS,
    MANIFEST,
    META,
    NOT_PRETRAINED_WARNING,
    PARTIAL_DIR,
    SHARDS_DIR,
    THUMBNAILS,
    library_versions,
)
from .reader import EmbeddingCache, open_cache

DEFAULT_CHUNK = 2048


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "source"


def parse_shard(spec: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"I/N"`` (0-based shard I of N) -> ``(I, N)``; validates the range."""
    if spec is None:
        return None
    if isinstance(spec, str):
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
        if not m:
            raise ValueError(f"--shard must look like I/N (e.g. 0/8), got {spec!r}")
        spec = (int(m.group(1)), int(m.group(2)))
    i, n = int(spec[0]), int(spec[1])
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard index must satisfy 0 <= I < N, got {i}/{n}")
    return i, n


def cache_dir_for(source: ImageSource, extractor: Extractor, out: str | os.PathLike) -> Path:
    """Directory of the cache of ``source`` by ``extractor`` inside the workspace ``out``.

    Named ``<source>__<extractor>-<variant>__<hash>``; the hash covers the source location and
    the extractor description (weights, preprocessing), so other weights get another directory,
    while changed images under the same path are detected by the key and re-extracted in place.
    """
    where = source.describe().get("path") or source.name
    tag = digest([str(where), json.dumps(extractor.describe(), sort_keys=True)])[:8]
    return Path(out) / f"{_slug(source.name)}__{_slug(extractor.name)}-{_slug(extractor.variant)}__{tag}"


@dataclass
class _Plan:
    cache_dir: Path
    start: int
    stop: int
    chunk: int
    key: str

    def chunk_ranges(self) -> list[tuple[int, int]]:
        return [(s, min(s + self.chunk, self.stop)) for s in range(self.start, self.stop, self.chunk)]


class _PreparedImages(torch.utils.data.Dataset):
    """Decodes and preprocesses images by global index; runs in DataLoader workers."""

    def __init__(self, source: ImageSource, preprocessor: Any, thumb_px: int) -> None:
        self.source = source
        self.preprocessor = preprocessor
        self.thumb_px = thumb_px

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[int, Any, Any, str | None]:
        try:
            img = self.source.load(index)
        except ImageDecodeError as exc:
            return index, None, None, str(exc)
        x = self.preprocessor(img)
        thumb = make_thumbnail(img, self.thumb_px) if self.thumb_px else None
        return index, x, thumb, None


def _collate(items: list[tuple[int, Any, Any, str | None]]) -> dict[str, Any]:
    ok = [it for it in items if it[3] is None]
    return {
        "rows": np.array([it[0] for it in ok], dtype=np.int64),
        "x": torch.from_numpy(np.stack([it[1] for it in ok])) if ok else None,
        "thumbs": np.stack([it[2] for it in ok]) if ok and ok[0][2] is not None else None,
        "bad": [(it[0], it[3]) for it in items if it[3] is not None],
    }


def _chunk_paths(partial: Path, start: int) -> tuple[Path, Path]:
    return partial / f"chunk-{start:010d}.npz", partial / f"chunk-{start:010d}.json"


def _load_done_chunks(partial: Path, ranges: list[tuple[int, int]]) -> set[int]:
    done = set()
    for start, stop in ranges:
        npz, marker = _chunk_paths(partial, start)
        if marker.is_file() and npz.is_file():
            try:
                info = json.loads(marker.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if info.get("stop") == stop:
                done.add(start)
    return done


def extract(
    source: Any,
    extractor: str | Extractor = "pixels",
    *,
    out: str | os.PathLike = "workspace/caches",
    weights: str = "default",
    device: str | None = None,
    batch_size: int = 64,
    num_workers: int | None = None,
    limit: int | None = None,
    thumbnails: int = 64,
    shard: str | tuple[int, int] | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    labels: str = "auto",
    name: str | None = None,
    progress: bool = True,
    extractor_options: dict[str, Any] | None = None,
) -> EmbeddingCache:
    """Extract embeddings of ``source`` with ``extractor`` into a cache under ``out``, or reuse it.

    Args:
        source: folder, class folders, ``.zip``, ``.npz``, array/tensor, or an ``ImageSource``.
        extractor: a registry name (``"inception"``, ``"clip"``, ``"dinov2"``, ``"pixels"``,
            ``"module:factory"`` for a plug-in) or an :class:`Extractor` instance.
        out: the workspace folder in which the cache directory is created.
        weights: ``"default"`` (published), a local weights file, or ``"none"`` (random init).
        device: ``"cuda"`` / ``"cpu"``; default CUDA when available.
        batch_size: images per forward pass.
        num_workers: DataLoader worker processes for decoding/resizing (default: cores - 1, max 4).
        limit: only the first ``limit`` images (in source order).
        thumbnails: side in pixels of stored thumbnails; 0 stores none.
        shard: ``"I/N"`` to fill only shard I of N (for N independent workers); ``open_cache``
            of the cache directory reads all N shards as one once they are complete.
        chunk_size: samples per resumable chunk.
        labels: class-folder labels for folder/zip sources: ``"auto"``, ``"folders"`` or ``"none"``.
        name: name of the source in the cache directory name (default: folder/file name).
        progress: show progress bars and messages (on stderr).
        extractor_options: extractor-specific options (e.g. ``{"model": "ViT-B-16"}``).

    Returns:
        The opened :class:`EmbeddingCache` (memory-mapped).
    """
    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda msg: None)
    src = open_source(source, labels=labels) if not isinstance(source, ImageSource) else source
    if name:
        src.name = name
    if limit is not None:
        if int(limit) < 1:
            raise ValueError(f"limit must be a positive number of images, got {limit}")
        if int(limit) < len(src):
            src = SubsetSource(src, np.arange(int(limit)))
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if thumbnails < 0:
        raise ValueError(f"thumbnails must be >= 0 pixels, got {thumbnails}")
    ext = (
        extractor.to(device) if isinstance(extractor, Extractor) and device
        else extractor if isinstance(extractor, Extractor)
        else create_extractor(extractor, weights=weights, device=device, **(extractor_options or {}))
    )

    n_total = len(src)
    shard_ij = parse_shard(shard)
    start, stop = (0, n_total) if shard_ij is None else (
        shard_ij[0] * n_total // shard_ij[1], (shard_ij[0] + 1) * n_total // shard_ij[1]
    )
    base_dir = cache_dir_for(src, ext, out)
    cache_dir = base_dir if shard_ij is None else base_dir / SHARDS_DIR / f"{shard_ij[0]:05d}-of-{shard_ij[1]:05d}"

    listing_fp = listing_fingerprint(src)
    hashes = content_hashes(src, start, stop, progress=progress)
    content_fp = digest(hashes)
    key = cache_key(ext.describe(), listing_fp, content_fp, start, stop, thumbnails, FORMAT_VERSION)
    plan = _Plan(cache_dir=cache_dir, start=start, stop=stop, chunk=int(chunk_size), key=key)

    manifest_path = cache_dir / MANIFEST
    if manifest_path.is_file():
        try:
            old = json.loads(manifest_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            old = {}
        if old.get("key") == key:
            say(f"reusing cache {cache_dir} ({old.get('n')} x {old.get('dim')})")
            return open_cache(base_dir)
        say(f"cache {cache_dir} is stale (images, extractor or options changed); re-extracting")
        manifest_path.unlink()
        for fname in (FEATURES, LOGITS, META, THUMBNAILS):
            (cache_dir / fname).unlink(missing_ok=True)

    if start == stop:
        raise ValueError(f"shard {shard_ij[0]}/{shard_ij[1]} of {n_total} images is empty; use fewer shards")
    partial = cache_dir / PARTIAL_DIR
    state_path = partial / "state.json"
    if partial.is_dir():
        try:
            state = json.loads(state_path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            state = {}
        if state.get("key") != key or state.get("chunk") != plan.chunk:
            say(f"discarding an interrupted extraction in {partial} made with other inputs")
            shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    write_json_atomic(state_path, {"key": key, "chunk": plan.chunk, "start": start, "stop": stop})

    ranges = plan.chunk_ranges()
    done = _load_done_chunks(partial, ranges)
    todo = [r for r in ranges if r[0] not in done]
    n_done = sum(b - a for a, b in ranges if a in done)
    if done:
        say(f"resuming: {len(done)} of {len(ranges)} chunks ({n_done} images) already extracted")

    t0 = time.perf_counter()
    if todo:
        _run_chunks(src, ext, partial, todo, batch_size, num_workers, thumbnails, progress, n_done, stop - start)
    cache = _finalize(plan, partial, ranges, src, ext, hashes, listing_fp, content_fp, thumbnails, shard_ij, n_total)
    elapsed = time.perf_counter() - t0
    if cache.skipped:
        names = ", ".join(s["id"] for s in cache.skipped[:10])
        say(f"skipped {len(cache.skipped)} unreadable image(s): {names}{' ...' if len(cache.skipped) > 10 else ''}")
    if not ext.weights.pretrained:
        say("warning: " + NOT_PRETRAINED_WARNING.format(identity=ext.weights.identity))
    say(f"cache written to {cache_dir} ({len(cache)} x {cache.manifest['dim']}, {elapsed:.1f} s)")
    return open_cache(base_dir) if shard_ij is None else cache


def _run_chunks(
    src: ImageSource,
    ext: Extractor,
    partial: Path,
    todo: Sequence[tuple[int, int]],
    batch_size: int,
    num_workers: int | None,
    thumb_px: int,
    progress: bool,
    n_done: int,
    n_range: int,
) -> None:
    batches: list[list[int]] = []
    owner: list[int] = []  # which chunk (position in todo) each batch belongs to
    for c, (a, b) in enumerate(todo):
        for s in range(a, b, batch_size):
            batches.append(list(range(s, min(s + batch_size, b))))
            owner.append(c)
    if num_workers is None:
        num_workers = min(4, max(0, (os.cpu_count() or 1) - 1))
    if sum(len(b) for b in batches) < 2 * batch_size:
        num_workers = 0  # starting workers costs more than it saves
    loader = torch.utils.data.DataLoader(
        _PreparedImages(src, ext.preprocessor, thumb_px),
        batch_sampler=batches,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=ext.device.type == "cuda",
        persistent_workers=False,
    )
    bar = tqdm(total=n_range, initial=n_done, unit="img", desc=f"extract {ext.name}", disable=not progress, smoothing=0.1)
    acc: dict[str, list[Any]] = {"rows": [], "features": [], "logits": [], "thumbs": [], "bad": []}
    try:
        for b, batch in enumerate(loader):
            if batch["x"] is not None:
                out = ext(batch["x"])
                acc["rows"].append(batch["rows"])
                acc["features"].append(out.features.cpu().numpy())
                if out.logits is not None:
                    acc["logits"].append(out.logits.cpu().numpy())
                if batch["thumbs"] is not None:
                    acc["thumbs"].append(batch["thumbs"])
            acc["bad"].extend(batch["bad"])
            bar.update(len(batches[b]))
            last_of_chunk = b + 1 == len(batches) or owner[b + 1] != owner[b]
            if last_of_chunk:
                a, z = todo[owner[b]]
                _write_chunk(partial, a, z, acc, src, ext.dim)
                acc = {k: [] for k in acc}
    finally:
        bar.close()


def _write_chunk(partial: Path, start: int, stop: int, acc: dict[str, list[Any]], src: ImageSource, dim: int) -> None:
    rows = np.concatenate(acc["rows"]) if acc["rows"] else np.zeros(0, np.int64)
    arrays = {
        "rows": rows,
        "features": np.concatenate(acc["features"]).astype(np.float32) if acc["features"] else np.zeros((0, dim), np.float32),
    }
    if acc["logits"]:
        arrays["logits"] = np.concatenate(acc["logits"]).astype(np.float32)
    if acc["thumbs"]:
        arrays["thumbs"] = np.concatenate(acc["thumbs"])
    npz, marker = _chunk_paths(partial, start)
    save_npz_atomic(npz, **arrays)
    bad = [{"index": int(i), "id": src.sample_id(int(i)), "reason": reason} for i, reason in acc["bad"]]
    write_json_atomic(marker, {"start": start, "stop": stop, "n": int(rows.shape[0]), "skipped": bad})


def _finalize(
    plan: _Plan,
    partial: Path,
    ranges: list[tuple[int, int]],
    src: ImageSource,
    ext: Extractor,
    hashes: list[str],
    listing_fp: str,
    content_fp: str,
    thumb_px: int,
    shard_ij: tuple[int, int] | None,
    n_total: int,
) -> EmbeddingCache:
    cache_dir = plan.cache_dir
    infos = []
    for start, _ in ranges:
        npz, marker = _chunk_paths(partial, start)
        infos.append(json.loads(marker.read_text()))
    n = sum(i["n"] for i in infos)
    skipped = [s for i in infos for s in i["skipped"]]
    if n == 0:
        raise ValueError(
            f"none of the {plan.stop - plan.start} images could be read; first errors: "
            + "; ".join(s["reason"] for s in skipped[:3])
        )
    has_logits = ext.num_classes is not None
    tmp = {name: cache_dir / (name + ".tmp") for name in (FEATURES, LOGITS, THUMBNAILS, META)}
    feats = np.lib.format.open_memmap(tmp[FEATURES], mode="w+", dtype=np.float32, shape=(n, ext.dim))
    logits = (
        np.lib.format.open_memmap(tmp[LOGITS], mode="w+", dtype=np.float32, shape=(n, ext.num_classes))
        if has_logits else None
    )
    thumbs = (
        np.lib.format.open_memmap(tmp[THUMBNAILS], mode="w+", dtype=np.uint8, shape=(n, thumb_px, thumb_px, 3))
        if thumb_px else None
    )
    rows_all = np.empty(n, dtype=np.int64)
    pos = 0
    for start, _ in ranges:
        npz, _marker = _chunk_paths(partial, start)
        with np.load(npz, allow_pickle=False) as z:
            k = z["rows"].shape[0]
            rows_all[pos : pos + k] = z["rows"]
            feats[pos : pos + k] = z["features"]
            if logits is not None:
                logits[pos : pos + k] = z["logits"]
            if thumbs is not None:
                thumbs[pos : pos + k] = z["thumbs"]
        pos += k
    for arr in (feats, logits, thumbs):
        if arr is not None:
            arr.flush()
    del feats, logits, thumbs

    labels = src.labels
    meta = pd.DataFrame(
        {
            "index": rows_all,
            "id": [src.sample_id(int(i)) for i in rows_all],
            "label": pd.array([src.label(int(i)) for i in rows_all], dtype="Int64"),
            "class_name": pd.array([src.class_name(int(i)) for i in rows_all], dtype="string"),
            "content_hash": [hashes[int(i) - plan.start] for i in rows_all],
        }
    )
    meta.to_parquet(tmp[META], index=False)

    written = [FEATURES, META] + ([LOGITS] if has_logits else []) + ([THUMBNAILS] if thumb_px else [])
    files = {}
    for fname in written:
        commit_file(tmp[fname], cache_dir / fname)
        files[fname] = {"bytes": os.path.getsize(cache_dir / fname), "sha256": file_sha256(cache_dir / fname)}
    source_info = dict(src.describe())
    source_info.update(
        name=src.name,
        listing_fingerprint=listing_fp,
        content_fingerprint=content_fp,
        count_total=n_total,
        class_names=src.class_names,
        has_labels=labels is not None,
    )
    manifest = {
        "format_version": FORMAT_VERSION,
        "complete": True,
        "key": plan.key,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n": n,
        "dim": ext.dim,
        "dtype": "float32",
        "logits_dim": ext.num_classes,
        "thumbnails": thumb_px,
        "extractor": ext.describe(),
        "extractor_class_names": ext.class_names,
        "pretrained": ext.weights.pretrained,
        "warning": None if ext.weights.pretrained else NOT_PRETRAINED_WARNING.format(identity=ext.weights.identity),
        "source": source_info,
        "range": [plan.start, plan.stop],
        "shard": None if shard_ij is None else {"index": shard_ij[0], "count": shard_ij[1], "start": plan.start, "stop": plan.stop},
        "skipped": skipped,
        "files": files,
        "device": str(ext.device),
        "versions": library_versions(),
    }
    write_json_atomic(cache_dir / MANIFEST, manifest)
    shutil.rmtree(partial, ignore_errors=True)
    return open_cache(cache_dir)
