"""The build's bookkeeping: timed steps, thread limits, and reuse-by-key of models and zoo sets.

A reusable output is a file plus a record of the *key* it was made from (a digest of all its
inputs) and of the file's SHA-256. It is reused only when the recomputed key equals the recorded
one and the file on disk still has the recorded hash; otherwise it is made again. Files are
written under a temporary name and renamed, and the record is written after the file, so an
interrupted build never leaves a record that vouches for a partial file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cache import cache_dir_for, extract
from ..cache.atomic import write_json_atomic
from ..cache.extraction import content_options
from ..cache.fingerprint import file_sha256
from ..extractors import create_extractor
from ..workspace.index import cache_details
from . import models as M
from .config import WORKSPACE_FORMAT
from .extractors import WEIGHT_FILES


@dataclass
class StepRecord:
    """One step of the build: its name, wall and CPU time in seconds, and whether its output was reused.

    ``cpu_seconds`` counts this process and its finished children (data-loader workers); on a
    machine shared with other work it estimates what the wall time would be on an idle one.
    """

    name: str
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    reused: bool = False
    note: str = ""


def digest_json(obj: Any) -> str:
    """BLAKE2b-128 hex digest of ``obj`` as canonical JSON (sorted keys): the key of a step."""
    return hashlib.blake2b(json.dumps(obj, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


def digest_arrays(*arrays: np.ndarray) -> str:
    """BLAKE2b-128 hex digest of the shapes, dtypes and bytes of ``arrays``."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        h.update(str(a.shape).encode() + str(a.dtype).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, or ``{}`` when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def cpu_time() -> float:
    """CPU seconds (user + system) of this process and its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class StepTimer:
    """Times steps and prints one line per step: ``[demo] name ... 12.3 s (reused)``."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.records: list[StepRecord] = []

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[StepRecord]:
        rec = StepRecord(name)
        t0, c0 = time.perf_counter(), cpu_time()
        yield rec
        rec.seconds = time.perf_counter() - t0
        rec.cpu_seconds = cpu_time() - c0
        self.records.append(rec)
        state = "reused" if rec.reused else "done"
        self.say(
            f"[demo] {name:<36s} {rec.seconds:7.1f} s (cpu {rec.cpu_seconds:6.1f} s)  {state}"
            + (f"  {rec.note}" if rec.note else "")
        )


def save_state_dict(net: torch.nn.Module, path: Path, metadata: dict[str, str]) -> None:
    """Write ``net``'s state dict to ``path`` as ``.safetensors`` atomically (temporary file, fsync, rename).

    ``metadata`` is stored as one JSON string under the header key ``"workbench"``: safetensors
    writes a metadata map of several keys in an arbitrary order, which would make the file's
    bytes, hence its SHA-256 (the weights identity), differ between identical trainings.
    """
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    header = {"workbench": json.dumps(metadata, sort_keys=True)}
    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, str(tmp), metadata=header)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def reuse_or_train(
    name: str,
    models_dir: Path,
    key: str,
    force: bool,
    train: Callable[[], tuple[torch.nn.Module, M.TrainingLog, dict[str, Any]]],
    rec: StepRecord,
) -> dict[str, Any]:
    """Train ``name`` (or reuse its weights when the key and the file's SHA-256 match)."""
    weights = models_dir / (WEIGHT_FILES.get(name) or f"{name}.safetensors")
    info_path = weights.with_suffix(".json")
    info = read_json(info_path)
    if not force and info.get("key") == key and weights.is_file() and file_sha256(weights) == info.get("sha256"):
        rec.reused = True
        return info
    net, log, extra = train()
    save_state_dict(net, weights, {"workbench_model": name, "key": key})
    info = {
        "name": name,
        "key": key,
        "file": weights.name,
        "sha256": file_sha256(weights),
        "identity": f"sha256:{file_sha256(weights)}",
        "pretrained": False,
        "parameters": M.parameter_count(net),
        "training": asdict(log),
        **extra,
    }
    write_json_atomic(info_path, info)
    return info


def reuse_or_make_set(
    name: str,
    zoo_dir: Path,
    key: str,
    force: bool,
    entries: dict[str, Any],
    make: Callable[[], dict[str, Any]],
    rec: StepRecord,
) -> dict[str, Any]:
    """Make zoo set ``name`` (``make`` writes ``zoo/<name>.npz`` and returns its description) or reuse it."""
    path = zoo_dir / f"{name}.npz"
    old = entries.get(name, {})
    if not force and old.get("key") == key and path.is_file() and file_sha256(path) == old.get("sha256"):
        rec.reused = True
        return old
    entry = make()
    entry.update(key=key, file=f"zoo/{path.name}", sha256=file_sha256(path))
    entries[name] = entry
    write_json_atomic(zoo_dir / "zoo.json", {"format": WORKSPACE_FORMAT, "sets": entries})
    return entry


def cache_sets(
    sources: list[tuple[str, str, Any, int]],
    extractors: tuple[str, ...],
    *,
    batch_size: int,
    force: bool,
    models_dir: Path,
    caches_dir: Path,
    root: Path,
    steps: StepTimer,
    progress: bool,
    label: str = "",
) -> list[dict[str, Any]]:
    """Cache every ``(set, role, source, thumbnail px)`` of ``sources`` under every extractor.

    The demo owns its caches: a cache of an earlier build's images is replaced (``force=True``
    of :func:`~workbench.cache.extract`); one of the same images is reused (the step says so).
    Returns the workspace index entries, paths relative to ``root``.
    """
    caches = []
    for ext_name in extractors:
        weights = "default" if ext_name == "pixels" else str(models_dir / WEIGHT_FILES[ext_name])
        ext = create_extractor(ext_name, weights=weights, device="cpu")
        for set_name, role, src, thumbs in sources:
            with steps(f"{label}cache {set_name} x {ext_name}") as rec:
                target = cache_dir_for(src, ext, caches_dir, content_options(thumbnails=thumbs))
                before = read_json(target / "manifest.json").get("key")
                if force and target.exists():
                    shutil.rmtree(target)
                cache = extract(
                    src, ext, out=caches_dir, thumbnails=thumbs, batch_size=batch_size, progress=progress, force=True
                )
                rec.reused = not force and before is not None and before == cache.manifest["key"]
                rec.note = f"{len(cache)} x {cache.manifest['dim']}"
            caches.append(
                {
                    "set": set_name,
                    "extractor": ext_name,
                    "role": role,
                    "path": os.path.relpath(cache.path, root),
                    **cache_details(cache),
                }
            )
    return caches
