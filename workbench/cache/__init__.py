"""On-disk embedding caches: resumable, sharded extraction and memory-mapped reading.

Reading (``open_cache``, :class:`EmbeddingCache`, :class:`ShardedArray`) needs only numpy, pandas
and pyarrow; the extraction exports (``extract``, ``cache_dir_for``, ``parse_shard``) load torch on
first use, so ``workbench info`` and ``open_cache`` start fast without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.lazy_exports import attach

from .manifest import FORMAT_VERSION, CacheError
from .reader import EmbeddingCache, open_cache
from .sharded import ShardedArray

__getattr__, _lazy_dir, _lazy = attach(
    __name__,
    {"extract": "extraction", "cache_dir_for": "extraction", "parse_shard": "extraction"},
)
__all__ = [
    "FORMAT_VERSION",
    "CacheError",
    "EmbeddingCache",
    "ShardedArray",
    "cache_dir_for",
    "extract",
    "open_cache",
    "parse_shard",
]


def __dir__() -> list[str]:
    return sorted(set(_lazy_dir()) | set(__all__))


if TYPE_CHECKING:
    from .extraction import cache_dir_for, extract, parse_shard
