"""Your own models, end to end (``workbench evaluate``, ``wb.evaluate_folders``,
``wb.Workbench.from_folders``) on small Fashion-MNIST class folders built here: the real images,
a held-out test set, a blurry model, a model that copies its training images (plus noise) and the
training set. Then the commands that take the workspace's set names (``metrics``, ``info``,
``report``), re-runs that reuse or replace, and the errors given before anything is extracted."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
from own_folders import fashion_folders, write_class_folders

import workbench as wb
from workbench.cli import main
from workbench.images.datasets import load_fashion_mnist
from workbench.workspace import WORKSPACE_FILE, Workspace, evaluate_folders, read_index

N = 60  # images per set (the training set has 2 N)
# pixels at 8 px (192-d) and the demo's small CNN with random weights (128-d + 10 logits): fast on a CPU
EXTRACTORS = ["-e", "pixels,demo-classifier", "-w", "none", "--option", "pixels:size=8", "--workers", "0"]
ROLES = {"real": "reference", "blurry": "generated", "copies": "generated", "train": "train", "test": "test"}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Class folders: real, test, blurry (other test images blurred), copies (training images + noise),
    train (2 N training images), blurrier (a second version of the blurry model)."""
    made = fashion_folders(tmp_path_factory.mktemp("own"), per_set=N)
    return {
        "real": made["real"],
        "test": made["test"],
        "blurry": made["model_blurry"],
        "copies": made["model_copies"],
        "train": made["train"],
        "blurrier": made["model_blurrier"],
    }


def _run(*argv: object) -> tuple[int, str, str]:
    """``workbench ARGV`` in this process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _evaluate_argv(folders: dict[str, Path], ws: Path, *extra: object) -> list[object]:
    return [
        "evaluate",
        "--real",
        folders["real"],
        "--gen",
        f"blurry={folders['blurry']}",
        "--gen",
        f"copies={folders['copies']}",
        "--train",
        folders["train"],
        "--test",
        folders["test"],
        *EXTRACTORS,
        "--out",
        ws,
        *extra,
    ]


@pytest.fixture(scope="module")
def evaluated(folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One ``workbench evaluate`` run over every folder (its workspace is only read by the tests)."""
    ws = tmp_path_factory.mktemp("eval") / "own"
    json_out = ws.parent / "numbers.json"
    code, out, err = _run(*_evaluate_argv(folders, ws, "--json", json_out))
    return {"ws": ws, "code": code, "out": out, "err": err, "json": json.loads(json_out.read_text())}


def _manifests(ws: Path) -> dict[str, str]:
    """``{cache folder name: manifest.json text}`` of every cache of a workspace."""
    return {p.parent.name: p.read_text() for p in sorted((ws / "caches").glob("*/manifest.json"))}


# --------------------------------------------------------------------------- the command, end to end


