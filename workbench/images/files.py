"""Image sources backed by files: a folder tree and a ``.zip`` archive.

Both list images recursively (extensions png/jpg/jpeg/webp/bmp in any case), sort them by
relative path, and take class labels from the first-level folder names when ``labels="auto"``
finds every image exactly one folder deep (the ImageFolder layout) or ``labels="folders"``.

Nothing is listed twice and nothing unbounded is read:

* symlinked folders are followed, but every folder is visited once (by device and inode), so a
  symlink loop (``sub/back -> ..``) or two links to one folder cannot multiply the images; real
  folders take precedence over links, and what was skipped is in ``skipped_dirs`` and ``notes``;
* a file (or zip member) larger than ``max_file_bytes`` is never read. The default,
  :func:`file_size_limit`, is 4 bytes per pixel of the pixel limit (256 MiB for 8192 x 8192):
  the size of the image's raw 8-bit RGBA pixels, which no sensibly encoded image exceeds.
  Oversized zip members are left out at listing time (``skipped_members``, ``notes``); an
  oversized file in a folder stays listed and fails to load with an error naming it.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections import Counter, deque
from pathlib import Path
from typing import Any

import numpy as np

from .decode import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, ImageDecodeError, check_max_pixels, decode_bytes
from .source import UNREADABLE_HASH, ImageSource, content_digest

_MIN_FILE_BYTES = 1 << 20


def file_size_limit(max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """Default largest image file (bytes) read for a pixel limit: ``max(4 * max_pixels, 1 MiB)``.

    4 bytes per pixel is an uncompressed 8-bit RGBA image; 268,435,456 bytes (256 MiB) for the
    default 8192 x 8192 limit.
    """
    return max(4 * check_max_pixels(max_pixels), _MIN_FILE_BYTES)


def _check_file_limit(max_file_bytes: int | None, max_pixels: int) -> int:
    if max_file_bytes is None:
        return file_size_limit(max_pixels)
    if isinstance(max_file_bytes, bool) or not isinstance(max_file_bytes, (int, np.integer)) or max_file_bytes < 1:
        raise ValueError(f"max_file_bytes must be a positive number of bytes (or None), got {max_file_bytes!r}")
    return int(max_file_bytes)


def _size_hint(max_file_bytes: int) -> str:
    return (
        f"to read it, pass max_file_bytes=N with N above its size (the default is 4 bytes per pixel "
        f"of --max-pixels / max_pixels, now {max_file_bytes:,} bytes)"
    )


def _list_folder(root: Path) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """List image files under ``root``, following symlinked folders but visiting each folder once.

    Folders are identified by ``(st_dev, st_ino)`` of their real path. The real tree is walked
    first (sorted), then the symlinked folders in the order they were found, so a folder reached
    both directly and through a link is listed under its real path.

    Returns:
        ``(image paths relative to root with "/", skipped folders as (relative path, reason),
        notes)``; the image paths are unsorted.

    Raises:
        OSError: ``root`` itself cannot be listed.
    """
    files: list[str] = []
    skipped: list[tuple[str, str]] = []
    notes: list[str] = []
    visited: dict[tuple[int, int], str] = {}
    links: deque[str] = deque()

    def visit(start: str, via_link: bool) -> None:
        stack = [(start, via_link)]
        while stack:
            rel, is_link = stack.pop()
            where = root if rel == "." else root / rel
            try:
                st = os.stat(where)
                key = (st.st_dev, st.st_ino)
            except OSError as exc:
                skipped.append((rel, f"cannot open folder ({exc.strerror or exc})"))
                continue
            if key in visited:
                first = visited[key]
                seen = "the source folder itself" if first == "." else f"as {first!r}"
                what = "symlink to a folder" if is_link else "folder (a bind mount or hard link)"
                skipped.append((rel, f"{what} already listed ({seen}); skipped"))
                continue
            visited[key] = rel
            try:
                with os.scandir(where) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                if rel == ".":
                    raise OSError(exc.errno, f"{root}: cannot list the image folder ({exc.strerror or exc})") from exc
                skipped.append((rel, f"cannot list folder ({exc.strerror or exc}); its images are missing"))
                continue
            subdirs = []
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                child = entry.name if rel == "." else f"{rel}/{entry.name}"
                try:
                    is_dir = entry.is_dir()  # follows symlinks
                except OSError:
                    is_dir = False
                if is_dir:
                    if entry.is_symlink():
                        links.append(child)
                    else:
                        subdirs.append(child)
                    continue
                if not _is_image_name(entry.name):
                    continue
                try:
                    mode = entry.stat().st_mode  # follows symlinks
                except OSError:
                    files.append(child)  # a broken link: listed, and reported by name when read
                    continue
                if stat.S_ISREG(mode):
                    files.append(child)
                else:  # a FIFO or device named *.png: reading it could block forever
                    notes.append(f"{child}: not a regular file (FIFO, socket or device); skipped")
            stack.extend((d, is_link) for d in reversed(subdirs))

    visit(".", False)
    while links:
        visit(links.popleft(), True)
    notes[:0] = [f"{rel}: {reason}" for rel, reason in skipped]
    return files, skipped, notes


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not Path(name).name.startswith(".")


def _labels_from_paths(rel_paths: list[str], labels: str, origin: str) -> tuple[np.ndarray | None, list[str] | None]:
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
            f"{origin}: labels='folders' needs every image inside a class folder; {'/'.join(loose)!r} is not"
        )
    names = sorted({p[0] for p in parts})
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[p[0]] for p in parts], dtype=np.int64), names


class FolderSource(ImageSource):
    """All images under a directory, recursively, sorted by relative path.

    Args:
        path: the folder.
        labels: ``"auto"``, ``"folders"`` or ``"none"`` (see the module doc).
        max_pixels: largest image (``width * height``) decoded; larger ones fail to load with an
            :class:`ImageDecodeError` naming the file and the option to raise the limit.
        max_file_bytes: largest file read (default :func:`file_size_limit` of ``max_pixels``).

    Attributes:
        paths: image paths relative to ``root`` (``"/"`` separated), sorted.
        skipped_dirs: relative paths of folders not walked: symlinks to a folder already listed
            (loops, repeated links) and folders that could not be listed. The reasons are in
            ``notes``.
    """

    kind = "folder"

    def __init__(
        self,
        path: str | os.PathLike,
        labels: str = "auto",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_file_bytes: int | None = None,
    ) -> None:
        self.root = Path(path).expanduser().resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.root}")
        self.max_pixels = check_max_pixels(max_pixels)
        self.max_file_bytes = _check_file_limit(max_file_bytes, self.max_pixels)
        rels, skipped, notes = _list_folder(self.root)
        rels.sort()
        self.paths = rels
        self.skipped_dirs = [rel for rel, _ in skipped]
        self.notes = notes
        self.name = self.root.name
        self.labels, self.class_names = _labels_from_paths(rels, labels, str(self.root))

    def __len__(self) -> int:
        return len(self.paths)

    def sample_id(self, index: int) -> str:
        return self.paths[index]

    def _read(self, index: int) -> bytes:
        path = self.root / self.paths[index]
        try:
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode):
                raise ImageDecodeError(f"{path}: not a regular file; not read")
            if st.st_size > self.max_file_bytes:
                raise ImageDecodeError(
                    f"{path}: file is {st.st_size:,} bytes, above the limit of {self.max_file_bytes:,} "
                    f"bytes for one image; not read ({_size_hint(self.max_file_bytes)})"
                )
            with open(path, "rb") as fh:
                data = fh.read(self.max_file_bytes + 1)
        except OSError as exc:
            raise ImageDecodeError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
        if len(data) > self.max_file_bytes:  # the file grew since stat
            raise ImageDecodeError(
                f"{path}: file is larger than the limit of {self.max_file_bytes:,} bytes for one image; "
                f"not read ({_size_hint(self.max_file_bytes)})"
            )
        return data

    def load(self, index: int) -> np.ndarray:
        return decode_bytes(self._read(index), str(self.root / self.paths[index]), self.max_pixels)

    def content_hash(self, index: int) -> str:
        try:
            return content_digest(self._read(index))
        except ImageDecodeError:
            return UNREADABLE_HASH

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.root),
            "count": len(self),
            "labels": "folders" if self.labels is not None else None,
            "max_pixels": self.max_pixels,
            "max_file_bytes": self.max_file_bytes,
            "skipped_dirs": list(self.skipped_dirs),
        }


class ZipSource(ImageSource):
    """All images inside a ``.zip`` archive, sorted by member name.

    The archive is opened lazily once per process, so the source can be shared with
    DataLoader worker processes.

    Args:
        path: the ``.zip`` file.
        labels: ``"auto"``, ``"folders"`` or ``"none"`` (see the module doc).
        max_pixels: largest image (``width * height``) decoded; larger ones fail to load with an
            :class:`ImageDecodeError` naming the member and the option to raise the limit.
        max_file_bytes: members whose declared uncompressed size is larger are left out without
            being read (default :func:`file_size_limit` of ``max_pixels``); reading the others is
            bounded by it too.

    Attributes:
        members: member names, sorted (a name stored twice is listed twice, each its own member).
        skipped_members: ``{"name", "size", "compressed_size"}`` of the members left out for their
            size; also described in ``notes``.
    """

    kind = "zip"

    def __init__(
        self,
        path: str | os.PathLike,
        labels: str = "auto",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_file_bytes: int | None = None,
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise FileNotFoundError(f"zip archive not found: {self.path}")
        self.max_pixels = check_max_pixels(max_pixels)
        self.max_file_bytes = _check_file_limit(max_file_bytes, self.max_pixels)
        try:
            with zipfile.ZipFile(self.path) as zf:
                infos = [
                    (pos, i) for pos, i in enumerate(zf.infolist()) if not i.is_dir() and _is_image_name(i.filename)
                ]
        except (zipfile.BadZipFile, OSError) as exc:
            raise ValueError(f"{self.path}: not a valid zip archive ({exc})") from exc
        infos.sort(key=lambda pi: (pi[1].filename, pi[0]))
        self.skipped_members: list[dict[str, Any]] = []
        notes: list[str] = []
        kept = []
        for pos, info in infos:
            if info.file_size > self.max_file_bytes:
                self.skipped_members.append(
                    {"name": info.filename, "size": info.file_size, "compressed_size": info.compress_size}
                )
                notes.append(
                    f"{info.filename}: {info.file_size:,} bytes uncompressed ({info.compress_size:,} in the "
                    f"archive), above the limit of {self.max_file_bytes:,} bytes for one image; skipped "
                    f"without reading ({_size_hint(self.max_file_bytes)})"
                )
            else:
                kept.append((pos, info))
        names = [i.filename for _, i in kept]
        counts = Counter(names)
        for n in sorted(n for n, c in counts.items() if c > 1):
            notes.append(f"{n}: stored {counts[n]} times in the archive; every copy is listed")
        self.notes = notes
        self.members = names
        self._positions = [pos for pos, _ in kept]
        self._crc = [(i.CRC, i.file_size) for _, i in kept]
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
        limit = self.max_file_bytes
        try:
            info = self._archive().infolist()[self._positions[index]]
            with self._archive().open(info) as fh:
                # zipfile stops at the declared size (and then checks the CRC); the bounded read
                # keeps memory within the limit whatever the archive claims.
                data = fh.read(limit + 1)
        except Exception as exc:  # zlib.error, BadZipFile (CRC mismatch), OSError, encrypted member
            raise ImageDecodeError(f"{self.path}:{name}: cannot read member ({exc})") from exc
        if len(data) > limit:
            raise ImageDecodeError(
                f"{self.path}:{name}: decompresses to more than {limit:,} bytes (declared "
                f"{info.file_size:,}); not read further ({_size_hint(limit)})"
            )
        return data

    def load(self, index: int) -> np.ndarray:
        return decode_bytes(self._read(index), f"{self.path}:{self.members[index]}", self.max_pixels)

    def content_hash(self, index: int) -> str:
        # The archive's own CRC-32 and size identify the member's content without decompressing it.
        crc, size = self._crc[index]
        return f"crc32:{crc:08x}:{size}"

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.path),
            "count": len(self),
            "labels": "folders" if self.labels is not None else None,
            "max_pixels": self.max_pixels,
            "max_file_bytes": self.max_file_bytes,
            "skipped_members": [dict(m) for m in self.skipped_members],
        }
