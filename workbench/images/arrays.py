"""Image sources backed by arrays: in-memory numpy / torch batches and ``.npz`` files.

``.npz`` follows the layout written by ADM / guided-diffusion sampling scripts: ``arr_0`` holds the
images (``N x H x W x C`` ``uint8``) and, for class-conditional samples, ``arr_1`` the labels
(``N`` integers). Uncompressed archives (``np.savez``) are memory-mapped, so a 50,000-image file is
never loaded whole; compressed ones (``np.savez_compressed``) are decompressed into memory once.

Arrays are checked before any image data is read (from the ``.npy`` headers, for files): object
arrays are refused (no pickle: ``np.load(..., allow_pickle=False)``), shapes must be images,
dtypes numeric, one image at most ``max_pixels`` pixels, and a compressed array must fit in this
machine's memory. Every error names the file and the array key.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..npy_header import read_npy_header
from .decode import DEFAULT_MAX_PIXELS, ImageDecodeError, array_to_rgb8, check_max_pixels, image_hw
from .source import ImageSource, content_digest

_LAYOUTS = "N x H x W x C, N x C x H x W (C in 1, 3, 4) or N x H x W"


def _as_numpy(images: Any) -> np.ndarray:
    if hasattr(images, "detach") and hasattr(images, "cpu"):  # torch.Tensor
        images = images.detach().cpu().numpy()
    arr = np.asarray(images)
    if arr.dtype == object:
        raise TypeError("images must be a numeric array of shape N x H x W x C / N x C x H x W / N x H x W")
    return arr


def _images_problem(shape: tuple[int, ...], dtype: np.dtype, max_pixels: int) -> str | None:
    """Why an array of ``shape``/``dtype`` cannot hold images, or None when it can."""
    if dtype.hasobject:
        return (
            f"has dtype {dtype} (Python objects, which only pickle can read); the workbench never "
            "unpickles files (it loads with allow_pickle=False): save the images as a numeric array, "
            "e.g. np.savez(path, images.astype(np.uint8))"
        )
    if dtype.kind not in "uif":
        return f"has dtype {dtype}; images must be uint8 (or uint16, other integers in 0..255, or floats in [0, 1])"
    if len(shape) not in (3, 4):
        return f"has shape {tuple(shape)} but images must be {_LAYOUTS}"
    if len(shape) == 3 and shape[2] in (3, 4):
        # (N, H, W) grayscale images 3 or 4 pixels wide are not a thing; (H, W, C) is one image
        return (
            f"has shape {tuple(shape)}: one {shape[1]} x {shape[0]} colour image, not a stack of images; "
            f"pass images[None] (shape (1, {', '.join(str(v) for v in shape)})) for a single image"
        )
    hw = image_hw(tuple(shape[1:]))
    if hw is None:
        return f"has shape {tuple(shape)} but images must be {_LAYOUTS}; {shape[1:]} is no image layout"
    if hw[0] * hw[1] > max_pixels:
        return (
            f"holds images of {hw[1]} x {hw[0]} = {hw[0] * hw[1]:,} pixels, above the limit of "
            f"{max_pixels:,} pixels per image (to read them, pass --max-pixels {hw[0] * hw[1]} / "
            f"max_pixels={hw[0] * hw[1]})"
        )
    return None


def _labels_problem(shape: tuple[int, ...], dtype: np.dtype, n: int) -> str | None:
    """Why an array cannot be ``n`` per-image labels, or None when it can."""
    if dtype.hasobject:
        return f"has dtype {dtype} (Python objects, which only pickle can read); labels must be {n} integers"
    if len(shape) != 1 or shape[0] != n or dtype.kind not in "iu":
        return f"has shape {tuple(shape)} and dtype {dtype}, but labels must be {n} integers (one per image)"
    return None


def _check_labels(labels: Any, n: int, origin: str) -> np.ndarray | None:
    if labels is None:
        return None
    lab = _as_numpy(labels)
    if lab.ndim != 1 or lab.shape[0] != n or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(
            f"{origin}: labels must be {n} integers (one per image); got shape {lab.shape}, dtype {lab.dtype}"
        )
    return lab.astype(np.int64)


class ArraySource(ImageSource):
    """Images held in a numpy array or torch tensor.

    Args:
        images: ``N x H x W x C``, ``N x C x H x W`` (C in 1, 3, 4) or ``N x H x W``; ``uint8``,
            ``uint16``, or floats in [0, 1].
        labels: optional ``N`` integer labels.
        class_names: optional names for label values.
        name: used to name caches and sample ids (``"name[i]"``).
        max_pixels: largest image (``H * W``) accepted; a larger array is refused here.

    Raises:
        ValueError: the shape is no image layout, the dtype is not numeric, the images are above
            ``max_pixels``, or the labels do not match.
    """

    kind = "array"

    def __init__(
        self,
        images: Any,
        labels: Any = None,
        class_names: Sequence[str] | None = None,
        name: str = "array",
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.max_pixels = check_max_pixels(max_pixels)
        arr = _as_numpy(images)
        problem = _images_problem(arr.shape, arr.dtype, self.max_pixels)
        if problem is not None:
            raise ValueError(f"{name}: the images array {problem}")
        self.images = arr
        self.name = name
        self.labels = _check_labels(labels, arr.shape[0], name)
        self.class_names = list(class_names) if class_names is not None else None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def sample_id(self, index: int) -> str:
        return f"{self.name}[{index}]"

    def _where(self, index: int) -> str:
        """How errors name image ``index``."""
        return self.sample_id(index)

    def load(self, index: int) -> np.ndarray:
        return array_to_rgb8(self.images[index], self._where(index), self.max_pixels)

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
            "max_pixels": self.max_pixels,
        }


def _physical_memory() -> int | None:
    """Bytes of RAM on this machine, or None when the OS does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _npz_headers(path: Path, members: list[str]) -> dict[str, tuple[tuple[int, ...], bool, np.dtype, zipfile.ZipInfo]]:
    """``{key: (shape, fortran_order, dtype, zipinfo)}`` of the named ``.npy`` members (headers only)."""
    out = {}
    with zipfile.ZipFile(path) as zf:
        for key in members:
            info = zf.getinfo(key + ".npy")
            with zf.open(info) as fh:
                try:
                    shape, fortran, dtype, _ = read_npy_header(fh)
                except Exception as exc:  # ValueError from numpy, struct/Unicode errors on garbage
                    raise ValueError(f"{path}: array {key!r} has no valid .npy header ({exc})") from exc
            out[key] = (shape, fortran, dtype, info)
    return out


