"""Imports the built-in extractor modules so that they register themselves, and describes their defaults."""

from . import (
    clip,  # noqa: F401
    convnext,  # noqa: F401
    data2vec,  # noqa: F401
    dinov2,  # noqa: F401
    inception,  # noqa: F401
    mae,  # noqa: F401
    pixels,  # noqa: F401
    siglip,  # noqa: F401
    simclr,  # noqa: F401
    swav,  # noqa: F401
)
from .registry import ExtractorCard, set_extractor_card

# cards of the modules that predate ExtractorCard (the new ones pass card= to register_extractor)
set_extractor_card(
    "inception",
    ExtractorCard(
        default_weights="FID Inception-v3 (TF 2015-12-05): `pt_inception-2015-12-05-6726825d.pth` in the weights "
        "directory, torch hub cache, else the pytorch-fid release download",
        dim=2048,
        feature="pool3 (global average pool after Mixed_7c); logits: 1008-way fc without bias",
        preprocessing="x/255, torch bilinear (no antialias) to 299x299, aspect not kept, 2x-1 (`resize='legacy'`)",
        reference="pytorch-fid, dgm-eval `inception`",
    ),
)
set_extractor_card(
    "clip",
    ExtractorCard(
        default_weights="open_clip `ViT-L-14` / `datacomp_xl_s13b_b90k` (Hugging Face download)",
        dim=1024,
        feature="class token after `ln_post`, before the image projection",
        preprocessing="PIL bicubic, shorter side to 224, center crop 224 (open_clip eval; dgm-eval squashes: "
        "`resize_mode='squash'`), OpenAI CLIP mean/std",
        reference="dgm-eval `clip` (weights, feature)",
    ),
)
set_extractor_card(
    "dinov2",
    ExtractorCard(
        default_weights="DINOv2 ViT-L/14: `dinov2_vitl14_pretrain.pth` in the weights directory, else timm "
        "`vit_large_patch14_dinov2.lvd142m`",
        dim=1024,
        feature="class token after the final LayerNorm",
        preprocessing="PIL bicubic to 224x224 (squash, no crop), ImageNet mean/std",
        reference="dgm-eval `dinov2`",
    ),
)
set_extractor_card(
    "pixels",
    ExtractorCard(
        default_weights="none (no weights)",
        dim=768,
        feature="the input pixels",
        preprocessing="PIL box filter to 16x16, x/255",
        reference="",
    ),
)
