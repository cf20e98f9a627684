"""Extracting embeddings of an image source into an on-disk cache, resumably.

Work is done in chunks of consecutive samples. Each finished chunk is written atomically under
``<cache>/_partial/`` with its size and SHA-256; an interrupted run (Ctrl-C, ``kill -9``) resumes
from the intact finished chunks with the same key and re-extracts damaged or missing ones, so
nothing computed is lost and nothing is duplicated. When every chunk is done the final files are
streamed, hashed into the manifest, and ``manifest.json`` is written last: a directory without it
is never taken for a complete cache.

A finished cache is only replaced on request (``force=True``); options that change what a cache
holds give it its own directory; one process at a time writes a cache (``writer_lock``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import time
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..extractors import Extractor, create_extractor
from ..images import (
    ImageDecodeError,
    ImageSource,
    check_thumbnail_size,
    find_duplicates,
    make_thumbnail,
    open_source,
    summarize_duplicates,
)
from ..images.arrays import SubsetSource
from ..progress import Progress, ProgressReporter, check_progress
from ..protocols import Protocol, resolve_protocol
from .atomic import NpyStreamWriter, commit_file, save_npz_atomic, write_json_atomic
from .fingerprint import cache_key, content_hashes, digest, file_sha256, listing_fingerprint
from .io_errors import CacheWriteError, write_errors
from .manifest import (
    FEATURES,
    FORMAT_VERSION,
    LOGITS,
    MANIFEST,
    META,
    PARTIAL_DIR,
    SHARDS_DIR,
    THUMBNAILS,
    CacheError,
    library_versions,
    not_pretrained_warning,
)
from .reader import CacheShard, EmbeddingCache, open_cache
from .writer_lock import WriterLock

DEFAULT_CHUNK = 2048
ENGINES = ("local", "ray")


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


DEFAULT_THUMBNAILS = 64


def content_options(
    *,
    limit: int | None = None,
    labels: Any = "auto",
    thumbnails: int = DEFAULT_THUMBNAILS,
    max_pixels: int | None = None,
) -> dict[str, Any]:
    """The extraction options that change what a cache holds, those that differ from the defaults.

    They are part of both the cache directory name and the cache key, so a ``--limit`` run, a
    ``--labels none`` run or another thumbnail size gets its own cache instead of replacing a
    finished one. Defaults are left out so that caches made before an option existed keep their
    names and keys.
    """
    opts: dict[str, Any] = {}
    if limit is not None:
        opts["limit"] = int(limit)
    if isinstance(labels, str):
        if labels != "auto":
            opts["labels"] = labels
    elif labels is not None:  # labels given as an array (in-memory sources): their digest
        arr = np.asarray(labels)
        opts["labels"] = "array:" + digest([str(arr.dtype), str(arr.shape), arr.tobytes().hex()])[:16]
    if int(thumbnails) != DEFAULT_THUMBNAILS:
        opts["thumbnails"] = int(thumbnails)
    if max_pixels is not None:
        opts["max_pixels"] = int(max_pixels)
    return opts


def cache_dir_for(
    source: ImageSource, extractor: Extractor, out: str | os.PathLike, options: dict[str, Any] | None = None
) -> Path:
    """Directory of the cache of ``source`` by ``extractor`` inside the workspace ``out``.

    Named ``<source>__<extractor>-<variant>__<hash>``; the hash covers the source location, the
    extractor description (weights, preprocessing) and the non-default :func:`content_options`,
    so other weights or options get another directory. Changed images under the same path map to
    the same directory; the cache key tells them apart and ``force=True`` is needed to replace it.
    """
    where = source.describe().get("path") or source.name
    parts = [str(where), json.dumps(extractor.describe(), sort_keys=True)]
    if options:
        parts.append(json.dumps(options, sort_keys=True))
    tag = digest(parts)[:8]
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


def _chunk_problem(partial: Path, start: int, stop: int) -> str | None:
    """Why the chunk ``[start, stop)`` in ``partial`` cannot be used, or None when it is intact.

    A finished chunk is an ``.npz`` plus a ``.json`` marker written after it, holding the
    ``.npz``'s size and SHA-256; a missing marker means the chunk never finished.
    """
    npz, marker = _chunk_paths(partial, start)
    if not marker.is_file():
        return "missing"
    try:
        info = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return "its marker file is damaged"
    if not isinstance(info, dict) or info.get("stop") != stop:
        return "its marker describes another range"
    if not npz.is_file():
        return "its data file is missing"
    size = os.path.getsize(npz)
    if "bytes" in info and size != info["bytes"]:
        return f"its data file has {size} bytes, {info['bytes']} expected"
    if "sha256" in info:
        return None if file_sha256(npz) == info["sha256"] else "its data file does not match its checksum"
    try:  # a chunk written before checksums existed: it is intact when every array reads back
        with np.load(npz, allow_pickle=False) as z:
            for key in z.files:
                z[key]
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError, zlib.error, EOFError
        return f"its data file cannot be read ({type(exc).__name__})"
    return None


def _load_done_chunks(partial: Path, ranges: list[tuple[int, int]], say: Any) -> set[int]:
    """Starts of the intact finished chunks; damaged ones are deleted (they will be re-extracted)."""
    done = set()
    for start, stop in ranges:
        problem = _chunk_problem(partial, start, stop)
        if problem is None:
            done.add(start)
        elif problem != "missing":
            say(f"chunk of images [{start}, {stop}) in {partial} is damaged ({problem}); re-extracting it")
            for path in _chunk_paths(partial, start):
                path.unlink(missing_ok=True)
    return done


def _read_manifest_json(cache_dir: Path) -> dict[str, Any] | None:
    """The parsed manifest of ``cache_dir``, ``{}`` when it is damaged, None when there is none."""
    path = cache_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return old if isinstance(old, dict) else {}


def _remove_finished(cache_dir: Path) -> None:
    """Delete the manifest (first, so the directory stops being a cache) and the data files."""
    (cache_dir / MANIFEST).unlink(missing_ok=True)
    for fname in (FEATURES, LOGITS, META, THUMBNAILS):
        (cache_dir / fname).unlink(missing_ok=True)


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    """In words, how a finished cache's manifest differs from what is being asked for."""
    out = []
    old_src, new_src = old.get("source") or {}, new["source"]
    if old.get("format_version") != FORMAT_VERSION:
        out.append(f"cache format {old.get('format_version')} (this workbench writes {FORMAT_VERSION})")
    if old_src.get("listing_fingerprint") != new_src["listing_fingerprint"]:
        out.append(f"another list of images ({old_src.get('count_total', '?')} then, {new_src['count_total']} now)")
    elif old_src.get("content_fingerprint") != new_src["content_fingerprint"]:
        out.append("images whose contents have changed since")
    if old.get("extractor") != new["extractor"]:
        out.append("other extractor settings")
    if (old.get("options") or {}) != new["options"] or old.get("thumbnails") != new["thumbnails"]:
        out.append(f"other options ({old.get('options') or {}} then, {new['options']} now)")
    if old.get("range") != new["range"]:
        out.append(f"another range of images ({old.get('range')} then, {new['range']} now)")
    return "; ".join(out) or "other inputs"


