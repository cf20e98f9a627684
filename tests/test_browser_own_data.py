"""A user's own folders, evaluated in one call, then opened as a dashboard in JupyterLab in
headless Chromium: every tab renders without an error and the memorization tab shows the
training neighbours as images (not empty tiles).

Same harness as ``tests/test_browser.py`` (JupyterLab on 127.0.0.1 with a random port and token,
ended in a ``finally``; Chromium from ``/usr/bin/chromium``, never ``playwright install``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from own_folders import fashion_folders

from browser_harness import (
    CHROMIUM_ARGS,
    SCREENSHOTS,
    chromium_path,
    kernel_env,
    lab_server,
    missing_modules,
    open_notebook,
    run_all,
)

_MISSING = missing_modules("playwright", "jupyterlab", "ipykernel", "ipywidgets", "plotly", "anywidget")
_CHROMIUM = chromium_path()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(bool(_MISSING), reason=f"browser tests need {', '.join(_MISSING)} (pip install -e '.[lab]')"),
    pytest.mark.skipif(_CHROMIUM is None, reason="browser tests need Chromium (Debian: apt-get install chromium)"),
]

TABS = ("Metrics", "Embeddings", "Classes", "Memorization", "Extractors", "Human agreement")


def _notebook(workspace: Path) -> dict:
    """A one-cell notebook that opens the dashboard of ``workspace`` (computing nothing new)."""
    source = (
        "import workbench as wb\n"
        f"bench = wb.Workbench.open({str(workspace)!r}, background=False, human_n_boot=50)\n"
        "bench"
    )
    return {
        "cells": [{"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def test_evaluated_folders_open_as_a_dashboard_with_every_tab_working(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from workbench.workspace import evaluate_folders

    folders = fashion_folders(tmp_path / "data", per_set=60, n_train=300)
    result = evaluate_folders(
        folders["real"],
        {"model_blurry": folders["model_blurry"], "model_copies": folders["model_copies"]},
        train=folders["train"],
        test=folders["test"],
        extractors=["pixels"],
        out=tmp_path / "ws",
        progress=False,
    )
    root = tmp_path / "lab"
    root.mkdir()
    (root / "own.ipynb").write_text(json.dumps(_notebook(result.workspace.root)))
    with lab_server(root, tmp_path / "lab-state", kernel_env(tmp_path)) as lab, sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=_CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = chromium.new_context(viewport={"width": 1500, "height": 2200}).new_page()
            page.set_default_timeout(60_000)
            open_notebook(page, lab, "own.ipynb")
            run_all(page, 300)  # fails on any error output of the cell
            bench = page.locator(".wb-workbench")
            bench.wait_for()
            for tab in TABS:
                bench.locator(".lm-TabBar-tab", has_text=tab).click()
                panel = bench.locator(".wb-tabs .lm-TabPanel-tabContents, .wb-tabs .widget-tab-contents").first
                panel.wait_for()
                page.wait_for_timeout(500)
                text = bench.inner_text()
                assert "Traceback" not in text and "Error:" not in text, (tab, text[:2000])
            # the copier is flagged in the metric table, whatever its FD rank
            bench.locator(".lm-TabBar-tab", has_text="Metrics").click()
            assert bench.locator(".wb-metric-table td.wb-copier", has_text="model_copies").count() == 1
            # training neighbours are images: the memorization rows hold no empty-state tile
            bench.locator(".lm-TabBar-tab", has_text="Memorization").click()
            rows = bench.locator(".wb-memorization-rows .wb-grid-cell")
            rows.first.wait_for()
            assert rows.count() >= 12
            assert bench.locator(".wb-memorization-rows .wb-no-thumb").count() == 0
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "own-data-dashboard.png"))
        finally:
            chromium.close()
