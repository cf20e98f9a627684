"""What the views show a user of their own models: the empty state of a set without thumbnails,
captions that name the set, a class histogram whose every colour is explained and whose classes
say where they come from (or exactly what to add), titles clear of the plotly modebar, and
labelled PCA / UMAP axes.

Built on small real caches (Fashion-MNIST through the ``pixels`` extractor): a workspace whose
training set was extracted with ``--thumbnails 0`` (as ``workbench demo --small`` does), one whose
sets have no labels and only ``pixels``, and one with a randomly initialised classifier.
"""

from __future__ import annotations

import io
import re
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
from workbench.widgets import ClassHistogram, EmbeddingMap, SampleGrid, Samples, Selection, Workspace
from workbench.widgets.class_histogram import (
    FEWER_COLOUR,
    MORE_COLOUR,
    class_source_text,
    missing_classes_text,
)
from workbench.widgets.plot_layout import (
    LEGEND_ROW_PX,
    MODEBAR_PX,
    legend_rows,
    title_bottom_px,
    title_top_px,
    top_layout,
)
from workbench.widgets.thumbnails import empty_tile, sprite_offsets
from workbench.workspace.projections import pca_axis_titles, pca_layout_info

N = 60


def decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


class RandomClassifier(Extractor):
    """A classifier with randomly initialised weights (as ``--weights none`` gives): its logits
    are a fixed random projection of 8 x 8 pixels, so its top-1 "classes" are noise."""

    weight: torch.Tensor

    def forward(self, batch: torch.Tensor) -> ExtractorOutput:
        flat = batch.reshape(batch.shape[0], -1)
        return ExtractorOutput(features=flat[:, :16].contiguous(), logits=flat @ self.weight)


def random_classifier() -> RandomClassifier:
    ext = RandomClassifier(
        name="randnet",
        variant="8px",
        dim=16,
        weights=WeightsInfo("none", False, "random-init(seed=0)", "random init"),
        preprocessor=BoxResize(8),
        num_classes=10,
        class_names=[f"imagenet-{i}" for i in range(10)],
        feature_layer="first pixels",
    )
    ext.weight = torch.from_numpy(np.random.default_rng(0).normal(size=(192, 10)).astype(np.float32))
    return ext


def _extract(root: Path, name: str, images: np.ndarray, labels: np.ndarray | None, extractor, thumbnails: int):
    names = FASHION_MNIST_CLASSES if labels is not None else None
    extract(
        ArraySource(images, labels, names, name=name),
        extractor,
        out=root,
        thumbnails=thumbnails,
        num_workers=0,
        progress=False,
        extractor_options={"size": 8} if extractor == "pixels" else None,
    )


@pytest.fixture(scope="module")
def fmnist() -> tuple[np.ndarray, np.ndarray]:
    return load_fashion_mnist("test")


@pytest.fixture(scope="module")
def no_train_thumbs(tmp_path_factory: pytest.TempPathFactory, fmnist) -> Workspace:
    """reference, model_blurry (28 px thumbnails) and train (--thumbnails 0), labelled, pixels only."""
    x, y = fmnist
    root = tmp_path_factory.mktemp("polish-thumbs")
    _extract(root, "reference", x[:N], y[:N], "pixels", 28)
    _extract(root, "model_blurry", x[N : 2 * N], y[N : 2 * N], "pixels", 28)
    _extract(root, "train", x[2 * N : 3 * N], y[2 * N : 3 * N], "pixels", 0)
    return Workspace.open(root)


@pytest.fixture(scope="module")
def pixels_only_unlabelled(tmp_path_factory: pytest.TempPathFactory, fmnist) -> Workspace:
    """reference and a model without labels, extracted with pixels only."""
    x, _ = fmnist
    root = tmp_path_factory.mktemp("polish-unlabelled")
    _extract(root, "reference", x[:N], None, "pixels", 28)
    _extract(root, "model_a", x[N : 2 * N], None, "pixels", 28)
    return Workspace.open(root)


