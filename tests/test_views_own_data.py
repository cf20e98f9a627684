"""The views on a user's own models (issue "Your own models, end to end", items 3, 4 and 6).

A workspace as a user builds it from folders of Fashion-MNIST images: every set sorted by class
(as class folders are read), one extractor (``pixels``), a training set extracted with
``--thumbnails 0`` and no held-out test set, generated sets ``model_blurry`` (blurred test
images) and ``model_copies`` (training images plus a little noise). On it: the memorization
browser labels its ratio criterion uncalibrated with the commands that add a test set, explains
the missing training thumbnails and lists the neighbours instead of empty boxes; the report
orders the generated sets by copy rate; the extractor comparison says what to add instead of an
empty matrix; its contribution controls describe the grid; the human agreement view says the
shipped study is not the user's; no dashboard tab raises; the report's strips span the classes.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")
pytest.importorskip("anywidget")

from workbench.analysis.memorization import memorization_report
from workbench.cache import extract
from workbench.images import ArraySource
from workbench.images.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist
from workbench.widgets import ExtractorComparison, HumanAgreement, MemorizationBrowser, Selection, Workbench, Workspace
from workbench.widgets.report import strip_rows
from workbench.workspace import workspace_reports

METRICS = "fd,prdc"
EVALUATE_TEST = "workbench evaluate ... --test DIR"


def by_class(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The images in the order a folder of class folders gives them: sorted by class."""
    order = np.argsort(labels, kind="stable")
    return images[order], labels[order]


def blur(images: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(1.2))) for im in images])


def fake_umap(x: np.ndarray, *, n_neighbors: int, min_dist: float, seed: int) -> np.ndarray:
    """Stand-in for umap-learn (never called unless UMAP is asked for)."""
    return np.asarray(x[:, :2], dtype=np.float32)


