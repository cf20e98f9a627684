"""A workspace: image sets with roles x extractors, each pair an embedding cache.

:class:`Workspace` indexes embedding caches by ``(set, extractor)`` and knows each set's role
(:mod:`workbench.workspace.roles`: one ``reference``, optional ``train`` and ``test``, the
``generated`` sets, ``pool`` sets listed but not compared).

:meth:`Workspace.open` reads ``workspace.json`` (:mod:`workbench.workspace.index`, written by
``workbench workspace init/add`` and by ``workbench demo``) when present, else scans the folder
for complete caches (:mod:`workbench.workspace.scan`), naming them by the manifest's source name
and extractor name and guessing roles from the set names unless ``roles`` says otherwise.

Caches are opened lazily (memory-mapped) and kept; thumbnails of a set are read from whichever of
its caches stores the largest ones. ``state_dir`` (``<folder>/.workbench``) holds what is
computed once and reused: metric reports (:mod:`~workbench.workspace.reports`), 2-D layouts
(:mod:`~workbench.workspace.projections`), per-sample scores (:mod:`~workbench.workspace.scores`),
each keyed by the cache keys it depends on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..cache import EmbeddingCache, open_cache
from ..cache.manifest import MANIFEST
from .index import (
    WORKSPACE_FILE,
    CacheEntry,
    check_entries,
    check_single_reference,
    read_index,
)
from .roles import guess_role
from .scan import scan_caches

STATE_DIR = ".workbench"


@dataclass(frozen=True)
class SetClasses:
    """One class per sample of a set.

    Attributes:
        codes: ``(n,)`` int64 class index per sample (-1 = unknown).
        names: the class names (``names[c]``).
        source: where they come from, e.g. ``"labels"`` or ``"top-1 of demo-classifier"``.
    """

    codes: np.ndarray
    names: list[str]
    source: str

    def code_of(self, name: str) -> int:
        """The class index of ``name`` (-1 when the set has no class of that name)."""
        try:
            return self.names.index(name)
        except ValueError:
            return -1


class Workspace:
    """Caches indexed by ``(set, extractor)`` with a role per set (see the module docstring).

    Args:
        entries: the caches.
        root: the workspace folder (None for caches given directly).
        caches: already opened caches by ``(set, extractor)`` (skips opening those paths).
        state_dir: where computed layouts/scores/metrics are kept; default ``root/.workbench``
            when ``root`` is given, else nothing is written.

    Raises:
        ValueError: no entries, an unknown role, one set with two roles, two entries for the same
            ``(set, extractor)``, or not exactly one reference set.
    """

    def __init__(
        self,
        entries: Sequence[CacheEntry],
        *,
        root: str | os.PathLike | None = None,
        caches: Mapping[tuple[str, str], EmbeddingCache] | None = None,
        state_dir: str | os.PathLike | None = None,
    ) -> None:
        if not entries:
            raise ValueError("a workspace needs at least one cache; none were found or given")
        roles = check_entries(entries, "the workspace")
        check_single_reference(roles, "a workspace")
        self.entries = list(entries)
        self.root = Path(root).resolve() if root is not None else None
        self._roles = roles
        self._caches: dict[tuple[str, str], EmbeddingCache] = dict(caches or {})
        self._meta: dict[str, pd.DataFrame] = {}
        self._classes: dict[str, SetClasses | None] = {}
        if state_dir is not None:
            self.state_dir: Path | None = Path(state_dir)
        else:
            self.state_dir = self.root / STATE_DIR if self.root is not None else None
        self._aligned: dict[tuple[str, str], EmbeddingCache] = {}
        self.notes: list[str] = []
        self._align_rows()

    # ------------------------------------------------------------------ construction

    @classmethod
    def open(
        cls,
        root: str | os.PathLike,
        roles: Mapping[str, str] | None = None,
        *,
        state_dir: str | os.PathLike | None = None,
    ) -> Workspace:
        """The workspace in folder ``root``: ``workspace.json`` when present, else a scan.

        Args:
            root: the workspace folder (or any folder holding caches, at any depth up to 4).
            roles: ``{set: role}`` overriding the index or the guess from the set names.
            state_dir: where computed layouts, scores and metric tables go (default
                ``root/.workbench``), e.g. for a read-only workspace.

        Raises:
            FileNotFoundError: ``root`` does not exist, or holds no complete cache, or its
                ``workspace.json`` lists none.
            ValueError: ``workspace.json`` is not a valid index
                (:func:`~workbench.workspace.index.read_index`), or the sets do not have exactly
                one reference.
        """
        folder = Path(root).expanduser().resolve()
        if not folder.is_dir():
            raise FileNotFoundError(f"workspace folder not found: {folder}")
        if (folder / WORKSPACE_FILE).is_file():
            entries = read_index(folder).entries
            if not entries:
                raise FileNotFoundError(
                    f"{folder / WORKSPACE_FILE} lists no caches yet; add some with `workbench workspace add "
                    f"{folder} CACHE --set NAME --role ROLE`"
                )
        else:
            entries = scan_caches(folder)
        if not entries:
            raise FileNotFoundError(
                f"no complete embedding cache under {folder} (no {WORKSPACE_FILE}, no {MANIFEST}); extract "
                "some with `workbench extract` or build the demo with `workbench demo`"
            )
        if roles:
            unknown = sorted(set(roles) - {e.set for e in entries})
            if unknown:
                raise ValueError(
                    f"roles names sets {unknown} that are not in the workspace "
                    f"(sets: {sorted({e.set for e in entries})})"
                )
            entries = [CacheEntry(e.set, e.extractor, roles.get(e.set, e.role), e.path, e.info) for e in entries]
        return cls(entries, root=folder, state_dir=state_dir)

    @classmethod
    def from_caches(
        cls,
        caches: Mapping[tuple[str, str], EmbeddingCache | str | os.PathLike],
        roles: Mapping[str, str] | None = None,
        *,
        state_dir: str | os.PathLike | None = None,
    ) -> Workspace:
        """A workspace of caches given by ``{(set, extractor): cache or path}``.

        ``roles`` maps set names to roles; unnamed sets get :func:`guess_role`.
        """
        entries, opened = [], {}
        for key, value in caches.items():
            if not (isinstance(key, tuple) and len(key) == 2):
                raise ValueError(f"caches keys must be (set, extractor) pairs; got {key!r}")
            cache = value if isinstance(value, EmbeddingCache) else open_cache(value)
            set_name, ext = str(key[0]), str(key[1])
            role = (roles or {}).get(set_name) or guess_role(set_name)
            entries.append(CacheEntry(set_name, ext, role, cache.path))
            opened[(set_name, ext)] = cache
        return cls(entries, caches=opened, state_dir=state_dir)

    # ------------------------------------------------------------------ what is there

    @property
    def extractors(self) -> list[str]:
        """Extractor names in index order."""
        return list(dict.fromkeys(e.extractor for e in self.entries))

    @property
    def sets(self) -> list[str]:
        """Set names in index order."""
        return list(dict.fromkeys(e.set for e in self.entries))

    def role(self, set_name: str) -> str:
        self._check_set(set_name)
        return self._roles[set_name]

    def sets_with_role(self, role: str) -> list[str]:
        return [s for s in self.sets if self._roles[s] == role]

    @property
    def reference(self) -> str:
        return self.sets_with_role("reference")[0]

    @property
    def train(self) -> str | None:
        found = self.sets_with_role("train")
        return found[0] if found else None

    @property
    def test(self) -> str | None:
        found = self.sets_with_role("test")
        return found[0] if found else None

    @property
    def generated(self) -> list[str]:
        """The generated sets (models), in index order."""
        return self.sets_with_role("generated")

    def has(self, set_name: str, extractor: str) -> bool:
        return any(e.set == set_name and e.extractor == extractor for e in self.entries)

    def entry(self, set_name: str, extractor: str) -> CacheEntry:
        for e in self.entries:
            if e.set == set_name and e.extractor == extractor:
                return e
        raise KeyError(
            f"no cache of set {set_name!r} by extractor {extractor!r}; sets {self.sets}, extractors {self.extractors}"
        )

    def cache(self, set_name: str, extractor: str) -> EmbeddingCache:
        """The (memory-mapped) cache of ``set_name`` by ``extractor``, seen through the rows the
        set's caches have in common when they hold different images (see :meth:`_align_rows`)."""
        key = (set_name, extractor)
        if key in self._aligned:
            return self._aligned[key]
        return self._whole_cache(set_name, extractor)

    def _whole_cache(self, set_name: str, extractor: str) -> EmbeddingCache:
        key = (set_name, extractor)
        if key not in self._caches:
            self._caches[key] = open_cache(self.entry(set_name, extractor).path)
        return self._caches[key]

    def _align_rows(self) -> None:
        """Check that every set's caches hold the same images (matched by ``id``) and, where they
        do not, see each through the images all of them hold.

        Each cache of every set is opened here (cheap: memory maps and the per-sample table), so a
        workspace that opens can be shown: a set whose caches hold different images (one extracted
        with ``--limit``, or from a folder that changed) is compared on the ids its caches share,
        in the order of its smallest cache, and :attr:`notes` says so. Caches of one set with the
        same ids in the same order are used as they are.

        Raises:
            ValueError: the caches of one set share no image id (they were not made from the same
                images), naming the set and each cache's size.
        """
        for set_name in self.sets:
            exts = [e.extractor for e in self.entries if e.set == set_name]
            caches = {e: self._whole_cache(set_name, e) for e in exts}
            if len(caches) < 2:
                continue
            ids = {e: c.meta["id"].astype(str).to_numpy() for e, c in caches.items()}
            first = ids[exts[0]]
            if all(len(v) == len(first) and np.array_equal(v, first) for v in ids.values()):
                continue
            smallest = min(exts, key=lambda e: (len(ids[e]), exts.index(e)))
            common = set.intersection(*(set(v.tolist()) for v in ids.values()))
            sizes = ", ".join(f"{e}: {len(ids[e]):,}" for e in exts)
            if not common:
                raise ValueError(
                    f"set {set_name!r}: its caches hold no image in common ({sizes} images; ids such as "
                    + ", ".join(f"{e}: {ids[e][0]!r}" for e in exts if len(ids[e]))
                    + "); they were made from different images. List them as different sets, or extract "
                    "the same folder under every extractor"
                )
            order = [i for i in dict.fromkeys(ids[smallest].tolist()) if i in common]
            for e in exts:
                position: dict[str, int] = {}
                for row, i in enumerate(ids[e].tolist()):
                    position.setdefault(i, row)  # first occurrence of a repeated id
                rows = np.fromiter((position[i] for i in order), dtype=np.int64, count=len(order))
                if len(rows) == len(ids[e]) and np.array_equal(rows, np.arange(len(rows))):
                    continue
                self._aligned[(set_name, e)] = caches[e].take(
                    rows, reason=f"the {len(order):,} images every cache of set {set_name!r} holds"
                )
            most = max(len(v) for v in ids.values())
            short = [e for e in exts if len(ids[e]) < most]
            fix = (
                f"To use all {most:,}, extract {set_name!r} again under {', '.join(short)} from the same images "
                "(e.g. without --limit)"
                if short
                else f"To use them all, extract every cache of {set_name!r} again from the same folder"
            )
            self.notes.append(
                f"set {set_name!r}: its caches hold different images ({sizes}); every view and metric uses "
                f"the {len(order):,} images all of them hold. {fix}"
            )

    def caches_of(self, set_name: str) -> dict[str, EmbeddingCache]:
        """``{extractor: cache}`` of one set."""
        self._check_set(set_name)
        return {e.extractor: self.cache(e.set, e.extractor) for e in self.entries if e.set == set_name}

    def size(self, set_name: str) -> int:
        """Number of samples of a set (from its first cache)."""
        return len(next(iter(self.caches_of(set_name).values())))

    def cache_key(self, set_name: str, extractor: str) -> str:
        """The cache's content key (changes whenever its images or extractor change)."""
        return str(self.cache(set_name, extractor).manifest["key"])

    def classifier(self) -> str | None:
        """The first extractor whose reference cache has logits of a trained network, or None.

        A randomly initialised network's classes (weights ``random-init(seed=S)``, e.g.
        ``--weights none``) mean nothing; such extractors are listed by
        :meth:`untrained_classifiers` instead."""
        for ext in self.extractors:
            if self._has_logits(ext) and not _random_weights(self.cache(self.reference, ext)):
                return ext
        return None

    def untrained_classifiers(self) -> list[str]:
        """Extractors with logits whose weights are a random initialisation (their classes are noise)."""
        return [e for e in self.extractors if self._has_logits(e) and _random_weights(self.cache(self.reference, e))]

    def _has_logits(self, ext: str) -> bool:
        return self.has(self.reference, ext) and self.cache(self.reference, ext).logits is not None

    def labelled(self, set_name: str) -> bool:
        """True when a cache of the set has dataset labels (e.g. class folders) for its samples."""
        return any(c.labels is not None for c in self.caches_of(set_name).values())

    def _check_set(self, set_name: str) -> None:
        if set_name not in self._roles:
            raise KeyError(f"no set named {set_name!r} in the workspace; sets: {self.sets}")

    # ------------------------------------------------------------------ per-sample data

    def meta(self, set_name: str) -> pd.DataFrame:
        """Per-sample metadata (``index, id, label, class_name, content_hash``) of a set."""
        if set_name not in self._meta:
            self._meta[set_name] = next(iter(self.caches_of(set_name).values())).meta
        return self._meta[set_name]

    def thumbnail_px(self, set_name: str) -> int:
        """Side of the largest thumbnails stored for a set (0 when none)."""
        sizes = [int(c.manifest.get("thumbnails") or 0) for c in self.caches_of(set_name).values()]
        return max(sizes, default=0)

    def thumbnails(self, set_name: str, index: np.ndarray | Sequence[int]) -> np.ndarray | None:
        """Thumbnails ``m x px x px x 3`` uint8 of rows ``index`` of a set, or None if none stored."""
        best, best_px = None, 0
        for cache in self.caches_of(set_name).values():
            px = int(cache.manifest.get("thumbnails") or 0)
            if cache.thumbnails is not None and px > best_px:
                best, best_px = cache, px
        if best is None:
            return None
        idx = np.asarray(index, dtype=np.int64)
        if idx.size == 0:
            return np.zeros((0, best_px, best_px, 3), dtype=np.uint8)
        order = np.argsort(idx, kind="stable")
        thumbs = best.thumbnails
        assert thumbs is not None  # chosen above for having thumbnails
        rows = np.asarray(thumbs[idx[order]])
        out = np.empty_like(rows)
        out[order] = rows
        return out

    def classes(self, set_name: str) -> SetClasses | None:
        """One class per sample of a set, or None when the workspace has no meaningful classes.

        - the sets' own labels (e.g. class folders) when the reference and every generated set
          have them (the user's classes);
        - else the Top-1 class of the workspace's trained classifier (:meth:`classifier`, an
          extractor with logits, e.g. published Inception: FID's ImageNet classes) when the set
          has its logits;
        - else the set's labels when it has them, else None.

        A randomly initialised classifier is never used: its classes would look meaningful and
        are noise.
        """
        if set_name in self._classes:
            return self._classes[set_name]
        result = None
        clf = self.classifier()
        use_labels = all(self.labelled(s) for s in [self.reference, *self.generated])
        logits = self.cache(set_name, clf).logits if clf is not None and self.has(set_name, clf) else None
        if not use_labels and clf is not None and logits is not None:
            from ..analysis.classes import top_classes

            codes = top_classes(logits, 1, name=f"{set_name} logits")[:, 0]
            k = int(logits.shape[1])
            cache = self.cache(set_name, clf)
            names = cache.manifest.get("extractor_class_names") or [f"class {i}" for i in range(k)]
            result = SetClasses(codes, [str(n) for n in names], f"top-1 of {clf}")
        else:
            labelled = [c for c in self.caches_of(set_name).values() if c.labels is not None]
            if labelled:
                cache = labelled[0]
                labels = cache.labels
                assert labels is not None  # chosen for having labels
                k = int(labels.max()) + 1
                names = cache.class_names or self._reference_class_names() or [f"class {i}" for i in range(k)]
                if len(names) < k:
                    names = list(names) + [f"class {i}" for i in range(len(names), k)]
                result = SetClasses(labels, [str(n) for n in names], "labels")
        self._classes[set_name] = result
        return result

    def _reference_class_names(self) -> list[str] | None:
        for cache in self.caches_of(self.reference).values():
            if cache.class_names:
                return list(cache.class_names)
        return None

    # ------------------------------------------------------------------ persisted state

    def state_path(self, name: str) -> Path | None:
        """``state_dir / name`` (created on demand), or None when nothing may be written."""
        if self.state_dir is None:
            return None
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            return None
        return self.state_dir / name

    def describe(self) -> str:
        """One line per set: role, size, extractors."""
        lines = []
        for s in self.sets:
            exts = [e.extractor for e in self.entries if e.set == s]
            lines.append(f"{s:<16s} {self._roles[s]:<10s} {self.size(s):>8d}  {', '.join(exts)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        where = f" at {self.root}" if self.root else ""
        return (
            f"<Workspace{where}: {len(self.sets)} sets ({len(self.generated)} generated), extractors {self.extractors}>"
        )


def _random_weights(cache: EmbeddingCache) -> bool:
    """True when the cache's extractor ran with randomly initialised weights."""
    return str(cache.extractor.get("weights", {}).get("identity", "")).startswith("random-init")


def as_workspace(source: Workspace | str | os.PathLike | Mapping[tuple[str, str], Any]) -> Workspace:
    """A :class:`Workspace` from a workspace, a folder, or ``{(set, extractor): cache}``."""
    if isinstance(source, Workspace):
        return source
    if isinstance(source, Mapping):
        return Workspace.from_caches(source)
    if isinstance(source, (str, os.PathLike)):
        return Workspace.open(source)
    raise TypeError(f"expected a Workspace, a folder path or {{(set, extractor): cache}}; got {type(source).__name__}")
