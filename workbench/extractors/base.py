"""The extractor protocol: what every feature extractor in the registry provides.

An extractor is split in two parts so that data loading scales independently of the model:

* a :class:`Preprocessor` — a small picklable callable that turns one decoded RGB image
  (``H x W x 3`` ``uint8``) into the model's input (``C x S x S`` ``float32``). It runs in
  data-loader worker processes on the CPU.
* the :class:`Extractor` itself — holds the ``torch.nn.Module`` and maps a batch of prepared
  inputs (``B x C x S x S`` float32, on the extractor's device) to features (``B x D``) and,
  for classifiers, logits (``B x K``).
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a :class:`torch.device` that exists here; None means CUDA when available, else CPU.

    Raises:
        ValueError: not a device name, or a CUDA/MPS device this machine does not have (the
            message says what to pass instead).
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"--device {device!r} is not a device name; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            built = "" if torch.version.cuda else ", a build without CUDA"
            raise ValueError(
                f"--device {device}: no CUDA GPU is available here (torch {torch.__version__}{built}); use --device cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device}: Apple MPS is not available here; use --device cpu")
    return dev


@dataclass(frozen=True)
class WeightsInfo:
    """Identity of the weights an extractor was built with; recorded in every cache manifest.

    Attributes:
        spec: what the user asked for: ``"default"`` (the published weights), ``"none"``
            (random initialisation) or a local file path.
        pretrained: True only for the published weights of the named model. Features from
            anything else are not comparable with published numbers (e.g. real FID).
        identity: a stable string naming the exact weights: the published tag, ``sha256:<hex>``
            of a local file, or ``random-init(seed=S)``.
        source: where the weights came from (URL / hub tag / path), for humans.
    """

    spec: str
    pretrained: bool
    identity: str
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ExtractorOutput:
    """Result of one forward pass: ``features`` is ``B x D`` float32, ``logits`` ``B x K`` or None."""

    features: torch.Tensor
    logits: torch.Tensor | None = None


class Preprocessor(abc.ABC):
    """Maps one RGB ``uint8`` image ``H x W x 3`` to a model input ``C x S x S`` float32 array.

    Subclasses must be picklable (plain attributes only) because they run in DataLoader workers.
    """

    @abc.abstractmethod
    def __call__(self, image: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """A JSON-able description: resize method, size, crop, value range, normalisation."""


@dataclass
class Extractor(abc.ABC):
    """Base class of every registered extractor.

    Attributes:
        name: registry name (``"inception"``, ``"clip"``, ...).
        variant: the model variant and options that change features (e.g. ``"ViT-L-14"``).
        dim: feature dimension ``D``.
        weights: identity of the loaded weights.
        preprocessor: the CPU-side image -> input transform.
        num_classes: logits dimension ``K`` when the extractor is a classifier, else None.
        class_names: names of the ``K`` classes when known.
        feature_layer: which layer the features are read from, in words.
        heatmap_layer: dotted name of the submodule of ``self._modules()[0]`` whose activations
            :func:`workbench.analysis.metric_heatmaps` explains (Grad-CAM style): its output must
            be ``B x C x h x w`` (a convolutional layer) or ViT tokens ``B x (P + h*w) x C``
            (``P`` prefix tokens: class token, registers; ``h == w``). None (the default): the
            extractor does not support heatmaps. Not part of :meth:`describe` (it changes no
            feature, so no cache key or manifest).
    """

    name: str
    variant: str
    dim: int
    weights: WeightsInfo
    preprocessor: Preprocessor
    num_classes: int | None = None
    class_names: list[str] | None = None
    feature_layer: str = ""
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    heatmap_layer: str | None = None

    @abc.abstractmethod
    def forward(self, batch: torch.Tensor) -> ExtractorOutput:
        """Run the model on prepared inputs ``B x C x S x S`` (already on ``self.device``)."""

    def to(self, device: str | torch.device) -> Extractor:
        """Move the model to ``device``; subclasses with modules override :meth:`_modules`."""
        self.device = resolve_device(device)
        for module in self._modules():
            module.to(self.device)
        return self

    def _modules(self) -> list[torch.nn.Module]:
        return []

    @torch.inference_mode()
    def __call__(self, batch: torch.Tensor | np.ndarray) -> ExtractorOutput:
        if isinstance(batch, np.ndarray):
            # torch.from_numpy warns on read-only arrays (memmaps, decoded images): copy those
            batch = torch.from_numpy(batch if batch.flags.writeable else np.array(batch))
        batch = batch.to(self.device, dtype=torch.float32, non_blocking=True)
        for module in self._modules():
            module.eval()
        out = self.forward(batch)
        feats = out.features.float()
        if feats.ndim != 2 or feats.shape[1] != self.dim:
            raise RuntimeError(
                f"extractor {self.name!r} returned features of shape {tuple(feats.shape)}, expected (batch, {self.dim})"
            )
        logits = out.logits.float() if out.logits is not None else None
        return ExtractorOutput(features=feats, logits=logits)

    def describe(self) -> dict[str, Any]:
        """Everything that determines the features; stored in cache manifests and keys."""
        return {
            "name": self.name,
            "variant": self.variant,
            "dim": self.dim,
            "num_classes": self.num_classes,
            "feature_layer": self.feature_layer,
            "weights": self.weights.to_dict(),
            "preprocessing": self.preprocessor.describe(),
        }

    def __repr__(self) -> str:
        pre = "pretrained" if self.weights.pretrained else f"NOT pretrained ({self.weights.identity})"
        return f"<Extractor {self.name}:{self.variant} dim={self.dim} {pre} on {self.device}>"