@pytest.fixture(scope="module")
def own_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Caches by ``pixels`` (8 px) of: real (300 test images), model_blurry (300 other test
    images, blurred), model_copies (300 training images + noise), train (600 training images,
    no thumbnails); every set sorted by class; no test set."""
    root = tmp_path_factory.mktemp("own-ws")
    tx, ty = load_fashion_mnist("train")
    sx, sy = load_fashion_mnist("test")
    rng = np.random.default_rng(0)
    idx = rng.choice(600, 300, replace=False)
    noisy = np.clip(tx[idx].astype(np.float64) + rng.normal(0, 8, tx[idx].shape), 0, 255).astype(np.uint8)
    sets = {
        "real": by_class(sx[:300], sy[:300]),
        "model_blurry": by_class(blur(sx[600:900]), sy[600:900]),
        "model_copies": by_class(noisy, ty[idx]),
        "train": by_class(tx[:600], ty[:600]),
    }
    for name, (x, y) in sets.items():
        extract(
            ArraySource(x, y, FASHION_MNIST_CLASSES, name=name),
            "pixels",
            out=root,
            thumbnails=0 if name == "train" else 28,
            num_workers=0,
            progress=False,
            extractor_options={"size": 8},
        )
    return root


@pytest.fixture(scope="module")
def ws(own_dir: Path) -> Workspace:
    ws = Workspace.open(own_dir)
    assert ws.reference == "real" and ws.train == "train" and ws.test is None and ws.extractors == ["pixels"]
    assert ws.generated == ["model_blurry", "model_copies"]  # by name: the blurry one first
    assert ws.thumbnail_px("train") == 0 and ws.thumbnail_px("model_copies") == 28
    return ws


@pytest.fixture(scope="module")
def reports(ws: Workspace):
    return workspace_reports(ws, metrics=METRICS)


def text_of(markup: str) -> str:
    return re.sub(r"<[^>]+>", "", markup)


# --------------------------------------------------------------------------- memorization


def test_ratio_criterion_is_labelled_uncalibrated_with_the_commands_to_add_a_test_set(ws: Workspace) -> None:
    browser = MemorizationBrowser(ws, selection=Selection(model="model_copies"), background=False, k=3)
    assert browser.base_report.criterion == "ratio"
    notes = text_of(browser.notes.value)
    assert "uncalibrated" in notes and EVALUATE_TEST in notes
    # the scanned folder has no workspace.json yet: the note says to make one, then add the test cache
    assert f"workbench workspace init {ws.root} --scan" in notes
    assert f"workbench workspace add {ws.root} CACHE --set test --role test" in notes
    assert (
        "workbench extract DIR -e pixels -w none, with the options of your other pixels caches (variant 8px)" in notes
    )
    assert "uncalibrated" in browser.copy_label.value and "uncalibrated" in browser.summary.value
    # calibrated on a held-out set (here the reference, as test_set= allows): no such label
    calibrated = MemorizationBrowser(ws, selection=Selection(model="model_copies"), background=False, test_set="real")
    assert calibrated.base_report.criterion == "distance"
    assert "uncalibrated" not in calibrated.notes.value + calibrated.copy_label.value + calibrated.summary.value


def test_training_set_without_thumbnails_is_explained_and_neighbours_listed(ws: Workspace) -> None:
    sel = Selection(model="model_copies")
    browser = MemorizationBrowser(ws, selection=sel, background=False, k=3, rows_per_page=5)
    notes = text_of(browser.notes.value)
    assert "No thumbnails of the training set “train”" in notes and "--thumbnails 0" in notes
    assert "workbench extract" in notes and "--thumbnails 64" in notes
    assert f"workbench workspace add {ws.root} CACHE --set train --role train" in notes
    rep = browser.report
    # one cell per generated sample (no empty boxes for the neighbours), the neighbours as text
    assert len(browser.canvas.cells) == 5 and browser.canvas.columns == 5
    first = int(browser.rows["fake_row"].iloc[0])
    listed = text_of(browser.neighbours_html.value)
    for j in range(3):
        assert f"train #{int(rep.train_rows[first, j])} · d" in listed
    assert f"train #{int(rep.train_rows[first, 0])}" in browser.canvas.cells[0]["title"]
    # a click on the second cell selects the second row's sample and its neighbours
    browser.canvas.clicked = 1
    second = int(browser.rows["fake_row"].iloc[1])
    assert sel.samples[0] == ("model_copies", second) and len(sel.samples) == 4


def test_report_section_orders_generated_sets_by_copy_rate(ws: Workspace) -> None:
    browser = MemorizationBrowser(ws, background=False, k=2, compute=False)
    rates = browser.copy_rates()
    # independently: the ratio criterion's copy rate of each set, from the analysis itself
    train = ws.cache("train", "pixels")
    expected = {
        m: memorization_report(train, ws.cache(m, "pixels"), k=1, progress=False).copy_rate for m in ws.generated
    }
    assert rates.set_index("model")["copy_rate"].to_dict() == pytest.approx(expected)
    assert (
        rates["model"].tolist() == sorted(expected, key=expected.get, reverse=True) == ["model_copies", "model_blurry"]
    )
    assert not rates["calibrated"].any()
    section = browser.static_html(rows=3)
    assert re.findall(r"class='wb-memo-set' data-set='([^']+)'", section) == ["model_copies", "model_blurry"]
    assert re.findall(r"class='wb-memo-rate' data-set='([^']+)'", section) == ["model_copies", "model_blurry"]
    for model, rate in expected.items():
        assert f"{model} — copy rate {100 * rate:.2f}% (uncalibrated)" in section
    assert "uncalibrated" in section and EVALUATE_TEST in section and "--thumbnails 0" in section
    # no training thumbnail: its rows and distances are written out, no image is drawn for them
    assert "title='train #" not in section and section.count("<figcaption>train #") == 2 * 3 * 2
    assert section.count("<img ") == 2 * 3  # the generated samples only


# --------------------------------------------------------------------------- extractor comparison


def test_one_extractor_comparison_says_what_to_add(ws: Workspace, reports) -> None:
    view = ExtractorComparison(ws, reports=reports, background=False)
    note = text_of(view.matrix_note.value)
    assert "One extractor (pixels)" in note
    assert "workbench evaluate ... --extractor pixels,dinov2" in note
    assert "workbench extract SOURCE -e dinov2" in note and f"workbench workspace add {ws.root} CACHE" in note
    assert len(view.matrix.data) == 0 and view.matrix_box.layout.display == "none"
    assert len(view.static_figures()) == 1 and "One extractor" in view.static_html()
    assert f"workbench workspace init {ws.root} --scan" in note  # a scanned folder needs its index first
    assert len(view.bump.data) == 2  # the ranks under the one extractor are still drawn


def test_agreement_matrix_needs_three_models_and_says_so() -> None:
    import pandas as pd

    from workbench.analysis.extractor_ranking import compare_extractors

    def long(models: list[str]) -> pd.DataFrame:
        rows = [(e, m, "fd", float(i + j)) for j, e in enumerate(["a", "b"]) for i, m in enumerate(models)]
        return pd.DataFrame(rows, columns=["extractor", "model", "metric", "value"])

    two = ExtractorComparison(comparison=compare_extractors(long(["m1", "m2"])), background=False)
    assert "needs at least 3 models" in two.matrix_note.value and "m1, m2" in text_of(two.matrix_note.value)
    assert len(two.matrix.data) == 0 and two.matrix_box.layout.display == "none"
    three = ExtractorComparison(comparison=compare_extractors(long(["m1", "m2", "m3"])), background=False)
    assert three.matrix_note.value == "" and three.matrix_box.layout.display is None
    assert three.matrix.data[0].z[0][1] == pytest.approx(1.0)  # the same order under both extractors


def test_contribution_controls_describe_what_the_grid_shows(ws: Workspace, reports) -> None:
    from workbench.analysis.attribution import fd_contributions, metric_contributions

    sel = Selection(model="model_blurry", extractor="pixels")
    view = ExtractorComparison(ws, reports=reports, selection=sel, background=False)
    view.run_contributions(model="model_copies", metric="precision")
    # the controls show what was computed (they used to keep "fd" and the selected model)
    assert (view.model_menu.value, view.contribution_menu.value, view.contribution_extractor.value) == (
        "model_copies",
        "precision",
        "pixels",
    )
    assert view.shown == ("model_copies", "precision", "pixels") and sel.model == "model_copies"
    assert view.grid.items.set_names() == ["model_copies"] and "precision" in view.grid.samples_origin
    # changing a control recomputes the grid for it
    view.contribution_menu.value = "fd"
    assert view.shown == ("model_copies", "fd", "pixels")
    scores = fd_contributions(ws.cache("real", "pixels"), ws.cache("model_copies", "pixels")).scores
    assert view.grid.items[0] == ("model_copies", int(np.argmax(scores)))
    # so does the shared selection's model
    sel.model = "model_blurry"
    assert view.model_menu.value == "model_blurry" and view.shown == ("model_blurry", "fd", "pixels")
    assert view.grid.items.set_names() == ["model_blurry"] and view.grid.samples_origin.startswith("model_blurry")
    # recall: the grid shows the real samples the model misses
    view.contribution_menu.value = "recall"
    missed = metric_contributions(ws.cache("real", "pixels"), ws.cache("model_blurry", "pixels"), "recall").scores
    assert view.grid.items.set_names() == ["real"] and len(view.grid.items) == len(missed)
    assert view.shown == ("model_blurry", "recall", "pixels") and view.contributions.scores is not None


# --------------------------------------------------------------------------- human agreement


def test_human_agreement_says_the_shipped_study_is_not_yours(ws: Workspace, reports, tmp_path: Path) -> None:
    from workbench.analysis.human_data import load_human_study, load_user_study
    from workbench.widgets.human_agreement import metric_table_from_reports

    view = HumanAgreement(n_boot=20, workspace_models=ws.generated)
    notice = text_of(view.notice.value)
    assert "published study of Stein et al." in notice and "model_blurry, model_copies" in notice
    assert "workbench.analysis.human_data.load_user_study(" in notice and "human_table=..." in notice
    assert view.own_models == [] and len(view.scatter.data[0].x) >= 3  # the reference stays below
    assert view.children[0] is view.notice
    published = str(load_human_study()["model"].iloc[0])
    assert HumanAgreement(n_boot=0, workspace_models=[published]).notice.value == ""
    # the user's own ratings of their own models: no notice
    csv = tmp_path / "ratings.csv"
    csv.write_text("model,participant,score\nmodel_blurry,p1,0.1\nmodel_blurry,p2,0.2\nmodel_copies,p3,0.4\n")
    own = HumanAgreement(
        metric_table_from_reports(reports), load_user_study(csv), n_boot=0, workspace_models=ws.generated
    )
    assert own.notice.value == "" and own.own_models == ["model_blurry", "model_copies"]


# --------------------------------------------------------------------------- dashboard and report


def test_strip_rows_span_the_classes_of_a_set_sorted_by_class(ws: Workspace) -> None:
    rows, how = strip_rows(ws, "real", 24, seed=0)
    codes = ws.classes("real").codes
    assert len(rows) == len(set(rows.tolist())) == 24 and "across its classes" in how
    assert len(np.unique(codes[rows])) == 10  # the first 24 rows are a single class
    assert np.bincount(codes[rows], minlength=10).max() <= 3
    assert np.array_equal(strip_rows(ws, "real", 24, seed=0)[0], rows)  # seeded
    assert not np.array_equal(strip_rows(ws, "real", 24, seed=1)[0], rows)

    class NoClasses:  # a set without classes: one row from each of n equal stretches
        def size(self, name: str) -> int:
            return 1000

        def classes(self, name: str) -> None:
            return None

    spread, how = strip_rows(NoClasses(), "x", 10, seed=3)
    assert "evenly" in how and (spread // 100).tolist() == list(range(10))


def test_dashboard_on_own_models_has_no_failing_tab_and_a_report_that_shows_them(
    ws: Workspace, reports, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = Workbench(ws, reports=reports, background=False, metrics=METRICS, human_n_boot=20, umap_reducer=fake_umap)
    assert bench.view_errors == {}
    assert "uncalibrated" in bench.memorization.notes.value
    assert "One extractor" in bench.comparison.matrix_note.value and "load_user_study" in bench.human.notice.value
    text = bench.report(tmp_path / "report.html").read_text(encoding="utf-8")
    # every set's strip spans its classes and its caption names the set
    for name in ("real", "model_blurry", "model_copies"):
        strip = re.search(rf"<figure class='wb-strip' data-set='{name}'>(.*?)</figure>", text, re.S).group(1)
        assert f"<b>{name}</b>" in strip
        classes = set(re.findall(rf"title='{name} #\d+ · ([^']+)'", strip))
        assert len(classes) == 10, (name, classes)
    memo = text[text.index("<h2>Memorization</h2>") : text.index("<h2>Extractor comparison</h2>")]
    assert re.findall(r"class='wb-memo-set' data-set='([^']+)'", memo) == ["model_copies", "model_blurry"]
    assert "uncalibrated" in memo and "--thumbnails 0" in memo
    assert "One extractor (pixels)" in text and "These are not your models." in text

    # a view that cannot be made for the workspace: its tab says why, the others and the report stand
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no classes here")

    monkeypatch.setattr("workbench.widgets.dashboard.ClassHistogram", broken)
    bad = Workbench(
        ws,
        reports=reports,
        background=False,
        memorization=False,
        human_n_boot=0,
        umap_reducer=fake_umap,
        human_table=__import__("pandas").DataFrame({"model": ["someone-else"], "score": [0.3]}),
    )
    assert bad.class_view is None and bad.view_errors["class_histogram"] == "RuntimeError: no classes here"
    assert "no classes here" in bad.tabs.children[2].value and "wb-view-error" in bad.tabs.children[2].value
    # a human table of other models: the tab names the workspace's sets instead of raising
    assert bad.human is None and "model_blurry, model_copies" in bad.view_errors["human_agreement"]
    assert "model_blurry, model_copies" in bad.tabs.children[5].value
    report = bad.report(tmp_path / "bad.html").read_text(encoding="utf-8")
    assert "The class histogram cannot be shown: RuntimeError: no classes here" in report
    assert "The agreement with human judgments cannot be shown" in report


def test_dashboard_without_training_set_says_how_to_add_one(ws: Workspace, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "no-train"
    for e in ws.entries:
        if e.set != "train":
            shutil.copytree(e.path, folder / e.path.name)
    bench = Workbench.open(folder, background=False, metrics="fd", memorization=False, human_n_boot=0)
    assert bench.memorization is None and bench.view_errors == {}
    tab = text_of(bench.tabs.children[3].value)
    assert "No training set" in tab and "workbench evaluate ... --train DIR" in tab
    assert f"workbench workspace add {bench.ws.root} CACHE --set train --role train" in tab
    report = bench.report(tmp_path / "report.html").read_text(encoding="utf-8")
    memo = text_of(report[report.index("<h2>Memorization</h2>") : report.index("<h2>Extractor comparison</h2>")])
    assert "no training set in this workspace" in memo and "--set train --role train" in memo
