"""The demo workspace build (reduced size): caches, index, weights identity, the zoo's flaws, reuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.cache import open_cache
from workbench.cache.fingerprint import file_sha256
from workbench.demo import models as M
from workbench.demo import zoo as Z
from workbench.demo.build import EXTRACTORS, GENERATED_SETS, DemoConfig, build_demo
from workbench.demo.cli import add_demo_command
from workbench.demo.extractors import GrayscalePreprocessor
from workbench.demo.workspace import load_workspace, workspace_cache
from workbench.extractors import create_extractor
from workbench.images.datasets import FASHION_MNIST_CLASSES

pytestmark = pytest.mark.slow  # builds demo workspaces (training included)

SETS = ("reference", "train", *GENERATED_SETS, "vae-pool")
# The build's mechanics do not need trained models: 2,000 training images and 1-2 epochs (about 12 s
# instead of the small demo's 70 s). The notebook tests use the small demo itself.
TINY = DemoConfig.small(n_train=2_000, classifier_epochs=2, ssl_epochs=1, vae_epochs=2)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """A reduced demo built twice in the same folder: (first result, second result, out)."""
    out = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    first = build_demo(out, config=TINY, progress=False, log=lines.append)
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "models").iterdir()}
    second = build_demo(out, config=TINY, progress=False, log=lines.append)
    return first, second, out, mtimes, lines


def test_every_cache_exists_opens_and_is_indexed(built) -> None:
    first, _, out, _, _ = built
    index = load_workspace(out)
    assert index["format"] == "workbench-demo/1"
    pairs = {(c["set"], c["extractor"]) for c in index["caches"]}
    assert pairs == {(s, e) for s in SETS for e in EXTRACTORS}
    cfg = TINY
    sizes = {"reference": cfg.n_reference, "train": cfg.n_train, "vae-pool": cfg.n_pool}
    roles = {"reference": "reference", "train": "train", "vae-pool": "pool"}
    for c in index["caches"]:
        cache = open_cache(out / c["path"])
        assert len(cache) == c["n"] == sizes.get(c["set"], cfg.n_per_set)
        assert cache.features.shape[1] == c["dim"] and c["role"] == roles.get(c["set"], "generated")
        assert cache.manifest["key"] == c["key"]
        assert (cache.logits is not None) == (c["extractor"] == "demo-classifier")
        assert index["sets"][c["set"]]["role"] == c["role"]
        assert np.isfinite(np.asarray(cache.features)).all()
    ref = workspace_cache("reference", "demo-classifier", out)
    assert ref.class_names == FASHION_MNIST_CLASSES and ref.labels is not None
    assert first.cache_path("memorizer", "demo-ssl") == out / next(
        c["path"] for c in index["caches"] if (c["set"], c["extractor"]) == ("memorizer", "demo-ssl")
    )
    zoo = json.loads((out / "zoo" / "zoo.json").read_text())["sets"]
    assert set(zoo) == {*GENERATED_SETS, "vae-pool"} and all(zoo[s]["flaw"] for s in zoo)


def test_weights_identity_and_not_pretrained(built) -> None:
    _, _, out, _, _ = built
    index = load_workspace(out)
    for name in ("demo-classifier", "demo-ssl"):
        path = out / index["extractors"][name]["weights"]
        identity = f"sha256:{file_sha256(path)}"
        assert index["extractors"][name]["identity"] == identity and index["models"][name]["pretrained"] is False
        ext = create_extractor(name, weights=str(path), device="cpu")
        assert ext.weights.identity == identity and ext.weights.pretrained is False
        cache = workspace_cache("ideal", name, out)
        assert cache.extractor["weights"]["identity"] == identity and cache.pretrained is False
        # the cache holds exactly what the registered extractor computes on the stored images
        with np.load(out / "zoo" / "ideal.npz", allow_pickle=False) as z:
            images = z["arr_0"][:16]
        pre = GrayscalePreprocessor()
        batch = np.stack([pre(np.repeat(im, 3, axis=2)) for im in images])
        np.testing.assert_allclose(ext(batch).features.numpy(), cache.features[:16], rtol=1e-5, atol=1e-5)
    pix = workspace_cache("ideal", "pixels", out)
    assert pix.pretrained is False


def test_classifier_beats_chance_on_held_out_data(built) -> None:
    _, _, out, _, _ = built
    index = load_workspace(out)
    # accuracy recorded by the build (on the reference = test split, never trained on) ...
    assert index["models"]["demo-classifier"]["test_accuracy"] > 0.5  # chance is 0.10; measured 0.74
    # ... and re-measured independently from the cached logits of the held-out ideal set
    cache = workspace_cache("ideal", "demo-classifier", out)
    acc = float(np.mean(np.asarray(cache.logits).argmax(1) == cache.labels))
    assert acc > 0.5, acc


def test_mode_dropper_lacks_its_classes(built) -> None:
    _, _, out, _, _ = built
    entry = load_workspace(out)["sets"]["mode-dropper"]
    dropped = entry["dropped_classes"]
    assert len(dropped) == 3
    labels = workspace_cache("mode-dropper", "pixels", out).labels
    assert not np.isin(labels, dropped).any()
    assert set(np.unique(labels)) == set(range(10)) - set(dropped)
    blurry = workspace_cache("blurry", "pixels", out).labels
    assert np.bincount(blurry, minlength=10).tolist() == [50] * 10


def test_memorizer_is_near_training_images(built) -> None:
    _, _, out, _, _ = built
    with np.load(out / "zoo" / "memorizer.npz", allow_pickle=False) as z:
        mem, train_index = z["arr_0"][:, :, :, 0].astype(np.float32), z["train_index"]
    with np.load(out / "zoo" / "ideal.npz", allow_pickle=False) as z:
        ideal = z["arr_0"][:, :, :, 0].astype(np.float32)
    train = workspace_cache("train", "pixels", out)
    splits = np.load(out / "zoo" / "splits.npz", allow_pickle=False)
    from workbench.images.datasets import load_fashion_mnist

    train_images = load_fashion_mnist("train")[0][splits["train_index"]].astype(np.float32)
    assert len(train) == len(train_images)

    def nn_dist(x: np.ndarray) -> np.ndarray:  # brute-force pixel L2 nearest neighbour in the training set
        a, b = x.reshape(len(x), -1), train_images.reshape(len(train_images), -1)
        d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
        return np.sqrt(np.maximum(d2.min(1), 0)), d2.argmin(1)

    d_mem, nn_mem = nn_dist(mem)
    d_ideal, _ = nn_dist(ideal)
    # the nearest training image of most copies is the image they were copied from
    assert np.mean(nn_mem == train_index) > 0.8
    # and copies are much closer to the training set than real unseen images are
    assert np.median(d_mem) < 0.5 * np.median(d_ideal), (np.median(d_mem), np.median(d_ideal))


def test_second_build_is_reused(built) -> None:
    first, second, out, mtimes, lines = built
    assert not any(s.reused for s in first.steps if s.name.startswith(("train", "zoo", "cache")))
    assert all(s.reused for s in second.steps if s.name != "load Fashion-MNIST + splits"), [
        s.name for s in second.steps if not s.reused
    ]
    assert {p.name: p.stat().st_mtime_ns for p in (out / "models").iterdir()} == mtimes
    assert second.index["caches"] == first.index["caches"]
    assert any("reused" in line for line in lines)


def test_hist_matched_moves_classifier_histogram_toward_reference(built) -> None:
    _, _, out, _, _ = built
    entry = load_workspace(out)["sets"]["hist-matched"]
    ref = np.array(entry["reference_top1_histogram"])
    pool = np.array(entry["pool_top1_histogram"])
    matched = np.array(entry["matched_top1_histogram"])
    assert np.abs(matched - ref).sum() < np.abs(pool - ref).sum()
    # recompute from the cache: the classifier's Top-1 on the hist-matched images
    logits = np.asarray(workspace_cache("hist-matched", "demo-classifier", out).logits)
    recomputed = np.bincount(logits.argmax(1), minlength=10) / len(logits)
    np.testing.assert_allclose(recomputed, matched, atol=1e-3)


def test_training_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(256, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=256)
    a, _ = M.train_classifier(images, labels, epochs=1, batch_size=64, seed=3)
    b, _ = M.train_classifier(images, labels, epochs=1, batch_size=64, seed=3)
    c, _ = M.train_classifier(images, labels, epochs=1, batch_size=64, seed=4)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.fc2.weight, c.fc2.weight)


def test_zoo_generators_closed_forms() -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(300, 28, 28), dtype=np.uint8)
    labels = np.repeat(np.arange(10), 30)
    mem, mlab, idx = Z.make_memorizer(
        images, labels, 50, seed=0, shift_prob=1.0, noise=0.0, flip_prob=0.0, brightness_prob=0.0
    )
    # with no noise/flip/brightness each copy is its source shifted by exactly one pixel
    for m, i in zip(mem, idx):
        ok = any(
            np.array_equal(
                m[max(dy, 0) : 28 + min(dy, 0), max(dx, 0) : 28 + min(dx, 0)],
                images[i][max(-dy, 0) : 28 + min(-dy, 0), max(-dx, 0) : 28 + min(-dx, 0)],
            )
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if (dy, dx) != (0, 0)
        )
        assert ok
    assert np.array_equal(mlab, labels[idx])
    x, y, _ = Z.make_blurry(images, labels, 95, seed=0, noise=0.0)
    assert np.bincount(y).tolist() == [10] * 5 + [9] * 5
    assert x.std() < images.std()  # blur removes variance of white noise images
    with pytest.raises(ValueError, match="n=400 exceeds"):
        Z.pick_ideal(images, labels, 400)


def test_create_extractor_default_and_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ext = create_extractor("demo-classifier", weights="none", device="cpu")
    assert ext.weights.identity == "random-init(seed=0)" and ext.num_classes == 10
    out = ext(np.zeros((2, 1, 28, 28), np.float32))
    assert out.features.shape == (2, 128) and out.logits.shape == (2, 10)
    monkeypatch.setenv("WORKBENCH_DEMO_DIR", str(tmp_path))
    from workbench.extractors.weights import WeightsUnavailableError

    with pytest.raises(WeightsUnavailableError, match="workbench demo"):
        create_extractor("demo-ssl", weights="default")
    bad = tmp_path / "bad.safetensors"
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(bad))
    with pytest.raises(ValueError, match="does not hold 'demo-ssl' weights"):
        create_extractor("demo-ssl", weights=str(bad))


def test_preprocessor_converts_rgb_and_resizes() -> None:
    pre = GrayscalePreprocessor()
    gray = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    x = pre(np.repeat(gray[:, :, None], 3, axis=2))
    assert x.shape == (1, 28, 28) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], (gray / 255.0 - 0.2860) / 0.3530, rtol=1e-6, atol=1e-6)
    big = pre(np.zeros((56, 56, 3), np.uint8))
    assert big.shape == (1, 28, 28)
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        pre(np.zeros((28, 28), np.uint8))


def test_cli_parser_registers_demo() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_demo_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["demo", "--out", "x", "--seed", "3", "--force", "--small"])
    assert (args.out, args.seed, args.force, args.small) == ("x", 3, True, True)


def test_interrupted_build_resumes_and_rebuild_is_bit_identical(
    built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.demo import build as B

    _, _, out, _, _ = built
    calls = {"n": 0}
    real_extract = B.extract

    def interrupted(*args, **kwargs):  # Ctrl-C while the third cache is being extracted
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_extract(*args, **kwargs)

    monkeypatch.setattr(B, "extract", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_demo(tmp_path, config=TINY, progress=False, log=lambda msg: None)
    assert not list(tmp_path.rglob("*.tmp")) and not (tmp_path / "workspace.json").exists()
    # an independent build with the same seed gives byte-identical weights and sets
    for rel in (
        "models/demo-classifier.safetensors",
        "models/demo-ssl.safetensors",
        "models/vae.safetensors",
        "zoo/memorizer.npz",
        "zoo/hist-matched.npz",
        "zoo/splits.npz",
    ):
        assert file_sha256(tmp_path / rel) == file_sha256(out / rel), rel
    monkeypatch.setattr(B, "extract", real_extract)
    ws = build_demo(tmp_path, config=TINY, progress=False, log=lambda msg: None)
    reused = {s.name for s in ws.steps if s.reused}
    assert {"train demo-classifier", "train demo-ssl (no labels)", "zoo: hist-matched"} <= reused
    assert {"cache reference x pixels", "cache train x pixels"} <= reused
    assert "cache ideal x pixels" not in reused
    assert {(c["set"], c["extractor"]) for c in ws.index["caches"]} == {(s, e) for s in SETS for e in EXTRACTORS}


def test_prune_removes_only_unlisted_demo_caches(tmp_path: Path) -> None:
    from workbench.demo.build import _prune_stale_caches

    caches = tmp_path / "caches"
    for name in (
        "ideal__demo-ssl-fmnist-dae-v1__aaaa",
        "ideal__demo-ssl-fmnist-dae-v1__bbbb",
        "my-images__pixels-16px__cccc",
    ):
        (caches / name).mkdir(parents=True)
    listed = [{"path": "caches/ideal__demo-ssl-fmnist-dae-v1__bbbb"}]
    assert _prune_stale_caches(caches, tmp_path, listed) == ["ideal__demo-ssl-fmnist-dae-v1__aaaa"]
    assert sorted(p.name for p in caches.iterdir()) == [
        "ideal__demo-ssl-fmnist-dae-v1__bbbb",
        "my-images__pixels-16px__cccc",
    ]
