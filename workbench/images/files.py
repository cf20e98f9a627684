"""Image sources backed by files: a folder tree and a ``.zip`` archive.

Both list images recursively (extensions png/jpg/jpeg/webp/bmp in any case), sort them by
relative path, and take class labels from the first-level folder names when ``labels="auto"``
finds every image exactly one folder deep (the ImageFolder layout) or ``labels="folders"``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .decode import IMAGE_EXTENSIONS, ImageDecodeError, decode_bytes
from .source import ImageSource, content_digest


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not Path(name).name.startswith(".")


def _labels_from_paths(
    rel_paths: list[str], labels: str, origin: str
) -> tuple[np.ndarray | None, list[str] | None]:
    """Labels from first-level folder names (``labels`` is "auto", "folders" or "none")."""
    if labels not in ("auto", "folders", "none"):
        raise ValueError(f"labels must be 'auto', 'folders' or 'none'; got {labels!r}")
    if labels == "none":
        return None, None
    parts = [p.split("/") for p in rel_paths]
    one_deep = all(len(p) == 2 for p in parts)
    if labels == "auto":
        if not one_deep or len({p[0] for p in parts}) < 2:
            return None, None
    elif not all(len(p) >= 2 for p in parts):
        loose = next(p for p in parts if len(p) < 2)
        raise ValueError(
            f"{origin}: labels='folders' needs every image inside a class folder; "
            f"{'/'.join(loose)!r} is not"
        )
    names = sorted({p[0] for p in parts})
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[p[0]] for p in parts], dtype=np.int64), names


class FolderSource(ImageSource):
    """All images under a directory, recursively, sorted by relative path."""

    kind = "folder"

    def __init__(self, path: str | os.PathLike, labels: str = "auto") -> None:
        self.root = Path(path).expanduser().resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.root}")
        rels: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for fn in filenames:
                if _is_image_name(fn):
                    rels.append(fn if rel_dir == "." else f"{rel_dir}/{fn}")
        rels.sort()
        self.paths = rels
        self.name = self.root.name
        self.labels, self.class_names = _labels_from_paths(rels, labels, str(self.root))

    def __len__(self) -> int:
        return len(self.paths)

    def sample_id(self, index: int) -> str:
        return self.paths[index]

    def _read(self, index: int) -> bytes:
        path = self.root / self.paths[index]
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ImageDecodeError(f"{path}: cannot read file ({exc.strerror or exc})") from exc

    def load(self, index: int) -> np.ndarray:
        return decode_bytes(self._read(index), str(self.root / self.paths[index]))

    def content_hash(self, index: int) -> str:
        try:
            return content_digest(self._read(index))
        except ImageDecodeError:
            return "unreadable"

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.root),
            "count": len(self),
            "labels": "folders" if self.labels is not None else None,
        }


class ZipSource(ImageSource):
    """All images inside a ``.zip`` archive, sorted by member name.

    The archive is opened lazily once per process, so the source can be shared with
    DataLoader worker processes.
    """

    kind = "zip"

    def __init__(self, path: str | os.PathLike, labels: str = "auto") -> None:
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise FileNotFoundError(f"zip archive not found: {self.path}")
        try:
            with zipfile.ZipFile(self.path) as zf:
                infos = [i for i in zf.infolist() if not i.is_dir() and _is_image_name(i.filename)]
        except zipfile.BadZipFile as exc:
            raise ValueError(f"{self.path}: not a valid zip archive ({exc})") from exc
        infos.sort(key=lambda i: i.filename)
        self.members = [i.filename for i in infos]
        self._crc = {i.filename: (i.CRC, i.file_size) for i in infos}
        self.name = self.path.stem
        self.labels, self.class_names = _labels_from_paths(self.members, labels, str(self.path))
        self._zip: zipfile.ZipFile | None = None
        self._pid: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_zip"] = None
        state["_pid"] = None
        return state

    def _archive(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._pid = os.getpid()
        return self._zip

    def __len__(self) -> int:
        return len(self.members)

    def sample_id(self, index: int) -> str:
        return self.members[index]

    def _read(self, index: int) -> bytes:
        name = self.members[index]
        try:
            return self._archive().read(name)
        except Exception as exc:  # zlib.error, BadZipFile (CRC mismatch), OSError
            raise ImageDecodeError(f"{self.path}:{name}: cannot read member ({exc})") from exc

    def load(self, index: int) -> np.ndarray:
        return decode_bytes(self._read(index), f"{self.path}:{self.members[index]}")

    def content_hash(self, index: int) -> str:
        # The archive's own CRC-32 and size identify the member's content without decompressing it.
        crc, size = self._crc[self.members[index]]
        return f"crc32:{crc:08x}:{size}"

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.path),
            "count": len(self),
            "labels": "folders" if self.labels is not None else None,
        }
