"""Content fingerprints of image sources and the cache key derived from them.

The key of a cache covers everything that determines its contents: the ordered list of sample
ids, the bytes of every covered image, the extractor (name, variant, weights identity,
preprocessing) and the thumbnail size. Any change gives a different key, so a stale cache is never
reused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..images import ImageSource
from ..progress import Progress, ProgressReporter


def digest(parts: Iterable[str]) -> str:
    """BLAKE2b-128 hex digest of a sequence of strings (newline separated)."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part.encode())
        h.update(b"\n")
    return h.hexdigest()


def listing_fingerprint(source: ImageSource) -> str:
    """Fingerprint of the ordered sample ids (cheap: no image is read)."""
    return digest([str(len(source)), *source.listing()])


def content_hashes(source: ImageSource, start: int, stop: int, progress: Progress = True) -> list[str]:
    """Per-sample content hashes of ``source[start:stop]``, read with a small thread pool.

    ``progress`` follows :mod:`workbench.progress` (one step per image, task ``"fingerprinting"``).
    """
    indices = range(start, stop)
    out: list[str] = []
    with (
        ThreadPoolExecutor(max_workers=4) as pool,
        ProgressReporter(progress, "fingerprinting", len(indices), unit="img", leave=False) as bar,
    ):
        for h in pool.map(source.content_hash, indices, chunksize=64):
            out.append(h)
            if len(out) % 256 == 0 or len(out) == len(indices):
                bar.advance(len(out) - bar.done)
    return out


def cache_key(
    extractor_description: dict[str, Any],
    listing_fp: str,
    content_fp: str,
    start: int,
    stop: int,
    thumbnails: int,
    format_version: int,
    options: dict[str, Any] | None = None,
) -> str:
    """The cache key: a digest of everything that determines the cache contents.

    ``options`` are the non-default extraction options (``limit``, ``labels``, ...); they enter
    the key only when given, so keys of caches made with default options stay as they were.
    """
    fields: dict[str, Any] = {
        "format": format_version,
        "extractor": extractor_description,
        "listing": listing_fp,
        "content": content_fp,
        "range": [start, stop],
        "thumbnails": thumbnails,
    }
    if options:
        fields["options"] = options
    blob = json.dumps(fields, sort_keys=True)
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


def file_sha256(path: Any, block: int = 1 << 22) -> str:
    """SHA-256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            buf = fh.read(block)
            if not buf:
                break
            h.update(buf)
    return h.hexdigest()
