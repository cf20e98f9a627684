"""Sensitivity heatmaps of FD and KD (:func:`workbench.analysis.metric_heatmaps`).

Tiny fully-convolutional extractors (no biases, float64 inside) make the properties exact: a
network blind to the left half puts no mass there, a circular shift of the image shifts its map,
and the maps equal a separate reimplementation of the formula (dgm-eval's leave-one-out update
of the generated statistics, FD through a differentiable eigen-decomposition, mean squared
gradients as channel weights).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from workbench.analysis import HeatmapResult, metric_heatmaps
from workbench.analysis.heatmaps import _kd_terms, _to_grid
from workbench.extractors import create_extractor
from workbench.extractors.base import Extractor, ExtractorOutput, Preprocessor, WeightsInfo
from workbench.metrics.frechet import fd
from workbench.metrics.kernel_distance import _poly_mmd2_unbiased

SIDE = 12
DIM = 6


@dataclass
class UnitScale(Preprocessor):
    """``H x W x 3`` uint8 -> ``3 x H x W`` float32 ``x / 255`` (no resize)."""

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return (image.astype(np.float32) / 255.0).transpose(2, 0, 1).copy()

    def describe(self) -> dict[str, Any]:
        return {"resize": "none"}


class TinyNet(nn.Module):
    """Two bias-free convolutions with circular padding, ReLU, global mean pool; float64."""

    def __init__(self, kernel: int = 3, blind_left: bool = False, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        pad = kernel // 2
        self.blind_left = blind_left
        self.body = nn.Sequential(
            nn.Conv2d(3, 5, kernel, padding=pad, padding_mode="circular", bias=False),
            nn.ReLU(),
            nn.Conv2d(5, DIM, kernel, padding=pad, padding_mode="circular", bias=False),
            nn.ReLU(),
        )
        self.double().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        if self.blind_left:
            x = x.clone()
            x[..., : x.shape[-1] // 2] = 0.0
        return self.body(x).mean(dim=(2, 3))


@dataclass(repr=False, eq=False)
class TinyExtractor(Extractor):
    net: TinyNet | None = None

    def forward(self, batch: torch.Tensor) -> ExtractorOutput:
        assert self.net is not None
        return ExtractorOutput(features=self.net(batch))

    def _modules(self) -> list[torch.nn.Module]:
        assert self.net is not None
        return [self.net]


def tiny_extractor(**net_kwargs: Any) -> TinyExtractor:
    return TinyExtractor(
        name="tiny",
        variant="test",
        dim=DIM,
        weights=WeightsInfo(spec="none", pretrained=False, identity="test"),
        preprocessor=UnitScale(),
        heatmap_layer="body.3",
        net=TinyNet(**net_kwargs),
    )


def random_images(n: int, side: int = SIDE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, side, side, 3), dtype=np.uint8)


def features_of(ext: Extractor, images: np.ndarray) -> np.ndarray:
    batch = np.stack([ext.preprocessor(im) for im in images])
    return ext(batch).features.double().numpy()


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return np.random.default_rng(1).normal(0.3, 0.2, size=(60, DIM))


def test_blind_half_gets_no_heatmap_mass(reference: np.ndarray) -> None:
    ext = tiny_extractor(kernel=1, blind_left=True)
    result = metric_heatmaps(random_images(10), ext, reference, progress=False)
    assert result.maps.shape == (10, SIDE, SIDE) and result.maps.dtype == np.float32
    assert np.all(result.maps[:, :, : SIDE // 2] == 0.0)
    assert np.all(result.maps.reshape(10, -1).max(axis=1) > 0)


def test_shifting_the_image_shifts_its_map(reference: np.ndarray) -> None:
    ext = tiny_extractor(kernel=3)
    images = random_images(10)
    images[9] = np.roll(images[0], shift=(3, 5), axis=(0, 1))
    result = metric_heatmaps(images, ext, reference, batch_size=4, progress=False)
    shifted = np.roll(result.maps[0], shift=(3, 5), axis=(0, 1))
    assert result.maps[0].max() > 0
    np.testing.assert_allclose(result.maps[9], shifted, rtol=1e-6, atol=1e-9 * result.maps[0].max())
    assert result.delta[0] == pytest.approx(result.delta[9], rel=1e-6)


def _reference_map(ext: TinyExtractor, images: np.ndarray, i: int, ref: np.ndarray) -> np.ndarray:
    """dgm-eval's recipe, written out independently: leave-one-out statistics of the others,
    their rank-one update by image i's feature, FD through eigvalsh, mean squared gradients."""
    others = np.delete(features_of(ext, images), i, axis=0)
    n = images.shape[0]
    mean_rest = torch.from_numpy(others.mean(axis=0))
    cov_rest = torch.from_numpy(np.cov(others, rowvar=False))
    mu_r = torch.from_numpy(ref.mean(axis=0))
    w, v = np.linalg.eigh(np.cov(ref, rowvar=False))
    root_r = torch.from_numpy((v * np.sqrt(w)) @ v.T)
    trace_r = float(np.trace(np.cov(ref, rowvar=False)))

    acts: list[torch.Tensor] = []
    assert ext.net is not None
    handle = ext.net.body[3].register_forward_hook(lambda _m, _i, out: acts.append(out))
    x = torch.from_numpy(ext.preprocessor(images[i])[None]).requires_grad_(True)
    f = ext.net(x)
    handle.remove()
    a = acts[0]
    a.retain_grad()
    mean = (n - 1) / n * mean_rest + f[0] / n
    dev = f - mean_rest[None]
    cov = (n - 2) / (n - 1) * cov_rest + dev.T @ dev / n
    eig = torch.linalg.eigvalsh(root_r @ cov @ root_r)
    loss = ((mean - mu_r) ** 2).sum() + trace_r + torch.trace(cov) - 2 * torch.sqrt(eig.clamp_min(0)).sum()
    loss.backward()
    assert a.grad is not None
    weights = (a.grad**2).mean(dim=(2, 3), keepdim=True)
    return torch.relu((weights * a).sum(dim=1))[0].detach().numpy()