@pytest.mark.slow
def test_evaluate_writes_workspace_caches_tables_and_report(evaluated) -> None:
    ws, out, err = evaluated["ws"], evaluated["out"], evaluated["err"]
    assert evaluated["code"] == 0, err
    assert isinstance(ws, Path) and isinstance(out, str) and isinstance(err, str)

    # workspace.json: explicit names and roles, one cache per (set, extractor), paths inside the folder
    index = read_index(ws)
    assert index.roles == ROLES
    assert sorted((e.set, e.extractor) for e in index.entries) == sorted(
        (s, x) for s in ROLES for x in ("pixels", "demo-classifier")
    )
    raw = json.loads((ws / WORKSPACE_FILE).read_text())
    assert all(row["path"].startswith("caches/") for row in raw["caches"])
    assert all((ws / row["path"] / "manifest.json").is_file() for row in raw["caches"])
    # the training set keeps thumbnails (the memorization views show them)
    assert all(row["thumbnails"] == 64 for row in raw["caches"] if row["set"] == "train")
    assert {row["set"]: row["n"] for row in raw["caches"]} == {**dict.fromkeys(ROLES, N), "train": 2 * N}

    # one table per extractor listing every generated set, the roles in the header
    for ext in ("pixels", "demo-classifier"):
        header = f"== {ext} (reference: real, train: train, test: test) =="
        assert header in out
        table = out.split(header)[1].split("==")[0]
        assert "\nblurry " in table and "\ncopies " in table and "authpct" in table and "ct" in table
    assert "is" in out.split("== demo-classifier")[1].split("\n")[1].split()  # logits: Inception Score column

    # the numbers: the model made of training images is caught by the memorization metrics
    rows = {ext: {r["model"]: r for r in report["rows"]} for ext, report in evaluated["json"]["extractors"].items()}
    assert evaluated["json"]["generated"] == ["blurry", "copies"] and evaluated["json"]["test"] == "test"
    for ext in ("pixels", "demo-classifier"):
        assert rows[ext]["copies"]["authpct"]["value"] < rows[ext]["blurry"]["authpct"]["value"]
        assert rows[ext]["copies"]["ct"]["value"] < rows[ext]["blurry"]["ct"]["value"]
    assert rows["pixels"]["copies"]["authpct"]["value"] < 10 < rows["pixels"]["blurry"]["authpct"]["value"]

    # the static report of the dashboard names every set; saved reports for the next run
    html = (ws / "report.html").read_text()
    assert "<html" in html[:300].lower()
    for name in ROLES:
        assert name in html
    assert list((ws / ".workbench").glob("metrics-*.json"))

    # progress and what to do next
    assert "[1/10] real (reference) x pixels" in err and "[10/10] test (test) x demo-classifier" in err
    assert "caches     10 extracted, 0 reused" in out
    assert f"wb.Workbench.open({str(ws)!r})" in out
    assert f"workbench metrics --workspace {ws} --gen blurry --gen copies" in out
    assert f"workbench info --workspace {ws} blurry" in out


@pytest.mark.slow
def test_rerun_reuses_caches_and_saved_reports(evaluated, folders, tmp_path: Path) -> None:
    ws = tmp_path / "own"
    shutil.copytree(evaluated["ws"], ws)
    (ws / "report.html").unlink()
    before, index_before = _manifests(ws), (ws / WORKSPACE_FILE).read_text()
    code, out, err = _run(*_evaluate_argv(folders, ws, "--no-report"))
    assert code == 0, err
    assert err.count("reusing cache") == 10 and "computing" not in err  # nothing extracted, tables read back
    assert "caches     0 extracted, 10 reused" in out
    assert _manifests(ws) == before and (ws / WORKSPACE_FILE).read_text() == index_before
    assert not (ws / "report.html").exists()  # --no-report
    # the same tables as the first run
    assert out.split("\n\nworkspace  ")[0] == evaluated["out"].split("\n\nworkspace  ")[0]


@pytest.mark.slow
def test_python_rerun_replaces_a_set_and_keeps_the_others(evaluated, folders, tmp_path: Path) -> None:
    """``evaluate_folders`` with a new version of one model and a new model, without train/test:
    (blurry, pixels) is replaced, the other sets of the earlier run are kept."""
    ws = tmp_path / "own"
    shutil.copytree(evaluated["ws"], ws)
    events: list[str] = []
    result = evaluate_folders(
        ("real", folders["real"]),
        {"blurry": folders["blurrier"], "again": folders["blurry"]},
        extractors=["pixels"],
        extractor_options={"pixels": {"size": 8}},
        weights="none",
        num_workers=0,
        out=ws,
        report=False,
        progress=lambda event: events.append(str(event)),
    )
    assert any("[1/3] real (reference) x pixels" in e for e in events)
    assert result.reused == {("real", "pixels"): True, ("blurry", "pixels"): False, ("again", "pixels"): False}
    assert [e.set for e in result.index.replaced] == ["blurry"] and [e.set for e in result.index.added] == ["again"]
    # the blurry model now comes from another folder: its demo-classifier cache (old images) is dropped
    assert [(e.set, e.extractor) for e, _ in result.index.dropped] == [("blurry", "demo-classifier")]
    assert "model_blurrier" in result.index.dropped[0][1]
    ws_now = Workspace.open(ws)
    assert ws_now.generated == ["blurry", "again", "copies"] and ws_now.train == "train" and ws_now.test == "test"
    assert Path(ws_now.cache("blurry", "pixels").manifest["source"]["path"]) == folders["blurrier"].resolve()
    assert ws_now.has("copies", "demo-classifier") and not ws_now.has("blurry", "demo-classifier")
    # every generated set of the workspace is in the table, against the same reference
    assert list(result.reports["pixels"].values.index) == ["blurry", "again", "copies"]
    assert "demo-classifier" in result.reports  # copies still has caches by it
    assert result.format_tables().startswith("== pixels (reference: real, train: train, test: test) ==")
    assert any("kept set(s) copies, test, train" in n for n in result.notes)


