"""``dinov2``: DINOv2 ViT-S/B/L/G-14 class-token features via timm (Oquab et al., TMLR 2024).

dgm-eval (Stein et al., NeurIPS 2023) recommends DINOv2-ViT-L/14 for evaluating generative
models; this extractor reproduces its setup:

* model ``torch.hub.load("facebookresearch/dinov2", "dinov2_vitl14")``, here the same weights
  through timm (``vit_large_patch14_dinov2.lvd142m``); options ``model="vits14" | "vitb14" |
  "vitl14" (default) | "vitg14"``;
* feature: the model's output, i.e. the **class token after the final LayerNorm**
  (``x_norm_clstoken``; ``D`` = 384 / 768 / 1024 / 1536), not L2-normalised;
* preprocessing (dgm-eval ``DINOv2Encoder.transform``): ``Resize((224, 224), BICUBIC)`` on the PIL
  image (both sides to 224, aspect ratio *not* kept, no crop; PIL's antialiased bicubic on
  uint8), ``ToTensor`` (x/255), ``Normalize`` with the ImageNet mean ``(0.485, 0.456, 0.406)``
  and std ``(0.229, 0.224, 0.225)``.

Position embeddings: the checkpoints hold a 37 x 37 grid (518-pixel training resolution). At 224
pixels the network sees a 16 x 16 grid; the DINOv2 reference code interpolates the grid at
every forward with ``F.interpolate(mode="bicubic", scale_factor=(16 + 0.1) / 37,
antialias=False)``. This extractor applies exactly that interpolation once, when loading the
weights, into a timm model built for ``img_size``. timm's own loader (``pretrained=True,
img_size=224``) instead resamples with ``size=16`` and ``antialias=True``, which gives slightly
different features from the reference; it is not used.

Weights: ``"default"`` looks for the official file ``dinov2_<model>_pretrain.pth`` in
:func:`workbench.paths.weights_dir`, else loads timm's pretrained weights (Hugging Face hub
download / cache); a local path (official DINOv2 ``.pth`` or a timm state dict, ``.safetensors``
accepted); ``"none"`` for a seeded random init (timm's initialisation with layer-scale 1.0, as
DINOv2's hub constructor).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import Extractor, ExtractorOutput, WeightsInfo
from .clip import ResizeCropNormalize
from .registry import register_extractor
from .weights import (
    DEFAULT,
    NONE,
    WeightsError,
    WeightsUnavailableError,
    check_init_seed,
    file_identity,
    find_local_weight_file,
    load_state_dict_file,
    parse_weights_spec,
    random_init_identity,
    seeded_init,
    unavailable_message,
)

ARCHS = {
    "vits14": "vit_small_patch14_dinov2",
    "vitb14": "vit_base_patch14_dinov2",
    "vitl14": "vit_large_patch14_dinov2",
    "vitg14": "vit_giant_patch14_dinov2",
}
PRETRAINED_TAG = "lvd142m"
PATCH_SIZE = 14
DEFAULT_IMG_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# DINOv2's interpolate_pos_encoding adds this to the target grid size to avoid a floating-point
# off-by-one in the output size (facebookresearch/dino issue 8).
INTERPOLATE_OFFSET = 0.1


def official_filename(model: str) -> str:
    """File name of the official DINOv2 checkpoint, e.g. ``dinov2_vitl14_pretrain.pth``."""
    return f"dinov2_{model}_pretrain.pth"


def official_url(model: str) -> str:
    """Download URL of the official DINOv2 checkpoint."""
    return f"https://dl.fbaipublicfiles.com/dinov2/dinov2_{model}/{official_filename(model)}"


def resample_pos_embed_dinov2(pos_embed: torch.Tensor, grid: int, num_prefix_tokens: int = 1) -> torch.Tensor:
    """Resample a ``1 x (P + M*M) x D`` position embedding to a ``grid x grid`` patch grid as DINOv2 does.

    Bicubic interpolation (PyTorch's, cubic coefficient -0.75, ``align_corners=False``, no
    antialias) with scale factor ``(grid + 0.1) / M``: output pixel ``i`` samples the source at
    ``(i + 0.5) * M / (grid + 0.1) - 0.5``. The ``P`` prefix (class) tokens are kept as they are.
    Returns ``pos_embed`` unchanged when the grid already matches.
    """
    if pos_embed.ndim != 3 or pos_embed.shape[0] != 1:
        raise ValueError(f"pos_embed must have shape (1, tokens, dim), got {tuple(pos_embed.shape)}")
    num_patches = pos_embed.shape[1] - num_prefix_tokens
    side = int(round(num_patches**0.5))
    if side * side != num_patches:
        raise ValueError(f"pos_embed has {num_patches} patch tokens, not a square grid")
    if side == grid:
        return pos_embed
    dim = pos_embed.shape[2]
    prefix, patches = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    dtype = patches.dtype
    patches = patches.float().reshape(1, side, side, dim).permute(0, 3, 1, 2)
    scale = (grid + INTERPOLATE_OFFSET) / side
    patches = F.interpolate(patches, scale_factor=(scale, scale), mode="bicubic", antialias=False)
    if patches.shape[-2:] != (grid, grid):  # cannot happen for offset 0.1; guards the formula
        raise RuntimeError(f"interpolated grid {tuple(patches.shape[-2:])} != ({grid}, {grid})")
    patches = patches.permute(0, 2, 3, 1).reshape(1, grid * grid, dim).to(dtype)
    return torch.cat([prefix, patches], dim=1)


def load_dinov2_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load an official DINOv2 or timm-format state dict into a timm DINOv2 ``model`` (strict).

    The position embedding is resampled to the model's grid with :func:`resample_pos_embed_dinov2`
    first, so timm's own (antialiased) resampling never runs.
    """
    from timm.models.vision_transformer import checkpoint_filter_fn

    state = dict(state)
    if "register_tokens" in state or "reg_token" in state:
        raise ValueError("DINOv2 checkpoints with register tokens are not supported by the 'dinov2' extractor")
    grid = model.patch_embed.grid_size
    if grid[0] != grid[1]:
        raise ValueError(f"non-square patch grid {grid} is not supported")
    if "pos_embed" in state:
        state["pos_embed"] = resample_pos_embed_dinov2(state["pos_embed"], grid[0], model.num_prefix_tokens)
    state = checkpoint_filter_fn(state, model)
    model.load_state_dict(state, strict=True)


