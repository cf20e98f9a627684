"""On-disk embedding caches: resumable, sharded extraction and memory-mapped reading."""

from .extraction import cache_dir_for, extract, parse_shard
from .manifest import FORMAT_VERSION, CacheError
from .reader import EmbeddingCache, open_cache
from .sharded import ShardedArray

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