def _memmap_npz_member(path: Path, member: str) -> np.ndarray | None:
    """Memory-map an uncompressed ``.npy`` member of an ``.npz``; None when it is compressed."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with zf.open(info) as fh:
            shape, fortran, dtype, header_len = read_npy_header(fh)
    if dtype.hasobject:
        raise ValueError(f"{path}: array {member[:-4]!r} is an object array, which needs pickle (refused)")
    with open(path, "rb") as raw:
        raw.seek(info.header_offset)
        local = raw.read(30)
        name_len = int.from_bytes(local[26:28], "little")
        extra_len = int.from_bytes(local[28:30], "little")
    offset = info.header_offset + 30 + name_len + extra_len + header_len
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


class NpzSource(ArraySource):
    """Images in an ``.npz`` file (``arr_0`` images, optional ``arr_1`` labels, as ADM writes).

    Args:
        path: the ``.npz`` file.
        key: name of the images array (``N x H x W x C`` etc., as :class:`ArraySource`).
        labels_key: name of the labels array. ``"auto"``: ``arr_1`` when the file has it and it
            holds ``N`` integers (otherwise it is ignored, with a line in ``notes``); a name: that
            array, which must exist and be ``N`` integers; None: no labels from the file.
        labels: ``N`` integer labels given directly (then ``labels_key`` is not used).
        class_names: optional names for label values.
        max_pixels: largest image (``H * W``) accepted, checked from the file header.

    Raises:
        KeyError: ``key`` (or an explicit ``labels_key``) is not in the file; lists the arrays.
        ValueError: not an ``.npz``; or the array is an object array (pickle is never used), has
            the wrong shape or dtype, holds images above ``max_pixels``, needs more memory than the
            machine has (compressed), or its first image is out of range; the labels do not fit.
            Every message names the file and the array.
    """

    kind = "npz"

    def __init__(
        self,
        path: str | os.PathLike,
        key: str = "arr_0",
        labels_key: str | None = "auto",
        labels: Any = None,
        class_names: Sequence[str] | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise FileNotFoundError(f"npz file not found: {self.path}")
        max_pixels = check_max_pixels(max_pixels)
        try:
            with zipfile.ZipFile(self.path) as zf:
                members = sorted({n[:-4] for n in zf.namelist() if n.endswith(".npy")})
        except (zipfile.BadZipFile, OSError) as exc:
            raise ValueError(f"{self.path}: not a valid .npz file ({exc})") from exc
        if key not in members:
            raise KeyError(
                f"{self.path}: no array {key!r} in the file (arrays: {members}); choose the images array with key=NAME"
            )
        auto_labels = labels_key == "auto"
        if auto_labels:
            labels_key = "arr_1" if key != "arr_1" else None
        if labels is not None:
            labels_key = None
        if labels_key is not None and labels_key not in members:
            if not auto_labels:
                raise KeyError(f"{self.path}: no labels array {labels_key!r} in the file (arrays: {members})")
            labels_key = None
        try:
            headers = _npz_headers(self.path, [key] + ([labels_key] if labels_key else []))
        except (zipfile.BadZipFile, OSError) as exc:
            raise ValueError(f"{self.path}: cannot read array {key!r} ({exc})") from exc
        shape, _, dtype, info = headers[key]
        problem = _images_problem(shape, dtype, max_pixels)
        if problem is not None:
            raise ValueError(f"{self.path}: array {key!r} {problem}")
        n = int(shape[0])
        if labels is not None:
            labels = _check_labels(labels, n, f"{self.path} (array {key!r} holds {n} images)")
        notes: list[str] = []
        if labels_key is not None:
            lshape, _, ldtype, _ = headers[labels_key]
            lproblem = _labels_problem(lshape, ldtype, n)
            if lproblem is not None:
                if not auto_labels:
                    raise ValueError(f"{self.path}: labels array {labels_key!r} {lproblem}")
                notes.append(
                    f"{self.path.name}: array {labels_key!r} {lproblem}; not used as labels "
                    "(pass labels_key=None to say so, or labels=...)"
                )
                labels_key = None
        stored = info.compress_type == zipfile.ZIP_STORED
        nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        ram = _physical_memory()
        if not stored and ram is not None and nbytes > ram:
            raise ValueError(
                f"{self.path}: array {key!r} is compressed and decompresses to {nbytes / 2**30:.1f} GiB, more "
                f"than this machine's {ram / 2**30:.1f} GiB of memory; re-save it uncompressed "
                "(np.savez instead of np.savez_compressed) so that it is memory-mapped"
            )
        try:
            images = _memmap_npz_member(self.path, key + ".npy") if stored else None
            self.memmapped = images is not None
            if images is None:
                with np.load(self.path, allow_pickle=False) as npz:
                    images = npz[key]
            if labels_key is not None:
                with np.load(self.path, allow_pickle=False) as npz:
                    labels = npz[labels_key]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{self.path}: cannot read array {key!r} ({exc})") from exc
        if n > 0:
            try:
                array_to_rgb8(images[0], "image 0", max_pixels)
            except ImageDecodeError as exc:
                raise ValueError(f"{self.path}: array {key!r}: {exc}") from exc
        super().__init__(images, labels=labels, class_names=class_names, name=self.path.stem, max_pixels=max_pixels)
        self.key = key
        self.labels_key = labels_key
        self.notes = notes

    def _where(self, index: int) -> str:
        return f"{self.path}: array {self.key!r}, image {index}"

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(
            kind=self.kind, path=str(self.path), key=self.key, labels_key=self.labels_key, memmapped=self.memmapped
        )
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

    @property
    def notes(self) -> list[str]:
        """The notes of the underlying source (what its listing skipped)."""
        return self.base.notes

    @notes.setter
    def notes(self, value: list[str]) -> None:
        self.base.notes = value

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
    """Raise a clear error for a source with no images (quoting what listing left out, if anything)."""
    if len(source) == 0:
        where = source.describe().get("path") or source.name
        skipped = source.notes
        also = ""
        if skipped:
            shown = "; ".join(skipped[:3]) + (f"; and {len(skipped) - 3} more" if len(skipped) > 3 else "")
            also = f". Left out while listing: {shown}"
        raise ValueError(
            f"no images found in {where} (looked for .png .jpg .jpeg .webp .bmp files, any case, "
            f"recursively); check the path{also}"
        )


__all__ = ["ArraySource", "NpzSource", "SubsetSource", "check_not_empty", "ImageDecodeError"]
