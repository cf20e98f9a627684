"""Protocol presets (``--protocol``): each reproduces a reference tool's preprocessing, image
selection, subsets and random generators.

Fast lane: the presets' settings, dgm-eval's sample selection and random stream against a
line-by-line transcription of its ``DataLoader.subsample_dataset`` / ``main`` / ``compute_scores``
(dgm-eval itself does not install: it pins old packages), and the metric values of each preset
against the peer's own functions on synthetic features (rtol 1e-6). Slow lane (``slow``,
``peers``): features of real images extracted under each preset against the peer's own code path
with the same random Inception weights, and the caches' protocol bookkeeping.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch

from workbench.metrics.protocols import dgm_eval_draws
from workbench.metrics.suite import FeatureSet, evaluate
from workbench.protocols import DEFAULT_PROTOCOL, PROTOCOLS, Protocol, manifest_protocol, resolve_protocol

FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


# --------------------------------------------------------------------------- presets


def test_resolve_protocol_names_and_errors():
    assert resolve_protocol(None).name == DEFAULT_PROTOCOL == "workbench"
    assert resolve_protocol("DGM-Eval ").name == "dgm-eval"
    custom = dataclasses.replace(PROTOCOLS["dgm-eval"], sample_size=10)
    assert resolve_protocol(custom) is custom
    with pytest.raises(ValueError) as err:
        resolve_protocol("fidelity")
    for name in ("workbench", "dgm-eval", "clean-fid", "pytorch-fid", "torch-fidelity"):
        assert name in str(err.value)
    with pytest.raises(dataclasses.FrozenInstanceError):
        PROTOCOLS["clean-fid"].kd_seed = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        PROTOCOLS["clean-fid"].extractors["inception"]["resize"] = "legacy"  # type: ignore[index]
    assert manifest_protocol({}) == "workbench"
    assert manifest_protocol({"protocol": {"name": "clean-fid"}}) == "clean-fid"


def test_extractor_options_of_each_preset():
    assert PROTOCOLS["workbench"].extractor_options("pixels", {"size": 8}) == {"size": 8}
    assert PROTOCOLS["torch-fidelity"].extractor_options("inception")["resize"] == "tf1"
    assert PROTOCOLS["clean-fid"].extractor_options("inception")["resize"] == "clean"
    assert PROTOCOLS["pytorch-fid"].extractor_options("inception")["normalization"] == "pytorch-fid"
    clip = PROTOCOLS["dgm-eval"].extractor_options("clip", {"model": "ViT-B-16"})
    assert clip == {
        "model": "ViT-B-16",
        "resize_mode": "squash",
        "normalization": "openai",
        "feature": "pre-projection",
    }
    # an option the preset sets to the same value is fine; another value is refused, naming both
    assert PROTOCOLS["dgm-eval"].extractor_options("dinov2", {"img_size": 224}) == {"img_size": 224}
    with pytest.raises(ValueError, match=r"img_size=56 \(the preset sets 224\).*--protocol dgm-eval"):
        PROTOCOLS["dgm-eval"].extractor_options("dinov2", {"img_size": 56})
    with pytest.raises(ValueError, match="--protocol clean-fid has no extractor 'dinov2'.*inception"):
        PROTOCOLS["clean-fid"].extractor_options("dinov2")


def _dgm_eval_subsample(n: int, nsample: int, seed: int) -> np.ndarray:
    """dgm-eval ``DataLoader.__init__`` + ``subsample_dataset`` (random_sample=True), transcribed."""
    inds = np.arange(n)
    if (nsample > 0) and (n > nsample):
        np.random.seed(seed)  # for consistent subsampling of datasets across runs
        inds = np.array(sorted(np.random.choice(n, nsample, replace=False)))
    return inds


@pytest.fixture
def global_numpy_state():
    """dgm-eval uses numpy's global generator: restore it after the test."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