def test_maps_equal_a_separate_implementation_of_the_formula(reference: np.ndarray) -> None:
    ext = tiny_extractor(kernel=3, seed=3)
    images = random_images(12, seed=5)
    result = metric_heatmaps(images, ext, reference, batch_size=5, progress=False)
    for i in (0, 7, 11):
        expected = _reference_map(ext, images, i, reference)
        assert expected.max() > 0
        np.testing.assert_allclose(result.maps[i], expected, rtol=1e-6, atol=1e-6 * expected.max())


def test_delta_is_fd_with_minus_without_the_image(reference: np.ndarray) -> None:
    ext = tiny_extractor(kernel=3, seed=4)
    images = random_images(12, seed=6)
    feats = features_of(ext, images)
    result = metric_heatmaps(images, ext, reference, progress=False)
    full = fd(reference, feats)
    assert result.value == pytest.approx(full, rel=1e-10)
    for i in range(12):
        direct = full - fd(reference, np.delete(feats, i, axis=0))
        assert result.delta[i] == pytest.approx(direct, rel=1e-8, abs=1e-12 * full)

    # the same images as rows of a larger generated set, and as extra samples added to it
    extra = np.random.default_rng(2).normal(0.3, 0.2, size=(20, DIM))
    rows = np.arange(12) + 4
    with_rows = extra.copy()
    with_rows[rows] = feats
    as_rows = metric_heatmaps(images, ext, reference, generated=extra, indices=rows, progress=False)
    added = metric_heatmaps(images, ext, (reference.mean(0), np.cov(reference, rowvar=False)), generated=extra)
    for i in (0, 5):
        direct = fd(reference, with_rows) - fd(reference, np.delete(with_rows, rows[i], axis=0))
        assert as_rows.delta[i] == pytest.approx(direct, rel=1e-8)
        grown = np.concatenate([extra, feats])
        direct = fd(reference, grown) - fd(reference, np.delete(grown, 20 + i, axis=0))
        assert added.delta[i] == pytest.approx(direct, rel=1e-8)


