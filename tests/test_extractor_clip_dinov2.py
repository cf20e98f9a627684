"""CLIP (open_clip) and DINOv2 (timm) extractors: preprocessing against the peers' transforms,
features against the peers' own forward passes, weight handling. Random weights only (no download).

Real images: Fashion-MNIST test images (idx format) tiled into mosaics of several sizes, and
scikit-learn's digits; grayscale repeated to RGB.
"""

from __future__ import annotations

import copy
import functools
import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.extractors import create_extractor
from workbench.extractors.clip import ResizeCropNormalize
from workbench.extractors.dinov2 import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    official_filename,
    official_url,
    resample_pos_embed_dinov2,
)
from workbench.extractors.weights import WeightsUnavailableError

open_clip = pytest.importorskip("open_clip")
timm = pytest.importorskip("timm")
from torchvision import transforms as T  # noqa: E402

pytestmark = pytest.mark.slow  # extractor tests; the open_clip comparisons are also marked peers

FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


def fashion_gray(n: int) -> np.ndarray:
    with gzip.open(FASHION, "rb") as fh:
        raw = np.frombuffer(fh.read(16 + n * 28 * 28), dtype=np.uint8)
    return raw[16:].reshape(n, 28, 28)


def mosaic(rows: int, cols: int, start: int = 0) -> np.ndarray:
    """A ``28*rows x 28*cols x 3`` RGB image tiled from Fashion-MNIST images, channels shifted apart."""
    g = fashion_gray(start + rows * cols)[start:]
    tiled = g.reshape(rows, cols, 28, 28).transpose(0, 2, 1, 3).reshape(rows * 28, cols * 28)
    return np.stack([tiled, np.roll(tiled, 5, axis=1), 255 - tiled], axis=2).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def real_images() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits

    digit = np.round(load_digits().images[3] * (255 / 16)).astype(np.uint8)
    digit = np.repeat(np.kron(digit, np.ones((5, 5), dtype=np.uint8))[..., None], 3, axis=2)
    return (
        mosaic(1, 1),  # 28 x 28, upsampled
        mosaic(1, 1, start=3)[:, 4:24],  # 28 x 20, portrait
        mosaic(2, 3),  # 56 x 84, landscape
        mosaic(9, 11),  # 252 x 308, downsampled
        mosaic(12, 9, start=7),  # 336 x 252, portrait, downsampled
        digit,  # 40 x 40
    )


# ----------------------------------------------------------------------------------------- CLIP


def _batch(ext, images):
    return torch.from_numpy(np.stack([ext.preprocessor(img) for img in images]))


@pytest.mark.peers
@pytest.mark.parametrize("resize_mode", ["shortest", "squash"])
def test_clip_preprocessing_equals_open_clip_transform(resize_mode):
    """Our transform == open_clip's eval transform for ViT-L-14 / datacomp_xl_s13b_b90k (tol 1e-6)."""
    cfg = open_clip.get_pretrained_cfg("ViT-L-14", "datacomp_xl_s13b_b90k")
    reference = open_clip.image_transform(
        224,
        is_train=False,
        mean=cfg["mean"],
        std=cfg["std"],
        interpolation=cfg["interpolation"],
        resize_mode=resize_mode,
    )
    ours = ResizeCropNormalize(size=224, mean=cfg["mean"], std=cfg["std"], resize_mode=resize_mode)
    for img in real_images():
        expected = reference(Image.fromarray(img)).numpy()
        got = ours(img)
        assert got.dtype == np.float32 and got.shape == (3, 224, 224)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


@pytest.mark.peers
def test_clip_factory_preprocessor_equals_open_clip(tiny_clip_config):
    ext = create_extractor("clip", weights="none", model=tiny_clip_config, device="cpu")
    model = open_clip.create_model(tiny_clip_config, pretrained=None)
    from open_clip.transform import PreprocessCfg, image_transform_v2

    reference = image_transform_v2(PreprocessCfg(**open_clip.get_model_preprocess_cfg(model)), is_train=False)
    for img in real_images():
        np.testing.assert_allclose(ext.preprocessor(img), reference(Image.fromarray(img)).numpy(), rtol=0, atol=1e-6)
    desc = ext.describe()["preprocessing"]
    assert desc["resize_mode"] == "shortest" and desc["size"] == 32 and "bicubic" in desc["resize"]


