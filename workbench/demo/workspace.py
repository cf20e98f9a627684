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


def find_demo_workspace() -> Path:
    """The built demo workspace for notebooks: ``$WORKBENCH_DEMO_DIR`` when set, else the first
    ``workspace/demo`` holding a ``workspace.json`` in the working directory or one of its parents
    (notebooks run from ``notebooks/`` find the repository's demo).

    Raises:
        FileNotFoundError: neither exists, saying how to build it.
    """
    if os.environ.get("WORKBENCH_DEMO_DIR"):
        return Path(os.environ["WORKBENCH_DEMO_DIR"]).expanduser().resolve()
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "workspace" / "demo" / WORKSPACE_FILE).is_file():
            return folder / "workspace" / "demo"
    raise FileNotFoundError(
        "no demo workspace found: build it with `workbench demo` (several minutes) "
        "or `bash scripts/lab.sh`, or set WORKBENCH_DEMO_DIR"
    )


def find_demo_domain(demo: str | os.PathLike | None = None) -> Path:
    """The demo's domain workspace (:mod:`workbench.demo.domain`): ``<demo>/domain``, where ``demo``
    defaults to :func:`find_demo_workspace`. Open it with ``Workspace.open(find_demo_domain())``.

    Raises:
        FileNotFoundError: the demo has no domain (built before it existed), saying how to add it.
    """
    from .domain import DOMAIN_DIR

    root = Path(demo).expanduser().resolve() if demo is not None else find_demo_workspace()
    domain = root / DOMAIN_DIR
    if not (domain / WORKSPACE_FILE).is_file():
        raise FileNotFoundError(
            f"the demo workspace {root} has no domain workspace ({domain / WORKSPACE_FILE} missing); "
            f"run `workbench demo --out {root}` again: it reuses everything built and adds the domain"
        )
    return domain


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
