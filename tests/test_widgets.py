"""Kernel-side tests of the interactive views (no browser): each view builds on small real caches
(Fashion-MNIST through the ``pixels`` extractor and a nearest-centroid classifier with logits),
the views link through the shared selection, thumbnails travel as PNG bytes, and the static
report is self-contained. Browser events are simulated the way the frontends deliver them:
plotly's ``_js2py_pointsCallback`` message, the anywidget traits a click sets.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")
pytest.importorskip("anywidget")

from workbench.cache import extract
from workbench.extractors.base import Extractor, ExtractorOutput, WeightsInfo
from workbench.extractors.pixels import BoxResize
from workbench.images import ArraySource
from workbench.images.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist
from workbench.widgets import (
    ClassHistogram,
    EmbeddingMap,
    ExtractorComparison,
    HumanAgreement,
    MemorizationBrowser,
    MetricTable,
    SampleGrid,
    Samples,
    Selection,
    Workbench,
    Workspace,
)
from workbench.widgets.tasks import BackgroundTask
from workbench.widgets.thumbnails import PNG_MAGIC, encode_png, encode_sprite, is_png, sprite_offsets
from workbench.workspace import workspace_reports

METRICS = "fd,prdc,authpct"


class CentroidClassifier(Extractor):
    """A real (if weak) classifier: logits = -distance of the 8x8 pixels to each class mean of
    Fashion-MNIST training images; features = the 10 distances (so this extractor's geometry
    differs from the pixels one)."""

    centroids: torch.Tensor

    def forward(self, batch: torch.Tensor) -> ExtractorOutput:
        d = torch.cdist(batch.reshape(batch.shape[0], -1), self.centroids)
        return ExtractorOutput(features=d, logits=-d)


def make_classifier(images: np.ndarray, labels: np.ndarray) -> CentroidClassifier:
    pre = BoxResize(8)
    flat = np.stack([pre(np.repeat(im[:, :, None], 3, 2)).reshape(-1) for im in images])
    ext = CentroidClassifier(
        name="centroid",
        variant="8px",
        dim=10,
        weights=WeightsInfo("none", False, "class-means"),
        preprocessor=pre,
        num_classes=10,
        class_names=list(FASHION_MNIST_CLASSES),
        feature_layer="distances to class means",
    )
    ext.centroids = torch.from_numpy(np.stack([flat[labels == c].mean(0) for c in range(10)]).astype(np.float32))
    return ext


def noisy(x: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    return np.clip(x.astype(np.float64) + rng.normal(0, sigma, x.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def workspace_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Caches of: reference (240 test images), heldout (200 other test images, role test), train
    (240 train images), copies (120 training images + 2 grey levels of noise), noisy (200 test
    images + heavy noise), dropper (200 test images of classes 0-4 only); each by pixels (8 px,
    28 px thumbnails) and by the centroid classifier (logits, no thumbnails)."""
    root = tmp_path_factory.mktemp("widgets-ws")
    tx, ty = load_fashion_mnist("train")
    sx, sy = load_fashion_mnist("test")
    rng = np.random.default_rng(0)
    keep = np.flatnonzero(sy[700:] < 5)[:200] + 700
    sets = {
        "reference": (sx[:240], sy[:240]),
        "heldout": (sx[240:440], sy[240:440]),
        "train": (tx[:240], ty[:240]),
        "copies": (noisy(tx[:120], rng, 2.0), ty[:120]),
        "noisy": (noisy(sx[440:640], rng, 60.0), sy[440:640]),
        "dropper": (sx[keep], sy[keep]),
    }
    clf = make_classifier(tx[1000:3000], ty[1000:3000])
    for name, (x, y) in sets.items():
        extract(
            ArraySource(x, y, FASHION_MNIST_CLASSES, name=name),
            "pixels",
            out=root,
            thumbnails=28,
            num_workers=0,
            progress=False,
            extractor_options={"size": 8},
        )
        extract(
            ArraySource(x, y, FASHION_MNIST_CLASSES, name=name),
            clf,
            out=root,
            thumbnails=0,
            num_workers=0,
            progress=False,
        )
    return root


@pytest.fixture(scope="module")
def ws(workspace_dir: Path) -> Workspace:
    return Workspace.open(workspace_dir)