# --------------------------------------------------------------------------- set names afterwards


@pytest.mark.slow
def test_set_names_work_in_metrics_info_and_report(evaluated, tmp_path: Path) -> None:
    ws = tmp_path / "own"
    shutil.copytree(evaluated["ws"], ws)

    code, out, err = _run(
        "metrics", "--workspace", ws, "--gen", "copies", "--gen", "test", "--extractor", "pixels", "-q"
    )
    assert code == 0, err
    # the test set, compared as a model, is the ideal: no training set left to calibrate C_T against
    assert out.startswith("== pixels (reference: real, train: train) ==")
    names = [line.split()[0] for line in out.splitlines()[3:5]]
    assert names == ["copies", "test"] and "blurry" not in out
    code, out, err = _run(
        "metrics", "--workspace", ws, "--ref", "test", "--test", "real", "--extractor", "pixels", "-q"
    )
    assert code == 0 and out.startswith("== pixels (reference: test, train: train, test: real) =="), err

    code, out, err = _run("info", "--workspace", ws, "train")
    assert code == 0, err
    assert out.startswith(f"set        train (train) in {ws.resolve()}: {2 * N} images, 2 extractor(s)")
    assert "== train x pixels ==" in out and "== train x demo-classifier ==" in out and "thumbnails 64px" in out
    code, out, err = _run("info", "--workspace", ws, "copies", "--extractor", "pixels", "--json", "--verify")
    data = json.loads(out)
    assert code == 0 and data["role"] == "generated" and list(data["caches"]) == ["pixels"]
    assert data["caches"]["pixels"]["source"]["path"].endswith("model_copies")

    report = tmp_path / "copies-only.html"
    code, out, err = _run("report", ws, "--out", report, "--gen", "copies", "-q", "--heatmaps", "0")
    assert code == 0 and out.strip() == str(report), err
    html = report.read_text()
    assert "copies" in html and "Memorization" in html
    assert "heatmaps left out of this report (heatmaps=0)" in html


def test_set_name_errors_of_metrics_info_and_report(tmp_path: Path, capsys) -> None:
    """Names that are not sets of the workspace, two roles for one set: one error line each."""
    ws = _tiny_workspace(tmp_path)
    for argv, message in [
        (["metrics", "--workspace", ws, "--gen", "nope"], "--gen nope: no set named 'nope'"),
        (["metrics", "--workspace", ws, "--gen", "a", "--gen", "a"], "--gen a is given twice"),
        (["metrics", "--workspace", ws, "--gen", "a", "--ref", "a"], "set 'a' is named by --ref and --gen"),
        (["metrics", "--workspace", ws, "--gen", str(ws / "caches")], "--workspace and --gen are mutually exclusive"),
        (["info", "--workspace", ws, "nope"], "no set named 'nope'"),
        (["info", "--workspace", ws, "a", "--extractor", "clip"], "set 'a' has no cache by extractor(s) ['clip']"),
        (["info", "--extractor", "pixels", str(ws)], "use it with --workspace DIR SET"),
        (["info"], "give a cache folder"),
        (["report", ws, "--train", "nope"], "--train nope: no set named 'nope'"),
    ]:
        code, out, err = _run(*argv)
        assert code == 2 and err.startswith("workbench: error: ") and message in err, (argv, err)
        assert len(err.strip().splitlines()) == 1, err


def _tiny_workspace(tmp_path: Path) -> Path:
    """A workspace of two tiny pixels caches (real, a) written with ``evaluate_folders``."""
    images, labels = load_fashion_mnist("test")
    real = write_class_folders(tmp_path / "r", images[:12], labels[:12])
    gen = write_class_folders(tmp_path / "g", images[12:24], labels[12:24])
    ws = tmp_path / "ws"
    result = evaluate_folders(
        real,
        {"a": gen},
        extractors="pixels",
        extractor_options={"pixels": {"size": 2}},
        out=ws,
        metrics="fd",
        num_workers=0,
        report=False,
        progress=False,
    )
    assert result.workspace.generated == ["a"] and result.reports["pixels"].computed
    return ws


