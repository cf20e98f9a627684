"""The demo notebooks in a real browser: JupyterLab + headless Chromium driven by Playwright.

A JupyterLab server (127.0.0.1, random port and token, own process group, ended in a
``finally``) serves copies of the four notebooks; each is opened, run top to bottom, and the
views are checked in the DOM: tables, plotly plots, thumbnails, sliders. Interactions go the whole
way through the kernel and back: a metric-table row click selects a model and the dashboard's
sample grid follows, a class chosen in a class menu fills the class grids, the memorization
threshold slider (handle click + arrow keys) changes the copy count rendered from Python. The
static HTML report opens with every network request refused and still draws its plots.

Screenshots land in ``artifacts/screenshots/`` (gitignored). Needs Chromium (``/usr/bin/chromium``
or ``$WORKBENCH_CHROMIUM``; never ``playwright install``) and the lab extras.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from browser_harness import (
    CHROMIUM_ARGS,
    NOTEBOOKS,
    NOTEBOOKS_DIR,
    SCREENSHOTS,
    chromium_path,
    kernel_env,
    lab_server,
    missing_modules,
    open_notebook,
    run_all,
    small_demo,
)

_MISSING = missing_modules("playwright", "jupyterlab", "ipykernel", "ipywidgets", "plotly", "anywidget")
_CHROMIUM = chromium_path()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(bool(_MISSING), reason=f"browser tests need {', '.join(_MISSING)} (pip install -e '.[lab]')"),
    pytest.mark.skipif(_CHROMIUM is None, reason="browser tests need Chromium (Debian: apt-get install chromium)"),
]

RUN_TIMEOUT = 300.0  # seconds for one notebook's run-all on the reduced demo (about 10-30 s)
UI_TIMEOUT = 60_000  # milliseconds for a view to appear after its cell ran
VIEWPORT = {"width": 1500, "height": 2200}  # tall, so element screenshots of the views fit


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_demo(tmp_path_factory)


@pytest.fixture(scope="module")
def lab(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """JupyterLab serving copies of the notebooks (the committed ones stay without outputs)."""
    root = tmp_path_factory.mktemp("lab-root")
    for name in NOTEBOOKS:
        shutil.copy(NOTEBOOKS_DIR / f"{name}.ipynb", root / f"{name}.ipynb")
    with lab_server(root, tmp_path_factory.mktemp("lab-state"), kernel_env(demo_dir)) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=_CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def page(browser, lab):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT)
    try:
        yield page
    finally:
        context.close()
        lab.shutdown_kernels()  # one kernel at a time on the shared cores


def run_notebook(page, lab, name: str) -> float:
    """Open and run one notebook; returns the run-all seconds (printed with -s)."""
    t0 = time.monotonic()
    open_notebook(page, lab, f"{name}.ipynb")
    ready = time.monotonic() - t0
    seconds = run_all(page, RUN_TIMEOUT)
    print(f"{name}: page ready in {ready:.1f} s, run-all {seconds:.1f} s")
    return seconds


def shoot(page, name: str, *locators) -> None:
    """A viewport screenshot, plus one per given element (scrolled into view)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for i, loc in enumerate(locators):
        loc.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        loc.screenshot(path=str(SCREENSHOTS / f"{name}-{i + 1}.png"))
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def number(text: str) -> int:
    found = re.search(r"\d+", text)
    assert found, f"no number in {text!r}"
    return int(found.group())