@pytest.fixture(scope="module")
def reports(ws: Workspace):
    return workspace_reports(ws, metrics=METRICS)


def fake_umap(x: np.ndarray, *, n_neighbors: int, min_dist: float, seed: int) -> np.ndarray:
    """Stand-in for umap-learn (whose first fit compiles for over a minute): the first two inputs."""
    return np.asarray(x[:, :2], dtype=np.float32) * 3.0


def click_points(fig, event: str, picks: dict[int, list[int]]) -> None:
    """Deliver a plotly.js points event to a FigureWidget as the browser does."""
    traces = [t for t, pts in picks.items() for _ in pts]
    points = [p for pts in picks.values() for p in pts]
    msg = {
        "event_type": event,
        "points": {"xs": [0] * len(points), "ys": [0] * len(points), "point_indexes": points, "trace_indexes": traces},
    }
    if event == "plotly_selected":
        msg["selector"] = {"type": "lasso", "selector_state": {"xs": [0, 1, 1], "ys": [0, 0, 1]}}
    if event in ("plotly_click", "plotly_hover"):
        msg["device_state"] = {"alt": False, "ctrl": False, "meta": False, "shift": False, "button": 0, "buttons": 1}
    fig._js2py_pointsCallback = msg


def decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


# --------------------------------------------------------------------------- data layer


def test_workspace_scan_index_and_roles(workspace_dir: Path, ws: Workspace, tmp_path: Path) -> None:
    assert ws.reference == "reference" and ws.train == "train" and ws.test == "heldout"
    assert sorted(ws.generated) == ["copies", "dropper", "noisy"]
    assert sorted(ws.extractors) == ["centroid", "pixels"]
    assert ws.classifier() == "centroid"
    # Every compared set has labels (class folders): the user's classes, not the classifier's.
    assert ws.classes("dropper").source == "labels"
    np.testing.assert_array_equal(ws.classes("dropper").codes, ws.cache("dropper", "pixels").labels)
    # Without labels on a generated set: Top-1 classes of the trained classifier, compared with an
    # independent argmax of the logits.
    unlabelled = Workspace(ws.entries, caches={**ws._caches})
    unlabelled.labelled = lambda s: s != "dropper"  # type: ignore[method-assign]
    logits = np.asarray(ws.cache("dropper", "centroid").logits)
    assert unlabelled.classes("dropper").source == "top-1 of centroid"
    np.testing.assert_array_equal(unlabelled.classes("dropper").codes, logits.argmax(1))
    # workspace.json (the demo's index format) is read instead of scanning.
    index = {
        "caches": [
            {
                "set": e.set,
                "extractor": e.extractor,
                "role": "pool" if e.set == "noisy" else e.role,
                "path": str(e.path.relative_to(workspace_dir)),
            }
            for e in ws.entries
        ]
    }
    (workspace_dir / "workspace.json").write_text(json.dumps(index))
    try:
        indexed = Workspace.open(workspace_dir)
        assert indexed.role("noisy") == "pool" and "noisy" not in indexed.generated
        assert Workspace.open(workspace_dir, roles={"noisy": "generated"}).role("noisy") == "generated"
    finally:
        (workspace_dir / "workspace.json").unlink()
    with pytest.raises(ValueError, match="exactly one reference"):
        Workspace.open(workspace_dir, roles={"reference": "generated"})
    with pytest.raises(FileNotFoundError, match="no complete embedding cache"):
        Workspace.open(tmp_path)


def test_thumbnails_are_png_bytes_and_sprites_place_cells(ws: Workspace) -> None:
    thumbs = ws.thumbnails("reference", [5, 0, 3])
    np.testing.assert_array_equal(thumbs[1], ws.cache("reference", "pixels").thumbnails[0])
    png = encode_png(thumbs[0])
    assert png.startswith(PNG_MAGIC) and is_png(png)
    np.testing.assert_array_equal(decode_png(png), thumbs[0])
    np.testing.assert_array_equal(decode_png(encode_png(thumbs[0], scale=3))[::3, ::3], thumbs[0])
    sprite = decode_png(encode_sprite(thumbs, columns=2))
    assert sprite.shape == (56, 56, 3)
    for img, (x, y) in zip(thumbs, sprite_offsets(3, 2, 28)):
        np.testing.assert_array_equal(sprite[y : y + 28, x : x + 28], img)
    assert (sprite[28:, 28:] == 255).all()  # the empty fourth cell is white


