"""Decoding any supported image into RGB 8-bit, deterministically.

Every image that enters the workbench becomes an ``H x W x 3`` ``uint8`` array:

* grayscale (``L``, ``1``) is replicated to three channels;
* alpha (``RGBA``, ``LA``, palette with transparency) is dropped, keeping the stored colour —
  the same as ``PIL.Image.convert("RGB")`` used by pytorch-fid and clean-fid, so features match;
* palette (``P``) images are expanded through their palette;
* 16-bit (``I;16``, ``I``) and float (``F``) images are scaled to 8 bits by value, not clipped
  (PIL's own ``convert("L")`` clips 16-bit data to 255, turning most images white):
  ``round(v / 257)`` for 16-bit, ``round(255 * v)`` for floats in [0, 1];
* CMYK, YCbCr, LAB, HSV go through PIL's conversion to RGB.

Memory stays bounded on hostile inputs: an image whose header announces more than ``max_pixels``
pixels (default :data:`DEFAULT_MAX_PIXELS` = 8192 x 8192) is refused *before* its pixels are
decoded, so a small PNG declaring 100 megapixels costs nothing. Our limit, not PIL's
decompression-bomb check, decides: PIL's warning is silenced inside :func:`decode_bytes`, and its
``Image.MAX_IMAGE_PIXELS`` is raised to ``max_pixels`` when a caller asks for more than PIL allows.
"""

from __future__ import annotations

import io
import operator
import warnings

import numpy as np
from PIL import Image, ImageFile

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")

DEFAULT_MAX_PIXELS = 8192 * 8192
"""Largest image (width x height, pixels) decoded by default: 67,108,864, far above real datasets."""

MAX_THUMBNAIL_PX = 1024
"""Largest thumbnail side in pixels (a 1024 px thumbnail is 3 MiB per image in the cache)."""

# A truncated file must be an error, never a silently padded image.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageDecodeError(ValueError):
    """An image could not be read or decoded; the message names the file and the reason."""


def check_max_pixels(max_pixels: int) -> int:
    """Validate a pixel limit (width x height of one image); returns it as ``int``.

    Raises:
        ValueError: not a positive integer; the message names ``--max-pixels / max_pixels``.
    """
    try:
        value = operator.index(max_pixels)
    except TypeError:
        value = None
    if value is None or isinstance(max_pixels, bool) or value < 1:
        raise ValueError(
            f"--max-pixels / max_pixels must be a positive whole number of pixels (width x height), "
            f"got {max_pixels!r}; the default is {DEFAULT_MAX_PIXELS} (8192 x 8192)"
        )
    return int(value)


def pixel_limit_error(name: str, width: int, height: int, max_pixels: int) -> ImageDecodeError:
    """The error for an image of ``width x height`` pixels above ``max_pixels`` (names the fix)."""
    pixels = int(width) * int(height)
    return ImageDecodeError(
        f"{name}: image is {width} x {height} = {pixels:,} pixels, above the limit of "
        f"{max_pixels:,} pixels per image; not decoded (to read it, pass --max-pixels {pixels} / "
        f"max_pixels={pixels})"
    )


def check_thumbnail_size(px: int) -> int:
    """Validate a thumbnail side length in pixels (0 = no thumbnails); returns it as ``int``.

    Raises:
        ValueError: ``px`` is not a whole number in ``0..MAX_THUMBNAIL_PX``, e.g.
            ``"--thumbnails must be between 0 and 1024 pixels, got 100000"``.
    """
    try:
        value = operator.index(px)
    except TypeError:
        value = None
    if value is None or isinstance(px, bool) or not 0 <= value <= MAX_THUMBNAIL_PX:
        raise ValueError(f"--thumbnails must be between 0 and {MAX_THUMBNAIL_PX} pixels, got {px!r}")
    return int(value)


def _let_pil_defer_to(max_pixels: int) -> None:
    """Make sure PIL's own bomb check never refuses an image that our ``max_pixels`` allows.

    ``Image.open`` raises ``DecompressionBombError`` above ``2 * Image.MAX_IMAGE_PIXELS`` before we
    can see the size; when a caller allows more than that, PIL's threshold is raised to match
    (a process-wide setting of PIL, changed only when asked for a larger limit).
    """
    current = Image.MAX_IMAGE_PIXELS
    if current is not None and current < max_pixels:
        Image.MAX_IMAGE_PIXELS = int(max_pixels)


