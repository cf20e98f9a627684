"""The one progress contract: True (bars), False/None (silence), or a callable of ProgressEvent."""

from __future__ import annotations

import io
import re
import sys

import numpy as np
import pytest

from workbench.cache import extract
from workbench.metrics import evaluate
from workbench.metrics.neighbors import knn
from workbench.progress import LineProgress, ProgressEvent, ProgressReporter, check_progress


def test_event_text_and_reporter_events() -> None:
    events: list[ProgressEvent] = []
    with ProgressReporter(events.append, "task", 3) as rep:
        rep.advance()
        rep.say("halfway")
        rep.advance(2, "done now")
    assert [(e.task, e.done, e.total, e.message) for e in events] == [
        ("task", 1, 3, ""),
        ("task", 1, 3, "halfway"),
        ("task", 3, 3, "done now"),
    ]
    assert str(events[0]) == "task: 1/3" and str(events[1]) == "halfway"
    assert str(ProgressEvent("t", 5, None)) == "t: 5"


def test_invalid_progress_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="progress must be True"):
        check_progress("yes")
    with pytest.raises(TypeError, match="progress must be True"):
        knn(np.zeros((3, 2)), np.ones((4, 2)), 1, progress="bar")


def test_legacy_done_total_callables_still_work_with_a_warning() -> None:
    rng = np.random.default_rng(0)
    q, x = rng.normal(size=(50, 8)), rng.normal(size=(300, 8))
    calls: list[tuple[int, int]] = []
    with pytest.warns(DeprecationWarning, match="fn\\(done, total\\)"):
        knn(q, x, 2, block_size=64, progress=lambda done, total: calls.append((done, total)))
    events: list[ProgressEvent] = []
    knn(q, x, 2, block_size=64, progress=events.append)
    assert calls and [(e.done, e.total) for e in events] == calls and calls[-1][0] == calls[-1][1]


def test_same_contract_for_metrics_and_extraction(tmp_path, digits, capsys) -> None:
    rng = np.random.default_rng(1)
    events: list[ProgressEvent] = []
    evaluate(
        rng.normal(size=(60, 4)),
        {"a": rng.normal(size=(50, 4)), "b": rng.normal(size=(50, 4))},
        metrics="fd,kd",
        progress=events.append,
    )
    assert [str(e) for e in events] == ["fd · a", "fd · b", "kd · a", "kd · b"]
    assert [(e.done, e.total) for e in events] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    printed = []
    evaluate(
        rng.normal(size=(60, 4)),
        {"a": rng.normal(size=(50, 4))},
        metrics="fd",
        progress=lambda msg: printed.append(f"computing {msg}"),
    )  # the old str-callback form
    assert printed == ["computing fd · a"]

    events.clear()
    extract(digits[0][:30], "pixels", out=tmp_path, name="d", chunk_size=10, progress=events.append)
    tasks = {e.task for e in events}
    assert {"fingerprinting", "extract pixels", "extract"} <= tasks
    extracted = [e for e in events if e.task == "extract pixels"]
    assert extracted[-1].done == extracted[-1].total == 30
    assert any("cache written to" in e.message for e in events if e.task == "extract")
    assert capsys.readouterr().err == ""  # a callable replaces the bars and messages
    extract(digits[0][:30], "pixels", out=tmp_path, name="d", chunk_size=10, progress=False)
    assert capsys.readouterr().err == ""


class _FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_on_a_terminal_plain_lines_elsewhere(monkeypatch) -> None:
    log = io.StringIO()  # a log file, CI or a pipe: isatty() is False
    monkeypatch.setattr(sys, "stderr", log)
    with ProgressReporter(True, "extract pixels", 200, unit="img") as rep:
        for _ in range(200):
            rep.advance()
    text = log.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and "\x1b" not in text
    assert lines[0] == "extract pixels: started, 200 img"
    # one line at every 10% step up to 90%, then the end line
    steps = [
        int(re.match(r"extract pixels: (\d+)% \((\d+)/200 img\), .* img/s, .* elapsed, ETA ", ln).group(1))
        for ln in lines[1:-1]
    ]
    assert steps == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert re.fullmatch(r"extract pixels: done, 200/200 img in .+ s \(.+ img/s\)", lines[-1])

    terminal = _FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with ProgressReporter(True, "extract pixels", 200, unit="img") as rep:
        for _ in range(200):
            rep.advance()
    assert "\r" in terminal.getvalue() and "200/200" in terminal.getvalue()  # tqdm's bar, as before


