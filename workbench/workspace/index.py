"""``workspace.json``: the one reader and writer of a workspace's index of caches.

Format (``workbench-workspace/1``; the demo build writes ``workbench-demo/1``, the same schema
with more top-level keys)::

    {
      "format": "workbench-workspace/1",
      "caches": [
        {"set": "real", "extractor": "dinov2", "role": "reference", "path": "caches/real__dinov2-...",
         "n": 50000, "dim": 1024, "logits": false, "thumbnails": 64, "key": "...",
         "weights_identity": "...", "pretrained": true},
        ...
      ],
      ...
    }

``set``, ``extractor``, ``role`` (one of :data:`~workbench.workspace.roles.ROLES`) and ``path``
are required in every row. ``path`` is relative to the workspace folder when the cache lies
inside it (so the folder can be moved or copied whole), absolute otherwise. The other fields of a
row (:func:`cache_details`, recorded when the cache was added) say what was added, so a later
``workbench workspace show`` can tell when a cache changed; they are kept in
:attr:`CacheEntry.info`. Every other top-level key (the demo's ``models``, ``sets``,
``fd_vs_reference``, ...) is kept as written in :attr:`WorkspaceIndex.extra`.

Reading checks the structure (valid JSON, a known format, a ``caches`` list of complete rows, a
known role, one role per set, one cache per ``(set, extractor)``) and names the file and the row
of any problem. It does not require a reference set: an index being built may lack one
(:class:`~workbench.workspace.sets.Workspace` requires exactly one when it opens).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cache.atomic import write_json_atomic
from .roles import check_role

if TYPE_CHECKING:
    from ..cache import EmbeddingCache

WORKSPACE_FILE = "workspace.json"
INDEX_FORMAT = "workbench-workspace/1"
# Formats with the same "caches" schema: the demo build's index adds its own top-level keys.
KNOWN_FORMATS: tuple[str, ...] = (INDEX_FORMAT, "workbench-demo/1")
REQUIRED_FIELDS: tuple[str, ...] = ("set", "extractor", "role", "path")


@dataclass(frozen=True)
class CacheEntry:
    """One cache of a workspace: ``set`` embedded by ``extractor``, playing ``role``.

    Attributes:
        set: the image set's name.
        extractor: the name the workspace gives the extractor (usually the cache's extractor
            name; two configurations of one extractor need two names).
        role: one of :data:`~workbench.workspace.roles.ROLES`.
        path: the cache folder (absolute once read from an index).
        info: the other fields of the index row (:func:`cache_details`); not compared.
    """

    set: str
    extractor: str
    role: str
    path: Path
    info: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)


def check_entries(entries: Iterable[CacheEntry], where: str) -> dict[str, str]:
    """Check that roles are known, each set has one role and each ``(set, extractor)`` one cache.

    Args:
        entries: the caches.
        where: what to name in an error (a file, "the workspace").

    Returns:
        ``{set: role}`` in order of first appearance.

    Raises:
        ValueError: naming the offending set/extractor and ``where``.
    """
    roles: dict[str, str] = {}
    seen: dict[tuple[str, str], Path] = {}
    for e in entries:
        check_role(e.role, f"{where}: cache {e.path}")
        if roles.setdefault(e.set, e.role) != e.role:
            raise ValueError(
                f"{where}: set {e.set!r} is listed with two roles ({roles[e.set]!r} and {e.role!r}); "
                "a set plays one role"
            )
        key = (e.set, e.extractor)
        if key in seen:
            raise ValueError(
                f"{where}: two caches for set {e.set!r} and extractor {e.extractor!r} ({seen[key]} and "
                f"{e.path}); keep one, or list the second under another extractor or set name"
            )
        seen[key] = e.path
    return roles


def check_single_reference(roles: Mapping[str, str], where: str) -> str:
    """The one set with role ``reference`` in ``{set: role}``; ValueError when there are none or several."""
    refs = [s for s, r in roles.items() if r == "reference"]
    if len(refs) != 1:
        raise ValueError(
            f"{where} needs exactly one reference (real) set; found {refs or 'none'} among sets {sorted(roles)}. "
            "Say which set is real: `workbench workspace add DIR CACHE --set NAME --role reference`, or "
            "roles={'<set>': 'reference', ...} in Python."
        )
    return refs[0]


def stored_path(path: str | os.PathLike, root: str | os.PathLike) -> str:
    """How ``path`` is written in the index of folder ``root``: relative (with ``/``) when inside
    ``root``, else absolute."""
    full = Path(path).expanduser().resolve()
    try:
        return full.relative_to(Path(root).expanduser().resolve()).as_posix()
    except ValueError:
        return str(full)


def cache_details(cache: EmbeddingCache) -> dict[str, Any]:
    """What an index row records about a cache besides its set, extractor, role and path:
    ``n`` (samples), ``dim`` (feature dimension), ``logits`` (has classifier logits),
    ``thumbnails`` (side in pixels, 0 = none), ``key`` (the cache's content key),
    ``weights_identity`` and ``pretrained`` (published weights)."""
    return {
        "n": len(cache),
        "dim": int(cache.manifest["dim"]),
        "logits": cache.logits is not None,
        "thumbnails": int(cache.manifest.get("thumbnails") or 0),
        "key": cache.manifest["key"],
        "weights_identity": cache.extractor["weights"]["identity"],
        "pretrained": cache.pretrained,
    }


@dataclass
class WorkspaceIndex:
    """The contents of a ``workspace.json`` (see the module docstring).

    Attributes:
        root: the workspace folder (absolute); relative paths are relative to it.
        entries: the caches, in index order.
        format: the index format (:data:`INDEX_FORMAT`, or the demo's).
        extra: every other top-level key, kept as written.
    """

    root: Path
    entries: list[CacheEntry] = field(default_factory=list)
    format: str = INDEX_FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """The ``workspace.json`` file."""
        return self.root / WORKSPACE_FILE

    @property
    def sets(self) -> list[str]:
        """Set names in index order."""
        return list(dict.fromkeys(e.set for e in self.entries))

    @property
    def extractors(self) -> list[str]:
        """Extractor names in index order."""
        return list(dict.fromkeys(e.extractor for e in self.entries))

    @property
    def roles(self) -> dict[str, str]:
        """``{set: role}`` in index order."""
        out: dict[str, str] = {}
        for e in self.entries:
            out.setdefault(e.set, e.role)
        return out

    def entry(self, set_name: str, extractor: str) -> CacheEntry:
        """The entry of ``set_name`` by ``extractor``; KeyError naming the sets and extractors there are."""
        for e in self.entries:
            if e.set == set_name and e.extractor == extractor:
                return e
        raise KeyError(
            f"no cache for set {set_name!r} by extractor {extractor!r} in {self.path}; "
            f"sets: {sorted(self.sets)}, extractors: {sorted(self.extractors)}"
        )

    def to_json(self) -> dict[str, Any]:
        """The dict :func:`write_index` writes: ``format``, the extra keys, then ``caches``."""
        rows = [
            {
                "set": e.set,
                "extractor": e.extractor,
                "role": e.role,
                "path": stored_path(e.path, self.root),
                **{k: v for k, v in e.info.items() if k not in REQUIRED_FIELDS},
            }
            for e in self.entries
        ]
        extra = {k: v for k, v in self.extra.items() if k not in ("format", "caches")}
        return {"format": self.format, **extra, "caches": rows}


def read_index(root: str | os.PathLike) -> WorkspaceIndex:
    """Read and check ``root/workspace.json`` (see the module docstring).

    Raises:
        FileNotFoundError: there is no ``workspace.json`` in ``root``.
        ValueError: the file is not valid JSON or breaks the schema (the message names the row).
    """
    folder = Path(root).expanduser().resolve()
    path = folder / WORKSPACE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {WORKSPACE_FILE} in {folder}; create one with `workbench workspace init {folder}`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"{path} is not valid JSON ({exc}); fix it, or delete it to have the folder scanned for caches"
        ) from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object with a 'caches' list; it holds a {type(data).__name__}")
    fmt = data.get("format", INDEX_FORMAT)
    if fmt not in KNOWN_FORMATS:
        raise ValueError(
            f"{path} has format {fmt!r}; this workbench reads {', '.join(KNOWN_FORMATS)} "
            "(was it written by a newer version?)"
        )
    rows = data.get("caches", [])
    if not isinstance(rows, list):
        raise ValueError(f"{path}: 'caches' must be a list of {{set, extractor, role, path}} objects")
    entries = [_entry(row, i, folder, path) for i, row in enumerate(rows)]
    check_entries(entries, str(path))
    extra = {k: v for k, v in data.items() if k not in ("format", "caches")}
    return WorkspaceIndex(root=folder, entries=entries, format=str(fmt), extra=extra)


def _entry(row: Any, i: int, folder: Path, path: Path) -> CacheEntry:
    if not isinstance(row, dict):
        raise ValueError(f"{path}: caches[{i}] must be an object with {', '.join(REQUIRED_FIELDS)}")
    missing = [k for k in REQUIRED_FIELDS if k not in row]
    if missing:
        raise ValueError(f"{path}: caches[{i}] lacks {', '.join(missing)}")
    bad = [k for k in REQUIRED_FIELDS if not isinstance(row[k], str) or not row[k].strip()]
    if bad:
        raise ValueError(f"{path}: caches[{i}]: {', '.join(bad)} must be non-empty strings")
    info = {k: v for k, v in row.items() if k not in REQUIRED_FIELDS}
    return CacheEntry(row["set"], row["extractor"], row["role"], folder / Path(row["path"]).expanduser(), info)


def write_index(index: WorkspaceIndex) -> dict[str, Any]:
    """Check ``index`` (as :func:`read_index` does) and write it to ``index.root/workspace.json``
    atomically (a reader sees the old or the new file, never a torn one); returns what was written."""
    check_entries(index.entries, str(index.path))
    data = index.to_json()
    index.root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(index.path, data)
    return data


def new_index(
    root: str | os.PathLike,
    entries: Sequence[CacheEntry] = (),
    *,
    format: str = INDEX_FORMAT,
    extra: Mapping[str, Any] | None = None,
) -> WorkspaceIndex:
    """A :class:`WorkspaceIndex` of folder ``root`` (resolved) holding ``entries``; nothing is written."""
    if format not in KNOWN_FORMATS:
        raise ValueError(f"format must be one of {KNOWN_FORMATS}; got {format!r}")
    return WorkspaceIndex(
        root=Path(root).expanduser().resolve(), entries=list(entries), format=format, extra=dict(extra or {})
    )