def pil_to_rgb8(img: Image.Image) -> np.ndarray:
    """Convert a PIL image of any mode to an ``H x W x 3`` ``uint8`` array (rules in module doc)."""
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        wide = np.asarray(img).astype(np.int64)
        if not (mode == "I" and wide.size and wide.max() <= 255 and wide.min() >= 0):
            # round(v / 257) in integers, in place: 257 is odd, so v / 257 is never a tie and
            # floor((v + 128) / 257) equals it; values below 0 or above 65535 clip below.
            wide += 128
            wide //= 257
        # else: 8-bit data that PIL widened to 32-bit integers
        np.clip(wide, 0, 255, out=wide)
        return np.repeat(wide.astype(np.uint8)[:, :, None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        gray = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def decode_bytes(data: bytes | memoryview, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes to an ``H x W x 3`` ``uint8`` array.

    Args:
        data: the encoded file (PNG, JPEG, WebP, BMP, or anything else PIL opens).
        name: file name used in error messages.
        max_pixels: largest ``width * height`` decoded; checked from the header, before decoding.

    Raises:
        ImageDecodeError: naming ``name``: corrupt or truncated data, or an image above
            ``max_pixels`` (the message says how to raise the limit).
    """
    max_pixels = check_max_pixels(max_pixels)
    _let_pil_defer_to(max_pixels)
    try:
        with warnings.catch_warnings():
            # Our limit decides (below); PIL's warning would only repeat it less clearly.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size  # from the header: nothing decoded yet
                if width * height > max_pixels:
                    raise pixel_limit_error(name, width, height, max_pixels)
                img.load()
                return pil_to_rgb8(img)
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as exc:  # only above 2 x max(PIL's limit, max_pixels)
        raise ImageDecodeError(
            f"{name}: image is above the limit of {max_pixels:,} pixels per image ({exc}); not decoded "
            "(to read it, pass a larger --max-pixels N / max_pixels=N)"
        ) from exc
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        raise ImageDecodeError(f"{name}: cannot decode image ({type(exc).__name__}: {exc})") from exc


def image_hw(shape: tuple[int, ...]) -> tuple[int, int] | None:
    """``(H, W)`` of one image of array shape ``H x W``, ``H x W x C`` or ``C x H x W`` (C in 1, 3, 4).

    Returns None when the shape is none of these. ``C x H x W`` is recognised as in
    :func:`array_to_rgb8`: first axis in {1, 3, 4} and last axis not.
    """
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    if len(shape) == 3:
        if shape[0] in (1, 3, 4) and shape[2] not in (1, 3, 4):
            return int(shape[1]), int(shape[2])
        if shape[2] in (1, 3, 4):
            return int(shape[0]), int(shape[1])
    return None


def array_to_rgb8(arr: np.ndarray, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Convert one in-memory image array to RGB ``uint8``.

    Accepts ``H x W``, ``H x W x C`` or ``C x H x W`` with ``C`` in {1, 3, 4}; ``uint8`` as is,
    16-bit integers scaled by 1/257, floats must lie in [0, 1] and are scaled by 255 and rounded.
    An image of more than ``max_pixels`` (``H * W``) raises :class:`ImageDecodeError` before any
    conversion (no copy is made).
    """
    max_pixels = check_max_pixels(max_pixels)
    hw = image_hw(np.shape(arr))
    if hw is not None and hw[0] * hw[1] > max_pixels:
        raise pixel_limit_error(name, hw[1], hw[0], max_pixels)
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] not in (1, 3, 4):
        a = np.transpose(a, (1, 2, 0))
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ImageDecodeError(
            f"{name}: expected an image of shape HxW, HxWxC or CxHxW with C in 1, 3, 4; got {a.shape}"
        )
    if a.dtype == np.uint8:
        out = a
    elif a.dtype == np.uint16:
        out = np.clip(np.rint(a.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        if a.size and (np.nanmin(a) < 0.0 or np.nanmax(a) > 1.0 or not np.isfinite(a).all()):
            raise ImageDecodeError(
                f"{name}: float images must have values in [0, 1] (got range "
                f"[{np.nanmin(a):.3g}, {np.nanmax(a):.3g}]); convert uint8 images with .astype(np.uint8)"
            )
        out = np.rint(a * 255.0).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer):
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ImageDecodeError(f"{name}: integer images must have values in [0, 255]")
        out = a.astype(np.uint8)
    else:
        raise ImageDecodeError(f"{name}: unsupported image dtype {a.dtype}")
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    elif out.shape[2] == 4:
        out = out[:, :, :3]
    return np.ascontiguousarray(out)


def make_thumbnail(image: np.ndarray, size: int) -> np.ndarray:
    """Square ``size x size x 3`` ``uint8`` thumbnail: centre crop to square, then PIL bicubic resize.

    Args:
        image: ``H x W x 3`` ``uint8``.
        size: side in pixels, ``1..MAX_THUMBNAIL_PX`` (1024).

    Raises:
        ValueError: ``size`` outside ``1..MAX_THUMBNAIL_PX`` (checked before anything is allocated).
    """
    if check_thumbnail_size(size) == 0:
        raise ValueError("thumbnail size must be at least 1 pixel, got 0 (0 means: make no thumbnails)")
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top : top + side, left : left + side]
    img = Image.fromarray(square)
    if side != size:
        img = img.resize((size, size), resample=Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.uint8)
