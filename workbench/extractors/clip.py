"""``clip``: CLIP image embeddings via open_clip (Radford et al., ICML 2021; Cherti et al., CVPR 2023).

Defaults follow dgm-eval (Stein et al., NeurIPS 2023), whose published CLIP numbers use
``ViT-L-14`` with the open_clip tag ``datacomp_xl_s13b_b90k`` (dgm-eval's ``ARCH_WEIGHT_DEFAULTS``)
and read the feature **before** the image projection: the class token after the vision
transformer's final LayerNorm (``ln_post``), ``D = 1024`` for ViT-L-14 (dgm-eval ``--depth 0``).
``feature="projected"`` gives open_clip's ``encode_image`` output instead (``ln_post`` output times
``proj``; ``D`` = the model's joint embedding size, 768 for ViT-L-14). Neither is L2-normalised
(dgm-eval computes its representations with ``normalized=False``).

Preprocessing reproduces open_clip's eval transform for the model (its ``preprocess_cfg``):
resize the shorter side to ``S`` with PIL bicubic (torchvision ``Resize(S)`` on a PIL image:
the long side becomes ``int(S * long / short)``), center-crop ``S x S`` (offsets
``round((H - S) / 2)``), scale to [0, 1], then ``(x - mean) / std`` with the tag's mean/std
(OpenAI's ``(0.48145466, 0.4578275, 0.40821073) / (0.26862954, 0.26130258, 0.27577711)`` for all
ViT-L-14 tags). ``resize_mode="squash"`` resizes to ``S x S`` without preserving the aspect ratio,
which is what dgm-eval actually does (it passes the model's ``(S, S)`` image size to
``torchvision.transforms.functional.resize``); the two agree exactly on square images.

Weights: ``"default"`` downloads the tag through open_clip (its Hugging Face / URL cache); a local
path is passed to open_clip as ``pretrained=<path>`` (a full CLIP state dict); ``"none"`` builds
the architecture with a seeded random initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from .base import Extractor, ExtractorOutput, Preprocessor, WeightsInfo
from .inception import check_rgb_uint8
from .registry import register_extractor
from .weights import (
    DEFAULT,
    NONE,
    WeightsError,
    WeightsUnavailableError,
    check_init_seed,
    file_identity,
    parse_weights_spec,
    random_init_identity,
    seeded_init,
    unavailable_message,
)

DEFAULT_MODEL = "ViT-L-14"
DEFAULT_PRETRAINED = "datacomp_xl_s13b_b90k"
FEATURES = ("pre-projection", "projected")
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
NORMALIZATIONS = ("openai",)
RESIZE_MODES = ("shortest", "squash")
_PIL_FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


@dataclass
class ResizeCropNormalize(Preprocessor):
    """PIL resize (+ center crop) to ``size x size``, scale to [0, 1], ``(x - mean) / std``.

    Equal to torchvision's ``Compose([Resize(...), CenterCrop(size), ToTensor(), Normalize(mean, std)])``
    applied to the PIL image, i.e. open_clip's eval transform (``resize_mode="shortest"``) or
    dgm-eval's CLIP / DINOv2 transform (``resize_mode="squash"``).

    Args:
        size: output side ``S`` in pixels.
        mean, std: per-channel normalisation of the [0, 1] values (RGB order).
        resize_mode: ``"shortest"`` (shorter side to ``S``, aspect kept, then center crop) or
            ``"squash"`` (both sides to ``S``; no crop).
        interpolation: PIL filter, ``"bicubic"`` or ``"bilinear"`` (on uint8, antialiased).
    """

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize_mode: str = "shortest"
    interpolation: str = "bicubic"

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")
        if self.interpolation not in _PIL_FILTERS:
            raise ValueError(f"interpolation must be one of {tuple(_PIL_FILTERS)}, got {self.interpolation!r}")
        if int(self.size) < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")
        self.size = int(self.size)
        self.mean = tuple(float(m) for m in self.mean)
        self.std = tuple(float(s) for s in self.std)

    def _resized(self, img: Image.Image) -> Image.Image:
        width, height = img.size
        if self.resize_mode == "squash":
            new_w, new_h = self.size, self.size
        elif width <= height:
            new_w, new_h = self.size, int(self.size * height / width)
        else:
            new_w, new_h = int(self.size * width / height), self.size
        if (new_w, new_h) == (width, height):
            return img
        return img.resize((new_w, new_h), resample=_PIL_FILTERS[self.interpolation])

    def _center_crop(self, img: Image.Image) -> Image.Image:
        width, height = img.size
        if (width, height) == (self.size, self.size):
            return img
        top = int(round((height - self.size) / 2.0))
        left = int(round((width - self.size) / 2.0))
        return img.crop((left, top, left + self.size, top + self.size))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        img = self._center_crop(self._resized(Image.fromarray(check_rgb_uint8(image))))
        x = np.asarray(img, dtype=np.float32) / np.float32(255)
        x = (x - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.std, dtype=np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def describe(self) -> dict[str, Any]:
        if self.resize_mode == "shortest":
            resize = f"PIL {self.interpolation} on uint8, shorter side to {self.size} (aspect kept)"
            crop = f"center {self.size}x{self.size}"
        else:
            resize = f"PIL {self.interpolation} on uint8 to {self.size}x{self.size} (aspect not kept)"
            crop = "none"
        return {
            "resize_mode": self.resize_mode,
            "resize": resize,
            "size": self.size,
            "crop": crop,
            "value_range": "x/255 then normalised",
            "normalisation": f"(x/255 - mean) / std, mean={list(self.mean)}, std={list(self.std)}",
        }


@dataclass(repr=False, eq=False)
class ClipExtractor(Extractor):
    """CLIP vision tower; ``forward`` returns the (pre-projection or projected) image embedding."""

    visual: torch.nn.Module | None = None

    def forward(self, batch: torch.Tensor) -> ExtractorOutput:
        out = self.visual(batch)
        if isinstance(out, tuple):  # towers configured to also return tokens
            out = out[0]
        return ExtractorOutput(features=out)

    def _modules(self) -> list[torch.nn.Module]:
        return [self.visual]


def _import_open_clip():
    try:
        import open_clip
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the 'clip' extractor needs open_clip: pip install open_clip_torch (or workbench[models])"
        ) from exc
    return open_clip


def _square_size(size: Any) -> int:
    if isinstance(size, (tuple, list)):
        if len(size) != 2 or size[0] != size[1]:
            raise NotImplementedError(f"non-square CLIP input size {tuple(size)} is not supported")
        size = size[0]
    return int(size)


@register_extractor("clip", description="CLIP ViT image embedding via open_clip (default ViT-L-14, as dgm-eval)")
def create_clip(
    weights: str = "default",
    model: str = DEFAULT_MODEL,
    pretrained: str = DEFAULT_PRETRAINED,
    feature: str = "pre-projection",
    resize_mode: str | None = None,
    normalization: str | None = None,
    seed: int = 0,
) -> ClipExtractor:
    """CLIP image features from open_clip.

    Args:
        weights: ``"default"`` (open_clip's download of tag ``pretrained``), a local CLIP checkpoint
            path (open_clip ``pretrained=<path>``), or ``"none"`` (seeded random init).
        model: open_clip model name (``open_clip.list_models()``); default ``"ViT-L-14"``.
        pretrained: open_clip tag; default ``"datacomp_xl_s13b_b90k"`` (dgm-eval's choice for
            ViT-L-14). Also selects the preprocessing mean/std/interpolation when the tag is known.
        feature: ``"pre-projection"`` (default, dgm-eval: ``ln_post`` class token, ``D`` = vision
            width) or ``"projected"`` (``encode_image``, ``D`` = embed dim). Not L2-normalised.
        resize_mode: ``None`` (the tag's, normally ``"shortest"`` + center crop, open_clip's eval
            transform), ``"shortest"`` or ``"squash"`` (dgm-eval's effective behaviour).
        normalization: ``None`` (the tag's mean/std) or ``"openai"``: OpenAI's mean
            ``(0.48145466, 0.4578275, 0.40821073)`` and std ``(0.26862954, 0.26130258, 0.27577711)``
            whatever the tag, as dgm-eval hard-codes them (the same values for every ViT-L-14 tag).
        seed: seed of the random initialisation when ``weights="none"``.
    """
    open_clip = _import_open_clip()
    if feature not in FEATURES:
        raise ValueError(f"feature must be one of {FEATURES}, got {feature!r}")
    if resize_mode is not None and resize_mode not in RESIZE_MODES:
        raise ValueError(f"resize_mode must be one of {RESIZE_MODES} or None, got {resize_mode!r}")
    if normalization is not None and normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS} or None, got {normalization!r}")
    seed = check_init_seed(seed)
    if open_clip.get_model_config(model) is None:
        raise ValueError(f"unknown open_clip model {model!r}; choose one of open_clip.list_models()")
    tag_cfg = open_clip.get_pretrained_cfg(model, pretrained) or {}
    spec = parse_weights_spec(weights, extractor="clip")
    if spec.kind == DEFAULT and not tag_cfg:
        tags = open_clip.list_pretrained_tags_by_model(model)
        raise ValueError(f"open_clip has no pretrained tag {pretrained!r} for {model!r}; known tags: {tags}")

    preprocess_override = {k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag_cfg}
    if resize_mode is not None:
        preprocess_override["resize_mode"] = resize_mode
    common = dict(
        device="cpu",
        force_quick_gelu=bool(tag_cfg.get("quick_gelu", False)),
        force_preprocess_cfg=preprocess_override,
    )
    source = tag_cfg.get("hf_hub") or tag_cfg.get("url") or ""
    clip_model, info = create_open_clip_model(
        open_clip,
        model,
        pretrained,
        spec,
        seed,
        source,
        label="CLIP",
        extractor="clip",
        pretrained_text=False,
        **common,
    )

    cfg = open_clip.get_model_preprocess_cfg(clip_model)
    visual = clip_model.visual
    del clip_model  # the text tower is not needed
    if feature == "pre-projection":
        proj = getattr(visual, "proj", None)
        if not isinstance(proj, torch.Tensor):
            raise ValueError(
                f"feature='pre-projection' needs a ViT vision tower with a 'proj' matrix; {model!r} has "
                f"{type(visual).__name__}; use feature='projected'"
            )
        dim = int(proj.shape[0])
        visual.proj = None  # the tower now returns the ln_post class token (dgm-eval's feature)
    else:
        dim = getattr(visual, "output_dim", None)
        if dim is None:
            size = _square_size(cfg["size"])
            with torch.no_grad():
                dim = int(visual.eval()(torch.zeros(1, 3, size, size)).shape[-1])
    visual.eval().requires_grad_(False)

    mode = cfg.get("resize_mode", "shortest")
    if mode not in RESIZE_MODES:
        raise NotImplementedError(f"open_clip resize_mode {mode!r} of {model!r}/{pretrained!r} is not supported")
    preprocessor = ResizeCropNormalize(
        size=_square_size(cfg["size"]),
        mean=OPENAI_MEAN if normalization == "openai" else tuple(cfg["mean"]),
        std=OPENAI_STD if normalization == "openai" else tuple(cfg["std"]),
        resize_mode=mode,
        # open_clip treats every interpolation other than "bilinear" as bicubic
        interpolation="bilinear" if cfg.get("interpolation") == "bilinear" else "bicubic",
    )
    layer = (
        "class token after ln_post, before the image projection (dgm-eval), not L2-normalised"
        if feature == "pre-projection"
        else "encode_image output: ln_post class token @ proj, not L2-normalised"
    )
    # the last residual block's first LayerNorm, as dgm-eval ('visual.transformer.resblocks.11.ln_1'
    # for its ViT-B): the patch tokens that block outputs never reach the class-token feature
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    heatmap_layer = f"transformer.resblocks.{len(blocks) - 1}.ln_1" if blocks is not None and len(blocks) else None
    return ClipExtractor(
        name="clip",
        variant=f"{model}/{pretrained}/{feature}" if tag_cfg else f"{model}/{feature}",
        dim=int(dim),
        weights=info,
        preprocessor=preprocessor,
        feature_layer=layer,
        heatmap_layer=heatmap_layer,
        visual=visual,
    )


def create_open_clip_model(
    open_clip: Any,
    model: str,
    pretrained: str,
    spec: Any,
    seed: int,
    source: str,
    *,
    label: str,
    extractor: str,
    pretrained_text: bool | None = None,
    **common: Any,
) -> tuple[Any, WeightsInfo]:
    """The open_clip model ``model`` with the weights ``spec`` asks for, and their :class:`WeightsInfo`.

    ``spec``: a parsed weights spec (random init with ``seed``, a file, or the pretrained tag
    ``pretrained`` from ``source``); ``label`` / ``extractor`` name the model and the extractor
    in errors; ``pretrained_text=False`` skips the text tower's weights of a random model;
    ``common``: keyword arguments of ``open_clip.create_model``.
    """
    if spec.kind == NONE:
        extra = {} if pretrained_text is None else {"pretrained_text": pretrained_text}
        with seeded_init(seed):
            clip_model = open_clip.create_model(model, pretrained=None, **extra, **common)
        return clip_model, WeightsInfo(
            spec=NONE, pretrained=False, identity=random_init_identity(seed), source="random init"
        )
    if spec.kind == "file":
        try:
            clip_model = open_clip.create_model(model, pretrained=str(spec.path), **common)
        except Exception as exc:  # open_clip raises RuntimeError, UnpicklingError, KeyError ...
            detail = " ".join(str(exc).split())[:300]
            raise WeightsError(
                f"weights file {spec.path} cannot be loaded into {label} {model} ({type(exc).__name__}: {detail}); "
                "pass a full open_clip state dict of this model (.pt/.bin/.safetensors)"
            ) from exc
        return clip_model, WeightsInfo(
            spec=spec.raw, pretrained=False, identity=file_identity(spec.path), source=str(spec.path)
        )
    try:
        clip_model = open_clip.create_model(model, pretrained=pretrained, require_pretrained=True, **common)
    except Exception as exc:
        raise WeightsUnavailableError(
            unavailable_message(extractor, f"open_clip {model}/{pretrained}", source, searched_local=False)
            + f" (open_clip error: {type(exc).__name__}: {exc})"
        ) from exc
    return clip_model, WeightsInfo(
        spec=DEFAULT, pretrained=True, identity=f"open_clip:{model}/{pretrained}", source=source
    )
