"""ImageNet-style preprocessors of the dgm-eval encoders that ``clip.ResizeCropNormalize`` does not cover.

* :class:`ShorterSideResizeCrop`: torchvision's ``Resize(R)`` (shorter side to ``R``, aspect
  kept) then ``CenterCrop(S)``, ``ToTensor``, ``Normalize(mean, std)``, on the PIL image
  (ConvNeXt: ``R = 256, S = 224``, bicubic; SwAV / SimCLRv2: ``R = S = 224``, bilinear).
* :class:`CleanSquashResize`: dgm-eval's ``pil_resize`` ("clean" resize, clean-fid style): each
  channel resized separately by PIL's bicubic filter in float mode ``'F'`` to ``S x S`` (aspect
  not kept), clipped to [0, 255], divided by 255, then ``Normalize(mean, std)`` (MAE).

Both map one RGB ``uint8`` image ``H x W x 3`` to ``3 x S x S`` float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from .base import Preprocessor
from .inception import check_rgb_uint8

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_PIL_FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def _normalise(x: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """``H x W x 3`` float32 in [0, 1] -> ``3 x H x W`` float32 ``(x - mean) / std``."""
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


@dataclass
class ShorterSideResizeCrop(Preprocessor):
    """Shorter side to ``resize`` (PIL, antialiased, on uint8), center crop ``crop x crop``, ``(x/255 - mean) / std``.

    Equal to torchvision's ``Compose([Resize(resize, interpolation), CenterCrop(crop), ToTensor(),
    Normalize(mean, std)])`` on a PIL image: the long side becomes ``int(resize * long / short)``
    and the crop offsets are ``round((H - crop) / 2)``.

    Args:
        resize: target length ``R`` of the shorter side in pixels.
        crop: output side ``S`` in pixels (``S <= R``).
        mean, std: per-channel normalisation of the [0, 1] values (RGB order).
        interpolation: ``"bicubic"`` or ``"bilinear"`` (PIL filters on uint8).
    """

    resize: int
    crop: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bicubic"

    def __post_init__(self) -> None:
        if self.interpolation not in _PIL_FILTERS:
            raise ValueError(f"interpolation must be one of {tuple(_PIL_FILTERS)}, got {self.interpolation!r}")
        self.resize, self.crop = int(self.resize), int(self.crop)
        if not 1 <= self.crop <= self.resize:
            raise ValueError(f"need 1 <= crop <= resize, got crop={self.crop}, resize={self.resize}")
        self.mean, self.std = tuple(self.mean), tuple(self.std)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        img = Image.fromarray(check_rgb_uint8(image))
        width, height = img.size
        if width <= height:
            size = (self.resize, int(self.resize * height / width))
        else:
            size = (int(self.resize * width / height), self.resize)
        if size != img.size:
            img = img.resize(size, resample=_PIL_FILTERS[self.interpolation])
        width, height = img.size
        top = int(round((height - self.crop) / 2.0))
        left = int(round((width - self.crop) / 2.0))
        if (width, height) != (self.crop, self.crop):
            img = img.crop((left, top, left + self.crop, top + self.crop))
        return _normalise(np.asarray(img, dtype=np.float32) / np.float32(255), self.mean, self.std)

    def describe(self) -> dict[str, Any]:
        return {
            "resize_mode": "shortest",
            "resize": f"PIL {self.interpolation} on uint8, shorter side to {self.resize} (aspect kept)",
            "size": self.crop,
            "crop": f"center {self.crop}x{self.crop}",
            "value_range": "x/255 then normalised",
            "normalisation": f"(x/255 - mean) / std, mean={list(self.mean)}, std={list(self.std)}",
        }


@dataclass
class CleanSquashResize(Preprocessor):
    """dgm-eval's ``pil_resize``: per-channel PIL bicubic in float mode to ``size x size``, clip, /255, normalise.

    Args:
        size: output side ``S`` in pixels (both sides are resized to it; aspect not kept).
        mean, std: per-channel normalisation of the [0, 1] values (RGB order).
    """

    size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        self.size = int(self.size)
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")
        self.mean, self.std = tuple(self.mean), tuple(self.std)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = check_rgb_uint8(image)
        channels = []
        for c in range(3):
            channel = Image.fromarray(image[:, :, c].astype(np.float32))  # mode 'F'
            if channel.size != (self.size, self.size):
                channel = channel.resize((self.size, self.size), resample=Image.Resampling.BICUBIC)
            channels.append(np.asarray(channel, dtype=np.float32).clip(0, 255))
        x = np.stack(channels, axis=2) / np.float32(255)
        return _normalise(x, self.mean, self.std)

    def describe(self) -> dict[str, Any]:
        return {
            "resize_mode": "squash",
            "resize": f"PIL bicubic per channel in float mode 'F' to {self.size}x{self.size} (aspect not kept), "
            "clipped to [0, 255] (dgm-eval pil_resize)",
            "size": self.size,
            "crop": "none",
            "value_range": "x/255 then normalised",
            "normalisation": f"(x/255 - mean) / std, mean={list(self.mean)}, std={list(self.std)}",
        }
