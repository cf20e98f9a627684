"""References to samples of a workspace: ``(set name, row index)`` pairs, possibly from several sets.

:class:`Samples` is what a selection holds (a lasso in the embedding map, a class bar, a row of
the memorization table) and what layouts (:mod:`~workbench.workspace.projections`) are computed
for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import numpy as np


class Samples:
    """An immutable list of sample references ``(set name, row index)``, possibly from several sets.

    Stored as two arrays (a set code per sample and the row index) so that 100,000 references
    cost two small arrays, not 100,000 tuples.

    Args:
        sets: the set names the codes refer to.
        codes: ``(n,)`` integer positions into ``sets``.
        index: ``(n,)`` row numbers inside each sample's set (cache row order).
    """

    __slots__ = ("_sets", "_codes", "_index")

    def __init__(self, sets: Iterable[str], codes: np.ndarray, index: np.ndarray) -> None:
        sets = tuple(str(s) for s in sets)
        codes = np.asarray(codes, dtype=np.int64).reshape(-1)
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        if codes.shape != index.shape:
            raise ValueError(f"codes and index must have the same length; got {codes.shape[0]} and {index.shape[0]}")
        if codes.size and (codes.min() < 0 or codes.max() >= len(sets)):
            raise ValueError(f"codes must lie in [0, {len(sets)}) (positions into sets {list(sets)})")
        if index.size and index.min() < 0:
            raise ValueError("index must hold non-negative row numbers")
        codes.setflags(write=False)
        index.setflags(write=False)
        self._sets, self._codes, self._index = sets, codes, index

    @classmethod
    def of(cls, set_name: str, index: Iterable[int] | np.ndarray) -> Samples:
        """Samples of one set: ``Samples.of("memorizer", [3, 7])``."""
        idx = np.asarray(list(index) if not isinstance(index, np.ndarray) else index, dtype=np.int64)
        return cls((set_name,), np.zeros(idx.size, dtype=np.int64), idx)

    @classmethod
    def from_mapping(cls, parts: Mapping[str, Iterable[int] | np.ndarray]) -> Samples:
        """Samples of several sets, in mapping order: ``{"reference": [...], "gan": [...]}``."""
        names = list(parts)
        idx = [
            np.asarray(list(v) if not isinstance(v, np.ndarray) else v, dtype=np.int64).reshape(-1)
            for v in parts.values()
        ]
        codes = [np.full(a.size, i, dtype=np.int64) for i, a in enumerate(idx)]
        if not idx:
            return cls((), np.zeros(0, np.int64), np.zeros(0, np.int64))
        return cls(names, np.concatenate(codes), np.concatenate(idx))

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, int]]) -> Samples:
        """Samples from ``(set, index)`` pairs, keeping their order."""
        names: dict[str, int] = {}
        codes, index = [], []
        for s, i in pairs:
            codes.append(names.setdefault(str(s), len(names)))
            index.append(int(i))
        return cls(names, np.asarray(codes, dtype=np.int64), np.asarray(index, dtype=np.int64))

    @property
    def sets(self) -> tuple[str, ...]:
        return self._sets

    @property
    def codes(self) -> np.ndarray:
        return self._codes

    @property
    def index(self) -> np.ndarray:
        return self._index

    def set_names(self) -> list[str]:
        """The set names that occur, in order of ``sets``."""
        present = np.unique(self._codes)
        return [self._sets[c] for c in present]

    def by_set(self) -> dict[str, np.ndarray]:
        """``{set: row indices}`` (in the order they occur)."""
        return {self._sets[c]: self._index[self._codes == c] for c in np.unique(self._codes)}

    def take(self, positions: np.ndarray) -> Samples:
        """The samples at ``positions`` (a sub-list or a re-ordering)."""
        pos = np.asarray(positions, dtype=np.int64)
        return Samples(self._sets, self._codes[pos], self._index[pos])

    def __getitem__(self, i: int) -> tuple[str, int]:
        return self._sets[int(self._codes[i])], int(self._index[i])

    def __iter__(self) -> Iterator[tuple[str, int]]:
        for c, i in zip(self._codes.tolist(), self._index.tolist()):
            yield self._sets[c], i

    def __len__(self) -> int:
        return int(self._index.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Samples):
            return NotImplemented
        if len(self) != len(other):
            return False
        mine = [self._sets[c] for c in self._codes] if len(self) < 64 else None
        if mine is not None:
            return mine == [other._sets[c] for c in other._codes] and bool(np.array_equal(self._index, other._index))
        lookup = {s: i for i, s in enumerate(self._sets)}
        remap = np.array([lookup.get(s, -1) for s in other._sets], dtype=np.int64)
        return bool(np.array_equal(self._index, other._index)) and bool(
            np.array_equal(self._codes, remap[other._codes])
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = ", ".join(f"{s}: {int((self._codes == i).sum())}" for i, s in enumerate(self._sets))
        return f"<Samples {len(self)} ({parts})>"
