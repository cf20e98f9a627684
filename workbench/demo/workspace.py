"""Reading a built demo workspace: its ``workspace.json`` index and the caches it lists.

The index is read by :func:`workbench.workspace.index.read_index`, the one reader of
``workspace.json``; this module only adds the demo's default folder and its messages.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..cache import EmbeddingCache, open_cache
from ..workspace.index import WORKSPACE_FILE, WorkspaceIndex, read_index
from .extractors import default_demo_dir


def _root(out: str | os.PathLike | None) -> Path:
    return (Path(out) if out is not None else default_demo_dir()).expanduser().resolve()


def _index(out: str | os.PathLike | None) -> WorkspaceIndex:
    root = _root(out)
    if not (root / WORKSPACE_FILE).is_file():
        raise FileNotFoundError(
            f"no demo workspace at {root} ({WORKSPACE_FILE} missing); run `workbench demo --out {root}` first"
        )
    return read_index(root)


def load_workspace(out: str | os.PathLike | None = None) -> dict[str, Any]:
    """The parsed ``workspace.json`` of the demo workspace ``out`` (default ``workspace/demo``).

    Keys: ``sets`` (role, size, flaw of each set), ``caches`` (one entry per (set, extractor):
    ``set, extractor, role, path`` relative to ``out``, ``n, dim, key, weights_identity``),
    ``models``, ``extractors``, ``fd_vs_reference``, ``steps``; ``root`` is added (absolute ``out``).

    Raises:
        FileNotFoundError: no index there; run ``workbench demo --out OUT`` first.
        ValueError: the index is not valid (the message names the problem).
    """
    index = _index(out)
    return {**index.to_json(), "root": str(index.root)}


def workspace_cache(set_name: str, extractor: str, out: str | os.PathLike | None = None) -> EmbeddingCache:
    """Open the cache of ``set_name`` (e.g. ``"reference"``, ``"memorizer"``) by ``extractor``
    (``"pixels"``, ``"demo-classifier"``, ``"demo-ssl"``) in the demo workspace ``out``.

    Raises:
        KeyError: no such cache; the message lists the sets and extractors there are.
    """
    return open_cache(_index(out).entry(set_name, extractor).path)
