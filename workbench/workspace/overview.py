"""What a workspace holds and what is wrong with it, without computing anything (``workbench workspace show``).

:func:`workspace_overview` reads ``workspace.json`` (or scans a folder without one), opens every
cache (memory maps only: nothing is read) and collects, per ``(set, extractor)``, the size,
dimension and weights, and warnings about what would make the metrics fail or mislead:

- a cache that does not open (moved, deleted, interrupted, damaged);
- no reference set, or several; no generated set;
- a reference or generated set without a cache by some extractor (left out of that extractor's
  metric table, or the whole table cannot be computed);
- caches listed under one extractor name but made with other settings (their metrics refuse to
  compare them);
- a set of different sizes under different extractors (e.g. one cache made with ``--limit``);
- a cache whose content key differs from the one recorded when it was added (re-extracted since).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..cache import CacheError, EmbeddingCache, open_cache
from ..cache.manifest import extractor_differences
from .index import WORKSPACE_FILE, CacheEntry, read_index, stored_path
from .scan import scan_caches

MISSING = "MISSING"


@dataclass(frozen=True)
class CacheStatus:
    """One listed cache as found on disk.

    Attributes:
        entry: the index entry.
        n: number of samples (None when the cache does not open).
        dim: feature dimension (None when it does not open).
        pretrained: made with published weights (None when it does not open).
        weights: the weights identity (None when it does not open).
        error: why it does not open, else None.
        changed: its content key differs from the key recorded in the index.
    """

    entry: CacheEntry
    n: int | None = None
    dim: int | None = None
    pretrained: bool | None = None
    weights: str | None = None
    error: str | None = None
    changed: bool = False


@dataclass
class WorkspaceOverview:
    """Sets x extractors of a workspace with sizes, roles, pretrained flags and warnings.

    Attributes:
        root: the workspace folder.
        source: ``"workspace.json"``, or ``"scan"`` when the folder has no index.
        caches: one :class:`CacheStatus` per listed cache, in index order.
        warnings: one line each (see the module docstring).
    """

    root: Path
    source: str
    caches: list[CacheStatus] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def sets(self) -> list[str]:
        return list(dict.fromkeys(c.entry.set for c in self.caches))

    @property
    def extractors(self) -> list[str]:
        return list(dict.fromkeys(c.entry.extractor for c in self.caches))

    @property
    def roles(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for c in self.caches:
            out.setdefault(c.entry.set, c.entry.role)
        return out

    def status(self, set_name: str, extractor: str) -> CacheStatus | None:
        return next((c for c in self.caches if c.entry.set == set_name and c.entry.extractor == extractor), None)

    def table(self) -> pd.DataFrame:
        """Sets (rows, index order) x ``role`` and one column per extractor: the cache's size,
        ``MISSING`` when it does not open, ``-`` when the set has no cache by that extractor."""
        rows = []
        for s in self.sets:
            row: dict[str, Any] = {"set": s, "role": self.roles[s]}
            for e in self.extractors:
                st = self.status(s, e)
                row[e] = "-" if st is None else MISSING if st.error else str(st.n)
            rows.append(row)
        return pd.DataFrame(rows, columns=["set", "role", *self.extractors]).set_index("set")

    def extractor_table(self) -> pd.DataFrame:
        """One row per extractor: ``caches`` (how many open), ``dim``, ``pretrained``
        (yes / no / mixed), ``weights`` (identity, or several joined by ``|``)."""
        rows = []
        for e in self.extractors:
            found = [c for c in self.caches if c.entry.extractor == e and c.error is None]
            flags = {c.pretrained for c in found}
            rows.append(
                {
                    "extractor": e,
                    "caches": f"{len(found)}/{sum(c.entry.extractor == e for c in self.caches)}",
                    "dim": "|".join(str(d) for d in dict.fromkeys(c.dim for c in found)) or "?",
                    "pretrained": "?" if not flags else "mixed" if len(flags) > 1 else "yes" if flags.pop() else "no",
                    "weights": "|".join(str(w) for w in dict.fromkeys(c.weights for c in found)) or "?",
                }
            )
        return pd.DataFrame(rows, columns=["extractor", "caches", "dim", "pretrained", "weights"]).set_index(
            "extractor"
        )

    def format(self) -> str:
        """The overview as aligned text: a header line, the sets table, the extractors table, warnings."""
        where = WORKSPACE_FILE if self.source == WORKSPACE_FILE else f"no {WORKSPACE_FILE}: caches found by scanning"
        lines = [
            f"workspace  {self.root}  ({where}; {len(self.caches)} caches, {len(self.sets)} sets, "
            f"{len(self.extractors)} extractors)"
        ]
        if self.caches:
            t = self.table()
            lines += ["", *_aligned(["set", *t.columns], [[s, *map(str, r)] for s, r in zip(t.index, t.to_numpy())])]
            x = self.extractor_table()
            lines += [
                "",
                *_aligned(["extractor", *x.columns], [[e, *map(str, r)] for e, r in zip(x.index, x.to_numpy())]),
            ]
        if self.warnings:
            lines += ["", "warnings", *[f"  - {w}" for w in self.warnings]]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """``{"root", "source", "caches": [{set, extractor, role, path, n, dim, pretrained, weights,
        error, changed}], "warnings"}`` (paths as written in the index)."""
        return {
            "root": str(self.root),
            "source": self.source,
            "caches": [
                {
                    "set": c.entry.set,
                    "extractor": c.entry.extractor,
                    "role": c.entry.role,
                    "path": stored_path(c.entry.path, self.root),
                    "n": c.n,
                    "dim": c.dim,
                    "pretrained": c.pretrained,
                    "weights": c.weights,
                    "error": c.error,
                    "changed": c.changed,
                }
                for c in self.caches
            ],
            "warnings": list(self.warnings),
        }

    def __str__(self) -> str:
        return self.format()


def _aligned(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    return ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in [header, *rows]]


def workspace_overview(root: str | os.PathLike) -> WorkspaceOverview:
    """The overview of the workspace folder ``root`` (see the module docstring).

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: its ``workspace.json`` is not a valid index (the message names the problem).
    """
    folder = Path(root).expanduser().resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"workspace folder not found: {folder}")
    if (folder / WORKSPACE_FILE).is_file():
        entries, source = read_index(folder).entries, WORKSPACE_FILE
    else:
        entries, source = scan_caches(folder), "scan"
    opened: dict[tuple[str, str], EmbeddingCache] = {}
    statuses = []
    for e in entries:
        try:
            cache = open_cache(e.path)
        except (CacheError, OSError, ValueError, KeyError) as exc:
            statuses.append(CacheStatus(e, error=" ".join(str(exc).split())))
            continue
        opened[(e.set, e.extractor)] = cache
        recorded = e.info.get("key")
        statuses.append(
            CacheStatus(
                e,
                n=len(cache),
                dim=int(cache.manifest["dim"]),
                pretrained=cache.pretrained,
                weights=str(cache.extractor["weights"]["identity"]),
                changed=recorded is not None and recorded != cache.manifest["key"],
            )
        )
    ov = WorkspaceOverview(folder, source, statuses)
    ov.warnings = _warnings(ov, opened)
    return ov


def _warnings(ov: WorkspaceOverview, opened: dict[tuple[str, str], EmbeddingCache]) -> list[str]:
    if not ov.caches:
        return [f"no caches yet: add some with `workbench workspace add {ov.root} CACHE --set NAME --role ROLE`"]
    out = [
        f"cache of set {c.entry.set!r} by {c.entry.extractor!r} cannot be opened: {c.error}"
        for c in ov.caches
        if c.error
    ]
    roles = ov.roles
    refs = [s for s, r in roles.items() if r == "reference"]
    gens = [s for s, r in roles.items() if r == "generated"]
    if not refs:
        out.append(
            "no reference set: metrics compare every generated set to one real set; add one with --role reference"
        )
    elif len(refs) > 1:
        out.append(
            f"{len(refs)} reference sets ({', '.join(refs)}): a workspace has exactly one; change the others' roles"
        )
    if not gens:
        out.append("no generated set: nothing to compare; add the models' samples with --role generated")
    for ext in ov.extractors:
        if len(refs) == 1 and ov.status(refs[0], ext) is None:
            out.append(
                f"extractor {ext!r}: the reference set {refs[0]!r} has no cache by it, so none of its metrics "
                "can be computed"
            )
        missing = [g for g in gens if ov.status(g, ext) is None]
        if missing:
            out.append(
                f"extractor {ext!r}: generated set(s) {', '.join(missing)} have no cache by it and are left "
                "out of its metric table"
            )
        mine = [(s, c) for (s, e), c in opened.items() if e == ext]
        for s, c in mine[1:]:
            if not c.compatible_with(mine[0][1]):
                diff = "; ".join(extractor_differences(mine[0][1].extractor, c.extractor)[:3])
                out.append(
                    f"extractor {ext!r}: the caches of {mine[0][0]!r} and {s!r} were made with different "
                    f"settings ({diff}); its metrics will refuse to compare them"
                )
                break
    for s in ov.sets:
        sizes = {c.entry.extractor: c.n for c in ov.caches if c.entry.set == s and c.n is not None}
        if len(set(sizes.values())) > 1:
            out.append(
                f"set {s!r} has different sizes under different extractors "
                f"({', '.join(f'{e}: {n}' for e, n in sizes.items())}): views and metrics use only the images "
                f"all of them hold; extract {s!r} again with the same images (e.g. without --limit) to use them all"
            )
    out += [
        f"cache of set {c.entry.set!r} by {c.entry.extractor!r} changed since it was added (its content key "
        "differs from the one in the index); saved metric reports of it are recomputed"
        for c in ov.caches
        if c.changed
    ]
    return out