@pytest.mark.usefixtures("global_numpy_state")
@pytest.mark.parametrize("n", [10, 50_000, 50_001, 123_457])
def test_dgm_eval_sample_rows_equal_its_subsample_dataset(n):
    proto = PROTOCOLS["dgm-eval"]
    rows = proto.sample_rows(n)
    expected = _dgm_eval_subsample(n, 50_000, 13579)
    if n <= 50_000:
        assert rows is None
    else:
        np.testing.assert_array_equal(rows, expected)
        assert rows.dtype == np.int64 and len(rows) == 50_000
    # --limit N is dgm-eval's --nsample N
    np.testing.assert_array_equal(proto.sample_rows(n, limit=7), _dgm_eval_subsample(n, 7, 13579))
    entry = proto.manifest_entry(n, None)
    assert entry["sample"] == {"size": 50_000, "seed": 13579, "from": n, "drawn": n > 50_000}
    # the other presets use every image, and --limit N the first N
    assert PROTOCOLS["clean-fid"].sample_rows(n) is None
    np.testing.assert_array_equal(PROTOCOLS["clean-fid"].sample_rows(n, limit=3), [0, 1, 2])
    assert "sample" not in PROTOCOLS["clean-fid"].manifest_entry(n, None)


# ------------------------------------------------------------ dgm-eval, transcribed


def _dgm_compute_mmd(feat_real, feat_gen, n_subsets, subset_size):
    """dgm_eval/metrics/mmd.py ``compute_mmd`` with sklearn's polynomial kernel, transcribed."""
    from sklearn.metrics.pairwise import polynomial_kernel

    m = min(feat_real.shape[0], feat_gen.shape[0])
    subset_size = min(subset_size, m)
    mmds = np.zeros(n_subsets)
    choice = np.random.choice
    for i in range(n_subsets):
        g = feat_real[choice(len(feat_real), subset_size, replace=False)]
        r = feat_gen[choice(len(feat_gen), subset_size, replace=False)]
        k_xx = polynomial_kernel(g, degree=3, gamma=None, coef0=1)
        k_yy = polynomial_kernel(r, degree=3, gamma=None, coef0=1)
        k_xy = polynomial_kernel(g, r, degree=3, gamma=None, coef0=1)
        mm = k_xx.shape[0]
        mmd2 = ((k_xx.sum(axis=1) - np.diagonal(k_xx)).sum() + (k_yy.sum(axis=1) - np.diagonal(k_yy)).sum()) / (
            mm * (mm - 1)
        )
        mmds[i] = mmd2 - 2 * k_xy.sum(axis=0).sum() / (mm * mm)
    return mmds


def _dgm_vendi(x):
    """dgm_eval/metrics/vendi.py ``compute_vendi_score`` (q=1, linear kernel on normalised rows)."""
    from sklearn import preprocessing

    x = preprocessing.normalize(x, axis=1)
    w = scipy.linalg.eigvalsh(x @ x.T / x.shape[0])
    w = w[w > 0]
    return np.exp(-(w * np.log(w)).sum())


