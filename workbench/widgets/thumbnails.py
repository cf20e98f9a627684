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


#: What an empty-state tile says, and its colours (neutral: it must not look like a broken image).
NO_THUMBNAIL = "no thumbnail"
EMPTY_BACKGROUND = 244
EMPTY_BORDER = 200
EMPTY_TEXT = 105

# A 3 x 5 pixel font for the letters the empty-state tile needs (rows top to bottom, "#" = ink),
# so that the text is drawn the same everywhere without a font file.
_GLYPHS = {
    "A": ("###", "#.#", "###", "#.#", "#.#"),
    "B": ("##.", "#.#", "##.", "#.#", "##."),
    "H": ("#.#", "#.#", "###", "#.#", "#.#"),
    "I": ("###", ".#.", ".#.", ".#.", "###"),
    "L": ("#..", "#..", "#..", "#..", "###"),
    "M": ("#.#", "###", "###", "#.#", "#.#"),
    "N": ("##.", "#.#", "#.#", "#.#", "#.#"),
    "O": ("###", "#.#", "#.#", "#.#", "###"),
    "T": ("###", ".#.", ".#.", ".#.", ".#."),
    "U": ("#.#", "#.#", "#.#", "#.#", "###"),
}
#: Ways of breaking "NO THUMBNAIL" into lines, tried in order (the widest text that fits wins).
_LAYOUTS = (("NO", "THUMBNAIL"), ("NO", "THUMB", "NAIL"))


def _text_size(lines: tuple[str, ...], scale: int) -> tuple[int, int]:
    """``(height, width)`` in pixels of ``lines`` in the 3 x 5 font at ``scale``."""
    width = max(4 * len(line) - 1 for line in lines) * scale
    height = (6 * len(lines) - 1) * scale
    return height, width


def empty_tile(px: int) -> np.ndarray:
    """The empty state of a thumbnail: a ``px x px x 3`` uint8 tile that says "NO THUMBNAIL".

    A light, neutral tile with a dashed border and the words drawn in a small pixel font (as
    large as fits: words from 23 px up, else the dashed tile alone; it is never mistaken for an
    image or for a broken one). Views show it where a set has no stored thumbnails (its caches
    were extracted with ``--thumbnails 0``); captions and tooltips name the set and the reason
    (:func:`no_thumbnail_reason`).
    """
    px = int(px)
    if px < 1:
        raise ValueError(f"px must be a positive integer; got {px}")
    img = np.full((px, px, 3), EMPTY_BACKGROUND, dtype=np.uint8)
    if px >= 8:  # a dashed border: 2 pixels on, 2 off
        dash = (np.arange(px) // 2) % 2 == 0
        for edge in (0, px - 1):
            img[edge, dash] = EMPTY_BORDER
            img[dash, edge] = EMPTY_BORDER
    room = px - 4  # a 2-pixel margin inside the border
    best: tuple[int, int, tuple[str, ...]] | None = None  # (scale, -lines, layout)
    for lines in _LAYOUTS:
        h1, w1 = _text_size(lines, 1)
        scale = min(room // w1, room // h1) if room > 0 else 0
        if scale >= 1 and (best is None or (scale, -len(lines)) > best[:2]):
            best = (scale, -len(lines), lines)
    if best is None:
        return img  # too small for words: the dashed tile alone
    scale, _, lines = best
    height, _ = _text_size(lines, scale)
    top = (px - height) // 2
    for r, line in enumerate(lines):
        line_width = (4 * len(line) - 1) * scale
        left = (px - line_width) // 2
        y0 = top + 6 * r * scale
        for c, ch in enumerate(line):
            glyph = np.array([[p == "#" for p in row] for row in _GLYPHS[ch]], dtype=bool)
            ink = np.kron(glyph, np.ones((scale, scale), dtype=bool))
            x0 = left + 4 * c * scale
            block = img[y0 : y0 + 5 * scale, x0 : x0 + 3 * scale]
            block[ink] = EMPTY_TEXT
    return img


def blank_tile(px: int) -> np.ndarray:
    """A neutral ``px x px x 3`` tile with a dashed border and no text (e.g. "nothing hovered yet")."""
    img = np.full((int(px), int(px), 3), EMPTY_BACKGROUND, dtype=np.uint8)
    if px >= 8:
        dash = (np.arange(int(px)) // 2) % 2 == 0
        for edge in (0, int(px) - 1):
            img[edge, dash] = EMPTY_BORDER
            img[dash, edge] = EMPTY_BORDER
    return img


def placeholder(px: int) -> np.ndarray:
    """The tile shown for a sample without a stored thumbnail: :func:`empty_tile` (kept by this
    name for older callers; it used to be a grey square with a cross, which looked broken)."""
    return empty_tile(px)


def no_thumbnail_reason(set_name: str) -> str:
    """Why a sample of ``set_name`` shows the empty-state tile, and what to do about it."""
    return (
        f"no thumbnail: the caches of set {set_name!r} were extracted with --thumbnails 0, so they "
        "store no images; extract it again with --thumbnails 64 (the default) to see them"
    )


def empty_state_html(set_name: str, px: int, *, label: str = "") -> str:
    """HTML of the empty state for the static report: a neutral box of ``px x px`` CSS pixels
    saying "no thumbnail" and the set's name, the reason as its tooltip (no image needed)."""
    import html

    name = html.escape(label or set_name)
    return (
        f"<div class='wb-no-thumb' title='{html.escape(no_thumbnail_reason(set_name))}' "
        f"style='width:{int(px)}px;height:{int(px)}px;box-sizing:border-box;border:1px dashed #c8c8c8;"
        "background:#f4f4f4;color:#696969;font:9px/1.2 sans-serif;display:flex;flex-direction:column;"
        "align-items:center;justify-content:center;text-align:center;overflow:hidden;word-break:break-all'>"
        f"{NO_THUMBNAIL}<span style='color:#999'>{name}</span></div>"
    )


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` of PNG bytes, for the offline static report."""
    if not png.startswith(PNG_MAGIC):
        raise ValueError("png must be PNG file bytes (use encode_png)")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def is_png(data: bytes) -> bool:
    """True when ``data`` starts with the PNG signature."""
    return bytes(data[:8]) == PNG_MAGIC