def _check_finished(cache_dir: Path, key: str, wanted: dict[str, Any], force: bool, say: Any) -> bool:
    """Decide what to do with a finished cache in ``cache_dir``: True means reuse it.

    The same key and intact sizes: reuse. Damaged (unreadable manifest, a file of the wrong
    size): say so and rebuild. Another key: refuse unless ``force`` (a finished cache is only
    ever replaced on request).
    """
    old = _read_manifest_json(cache_dir)
    if old is None:
        return False
    if old.get("key") == key:
        try:
            CacheShard(cache_dir)
        except CacheError as exc:
            say(f"cache {cache_dir} is damaged ({exc}); re-extracting it")
            _remove_finished(cache_dir)
            return False
        say(f"reusing cache {cache_dir} ({old.get('n')} x {old.get('dim')})")
        return True
    if not old:
        say(f"cache {cache_dir} is damaged (its {MANIFEST} cannot be read); re-extracting it")
        _remove_finished(cache_dir)
        return False
    what = _differences(old, wanted)
    if not force:
        raise CacheError(
            f"{cache_dir} already holds a finished cache ({old.get('n')} x {old.get('dim')}, made "
            f"{old.get('created', '?')}) of {what}; it is kept. Pass --force (force=True) to replace it, "
            "or extract into another --out"
        )
    say(f"replacing the finished cache in {cache_dir} (--force): it was made from {what}")
    _remove_finished(cache_dir)
    return False


