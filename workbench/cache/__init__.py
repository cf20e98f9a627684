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

_getattr, _dir, _lazy = attach(
    __name__,
    {"extract": "extraction", "cache_dir_for": "extraction", "parse_shard": "extraction"},
)
__getattr__ = _getattr
__all__ = sorted(["FORMAT_VERSION", "CacheError", "EmbeddingCache", "ShardedArray", "open_cache", *_lazy])


def __dir__() -> list[str]:
    return sorted(set(_dir()) | set(__all__))


if TYPE_CHECKING:
    from .extraction import cache_dir_for, extract, parse_shard