@pytest.mark.filterwarnings("ignore::workbench.metrics.validation.SampleSizeWarning")  # 500 < 768 dims
def test_quickstart_table_dashboard_and_linked_grid(page, lab, demo_dir: Path) -> None:
    from workbench.metrics.frechet import fd
    from workbench.widgets import Workspace

    # Independent: the model with the lowest pixel FD (ideal or memorizer, whose order is noise).
    ws = Workspace.open(demo_dir)
    ref = ws.cache("reference", "pixels").features
    best = min(ws.generated, key=lambda m: fd(ref, ws.cache(m, "pixels").features))
    run_notebook(page, lab, "01_quickstart")
    standalone = page.locator(".wb-metric-table").first
    standalone.locator("tr.wb-row").first.wait_for()
    assert standalone.locator("tr.wb-row").count() == 18  # 6 models x 3 extractors
    assert standalone.locator("td.wb-best").count() > 0 and standalone.locator("td.wb-worst").count() > 0
    # A header click sorts (in the kernel, best first within each extractor) and redraws the table.
    standalone.locator('th[data-key="fd"]').click()
    standalone.locator('th[data-key="fd"].wb-sorted-asc').wait_for()
    # The header marks the sort at once; the rows come back re-sorted from the kernel a moment later.
    page.wait_for_function(
        "([el, key]) => el.querySelector('tr.wb-row').getAttribute('data-key') === key",
        arg=[standalone.element_handle(), f"{best}|pixels"],
        timeout=UI_TIMEOUT,
    )
    assert standalone.locator("tr.wb-row").first.get_attribute("data-key") == f"{best}|pixels"

    bench = page.locator(".wb-workbench")
    bench.wait_for()
    grid = bench.locator(":scope > .wb-sample-grid")
    grid.locator(".wb-grid-cell").first.wait_for()
    assert grid.locator(".wb-grid-cell").count() == 64  # the first page of the selected model
    assert "ideal" in grid.locator(".wb-grid-title").text_content()

    # A row click selects that model everywhere: the dashboard's grid pages through its samples.
    row = bench.locator('.wb-metric-table tr.wb-row[data-key="blurry|demo-ssl"]')
    row.click()
    page.wait_for_function(
        "el => el.textContent.includes('blurry')", arg=grid.locator(".wb-grid-title").element_handle()
    )
    assert "wb-selected" in (row.get_attribute("class") or "")

    # A class chosen in the Classes tab narrows the grid to that class.
    bench.locator(".lm-TabBar-tab", has_text="Classes").click()
    classes = bench.locator(".wb-class-histogram")
    classes.locator(".js-plotly-plot .main-svg").first.wait_for()
    before = number(grid.locator(".wb-page-label").text_content().split("·")[-1])
    classes.locator(".wb-class-select select").select_option(label="Trouser")
    page.wait_for_function(
        "el => el.textContent.includes('Trouser')", arg=grid.locator(".wb-grid-title").element_handle()
    )
    after = number(grid.locator(".wb-page-label").text_content().split("·")[-1])
    assert 0 < after < before, (before, after)
    shoot(page, "01_quickstart", standalone, bench)


def test_fid_vs_humans_plots_and_class_grids(page, lab) -> None:
    run_notebook(page, lab, "02_fid_vs_humans")
    human = page.locator(".wb-human-agreement")
    human.locator(".js-plotly-plot .main-svg").first.wait_for()
    page.wait_for_function(
        "el => el.querySelectorAll('.js-plotly-plot .main-svg').length >= 2", arg=human.element_handle()
    )
    assert "imagenet256" in human.locator(".js-plotly-plot").first.text_content()  # the scatter's title
    assert "Spearman" in human.locator(".wb-human-stats").text_content()

    classes = page.locator(".wb-class-histogram").first  # part 3 shows demo-foreign's view below it
    classes.locator(".js-plotly-plot .main-svg").first.wait_for()
    # run_matching() added the matched resample's bars to the figure.
    page.wait_for_function(
        "el => el.textContent.includes('matched resample')",
        arg=classes.locator(".js-plotly-plot").first.element_handle(),
    )
    grids = classes.locator(".wb-class-samples")
    assert grids.locator(".wb-grid-cell").count() == 0  # no class picked yet
    classes.locator(".wb-class-select select").select_option(label="Bag")
    grids.locator(".wb-grid-cell").first.wait_for()
    titles = grids.locator(".wb-grid-title").all_text_contents()
    assert len(titles) == 2 and all("Bag" in t for t in titles), titles
    assert grids.locator(".wb-grid-cell").count() > 4
    # Part 3: the domain's class view names demo-foreign's own (foreign) classes, not the images' classes.
    foreign = page.locator(".wb-class-histogram").nth(1)
    foreign.locator(".js-plotly-plot .main-svg").first.wait_for()
    options = foreign.locator(".wb-class-select select option").all_text_contents()
    assert "Pullover" in options and "Bag" not in options, options
    shoot(page, "02_fid_vs_humans", human, classes)