def test_plain_lines_every_30_seconds_without_a_total() -> None:
    now = [0.0]
    log = io.StringIO()
    bar = LineProgress("k-NN search", None, unit="tile", stream=log, clock=lambda: now[0])
    for _ in range(10):  # 10 steps, 10 s apart: a line at 30 s, 60 s and 90 s
        now[0] += 10.0
        bar.update(2)
    bar.set_postfix_str("merging")
    bar.close()
    bar.close()  # once
    assert log.getvalue().splitlines() == [
        "k-NN search: started",
        "k-NN search: 6 tile, 0.2 tile/s, 30 s elapsed",
        "k-NN search: 12 tile, 0.2 tile/s, 1 min 00 s elapsed",
        "k-NN search: 18 tile, 0.2 tile/s, 1 min 30 s elapsed",
        "k-NN search: merging",
        "k-NN search: done, 20 tile in 1 min 40 s (0.2 tile/s)",
    ]


def test_a_short_transient_step_says_nothing_in_a_log_and_a_long_one_does() -> None:
    """``leave=False`` steps (a bar that would vanish on a terminal) write no line to a log
    unless they run longer than 30 s; then their status and end lines as usual."""
    now = [0.0]
    log = io.StringIO()
    short = LineProgress("fingerprinting", 4, unit="file", stream=log, clock=lambda: now[0], transient=True)
    for _ in range(4):
        now[0] += 1.0
        short.update(1)
    short.close()
    assert log.getvalue() == ""
    long = LineProgress("fingerprinting", 4, unit="file", stream=log, clock=lambda: now[0], transient=True)
    for _ in range(4):
        now[0] += 20.0
        long.update(1)
    long.close()
    assert log.getvalue().splitlines() == [
        "fingerprinting: 50% (2/4 file), 0.05 file/s, 40 s elapsed, ETA 40 s",
        "fingerprinting: 75% (3/4 file), 0.05 file/s, 1 min 00 s elapsed, ETA 20 s",
        "fingerprinting: done, 4/4 file in 1 min 20 s (0.05 file/s)",
    ]


def test_plain_lines_of_a_resumed_task_count_this_run_and_give_an_eta() -> None:
    now = [0.0]
    log = io.StringIO()
    bar = LineProgress("extract inception", 100, unit="img", initial=50, stream=log, clock=lambda: now[0])
    now[0] = 25.0
    bar.update(10)  # 60%: 10 images in 25 s, 40 left -> 100 s
    now[0] = 50.0
    bar.update(5)  # 65%: no new 10% step, not 30 s since the last line
    now[0] = 100.0
    bar.update(5)  # 70%: 20 images in 100 s, 30 left -> 150 s
    bar.close()
    assert log.getvalue().splitlines() == [
        "extract inception: started, 100 img (50 already done)",
        "extract inception: 60% (60/100 img), 0.4 img/s, 25 s elapsed, ETA 1 min 40 s",
        "extract inception: 70% (70/100 img), 0.2 img/s, 1 min 40 s elapsed, ETA 2 min 30 s",
        "extract inception: stopped, 70/100 img in 1 min 40 s (0.2 img/s)",
    ]


def test_knn_progress_true_in_a_log_has_no_carriage_returns(capsys) -> None:
    rng = np.random.default_rng(0)
    knn(rng.normal(size=(300, 4)), rng.normal(size=(300, 4)), 1, block_size=64, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err and err.splitlines()[0] == "k-NN search: started, 25 tile"
    assert err.splitlines()[-1].startswith("k-NN search: done, 25/25 tile in ")
