"""Creating a workspace and adding caches to it, checked (``workbench workspace init`` / ``add``).

:func:`init_workspace` writes an empty ``workspace.json`` (or one listing the caches already in
the folder, ``scan=True``). :func:`add_caches` adds caches to it after checking, before anything
is written, that:

- every cache opens (a complete cache, files of the sizes its manifest says);
- the role is one of :data:`~workbench.workspace.roles.ROLES`, and a set keeps the role it has;
- each ``(set, extractor)`` has one cache (adding the very same cache again is a no-op);
- there is at most one reference set;
- the caches listed under one extractor name were all made with the same extractor, weights and
  preprocessing (else their metrics could not be compared): another configuration needs another
  extractor name.

Set names default to the cache's source name (``--name`` of ``workbench extract``, else the
folder or file name), extractor names to the cache's extractor name, roles to the set's role in
the workspace or the one its name suggests (:func:`~workbench.workspace.roles.guess_role`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..cache import CacheError, EmbeddingCache, open_cache
from ..cache.manifest import extractor_differences
from .index import (
    WORKSPACE_FILE,
    CacheEntry,
    WorkspaceIndex,
    cache_details,
    check_entries,
    new_index,
    read_index,
    write_index,
)
from .roles import check_role, guess_role
from .scan import scan_caches


@dataclass(frozen=True)
class AddResult:
    """What :func:`add_caches` did.

    Attributes:
        added: the new entries, in the order given.
        already_listed: entries that were in the index already (the same cache, set and role).
        index: the index as written.
    """

    added: list[CacheEntry]
    already_listed: list[CacheEntry]
    index: WorkspaceIndex


def init_workspace(root: str | os.PathLike, *, scan: bool = False) -> WorkspaceIndex:
    """Create ``root`` (if needed) and write its ``workspace.json``.

    Args:
        root: the workspace folder.
        scan: list the complete caches already under ``root`` (:func:`~workbench.workspace.scan.scan_caches`,
            roles guessed from the set names) instead of writing an empty index.

    Raises:
        ValueError: ``root`` already has a ``workspace.json`` (it is never overwritten).
        OSError: ``root`` cannot be created or written.
    """
    folder = Path(root).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file, not a folder; give a folder for the workspace")
    if (folder / WORKSPACE_FILE).exists():
        raise ValueError(
            f"{folder / WORKSPACE_FILE} already exists and is kept; `workbench workspace show {folder}` "
            f"shows it, `workbench workspace add {folder} CACHE ...` adds caches to it"
        )
    entries = scan_caches(folder) if scan and folder.is_dir() else []
    index = new_index(folder, entries)
    write_index(index)
    return index


def add_caches(
    root: str | os.PathLike,
    caches: Sequence[str | os.PathLike | EmbeddingCache],
    *,
    set_name: str | None = None,
    role: str | None = None,
    extractor: str | None = None,
) -> AddResult:
    """Add ``caches`` to the ``workspace.json`` of ``root`` (checked as the module docstring says;
    all or nothing: an error leaves the index untouched).

    Args:
        root: the workspace folder (with a ``workspace.json``; :func:`init_workspace` makes one).
        caches: cache folders (or opened caches).
        set_name: the set they belong to (default: each cache's source name).
        role: the set's role (default: its role in the workspace, else the one its name suggests).
        extractor: the extractor name to list them under (default: each cache's extractor name).

    Raises:
        FileNotFoundError: no ``workspace.json`` in ``root``.
        CacheError: a cache does not open (the message names it).
        ValueError: a check failed (the message names the cache and what to change).
    """
    index = read_index(root)
    if not caches:
        raise ValueError("give at least one cache folder to add")
    for name, what in ((set_name, "set"), (extractor, "extractor")):
        if name is not None and not name.strip():
            raise ValueError(f"the {what} name must not be empty")
    if role is not None:
        check_role(role, "--role")
    listed = list(index.entries)
    added: list[CacheEntry] = []
    already: list[CacheEntry] = []
    opened: dict[Path, EmbeddingCache | None] = {}
    for item in caches:
        cache = item if isinstance(item, EmbeddingCache) else open_cache(item)
        s = set_name or str(cache.manifest["source"].get("name") or cache.path.name)
        ext = extractor or str(cache.extractor["name"])
        roles = check_entries(listed, str(index.path))
        r = role or roles.get(s) or guess_role(s)
        entry = CacheEntry(s, ext, r, cache.path, cache_details(cache))
        if s in roles and roles[s] != r:
            raise ValueError(
                f"set {s!r} is already listed with role {roles[s]!r}, not {r!r}; a set plays one role "
                f"(pass --role {roles[s]}, or another --set name)"
            )
        same = next((e for e in listed if e.set == s and e.extractor == ext), None)
        if same is not None:
            if _same_path(same.path, cache.path):
                already.append(same)
                continue
            raise ValueError(
                f"set {s!r} already has a cache by extractor {ext!r} ({same.path}); a workspace holds one cache per "
                f"(set, extractor): give {cache.path} another --set, or --extractor NAME to list it under another "
                "extractor name"
            )
        refs = [x for x, rr in roles.items() if rr == "reference" and x != s]
        if r == "reference" and refs:
            raise ValueError(
                f"the workspace already has a reference set ({refs[0]!r}) and has exactly one; add "
                f"{cache.path} with --set {refs[0]} or another --role"
            )
        _check_same_configuration(cache, ext, listed, opened)
        listed.append(entry)
        added.append(entry)
    index.entries = listed
    if added:
        write_index(index)
    return AddResult(added=added, already_listed=already, index=index)


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _check_same_configuration(
    cache: EmbeddingCache, ext: str, listed: list[CacheEntry], opened: dict[Path, EmbeddingCache | None]
) -> None:
    """ValueError when the first openable cache listed under ``ext`` was made with other settings."""
    for other in (e for e in listed if e.extractor == ext):
        if other.path not in opened:
            try:
                opened[other.path] = open_cache(other.path)
            except (CacheError, OSError):
                opened[other.path] = None  # missing: `workbench workspace show` reports it
        found = opened[other.path]
        if found is None:
            continue
        if not cache.compatible_with(found):
            diff = "; ".join(extractor_differences(found.extractor, cache.extractor)[:4])
            raise ValueError(
                f"{cache.path} was made with other extractor settings than the caches listed under {ext!r} "
                f"(e.g. set {other.set!r}: {other.path}): {diff}. Their metrics cannot be compared; list it under "
                "another name with --extractor NAME"
            )
        return