def test_compare_extractors_charts_map_and_grids(page, lab) -> None:
    run_notebook(page, lab, "03_compare_extractors")
    comparison = page.locator(".wb-extractor-comparison")
    page.wait_for_function(
        "el => el.querySelectorAll('.js-plotly-plot .main-svg').length >= 2", arg=comparison.element_handle()
    )
    assert "rank by fd" in comparison.locator(".js-plotly-plot").first.text_content()
    # run_contributions("mode-dropper", "coverage") filled the comparison's grid with reference images.
    cells = comparison.locator(".wb-sample-grid .wb-grid-cell")
    cells.first.wait_for()
    assert cells.count() == 32

    embedding = page.locator(".wb-embedding-map")
    embedding.locator(".js-plotly-plot .main-svg").first.wait_for()
    assert "demo-ssl features" in embedding.locator(".js-plotly-plot").text_content()
    assert embedding.locator(".js-plotly-plot canvas").count() >= 1  # WebGL scatter
    # Hovering a point shows its thumbnail and metadata beside the map (plotly -> kernel -> view).
    embedding.scroll_into_view_if_needed()  # the mouse only reaches what is on screen
    page.wait_for_timeout(300)
    box = embedding.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    info = embedding.locator(".wb-hover-info")
    for fx, fy in [(x / 8, y / 8) for y in range(1, 8) for x in range(1, 8)]:
        page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        page.wait_for_timeout(150)
        if "hover a point" not in info.text_content():
            break
    page.wait_for_function("el => el.textContent.includes('row')", arg=info.element_handle())

    contributions = page.locator(".wb-sample-grid").last
    contributions.locator(".wb-grid-cell").first.wait_for()
    assert contributions.locator(".wb-grid-cell").count() == 24
    # Clicking a thumbnail shows it enlarged with its metadata (a round trip through the kernel).
    contributions.locator(".wb-grid-cell").first.click()
    page.wait_for_function(
        "el => el.textContent.includes('vae')", arg=contributions.locator(".wb-detail-info").element_handle()
    )
    shoot(page, "03_compare_extractors", comparison, embedding, contributions)


def test_memorization_slider_changes_copy_count(page, lab) -> None:
    run_notebook(page, lab, "04_memorization")
    memo = page.locator(".wb-memorization")
    rows = memo.locator(".wb-memorization-rows .wb-grid-cell")
    rows.first.wait_for()
    assert rows.count() == 48  # 8 generated samples x (itself + 5 nearest training samples)
    assert memo.locator(".wb-memorization-rows .wb-grid-cell.wb-copy").count() > 0  # flagged rows outlined
    count = memo.locator(".wb-copy-count .wb-copy-number")
    start = int(count.text_content())
    assert start > 0

    handle = memo.locator(".wb-threshold .noUi-handle")
    handle.click()
    current = start
    for _ in range(40):  # lower the threshold until the count, recomputed in the kernel, drops
        for _ in range(10):
            page.keyboard.press("ArrowLeft")
        page.wait_for_timeout(250)
        current = int(count.text_content())
        if current < start:
            break
    assert current < start, f"copy count stayed at {start} while the threshold slider moved down"
    lowered = current
    for _ in range(60):
        for _ in range(10):
            page.keyboard.press("ArrowRight")
        page.wait_for_timeout(250)
        current = int(count.text_content())
        if current > start:
            break
    assert current > start > lowered
    shoot(page, "04_memorization", memo)


