"""Extraction on a Ray cluster: ``extract(..., engine="ray")`` / ``workbench extract SOURCE --ray``.

A Ray Data pipeline over the images of the shards still to do:

1. the row numbers, in blocks of ``batch_size``;
2. CPU tasks that decode each image, run the extractor's preprocessor and make the thumbnail
   (:func:`_decode_batch`; an unreadable image becomes a row marked not ok, listed in the
   manifest's ``skipped`` exactly as the local engine does);
3. the model in an actor pool (:class:`_ModelWorker`, one model per actor; one GPU per actor
   when the cluster has GPUs, CPU actors otherwise; at most ``num_workers`` actors);
4. the driver, which collects the rows of each shard and writes the shard, when all its rows are
   in, with the local engine's writers (``_write_chunk`` + ``_finalize``: data files under
   temporary names, renamed, the manifest last).

The result is the sharded cache layout of ``workbench extract --shard I/N``
(``<cache>/shards/IIIII-of-NNNNN/``, one shard per ``chunk_size`` images), with the same keys
as ``--shard I/N`` runs: it opens with :func:`~workbench.cache.open_cache` and holds the same
rows, order, ids and (to float rounding) features as a local extraction; each shard's manifest
says ``"engine": "ray"``.

Fault tolerance: Ray retries a decode task whose process dies and restarts a killed model actor
(Ray Data's defaults: unlimited restarts and retries for system failures); every row is kept
once (rows are keyed by their number: a row delivered twice is dropped). The shard is the unit
of resumption: a re-run after the driver died skips the finished shards (same key) and redoes
the others. The writer lock of the cache directory keeps a second driver out.

Every node must see the images at the same path (a shared file system); the cache is written
by the driver only.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..extractors import Extractor, create_extractor
from ..images import ImageDecodeError, ImageSource, find_duplicates, make_thumbnail
from ..progress import Progress, ProgressReporter
from ..ray_cluster import cluster_resources, connect
from .fingerprint import cache_key, content_hashes, digest, listing_fingerprint
from .io_errors import write_errors
from .manifest import FORMAT_VERSION, PARTIAL_DIR, SHARDS_DIR, CacheError
from .reader import EmbeddingCache, open_cache
from .writer_lock import WriterLock

_MODEL_COLUMNS = ("row", "ok", "error", "features", "logits", "thumbs")


def _decode_batch(
    batch: dict[str, np.ndarray], *, source: ImageSource, preprocessor: Any, thumb_px: int, x_shape: tuple[int, ...]
) -> dict[str, np.ndarray]:
    """Decode, preprocess and thumbnail the images of ``batch["row"]`` (a CPU task).

    Returns columns ``row`` (int64), ``ok`` (bool), ``error`` (str, empty when ok), ``x``
    (``B x x_shape`` float32; zeros where not ok) and ``thumbs`` (``B x px x px x 3`` uint8, when
    thumbnails are kept).
    """
    rows = np.asarray(batch["row"], dtype=np.int64)
    n = rows.shape[0]
    x = np.zeros((n, *x_shape), dtype=np.float32)
    thumbs = np.zeros((n, thumb_px, thumb_px, 3), dtype=np.uint8) if thumb_px else None
    ok = np.zeros(n, dtype=bool)
    errors = [""] * n
    for j, row in enumerate(rows):
        try:
            img = source.load(int(row))
        except ImageDecodeError as exc:
            errors[j] = str(exc)
            continue
        x[j] = preprocessor(img)
        if thumbs is not None:
            thumbs[j] = make_thumbnail(img, thumb_px)
        ok[j] = True
    out = {"row": rows, "ok": ok, "error": np.array(errors, dtype=str), "x": x}
    if thumbs is not None:
        out["thumbs"] = thumbs
    return out


class _ModelWorker:
    """One model per actor: features (and logits) of the decoded rows of a batch.

    Args:
        spec: ``{"extractor": name or Extractor, "weights": ..., "options": {...}}``.
        expected: the driver's ``Extractor.describe()``; an actor whose model differs (other
            weights or library versions on its node) stops the run instead of mixing features.
        device: ``"cuda"`` (the actor's GPU) or ``"cpu"``.
    """

    def __init__(self, spec: dict[str, Any], expected: dict[str, Any], device: str) -> None:
        import torch

        threads = int(float(os.environ.get("OMP_NUM_THREADS", "0") or 0))
        if threads > 0:
            torch.set_num_threads(threads)
        ext = spec["extractor"]
        if isinstance(ext, Extractor):
            self.ext = ext.to(device)
        else:
            self.ext = create_extractor(ext, weights=spec["weights"], device=device, **(spec["options"] or {}))
        if self.ext.describe() != expected:
            import socket

            raise RuntimeError(
                f"the extractor built on node {socket.gethostname()} differs from the driver's "
                f"({self.ext.describe()} vs {expected}); install the same workbench, libraries and weights on "
                "every node"
            )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok = np.asarray(batch["ok"], dtype=bool)
        n = ok.shape[0]
        features = np.zeros((n, self.ext.dim), dtype=np.float32)
        logits = np.zeros((n, self.ext.num_classes), dtype=np.float32) if self.ext.num_classes else None
        if ok.any():
            out = self.ext(np.ascontiguousarray(batch["x"][ok]))
            features[ok] = out.features.cpu().numpy()
            if logits is not None and out.logits is not None:
                logits[ok] = out.logits.cpu().numpy()
        result = {"row": batch["row"], "ok": ok, "error": batch["error"], "features": features}
        if logits is not None:
            result["logits"] = logits
        if "thumbs" in batch:
            result["thumbs"] = batch["thumbs"]
        return result


def _shard_counts(shards_dir: Path) -> set[int]:
    """The shard counts N of the ``IIIII-of-NNNNN`` folders already in ``shards_dir``."""
    if not shards_dir.is_dir():
        return set()
    names = [p.name.split("-of-")[-1] for p in shards_dir.iterdir() if p.is_dir() and "-of-" in p.name]
    return {int(n) for n in names if n.isdigit()}


def _preprocessed_shape(src: ImageSource, preprocessor: Any) -> tuple[int, ...]:
    """Shape of one preprocessed image (from the first readable image of ``src``)."""
    for i in range(min(len(src), 64)):
        try:
            return tuple(np.asarray(preprocessor(src.load(i))).shape)
        except ImageDecodeError:
            continue
    return tuple(np.asarray(preprocessor(np.zeros((64, 64, 3), np.uint8))).shape)


def extract_on_ray(
    src: ImageSource,
    ext: Extractor,
    *,
    spec: dict[str, Any],
    out: str | os.PathLike,
    options: dict[str, Any],
    protocol: dict[str, Any] | None,
    batch_size: int,
    num_workers: int | None,
    thumbnails: int,
    chunk_size: int,
    device: str | None,
    force: bool,
    wait: bool,
    progress: Progress,
    say: Any,
    ray_address: str | None,
) -> EmbeddingCache:
    """The ``engine="ray"`` branch of :func:`workbench.cache.extract` (arguments validated there).

    ``ext`` is the driver's copy of the extractor (on the CPU; only its description, dimensions
    and class names are used here); ``spec`` tells the actors how to build theirs.
    """
    from . import extraction as local

    n_total = len(src)
    base_dir = local.cache_dir_for(src, ext, out, options)
    for note in getattr(src, "notes", None) or []:
        say(f"note: {note}")
    listing_fp = listing_fingerprint(src)
    hashes = content_hashes(src, 0, n_total, progress=progress)
    whole_key = cache_key(ext.describe(), listing_fp, digest(hashes), 0, n_total, thumbnails, FORMAT_VERSION, options)

    def wanted_of(start: int, stop: int, content_fp: str) -> dict[str, Any]:
        return {
            "source": {"listing_fingerprint": listing_fp, "content_fingerprint": content_fp, "count_total": n_total},
            "extractor": ext.describe(),
            "options": options,
            "thumbnails": thumbnails,
            "range": [start, stop],
        }

    shards_dir = base_dir / SHARDS_DIR
    kept = f"finished shards are kept in {shards_dir}; re-run the same command to resume"
    with write_errors(base_dir, kept), WriterLock(base_dir, wait=wait, say=say):
        if local._check_finished(base_dir, whole_key, wanted_of(0, n_total, digest(hashes)), force, say):
            return open_cache(base_dir)
        count = max(1, -(-n_total // int(chunk_size)))
        earlier = _shard_counts(shards_dir)
        if len(earlier) > 1 or (earlier and max(earlier) > n_total):
            if not force:
                raise CacheError(
                    f"{shards_dir} holds shards of an earlier run that cannot be of these {n_total} images "
                    f"(shard counts {sorted(earlier)}); pass --force (force=True) to replace them"
                )
            say(f"replacing the shards in {shards_dir} (--force)")
            shutil.rmtree(shards_dir)
        elif earlier and earlier != {count}:
            count = earlier.pop()
            say(f"resuming with the earlier run's {count} shards (not {max(1, -(-n_total // int(chunk_size)))})")
        shards: list[dict[str, Any]] = []
        for i in range(count):
            start, stop = i * n_total // count, (i + 1) * n_total // count
            content_fp = digest(hashes[start:stop])
            key = cache_key(ext.describe(), listing_fp, content_fp, start, stop, thumbnails, FORMAT_VERSION, options)
            shard_dir = shards_dir / f"{i:05d}-of-{count:05d}"
            done = local._check_finished(shard_dir, key, wanted_of(start, stop, content_fp), force, say)
            shards.append(
                {"index": i, "start": start, "stop": stop, "dir": shard_dir, "key": key, "fp": content_fp, "done": done}
            )
        todo = [s for s in shards if not s["done"]]
        n_done = sum(s["stop"] - s["start"] for s in shards if s["done"])
        if n_done:
            say(f"resuming: {count - len(todo)} of {count} shards ({n_done} images) already extracted")
        t0 = time.perf_counter()
        if todo:
            local._disk_check(base_dir, n_total - n_done, n_total - n_done, ext, thumbnails)
            _run_pipeline(
                connect(ray_address), src, ext, spec, todo, count, n_total, hashes, listing_fp, options, protocol, thumbnails,
                batch_size, num_workers, device, progress, n_done, say,
            )  # fmt: skip
        cache = open_cache(base_dir)
    elapsed = time.perf_counter() - t0
    if cache.skipped:
        names = ", ".join(s["id"] for s in cache.skipped[:10])
        say(f"skipped {len(cache.skipped)} unreadable image(s): {names}{' ...' if len(cache.skipped) > 10 else ''}")
    warning = cache.manifest.get("warning")
    if warning:
        say("warning: " + warning)
    say(f"cache written to {base_dir} ({len(cache)} x {cache.manifest['dim']}, {count} shards, {elapsed:.1f} s)")
    return cache


def _pool_plan(num_workers: int | None, device: str | None) -> tuple[str, int, float, float]:
    """``(device, pool size, GPUs per actor, CPUs per task and actor)`` for the connected cluster.

    Each decode task and each model actor asks for one CPU, or half the cluster's CPUs on a
    cluster of fewer than two (a model actor and a decode task must fit at once).
    """
    res = cluster_resources()
    cpu_unit = 1.0 if res["CPU"] >= 2 else max(res["CPU"], 0.01) / 2
    gpus = int(res["GPU"])
    use_gpu = gpus > 0 and (device is None or device.startswith("cuda"))
    if device is not None and device.startswith("cuda") and gpus == 0:
        raise ValueError(f"--device {device}: the Ray cluster has no GPU; leave --device out or use --device cpu")
    if use_gpu:
        size = gpus if num_workers is None else min(int(num_workers), gpus)
        return "cuda", max(1, size), 1.0, cpu_unit
    cpus = int(res["CPU"])
    # half the CPUs run models, the other half decodes (at least one actor)
    size = max(1, cpus // 2) if num_workers is None else int(num_workers)
    return "cpu", max(1, size), 0.0, cpu_unit


def _run_pipeline(
    ray: Any,
    src: ImageSource,
    ext: Extractor,
    spec: dict[str, Any],
    todo: list[dict[str, Any]],
    count: int,
    n_total: int,
    hashes: list[str],
    listing_fp: str,
    options: dict[str, Any],
    protocol: dict[str, Any] | None,
    thumbnails: int,
    batch_size: int,
    num_workers: int | None,
    device: str | None,
    progress: Progress,
    n_done: int,
    say: Any,
) -> None:
    """Run the Ray Data pipeline over the rows of ``todo`` and write each shard when it is complete."""
    from . import extraction as local

    actor_device, pool, gpus, cpu_unit = _pool_plan(num_workers, device)
    say(
        f"ray: {len(todo)} shard(s) to extract on {pool} {'GPU' if gpus else 'CPU'} model actor(s) "
        f"(cluster: {cluster_resources()['CPU']:.0f} CPUs, {cluster_resources()['GPU']:.0f} GPUs)"
    )
    rows = np.concatenate([np.arange(s["start"], s["stop"], dtype=np.int64) for s in todo])
    ds = ray.data.from_items([{"row": int(r)} for r in rows], override_num_blocks=-(-rows.size // batch_size))
    x_shape = _preprocessed_shape(src, ext.preprocessor)
    ds = ds.map_batches(
        _decode_batch,
        batch_size=batch_size,
        batch_format="numpy",
        fn_kwargs={"source": src, "preprocessor": ext.preprocessor, "thumb_px": thumbnails, "x_shape": x_shape},
        num_cpus=cpu_unit,
        # the memory a decode task needs (its process, about 400 MiB with torch and numpy, plus its
        # batch twice: decoded and collated). Declaring it also keeps
        # Ray Data from fusing decoding into the model actors (their resources differ): decoding runs
        # in its own CPU tasks, in parallel with the models.
        memory=(512 << 20) + 2 * batch_size * (4 * int(np.prod(x_shape)) + 3 * thumbnails**2),
    )
    ds = ds.map_batches(
        _ModelWorker,
        batch_size=batch_size,
        batch_format="numpy",
        fn_constructor_kwargs={"spec": spec, "expected": ext.describe(), "device": actor_device},
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=pool),
        num_gpus=gpus,
        num_cpus=cpu_unit,
    )

    starts = np.array([s["start"] for s in todo], dtype=np.int64)
    buffers: dict[int, dict[str, Any]] = {}
    n_written = shown = count - len(todo)
    bar = ProgressReporter(progress, f"extract {ext.name} (ray)", n_total, unit="img", initial=n_done)
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            batch_rows = np.asarray(batch["row"], dtype=np.int64)
            which = np.searchsorted(starts, batch_rows, side="right") - 1
            fresh = 0
            for t in np.unique(which):
                shard = todo[int(t)]
                buf = buffers.get(int(t))
                if buf is None:
                    buf = buffers[int(t)] = {
                        "seen": np.zeros(shard["stop"] - shard["start"], dtype=bool),
                        "parts": [],
                    }
                sel = np.flatnonzero(which == t)
                local_rows = batch_rows[sel] - shard["start"]
                new = ~buf["seen"][local_rows]  # a row delivered twice (a retried task) is kept once
                sel, local_rows = sel[new], local_rows[new]
                if sel.size == 0:
                    continue
                buf["seen"][local_rows] = True
                buf["parts"].append({c: np.asarray(batch[c])[sel] for c in _MODEL_COLUMNS if c in batch})
                fresh += sel.size
                if buf["seen"].all():  # the shard is complete: write it
                    _write_shard(local, shard, buf["parts"], src, ext, count, n_total, hashes, listing_fp, options,
                                 protocol, thumbnails, actor_device)  # fmt: skip
                    del buffers[int(t)]
                    n_written += 1
            bar.advance(fresh, message=f"{n_written}/{count} shards written")
            if n_written != shown:
                bar.say(f"{n_written}/{count} shards written")
                shown = n_written
    finally:
        bar.close()
    if buffers:
        missing = sum(int((~b["seen"]).sum()) for b in buffers.values())
        raise RuntimeError(f"the Ray pipeline ended with {missing} image(s) not delivered; re-run to finish")


def _write_shard(
    local: Any,
    shard: dict[str, Any],
    parts: list[dict[str, np.ndarray]],
    src: ImageSource,
    ext: Extractor,
    count: int,
    n_total: int,
    hashes: list[str],
    listing_fp: str,
    options: dict[str, Any],
    protocol: dict[str, Any] | None,
    thumbnails: int,
    actor_device: str,
) -> None:
    """Write one complete shard atomically with the local engine's writers (manifest last)."""
    cols = {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}
    order = np.argsort(cols["row"], kind="stable")
    cols = {c: v[order] for c, v in cols.items()}
    ok = cols["ok"].astype(bool)
    acc: dict[str, list[Any]] = {
        "rows": [cols["row"][ok]],
        "features": [cols["features"][ok]],
        "logits": [cols["logits"][ok]] if "logits" in cols else [],
        "thumbs": [cols["thumbs"][ok]] if "thumbs" in cols else [],
        "bad": [(int(r), str(e)) for r, e in zip(cols["row"][~ok], cols["error"][~ok])],
    }
    start, stop, shard_dir = shard["start"], shard["stop"], shard["dir"]
    shard_hashes = hashes[start:stop]
    duplicates = find_duplicates([src.sample_id(i) for i in range(start, stop)], shard_hashes)
    plan = local._Plan(cache_dir=shard_dir, start=start, stop=stop, chunk=stop - start, key=shard["key"])
    with WriterLock(shard_dir, wait=True, say=lambda _m: None):
        partial = shard_dir / PARTIAL_DIR
        shutil.rmtree(partial, ignore_errors=True)  # an unfinished attempt of a killed driver
        partial.mkdir(parents=True)
        local._write_chunk(partial, start, stop, acc, src, ext.dim)
        local._finalize(
            plan,
            partial,
            [(start, stop)],
            src,
            ext,
            shard_hashes,
            listing_fp,
            shard["fp"],
            thumbnails,
            (shard["index"], count),
            n_total,
            options,
            duplicates,
            protocol,
            engine="ray",
            device=actor_device,
        )
