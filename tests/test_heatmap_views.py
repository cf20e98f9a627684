"""Heatmaps in the workspace, the views, the report and the CLI (issue 16).

A small real workspace: Fashion-MNIST images extracted with the demo's two networks at a seeded
random initialisation (``weights="none"``: the store makes them again from the manifests) plus
``pixels``. What is checked: the store's maps are those of a direct :func:`metric_heatmaps` call
and come back from the state folder without computing; only missing rows are computed; the grid's
overlay and opacity change the page (opacity 0 gives the plain page back, exactly); the
comparison view's deltas and agreement equal the store's and scipy's; the dashboard tab, the
report section and ``workbench heatmaps`` (PNG and HTML) with its errors.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from PIL import Image

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")
pytest.importorskip("anywidget")

import workbench.demo  # noqa: F401  (registers the demo extractors)
from workbench.analysis import heatmaps as heatmaps_module
from workbench.analysis.heatmaps import load_images, metric_heatmaps
from workbench.cache import extract
from workbench.cli import main
from workbench.images.datasets import load_fashion_mnist
from workbench.widgets import HeatmapComparison, SampleGrid, Samples, Selection, Workbench
from workbench.workspace import HeatmapStore, Workspace, workspace_reports

EXTRACTORS = ("demo-classifier", "demo-ssl", "pixels")
pytestmark = pytest.mark.filterwarnings(
    "ignore::workbench.metrics.validation.SampleSizeWarning",
    "ignore::workbench.metrics.frechet.SingularCovarianceWarning",
)


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"<set>/<extractor>": cache path}`` and ``"npz/<set>"`` sources: reference (80 real),
    model (40 real images, brightened and blurred), 28 px thumbnails."""
    images, _ = load_fashion_mnist("test")
    root = tmp_path_factory.mktemp("hm")
    rgb = np.repeat(images[..., None], 3, axis=3)
    model = rgb[100:140].astype(np.float64)
    model = (0.5 * model + 0.25 * np.roll(model, 1, axis=1) + 0.25 * np.roll(model, 1, axis=2)) * 1.2
    sets = {"reference": rgb[:80], "model": np.clip(model, 0, 255).astype(np.uint8)}
    out: dict[str, Path] = {}
    for name, arr in sets.items():
        npz = root / f"{name}.npz"
        np.savez(npz, arr_0=arr)
        out[f"npz/{name}"] = npz
        for ext in EXTRACTORS:
            cache = extract(str(npz), ext, out=root / "caches", weights="none", thumbnails=28, progress=False)
            out[f"{name}/{ext}"] = cache.path
    return out


def workspace(caches: dict[str, Path], state: Path, extractors=EXTRACTORS) -> Workspace:
    return Workspace.from_caches(
        {(s, e): caches[f"{s}/{e}"] for s in ("reference", "model") for e in extractors},
        roles={"reference": "reference", "model": "generated"},
        state_dir=state,
    )