def test_samples_and_selection() -> None:
    s = Samples.from_mapping({"a": [3, 1], "b": [7]})
    assert list(s) == [("a", 3), ("a", 1), ("b", 7)] and len(s) == 3
    assert s == Samples.from_pairs([("a", 3), ("a", 1), ("b", 7)]) and s != Samples.of("a", [3, 1])
    assert {k: v.tolist() for k, v in s.by_set().items()} == {"a": [3, 1], "b": [7]}
    sel = Selection()
    seen = []
    sel.observe(lambda c: seen.append(sel.samples_origin), names="samples")
    sel.select_samples(s, "lasso")
    assert seen == ["lasso"]
    sel.clear_samples()
    assert sel.samples is None and sel.samples_origin == ""


def test_background_task_reports_status_and_errors() -> None:
    from workbench.widgets.tasks import status_widget

    status = status_widget()
    got = []
    task = BackgroundTask(lambda: 41 + 1, label="answer", status=status, on_done=got.append).start()
    assert task.wait(10) == 42 and got == [42] and "done" in status.value
    bad = BackgroundTask(lambda: 1 / 0, label="broken", status=status).start()
    with pytest.raises(ZeroDivisionError):
        bad.wait(10)
    assert "ZeroDivisionError" in status.value and "wb-status-error" in status.value


# --------------------------------------------------------------------------- views


def test_metric_table_ranks_highlights_sorting_and_linking(ws: Workspace, reports) -> None:
    sel = Selection()
    table = MetricTable(reports, selection=sel)
    assert "wb-metric-table" in table._dom_classes
    frame = table.table
    assert len(frame) == 3 * 2 and {"fd", "precision", "authpct", "rank_fd"} <= set(frame.columns)
    for _ext, part in frame.groupby("extractor"):
        # rank 1 = lowest FD, highest precision: compare with an independent ordering
        assert part.sort_values("fd")["model"].tolist() == part.sort_values("rank_fd")["model"].tolist()
        best_precision = part.loc[part["precision"].idxmax(), "model"]
        assert part.loc[part["rank_precision"] == 1, "model"].tolist() == [best_precision]
    row = next(r for r in table.grid.rows if r["key"] == "dropper|pixels")
    fd_col = 2 + table.metrics.index("fd")
    dropper_fd_rank = int(frame[(frame.model == "dropper") & (frame.extractor == "pixels")]["rank_fd"].iloc[0])
    assert row["classes"][fd_col] == {1: "wb-best", 3: "wb-worst"}.get(dropper_fd_rank, "")
    table.sort_by = "fd"
    shown = table.table
    for ext in ("centroid", "pixels"):
        vals = shown[shown.extractor == ext]["fd"].to_numpy()
        assert (np.diff(vals) >= 0).all()  # lower is better: best first
    table.grid.selected = "noisy|centroid"  # what a row click sends
    assert (sel.model, sel.extractor) == ("noisy", "centroid")
    sel.model = "copies"
    assert table.grid.selected == "copies|centroid"
    table.extractor_filter = "pixels"
    assert set(table.table["extractor"]) == {"pixels"}
    assert "wb-best" in table.static_html()


