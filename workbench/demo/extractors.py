"""The demo's trained networks as registered extractors: ``demo-classifier``, ``demo-ssl``, ``demo-foreign``.

Both read 28 x 28 grayscale inputs: :class:`GrayscalePreprocessor` converts the pipeline's RGB
``uint8`` image to one channel (exactly when the three channels are equal, else ITU-R 601-2 luma
as PIL's ``"L"`` mode), resizes it to 28 x 28 with PIL's antialiased bilinear filter when it has
another size, and standardises it as in training: ``(x / 255 - 0.2860) / 0.3530``.

* ``demo-classifier`` (plays Inception-v3): 128-d penultimate features (fc1 before its ReLU) and
  10 logits over :data:`~workbench.images.datasets.FASHION_MNIST_CLASSES`.
* ``demo-ssl`` (plays DINOv2): the 64-d bottleneck of a denoising autoencoder trained without labels.
* ``demo-foreign`` (plays Inception on a domain foreign to ImageNet): the same CNN as
  ``demo-classifier`` trained only on the five *tops* classes (:data:`FOREIGN_CLASSES`: T-shirt/top,
  Pullover, Dress, Coat, Shirt), so 128-d features and 5 logits. The demo's *domain* workspace
  holds the five other classes (trousers, sandals, sneakers, bags, ankle boots), none of which it
  knows, yet it assigns each of their images one of its five classes, as Inception assigns "bow
  tie" to a face.

Weights: a local ``.safetensors`` (or torch state-dict) file written by ``workbench demo``; its
identity is ``sha256:<hex>`` of the file and ``pretrained`` is always False (these are not
published models). ``weights="default"`` looks for the file in ``$WORKBENCH_DEMO_DIR/models/``
(default ``workspace/demo/models/``, relative to the working directory); ``weights="none"`` is a
seeded random initialisation. Usage::

    import workbench.demo  # registers the two names
    ext = create_extractor("demo-classifier", weights="workspace/demo/models/demo-classifier.safetensors")
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..extractors.base import Extractor, ExtractorOutput, Preprocessor, WeightsInfo
from ..extractors.registry import register_extractor
from ..extractors.weights import (
    DEFAULT,
    NONE,
    WeightsUnavailableError,
    check_init_seed,
    file_identity,
    load_state_dict_file,
    parse_weights_spec,
    random_init_identity,
    seeded_init,
)
from ..images.datasets import FASHION_MNIST_CLASSES
from .models import (
    CLASSIFIER_FEATURE_DIM,
    FMNIST_MEAN,
    FMNIST_STD,
    IMAGE_SIZE,
    SSL_FEATURE_DIM,
    DemoAutoencoderNet,
    DemoClassifierNet,
)

CLASSIFIER_NAME = "demo-classifier"
SSL_NAME = "demo-ssl"
FOREIGN_NAME = "demo-foreign"
WEIGHT_FILES = {
    CLASSIFIER_NAME: "demo-classifier.safetensors",
    SSL_NAME: "demo-ssl.safetensors",
    FOREIGN_NAME: "demo-foreign.safetensors",
}
# Fashion-MNIST classes demo-foreign is trained on (its logits, in this order) and those of the
# demo's domain workspace, which it has never seen.
FOREIGN_CLASS_INDICES = (0, 2, 3, 4, 6)
DOMAIN_CLASS_INDICES = (1, 5, 7, 8, 9)
FOREIGN_CLASSES = [FASHION_MNIST_CLASSES[i] for i in FOREIGN_CLASS_INDICES]
DOMAIN_CLASSES = [FASHION_MNIST_CLASSES[i] for i in DOMAIN_CLASS_INDICES]
DEFAULT_DEMO_DIR = Path("workspace") / "demo"


def default_demo_dir() -> Path:
    """``$WORKBENCH_DEMO_DIR`` or ``workspace/demo`` (relative to the working directory)."""
    env = os.environ.get("WORKBENCH_DEMO_DIR")
    return Path(env) if env else DEFAULT_DEMO_DIR


@dataclass
class GrayscalePreprocessor(Preprocessor):
    """RGB ``H x W x 3`` uint8 -> ``1 x size x size`` float32, ``(x/255 - mean) / std``."""

    size: int = IMAGE_SIZE
    mean: float = FMNIST_MEAN
    std: float = FMNIST_STD

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            got = f"shape {getattr(image, 'shape', None)}, dtype {getattr(image, 'dtype', None)}"
            raise ValueError(f"the demo preprocessor expects an H x W x 3 uint8 RGB image; got {got}")
        r, g, b = image[:, :, 0], image[:, :, 1], image[:, :, 2]
        if np.array_equal(r, g) and np.array_equal(r, b):
            gray = r
            img = None
        else:
            img = Image.fromarray(image).convert("L")
            gray = np.asarray(img)
        if gray.shape != (self.size, self.size):
            img = Image.fromarray(np.ascontiguousarray(gray)).resize(
                (self.size, self.size), resample=Image.Resampling.BILINEAR
            )
            gray = np.asarray(img)
        x = (gray.astype(np.float32) / 255.0 - np.float32(self.mean)) / np.float32(self.std)
        return x[None, :, :].copy()

    def describe(self) -> dict[str, Any]:
        return {
            "resize": "pil-bilinear (antialiased) when not already size x size",
            "size": self.size,
            "crop": "none",
            "channels": "grayscale (ITU-R 601-2 luma unless R=G=B)",
            "value_range": "[0, 1] then standardised",
            "normalisation": f"(x - {self.mean}) / {self.std}",
        }


@dataclass(repr=False, eq=False)
class DemoClassifierExtractor(Extractor):
    """Features ``B x 128`` (fc1 pre-ReLU) and logits ``B x K`` of :class:`DemoClassifierNet`
    (K = 10 for demo-classifier, 5 for demo-foreign)."""

    net: DemoClassifierNet | None = None

    def forward(self, batch: torch.Tensor) -> ExtractorOutput:
        feats, logits = self.net(batch)
        return ExtractorOutput(features=feats, logits=logits)

    def _modules(self) -> list[torch.nn.Module]:
        return [self.net]


@dataclass(repr=False, eq=False)
class DemoSSLExtractor(Extractor):
    """The ``B x 64`` bottleneck of :class:`DemoAutoencoderNet` (no logits)."""

    net: DemoAutoencoderNet | None = None

    def forward(self, batch: torch.Tensor) -> ExtractorOutput:
        return ExtractorOutput(features=self.net.encoder(batch))

    def _modules(self) -> list[torch.nn.Module]:
        return [self.net]


def _load_net(
    name: str, make: Callable[[], torch.nn.Module], weights: str | os.PathLike, seed: int
) -> tuple[torch.nn.Module, WeightsInfo]:
    """Build the network and load ``weights`` (a file, ``"default"`` or ``"none"``)."""
    seed = check_init_seed(seed)
    spec = parse_weights_spec(weights, extractor=name)
    path = spec.path
    if spec.kind == DEFAULT:
        path = default_demo_dir() / "models" / WEIGHT_FILES[name]
        if not path.is_file():
            raise WeightsUnavailableError(
                f"extractor {name!r} has no published weights; its weights are trained by `workbench demo` "
                f"and were not found at {path}. Run `workbench demo` (or set $WORKBENCH_DEMO_DIR to the "
                f"demo workspace), or pass weights='/path/to/{WEIGHT_FILES[name]}'."
            )
        path = path.resolve()
    with seeded_init(seed):
        net = make()
    if spec.kind == NONE:
        info = WeightsInfo(spec=NONE, pretrained=False, identity=random_init_identity(seed), source="random init")
    else:
        state = load_state_dict_file(path)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(
                f"{path} does not hold {name!r} weights (written by `workbench demo`): {str(exc).splitlines()[0]}"
            ) from exc
        info = WeightsInfo(
            spec=spec.raw if spec.kind == "file" else DEFAULT,
            pretrained=False,
            identity=file_identity(path),
            source=str(path),
        )
    net.eval().requires_grad_(False)
    return net, info


@register_extractor(
    CLASSIFIER_NAME,
    description="demo CNN trained on Fashion-MNIST labels: 128-d penultimate + 10 logits (plays Inception)",
)
def create_demo_classifier(weights: str = DEFAULT, seed: int = 0) -> DemoClassifierExtractor:
    """The demo's supervised Fashion-MNIST CNN (see :mod:`workbench.demo.models`).

    Args:
        weights: a weight file written by ``workbench demo``, ``"default"`` (the file in
            ``default_demo_dir()/models``) or ``"none"`` (random init, tests only).
        seed: seed of the random initialisation when ``weights="none"``.
    """
    net, info = _load_net(CLASSIFIER_NAME, DemoClassifierNet, weights, seed)
    return DemoClassifierExtractor(
        name=CLASSIFIER_NAME,
        variant="fmnist-cnn-v1",
        dim=CLASSIFIER_FEATURE_DIM,
        weights=info,
        preprocessor=GrayscalePreprocessor(),
        num_classes=len(FASHION_MNIST_CLASSES),
        class_names=list(FASHION_MNIST_CLASSES),
        feature_layer="fc1 (penultimate, before ReLU), 128-d",
        heatmap_layer="conv.3",  # the rectified output of the last convolution, 64 x 7 x 7
        net=net,
    )


@register_extractor(
    FOREIGN_NAME,
    description="demo CNN trained on 5 Fashion-MNIST tops only: 128-d penultimate + 5 logits "
    "(plays Inception on a foreign domain)",
)
def create_demo_foreign(weights: str = DEFAULT, seed: int = 0) -> DemoClassifierExtractor:
    """The demo's *foreign* classifier: :class:`DemoClassifierNet` with 5 outputs, trained on the
    tops (:data:`FOREIGN_CLASSES`) only; the demo domain's images belong to none of them.

    Args:
        weights: a weight file written by ``workbench demo``, ``"default"`` (the file in
            ``default_demo_dir()/models``) or ``"none"`` (random init, tests only).
        seed: seed of the random initialisation when ``weights="none"``.
    """
    net, info = _load_net(FOREIGN_NAME, lambda: DemoClassifierNet(num_classes=len(FOREIGN_CLASSES)), weights, seed)
    return DemoClassifierExtractor(
        name=FOREIGN_NAME,
        variant="fmnist-tops-cnn-v1",
        dim=CLASSIFIER_FEATURE_DIM,
        weights=info,
        preprocessor=GrayscalePreprocessor(),
        num_classes=len(FOREIGN_CLASSES),
        class_names=list(FOREIGN_CLASSES),
        feature_layer="fc1 (penultimate, before ReLU), 128-d",
        heatmap_layer="conv.3",
        net=net,
    )


@register_extractor(
    SSL_NAME, description="demo denoising autoencoder trained without labels: 64-d bottleneck (plays DINOv2)"
)
def create_demo_ssl(weights: str = DEFAULT, seed: int = 0) -> DemoSSLExtractor:
    """The demo's label-free encoder: a denoising convolutional autoencoder's bottleneck.

    Args:
        weights: a weight file written by ``workbench demo``, ``"default"`` or ``"none"``.
        seed: seed of the random initialisation when ``weights="none"``.
    """
    net, info = _load_net(SSL_NAME, DemoAutoencoderNet, weights, seed)
    return DemoSSLExtractor(
        name=SSL_NAME,
        variant="fmnist-dae-v1",
        dim=SSL_FEATURE_DIM,
        weights=info,
        preprocessor=GrayscalePreprocessor(),
        feature_layer="autoencoder bottleneck (linear), 64-d",
        heatmap_layer="encoder.3",  # the rectified output of the encoder's last convolution, 64 x 7 x 7
        net=net,
    )
