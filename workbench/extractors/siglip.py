"""``siglip``: SigLIP image embeddings via open_clip (Zhai et al., ICCV 2023). Not one of dgm-eval's encoders.

Model ``ViT-SO400M-14-SigLIP`` with open_clip tag ``webli`` (the shape-optimised 400M ViT at 224
pixels, Hugging Face ``timm/ViT-SO400M-14-SigLIP``). Its vision tower is a timm ViT without class
token whose tokens are pooled by a multi-head attention-pooling head (MAP); open_clip's tower has
no further projection (``timm_proj="none"``), so

* feature: open_clip's ``encode_image`` output, the **MAP-pooled token**, ``D = 1152``; not
  L2-normalised (SigLIP's loss normalises it; the workbench keeps the raw vector as for CLIP);
* preprocessing: open_clip's eval transform of the tag: resize to 224 x 224 with PIL bicubic
  (``resize_mode="squash"``, aspect not kept, no crop), x/255, ``(x - 0.5) / 0.5``.

Options ``model`` / ``pretrained`` select other open_clip SigLIP models (``ViT-B-16-SigLIP``,
``ViT-SO400M-14-SigLIP-384``, SigLIP 2 ...); preprocessing always follows open_clip's config of
the model and tag. Weights: ``"default"`` downloads the tag through open_clip (Hugging Face
cache); a local path is passed to open_clip as ``pretrained=<path>``; ``"none"`` builds the
architecture with a seeded random initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Extractor, ExtractorOutput
from .clip import ResizeCropNormalize, create_open_clip_model
from .registry import ExtractorCard, register_extractor
from .weights import (
    DEFAULT,
    check_init_seed,
    parse_weights_spec,
)

DEFAULT_MODEL = "ViT-SO400M-14-SigLIP"
DEFAULT_PRETRAINED = "webli"


@dataclass(repr=False, eq=False)
class SiglipExtractor(Extractor):
    """open_clip SigLIP vision tower; ``forward`` is ``encode_image`` without normalisation."""

    visual: torch.nn.Module | None = None

    def forward(self, batch: torch.Tensor) -> ExtractorOutput:
        return ExtractorOutput(features=self.visual(batch))

    def _modules(self) -> list[torch.nn.Module]:
        return [self.visual]


CARD = ExtractorCard(
    default_weights=f"open_clip `{DEFAULT_MODEL}` / `{DEFAULT_PRETRAINED}` (Hugging Face download)",
    dim=1152,
    feature="attention-pooled (MAP) token = encode_image, no projection",
    preprocessing="PIL bicubic to 224x224 (squash, no crop), mean/std 0.5",
    reference="beyond dgm-eval",
)


@register_extractor("siglip", description="SigLIP ViT-SO400M/14 image embedding 1152-d via open_clip", card=CARD)
def create_siglip(
    weights: str = "default", model: str = DEFAULT_MODEL, pretrained: str = DEFAULT_PRETRAINED, seed: int = 0
) -> SiglipExtractor:
    """SigLIP image features from open_clip.

    Args:
        weights: ``"default"`` (open_clip's download of tag ``pretrained``), a local checkpoint
            path (open_clip ``pretrained=<path>``), or ``"none"`` (seeded random init).
        model: open_clip SigLIP model name; default ``"ViT-SO400M-14-SigLIP"``.
        pretrained: open_clip tag; default ``"webli"``. Also selects the preprocessing.
        seed: seed of the random initialisation when ``weights="none"``.
    """
    try:
        import open_clip
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the 'siglip' extractor needs open_clip: pip install open_clip_torch") from exc
    seed = check_init_seed(seed)
    config = open_clip.get_model_config(model)
    if config is None or "timm_model_name" not in config.get("vision_cfg", {}):
        siglips = [m for m in open_clip.list_models() if "SigLIP" in m]
        raise ValueError(f"{model!r} is not an open_clip SigLIP model; choose one of {siglips}")
    tag_cfg = open_clip.get_pretrained_cfg(model, pretrained) or {}
    spec = parse_weights_spec(weights, extractor="siglip")
    if spec.kind == DEFAULT and not tag_cfg:
        raise ValueError(
            f"open_clip has no pretrained tag {pretrained!r} for {model!r}; known tags: "
            f"{open_clip.list_pretrained_tags_by_model(model)}"
        )
    override = {k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag_cfg}
    common = dict(device="cpu", force_preprocess_cfg=override)
    source = tag_cfg.get("hf_hub") or tag_cfg.get("url") or ""
    clip_model, info = create_open_clip_model(
        open_clip, model, pretrained, spec, seed, source, label="SigLIP", extractor="siglip", **common
    )

    cfg = open_clip.get_model_preprocess_cfg(clip_model)
    visual = clip_model.visual
    del clip_model  # the text tower is not needed
    visual.eval().requires_grad_(False)
    size = cfg["size"]
    size = size[0] if isinstance(size, (tuple, list)) else size
    with torch.no_grad():
        dim = int(visual(torch.zeros(1, 3, int(size), int(size))).shape[-1])
    mode = cfg.get("resize_mode", "shortest")
    preprocessor = ResizeCropNormalize(
        size=int(size),
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
        resize_mode=mode,
        interpolation="bilinear" if cfg.get("interpolation") == "bilinear" else "bicubic",
    )
    blocks = getattr(getattr(visual, "trunk", None), "blocks", None)
    return SiglipExtractor(
        name="siglip",
        variant=f"{model}/{pretrained}" if tag_cfg else model,
        dim=dim,
        weights=info,
        preprocessor=preprocessor,
        feature_layer="attention-pooled (MAP) token, open_clip encode_image (no projection), not L2-normalised",
        heatmap_layer=f"trunk.blocks.{len(blocks) - 1}.norm1" if blocks is not None and len(blocks) else None,
        visual=visual,
    )
