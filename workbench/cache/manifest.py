"""The cache manifest: ``manifest.json``, the single source of truth of a complete cache.

It is written last, atomically, after every data file is in place; a directory without it is an
incomplete cache and is never opened as complete.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FEATURES = "features.npy"
LOGITS = "logits.npy"
META = "meta.parquet"
THUMBNAILS = "thumbnails.npy"
PARTIAL_DIR = "_partial"
SHARDS_DIR = "shards"

NOT_PRETRAINED_WARNING = (
    "features computed with weights that are NOT the published pretrained weights "
    "({identity}); values are not comparable with published numbers (e.g. this is not real FID)"
)

NO_WEIGHTS = "no-weights"
"""Weights identity of an extractor that has no weights at all (``pixels``): nothing published to miss."""


def not_pretrained_warning(pretrained: bool, identity: str) -> str | None:
    """The warning a cache of a network with other than its published weights carries (random
    initialisation, a local file), or None: published weights, or an extractor without weights."""
    if pretrained or identity == NO_WEIGHTS:
        return None
    return NOT_PRETRAINED_WARNING.format(identity=identity)


class CacheError(ValueError):
    """A cache directory is missing, incomplete, truncated, tampered with or of another format."""


def library_versions() -> dict[str, str]:
    """Versions of the libraries that can change features, for the manifest."""
    out = {"python": platform.python_version()}
    for dist in ("workbench", "torch", "torchvision", "numpy", "pillow", "open_clip_torch", "timm"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def read_manifest(directory: Path) -> dict[str, Any]:
    """Parse and check ``directory/manifest.json``; raises :class:`CacheError` with the reason."""
    path = directory / MANIFEST
    if not path.is_file():
        partial = (directory / PARTIAL_DIR).is_dir()
        hint = (
            " An interrupted extraction was found: re-run the same `workbench extract` command to resume it."
            if partial
            else ""
        )
        raise CacheError(f"{directory} is not a complete embedding cache (no {MANIFEST}).{hint}")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CacheError(f"{path} is corrupt (not valid JSON: {exc}); re-run the extraction") from exc
    if not isinstance(manifest, dict) or "format_version" not in manifest:
        raise CacheError(f"{path} is not a workbench cache manifest")
    if manifest["format_version"] != FORMAT_VERSION:
        raise CacheError(
            f"{path} has cache format {manifest['format_version']}; this workbench reads format "
            f"{FORMAT_VERSION}. Re-extract, or use the workbench version that wrote it "
            f"({manifest.get('versions', {}).get('workbench', 'unknown')})"
        )
    for field in ("n", "dim", "key", "extractor", "files"):
        if field not in manifest:
            raise CacheError(f"{path} lacks the field {field!r}; the manifest was edited or truncated")
    return manifest


def extractor_differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """``"key: a_value vs b_value"`` for every (nested) field where two extractor descriptions differ."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += extractor_differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}: {va!r} vs {vb!r}")
    return out
