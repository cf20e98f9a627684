"""The dgm-eval zoo (convnext, mae, data2vec, swav, simclr), siglip, and the registry's extractor table.

For each encoder: the preprocessing against dgm-eval's transform (its constants and resize
calls, reimplemented here with torchvision / PIL), strict loading of a randomly initialised
checkpoint in the official layout (written by these tests from an independently built reference
network), and forward equality (atol 1e-5) with that reference (timm / torchvision / transformers
/ open_clip, or for SimCLRv2, which no registry package builds, a functional forward written here
from the converter's key names). Random weights only: no download.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import re
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from workbench.extractors import create_extractor, registry_table
from workbench.extractors.registry import TABLE_BEGIN, TABLE_END, extractor_cards
from workbench.extractors.weights import WeightsError, WeightsUnavailableError

timm = pytest.importorskip("timm")
from torchvision import transforms as T  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
README = Path(__file__).resolve().parents[1] / "README.md"
ZOO = ("convnext", "mae", "data2vec", "swav", "simclr")
# dgm-eval's constants (timm.data.constants / its transforms)
IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)


@functools.lru_cache(maxsize=1)
def real_images() -> tuple[np.ndarray, ...]:
    """Fashion-MNIST mosaics of several sizes and aspect ratios (grey repeated, channels shifted), RGB uint8."""
    with gzip.open(FASHION, "rb") as fh:
        raw = np.frombuffer(fh.read(16 + 200 * 28 * 28), dtype=np.uint8)[16:].reshape(200, 28, 28)

    def mosaic(rows: int, cols: int, start: int = 0) -> np.ndarray:
        g = raw[start : start + rows * cols]
        tiled = g.reshape(rows, cols, 28, 28).transpose(0, 2, 1, 3).reshape(rows * 28, cols * 28)
        return np.stack([tiled, np.roll(tiled, 5, axis=1), 255 - tiled], axis=2).astype(np.uint8)

    return (
        mosaic(1, 1),  # 28 x 28, upsampled
        mosaic(2, 3, start=4),  # 56 x 84, landscape
        mosaic(9, 9, start=10),  # 252 x 252, square, downsampled for 224
        mosaic(12, 9, start=20),  # 336 x 252, portrait
    )


def _batch(ext, images) -> torch.Tensor:
    return torch.from_numpy(np.stack([ext.preprocessor(img) for img in images]))


def _perturb(module: torch.nn.Module, seed: int, scale: float = 0.05) -> None:
    """Add noise to every parameter and BatchNorm statistic, so that no layer is an identity at init
    (layer scales of 1e-6, zero biases, unit norms) and every weight matters to the output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.add_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.mul_(torch.exp(torch.randn(m.running_var.shape, generator=gen) * 0.2))


def _check_heatmap_layer(ext, batch: torch.Tensor) -> None:
    """``heatmap_layer`` names a submodule whose output is a feature map or a token sequence."""
    modules = dict(ext._modules()[0].named_modules())
    assert ext.heatmap_layer in modules, ext.heatmap_layer
    seen = []
    handle = modules[ext.heatmap_layer].register_forward_hook(lambda m, i, o: seen.append(o))
    try:
        ext(batch[:1])
    finally:
        handle.remove()
    assert seen and seen[0].ndim in (3, 4)


# ------------------------------------------------------------------------------------ registry


def test_readme_table_is_the_registry_table():
    text = README.read_text(encoding="utf-8")
    assert text.count(TABLE_BEGIN) == 1 and text.count(TABLE_END) == 1, "README lacks the generated extractor table"
    block = text[text.index(TABLE_BEGIN) : text.index(TABLE_END) + len(TABLE_END)]
    assert block == registry_table(markers=True, builtin_only=True), (
        "README's extractor table is out of date: replace it with `workbench extractors --markdown`"
    )


def test_registry_table_rows_and_cards():
    table = registry_table(builtin_only=True)
    rows = [line for line in table.splitlines()[2:]]
    names = [re.match(r"\| `([^`]+)` \|", row).group(1) for row in rows]
    assert set(names) == {
        "clip",
        "convnext",
        "data2vec",
        "dinov2",
        "inception",
        "mae",
        "pixels",
        "siglip",
        "simclr",
        "swav",
    }
    cards = extractor_cards()
    for name, row in zip(names, rows):
        card = cards[name]
        assert card is not None and f"| {card.dim} |" in row
    # the table tells the truth about CLIP's defaults (issue 15): datacomp tag, 1024-d pre-projection
    clip_row = rows[names.index("clip")]
    assert "datacomp_xl_s13b_b90k" in clip_row and "| 1024 |" in clip_row and "openai`" not in clip_row
    from workbench.extractors.clip import DEFAULT_PRETRAINED

    assert DEFAULT_PRETRAINED == "datacomp_xl_s13b_b90k"
    # every row has the same number of cells (no unescaped '|')
    assert len({row.count(" | ") for row in rows}) == 1