def _dgm_eval_clip_forward(visual, x):
    """dgm-eval's CLIPEncoder.forward (depth=0), transcribed: ln_post(class token), no projection."""
    x = visual.conv1(x)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    cls = visual.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
    x = visual.ln_pre(visual.patch_dropout(x))
    if not visual.transformer.batch_first:
        x = x.permute(1, 0, 2)
    for block in visual.transformer.resblocks:
        x = block(x, attn_mask=None)
    if not visual.transformer.batch_first:
        x = x.permute(1, 0, 2)
    return visual.ln_post(x[:, 0])


@pytest.mark.peers
def test_clip_features_against_open_clip(tiny_clip_config):
    pre = create_extractor("clip", weights="none", model=tiny_clip_config, device="cpu")
    proj = create_extractor("clip", weights="none", model=tiny_clip_config, device="cpu", feature="projected")
    torch.manual_seed(0)  # the extractor's "none" init is open_clip's init under seed 0
    model = open_clip.create_model(tiny_clip_config, pretrained=None).eval()

    images = real_images()
    batch = _batch(pre, images)
    out_pre, out_proj = pre(batch), proj(batch)
    assert out_pre.features.shape == (len(images), 48) and pre.dim == 48
    assert out_proj.features.shape == (len(images), 24) and proj.dim == 24
    assert out_pre.features.dtype == torch.float32 and out_pre.logits is None
    with torch.no_grad():
        encoded = model.encode_image(batch)
        dgm = _dgm_eval_clip_forward(model.visual, batch)
    # projected == open_clip encode_image; pre-projection == dgm-eval's feature (tol 1e-5)
    np.testing.assert_allclose(out_proj.features.numpy(), encoded.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(out_pre.features.numpy(), dgm.numpy(), rtol=0, atol=1e-5)
    with torch.no_grad():
        projected_by_hand = out_pre.features @ model.visual.proj
    np.testing.assert_allclose(projected_by_hand.numpy(), encoded.numpy(), rtol=0, atol=1e-5)
    assert (out_pre.features[0] - out_pre.features[1]).abs().max() > 1e-2  # depends on the image
    # not L2-normalised
    assert not np.allclose(out_proj.features.norm(dim=1).numpy(), 1.0, atol=1e-3)
    # deterministic across runs, labelled not pretrained
    assert torch.equal(pre(batch).features, out_pre.features)
    assert pre.weights.pretrained is False and pre.weights.identity == "random-init(seed=0)"
    assert pre.variant == f"{tiny_clip_config}/pre-projection"


def test_clip_local_weight_file(tiny_clip_config, tmp_path):
    torch.manual_seed(123)
    model = open_clip.create_model(tiny_clip_config, pretrained=None).eval()
    path = tmp_path / "tiny-clip.pt"
    torch.save(model.state_dict(), path)
    ext = create_extractor("clip", weights=str(path), model=tiny_clip_config, device="cpu", feature="projected")
    assert ext.weights.identity == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert ext.weights.pretrained is False and ext.weights.source == str(path.resolve())
    batch = _batch(ext, real_images()[:3])
    with torch.no_grad():
        expected = model.encode_image(batch)
    np.testing.assert_allclose(ext(batch).features.numpy(), expected.numpy(), rtol=0, atol=1e-5)


def test_clip_errors(tiny_clip_config, monkeypatch):
    with pytest.raises(ValueError, match="unknown open_clip model"):
        create_extractor("clip", weights="none", model="no-such-model", device="cpu")
    with pytest.raises(ValueError, match="feature must be one of"):
        create_extractor("clip", weights="none", model=tiny_clip_config, feature="tokens", device="cpu")
    with pytest.raises(ValueError, match="no pretrained tag"):
        create_extractor("clip", weights="default", model=tiny_clip_config, device="cpu")

    def failing_create_model(*args, **kwargs):
        raise RuntimeError("Failed to download weights for tag 'datacomp_xl_s13b_b90k': offline")

    monkeypatch.setattr(open_clip, "create_model", failing_create_model)
    with pytest.raises(WeightsUnavailableError) as err:
        create_extractor("clip", weights="default", device="cpu")
    msg = str(err.value)
    assert "ViT-L-14/datacomp_xl_s13b_b90k" in msg and "laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K" in msg
    assert "weights=" in msg and "offline" in msg


# --------------------------------------------------------------------------------------- DINOv2


@pytest.fixture(scope="module")
def small_dinov2():
    return create_extractor("dinov2", weights="none", model="vits14", img_size=56, device="cpu")


def test_dinov2_preprocessing_equals_dgm_eval_transform(small_dinov2):
    """dgm-eval's DINOv2Encoder.transform (torchvision on PIL) == our preprocessor (tol 1e-6)."""
    reference = T.Compose(
        [
            T.Resize((224, 224), T.InterpolationMode.BICUBIC),
            T.ToTensor(),
            T.Normalize(np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)),
        ]
    )
    factory_pre = small_dinov2.preprocessor  # same transform at the test's 56 px
    ours = ResizeCropNormalize(
        size=224, **{k: getattr(factory_pre, k) for k in ("mean", "std", "resize_mode", "interpolation")}
    )
    assert ours.resize_mode == "squash" and ours.mean == IMAGENET_MEAN and ours.std == IMAGENET_STD
    for img in real_images():
        np.testing.assert_allclose(ours(img), reference(Image.fromarray(img)).numpy(), rtol=0, atol=1e-6)
    desc = small_dinov2.describe()
    assert desc["preprocessing"]["resize_mode"] == "squash" and desc["preprocessing"]["crop"] == "none"
    assert desc["preprocessing"]["size"] == 56


