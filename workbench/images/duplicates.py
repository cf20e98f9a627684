"""Exact duplicate images: groups of samples whose stored bytes have the same content hash.

Pure helpers over the hashes an :class:`~workbench.images.ImageSource` already gives
(:meth:`~workbench.images.ImageSource.content_hash`); nothing is read or decoded here. Two
samples are exact duplicates when their hashes are equal: the same file content for folders and
npz/array sources (BLAKE2b), the same CRC-32 and size for zip members. Samples whose hash is
:data:`~workbench.images.source.UNREADABLE_HASH` are never grouped (they are reported elsewhere).
"""

from __future__ import annotations

from collections.abc import Sequence

from .source import UNREADABLE_HASH


def find_duplicates(ids: Sequence[str], hashes: Sequence[str]) -> list[list[str]]:
    """Groups of sample ids that share an exact content hash.

    Args:
        ids: ``N`` sample ids (e.g. ``ImageSource.listing()``).
        hashes: ``N`` content hashes, aligned with ``ids``; ``"unreadable"`` and empty ones are ignored.

    Returns:
        Groups of two or more ids, each in input order; groups ordered by their first id's position.

    Raises:
        ValueError: ``ids`` and ``hashes`` differ in length.
    """
    if len(ids) != len(hashes):
        raise ValueError(f"find_duplicates: got {len(ids)} ids but {len(hashes)} hashes; they must be aligned")
    groups: dict[str, list[str]] = {}
    for sample_id, digest in zip(ids, hashes):
        if not digest or digest == UNREADABLE_HASH:
            continue
        groups.setdefault(str(digest), []).append(str(sample_id))
    return [g for g in groups.values() if len(g) >= 2]


def summarize_duplicates(groups: Sequence[Sequence[str]], max_groups: int = 5, max_ids: int = 4) -> str:
    """One line describing duplicate groups, e.g.
    ``"3 exact duplicate images in 2 groups: a.png = b.png; c.png = d.png = e.png"``.

    The count is of redundant copies (a group of ``k`` identical images adds ``k - 1``). At most
    ``max_groups`` groups and ``max_ids`` ids per group are written; the rest is summarised with
    ``"..."``. Returns ``"no exact duplicate images"`` for no groups.
    """
    groups = [list(g) for g in groups if len(g) >= 2]
    if not groups:
        return "no exact duplicate images"
    extra = sum(len(g) - 1 for g in groups)
    parts = []
    for g in groups[:max_groups]:
        shown = " = ".join(g[:max_ids])
        parts.append(shown if len(g) <= max_ids else f"{shown} = ... ({len(g)} images)")
    if len(groups) > max_groups:
        parts.append(f"... and {len(groups) - max_groups} more group{'s' if len(groups) - max_groups > 1 else ''}")
    return (
        f"{extra} exact duplicate image{'s' if extra != 1 else ''} in {len(groups)} "
        f"group{'s' if len(groups) != 1 else ''}: " + "; ".join(parts)
    )


__all__ = ["find_duplicates", "summarize_duplicates"]
