"""The FID Inception extractor against pytorch-fid (network + legacy resize) and clean-fid (clean resize).

Real images: Fashion-MNIST test images (``/usr/share/datasets/fashion-mnist``, idx format) and
scikit-learn's 8x8 digits upscaled; grayscale is repeated to RGB. Network checks use the SAME
random weights in both implementations (no download anywhere).
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from workbench.extractors import create_extractor
from workbench.extractors.inception import (
    FID_WEIGHTS_FILENAME,
    FID_WEIGHTS_TAG,
    FID_WEIGHTS_URL,
    InceptionPreprocessor,
    parse_class_names,
)
from workbench.extractors.inception_net import FIDInceptionV3
from workbench.extractors.weights import WeightsUnavailableError

pytestmark = pytest.mark.slow  # extractor tests; the pytorch-fid / clean-fid comparisons are also marked peers

FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


def fashion_images(n: int) -> np.ndarray:
    """First ``n`` Fashion-MNIST test images as ``n x 28 x 28 x 3`` uint8."""
    with gzip.open(FASHION, "rb") as fh:
        raw = np.frombuffer(fh.read(16 + n * 28 * 28), dtype=np.uint8)
    gray = raw[16:].reshape(n, 28, 28)
    return np.repeat(gray[..., None], 3, axis=3)


@functools.lru_cache(maxsize=1)
def _digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().images


def digit_images(n: int, scale: int = 5) -> np.ndarray:
    """First ``n`` sklearn digits (0..16) scaled to uint8 and upscaled ``scale`` x, as RGB."""
    digits = _digits()[:n]
    img = np.round(digits * (255.0 / 16.0)).astype(np.uint8)
    img = np.kron(img, np.ones((1, scale, scale), dtype=np.uint8))
    return np.repeat(img[..., None], 3, axis=3)


@pytest.fixture(scope="module")
def ours():
    return create_extractor("inception", weights="none", device="cpu")


@pytest.fixture(scope="module")
def peer(ours):
    """pytorch-fid's InceptionV3 with OUR random weights (its URL loader patched, no download)."""
    pytorch_fid_inception = pytest.importorskip("pytorch_fid.inception")
    state = {k: v.clone() for k, v in ours.net.state_dict().items()}
    mp = pytest.MonkeyPatch()
    mp.setattr(pytorch_fid_inception, "load_state_dict_from_url", lambda *a, **k: state)
    try:
        model = pytorch_fid_inception.InceptionV3(
            [3], resize_input=True, normalize_input=True, use_fid_inception=True
        ).eval()
    finally:
        mp.undo()
    return model


@pytest.mark.peers
def test_state_dict_matches_pytorch_fid_layout(ours):
    pytorch_fid_inception = pytest.importorskip("pytorch_fid.inception")
    mp = pytest.MonkeyPatch()
    captured = {}

    def fake_loader(*args, **kwargs):
        captured["url"] = args[0] if args else kwargs.get("url")
        return ours.net.state_dict()

    mp.setattr(pytorch_fid_inception, "load_state_dict_from_url", fake_loader)
    try:
        reference = pytorch_fid_inception.fid_inception_v3()  # loads strictly: names must match
    finally:
        mp.undo()
    assert captured["url"] == FID_WEIGHTS_URL
    ref_shapes = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    our_shapes = {k: tuple(v.shape) for k, v in ours.net.state_dict().items()}
    assert our_shapes == ref_shapes
    assert our_shapes["fc.weight"] == (1008, 2048)


@pytest.mark.peers
@pytest.mark.parametrize(
    "images",
    [fashion_images(2), fashion_images(5)[2:4, :, 3:23], digit_images(2)],
    ids=["fashion28", "fashion-nonsquare", "digits40"],
)
def test_pool3_equals_pytorch_fid(ours, peer, images):
    """Same weights, same real images: our preprocessor + network == pytorch-fid's own path."""
    ours_in = torch.from_numpy(np.stack([ours.preprocessor(img) for img in images]))
    ours_out = ours(ours_in)

    # pytorch-fid's dataset path: ToTensor (x/255) -> model resizes (batched) and scales to [-1, 1].
    unit = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)
    with torch.no_grad():
        peer_feats = peer(unit)[0].squeeze(-1).squeeze(-1)
        peer_input = 2 * F.interpolate(unit, size=(299, 299), mode="bilinear", align_corners=False) - 1

    # the per-image resize equals pytorch-fid's batched one (tolerance 1e-6)
    np.testing.assert_allclose(ours_in.numpy(), peer_input.numpy(), rtol=0, atol=1e-6)
    assert ours_out.features.shape == (len(images), 2048)
    assert ours_out.features.dtype == torch.float32
    # features are not degenerate (random weights still separate the images)
    assert ours_out.features.std() > 1e-2
    assert (ours_out.features[0] - ours_out.features[1]).abs().max() > 1e-3
    # pool3 identical to pytorch-fid within 1e-5 (absolute)
    np.testing.assert_allclose(ours_out.features.numpy(), peer_feats.numpy(), rtol=0, atol=1e-5)


