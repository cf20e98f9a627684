"""The metric suite and `workbench metrics`: one table, the same numbers as the single functions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workbench.cache import extract
from workbench.extractors.base import WeightsInfo
from workbench.extractors.pixels import BoxResize, PixelsExtractor
from workbench.metrics.frechet import fd
from workbench.metrics.from_caches import IncompatibleCachesError, evaluate_caches
from workbench.metrics.prdc import prdc
from workbench.metrics.suite import METRICS, FeatureSet, evaluate, higher_is_better, resolve_metrics
from workbench.metrics.vendi import vendi


@pytest.fixture(scope="module")
def sets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "ref": rng.normal(size=(400, 12)),
        "close": rng.normal(size=(300, 12)),
        "shifted": rng.normal(size=(300, 12)) + 0.5,
        "train": rng.normal(size=(500, 12)),
        "test": rng.normal(size=(200, 12)),
    }


def test_values_equal_the_single_functions(sets) -> None:
    rep = evaluate(sets["ref"], {"close": sets["close"], "shifted": sets["shifted"]}, metrics="fd,prdc,vendi")
    for name in ("close", "shifted"):
        assert rep.values.at[name, "fd"] == pytest.approx(fd(sets["ref"], sets[name]), rel=1e-12)
        p = prdc(sets["ref"], sets[name], k=5)
        assert rep.values.at[name, "coverage"] == p.coverage and rep.values.at[name, "density"] == p.density
        assert rep.values.at[name, "vendi"] == pytest.approx(float(vendi(sets[name])), rel=1e-12)
    assert rep.values.at["close", "fd"] < rep.values.at["shifted", "fd"]
    assert rep.low.isna().all().all()  # no bootstrap asked


def test_default_and_all_follow_available_inputs(sets) -> None:
    assert resolve_metrics("default", {"ref"}) == ["fd", "kd", "prdc", "vendi"]
    assert "authpct" in resolve_metrics("default", {"ref", "train"})
    everything = resolve_metrics("all", {"ref", "train", "test", "logits"})
    assert everything == list(METRICS)
    with pytest.raises(ValueError, match="needs --train"):
        resolve_metrics("authpct", {"ref"})
    with pytest.raises(ValueError, match="unknown metric"):
        resolve_metrics("fid,nope", {"ref"})
    assert higher_is_better("fd") is False and higher_is_better("coverage") is True and higher_is_better("ct") is None


def test_memorization_metrics_and_logits(sets) -> None:
    logits = np.random.default_rng(0).normal(size=(300, 10))
    copies = sets["train"][:300] + 1e-3
    rep = evaluate(
        sets["ref"],
        {"copies": FeatureSet(copies, logits=logits), "fresh": FeatureSet(sets["close"], logits=logits)},
        train=sets["train"],
        test=sets["test"],
        metrics="authpct,ct,is",
    )
    # measured: copies 0.0, fresh 61.0 (same-distribution samples in 12-d are often nearer a training
    # point than its own nearest neighbour, so AuthPct of real data is far from 100)
    assert rep.values.at["copies", "authpct"] < 5 < 40 < rep.values.at["fresh", "authpct"]
    assert rep.values.at["copies", "ct"] < -3 < rep.values.at["fresh", "ct"]
    assert rep.values.at["copies", "is"] == rep.values.at["fresh", "is"] > 1


@pytest.mark.slow
def test_bootstrap_intervals_are_seeded_and_contain_the_value(sets) -> None:
    gens = {"close": sets["close"], "shifted": sets["shifted"]}
    a = evaluate(sets["ref"], gens, metrics="fd,prdc", bootstrap=8, seed=5)
    b = evaluate(sets["ref"], gens, metrics="fd,prdc", bootstrap=8, seed=5)
    assert a.to_frame().equals(b.to_frame())
    frame = a.to_frame()
    for col in ("fd", "precision", "coverage"):
        assert (frame[f"{col}_low"] <= frame[col]).all() and (frame[col] <= frame[f"{col}_high"]).all()
        assert (frame[f"{col}_high"] > frame[f"{col}_low"]).all()
    assert (frame["coverage_high"] <= 1.0).all()
    assert any("bootstrapping a Frechet distance" in w for w in a.warnings)
    doc = a.to_json()
    assert doc["rows"][0]["fd"]["value"] == pytest.approx(frame.at["close", "fd"])
    assert doc["higher_is_better"]["fd"] is False


def _make_pixels(identity: str = "no-weights", size: int = 8) -> PixelsExtractor:
    return PixelsExtractor(
        name="pixels",
        variant=f"{size}px",
        dim=3 * size * size,
        preprocessor=BoxResize(size),
        weights=WeightsInfo(spec="none", pretrained=False, identity=identity),
    )


@pytest.mark.slow
def test_caches_cli_and_incompatible_extractors(tmp_path: Path, fmnist_test, capsys) -> None:
    from workbench.cli import main

    images, labels = fmnist_test
    ext = _make_pixels()
    ref = extract(images[:600], ext, out=tmp_path, name="ref", progress=False)
    good = extract(images[600:1000], ext, out=tmp_path, name="good", progress=False)
    dark = extract((images[1000:1400] // 3), ext, out=tmp_path, name="dark", progress=False)
    rep = evaluate_caches(ref, [good, dark], metrics="fd,prdc")
    assert list(rep.values.index) == ["good", "dark"]
    assert rep.values.at["good", "fd"] < rep.values.at["dark", "fd"]
    assert rep.values.at["good", "fd"] == pytest.approx(fd(ref.features, good.features), rel=1e-12)
    assert "not the published pretrained" in rep.warnings[0]

    out_json = tmp_path / "m.json"
    code = main(
        [
            "metrics",
            "--ref",
            str(ref.path),
            "--gen",
            f"G={good.path}",
            "--gen",
            f"D={dark.path}",
            "-m",
            "fd,vendi",
            "--json",
            str(out_json),
            "-q",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == ["model", "fd", "vendi"]
    assert "not the published pretrained" in printed
    doc = json.loads(out_json.read_text())
    assert [r["model"] for r in doc["rows"]] == ["G", "D"]
    assert doc["rows"][1]["fd"]["value"] == pytest.approx(rep.values.at["dark", "fd"], rel=1e-12)

    other = extract(images[600:1000], _make_pixels(size=4), out=tmp_path, name="other", progress=False)
    with pytest.raises(IncompatibleCachesError, match="variant"):
        evaluate_caches(ref, [other])
    assert main(["metrics", "--ref", str(ref.path), "--gen", str(other.path), "-q"]) == 2
    assert "different extractor settings" in capsys.readouterr().err
    assert main(["metrics", "--ref", str(ref.path), "--gen", str(good.path), "-m", "authpct", "-q"]) == 2
    assert "needs --train" in capsys.readouterr().err
