"""PNG encoding of cache thumbnails: single images, page sprites and data URIs.

Views send thumbnails to the browser as binary PNG bytes (an ``ipywidgets.Image`` value or
one sprite PNG per page of a sample grid), never as base64 inside HTML; only the offline static
report inlines them as ``data:image/png;base64,...`` URIs.

A *sprite* packs ``m`` thumbnails of ``px x px`` pixels row-major into a grid of ``columns``
cells: thumbnail ``i`` occupies the rectangle whose top-left corner is
``(x, y) = ((i % columns) * px, (i // columns) * px)`` (:func:`sprite_offsets`). The browser
shows one cell with the sprite as a CSS background shifted by ``(-x, -y)`` and scaled with
``image-rendering: pixelated``, so the thumbnails travel at native resolution.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: zlib level of the PNGs sent to the browser: 1 is ~5x faster to encode than PIL's default 6 and
#: the files are only ~10-20% larger for small thumbnails.
COMPRESS_LEVEL = 1


def _as_rgb8(image: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"{name} must be an H x W x 3 (or H x W, H x W x 1, H x W x 4) image; got shape {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.dtype != np.uint8:
        raise TypeError(f"{name} must be uint8 (cache thumbnails are); got dtype {arr.dtype}")
    return np.ascontiguousarray(arr)


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer ``factor`` (each pixel becomes a block)."""
    if isinstance(factor, bool) or int(factor) != factor or factor < 1:
        raise ValueError(f"factor must be a positive integer; got {factor!r}")
    if factor == 1:
        return image
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def encode_png(image: np.ndarray, *, scale: int = 1, compress_level: int = COMPRESS_LEVEL) -> bytes:
    """PNG bytes of one ``H x W x 3`` uint8 image, optionally enlarged ``scale`` times (nearest).

    Args:
        image: ``H x W x 3`` (or ``H x W`` grey, ``H x W x 4`` RGBA) uint8 pixels.
        scale: integer nearest-neighbour enlargement (e.g. 4 for the enlarged view of a 28 px
            thumbnail).
        compress_level: zlib level 0-9 (default 1: fast).

    Returns:
        The PNG file as bytes (starts with :data:`PNG_MAGIC`).
    """
    arr = upscale(_as_rgb8(image, "image"), scale)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=int(compress_level))
    return buf.getvalue()


def sprite_shape(count: int, columns: int, px: int) -> tuple[int, int]:
    """``(height, width)`` in pixels of a sprite of ``count`` cells of ``px`` pixels in ``columns`` columns."""
    rows = max(1, -(-int(count) // int(columns)))
    return rows * px, min(max(int(count), 1), int(columns)) * px


def sprite_offsets(count: int, columns: int, px: int) -> list[tuple[int, int]]:
    """Top-left ``(x, y)`` pixel of each of ``count`` cells in a sprite (row-major)."""
    return [((i % columns) * px, (i // columns) * px) for i in range(int(count))]


def sprite_array(images: np.ndarray, columns: int, *, background: int = 255) -> np.ndarray:
    """The sprite of ``images`` (``m x px x px x 3`` uint8) as an array (``H x W x 3``).

    Empty cells of the last row are filled with ``background`` (white).
    """
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[3] != 3 or arr.shape[1] != arr.shape[2]:
        raise ValueError(f"images must be m x px x px x 3; got shape {arr.shape}")
    if isinstance(columns, bool) or int(columns) < 1:
        raise ValueError(f"columns must be a positive integer; got {columns!r}")
    m, px = arr.shape[0], arr.shape[1]
    columns = int(columns)
    height, width = sprite_shape(m, columns, px)
    out = np.full((height, width, 3), background, dtype=np.uint8)
    if m == 0:
        return out
    rows = -(-m // columns)
    padded = np.full((rows * columns, px, px, 3), background, dtype=np.uint8)
    padded[:m] = arr
    # (rows, columns, px, px, 3) -> (rows, px, columns, px, 3) -> (rows*px, columns*px, 3)
    grid = padded.reshape(rows, columns, px, px, 3).transpose(0, 2, 1, 3, 4).reshape(rows * px, columns * px, 3)
    out[: grid.shape[0], : grid.shape[1]] = grid[:, :width]
    return out


def encode_sprite(images: np.ndarray, columns: int, *, compress_level: int = COMPRESS_LEVEL) -> bytes:
    """One PNG holding every image of ``images`` (``m x px x px x 3`` uint8), ``columns`` per row."""
    return encode_png(sprite_array(images, columns), compress_level=compress_level)


def placeholder(px: int, *, shade: int = 225) -> np.ndarray:
    """A grey ``px x px x 3`` uint8 square with a diagonal cross: "no thumbnail stored"."""
    img = np.full((px, px, 3), shade, dtype=np.uint8)
    idx = np.arange(px)
    img[idx, idx] = 150
    img[idx, px - 1 - idx] = 150
    return img


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` of PNG bytes, for the offline static report."""
    if not png.startswith(PNG_MAGIC):
        raise ValueError("png must be PNG file bytes (use encode_png)")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def is_png(data: bytes) -> bool:
    """True when ``data`` starts with the PNG signature."""
    return bytes(data[:8]) == PNG_MAGIC
