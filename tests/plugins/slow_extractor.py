"""A test plug-in extractor: the pixels baseline that sleeps per batch, so a test can kill it mid-run.

``SLOW_EXTRACTOR_DELAY`` sets the sleep per batch (seconds); while the file named by
``SLOW_EXTRACTOR_GATE`` exists, every batch waits, so a test can hold an extraction mid-run.
"""

from __future__ import annotations

import os
import time

import torch

from workbench.extractors.base import ExtractorOutput
from workbench.extractors.pixels import PixelsExtractor, create_pixels


class SlowPixels(PixelsExtractor):
    def forward(self, batch: torch.Tensor) -> ExtractorOutput:
        time.sleep(float(os.environ.get("SLOW_EXTRACTOR_DELAY", "0.05")))
        gate = os.environ.get("SLOW_EXTRACTOR_GATE")
        while gate and os.path.exists(gate):
            time.sleep(0.05)
        return super().forward(batch)


def create(weights: str = "default", size: int = 8) -> SlowPixels:
    base = create_pixels(weights=weights, size=size)
    return SlowPixels(
        name="slow-pixels",
        variant=base.variant,
        dim=base.dim,
        weights=base.weights,
        preprocessor=base.preprocessor,
        feature_layer=base.feature_layer,
    )
