"""The views keep their state in traitlets traits: observable, linkable, validated.

Each view's selection-like state (``model``, ``extractor``, ``class_name``, ``samples``,
``focused``, sort and filter choices, thresholds) is a trait that a user can ``observe`` and
``traitlets.link`` to another view's; the views stay in step through their shared
:class:`~workbench.widgets.selection.Selection` (one batch at a time) and through links to their
own controls; values a trait cannot take are refused. Built on the same small Fashion-MNIST
caches as ``tests/test_widgets.py`` (its fixtures are reused).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")
pytest.importorskip("anywidget")

import test_widgets as shared
import traitlets

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
from workbench.widgets.class_histogram import ALL_CLASSES
from workbench.widgets.linking import SelectionLink, TraitValueError, replace_options

# the small caches of tests/test_widgets.py (module-scoped fixtures, built once for this module too)
workspace_dir = shared.workspace_dir
ws = shared.ws
reports = shared.reports
click_points = shared.click_points
fake_umap = shared.fake_umap

WIDGETS_DIR = Path(__file__).resolve().parent.parent / "workbench" / "widgets"


class Recorder:
    """Records ``(trait, new value)`` of every change of the given traits of the given objects."""

    def __init__(self, **objects: tuple[traitlets.HasTraits, list[str]]) -> None:
        self.changes: list[tuple[str, str, object]] = []
        for label, (obj, names) in objects.items():
            obj.observe(lambda c, label=label: self.changes.append((label, c["name"], c["new"])), names=names)

    def of(self, label: str, name: str) -> list[object]:
        return [new for who, n, new in self.changes if (who, n) == (label, name)]

    def clear(self) -> None:
        self.changes.clear()


@pytest.fixture()
def linked_views(ws: Workspace, reports):
    """Every view on one shared selection, as the dashboard wires them (synchronous)."""
    sel = Selection(extractor="pixels")
    views = {
        "table": MetricTable(reports, selection=sel),
        "grid": SampleGrid(ws, selection=sel, background=False, page_size=16),
        "map": EmbeddingMap(ws, selection=sel, background=False, umap_reducer=fake_umap, max_points=100, seed=0),
        "classes": ClassHistogram(ws, selection=sel, background=False),
        "memo": MemorizationBrowser(ws, selection=sel, background=False, compute=False, k=2),
        "comparison": ExtractorComparison(ws, reports=reports, selection=sel, background=False),
    }
    return sel, views


# --------------------------------------------------------------------------- state is traits


def test_view_state_is_traits_and_no_mirror_flags_remain(ws: Workspace, reports) -> None:
    expected = {
        MetricTable: ["model", "extractor", "sort_by", "ascending", "extractor_filter", "metrics"],
        SampleGrid: [
            "model",
            "class_name",
            "samples",
            "samples_origin",
            "extractor",
            "focused",
            "sort_by",
            "descending",
            "page",
            "page_count",
            "items",
            "page_items",
            "page_png",
            "captions",
            "detail",
        ],
        EmbeddingMap: ["extractor", "projection", "model", "samples", "samples_origin", "hovered"],
        ClassHistogram: ["model", "class_name", "top_n"],
        MemorizationBrowser: [
            "model",
            "extractor",
            "copy_threshold",
            "copy_count",
            "page",
            "page_count",
            "samples",
            "samples_origin",
            "focused",
        ],
        ExtractorComparison: ["metric", "method", "model", "contribution_metric", "extractor"],
        HumanAgreement: ["dataset", "metric", "extractor", "column", "model"],
        Workbench: ["model", "extractor", "class_name", "samples", "samples_origin", "focused"],
    }
    for cls, names in expected.items():
        assert issubclass(cls, traitlets.HasTraits)
        assert [n for n in names + ["selection"] if not cls.class_traits().get(n)] == [], cls.__name__
        # a trait, not a property that mirrors a child control
        assert not any(isinstance(getattr(cls, n, None), property) for n in names), cls.__name__
    # and the hand-written loop breakers and mirror setters are gone from the views' source
    views = {
        "metric_table",
        "sample_grid",
        "embedding_map",
        "class_histogram",
        "memorization",
        "extractor_comparison",
        "human_agreement",
        "dashboard",
        "selection",
        "linking",
    }
    for path in WIDGETS_DIR.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"_syncing|_suspend", text), path.name
        assert path.stem not in views or not re.search(r"\.setter\b", text), path.name
    # a view made alone has its own selection, and a user can observe what it selects
    grid = SampleGrid(ws, background=False)
    seen = []
    grid.observe(lambda c: seen.append(c["new"]), names="samples")
    grid.selection.select_samples(Samples.of("noisy", [3, 1]), "mine")
    assert seen == [Samples.of("noisy", [3, 1])] and list(grid.items) == [("noisy", 3), ("noisy", 1)]


# --------------------------------------------------------------------------- observe


def test_observe_fires_on_every_linked_view_when_another_view_selects(linked_views, ws: Workspace) -> None:
    sel, v = linked_views
    rec = Recorder(
        **{name: (view, ["model", "extractor", "samples", "class_name", "focused"]) for name, view in v.items()}
    )
    # a metric-table row click: model and extractor reach every view
    v["table"].grid.selected = "noisy|centroid"
    for name in ("table", "grid", "map", "memo", "comparison", "classes"):
        assert rec.of(name, "model") == ["noisy"], name
    for name in ("table", "grid", "map", "memo"):
        assert rec.of(name, "extractor") == ["centroid"], name
    assert v["comparison"].extractor == "centroid" and v["comparison"].contribution_extractor.value == "centroid"
    assert v["grid"].items.set_names() == ["noisy"] and v["map"].extractor_menu.value == "centroid"
    assert (sel.model, sel.extractor) == ("noisy", "centroid")

    # a lasso in the map: the grid, the memorization browser and the selection receive the samples
    rec.clear()
    emap = v["map"]
    click_points(emap.figure, "plotly_selected", {0: [0, 1], 2: [3]})
    lasso = emap.samples
    assert lasso is not None and len(lasso) == 3
    for name in ("grid", "memo"):
        assert rec.of(name, "samples") == [lasso], name
    assert list(v["grid"].items) == list(lasso) and v["grid"].samples_origin == "embedding map lasso"
    assert sel.samples == lasso and "lasso" in v["grid"].heading.value

    # a class bar click narrows the grid; clicking it again clears the class everywhere
    rec.clear()
    view = v["classes"]
    x = list(view.figure.data[0].x)
    click_points(view.figure, "plotly_click", {0: [1]})
    assert rec.of("grid", "class_name") == [x[1]] and sel.class_name == x[1] and view.class_menu.value == x[1]
    click_points(view.figure, "plotly_click", {0: [1]})
    assert rec.of("grid", "class_name") == [x[1], ""] and view.class_menu.value == ALL_CLASSES

    # a thumbnail click in the grid focuses that sample in the other views
    rec.clear()
    info = v["grid"].click(2)
    assert rec.of("memo", "focused") == [v["grid"].items[2]] and sel.focus == v["grid"].items[2]
    assert info["set"] == v["grid"].items[2][0] and v["grid"].detail == info

    # a bump-chart line click in the extractor comparison selects that model everywhere
    rec.clear()
    comparison = v["comparison"]
    trace = next(t for t in comparison.bump.data if t.name == "dropper")
    comparison.run_contributions = lambda *a, **k: None  # the attribution itself is tested elsewhere
    click_points(comparison.bump, "plotly_click", {list(comparison.bump.data).index(trace): [0]})
    for name in ("table", "grid", "map", "memo", "classes"):
        assert rec.of(name, "model") == ["dropper"], name
    assert v["table"].grid.selected == "dropper|centroid" and comparison.model_menu.value == "dropper"


def test_a_batch_of_the_selection_reaches_each_view_as_one_batch(linked_views) -> None:
    """When the selection changes model and extractor at once, no view sees the new model with the
    old extractor (which would start, e.g., a nearest-neighbour search of the wrong pair)."""
    sel, v = linked_views
    seen: list[tuple[str, str, str]] = []
    for name in ("grid", "memo", "table"):
        view = v[name]
        view.observe(
            lambda c, view=view, name=name: seen.append((name, view.model, view.extractor)),
            names=["model", "extractor"],
        )
    v["table"].select("copies", "centroid")
    assert seen and all(pair[1:] == ("copies", "centroid") for pair in seen), seen
    seen.clear()
    with sel.hold_trait_notifications():
        sel.model, sel.extractor = "noisy", "pixels"
    assert seen and all(pair[1:] == ("noisy", "pixels") for pair in seen), seen


def test_memorization_browser_traits_threshold_and_count(ws: Workspace) -> None:
    sel = Selection(model="copies", extractor="pixels")
    browser = MemorizationBrowser(ws, selection=sel, background=False, k=2)
    counts = []
    browser.observe(lambda c: counts.append(c["new"]), names="copy_count")
    d1 = browser.base_report.distances[:, 0]
    assert browser.copy_threshold == browser.threshold.value == pytest.approx(browser.base_report.threshold)
    assert browser.copy_count == int((d1 <= browser.copy_threshold).sum())
    low = float(np.quantile(d1, 0.25))
    browser.copy_threshold = low  # the trait moves the slider
    assert browser.threshold.value == low and counts[-1] == browser.copy_count == int((d1 <= low).sum())
    browser.threshold.value = browser.threshold.max  # the slider, as the browser moves it
    assert browser.copy_threshold == browser.threshold.max
    assert counts[-1] == browser.copy_count == int((d1 <= browser.threshold.max).sum()) > counts[-2]
    pages = []
    browser.observe(lambda c: pages.append(c["new"]), names="page")
    browser.go(1)
    assert pages == [1] and browser.rows["fake_row"].iloc[0] == browser._order[browser.rows_per_page]
    samples = browser.click(0)
    assert browser.samples == samples == sel.samples and browser.focused == sel.focus == samples[0]
    assert sel.samples_origin.startswith("memorization: copies")


# --------------------------------------------------------------------------- link


def test_traitlets_link_between_two_views_without_a_shared_selection(ws: Workspace, reports) -> None:
    emap = EmbeddingMap(ws, extractor="pixels", background=False, max_points=60, seed=0)
    grid = SampleGrid(ws, follow_selection=False, background=False, page_size=8)
    assert emap.selection is not grid.selection
    traitlets.link((emap, "samples"), (grid, "samples"))
    traitlets.link((emap, "samples_origin"), (grid, "samples_origin"))
    click_points(emap.figure, "plotly_selected", {1: [0, 4]})
    assert emap.samples is not None and list(grid.items) == list(emap.samples)
    assert "embedding map lasso" in grid.heading.value
    grid.show(Samples.of("reference", [7, 8, 9]), "from the grid")  # and back
    assert list(emap.samples) == [("reference", 7), ("reference", 8), ("reference", 9)]
    assert emap.selection.samples == emap.samples and emap.samples_origin == "from the grid"
    click_points(emap.figure, "plotly_deselect", {})
    assert grid.samples is None and len(grid.items) == 0

    # a table and a grid with their own selections: a row click pages the grid through that model
    table = MetricTable(reports)
    follower = SampleGrid(ws, background=False)
    traitlets.link((table, "model"), (follower, "model"))
    traitlets.link((table, "extractor"), (follower, "extractor"))
    table.grid.selected = "dropper|centroid"
    assert follower.items.set_names() == ["dropper"] and follower.extractor == "centroid"
    follower.model = "copies"
    assert table.model == "copies" and table.grid.selected == "copies|centroid"

    # dlink: one view drives another's class
    classes = ClassHistogram(ws, background=False)
    traitlets.dlink((classes, "class_name"), (follower, "class_name"))
    name = classes.frame["class_name"].iloc[0]
    classes.click_class(name)
    codes = ws.classes("copies").codes
    assert len(follower.items) == int((codes == ws.classes("copies").code_of(name)).sum())


def test_dashboard_traits_follow_and_drive_the_views(workspace_dir: Path, reports) -> None:
    bench = Workbench.open(
        workspace_dir,
        reports=reports,
        background=False,
        memorization=False,
        human_n_boot=50,
        umap_reducer=fake_umap,
        max_points=100,
    )
    seen = []
    bench.observe(lambda c: seen.append((c["name"], c["new"])), names=["model", "samples", "class_name"])
    bench.metric_table.grid.selected = "noisy|pixels"
    assert ("model", "noisy") in seen and bench.model == bench.model_menu.value == "noisy"
    bench.model_menu.value = "copies"  # the header's dropdown, as the browser sets it
    assert bench.model == bench.grid.model == bench.embedding_map.model == bench.class_view.model == "copies"
    assert bench.grid.items.set_names() == ["copies"]
    bench.extractor = "centroid"
    assert bench.extractor_menu.value == bench.embedding_map.extractor == bench.grid.extractor == "centroid"
    click_points(bench.embedding_map.figure, "plotly_selected", {0: [0, 1, 2]})
    assert bench.samples is not None and len(bench.samples) == 3 and "3</b> samples" in bench.class_label.value
    seen.clear()
    bench.clear_selection()
    assert bench.samples is None and bench.grid.samples is None and bench.embedding_map.samples is None
    assert bench.selection.samples is None and ("samples", None) in seen


# --------------------------------------------------------------------------- controls


def test_controls_and_traits_stay_in_step(linked_views, ws: Workspace, reports) -> None:
    sel, v = linked_views
    table = v["table"]
    table.filter.value = "centroid"
    assert table.extractor_filter == "centroid" and set(table.table["extractor"]) == {"centroid"}
    table.sort_by = "precision"  # higher is better: best first
    assert table.grid.sort_by == "precision" and table.ascending is False and table.grid.ascending is False
    table.grid.ascending = True  # a second header click
    assert table.ascending is True and (np.diff(table.table["precision"].to_numpy()) >= 0).all()

    grid = v["grid"]
    grid.sort.value = "train_distance"
    assert grid.sort_by == "train_distance" and grid.descending is False and grid.order.value is False
    grid.descending = True
    assert grid.order.value is True and np.all(np.diff(grid.values[np.isfinite(grid.values)]) <= 0)
    grid.page = 1
    assert grid.page_items[0] == grid.items[16]

    emap = v["map"]
    emap.projection_menu.value = "UMAP"  # the toggle computes UMAP first, then shows it
    assert emap.projection == "UMAP" and emap.projection_menu.value == "UMAP"
    emap.extractor_menu.value = "centroid"
    assert emap.extractor == sel.extractor == "centroid" and emap.projection == "PCA"

    classes = v["classes"]
    classes.top_n = 3
    assert classes.topn.value == 3
    classes.topn.value = 2
    assert classes.top_n == 2
    name = classes.frame["class_name"].iloc[0]
    classes.class_menu.value = name
    assert classes.class_name == sel.class_name == name
    # another model: the class menu gets that model's classes without passing through "all classes"
    cleared = []
    sel.observe(lambda c: cleared.append(c["new"]), names="class_name")
    sel.model = "dropper"
    assert cleared == [] and classes.class_menu.value == name and sel.class_name == name

    comparison = v["comparison"]
    comparison.metric_menu.value = "precision"
    assert comparison.metric == "precision" and "rank by precision" in comparison.bump.layout.title.text
    comparison.method = "spearman"
    assert comparison.method_menu.value == "spearman" and "spearman" in comparison.matrix.layout.title.text
    comparison.contribution_menu.value = "realism"
    assert comparison.contribution_metric == "realism"
    comparison.contribution_extractor.value = "pixels"  # the attribution's features only
    assert comparison.extractor == "pixels" and sel.extractor == "centroid"
    # new results without the selected model: its menu shows no choice, the selection keeps the model
    from workbench.analysis.extractor_ranking import compare_extractors
    from workbench.workspace import long_metric_frame

    long = long_metric_frame(dict(reports))[["extractor", "model", "metric", "value"]]
    long = long[(long["model"] != "dropper") & np.isfinite(long["value"].to_numpy(dtype=float))]
    models = []
    sel.observe(lambda c: models.append(c["new"]), names="model")
    comparison.set_comparison(compare_extractors(long))
    assert models == [] and sel.model == comparison.model == "dropper" and comparison.model_menu.value is None
    assert "dropper" not in comparison.model_menu.options and comparison.metric_menu.value == comparison.metric

    human = HumanAgreement(n_boot=20, dataset="imagenet256", metric="fd", extractor="dinov2")
    columns = []
    human.observe(lambda c: columns.append(c["new"]), names="column")
    human.metric_menu.value = "fd_rank"
    assert human.extractor == human.extractor_menu.value == "inception" and columns == ["inception_fd_rank"]
    human.metric = "fd"
    assert human.column == "fd_dinov2" and human.extractor_menu.options and human.metric_menu.value == "fd"


def test_replace_options_goes_straight_to_the_new_choice() -> None:
    import ipywidgets as W

    from workbench.widgets.linking import link_control

    class Holder(traitlets.HasTraits):
        choice = traitlets.Unicode("b")

    holder, menu = Holder(), W.Dropdown(options=["a", "b"], value="b")
    link_control(holder, "choice", menu)
    seen = []
    holder.observe(lambda c: seen.append(c["new"]), names="choice")
    replace_options(menu, ["c", "b"], "b")  # ipywidgets alone would pass through "c"
    replace_options(menu, ["c", "d"], "d")
    replace_options(menu, ["e"], None)  # no choice: the trait keeps its value
    assert seen == ["d"] and holder.choice == "d" and menu.value is None
    with pytest.raises(ValueError, match="not one of the new options"):
        replace_options(menu, ["x"], "y")


# --------------------------------------------------------------------------- validation


def refused(obj: traitlets.HasTraits, name: str, value: object, match: str = "") -> None:
    """``obj.<name> = value`` raises a TraitError that is also a ValueError, and changes nothing."""
    before = getattr(obj, name)
    with pytest.raises(TraitValueError, match=match) as info:
        setattr(obj, name, value)
    assert isinstance(info.value, traitlets.TraitError) and isinstance(info.value, ValueError)
    after = getattr(obj, name)
    assert after is before or after == before


def test_invalid_values_are_refused(linked_views, ws: Workspace) -> None:
    sel, v = linked_views
    table, grid, emap, classes, memo, comparison = (
        v[k] for k in ("table", "grid", "map", "classes", "memo", "comparison")
    )
    refused(table, "sort_by", "nonsense", "sort_by must be one of")
    refused(table, "extractor_filter", "nope", "extractor filter must be one of")
    assert table.filter.value == "all extractors" and table.grid.sort_by == "model"
    with pytest.raises(traitlets.TraitError, match="read-only"):
        table.metrics = ["fd"]

    refused(grid, "sort_by", "nonsense", "sort_by must be one of")
    refused(grid, "page", grid.page_count, "page must be in")
    refused(grid, "extractor", "nope", "extractor must be one of")
    refused(grid, "samples", Samples.of("nope", [0]), "not in the workspace")
    refused(grid, "samples", Samples.of("noisy", [ws.size("noisy")]), "which has")
    refused(grid, "focused", ("noisy", -1), "focused must be")
    with pytest.raises(traitlets.TraitError, match="read-only"):
        grid.items = Samples.of("noisy", [0])
    assert grid.sort.value == grid.sort_by and sel.samples is None

    fresh = EmbeddingMap(ws, background=False, max_points=50, seed=123)  # no UMAP layout saved for these points
    refused(fresh, "projection", "UMAP", "UMAP is not computed yet")
    refused(emap, "projection", "tSNE", "projection must be one of")
    refused(emap, "extractor", "nope", "extractor must be one of")

    refused(classes, "top_n", 9, r"top_n must be in \[1, 5\]")
    refused(classes, "model", ws.reference, "model must be one of")
    assert classes.topn.value == 1

    refused(memo, "model", "train", "model must be one of")
    refused(memo, "copy_threshold", -1.0, "copy_threshold must be in")
    refused(memo, "copy_threshold", float("nan"), "copy_threshold must be in")
    refused(memo, "copy_threshold", memo.threshold.max * 2, "copy_threshold must be in")

    refused(comparison, "metric", "nope", "metric must be one of")
    refused(comparison, "method", "pearson", "method must be one of")
    refused(comparison, "contribution_metric", "nope", "contribution_metric must be one of")
    refused(comparison, "extractor", "nope", "extractor must be one of")

    human = HumanAgreement(n_boot=20, dataset="imagenet256", metric="fd_rank")
    refused(human, "dataset", "nope", "dataset must be one of")
    refused(human, "metric", "nope", "metric must be one of")
    refused(human, "extractor", "dinov2", "has no column for extractor 'dinov2'")
    # what was refused left every control as it was
    assert human.extractor_menu.value == "inception" and memo.threshold.value == memo.copy_threshold


def test_selection_link_maps_the_selection_for_the_view(ws: Workspace) -> None:
    sel = Selection(model="", extractor="")
    browser = MemorizationBrowser(ws, selection=sel, background=False, compute=False)
    assert browser.model == ws.generated[0] and browser.extractor == ws.extractors[0]
    assert (sel.model, sel.extractor) == ("", "")  # what the selection implies is not written back
    sel.model = "reference"  # not a generated set: the browser keeps showing the first one
    assert browser.model == ws.generated[0]
    browser.model = "noisy"
    assert sel.model == "noisy"
    link = SelectionLink(sel, Selection(), ["model"])
    assert link.differences() == [] and link.view.model == "noisy"
    link.unlink()
    sel.model = "copies"
    assert link.view.model == "noisy"
    with pytest.raises(TypeError, match="has no trait 'nope'"):
        SelectionLink(sel, Selection(), ["nope"])
