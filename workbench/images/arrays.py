"""Image sources backed by arrays: in-memory numpy / torch batches and ``.npz`` files.

``.npz`` follows the layout written by ADM / guided-diffusion sampling scripts: ``arr_0`` holds the
images (``N x H x W x C`` ``uint8``) and, for class-conditional samples, ``arr_1`` the labels
(``N`` integers). Uncompressed archives (``np.savez``) are memory-mapped, so a 50,000-image file is
never loaded whole; compressed ones (``np.savez_compressed``) are decompressed into memory once.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..npy_header import read_npy_header
from .decode import ImageDecodeError, array_to_rgb8
from .source import ImageSource, content_digest


def _as_numpy(images: Any) -> np.ndarray:
    if hasattr(images, "detach") and hasattr(images, "cpu"):  # torch.Tensor
        images = images.detach().cpu().numpy()
    arr = np.asarray(images)
    if arr.dtype == object:
        raise TypeError("images must be a numeric array of shape N x H x W x C / N x C x H x W / N x H x W")
    return arr


def _check_labels(labels: Any, n: int, origin: str) -> np.ndarray | None:
    if labels is None:
        return None
    lab = _as_numpy(labels)
    if lab.ndim != 1 or lab.shape[0] != n or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"{origin}: labels must be {n} integers (one per image); got shape {lab.shape}, dtype {lab.dtype}")
    return lab.astype(np.int64)


class ArraySource(ImageSource):
    """Images held in a numpy array or torch tensor.

    Args:
        images: ``N x H x W x C``, ``N x C x H x W`` (C in 1, 3, 4) or ``N x H x W``; ``uint8``,
            ``uint16``, or floats in [0, 1].
        labels: optional ``N`` integer labels.
        class_names: optional names for label values.
        name: used to name caches and sample ids (``"name[i]"``).
    """

    kind = "array"

    def __init__(
        self,
        images: Any,
        labels: Any = None,
        class_names: Sequence[str] | None = None,
        name: str = "array",
    ) -> None:
        arr = _as_numpy(images)
        if arr.ndim not in (3, 4):
            raise ValueError(
                f"{name}: images must have shape N x H x W x C, N x C x H x W or N x H x W; got {arr.shape}"
            )
        self.images = arr
        self.name = name
        self.labels = _check_labels(labels, arr.shape[0], name)
        self.class_names = list(class_names) if class_names is not None else None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def sample_id(self, index: int) -> str:
        return f"{self.name}[{index}]"

    def load(self, index: int) -> np.ndarray:
        return array_to_rgb8(self.images[index], self.sample_id(index))

    def content_hash(self, index: int) -> str:
        return content_digest(np.ascontiguousarray(self.images[index]).tobytes())

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": None,
            "name": self.name,
            "count": len(self),
            "shape": list(self.images.shape),
            "dtype": str(self.images.dtype),
            "labels": "given" if self.labels is not None else None,
        }


def _memmap_npz_member(path: Path, member: str) -> np.ndarray | None:
    """Memory-map an uncompressed ``.npy`` member of an ``.npz``; None when it is compressed."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with zf.open(info) as fh:
            shape, fortran, dtype, header_len = read_npy_header(fh)
    if dtype.hasobject:
        raise ValueError(f"{path}:{member}: object arrays are not supported (no pickle)")
    with open(path, "rb") as raw:
        raw.seek(info.header_offset)
        local = raw.read(30)
        name_len = int.from_bytes(local[26:28], "little")
        extra_len = int.from_bytes(local[28:30], "little")
    offset = info.header_offset + 30 + name_len + extra_len + header_len
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


class NpzSource(ArraySource):
    """Images in an ``.npz`` file (``arr_0`` images, optional ``arr_1`` labels, as ADM writes)."""

    kind = "npz"

    def __init__(self, path: str | os.PathLike, key: str = "arr_0", labels_key: str | None = "arr_1") -> None:
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise FileNotFoundError(f"npz file not found: {self.path}")
        try:
            with zipfile.ZipFile(self.path) as zf:
                members = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
        except zipfile.BadZipFile as exc:
            raise ValueError(f"{self.path}: not a valid .npz file ({exc})") from exc
        if key not in members:
            raise KeyError(f"{self.path}: no array {key!r} in the file (arrays: {sorted(members)})")
        try:
            images = _memmap_npz_member(self.path, key + ".npy")
            self.memmapped = images is not None
            if images is None:
                with np.load(self.path, allow_pickle=False) as npz:
                    images = npz[key]
            labels = None
            if labels_key and labels_key in members:
                with np.load(self.path, allow_pickle=False) as npz:
                    cand = npz[labels_key]
                if cand.ndim == 1 and cand.shape[0] == images.shape[0] and np.issubdtype(cand.dtype, np.integer):
                    labels = cand
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{self.path}: cannot read array {key!r} ({exc})") from exc
        super().__init__(images, labels=labels, name=self.path.stem)
        self.key = key

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(kind=self.kind, path=str(self.path), key=self.key, memmapped=self.memmapped)
        return d


class SubsetSource(ImageSource):
    """A contiguous or indexed view of another source (used for ``--limit`` and shards)."""

    def __init__(self, base: ImageSource, indices: Sequence[int] | np.ndarray) -> None:
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        self.kind = base.kind
        self.name = base.name
        self.class_names = base.class_names
        self.labels = base.labels[self.indices] if base.labels is not None else None

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def sample_id(self, index: int) -> str:
        return self.base.sample_id(int(self.indices[index]))

    def load(self, index: int) -> np.ndarray:
        return self.base.load(int(self.indices[index]))

    def content_hash(self, index: int) -> str:
        return self.base.content_hash(int(self.indices[index]))

    def describe(self) -> dict[str, Any]:
        d = dict(self.base.describe())
        d["count"] = len(self)
        return d


def check_not_empty(source: ImageSource) -> None:
    """Raise a clear error for a source with no images."""
    if len(source) == 0:
        where = source.describe().get("path") or source.name
        raise ValueError(
            f"no images found in {where} (looked for .png .jpg .jpeg .webp .bmp files, any case, "
            "recursively); check the path"
        )


__all__ = ["ArraySource", "NpzSource", "SubsetSource", "check_not_empty", "ImageDecodeError"]
