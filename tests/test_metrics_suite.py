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
from workbench.metrics.suite import (
    METRICS,
    FeatureSet,
    evaluate,
    higher_is_better,
    metric_menu_text,
    resolve_metrics,
    select_metrics,
)
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
    # an extractor without weights (pixels) has no published weights to miss: no such warning
    assert not any("not the published pretrained" in w for w in rep.warnings)

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
    assert "not the published pretrained" not in printed
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


# ----------------------------------------------------------------------------- copy_rate in the suite


def test_copy_rate_in_the_suite_calibrated_or_with_one_warning(sets) -> None:
    from workbench.metrics.copy_rate import copy_rate

    copies = sets["train"][:300] + 1e-3
    gens = {"copies": copies, "fresh": sets["close"]}
    assert METRICS["copy_rate"].needs == {"train"} and not METRICS["copy_rate"].pairwise
    assert higher_is_better("copy_rate") is False
    assert "copy_rate" in resolve_metrics("default", {"ref", "train"})
    assert "copy_rate" not in resolve_metrics("default", {"ref"})

    rep = evaluate(sets["ref"], gens, train=sets["train"], test=sets["test"], metrics="copy_rate")
    for name, gen in gens.items():
        assert rep.values.at[name, "copy_rate"] == copy_rate(sets["train"], gen, sets["test"]).rate
    # measured: copies 1.0, fresh 0.0167 (5 of 300; about q = 0.01 for unseen data)
    assert rep.values.at["copies", "copy_rate"] == 1.0 and rep.values.at["fresh", "copy_rate"] < 0.05
    assert rep.info["copy_rate_criterion"] == "distance (calibrated on 200 test images, q=0.01)"
    assert not any("uncalibrated" in w for w in rep.warnings)

    rep = evaluate(sets["ref"], gens, train=sets["train"], metrics="copy_rate,authpct")
    assert rep.info["copy_rate_criterion"] == "ratio (uncalibrated: no test set)"
    (line,) = [w for w in rep.warnings if "uncalibrated" in w]  # once for both sets
    assert line.startswith("copy_rate (copies, fresh): ") and "--test DIR, or a set with role test" in line
    assert "copy_rate_criterion" not in evaluate(sets["ref"], gens, metrics="fd").info


# ----------------------------------------------------------------------------- what default and all skip


def test_all_and_default_say_what_they_skip_and_why(sets) -> None:
    gens = {"close": sets["close"]}
    rep = evaluate(sets["ref"], gens, train=sets["train"], metrics="all")
    assert rep.info["skipped"] == {
        "is": "needs classifier logits (this extractor has none)",
        "ct": "needs a held-out test set (--test)",
        "fld": "needs a held-out test set (--test)",
    }
    skipped_lines = [w for w in rep.warnings if "skipped" in w]
    assert skipped_lines == [
        "all: skipped is: needs classifier logits (this extractor has none); ct, fld: need a held-out test set (--test)"
    ]
    assert rep.info["metrics"] == [m for m in METRICS if m not in rep.info["skipped"]]
    assert list(rep.values.columns) == [c for m in rep.info["metrics"] for c in METRICS[m].fields]

    # default: only default metrics whose inputs are missing (fd_inf, cmmd, ... are not listed)
    rep = evaluate(sets["ref"], gens, metrics="default")
    assert rep.info["metrics"] == ["fd", "kd", "prdc", "vendi"]
    assert set(rep.info["skipped"]) == {"is", "authpct", "copy_rate", "ct"}
    assert rep.info["skipped"]["ct"] == "needs a training set (--train) and a held-out test set (--test)"
    # "default" adapts to the inputs given: recorded in info["skipped"], no warning line
    assert not any("skipped" in w for w in rep.warnings)
    # everything available: nothing skipped, no line
    logits = np.random.default_rng(0).normal(size=(300, 10))
    rep = evaluate(
        sets["ref"],
        {"close": FeatureSet(sets["close"], logits=logits)},
        train=sets["train"],
        test=sets["test"],
        metrics="default",
    )
    assert rep.info["skipped"] == {} and not any("skipped" in w for w in rep.warnings)
    # one set without logits among others with: the reason names it
    sel = select_metrics("all", {"ref"}, inputs={"logits": "classifier logits (b has none)"})
    assert sel.skipped["is"] == "needs classifier logits (b has none)"