@pytest.fixture(scope="module")
def random_clf_dir(tmp_path_factory: pytest.TempPathFactory, fmnist) -> Path:
    """reference and a model under pixels and a randomly initialised classifier; labelled."""
    x, y = fmnist
    root = tmp_path_factory.mktemp("polish-random")
    clf = random_classifier()
    for name, sl in (("reference", slice(0, N)), ("model_a", slice(N, 2 * N))):
        _extract(root, name, x[sl], y[sl], "pixels", 28)
        _extract(root, name, x[sl], y[sl], clf, 0)
    return root


def cell(sprite: np.ndarray, position: int, columns: int, px: int) -> np.ndarray:
    x, y = sprite_offsets(position + 1, columns, px)[position]
    return sprite[y : y + px, x : x + px]


# --------------------------------------------------------------------------- empty state


def ink_groups(tile: np.ndarray) -> list[int]:
    """Glyphs per text line of a tile: bands of rows holding dark ink, then runs of ink columns."""
    ink = tile[:, :, 0] < 150
    rows = np.flatnonzero(ink.any(axis=1))
    bands = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1) if rows.size else []
    counts = []
    for band in bands:
        cols = np.flatnonzero(ink[band].any(axis=0))
        counts.append(len(np.split(cols, np.flatnonzero(np.diff(cols) > 1) + 1)))
    return counts


@pytest.mark.parametrize("px", [28, 64])
def test_empty_tile_is_neutral_and_says_no_thumbnail(px: int) -> None:
    tile = empty_tile(px)
    assert tile.shape == (px, px, 3) and tile.dtype == np.uint8
    # words: "NO" / "THUMB" / "NAIL" as three lines of 2, 5 and 4 glyphs, centred
    assert ink_groups(tile) == [2, 5, 4]
    ink = np.argwhere(tile[:, :, 0] < 150)
    centre = (ink.min(0) + ink.max(0)) / 2
    assert np.all(np.abs(centre - (px - 1) / 2) <= 1.5)
    # no diagonal cross (the old "broken image" look): the diagonals are mostly background
    diag = tile[np.arange(px), np.arange(px), 0]
    assert (diag == np.bincount(tile[:, :, 0].ravel()).argmax()).mean() > 0.7
    # neutral: grey only, light background
    assert (tile[:, :, 0] == tile[:, :, 1]).all() and (tile[:, :, 1] == tile[:, :, 2]).all()
    assert np.median(tile) > 230