def test_registry_table_plugin_without_card_shows_description():
    from workbench.extractors import registry as reg

    def factory(weights: str = "default"):
        raise AssertionError("not called")

    reg.register_extractor("zz-test-plugin", factory, description="a plug-in without card")
    try:
        assert "| `zz-test-plugin` | a plug-in without card |" in reg.registry_table()
        assert "zz-test-plugin" not in reg.registry_table(builtin_only=True)  # defined outside workbench.extractors
        with pytest.raises(TypeError, match="ExtractorCard"):
            reg.set_extractor_card("zz-test-plugin", {"dim": 3})
        with pytest.raises(KeyError, match="no extractor named"):
            reg.set_extractor_card("zz-no-such", reg.extractor_cards()["pixels"])
    finally:
        reg._REGISTRY.pop("zz-test-plugin", None)


def test_cli_extractors_markdown(capsys):
    from workbench.cli import main

    assert main(["extractors", "--markdown"]) == 0
    assert capsys.readouterr().out.strip() == registry_table(markers=True, builtin_only=True)


@pytest.mark.parametrize("name", ["swav", "simclr", "pixels"])
def test_card_matches_the_default_extractor(name):
    """Each card's D and the extractor built with default options (random weights) agree (the ViT-L /
    ConvNeXt-L ones are built in test_real_widths_load_the_official_layout)."""
    card = extractor_cards()[name]
    ext = create_extractor(name, weights="none", device="cpu")
    assert ext.dim == card.dim
    assert ext.weights.pretrained is False and ext.weights.identity in ("random-init(seed=0)", "no-weights")


def test_dinov2_card_matches_timm():
    with torch.device("meta"):  # no memory, no initialisation
        net = timm.create_model("vit_large_patch14_dinov2", num_classes=0)
    assert net.num_features == extractor_cards()["dinov2"].dim == 1024


def test_cards_of_open_clip_models_match_their_configs():
    open_clip = pytest.importorskip("open_clip")
    cards = extractor_cards()
    assert open_clip.get_model_config("ViT-L-14")["vision_cfg"]["width"] == cards["clip"].dim
    assert open_clip.get_model_config("ViT-SO400M-14-SigLIP")["embed_dim"] == cards["siglip"].dim
    cfg = open_clip.get_pretrained_cfg("ViT-SO400M-14-SigLIP", "webli")
    assert cfg["resize_mode"] == "squash" and tuple(cfg["mean"]) == (0.5, 0.5, 0.5) == tuple(cfg["std"])
    # the SO400M trunk open_clip builds (timm, MAP pooling, no projection) gives 1152-d, built on the meta device
    vision = open_clip.get_model_config("ViT-SO400M-14-SigLIP")["vision_cfg"]
    with torch.device("meta"):
        trunk = timm.create_model(vision["timm_model_name"], num_classes=0, global_pool=vision["timm_pool"])
    assert trunk.num_features == cards["siglip"].dim and vision["timm_proj"] == "none"
    assert len(trunk.blocks) == 27  # heatmap_layer trunk.blocks.26.norm1


# ------------------------------------------------------------------------- dgm-eval preprocessing


def _to_tensor_normalize(mean, std):
    return [T.ToTensor(), T.Normalize(np.array(mean), np.array(std))]


@pytest.fixture(scope="module")
def small_extractors():
    return {
        "convnext": create_extractor("convnext", weights="none", arch="convnext_atto", device="cpu"),
        "swav": create_extractor("swav", weights="none", device="cpu"),
        "simclr": create_extractor("simclr", weights="none", device="cpu"),
    }


