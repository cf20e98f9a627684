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
    from workbench.demo import steps as S

    _, _, out, _, _ = built
    calls = {"n": 0}
    real_extract = S.extract

    def interrupted(*args, **kwargs):  # Ctrl-C while the third cache is being extracted
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_extract(*args, **kwargs)

    monkeypatch.setattr(S, "extract", interrupted)
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
    monkeypatch.setattr(S, "extract", real_extract)
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


# ------------------------------------------------------------------ the domain workspace (demo-foreign)

DOMAIN_SETS = ("reference", "vae-pool", "vae", "hist-matched", "top2-matched")
DOMAIN_EXTRACTORS = ("pixels", "demo-classifier", "demo-ssl", "demo-foreign")


def test_domain_workspace_is_complete_and_opens(built) -> None:
    from workbench.demo import find_demo_domain
    from workbench.demo.extractors import DOMAIN_CLASS_INDICES, FOREIGN_CLASSES
    from workbench.workspace import Workspace

    first, _, out, _, _ = built
    domain = find_demo_domain(out)
    assert domain == out / "domain"
    ws = Workspace.open(domain)
    assert ws.reference == "reference" and set(ws.generated) == {"vae", "hist-matched", "top2-matched"}
    index = load_workspace(domain)
    assert {(c["set"], c["extractor"]) for c in index["caches"]} == {
        (s, e) for s in DOMAIN_SETS for e in DOMAIN_EXTRACTORS
    }
    ref = ws.cache("reference", "pixels")
    # the reference: test-split images of the five domain classes only, a seeded subset of n_reference
    assert len(ref) == TINY.n_reference and set(np.unique(ref.labels)) == set(DOMAIN_CLASS_INDICES)
    splits = np.load(domain / "zoo" / "splits.npz", allow_pickle=False)
    from workbench.images.datasets import load_fashion_mnist

    sx, sy = load_fashion_mnist("test")
    np.testing.assert_array_equal(sy[splits["reference_index"]], ref.labels)
    pool = ws.cache("vae-pool", "demo-foreign")
    assert (
        len(pool) == TINY.n_pool
        and np.bincount(pool.labels, minlength=10)[list(DOMAIN_CLASS_INDICES)].tolist() == [TINY.n_pool // 5] * 5
    )
    # demo-foreign gives each domain image one of *its* five classes, none of which the domain has
    assert pool.logits.shape == (TINY.n_pool, 5) and ref.class_names == FASHION_MNIST_CLASSES
    assert ws.cache("reference", "demo-foreign").manifest["extractor_class_names"] == FOREIGN_CLASSES
    assert not set(FOREIGN_CLASSES) & {FASHION_MNIST_CLASSES[i] for i in DOMAIN_CLASS_INDICES}
    # the main index points to the domain and lists the foreign model, trained on the tops only
    main = load_workspace(out)
    assert main["domain"]["path"] == "domain" and main["domain"]["foreign_classifier"] == "demo-foreign"
    model = main["models"]["demo-foreign"]
    assert model["pretrained"] is False and model["classes"] == FOREIGN_CLASSES
    train_labels = workspace_cache("train", "pixels", out).labels
    assert model["training_images"] == int(np.isin(train_labels, [0, 2, 3, 4, 6]).sum())
    assert model["test_accuracy"] > 0.4  # 5 classes: chance 0.2; measured 0.56 (this 1,021-image build)
    assert "demo-foreign" in first.index["domain"]["topn_weighted_relative_change"]["1"]


def test_domain_foreign_cache_is_what_the_network_computes(built) -> None:
    from workbench.demo.models import DemoClassifierNet, classify
    from workbench.extractors.weights import load_state_dict_file

    _, _, out, _, _ = built
    domain = out / "domain"
    net = DemoClassifierNet(num_classes=5)
    net.load_state_dict(load_state_dict_file(out / "models" / "demo-foreign.safetensors"))
    with np.load(domain / "zoo" / "vae.npz", allow_pickle=False) as z:
        images = z["arr_0"][:, :, :, 0]
    cache = workspace_cache("vae", "demo-foreign", domain)
    np.testing.assert_allclose(classify(net.eval(), images), cache.logits, rtol=1e-4, atol=1e-4)


def test_domain_matched_sets_match_the_foreign_histogram(built) -> None:
    _, _, out, _, _ = built
    domain = out / "domain"

    def top1(set_name: str) -> np.ndarray:
        logits = np.asarray(workspace_cache(set_name, "demo-foreign", domain).logits)
        return np.bincount(logits.argmax(1), minlength=5) / len(logits)

    def top2(set_name: str) -> np.ndarray:  # independent: argsort, both votes counted
        logits = np.asarray(workspace_cache(set_name, "demo-foreign", domain).logits)
        top = np.argsort(-logits, axis=1, kind="stable")[:, :2]
        return np.bincount(top.ravel(), minlength=5) / top.size

    ref1, ref2 = top1("reference"), top2("reference")
    # Top-1: exact counts n * p_ref (largest remainder) wherever the pool has the class
    assert np.abs(top1("hist-matched") - ref1)[top1("vae-pool") > 0].max() <= 1.0 / TINY.n_per_set + 1e-9
    assert np.abs(top1("hist-matched") - ref1).sum() < np.abs(top1("vae") - ref1).sum()
    # Top-2: a multinomial draw from the matching weights, closer than the pool
    assert np.abs(top2("top2-matched") - ref2).sum() < np.abs(top2("vae-pool") - ref2).sum()
    with np.load(domain / "zoo" / "hist-matched.npz", allow_pickle=False) as z:
        assert (z["pool_index"] < TINY.n_pool).all()


def test_domain_experiment_recomputed_independently(built) -> None:
    """fd_weighted of the stored experiment against a weighted covariance (np.cov aweights) + scipy sqrtm."""
    import scipy.linalg

    _, _, out, _, _ = built
    domain = out / "domain"
    exp = load_workspace(domain)["topn_experiment"]["results"]["1"]
    ref_logits = np.asarray(workspace_cache("reference", "demo-foreign", domain).logits)
    pool_logits = np.asarray(workspace_cache("vae-pool", "demo-foreign", domain).logits)
    p_ref = np.bincount(ref_logits.argmax(1), minlength=5) / len(ref_logits)
    pool_c = pool_logits.argmax(1)
    p_pool = np.bincount(pool_c, minlength=5) / len(pool_c)
    w = np.where(p_ref[pool_c] > 0, p_ref[pool_c] / p_pool[pool_c], 0.0)
    w *= len(w) / w.sum()  # frequency weights summing to the pool size, as the module scales them

    def fd(mu1, s1, mu2, s2):
        covmean = scipy.linalg.sqrtm(s1 @ s2).real
        return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))

    for ext in ("demo-foreign", "demo-ssl"):
        r = np.asarray(workspace_cache("reference", ext, domain).features, np.float64)
        f = np.asarray(workspace_cache("vae-pool", ext, domain).features, np.float64)
        want_w = fd(
            r.mean(0),
            np.cov(r, rowvar=False),
            np.average(f, axis=0, weights=w),
            np.cov(f, rowvar=False, fweights=None, aweights=w, ddof=0) * w.sum() / (w.sum() - 1),
        )
        want_0 = fd(r.mean(0), np.cov(r, rowvar=False), f.mean(0), np.cov(f, rowvar=False))
        assert exp["fd_original"][ext] == pytest.approx(want_0, rel=1e-4), ext
        assert exp["fd_weighted"][ext] == pytest.approx(want_w, rel=1e-3), ext
        assert exp["weighted_relative_change"][ext] == pytest.approx(want_w / want_0 - 1, abs=1e-3), ext
    assert exp["foreign_tv_weighted"] < 0.25 * exp["foreign_tv_original"]  # (classes the pool lacks stay unmatched)


