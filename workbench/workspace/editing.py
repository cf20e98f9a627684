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

:func:`replace_sets` is the other way in, for ``workbench evaluate``: the caches it is given are
authoritative. Each ``(set, extractor)`` it lists replaces the entry of that pair, each set takes
the role it is given, and the entries that would contradict the new ones are dropped (and said
why) instead of refused; every other entry is kept.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
from .roles import ROLES, check_role, guess_role
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


@dataclass(frozen=True)
class ReplaceResult:
    """What :func:`replace_sets` did.

    Attributes:
        index: the index as written.
        added: entries of ``(set, extractor)`` pairs the index did not list before.
        replaced: entries of pairs the index listed with another cache or role (now this one).
        unchanged: entries the index already listed with the same cache and role.
        dropped: ``(old entry, why)`` for every entry removed because it contradicts the new ones.
        kept: old entries of other sets (or other extractors) left in the index.
    """

    index: WorkspaceIndex
    added: list[CacheEntry] = field(default_factory=list)
    replaced: list[CacheEntry] = field(default_factory=list)
    unchanged: list[CacheEntry] = field(default_factory=list)
    dropped: list[tuple[CacheEntry, str]] = field(default_factory=list)
    kept: list[CacheEntry] = field(default_factory=list)


def _source_path(cache: EmbeddingCache) -> str | None:
    """The resolved path of the images a cache was made from (None for in-memory sources)."""
    path = cache.manifest.get("source", {}).get("path")
    if not path:
        return None
    try:
        return str(Path(str(path)).expanduser().resolve())
    except OSError:
        return str(path)


def replace_sets(
    root: str | os.PathLike,
    caches: Mapping[tuple[str, str], EmbeddingCache],
    roles: Mapping[str, str],
) -> ReplaceResult:
    """Write ``caches`` into the ``workspace.json`` of ``root`` (created when missing), replacing
    what they contradict; all or nothing (an error leaves the index untouched).

    The new entries come first, in the order of ``caches``; the old entries kept follow in their
    order. An old entry is dropped (with the reason in :attr:`ReplaceResult.dropped`) when:

    - it is the same ``(set, extractor)`` as a new one with another cache (then it is *replaced*);
    - its set is one of the new sets but its cache was made from other images (another folder);
      caches of a new set by other extractors, made from the same folder, are kept with the new role;
    - its set has the role ``reference``, ``train`` or ``test`` under another name while a new set
      takes that role (a workspace compares against one reference, one training and one test set);
    - its extractor name is one of the new caches' and it was made with other extractor settings
      (weights, preprocessing), so its metrics could not be compared with theirs;
    - its cache no longer opens.

    Args:
        root: the workspace folder (created when missing).
        caches: ``{(set, extractor name): opened cache}``.
        roles: ``{set: role}`` for every set of ``caches`` (one of :data:`~workbench.workspace.roles.ROLES`).

    Raises:
        ValueError: ``caches`` is empty, a set has no role or an unknown one, two new sets are the
            reference, two new caches of one extractor name have other settings, or the existing
            ``workspace.json`` is not a valid index (:func:`~workbench.workspace.index.read_index`).
    """
    folder = Path(root).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file, not a folder; give a folder for the workspace")
    if not caches:
        raise ValueError("give at least one cache to write into the workspace")
    new_sets = list(dict.fromkeys(s for s, _ in caches))
    for s in new_sets:
        if s not in roles:
            raise ValueError(f"set {s!r} has no role; give one of {', '.join(ROLES)}")
        check_role(roles[s], f"set {s!r}")
    refs = [s for s in new_sets if roles[s] == "reference"]
    if len(refs) > 1:
        raise ValueError(f"a workspace has one reference set; {refs} are all given the role 'reference'")
    new_entries = [CacheEntry(s, ext, roles[s], cache.path, cache_details(cache)) for (s, ext), cache in caches.items()]
    by_extractor: dict[str, EmbeddingCache] = {}
    for (_, ext), cache in caches.items():
        first = by_extractor.setdefault(ext, cache)
        if not cache.compatible_with(first):
            diff = "; ".join(extractor_differences(first.extractor, cache.extractor)[:4])
            raise ValueError(
                f"the caches listed under extractor {ext!r} were made with other settings ({first.path} and "
                f"{cache.path}: {diff}); their metrics cannot be compared"
            )
    index = read_index(folder) if (folder / WORKSPACE_FILE).is_file() else new_index(folder)
    new_keys = {(e.set, e.extractor): e for e in new_entries}
    sources = {s: _source_path(c) for (s, _), c in caches.items()}
    taken: dict[str, str] = {}  # role -> the new set that takes it, for the roles a workspace holds once
    for s in new_sets:
        if roles[s] in ("reference", "train", "test"):
            taken.setdefault(roles[s], s)
    result = ReplaceResult(index=index)
    kept: list[CacheEntry] = []
    for old in index.entries:
        new = new_keys.get((old.set, old.extractor))
        if new is not None:
            same = _same_path(old.path, new.path) and old.role == new.role
            (result.unchanged if same else result.replaced).append(new)
            continue
        why = _why_drop(old, new_sets, roles, sources, taken, by_extractor)
        if why is not None:
            result.dropped.append((old, why))
            continue
        if old.set in roles:  # a new set's cache by another extractor, from the same images
            old = CacheEntry(old.set, old.extractor, roles[old.set], old.path, old.info)
        kept.append(old)
    listed = {(e.set, e.extractor) for e in result.unchanged + result.replaced}
    result.added.extend(e for e in new_entries if (e.set, e.extractor) not in listed)
    result.kept.extend(kept)
    index.entries = new_entries + kept
    check_entries(index.entries, str(index.path))
    write_index(index)
    return result


def _why_drop(
    old: CacheEntry,
    new_sets: list[str],
    roles: Mapping[str, str],
    sources: Mapping[str, str | None],
    taken: Mapping[str, str],
    by_extractor: Mapping[str, EmbeddingCache],
) -> str | None:
    """Why the old entry ``old`` contradicts the new caches (see :func:`replace_sets`), or None to keep it."""
    if old.set not in new_sets and old.role in taken:
        return f"the {old.role} set is now {taken[old.role]!r}"
    try:
        cache = open_cache(old.path)
    except (CacheError, OSError) as exc:
        return f"its cache no longer opens ({' '.join(str(exc).split())[:200]})"
    if old.set in new_sets and _source_path(cache) != sources.get(old.set):
        return f"set {old.set!r} is now made from {sources.get(old.set)}, this cache from {_source_path(cache)}"
    other = by_extractor.get(old.extractor)
    if other is not None and not cache.compatible_with(other):
        diff = "; ".join(extractor_differences(other.extractor, cache.extractor)[:2])
        return f"it was made with other {old.extractor!r} settings than the new caches ({diff})"
    return None
