"""Reading a built demo workspace: its ``workspace.json`` index and the caches it lists."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..cache import EmbeddingCache, open_cache
from .config import WORKSPACE_FILE
from .extractors import default_demo_dir


def _root(out: str | os.PathLike | None) -> Path:
    return (Path(out) if out is not None else default_demo_dir()).expanduser().resolve()


def load_workspace(out: str | os.PathLike | None = None) -> dict[str, Any]:
    """The parsed ``workspace.json`` of the demo workspace ``out`` (default ``workspace/demo``).

    Keys: ``sets`` (role, size, flaw of each set), ``caches`` (one entry per (set, extractor):
    ``set, extractor, role, path`` relative to ``out``, ``n, dim, key, weights_identity``),
    ``models``, ``extractors``, ``fd_vs_reference``, ``steps``; ``root`` is added (absolute ``out``).

    Raises:
        FileNotFoundError: no index there; run ``workbench demo --out OUT`` first.
    """
    root = _root(out)
    path = root / WORKSPACE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no demo workspace at {root} ({WORKSPACE_FILE} missing); run `workbench demo --out {root}` first")
    index = json.loads(path.read_text())
    index["root"] = str(root)
    return index


def workspace_cache(set_name: str, extractor: str, out: str | os.PathLike | None = None) -> EmbeddingCache:
    """Open the cache of ``set_name`` (e.g. ``"reference"``, ``"memorizer"``) by ``extractor``
    (``"pixels"``, ``"demo-classifier"``, ``"demo-ssl"``) in the demo workspace ``out``."""
    index = load_workspace(out)
    for c in index["caches"]:
        if c["set"] == set_name and c["extractor"] == extractor:
            return open_cache(Path(index["root"]) / c["path"])
    pairs = sorted({c["set"] for c in index["caches"]}), sorted({c["extractor"] for c in index["caches"]})
    raise KeyError(f"no cache for set {set_name!r} by extractor {extractor!r}; sets: {pairs[0]}, extractors: {pairs[1]}")
