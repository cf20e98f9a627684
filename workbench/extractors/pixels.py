"""``pixels``: downsampled raw pixels, a cheap, weight-free baseline extractor.

Features are the image resized (PIL box filter, i.e. area averaging) to ``size x size`` RGB,
scaled to ``[0, 1]`` and flattened: ``D = 3 * size * size``. Useful for tests, sanity checks,
and as a "no semantics at all" reference when comparing extractors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from .base import Extractor, ExtractorOutput, Preprocessor, WeightsInfo
from .registry import register_extractor


@dataclass
class BoxResize(Preprocessor):
    """Resize to ``size x size`` with PIL's box filter; output ``3 x size x size`` float32 in [0, 1]."""

    size: int

    def __call__(self, image: np.ndarray) -> np.ndarray:
        img = Image.fromarray(image)
        if img.size != (self.size, self.size):
            img = img.resize((self.size, self.size), resample=Image.Resampling.BOX)
        return (np.asarray(img, dtype=np.float32) / 255.0).transpose(2, 0, 1).copy()

    def describe(self) -> dict[str, Any]:
        return {
            "resize": "pil-box",
            "size": self.size,
            "crop": "none",
            "value_range": "[0, 1]",
            "normalisation": "none",
        }


class PixelsExtractor(Extractor):
    def forward(self, batch: torch.Tensor) -> ExtractorOutput:
        return ExtractorOutput(features=batch.reshape(batch.shape[0], -1))


@register_extractor("pixels", description="downsampled RGB pixels in [0,1] (no weights; baseline)")
def create_pixels(weights: str = "default", size: int = 16) -> PixelsExtractor:
    """Pixel baseline; ``size`` is the side of the downsampled image (default 16 -> D=768)."""
    if weights not in ("default", "none"):
        raise ValueError(f"the pixels extractor has no weights; got weights={weights!r}")
    if int(size) < 1:
        raise ValueError(f"pixels size must be >= 1, got {size}")
    size = int(size)
    return PixelsExtractor(
        name="pixels",
        variant=f"{size}px",
        dim=3 * size * size,
        weights=WeightsInfo(spec="none", pretrained=False, identity="no-weights", source="none"),
        preprocessor=BoxResize(size),
        feature_layer="input pixels",
    )