def test_kd_gradient_and_delta_against_finite_differences() -> None:
    rng = np.random.default_rng(7)
    gen = rng.normal(0.2, 1.0, size=(15, 4))
    ref = rng.normal(0.0, 1.0, size=(11, 4))
    rows = np.array([0, 6, 14])

    def kd_of(g: np.ndarray, y: np.ndarray = ref) -> float:  # unbiased MMD^2 of unequal sets, written out
        def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return (a @ b.T / 4 + 1.0) ** 3

        n, r = len(g), len(y)
        kgg, krr = k(g, g), k(y, y)
        within_g = (kgg.sum() - np.trace(kgg)) / (n * (n - 1))
        within_r = (krr.sum() - np.trace(krr)) / (r * (r - 1))
        return float(within_g + within_r - 2 * k(g, y).mean())

    grad, delta, value = _kd_terms(gen, ref, rows)
    assert kd_of(gen[:10], ref[:10]) == pytest.approx(_poly_mmd2_unbiased(gen[:10], ref[:10], 3, 1 / 4, 1.0), rel=1e-12)
    assert value == pytest.approx(kd_of(gen), rel=1e-12)
    step = 1e-6
    for k, row in enumerate(rows):
        assert delta[k] == pytest.approx(value - kd_of(np.delete(gen, row, axis=0)), rel=1e-10)
        numeric = np.empty(4)
        for d in range(4):
            up, down = gen.copy(), gen.copy()
            up[row, d] += step
            down[row, d] -= step
            numeric[d] = (kd_of(up) - kd_of(down)) / (2 * step)
        np.testing.assert_allclose(grad[k], numeric, rtol=1e-6, atol=1e-9)


def test_kd_heatmaps_run_on_the_tiny_network(reference: np.ndarray) -> None:
    result = metric_heatmaps(random_images(8), tiny_extractor(), reference, metric="kd", progress=False)
    assert result.maps.shape == (8, SIDE, SIDE) and np.all(result.maps >= 0) and result.maps.max() > 0
    assert np.isfinite(result.delta).all()
    with pytest.raises(ValueError, match="needs the reference features"):
        metric_heatmaps(random_images(8), tiny_extractor(), (np.zeros(DIM), np.eye(DIM)), metric="kd")


@pytest.mark.filterwarnings("ignore::workbench.metrics.frechet.SingularCovarianceWarning")
def test_result_table_overlay_and_inputs(reference: np.ndarray) -> None:
    images = random_images(6)
    result = metric_heatmaps(list(images), tiny_extractor(), reference, progress=False)
    assert isinstance(result, HeatmapResult)
    frame = result.to_frame()
    assert list(frame["index"]) == list(range(6))
    np.testing.assert_array_equal(frame["delta"].to_numpy(), result.delta)
    over = result.overlay(2, alpha=0.5)
    assert over.shape == (SIDE, SIDE, 3) and over.dtype == np.uint8
    np.testing.assert_array_equal(result.overlay(2, alpha=0.0), images[2])
    assert not np.array_equal(over, images[2])
    with pytest.raises(IndexError):
        result.overlay(6)
    with pytest.raises(ValueError, match="alpha"):
        result.overlay(0, alpha=2)
    with pytest.raises(ValueError, match="uint8"):
        metric_heatmaps(images.astype(np.float32), tiny_extractor(), reference)
    with pytest.raises(ValueError, match="metric"):
        metric_heatmaps(images, tiny_extractor(), reference, metric="is")
    with pytest.raises(ValueError, match="no layer 'body.9'"):
        metric_heatmaps(images, tiny_extractor(), reference, layer="body.9")


