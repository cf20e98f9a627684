"""The metric table flags a likely copier beside its ranks (a copier ranks first on FD) only when
its copy rate is calibrated on held-out real images, and says when it is not."""

from __future__ import annotations

import math

import pandas as pd

from workbench.metrics.copy_rate import COPIER_RATE
from workbench.metrics.suite import MetricReport
from workbench.widgets.metric_table import MetricTable, copy_flags


def _report(rates: dict[str, float], criterion: str) -> MetricReport:
    values = pd.DataFrame({"fd": [1.0, 5.0], "copy_rate": list(rates.values())}, index=list(rates))
    nan = values * math.nan
    return MetricReport(values, nan, nan, nan, info={"copy_rate_criterion": criterion})


def test_a_calibrated_copier_is_flagged_in_its_model_cell_and_the_notes() -> None:
    rep = _report({"copies": 0.27, "blurry": 0.01}, "distance (calibrated on 300 test images, q=0.01)")
    assert copy_flags(rep) == ({"copies": 0.27}, True)
    table = MetricTable({"pixels": rep})
    cells = {r["key"]: r for r in table.grid.rows}
    assert cells["copies|pixels"]["cells"][0] == "copies ⚠ copies"
    assert cells["copies|pixels"]["classes"][0] == "wb-copier"
    assert cells["blurry|pixels"]["cells"][0] == "blurry" and cells["blurry|pixels"]["classes"][0] == ""
    assert "copies (pixels): 27.0% of its samples" in table.notes.value
    # FD ranks the copier first all the same: the flag is what tells it apart
    assert cells["copies|pixels"]["classes"][2] == "wb-best"
    assert "wb-copier" in table.static_html()
    # the CLI's plain table says it too
    assert "likely copier: copies: 27.0% of its samples" in str(rep) and "blurry:" not in str(rep)


def test_an_uncalibrated_copy_rate_flags_nobody_and_says_how_to_calibrate() -> None:
    rep = _report({"copies": 0.6, "blurry": 0.35}, "ratio (uncalibrated: no test set)")
    assert copy_flags(rep) == ({}, False)
    table = MetricTable({"pixels": rep})
    assert all("⚠ copies" not in r["cells"][0] for r in table.grid.rows)
    assert all("wb-uncalibrated" in r["classes"][3] for r in table.grid.rows)
    assert "uncalibrated" in table.grid.rows[0]["titles"][3]
    assert "--test DIR" in table.notes.value and "--role test" in table.notes.value


def test_the_flag_threshold_sits_above_the_calibrated_false_positive_rate() -> None:
    # held-out real images are flagged at q = 1% by construction; a set at that rate is not a copier
    rep = _report({"a": COPIER_RATE, "b": 0.01}, "distance (calibrated on 300 test images, q=0.01)")
    assert copy_flags(rep) == ({}, True)