def test_convnext_preprocessing_equals_dgm_eval(small_extractors):
    """ConvNeXTEncoder.build_transform at 224: Resize(256, BICUBIC), CenterCrop(224), ToTensor, Normalize."""
    reference = T.Compose(
        [
            T.Resize(256, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(224),
            *_to_tensor_normalize(IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD),
        ]
    )
    pre = small_extractors["convnext"].preprocessor
    for img in real_images():
        got = pre(img)
        assert got.shape == (3, 224, 224) and got.dtype == np.float32
        np.testing.assert_allclose(got, reference(Image.fromarray(img)).numpy(), rtol=0, atol=1e-6)
    desc = pre.describe()
    assert desc["size"] == 224 and "256" in desc["resize"] and desc["crop"] == "center 224x224"


def _dgm_eval_pil_resize(img: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """dgm-eval resizer.pil_resize: per-channel float 'F' bicubic, clip to [0, 255], to_tensor / 255."""
    x = np.array(img.convert("RGB")).astype(np.float32)
    channels = []
    for c in range(3):
        resized = Image.fromarray(x[:, :, c]).resize(size, resample=Image.BICUBIC)
        channels.append(np.asarray(resized).clip(0, 255).reshape(size[1], size[0], 1))
    return T.functional.to_tensor(np.concatenate(channels, axis=2).astype(np.float32)) / 255


def test_mae_preprocessing_equals_dgm_eval_clean_resize():
    from workbench.extractors.imagenet_transforms import CleanSquashResize
    from workbench.extractors.mae import IMG_SIZE

    normalize = T.Normalize(np.array(IMAGENET_DEFAULT_MEAN), np.array(IMAGENET_DEFAULT_STD))
    pre = CleanSquashResize(IMG_SIZE)
    assert (pre.mean, pre.std) == (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)
    for img in real_images():
        expected = normalize(_dgm_eval_pil_resize(Image.fromarray(img), (224, 224))).numpy()
        np.testing.assert_allclose(pre(img), expected, rtol=0, atol=1e-6)
    # dgm-eval's non-clean branch cannot run: torchvision.transforms has no resize / to_tensor
    assert not hasattr(T, "resize") and not hasattr(T, "to_tensor")


@pytest.mark.parametrize("name", ["swav", "simclr"])
def test_resnet_preprocessing_equals_dgm_eval(small_extractors, name):
    """Resize(224) (bilinear), ToTensor, Normalize; the extractor then center-crops non-square images."""
    reference = T.Compose([T.Resize(224), *_to_tensor_normalize(IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)])
    pre = small_extractors[name].preprocessor
    for img in real_images():
        expected = reference(Image.fromarray(img))
        if img.shape[0] == img.shape[1]:
            assert tuple(expected.shape) == (3, 224, 224)  # square: dgm-eval's own tensor, no crop involved
        np.testing.assert_allclose(pre(img), T.CenterCrop(224)(expected).numpy(), rtol=0, atol=1e-6)
    assert "bilinear" in pre.describe()["resize"]


@pytest.mark.peers
def test_data2vec_preprocessing_equals_hf_image_processor():
    """The checkpoint's processor: BeitImageProcessor(size=224, do_center_crop=False), PIL backend."""
    pytest.importorskip("transformers")
    try:
        from transformers.models.beit.image_processing_pil_beit import BeitImageProcessorPil as Processor
    except ImportError:  # transformers < 5: the default processor is the PIL one
        from transformers import BeitImageProcessor as Processor
    from workbench.extractors.clip import ResizeCropNormalize
    from workbench.extractors.data2vec import IMG_SIZE, MEAN, STD

    processor = Processor(size={"height": 224, "width": 224}, do_center_crop=False)
    assert tuple(processor.image_mean) == MEAN and tuple(processor.image_std) == STD
    ours = ResizeCropNormalize(size=IMG_SIZE, mean=MEAN, std=STD, resize_mode="squash", interpolation="bicubic")
    for img in real_images():
        expected = processor(Image.fromarray(img), return_tensors="pt")["pixel_values"][0].numpy()
        np.testing.assert_allclose(ours(img), expected, rtol=0, atol=1e-6)


@pytest.mark.peers
def test_siglip_preprocessing_equals_open_clip():
    open_clip = pytest.importorskip("open_clip")
    from workbench.extractors.clip import ResizeCropNormalize

    cfg = open_clip.get_pretrained_cfg("ViT-SO400M-14-SigLIP", "webli")
    reference = open_clip.image_transform(
        224,
        is_train=False,
        mean=cfg["mean"],
        std=cfg["std"],
        interpolation=cfg["interpolation"],
        resize_mode=cfg["resize_mode"],
    )
    ours = ResizeCropNormalize(224, mean=cfg["mean"], std=cfg["std"], resize_mode="squash", interpolation="bicubic")
    for img in real_images():
        np.testing.assert_allclose(ours(img), reference(Image.fromarray(img)).numpy(), rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------- ConvNeXt


def timm_to_official_convnext(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm ConvNeXt names -> the ConvNeXt repository's (facebookresearch/ConvNeXt) checkpoint names."""
    out = {}
    for key, value in state.items():
        key = key.replace("stem.", "downsample_layers.0.")
        key = re.sub(r"stages\.(\d+)\.downsample\.", r"downsample_layers.\1.", key)
        key = re.sub(r"stages\.(\d+)\.blocks\.(\d+)\.", r"stages.\1.\2.", key)
        key = key.replace("conv_dw", "dwconv").replace("mlp.fc1", "pwconv1").replace("mlp.fc2", "pwconv2")
        key = key.replace("head.norm.", "norm.").replace("head.fc.", "head.")
        out[key] = value
    return out


def _dgm_eval_convnext_forward(model, x):
    """dgm-eval ConvNeXTEncoder.forward: forward_features, head.global_pool, head.norm, head.flatten."""
    out = model.forward_features(x)
    return model.head.flatten(model.head.norm(model.head.global_pool(out)))


@pytest.mark.slow
def test_convnext_official_checkpoint_and_forward(tmp_path):
    torch.manual_seed(1)
    reference = timm.create_model("convnext_atto", pretrained=False, num_classes=11).eval()
    _perturb(reference, seed=1)
    official = timm_to_official_convnext(reference.state_dict())
    assert {"downsample_layers.0.0.weight", "stages.3.1.dwconv.weight", "norm.weight", "head.weight"} <= set(official)
    path = tmp_path / "convnext_atto_official.pth"
    torch.save({"model": official}, path)

    ext = create_extractor("convnext", weights=str(path), arch="convnext_atto", device="cpu")
    assert ext.weights.identity == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert ext.weights.pretrained is False and ext.dim == 320
    batch = _batch(ext, real_images())
    with torch.no_grad():
        expected = _dgm_eval_convnext_forward(reference, batch)
    got = ext(batch).features
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=0, atol=1e-5)
    assert (got[0] - got[1]).abs().max() > 1e-2  # depends on the image
    # a timm-format state dict of the same network loads as well
    timm_path = tmp_path / "convnext_atto_timm.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(timm_path))
    ext2 = create_extractor("convnext", weights=str(timm_path), arch="convnext_atto", device="cpu")
    np.testing.assert_allclose(ext2(batch).features.numpy(), expected.numpy(), rtol=0, atol=1e-5)
    _check_heatmap_layer(ext, batch)
    assert ext.heatmap_layer == "stages.3"


# ------------------------------------------------------------------------------------------ MAE


def _dgm_eval_mae(embed_dim: int, depth: int, heads: int):
    """dgm-eval mae.vit_large_patch16's constructor (with the given widths) on timm's VisionTransformer."""
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(
        patch_size=16,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=heads,
        mlp_ratio=4,
        qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
    )


def _dgm_eval_mae_forward(model, x):
    """dgm-eval VisionTransformer.forward_features with global_pool=False, transcribed."""
    x = model.patch_embed(x)
    x = torch.cat((model.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + model.pos_embed
    for blk in model.blocks:
        x = blk(x)
    return model.norm(x)[:, 0]


@pytest.mark.slow
def test_mae_official_checkpoint_and_forward(tmp_path, monkeypatch):
    torch.manual_seed(2)
    reference = _dgm_eval_mae(768, 12, 12).eval()  # ViT-B/16: the smaller official MAE encoder
    _perturb(reference, seed=2, scale=0.02)
    state = {k: v for k, v in reference.state_dict().items() if not k.startswith("head.")}
    wdir = tmp_path / "weights"
    wdir.mkdir()
    torch.save({"model": state}, wdir / "mae_pretrain_vit_base.pth")  # the official pre-training file layout
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(wdir))

    ext = create_extractor("mae", weights="default", model="vitb16", device="cpu")
    assert ext.weights.pretrained is True and ext.weights.identity == "mae:vit-base/pretrain"
    assert ext.weights.source == str(wdir / "mae_pretrain_vit_base.pth") and ext.dim == 768
    batch = _batch(ext, real_images()[:2])
    with torch.no_grad():
        expected = _dgm_eval_mae_forward(reference, batch)
    np.testing.assert_allclose(ext(batch).features.numpy(), expected.numpy(), rtol=0, atol=1e-5)
    _check_heatmap_layer(ext, batch)
    assert ext.heatmap_layer == "blocks.11.norm1"


# ------------------------------------------------------------------------------------- data2vec


def _hf_data2vec_config(width: int, depth: int, heads: int):
    """The configuration of facebook/data2vec-vision-* (transformers' converter, not fine-tuned)."""
    from transformers import Data2VecVisionConfig

    return Data2VecVisionConfig(
        hidden_size=width,
        num_hidden_layers=depth,
        num_attention_heads=heads,
        intermediate_size=4 * width,
        use_relative_position_bias=False,
        use_shared_relative_position_bias=True,
        use_mean_pooling=False,
        use_absolute_position_embeddings=False,
    )


@pytest.mark.peers
def test_data2vec_conversion_against_transformers_tiny():
    pytest.importorskip("transformers")
    from transformers import Data2VecVisionModel

    from workbench.extractors.data2vec import convert_data2vec_state, data2vec_net

    torch.manual_seed(3)
    hf = Data2VecVisionModel(_hf_data2vec_config(64, 2, 4), add_pooling_layer=True).eval()
    _perturb(hf, seed=3, scale=0.1)
    net = data2vec_net(64, 2, 4).eval()
    net.load_state_dict(convert_data2vec_state(hf.state_dict()), strict=True)
    x = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = hf(x, return_dict=True).pooler_output
        got = net.forward_features(x)[:, 0]
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=0, atol=1e-5)
    assert expected.abs().mean() > 0.1
    # a key bias (not BEiT) is refused
    bad = dict(hf.state_dict())
    bad["encoder.layer.0.attention.attention.key.bias"] = torch.zeros(64)
    with pytest.raises(KeyError, match="key bias"):
        convert_data2vec_state(bad)


@pytest.mark.slow
@pytest.mark.peers
def test_data2vec_hf_checkpoint_file_and_forward(tmp_path):
    pytest.importorskip("transformers")
    from transformers import Data2VecVisionModel

    torch.manual_seed(4)
    hf = Data2VecVisionModel(_hf_data2vec_config(768, 12, 12), add_pooling_layer=True).eval()  # data2vec-vision-base
    _perturb(hf, seed=4, scale=0.02)
    path = tmp_path / "pytorch_model.bin"
    torch.save(hf.state_dict(), path)
    ext = create_extractor("data2vec", weights=str(path), model="vitb16", device="cpu")
    batch = _batch(ext, real_images()[:2])
    with torch.no_grad():
        expected = hf(batch, return_dict=True).pooler_output  # dgm-eval's HuggingFaceTransformer.forward
    np.testing.assert_allclose(ext(batch).features.numpy(), expected.numpy(), rtol=0, atol=1e-5)
    assert ext.dim == 768 and ext.heatmap_layer == "blocks.11.norm1"
    _check_heatmap_layer(ext, batch)


_TIMM_TO_HF_LAYER = {
    "norm1": "layernorm_before",
    "norm2": "layernorm_after",
    "attn.proj": "attention.output.dense",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
}


def timm_to_hf_data2vec(state: dict[str, torch.Tensor], width: int) -> dict[str, torch.Tensor]:
    """timm BEiT names -> transformers' Data2VecVisionModel names (the inverse of transformers' converter)."""
    out = {}
    for key, value in state.items():
        if "relative_position_index" in key or key.endswith("k_bias"):
            continue
        if key == "cls_token":
            out["embeddings.cls_token"] = value
        elif key.startswith("patch_embed.proj."):
            out["embeddings.patch_embeddings.projection." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("rel_pos_bias."):
            out["encoder.relative_position_bias." + key.removeprefix("rel_pos_bias.")] = value
        elif key.startswith("norm."):
            out["layernorm." + key.removeprefix("norm.")] = value
        else:
            i, rest = re.fullmatch(r"blocks\.(\d+)\.(.+)", key).groups()
            p = f"encoder.layer.{i}."
            if rest == "attn.qkv.weight":
                q, k, v = value.split(width)
                out.update({p + "attention.attention.query.weight": q, p + "attention.attention.key.weight": k})
                out[p + "attention.attention.value.weight"] = v
            elif rest in ("attn.q_bias", "attn.v_bias"):
                out[p + f"attention.attention.{'query' if rest[5] == 'q' else 'value'}.bias"] = value
            elif rest in ("gamma_1", "gamma_2"):
                out[p + "lambda_" + rest[-1]] = value
            else:
                module, param = rest.rsplit(".", 1)
                out[p + _TIMM_TO_HF_LAYER[module] + "." + param] = value
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["convnext", "mae", "data2vec"])
def test_real_widths_load_the_official_layout(name):
    """At the default widths (ConvNeXt-L, ViT-L/16 x2): D is the card's, and the network's weights written
    in the official layout load back strictly and give the same features (one image)."""
    from workbench.extractors.convnext import convert_convnext_state
    from workbench.extractors.data2vec import convert_data2vec_state
    from workbench.extractors.published_weights import load_strict

    ext = create_extractor(name, weights="none", device="cpu")
    assert ext.dim == extractor_cards()[name].dim
    net = ext._modules()[0]
    batch = _batch(ext, real_images()[2:3])
    before = ext(batch).features
    state = {k: v.clone() for k, v in net.state_dict().items()}
    if name == "convnext":
        official = timm_to_official_convnext(state)
        official.update({"head.weight": torch.randn(21841, 1536), "head.bias": torch.zeros(21841)})
        assert "stages.2.26.pwconv1.weight" in official and official["norm.weight"].shape == (1536,)  # 3-3-27-3 blocks
        converted = convert_convnext_state(official, net)
    elif name == "mae":
        with torch.device("meta"):
            reference = _dgm_eval_mae(1024, 24, 16)  # dgm-eval's vit_large_patch16
        expected = {k: tuple(v.shape) for k, v in reference.state_dict().items() if not k.startswith("head.")}
        assert {k: tuple(v.shape) for k, v in state.items()} == expected
        converted = state
    else:
        official = timm_to_hf_data2vec(state, 1024)
        transformers = pytest.importorskip("transformers")
        with torch.device("meta"):
            hf = transformers.Data2VecVisionModel(_hf_data2vec_config(1024, 24, 16), add_pooling_layer=True)
        expected = {k: tuple(v.shape) for k, v in hf.state_dict().items() if "relative_position_index" not in k}
        assert {k: tuple(v.shape) for k, v in official.items()} == expected
        converted = convert_data2vec_state(official)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    load_strict(net, converted, source="(test)", extractor=name, what=name)
    after = ext(batch).features
    assert after.shape == (1, ext.dim) and torch.isfinite(after).all()
    np.testing.assert_array_equal(after.numpy(), before.numpy())


# ----------------------------------------------------------------------------------------- SwAV


def _dgm_eval_swav_forward(model, x):
    """dgm-eval swav.ResNet.forward_backbone: ConstantPad2d(1) then conv1 with padding 2, ..., avgpool."""
    x = F.conv2d(F.pad(x, (1, 1, 1, 1)), model.conv1.weight, stride=2, padding=2)
    x = model.maxpool(model.act1(model.bn1(x)))
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        x = layer(x)
    return x.mean(dim=(2, 3))


def _swav_official_state(trunk: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """The layout of swav_800ep_pretrain.pth.tar: DataParallel 'module.' keys, projection head 2048-2048-128
    (Linear, BatchNorm1d, ReLU, Linear) and 3000 prototypes."""
    gen = torch.Generator().manual_seed(seed)
    state = {f"module.{k}": v for k, v in trunk.items() if not k.startswith("fc.")}
    head = {
        "projection_head.0.weight": (2048, 2048),
        "projection_head.0.bias": (2048,),
        "projection_head.1.weight": (2048,),
        "projection_head.1.bias": (2048,),
        "projection_head.1.running_mean": (2048,),
        "projection_head.1.running_var": (2048,),
        "projection_head.3.weight": (128, 2048),
        "projection_head.3.bias": (128,),
        "prototypes.weight": (3000, 128),
    }
    state.update({f"module.{k}": torch.randn(shape, generator=gen) for k, shape in head.items()})
    state["module.projection_head.1.num_batches_tracked"] = torch.tensor(0)
    return state


@pytest.mark.slow
def test_swav_official_checkpoint_and_forward(tmp_path, monkeypatch):
    torch.manual_seed(5)
    reference = timm.create_model("resnet50", pretrained=False, num_classes=1000).eval()  # same names as torchvision
    _perturb(reference, seed=5, scale=0.02)
    wdir = tmp_path / "weights"
    wdir.mkdir()
    torch.save(_swav_official_state(reference.state_dict(), seed=5), wdir / "swav_800ep_pretrain.pth.tar")
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(wdir))

    ext = create_extractor("swav", weights="default", device="cpu")
    assert ext.weights.pretrained is True and ext.weights.identity == "swav:resnet50/800ep" and ext.dim == 2048
    batch = _batch(ext, real_images()[:3])
    with torch.no_grad():
        expected = _dgm_eval_swav_forward(reference, batch)
    got = ext(batch).features
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=0, atol=1e-5 * max(1.0, float(expected.abs().max())))
    assert (got[0] - got[1]).abs().max() > 1e-3
    _check_heatmap_layer(ext, batch)


# --------------------------------------------------------------------------------------- SimCLR


def _bn(state, prefix, x, eps=1e-5):
    return F.batch_norm(
        x,
        state[f"{prefix}.running_mean"],
        state[f"{prefix}.running_var"],
        state[f"{prefix}.weight"],
        state[f"{prefix}.bias"],
        False,
        0.0,
        eps,
    )


def _simclr_reference_forward(state: dict[str, torch.Tensor], x: torch.Tensor, layers=(3, 4, 6, 3)) -> torch.Tensor:
    """SimCLRv2 r50_1x_sk1 as the Separius converter's modules compute it, written as functions of the
    state dict (stem 3x3 s2 / 3x3 / 3x3 convs; SK bottlenecks; ResNet-D shortcuts pooling even at stride 1)."""
    s = state

    def conv(name, x, stride=1):
        w = s[f"{name}.weight"]
        return F.conv2d(x, w, stride=stride, padding=(w.shape[-1] - 1) // 2)

    x = F.relu(_bn(s, "net.0.1.0", conv("net.0.0", x, 2)))
    x = F.relu(_bn(s, "net.0.3.0", conv("net.0.2", x)))
    x = F.relu(_bn(s, "net.0.5.0", conv("net.0.4", x)))
    x = F.max_pool2d(x, 3, 2, 1)
    for stage, n in enumerate(layers, start=1):
        for b in range(n):
            p = f"net.{stage}.blocks.{b}"
            stride = 2 if (b == 0 and stage > 1) else 1
            if b == 0:
                sc = F.avg_pool2d(F.pad(x, (0, 1, 0, 1)), 2, stride)
                sc = _bn(s, f"{p}.projection.bn.0", conv(f"{p}.projection.shortcut.2", sc))
            else:
                sc = x
            h = F.relu(_bn(s, f"{p}.net.1.0", conv(f"{p}.net.0", x)))
            # selective kernel
            both = F.relu(_bn(s, f"{p}.net.2.main_conv.1.0", conv(f"{p}.net.2.main_conv.0", h, stride)))
            c = both.shape[1] // 2
            g = (both[:, :c] + both[:, c:]).mean(dim=(2, 3), keepdim=True)
            m = F.relu(_bn(s, f"{p}.net.2.mixing_conv.1.0", conv(f"{p}.net.2.mixing_conv.0", g)))
            m = conv(f"{p}.net.2.mixing_conv.2", m)
            a = torch.softmax(torch.stack([m[:, :c], m[:, c:]]), dim=0)
            h = a[0] * both[:, :c] + a[1] * both[:, c:]
            h = _bn(s, f"{p}.net.4.0", conv(f"{p}.net.3", h))
            x = F.relu(sc + h)
    return x.mean(dim=(2, 3))


def test_simclr_state_dict_has_the_converter_layout():
    from workbench.extractors.simclr import SimCLRv2ResNet

    state = SimCLRv2ResNet(50, 1, True).state_dict()
    expected_shapes = {
        "net.0.0.weight": (32, 3, 3, 3),  # ResNet-D stem
        "net.0.2.weight": (32, 32, 3, 3),
        "net.0.4.weight": (64, 32, 3, 3),
        "net.0.5.0.running_var": (64,),
        "net.1.blocks.0.projection.shortcut.2.weight": (256, 64, 1, 1),
        "net.1.blocks.0.projection.bn.0.weight": (256,),
        "net.1.blocks.0.net.0.weight": (64, 64, 1, 1),
        "net.1.blocks.0.net.2.main_conv.0.weight": (128, 64, 3, 3),
        "net.1.blocks.0.net.2.mixing_conv.0.weight": (32, 64, 1, 1),  # max(int(64 * 0.0625), 32)
        "net.1.blocks.0.net.2.mixing_conv.2.weight": (128, 32, 1, 1),
        "net.1.blocks.0.net.3.weight": (256, 64, 1, 1),
        "net.4.blocks.2.net.2.main_conv.0.weight": (1024, 512, 3, 3),
        "net.4.blocks.2.net.2.mixing_conv.0.weight": (32, 512, 1, 1),
        "net.4.blocks.2.net.4.0.weight": (2048,),
        "fc.weight": (1000, 2048),
    }
    for key, shape in expected_shapes.items():
        assert tuple(state[key].shape) == shape, key
    assert not any(k.startswith("net.1.blocks.1.projection") for k in state)  # only first blocks project
    assert len([k for k in state if re.fullmatch(r"net\.\d\.blocks\.\d+\.net\.0\.weight", k)]) == 16

    # trunk sizes (without fc) against SimCLRv2's Table 1 (Chen et al. 2020b): R50 1x 24M, +SK 35M, R152 3x+SK 795M
    def trunk_params(depth, width, sk):
        with torch.device("meta"):
            net = SimCLRv2ResNet(depth, width, sk)
        return sum(p.numel() for n, p in net.named_parameters() if not n.startswith("fc."))

    assert round(trunk_params(50, 1, False) / 1e6) == 24
    assert round(trunk_params(50, 1, True) / 1e6) == 35
    assert round(trunk_params(152, 3, True) / 1e6) == 795


@pytest.mark.slow
def test_simclr_converter_checkpoint_and_forward(tmp_path, monkeypatch):
    from workbench.extractors.simclr import SimCLRv2ResNet

    torch.manual_seed(6)
    source = SimCLRv2ResNet(50, 1, True)
    _perturb(source, seed=6, scale=0.02)
    state = {k: v.clone() for k, v in source.state_dict().items()}
    del source
    wdir = tmp_path / "weights"
    wdir.mkdir()
    head = {"layers.0.weight": torch.randn(2048, 2048), "layers.1.weight": torch.ones(2048)}  # unused by features
    torch.save({"resnet": state, "head": head}, wdir / "r50_1x_sk1.pth")  # convert.py's output layout
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(wdir))

    ext = create_extractor("simclr", weights="default", device="cpu")
    assert ext.weights.pretrained is True and ext.weights.identity == "simclrv2:r50_1x_sk1" and ext.dim == 2048
    batch = _batch(ext, real_images()[:2])
    with torch.no_grad():
        expected = _simclr_reference_forward(state, batch)
    got = ext(batch).features
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=0, atol=1e-5 * max(1.0, float(expected.abs().max())))
    assert (got[0] - got[1]).abs().max() > 1e-3
    _check_heatmap_layer(ext, batch)


# --------------------------------------------------------------------------------------- SigLIP


@pytest.fixture(scope="module")
def tiny_siglip_config(tmp_path_factory) -> str:
    """A tiny SigLIP-style open_clip model (timm test ViT trunk, MAP pooling, no projection)."""
    import json

    open_clip = pytest.importorskip("open_clip")
    name = "workbench-test-tiny-siglip"
    cfg = {
        "embed_dim": 64,
        "init_logit_bias": -10,
        "custom_text": True,
        "vision_cfg": {
            "image_size": 160,
            "timm_model_name": "test_vit",
            "timm_model_pretrained": False,
            "timm_pool": "map",
            "timm_proj": "none",
        },
        "text_cfg": {
            "context_length": 16,
            "vocab_size": 1000,
            "width": 64,
            "heads": 2,
            "layers": 1,
            "no_causal_mask": True,
            "proj_bias": True,
            "pool_type": "last",
        },
    }
    path = tmp_path_factory.mktemp("siglipcfg") / f"{name}.json"
    path.write_text(json.dumps(cfg))
    open_clip.add_model_config(path)
    return name


@pytest.mark.slow
@pytest.mark.peers
def test_siglip_features_equal_open_clip_encode_image(tiny_siglip_config):
    import open_clip

    ext = create_extractor("siglip", weights="none", model=tiny_siglip_config, device="cpu")
    torch.manual_seed(0)  # the extractor's "none" init is open_clip's init under seed 0
    model = open_clip.create_model(tiny_siglip_config, pretrained=None).eval()
    batch = _batch(ext, real_images())
    with torch.no_grad():
        expected = model.encode_image(batch)
    got = ext(batch).features
    assert ext.dim == 64 and got.shape == (4, 64)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=0, atol=1e-5)
    assert not np.allclose(got.norm(dim=1).numpy(), 1.0, atol=1e-3)  # not L2-normalised
    assert ext.weights.pretrained is False and ext.heatmap_layer == "trunk.blocks.5.norm1"
    _check_heatmap_layer(ext, batch)
    with pytest.raises(ValueError, match="not an open_clip SigLIP model"):
        create_extractor("siglip", weights="none", model="ViT-B-16", device="cpu")