def test_class_histogram_shows_the_foreign_classes(built) -> None:
    from workbench.demo.extractors import FOREIGN_CLASSES
    from workbench.widgets import ClassHistogram
    from workbench.workspace import Workspace

    _, _, out, _, _ = built
    ws = Workspace.open(out / "domain")
    view = ClassHistogram(ws, classifier="demo-foreign", background=False)
    assert set(view.frame["class_name"]) <= set(FOREIGN_CLASSES) and len(view.frame) >= 2
    logits = np.asarray(ws.cache("reference", "demo-foreign").logits)
    shares = np.bincount(logits.argmax(1), minlength=5) / len(logits)
    for _, row in view.frame.iterrows():
        assert row["real_share"] == pytest.approx(shares[FOREIGN_CLASSES.index(row["class_name"])]), row
    assert "demo-foreign" in view.info.value
    top = view.frame["class_name"].iloc[0]
    view.class_name = top
    assert view.real_grid.samples is not None and len(view.real_grid.samples) == int(round(shares.max() * len(logits)))
    # without classifier=, the view shows the sets' own (domain) labels
    plain = ClassHistogram(ws, background=False)
    assert set(plain.frame["class_name"]) == {"Trouser", "Sandal", "Sneaker", "Bag", "Ankle boot"}
    with pytest.raises(ValueError, match="no trained logits"):
        ClassHistogram(ws, classifier="demo-ssl", background=False)