def test_extractor_without_heatmap_layer_is_a_clear_error() -> None:
    ext = create_extractor("pixels", weights="none", size=4)
    assert ext.heatmap_layer is None
    with pytest.raises(ValueError, match=r"'pixels' does not support heatmaps.*heatmap_layer"):
        metric_heatmaps(random_images(4), ext, np.zeros((5, ext.dim)), progress=False)


def test_vit_tokens_drop_the_prefix_and_form_a_square_grid() -> None:
    tokens = torch.arange(2 * 5 * 3, dtype=torch.float64).reshape(2, 5, 3)  # 1 class token + 2 x 2 patches
    grid = _to_grid(tokens, nn.Identity(), "x")
    assert grid.shape == (2, 3, 2, 2)
    assert torch.equal(grid[1, :, 0, 1], tokens[1, 2])  # patch (0, 1) is token 1 + 1
    with pytest.raises(ValueError, match="B x C x h x w"):
        _to_grid(torch.zeros(2, 3), nn.Identity(), "x")


def test_heatmap_layer_is_set_on_builtins_and_stays_out_of_the_cache_key() -> None:
    import workbench.demo  # noqa: F401  (registers the demo extractors)

    for name, layer in (("demo-classifier", "conv.3"), ("demo-ssl", "encoder.3")):
        ext = create_extractor(name, weights="none")
        assert ext.heatmap_layer == layer
        assert "heatmap_layer" not in ext.describe()


@pytest.mark.filterwarnings("ignore::workbench.metrics.frechet.SingularCovarianceWarning")
def test_demo_classifier_maps_have_the_image_size(reference: np.ndarray) -> None:
    import workbench.demo  # noqa: F401

    images = random_images(5, side=40, seed=9)
    ref = np.random.default_rng(3).normal(size=(200, 128))
    result = metric_heatmaps(images, "demo-classifier", ref, weights="none", progress=False)
    assert result.maps.shape == (5, 40, 40) and np.all(result.maps >= 0)
    assert result.grid == (7, 7) and result.layer == "conv.3"


@pytest.mark.slow
def test_inception_random_weights_at_299_px() -> None:
    ext = create_extractor("inception", weights="none")
    assert ext.heatmap_layer == "Mixed_7c"
    images = random_images(2, side=299, seed=11)
    rng = np.random.default_rng(4)
    generated = rng.normal(size=(6, ext.dim)).astype(np.float32)
    stats = (np.zeros(ext.dim), np.eye(ext.dim))
    start = time.perf_counter()
    with pytest.warns(UserWarning):  # 8 generated samples in 2048 dimensions: a singular covariance
        result = metric_heatmaps(images, ext, stats, generated=generated, batch_size=2, progress=False)
    elapsed = time.perf_counter() - start
    print(
        f"\ninception (random weights, CPU) heatmaps at 299 px: {elapsed / 2:.2f} s per image ({elapsed:.2f} s for 2)"
    )
    assert result.maps.shape == (2, 299, 299) and result.grid == (8, 8)
    assert np.all(result.maps >= 0) and np.isfinite(result.delta).all()


@pytest.mark.slow
def test_dinov2_random_weights_small() -> None:
    ext = create_extractor("dinov2", weights="none", model="vits14", img_size=56)
    assert ext.heatmap_layer == "blocks.11.norm1"
    images = random_images(4, side=30, seed=12)
    ref = np.random.default_rng(5).normal(size=(20, ext.dim))
    gen = np.random.default_rng(6).normal(size=(10, ext.dim))
    with pytest.warns(UserWarning):
        result = metric_heatmaps(images, ext, ref, generated=gen, progress=False)
    assert result.maps.shape == (4, 30, 30) and result.grid == (4, 4) and result.maps.max() > 0