def _naive_bicubic_1d_matrix(n_in: int, n_out: int, scale: float) -> np.ndarray:
    """Interpolation matrix of PyTorch's bicubic (A=-0.75, align_corners=False, clamped borders)
    for a given scale factor: output i samples the input at (i + 0.5) / scale - 0.5."""

    def cubic(d):
        a = -0.75
        d = abs(d)
        if d <= 1:
            return ((a + 2) * d - (a + 3)) * d * d + 1
        if d < 2:
            return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
        return 0.0

    mat = np.zeros((n_out, n_in))
    for i in range(n_out):
        src = (i + 0.5) / scale - 0.5
        base = int(np.floor(src))
        t = src - base
        for _k, offset in enumerate((-1, 0, 1, 2)):
            idx = min(max(base + offset, 0), n_in - 1)
            mat[i, idx] += cubic(t - offset)  # distances 1+t, t, 1-t, 2-t
    return mat


def test_pos_embed_resampling_matches_dinov2_formula():
    rng = np.random.default_rng(0)
    side, grid, dim = 37, 16, 3
    table = rng.normal(size=(1, 1 + side * side, dim)).astype(np.float32)
    ours = resample_pos_embed_dinov2(torch.from_numpy(table), grid).numpy()
    mat = _naive_bicubic_1d_matrix(side, grid, (grid + 0.1) / side)
    patches = table[0, 1:].reshape(side, side, dim)
    expected = np.einsum("ia,jb,abd->ijd", mat, mat, patches).reshape(grid * grid, dim)
    assert ours.shape == (1, 1 + grid * grid, dim)
    np.testing.assert_array_equal(ours[0, 0], table[0, 0])  # class token untouched
    np.testing.assert_allclose(ours[0, 1:], expected, rtol=0, atol=1e-5)
    assert resample_pos_embed_dinov2(torch.from_numpy(table), side) is not None
    np.testing.assert_array_equal(resample_pos_embed_dinov2(torch.from_numpy(table), side).numpy(), table)

    # Documented disagreement: timm's loader resamples with size=16 and antialias=True.
    from timm.layers import resample_abs_pos_embed

    timm_version = resample_abs_pos_embed(torch.from_numpy(table), (grid, grid), num_prefix_tokens=1).numpy()
    assert np.abs(timm_version - ours).max() > 1e-2


def test_dinov2_random_init_forward(small_dinov2):
    ext = small_dinov2
    images = real_images()
    batch = _batch(ext, images)
    assert batch.shape == (len(images), 3, 56, 56)
    out = ext(batch)
    assert out.features.shape == (len(images), 384) and out.features.dtype == torch.float32
    assert out.logits is None and ext.dim == 384
    assert torch.equal(ext(batch).features, out.features)
    again = create_extractor("dinov2", weights="none", model="vits14", img_size=56, device="cpu")
    assert torch.equal(again(batch).features, out.features)
    # the class token after the final norm == timm's own pooled output (global_pool="token")
    with torch.no_grad():
        pooled = ext.net(batch)
    np.testing.assert_allclose(out.features.numpy(), pooled.numpy(), rtol=0, atol=1e-6)
    assert (out.features[0] - out.features[1]).abs().max() > 1e-2  # depends on the image
    info = ext.weights
    assert info.pretrained is False and info.identity == "random-init(seed=0)"
    assert ext.variant == "vits14/56px" and "NOT pretrained" in repr(ext)
    with pytest.raises(ValueError, match="multiple of 14"):
        create_extractor("dinov2", weights="none", model="vits14", img_size=50, device="cpu")
    with pytest.raises(ValueError, match="model must be one of"):
        create_extractor("dinov2", weights="none", model="vith14", device="cpu")