def test_missing_skip_or_raise_for_explicit_names(sets) -> None:
    gens = {"close": sets["close"]}
    with pytest.raises(ValueError, match="metric 'is' needs classifier logits"):
        evaluate(sets["ref"], gens, metrics="default,is")
    rep = evaluate(sets["ref"], gens, metrics="fd,is,authpct", missing="skip")
    assert rep.info["metrics"] == ["fd"] and list(rep.values.columns) == ["fd"]
    assert rep.info["skipped"] == {
        "is": "needs classifier logits (this extractor has none)",
        "authpct": "needs a training set (--train)",
    }
    assert rep.warnings[0] == (
        "fd,is,authpct: skipped is: needs classifier logits (this extractor has none); "
        "authpct: needs a training set (--train)"
    )
    with pytest.raises(ValueError, match="no metric left to compute"):
        evaluate(sets["ref"], gens, metrics="is", missing="skip")
    with pytest.raises(ValueError, match="missing must be 'raise' or 'skip'"):
        evaluate(sets["ref"], gens, metrics="fd", missing="ignore")


def test_metric_menu_text_lists_every_metric() -> None:
    text = metric_menu_text()
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ")}
    assert list(rows) == list(METRICS)
    for name, spec in METRICS.items():
        assert (rows[name].split()[1] == "*") == spec.default, rows[name]
    assert "[needs --train and --test]" in rows["ct"] and "[needs classifier logits]" in rows["is"]
    assert "uses --test when given" in rows["copy_rate"]
    adds = next(line for line in text.splitlines() if "'all' adds" in line)
    added = [part.split(" ")[0] for part in adds.split("adds ", 1)[1].rstrip(".").split(", ")]
    assert added == [name for name, spec in METRICS.items() if not spec.default]
    assert "fld (needs --train and --test)" in adds


# ----------------------------------------------------------------------------- warnings once per cause


def test_fd_family_sample_size_warnings_are_one_line() -> None:
    import warnings

    from workbench.metrics.validation import SampleSizeWarning

    rng = np.random.default_rng(0)
    d = 40
    ref, a, b, train = (rng.normal(size=(n, d)) for n in (30, 30, 25, 100))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fd(ref, a)
    (w,) = caught  # one warning naming both sets, not one per set
    assert issubclass(w.category, SampleSizeWarning)
    assert str(w.message).startswith("real and fake have 30 samples for 40 feature dimensions")

    rep = evaluate(ref, {"a": a, "b": b}, train=train, metrics="fd,fd_inf,mifid,kd")
    singular = [line for line in rep.warnings if "singular" in line]
    assert singular == [
        "fd, fd_inf, mifid (a, b): real has 30 samples, fake 30 or 25 and the smallest fake subset 3 or 2 "
        "for 40 feature dimensions: their covariances are singular (rank below the number of samples) and the "
        "Fréchet distance is strongly biased upward. Use more samples than dimensions (FID convention: 50,000)."
    ]


def test_not_pretrained_warning_only_for_extractors_with_weights(tmp_path: Path, digits) -> None:
    images = digits[0]
    pixels = {n: extract(images[s], "pixels", out=tmp_path, name=n, progress=False) for n, s in _HALVES.items()}
    rep = evaluate_caches(pixels["ref"], {"gen": pixels["gen"]}, metrics="fd")
    assert not any("pretrained" in w for w in rep.warnings) and rep.info["pretrained"] is False
    random = _make_pixels(identity="random-init(seed=0)")
    nets = {n: extract(images[s], random, out=tmp_path, name=n, progress=False) for n, s in _HALVES.items()}
    rep = evaluate_caches(nets["ref"], {"gen": nets["gen"]}, metrics="fd")
    assert "weights 'random-init(seed=0)', not the published pretrained weights" in rep.warnings[0]


_HALVES = {"ref": slice(0, 100), "gen": slice(100, 200)}
