"""``swav``: SwAV ResNet-50 (Caron et al., NeurIPS 2020), as dgm-eval's ``swav``.

dgm-eval (Stein et al., NeurIPS 2023; after Morozov et al., ICLR 2021) loads the official
``swav_800ep_pretrain.pth.tar`` into a ResNet-50 without projection head or prototypes and reads

* feature: the **global average pool of** ``layer4`` (2048-d), not L2-normalised. dgm-eval's
  ResNet pads the input by one zero pixel and then runs ``conv1`` with padding 2, which equals
  torchvision's ``conv1`` with padding 3; the network is otherwise torchvision's ResNet-50, which
  is what this extractor builds (``torchvision.models.resnet50``, classifier removed);
* preprocessing: ``Resize(224)`` on the PIL image (bilinear, shorter side to 224, aspect kept),
  ``ToTensor``, ``Normalize`` with the ImageNet mean/std. dgm-eval does not crop: a non-square
  image stays non-square (its batches then only work when all images share an aspect ratio).
  This extractor center-crops 224 x 224 after the resize so that every image gives one input;
  on square images (generated samples, most datasets) the two are identical.

Weights: ``"default"`` looks for the official ``swav_800ep_pretrain.pth.tar`` in
:func:`workbench.paths.weights_dir`; a local path may be that file (keys ``module.*``, with the
``projection_head`` and ``prototypes`` that the feature does not use, dropped) or a torchvision
ResNet-50 state dict; loaded strictly. ``"none"``: seeded random init (torchvision's).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Extractor, ExtractorOutput
from .imagenet_transforms import IMAGENET_MEAN, IMAGENET_STD, ShorterSideResizeCrop
from .published_weights import StateDict, load_strict, resolve_weights
from .registry import ExtractorCard, register_extractor
from .weights import check_init_seed, seeded_init

OFFICIAL_FILENAME = "swav_800ep_pretrain.pth.tar"
OFFICIAL_URL = f"https://dl.fbaipublicfiles.com/deepcluster/{OFFICIAL_FILENAME}"
SIZE = 224
_HEADS = ("projection_head.", "prototypes.", "fc.")


def convert_swav_state(state: StateDict) -> StateDict:
    """Official SwAV state dict (``module.`` prefixes, projection head, prototypes) -> torchvision ResNet-50 trunk."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith(_HEADS):
            continue
        out[key] = value
    return out


@dataclass(repr=False, eq=False)
class ResNetTrunkExtractor(Extractor):
    """A ResNet trunk whose output is the global average pool of its last stage (SwAV, SimCLRv2)."""

    net: torch.nn.Module | None = None

    def forward(self, batch: torch.Tensor) -> ExtractorOutput:
        return ExtractorOutput(features=self.net(batch))

    def _modules(self) -> list[torch.nn.Module]:
        return [self.net]


CARD = ExtractorCard(
    default_weights=f"SwAV ResNet-50 (800 epochs): `{OFFICIAL_FILENAME}` in the weights directory",
    dim=2048,
    feature="global average pool of layer4",
    preprocessing="PIL bilinear, shorter side to 224, center crop 224 (dgm-eval: no crop), ImageNet mean/std",
    reference="dgm-eval `swav`",
)


@register_extractor("swav", description="SwAV ResNet-50 pooled 2048-d via torchvision (dgm-eval)", card=CARD)
def create_swav(weights: str = "default", seed: int = 0) -> ResNetTrunkExtractor:
    """SwAV ResNet-50 features (dgm-eval's ``swav`` encoder).

    Args:
        weights: ``"default"`` (official ``swav_800ep_pretrain.pth.tar`` in weights_dir()), a local
            checkpoint path, or ``"none"``.
        seed: seed of the random initialisation when ``weights="none"``.
    """
    from torchvision.models import resnet50

    seed = check_init_seed(seed)
    state, info = resolve_weights(
        weights,
        extractor="swav",
        filename=OFFICIAL_FILENAME,
        url=OFFICIAL_URL,
        identity="swav:resnet50/800ep",
        seed=seed,
    )
    with seeded_init(seed):
        net = resnet50(weights=None)
    net.fc = torch.nn.Identity()
    if state is not None:
        load_strict(net, convert_swav_state(state), source=info.source, extractor="swav", what="SwAV ResNet-50")
    net.eval().requires_grad_(False)
    return ResNetTrunkExtractor(
        name="swav",
        variant="resnet50/800ep",
        dim=2048,
        weights=info,
        preprocessor=ShorterSideResizeCrop(
            resize=SIZE, crop=SIZE, mean=IMAGENET_MEAN, std=IMAGENET_STD, interpolation="bilinear"
        ),
        feature_layer="global average pool of layer4 (dgm-eval), not L2-normalised",
        heatmap_layer="layer4",
        net=net,
    )