def test_sample_grid_follows_model_class_and_sorts(ws: Workspace, reports) -> None:
    sel = Selection(extractor="pixels")
    table = MetricTable(reports, selection=sel)
    grid = SampleGrid(ws, selection=sel, background=False, page_size=16)
    table.grid.selected = "dropper|pixels"
    assert grid.items.set_names() == ["dropper"] and len(grid.items) == ws.size("dropper")
    assert grid.page_count == -(-ws.size("dropper") // 16)
    # the page is one PNG sprite whose first cell is the first item's thumbnail
    assert is_png(grid.page_png)
    first = decode_png(grid.page_png)[:28, :28]
    np.testing.assert_array_equal(first, ws.thumbnails("dropper", [grid.page_items[0][1]])[0])
    grid.go(1)
    assert grid.page == 1 and grid.page_items[0] == ("dropper", 16)
    # selecting a class keeps only that class's samples
    codes = ws.classes("dropper").codes
    cls = ws.classes("dropper").names[int(np.bincount(codes).argmax())]
    sel.class_name = cls
    assert len(grid.items) == int((codes == ws.classes("dropper").code_of(cls)).sum())
    assert all(codes[i] == ws.classes("dropper").code_of(cls) for _, i in grid.items)
    sel.class_name = ""
    # sort by distance to the training set: naive nearest-neighbour distances
    sel.model = "copies"
    grid.sort_by = "train_distance"
    assert grid.descending is False
    f = np.asarray(ws.cache("copies", "pixels").features, dtype=np.float64)
    t = np.asarray(ws.cache("train", "pixels").features, dtype=np.float64)
    naive = np.sqrt(((f[:, None, :] - t[None, :, :]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(grid.values, np.sort(naive), rtol=1e-6, atol=1e-9)
    # every caption names the set and row, then the score
    assert grid.captions[0] == f"copies\n#{int(np.argmin(naive))} · {np.sort(naive)[0]:.3g}"
    info = grid.click(0)
    assert info["set"] == "copies" and sel.focus == ("copies", int(np.argmin(naive)))
    assert is_png(grid.detail_image.value)
    # a score of the user's (e.g. a human soft label per image) sorts like the built-in ones
    soft = np.linspace(0, 1, ws.size("copies"))[::-1].copy()
    grid.put_score("soft_label", "copies", soft, descending=False, label="human soft label")
    assert grid.sort_by == "soft_label" and list(grid.values[:3]) == sorted(soft)[:3]
    assert grid.items[0] == ("copies", ws.size("copies") - 1)
    # an explicit sample selection wins over the model
    sel.select_samples(Samples.from_mapping({"reference": [4, 2], "noisy": [9]}), "test")
    assert len(grid.items) == 3 and "selected" in grid.heading.value


def test_embedding_map_pca_lasso_hover_and_umap(ws: Workspace) -> None:
    from sklearn.decomposition import PCA

    sel = Selection(extractor="pixels")
    grid = SampleGrid(ws, selection=sel, background=False)
    emap = EmbeddingMap(ws, selection=sel, background=True, umap_reducer=fake_umap, max_points=150, seed=1)
    assert [t.type for t in emap.figure.data] == ["scattergl"] * len(emap.points.sets)
    assert all(c <= 150 for c in np.bincount(emap.points.codes))
    # PCA agrees with scikit-learn's exact PCA up to the sign of each axis (tolerance 1e-3 of the spread)
    x = np.concatenate([np.asarray(ws.cache(s, "pixels").features)[idx] for s, idx in emap.points.by_set().items()])
    order = np.concatenate([np.flatnonzero(emap.points.codes == c) for c in np.unique(emap.points.codes)])
    ref = PCA(2, svd_solver="full").fit_transform(x)
    got = emap.coords[order]
    for k in range(2):
        sign = np.sign(ref[:, k] @ got[:, k])
        np.testing.assert_allclose(sign * got[:, k], ref[:, k], atol=1e-3 * ref[:, k].std())
    # lasso over points of two traces -> the grid pages through those samples
    click_points(emap.figure, "plotly_selected", {0: [0, 2], 3: [1]})
    expected = [
        (emap.points.sets[0], int(emap.points.by_set()[emap.points.sets[0]][0])),
        (emap.points.sets[0], int(emap.points.by_set()[emap.points.sets[0]][2])),
        (emap.points.sets[3], int(emap.points.by_set()[emap.points.sets[3]][1])),
    ]
    assert list(sel.samples) == expected and list(grid.items) == expected
    click_points(emap.figure, "plotly_deselect", {})
    assert sel.samples is None
    click_points(emap.figure, "plotly_hover", {2: [4]})
    assert emap.hovered["set"] == emap.points.sets[2] and is_png(emap.hover_image.value)
    # UMAP in the background, then cached next to the caches
    task = emap.compute_umap()
    task.wait(60)
    assert emap.projection == "UMAP" and "done" in emap.status.value
    assert list(ws.state_dir.glob("umap-*.npy")) and list(ws.state_dir.glob("umap-*.json"))
    again = EmbeddingMap(ws, selection=Selection(extractor="pixels"), umap_reducer=fake_umap, max_points=150, seed=1)
    assert again.umap_button.description == "UMAP ready"
    again.projection = "UMAP"
    np.testing.assert_array_equal(again.coords, emap.coords)
    sel.extractor = "centroid"  # the map follows the selected extractor
    assert emap.extractor == "centroid" and emap.projection == "PCA"


def test_class_histogram_click_side_by_side_and_matching(ws: Workspace) -> None:
    sel = Selection(model="dropper")
    view = ClassHistogram(ws, selection=sel, background=False)
    frame = view.frame.set_index("class_name")
    ref_codes, gen_codes = ws.classes("reference").codes, ws.classes("dropper").codes
    for name, row in frame.iterrows():
        c = ws.classes("reference").code_of(name)
        assert row["real_count"] == (ref_codes == c).sum() and row["fake_count"] == (gen_codes == c).sum()
    assert (np.diff(view.frame["real_share"].to_numpy()) <= 0).all()  # sorted by real frequency
    x = list(view.figure.data[0].x)
    click_points(view.figure, "plotly_click", {1: [2]})
    assert sel.class_name == x[2] and view.class_menu.value == x[2]
    code = ws.classes("reference").code_of(x[2])
    assert view.real_grid.items.set_names() == ["reference"] and view.fake_grid.items.set_names() in (["dropper"], [])
    assert all(ref_codes[i] == code for _, i in view.real_grid.items)
    assert len(view.real_grid.items) == (ref_codes == code).sum()
    assert len(view.fake_grid.items) == (gen_codes == code).sum()
    view.class_menu.value = "(all classes)"
    assert sel.class_name == ""
    view.run_matching(1)
    table = view.matching.to_frame("fd")
    assert sorted(table["extractor"]) == ["centroid", "pixels"]
    # real, generated, the two signs of the difference, and the matched resample
    assert "FD matched" in view.match_table.value and len(view.figure.data) == 5


def test_memorization_threshold_copy_count_and_click(ws: Workspace) -> None:
    sel = Selection(model="copies", extractor="pixels")
    browser = MemorizationBrowser(ws, selection=sel, background=False, k=3)
    rep = browser.base_report
    assert rep.criterion == "distance"  # the workspace has a held-out test set: calibrated threshold
    f = np.asarray(ws.cache("copies", "pixels").features, dtype=np.float64)
    t = np.asarray(ws.cache("train", "pixels").features, dtype=np.float64)
    h = np.asarray(ws.cache("heldout", "pixels").features, dtype=np.float64)
    d1 = np.sqrt(((f[:, None] - t[None]) ** 2).sum(-1)).min(1)
    d_test = np.sqrt(((h[:, None] - t[None]) ** 2).sum(-1)).min(1)
    assert browser.threshold.value == pytest.approx(np.quantile(d_test, 0.01), rel=1e-9)
    counts = []
    for value in np.linspace(0, browser.threshold.max, 7):
        browser.threshold.value = float(value)
        counts.append(browser.copy_count)
        assert browser.copy_count == int((d1 <= browser.threshold.value).sum())
        assert str(browser.copy_count) in browser.copy_label.value
    assert counts == sorted(counts) and counts[0] < counts[-1]
    assert "AuthPct" in browser.summary.value and "C<sub>T</sub>" in browser.summary.value
    assert browser.rows["distance"].iloc[0] == pytest.approx(d1.min(), rel=1e-9)  # most suspicious first
    samples = browser.click(0)
    assert samples[0] == ("copies", int(browser.rows["fake_row"].iloc[0]))
    assert samples.set_names() == ["copies", "train"] and len(samples) == 4 and sel.samples == samples
    sel.model = "noisy"  # re-analysed for the newly selected model
    assert browser.base_report is not rep and browser.copy_count <= counts[-1]


def test_extractor_comparison_bump_click_and_contributions(ws: Workspace, reports) -> None:
    from workbench.analysis.attribution import fd_contributions

    sel = Selection(extractor="pixels")
    view = ExtractorComparison(ws, reports=reports, selection=sel, background=False)
    bump = view.bump_frame()
    for ext in ("centroid", "pixels"):
        values = reports[ext].values["fd"]
        expected = values.rank(method="average").to_dict()
        assert bump[bump.extractor == ext].set_index("model")["rank"].to_dict() == expected
    trace = next(t for t in view.bump.data if t.name == "noisy")
    click_points(view.bump, "plotly_click", {list(view.bump.data).index(trace): [0]})
    assert sel.model == "noisy" and view.grid.items.set_names() == ["noisy"]  # the click shows its samples
    view.run_contributions(metric="fd", extractor="pixels")
    scores = fd_contributions(ws.cache("reference", "pixels"), ws.cache("noisy", "pixels")).scores
    assert view.grid.items[0] == ("noisy", int(np.argmax(scores)))
    np.testing.assert_allclose(view.grid.values[:5], np.sort(scores)[::-1][:5], rtol=1e-9)


def test_human_agreement_view_matches_the_analysis() -> None:
    from workbench.analysis.agreement import human_agreement
    from workbench.analysis.human_data import load_published_metrics

    view = HumanAgreement(n_boot=50, dataset="imagenet256", metric="fd", extractor="dinov2")
    assert view.column == "fd_dinov2"
    direct = human_agreement(load_published_metrics(), n_boot=50)
    corr = direct.correlations
    want = corr[(corr.metric == "fd_dinov2") & (corr.dataset == "imagenet256")].set_index("method")["correlation"]
    got = view.stats.set_index("method")["correlation"]
    assert got.to_dict() == pytest.approx(want.to_dict())
    pts = view.points()
    assert len(view.scatter.data[0].x) == len(pts) == int(view.stats["n_models"].iloc[0]) >= 3
    assert f"{want['spearman']:+.2f}" in view.stats_html.value
    view.metric = "fd_rank"
    assert view.column == "inception_fd_rank" and view.extractor == "inception"


@pytest.mark.slow
def test_dashboard_links_views_and_writes_offline_report(workspace_dir: Path, tmp_path: Path) -> None:
    bench = Workbench.open(workspace_dir, background=False, metrics=METRICS, human_n_boot=50, umap_reducer=fake_umap)
    assert [bench.tabs.get_title(i) for i in range(6)][:3] == ["Metrics", "Embeddings", "Classes"]
    assert "wb-workbench" in bench.widget._dom_classes
    bench.metric_table.grid.selected = "noisy|pixels"
    assert bench.grid.items.set_names() == ["noisy"] and bench.model_menu.value == "noisy"
    assert bench.embedding_map.extractor == "pixels"
    bench.tabs.selected_index = 3  # opening the tab computes the memorization analysis
    assert bench.memorization.base_report is not None
    bench.selection.class_name = "Trouser"
    assert "Trouser" in bench.class_label.value
    bench.clear_selection()
    assert bench.selection.class_name == "" and bench.selection.samples is None
    path = bench.report(tmp_path / "report.html")
    text = path.read_text(encoding="utf-8")
    assert path.stat().st_size > 1_000_000  # plotly.js is inlined
    assert text.count("Plotly.newPlot") == 1 and text.count("application/json") >= 5
    assert '"type":"scatter"' in text and '"type":"bar"' in text and '"type":"heatmap"' in text
    assert text.count("data:image/png;base64,") >= 64
    assert not re.search(r"""<(script|img|link|iframe)[^>]*(src|href)\s*=\s*["']?https?:""", text, re.I)
    assert not re.search(r"""<script[^>]*\bsrc\s*=""", text, re.I)
    # a second opening reuses the saved metric tables (no recomputation: same numbers at once)
    again = Workbench.open(
        workspace_dir, background=True, metrics=METRICS, human_n_boot=50, umap_reducer=fake_umap, memorization=False
    ).wait(60)
    assert again.reports["pixels"].values.equals(bench.reports["pixels"].values)


def test_views_refuse_bad_input(ws: Workspace, workspace_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sort_by must be one of"):
        SampleGrid(ws, background=False).sort_by = "nonsense"
    with pytest.raises(ValueError, match="not in the workspace"):
        EmbeddingMap(ws, sets=["nope"])
    copy = tmp_path / "no-train"
    for e in ws.entries:
        if e.set != "train":
            shutil.copytree(e.path, copy / e.path.name)
    with pytest.raises(ValueError, match="needs a training set"):
        MemorizationBrowser(Workspace.open(copy), background=False)
