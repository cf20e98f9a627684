"""``mae``: Masked Autoencoder ViT-L/16 encoder (He et al., CVPR 2022), as dgm-eval's ``mae``.

dgm-eval (Stein et al., NeurIPS 2023) loads the official pre-training checkpoint
``mae_pretrain_vit_large.pth`` (encoder only, ``{"model": state}``) into a timm
``VisionTransformer`` (patch 16, width 1024, depth 24, 16 heads, MLP ratio 4, qkv bias,
``LayerNorm(eps=1e-6)``) with ``global_pool=False``, and reads

* feature: the **class token after the final LayerNorm** (``norm(x)[:, 0]``), ``D = 1024`` for
  ViT-L/16; not L2-normalised. Here: the same timm architecture (``vit_large_patch16_224``,
  no classifier), whose state-dict keys equal the checkpoint's (loaded strictly);
* preprocessing: dgm-eval's ``clean_resize`` branch, ``pil_resize(image, (224, 224))``: each
  channel resized separately with PIL bicubic in float mode ``'F'`` to 224 x 224 (aspect not
  kept), clipped to [0, 255], divided by 255, then ``Normalize`` with the ImageNet mean/std.
  dgm-eval's other branch calls ``torchvision.transforms.resize`` and ``InterpolationMode``,
  neither of which exists in that module's namespace, so it raises: the clean branch is the only
  one that runs.

Weights: ``"default"`` looks for the official ``mae_pretrain_vit_large.pth`` in
:func:`workbench.paths.weights_dir` (no library download: timm's ``vit_large_patch16_224.mae`` is
the same encoder, but a direct download of the official file is what dgm-eval uses); a local
path (the official file or a plain state dict of the same keys, ``.safetensors`` accepted);
``"none"``: seeded random init (timm's). Option ``model="vitb16"`` (768-d) / ``"vith14"`` (1280-d)
selects the other official MAE encoders; ``vitb16`` is the smaller test configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Extractor, ExtractorOutput
from .imagenet_transforms import IMAGENET_MEAN, IMAGENET_STD, CleanSquashResize
from .published_weights import load_strict, resolve_weights
from .registry import ExtractorCard, register_extractor
from .weights import check_init_seed, seeded_init

ARCHS = {
    "vitb16": ("vit_base_patch16_224", "base"),
    "vitl16": ("vit_large_patch16_224", "large"),
    "vith14": ("vit_huge_patch14_224", "huge"),
}
DEFAULT_MODEL = "vitl16"
IMG_SIZE = 224


def official_filename(model: str) -> str:
    """File name of the official MAE pre-training checkpoint, e.g. ``mae_pretrain_vit_large.pth``."""
    return f"mae_pretrain_vit_{ARCHS[model][1]}.pth"


def official_url(model: str) -> str:
    return f"https://dl.fbaipublicfiles.com/mae/pretrain/{official_filename(model)}"


@dataclass(repr=False, eq=False)
class ClassTokenExtractor(Extractor):
    """A timm ViT / BEiT encoder (MAE, data2vec-vision); features are the class token after the final LayerNorm."""

    net: torch.nn.Module | None = None

    def forward(self, batch: torch.Tensor) -> ExtractorOutput:
        return ExtractorOutput(features=self.net.forward_features(batch)[:, 0])

    def _modules(self) -> list[torch.nn.Module]:
        return [self.net]


CARD = ExtractorCard(
    default_weights=f"MAE ViT-L/16 pre-training: `{official_filename(DEFAULT_MODEL)}` in the weights directory",
    dim=1024,
    feature="class token after the final LayerNorm",
    preprocessing="PIL bicubic per channel in float ('clean') to 224x224, aspect not kept, ImageNet mean/std",
    reference="dgm-eval `mae` (its `--clean_resize` transform)",
)


@register_extractor("mae", description="MAE ViT-L/16 class token 1024-d via timm (dgm-eval)", card=CARD)
def create_mae(weights: str = "default", model: str = DEFAULT_MODEL, seed: int = 0) -> ClassTokenExtractor:
    """MAE encoder class-token features (dgm-eval's ``mae`` encoder).

    Args:
        weights: ``"default"`` (official ``mae_pretrain_vit_<size>.pth`` in weights_dir()), a local
            checkpoint path, or ``"none"``.
        model: ``"vitl16"`` (default, as dgm-eval), ``"vitb16"`` or ``"vith14"``.
        seed: seed of the random initialisation when ``weights="none"``.
    """
    try:
        import timm
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the 'mae' extractor needs timm: pip install timm (or workbench[models])") from exc
    if model not in ARCHS:
        raise ValueError(f"model must be one of {sorted(ARCHS)}, got {model!r}")
    seed = check_init_seed(seed)
    state, info = resolve_weights(
        weights,
        extractor="mae",
        filename=official_filename(model),
        url=official_url(model),
        identity=f"mae:vit-{ARCHS[model][1]}/pretrain",
        seed=seed,
    )
    with seeded_init(seed):
        net = timm.create_model(ARCHS[model][0], pretrained=False, num_classes=0, global_pool="token")
    if state is not None:
        state = {k: v for k, v in state.items() if k not in ("head.weight", "head.bias")}  # fine-tuned files
        load_strict(net, state, source=info.source, extractor="mae", what=f"MAE {model} encoder")
    net.eval().requires_grad_(False)
    return ClassTokenExtractor(
        name="mae",
        variant=model,
        dim=int(net.num_features),
        weights=info,
        preprocessor=CleanSquashResize(size=IMG_SIZE, mean=IMAGENET_MEAN, std=IMAGENET_STD),
        feature_layer="class token after the final LayerNorm (dgm-eval, global_pool=False), not L2-normalised",
        heatmap_layer=f"blocks.{len(net.blocks) - 1}.norm1",
        net=net,
    )