@dataclass(repr=False, eq=False)
class Dinov2Extractor(Extractor):
    """DINOv2 backbone; features are the class token after the final LayerNorm."""

    net: torch.nn.Module | None = None

    def forward(self, batch: torch.Tensor) -> ExtractorOutput:
        tokens = self.net.forward_features(batch)  # B x (1 + N) x D, after the final norm
        return ExtractorOutput(features=tokens[:, 0])

    def _modules(self) -> list[torch.nn.Module]:
        return [self.net]


def _import_timm():
    try:
        import timm
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the 'dinov2' extractor needs timm: pip install timm (or workbench[models])") from exc
    return timm


@register_extractor("dinov2", description="DINOv2 ViT-14 class token via timm (default ViT-L/14, as dgm-eval)")
def create_dinov2(
    weights: str = "default",
    model: str = "vitl14",
    img_size: int = DEFAULT_IMG_SIZE,
    seed: int = 0,
) -> Dinov2Extractor:
    """DINOv2 class-token features (dgm-eval's recommended representation).

    Args:
        weights: ``"default"`` (official file in weights_dir(), else timm's
            ``vit_*_patch14_dinov2.lvd142m`` download), a local checkpoint path, or ``"none"``.
        model: ``"vits14"``, ``"vitb14"``, ``"vitl14"`` (default) or ``"vitg14"``.
        img_size: input side in pixels, a multiple of 14; default 224 as dgm-eval. Other values
            change the features (they are part of the variant); small values keep tests fast.
        seed: seed of the random initialisation when ``weights="none"``.
    """
    timm = _import_timm()
    if model not in ARCHS:
        raise ValueError(f"model must be one of {sorted(ARCHS)}, got {model!r}")
    if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < PATCH_SIZE or img_size % PATCH_SIZE:
        raise ValueError(f"img_size must be a positive multiple of {PATCH_SIZE}, got {img_size!r}")
    seed = check_init_seed(seed)
    spec = parse_weights_spec(weights, extractor="dinov2")
    timm_name = f"{ARCHS[model]}.{PRETRAINED_TAG}"

    state: dict[str, torch.Tensor] | None = None
    if spec.kind == NONE:
        info = WeightsInfo(spec=NONE, pretrained=False, identity=random_init_identity(seed), source="random init")
    elif spec.kind == "file":
        state = load_state_dict_file(spec.path)
        info = WeightsInfo(spec=spec.raw, pretrained=False, identity=file_identity(spec.path), source=str(spec.path))
    else:
        local = find_local_weight_file(official_filename(model))
        if local is not None:
            state, source = load_state_dict_file(local), str(local)
        else:
            try:
                # native 518-pixel model, so that timm does not resample the position embedding
                state = timm.create_model(timm_name, pretrained=True, num_classes=0).state_dict()
            except Exception as exc:  # hub / network errors come in many types
                raise WeightsUnavailableError(
                    unavailable_message("dinov2", official_filename(model), official_url(model))
                    + f" (timm could not load {timm_name} from the Hugging Face hub either:"
                    f" {type(exc).__name__}: {exc})"
                ) from exc
            source = f"timm/{timm_name} (Hugging Face hub)"
        info = WeightsInfo(spec=DEFAULT, pretrained=True, identity=f"dinov2:{model}/{PRETRAINED_TAG}", source=source)

    with seeded_init(seed):
        # layer-scale init 1.0 as DINOv2's own hub constructor (timm's 1e-5 would make a randomly
        # initialised network ignore its input); loaded weights overwrite it either way
        net = timm.create_model(timm_name, pretrained=False, num_classes=0, img_size=img_size, init_values=1.0)
    if state is not None:
        try:
            load_dinov2_state(net, state)
        except (RuntimeError, ValueError, KeyError) as exc:
            detail = " ".join(str(exc).split())[:300]
            raise WeightsError(
                f"weights file {info.source} does not fit extractor 'dinov2' {model} ({type(exc).__name__}: {detail}); "
                "check that it is the DINOv2 checkpoint of this model"
            ) from exc
    net.eval().requires_grad_(False)

    variant = model if img_size == DEFAULT_IMG_SIZE else f"{model}/{img_size}px"
    return Dinov2Extractor(
        name="dinov2",
        variant=variant,
        dim=int(net.num_features),
        weights=info,
        preprocessor=ResizeCropNormalize(
            size=img_size, mean=IMAGENET_MEAN, std=IMAGENET_STD, resize_mode="squash", interpolation="bicubic"
        ),
        feature_layer="class token after the final LayerNorm (x_norm_clstoken), not L2-normalised",
        # the last block's first LayerNorm, as dgm-eval ('blocks.23.norm1' for ViT-L/14): the patch
        # tokens *output* by the last block never reach the class-token feature (zero gradient)
        heatmap_layer=f"blocks.{len(net.blocks) - 1}.norm1",
        net=net,
    )