def test_evaluate_under_a_protocol_sets_up_extractors_and_records_it(tmp_path: Path) -> None:
    """``--protocol clean-fid``: Inception is built with clean-fid's resize and normalisation, every
    cache records the protocol (a cache key of its own), and the tables follow it."""
    images, labels = load_fashion_mnist("test")
    real = write_class_folders(tmp_path / "r", images[:10], labels[:10])
    gen = write_class_folders(tmp_path / "g", images[10:20], labels[10:20])
    ws = tmp_path / "ws"
    argv = ["evaluate", "--real", real, "--gen", f"a={gen}", "-e", "inception", "-w", "none", "--workers", "0"]
    code, out, err = _run(*argv, "--protocol", "clean-fid", "-m", "fd", "--no-report", "--out", ws, "--quiet")
    assert code == 0, err
    for name in ("real", "a"):
        cache = Workspace.open(ws).cache(name, "inception")
        assert cache.manifest["protocol"]["name"] == "clean-fid"
        assert cache.manifest["extractor"]["preprocessing"]["resize_mode"] == "clean"
    code, out, err = _run("info", "--workspace", ws, "a")
    assert code == 0 and "protocol   clean-fid" in out, out
    code, out, err = _run("metrics", "--workspace", ws, "-m", "fd", "--json", tmp_path / "t.json")
    assert code == 0, err
    assert json.loads((tmp_path / "t.json").read_text())["extractors"]["inception"]["info"]["protocol"] == "clean-fid"


def test_rerun_drops_what_contradicts_the_new_sets(tmp_path: Path) -> None:
    """A re-run with another reference name, or another configuration of an extractor: the old
    reference and the caches made with the old settings leave the index, with the reason."""
    ws = _tiny_workspace(tmp_path)
    images, labels = load_fashion_mnist("test")
    other = write_class_folders(tmp_path / "b", images[24:36], labels[24:36])
    tiny = {"out": ws, "metrics": "fd", "num_workers": 0, "report": False, "progress": False}
    tiny["extractor_options"] = {"pixels": {"size": 2}}  # as _tiny_workspace
    first = evaluate_folders(tmp_path / "r", {"a": tmp_path / "g", "b": other}, extractors="pixels", **tiny)
    assert first.reused == {("real", "pixels"): True, ("a", "pixels"): True, ("b", "pixels"): False}
    assert first.index.dropped == [] and [e.set for e in first.index.added] == ["b"]

    renamed = evaluate_folders(("truth", tmp_path / "r"), {"a": tmp_path / "g"}, extractors="pixels", **tiny)
    assert [(e.set, why) for e, why in renamed.index.dropped] == [("real", "the reference set is now 'truth'")]
    assert renamed.workspace.reference == "truth" and renamed.workspace.generated == ["a", "b"]

    tiny["extractor_options"] = {"pixels": {"size": 3}}
    resized = evaluate_folders(("truth", tmp_path / "r"), {"a": tmp_path / "g"}, extractors="pixels", **tiny)
    assert [e.set for e in resized.index.replaced] == ["truth", "a"]
    assert [(e.set, why.split(" (")[0]) for e, why in resized.index.dropped] == [
        ("b", "it was made with other 'pixels' settings than the new caches")
    ]
    assert read_index(ws).sets == ["truth", "a"] and resized.workspace.cache("a", "pixels").features.shape[1] == 27


