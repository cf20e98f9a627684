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
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFile

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")

# A truncated file must be an error, never a silently padded image.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageDecodeError(ValueError):
    """An image could not be read or decoded; the message names the file and the reason."""


def pil_to_rgb8(img: Image.Image) -> np.ndarray:
    """Convert a PIL image of any mode to an ``H x W x 3`` ``uint8`` array (rules in module doc)."""
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img).astype(np.float64)
        if mode == "I" and arr.size and arr.max() <= 255 and arr.min() >= 0:
            scaled = arr  # 8-bit data that PIL widened to 32-bit integers
        else:
            scaled = arr / 257.0
        gray = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        gray = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def decode_bytes(data: bytes, name: str) -> np.ndarray:
    """Decode encoded image bytes to RGB ``uint8``; raises :class:`ImageDecodeError` naming ``name``."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return pil_to_rgb8(img)
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        raise ImageDecodeError(f"{name}: cannot decode image ({type(exc).__name__}: {exc})") from exc


def array_to_rgb8(arr: np.ndarray, name: str) -> np.ndarray:
    """Convert one in-memory image array to RGB ``uint8``.

    Accepts ``H x W``, ``H x W x C`` or ``C x H x W`` with ``C`` in {1, 3, 4}; ``uint8`` as is,
    16-bit integers scaled by 1/257, floats must lie in [0, 1] and are scaled by 255 and rounded.
    """
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
    """Square ``size x size x 3`` ``uint8`` thumbnail: centre crop to square, then PIL bicubic resize."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top : top + side, left : left + side]
    img = Image.fromarray(square)
    if side != size:
        img = img.resize((size, size), resample=Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.uint8)
