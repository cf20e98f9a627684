"""The one progress contract: True (bars), False/None (silence), or a callable of ProgressEvent."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.cache import extract
from workbench.metrics import evaluate
from workbench.metrics.neighbors import knn
from workbench.progress import ProgressEvent, ProgressReporter, check_progress


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