def test_store_maps_equal_a_direct_call_and_come_back_from_disk(caches, tmp_path, monkeypatch) -> None:
    ws = workspace(caches, tmp_path / "state")
    store = HeatmapStore(ws)
    rows = np.array([5, 0, 7, 3])
    got = store.get("model", "demo-classifier", rows)
    ext = store.extractor("demo-classifier")
    direct = metric_heatmaps(
        ws.thumbnails("model", rows),
        ext,
        ws.cache("reference", "demo-classifier"),
        generated=ws.cache("model", "demo-classifier"),
        indices=rows,
        progress=False,
    )
    np.testing.assert_allclose(got.maps, direct.maps, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(got.delta, direct.delta, rtol=1e-9)
    assert got.maps.shape == (4, 28, 28) and got.layer == "conv.3" and np.array_equal(got.rows, rows)
    files = sorted((tmp_path / "state").glob("heatmaps-fd-*.npz"))
    assert len(files) == 1
    with np.load(files[0], allow_pickle=False) as kept:  # no pickle in the file
        assert kept["rows"].tolist() == [0, 3, 5, 7] and kept["maps"].dtype == np.float32

    # A new workspace object on the same state folder: no computation at all.
    def refuse(*args, **kwargs):
        raise AssertionError("metric_heatmaps called although the maps were kept")

    monkeypatch.setattr(heatmaps_module, "metric_heatmaps", refuse)
    again = HeatmapStore(workspace(caches, tmp_path / "state"))
    assert again.has("model", "demo-classifier", rows) and not again.has("model", "demo-classifier", [1])
    np.testing.assert_array_equal(again.get("model", "demo-classifier", rows[::-1]).maps, got.maps[::-1])
    assert not again.has("model", "demo-classifier", rows, metric="kd")  # another metric, another entry


def test_store_computes_only_missing_rows_and_refuses_what_it_cannot(caches, tmp_path, monkeypatch) -> None:
    store = HeatmapStore(workspace(caches, tmp_path / "state"))
    store.get("model", "demo-ssl", [0, 1, 2])
    asked: list[list[int]] = []
    real = heatmaps_module.metric_heatmaps

    def spy(*args, **kwargs):
        asked.append(list(kwargs["indices"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(heatmaps_module, "metric_heatmaps", spy)
    maps = store.get("model", "demo-ssl", [2, 3, 1, 4])
    assert asked == [[3, 4]] and maps.maps.shape == (4, 28, 28) and maps.layer == "encoder.3"
    assert store.heatmap_extractors() == ["demo-classifier", "demo-ssl"]
    assert "no network" in (store.supports("pixels") or "")
    with pytest.raises(ValueError, match="is the reference"):
        store.get("reference", "demo-ssl", [0])
    with pytest.raises(ValueError, match=r"rows must lie in \[0, 40\)"):
        store.get("model", "demo-ssl", [40])
    with pytest.raises(ValueError, match="metric must be one of"):
        store.get("model", "demo-ssl", [0], metric="is")


def test_grid_overlay_toggle_and_opacity(caches, tmp_path) -> None:
    import traitlets

    ws = workspace(caches, tmp_path / "state")
    grid = SampleGrid(ws, background=False, page_size=16)
    grid.extractor = "demo-classifier"
    plain = grid.page_png
    assert grid.opacity_slider.disabled and grid.metric_choice.disabled and grid.heatmap_shown == 0
    grid.heatmap_toggle.value = True  # the control sets the trait
    assert grid.heatmap and grid.heatmap_shown == 16 and "wb-heatmap-shown" in grid._dom_classes
    overlaid = grid.page_png
    assert overlaid != plain and not grid.opacity_slider.disabled
    grid.opacity_slider.value = 0.9
    assert grid.heatmap_opacity == 0.9 and grid.page_png not in (plain, overlaid)
    detail = grid.click(2)  # the enlarged sample's delta, from the kept maps
    kept = HeatmapStore(ws).get("model", "demo-classifier", [int(grid.page_items.index[2])])
    assert float(detail["FD delta (demo-classifier)"]) == pytest.approx(kept.delta[0], rel=1e-2)
    # the metric dropdown: KD maps instead of FD ones, the detail says which
    assert not grid.metric_choice.disabled and grid.metric_choice.value == "fd"
    fd_page = grid.page_png
    grid.metric_choice.value = "kd"  # the control sets the trait
    assert grid.heatmap_metric == "kd" and grid.heatmap_shown == 16 and grid.page_png != fd_page
    assert "KD delta (demo-classifier)" in grid.detail and "FD delta (demo-classifier)" not in grid.detail
    grid.heatmap_metric = "fd"  # and the trait the control
    assert grid.metric_choice.value == "fd" and grid.page_png == fd_page
    grid.heatmap_opacity = 0.0  # the image alone: the very same page
    assert grid.page_png == plain
    with pytest.raises(traitlets.TraitError, match=r"heatmap_opacity must be in \[0, 1\]"):
        grid.heatmap_opacity = 1.5
    with pytest.raises(ValueError):
        grid.heatmap_metric = "is"
    # Observable and linkable like every trait.
    other = Selection()
    seen: list[bool] = []
    grid.observe(lambda c: seen.append(c["new"]), names="heatmap")
    partner = SampleGrid(ws, background=False, page_size=4, selection=other)
    traitlets.link((grid, "heatmap"), (partner, "heatmap"))
    grid.heatmap = False
    assert seen == [False] and not partner.heatmap and grid.page_png == plain
    # pixels has nothing to explain; the reference's maps would be zero: shown plain, and said so.
    grid.heatmap = True
    grid.extractor = "pixels"
    assert grid.heatmap_shown == 0 and "no network" in grid.status.value
    grid.extractor = "demo-ssl"
    grid.show(Samples.of("reference", [0, 1]), "two real images")
    assert grid.heatmap_shown == 0 and "reference" in grid.status.value


def test_comparison_view_deltas_agreement_and_empty_state(caches, tmp_path) -> None:
    ws = workspace(caches, tmp_path / "state")
    store = HeatmapStore(ws)
    view = HeatmapComparison(ws, heatmaps=store, count=8, background=False)
    assert (view.left, view.right) == ("demo-classifier", "demo-ssl")  # the classifier (logits) first
    assert "not computed yet" in view.body.value
    view.compute()
    assert view.rows == list(range(8))
    for ext in ("demo-classifier", "demo-ssl"):
        np.testing.assert_allclose(view.deltas[ext], store.get("model", ext, range(8)).delta)
    expected = scipy.stats.spearmanr(view.deltas["demo-classifier"], view.deltas["demo-ssl"]).statistic
    assert view.agreement() == pytest.approx(expected)
    assert view.body.value.count("<tr class='wb-heatmap-row'") == 8
    # A selection of the model's samples is what is shown.
    view.samples = Samples.of("model", [9, 4, 30])
    assert view.rows == [9, 4, 30] and view.body.value.count("wb-heatmap-row") == 3
    with pytest.raises(ValueError):
        view.left = "pixels"

    single = HeatmapComparison(workspace(caches, tmp_path / "s2", ("demo-ssl", "pixels")), background=False)
    single.compute()
    assert "has 1 extractor(s) with a network layer" in single.body.value and "workbench evaluate" in single.body.value


@pytest.mark.slow
def test_dashboard_tab_and_report_section(caches, tmp_path) -> None:
    ws = workspace(caches, tmp_path / "state")
    bench = Workbench(
        ws, reports=workspace_reports(ws, metrics="fd"), background=False, max_points=200, human_n_boot=20
    )
    titles = [bench.tabs.get_title(i) for i in range(len(bench.tabs.children))]
    assert titles[-1] == "Heatmaps" and bench.heatmap_view is not None
    assert bench.grid.heatmaps is bench.heatmap_view.heatmaps  # one store for the dashboard
    bench.tabs.selected_index = titles.index("Heatmaps")  # opening the tab computes
    assert len(bench.heatmap_view.rows) == 16
    text = bench.report(tmp_path / "report.html").read_text()
    section = text[text.index("Where the metric looks: sensitivity heatmaps") :]
    assert section.count("class='wb-heatmap-row'") == 16
    left_out = bench.report(tmp_path / "no-heatmaps.html", heatmaps=0).read_text()
    assert "heatmaps left out of this report" in left_out and "wb-heatmap-row" not in left_out


def test_cli_png_and_html(caches, tmp_path, capsys) -> None:
    ref, gen = caches["reference/demo-classifier"], caches["model/demo-classifier"]
    png = tmp_path / "maps.png"
    args = ["heatmaps", "--ref", str(ref), "--gen", str(gen), "--images", str(caches["npz/model"])]
    assert main([*args, "--out", str(png), "--limit", "12", "--columns", "4"]) == 0
    err = capsys.readouterr().err
    assert "rows of the generated cache (40 samples)" in err  # the cache was made from this source
    with Image.open(png) as im:
        assert im.format == "PNG" and im.width == 4 * (128 + 4) + 4

    html_out = tmp_path / "maps.html"
    assert main([*args, "--out", str(html_out), "--limit", "5", "-q"]) == 0
    page = html_out.read_text()
    shown = [float(v) for v in re.findall(r"data-delta='([^']+)'", page)]
    store = HeatmapStore(workspace(caches, tmp_path / "state"))
    np.testing.assert_allclose(shown, store.get("model", "demo-classifier", range(5)).delta, rtol=1e-6)
    assert page.count("data:image/png;base64,") == 10 and "http" not in page.split("<body>")[1]


def test_cli_errors_are_one_line(caches, tmp_path, capsys) -> None:
    ref = str(caches["reference/demo-classifier"])
    images = str(caches["npz/model"])
    cases = [
        (["--gen", str(caches["model/demo-ssl"]), "--out", str(tmp_path / "a.png")], "made by different extractors"),
        (["--out", str(tmp_path / "a.jpg")], "must end in .png"),
        (
            ["--extractor", "demo-ssl", "-w", "none", "--out", str(tmp_path / "a.png")],
            "is not the one the caches were made with",
        ),
    ]
    for extra, message in cases:
        assert main(["heatmaps", "--ref", ref, "--images", images, *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("workbench: error: ") and message in err and err.count("\n") == 1, err


def test_images_from_a_cache_or_a_folder(caches, tmp_path) -> None:
    from workbench.cache import open_cache

    ws = workspace(caches, tmp_path / "state")
    gen = open_cache(caches["model/demo-ssl"])
    ref = open_cache(caches["reference/demo-ssl"])
    ext = HeatmapStore(ws).extractor("demo-ssl")
    from_cache = metric_heatmaps(gen, ext, ref, indices=[1, 2], progress=False)
    explicit = metric_heatmaps(gen.thumbnails[[1, 2]], ext, ref, generated=gen, indices=[1, 2], progress=False)
    np.testing.assert_array_equal(from_cache.maps, explicit.maps)

    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.new("RGB", (20, 20)).save(folder / "a.png")
    Image.new("RGB", (24, 20)).save(folder / "b.png")
    with pytest.raises(ValueError, match=r"a.png is 20 x 20 px but b.png is 24 x 20 px"):
        load_images(folder)
    images, ids = load_images(folder, limit=1)
    assert images.shape == (1, 20, 20, 3) and ids == ["a.png"]