@pytest.fixture(scope="module")
def native_vits14_state() -> dict[str, torch.Tensor]:
    """Random ViT-S/14 weights at the checkpoints' native 518 px (37 x 37 position grid)."""
    torch.manual_seed(7)
    native = timm.create_model("vit_small_patch14_dinov2.lvd142m", pretrained=False, num_classes=0, init_values=1.0)
    # random init leaves pos_embed small; make it large so the resampling visibly matters
    with torch.no_grad():
        native.pos_embed.normal_(std=1.0)
    return native.state_dict()


def _official_format(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {k: v.clone() for k, v in state.items()}
    out["mask_token"] = torch.zeros(1, state["cls_token"].shape[-1])  # marks the official DINOv2 layout
    return out


def test_dinov2_local_weight_files(tmp_path, native_vits14_state):
    from safetensors.torch import save_file

    state = native_vits14_state
    assert state["pos_embed"].shape == (1, 1 + 37 * 37, 384)
    st_path = tmp_path / "vits14-timm.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(st_path))
    pth_path = tmp_path / "vits14-official.pth"
    torch.save(_official_format(state), pth_path)

    ext_st = create_extractor("dinov2", weights=str(st_path), model="vits14", img_size=56, device="cpu")
    ext_pth = create_extractor("dinov2", weights=str(pth_path), model="vits14", img_size=56, device="cpu")
    assert ext_st.weights.identity == "sha256:" + hashlib.sha256(st_path.read_bytes()).hexdigest()
    assert ext_pth.weights.identity == "sha256:" + hashlib.sha256(pth_path.read_bytes()).hexdigest()
    assert ext_st.weights.pretrained is False

    # reference: timm model at 56 px, pos_embed resampled 37x37 -> 4x4 with the DINOv2 formula
    reference = copy.deepcopy(ext_st.net)  # same architecture; weights replaced below
    ref_state = dict(state)
    ref_state["pos_embed"] = resample_pos_embed_dinov2(state["pos_embed"], 4)
    reference.load_state_dict(ref_state)
    batch = _batch(ext_st, real_images()[:3])
    with torch.no_grad():
        expected = reference.eval().forward_features(batch)[:, 0]
    np.testing.assert_allclose(ext_st(batch).features.numpy(), expected.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(ext_pth(batch).features.numpy(), expected.numpy(), rtol=0, atol=1e-5)


def test_dinov2_default_weights(tmp_path, monkeypatch, native_vits14_state):
    wdir = tmp_path / "weights"
    wdir.mkdir()
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(wdir))
    real_create = timm.create_model
    attempts = []

    def offline_create(name, pretrained=False, **kwargs):
        if pretrained:
            attempts.append(name)
            raise OSError("offline: cannot reach huggingface.co")
        return real_create(name, pretrained=False, **kwargs)

    monkeypatch.setattr(timm, "create_model", offline_create)
    with pytest.raises(WeightsUnavailableError) as err:
        create_extractor("dinov2", weights="default", model="vits14", img_size=56, device="cpu")
    msg = str(err.value)
    assert attempts == ["vit_small_patch14_dinov2.lvd142m"]
    assert official_filename("vits14") in msg and official_url("vits14") in msg
    assert str(wdir) in msg and "offline" in msg

    # the official file placed in weights_dir() is used as the published weights
    torch.save(_official_format(native_vits14_state), wdir / official_filename("vits14"))
    ext = create_extractor("dinov2", weights="default", model="vits14", img_size=56, device="cpu")
    assert ext.weights.pretrained is True and ext.weights.identity == "dinov2:vits14/lvd142m"
    assert ext.weights.source == str(wdir / official_filename("vits14"))
    assert ext(_batch(ext, real_images()[:2])).features.shape == (2, 384)