# --------------------------------------------------------------------------- errors before any extraction


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gen", "a={missing}"], "--gen a={missing}: {missing} does not exist"),
        (["--gen", "{gen}"], "--gen '{gen}' needs a name: --gen NAME=DIR"),
        (["--gen", "=x"], "the name before '=' is empty"),
        (["--gen", "a={gen}", "--gen", "a={other}"], "set name 'a' is used twice (--gen and --gen)"),
        (["--gen", "real={gen}"], "set name 'real' is used twice (--real and --gen)"),
        (["--gen", "a={gen}", "--train", "a={other}"], "set name 'a' is used twice (--gen and --train)"),
        (["--gen", "a={gen}", "--gen", "b={gen}"], "is given for two sets ('a' and 'b')"),
        (["--gen", "a={gen}", "--test", "{real}"], "is given for two sets ('real' and 'test')"),
        (["--gen", "a={file}"], "is a file; give a folder of images"),
        (["--gen", "a={gen}", "-e", "pixels,nope"], "unknown extractor 'nope'"),
        (["--gen", "a={gen}", "-e", "pixels,pixels"], "extractor(s) ['pixels'] are given twice"),
        (["--gen", "a={gen}", "-m", "fd,nope"], "unknown metric(s) ['nope']"),
        (["--gen", "a={gen}", "-m", "ct"], "metric 'ct' needs --test"),
        (["--gen", "a={gen}", "-e", "pixels,demo-ssl", "--option", "size=4"], "say which extractor it is for"),
        (["--gen", "a={gen}", "-e", "pixels", "--option", "pixels:nope=1"], "extractor 'pixels' has no option 'nope'"),
        (["--gen", "a={gen}", "-e", "pixels,inception", "-w", "/x.pt"], "a weights file fits one extractor"),
        (["--gen", "a={gen}", "-e", "pixels", "-w", "clip=none"], "not evaluated"),
        (["--gen", "a={gen}", "--protocol", "nope"], "unknown protocol 'nope'; choose one of: workbench"),
        (
            ["--gen", "a={gen}", "-e", "pixels", "--protocol", "clean-fid"],
            "--protocol clean-fid has no extractor 'pixels'",
        ),
        (
            ["--gen", "a={gen}", "-e", "inception", "--protocol", "pytorch-fid", "--option", "resize=clean"],
            "contradicts --protocol pytorch-fid",
        ),
    ],
)
def test_bad_folders_names_and_options_fail_before_extraction(tmp_path: Path, folders, args, message) -> None:
    (tmp_path / "f.txt").write_text("not images")
    paths = {
        "missing": tmp_path / "nope",
        "gen": folders["blurry"],
        "other": folders["copies"],
        "real": folders["real"],
        "file": tmp_path / "f.txt",
    }
    ws = tmp_path / "ws"
    args = [a.format(**paths) for a in args] + ([] if "-e" in args else ["-e", "pixels"])
    argv = ["evaluate", "--real", folders["real"], *args, "--out", ws]
    code, out, err = _run(*argv)
    assert code == 2 and err.startswith("workbench: error: ") and message.format(**paths) in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not ws.exists()  # nothing extracted, nothing written


def test_every_problem_of_the_sets_in_one_message(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        evaluate_folders(tmp_path / "r", {"a": tmp_path / "a", "b ": tmp_path}, out=tmp_path / "ws")
    message = str(info.value)
    assert f"{tmp_path / 'r'} does not exist" in message and f"{tmp_path / 'a'} does not exist" in message
    assert "without surrounding spaces" in message
    with pytest.raises(ValueError, match="give at least one generated set"):
        evaluate_folders(tmp_path, {}, out=tmp_path / "ws")
    assert not (tmp_path / "ws").exists()


# --------------------------------------------------------------------------- Python


@pytest.mark.slow
def test_workbench_from_folders_returns_the_dashboard(folders, tmp_path: Path) -> None:
    bench = wb.Workbench.from_folders(
        real=folders["real"],
        generated={"blurry": folders["blurry"], "copies": folders["copies"]},
        train=("training", folders["train"]),
        extractors=["pixels"],
        out=tmp_path / "own",
        weights="none",
        extractor_options={"pixels": {"size": 4}},
        num_workers=0,
        metrics="fd,authpct",
        progress=False,
        background=False,
    )
    assert isinstance(bench, wb.Workbench)
    ws = bench.ws
    assert ws.reference == "real" and ws.generated == ["blurry", "copies"] and ws.train == "training"
    assert ws.test is None and read_index(tmp_path / "own").roles["training"] == "train"
    assert bench.reports is not None and list(bench.reports["pixels"].values.columns) == ["fd", "authpct"]
    assert bench.memorization is not None  # a training set: the Memorization tab is there
    html = (tmp_path / "own" / "report.html").read_text()
    assert "training" in html and "copies" in html
    with pytest.raises(TypeError, match="unknown option"):
        wb.Workbench.from_folders(folders["real"], {"a": folders["blurry"]}, out=tmp_path / "x", colour="red")
    assert wb.evaluate_folders is evaluate_folders
