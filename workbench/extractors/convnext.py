"""``convnext``: ConvNeXt-L pretrained on ImageNet-22k (Liu et al., CVPR 2022), as dgm-eval's ``convnext``.

dgm-eval (Stein et al., NeurIPS 2023) builds ``timm.create_model("convnext_large_in22k",
pretrained=True)`` (today's timm name: ``convnext_large.fb_in22k``) and reads

* feature: ``head.flatten(head.norm(head.global_pool(forward_features(x))))``: the global average
  pool of the last stage followed by the head's LayerNorm, **before** the 21,841-way classifier;
  ``D = 1536``; not L2-normalised. Here: timm's ``forward_head(x, pre_logits=True)``, the same ops.
* preprocessing (``ConvNeXTEncoder.build_transform`` for input size 224): ``Resize(256, BICUBIC)``
  on the PIL image (shorter side to 256, aspect kept), ``CenterCrop(224)``, ``ToTensor``,
  ``Normalize`` with the ImageNet mean/std.

Weights: ``"default"`` looks for the official file ``convnext_large_22k_224.pth`` (the ConvNeXt
repository's format, ``{"model": state}``) in :func:`workbench.paths.weights_dir`, else loads
timm's ``convnext_large.fb_in22k`` (Hugging Face hub download / cache). A local path may be the
official file or a timm state dict (``.safetensors`` accepted); official keys are converted with
timm's ``checkpoint_filter_fn`` and loaded strictly; the classifier (``head.fc``) is dropped.
``"none"``: seeded random init (timm's).

Option ``arch`` selects another timm ConvNeXt (e.g. ``"convnext_atto"``, 320-d, the tiny test
configuration); only ``"convnext_large"`` has the published ImageNet-22k weights of ``"default"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Extractor, ExtractorOutput
from .imagenet_transforms import IMAGENET_MEAN, IMAGENET_STD, ShorterSideResizeCrop
from .published_weights import StateDict, load_strict, resolve_weights
from .registry import ExtractorCard, register_extractor
from .weights import check_init_seed, seeded_init

DEFAULT_ARCH = "convnext_large"
PRETRAINED_TAG = "fb_in22k"
OFFICIAL_FILENAME = "convnext_large_22k_224.pth"
OFFICIAL_URL = f"https://dl.fbaipublicfiles.com/convnext/{OFFICIAL_FILENAME}"
RESIZE, CROP = 256, 224


def convert_convnext_state(state: StateDict, model: torch.nn.Module) -> StateDict:
    """Official ConvNeXt (or timm) state dict -> timm layout of ``model``, without the classifier ``head.fc``."""
    from timm.models.convnext import checkpoint_filter_fn

    out = checkpoint_filter_fn(dict(state), model)
    return {k: v for k, v in out.items() if not k.startswith("head.fc.")}


@dataclass(repr=False, eq=False)
class ConvNeXtExtractor(Extractor):
    """timm ConvNeXt; features are the pooled, LayerNorm-ed last stage (pre-logits)."""

    net: torch.nn.Module | None = None

    def forward(self, batch: torch.Tensor) -> ExtractorOutput:
        return ExtractorOutput(features=self.net.forward_head(self.net.forward_features(batch), pre_logits=True))

    def _modules(self) -> list[torch.nn.Module]:
        return [self.net]


def _import_timm():
    try:
        import timm
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the 'convnext' extractor needs timm: pip install timm (or workbench[models])") from exc
    return timm


CARD = ExtractorCard(
    default_weights=f"ConvNeXt-L ImageNet-22k: `{OFFICIAL_FILENAME}` in the weights directory, "
    f"else timm `{DEFAULT_ARCH}.{PRETRAINED_TAG}`",
    dim=1536,
    feature="global average pool of the last stage + head LayerNorm (pre-logits)",
    preprocessing="PIL bicubic, shorter side to 256, center crop 224, ImageNet mean/std",
    reference="dgm-eval `convnext`",
)


@register_extractor("convnext", description="ConvNeXt-L ImageNet-22k pre-logits 1536-d via timm (dgm-eval)", card=CARD)
def create_convnext(weights: str = "default", arch: str = DEFAULT_ARCH, seed: int = 0) -> ConvNeXtExtractor:
    """ConvNeXt pre-logits features (dgm-eval's ``convnext`` encoder).

    Args:
        weights: ``"default"`` (official ``convnext_large_22k_224.pth`` in weights_dir(), else timm's
            ``convnext_large.fb_in22k`` download), a local checkpoint path, or ``"none"``.
        arch: timm ConvNeXt architecture; default ``"convnext_large"``. Others (e.g.
            ``"convnext_atto"`` for tests) need ``weights="none"`` or a file.
        seed: seed of the random initialisation when ``weights="none"``.
    """
    timm = _import_timm()
    if not isinstance(arch, str) or not arch.startswith("convnext") or arch not in timm.list_models("convnext*"):
        raise ValueError(f"arch must be a timm ConvNeXt (timm.list_models('convnext*')), got {arch!r}")
    seed = check_init_seed(seed)

    def download() -> tuple[StateDict, str]:
        if arch != DEFAULT_ARCH:
            raise ValueError(f"no published dgm-eval weights for arch {arch!r}; pass weights='none' or a file")
        net = timm.create_model(f"{arch}.{PRETRAINED_TAG}", pretrained=True, num_classes=0)
        return net.state_dict(), f"timm/{arch}.{PRETRAINED_TAG} (Hugging Face hub)"

    state, info = resolve_weights(
        weights,
        extractor="convnext",
        filename=OFFICIAL_FILENAME,
        url=OFFICIAL_URL,
        identity=f"convnext:{arch}/{PRETRAINED_TAG}",
        seed=seed,
        download=download,
        wrappers=("model", "state_dict"),  # the official file is {"model": state}
    )
    with seeded_init(seed):
        net = timm.create_model(arch, pretrained=False, num_classes=0)
    if state is not None:
        load_strict(
            net,
            convert_convnext_state(state, net),
            source=info.source,
            extractor="convnext",
            what=f"ConvNeXt {arch} (official or timm format)",
        )
    net.eval().requires_grad_(False)
    return ConvNeXtExtractor(
        name="convnext",
        variant=arch if arch != DEFAULT_ARCH else f"{arch}/{PRETRAINED_TAG}",
        dim=int(net.num_features),
        weights=info,
        preprocessor=ShorterSideResizeCrop(
            resize=RESIZE, crop=CROP, mean=IMAGENET_MEAN, std=IMAGENET_STD, interpolation="bicubic"
        ),
        feature_layer="global average pool of the last stage + head LayerNorm, before the classifier "
        "(dgm-eval), not L2-normalised",
        heatmap_layer=f"stages.{len(net.stages) - 1}",
        net=net,
    )