def test_grid_shows_empty_state_for_a_set_without_thumbnails(no_train_thumbs: Workspace) -> None:
    ws = no_train_thumbs
    assert ws.thumbnail_px("train") == 0 and ws.thumbnail_px("reference") == 28
    grid = SampleGrid(ws, follow_selection=False, background=False, columns=4, page_size=8)
    grid.show(Samples.from_mapping({"reference": [3, 4], "train": [5, 6]}), "mixed")
    sprite = decode_png(grid.page_png)
    real_tile = cell(sprite, 0, 4, 28)
    np.testing.assert_array_equal(real_tile, ws.thumbnails("reference", [3])[0])
    empty = cell(sprite, 2, 4, 28)
    np.testing.assert_array_equal(empty, empty_tile(28))
    assert ink_groups(empty) == [2, 5, 4]  # carries the words
    assert not np.array_equal(empty, real_tile)
    # the browser cell says which set and why; the thumbnail cells do not
    cells = grid.canvas.cells
    assert [c.get("cls", "") for c in cells] == ["", "", "wb-no-thumb", "wb-no-thumb"]
    assert "train" in cells[2]["title"] and "--thumbnails 0" in cells[2]["title"]
    assert "--thumbnails" not in cells[0]["title"]
    # the static report's grid: an HTML empty state with the set's name, no image for it
    static = grid.static_html()
    assert static.count("<img ") == 2 and static.count("class='wb-no-thumb'") == 2
    assert re.search(r"wb-no-thumb'[^>]*--thumbnails 0", static) and "no thumbnail<span" in static
    # the enlarged view and the embedding map's hover say why too
    info = grid.click(3)
    assert "--thumbnails 0" in info["thumbnail"] and "train" in info["thumbnail"]
    assert "--thumbnails 0" in grid.detail_info.value
    emap = EmbeddingMap(ws, background=False)
    hovered = emap.hover("train", 1)
    assert "--thumbnails 0" in hovered["thumbnail"]
    shown = decode_png(emap.hover_image.value)
    np.testing.assert_array_equal(shown[:: shown.shape[0] // 64, :: shown.shape[0] // 64], empty_tile(64))
    assert "thumbnail" not in emap.hover("reference", 1)


# --------------------------------------------------------------------------- captions


def test_every_caption_names_the_set_and_row(no_train_thumbs: Workspace) -> None:
    ws = no_train_thumbs
    grid = SampleGrid(ws, follow_selection=False, background=False, page_size=16)
    picks = Samples.from_mapping({"model_blurry": [7, 2], "reference": [11], "train": [0]})
    grid.show(picks, "a lasso")
    assert [c.split("\n") for c in grid.captions] == [
        ["model_blurry", "#7"],
        ["model_blurry", "#2"],
        ["reference", "#11"],
        ["train", "#0"],
    ]
    # sorted by a score: set and row first, then the value; also when only one set is shown
    scores = np.arange(ws.size("model_blurry"), dtype=float)[::-1].copy()
    grid.show(Samples.of("model_blurry", [1, 5, 9]), "one set")
    grid.put_score("mine", "model_blurry", scores, descending=False)
    assert grid.captions == [f"model_blurry\n#{i} · {int(scores[i])}" for i in (9, 5, 1)]
    assert [c["caption"] for c in grid.canvas.cells] == grid.captions  # what the browser shows
    # the follow-the-selection grid and the class view's side-by-side grids
    sel = Selection(model="model_blurry")
    follow = SampleGrid(ws, selection=sel, background=False, page_size=8)
    assert follow.captions == [f"model_blurry\n#{i}" for i in range(8)]
    view = ClassHistogram(ws, selection=sel, background=False)
    view.click_class(view.frame["class_name"].iloc[0])
    for g, set_name in ((view.real_grid, "reference"), (view.fake_grid, "model_blurry")):
        assert g.captions and all(c.startswith(f"{set_name}\n#") for c in g.captions)


# --------------------------------------------------------------------------- class histogram


def assert_every_colour_in_the_legend(fig) -> None:
    """Each trace is one legend entry with a name and a single colour; no colour means two things."""
    colours = []
    for trace in fig.data:
        assert trace.name and trace.showlegend is not False, trace.name
        assert isinstance(trace.marker.color, str), f"{trace.name}: one colour per legend entry"
        colours.append(trace.marker.color)
    assert len(set(colours)) == len(colours)


def test_class_histogram_legend_explains_every_colour(no_train_thumbs: Workspace) -> None:
    ws = no_train_thumbs
    view = ClassHistogram(ws, selection=Selection(model="model_blurry"), background=False)
    fig = view.figure
    assert len(fig.data) == 4
    assert_every_colour_in_the_legend(fig)
    real, fake, more, fewer = fig.data
    assert "reference" in real.name and "model_blurry" in fake.name
    assert more.marker.color == MORE_COLOUR and fewer.marker.color == FEWER_COLOUR
    assert "more" in more.name and "fewer" in fewer.name
    # the two signs of generated - real: each class in exactly one of them, with the right value
    frame = view.frame.set_index("class_name")
    for trace, sign in ((more, 1), (fewer, -1)):
        for c, v in zip(trace.x, trace.y):
            d = frame.loc[c, "difference"]
            assert (v is None) == (np.sign(d) != sign) and (v is None or v == pytest.approx(d))
    assert fig.layout.yaxis.title.text == "share of samples" and fig.layout.yaxis2.title.text == "generated − real"
    # the selected class's black outline is named in the subtitle while it is drawn
    name = view.frame["class_name"].iloc[1]
    view.click_class(name)
    widths = list(real.marker.line.width)
    assert widths[list(real.x).index(name)] > 0 and sum(w > 0 for w in widths) == 1
    assert f"black outline: the selected class “{name}”" in fig.layout.title.subtitle.text
    view.click_class("")
    assert "black outline" not in fig.layout.title.subtitle.text
    # the matched resample is a fifth legend entry, named as what it is
    view.run_matching(1)
    assert len(fig.data) == 5 and fig.data[4].name == "matched resample (Top-1)"
    matched = view.matching.to_frame("classes").set_index("class_name")["matched_share"]
    np.testing.assert_allclose(fig.data[4].y, [matched[c] for c in fig.data[4].x])
    assert sum(fig.data[4].y) == pytest.approx(1.0)  # every class is drawn: the matched set's shares
    assert_every_colour_in_the_legend(fig)
    static = view.static_figure()
    assert [t.name for t in static.data] == [t.name for t in fig.data]


def test_class_histogram_says_where_classes_come_from(no_train_thumbs: Workspace, random_clf_dir: Path) -> None:
    ws = no_train_thumbs
    view = ClassHistogram(ws, background=False)
    assert ws.classes("reference").source == "labels"
    subtitle = view.figure.layout.title.subtitle.text
    assert "labels given with the images" in subtitle and "labels given with the images" in view.info.value
    # a randomly initialised classifier's classes are never presented: the labels are used, or
    # (a workspace that would still take the classifier's) the view says they are noise
    rws = Workspace.open(random_clf_dir)
    rview = ClassHistogram(rws, background=False)
    shown = " ".join(
        [str(rview.figure.layout.title.text), str(rview.figure.layout.title.subtitle.text), rview.info.value]
    )
    assert "top-1" not in shown
    if rview.frame.empty:
        assert "randomly initialised" in rview.info.value and "randnet" in rview.info.value
    else:
        assert "labels given with the images" in shown
        assert set(rview.frame["class_name"]) <= set(FASHION_MNIST_CLASSES)


def test_class_histogram_without_classes_says_exactly_what_to_add(
    pixels_only_unlabelled: Workspace, random_clf_dir: Path, tmp_path: Path, fmnist
) -> None:
    ws = pixels_only_unlabelled
    assert ws.classes("reference") is None and ws.classes("model_a") is None
    view = ClassHistogram(ws, background=False)
    text = view.info.value
    assert view.frame.empty and len(view.figure.data) == 0
    assert "No classes for reference" in text and "No classes for model_a" in text
    assert "pixels is not a classifier (no logits)" in text
    assert "no trained classifier (extractors: pixels)" in text
    assert "--labels folders" in text and "-e inception" in text and "published weights" in text
    assert "add a classifier extractor (with logits) or labels" not in text  # the old, vague text
    assert "No class histogram" in view.figure.layout.title.text
    assert title_top_px(view.figure.layout) >= MODEBAR_PX
    with pytest.raises(ValueError, match="--labels folders"):
        view.run_matching(1)
    # a randomly initialised classifier and no labels: its classes are noise, and the view says so
    x, _ = fmnist
    clf = random_classifier()
    for name, sl in (("reference", slice(0, N)), ("model_a", slice(N, 2 * N))):
        _extract(tmp_path, name, x[sl], None, "pixels", 0)
        _extract(tmp_path, name, x[sl], None, clf, 0)
    rws = Workspace.open(tmp_path)
    message = missing_classes_text(rws, "model_a")
    assert "randnet has logits but randomly initialised weights (--weights none)" in message
    assert "-e inception" in message and "--labels folders" in message
    rview = ClassHistogram(rws, background=False)
    assert rview.frame.empty and len(rview.figure.data) == 0 and "randomly initialised" in rview.info.value
    # a trained classifier's classes say whose they are
    labelled = Workspace.open(random_clf_dir)
    classes = labelled.classes("reference")
    assert classes is not None and "labels" in class_source_text(labelled, "reference", classes)


# --------------------------------------------------------------------------- layout


def assert_title_clear_of_modebar(layout, legend_names: list[str] | None = None) -> None:
    """The title starts below the modebar band; a top legend fits between title and plot."""
    assert layout.title.yref == "container" and layout.title.yanchor == "top"
    assert title_top_px(layout) >= MODEBAR_PX
    top = float(layout.margin.t)
    if legend_names is None:  # legend beside the plot: it starts at the plot's top edge
        assert layout.legend.orientation in (None, "v") and top >= title_bottom_px(layout)
    else:
        assert layout.legend.orientation == "h" and layout.legend.yanchor == "bottom" and layout.legend.y == 1
        rows = legend_rows(legend_names, int(layout.width) - 70)
        assert top - rows * LEGEND_ROW_PX >= title_bottom_px(layout)


def test_titles_clear_of_the_modebar_and_labelled_axes(no_train_thumbs: Workspace) -> None:
    from sklearn.decomposition import PCA

    ws = no_train_thumbs
    sel = Selection(model="model_blurry")
    view = ClassHistogram(ws, selection=sel, background=False)
    view.run_matching(1)
    names = [t.name for t in view.figure.data]
    assert_title_clear_of_modebar(view.figure.layout, names)
    assert_title_clear_of_modebar(view.static_figure().layout, names)

    def fake_umap(x: np.ndarray, *, n_neighbors: int, min_dist: float, seed: int) -> np.ndarray:
        return np.asarray(x[:, :2], dtype=np.float32)

    emap = EmbeddingMap(ws, selection=sel, background=False, umap_reducer=fake_umap)
    assert_title_clear_of_modebar(emap.figure.layout)
    assert (
        "faded" in emap.figure.layout.title.subtitle.text and "model_blurry" in emap.figure.layout.title.subtitle.text
    )
    # PCA axes: the share of variance of each axis, as scikit-learn's exact PCA of the points
    x = np.concatenate([np.asarray(ws.cache(s, "pixels").features)[idx] for s, idx in emap.points.by_set().items()])
    ratio = PCA(2, svd_solver="full").fit(x).explained_variance_ratio_
    titles = (emap.figure.layout.xaxis.title.text, emap.figure.layout.yaxis.title.text)
    for k, t in enumerate(titles):
        m = re.fullmatch(rf"PC {k + 1} \((\d+\.\d)% of variance\)", t)
        assert m, t
        assert float(m.group(1)) == pytest.approx(100 * ratio[k], abs=0.051)
    static = emap.static_figure()
    assert_title_clear_of_modebar(static.layout)
    assert (static.layout.xaxis.title.text, static.layout.yaxis.title.text) == titles
    # the saved layout is reused with its shares; one saved without them gets them again
    again = pca_layout_info(ws, "pixels", emap.points)
    assert again.axis_titles() == titles and np.array_equal(again.coords, emap.coords)
    for f in ws.state_dir.glob("pca-*.json"):
        f.unlink()
    assert pca_layout_info(ws, "pixels", emap.points).axis_titles() == titles
    assert pca_axis_titles(None) == ("PC 1", "PC 2")
    # UMAP axes
    emap.compute_umap()
    assert emap.projection == "UMAP"
    assert (emap.figure.layout.xaxis.title.text, emap.figure.layout.yaxis.title.text) == ("UMAP 1", "UMAP 2")
    assert "UMAP" in emap.figure.layout.title.text
    emap.projection = "PCA"
    assert (emap.figure.layout.xaxis.title.text, emap.figure.layout.yaxis.title.text) == titles


def test_top_layout_reserves_the_modebar_band() -> None:
    layout = top_layout(400, "t", subtitle="s", legend_rows=2)
    assert layout["title"]["y"] == pytest.approx(1 - MODEBAR_PX / 400)
    assert layout["margin"]["t"] >= MODEBAR_PX + 20 + 16 + 2 * LEGEND_ROW_PX
    assert legend_rows(["a" * 10] * 3, 1000) == 1 and legend_rows(["a" * 60] * 3, 500) == 3
    with pytest.raises(ValueError, match="no room"):
        top_layout(100, "t", subtitle="s", legend_rows=3)
