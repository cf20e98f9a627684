"""``data2vec``: data2vec-vision ViT-L/16 (Baevski et al., ICML 2022), as dgm-eval's ``data2vec``.

dgm-eval (Stein et al., NeurIPS 2023) runs Hugging Face ``transformers``'
``AutoModel.from_pretrained("facebook/data2vec-vision-large", add_pooling_layer=True)`` with
``AutoImageProcessor.from_pretrained("facebook/data2vec-vision-large")`` and reads
``pooler_output``. That checkpoint is the self-supervised (not fine-tuned) model, converted with
``use_mean_pooling=False``, a relative position bias shared by all layers
(``use_shared_relative_position_bias=True``), no absolute position embedding, layer scale, and
LayerNorm ``eps=1e-12`` (``Data2VecVisionConfig``'s default). So

* feature: ``pooler_output`` = the **class token after the final LayerNorm** (with
  ``use_mean_pooling=False`` the pooler returns ``layernorm(hidden)[:, 0]``), ``D = 1024``; not
  L2-normalised;
* preprocessing: the checkpoint's BEiT image processor (``size=224, do_center_crop=False``):
  resize to 224 x 224 with PIL bicubic on uint8 (aspect not kept, no crop), x/255,
  ``(x - 0.5) / 0.5``. That is the PIL processor of the ``transformers`` of dgm-eval's time
  (``BeitImageProcessorPil`` since transformers 5, whose default ``BeitImageProcessor`` resizes
  with torchvision instead and differs by up to 2 grey levels on a random 40 x 60 image).

The network is BEiT's, which timm builds (``beit_large_patch16_224`` with a shared relative
position bias, no absolute position embedding, no fc-norm); the Hugging Face state dict is
converted to timm's names (``query/key/value`` -> ``qkv`` with ``q_bias``/``v_bias``,
``lambda_1/2`` -> ``gamma_1/2``, ...) and loaded strictly, so ``transformers`` is not needed
(the tests check the forward against ``transformers``' own ``Data2VecVisionModel``).

Weights: ``"default"`` looks for ``data2vec-vision-large/pytorch_model.bin`` (a download of the
Hugging Face repository's file) in :func:`workbench.paths.weights_dir`, else downloads that file
with ``huggingface_hub`` (its cache). A local path may be a Hugging Face state dict (keys
``embeddings.*``/``encoder.*``, optionally prefixed ``data2vec_vision.``) or a timm BEiT state dict.
``"none"``: seeded random init (timm's, layer scale 0.1). Option ``model="vitb16"`` selects
``facebook/data2vec-vision-base`` (768-d).
"""

from __future__ import annotations

import re
from functools import partial

import torch

from .clip import ResizeCropNormalize
from .mae import ClassTokenExtractor
from .published_weights import StateDict, load_checkpoint, load_strict, resolve_weights
from .registry import ExtractorCard, register_extractor
from .weights import WeightsError, check_init_seed, seeded_init

# model -> (Hugging Face repository, width, depth, heads)
ARCHS = {
    "vitl16": ("facebook/data2vec-vision-large", 1024, 24, 16),
    "vitb16": ("facebook/data2vec-vision-base", 768, 12, 12),
}
DEFAULT_MODEL = "vitl16"
HF_FILE = "pytorch_model.bin"
IMG_SIZE, PATCH = 224, 16
LAYER_NORM_EPS = 1e-12  # Data2VecVisionConfig's default, kept by the converted checkpoints
LAYER_SCALE_INIT = 0.1
MEAN = STD = (0.5, 0.5, 0.5)


def local_filename(model: str) -> str:
    """Path of the Hugging Face weights file inside weights_dir(), e.g. ``data2vec-vision-large/pytorch_model.bin``."""
    return f"{ARCHS[model][0].split('/')[1]}/{HF_FILE}"


def data2vec_net(width: int, depth: int, heads: int, mlp_ratio: float = 4.0) -> torch.nn.Module:
    """timm BEiT in data2vec-vision's configuration (shared relative position bias, LayerNorm eps 1e-12)."""
    from timm.models.beit import Beit

    return Beit(
        img_size=IMG_SIZE,
        patch_size=PATCH,
        num_classes=0,
        global_pool="token",
        embed_dim=width,
        depth=depth,
        num_heads=heads,
        mlp_ratio=mlp_ratio,
        qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=LAYER_NORM_EPS),
        init_values=LAYER_SCALE_INIT,
        use_abs_pos_emb=False,
        use_rel_pos_bias=False,
        use_shared_rel_pos_bias=True,
        use_fc_norm=False,
    )


_HF_LAYER = {
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
    "attention.output.dense": "attn.proj",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
}