def _disk_check(cache_dir: Path, rows_to_extract: int, rows_total: int, ext: Extractor, thumb_px: int) -> None:
    """Refuse to start when the disk cannot hold the chunks and the final files."""
    row = 4 * ext.dim + 4 * (ext.num_classes or 0) + 3 * thumb_px * thumb_px + 16
    need = rows_to_extract * row + rows_total * row + (1 << 20)
    free = shutil.disk_usage(cache_dir).free
    if free < need:
        raise CacheWriteError(
            f"not enough free space for {cache_dir}: extracting {rows_to_extract} images needs about "
            f"{need / 2**20:.1f} MiB and {free / 2**20:.1f} MiB are free; free some space or choose another --out"
        )


class LimitMissesClassesWarning(UserWarning):
    """``--limit N`` took the first N images in path order and they leave out some of the source's classes."""


def warn_if_limit_misses_classes(src: ImageSource, rows: np.ndarray) -> None:
    """Warn when the rows ``--limit`` keeps (the first ones, in path order) hold only some of the
    labelled source's classes: with class folders a quick ``--limit`` run is then a few classes,
    and every metric of the cache describes those only."""
    if src.labels is None:
        return
    labels = np.asarray(src.labels)
    present = np.unique(labels[labels >= 0])
    kept_labels = labels[rows]
    kept = np.unique(kept_labels[kept_labels >= 0])
    if present.size < 2 or kept.size == present.size:
        return
    names = src.class_names or []
    missing = [names[i] if 0 <= i < len(names) else str(i) for i in np.setdiff1d(present, kept).tolist()]
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    warnings.warn(
        f"{src.name}: --limit {rows.size} keeps the first {rows.size} images in path order, which hold "
        f"{kept.size} of its {present.size} classes (none of {shown}); the metrics of this cache describe "
        "those classes only. For a quick look at every class, give a folder with a few images of each.",
        LimitMissesClassesWarning,
        stacklevel=3,
    )


