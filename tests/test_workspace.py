"""The workspace layer (``workbench.workspace``): the one ``workspace.json`` reader and writer,
checked additions, the overview with its warnings, the ``workbench workspace`` and
``workbench metrics --workspace`` commands end to end on tiny ``pixels`` caches of Fashion-MNIST,
and that the layer imports neither torch nor the view libraries."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import workbench
from workbench.cache import CacheError, extract, open_cache
from workbench.cli import main
from workbench.metrics.from_caches import evaluate_caches
from workbench.workspace import (
    INDEX_FORMAT,
    WORKSPACE_FILE,
    CacheEntry,
    Workspace,
    add_caches,
    init_workspace,
    new_index,
    read_index,
    workspace_overview,
    write_index,
)

ROOT = Path(workbench.__file__).resolve().parent.parent
METRICS = "fd,kd,prdc,authpct"


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory, fmnist_test) -> dict[str, Path]:
    """Cache folders (pixels at 4 px, 48-d) of: real (150 test images), train (120 others),
    a (90 others), b (70 others + noise), tiny (4 images: too few for PRDC's k=5), and real8
    (the real images at 8 px: another configuration of the same extractor)."""
    images, _ = fmnist_test
    out = tmp_path_factory.mktemp("ws-caches")
    rng = np.random.default_rng(0)
    noisy = np.clip(images[400:470].astype(np.float64) + rng.normal(0, 40, (70, 28, 28)), 0, 255).astype(np.uint8)
    four = {"size": 4}
    made = {
        "real": extract(images[:150], "pixels", out=out, name="real", progress=False, extractor_options=four),
        "train": extract(images[150:270], "pixels", out=out, name="train", progress=False, extractor_options=four),
        "a": extract(images[270:360], "pixels", out=out, name="a", progress=False, extractor_options=four),
        "b": extract(noisy, "pixels", out=out, name="b", progress=False, extractor_options=four),
        "tiny": extract(images[500:504], "pixels", out=out, name="tiny", progress=False, extractor_options=four),
        "real8": extract(images[:150], "pixels", out=out, name="real", progress=False, extractor_options={"size": 8}),
    }
    return {k: c.path for k, c in made.items()}


def _workspace_with(tmp_path: Path, caches: dict[str, Path], names: list[str]) -> Path:
    """A workspace folder holding copies of the named caches under ``caches/`` (so paths are relative)."""
    root = tmp_path / "ws"
    for n in names:
        shutil.copytree(caches[n], root / "caches" / caches[n].name)
    return root


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- workspace.json


def test_index_round_trip_keeps_entries_extras_and_relative_paths(tmp_path: Path, caches) -> None:
    root = _workspace_with(tmp_path, caches, ["real", "a"])
    inside = root / "caches" / caches["real"].name
    entries = [
        CacheEntry("real", "pixels", "reference", inside, {"n": 150, "note": "kept"}),
        CacheEntry("a", "pixels", "generated", caches["a"]),  # outside the folder: absolute
    ]
    written = write_index(new_index(root, entries, extra={"description": "two sets", "models": {"a": 1}}))
    raw = json.loads((root / WORKSPACE_FILE).read_text())
    assert raw == written and raw["format"] == INDEX_FORMAT
    assert raw["caches"][0]["path"] == f"caches/{inside.name}" and raw["caches"][0]["note"] == "kept"
    assert raw["caches"][1]["path"] == str(caches["a"].resolve())
    back = read_index(root)
    assert back.entries == entries and back.entries[0].path == inside.resolve()
    assert dict(back.entries[0].info) == {"n": 150, "note": "kept"}
    assert back.extra == {"description": "two sets", "models": {"a": 1}}
    assert back.to_json() == written
    assert back.roles == {"real": "reference", "a": "generated"} and back.extractors == ["pixels"]

    moved = tmp_path / "moved"
    shutil.move(str(root), moved)  # the relative path follows the folder, the absolute one stays
    again = read_index(moved)
    assert again.entries[0].path == (moved / "caches" / inside.name).resolve()
    assert again.entries[1].path == caches["a"].resolve()
    assert len(Workspace.open(moved).cache("real", "pixels")) == 150


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"format": "workbench-workspace/9", "caches": []}', "has format 'workbench-workspace/9'"),
        ('{"caches": {"set": "a"}}', "'caches' must be a list"),
        ('{"caches": [{"set": "a", "extractor": "p", "role": "generated"}]}', r"caches\[0\] lacks path"),
        (
            '{"caches": [{"set": "a", "extractor": "", "role": "generated", "path": "x"}]}',
            "extractor must be non-empty",
        ),
        ('{"caches": [{"set": "a", "extractor": "p", "role": "model", "path": "x"}]}', "role 'model' is not one of"),
        (
            '{"caches": [{"set": "a", "extractor": "p", "role": "generated", "path": "x"},'
            ' {"set": "a", "extractor": "q", "role": "train", "path": "y"}]}',
            "set 'a' is listed with two roles",
        ),
        (
            '{"caches": [{"set": "a", "extractor": "p", "role": "generated", "path": "x"},'
            ' {"set": "a", "extractor": "p", "role": "generated", "path": "y"}]}',
            "two caches for set 'a' and extractor 'p'",
        ),
    ],
)
def test_read_index_names_the_file_and_the_problem(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / WORKSPACE_FILE).write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        read_index(tmp_path)
    assert str(tmp_path / WORKSPACE_FILE) in str(info.value)


def test_read_index_missing_and_empty(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="workbench workspace init"):
        read_index(tmp_path)
    init_workspace(tmp_path)
    assert read_index(tmp_path).entries == [] and read_index(tmp_path).format == INDEX_FORMAT
    with pytest.raises(FileNotFoundError, match="lists no caches yet"):
        Workspace.open(tmp_path)
    with pytest.raises(ValueError, match="already exists"):
        init_workspace(tmp_path)


def test_demo_index_is_read_by_the_same_reader(tmp_path: Path, caches) -> None:
    """``workbench.demo.workspace`` reads a demo-format index through :func:`read_index`."""
    from workbench.demo.workspace import load_workspace, workspace_cache

    root = _workspace_with(tmp_path, caches, ["real", "a"])
    entries = [
        CacheEntry("reference", "pixels", "reference", root / "caches" / caches["real"].name, {"n": 150}),
        CacheEntry("ideal", "pixels", "generated", root / "caches" / caches["a"].name, {"n": 90}),
    ]
    write_index(new_index(root, entries, format="workbench-demo/1", extra={"sets": {"ideal": {"flaw": "none"}}}))
    index = load_workspace(root)
    assert index["format"] == "workbench-demo/1" and index["root"] == str(root.resolve())
    assert index["sets"] == {"ideal": {"flaw": "none"}}
    assert [c["path"] for c in index["caches"]] == [f"caches/{caches['real'].name}", f"caches/{caches['a'].name}"]
    assert len(workspace_cache("ideal", "pixels", root)) == 90
    with pytest.raises(KeyError, match="sets: \\['ideal', 'reference'\\]"):
        workspace_cache("ideal", "demo-ssl", root)
    (root / WORKSPACE_FILE).write_text('{"format": "workbench-demo/1", "caches": 3}')
    with pytest.raises(ValueError, match="'caches' must be a list"):
        load_workspace(root)


# --------------------------------------------------------------------------- adding caches


def test_add_checks_before_writing(tmp_path: Path, caches) -> None:
    root = tmp_path / "ws"
    init_workspace(root)
    before = (root / WORKSPACE_FILE).read_text()
    with pytest.raises(CacheError, match="cache not found"):
        add_caches(root, [tmp_path / "nowhere"])
    with pytest.raises(ValueError, match="role 'model' is not one of"):
        add_caches(root, [caches["a"]], role="model")
    # all or nothing: the good cache before the bad one is not written either
    with pytest.raises(ValueError, match="already has a cache by extractor 'pixels'"):
        add_caches(root, [caches["a"], caches["b"]], set_name="a")
    assert (root / WORKSPACE_FILE).read_text() == before

    done = add_caches(root, [caches["real"], caches["train"], caches["a"], caches["b"]])
    assert [(e.set, e.extractor, e.role) for e in done.added] == [
        ("real", "pixels", "reference"),
        ("train", "pixels", "train"),
        ("a", "pixels", "generated"),
        ("b", "pixels", "generated"),
    ]
    assert done.added[0].info["n"] == 150 and done.added[0].info["key"] == open_cache(caches["real"]).manifest["key"]
    again = add_caches(root, [caches["a"]])
    assert again.added == [] and [e.set for e in again.already_listed] == ["a"]

    with pytest.raises(ValueError, match="already has a reference set \\('real'\\)"):
        add_caches(root, [caches["tiny"]], set_name="other", role="reference")
    with pytest.raises(ValueError, match="already listed with role 'generated', not 'test'"):
        add_caches(root, [caches["tiny"]], set_name="a", role="test", extractor="x")
    with pytest.raises(
        ValueError,
        match=r"other extractor settings than the caches listed under 'pixels'.*"
        r"variant: '4px' vs '8px'",
    ):
        add_caches(root, [caches["real8"]], set_name="real8")
    both = add_caches(root, [caches["real8"]], set_name="real", extractor="pixels-8px")
    assert both.added[0].role == "reference"  # the set keeps its role
    ws = Workspace.open(root)
    assert ws.reference == "real" and ws.train == "train" and ws.generated == ["a", "b"]
    assert ws.extractors == ["pixels", "pixels-8px"]


# --------------------------------------------------------------------------- the CLI


def test_cli_workspace_session(tmp_path: Path, caches, capsys) -> None:
    root = _workspace_with(tmp_path, caches, ["real", "train", "a", "b"])
    c = {n: root / "caches" / caches[n].name for n in ("real", "train", "a", "b")}
    code, out, _ = _cli(capsys, "workspace", "init", root)
    assert code == 0 and out.strip() == f"created {root.resolve() / WORKSPACE_FILE}"
    code, out, _ = _cli(capsys, "workspace", "add", root, c["real"], "--set", "real", "--role", "reference")
    assert code == 0 and out.strip() == f"added    real (reference) x pixels: caches/{c['real'].name}"
    code, out, _ = _cli(capsys, "workspace", "add", root, c["train"], c["a"], c["b"], caches["tiny"])
    assert code == 0 and [line.split()[1:3] for line in out.splitlines()] == [
        ["train", "(train)"],
        ["a", "(generated)"],
        ["b", "(generated)"],
        ["tiny", "(generated)"],
    ]
    assert out.splitlines()[-1].endswith(str(caches["tiny"].resolve()))  # outside the folder: absolute
    code, out, _ = _cli(capsys, "workspace", "add", root, c["a"])
    assert code == 0 and "already in the workspace" in out

    code, out, _ = _cli(capsys, "workspace", "show", root)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"workspace  {root.resolve()}  (workspace.json; 5 caches, 5 sets, 1 extractors)")
    assert lines[2].split() == ["set", "role", "pixels"]
    assert [line.split() for line in lines[3:8]] == [
        ["real", "reference", "150"],
        ["train", "train", "120"],
        ["a", "generated", "90"],
        ["b", "generated", "70"],
        ["tiny", "generated", "4"],
    ]
    assert lines[9].split() == ["extractor", "caches", "dim", "pretrained", "weights"]
    assert lines[10].split() == ["pixels", "5/5", "48", "no", "no-weights"]
    assert "warnings" not in out
    code, out, _ = _cli(capsys, "workspace", "show", root, "--json")
    shown = json.loads(out)
    assert [(r["set"], r["n"], r["pretrained"], r["error"]) for r in shown["caches"]][:2] == [
        ("real", 150, False, None),
        ("train", 120, False, None),
    ]

    # errors: one line, exit 2
    for argv, message in [
        (["workspace", "add", root, c["a"], "--set", "a", "--role", "train"], "already listed with role 'generated'"),
        (["workspace", "add", root, c["a"], "--role", "bogus"], "role 'bogus' is not one of"),
        (["workspace", "add", tmp_path / "nowhere", c["a"]], "no workspace.json in"),
        (["workspace", "init", root], "already exists"),
        (["workspace", "show", tmp_path / "nowhere"], "workspace folder not found"),
    ]:
        code, out, err = _cli(capsys, *argv)
        assert code == 2 and out == "" and err.startswith("workbench: error: ") and message in err
        assert len(err.strip().splitlines()) == 1, err


def test_show_warns_about_what_would_fail(tmp_path: Path, caches, capsys) -> None:
    root = _workspace_with(tmp_path, caches, ["real", "a", "b"])
    c = {n: root / "caches" / caches[n].name for n in ("real", "a", "b")}
    init_workspace(root)
    add_caches(root, [c["a"], c["b"]])
    assert workspace_overview(root).warnings == [
        "no reference set: metrics compare every generated set to one real set; add one with --role reference"
    ]
    add_caches(root, [c["real"]], role="reference")
    add_caches(root, [caches["real8"]], set_name="real", extractor="pixels-8px")
    index = read_index(root)  # pretend cache b was re-extracted since it was added
    index.entries = [
        CacheEntry(e.set, e.extractor, e.role, e.path, {**e.info, "key": "0" * 32}) if e.set == "b" else e
        for e in index.entries
    ]
    write_index(index)
    shutil.rmtree(c["a"])  # a cache that moved away
    ov = workspace_overview(root)
    table = ov.table()
    assert table.loc["a", "pixels"] == "MISSING" and table.loc["b", "pixels-8px"] == "-"
    assert table.loc["real", "pixels-8px"] == "150" and table.loc["real", "role"] == "reference"
    warnings = "\n".join(ov.warnings)
    assert "cache of set 'a' by 'pixels' cannot be opened: cache not found" in warnings
    assert "extractor 'pixels-8px': generated set(s) a, b have no cache by it" in warnings
    assert "cache of set 'b' by 'pixels' changed since it was added" in warnings
    code, out, _ = _cli(capsys, "workspace", "show", root)
    assert code == 0 and "warnings\n  - cache of set 'a' by 'pixels' cannot be opened" in out

    # a folder without workspace.json is scanned (as the dashboard does), and says so
    scanned = tmp_path / "scanned"
    shutil.copytree(caches["real"], scanned / "r")
    shutil.copytree(caches["b"], scanned / "b")
    ov = workspace_overview(scanned)
    assert ov.source == "scan" and ov.roles == {"b": "generated", "real": "reference"} and ov.warnings == []
    code, out, _ = _cli(capsys, "workspace", "init", scanned, "--scan")
    assert code == 0 and "listing 2 cache(s)" in out
    assert [(e.set, e.path.name) for e in read_index(scanned).entries] == [("b", "b"), ("real", "r")]


def test_metrics_workspace_equals_evaluate_caches(tmp_path: Path, caches, capsys) -> None:
    root = tmp_path / "ws"
    init_workspace(root)
    add_caches(root, [caches["real"]], role="reference")
    add_caches(root, [caches["train"], caches["a"], caches["b"], caches["tiny"]])
    expected = evaluate_caches(
        caches["real"],
        {"a": caches["a"], "b": caches["b"], "tiny": caches["tiny"]},
        train=caches["train"],
        metrics=METRICS,
    )
    assert list(expected.errors) == [("tiny", "prdc")]  # one failing cell, the others stand

    out_json = tmp_path / "m.json"
    code, out, err = _cli(capsys, "metrics", "--workspace", root, "-m", METRICS, "--json", out_json)
    assert code == 0, err
    assert out == "== pixels (reference: real, train: train) ==\n" + str(expected) + "\n"
    assert "ERROR(1)" in out and "pixels: computing fd · a" in err
    got = json.loads(out_json.read_text())
    assert got["reference"] == "real" and got["generated"] == ["a", "b", "tiny"] and got["train"] == "train"
    want = json.loads(json.dumps(expected.to_json()))
    for key in ("rows", "errors", "warnings", "higher_is_better"):
        assert got["extractors"]["pixels"][key] == want[key], key
    assert list((root / ".workbench").glob("metrics-*.json"))  # saved for the dashboard and the next run

    # the second run reads the saved report: the same numbers
    code, out2, err2 = _cli(capsys, "metrics", "--workspace", root, "-m", METRICS, "-q", "--json", out_json)
    assert code == 0 and out2 == out and "computing" not in err2
    assert json.loads(out_json.read_text())["extractors"]["pixels"]["rows"] == want["rows"]
    code, out3, err3 = _cli(capsys, "metrics", "--workspace", root, "-m", METRICS, "--recompute")
    assert code == 0 and out3 == out and "computing" in err3


def test_metrics_workspace_arguments_and_failures(tmp_path: Path, caches, capsys) -> None:
    root = tmp_path / "ws"
    init_workspace(root)
    add_caches(root, [caches["real"]], role="reference")
    add_caches(root, [caches["tiny"]])
    add_caches(root, [caches["real8"]], set_name="real", extractor="pixels-8px")
    for argv, message in [
        (["--workspace", root, "--ref", caches["real"]], "--workspace and --ref are mutually exclusive"),
        (
            ["--workspace", root, "--gen", caches["a"], "--train", caches["train"]],
            "--workspace and --gen/--train are mutually exclusive",
        ),
        ([], "give the reference cache and the generated ones"),
        (["--ref", caches["real"], "--gen", caches["a"], "--extractor", "pixels"], "use them with --workspace"),
        (["--workspace", root, "--extractor", "clip"], "extractor(s) ['clip'] are not in the workspace"),
    ]:
        code, out, err = _cli(capsys, "metrics", *argv)
        assert code == 2 and err.startswith("workbench: error: ") and message in err, err
        assert len(err.strip().splitlines()) == 1, err
    # every cell fails (4 samples: FD and PRDC refuse): tables and JSON still written, exit 2
    code, out, err = _cli(capsys, "metrics", "--workspace", root, "-m", "prdc", "-q", "--json", tmp_path / "f.json")
    assert code == 2 and "ERROR(1)" in out
    assert "note: extractor 'pixels-8px' is left out: no generated set has a cache by it" in err
    assert "workbench: error: no metric could be computed under any extractor (1 failed; first: pixels: " in err
    assert json.loads((tmp_path / "f.json").read_text())["extractors"]["pixels"]["errors"][0]["metric"] == "prdc"


# --------------------------------------------------------------------------- layering


def test_workspace_layer_imports_no_torch_and_no_views(tmp_path: Path, caches) -> None:
    """Reading a workspace, its overview, saved reports, cheap scores and sample references work in
    an interpreter that never loads torch, ipywidgets, plotly, anywidget or traitlets."""
    root = tmp_path / "ws"
    init_workspace(root)
    add_caches(root, [caches["real"]], role="reference")
    add_caches(root, [caches["a"]])
    code = textwrap.dedent(
        f"""
        import importlib, json, pkgutil, sys
        import workbench.workspace as W
        for info in pkgutil.iter_modules(W.__path__, "workbench.workspace."):
            importlib.import_module(info.name)
        for name in W.__all__:
            getattr(W, name)
        ws = W.Workspace.open({str(root)!r})
        assert ws.reference == "real" and ws.generated == ["a"] and ws.size("a") == 90
        assert W.workspace_overview({str(root)!r}).warnings == []
        scores = W.ScoreStore(ws)
        assert scores.get("a", "pixels", "index").tolist() == list(range(90))
        assert len(W.subsample(ws, ["real", "a"], 50)) == 100 and W.Samples.of("a", [1, 2]).by_set()["a"].tolist() == [1, 2]
        import workbench.cli, workbench.widgets  # the CLI and the lazy view package load no view library either
        print(json.dumps(sorted(m for m in ("torch", "torchvision", "ipywidgets", "plotly", "anywidget", "traitlets")
                                if m in sys.modules)))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_old_import_paths_give_the_same_objects() -> None:
    import workbench.workspace as W
    from workbench import widgets
    from workbench.widgets import projections, scores, selection, workspace, workspace_metrics

    assert widgets.Workspace is W.Workspace and workspace.Workspace is W.Workspace
    assert widgets.ScoreStore is W.ScoreStore is scores.ScoreStore
    assert widgets.workspace_reports is W.workspace_reports is workspace_metrics.workspace_reports
    assert widgets.Samples is W.Samples is selection.Samples
    assert projections.umap_layout is W.umap_layout and workspace.guess_role is W.guess_role
    assert workspace_metrics.report_from_json is W.report_from_json


# --------------------------------------------------------------------------- caches of one set holding different images


def test_cache_take_reads_the_chosen_rows(caches) -> None:
    whole = open_cache(caches["real"])
    rows = np.array([7, 3, 3, 120, 0])
    part = whole.take(rows, reason="a test")
    feats = np.asarray(whole.features)
    np.testing.assert_array_equal(np.asarray(part.features), feats[rows])
    np.testing.assert_array_equal(part.features[1:3], feats[[3, 3]])
    np.testing.assert_array_equal(part.features[np.array([True, False, False, False, True])], feats[[7, 0]])
    np.testing.assert_array_equal(part.features[-1], feats[0])
    np.testing.assert_array_equal(part.thumbnails[[4, 0]], np.asarray(whole.thumbnails)[[0, 7]])
    assert len(part) == 5 and part.features.shape == (5, feats.shape[1])
    assert part.meta["index"].tolist() == [0, 1, 2, 3, 4] and part.meta["cache_row"].tolist() == rows.tolist()
    assert part.meta["id"].tolist() == whole.meta["id"].to_numpy()[rows].tolist()
    assert part.manifest["key"] != whole.manifest["key"] and part.manifest["subset"] == {
        "of": 150,
        "rows": 5,
        "reason": "a test",
    }
    assert "5 of its 150 rows are used: a test" in part.summary()
    # rows of a subset are rows of the subset, mapped back to the whole cache
    again = part.take([3, 0])
    np.testing.assert_array_equal(np.asarray(again.features), feats[[120, 7]])
    assert again.subset_of is whole
    with pytest.raises(ValueError, match=r"\[0, 150\)"):
        whole.take([150])


def test_workspace_uses_the_rows_every_cache_of_a_set_holds(tmp_path: Path, caches, fmnist_test) -> None:
    """A set extracted with --limit under one extractor and whole under another (the user's
    mixed workspace): the workspace opens, says so, and every view and metric uses the common
    rows, so nothing indexes past the shorter cache (it crashed the Memorization tab)."""
    from workbench.widgets import Workbench
    from workbench.workspace import workspace_reports

    images, _ = fmnist_test
    eight = {"size": 8}
    out = tmp_path / "more"
    short_real = extract(
        images[:150], "pixels", out=out, name="real", limit=100, progress=False, extractor_options={"size": 4}
    )
    a8 = extract(images[270:360], "pixels", out=out, name="a", progress=False, extractor_options=eight)
    train8 = extract(images[150:270], "pixels", out=out, name="train", progress=False, extractor_options=eight)
    ws = Workspace.from_caches(
        {
            ("real", "p4"): short_real,
            ("real", "p8"): caches["real8"],
            ("a", "p4"): caches["a"],
            ("a", "p8"): a8,
            ("train", "p4"): caches["train"],
            ("train", "p8"): train8,
        },
        state_dir=tmp_path / "state",
    )
    assert len(ws.notes) == 1 and "set 'real'" in ws.notes[0] and "p4: 100, p8: 150" in ws.notes[0]
    assert "under p4" in ws.notes[0] and "without --limit" in ws.notes[0]
    assert ws.size("real") == 100 and len(ws.cache("real", "p8")) == 100 and len(ws.meta("real")) == 100
    whole8 = open_cache(caches["real8"])
    np.testing.assert_array_equal(np.asarray(ws.cache("real", "p8").features), np.asarray(whole8.features)[:100])
    assert ws.cache("a", "p4") is ws._caches[("a", "p4")]  # same images: used as they are
    reports = workspace_reports(ws, metrics="fd,prdc,authpct")
    assert reports["p8"].info["n_ref"] == 100 and not reports["p8"].errors
    bench = Workbench(ws, background=False, memorization=False)
    for ext in ("p4", "p8"):
        bench.extractor = ext
        memo = bench.memorization
        assert memo is not None
        memo.compute()
        memo.wait(120)
        assert memo.report is not None, ext
    # wait() waits for every background task, then raises the first error
    waited = []

    def failing(timeout: float | None = None) -> None:
        waited.append("memorization")
        raise RuntimeError("the search failed")

    class Heatmaps:
        def wait(self, timeout: float | None = None) -> None:
            waited.append("heatmaps")

    memo.wait = failing  # type: ignore[method-assign]
    bench.heatmap_view = Heatmaps()  # type: ignore[assignment]
    with pytest.raises(RuntimeError, match="the search failed"):
        bench.wait(5)
    assert waited == ["memorization", "heatmaps"]


def test_workspace_refuses_caches_of_one_set_without_a_common_image(caches) -> None:
    with pytest.raises(ValueError, match=r"set 'real': its caches hold no image in common .*different sets"):
        Workspace.from_caches({("real", "p4"): caches["real"], ("real", "p8"): caches["b"], ("a", "p4"): caches["a"]})