def convert_data2vec_state(state: StateDict) -> StateDict:
    """Hugging Face ``Data2VecVisionModel`` state dict -> timm ``Beit`` names (timm-format input passes through).

    ``relative_position_index`` buffers, the unused ``mask_token`` and an empty pooler are dropped;
    ``query``/``key``/``value`` become ``qkv.weight`` (rows q, k, v) with ``q_bias`` and ``v_bias``
    (BEiT's key has no bias).
    """
    state = {k.removeprefix("data2vec_vision."): v for k, v in state.items() if "relative_position_index" not in k}
    if not any(k.startswith(("embeddings.", "encoder.")) for k in state):
        return state  # already timm / BEiT names
    out: StateDict = {}
    qkv: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key in ("embeddings.mask_token",):
            continue
        if key == "embeddings.cls_token":
            out["cls_token"] = value
        elif key.startswith("embeddings.patch_embeddings.projection."):
            out["patch_embed.proj." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("encoder.relative_position_bias."):
            out["rel_pos_bias." + key.removeprefix("encoder.relative_position_bias.")] = value
        elif key.startswith("layernorm."):
            out["norm." + key.removeprefix("layernorm.")] = value
        elif m := re.fullmatch(r"encoder\.layer\.(\d+)\.(.+)", key):
            i, rest = int(m.group(1)), m.group(2)
            if m2 := re.fullmatch(r"attention\.attention\.(query|key|value)\.(weight|bias)", rest):
                qkv.setdefault(i, {})[f"{m2.group(1)}.{m2.group(2)}"] = value
                continue
            if rest in ("lambda_1", "lambda_2"):
                out[f"blocks.{i}.gamma_{rest[-1]}"] = value
                continue
            for hf, timm_name in _HF_LAYER.items():
                if rest.startswith(hf + "."):
                    out[f"blocks.{i}.{timm_name}.{rest.removeprefix(hf + '.')}"] = value
                    break
            else:
                out[key] = value  # unknown: strict loading will name it
        else:
            out[key] = value
    for i, parts in qkv.items():
        try:
            out[f"blocks.{i}.attn.qkv.weight"] = torch.cat(
                [parts["query.weight"], parts["key.weight"], parts["value.weight"]]
            )
            out[f"blocks.{i}.attn.q_bias"] = parts["query.bias"]
            out[f"blocks.{i}.attn.v_bias"] = parts["value.bias"]
        except KeyError as exc:
            raise KeyError(f"layer {i} lacks attention parameter {exc.args[0]!r}") from None
        if "key.bias" in parts:
            raise KeyError(f"layer {i} has a key bias, which data2vec-vision / BEiT attention does not have")
    return out


CARD = ExtractorCard(
    default_weights=f"data2vec-vision ViT-L/16 (self-supervised): `{local_filename(DEFAULT_MODEL)}` in the "
    "weights directory, else the Hugging Face download of `facebook/data2vec-vision-large`",
    dim=1024,
    feature="pooler output = class token after the final LayerNorm",
    preprocessing="PIL bicubic to 224x224 (squash, no crop), mean/std 0.5",
    reference="dgm-eval `data2vec`",
)


@register_extractor(
    "data2vec", description="data2vec-vision ViT-L/16 pooled 1024-d via timm BEiT (dgm-eval)", card=CARD
)
def create_data2vec(weights: str = "default", model: str = DEFAULT_MODEL, seed: int = 0) -> ClassTokenExtractor:
    """data2vec-vision features (dgm-eval's ``data2vec`` encoder).

    Args:
        weights: ``"default"`` (``data2vec-vision-large/pytorch_model.bin`` in weights_dir(), else the
            Hugging Face download), a local checkpoint path, or ``"none"``.
        model: ``"vitl16"`` (default, as dgm-eval) or ``"vitb16"``.
        seed: seed of the random initialisation when ``weights="none"``.
    """
    try:
        import timm  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the 'data2vec' extractor needs timm: pip install timm (or workbench[models])") from exc
    if model not in ARCHS:
        raise ValueError(f"model must be one of {sorted(ARCHS)}, got {model!r}")
    seed = check_init_seed(seed)
    repo, width, depth, heads = ARCHS[model]

    def download() -> tuple[StateDict, str]:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(repo, HF_FILE)
        return load_checkpoint(path), f"huggingface.co/{repo} ({HF_FILE})"

    state, info = resolve_weights(
        weights,
        extractor="data2vec",
        filename=local_filename(model),
        url=f"https://huggingface.co/{repo}/resolve/main/{HF_FILE}",
        identity=f"data2vec-vision:{repo}",
        seed=seed,
        download=download,
    )
    with seeded_init(seed):
        net = data2vec_net(width, depth, heads)
    if state is not None:
        try:
            converted = convert_data2vec_state(state)
        except KeyError as exc:
            raise WeightsError(
                f"weights file {info.source} does not fit extractor 'data2vec' ({exc.args[0]}); check that it is "
                f"the data2vec-vision {model} checkpoint ({ARCHS[model][0]})"
            ) from exc
        load_strict(net, converted, source=info.source, extractor="data2vec", what=f"data2vec-vision {model}")
    net.eval().requires_grad_(False)
    return ClassTokenExtractor(
        name="data2vec",
        variant=model,
        dim=width,
        weights=info,
        preprocessor=ResizeCropNormalize(
            size=IMG_SIZE, mean=MEAN, std=STD, resize_mode="squash", interpolation="bicubic"
        ),
        feature_layer="pooler_output: class token after the final LayerNorm (dgm-eval; use_mean_pooling=False), "
        "not L2-normalised",
        heatmap_layer=f"blocks.{depth - 1}.norm1",
        net=net,
    )
