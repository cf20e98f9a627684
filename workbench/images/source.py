"""The image-source protocol: an ordered, indexable collection of images with optional labels."""

from __future__ import annotations

import abc
import hashlib
from typing import Any

import numpy as np

UNREADABLE_HASH = "unreadable"
"""What :meth:`ImageSource.content_hash` returns for a sample whose bytes cannot be read."""


def content_digest(data: bytes | memoryview) -> str:
    """Short content hash (BLAKE2b, 128 bit, hex) of an image's stored bytes."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class ImageSource(abc.ABC):
    """An ordered collection of images. Order is deterministic (sorted paths, array order).

    Attributes:
        kind: ``"folder"``, ``"zip"``, ``"npz"`` or ``"array"``.
        name: short human name (folder name, file stem), used to name caches.
        labels: ``int64`` array of length ``len(self)`` (-1 where unknown), or None.
        class_names: names for label values ``0..K-1``, or None.
        notes: human-readable one-line notes about what opening the source skipped or ignored
            (a symlinked folder listed already, an oversized zip member, unusable labels), e.g.
            ``"sub/back: symlink to a folder already listed (the source folder itself); skipped"``.
            Empty when nothing was left out; callers print them and record them in manifests.
    """

    kind: str = ""
    name: str = ""
    labels: np.ndarray | None = None
    class_names: list[str] | None = None

    @property
    def notes(self) -> list[str]:
        return self.__dict__.setdefault("_notes", [])

    @notes.setter
    def notes(self, value: list[str]) -> None:
        self.__dict__["_notes"] = list(value)

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def sample_id(self, index: int) -> str:
        """Stable identifier of sample ``index`` (relative path, member name, or ``"name[i]"``)."""

    @abc.abstractmethod
    def load(self, index: int) -> np.ndarray:
        """Decoded image ``index`` as ``H x W x 3`` ``uint8``; raises ``ImageDecodeError``."""

    @abc.abstractmethod
    def content_hash(self, index: int) -> str:
        """Hash of the stored bytes of sample ``index`` (changes whenever the image changes).

        Returns :data:`UNREADABLE_HASH` when the bytes cannot be read.
        """

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-able description: kind, path, count, label origin."""

    def listing(self) -> list[str]:
        """All sample ids in order."""
        return [self.sample_id(i) for i in range(len(self))]

    def label(self, index: int) -> int | None:
        if self.labels is None:
            return None
        value = int(self.labels[index])
        return None if value < 0 else value

    def class_name(self, index: int) -> str | None:
        lab = self.label(index)
        if lab is None or self.class_names is None or lab >= len(self.class_names):
            return None
        return self.class_names[lab]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {len(self)} images>"