# ----------------------------------------------------------------------------- weights and errors


@pytest.mark.parametrize(
    ("name", "filename"),
    [
        ("mae", "mae_pretrain_vit_large.pth"),
        ("swav", "swav_800ep_pretrain.pth.tar"),
        ("simclr", "r50_1x_sk1.pth"),
        ("convnext", "convnext_large_22k_224.pth"),
        ("data2vec", "data2vec-vision-large/pytorch_model.bin"),
    ],
)
def test_default_weights_unavailable_names_the_file(name, filename, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(tmp_path / "weights"))

    def offline(*args, **kwargs):
        if kwargs.get("pretrained") or name == "data2vec":
            raise OSError("offline (test)")
        return real_create_model(*args, **kwargs)

    real_create_model = timm.create_model
    monkeypatch.setattr(timm, "create_model", offline)
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(WeightsUnavailableError) as err:
        create_extractor(name, weights="default", device="cpu")
    msg = str(err.value)
    assert filename in msg and str(tmp_path / "weights") in msg and "weights=" in msg
    if name in ("convnext", "data2vec"):
        assert "offline (test)" in msg  # the library download was tried and its error is shown


def test_wrong_checkpoint_is_a_weights_error_naming_the_file(tmp_path):
    path = tmp_path / "not_simclr.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, path)
    for name in ("simclr", "swav"):
        with pytest.raises(WeightsError, match=re.escape(str(path))):
            create_extractor(name, weights=str(path), device="cpu")
    nested = tmp_path / "nested.pth"
    torch.save({"something": {"a": torch.zeros(1)}}, nested)
    with pytest.raises(WeightsError, match="does not hold a state dict"):
        create_extractor("simclr", weights=str(nested), device="cpu")


def test_option_errors():
    with pytest.raises(ValueError, match="arch must be a timm ConvNeXt"):
        create_extractor("convnext", weights="none", arch="resnet50", device="cpu")
    with pytest.raises(ValueError, match="model must be one of"):
        create_extractor("mae", weights="none", model="vitl14", device="cpu")
    with pytest.raises(ValueError, match="model must be one of"):
        create_extractor("data2vec", weights="none", model="vith14", device="cpu")
    with pytest.raises(ValueError, match="depth must be one of"):
        create_extractor("simclr", weights="none", depth=34, device="cpu")
    with pytest.raises(ValueError, match="has no option"):
        create_extractor("swav", weights="none", arch="resnet101", device="cpu")
