"""A test classifier extractor: 8x8 pixels as features, a fitted linear discriminant's logits."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from workbench.extractors.base import Extractor, ExtractorOutput, WeightsInfo
from workbench.extractors.pixels import BoxResize
from workbench.images.datasets import FASHION_MNIST_CLASSES


@dataclass
class PixelsWithLinearHead(Extractor):
    """Test extractor: 8x8 pixels as features, a fitted linear classifier's logits."""

    weight: torch.Tensor | None = None
    bias: torch.Tensor | None = None

    def forward(self, batch: torch.Tensor) -> ExtractorOutput:
        feats = batch.reshape(batch.shape[0], -1)
        return ExtractorOutput(features=feats, logits=feats @ self.weight.T + self.bias)


def lda_head(features: np.ndarray, labels: np.ndarray) -> PixelsWithLinearHead:
    """Fit LDA on 8x8-pixel ``features`` and wrap it as a 10-class Fashion-MNIST extractor."""
    clf = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=0.1).fit(np.asarray(features), labels)
    return PixelsWithLinearHead(
        name="pixels-lda",
        variant="8px",
        dim=192,
        preprocessor=BoxResize(8),
        num_classes=10,
        class_names=list(FASHION_MNIST_CLASSES),
        feature_layer="input pixels",
        weights=WeightsInfo(
            spec="file", pretrained=False, identity="sha256:" + hashlib.sha256(clf.coef_.tobytes()).hexdigest()
        ),
        weight=torch.from_numpy(clf.coef_.astype(np.float32)),
        bias=torch.from_numpy(clf.intercept_.astype(np.float32)),
    )