def extract(
    source: Any,
    extractor: str | Extractor = "inception",
    *,
    out: str | os.PathLike = "workspace/caches",
    weights: str = "default",
    device: str | None = None,
    batch_size: int = 64,
    num_workers: int | None = None,
    limit: int | None = None,
    thumbnails: int = DEFAULT_THUMBNAILS,
    shard: str | tuple[int, int] | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    labels: str = "auto",
    name: str | None = None,
    progress: Progress = True,
    extractor_options: dict[str, Any] | None = None,
    max_pixels: int | None = None,
    force: bool = False,
    wait: bool = True,
    protocol: str | Protocol | None = None,
    engine: str = "local",
    ray_address: str | None = None,
) -> EmbeddingCache:
    """Extract embeddings of ``source`` with ``extractor`` into a cache under ``out``, or reuse it.

    Nothing finished is lost: an interrupted run resumes from its finished chunks (each checked
    against its size and SHA-256; damaged ones are re-extracted), a damaged finished cache is
    rebuilt, and a finished cache made from other images or settings is never replaced unless
    ``force=True``. Options that change what a cache holds (``limit``, ``labels``, ``thumbnails``,
    ``max_pixels``) give it its own directory. One process writes a cache at a time (an OS file
    lock); a second one waits for it (``wait=True``) and then reuses its result.

    Args:
        source: folder, class folders, ``.zip``, ``.npz``, array/tensor, or an ``ImageSource``.
        extractor: a registry name (``"inception"``, the default as in ``workbench extract``;
            ``"clip"``, ``"dinov2"``, ``"pixels"``, ``"module:factory"`` for a plug-in) or an
            :class:`Extractor` instance.
        out: the workspace folder in which the cache directory is created.
        weights: ``"default"`` (published), a local weights file, or ``"none"`` (random init).
        device: ``"cuda"`` / ``"cpu"``; default CUDA when available.
        batch_size: images per forward pass.
        num_workers: DataLoader worker processes for decoding/resizing (default: cores - 1, max 4);
            with ``engine="ray"`` the most model actors (default: one per GPU of the cluster, or
            half its CPUs when it has no GPU).
        limit: only the first ``limit`` images (in source order); under a protocol that draws a
            sample (``"dgm-eval"``), the size of that sample instead (its ``--nsample``).
        thumbnails: side in pixels of stored thumbnails; 0 stores none.
        shard: ``"I/N"`` to fill only shard I of N (for N independent workers); ``open_cache``
            of the cache directory reads all N shards as one once they are complete.
        chunk_size: samples per resumable chunk.
        labels: class-folder labels for folder/zip sources: ``"auto"``, ``"folders"`` or ``"none"``.
        name: name of the source in the cache directory name (default: folder/file name).
        progress: the :mod:`workbench.progress` contract: True shows bars and messages on stderr,
            a callable receives :class:`~workbench.progress.ProgressEvent` objects (images
            fingerprinted and extracted, and every message as ``event.message``), False/None
            is silent.
        extractor_options: extractor-specific options (e.g. ``{"model": "ViT-B-16"}``).
        max_pixels: largest image (width x height) decoded; larger ones are skipped and listed
            (default: the images layer's limit, 8192 x 8192).
        force: replace a finished cache of other images or settings in the target directory.
        wait: when another process is writing the same cache, wait for it (True) or raise
            :class:`~workbench.cache.writer_lock.CacheBusyError` at once.
        protocol: ``"workbench"`` (default: the extractor's own settings, every image), or a
            reference tool's preset (``"pytorch-fid"``, ``"clean-fid"``, ``"torch-fidelity"``,
            ``"dgm-eval"``; see :mod:`workbench.protocols`): the extractor is set up to preprocess
            as that tool does (``extractor_options`` that contradict it are refused), the images
            are selected as it selects them (dgm-eval: at most 50,000, drawn with its seed and
            sorted), and the manifest records it (``protocol``). Caches of different protocols
            are different caches, and metrics refuse to mix them.
        engine: ``"local"`` (this process and its DataLoader workers) or ``"ray"`` (a Ray Data
            pipeline on a Ray cluster, :mod:`workbench.cache.ray_engine`; needs the
            ``distributed`` extra): decoding in CPU tasks, the model in an actor pool (a GPU per
            actor where the cluster has GPUs), the result written as a sharded cache of one
            shard per ``chunk_size`` images, equal to a local extraction. Not with ``shard``.
        ray_address: with ``engine="ray"``: None starts a local Ray instance, ``"auto"`` or
            ``"HOST:PORT"`` uses the running cluster (see :mod:`workbench.ray_cluster`).

    Returns:
        The opened :class:`EmbeddingCache` (memory-mapped).

    Raises:
        CacheError: a finished cache of other inputs is in the way (without ``force``), the disk
            is full or read-only (:class:`~workbench.cache.io_errors.CacheWriteError`), or the
            cache is busy (``wait=False``).
        ValueError: bad arguments, or no image could be read.
    """
    check_progress(progress)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}; got {engine!r}")
    if engine != "ray" and ray_address is not None:
        raise ValueError("ray_address is only used with engine='ray'")
    if engine == "ray" and shard is not None:
        raise ValueError("--shard and --ray exclude each other: the Ray engine extracts every shard itself")
    if engine == "ray":
        from ..ray_cluster import check_address

        check_address(ray_address)
    announcer = ProgressReporter(progress if callable(progress) else None, "extract")
    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress is True else announcer.say
    for arg, value, low in (("batch_size", batch_size, 1), ("chunk_size", chunk_size, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{arg} must be an integer >= {low}, got {value!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be a positive number of images, got {limit!r}")
    check_thumbnail_size(thumbnails)
    proto = resolve_protocol(protocol)
    if max_pixels is not None and (not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1):
        raise ValueError(f"max_pixels must be a positive number of pixels, got {max_pixels!r}")
    if isinstance(source, ImageSource):
        src = source
    else:
        src = open_source(source, labels=labels, **({"max_pixels": int(max_pixels)} if max_pixels else {}))
    if name:
        src.name = name
    if isinstance(extractor, Extractor):
        if proto.extractors is not None and extractor.name not in proto.extractors:
            proto.extractor_options(extractor.name)  # raises: the tool has no such extractor
    else:
        extractor_options = proto.extractor_options(str(extractor), extractor_options)
    n_listed = len(src)
    if limit is not None and int(limit) >= n_listed:
        limit = None  # the whole source: the same cache as without --limit
    rows = proto.sample_rows(n_listed, limit)
    if rows is not None and proto.sample_size is None:
        warn_if_limit_misses_classes(src, rows)
    if rows is not None:
        src = SubsetSource(src, rows)
    elif proto.sample_size is not None:
        limit = None  # a sampling protocol's --limit at or above the source's size: every image
    # with the Ray engine the driver's copy only describes the model (on the CPU); the actors build theirs
    local_device = "cpu" if engine == "ray" else device
    ext = (
        extractor.to(local_device)
        if isinstance(extractor, Extractor) and local_device
        else extractor
        if isinstance(extractor, Extractor)
        else create_extractor(extractor, weights=weights, device=local_device, **(extractor_options or {}))
    )

    n_total = len(src)
    shard_ij = parse_shard(shard)
    start, stop = (
        (0, n_total)
        if shard_ij is None
        else (shard_ij[0] * n_total // shard_ij[1], (shard_ij[0] + 1) * n_total // shard_ij[1])
    )
    if start == stop:
        assert shard_ij is not None  # only a shard can be empty: the source itself is not
        raise ValueError(f"shard {shard_ij[0]}/{shard_ij[1]} of {n_total} images is empty; use fewer shards")
    options = content_options(limit=limit, labels=labels, thumbnails=thumbnails, max_pixels=max_pixels)
    if not proto.is_default:
        options["protocol"] = proto.name  # another protocol, another cache (the default keeps old keys)
    protocol_entry = proto.manifest_entry(n_listed, limit)
    if engine == "ray":
        from .ray_engine import extract_on_ray

        spec = {"extractor": extractor, "weights": weights, "options": extractor_options}
        return extract_on_ray(
            src, ext, spec=spec, out=out, options=options, protocol=protocol_entry, batch_size=int(batch_size),
            num_workers=num_workers, thumbnails=thumbnails, chunk_size=int(chunk_size), device=device, force=force,
            wait=wait, progress=progress, say=say, ray_address=ray_address,
        )  # fmt: skip
    base_dir = cache_dir_for(src, ext, out, options)
    cache_dir = base_dir if shard_ij is None else base_dir / SHARDS_DIR / f"{shard_ij[0]:05d}-of-{shard_ij[1]:05d}"

    for note in getattr(src, "notes", None) or []:
        say(f"note: {note}")
    listing_fp = listing_fingerprint(src)
    hashes = content_hashes(src, start, stop, progress=progress)
    content_fp = digest(hashes)
    key = cache_key(ext.describe(), listing_fp, content_fp, start, stop, thumbnails, FORMAT_VERSION, options)
    duplicates = find_duplicates([src.sample_id(i) for i in range(start, stop)], hashes)
    if duplicates:
        say("warning: " + summarize_duplicates(duplicates))
    plan = _Plan(cache_dir=cache_dir, start=start, stop=stop, chunk=int(chunk_size), key=key)
    wanted = {
        "source": {"listing_fingerprint": listing_fp, "content_fingerprint": content_fp, "count_total": n_total},
        "extractor": ext.describe(),
        "options": options,
        "thumbnails": thumbnails,
        "range": [start, stop],
    }

    partial = cache_dir / PARTIAL_DIR
    kept = f"finished chunks are kept in {partial}; re-run the same command to resume"
    with write_errors(cache_dir, kept), WriterLock(cache_dir, wait=wait, say=say):
        if _check_finished(cache_dir, key, wanted, force, say):
            return open_cache(base_dir) if shard_ij is None else open_cache(cache_dir)
        state_path = partial / "state.json"
        if partial.is_dir():
            try:
                state = json.loads(state_path.read_text())
            except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                state = {}
            if state.get("key") != key:
                say(f"discarding an unfinished extraction in {partial} that was made from other inputs")
                shutil.rmtree(partial)
            elif isinstance(state.get("chunk"), int) and state["chunk"] != plan.chunk:
                say(f"resuming with the interrupted run's chunk size {state['chunk']} (not {plan.chunk})")
                plan.chunk = int(state["chunk"])
        partial.mkdir(parents=True, exist_ok=True)
        write_json_atomic(state_path, {"key": key, "chunk": plan.chunk, "start": start, "stop": stop})

        ranges = plan.chunk_ranges()
        done = _load_done_chunks(partial, ranges, say)
        todo = [r for r in ranges if r[0] not in done]
        n_done = sum(b - a for a, b in ranges if a in done)
        if done:
            say(f"resuming: {len(done)} of {len(ranges)} chunks ({n_done} images) already extracted")
        _disk_check(cache_dir, (stop - start) - n_done, stop - start, ext, thumbnails)

        t0 = time.perf_counter()
        if todo:
            _run_chunks(src, ext, partial, todo, batch_size, num_workers, thumbnails, progress, n_done, stop - start)
        cache = _finalize(
            plan,
            partial,
            ranges,
            src,
            ext,
            hashes,
            listing_fp,
            content_fp,
            thumbnails,
            shard_ij,
            n_total,
            options,
            duplicates,
            protocol_entry,
        )
    elapsed = time.perf_counter() - t0
    if cache.skipped:
        names = ", ".join(s["id"] for s in cache.skipped[:10])
        say(f"skipped {len(cache.skipped)} unreadable image(s): {names}{' ...' if len(cache.skipped) > 10 else ''}")
    warning = not_pretrained_warning(ext.weights.pretrained, ext.weights.identity)
    if warning:
        say("warning: " + warning)
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
    progress: Progress,
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
    bar = ProgressReporter(progress, f"extract {ext.name}", n_range, unit="img", initial=n_done)
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
            bar.advance(len(batches[b]))
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
        "features": np.concatenate(acc["features"]).astype(np.float32)
        if acc["features"]
        else np.zeros((0, dim), np.float32),
    }
    if acc["logits"]:
        arrays["logits"] = np.concatenate(acc["logits"]).astype(np.float32)
    if acc["thumbs"]:
        arrays["thumbs"] = np.concatenate(acc["thumbs"])
    npz, marker = _chunk_paths(partial, start)
    save_npz_atomic(npz, **arrays)
    bad = [{"index": int(i), "id": src.sample_id(int(i)), "reason": reason} for i, reason in acc["bad"]]
    write_json_atomic(
        marker,
        {
            "start": start,
            "stop": stop,
            "n": int(rows.shape[0]),
            "skipped": bad,
            "bytes": os.path.getsize(npz),
            "sha256": file_sha256(npz),
        },
    )


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
    options: dict[str, Any],
    duplicates: list[list[str]],
    protocol: dict[str, Any] | None = None,
    *,
    engine: str = "local",
    device: str | None = None,
) -> EmbeddingCache:
    """Assemble the finished chunks into the cache files, then write the manifest last.

    The data files are streamed (never grown through a memory map, which dies of ``SIGBUS`` on a
    full disk) under temporary names, hashed while written, and renamed into place; any failure
    removes the temporary files and keeps the chunks.
    """
    cache_dir = plan.cache_dir
    infos = [json.loads(_chunk_paths(partial, start)[1].read_text()) for start, _ in ranges]
    n = sum(i["n"] for i in infos)
    skipped = [s for i in infos for s in i["skipped"]]
    if n == 0:
        raise ValueError(
            f"none of the {plan.stop - plan.start} images could be read; first errors: "
            + "; ".join(s["reason"] for s in skipped[:3])
        )
    n_classes = ext.num_classes
    has_logits = n_classes is not None
    tmp = {name: cache_dir / (name + ".tmp") for name in (FEATURES, LOGITS, THUMBNAILS, META)}
    files: dict[str, dict[str, Any]] = {}
    try:
        rows_all = np.empty(n, dtype=np.int64)
        with contextlib.ExitStack() as stack:
            writers = {FEATURES: stack.enter_context(NpyStreamWriter(tmp[FEATURES], (n, ext.dim), np.float32))}
            if n_classes is not None:
                writers[LOGITS] = stack.enter_context(NpyStreamWriter(tmp[LOGITS], (n, n_classes), np.float32))
            if thumb_px:
                writers[THUMBNAILS] = stack.enter_context(
                    NpyStreamWriter(tmp[THUMBNAILS], (n, thumb_px, thumb_px, 3), np.uint8)
                )
            pos = 0
            for start, stop in ranges:
                npz, _marker = _chunk_paths(partial, start)
                try:
                    with np.load(npz, allow_pickle=False) as z:
                        k = z["rows"].shape[0]
                        rows_all[pos : pos + k] = z["rows"]
                        writers[FEATURES].write(z["features"])
                        if has_logits:
                            writers[LOGITS].write(z["logits"])
                        if thumb_px:
                            writers[THUMBNAILS].write(z["thumbs"])
                except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
                    if isinstance(exc, OSError) and exc.errno is not None:
                        raise  # a write error (disk full, ...), reported by the caller
                    for path in _chunk_paths(partial, start):
                        path.unlink(missing_ok=True)
                    raise CacheError(
                        f"chunk of images [{start}, {stop}) in {partial} was damaged while the cache was assembled "
                        f"({type(exc).__name__}: {exc}); it was removed: re-run the same command to re-extract it"
                    ) from exc
                pos += k
        for fname, w in writers.items():
            files[fname] = {"bytes": w.nbytes, "sha256": w.sha256}

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
        files[META] = {"bytes": os.path.getsize(tmp[META]), "sha256": file_sha256(tmp[META])}
        for fname in files:
            commit_file(tmp[fname], cache_dir / fname)
    except BaseException:
        for path in tmp.values():
            path.unlink(missing_ok=True)
        raise
    files = {f: files[f] for f in (FEATURES, META, LOGITS, THUMBNAILS) if f in files}
    source_info = dict(src.describe())
    source_info.update(
        name=src.name,
        listing_fingerprint=listing_fp,
        content_fingerprint=content_fp,
        count_total=n_total,
        class_names=src.class_names,
        has_labels=src.labels is not None,
        notes=list(getattr(src, "notes", None) or []),
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
        "options": options,
        "protocol": protocol or {"name": "workbench"},
        "extractor": ext.describe(),
        "extractor_class_names": ext.class_names,
        "pretrained": ext.weights.pretrained,
        "warning": not_pretrained_warning(ext.weights.pretrained, ext.weights.identity),
        "source": source_info,
        "range": [plan.start, plan.stop],
        "shard": None
        if shard_ij is None
        else {"index": shard_ij[0], "count": shard_ij[1], "start": plan.start, "stop": plan.stop},
        "skipped": skipped,
        "duplicates": duplicates,
        "files": files,
        "device": device or str(ext.device),
        "engine": engine,
        "versions": library_versions(),
    }
    write_json_atomic(cache_dir / MANIFEST, manifest)
    shutil.rmtree(partial, ignore_errors=True)
    return open_cache(cache_dir)