def test_logits_conventions(ours):
    images = fashion_images(2)
    batch = np.stack([ours.preprocessor(img) for img in images])
    out = ours(batch)
    assert out.logits.shape == (2, 1008)
    weight, bias = ours.net.fc.weight.detach(), ours.net.fc.bias.detach()
    # default "unbiased": pool3 @ W.T (Inception Score convention, torch-fidelity's logits_unbiased)
    np.testing.assert_allclose(out.logits.numpy(), (out.features @ weight.T).numpy(), rtol=1e-5, atol=1e-5)
    biased = create_extractor("inception", weights="none", device="cpu", logits="biased")
    # make the bias non-zero so the two conventions can be told apart
    with torch.no_grad():
        biased.net.fc.bias.copy_(torch.linspace(-1, 1, 1008))
    out_b = biased(batch)
    np.testing.assert_allclose(out_b.features.numpy(), out.features.numpy(), rtol=0, atol=0)
    expected = out.features @ weight.T + torch.linspace(-1, 1, 1008)
    np.testing.assert_allclose(out_b.logits.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
    assert not np.allclose(out_b.logits.numpy(), out.logits.numpy(), atol=1e-3)
    assert bias.abs().max() == 0  # our random init has a zero bias


def test_determinism_and_labels(ours):
    images = digit_images(2, scale=4)
    batch = np.stack([ours.preprocessor(img) for img in images])
    first, second = ours(batch), ours(batch)
    assert torch.equal(first.features, second.features)
    again = create_extractor("inception", weights="none", device="cpu")
    assert torch.equal(again(batch).features, first.features)  # same seed -> same weights
    other = create_extractor("inception", weights="none", device="cpu", seed=1)
    assert not torch.allclose(other(batch).features, first.features)
    assert other.weights.identity == "random-init(seed=1)"

    info = ours.weights
    assert info.pretrained is False and info.identity == "random-init(seed=0)" and info.spec == "none"
    assert "NOT pretrained" in repr(ours)
    assert ours.num_classes == 1008 and len(ours.class_names) == 1008
    assert ours.class_names[1] == "kit fox, Vulpes macrotis" and ours.class_names[0] == "empty1"
    desc = ours.describe()
    assert desc["preprocessing"]["resize_mode"] == "legacy"
    assert "bilinear" in desc["preprocessing"]["resize"] and desc["preprocessing"]["size"] == 299
    assert desc["dim"] == 2048 and desc["weights"]["pretrained"] is False


def test_class_names_match_yaml_parser():
    yaml = pytest.importorskip("yaml")
    from workbench.paths import data_dir

    text = (data_dir() / "imagenet-labels.yml").read_text(encoding="utf-8")
    reference = yaml.safe_load(text)
    names = parse_class_names(text)
    assert names == [reference[i] for i in range(1008)]
    with pytest.raises(ValueError, match="expected class indices"):
        parse_class_names("0: a\n2: b\n", num_classes=3)


@pytest.mark.peers
def test_clean_resize_equals_clean_fid():
    resize_mod = pytest.importorskip("cleanfid.resize")
    resizer = resize_mod.make_resizer("PIL", False, "bicubic", (299, 299))
    images = list(fashion_images(3)) + [fashion_images(1)[0, 4:24, :], digit_images(1, scale=7)[0]]
    pre_tf = InceptionPreprocessor(resize="clean", normalization="tf")
    pre_pt = InceptionPreprocessor(resize="clean", normalization="pytorch-fid")
    for img in images:
        ref = resizer(img).transpose(2, 0, 1)  # clean-fid: float32 HxWx3 in [0, 255]
        # resize equal to clean-fid within 1e-5 on the 0..255 scale (both are PIL 'F' bicubic)
        np.testing.assert_allclose(pre_tf.resized(img), ref, rtol=0, atol=1e-5)
        # clean-fid's InceptionV3W normalises (x - 128) / 128 before the TF graph
        np.testing.assert_allclose(pre_tf(img), (ref - 128) / 128, rtol=0, atol=1e-6)
        # dgm-eval --clean_resize: to_tensor(x)/255 then 2x - 1
        np.testing.assert_allclose(pre_pt(img), 2 * (ref / 255) - 1, rtol=0, atol=1e-6)
        assert pre_tf(img).dtype == np.float32 and pre_tf(img).shape == (3, 299, 299)
    # the clean resize actually differs from the legacy one on real images
    legacy = InceptionPreprocessor(resize="legacy")
    assert np.abs(legacy.resized(images[0]) - pre_tf.resized(images[0])).max() > 1.0


def test_clean_mode_extractor_and_validation():
    ext = create_extractor("inception", weights="none", device="cpu", resize="clean")
    assert ext.preprocessor.normalization == "tf" and ext.variant == "fid-inception-v3/clean"
    assert "PIL bicubic" in ext.describe()["preprocessing"]["resize"]
    with pytest.raises(ValueError, match="resize must be one of"):
        create_extractor("inception", weights="none", device="cpu", resize="bicubic")
    with pytest.raises(ValueError, match="logits must be one of"):
        create_extractor("inception", weights="none", device="cpu", logits="softmax")
    with pytest.raises(ValueError, match="RGB uint8"):
        ext.preprocessor(np.zeros((28, 28), dtype=np.uint8))
    with pytest.raises(ValueError, match="RGB uint8"):
        ext.preprocessor(np.zeros((28, 28, 3), dtype=np.float32))


def test_local_weight_file_round_trip(tmp_path, ours):
    state = {k: v.clone() for k, v in FIDInceptionV3().state_dict().items()}  # fresh random weights
    path = tmp_path / "my-inception.pth"
    torch.save(state, path)
    ext = create_extractor("inception", weights=str(path), device="cpu")
    import hashlib

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert ext.weights.identity == f"sha256:{digest}"
    assert ext.weights.pretrained is False and ext.weights.source == str(path.resolve())
    for key, value in state.items():
        assert torch.equal(ext.net.state_dict()[key], value), key

    from safetensors.torch import save_file

    st_path = tmp_path / "my-inception.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(st_path))
    ext_st = create_extractor("inception", weights=str(st_path), device="cpu")
    batch = np.stack([ext.preprocessor(img) for img in fashion_images(1)])
    assert torch.equal(ext_st(batch).features, ext(batch).features)

    with pytest.raises(FileNotFoundError, match="neither 'default', 'none' nor an existing file"):
        create_extractor("inception", weights=str(tmp_path / "missing.pth"), device="cpu")


def test_missing_default_weights_error(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    calls = []

    def failing_download(url, *args, **kwargs):
        calls.append(url)
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", failing_download)
    with pytest.raises(WeightsUnavailableError) as err:
        create_extractor("inception", weights="default", device="cpu")
    msg = str(err.value)
    assert calls == [FID_WEIGHTS_URL]
    assert FID_WEIGHTS_FILENAME in msg and FID_WEIGHTS_URL in msg
    assert str(tmp_path / "weights") in msg and "weights=" in msg and "network is unreachable" in msg


def test_default_weights_found_in_weights_dir(tmp_path, monkeypatch):
    """A file under the published name is used, but only if its sha256 matches the published prefix."""
    wdir = tmp_path / "weights"
    wdir.mkdir()
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(wdir))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: pytest.fail("must not download"))
    torch.save(FIDInceptionV3().state_dict(), wdir / FID_WEIGHTS_FILENAME)
    with pytest.raises(WeightsUnavailableError, match="corrupt or not the published"):
        create_extractor("inception", weights="default", device="cpu")

    # pretend the file is the published one: then it is loaded and labelled pretrained
    import workbench.extractors.inception as inception_mod

    monkeypatch.setattr(inception_mod, "file_sha256", lambda path: "6726825d" + "0" * 56)
    ext = create_extractor("inception", weights="default", device="cpu")
    assert ext.weights.pretrained is True and ext.weights.identity == FID_WEIGHTS_TAG
    assert ext.weights.source == str(wdir / FID_WEIGHTS_FILENAME)