def _dgm_inception_score(preds, splits=10):
    """dgm_eval/metrics/inception_score.py ``calculate_score`` (shuffle with RandomState(2020))."""
    n = preds.shape[0]
    preds = preds[np.random.RandomState(2020).permutation(n), :]
    split_scores = []
    for k in range(splits):
        part = preds[k * (n // splits) : (k + 1) * (n // splits), :]
        py = np.mean(part, axis=0)
        split_scores.append(np.exp(np.mean([scipy.stats.entropy(part[i, :], py) for i in range(part.shape[0])])))
    return np.mean(split_scores), np.std(split_scores)


def _dgm_eval_main(ref, test, gens, *, nsample, seed, reduced_n, kd_subsets, kd_subset_size, metrics):
    """dgm-eval ``main()`` and ``compute_scores`` with the model ``inception``, transcribed: every
    use of numpy's global generator in its order. Where dgm-eval leaves the generator unseeded, it
    is seeded with ``seed`` first (what the workbench's preset does). Returns the scores and rows."""
    import prdc as prdc_package

    np.random.seed(seed)  # stands for dgm-eval's unseeded global generator
    paths = [ref, *gens]
    if "is" in metrics:  # get_inception_scores: loaders of args.path[i] for i, path in enumerate(path[1:])
        for i, _path in enumerate(paths[1:]):
            _dgm_eval_subsample(len(paths[i]["features"]), nsample, seed)
    ref_rows = _dgm_eval_subsample(len(ref["features"]), nsample, seed)
    reps_real = ref["features"][ref_rows]
    if test is not None:
        _dgm_eval_subsample(len(test["features"]), nsample, seed)
    out = []
    for gen in gens:
        rows = _dgm_eval_subsample(len(gen["features"]), nsample, seed)
        reps = [reps_real, gen["features"][rows]]
        labels = gen["labels"][rows]
        scores = {"rows": rows}
        if "kd" in metrics:
            mmd_values = _dgm_compute_mmd(*reps, kd_subsets, kd_subset_size)
            scores["kd_value"], scores["kd_variance"] = mmd_values.mean(), mmd_values.std()
        if "prdc" in metrics:
            n_reduced = min(reduced_n, reps[0].shape[0], reps[1].shape[0])
            inds0 = np.random.choice(reps[0].shape[0], n_reduced, replace=False)
            inds1 = np.arange(reps[1].shape[0])
            inds1 = np.random.choice(inds1, min(inds1.shape[0], n_reduced), replace=False)
            scores.update(prdc_package.compute_prdc(reps[0][inds0], reps[1][inds1], nearest_k=5))
        if "vendi" in metrics:
            per_class = [_dgm_vendi(reps[1][labels == i]) for i in range(len(np.unique(labels)))]
            scores["mean vendi per class"] = np.mean(per_class)
        if "is" in metrics:
            z = gen["logits"][rows]
            p = np.exp(z - z.max(axis=1, keepdims=True))
            scores["inception score"], scores["inception std"] = _dgm_inception_score(p / p.sum(axis=1, keepdims=True))
        out.append(scores)
    return out, ref_rows


def _synthetic_set(rng, n, dim=6, shift=0.0, classes=3):
    return {
        "features": rng.normal(size=(n, dim)) + shift,
        "logits": rng.normal(size=(n, 12)) * 2,
        "labels": np.arange(n) % classes,
    }


@pytest.mark.usefixtures("global_numpy_state")
@pytest.mark.parametrize(
    "sizes",
    [
        {"ref": 60, "test": 45, "gens": [50, 35]},  # the reference (and a generated set) are reduced: seeded
        {"ref": 38, "test": None, "gens": [30, 36]},  # nothing reduced: dgm-eval unseeded, here the seed
        {"ref": 38, "test": None, "gens": [30, 50, 33]},  # seeded by the Inception-Score pass's loader of gen 1
    ],
    ids=["reduced", "unseeded", "is-pass"],
)
def test_dgm_eval_stream_equals_transcribed_compute_scores(sizes):
    rng = np.random.default_rng(7)
    ref = _synthetic_set(rng, sizes["ref"])
    test = _synthetic_set(rng, sizes["test"]) if sizes["test"] else None
    gens = [_synthetic_set(rng, n, shift=0.3 * (j + 1)) for j, n in enumerate(sizes["gens"])]
    metrics = ["kd", "prdc", "vendi", "is"]
    # dgm-eval's settings scaled down: --nsample 40, --reduced_n 30, KD 5 subsets of 20 rows
    proto = dataclasses.replace(PROTOCOLS["dgm-eval"], sample_size=40, prdc_subset=30, kd_subsets=5, kd_subset_size=20)
    expected, ref_rows = _dgm_eval_main(
        ref, test, gens, nsample=40, seed=13579, reduced_n=30, kd_subsets=5, kd_subset_size=20, metrics=metrics
    )

    def reduced(s):
        rows = proto.sample_rows(len(s["features"]))
        keep = np.arange(len(s["features"])) if rows is None else rows
        record = proto.manifest_entry(len(s["features"]), None)["sample"]
        fs = FeatureSet(s["features"][keep], s["logits"][keep], s["labels"][keep], sample=record)
        return fs, keep

    ref_fs, ours_ref_rows = reduced(ref)
    np.testing.assert_array_equal(ours_ref_rows, ref_rows)
    gen_fs = {}
    for j, (g, exp) in enumerate(zip(gens, expected)):
        gen_fs[f"g{j}"], rows = reduced(g)
        np.testing.assert_array_equal(rows, exp["rows"])  # the same images of every set
    report = evaluate(
        ref_fs,
        gen_fs,
        test=reduced(test)[0] if test is not None else None,
        metrics=",".join(metrics),
        protocol=proto,
    )
    assert not report.errors
    for j, exp in enumerate(expected):
        row = report.values.loc[f"g{j}"]
        for ours, theirs in [
            ("kd", "kd_value"),
            ("kd_std", "kd_variance"),
            ("precision", "precision"),
            ("recall", "recall"),
            ("density", "density"),
            ("coverage", "coverage"),
            ("vendi", "mean vendi per class"),
            ("is", "inception score"),
            ("is_std", "inception std"),
        ]:
            assert row[ours] == pytest.approx(float(exp[theirs]), rel=1e-6, abs=1e-12), (ours, j)
    seeded_by = report.info["protocol_stream"]
    if sizes["ref"] == 38 and len(sizes["gens"]) == 2:
        assert all("protocol seed 13579" in v for v in seeded_by.values())
        assert any("unseeded" in w and "kd" in w for w in report.warnings)
    else:
        assert not any("protocol seed" in v for v in seeded_by.values())


def test_dgm_eval_draws_follow_the_requested_metrics():
    """PRDC's rows depend on whether KD drew before it, as in dgm-eval's compute_scores."""
    with_kd = dgm_eval_draws(40, {"g": 30}, metrics=["kd", "prdc"], seed=1, kd_subsets=2, kd_subset_size=5)
    alone = dgm_eval_draws(40, {"g": 30}, metrics=["prdc"], seed=1)
    assert with_kd["g"].kd is not None and len(with_kd["g"].kd) == 2 and alone["g"].kd is None
    assert not np.array_equal(with_kd["g"].prdc[0], alone["g"].prdc[0])
    rs = np.random.RandomState(1)
    np.testing.assert_array_equal(alone["g"].prdc[0], rs.choice(40, 30, replace=False))


def test_dgm_eval_vendi_needs_labels_and_foreign_metrics_warn():
    rng = np.random.default_rng(0)
    ref, gen = rng.normal(size=(30, 5)), rng.normal(size=(25, 5))
    report = evaluate(ref, {"flat": gen}, metrics="vendi,fd,swd", protocol="dgm-eval")
    assert "no class labels" in report.errors[("flat", "vendi")]
    assert np.isfinite(report.values.loc["flat", "fd"])
    assert any(w.startswith("swd is outside the dgm-eval preset") for w in report.warnings)
    assert report.info["protocol"] == "dgm-eval"
    with pytest.raises(ValueError, match="no bootstrap intervals"):
        evaluate(ref, {"flat": gen}, metrics="fd", protocol="clean-fid", bootstrap=10)
    # "default" means the tool's own metrics
    assert list(evaluate(ref, {"flat": gen}, protocol="pytorch-fid").values.columns) == ["fd"]
    assert evaluate(ref, {"flat": gen}, protocol="workbench").info["protocol"] == "workbench"


# ------------------------------------------------------- metric values vs the peers


@pytest.fixture(scope="module")
def kid_sized():
    """Sets of 130 and 120 rows; the KID subsets are made 100 rows on both sides (instead of 1000,
    which costs about 40 s here) through each tool's own subset-size argument."""
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(130, 16))
    gen = rng.normal(size=(120, 16)) * 1.1 + 0.05
    logits = rng.normal(size=(120, 30)) * 3
    return ref, gen, logits


def _small_kid(name: str) -> Protocol:
    return dataclasses.replace(PROTOCOLS[name], kd_subset_size=100)


@pytest.mark.slow  # importing clean-fid alone takes seconds here
@pytest.mark.peers
@pytest.mark.usefixtures("global_numpy_state")
def test_clean_fid_preset_metrics_equal_clean_fid(kid_sized):
    cleanfid_fid = pytest.importorskip("cleanfid.fid")
    ref, gen, _ = kid_sized
    report = evaluate(ref, {"g": gen}, protocol=_small_kid("clean-fid"))
    assert list(report.values.columns) == ["fd", "kd", "kd_std"]
    assert report.values.loc["g", "fd"] == pytest.approx(cleanfid_fid.fid_from_feats(ref, gen), rel=1e-6)
    np.random.seed(0)  # clean-fid draws from numpy's global generator, which it never seeds
    assert report.values.loc["g", "kd"] == pytest.approx(
        cleanfid_fid.kernel_distance(ref, gen, max_subset_size=100), rel=1e-6
    )
    assert np.isnan(report.values.loc["g", "kd_std"])  # clean-fid reports no std


@pytest.mark.peers
def test_torch_fidelity_preset_metrics_equal_torch_fidelity(kid_sized):
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid")
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_isc import isc_features_to_metric
    from torch_fidelity.metric_prc import prc_features_to_metric

    ref, gen, logits = kid_sized
    report = evaluate(ref, {"g": FeatureSet(gen, logits)}, protocol=_small_kid("torch-fidelity"))
    row = report.values.loc["g"]
    g, r = torch.from_numpy(gen), torch.from_numpy(ref)  # torch-fidelity: input1 = generated, input2 = real
    kid = metric_kid.kid_features_to_metric(g, r, kid_subset_size=100, verbose=False)
    assert row["kd"] == pytest.approx(kid["kernel_inception_distance_mean"], rel=1e-6)
    assert row["kd_std"] == pytest.approx(kid["kernel_inception_distance_std"], rel=1e-6)
    isc = isc_features_to_metric(torch.from_numpy(logits))
    assert row["is"] == pytest.approx(isc["inception_score_mean"], rel=1e-6)
    assert row["is_std"] == pytest.approx(isc["inception_score_std"], rel=1e-6)
    fid = fid_statistics_to_metric(fid_features_to_statistics(g), fid_features_to_statistics(r), verbose=False)
    assert row["fd"] == pytest.approx(fid["frechet_inception_distance"], rel=1e-6)
    prc = prc_features_to_metric(g.float(), r.float(), verbose=False)
    assert row["ipr_precision"] == pytest.approx(prc["precision"], abs=1e-6)  # torch-fidelity: float32 mean
    assert row["ipr_recall"] == pytest.approx(prc["recall"], abs=1e-6)
    # torch-fidelity refuses KID with fewer samples than its subset size: the cell says so
    small = evaluate(ref, {"g": FeatureSet(gen, logits)}, metrics="kd", protocol="torch-fidelity")
    assert "refuses KID subsets of 1000 from sets of 120 (generated)" in small.errors[("g", "kd")]


@pytest.mark.peers
def test_pytorch_fid_preset_metric_equals_pytorch_fid(kid_sized):
    fid_score = pytest.importorskip("pytorch_fid.fid_score")
    ref, gen, _ = kid_sized
    report = evaluate(ref, {"g": gen}, protocol="pytorch-fid")
    theirs = fid_score.calculate_frechet_distance(
        gen.mean(0), np.cov(gen, rowvar=False), ref.mean(0), np.cov(ref, rowvar=False)
    )
    assert report.values.loc["g", "fd"] == pytest.approx(theirs, rel=1e-6)


# -------------------------------------------------- features of images vs the peers


def _fashion(n: int, start: int = 0) -> np.ndarray:
    with gzip.open(FASHION, "rb") as fh:
        raw = np.frombuffer(fh.read(16 + (start + n) * 784), dtype=np.uint8)
    return raw[16 + start * 784 :].reshape(n, 28, 28)


def _rgb_folder(folder: Path, n: int, start: int, size=(40, 26)) -> list[Path]:
    """``n`` Fashion-MNIST images, tinted into RGB and resized to ``size`` (W x H, not square)."""
    from PIL import Image

    folder.mkdir(parents=True)
    paths = []
    for i, gray in enumerate(_fashion(n, start)):
        g = gray.astype(np.int64)
        rgb = np.stack([g, 255 - g, (g // 2 + 40 * i) % 256], axis=2).astype(np.uint8)
        path = folder / f"{i:03d}.png"
        Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def inception_state():
    from workbench.extractors import create_extractor

    ext = create_extractor("inception", weights="none", device="cpu")
    return {k: v.clone() for k, v in ext.net.state_dict().items()}


@pytest.mark.slow
@pytest.mark.peers
def test_torch_fidelity_preset_features_equal_torch_fidelity(tmp_path, inception_state):
    pytest.importorskip("torch_fidelity")
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    import workbench as wb

    paths = _rgb_folder(tmp_path / "gen", 3, 0)
    weights = tmp_path / "inception.pth"
    torch.save(inception_state, weights)
    peer = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(weights)
    )
    from PIL import Image

    batch = torch.stack([torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1) for p in paths])
    pool3, logits = peer(batch)
    cache = wb.extract(
        tmp_path / "gen",
        "inception",
        weights="none",
        out=tmp_path / "caches",
        progress=False,
        protocol="torch-fidelity",
    )
    assert cache.manifest["protocol"]["name"] == "torch-fidelity"
    assert cache.manifest["extractor"]["preprocessing"]["resize_mode"] == "tf1"
    np.testing.assert_allclose(np.asarray(cache.features), pool3.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(cache.logits), logits.numpy(), rtol=1e-6, atol=1e-6)
    # the workbench's own (legacy) resize gives other features: about 0.7% relative on these images
    legacy = wb.extract(tmp_path / "gen", "inception", weights="none", out=tmp_path / "caches", progress=False)
    rel = np.abs(np.asarray(legacy.features) - pool3.numpy()).max() / np.abs(pool3.numpy()).max()
    assert rel > 1e-3


@pytest.mark.slow
@pytest.mark.peers
def test_clean_fid_preset_features_equal_clean_fid(tmp_path, inception_state):
    cleanfid_fid = pytest.importorskip("cleanfid.fid")
    import workbench as wb
    from workbench.extractors.inception_net import FIDInceptionV3

    _rgb_folder(tmp_path / "imgs", 3, 10)
    net = FIDInceptionV3().eval()
    net.load_state_dict(inception_state)

    def model(x):  # clean-fid's InceptionV3W: x in [0, 255], 299 x 299, normalised (x - 128) / 128
        return net.pool3((x - 128) / 128)

    theirs = cleanfid_fid.get_folder_features(
        str(tmp_path / "imgs"),
        model,
        num_workers=0,
        batch_size=8,
        device=torch.device("cpu"),
        mode="clean",
        verbose=False,
    )
    cache = wb.extract(
        tmp_path / "imgs", "inception", weights="none", out=tmp_path / "caches", progress=False, protocol="clean-fid"
    )
    np.testing.assert_allclose(np.asarray(cache.features), theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
@pytest.mark.peers
def test_pytorch_fid_preset_features_equal_pytorch_fid(tmp_path, inception_state):
    pytorch_fid_inception = pytest.importorskip("pytorch_fid.inception")
    from pytorch_fid import fid_score

    import workbench as wb

    paths = _rgb_folder(tmp_path / "imgs", 3, 20)
    mp = pytest.MonkeyPatch()
    mp.setattr(pytorch_fid_inception, "load_state_dict_from_url", lambda *a, **k: inception_state)
    try:
        model = pytorch_fid_inception.InceptionV3([3]).eval()
    finally:
        mp.undo()
    theirs = fid_score.get_activations([str(p) for p in paths], model, batch_size=3, device="cpu", num_workers=0)
    cache = wb.extract(
        tmp_path / "imgs", "inception", weights="none", out=tmp_path / "caches", progress=False, protocol="pytorch-fid"
    )
    np.testing.assert_allclose(np.asarray(cache.features), theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
@pytest.mark.usefixtures("global_numpy_state")
def test_dgm_eval_extraction_draws_its_sample_and_caches_refuse_mixing(tmp_path, capsys):
    import workbench as wb
    from workbench.metrics.from_caches import IncompatibleCachesError, evaluate_caches

    images = np.stack([np.repeat(g[..., None], 3, axis=2) for g in _fashion(12, 30)])
    from workbench.extractors import create_extractor

    ext = create_extractor("dinov2", weights="none", model="vits14", device="cpu")  # 224 px, as the preset
    common = dict(out=tmp_path / "caches", progress=False)
    # --limit 5 under dgm-eval is its --nsample 5: a random sample with its seed, sorted
    drawn = wb.extract(images, ext, limit=5, protocol="dgm-eval", name="real", **common)
    expected_ids = [f"real[{i}]" for i in _dgm_eval_subsample(12, 5, 13579)]
    assert list(drawn.meta["id"]) == expected_ids and expected_ids != [f"real[{i}]" for i in range(5)]
    assert drawn.manifest["protocol"]["sample"] == {"size": 5, "seed": 13579, "from": 12, "drawn": True}
    other = wb.extract(images[:6], ext, protocol="dgm-eval", name="gen", **common)
    assert other.manifest["protocol"]["sample"]["drawn"] is False and len(other) == 6
    own = wb.extract(images[:6], ext, name="gen", **common)
    assert own.path != other.path and manifest_protocol(own.manifest) == "workbench"
    assert manifest_protocol(json.loads((other.path / "manifest.json").read_text())) == "dgm-eval"
    np.testing.assert_array_equal(np.asarray(own.features), np.asarray(other.features))  # same preprocessing

    report = evaluate_caches(drawn, {"gen": other}, metrics="fd,kd")
    assert report.info["protocol"] == "dgm-eval" and not report.errors
    with pytest.raises(IncompatibleCachesError, match="different protocols.*'dgm-eval' vs 'workbench'"):
        evaluate_caches(drawn, {"gen": own}, metrics="fd")
    with pytest.raises(IncompatibleCachesError, match="re-extract them with `workbench extract --protocol clean-fid`"):
        evaluate_caches(drawn, {"gen": other}, metrics="fd", protocol="clean-fid")
    from workbench.cli import main

    assert main(["info", str(drawn.path)]) == 0
    said = capsys.readouterr().out
    assert "protocol   dgm-eval: " in said and "sample: 5 of 12 images drawn with seed 13579" in said
    assert main(["metrics", "--ref", str(drawn.path), "--gen", f"g={other.path}", "-m", "fd", "-q"]) == 0
    assert main(["metrics", "--ref", str(drawn.path), "--gen", f"g={own.path}", "-m", "fd", "-q"]) == 2
    assert "different protocols" in capsys.readouterr().err
    assert main(["metrics", "--ref", str(drawn.path), "--gen", f"g={other.path}", "--protocol", "torch-fidelity"]) == 2
    assert "--protocol torch-fidelity: the caches were extracted under protocol 'dgm-eval'" in capsys.readouterr().err
    assert main(["extract", str(drawn.path), "-e", "dinov2", "--protocol", "fid"]) == 2
    assert "unknown protocol 'fid'; choose one of: workbench, pytorch-fid" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--protocol clean-fid has no extractor 'dinov2'"):
        wb.extract(images, "dinov2", weights="none", protocol="clean-fid", **common)
    with pytest.raises(ValueError, match="img_size=56 .*contradicts --protocol dgm-eval"):
        wb.extract(images, "dinov2", weights="none", protocol="dgm-eval", extractor_options={"img_size": 56}, **common)


@pytest.mark.slow
def test_dgm_eval_clip_preset_squashes_like_dgm_eval(tiny_clip_config):
    """dgm-eval's CLIPEncoder.transform (no --clean_resize), transcribed with torchvision."""
    import torchvision.transforms.functional as TF
    from PIL import Image
    from torchvision.transforms import InterpolationMode, Normalize

    from workbench.extractors import create_extractor

    options = PROTOCOLS["dgm-eval"].extractor_options("clip", {"model": tiny_clip_config})
    ext = create_extractor("clip", weights="none", device="cpu", **options)
    own = create_extractor("clip", weights="none", device="cpu", model=tiny_clip_config)
    mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    img = np.stack([_fashion(1, 40)[0][:, 3:23]] * 3, axis=2)  # 28 x 20, not square
    size = (32, 32)
    x = TF.to_tensor(TF.resize(Image.fromarray(img), size, interpolation=InterpolationMode.BICUBIC).convert("RGB"))
    theirs = Normalize(mean, std)(TF.center_crop(x, size)).numpy()
    np.testing.assert_allclose(ext.preprocessor(img), theirs, rtol=0, atol=1e-6)
    # the workbench's default (shorter side + centre crop) differs on a non-square image
    assert np.abs(own.preprocessor(img) - theirs).max() > 0.05


def test_protocol_is_a_frozen_dataclass_with_documented_fields():
    names = [f.name for f in dataclasses.fields(Protocol)]
    doc = Protocol.__doc__ or ""
    for name in names:
        assert f"{name}:" in doc, name
