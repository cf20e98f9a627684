"""Image sources (folders, class folders, zip, npz, arrays) and deterministic RGB decoding."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .arrays import ArraySource, NpzSource, SubsetSource, check_not_empty
from .decode import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    MAX_THUMBNAIL_PX,
    ImageDecodeError,
    array_to_rgb8,
    check_max_pixels,
    check_thumbnail_size,
    decode_bytes,
    make_thumbnail,
    pil_to_rgb8,
)
from .duplicates import find_duplicates, summarize_duplicates
from .files import FolderSource, ZipSource, file_size_limit
from .source import UNREADABLE_HASH, ImageSource


def open_source(source: Any, labels: Any = "auto", max_pixels: int = DEFAULT_MAX_PIXELS, **options: Any) -> ImageSource:
    """Open any supported image source.

    Args:
        source: a directory (recursive; class subfolders give labels), a ``.zip`` of images,
            an ``.npz`` (``arr_0`` = ``N x H x W x C`` uint8), a numpy array / torch tensor of
            images, or an existing :class:`ImageSource` (returned as is).
        labels: for folders and zips: ``"auto"`` (class folders when every image is one folder
            deep), ``"folders"`` (require it) or ``"none"``; for ``.npz``: ``"auto"`` (``arr_1``
            when it holds one integer per image), ``"none"``, or ``N`` integer labels; for arrays,
            ``N`` integer labels.
        max_pixels: largest image (``width * height``) decoded, default :data:`DEFAULT_MAX_PIXELS`
            (8192 x 8192); checked from file headers before decoding.
        **options: passed to the source class (e.g. ``max_file_bytes=`` for folders and zips,
            ``key=`` / ``labels_key=`` for ``.npz``, ``name=`` / ``class_names=`` for arrays).

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the file type is not supported, the source is empty, or ``labels`` does
            not fit the kind of source.
    """
    max_pixels = check_max_pixels(max_pixels)
    if isinstance(source, ImageSource):
        src = source
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        is_npz = path.suffix.lower() == ".npz" and path.is_file()
        if not is_npz and not isinstance(labels, str):
            raise ValueError(
                f"{path}: labels for a folder or .zip must be 'auto', 'folders' or 'none' (they come from "
                "class folder names); per-image labels can be given only with arrays and .npz files"
            )
        if path.is_dir():
            src = FolderSource(path, labels=labels, max_pixels=max_pixels, **options)
        elif not path.exists():
            raise FileNotFoundError(f"image source not found: {path}")
        elif path.suffix.lower() == ".zip":
            src = ZipSource(path, labels=labels, max_pixels=max_pixels, **options)
        elif is_npz:
            if isinstance(labels, str):
                if labels == "none":
                    options.setdefault("labels_key", None)
                elif labels != "auto":
                    raise ValueError(
                        f"{path}: labels={labels!r} is for folders and zips (class folders); for an .npz "
                        "use 'auto' (the array arr_1, or labels_key=NAME), 'none', or N integer labels"
                    )
            else:
                options["labels"] = labels
            src = NpzSource(path, max_pixels=max_pixels, **options)
        else:
            raise ValueError(
                f"unsupported image source {path}: expected a folder, a .zip of images or an .npz "
                "(arr_0 = N x H x W x C uint8)"
            )
    else:
        if not isinstance(labels, str):
            options["labels"] = labels
        elif labels not in ("auto", "none"):
            raise ValueError(f"labels={labels!r} is for folders and zips; pass N integer labels with an array")
        src = ArraySource(source, max_pixels=max_pixels, **options)
    check_not_empty(src)
    return src


__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "MAX_THUMBNAIL_PX",
    "UNREADABLE_HASH",
    "ArraySource",
    "FolderSource",
    "ImageDecodeError",
    "ImageSource",
    "NpzSource",
    "SubsetSource",
    "ZipSource",
    "array_to_rgb8",
    "check_max_pixels",
    "check_thumbnail_size",
    "decode_bytes",
    "file_size_limit",
    "find_duplicates",
    "make_thumbnail",
    "open_source",
    "pil_to_rgb8",
    "summarize_duplicates",
]
