"""Image sources (folders, class folders, zip, npz, arrays) and deterministic RGB decoding."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .arrays import ArraySource, NpzSource, SubsetSource, check_not_empty
from .decode import IMAGE_EXTENSIONS, ImageDecodeError, array_to_rgb8, decode_bytes, make_thumbnail, pil_to_rgb8
from .files import FolderSource, ZipSource
from .source import ImageSource


def open_source(source: Any, labels: Any = "auto", **options: Any) -> ImageSource:
    """Open any supported image source.

    Args:
        source: a directory (recursive; class subfolders give labels), a ``.zip`` of images,
            an ``.npz`` (``arr_0`` = ``N x H x W x C`` uint8), a numpy array / torch tensor of
            images, or an existing :class:`ImageSource`.
        labels: for folders and zips: ``"auto"`` (class folders when every image is one folder
            deep), ``"folders"`` (require it) or ``"none"``; for arrays, ``N`` integer labels.
        **options: passed to the source class (e.g. ``labels=`` array for in-memory images).

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the file type is not supported or the source is empty.
    """
    if isinstance(source, ImageSource):
        src = source
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if path.is_dir():
            src = FolderSource(path, labels=labels)
        elif not path.exists():
            raise FileNotFoundError(f"image source not found: {path}")
        elif path.suffix.lower() == ".zip":
            src = ZipSource(path, labels=labels)
        elif path.suffix.lower() == ".npz":
            src = NpzSource(path, **options)
        else:
            raise ValueError(
                f"unsupported image source {path}: expected a folder, a .zip of images or an .npz "
                "(arr_0 = N x H x W x C uint8)"
            )
    else:
        if not isinstance(labels, str):
            options["labels"] = labels
        src = ArraySource(source, **options)
    check_not_empty(src)
    return src


__all__ = [
    "IMAGE_EXTENSIONS",
    "ArraySource",
    "FolderSource",
    "ImageDecodeError",
    "ImageSource",
    "NpzSource",
    "SubsetSource",
    "ZipSource",
    "array_to_rgb8",
    "decode_bytes",
    "make_thumbnail",
    "open_source",
    "pil_to_rgb8",
]
