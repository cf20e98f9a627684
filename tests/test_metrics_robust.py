"""Nothing lost, nothing silent: per-cell metric errors, merged metric names, scale-proof metrics.

* A metric that fails for one generated set leaves an error in that cell only (report, text
  table, JSON, HTML, CLI exit status); all-zero rows (black images) are left out of cosine
  metrics with a warning naming them.
* ``-m fd,fd`` computes fd once; duplicate ``--gen`` names are an error.
* k-NN metrics (PRDC, improved P&R, AuthPct, C_T) give the same results at any feature
  magnitude; CMMD, KD and FD are exact at large magnitudes (checked against ``np.longdouble``
  full-matrix references and closed forms) or raise a clear ValueError.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.cache import extract
from workbench.extractors.base import WeightsInfo
from workbench.extractors.pixels import BoxResize, PixelsExtractor
from workbench.metrics import suite
from workbench.metrics.authenticity import authenticity
from workbench.metrics.cmmd import cmmd
from workbench.metrics.ct_score import ct_score
from workbench.metrics.frechet import fd
from workbench.metrics.from_caches import evaluate_caches
from workbench.metrics.kernel_distance import kd, kd_subset_indices
from workbench.metrics.neighbors import knn
from workbench.metrics.prdc import prdc
from workbench.metrics.precision_recall import precision_recall
from workbench.metrics.suite import evaluate, resolve_metrics
from workbench.metrics.validation import ExcludedRowsWarning, power_of_two_scale
from workbench.metrics.vendi import vendi


def _pixels() -> PixelsExtractor:
    return PixelsExtractor(
        name="pixels",
        variant="8px",
        dim=192,
        preprocessor=BoxResize(8),
        weights=WeightsInfo(spec="none", pretrained=False, identity="no-weights"),
    )


@pytest.fixture(scope="module")
def caches(tmp_path_factory, fmnist_test):
    """Pixel caches: ref (300), gen with two black images (rows 0 and 3), ok (200), tiny (4 images)."""
    images, _ = fmnist_test
    out = tmp_path_factory.mktemp("robust-caches")
    ext = _pixels()
    black = images[300:500].copy()
    black[[0, 3]] = 0
    return {
        "ref": extract(images[:300], ext, out=out, name="ref", progress=False),
        "black": extract(black, ext, out=out, name="black", progress=False),
        "ok": extract(images[500:700], ext, out=out, name="ok", progress=False),
        "tiny": extract(images[700:704], ext, out=out, name="tiny", progress=False),
    }


@pytest.fixture(scope="module")
def sets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {"ref": rng.normal(size=(300, 10)), "ok": rng.normal(size=(250, 10)) + 0.2, "tiny": rng.normal(size=(4, 10))}


# --------------------------------------------------------------------------- per-cell errors


@pytest.mark.slow
def test_black_images_with_all_metrics_keep_every_metric_and_name_the_rows(caches, tmp_path, capsys) -> None:
    from workbench.cli import main

    rep = evaluate_caches(caches["ref"], {"black": caches["black"]}, metrics="all")
    assert rep.errors == {}
    assert list(rep.values.columns) == [
        "fd",
        "fd_inf",
        "kd",
        "kd_std",
        "cmmd",
        "precision",
        "recall",
        "density",
        "coverage",
        "ipr_precision",
        "ipr_recall",
        "swd",
        "vendi",
    ]
    assert np.isfinite(rep.values.to_numpy()).all()
    feats = np.asarray(caches["black"].features)
    zero = np.flatnonzero(~feats.any(axis=1))
    assert zero.tolist() == [0, 3]  # black images are all-zero pixel features
    # vendi of the other rows (independent: rows dropped with numpy, then the plain function)
    assert rep.values.at["black", "vendi"] == pytest.approx(vendi(np.delete(feats, zero, axis=0)), rel=1e-12)
    # the Euclidean metrics use every row, the black ones included
    assert rep.values.at["black", "fd"] == pytest.approx(fd(caches["ref"].features, feats), rel=1e-12)
    note = next(w for w in rep.warnings if w.startswith("vendi"))
    assert "2 all-zero row(s)" in note and "row(s) 0, 3" in note

    out_json = tmp_path / "all.json"
    code = main(
        [
            "metrics",
            "--ref",
            str(caches["ref"].path),
            "--gen",
            f"B={caches['black'].path}",
            "-m",
            "all",
            "--json",
            str(out_json),
            "-q",
        ]
    )
    assert code == 0
    assert "2 all-zero row(s)" in capsys.readouterr().out
    assert json.loads(out_json.read_text())["errors"] == []


@pytest.mark.filterwarnings("ignore::workbench.metrics.validation.SampleSizeWarning")
def test_a_metric_failing_for_one_set_fails_only_its_cell(sets) -> None:
    # prdc needs more than k=5 generated samples; "tiny" has 4. fd and vendi still work on it.
    rep = evaluate(sets["ref"], {"ok": sets["ok"], "tiny": sets["tiny"]}, metrics="fd,prdc,vendi")
    assert list(rep.errors) == [("tiny", "prdc")]
    assert rep.errors[("tiny", "prdc")].startswith("ValueError: k=5 needs more than k samples in fake")
    assert rep.values.loc["tiny", ["precision", "recall", "density", "coverage"]].isna().all()
    assert rep.values.at["tiny", "fd"] == pytest.approx(fd(sets["ref"], sets["tiny"]), rel=1e-12)
    assert rep.values.at["tiny", "vendi"] == pytest.approx(vendi(sets["tiny"]), rel=1e-12)
    assert rep.values.at["ok", "density"] == prdc(sets["ref"], sets["ok"], k=5).density
    assert rep.error_for("tiny", "density") == rep.errors[("tiny", "prdc")]
    assert rep.error_for("ok", "density") is None and rep.computed


def test_unexpected_exceptions_become_cell_errors_but_keyboard_interrupt_propagates(sets, monkeypatch) -> None:
    real_fd = suite._PAIRWISE_FNS["fd"]

    def buggy(ref, gen, seed):
        if len(gen) == 4:
            return {"fd": 1 / 0}
        return real_fd(ref, gen, seed)

    monkeypatch.setitem(suite._PAIRWISE_FNS, "fd", buggy)
    rep = evaluate(sets["ref"], {"ok": sets["ok"], "tiny": sets["tiny"]}, metrics="fd,vendi")
    assert list(rep.errors) == [("tiny", "fd")]
    message = rep.errors[("tiny", "fd")]
    assert message.startswith("ZeroDivisionError: division by zero (at ") and "test_metrics_robust.py" in message
    assert np.isfinite(rep.values.at["ok", "fd"]) and np.isfinite(rep.values.at["tiny", "vendi"])

    def interrupted(ref, gen, seed):
        raise KeyboardInterrupt

    monkeypatch.setitem(suite._PAIRWISE_FNS, "fd", interrupted)
    with pytest.raises(KeyboardInterrupt):
        evaluate(sets["ref"], {"ok": sets["ok"]}, metrics="fd")


def test_errors_in_text_table_json_and_html(sets) -> None:
    rep = evaluate(sets["ref"], {"ok": sets["ok"], "tiny": sets["tiny"]}, metrics="fd,prdc")
    message = rep.errors[("tiny", "prdc")]
    text = str(rep)
    tiny_line = next(line for line in text.splitlines() if line.startswith("tiny"))
    assert tiny_line.split()[2:] == ["ERROR(1)"] * 4  # fd is a number, the four prdc cells are errors
    assert f"error (1) in prdc for tiny: {message}" in text.splitlines()
    doc = rep.to_json()
    tiny = next(r for r in doc["rows"] if r["model"] == "tiny")
    assert tiny["precision"] == {"value": None, "error": message}
    assert "error" not in tiny["fd"] and tiny["fd"]["value"] == pytest.approx(rep.values.at["tiny", "fd"])
    assert doc["errors"] == [{"model": "tiny", "metric": "prdc", "error": message}]
    json.dumps(doc)  # JSON-able
    page = rep._repr_html_()
    assert "ERROR(1)" in page and "k=5 needs more than k samples" in page


@pytest.mark.filterwarnings("ignore::workbench.metrics.validation.SampleSizeWarning")
def test_a_failed_bootstrap_keeps_the_value_and_marks_the_cell(sets, monkeypatch) -> None:
    real = suite.bootstrap_metric

    def flaky(fn, ref, gen, **kw):
        if len(gen) == 4:
            raise ValueError("too few rows to resample")
        return real(fn, ref, gen, **kw)

    monkeypatch.setattr(suite, "bootstrap_metric", flaky)
    rep = evaluate(sets["ref"], {"ok": sets["ok"], "tiny": sets["tiny"]}, metrics="fd", bootstrap=4)
    assert rep.errors == {("tiny", "fd"): "bootstrap failed: ValueError: too few rows to resample"}
    assert rep.values.at["tiny", "fd"] == pytest.approx(fd(sets["ref"], sets["tiny"]), rel=1e-12)
    assert np.isnan(rep.low.at["tiny", "fd"]) and np.isfinite(rep.low.at["ok", "fd"])
    assert "(!1)" in rep.format_table()
    assert rep.to_json()["rows"][1]["fd"]["error"].startswith("bootstrap failed")


def test_cli_exit_status_is_0_with_a_failed_cell_and_2_when_nothing_is_computed(caches, tmp_path, capsys) -> None:
    from workbench.cli import main

    ref = str(caches["ref"].path)
    out_json = tmp_path / "one-failed.json"
    code = main(
        [
            "metrics",
            "--ref",
            ref,
            "--gen",
            f"ok={caches['ok'].path}",
            "--gen",
            f"tiny={caches['tiny'].path}",
            "-m",
            "fd,prdc",
            "--json",
            str(out_json),
            "-q",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "ERROR(1)" in captured.out and "error (1) in prdc for tiny: ValueError: k=5" in captured.out
    doc = json.loads(out_json.read_text())
    assert doc["rows"][1]["coverage"]["error"].startswith("ValueError: k=5")
    assert doc["rows"][0]["coverage"]["value"] is not None

    out_json = tmp_path / "none.json"
    code = main(
        ["metrics", "--ref", ref, "--gen", f"tiny={caches['tiny'].path}", "-m", "prdc", "--json", str(out_json), "-q"]
    )
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.splitlines()[-1].startswith("workbench: error: no metric could be computed")
    assert json.loads(out_json.read_text())["rows"][0]["precision"]["error"].startswith("ValueError: k=5")


# --------------------------------------------------------------------------- duplicate names


def test_repeated_metric_names_are_merged(sets, caches, capsys) -> None:
    from workbench.cli import main

    assert resolve_metrics("fd,fd", {"ref"}) == ["fd"]
    assert resolve_metrics(["fd", "prdc", "fd"], {"ref"}) == ["fd", "prdc"]
    assert resolve_metrics("default,cmmd,fd", {"ref"}) == ["fd", "kd", "prdc", "vendi", "cmmd"]
    assert resolve_metrics("is,all", {"ref", "logits"})[0] == "is"
    with pytest.raises(ValueError, match="no metric named"):
        resolve_metrics(" , ", {"ref"})
    rep = evaluate(sets["ref"], {"ok": sets["ok"]}, metrics="fd,fd")
    assert list(rep.values.columns) == ["fd"]
    assert (
        main(["metrics", "--ref", str(caches["ref"].path), "--gen", f"G={caches['ok'].path}", "-m", "fd,fd", "-q"]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model", "fd"]
    assert float(lines[2].split()[1]) == pytest.approx(fd(caches["ref"].features, caches["ok"].features), rel=1e-3)


def test_duplicate_gen_names_are_an_error(caches, capsys) -> None:
    from workbench.cli import main

    ref, ok, black = (str(caches[k].path) for k in ("ref", "ok", "black"))
    assert main(["metrics", "--ref", ref, "--gen", f"a={ok}", "--gen", f"a={black}", "-m", "fd", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("workbench: error: duplicate --gen name 'a'") and len(err.splitlines()) == 1
    # the same cache twice without names cannot be told apart either
    assert main(["metrics", "--ref", ref, "--gen", ok, "--gen", ok, "-m", "fd", "-q"]) == 2
    assert "more than once" in capsys.readouterr().err
    # distinct caches whose source names collide fall back to their folder names
    rep = evaluate_caches(caches["ref"], [caches["ok"], caches["black"]], metrics="fd")
    assert list(rep.values.index) == ["ok", "black"]


# --------------------------------------------------------------------------- scale


@pytest.fixture(scope="module")
def scaled() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    return {
        "real": rng.normal(size=(240, 16)).astype(np.float32),
        "fake": (rng.normal(size=(200, 16)) + 0.3).astype(np.float32),
        "train": rng.normal(size=(260, 16)).astype(np.float32),
        "test": rng.normal(size=(150, 16)).astype(np.float32),
    }


def _neighbour_metrics(d: dict[str, np.ndarray], s: float) -> dict[str, np.ndarray]:
    r, f, tr, te = (d[k] * d[k].dtype.type(s) for k in ("real", "fake", "train", "test"))
    p, ipr, auth = prdc(r, f), precision_recall(r, f), authenticity(tr, f)
    ct = ct_score(tr, te, f, pca_dim=8)
    return {
        "prdc": np.array([p.precision, p.recall, p.density, p.coverage]),
        "prdc_counts": p.fake_real_ball_counts,
        "pr": np.array([ipr.precision, ipr.recall]),
        "auth": np.array([auth.auth_pct]),
        "authentic": auth.authentic,
        "nearest": auth.nearest_train,
        "ct": np.array([ct.c_t]),
        "ct_z": ct.z,
        "radii": p.real_radii / s,
        "auth_ratio": auth.ratio,
    }


@pytest.mark.slow
def test_knn_metrics_are_scale_invariant(scaled) -> None:
    base = _neighbour_metrics(scaled, 1.0)
    assert base["prdc"][2] < 1.5  # the bug gave density 5.5+ at 1e19
    # powers of two are exact in binary floating point: bit-identical results, radii scaled exactly
    for s in (2.0**62, 2.0**-62):
        got = _neighbour_metrics(scaled, s)
        for key, value in base.items():
            np.testing.assert_array_equal(got[key], value, err_msg=f"{key} at scale {s}")
    # 1e19 and 1e-19: the features themselves are rounded to float32 after scaling, which moves
    # distances by ~1e-7 relative; no count flips here, distances agree to rtol 1e-6
    for s in (1e19, 1e-19):
        got = _neighbour_metrics(scaled, s)
        for key in ("prdc", "prdc_counts", "pr", "auth", "authentic", "nearest", "ct", "ct_z"):
            np.testing.assert_array_equal(got[key], base[key], err_msg=f"{key} at scale {s}")
        for key in ("radii", "auth_ratio"):
            np.testing.assert_allclose(got[key], base[key], rtol=1e-6, err_msg=f"{key} at scale {s}")
    # float64 features near the float64 limit (squared distances would overflow even float64)
    d64 = {k: v.astype(np.float64) for k, v in scaled.items()}
    got = _neighbour_metrics(d64, 2.0**900)
    for key in ("prdc", "prdc_counts", "pr", "auth", "nearest", "ct", "ct_z"):
        np.testing.assert_array_equal(got[key], base[key], err_msg=f"{key} at scale 2^900")


def test_knn_distances_scale_exactly(scaled) -> None:
    q, x = scaled["fake"], scaled["real"]
    d0, i0 = knn(q, x, 4)
    for s in (2.0**70, 2.0**-70):
        d, i = knn(q * np.float32(s), x * np.float32(s), 4)
        np.testing.assert_array_equal(i, i0)
        np.testing.assert_array_equal(d, d0 * s)  # exact
    d, i = knn(q * np.float32(1e19), x * np.float32(1e19), 4)
    np.testing.assert_array_equal(i, i0)
    np.testing.assert_allclose(d / 1e19, d0, rtol=1e-6)  # float32 rounding of the scaled features
    assert power_of_two_scale(q) == 1.0 and power_of_two_scale(q * np.float32(1e19)) == 2.0**-66


def _cmmd_longdouble(x: np.ndarray, y: np.ndarray, sigma: float = 10.0, scale: float = 1000.0) -> float:
    """Full-matrix biased MMD^2 with exp(-||a - b||^2 / (2 sigma^2)), differences in np.longdouble."""
    a, b = x.astype(np.longdouble), y.astype(np.longdouble)
    g = np.longdouble(1.0) / (2 * np.longdouble(sigma) ** 2)

    def k(p, q):
        return np.exp(-g * ((p[:, None, :] - q[None, :, :]) ** 2).sum(axis=-1)).mean()

    return float(scale * (k(a, a) + k(b, b) - 2 * k(a, b)))


@pytest.mark.parametrize("s", [1.0, 3.0, 30.0, 1e3, 1e8, 1e19, 1e30])
def test_cmmd_is_exact_at_any_magnitude(s: float) -> None:
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(70, 6)) * np.float32(s)).astype(np.float32)
    y = ((rng.normal(size=(50, 6)) + 0.2) * np.float32(s)).astype(np.float32)
    x[7] = y[3]  # a shared row: a kernel value of exactly 1 across the sets at every scale
    # rtol 1e-9: the longdouble reference differs from float64 by rounding only
    np.testing.assert_allclose(cmmd(x, y, block_rows=32), _cmmd_longdouble(x, y), rtol=1e-9)


def test_cmmd_closed_form_at_large_magnitude() -> None:
    # at 1e8 every distinct pair is ~1e8 apart: off-diagonal kernel values underflow to exactly 0,
    # so CMMD = 1000 (1/N + 1/M) (the diagonals); the old expansion gave 7.15 and then inf
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    y = (rng.normal(size=(300, 16)) + 0.3).astype(np.float32)
    for s in (1e8, 1e19):
        assert cmmd(x * np.float32(s), y * np.float32(s)) == pytest.approx(1000 * (1 / 300 + 1 / 300), rel=1e-12)
    with pytest.raises(ValueError, match="too large for the RBF kernel"):
        cmmd(x.astype(np.float64) * 1e160, y.astype(np.float64) * 1e160)


def _kd_longdouble(x: np.ndarray, y: np.ndarray, m: int, subsets: int, seed: int = 0) -> float:
    """Unbiased MMD^2 with (x.y / D + 1)^3 over the same subsets as kd, in np.longdouble."""
    vals = []
    for r, f in kd_subset_indices(len(x), len(y), subsets, m, seed):
        a, b = x[np.sort(r)].astype(np.longdouble), y[np.sort(f)].astype(np.longdouble)

        def k(p, q):
            return (p @ q.T / p.shape[1] + 1) ** 3

        kxx, kyy = k(a, a), k(b, b)
        vals.append((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * k(a, b).sum() / m**2)
    return float(np.mean(vals))


def test_kd_is_exact_at_large_magnitude_or_raises() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 8)).astype(np.float32)
    y = (rng.normal(size=(60, 8)) + 0.2).astype(np.float32)
    for s in (1.0, 1e8, 1e19, 1e30):
        got = kd(x * np.float32(s), y * np.float32(s), subsets=3, subset_size=40)
        # rtol 1e-9: float64 against longdouble, same subsets; KD grows like s^6 (1e177 at 1e30)
        np.testing.assert_allclose(got.value, _kd_longdouble(x * np.float32(s), y * np.float32(s), 40, 3), rtol=1e-9)
        assert np.isfinite(got.std) and got.std > 0
    with pytest.raises(ValueError, match="overflows float64"):
        kd(x.astype(np.float64) * 1e60, y.astype(np.float64) * 1e60, subsets=3, subset_size=40)
    with pytest.raises(ValueError, match='overflows float32.*dtype="float64"'):
        kd(x * np.float32(1e19), y * np.float32(1e19), subsets=3, subset_size=40, dtype="float32")


def test_fd_scales_by_the_square_or_raises() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 8)).astype(np.float32)
    y = (rng.normal(size=(400, 8)) * 1.3 + 0.2).astype(np.float32)
    base = fd(x, y)
    # powers of two: exact up to the eigen-solver's float64 rounding (rtol 1e-12)
    assert fd(x * np.float32(2.0**62), y * np.float32(2.0**62)) == pytest.approx(base * 2.0**124, rel=1e-12)
    # 1e19: the scaled features are rounded to float32 (rtol 1e-6)
    assert fd(x * np.float32(1e19), y * np.float32(1e19)) / 1e38 == pytest.approx(base, rel=1e-6)
    with pytest.raises(ValueError, match="overflows float64"):
        fd(x.astype(np.float64) * 1e160, y.astype(np.float64) * 1e160)


def test_vendi_can_drop_all_zero_rows_with_a_warning() -> None:
    x = np.random.default_rng(4).normal(size=(30, 5))
    x[[2, 9]] = 0
    with pytest.raises(ValueError, match="all-zero row"):
        vendi(x)
    with pytest.warns(ExcludedRowsWarning, match=r"2 all-zero row\(s\).*row\(s\) 2, 9"):
        got = vendi(x, zero_rows="drop")
    assert got == pytest.approx(vendi(np.delete(x, [2, 9], axis=0)), rel=1e-14)
    with pytest.raises(ValueError, match="only all-zero rows"):
        vendi(np.zeros((3, 4)), zero_rows="drop")


# --------------------------------------------------------------------------- widgets


def test_widgets_show_the_error_in_the_cell_and_keep_the_rest(caches, fmnist_test, tmp_path) -> None:
    pytest.importorskip("ipywidgets")
    pytest.importorskip("anywidget")
    from workbench.widgets.metric_table import MetricTable
    from workbench.workspace import Workspace
    from workbench.workspace.reports import (
        long_metric_frame,
        report_from_json,
        report_to_json,
        workspace_reports,
    )

    images, _ = fmnist_test
    # "other": a reference cache at 8 px and generated caches at 4 px, so this extractor's report
    # cannot be computed at all (incompatible caches); "pixels" has one failing cell (tiny, prdc)
    small = PixelsExtractor(
        name="pixels",
        variant="4px",
        dim=48,
        preprocessor=BoxResize(4),
        weights=WeightsInfo(spec="none", pretrained=False, identity="no-weights"),
    )
    ok4 = extract(images[500:700], small, out=tmp_path, name="ok", progress=False)
    tiny4 = extract(images[700:704], small, out=tmp_path, name="tiny", progress=False)
    ws = Workspace.from_caches(
        {
            ("ref", "pixels"): caches["ref"],
            ("ok", "pixels"): caches["ok"],
            ("tiny", "pixels"): caches["tiny"],
            ("ref", "other"): caches["ref"],
            ("ok", "other"): ok4,
            ("tiny", "other"): tiny4,
        },
        state_dir=tmp_path / "state",
    )
    reports = workspace_reports(ws, metrics="fd,prdc")
    pixels, other = reports["pixels"], reports["other"]
    assert list(pixels.errors) == [("tiny", "prdc")] and np.isfinite(pixels.values.at["tiny", "fd"])
    assert set(other.errors) == {("ok", "*"), ("tiny", "*")}
    assert "IncompatibleCachesError" in other.errors[("ok", "*")]
    assert other.error_for("ok", "fd") == other.errors[("ok", "*")]

    table = MetricTable(reports)
    row = next(r for r in table.grid.rows if r["key"] == "tiny|pixels")
    cov = 2 + table.metrics.index("coverage")
    assert row["cells"][cov] == "error" and "wb-error" in row["classes"][cov]
    assert "k=5 needs more than k samples" in row["titles"][cov]
    fd_col = 2 + table.metrics.index("fd")
    assert row["cells"][fd_col] != "error" and "wb-error" not in row["classes"][fd_col]
    other_row = next(r for r in table.grid.rows if r["key"] == "ok|other")
    assert other_row["cells"][fd_col] == "error" and "different extractor settings" in other_row["titles"][fd_col]
    errors = table.errors
    assert set(errors.loc[errors.extractor == "pixels", "column"]) == {"precision", "recall", "density", "coverage"}
    static = table.static_html()
    assert "no metrics computed" not in static and "k=5 needs more than k samples" in static  # as title
    assert "k=5 needs more than k samples" in table.notes.value  # listed under the table

    # saved and re-read reports keep their errors; the tidy frame carries them
    again = report_from_json(json.loads(json.dumps(report_to_json(pixels))))
    assert again.errors == pixels.errors
    tidy = long_metric_frame(reports)
    assert (
        tidy.loc[(tidy.model == "tiny") & (tidy.metric == "density") & (tidy.extractor == "pixels"), "error"]
        .item()
        .startswith("ValueError: k=5")
    )
    assert tidy.loc[(tidy.model == "ok") & (tidy.metric == "fd"), "error"].isna().all()

    failed = MetricTable()
    failed.show_error(RuntimeError("caches unreadable"))
    assert "metrics could not be computed: RuntimeError: caches unreadable" in failed.static_html()