def test_memorization_threshold_keeps_its_calibrated_value(page, lab) -> None:
    run_notebook(page, lab, "04_memorization")
    memo = page.locator(".wb-memorization")
    memo.locator(".wb-memorization-rows .wb-grid-cell").first.wait_for()
    page.wait_for_timeout(1500)  # let the frontend's own messages reach the kernel and come back
    printed = page.locator(".jp-OutputArea-output", has_text="flagged").filter(has_text="threshold").last.text_content()
    lines = [line.split() for line in printed.splitlines() if line.startswith("threshold")]
    calibrated_threshold, calibrated_count = float(lines[1][1].rstrip(":")), int(lines[1][2])
    readout = float(memo.locator(".wb-threshold .widget-readout").text_content())
    count = int(memo.locator(".wb-copy-count .wb-copy-number").text_content())
    assert (readout, count) == (pytest.approx(calibrated_threshold, rel=5e-3), calibrated_count)


def test_static_report_opens_offline(browser, demo_dir: Path, tmp_path: Path) -> None:
    from workbench.widgets import Workbench, Workspace
    from workbench.workspace import workspace_reports

    ws = Workspace.open(demo_dir)
    bench = Workbench(
        ws, reports=workspace_reports(ws, metrics="fd,prdc"), background=False, max_points=400, human_n_boot=50
    )
    report = bench.report(tmp_path / "report.html")

    requests: list[str] = []

    def refuse(route) -> None:
        if route.request.url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            requests.append(route.request.url)
            route.abort()

    context = browser.new_context(viewport=VIEWPORT, offline=True)
    try:
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT)
        page.route("**/*", refuse)
        page.goto(report.as_uri())
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 5")
        assert page.locator(".js-plotly-plot").count() == page.locator(".wb-plot").count() >= 5
        assert page.locator("table.wb-table tr.wb-row").count() == 18  # 6 models x 3 extractors
        assert page.locator("img[src^='data:image/png']").count() > 50
        assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        assert requests == []
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "report.png"), full_page=True)
    finally:
        context.close()


def test_dashboard_heatmaps_tab_and_grid_overlay(page, lab) -> None:
    """The Heatmaps tab computes and shows the selected model's images under two extractors with
    their deltas; the grid's heatmap toggle redraws the page under its heatmaps (a round trip
    through the kernel) and the opacity slider redraws it again."""
    run_notebook(page, lab, "01_quickstart")
    bench = page.locator(".wb-workbench")
    bench.wait_for()
    bench.locator(".lm-TabBar-tab", has_text="Heatmaps").click()
    view = bench.locator(".wb-heatmap-comparison")
    rows = view.locator("tr.wb-heatmap-row")
    rows.first.wait_for()
    assert rows.count() == 16
    assert view.locator(".wb-heatmap-delta").count() == 32  # one delta per image and extractor
    assert "demo-classifier" in view.locator("thead").text_content()
    assert "demo-ssl" in view.locator("thead").text_content()
    assert "Spearman" in view.locator(".wb-heatmap-summary").text_content()

    grid = bench.locator(":scope > .wb-sample-grid")
    thumb = grid.locator(".wb-grid-thumb").first
    thumb.wait_for()
    background = "el => getComputedStyle(el).backgroundImage"
    plain = thumb.evaluate(background)
    bench.locator(".wb-extractor-select select").select_option(label="demo-classifier")
    grid.locator(".wb-heatmap-toggle").click()
    page.wait_for_function(
        "el => el.classList.contains('wb-heatmap-shown')", arg=grid.element_handle(), timeout=3 * UI_TIMEOUT
    )
    page.wait_for_function(
        "([el, before]) => getComputedStyle(el.querySelector('.wb-grid-thumb')).backgroundImage !== before",
        arg=[grid.locator(".wb-grid-canvas").element_handle(), plain],
    )
    overlaid = grid.locator(".wb-grid-thumb").first.evaluate(background)
    assert overlaid != plain
    grid.locator(".wb-heatmap-opacity .noUi-handle").click()
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "([el, before]) => getComputedStyle(el.querySelector('.wb-grid-thumb')).backgroundImage !== before",
        arg=[grid.locator(".wb-grid-canvas").element_handle(), overlaid],
    )
    shoot(page, "01_heatmaps", view, grid)
