"""Finding the caches of a folder that has no ``workspace.json``.

:func:`scan_caches` walks the folder (up to 4 levels; hidden and ``_``-prefixed folders are
skipped) for complete caches (``manifest.json``, or a ``shards/`` folder of a sharded cache),
names each by the manifest's source name and extractor name, and guesses roles from the set
names (:func:`~workbench.workspace.roles.guess_role`). Two caches of one set by one extractor
name (another variant or weights) are named apart (``name-variant``). Incomplete caches (an
interrupted extraction) are left out.
"""

from __future__ import annotations

from pathlib import Path

from ..cache import CacheError, open_cache
from ..cache.manifest import MANIFEST, SHARDS_DIR
from .index import CacheEntry, cache_details
from .roles import guess_role


def cache_dirs(folder: Path, depth: int = 4) -> list[Path]:
    """Folders under ``folder`` (itself included, at most ``depth`` levels down) that look like caches."""
    found: list[Path] = []
    if (folder / MANIFEST).is_file() or (folder / SHARDS_DIR).is_dir():
        return [folder]
    if depth == 0:
        return found
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    except OSError:
        return found
    for child in children:
        found += cache_dirs(child, depth - 1)
    return found


def scan_caches(folder: str | Path) -> list[CacheEntry]:
    """Entries for every complete cache under ``folder`` (see the module docstring), in path order."""
    described = []
    for path in cache_dirs(Path(folder).expanduser().resolve()):
        try:
            cache = open_cache(path)
        except CacheError:
            continue  # incomplete / interrupted extraction: not shown
        m = cache.manifest
        set_name = str(m["source"].get("name") or path.name)
        ext = m["extractor"]
        described.append((set_name, str(ext["name"]), str(ext.get("variant", "")), path, cache_details(cache)))
    counts: dict[tuple[str, str], int] = {}
    for s, name, _, _, _ in described:
        counts[(s, name)] = counts.get((s, name), 0) + 1
    entries = []
    for s, name, variant, path, details in described:
        ext = name if counts[(s, name)] == 1 else f"{name}-{variant}" if variant else f"{name}-{path.name[-8:]}"
        entries.append(CacheEntry(s, ext, guess_role(s), path, details))
    return entries
